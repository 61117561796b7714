//! Strata remotes: one sync protocol over `object_store` (docs/protocol.md, section 6).
//!
//! A remote is another store with the repository layout. Objects are copied
//! dependencies-first, and refs move only by the compare-and-swap of the engine's ref logs,
//! on every backend alike.

pub mod cloud;
pub mod config;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod error;
pub mod fetch;
pub mod fsck;
pub mod gc;
pub mod probe;
pub mod push;
pub mod remote;
pub mod shared;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transfer;
pub mod url;
pub mod waiting;

pub use error::{Error, Result};
pub use remote::Remote;
