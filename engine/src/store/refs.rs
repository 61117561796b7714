//! Refs as logs of immutable, numbered records (the ref protocol of docs/protocol.md).
//!
//! 1. A ref `refs/heads/main` is a folder of records `00000000000000000001`, `...2`, ...
//!    Each record names the commit (or none: the ref is deleted), the number of the record it
//!    replaces, the id of the writer and a fresh nonce.
//! 2. Moving a ref from the record `n` it was read at means creating record `n + 1` with a
//!    create-only put. Exactly one writer can create a given number, on every backend that
//!    honours `PutMode::Create` (local directory, S3, GCS, Azure, memory).
//! 3. Numbers only grow; a deleted ref is a record with no commit, so re-creating it continues
//!    the numbering. A stale writer therefore can never win with an old number: there is no ABA.
//! 4. The newest record is found in three requests: `latest` holds a copy of a recent record
//!    (an advisory hint: only its number is used), the reader lists the records from there,
//!    then reads the newest one listed.
//! 5. An ambiguous outcome (an error or a retried write that reports "already exists") is
//!    resolved by reading record `n + 1` back and comparing writer id and nonce.
//! 6. Old records are removed by compaction (garbage collection), which always keeps the
//!    newest record and every record a writer announced in a lease, so no number a writer
//!    may still try to create is ever freed again.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::names::validate_name;
use crate::retry::{Attempt, Retry};
use crate::store::log::{NumberedLog, Outcome};
use crate::store::objects::{check_format, encode_json};
use crate::store::{get_opt, layout, list_dir, put};

/// Ref record format understood by this build.
pub const REF_FORMAT: u32 = 1;

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

    /// Parses the full form `refs/heads/NAME` or `refs/tags/NAME`.
    pub fn parse(full: &str) -> Result<Self> {
        match full
            .split_once('/')
            .and_then(|(r, rest)| (r == "refs").then_some(rest))
        {
            Some(rest) => match rest.split_once('/') {
                Some(("heads", n)) => Self::branch(n),
                Some(("tags", n)) => Self::tag(n),
                _ => Err(Error::Invalid(format!(
                    "'{full}' is not a ref (refs/heads/NAME or refs/tags/NAME)"
                ))),
            },
            None => Err(Error::Invalid(format!(
                "'{full}' is not a ref (refs/heads/NAME or refs/tags/NAME)"
            ))),
        }
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
    /// Set on a fence record written by garbage collection run `gc` (the commit is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<String>,
    /// Why the ref moved, for people (`commit: MESSAGE`, `reset: moving to REV`): what
    /// `strata reflog` shows. Older records have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An annotated tag's note (`tag -a`): travels with the tag on push and fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<TagNote>,
}

/// What an annotated tag says besides its commit: who tagged, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagNote {
    /// `Name <email>`.
    pub tagger: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub message: String,
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

/// The write of a ref's `latest` hint (a copy of its newest record), after the record itself.
#[must_use = "the hint is written by `write`"]
pub struct HintWrite {
    store: Arc<dyn ObjectStore>,
    path: Path,
    bytes: bytes::Bytes,
}

impl HintWrite {
    /// Writes the hint. It is advisory: failing to write it costs readers a few requests,
    /// nothing more, so a failure is a warning.
    pub async fn write(self) {
        if let Err(e) = put(&self.store, &self.path, self.bytes).await {
            tracing::warn!(hint = %self.path, error = %e, "could not update the ref hint");
        }
    }
}

/// Reads and moves refs in one store.
#[derive(Clone, Debug)]
pub struct RefLog {
    store: Arc<dyn ObjectStore>,
    writer: String,
    /// The store's root, when it is a folder on this machine ([`RefLog::in_folder`]).
    folder: Option<std::path::PathBuf>,
    /// The store `latest` hints are written to: the log's own, or for a folder the same
    /// folder without flushing to disk (a hint is advisory; see [`RefLog::in_folder`]).
    hints: Arc<dyn ObjectStore>,
    /// The record numbers this process saw, to read a folder's refs from (see
    /// [`RefLog::remembering_newest`]).
    seen: Option<Arc<crate::store::log::SeenNewest>>,
}

