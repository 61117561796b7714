//! A repository on the local disk: the shared layout under `.strata/` plus per-checkout
//! state (`local/HEAD`, `local/WORKING`). Working changes are table versions that are
//! stored already but not yet committed; there is no staging step.

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::commit::Commit;
use crate::diff::{diff_tables, DiffCounts};
use crate::error::{Error, Result};
use crate::iceberg;
use crate::id::ObjectId;
use crate::names::validate_name;
use crate::store::objects::{check_format, encode_json};
use crate::store::refs::HintWrite;
use crate::store::{layout, Objects, RefKind, RefLog, RefName, RefRecord, RefState, TagNote};
use crate::table::TableObject;

/// Name of the folder that holds a repository's data.
pub const DOT_DIR: &str = ".strata";
/// Repository format written and understood by this build.
pub const REPO_FORMAT: u32 = 1;
/// The first branch of a new repository.
pub const DEFAULT_BRANCH: &str = "main";

/// The repository marker object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub format: u32,
    pub kind: String,
}

/// What HEAD names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    Branch(String),
    Detached(ObjectId),
}

/// The working tables: what `commit` would record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Working {
    pub tables: BTreeMap<String, ObjectId>,
}

/// Per-checkout settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LocalConfig {
    writer: String,
}

/// How one table differs from HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    pub table: String,
    /// `added`, `removed` or `modified`.
    pub state: &'static str,
    pub rows: DiffCounts,
    pub schema_changed: bool,
}

/// Held while a command changes the checkout's state ([`Repository::lock_state`]);
/// released when dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

/// A repository opened from disk.
#[derive(Debug, Clone)]
pub struct Repository {
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
    objects: Objects,
    refs: RefLog,
    clock: Arc<dyn Clock>,
    /// `local/lock`, held shared by every command and exclusively by garbage collection.
    lock: Option<Arc<std::fs::File>>,
}

fn local_store(dot: &Path) -> Result<Arc<dyn ObjectStore>> {
    crate::store::local_folder(dot)
}

/// Opens (creating if needed) a lock file under `local/`.
fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Opens `path` and holds a shared lock on it, waiting while garbage collection holds it
/// exclusively. Without a lock file (a read-only folder), commands run unlocked. The flag
/// says whether the lock is held.
fn take_shared_lock(path: &Path) -> (Option<Arc<std::fs::File>>, bool) {
    let file = match open_lock_file(path) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no repository lock");
            return (None, false);
        }
    };
    let held = match file.try_lock_shared() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!("waiting for a garbage collection of this repository to finish");
            match file.lock_shared() {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(error = %e, "could not lock the repository");
                    false
                }
            }
        }
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::debug!(error = %e, "could not lock the repository");
            false
        }
    };
    (Some(Arc::new(file)), held)
}

