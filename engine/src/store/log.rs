//! A log of immutable numbered records: the one compare-and-swap primitive of the protocol,
//! under every ref (docs/protocol.md, section 4) and the remote's garbage-collection lock
//! (section 8).
//!
//! 1. Record `n` is the key `DIR/<n as 20 digits>`; the highest number present is the
//!    newest record, found by listing (not by probing numbers from a hint, which would break
//!    when old records are removed; a repository's own folder reads on from a record this
//!    process saw while no compaction can run: [`SeenNewest`]).
//! 2. The next record is created with a create-only put: of writers racing for one number,
//!    exactly one wins.
//! 3. An unclear outcome (a lost response, a retry that finds the key, a `409` conflict, a
//!    timeout) is settled by reading the record back: the same bytes (each record carries a
//!    fresh nonce) mean this writer won; other bytes mean it lost; nothing means no request
//!    landed yet, and the create is tried again. When that cannot be settled, the outcome is
//!    reported as unknown ([`crate::Error::UnknownOutcome`]) and callers must clean nothing up:
//!    the write may still land.
//! 4. Records are removed only by compaction, which keeps the newest and every number a
//!    writer may still try to create.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use crate::error::{Error, Result};
use crate::retry::{Attempt, Retry};
use crate::store::{create, delete_opt, get_opt, layout, list_after, list_all, Created};

/// How often an unclear create is tried again before its outcome is called unknown.
const CREATE_ATTEMPTS: u32 = 6;

/// A folder of numbered records in one store.
#[derive(Clone, Debug)]
pub struct NumberedLog {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    /// The store's root, when the store is a folder on this machine: the records are then
    /// listed by reading the folder's file names, see [`NumberedLog::in_folder`].
    folder: Option<std::path::PathBuf>,
    /// Where to start reading the newest record instead of listing (a folder's logs only).
    seen: Option<Arc<SeenNewest>>,
}

/// The number of a record this process saw in each log of a repository's folder, from which
/// the newest record is found by reading the next numbers directly rather than by listing the
/// whole folder (whose cost grows with the log). Only the numbers above a record are read, so
/// this is exact as long as no record above one that exists is removed. Records are only
/// ever created at the next number, and removed only by compaction, which a repository runs
/// while it holds its lock exclusively: so the numbers are used only while this process holds
/// that lock shared (the `lock` kept here), and never once the process runs a compaction
/// ([`SeenNewest::stop`], and compaction forgets its log's number anyway). A number whose
/// record is gone means a listing, as without it.
#[derive(Debug)]
pub struct SeenNewest {
    _lock: Arc<std::fs::File>,
    seen: std::sync::Mutex<Option<std::collections::HashMap<String, u64>>>,
}

impl SeenNewest {
    /// Numbers remembered while `lock` (the repository's lock, held shared) is kept.
    pub fn new(lock: Arc<std::fs::File>) -> Self {
        SeenNewest {
            _lock: lock,
            seen: std::sync::Mutex::new(Some(Default::default())),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Option<std::collections::HashMap<String, u64>>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every number and remembers none from now on (the process is about to
    /// compact logs).
    pub fn stop(&self) {
        *self.seen() = None;
    }

    fn get(&self, dir: &Path) -> Option<u64> {
        self.seen().as_ref()?.get(dir.as_ref()).copied()
    }

    /// Notes that record `seq` of the log in `dir` exists.
    fn note(&self, dir: &Path, seq: u64) {
        if let Some(seen) = self.seen().as_mut() {
            let n = seen.entry(dir.to_string()).or_insert(seq);
            *n = (*n).max(seq);
        }
    }

    fn forget(&self, dir: &Path) {
        if let Some(seen) = self.seen().as_mut() {
            seen.remove(dir.as_ref());
        }
    }
}

/// What creating a record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This writer's record is stored under the number.
    Won,
    /// Another writer's record is: these are its bytes.
    Lost(Bytes),
}

/// The record numbers of the files directly in `dir` (none when it does not exist).
fn record_files(dir: &std::path::Path) -> std::io::Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(layout::parse_record_seq)
        {
            if entry.file_type()?.is_file() {
                out.push(seq);
            }
        }
    }
    Ok(out)
}

