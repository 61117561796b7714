//! Refs as logs of immutable, numbered records (the ref protocol of docs/protocol.md).
//!
//! 1. A ref `refs/heads/main` is a folder of records `00000000000000000001`, `...2`, ...
//!    Each record names the commit (or none: the ref is deleted), the number of the record it
//!    replaces, the id of the writer and a fresh nonce.
//! 2. Moving a ref from the record `n` it was read at means creating record `n + 1` with a
//!    create-only put. Exactly one writer can create a given number, on every backend that
//!    honours `PutMode::Create` (local directory, S3, GCS, Azure, memory).
//! 3. Numbers only grow and records are never rewritten; a deleted ref is a record with no
//!    commit, so re-creating it continues the numbering. A stale writer therefore can never
//!    win with an old number: there is no ABA.
//! 4. The newest record is found in O(1) requests: `latest` holds a copy of a recent record
//!    (an advisory hint, never trusted alone); the reader then asks for `n + 1`, `n + 2`, ...
//!    until one is missing. Normally that is one GET and one HEAD.
//! 5. An ambiguous outcome (an error or a retried write that reports "already exists") is
//!    resolved by reading record `n + 1` back and comparing writer id and nonce.

use std::fmt;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::names::validate_name;
use crate::store::objects::{check_format, encode_json};
use crate::store::{layout, storage_error};

/// Ref record format understood by this build.
pub const REF_FORMAT: u32 = 1;

/// How often an ambiguous ref write is re-tried before giving up.
const MAX_AMBIGUOUS_RETRIES: usize = 3;

/// Branches and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    Branch,
    Tag,
}

impl RefKind {
    pub fn dir(self) -> &'static str {
        match self {
            RefKind::Branch => "heads",
            RefKind::Tag => "tags",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }
}

/// A validated ref name: kind plus a flat name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName {
    pub kind: RefKind,
    pub name: String,
}

impl RefName {
    pub fn new(kind: RefKind, name: &str) -> Result<Self> {
        validate_name(kind.noun(), name)?;
        Ok(RefName {
            kind,
            name: name.to_string(),
        })
    }

    pub fn branch(name: &str) -> Result<Self> {
        Self::new(RefKind::Branch, name)
    }

    pub fn tag(name: &str) -> Result<Self> {
        Self::new(RefKind::Tag, name)
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refs/{}/{}", self.kind.dir(), self.name)
    }
}

/// One immutable record of a ref log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    pub format: u32,
    /// `refs/heads/main`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub seq: u64,
    /// The commit the ref points at; `None` once the ref is deleted.
    pub commit: Option<ObjectId>,
    /// The record this one replaces (0: none).
    pub prev: u64,
    pub writer: String,
    pub nonce: String,
    /// Seconds since the Unix epoch, for people; never used for ordering.
    pub time: i64,
}

/// What a read found: the newest record number (0 when the ref never existed) and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    pub name: RefName,
    pub seq: u64,
    pub record: Option<RefRecord>,
}

impl RefState {
    pub fn commit(&self) -> Option<ObjectId> {
        self.record.as_ref().and_then(|r| r.commit)
    }
}

/// Reads and moves refs in one store.
#[derive(Clone, Debug)]
pub struct RefLog {
    store: Arc<dyn ObjectStore>,
    writer: String,
}

fn describe(commit: Option<ObjectId>) -> String {
    commit.map_or_else(|| "nothing".to_string(), |c| c.short())
}

impl RefLog {
    /// `writer` identifies this process in the records it writes.
    pub fn new(store: Arc<dyn ObjectStore>, writer: impl Into<String>) -> Self {
        RefLog {
            store,
            writer: writer.into(),
        }
    }

    /// The writer id this log puts in the records it writes.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    async fn get_record(&self, path: &Path) -> Result<Option<RefRecord>> {
        let bytes = match self.store.get(path).await {
            Ok(r) => r.bytes().await.map_err(|e| storage_error(path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(path, e)),
        };
        let rec: RefRecord = serde_json::from_slice(&bytes).map_err(|e| Error::CorruptObject {
            id: path.to_string(),
            reason: format!("the ref record does not decode: {e}"),
        })?;
        check_format(&format!("ref record {path}"), rec.format, REF_FORMAT)?;
        Ok(Some(rec))
    }

