//! The storage layer: one object-key layout, immutable content-addressed objects, and logs
//! of immutable numbered records (refs, the remote's gc lock). Everything is written through
//! `object_store`, so a local repository and a remote differ only in which `ObjectStore`
//! they use.
//!
//! # What every backend must guarantee
//!
//! Strata relies on these properties of a store, and on nothing else (docs/protocol.md,
//! section 7). A store that lacks one is refused (the probe) or is unsafe to share.
//!
//! 1. **Create-only puts are exclusive.** Of any number of concurrent `PutMode::Create`
//!    requests for one key, at most one succeeds; the others fail, and a create of a key that
//!    exists fails. (Folders: hard links; S3 and compatibles: `If-None-Match: *`; GCS:
//!    `ifGenerationMatch=0`; Azure: `If-None-Match: *`.)
//! 2. **No half-written objects.** A reader sees either nothing or the whole object as
//!    written. (Folders: write to a temporary file, then link or rename it into place.)
//! 3. **Read-after-write consistency** of GET, HEAD, LIST and DELETE: once a write or delete
//!    returned, every later request by anyone sees it.
//! 4. **Durability on success.** A write that returned is stored; on a folder that means
//!    written and flushed to disk with its directory (`fsync` of both, or a `syncfs` of the
//!    file system: see [`folder`]), before Strata acknowledges anything built on it.
//!
//! A create-only put may fail in ways that do not say whether it happened: a timeout, a lost
//! response, a retried request that finds its own earlier write ("already exists"), or S3's
//! `409 ConditionalRequestConflict` (another request for the key in flight, which may still
//! fail). [`create`] reports those as [`Created::Unclear`]; callers settle them by reading
//! the key back, never by assuming.

pub mod folder;
pub mod layout;
pub mod log;
pub mod objects;
pub mod refs;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

pub use objects::{ObjectKind, Objects};
pub use refs::{RefKind, RefLog, RefName, RefRecord, RefState, TagNote};

use crate::error::{Error, ErrorKind, Result};

/// Maps an `object_store` error at `path` into the engine's error. `NotFound` is handled
/// by the functions below that expect it; everything else is a storage error naming the key.
pub(crate) fn storage_error(path: &Path, source: object_store::Error) -> Error {
    Error::Storage {
        path: path.to_string(),
        source,
    }
}

/// The kind of a storage failure.
pub(crate) fn storage_kind(e: &object_store::Error) -> ErrorKind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::Conflict,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorKind::Unsupported,
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => ErrorKind::InvalidInput,
        // A local folder reports a refused file operation as a generic error around the
        // operating system's.
        E::Generic { source, .. } if local_refusal(source.as_ref()) => ErrorKind::PermissionDenied,
        _ => ErrorKind::Unavailable,
    }
}

/// Whether an error's chain holds an operating-system refusal that no retry changes: no
/// permission, or a read-only file system.
fn local_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) {
                return true;
            }
        }
        next = err.source();
    }
    false
}

/// Options of a create-only put: the write fails if the key exists. Every immutable write and
/// every record of a numbered log uses it.
pub fn create_only() -> object_store::PutOptions {
    object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    }
}

/// The bytes stored at `path`, or `None` when nothing is.
pub async fn get_opt(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<Bytes>> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await.map_err(|e| storage_error(path, e))?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(storage_error(path, e)),
    }
}

