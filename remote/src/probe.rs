//! The capability probe: before trusting a store, check for real that it gives what the
//! protocol relies on (the guarantees listed in `strata_engine::store`): create-only writes
//! that exactly one of many racing writers wins and that never overwrite, and listings that
//! show a new key at once and a deleted key no more. A store that fails is refused (fail
//! closed).
//!
//! One round cannot prove atomicity (a store that is only sometimes atomic can pass it), so
//! the probe races several rounds of many writers; a store that ever lets two win is refused.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStore;
use strata_engine::store::{self, Created};

use crate::error::{Error, Result};

/// Racing writers in one probe round.
const WRITERS: usize = 8;
/// Rounds of racing writers.
const ROUNDS: usize = 3;

/// Checks that `store` can be trusted. `url` names it in errors; `nonce` makes the probe's
/// keys unique.
pub async fn probe(store: &Arc<dyn ObjectStore>, url: &str, nonce: &str) -> Result<()> {
    let outcome = run(store, url, nonce).await;
    for round in 0..ROUNDS {
        let key = key_of(nonce, round);
        if let Err(e) = store::delete_opt(store, &key).await {
            tracing::debug!(%key, error = %e, "could not remove a probe key");
        }
    }
    outcome
}

/// The key of one round's race: flat under `probe/`, so that nothing is left behind once it
/// is deleted (a folder store keeps empty folders).
fn key_of(nonce: &str, round: usize) -> Path {
    Path::from(format!("probe/{nonce}-{round}"))
}

async fn run(store: &Arc<dyn ObjectStore>, url: &str, nonce: &str) -> Result<()> {
    let dir = Path::from("probe");
    let dir = &dir;
    let unsafe_store = |detail: String| Error::UnsafeStore {
        url: url.to_string(),
        detail,
    };
    for round in 0..ROUNDS {
        let key = key_of(nonce, round);
        // 1. Writers race to create one key: exactly one may win, and the key then holds
        //    that writer's bytes.
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let key = key.clone();
            let bytes = Bytes::from(format!("round {round} writer {w}"));
            tasks.push(tokio::spawn(async move {
                (bytes.clone(), store::create(&store, &key, bytes).await)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (bytes, outcome) = t
                .await
                .map_err(|e| Error::Invalid(format!("probe task failed: {e}")))?;
            match outcome {
                Ok(Created::Created) => winners.push(bytes),
                Ok(Created::Unclear(e)) if store::refused_as_existing(&e) => {}
                Ok(Created::Unclear(e)) => return Err(e.into()),
                Err(e) if store::not_implemented(&e) => {
                    return Err(unsafe_store(
                        "it does not support create-only (If-None-Match) writes".into(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if winners.len() != 1 {
            return Err(unsafe_store(format!(
                "{} of {WRITERS} racing create-only writes of one key succeeded; exactly one must",
                winners.len()
            )));
        }
        match store::get_opt(store, &key).await? {
            Some(b) if b == winners[0] => {}
            _ => {
                return Err(unsafe_store(
                    "after racing create-only writes the key holds another writer's bytes than the one that won"
                        .into(),
                ))
            }
        }
        // 2. A create of a key that exists must fail, and leave it as it was.
        if let Created::Created = store::create(store, &key, Bytes::from_static(b"late")).await? {
            return Err(unsafe_store(
                "a create-only write overwrote an existing key".into(),
            ));
        }
        // 3. Listings show what was just written.
        let listed = store::list_all(store, dir).await?;
        if !listed.iter().any(|m| m.location == key) {
            return Err(unsafe_store(
                "a listing right after a write does not show the new key (stale listings, as on a network filesystem with attribute caching)".into(),
            ));
        }
    }
    // 4. ... and no longer show what was just deleted.
    let gone = key_of(nonce, 0);
    store::delete_opt(store, &gone).await?;
    if store::list_all(store, dir)
        .await?
        .iter()
        .any(|m| m.location == gone)
    {
        return Err(unsafe_store(
            "a listing right after a delete still shows the deleted key (stale listings)".into(),
        ));
    }
    Ok(())
}
