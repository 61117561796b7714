//! The storage layer: one object-key layout, immutable content-addressed objects, and
//! per-ref logs of immutable numbered records. Everything is written through `object_store`,
//! so a local repository and a remote differ only in which `ObjectStore` they use.

pub mod layout;
pub mod objects;
pub mod refs;

pub use objects::{ObjectKind, Objects};
pub use refs::{RefKind, RefLog, RefName, RefRecord, RefState};

use object_store::path::Path;

use crate::error::Error;

/// Maps an `object_store` error at `path` into the engine's error. `NotFound` is handled
/// by the callers that expect it; everything else is a storage error naming the key.
pub(crate) fn storage_error(path: &Path, source: object_store::Error) -> Error {
    Error::Storage {
        path: path.to_string(),
        source,
    }
}

/// Every key under `prefix` (all pages of the listing).
pub(crate) async fn list_all(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: &Path,
) -> Result<Vec<object_store::ObjectMeta>, Error> {
    use futures::TryStreamExt;
    store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| storage_error(prefix, e))
}

/// Options of a create-only put: the write fails if the key exists. Every immutable write and
/// every ref compare-and-swap of the protocol uses it.
pub fn create_only() -> object_store::PutOptions {
    object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    }
}
