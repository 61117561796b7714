//! The engine's one error type. Every variant names what it is about (table, ref, key, path)
//! and, where the user can act, says what to do.

use std::path::PathBuf;

/// Errors raised by the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "not a strata repository (or any parent up to /): {path}; run `strata init` to create one"
    )]
    NotARepository { path: PathBuf },

    #[error("a strata repository already exists at {path}")]
    RepositoryExists { path: PathBuf },

    #[error("{what} uses format {found}, but this strata understands formats up to {supported}; upgrade strata to read it")]
    FormatTooNew {
        what: String,
        found: u32,
        supported: u32,
    },

    #[error("object {id} is corrupt ({reason}); `strata fsck --repair` (with --remote NAME for a remote's object) writes it again from an intact copy")]
    CorruptObject { id: String, reason: String },

    #[error("ref record {path} is damaged ({reason}); `strata fsck` (with --remote NAME for a remote) says what to do")]
    CorruptRef { path: String, reason: String },

    #[error("object {id} is missing from {location}; the repository is incomplete: `strata fsck --repair` (with --remote NAME for a remote's object) writes it again from an intact copy")]
    MissingObject { id: String, location: String },

    #[error("storage error at {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unknown table '{name}'; `strata table list` shows the tables")]
    UnknownTable { name: String },

    #[error("table '{name}' already exists; use --mode append, upsert or replace to change it")]
    TableExists { name: String },

    #[error("unknown revision '{rev}'; give a branch, tag, commit id, HEAD, REV~N or REV^")]
    UnknownRevision { rev: String },

    #[error(
        "ambiguous revision '{rev}': it matches {count} commits; give more characters of the id"
    )]
    AmbiguousRevision { rev: String, count: usize },

    #[error("unknown branch '{name}'; `strata branch` lists the branches")]
    UnknownBranch { name: String },

    #[error("unknown tag '{name}'; 'strata tag' lists the tags")]
    UnknownTag { name: String },

    #[error("{kind} '{name}' already exists")]
    RefExists { kind: String, name: String },

    #[error("invalid {what} name '{name}': {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    #[error("{path}: {message}")]
    BadInput { path: String, message: String },

    #[error("table '{table}': schema of {path} differs from the table's: {details}")]
    SchemaMismatch {
        table: String,
        path: String,
        details: String,
    },

    #[error("{path}: duplicate primary key {key}; each key may appear once")]
    DuplicateKey { path: String, key: String },

    #[error("table '{table}': row with primary key {key} already exists; use --mode upsert to overwrite it")]
    KeyExists { table: String, key: String },

    #[error(
        "{path}: null in primary key column '{column}' at {location}; key columns may not be null"
    )]
    NullKey {
        path: String,
        column: String,
        location: String,
    },

    #[error("unsupported column type {data_type} for column '{column}'")]
    UnsupportedType { column: String, data_type: String },

    #[error("invalid primary key: {reason}")]
    InvalidPrimaryKey { reason: String },

    #[error("ref {name} was moved by someone else: expected {expected}, found {actual}")]
    RefConflict {
        name: String,
        expected: String,
        actual: String,
    },

    /// A garbage collection took the record this write needed (docs/protocol.md, section 8).
    #[error("ref {name} was fenced by garbage collection {gc} while this write was in flight; re-check the objects and write again")]
    Fenced { name: String, gc: String },

    #[error(
        "you have uncommitted changes in {tables}; commit them first (or discard them with 'strata reset --hard')"
    )]
    UncommittedChanges { tables: String },

    #[error("nothing to commit: the working tables match HEAD")]
    NothingToCommit,

    #[error("cannot delete branch '{name}': it is checked out; check out another branch first")]
    DeleteCurrentBranch { name: String },

    #[error("{what}: {source}")]
    Arrow {
        what: String,
        #[source]
        source: crate::arrow::error::ArrowError,
    },

    #[error("{what}: {source}")]
    Parquet {
        what: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("{0}")]
    Invalid(String),

    /// The input is not sorted by key (internal: the import then sorts it).
    #[error("the input is not sorted by primary key")]
    NotSorted,
}

impl Error {
    /// True when a conditional ref update lost to a concurrent writer.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::RefConflict { .. } | Error::Fenced { .. })
    }

    /// True when the write lost to a garbage collection's fence (the writer must re-check
    /// the objects it relies on, then retry).
    pub fn is_fence(&self) -> bool {
        matches!(self, Error::Fenced { .. })
    }

    pub(crate) fn arrow(what: impl Into<String>, source: crate::arrow::error::ArrowError) -> Self {
        Error::Arrow {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn parquet(what: impl Into<String>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            what: what.into(),
            source,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
