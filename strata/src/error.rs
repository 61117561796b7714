//! The library's one error type: what went wrong, with the table, ref, key or URL it is
//! about, and a [`ErrorKind`]. What to do about it is a [`Suggestion`], which each front end
//! words for its own users (the command line names its commands).

use strata_engine::ErrorKind;

pub use strata_remote::cloud::StorageFault;

/// An error of any Strata operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure in the repository, its tables or its storage.
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),

    /// A failure talking to a remote, or a push or fetch that was refused.
    #[error(transparent)]
    Remote(strata_remote::Error),

    /// Arguments that do not make sense together, or a value that is not acceptable.
    #[error("{0}")]
    InvalidInput(String),

    /// A diff filter that does not parse, or names a column or a value that a table does
    /// not have.
    #[error(transparent)]
    Filter(Box<crate::filter::FilterError>),

    /// The repository's state does not allow the operation now.
    #[error("{message}")]
    InvalidState {
        message: String,
        suggestion: Option<Suggestion>,
    },

    /// A merge or pull stopped on conflicting rows; they are recorded in the repository.
    #[error("{what} stopped with {rows} conflicting row{} in {}", if *.rows == 1 { "" } else { "s" }, .tables.join(", "))]
    MergeConflicts {
        /// `merge of 'feature'`, `pull`.
        what: String,
        rows: usize,
        tables: Vec<String>,
        /// Whether the merge came from a pull (the advice then ends with a push).
        pull: bool,
    },

    /// A table or revision that a remote read in place does not have.
    #[error("{message}")]
    NotOnRemote {
        message: String,
        suggestion: Suggestion,
    },

    /// Problems that `fsck` found (each is in its report).
    #[error("{count} problem{} in {location}", if *.count == 1 { "" } else { "s" })]
    Damaged { count: usize, location: String },
}

impl From<crate::filter::FilterError> for Error {
    fn from(e: crate::filter::FilterError) -> Self {
        Error::Filter(Box::new(e))
    }
}

impl From<strata_remote::Error> for Error {
    fn from(e: strata_remote::Error) -> Self {
        match e {
            strata_remote::Error::Engine(inner) => Error::Engine(inner),
            other => Error::Remote(other),
        }
    }
}

