//! Pushes waiting to land (docs/protocol.md, section 6, "Waiting pushes").
//!
//! A push whose branch moved on the remote leaves a note under
//! `waiting/heads/<branch>/`: its commit, fully uploaded, waiting to be merged. The writer
//! whose note is first in the folder merges the waiting commits into the branch, one merge
//! each, and moves the branch by the usual compare-and-swap; the others see their notes
//! removed and their commits in the branch's history. A note is only a hint: it never moves a
//! ref, and a lost, stale or duplicated note costs time, never a commit.

use std::time::Duration;

use object_store::path::Path;
use serde::{Deserialize, Serialize};
use strata_engine::store::objects::encode_json;
use strata_engine::store::{self, Created};
use strata_engine::ObjectId;

use crate::error::Result;
use crate::remote::Remote;

/// The format of a note.
pub const WAITING_FORMAT: u32 = 1;

/// Notes older than this (by the store's clock against this machine's) are neither merged nor
/// waited for: their writer has given up or crashed. A garbage collection removes them.
pub const MAX_AGE: Duration = Duration::from_secs(600);

use strata_engine::store::layout::waiting_dir as dir;

/// The folder of every note.
fn root() -> Path {
    Path::from(strata_engine::store::layout::WAITING_DIR)
}

/// A note's body (its name carries the same time and commit, so that a listing says all).
#[derive(Debug, Serialize, Deserialize)]
struct Note {
    format: u32,
    #[serde(rename = "ref")]
    name: String,
    commit: String,
    writer: String,
    time: i64,
}

/// A time by the store's clock.
pub type Time = chrono::DateTime<chrono::Utc>;

/// A push waiting to land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The note's key: `waiting/heads/<branch>/<millis:013>-<commit>-<nonce>`.
    pub path: Path,
    /// The commit to land (it and everything it reaches were uploaded before the note).
    pub commit: ObjectId,
    /// When the note was last written, by the store's clock (from a listing). The push whose
    /// turn it is writes its note again every [`HEARTBEAT`], so that the others can tell it
    /// is at work from one that stopped.
    pub modified: Option<Time>,
}

/// How often the push whose turn it is writes its note again.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Leaves a note that `commit` (uploaded already) waits to land on `branch`.
pub async fn enter(remote: &Remote, branch: &str, commit: ObjectId) -> Result<Waiting> {
    let millis = chrono::Utc::now().timestamp_millis().max(0);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let path = dir(branch).join(format!("{millis:013}-{}-{}", commit.to_hex(), &nonce[..12]));
    match store::create(&remote.store, &path, body(remote, branch, commit)?)
        .await
        .map_err(|e| remote.located(e))?
    {
        Created::Created => Ok(Waiting {
            path,
            commit,
            modified: None,
        }),
        // A fresh nonce: "already there" can only be this very write. Any other unclear
        // outcome leaves a note that may or may not be there; the caller finds out by
        // listing (a missing note only means it merges its commit itself).
        Created::Unclear(e) => {
            tracing::info!(note = %path, error = %e, "a waiting push's note may not be stored");
            Ok(Waiting {
                path,
                commit,
                modified: None,
            })
        }
    }
}

fn body(remote: &Remote, branch: &str, commit: ObjectId) -> Result<bytes::Bytes> {
    Ok(encode_json(&Note {
        format: WAITING_FORMAT,
        name: format!("refs/heads/{branch}"),
        commit: commit.to_hex(),
        writer: remote.refs.writer().to_string(),
        time: chrono::Utc::now().timestamp(),
    })?)
}

/// Writes a note again (its turn's heartbeat): its time in listings moves on.
pub async fn refresh(remote: &Remote, branch: &str, note: &Waiting) -> Result<()> {
    store::put(
        &remote.store,
        &note.path,
        body(remote, branch, note.commit)?,
    )
    .await
    .map_err(|e| remote.located(e))
}

