//! The engine's one error type. Every variant names what it is about (table, ref, key, path)
//! and has a kind ([`ErrorKind`]); what to do about it is the caller's to say (the command
//! line adds its advice).

use std::path::PathBuf;

/// Errors raised by the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("not a strata repository (or any parent up to /): {path}")]
    NotARepository { path: PathBuf },

    #[error("a strata repository already exists at {path}")]
    RepositoryExists { path: PathBuf },

    #[error("{what} uses format {found}, but this strata understands formats up to {supported}; upgrade strata to read it")]
    FormatTooNew {
        what: String,
        found: u32,
        supported: u32,
    },

    #[error("object {id} is corrupt ({reason})")]
    CorruptObject { id: String, reason: String },

    #[error("ref record {path} is damaged ({reason})")]
    CorruptRef { path: String, reason: String },

    #[error("object {id} is missing from {location}; the repository is incomplete")]
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

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unknown table '{name}'")]
    UnknownTable { name: String },

    #[error("table '{name}' already exists")]
    TableExists { name: String },

    #[error("unknown revision '{rev}'")]
    UnknownRevision { rev: String },

    /// A `~N` or `^N` that goes further back than the history does.
    #[error("revision '{rev}' names no commit: {reason}; `strata log` shows the history")]
    NoSuchAncestor { rev: String, reason: String },

    #[error(
        "ambiguous revision '{rev}': it matches {count} commits; give more characters of the id"
    )]
    AmbiguousRevision { rev: String, count: usize },

    #[error("unknown branch '{name}'")]
    UnknownBranch { name: String },

    #[error("unknown tag '{name}'")]
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

    /// A value the column's type cannot hold as it is written: it does not parse, or
    /// parsing would change it (a leading zero dropped, a fraction cut off).
    /// `message`: the file, the value, the column, its line and what is wrong with it.
    #[error("{message}")]
    BadValue {
        message: String,
        column: String,
        /// A type that holds the column's values as written, when the type was inferred.
        keeps: Option<String>,
    },

    #[error("table '{table}': schema of {path} differs from the table's: {details}")]
    SchemaMismatch {
        table: String,
        path: String,
        details: String,
    },

    #[error("{path}: duplicate primary key {key}; each key may appear once")]
    DuplicateKey { path: String, key: String },

    #[error("table '{table}': row with primary key {key} already exists")]
    KeyExists { table: String, key: String },

    #[error(
        "{path}: null in primary key column '{column}' at {location}; key columns may not be null"
    )]
    NullKey {
        path: String,
        column: String,
        location: String,
    },

    /// `input`: the file (or data) the column came from, when it came from one.
    #[error(
        "{}column '{column}' is of type {data_type}, which a table cannot hold: a column holds integers, floats, bool, utf8, binary, date32, timestamps or decimal128 (nested lists and objects are not supported; flatten them into columns of their own first)",
        .input.as_ref().map(|i| format!("{i}: ")).unwrap_or_default()
    )]
    UnsupportedType {
        column: String,
        data_type: String,
        input: Option<String>,
    },

    #[error("invalid primary key: {reason}")]
    InvalidPrimaryKey { reason: String },

    #[error("table '{table}' has no column '{column}'; its columns are {columns}")]
    UnknownColumn {
        table: String,
        column: String,
        /// The table's columns at that point, comma-separated.
        columns: String,
    },

    #[error("table '{table}' already has a column '{column}'")]
    ColumnExists { table: String, column: String },

    /// A schema change the table's key or types do not allow (`reason` says why).
    #[error("table '{table}', column '{column}': {reason}; nothing was changed")]
    SchemaChangeRefused {
        table: String,
        column: String,
        reason: String,
    },

    /// A value that a column's new type cannot hold unchanged (it does not convert, or
    /// converting it back gives another value). `problem` names the value, its row's key and
    /// the type.
    #[error("table '{table}', column '{column}': {problem}; nothing was changed")]
    ValueDoesNotConvert {
        table: String,
        column: String,
        problem: String,
    },

    #[error("ref {name} was moved by someone else: expected {expected}, found {actual}")]
    RefConflict {
        name: String,
        expected: String,
        actual: String,
    },

    /// A garbage collection took the record this write needed (docs/protocol.md, section 8).
    #[error("ref {name} was fenced by garbage collection {gc} while this write was in flight; re-check the objects and write again")]
    Fenced { name: String, gc: String },

    #[error("you have uncommitted changes in {tables}")]
    UncommittedChanges { tables: String },

    #[error("nothing to commit: the working tables match HEAD")]
    NothingToCommit,

    #[error("the commit message is empty")]
    EmptyMessage,

    #[error("a merge of '{name}' is in progress")]
    MergeInProgress { name: String },

    #[error("there is no merge in progress")]
    NoMerge,

    #[error("{count} conflict{} remain{} in {tables}", if *.count == 1 { "" } else { "s" }, if *.count == 1 { "s" } else { "" })]
    ConflictsRemain { count: usize, tables: String },

    #[error("cannot fast-forward to '{rev}': the histories have diverged")]
    NotFastForward { rev: String },

    #[error("cannot {what} {rev}: {count} cell{} conflict{} with changes made since, in {tables}; nothing was changed", if *.count == 1 { "" } else { "s" }, if *.count == 1 { "s" } else { "" })]
    PickConflicts {
        what: String,
        rev: String,
        count: usize,
        tables: String,
    },

    #[error("table '{name}' does not exist")]
    NoSuchTableToChange { name: String },

    #[error("table '{table}' is new: its key columns must be named")]
    KeyRequired { table: String },

    #[error("{path}: cannot tell the format from the file name (csv, parquet or jsonl)")]
    UnknownFormat { path: String },

    #[error("another strata command is using this repository; garbage collection runs alone")]
    RepositoryBusy,

    #[error("cannot delete branch '{name}': it is checked out")]
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

    /// An Iceberg view could not be made (`what` names it, `reason` says why).
    #[error("{what}: {reason}")]
    Iceberg { what: String, reason: String },

    /// The storage did not answer as needed after several tries (the text says what was
    /// being done).
    #[error("{0}")]
    Unavailable(String),

    /// A write whose outcome could not be settled: it may have happened, or may still happen
    /// (a request applied late). Nothing built on it may be cleaned up; running the command
    /// again finds out.
    #[error("the outcome of {what} is unknown ({detail})")]
    UnknownOutcome { what: String, detail: String },

    /// The repository's state does not allow the operation now (the text says why).
    #[error("{0}")]
    State(String),

    /// The input is not sorted by key (internal: the import then sorts it).
    #[error("the input is not sorted by primary key")]
    NotSorted,
}

