//! Strata: version control for tables whose remotes live in object storage.
//!
//! A repository holds tables (an Arrow schema and a primary key). Rows, sorted by key, are
//! stored as content-addressed Parquet chunks cut by the keys themselves, so a one-row edit
//! rewrites about one chunk, and diff, merge and push cost follow the size of the change.
//! Commits, branches, tags, row- and cell-level diff, three-way merge, time travel; push,
//! fetch, pull and clone against a folder or any object store, over one protocol
//! (docs/protocol.md).
//!
//! [`Repository`] is the one entry point: the `strata` command line and the Python package
//! are built on it.
//!
//! ```no_run
//! # async fn demo() -> strata::Result<()> {
//! use strata::{NoProgress, Repository, ScanOptions};
//!
//! let repo = Repository::open(".").await?;
//! let scan = repo
//!     .scan("orders", &ScanOptions { rev: Some("v1".into()), ..Default::default() })
//!     .await?;
//! let batches = scan.collect().await?;
//! # Ok(()) }
//! ```

mod config;
mod data;
mod diff;
mod error;
mod filter;
mod history;
mod maintenance;
mod merge;
mod refs;
mod remote_read;
mod remotes;
mod repository;
mod views;
mod worktree;

pub use config::{
    global_config, global_config_path, set_global_config, ConfigEntry, ConfigScope, CONFIG_KEYS,
};
pub use data::{
    delimiter_from_path, parse_column_type, parse_delimiter, parse_type, AlterReport, Compression,
    ExportFormat, ExportOptions, FileFormat, Key, KeyRange, KeyValue, Scan, ScanOptions,
    SchemaChange, SchemaDiff, TableInfo, TableSummary, WriteMode, WriteOptions, WriteReport,
};
pub use diff::{Change, Diff, DiffOptions, RowDiff, SchemaEvent, TableEvent, TableStat};
pub use error::{Error, Result, StorageFault, Suggestion};
pub use filter::{FilterError, RowFilter};
pub use history::{CommitDetail, CommitInfo, LogOptions, ReflogEntry};
pub use maintenance::{FsckOptions, FsckProblem, FsckReport, GcOptions, GcReport, Repair};
pub use merge::{CellConflict, ConflictInfo, MergeOptions, MergeOutcome, Side};
pub use refs::RefInfo;
pub use remote_read::RemoteRepository;
pub use remotes::{
    aws_credentials_configured, check_option_value, check_options, clone_dir_name, is_known_option,
    CloneOptions, CloneReport, FetchReport, FetchedBranch, ForceWithLease, PullOptions, PullReport,
    PushOptions, PushReport, PushedRef, RefMove, Rejection, RemoteDetail, RemoteInfo, RemoteRef,
};
pub use repository::{Author, Repository, DOT_DIR};
/// The file at the top of a remote (a folder or prefix pushed to) that marks it a repository.
pub use strata_engine::store::layout::MARKER as REMOTE_MARKER;
pub use views::{DataFile, IcebergView, ViewOptions};
pub use worktree::{
    CheckoutOptions, Committed, HeadRef as Head, MergingStatus, PickOptions, Status, TableChange,
    UpstreamStatus,
};

pub use strata_engine::progress::NoProgress;
pub use strata_engine::schema::ColumnDef;
pub use strata_engine::store::TagNote;
pub use strata_engine::{ChunkParams, ErrorKind, ObjectId, Progress};

/// The Arrow types the API speaks in.
pub use arrow_array::{RecordBatch, RecordBatchReader};
pub use arrow_schema::{DataType, Schema, SchemaRef};