/// What is stored at `path` (size, time), or `None` when nothing is.
pub async fn head_opt(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<ObjectMeta>> {
    match store.head(path).await {
        Ok(m) => Ok(Some(m)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(storage_error(path, e)),
    }
}

/// Writes `bytes` at `path`, replacing what is there (mutable files: hints, leases, local
/// state).
pub async fn put(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Bytes) -> Result<()> {
    store
        .put(path, PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|e| storage_error(path, e))
}

/// Deletes `path`; nothing there is fine.
pub async fn delete_opt(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(storage_error(path, e)),
    }
}

/// What a create-only put came to.
#[derive(Debug)]
pub enum Created {
    /// This request created the key.
    Created,
    /// The outcome is not known: the key existed already, another request for it was in
    /// flight, the response was lost, or the request failed in a way that may have been
    /// applied. Read the key back to know.
    Unclear(Error),
}

/// Creates `path` with `bytes` unless it exists (create-only). Errors that certainly left
/// the store unchanged (permission, unsupported, invalid path) are returned as errors; any
/// other failure is [`Created::Unclear`].
pub async fn create(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Bytes) -> Result<Created> {
    match store
        .put_opts(path, PutPayload::from_bytes(bytes), create_only())
        .await
    {
        Ok(_) => Ok(Created::Created),
        Err(e) => match storage_kind(&e) {
            ErrorKind::PermissionDenied | ErrorKind::Unsupported | ErrorKind::InvalidInput => {
                Err(storage_error(path, e))
            }
            _ => Ok(Created::Unclear(storage_error(path, e))),
        },
    }
}

/// Whether a create-only put was refused because the key exists (rather than failing in
/// some other way). Only the probe needs the difference; everything else reads back.
pub fn refused_as_existing(e: &Error) -> bool {
    matches!(
        e,
        Error::Storage {
            source: object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ..
        }
    )
}

/// Whether the store does not implement create-only puts at all.
pub fn not_implemented(e: &Error) -> bool {
    matches!(
        e,
        Error::Storage {
            source: object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ..
        }
    )
}

/// Every key under `prefix` (all pages of the listing).
pub async fn list_all(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<ObjectMeta>> {
    store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| storage_error(prefix, e))
}

/// The keys under `prefix` after `offset` (in key order).
pub async fn list_after(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    offset: &Path,
) -> Result<Vec<ObjectMeta>> {
    store
        .list_with_offset(Some(prefix), offset)
        .try_collect()
        .await
        .map_err(|e| storage_error(prefix, e))
}

/// The files directly in `dir`, and its sub-folders.
pub async fn list_dir(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
) -> Result<object_store::ListResult> {
    store
        .list_with_delimiter(Some(dir))
        .await
        .map_err(|e| storage_error(dir, e))
}

/// Whether the store holds nothing at all (under its prefix).
pub async fn is_empty(store: &Arc<dyn ObjectStore>) -> Result<bool> {
    use futures::StreamExt;
    let mut listing = store.list(None);
    match listing.next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(storage_error(&Path::from(""), e)),
    }
}

/// A folder on the local disk as a store: writes are flushed to disk, with their directory,
/// before they return (so nothing acknowledged is lost on a power failure), and create-only
/// puts are atomic (hard links). Concurrent writes share flushes where the file system
/// allows it (see [`folder`]).
pub fn local_folder(dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>> {
    let fs = folder::Folder::new(dir, folder::Flush::Shared)
        .map_err(|e| storage_error(&Path::from(dir.display().to_string()), e))?;
    Ok(Arc::new(fs))
}

/// The folder `dir` as a store whose writes are not flushed to disk: for advisory files only
/// (a ref's `latest` hint), which a power failure may lose or leave cut short. Writes are
/// still whole or absent to readers (a temporary file renamed into place).
pub fn local_folder_unflushed(dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>> {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| storage_error(&Path::from(dir.display().to_string()), e))?;
    Ok(Arc::new(fs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_local_write_is_a_permission_error_not_an_unclear_outcome() {
        for kind in [
            std::io::ErrorKind::PermissionDenied,
            std::io::ErrorKind::ReadOnlyFilesystem,
        ] {
            let e = object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from(kind)),
            };
            assert_eq!(storage_kind(&e), ErrorKind::PermissionDenied, "{kind:?}");
        }
        let timeout = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        };
        assert_eq!(storage_kind(&timeout), ErrorKind::Unavailable);
    }
}
