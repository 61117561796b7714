//! Progress reporting for long work; the CLI draws it, tests ignore it.

/// Receives progress of a long operation, in rows.
pub trait Progress: Send + Sync {
    /// The total, once known.
    fn set_total(&self, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// One more object of `bytes` bytes was transferred (push, fetch, clone).
    fn object(&self, bytes: u64) {
        self.advance(bytes);
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
