//! One tokio runtime for the module. Every call that does I/O or decoding runs on it with the
//! GIL released, so other Python threads go on meanwhile.

use std::future::Future;
use std::sync::OnceLock;

use pyo3::Python;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The module's runtime (multi-threaded, started on first use).
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("strata")
            .build()
            .unwrap_or_else(|e| panic!("cannot start the Strata runtime: {e}"))
    })
}

/// Runs the future that `make` returns to completion with the GIL released.
pub fn wait<T, Fut>(py: Python<'_>, make: impl FnOnce() -> Fut + Send) -> T
where
    Fut: Future<Output = T>,
    T: Send,
{
    py.detach(|| runtime().block_on(make()))
}
