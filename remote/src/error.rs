//! The remote crate's error type.

/// Errors raised while talking to a remote.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),

    #[error("invalid remote URL '{url}': {reason}")]
    BadUrl { url: String, reason: String },

    #[error("no remote named '{name}'; `strata remote add {name} URL` adds one")]
    UnknownRemote { name: String },

    #[error("remote '{name}' already exists")]
    RemoteExists { name: String },

    #[error("no remote given and none configured; add one with `strata remote add origin URL`")]
    NoRemote,

    #[error("{url} is not a strata repository ({reason}); check the URL")]
    NotARepository { url: String, reason: String },

    #[error("rejected {branch}: the remote has commits you do not have (non-fast-forward); run `strata pull` to combine them, then push again")]
    NonFastForward { branch: String },

    #[error("rejected {branch}: the remote branch is at {actual}, not at the expected {expected} (stale lease); fetch and check, then push again")]
    StaleLease {
        branch: String,
        expected: String,
        actual: String,
    },

    #[error("rejected {branch}: the remote branch moved while pushing; run `strata pull`, then push again")]
    Moved { branch: String },

    #[error("rejected tag {tag}: it already exists on the remote at another commit; use --force to replace it")]
    TagExists { tag: String },

    #[error("branch '{branch}' does not exist on remote '{remote}'")]
    UnknownRemoteBranch { remote: String, branch: String },

    #[error("remote {url} is incomplete: {source}")]
    Incomplete {
        url: String,
        #[source]
        source: strata_engine::Error,
    },

    #[error("refusing {url}: the store does not enforce conditional writes ({detail}), so concurrent pushes could silently overwrite each other; use a store that does (S3, MinIO, Ceph, GCS, Azure, a local folder), or accept the risk with --option allow_unsafe_store=true")]
    UnsafeStore { url: String, detail: String },

    #[error("a garbage collection ({id}, started {since}) holds {url}; wait for it to finish. If it was interrupted, run `strata gc --remote {remote}` in the repository that started it, or `strata gc --remote {remote} --break-lock` if you are sure it is not running")]
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