/// What kind of failure an error is, for programs that react to it (the Python package maps
/// each kind to an exception class; the command line picks its advice by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Someone else changed what this operation relied on (a ref moved, a key exists).
    Conflict,
    /// What was named does not exist (a table, a revision, a repository, a remote).
    NotFound,
    /// What was to be created exists already.
    AlreadyExists,
    /// Stored data is damaged or missing.
    Corrupt,
    /// The input (a file, a name, an option) is not acceptable.
    InvalidInput,
    /// The repository's state does not allow the operation now (uncommitted changes, a merge
    /// in progress, nothing to commit).
    InvalidState,
    /// The storage could not be reached, or is busy; trying again later may work.
    Unavailable,
    /// The storage refused the credentials or the access.
    PermissionDenied,
    /// Data or a store this build cannot use (a newer format, a store without conditional
    /// writes).
    Unsupported,
    /// A local file or folder could not be read or written.
    Io,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::NotARepository { .. }
            | Error::UnknownTable { .. }
            | Error::UnknownRevision { .. }
            | Error::NoSuchAncestor { .. }
            | Error::UnknownBranch { .. }
            | Error::UnknownTag { .. }
            | Error::UnknownColumn { .. } => K::NotFound,
            Error::RepositoryExists { .. }
            | Error::TableExists { .. }
            | Error::ColumnExists { .. }
            | Error::RefExists { .. } => K::AlreadyExists,
            Error::FormatTooNew { .. } | Error::UnsupportedType { .. } | Error::Iceberg { .. } => {
                K::Unsupported
            }
            Error::CorruptObject { .. }
            | Error::CorruptRef { .. }
            | Error::MissingObject { .. } => K::Corrupt,
            Error::Storage { source, .. } => crate::store::storage_kind(source),
            Error::Unavailable(_) | Error::UnknownOutcome { .. } => K::Unavailable,
            Error::Io { .. } | Error::Write { .. } => K::Io,
            Error::RefConflict { .. }
            | Error::Fenced { .. }
            | Error::KeyExists { .. }
            | Error::PickConflicts { .. } => K::Conflict,
            Error::UncommittedChanges { .. }
            | Error::NothingToCommit
            | Error::DeleteCurrentBranch { .. }
            | Error::MergeInProgress { .. }
            | Error::NoMerge
            | Error::ConflictsRemain { .. }
            | Error::NotFastForward { .. }
            | Error::State(_) => K::InvalidState,
            Error::NoSuchTableToChange { .. } => K::NotFound,
            Error::EmptyMessage | Error::KeyRequired { .. } | Error::UnknownFormat { .. } => {
                K::InvalidInput
            }
            Error::RepositoryBusy => K::Unavailable,
            Error::AmbiguousRevision { .. }
            | Error::InvalidName { .. }
            | Error::BadInput { .. }
            | Error::BadValue { .. }
            | Error::SchemaMismatch { .. }
            | Error::DuplicateKey { .. }
            | Error::NullKey { .. }
            | Error::InvalidPrimaryKey { .. }
            | Error::SchemaChangeRefused { .. }
            | Error::ValueDoesNotConvert { .. }
            | Error::Arrow { .. }
            | Error::Parquet { .. }
            | Error::Invalid(_)
            | Error::NotSorted => K::InvalidInput,
        }
    }

    /// True when a write may or may not have happened (see [`Error::UnknownOutcome`]).
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, Error::UnknownOutcome { .. })
    }

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