/// Decodes a ref record (or a hint) stored at `path`.
fn decode_record(path: &Path, bytes: &[u8]) -> Result<RefRecord> {
    let rec: RefRecord = serde_json::from_slice(bytes).map_err(|e| Error::CorruptRef {
        path: path.to_string(),
        reason: format!("it does not decode: {e}"),
    })?;
    check_format(&format!("ref record {path}"), rec.format, REF_FORMAT)?;
    Ok(rec)
}

fn describe(commit: Option<ObjectId>) -> String {
    commit.map_or_else(|| "nothing".to_string(), |c| c.short())
}

impl RefLog {
    /// `writer` identifies this process in the records it writes.
    pub fn new(store: Arc<dyn ObjectStore>, writer: impl Into<String>) -> Self {
        RefLog {
            hints: store.clone(),
            store,
            writer: writer.into(),
            folder: None,
            seen: None,
        }
    }

    /// The same refs, each read in a folder from the newest record this process saw of it
    /// (the numbers after it read directly) rather than by listing its folder, while the
    /// process holds `lock`, the repository's lock, shared: no compaction runs meanwhile
    /// (see [`crate::store::log::SeenNewest`]).
    pub fn remembering_newest(mut self, lock: Arc<std::fs::File>) -> Self {
        self.seen = Some(Arc::new(crate::store::log::SeenNewest::new(lock)));
        self
    }

    /// Stops reading refs from the numbers this process saw: it is about to compact them.
    pub fn stop_remembering(&self) {
        if let Some(seen) = &self.seen {
            seen.stop();
        }
    }

    /// The same refs, in a store that is the folder `root` on this machine: logs are listed
    /// from the folder's file names ([`NumberedLog::in_folder`]), and `latest` hints are
    /// written without flushing them to disk. A hint that a power failure loses or cuts short
    /// costs the next read a longer listing, never a wrong answer (it is used only if it
    /// decodes, and only as where to start listing), so it need not wait for the disk as
    /// records and objects do.
    pub fn in_folder(mut self, root: std::path::PathBuf) -> Self {
        match crate::store::local_folder_unflushed(&root) {
            Ok(hints) => self.hints = hints,
            Err(e) => tracing::debug!(error = %e, "ref hints are written as records are"),
        }
        self.folder = Some(root);
        self
    }

    /// The store the log lives in.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The writer id this log puts in the records it writes.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The numbered log of one ref.
    fn log(&self, name: &RefName) -> NumberedLog {
        NumberedLog::new(self.store.clone(), layout::ref_dir(name.kind, &name.name))
            .in_folder(self.folder.clone())
            .remembering(self.seen.clone())
    }