    async fn record_exists(&self, path: &Path) -> Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error(path, e)),
        }
    }

    /// The highest record number present, by listing (used only when the hint is missing).
    async fn max_listed_seq(&self, name: &RefName) -> Result<u64> {
        let dir = layout::ref_dir(name.kind, &name.name);
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| storage_error(&dir, e))?;
        Ok(listing
            .objects
            .iter()
            .filter_map(|o| o.location.filename().and_then(layout::parse_record_seq))
            .max()
            .unwrap_or(0))
    }

    /// Reads the newest record of a ref, from storage, every time.
    pub async fn read(&self, name: &RefName) -> Result<RefState> {
        let hint_path = layout::ref_hint(name.kind, &name.name);
        // A hint that does not decode is ignored: it is only a starting point.
        let hint = self.get_record(&hint_path).await.unwrap_or(None);
        let (start, mut record) = match hint {
            Some(h) if h.ref_name == name.to_string() => (h.seq, Some(h)),
            _ => (self.max_listed_seq(name).await?, None),
        };
        let mut seq = start;
        loop {
            let next = layout::ref_record(name.kind, &name.name, seq + 1);
            if self.record_exists(&next).await? {
                seq += 1;
            } else {
                break;
            }
        }
        if seq > 0 && (seq != start || record.is_none()) {
            let path = layout::ref_record(name.kind, &name.name, seq);
            record = self.get_record(&path).await?;
            if record.is_none() {
                return Err(Error::Invalid(format!(
                    "ref record {path} vanished while being read; retry"
                )));
            }
        }
        Ok(RefState {
            name: name.clone(),
            seq,
            record,
        })
    }

    /// Lists the refs of one kind that currently point at a commit.
    pub async fn list(&self, kind: RefKind) -> Result<Vec<(String, ObjectId)>> {
        let dir = layout::refs_dir(kind);
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| storage_error(&dir, e))?;
        let mut out = Vec::new();
        for prefix in listing.common_prefixes {
            let Some(name) = prefix.filename() else {
                continue;
            };
            let Ok(ref_name) = RefName::new(kind, name) else {
                continue;
            };
            if let Some(commit) = self.read(&ref_name).await?.commit() {
                out.push((ref_name.name, commit));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Moves a ref from the state `expected` (as read) to `new` (`None` deletes it).
    /// Fails with [`Error::RefConflict`] when anyone else moved it since `expected` was read.
    pub async fn update(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
    ) -> Result<RefState> {
        let name = &expected.name;
        let seq = expected.seq + 1;
        let record = RefRecord {
            format: REF_FORMAT,
            ref_name: name.to_string(),
            seq,
            commit: new,
            prev: expected.seq,
            writer: self.writer.clone(),
            nonce: uuid::Uuid::new_v4().to_string(),
            time,
        };
        let bytes = encode_json(&record)?;
        let path = layout::ref_record(name.kind, &name.name, seq);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let outcome = self
                .store
                .put_opts(&path, PutPayload::from_bytes(bytes.clone()), opts)
                .await;
            match outcome {
                Ok(_) => break,
                Err(e) => {
                    // "Already exists" may be our own write that landed before a retry; any
                    // other error leaves the outcome unknown. Either way: read it back.
                    let exists = matches!(e, object_store::Error::AlreadyExists { .. });
                    tracing::debug!(%path, attempt, error = %e, "ref write outcome unclear; reading it back");
                    match self.get_record(&path).await {
                        Ok(Some(found)) if found.nonce == record.nonce => break,
                        Ok(Some(found)) => {
                            return Err(Error::RefConflict {
                                name: name.to_string(),
                                expected: describe(expected.commit()),
                                actual: describe(found.commit),
                            })
                        }
                        Ok(None) if !exists && attempt < MAX_AMBIGUOUS_RETRIES => continue,
                        Ok(None) | Err(_) => return Err(storage_error(&path, e)),
                    }
                }
            }
        }
        // The hint is advisory: failing to write it costs readers a few requests, nothing more.
        let hint = layout::ref_hint(name.kind, &name.name);
        if let Err(e) = self.store.put(&hint, PutPayload::from_bytes(bytes)).await {
            tracing::warn!(%hint, error = %e, "could not update the ref hint");
        }
        Ok(RefState {
            name: name.clone(),
            seq,
            record: Some(record),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_ref_moves_only_from_the_state_it_was_read_at() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = RefLog::new(store.clone(), "a");
        let b = RefLog::new(store.clone(), "b");
        let name = RefName::branch("main").expect("name");
        let c1 = ObjectId::of(b"1");
        let c2 = ObjectId::of(b"2");
        let s0 = a.read(&name).await.expect("read");
        assert_eq!(s0.seq, 0);
        let s1 = a.update(&s0, Some(c1), 0).await.expect("first write");
        assert_eq!(b.read(&name).await.expect("read").commit(), Some(c1));
        let err = b.update(&s0, Some(c2), 0).await.expect_err("stale write");
        assert!(err.is_conflict());
        let s2 = b.update(&s1, None, 0).await.expect("delete");
        assert_eq!(a.read(&name).await.expect("read").commit(), None);
        // Re-creating continues the numbering: the stale state s1 can never win again.
        b.update(&s2, Some(c1), 0).await.expect("re-create");
        assert!(a
            .update(&s1, Some(c2), 0)
            .await
            .expect_err("aba")
            .is_conflict());
        assert_eq!(a.read(&name).await.expect("read").seq, 3);
    }

    #[tokio::test]
    async fn a_missing_or_stale_hint_still_finds_the_newest_record() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let log = RefLog::new(store.clone(), "w");
        let name = RefName::branch("main").expect("name");
        let mut state = log.read(&name).await.expect("read");
        for i in 0..5u8 {
            state = log
                .update(&state, Some(ObjectId::of(&[i])), 0)
                .await
                .expect("update");
        }
        let hint = layout::ref_hint(name.kind, &name.name);
        let old = store
            .get(&layout::ref_record(name.kind, &name.name, 2))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        store.put(&hint, old.into()).await.expect("stale hint");
        assert_eq!(log.read(&name).await.expect("read").seq, 5);
        store.delete(&hint).await.expect("delete hint");
        let read = log.read(&name).await.expect("read");
        assert_eq!(read.seq, 5);
        assert_eq!(read.commit(), Some(ObjectId::of(&[4])));
    }
}