/// The bytes of the file `path`, or `None` when it does not exist.
fn read_opt(path: &std::path::Path) -> Result<Option<Bytes>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(Bytes::from(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// [`NumberedLog::newest`] for a log in the folder `dir` on this machine: the highest record
/// listed, read, then the numbers after it read directly until one is missing (as
/// [`NumberedLog::newer_than`] does); listed again if the highest vanished meanwhile. With
/// `seen` (a record this process saw, see [`SeenNewest`]), the numbers from it are read
/// directly instead, and the folder is listed only if that record is gone.
fn newest_in_folder(
    dir: &std::path::Path,
    seen: Option<u64>,
    what: &str,
) -> Result<Option<(u64, Bytes)>> {
    const ATTEMPTS: u32 = 4;
    if let Some(seq) = seen {
        if let Some(bytes) = read_opt(&dir.join(layout::record_name(seq)))? {
            let mut newest = (seq, bytes);
            while let Some(bytes) = read_opt(&dir.join(layout::record_name(newest.0 + 1)))? {
                newest = (newest.0 + 1, bytes);
            }
            return Ok(Some(newest));
        }
    }
    for _ in 0..ATTEMPTS {
        let listed = record_files(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut newest = match listed.iter().max() {
            None => None,
            Some(&seq) => match read_opt(&dir.join(layout::record_name(seq)))? {
                Some(bytes) => Some((seq, bytes)),
                None => continue,
            },
        };
        let mut next = newest.as_ref().map_or(1, |(seq, _)| seq + 1);
        while let Some(bytes) = read_opt(&dir.join(layout::record_name(next)))? {
            newest = Some((next, bytes));
            next += 1;
        }
        return Ok(newest);
    }
    Err(Error::Unavailable(format!(
        "{what}: gave up after {ATTEMPTS} attempts (the newest record listed vanished each time)"
    )))
}

impl NumberedLog {
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path) -> Self {
        NumberedLog {
            store,
            dir,
            folder: None,
            seen: None,
        }
    }

    /// The same log, reading its newest record in a folder from the numbers `seen`
    /// remembers (see [`SeenNewest`]).
    pub fn remembering(mut self, seen: Option<Arc<SeenNewest>>) -> Self {
        self.seen = seen;
        self
    }

    /// The same log, in a store that is the folder `root` on this machine. Its records are
    /// listed from the folder's file names: the same answer as the store's listing, which
    /// turns every name into a URL and back first (a branch with a thousand records since
    /// its last collection took milliseconds a read that way).
    pub fn in_folder(mut self, root: Option<std::path::PathBuf>) -> Self {
        self.folder = root;
        self
    }

    /// The key of record `seq`.
    pub fn record(&self, seq: u64) -> Path {
        self.dir.clone().join(layout::record_name(seq))
    }

    /// The folder of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every key in the folder (records, and anything else stored there).
    pub async fn keys(&self) -> Result<Vec<ObjectMeta>> {
        list_all(&self.store, &self.dir).await
    }

    /// The numbers of the records after `after` (all of them for 0), in increasing order.
    pub async fn seqs_after(&self, after: u64) -> Result<Vec<u64>> {
        if let Some(root) = &self.folder {
            let dir = root.join(self.dir.as_ref());
            let listed = tokio::task::spawn_blocking(move || record_files(&dir))
                .await
                .map_err(|e| Error::Invalid(format!("listing a log failed: {e}")))?;
            let mut seqs: Vec<u64> = listed
                .map_err(|source| Error::Io {
                    path: root.join(self.dir.as_ref()),
                    source,
                })?
                .into_iter()
                .filter(|s| *s > after)
                .collect();
            seqs.sort_unstable();
            return Ok(seqs);
        }
        let metas = if after == 0 {
            list_all(&self.store, &self.dir).await?
        } else {
            list_after(&self.store, &self.dir, &self.record(after)).await?
        };
        let mut seqs: Vec<u64> = metas
            .iter()
            .filter(|m| {
                m.location
                    .prefix_match(&self.dir)
                    .is_some_and(|mut p| p.nth(1).is_none())
            })
            .filter_map(|m| m.location.filename().and_then(layout::parse_record_seq))
            .filter(|s| *s > after)
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The newest record and its number, or `None` when the log is empty. `from` is a number
    /// known to be at most the newest (a hint; 0 for none): listing starts just before it. A
    /// record listed but gone by the time it is read was removed by compaction because a
    /// newer one exists, so the listing is done again.
    pub async fn newest(&self, from: u64) -> Result<Option<(u64, Bytes)>> {
        if let Some(root) = &self.folder {
            // In a folder on this machine the same steps run in one task of the blocking
            // pool, the whole folder listed (a hint would not shorten the listing).
            let dir = root.join(self.dir.as_ref());
            let what = format!("reading the newest record of {}", self.dir);
            let start = self.seen.as_ref().and_then(|s| s.get(&self.dir));
            let newest = tokio::task::spawn_blocking(move || newest_in_folder(&dir, start, &what))
                .await
                .map_err(|e| Error::Invalid(format!("reading a log failed: {e}")))??;
            if let (Some(seen), Some((seq, _))) = (&self.seen, &newest) {
                seen.note(&self.dir, *seq);
            }
            return Ok(newest);
        }
        let after = AtomicU64::new(from.saturating_sub(1));
        Retry::at_once(4)
            .run(
                &format!("reading the newest record of {}", self.dir),
                |_| {
                    let after = &after;
                    async move {
                        let start = after.load(Ordering::SeqCst);
                        let Some(seq) = self.seqs_after(start).await?.last().copied() else {
                            if start == 0 {
                                return Ok(Attempt::Done(self.newer_than(0, None).await?));
                            }
                            // The hint named a record that is not there: list everything.
                            after.store(0, Ordering::SeqCst);
                            return Ok(Attempt::Again("the hint names a removed record".into()));
                        };
                        match get_opt(&self.store, &self.record(seq)).await? {
                            Some(bytes) => {
                                Ok(Attempt::Done(self.newer_than(seq, Some(bytes)).await?))
                            }
                            None => {
                                after.store(0, Ordering::SeqCst);
                                Ok(Attempt::Again(format!("record {seq} vanished while read")))
                            }
                        }
                    }
                },
            )
            .await
    }

    /// The newest record, given that the listing's newest is `seq` (`bytes`; 0 and `None`:
    /// nothing listed): records created after it that a lagging listing did not show yet are
    /// found by reading the next numbers directly (one GET that finds nothing in the normal
    /// case). A read of a single key is fresh on every supported store even where listings
    /// may lag, so a reader never takes an old record for the newest (docs/protocol.md,
    /// section 4).
    async fn newer_than(&self, seq: u64, bytes: Option<Bytes>) -> Result<Option<(u64, Bytes)>> {
        let mut newest = bytes.map(|b| (seq, b));
        let mut next = seq + 1;
        while let Some(b) = get_opt(&self.store, &self.record(next)).await? {
            newest = Some((next, b));
            next += 1;
        }
        Ok(newest)
    }

    /// Whether `seq` is still the newest record (one LIST, one GET).
    pub async fn is_newest(&self, seq: u64) -> Result<bool> {
        let listed = self.seqs_after(seq.saturating_sub(1)).await?;
        let listed_newest =
            listed.last().copied().unwrap_or(0) == seq && (seq == 0 || listed.contains(&seq));
        // A listing that lags would not show a record just created: read the next number.
        Ok(listed_newest && get_opt(&self.store, &self.record(seq + 1)).await?.is_none())
    }

    /// The bytes of record `seq`, if it exists.
    pub async fn get(&self, seq: u64) -> Result<Option<Bytes>> {
        get_opt(&self.store, &self.record(seq)).await
    }

    /// Creates record `seq` holding `bytes` (which must be unique to this write: carry a
    /// nonce). See the module documentation for how unclear outcomes are settled.
    pub async fn create(&self, seq: u64, bytes: Bytes) -> Result<Outcome> {
        let path = self.record(seq);
        let sent = AtomicBool::new(false);
        let result: Result<Outcome> = Retry::times(CREATE_ATTEMPTS)
            .run(&format!("creating {path}"), |_| {
                let path = &path;
                let bytes = bytes.clone();
                let sent = &sent;
                async move {
                    sent.store(true, Ordering::SeqCst);
                    let why = match create(&self.store, path, bytes.clone()).await? {
                        Created::Created => return Ok(Attempt::Done(Outcome::Won)),
                        Created::Unclear(e) => e,
                    };
                    match get_opt(&self.store, path).await? {
                        Some(found) if found == bytes => Ok(Attempt::Done(Outcome::Won)),
                        Some(found) => Ok(Attempt::Done(Outcome::Lost(found))),
                        // Nothing there yet: the request did not land (or not yet: a 409
                        // means another request for the key is in flight).
                        None => Ok(Attempt::Again(why.to_string())),
                    }
                }
            })
            .await;
        match result {
            Ok(o) => {
                // Either way record `seq` exists now.
                if let Some(seen) = &self.seen {
                    seen.note(&self.dir, seq);
                }
                Ok(o)
            }
            Err(e) if sent.load(Ordering::SeqCst) => Err(Error::UnknownOutcome {
                what: format!("the write of {path}"),
                detail: e.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Removes the records below `below`, except the numbers in `keep`. Returns how many
    /// were removed.
    pub async fn remove_below(&self, below: u64, keep: &BTreeSet<u64>) -> Result<u64> {
        if let Some(seen) = &self.seen {
            seen.forget(&self.dir);
        }
        let mut removed = 0;
        for seq in self.seqs_after(0).await? {
            if seq < below && !keep.contains(&seq) {
                delete_opt(&self.store, &self.record(seq)).await?;
                removed += 1;
            }
        }
        if let Some(seen) = &self.seen {
            seen.forget(&self.dir);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::put;

    #[tokio::test]
    async fn a_log_in_a_folder_lists_what_the_store_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::local_folder(dir.path()).expect("store");
        let path = Path::from("refs/heads/main");
        let listed = NumberedLog::new(store.clone(), path.clone());
        let read = listed.clone().in_folder(Some(dir.path().to_path_buf()));
        assert_eq!(read.seqs_after(0).await.expect("empty"), Vec::<u64>::new());
        for seq in [1u64, 2, 3, 10] {
            put(&store, &listed.record(seq), Bytes::from_static(b"{}"))
                .await
                .expect("record");
        }
        // Not records: the advisory copy, a write in progress, a folder.
        for other in ["latest", "00000000000000000011#1", "00000000000000000012/x"] {
            put(&store, &path.clone().join(other), Bytes::from_static(b"{}"))
                .await
                .expect("other");
        }
        for after in [0, 1, 3, 9, 10] {
            assert_eq!(
                read.seqs_after(after).await.expect("read_dir"),
                listed.seqs_after(after).await.expect("list"),
                "after {after}"
            );
        }
        assert_eq!(read.seqs_after(2).await.expect("read_dir"), vec![3, 10]);
        let (seq, _) = read.newest(3).await.expect("newest").expect("one");
        assert_eq!(seq, 10);
        // The newest, read from the folder and through the store alike, as records are
        // created (13 beside the folder named 12).
        for (created, newest) in [(None, 10u64), (Some(11u64), 11), (Some(13), 13)] {
            if let Some(seq) = created {
                put(&store, &listed.record(seq), Bytes::from(seq.to_string()))
                    .await
                    .expect("record");
            }
            let from_folder = read.newest(0).await.expect("newest").expect("one");
            assert_eq!(from_folder.0, newest);
            assert_eq!(Some(from_folder), listed.newest(0).await.expect("newest"));
        }
        let empty = NumberedLog::new(store.clone(), Path::from("refs/heads/none"))
            .in_folder(Some(dir.path().to_path_buf()));
        assert_eq!(empty.newest(0).await.expect("newest"), None);
    }

    #[tokio::test]
    async fn a_log_read_from_a_record_it_saw_finds_what_others_created_and_lists_when_it_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::local_folder(dir.path()).expect("store");
        let path = Path::from("refs/heads/main");
        let lock = Arc::new(std::fs::File::create(dir.path().join("lock")).expect("lock"));
        let seen = Arc::new(SeenNewest::new(lock));
        let folder = Some(dir.path().to_path_buf());
        let mine = NumberedLog::new(store.clone(), path.clone())
            .in_folder(folder.clone())
            .remembering(Some(seen.clone()));
        // Another process's writes, and its compaction: a log that remembers nothing.
        let other = NumberedLog::new(store.clone(), path.clone()).in_folder(folder.clone());
        let record = |n: u64| Bytes::from(format!("r{n}"));
        for n in 1..=3 {
            assert_eq!(
                mine.create(n, record(n)).await.expect("create"),
                Outcome::Won
            );
        }
        assert_eq!(seen.get(&path), Some(3));
        for n in 4..=6 {
            assert_eq!(
                other.create(n, record(n)).await.expect("create"),
                Outcome::Won
            );
        }
        assert_eq!(
            mine.newest(0).await.expect("newest"),
            Some((6, record(6))),
            "records created after the one seen are read"
        );
        assert_eq!(seen.get(&path), Some(6));
        // A compaction elsewhere (which a lock held shared rules out, but a number whose record
        // is gone must still mean a listing): record 6 removed, 9 created.
        for n in 7..=9 {
            other.create(n, record(n)).await.expect("create");
        }
        other
            .remove_below(9, &BTreeSet::from([2]))
            .await
            .expect("compact");
        assert_eq!(mine.newest(0).await.expect("newest"), Some((9, record(9))));
        // This process's own compaction forgets the number it saw: record 9 is kept, 10 and
        // 11 are created, then everything below 12 but 9 is removed (a gap above 9).
        for n in 10..=12 {
            other.create(n, record(n)).await.expect("create");
        }
        assert_eq!(seen.get(&path), Some(9));
        mine.remove_below(12, &BTreeSet::from([9]))
            .await
            .expect("compact");
        assert_eq!(seen.get(&path), None);
        assert_eq!(
            mine.newest(0).await.expect("newest"),
            Some((12, record(12)))
        );
        // Stopped, it remembers nothing more and lists.
        seen.stop();
        mine.create(13, record(13)).await.expect("create");
        assert_eq!(seen.get(&path), None);
        assert_eq!(
            mine.newest(0).await.expect("newest"),
            Some((13, record(13)))
        );
    }
}
