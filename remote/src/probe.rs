//! The capability probe: before trusting a store, check for real that it enforces the
//! create-only writes the ref protocol relies on. A store that lets two writers create the
//! same key, or lets a create overwrite an existing key, is refused (fail closed).

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_engine::store::create_only;

use crate::error::{Error, Result};

/// Racing writers in one probe round.
const WRITERS: usize = 4;

/// Checks that `store` enforces create-only puts. `url` names it in errors.
pub async fn probe(store: &Arc<dyn ObjectStore>, url: &str, nonce: &str) -> Result<()> {
    let unsafe_store = |detail: String| Error::UnsafeStore {
        url: url.to_string(),
        detail,
    };
    let key = Path::from(format!("probe/{nonce}"));
    // 1. Writers race to create one key: exactly one may win.
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .put_opts(
                    &key,
                    PutPayload::from(format!("writer {w}").into_bytes()),
                    create_only(),
                )
                .await
        }));
    }
    let mut winners = 0;
    let mut failure = None;
    for t in tasks {
        match t
            .await
            .map_err(|e| Error::Invalid(format!("probe task failed: {e}")))?
        {
            Ok(_) => winners += 1,
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(object_store::Error::NotImplemented { .. }) => {
                failure = Some("it does not support create-only (If-None-Match) writes".to_string())
            }
            Err(e) => {
                cleanup(store, &key).await;
                return Err(Error::Engine(strata_engine::Error::Storage {
                    path: format!("{url}/{key}"),
                    source: e,
                }));
            }
        }
    }
    // 2. A create of a key that exists must fail.
    let again = store
        .put_opts(&key, PutPayload::from_static(b"late writer"), create_only())
        .await;
    cleanup(store, &key).await;
    if let Some(f) = failure {
        return Err(unsafe_store(f));
    }
    if winners != 1 {
        return Err(unsafe_store(format!(
            "{winners} of {WRITERS} racing create-only writes of one key succeeded; exactly one must"
        )));
    }
    if again.is_ok() {
        return Err(unsafe_store(
            "a create-only write overwrote an existing key".into(),
        ));
    }
    Ok(())
}

async fn cleanup(store: &Arc<dyn ObjectStore>, key: &Path) {
    if let Err(e) = store.delete(key).await {
        tracing::debug!(%key, error = %e, "could not remove the probe key");
    }
}
