//! Exceptions: `strata.StrataError` and one subclass per kind of failure. The message is the
//! library's, followed by what to do about it in Python's terms. Each exception also carries
//! `kind` (a string such as `"not_found"`) and `advice` (or None).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use strata::{ErrorKind, StorageFault, Suggestion};

create_exception!(
    strata,
    StrataError,
    PyException,
    "Base class of every error raised by Strata."
);
create_exception!(
    strata,
    ConflictError,
    StrataError,
    "Someone else changed what the operation relied on: a remote branch moved, a key exists, \
     a merge stopped on conflicting rows."
);
create_exception!(
    strata,
    NotFoundError,
    StrataError,
    "What was named does not exist: a table, a revision, a repository, a remote."
);
create_exception!(
    strata,
    AlreadyExistsError,
    StrataError,
    "What was to be created exists already: a table, a branch, a tag, a repository."
);
create_exception!(
    strata,
    CorruptError,
    StrataError,
    "Stored data is damaged or missing."
);
create_exception!(
    strata,
    InvalidInputError,
    StrataError,
    "The input is not acceptable: data, a name, an option, a revision."
);
create_exception!(
    strata,
    InvalidStateError,
    StrataError,
    "The repository's state does not allow the operation now: uncommitted changes, a merge in \
     progress, nothing to commit."
);
create_exception!(
    strata,
    UnavailableError,
    StrataError,
    "The storage could not be reached, or is busy; trying again later may work."
);
create_exception!(
    strata,
    PermissionDeniedError,
    StrataError,
    "The storage refused the credentials or the access."
);
create_exception!(
    strata,
    UnsupportedError,
    StrataError,
    "Data or a store this version cannot use: a newer format, a column type, a store without \
     conditional writes."
);
create_exception!(
    strata,
    StrataIOError,
    StrataError,
    "A local file or folder could not be read or written."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("StrataError", py.get_type::<StrataError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("AlreadyExistsError", py.get_type::<AlreadyExistsError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("InvalidStateError", py.get_type::<InvalidStateError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add(
        "PermissionDeniedError",
        py.get_type::<PermissionDeniedError>(),
    )?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("StrataIOError", py.get_type::<StrataIOError>())?;
    Ok(())
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Conflict => "conflict",
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::Corrupt => "corrupt",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::InvalidState => "invalid_state",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Io => "io",
        _ => "other",
    }
}

/// What to do about a common storage failure.
fn storage(fault: StorageFault) -> &'static str {
    match fault {
        StorageFault::NoSuchBucket => {
            "the bucket does not exist: create it, or fix the bucket name in the remote URL"
        }
        StorageFault::BadCredentials => {
            "the credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (or AWS_PROFILE)"
        }
        StorageFault::PermissionDenied => {
            "permission denied: these credentials may not read or write this bucket and prefix"
        }
        StorageFault::UnknownHost => {
            "unknown host: check the endpoint (AWS_ENDPOINT_URL, or storage_options={'endpoint': ...}) and the bucket name"
        }
        StorageFault::Unreachable => {
            "cannot reach the storage endpoint: is the server running, and is the endpoint right (AWS_ENDPOINT_URL, or storage_options={'endpoint': ..., 'allow_http': 'true'} for http://)?"
        }
        _ => "the storage failed",
    }
}

/// A suggestion in Python's terms.
pub fn advice(s: &Suggestion) -> String {
    match s {
        Suggestion::Init => "create one with strata.init(path)".into(),
        Suggestion::RepairObjects => "`strata fsck --repair` (with --remote NAME for a remote's object) writes it again from an intact copy".into(),
        Suggestion::CheckRefRecords => "`strata fsck` (with --remote NAME for a remote) says what to do".into(),
        Suggestion::ListTables => "repo.tables() lists the tables".into(),
        Suggestion::ListBranches => "repo.branches() lists the branches".into(),
        Suggestion::ListTags => "repo.tags() lists the tags".into(),
        Suggestion::ChooseImportMode => "write with mode='append', 'upsert' or 'replace' to change it".into(),
        Suggestion::Upsert => "write with mode='upsert' to overwrite it".into(),
        Suggestion::RevisionSyntax => "give a branch, tag, commit id, HEAD, REV~N or REV^".into(),
        Suggestion::CommitOrDiscard => "commit them first with repo.commit(message), or discard them with repo.reset_hard('HEAD')".into(),
        Suggestion::CheckoutAnother => "check out another branch first".into(),
        Suggestion::AddRemote { name } => format!("add one with repo.add_remote('{name}', url)"),
        Suggestion::PullThenPush => "run repo.pull() to combine them, then push again".into(),
        Suggestion::FetchThenPush => "run repo.fetch() and check, then push again".into(),
        Suggestion::ForceTag => "push with force=True to replace it".into(),
        Suggestion::SafeStore => "use a store that does (S3, MinIO, Ceph, GCS, Azure, a local folder), or accept the risk with storage_options={'allow_unsafe_store': 'true'}".into(),
        Suggestion::WaitForGc { remote } => format!(
            "wait for it to finish. If it was interrupted, run `strata gc --remote {remote}` in the repository that started it, or `strata gc --remote {remote} --break-lock` if you are sure it is not running"
        ),
        Suggestion::ResolveConflicts { pull } => format!(
            "see them with repo.conflicts(), resolve them with repo.resolve_conflicts('ours' or 'theirs') (or write or delete the rows), then repo.commit(message){}; repo.merge_abort() undoes the merge",
            if *pull { " and push" } else { "" }
        ),
        Suggestion::FinishOrAbortMerge => "finish it with repo.commit(message) or undo it with repo.merge_abort()".into(),
        Suggestion::SeeProblems => "each problem of the report says what to do".into(),
        Suggestion::ResolveOrAbort => "resolve them with repo.resolve_conflicts('ours' or 'theirs') (or write or delete the rows), or undo the merge with repo.merge_abort()".into(),
        Suggestion::MergeWithoutFfOnly => "merge without ff_only=True".into(),
        Suggestion::GiveMessage => "give the commit a message".into(),
        Suggestion::CreateTable => "write with mode='create' (and primary_key=...) to create it".into(),
        Suggestion::GiveKey => "name its key columns with primary_key=...".into(),
        Suggestion::GiveFormat => "say which format the file is in (csv, parquet or jsonl)".into(),
        Suggestion::RetryLater => "try again when the other command has finished".into(),
        Suggestion::FreeSpace => "free some space on that disk, then try again (what was stored before is intact)".into(),
        Suggestion::CheckUrlOrCreate => "check the URL; to make a new repository there, push with create=True".into(),
        Suggestion::ForceDeleteBranch => "merge it first, or delete it anyway with force=True".into(),
        Suggestion::RemountOrAllow => "or, knowing that pushes may then go unseen for up to a minute, accept it for this remote with options={'allow_network_fs': 'true'}".into(),
        Suggestion::GiveColumnType { column, keeps: Some(keeps) } => format!("fix the value, or give the column's type: types={{'{column}': '{keeps}'}} keeps every value as written"),
        Suggestion::GiveColumnType { .. } => "fix the value to suit the column's type".into(),
        Suggestion::FixValueOrChooseType { .. } => "fix that row first (write it with mode='upsert'), or choose a type that holds every value".into(),
        Suggestion::ListRemoteTables { .. } => "remote.tables() lists its tables".into(),
        Suggestion::RemoteRevisionSyntax { .. } => "give a branch, tag or commit id of the remote, with ~N or ^N if needed; remote.branches(), remote.tags() and remote.log(all=True) list them".into(),
        _ => "see help(strata)".into(),
    }
}

/// The Python exception for a library error.
pub fn to_py(e: strata::Error) -> PyErr {
    let kind = e.kind();
    let (message, advice) = match e.storage_fault() {
        Some((fault, location)) => (
            format!("{} (while accessing {location})", storage(fault)),
            None,
        ),
        None => (format!("{e:#}"), e.suggestion().map(|s| advice(&s))),
    };
    let text = match &advice {
        Some(a) => format!("{message}; {a}"),
        None => message,
    };
    let err = match kind {
        ErrorKind::Conflict => ConflictError::new_err(text),
        ErrorKind::NotFound => NotFoundError::new_err(text),
        ErrorKind::AlreadyExists => AlreadyExistsError::new_err(text),
        ErrorKind::Corrupt => CorruptError::new_err(text),
        ErrorKind::InvalidInput => InvalidInputError::new_err(text),
        ErrorKind::InvalidState => InvalidStateError::new_err(text),
        ErrorKind::Unavailable => UnavailableError::new_err(text),
        ErrorKind::PermissionDenied => PermissionDeniedError::new_err(text),
        ErrorKind::Unsupported => UnsupportedError::new_err(text),
        ErrorKind::Io => StrataIOError::new_err(text),
        _ => StrataError::new_err(text),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Best effort: the exception is raised whether or not its attributes could be set.
        let _ = value.setattr("kind", kind_name(kind));
        let _ = value.setattr("advice", advice);
    });
    err
}

/// An input error raised by this module itself (not the library).
pub fn invalid(message: impl Into<String>) -> PyErr {
    let err = InvalidInputError::new_err(message.into());
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("kind", "invalid_input");
        let _ = value.setattr("advice", None::<String>);
    });
    err
}

/// Converts library results.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for strata::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