impl Repository {
    /// Takes the repository lock exclusively (garbage collection): fails when another
    /// strata command is using the repository.
    pub fn lock_exclusive(&self) -> Result<()> {
        let Some(file) = &self.lock else {
            return Err(Error::Invalid(
                "cannot lock the repository (is .strata/local writable?); garbage collection needs the lock".into(),
            ));
        };
        // Refs are compacted from now on: no ref is read from a number seen before.
        self.refs.stop_remembering();
        match file.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::RepositoryBusy),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io {
                path: self.root.join(DOT_DIR).join("local").join("lock"),
                source: e,
            }),
        }
    }

    /// Serialises the commands that change this checkout's state (the working tables, HEAD,
    /// a merge in progress, local and remote-tracking refs, remotes): each holds this lock
    /// from its first read of that state to its last write, as git does with its lock files,
    /// so two commands never overwrite each other's changes. A command that finds the lock
    /// taken waits for it.
    pub async fn lock_state(&self) -> Result<StateLock> {
        let path = self.root.join(DOT_DIR).join("local").join("state.lock");
        let file = open_lock_file(&path).map_err(|e| Error::Write {
            path: path.clone(),
            source: e,
        })?;
        match file.try_lock() {
            Ok(()) => return Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io { path, source: e }),
        }
        tracing::info!("waiting for another strata command in this repository to finish");
        let waited = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| Error::Invalid(format!("waiting for the repository lock failed: {e}")))?;
        let file = waited.map_err(|e| Error::Io { path, source: e })?;
        Ok(StateLock { _file: file })
    }

    /// Takes the lock file `local/NAME` exclusively, for as long as the returned file lives;
    /// `None` when another process holds it.
    pub fn try_lock_local(&self, name: &str) -> Result<Option<std::fs::File>> {
        let path = self.root.join(DOT_DIR).join("local").join(name);
        let file = open_lock_file(&path).map_err(|e| Error::Write {
            path: path.clone(),
            source: e,
        })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io { path, source: e }),
        }
    }

    /// Creates a repository in `dir` (made if missing).
    pub async fn init(dir: &Path) -> Result<Self> {
        let dot = dir.join(DOT_DIR);
        if dot.join(layout::MARKER).exists() {
            return Err(Error::RepositoryExists {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(&dot).map_err(|e| Error::Write {
            path: dot.clone(),
            source: e,
        })?;
        let store = local_store(&dot)?;
        let config = LocalConfig {
            writer: uuid::Uuid::new_v4().to_string(),
        };
        put_json(&store, &layout::local("config.json"), &config).await?;
        put_json(
            &store,
            &layout::local("HEAD"),
            &Head::Branch(DEFAULT_BRANCH.into()),
        )
        .await?;
        // The marker goes last: a half-made repository is not mistaken for a whole one.
        let marker = Marker {
            format: REPO_FORMAT,
            kind: "strata-repository".into(),
        };
        put_json(&store, &layout::marker(), &marker).await?;
        Self::open_at(dir.to_path_buf(), store, config).await
    }

    /// Opens the repository containing `start` (searching parent folders like git).
    pub async fn open(start: &Path) -> Result<Self> {
        let start = std::path::absolute(start).map_err(|e| Error::Io {
            path: start.to_path_buf(),
            source: e,
        })?;
        let mut dir = start.as_path();
        loop {
            let marker = dir.join(DOT_DIR).join(layout::MARKER);
            match std::fs::metadata(&marker) {
                Ok(m) if m.is_file() => break,
                // A `.strata` that exists but cannot be read is not "no repository".
                Err(e)
                    if e.kind() != std::io::ErrorKind::NotFound && dir.join(DOT_DIR).exists() =>
                {
                    return Err(Error::Io {
                        path: dir.join(DOT_DIR),
                        source: e,
                    })
                }
                _ => {}
            }
            dir = match dir.parent() {
                Some(p) => p,
                None => {
                    return Err(Error::NotARepository {
                        path: start.clone(),
                    })
                }
            };
        }
        let store = local_store(&dir.join(DOT_DIR))?;
        let marker: Marker =
            read_json(&store, &layout::marker())
                .await?
                .ok_or_else(|| Error::NotARepository {
                    path: start.clone(),
                })?;
        check_format("this repository", marker.format, REPO_FORMAT)?;
        let config: LocalConfig = match read_json(&store, &layout::local("config.json")).await? {
            Some(c) => c,
            None => {
                let c = LocalConfig {
                    writer: uuid::Uuid::new_v4().to_string(),
                };
                put_json(&store, &layout::local("config.json"), &c).await?;
                c
            }
        };
        Self::open_at(dir.to_path_buf(), store, config).await
    }

    async fn open_at(
        root: PathBuf,
        store: Arc<dyn ObjectStore>,
        config: LocalConfig,
    ) -> Result<Self> {
        let location = root.join(DOT_DIR).display().to_string();
        let (lock, locked) = take_shared_lock(&root.join(DOT_DIR).join("local").join("lock"));
        let refs = RefLog::new(store.clone(), config.writer).in_folder(root.join(DOT_DIR));
        // While this process holds the lock shared, no compaction runs: refs are read on
        // from the newest record this process saw of them.
        let refs = match (&lock, locked) {
            (Some(lock), true) => refs.remembering_newest(lock.clone()),
            _ => refs,
        };
        // The state lock's file exists from the start, so that a command's first use of it
        // (even a refused one's) adds nothing to the repository.
        if let Err(e) = open_lock_file(&root.join(DOT_DIR).join("local").join("state.lock")) {
            tracing::debug!(error = %e, "no state lock file (a read-only repository?)");
        }
        Ok(Repository {
            lock,
            objects: Objects::new(store.clone(), location)
                .in_folder(root.join(DOT_DIR))
                .remembering(),
            refs,
            store,
            root,
            clock: Arc::new(SystemClock),
        })
    }

    /// Who this checkout is, beyond its writer id (which a copy of the folder shares): the
    /// host, the folder of its data and that folder's file identity. A remote garbage
    /// collection records it in its lock, so that only this checkout resumes it.
    pub fn checkout_identity(&self) -> String {
        let dot = self.root.join(DOT_DIR);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown-host".into());
        let file_id = match std::fs::metadata(&dot) {
            #[cfg(unix)]
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                format!("{}:{}", m.dev(), m.ino())
            }
            #[cfg(not(unix))]
            Ok(m) => format!("{:?}", m.created().ok()),
            Err(_) => "?".into(),
        };
        format!("{host}:{}:{file_id}", dot.display())
    }

    /// Replaces the clock (for reproducible commits).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The folder that contains `.strata`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    pub fn refs(&self) -> &RefLog {
        &self.refs
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// A folder for temporary files of this repository (removed by its owner, who also
    /// removes `.strata/tmp` when that is left empty). Make it only when it is needed.
    pub fn tmp_dir(&self) -> Result<tempfile::TempDir> {
        let base = self.root.join(DOT_DIR).join(layout::TMP_DIR);
        let io = |e| Error::Write {
            path: base.clone(),
            source: e,
        };
        // Another command may remove `.strata/tmp` (left empty) between the two steps.
        let mut tries = 0;
        loop {
            std::fs::create_dir_all(&base).map_err(io)?;
            match tempfile::tempdir_in(&base) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
                other => return other.map_err(io),
            }
        }
    }

    // ---- local state ----

    pub async fn read_local<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>> {
        self.read_state(&layout::local(name)).await
    }

    pub async fn write_local<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        put_json(&self.store, &layout::local(name), value).await
    }

    pub async fn delete_local(&self, name: &str) -> Result<()> {
        crate::store::delete_opt(&self.store, &layout::local(name)).await
    }

    // ---- HEAD and working state ----

    pub async fn head(&self) -> Result<Head> {
        Ok(self
            .read_state(&layout::local("HEAD"))
            .await?
            .unwrap_or(Head::Branch(DEFAULT_BRANCH.into())))
    }

    pub(crate) async fn set_head(&self, head: &Head) -> Result<()> {
        put_json(&self.store, &layout::local("HEAD"), head).await
    }

    /// The commit HEAD points at; `None` on a branch with no commits yet.
    pub async fn head_commit(&self) -> Result<Option<ObjectId>> {
        self.commit_of(&self.head().await?).await
    }

    /// The commit a HEAD value names (reading the branch's ref afresh).
    pub async fn commit_of(&self, head: &Head) -> Result<Option<ObjectId>> {
        match head {
            Head::Detached(id) => Ok(Some(*id)),
            Head::Branch(b) => Ok(self.refs.read(&RefName::branch(b)?).await?.commit()),
        }
    }

    /// The tables of a commit (none for `None`).
    pub async fn commit_tables(
        &self,
        commit: Option<ObjectId>,
    ) -> Result<BTreeMap<String, ObjectId>> {
        match commit {
            Some(id) => Ok(Commit::read(&self.objects, &id).await?.tables),
            None => Ok(BTreeMap::new()),
        }
    }

    pub async fn working(&self) -> Result<Working> {
        match self.read_state(&layout::local("WORKING")).await? {
            Some(w) => Ok(w),
            None => Ok(Working {
                tables: self.commit_tables(self.head_commit().await?).await?,
            }),
        }
    }

    /// Replaces the working state in one atomic write (so a crash leaves the old one).
    pub(crate) async fn set_working(&self, working: &Working) -> Result<()> {
        put_json(&self.store, &layout::local("WORKING"), working).await
    }

    /// The tables of revision `rev`, or the working tables for `None`.
    pub async fn tables_at(&self, rev: Option<&str>) -> Result<BTreeMap<String, ObjectId>> {
        match rev {
            None => Ok(self.working().await?.tables),
            Some(r) => self.commit_tables(Some(self.resolve(r).await?)).await,
        }
    }

    /// A table of the working state, or of revision `rev`.
    pub async fn table(&self, name: &str, rev: Option<&str>) -> Result<(ObjectId, TableObject)> {
        let tables = match rev {
            None => self.working().await?.tables,
            Some(r) => self.commit_tables(Some(self.resolve(r).await?)).await?,
        };
        let id = *tables
            .get(name)
            .ok_or_else(|| Error::UnknownTable { name: name.into() })?;
        Ok((id, TableObject::read(&self.objects, &id).await?))
    }

    /// Tables whose working version differs from HEAD.
    pub async fn changed_tables(&self) -> Result<Vec<String>> {
        let head = self.commit_tables(self.head_commit().await?).await?;
        let working = self.working().await?.tables;
        let names: std::collections::BTreeSet<&String> =
            head.keys().chain(working.keys()).collect();
        Ok(names
            .into_iter()
            .filter(|n| head.get(*n) != working.get(*n))
            .cloned()
            .collect())
    }

    /// Row counts of what changed in each table since HEAD.
    pub async fn status(&self) -> Result<Vec<TableStatus>> {
        let head = self.commit_tables(self.head_commit().await?).await?;
        let working = self.working().await?.tables;
        self.compare_tables(&head, &working).await
    }

    /// Compares two sets of tables, table by table.
    pub async fn compare_tables(
        &self,
        old: &BTreeMap<String, ObjectId>,
        new: &BTreeMap<String, ObjectId>,
    ) -> Result<Vec<TableStatus>> {
        let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut out = Vec::new();
        for name in names {
            let (a, b) = (old.get(name), new.get(name));
            if a == b {
                continue;
            }
            let ta = match a {
                Some(id) => Some(TableObject::read(&self.objects, id).await?),
                None => None,
            };
            let tb = match b {
                Some(id) => Some(TableObject::read(&self.objects, id).await?),
                None => None,
            };
            let rows =
                diff_tables(&self.objects, ta.as_ref(), tb.as_ref(), &mut |_| Ok(())).await?;
            let state = match (a, b) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "modified",
            };
            let schema_changed = match (&ta, &tb) {
                (Some(x), Some(y)) => x.schema != y.schema,
                _ => false,
            };
            out.push(TableStatus {
                table: name.clone(),
                state,
                rows,
                schema_changed,
            });
        }
        Ok(out)
    }

    // ---- commits and history ----

    /// Commits the working tables on the current branch (or detached HEAD).
    pub async fn commit(&self, message: &str, author: &str) -> Result<ObjectId> {
        if message.trim().is_empty() {
            return Err(Error::EmptyMessage);
        }
        // The branch as read here is the one the commit moves from: its compare-and-swap
        // fails if anything moved it since. HEAD and the branch are read beside the working
        // tables and the merge in progress.
        let head_and_branch = async {
            let head = self.head().await?;
            let branch = match &head {
                Head::Branch(b) => Some(self.refs.read(&RefName::branch(b)?).await?),
                Head::Detached(_) => None,
            };
            Ok::<_, Error>((head, branch))
        };
        let ((head, branch), working, merging) =
            tokio::try_join!(head_and_branch, self.working(), self.merge_parent())?;
        let parent = match (&head, &branch) {
            (Head::Detached(id), _) => Some(*id),
            (Head::Branch(_), state) => state.as_ref().and_then(RefState::commit),
        };
        let parent_tables = self.commit_tables(parent).await?;
        if merging.is_none() && working.tables == parent_tables {
            return Err(Error::NothingToCommit);
        }
        let parents: Vec<ObjectId> = parent
            .into_iter()
            .chain(merging.as_ref().map(|(theirs, _)| *theirs))
            .collect();
        let commit = Commit::new(
            parents,
            working.tables.clone(),
            author.to_string(),
            self.clock.now(),
            message.to_string(),
        );
        let kind = if merging.is_some() {
            "commit (merge)"
        } else if parent.is_none() {
            "commit (initial)"
        } else {
            "commit"
        };
        let reason = format!("{kind}: {}", commit.summary());
        // The new tables' Iceberg manifests and lists are written beside the commit and the
        // move of the branch (they are named by what they describe, and nothing names them
        // until the views are published), so that publishing the views once the branch has
        // moved only writes their metadata.
        let views = self.iceberg_location();
        let prepare = async {
            match head {
                // A detached HEAD publishes no views.
                Head::Detached(_) => Ok(()),
                Head::Branch(_) => {
                    iceberg::prepare(&views, &self.objects, &commit.tables, &parent_tables).await
                }
            }
        };
        // The commit is stored before the branch names it.
        let moved = async {
            let id = self.objects.put_json(&commit).await?;
            match (&head, &branch) {
                (Head::Branch(_), Some(state)) => {
                    let moved = self
                        .refs
                        .update_hint_later(state, Some(id), self.clock.now(), &reason)
                        .await?;
                    Ok((id, Some(moved)))
                }
                (Head::Branch(b), None) => {
                    Err(Error::Invalid(format!("branch '{b}' was not read")))
                }
                (Head::Detached(_), _) => {
                    self.set_head(&Head::Detached(id)).await?;
                    Ok((id, None))
                }
            }
        };
        let (moved, prepared) = tokio::join!(moved, prepare);
        if let Err(e) = prepared {
            tracing::warn!(error = %e, "could not prepare the Iceberg views");
        }
        let (id, moved) = moved?;
        if let (Some((after, hint)), Some(before)) = (moved, &branch) {
            self.after_ref_moved(&after, hint, before.commit()).await;
        }
        // The working tables are the commit's now: WORKING already says so (or, missing,
        // falls back to HEAD's, which are the same).
        if merging.is_some() {
            self.clear_merge().await?;
        }
        Ok(id)
    }

    /// Moves a ref (compare-and-swap on its log), then publishes its Iceberg views. A
    /// failure to publish is a warning, not a failure of the move: the views catch up at the
    /// ref's next move or at `strata iceberg`.
    async fn update_ref(
        &self,
        state: &RefState,
        new: Option<ObjectId>,
        reason: &str,
    ) -> Result<RefState> {
        let (after, hint) = self
            .refs
            .update_hint_later(state, new, self.clock.now(), reason)
            .await?;
        self.after_ref_moved(&after, hint, state.commit()).await;
        Ok(after)
    }

    /// What follows a move of a ref from `previous` to `after`: its hint, and its Iceberg
    /// views, written side by side (neither waits for the other). Neither can fail the move.
    async fn after_ref_moved(&self, after: &RefState, hint: HintWrite, previous: Option<ObjectId>) {
        let ((), published) = tokio::join!(hint.write(), self.publish_views(after, previous));
        if let Err(e) = published {
            tracing::warn!(r#ref = %after.name, error = %e, "could not publish the Iceberg views");
        }
    }

    /// Reads a JSON file of the repository's own state (`HEAD`, `WORKING`, ...): `None` if it
    /// does not exist. Read straight from its file, in one task of the blocking pool (the
    /// store's read takes two, and every command reads several of these in turn); a failure
    /// other than a missing file is reported as the store reports it.
    async fn read_state<T: serde::de::DeserializeOwned>(
        &self,
        path: &object_store::path::Path,
    ) -> Result<Option<T>> {
        let file = self.root.join(DOT_DIR).join(path.as_ref());
        let read = tokio::task::spawn_blocking(move || std::fs::read(file))
            .await
            .map_err(|e| Error::Invalid(format!("reading {path} failed: {e}")))?;
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return read_json(&self.store, path).await,
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptObject {
                id: path.to_string(),
                reason: format!("it does not decode: {e}"),
            })
    }

    /// Where this repository's Iceberg views live, and the URI engines read it by.
    pub fn iceberg_location(&self) -> iceberg::Location {
        iceberg::Location::new(self.objects.clone(), &file_uri(&self.root.join(".strata")))
    }

    /// Publishes the Iceberg views of a ref at the state `after` (which replaced `previous`).
    pub async fn publish_views(
        &self,
        after: &RefState,
        previous: Option<ObjectId>,
    ) -> Result<Vec<iceberg::View>> {
        iceberg::publish(
            &self.iceberg_location(),
            &self.objects,
            &after.name,
            after.seq,
            previous,
            after.commit(),
        )
        .await
    }

    /// Moves a branch from `expected` to `new` by a compare-and-swap on its ref log.
    pub(crate) async fn move_branch(
        &self,
        name: &RefName,
        expected: Option<ObjectId>,
        new: Option<ObjectId>,
        reason: &str,
    ) -> Result<()> {
        let state = self.refs.read(name).await?;
        if state.commit() != expected {
            return Err(Error::RefConflict {
                name: name.to_string(),
                expected: expected.map_or("nothing".into(), |c| c.short()),
                actual: state.commit().map_or("nothing".into(), |c| c.short()),
            });
        }
        self.update_ref(&state, new, reason).await?;
        Ok(())
    }

    /// Commits reachable from `start`, at most `limit`, newest first and never a parent before
    /// any of its children (as git's `--date-order`): of the commits whose children are all
    /// listed, the one with the latest time comes next (then the greatest id). Commit times
    /// come from clocks that may be skewed (two machines, `STRATA_COMMIT_TIME`), so time alone
    /// could show a parent first.
    pub async fn log(
        &self,
        start: ObjectId,
        limit: Option<usize>,
    ) -> Result<Vec<(ObjectId, Commit)>> {
        self.log_from(&[start], &HashSet::new(), limit).await
    }

    /// The commits reachable from any of `starts` and not in `hidden` (which must hold
    /// every ancestor of its members: a set of reachable commits, as for `A..B`), in the
    /// order of [`Repository::log`].
    pub async fn log_from(
        &self,
        starts: &[ObjectId],
        hidden: &HashSet<ObjectId>,
        limit: Option<usize>,
    ) -> Result<Vec<(ObjectId, Commit)>> {
        log_from(&self.objects, starts, hidden, limit).await
    }

    // ---- revisions ----

    /// Resolves a revision: `HEAD`, a branch, a tag, a full or unique-prefix commit id,
    /// a remote-tracking branch `REMOTE/BRANCH`, each optionally followed by `~N`, `^` or `^N`.
    pub async fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let (base, suffix) = split_rev(rev);
        let id = self.resolve_base(base, rev).await?;
        walk_ancestry(&self.objects, id, suffix, rev).await
    }

    /// The reflog of a branch or tag: where it pointed, newest first (entry 0 is where it
    /// points now), back to its creation or to the oldest record garbage collection kept.
    /// A deleted and re-created ref starts a new reflog, as in git; fence records written by
    /// a collection are not entries.
    pub async fn reflog(&self, name: &RefName) -> Result<Vec<RefRecord>> {
        let folder = self.refs.records(name).await?;
        let mut out = Vec::new();
        for (_, _, record) in folder.records.into_iter().rev() {
            let record = record?;
            if record.gc.is_some() {
                continue;
            }
            if record.commit.is_none() {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// The ref a reflog selector names: `@{N}` and `HEAD@{N}` the branch checked out,
    /// `NAME@{N}` a branch, else a tag.
    pub async fn reflog_ref(&self, name: &str) -> Result<RefName> {
        if name.is_empty() || name == "HEAD" || name == "@" {
            return match self.head().await? {
                Head::Branch(b) => RefName::branch(&b),
                Head::Detached(_) => Err(Error::Invalid(
                    "HEAD is detached, and only branches and tags have a reflog; name one (main@{1})"
                        .into(),
                )),
            };
        }
        let branch = RefName::branch(name)?;
        if self.refs.read(&branch).await?.commit().is_some() {
            return Ok(branch);
        }
        let tag = RefName::tag(name)?;
        if self.refs.read(&tag).await?.commit().is_some() {
            return Ok(tag);
        }
        Err(Error::UnknownBranch { name: name.into() })
    }

    /// Resolves `NAME@{N}`: where the ref pointed N moves ago.
    async fn resolve_reflog(&self, name: &str, n: &str, rev: &str) -> Result<ObjectId> {
        let n: usize = n.parse().map_err(|_| {
            Error::Invalid(format!(
                "'{rev}': expected a number of moves between the braces, as in main@{{1}}"
            ))
        })?;
        let ref_name = self.reflog_ref(name).await?;
        let log = self.reflog(&ref_name).await?;
        match log.get(n).and_then(|r| r.commit) {
            Some(c) => Ok(c),
            None => Err(Error::Invalid(format!(
                "'{rev}': the reflog of {} has {} {} (0 to {}); see 'strata reflog {}'",
                ref_name.name,
                log.len(),
                if log.len() == 1 { "entry" } else { "entries" },
                log.len().saturating_sub(1),
                ref_name.name
            ))),
        }
    }

    async fn resolve_base(&self, base: &str, rev: &str) -> Result<ObjectId> {
        let unknown = || Error::UnknownRevision {
            rev: rev.to_string(),
        };
        if let Some((name, rest)) = base.split_once("@{") {
            if let Some(n) = rest.strip_suffix('}') {
                return self.resolve_reflog(name, n, rev).await;
            }
            return Err(unknown());
        }
        if base == "HEAD" || base == "@" {
            return self.head_commit().await?.ok_or_else(|| {
                Error::Invalid("HEAD has no commits yet; commit something first".into())
            });
        }
        if validate_name("branch", base).is_ok() {
            for kind in [RefKind::Branch, RefKind::Tag] {
                if let Some(c) = self.refs.read(&RefName::new(kind, base)?).await?.commit() {
                    return Ok(c);
                }
            }
        }
        if let Some((remote, branch)) = base.split_once('/') {
            if let Some(c) = self.remote_tracking(remote, branch).await? {
                return Ok(c);
            }
        }
        resolve_commit_id(&self.objects, base, rev).await
    }

    /// Records (or, with `None`, removes) the last fetched position of `remote`'s `branch`.
    pub async fn set_remote_tracking(
        &self,
        remote: &str,
        branch: &str,
        commit: Option<ObjectId>,
    ) -> Result<()> {
        validate_name("remote", remote)?;
        validate_name("branch", branch)?;
        let name = format!("remotes/{remote}/{branch}");
        match commit {
            Some(c) => self.write_local(&name, &c).await,
            None => self.delete_local(&name).await,
        }
    }

    /// All remote-tracking branches of `remote`.
    pub async fn remote_tracking_list(&self, remote: &str) -> Result<Vec<(String, ObjectId)>> {
        let dir = layout::local(&format!("remotes/{remote}"));
        let listing = crate::store::list_dir(&self.store, &dir).await?;
        let mut out = Vec::new();
        for o in listing.objects {
            let Some(branch) = o.location.filename() else {
                continue;
            };
            if let Some(c) = self.remote_tracking(remote, branch).await? {
                out.push((branch.to_string(), c));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Commits reachable from `a` but not from `b`, and from `b` but not from `a`.
    pub async fn ahead_behind(&self, a: ObjectId, b: ObjectId) -> Result<(usize, usize)> {
        let ra = self.reachable(a).await?;
        let rb = self.reachable(b).await?;
        Ok((ra.difference(&rb).count(), rb.difference(&ra).count()))
    }

    /// Every commit reachable from `id` (itself included).
    pub async fn reachable(&self, id: ObjectId) -> Result<HashSet<ObjectId>> {
        self.reachable_from(&[id]).await
    }

    /// Every commit reachable from any of `ids` (themselves included), each walked once.
    pub async fn reachable_from(&self, ids: &[ObjectId]) -> Result<HashSet<ObjectId>> {
        let mut seen: HashSet<ObjectId> = ids.iter().copied().collect();
        let mut queue: std::collections::VecDeque<ObjectId> = seen.iter().copied().collect();
        while let Some(c) = queue.pop_front() {
            for p in Commit::read(&self.objects, &c).await?.parents {
                if seen.insert(p) {
                    queue.push_back(p);
                }
            }
        }
        Ok(seen)
    }

    /// The last fetched position of `remote`'s `branch`, if any.
    pub async fn remote_tracking(&self, remote: &str, branch: &str) -> Result<Option<ObjectId>> {
        if validate_name("remote", remote).is_err() || validate_name("branch", branch).is_err() {
            return Ok(None);
        }
        let path = layout::local(&format!("remotes/{remote}/{branch}"));
        read_json::<ObjectId>(&self.store, &path).await
    }

    // ---- branches and tags ----

    pub async fn list_refs(&self, kind: RefKind) -> Result<Vec<(String, ObjectId)>> {
        self.refs.list(kind).await
    }

    /// Creates a branch or tag at `start` (default HEAD). Fails if it exists.
    pub async fn create_ref(
        &self,
        kind: RefKind,
        name: &str,
        start: Option<&str>,
    ) -> Result<ObjectId> {
        self.create_ref_noted(kind, name, start, None).await
    }

    /// As [`Repository::create_ref`], with an annotated tag's note.
    pub async fn create_ref_noted(
        &self,
        kind: RefKind,
        name: &str,
        start: Option<&str>,
        note: Option<TagNote>,
    ) -> Result<ObjectId> {
        let ref_name = RefName::new(kind, name)?;
        let target = self.resolve(start.unwrap_or("HEAD")).await?;
        let state = self.refs.read(&ref_name).await?;
        if state.commit().is_some() {
            return Err(Error::RefExists {
                kind: kind.noun().into(),
                name: name.into(),
            });
        }
        let from = start.unwrap_or("HEAD");
        let reason = format!("{}: created from {from}", kind.noun());
        let after = self
            .refs
            .update_noted(&state, Some(target), self.clock.now(), Some(&reason), note)
            .await?;
        if let Err(e) = self.publish_views(&after, None).await {
            tracing::warn!(r#ref = %after.name, error = %e, "could not publish the Iceberg views");
        }
        Ok(target)
    }

    /// Deletes a branch or tag (a branch that is checked out cannot be deleted).
    pub async fn delete_ref(&self, kind: RefKind, name: &str) -> Result<ObjectId> {
        let ref_name = RefName::new(kind, name)?;
        if kind == RefKind::Branch && self.head().await? == Head::Branch(name.into()) {
            return Err(Error::DeleteCurrentBranch { name: name.into() });
        }
        let state = self.refs.read(&ref_name).await?;
        let Some(old) = state.commit() else {
            return Err(match kind {
                RefKind::Branch => Error::UnknownBranch { name: name.into() },
                RefKind::Tag => Error::UnknownTag { name: name.into() },
            });
        };
        self.update_ref(&state, None, &format!("{}: deleted", kind.noun()))
            .await?;
        Ok(old)
    }

    /// Renames a branch (HEAD follows it when it is checked out); returns its commit. The
    /// new name is written first, so a failure midway leaves both names, never neither.
    pub async fn rename_branch(&self, from: &str, to: &str) -> Result<ObjectId> {
        let from_name = RefName::branch(from)?;
        let to_name = RefName::branch(to)?;
        let from_state = self.refs.read(&from_name).await?;
        let Some(commit) = from_state.commit() else {
            return Err(Error::UnknownBranch { name: from.into() });
        };
        let to_state = self.refs.read(&to_name).await?;
        if to_state.commit().is_some() {
            return Err(Error::RefExists {
                kind: RefKind::Branch.noun().into(),
                name: to.into(),
            });
        }
        self.update_ref(
            &to_state,
            Some(commit),
            &format!("branch: renamed from {from}"),
        )
        .await?;
        if self.head().await? == Head::Branch(from.into()) {
            self.set_head(&Head::Branch(to.to_string())).await?;
        }
        self.update_ref(&from_state, None, &format!("branch: renamed to {to}"))
            .await?;
        Ok(commit)
    }

    /// Starts branch `name` at `commit` (it must not exist yet) and checks it out, replacing
    /// the working tables: what a clone does once it has fetched.
    pub async fn start_branch_at(&self, name: &str, commit: ObjectId, reason: &str) -> Result<()> {
        self.move_branch(&RefName::branch(name)?, None, Some(commit), reason)
            .await?;
        self.set_head(&Head::Branch(name.to_string())).await?;
        let tables = self.commit_tables(Some(commit)).await?;
        self.set_working(&Working { tables }).await
    }

    /// Switches to a branch (or detaches at a revision), replacing the working tables.
    /// Refuses over uncommitted changes unless `force`.
    pub async fn checkout(&self, target: &str, force: bool) -> Result<Head> {
        let branch_commit = match RefName::branch(target) {
            Ok(name) => self.refs.read(&name).await?.commit(),
            Err(_) => None,
        };
        let (head, commit) = match branch_commit {
            Some(c) => (Head::Branch(target.into()), Some(c)),
            None => {
                let id = self.resolve(target).await?;
                (Head::Detached(id), Some(id))
            }
        };
        if force {
            self.delete_local("MERGE").await?;
        } else {
            self.ensure_no_merge().await?;
        }
        self.ensure_clean(force).await?;
        let tables = self.commit_tables(commit).await?;
        self.set_head(&head).await?;
        self.set_working(&Working { tables }).await?;
        Ok(head)
    }

    /// Fails with [`Error::UncommittedChanges`] when the working tables differ from HEAD.
    pub async fn ensure_clean(&self, force: bool) -> Result<()> {
        if force {
            return Ok(());
        }
        let changed = self.changed_tables().await?;
        if !changed.is_empty() {
            return Err(Error::UncommittedChanges {
                tables: changed.join(", "),
            });
        }
        Ok(())
    }

    /// Moves the current branch (or detached HEAD) to `rev` and discards working changes.
    pub async fn reset_hard(&self, rev: &str) -> Result<ObjectId> {
        let target = self.resolve(rev).await?;
        match self.head().await? {
            Head::Branch(b) => {
                let name = RefName::branch(&b)?;
                let state = self.refs.read(&name).await?;
                if state.commit() != Some(target) {
                    self.update_ref(&state, Some(target), &format!("reset: moving to {rev}"))
                        .await?;
                }
            }
            Head::Detached(_) => self.set_head(&Head::Detached(target)).await?,
        }
        let tables = self.commit_tables(Some(target)).await?;
        self.set_working(&Working { tables }).await?;
        self.delete_local("MERGE").await?;
        Ok(target)
    }

    // ---- tables ----

    /// Removes a table from the working state.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        let mut w = self.working().await?;
        if w.tables.remove(name).is_none() {
            return Err(Error::UnknownTable { name: name.into() });
        }
        self.set_working(&w).await
    }

    /// Renames a table in the working state.
    pub async fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        validate_name("table", to)?;
        let mut w = self.working().await?;
        if w.tables.contains_key(to) {
            return Err(Error::Invalid(format!(
                "table '{to}' already exists; drop it first or choose another name"
            )));
        }
        let id = w
            .tables
            .remove(from)
            .ok_or_else(|| Error::UnknownTable { name: from.into() })?;
        w.tables.insert(to.into(), id);
        self.set_working(&w).await
    }

    /// Sets one table of the working state (`None` removes it).
    pub(crate) async fn set_working_table(
        &self,
        name: &str,
        table: Option<ObjectId>,
    ) -> Result<()> {
        let mut w = self.working().await?;
        match table {
            Some(id) => w.tables.insert(name.into(), id),
            None => w.tables.remove(name),
        };
        self.set_working(&w).await
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
) -> Result<Option<T>> {
    match crate::store::get_opt(store, path).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptObject {
                id: path.to_string(),
                reason: format!("it does not decode: {e}"),
            }),
    }
}

async fn put_json<T: Serialize>(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
    value: &T,
) -> Result<()> {
    crate::store::put(store, path, encode_json(value)?).await
}

/// A `file://` URI of an absolute path, with the bytes a URI may not hold escaped.
pub fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The commits reachable from any of `starts` and not in `hidden`, in the order of
/// [`Repository::log`], read from `objects` (a repository's, or a remote's in place).
pub async fn log_from(
    objects: &Objects,
    starts: &[ObjectId],
    hidden: &HashSet<ObjectId>,
    limit: Option<usize>,
) -> Result<Vec<(ObjectId, Commit)>> {
    // Every listed commit, with how many of its children are listed.
    let mut commits: BTreeMap<ObjectId, Commit> = BTreeMap::new();
    let mut children: BTreeMap<ObjectId, usize> = BTreeMap::new();
    let mut queue: Vec<ObjectId> = starts
        .iter()
        .filter(|s| !hidden.contains(s))
        .copied()
        .collect();
    while let Some(id) = queue.pop() {
        if commits.contains_key(&id) {
            continue;
        }
        let commit = Commit::read(objects, &id).await?;
        for p in &commit.parents {
            if hidden.contains(p) {
                continue;
            }
            *children.entry(*p).or_insert(0) += 1;
            if !commits.contains_key(p) {
                queue.push(*p);
            }
        }
        commits.insert(id, commit);
    }
    let mut ready = BinaryHeap::new();
    for (id, c) in &commits {
        if children.get(id).copied().unwrap_or(0) == 0 {
            ready.push((c.time, *id));
        }
    }
    let mut out = Vec::new();
    while let Some((_, id)) = ready.pop() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let Some(commit) = commits.remove(&id) else {
            continue;
        };
        for p in &commit.parents {
            let left = children.entry(*p).or_insert(1);
            *left = left.saturating_sub(1);
            if *left == 0 {
                if let Some(c) = commits.get(p) {
                    ready.push((c.time, *p));
                }
            }
        }
        out.push((id, commit));
    }
    Ok(out)
}

/// Splits a revision into its base and its `~N` / `^N` suffix.
fn split_rev(rev: &str) -> (&str, &str) {
    rev.split_at(rev.find(['~', '^']).unwrap_or(rev.len()))
}

/// Follows a revision's `~N` / `^N` suffix from `id` through the commits' parents.
async fn walk_ancestry(
    objects: &Objects,
    mut id: ObjectId,
    mut suffix: &str,
    rev: &str,
) -> Result<ObjectId> {
    let unknown = || Error::UnknownRevision {
        rev: rev.to_string(),
    };
    let past = |reason: String| Error::NoSuchAncestor {
        rev: rev.to_string(),
        reason,
    };
    while !suffix.is_empty() {
        // The revision up to here (`HEAD~2` of `HEAD~2^2`), for messages.
        let here = &rev[..rev.len() - suffix.len()];
        let op = suffix.as_bytes()[0];
        let rest = &suffix[1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n: usize = if digits == 0 {
            1
        } else {
            rest[..digits].parse().map_err(|_| unknown())?
        };
        suffix = &rest[digits..];
        match op {
            b'~' => {
                for step in 0..n {
                    let c = Commit::read(objects, &id).await?;
                    id = *c.parents.first().ok_or_else(|| {
                        let first = match step {
                            0 => here.to_string(),
                            _ => format!("{here}~{step}"),
                        };
                        past(format!("'{first}' is the first commit (it has no parent)"))
                    })?;
                }
            }
            b'^' => {
                if n == 0 {
                    continue;
                }
                let c = Commit::read(objects, &id).await?;
                id = *c.parents.get(n - 1).ok_or_else(|| {
                    past(match c.parents.len() {
                        0 => format!("'{here}' is the first commit (it has no parent)"),
                        1 => format!("'{here}' has one parent ('{here}^')"),
                        k => format!("'{here}' has {k} parents ('{here}^1' to '{here}^{k}')"),
                    })
                })?;
            }
            _ => return Err(unknown()),
        }
    }
    Ok(id)
}

/// Resolves a revision from a repository's refs and objects alone, as a remote is read in
/// place: a branch, a tag, a full or unique-prefix commit id, each optionally followed by
/// `~N`, `^` or `^N`. A store has no `HEAD`, reflog or remote-tracking branches.
pub async fn resolve_stored(refs: &RefLog, objects: &Objects, rev: &str) -> Result<ObjectId> {
    let (base, suffix) = split_rev(rev);
    if base == "HEAD" || base == "@" || base.contains("@{") {
        return Err(Error::Invalid(format!(
            "'{rev}': a repository read in place has no HEAD or reflog; name a branch, a tag or a commit id"
        )));
    }
    if let Some((_, branch)) = base.split_once('/') {
        return Err(Error::Invalid(format!(
            "'{rev}': a repository read in place has no remote-tracking branches; name its own branch ('{branch}')"
        )));
    }
    if validate_name("branch", base).is_ok() {
        for kind in [RefKind::Branch, RefKind::Tag] {
            if let Some(c) = refs.read(&RefName::new(kind, base)?).await?.commit() {
                return walk_ancestry(objects, c, suffix, rev).await;
            }
        }
    }
    let id = resolve_commit_id(objects, base, rev).await?;
    walk_ancestry(objects, id, suffix, rev).await
}

/// The commit a full or unique-prefix commit id names (at least 4 characters).
async fn resolve_commit_id(objects: &Objects, base: &str, rev: &str) -> Result<ObjectId> {
    let unknown = || Error::UnknownRevision {
        rev: rev.to_string(),
    };
    let is_hex = !base.is_empty() && base.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && base.len() < 4 {
        return Err(Error::Invalid(format!(
            "revision '{rev}' names no branch or tag, and is too short for a commit id; \
             give at least 4 characters of a commit id"
        )));
    }
    if is_hex && base.len() <= 64 {
        let lower = base.to_ascii_lowercase();
        if let Ok(id) = lower.parse::<ObjectId>() {
            return match Commit::read(objects, &id).await {
                Ok(_) => Ok(id),
                Err(Error::MissingObject { .. }) => Err(unknown()),
                // An intact object of another kind (a table, an index node) is no commit;
                // one whose bytes no longer hash to its id is reported as corrupt.
                Err(e @ Error::CorruptObject { .. }) => {
                    match objects
                        .get(crate::store::objects::ObjectKind::Meta, &id)
                        .await
                    {
                        Ok(_) => Err(unknown()),
                        Err(_) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
        }
        let mut found = Vec::new();
        let dir = layout::object_dir(&lower[..2]);
        let listing = crate::store::list_dir(objects.store(), &dir).await?;
        for o in listing.objects {
            let Some(name) = o.location.filename() else {
                continue;
            };
            if name.starts_with(&lower[2..]) {
                let full = format!("{}{}", &lower[..2], name);
                if let Ok(id) = full.parse::<ObjectId>() {
                    if Commit::read(objects, &id).await.is_ok() {
                        found.push(id);
                    }
                }
            }
        }
        return match found.len() {
            0 => Err(unknown()),
            1 => Ok(found[0]),
            count => Err(Error::AmbiguousRevision {
                rev: rev.to_string(),
                count,
            }),
        };
    }
    Err(unknown())
}
