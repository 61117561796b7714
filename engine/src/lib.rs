//! Strata's engine: versioned tables whose rows, sorted by primary key, are stored as
//! content-addressed Parquet chunks cut by the keys themselves, with commits, branches,
//! tags and history, all kept in an `object_store`.
//!
//! The engine knows nothing about remotes: a remote is another store with the same layout
//! (see `store::layout` and docs/protocol.md).
//!
//! This crate is internal to Strata: applications use the `strata` crate, the one public
//! entry point, which is built on it. Its modules are public for the sibling crates
//! (`strata-remote`, `strata`); what changes the checkout's state outside the documented
//! operations (HEAD, the working tables, local files) is private to it.

pub mod alter;
pub mod arrow;
mod avro;
pub mod chunk;
pub mod clock;
pub mod commit;
mod cpu;
mod csv_text;
pub mod diff;
pub mod edit;
pub mod error;
pub mod export;
pub mod gc;
pub mod iceberg;
pub mod id;
pub mod import;
pub mod key;
pub mod merge;
pub mod merging;
pub mod names;
pub mod progress;
pub mod repo;
pub mod retry;
pub mod schema;
pub mod store;
pub mod table;
pub mod tree;

pub use chunk::ChunkParams;
pub use commit::Commit;
pub use error::{Error, ErrorKind, Result};
pub use id::ObjectId;
pub use progress::Progress;
pub use repo::Repository;
pub use schema::TableSchema;
pub use table::TableObject;
