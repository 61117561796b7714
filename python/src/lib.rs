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

/// Opens the repository that contains `path` (searching parent folders).
///
/// A remote URL (s3://...) is not opened in place: copy it with `strata.clone(url, path)`.
#[pyfunction]
#[pyo3(signature = (path, storage_options=None))]
fn open(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Repository> {
    let text: String = path.str()?.to_string();
    if is_url(&text) && !text.starts_with("file://") {
        return Err(invalid(format!(
            "'{text}' is a remote: open takes a local repository; copy the remote with strata.clone('{text}', path) and open that"
        )));
    }
    if storage_options.is_some_and(|o| !o.is_empty()) {
        return Err(invalid(
            "storage_options apply to remotes: give them to strata.clone() or repo.add_remote()",
        ));
    }
    let path = PathBuf::from(text.strip_prefix("file://").unwrap_or(&text));
    let inner = wait(
        py,
        move || async move { strata::Repository::open(&path).await },
    )
    .py_err()?;
    Ok(Repository { inner })
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
    m.add_function(wrap_pyfunction!(clone, m)?)?;
    m.add_class::<Repository>()?;
    m.add_class::<table::Table>()?;
    m.add_class::<table::RecordBatchStream>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