    async fn get_record(&self, path: &Path) -> Result<Option<RefRecord>> {
        match get_opt(&self.store, path).await? {
            Some(bytes) => decode_record(path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the newest record of a ref, from storage, every time: the number in the
    /// `latest` hint (if it decodes and names this ref) says where to start listing; the
    /// newest record listed is then read itself. The hint's content is never used, and a
    /// folder on this machine ([`RefLog::in_folder`]) is listed without it.
    pub async fn read(&self, name: &RefName) -> Result<RefState> {
        // A hint that does not decode is ignored: it is only a starting point. A folder on
        // this machine is listed whole whatever the hint says, so its hint is not read.
        let hint = match self.folder {
            Some(_) => 0,
            None => match self
                .get_record(&layout::ref_hint(name.kind, &name.name))
                .await
            {
                Ok(Some(h)) if h.ref_name == name.to_string() => h.seq,
                _ => 0,
            },
        };
        let log = self.log(name);
        let Some((seq, bytes)) = log.newest(hint).await? else {
            return Ok(RefState {
                name: name.clone(),
                seq: 0,
                record: None,
            });
        };
        let path = log.record(seq);
        let r = decode_record(&path, &bytes)?;
        if r.seq == seq
            && r.ref_name != name.to_string()
            && r.ref_name.eq_ignore_ascii_case(&name.to_string())
        {
            // On a case-insensitive file system `Main` is `main`'s folder: that is another
            // ref, and this one does not exist (creating it is refused, see `write`).
            return Ok(RefState {
                name: name.clone(),
                seq: 0,
                record: None,
            });
        }
        if r.seq != seq || r.ref_name != name.to_string() {
            return Err(Error::CorruptRef {
                path: path.to_string(),
                reason: format!(
                    "the ref record says it is record {} of {}",
                    r.seq, r.ref_name
                ),
            });
        }
        Ok(RefState {
            name: name.clone(),
            seq,
            record: Some(r),
        })
    }

    /// The state of a ref whose newest record is damaged, from the error [`RefLog::read`]
    /// returned for it: that record's number, with no commit. Writing the next record over it
    /// (a forced update) is as safe as any update, since the write is create-only; the
    /// damaged record then becomes an old one, which compaction removes. Any other error is
    /// returned as it was.
    pub fn state_over_damage(name: &RefName, damage: Error) -> Result<RefState> {
        let Error::CorruptRef { path, .. } = &damage else {
            return Err(damage);
        };
        let path = Path::from(path.as_str());
        let seq = path
            .filename()
            .and_then(layout::parse_record_seq)
            .filter(|seq| *seq > 0 && path == layout::ref_record(name.kind, &name.name, *seq));
        match seq {
            Some(seq) => Ok(RefState {
                name: name.clone(),
                seq,
                record: None,
            }),
            None => Err(damage),
        }
    }

    /// Whether `state` is still the newest record (one LIST). A push checks this after
    /// announcing the record it will create: a record number that compaction removed before
    /// the announcement could otherwise be created again (docs/protocol.md, section 8).
    pub async fn is_current(&self, state: &RefState) -> Result<bool> {
        self.log(&state.name).is_newest(state.seq).await
    }

    /// The names of every ref of one kind with a log (deleted ones included).
    pub async fn names(&self, kind: RefKind) -> Result<Vec<RefName>> {
        let listing = list_dir(&self.store, &layout::refs_dir(kind)).await?;
        let mut out: Vec<RefName> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(|n| RefName::new(kind, n).ok()))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every record file of a ref, decoded (or the reason it does not decode), in order,
    /// and the keys in its folder that are neither records nor the hint. For `fsck`.
    pub async fn records(&self, name: &RefName) -> Result<RefFolder> {
        let dir = layout::ref_dir(name.kind, &name.name);
        let metas = self.log(name).keys().await?;
        let mut folder = RefFolder::default();
        for m in metas {
            let file = m.location.filename().unwrap_or_default().to_string();
            let nested = m
                .location
                .prefix_match(&dir)
                .is_some_and(|mut p| p.nth(1).is_some());
            if nested {
                folder.strays.push(m.location.to_string());
                continue;
            }
            let Some(seq) = layout::parse_record_seq(&file) else {
                if file == layout::HINT {
                    folder.hint = Some(self.get_record(&m.location).await.map(|_| ()));
                } else {
                    folder.strays.push(m.location.to_string());
                }
                continue;
            };
            let record = match self.get_record(&m.location).await {
                Ok(Some(r)) if r.seq != seq || r.ref_name != name.to_string() => {
                    Err(Error::CorruptRef {
                        path: m.location.to_string(),
                        reason: format!(
                            "the ref record says it is record {} of {}",
                            r.seq, r.ref_name
                        ),
                    })
                }
                Ok(Some(r)) if r.prev >= r.seq => Err(Error::CorruptRef {
                    path: m.location.to_string(),
                    reason: format!(
                        "the ref record replaces record {}, not an older one",
                        r.prev
                    ),
                }),
                Ok(Some(r)) => Ok(r),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            folder.records.push((seq, m.location.to_string(), record));
        }
        folder.records.sort_by_key(|(seq, _, _)| *seq);
        Ok(folder)
    }

    /// Lists the refs of one kind that currently point at a commit.
    pub async fn list(&self, kind: RefKind) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for name in self.names(kind).await? {
            if let Some(commit) = self.read(&name).await?.commit() {
                out.push((name.name, commit));
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
        self.write(expected, new, time, None, None, None).await
    }

    /// As [`RefLog::update`], recording why the ref moved (shown by `strata reflog`).
    pub async fn update_because(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
        reason: &str,
    ) -> Result<RefState> {
        self.write(expected, new, time, None, Some(reason.to_string()), None)
            .await
    }

    /// As [`RefLog::update_because`], leaving the ref's `latest` hint to the caller: the move
    /// is done when this returns, and the caller writes the hint while it does other work.
    pub async fn update_hint_later(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
        reason: &str,
    ) -> Result<(RefState, HintWrite)> {
        self.write_record(expected, new, time, None, Some(reason.to_string()), None)
            .await
    }

    /// As [`RefLog::update`], with why the ref moved and (for an annotated tag) its note.
    pub async fn update_noted(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
        reason: Option<&str>,
        note: Option<TagNote>,
    ) -> Result<RefState> {
        self.write(expected, new, time, None, reason.map(str::to_string), note)
            .await
    }

    /// Writes the record after `expected`, then the ref's hint; `gc` marks a garbage
    /// collection's fence.
    async fn write(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
        gc: Option<String>,
        reason: Option<String>,
        note: Option<TagNote>,
    ) -> Result<RefState> {
        let (state, hint) = self
            .write_record(expected, new, time, gc, reason, note)
            .await?;
        hint.write().await;
        Ok(state)
    }

    /// Writes the record after `expected`; returns the ref's new state and the write of its
    /// hint, still to do.
    async fn write_record(
        &self,
        expected: &RefState,
        new: Option<ObjectId>,
        time: i64,
        gc: Option<String>,
        reason: Option<String>,
        note: Option<TagNote>,
    ) -> Result<(RefState, HintWrite)> {
        let name = &expected.name;
        if expected.seq == 0 {
            self.refuse_case_twin(name).await?;
        }
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
            gc,
            reason,
            note,
        };
        let bytes = encode_json(&record)?;
        let log = self.log(name);
        if let Outcome::Lost(found) = log.create(seq, bytes.clone()).await? {
            let path = log.record(seq);
            let found = decode_record(&path, &found)?;
            return Err(match found.gc {
                Some(gc) => Error::Fenced {
                    name: name.to_string(),
                    gc,
                },
                None => Error::RefConflict {
                    name: name.to_string(),
                    expected: describe(expected.commit()),
                    actual: describe(found.commit),
                },
            });
        }
        let hint = HintWrite {
            store: self.hints.clone(),
            path: layout::ref_hint(name.kind, &name.name),
            bytes,
        };
        let state = RefState {
            name: name.clone(),
            seq,
            record: Some(record),
        };
        Ok((state, hint))
    }

    /// Refuses a new ref whose name differs only by case from an existing one: on a
    /// case-insensitive file system (macOS, Windows, SMB shares) the two would be one folder,
    /// and one ref's writes would land in the other's log.
    async fn refuse_case_twin(&self, name: &RefName) -> Result<()> {
        for other in self.names(name.kind).await? {
            if other.name != name.name && other.name.eq_ignore_ascii_case(&name.name) {
                let noun = name.kind.noun();
                return Err(Error::Invalid(format!(
                    "invalid {noun} name '{}': it differs only by case from the existing {noun} '{}' (on case-insensitive file systems the two would be one); choose another name",
                    name.name, other.name
                )));
            }
        }
        Ok(())
    }

    /// Makes sure record `seq` of `name` exists, creating fence records (same commit,
    /// marked with the garbage collection `gc`) up to it. A writer that announced it would
    /// create one of those numbers then fails with [`Error::Fenced`]. Returns how many fence
    /// records were written.
    pub async fn fence(&self, name: &RefName, seq: u64, gc: &str, time: i64) -> Result<u64> {
        let written = AtomicU64::new(0);
        Retry::at_once(64)
            .run(&format!("fencing {name}"), |_| {
                let written = &written;
                async move {
                    let state = self.read(name).await?;
                    if state.seq >= seq {
                        return Ok(Attempt::Done(written.load(Ordering::SeqCst)));
                    }
                    // A writer announces at most the two records after the one it read, and
                    // numbers never go down: anything further is not a real announcement.
                    if seq > state.seq + 2 {
                        return Err(Error::Invalid(format!(
                            "a lease announces record {seq} of {name}, which is at record {}; the lease is damaged",
                            state.seq
                        )));
                    }
                    match self
                        .write(
                            &state,
                            state.commit(),
                            time,
                            Some(gc.to_string()),
                            None,
                            state.record.as_ref().and_then(|r| r.note.clone()),
                        )
                        .await
                    {
                        Ok(_) => {
                            written.fetch_add(1, Ordering::SeqCst);
                            Ok(Attempt::Again("fenced one record".into()))
                        }
                        Err(e) if e.is_conflict() => Ok(Attempt::Again(e.to_string())),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Removes the records of `name` older than the newest, except the numbers in `pinned`
    /// (announced by writers that may still try to create them). Returns how many records
    /// were removed. The hint is then rewritten to the newest record.
    pub async fn compact(&self, name: &RefName, pinned: &BTreeSet<u64>) -> Result<u64> {
        let log = self.log(name);
        let Some(&newest) = log.seqs_after(0).await?.last() else {
            return Ok(0);
        };
        let removed = log.remove_below(newest, pinned).await?;
        if removed > 0 {
            if let Some(bytes) = log.get(newest).await? {
                put(&self.store, &layout::ref_hint(name.kind, &name.name), bytes).await?;
            }
        }
        Ok(removed)
    }
}

/// What `RefLog::records` found in one ref's folder.
#[derive(Debug, Default)]
pub struct RefFolder {
    /// (number, key, the decoded record or why it is malformed), in increasing order.
    pub records: Vec<(u64, String, Result<RefRecord>)>,
    /// Whether the hint decodes (`None`: there is no hint).
    pub hint: Option<Result<()>>,
    /// Keys that are neither records nor the hint.
    pub strays: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    /// The stored bytes of record `seq` of `name`.
    async fn record_bytes(store: &Arc<dyn ObjectStore>, name: &RefName, seq: u64) -> bytes::Bytes {
        store
            .get(&layout::ref_record(name.kind, &name.name, seq))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes")
    }

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
        let old = record_bytes(&store, &name, 2).await;
        store.put(&hint, old.into()).await.expect("stale hint");
        assert_eq!(log.read(&name).await.expect("read").seq, 5);
        store.delete(&hint).await.expect("delete hint");
        let read = log.read(&name).await.expect("read");
        assert_eq!(read.seq, 5);
        assert_eq!(read.commit(), Some(ObjectId::of(&[4])));
    }

    #[tokio::test]
    async fn a_folders_hint_is_written_whole_and_one_cut_short_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::local_folder(dir.path()).expect("store");
        let log = RefLog::new(store.clone(), "w").in_folder(dir.path().to_path_buf());
        let name = RefName::branch("main").expect("name");
        let mut state = log.read(&name).await.expect("read");
        for i in 0..3u8 {
            state = log
                .update(&state, Some(ObjectId::of(&[i])), 0)
                .await
                .expect("update");
        }
        // The hint is the newest record's copy, and no temporary file is left beside it.
        let hint = layout::ref_hint(name.kind, &name.name);
        let written = get_opt(&store, &hint).await.expect("get").expect("hint");
        assert_eq!(written, record_bytes(&store, &name, 3).await);
        let folder = dir
            .path()
            .join(layout::ref_dir(name.kind, &name.name).as_ref());
        let mut files: Vec<String> = std::fs::read_dir(&folder)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let expected: Vec<String> = (1..=3u64)
            .map(layout::record_name)
            .chain([layout::HINT.to_string()])
            .collect();
        assert_eq!(files, expected);
        // What a power failure may leave of a hint that was not flushed: nothing, or an
        // empty file. Either way the newest record is found, and the next move rewrites it.
        std::fs::write(folder.join(layout::HINT), b"").expect("cut the hint short");
        assert_eq!(log.read(&name).await.expect("read").seq, 3);
        let state = log
            .update(&state, Some(ObjectId::of(&[9])), 0)
            .await
            .expect("update");
        assert_eq!(state.seq, 4);
        let written = get_opt(&store, &hint).await.expect("get").expect("hint");
        assert_eq!(written, record_bytes(&store, &name, 4).await);
    }

    #[tokio::test]
    async fn compaction_keeps_the_newest_and_pinned_records_and_readers_still_find_the_newest() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let log = RefLog::new(store.clone(), "w");
        let name = RefName::branch("main").expect("name");
        let mut states = vec![log.read(&name).await.expect("read")];
        for i in 0..6u8 {
            let last = states.last().expect("state").clone();
            states.push(
                log.update(&last, Some(ObjectId::of(&[i])), 0)
                    .await
                    .expect("update"),
            );
        }
        // A stale hint pointing at record 2, which compaction is about to remove.
        let hint = layout::ref_hint(name.kind, &name.name);
        let old = record_bytes(&store, &name, 2).await;
        // A writer read the ref at record 3 and announced record 4: 4 stays.
        let removed = log
            .compact(&name, &BTreeSet::from([4]))
            .await
            .expect("compact");
        assert_eq!(removed, 4, "records 1, 2, 3 and 5 go; 4 and 6 stay");
        store.put(&hint, old.into()).await.expect("stale hint");
        let read = log.read(&name).await.expect("read");
        assert_eq!((read.seq, read.commit()), (6, Some(ObjectId::of(&[5]))));
        // The announced writer can never win with its old number.
        let err = log
            .update(&states[3], Some(ObjectId::of(b"late")), 0)
            .await
            .expect_err("stale");
        assert!(err.is_conflict());
        assert_eq!(log.read(&name).await.expect("read").seq, 6);
    }

    #[tokio::test]
    async fn a_write_to_a_fenced_record_fails_as_fenced_and_the_ref_keeps_its_commit() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let writer = RefLog::new(store.clone(), "w");
        let gc = RefLog::new(store.clone(), "gc");
        let name = RefName::branch("main").expect("name");
        let s0 = writer.read(&name).await.expect("read");
        let s1 = writer
            .update(&s0, Some(ObjectId::of(b"1")), 0)
            .await
            .expect("update");
        assert_eq!(gc.fence(&name, 2, "run-1", 0).await.expect("fence"), 1);
        assert_eq!(gc.fence(&name, 2, "run-1", 0).await.expect("fence"), 0);
        let err = writer
            .update(&s1, Some(ObjectId::of(b"2")), 0)
            .await
            .expect_err("fenced");
        assert!(err.is_fence(), "{err}");
        let now = writer.read(&name).await.expect("read");
        assert_eq!((now.seq, now.commit()), (2, Some(ObjectId::of(b"1"))));
        assert_eq!(now.record.and_then(|r| r.gc).as_deref(), Some("run-1"));
        // A damaged announcement far beyond the log is refused, not fenced up to.
        assert!(gc.fence(&name, 1_000_000, "run-1", 0).await.is_err());
    }

    #[tokio::test]
    async fn a_damaged_newest_record_is_replaced_only_by_a_write_of_the_next_number() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = RefLog::new(store.clone(), "a");
        let b = RefLog::new(store.clone(), "b");
        let name = RefName::branch("main").expect("name");
        let s0 = a.read(&name).await.expect("read");
        let s1 = a.update(&s0, Some(ObjectId::of(b"1")), 0).await.expect("1");
        a.update(&s1, Some(ObjectId::of(b"2")), 0).await.expect("2");
        let newest = layout::ref_record(name.kind, &name.name, 2);
        store
            .put(&newest, b"{\"format\": 1, \"ref".to_vec().into())
            .await
            .expect("damage");
        let damage = a.read(&name).await.expect_err("damaged");
        assert!(matches!(damage, Error::CorruptRef { .. }), "{damage}");
        let over = RefLog::state_over_damage(&name, damage).expect("state");
        assert_eq!((over.seq, over.commit()), (2, None));
        // Two writers replacing the damaged record: exactly one wins.
        let won = a
            .update(&over, Some(ObjectId::of(b"a")), 0)
            .await
            .expect("a");
        let lost = b.update(&over, Some(ObjectId::of(b"b")), 0).await;
        assert!(lost.expect_err("b").is_conflict());
        assert_eq!(a.read(&name).await.expect("read").commit(), won.commit());
        // Any other error, or a damaged record of another ref, is passed on unchanged.
        let other = Error::Invalid("x".into());
        assert!(matches!(
            RefLog::state_over_damage(&name, other),
            Err(Error::Invalid(_))
        ));
        let elsewhere = Error::CorruptRef {
            path: layout::ref_record(name.kind, "dev", 2).to_string(),
            reason: "x".into(),
        };
        assert!(RefLog::state_over_damage(&name, elsewhere).is_err());
    }
}