/// What the user can do about an error. Front ends turn it into words: the command line into
/// the command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Suggestion {
    /// Create a repository here.
    Init,
    /// Write the damaged or missing object again from an intact copy (fsck's repair).
    RepairObjects,
    /// Let fsck say what to do about a damaged ref record.
    CheckRefRecords,
    /// List the tables.
    ListTables,
    /// List the branches.
    ListBranches,
    /// List the tags.
    ListTags,
    /// Change an existing table with another import mode (append, upsert, replace).
    ChooseImportMode,
    /// Upsert to overwrite rows that exist.
    Upsert,
    /// Say which revision: a branch, tag, commit id, HEAD, REV~N, REV^.
    RevisionSyntax,
    /// Commit the working changes, or discard them.
    CommitOrDiscard,
    /// Check out another branch first.
    CheckoutAnother,
    /// Add the remote of this name.
    AddRemote { name: String },
    /// Fetch or pull, then push again.
    PullThenPush,
    /// Fetch and look at the remote branch, then push again.
    FetchThenPush,
    /// Force the push to replace a tag.
    ForceTag,
    /// Use a store that enforces conditional writes, or accept the risk for this remote.
    SafeStore,
    /// A garbage collection holds the remote: wait, resume it, or break its lock.
    WaitForGc { remote: String },
    /// See and resolve the conflicts of a merge, then commit (and push, after a pull).
    ResolveConflicts { pull: bool },
    /// Finish the merge in progress, or abort it.
    FinishOrAbortMerge,
    /// Each problem of fsck's report says what to do.
    SeeProblems,
    /// Resolve the conflicts left (or fix the rows), or abort the merge.
    ResolveOrAbort,
    /// Merge without requiring a fast-forward.
    MergeWithoutFfOnly,
    /// Give a commit message.
    GiveMessage,
    /// Create the table first (with its key columns).
    CreateTable,
    /// Name the key columns of the new table.
    GiveKey,
    /// Say which file format the input is in.
    GiveFormat,
    /// Run it again when the other command has finished.
    RetryLater,
    /// Free some space on the disk that is full, then run it again (what was stored before
    /// is intact).
    FreeSpace,
    /// Check the URL; or make a new repository at it (a push that creates it).
    CheckUrlOrCreate,
    /// Remount the shared folder without attribute caching, or accept stale listings for
    /// this remote.
    RemountOrAllow,
    /// Delete the branch anyway (its commits may then be lost).
    ForceDeleteBranch,
    /// Make the change by hand (import, delete) and commit, or merge instead.
    ApplyByHand,
    /// Give the column's type (`keeps`: one that holds its values as written).
    GiveColumnType {
        column: String,
        keeps: Option<String>,
    },
    /// Fix the row whose value does not convert to a column's new type (an upsert), or
    /// choose a type that holds every value.
    FixValueOrChooseType { table: String },
    /// List the tables of the remote at `url`, read in place.
    ListRemoteTables { url: String },
    /// Give a branch, tag or commit id of the remote at `url`, read in place.
    RemoteRevisionSyntax { url: String },
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Engine(e) => e.kind(),
            Error::Remote(e) => e.kind(),
            Error::InvalidInput(_) | Error::Filter(_) => ErrorKind::InvalidInput,
            Error::InvalidState { .. } => ErrorKind::InvalidState,
            Error::MergeConflicts { .. } => ErrorKind::Conflict,
            Error::Damaged { .. } => ErrorKind::Corrupt,
            Error::NotOnRemote { .. } => ErrorKind::NotFound,
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn suggestion(&self) -> Option<Suggestion> {
        use strata_engine::Error as E;
        use strata_remote::Error as R;
        if strata_engine::store::disk_full(self) {
            return Some(Suggestion::FreeSpace);
        }
        match self {
            Error::Engine(e) => match e {
                E::NotARepository { .. } => Some(Suggestion::Init),
                E::CorruptObject { .. } | E::MissingObject { .. } => {
                    Some(Suggestion::RepairObjects)
                }
                E::CorruptRef { .. } => Some(Suggestion::CheckRefRecords),
                E::UnknownTable { .. } => Some(Suggestion::ListTables),
                E::UnknownBranch { .. } => Some(Suggestion::ListBranches),
                E::UnknownTag { .. } => Some(Suggestion::ListTags),
                E::TableExists { .. } => Some(Suggestion::ChooseImportMode),
                E::KeyExists { .. } => Some(Suggestion::Upsert),
                E::UnknownRevision { .. } => Some(Suggestion::RevisionSyntax),
                E::UncommittedChanges { .. } => Some(Suggestion::CommitOrDiscard),
                E::DeleteCurrentBranch { .. } => Some(Suggestion::CheckoutAnother),
                E::MergeInProgress { .. } => Some(Suggestion::FinishOrAbortMerge),
                E::ConflictsRemain { .. } => Some(Suggestion::ResolveOrAbort),
                E::NotFastForward { .. } => Some(Suggestion::MergeWithoutFfOnly),
                E::PickConflicts { .. } => Some(Suggestion::ApplyByHand),
                E::EmptyMessage => Some(Suggestion::GiveMessage),
                E::NoSuchTableToChange { .. } => Some(Suggestion::CreateTable),
                E::KeyRequired { .. } => Some(Suggestion::GiveKey),
                E::UnknownFormat { .. } => Some(Suggestion::GiveFormat),
                E::RepositoryBusy => Some(Suggestion::RetryLater),
                E::ValueDoesNotConvert { table, .. } => Some(Suggestion::FixValueOrChooseType {
                    table: table.clone(),
                }),
                E::BadValue { column, keeps, .. } => Some(Suggestion::GiveColumnType {
                    column: column.clone(),
                    keeps: keeps.clone(),
                }),
                _ => None,
            },
            Error::Remote(e) => match e {
                R::UnknownRemote { name } => Some(Suggestion::AddRemote { name: name.clone() }),
                R::NoRemote => Some(Suggestion::AddRemote {
                    name: "origin".into(),
                }),
                R::NonFastForward { .. } | R::Moved { .. } => Some(Suggestion::PullThenPush),
                R::StaleLease { .. } => Some(Suggestion::FetchThenPush),
                R::TagExists { .. } => Some(Suggestion::ForceTag),
                R::UnsafeStore { .. } => Some(Suggestion::SafeStore),
                R::NetworkFolder { .. } => Some(Suggestion::RemountOrAllow),
                R::GcRunning { remote, .. } => Some(Suggestion::WaitForGc {
                    remote: remote.clone(),
                }),
                R::Incomplete { .. } => Some(Suggestion::RepairObjects),
                R::NotARepository { .. } => Some(Suggestion::CheckUrlOrCreate),
                _ => None,
            },
            Error::InvalidState { suggestion, .. } => suggestion.clone(),
            Error::MergeConflicts { pull, .. } => {
                Some(Suggestion::ResolveConflicts { pull: *pull })
            }
            Error::Damaged { .. } => Some(Suggestion::SeeProblems),
            Error::NotOnRemote { suggestion, .. } => Some(suggestion.clone()),
            Error::InvalidInput(_) | Error::Filter(_) => None,
        }
    }

    /// A common storage failure (a missing bucket, refused credentials, an unreachable
    /// endpoint), with the storage location it happened at.
    pub fn storage_fault(&self) -> Option<(StorageFault, String)> {
        let (path, source) = match self {
            Error::Engine(strata_engine::Error::Storage { path, source }) => (path, source),
            Error::Remote(strata_remote::Error::Incomplete {
                source: strata_engine::Error::Storage { path, source },
                ..
            }) => (path, source),
            _ => return None,
        };
        StorageFault::of(source).map(|f| (f, path.clone()))
    }

    /// True when a push was refused because the remote branch is not where this push
    /// expected it (a rejection, not a failure of the storage).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Remote(e) if e.is_rejection())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
