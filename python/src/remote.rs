//! A remote read in place.

use pyo3::prelude::*;

use crate::convert::to_py;
use crate::errors::IntoPy;
use crate::runtime::wait;
use crate::table::{Source, Table};

/// A repository on a remote (a folder, s3://, gs://, az://), read where it lies: any branch,
/// tag or commit, with no clone. Read-only; every call reads the remote's refs afresh, so it
/// sees every push. Open one with `strata.open(url)` or `strata.open_remote(url)`.
#[pyclass(module = "strata", name = "RemoteRepository", frozen)]
pub struct RemoteRepository {
    pub inner: strata::RemoteRepository,
}

impl RemoteRepository {
    fn run<T, F, Fut>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        F: FnOnce(strata::RemoteRepository) -> Fut + Send,
        Fut: std::future::Future<Output = strata::Result<T>>,
        T: Send,
    {
        let remote = self.inner.clone();
        wait(py, move || f(remote)).py_err()
    }
}

#[pymethods]
impl RemoteRepository {
    /// The remote's URL (a folder as a file:// URL).
    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// The remote's branches, as they are now: dicts of name and commit.
    fn branches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let b = self.run(py, |r| async move { r.branches().await })?;
        to_py(py, &b)
    }

    /// The remote's tags, as they are now: dicts of name and commit.
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.run(py, |r| async move { r.tags().await })?;
        to_py(py, &t)
    }

    /// The commit id a revision names: a branch, a tag, a commit id or unique prefix, with
    /// `~N` / `^N`. Default: the branch `main`, else the first branch.
    #[pyo3(signature = (rev=None))]
    fn resolve(&self, py: Python<'_>, rev: Option<String>) -> PyResult<String> {
        let id = self.run(py, move |r| async move { r.resolve(rev.as_deref()).await })?;
        Ok(id.to_hex())
    }

    /// The tables at a revision (default: `main`, else the first branch).
    #[pyo3(signature = (rev=None))]
    fn tables<'py>(&self, py: Python<'py>, rev: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.run(py, move |r| async move { r.tables(rev.as_deref()).await })?;
        to_py(py, &t)
    }

    /// A handle on a table at a revision (default: `main`, else the first branch), read
    /// straight from the remote. The revision is resolved to its commit now, so the handle
    /// keeps reading that commit whatever is pushed later.
    #[pyo3(signature = (name, rev=None))]
    fn table(&self, py: Python<'_>, name: &str, rev: Option<String>) -> PyResult<Table> {
        Table::open(py, &Source::Remote(self.inner.clone()), name, rev)
    }

    /// The history from a revision (default: `main`, else the first branch), newest first:
    /// dicts of id, parents, author, time, message and tables. `all`: from every branch and
    /// tag. Ranges (`a..b`) need a clone.
    #[pyo3(signature = (rev=None, n=None, all=false))]
    fn log<'py>(
        &self,
        py: Python<'py>,
        rev: Option<String>,
        n: Option<usize>,
        all: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = crate::repo::log_options(rev, n, all);
        let log = self.run(py, move |r| async move { r.log(&opts).await })?;
        to_py(py, &log)
    }

    /// The rows that differ between revision `a` and revision `b` (default: `main`, else the
    /// first branch), as `Repository.diff` gives them; only the chunks that differ are
    /// fetched. Needs pyarrow.
    #[pyo3(signature = (a, b=None, table=None, r#where=None))]
    fn diff<'py>(
        &self,
        py: Python<'py>,
        a: String,
        b: Option<String>,
        table: Option<String>,
        r#where: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::repo::diff_arrow(
            py,
            Source::Remote(self.inner.clone()),
            Some(a),
            b,
            table,
            r#where,
        )
    }

    fn __repr__(&self) -> String {
        format!("<strata.RemoteRepository '{}'>", self.inner.url())
    }
}
