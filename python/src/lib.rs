//! The `strata` Python module: Strata repositories from Python, with tables read and written
//! as Arrow through the Arrow PyCapsule interface (no copy, no pyarrow needed by Strata
//! itself). Built by maturin as an abi3 extension; see python/README.md.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use strata::{CloneOptions, NoProgress};

mod convert;
mod errors;
mod ffi;
mod remote;
mod repo;
mod runtime;
mod table;

use errors::{invalid, IntoPy};
use repo::Repository;
use runtime::wait;

fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Creates an empty repository in `path` (made if missing); the first branch is `main`.
#[pyfunction]
fn init(py: Python<'_>, path: PathBuf) -> PyResult<Repository> {
    let inner = wait(
        py,
        move || async move { strata::Repository::init(&path).await },
    )
    .py_err()?;
    Ok(Repository { inner })
}

/// Opens a repository. A local path opens the repository that contains it (searching parent
/// folders) as a `Repository`. A remote's URL (s3://bucket/prefix, gs://, az://) or a folder
/// that is itself a remote (pushed to, with `strata.json` at its top) opens a
/// `RemoteRepository`, read in place (see `open_remote`).
#[pyfunction]
#[pyo3(signature = (path, storage_options=None))]
fn open(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let text: String = path.str()?.to_string();
    let folder = PathBuf::from(text.strip_prefix("file://").unwrap_or(&text));
    let local = !is_url(&text) || text.starts_with("file://");
    // A folder pushed to has the marker at its top; a working folder has `.strata` (which
    // holds the same layout, but is opened as the repository around it).
    let pushed_to = folder.join(strata::REMOTE_MARKER).is_file()
        && !folder.join(strata::DOT_DIR).exists()
        && folder.file_name().is_none_or(|n| n != strata::DOT_DIR);
    if !local || pushed_to {
        let remote = open_remote(py, path, storage_options)?;
        return Ok(Py::new(py, remote)?.into_any());
    }
    if storage_options.is_some_and(|o| !o.is_empty()) {
        return Err(invalid(
            "storage_options apply to remotes: give them with a remote's URL, to strata.clone() or to repo.add_remote()",
        ));
    }
    let inner = wait(py, move || async move {
        strata::Repository::open(&folder).await
    })
    .py_err()?;
    Ok(Py::new(py, Repository { inner })?.into_any())
}

/// Opens the repository at `url` (a folder, s3://bucket/prefix, gs://, az://) to read it in
/// place, with no clone: any branch, tag or commit, straight from the store. Nothing is
/// written to it. `storage_options` are the store's non-secret options (endpoint, region,
/// allow_http, ...); credentials come from the environment or an AWS profile.
#[pyfunction]
#[pyo3(signature = (url, storage_options=None))]
fn open_remote(
    py: Python<'_>,
    url: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<remote::RemoteRepository> {
    let url: String = url.str()?.to_string();
    let options = repo::storage_options(storage_options)?;
    let inner = wait(py, move || async move {
        strata::RemoteRepository::open(&url, &options).await
    })
    .py_err()?;
    Ok(remote::RemoteRepository { inner })
}

/// Copies the repository at `url` (a folder, s3://bucket/prefix, gs://, az://) into the
/// folder `path`, adds it as the remote `origin` and checks out `branch` (default: main).
/// `storage_options` are the store's non-secret options (endpoint, region, allow_http, ...),
/// kept for `origin`; credentials come from the environment or an AWS profile.
#[pyfunction]
#[pyo3(signature = (url, path, branch=None, storage_options=None))]
fn clone(
    py: Python<'_>,
    url: String,
    path: PathBuf,
    branch: Option<String>,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Repository> {
    let opts = CloneOptions {
        branch,
        options: repo::storage_options(storage_options)?,
    };
    let (inner, _) = wait(py, move || async move {
        strata::Repository::clone(&url, &path, &opts, &NoProgress).await
    })
    .py_err()?;
    Ok(Repository { inner })
}

/// Strata: version control for tables, from Python.
///
/// Tables are read and written as Arrow: a table handle (`repo.table(name, rev)`) is read
/// directly by DuckDB, Polars and pyarrow through `__arrow_c_stream__`; `repo.write()` takes
/// anything with `__arrow_c_stream__` and pandas DataFrames.
///
/// Filters (`filter=` of `Table.to_arrow` and `Table.to_batches`) select rows by key, and
/// only the chunks those keys reach are read: a key (a value, or a tuple for a composite
/// key), `slice(start, stop)` for `start <= key < stop` (either may be None), predicates on
/// the first key column `[("id", ">=", 10), ("id", "<", 20)]` (ops = == < <= > >= in), or a
/// list of keys and slices.
///
/// Errors are `strata.StrataError` subclasses, one per kind: ConflictError, NotFoundError,
/// AlreadyExistsError, CorruptError, InvalidInputError, InvalidStateError,
/// UnavailableError, PermissionDeniedError, UnsupportedError, StrataIOError.
#[pymodule]
#[pyo3(name = "strata")]
fn strata_python(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(open_remote, m)?)?;
    m.add_function(wrap_pyfunction!(clone, m)?)?;
    m.add_class::<remote::RemoteRepository>()?;
    m.add_class::<Repository>()?;
    m.add_class::<table::Table>()?;
    m.add_class::<table::RecordBatchStream>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
