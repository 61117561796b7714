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
        E::Generic { source, .. } => {
            local_condition(source.as_ref()).unwrap_or(ErrorKind::Unavailable)
        }
        _ => ErrorKind::Unavailable,
    }
}

/// The kinds of the operating-system errors in an error's chain, outermost first.
fn io_kinds<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = std::io::ErrorKind> + 'e {
    std::iter::successors(Some(e), |err| err.source())
        .filter_map(|err| err.downcast_ref::<std::io::Error>().map(|io| io.kind()))
}

/// The kind of an operating-system condition in an error's chain that no retry changes: no
/// permission or a read-only file system (refused), a full disk or quota (the local disk).
fn local_condition(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    use std::io::ErrorKind as Os;
    io_kinds(e).find_map(|kind| match kind {
        Os::PermissionDenied | Os::ReadOnlyFilesystem => Some(ErrorKind::PermissionDenied),
        Os::StorageFull | Os::QuotaExceeded => Some(ErrorKind::Io),
        _ => None,
    })
}

/// Whether an error's chain holds a full disk (or a full quota): a write failed for want of
/// space, which only freeing some changes.
pub fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    local_condition(e) == Some(ErrorKind::Io)
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
            // (A full local disk too: the folder store removes what it began to write.)
            ErrorKind::PermissionDenied
            | ErrorKind::Unsupported
            | ErrorKind::InvalidInput
            | ErrorKind::Io => Err(storage_error(path, e)),
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

    /// A full disk is the local disk's condition, not a store that may answer later: a
    /// create fails at once (no retries), and the error says the disk is full.
    #[tokio::test]
    async fn a_full_local_disk_fails_a_write_at_once_and_says_so() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::QuotaExceeded,
        ] {
            let full = || object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from(kind)),
            };
            assert_eq!(storage_kind(&full()), ErrorKind::Io, "{kind:?}");
            let err = storage_error(&Path::from("chunks/x"), full());
            assert!(disk_full(&err), "{kind:?}: {err}");
        }
        let timeout = storage_error(
            &Path::from("chunks/x"),
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            },
        );
        assert!(!disk_full(&timeout));

        // A store whose every put finds the disk full: one attempt, and the error.
        #[derive(Debug)]
        struct Full(
            object_store::memory::InMemory,
            std::sync::atomic::AtomicUsize,
        );
        impl std::fmt::Display for Full {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a full disk")
            }
        }
        #[async_trait::async_trait]
        impl ObjectStore for Full {
            async fn put_opts(
                &self,
                _: &Path,
                _: PutPayload,
                _: object_store::PutOptions,
            ) -> object_store::Result<object_store::PutResult> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                })
            }
            async fn put_multipart_opts(
                &self,
                location: &Path,
                opts: object_store::PutMultipartOptions,
            ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
                self.0.put_multipart_opts(location, opts).await
            }
            async fn get_opts(
                &self,
                location: &Path,
                options: object_store::GetOptions,
            ) -> object_store::Result<object_store::GetResult> {
                self.0.get_opts(location, options).await
            }
            fn delete_stream(
                &self,
                locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
            ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
                self.0.delete_stream(locations)
            }
            fn list(
                &self,
                prefix: Option<&Path>,
            ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
                self.0.list(prefix)
            }
            async fn list_with_delimiter(
                &self,
                prefix: Option<&Path>,
            ) -> object_store::Result<object_store::ListResult> {
                self.0.list_with_delimiter(prefix).await
            }
            async fn copy_opts(
                &self,
                from: &Path,
                to: &Path,
                options: object_store::CopyOptions,
            ) -> object_store::Result<()> {
                self.0.copy_opts(from, to, options).await
            }
        }
        let full = Arc::new(Full(Default::default(), Default::default()));
        let store: Arc<dyn ObjectStore> = full.clone();
        let objects = Objects::new(store, "a full disk");
        let err = objects
            .put(ObjectKind::Meta, Bytes::from_static(b"{}"))
            .await
            .expect_err("a full disk fails the write");
        assert!(disk_full(&err), "{err}");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert_eq!(
            full.1.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one attempt"
        );
    }
}
