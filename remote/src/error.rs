//! The remote crate's error type.

/// Errors raised while talking to a remote.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),

    #[error("invalid remote URL '{url}': {reason}")]
    BadUrl { url: String, reason: String },

    #[error("no remote named '{name}'")]
    UnknownRemote { name: String },

    #[error("remote '{name}' already exists")]
    RemoteExists { name: String },

    #[error("no remote given and none configured")]
    NoRemote,

    #[error("{url} is not a strata repository ({reason})")]
    NotARepository { url: String, reason: String },

    #[error("rejected {branch}: the remote has commits you do not have (non-fast-forward)")]
    NonFastForward { branch: String },

    #[error("rejected {branch}: the remote branch is at {actual}, not at the expected {expected} (stale lease)")]
    StaleLease {
        branch: String,
        expected: String,
        actual: String,
    },

    #[error("rejected {branch}: the remote branch moved while pushing")]
    Moved { branch: String },

    #[error("rejected tag {tag}: it already exists on the remote at another commit")]
    TagExists { tag: String },

    #[error("branch '{branch}' does not exist on remote '{remote}'")]
    UnknownRemoteBranch { remote: String, branch: String },

    #[error("remote {url} is incomplete: {source}")]
    Incomplete {
        url: String,
        #[source]
        source: strata_engine::Error,
    },

    #[error("refusing {url}: the store does not enforce conditional writes ({detail}), so concurrent pushes could silently overwrite each other")]
    UnsafeStore { url: String, detail: String },

    /// A folder remote on a network file system whose listings may be served from a cache.
    #[error("{url} is on a network file system ({fstype}, mounted at {mount}) whose folder listings may be served from a cache, so machines sharing it could miss each other's pushes; {fix}")]
    NetworkFolder {
        url: String,
        fstype: String,
        mount: String,
        fix: String,
    },

    #[error("a garbage collection ({id}, started {since}) holds {url}")]
    GcRunning {
        url: String,
        remote: String,
        id: String,
        since: String,
    },

    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> strata_engine::ErrorKind {
        use strata_engine::ErrorKind as K;
        match self {
            Error::Engine(e) | Error::Incomplete { source: e, .. } => match self {
                Error::Incomplete { .. } => K::Corrupt,
                _ => e.kind(),
            },
            Error::BadUrl { .. } | Error::Invalid(_) => K::InvalidInput,
            Error::UnknownRemote { .. }
            | Error::NoRemote
            | Error::NotARepository { .. }
            | Error::UnknownRemoteBranch { .. } => K::NotFound,
            Error::RemoteExists { .. } => K::AlreadyExists,
            Error::NonFastForward { .. }
            | Error::StaleLease { .. }
            | Error::Moved { .. }
            | Error::TagExists { .. } => K::Conflict,
            Error::UnsafeStore { .. } | Error::NetworkFolder { .. } => K::Unsupported,
            Error::GcRunning { .. } => K::Unavailable,
        }
    }

    /// True when a ref update lost to another writer or was not a fast-forward.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Error::NonFastForward { .. }
                | Error::StaleLease { .. }
                | Error::Moved { .. }
                | Error::TagExists { .. }
        )
    }
}

/// Result alias for the remote crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