/// The pushes waiting to land on `branch`, first come first (by name), without the stale.
pub async fn list(remote: &Remote, branch: &str) -> Result<Vec<Waiting>> {
    let listing = store::list_dir(&remote.store, &dir(branch))
        .await
        .map_err(|e| remote.located(e))?;
    let now = chrono::Utc::now();
    let mut out: Vec<Waiting> = listing
        .objects
        .into_iter()
        .filter(|m| {
            (now - m.last_modified)
                .to_std()
                .map_or(true, |age| age < MAX_AGE)
        })
        .filter_map(|m| {
            let commit = parse(m.location.filename()?)?;
            Some(Waiting {
                path: m.location,
                commit,
                modified: Some(m.last_modified),
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
    Ok(out)
}

/// The commit a note's file name carries; `None` for any other name.
fn parse(name: &str) -> Option<ObjectId> {
    let mut parts = name.split('-');
    let millis = parts.next()?;
    let commit = parts.next()?;
    let nonce = parts.next()?;
    if millis.len() != 13
        || !millis.bytes().all(|b| b.is_ascii_digit())
        || nonce.is_empty()
        || parts.next().is_some()
    {
        return None;
    }
    commit.parse().ok()
}

/// Removes a note (best effort: a note left behind costs a later push a wait, never a commit).
pub async fn withdraw(remote: &Remote, path: &Path) {
    if let Err(e) = store::delete_opt(&remote.store, path).await {
        tracing::warn!(note = %path, error = %e, "could not remove a waiting push's note");
    }
}

/// Removes notes older than `age` (a garbage collection's clean-up); returns how many.
pub async fn remove_stale(remote: &Remote, age: Duration) -> Result<u64> {
    let now = chrono::Utc::now();
    let mut removed = 0;
    for meta in store::list_all(&remote.store, &root())
        .await
        .map_err(|e| remote.located(e))?
    {
        let old = (now - meta.last_modified).to_std().is_ok_and(|a| a >= age);
        if old {
            store::delete_opt(&remote.store, &meta.location)
                .await
                .map_err(|e| remote.located(e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn remote() -> Remote {
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::memory::InMemory::new());
        Remote::from_store("origin", "memory://waiting", store, "writer-1")
    }

    fn id(n: u8) -> ObjectId {
        ObjectId::of(&[n])
    }

    #[tokio::test]
    async fn notes_list_first_come_first_and_withdraw() {
        let r = remote();
        let a = enter(&r, "main", id(1)).await.expect("enter");
        tokio::time::sleep(Duration::from_millis(3)).await;
        let b = enter(&r, "main", id(2)).await.expect("enter");
        enter(&r, "main/sub", id(3)).await.expect("enter");
        enter(&r, "other", id(4)).await.expect("enter");
        let paths = |l: Vec<Waiting>| l.into_iter().map(|w| w.path).collect::<Vec<_>>();
        let listed = list(&r, "main").await.expect("list");
        assert_eq!(
            paths(listed.clone()),
            vec![a.path.clone(), b.path.clone()],
            "only main's, oldest first"
        );
        assert_eq!(listed[1].commit, id(2));
        // A heartbeat moves the note's time on, and keeps its place.
        tokio::time::sleep(Duration::from_millis(3)).await;
        refresh(&r, "main", &a).await.expect("refresh");
        let again = list(&r, "main").await.expect("list");
        assert_eq!(again[0].path, a.path);
        assert!(again[0].modified > listed[0].modified);
        withdraw(&r, &a.path).await;
        withdraw(&r, &a.path).await;
        assert_eq!(paths(list(&r, "main").await.expect("list")), vec![b.path]);
        assert_eq!(
            list(&r, "main/sub").await.expect("list")[0].commit,
            id(3),
            "a branch with a slash has its own folder"
        );
        // Names that are not notes are ignored.
        store::put(&r.store, &dir("main").join("README"), "x".into())
            .await
            .expect("put");
        assert_eq!(list(&r, "main").await.expect("list").len(), 1);
        assert_eq!(remove_stale(&r, Duration::ZERO).await.expect("stale"), 4);
        assert!(list(&r, "main").await.expect("list").is_empty());
        assert_eq!(remove_stale(&r, MAX_AGE).await.expect("stale"), 0);
    }
}
