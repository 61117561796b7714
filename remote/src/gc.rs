//! Garbage collection of a remote, safe against concurrent pushes (docs/protocol.md, section 8).
//!
//! A push announces, in a lease, the ref records it may create, then checks that no
//! collection is running. A collection takes the lock (a log of create-only records in
//! `gc/lock/`, whose newest record says who holds it), lists the objects (the only
//! ones it may delete), then fences every announced record by creating it itself. From then
//! on no push that started before it can move a ref: its create-only write fails, and it
//! re-checks and re-uploads what it needs after the collection. Only then does the collection
//! read the refs, mark what they reach and delete the rest. Clocks play no part.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use strata_engine::gc::{self as engine_gc, GcReport, Swept};
use strata_engine::retry::{Attempt, Retry};
use strata_engine::store::log::{NumberedLog, Outcome};
use strata_engine::store::objects::{check_format, encode_json};
use strata_engine::store::{self, layout, Objects, RefKind, RefName};
use strata_engine::Progress;

use crate::error::{Error, Result};
use crate::remote::Remote;

/// Format of the lock and lease files understood by this build.
pub const GC_FORMAT: u32 = 1;

/// A record of the lock, `gc/lock/<n>`: the newest one says whether a collection holds it.
/// Records are created, never overwritten, so an old request that arrives late (a retried
/// release, say) cannot undo a newer collection's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcLock {
    pub format: u32,
    /// The collection that wrote the record (also written into its fence records).
    pub id: String,
    /// The writer id of the repository that runs it.
    pub writer: String,
    /// Seconds since the Unix epoch, for people.
    pub time: i64,
    /// Whether that collection holds the lock (`false`: it released it).
    pub held: bool,
    /// The checkout that runs it (host, folder and file identity of its `.strata`): copies
    /// of one checkout share the writer id, never this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// One ref record a push may create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// `refs/heads/main`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub seq: u64,
}

/// `leases/<id>`: the ref records a push in flight may create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub format: u32,
    pub writer: String,
    pub time: i64,
    pub slots: Vec<Slot>,
}

/// Says when a time (seconds since the epoch) was, for messages.
pub fn when(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| time.to_string())
}

async fn get_json<T: serde::de::DeserializeOwned>(
    remote: &Remote,
    path: &Path,
) -> Result<Option<std::result::Result<T, String>>> {
    let bytes = store::get_opt(&remote.store, path)
        .await
        .map_err(|e| remote.located(e))?;
    Ok(bytes.map(|b| decode(path, &b)))
}

fn decode<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> std::result::Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{path} does not decode: {e}"))
}

/// Everything stored under `dir` on the remote.
async fn list(remote: &Remote, dir: &Path) -> Result<Vec<object_store::ObjectMeta>> {
    store::list_all(&remote.store, dir)
        .await
        .map_err(|e| remote.located(e))
}

/// The lock's log of records.
fn lock_log(remote: &Remote) -> NumberedLog {
    NumberedLog::new(remote.store.clone(), layout::gc_lock_dir())
}

/// The newest record of the lock: its number, and what it says (`Err`: it does not decode).
async fn newest_lock_record(
    remote: &Remote,
) -> Result<Option<(u64, std::result::Result<GcLock, String>)>> {
    let log = lock_log(remote);
    let newest = log.newest(0).await.map_err(|e| remote.located(e))?;
    Ok(newest.map(|(seq, bytes)| (seq, decode(&log.record(seq), &bytes))))
}

/// The collection a lock record says holds the lock, if any. A record that does not decode
/// counts as held (fail closed).
fn holder(seq: u64, record: std::result::Result<GcLock, String>) -> Result<Option<GcLock>> {
    match record {
        Ok(lock) => {
            let path = layout::gc_lock_record(seq);
            check_format(&format!("{path}"), lock.format, GC_FORMAT)?;
            Ok(lock.held.then_some(lock))
        }
        Err(_) => Ok(Some(GcLock {
            format: GC_FORMAT,
            id: "unknown (the lock record does not decode)".into(),
            writer: "unknown".into(),
            time: 0,
            held: true,
            holder: None,
        })),
    }
}

/// The collection running on the remote, if any.
pub async fn current_lock(remote: &Remote) -> Result<Option<GcLock>> {
    match newest_lock_record(remote).await? {
        None => Ok(None),
        Some((seq, record)) => holder(seq, record),
    }
}

/// A push's lease, withdrawn when the push ends.
pub struct Announcement {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl Announcement {
    /// Removes the lease. A lease left behind (a crash) is harmless: it pins the records it
    /// names against compaction, nothing more.
    pub async fn withdraw(self) {
        if let Err(e) = store::delete_opt(&self.store, &self.path).await {
            tracing::warn!(lease = %self.path, error = %e, "could not remove a push lease")
        }
    }

    /// Leaves the lease in place: a write of the push may still land (its outcome is
    /// unknown), and the lease is what makes a garbage collection fence it first.
    pub fn keep(self) {
        tracing::info!(lease = %self.path, "leaving the push lease: a ref write's outcome is unknown");
    }
}

/// Announces the ref records a push may create, then checks that no collection runs.
/// `Ok(Err(lock))`: one does; the lease is withdrawn and the caller waits for it.
pub async fn announce(
    remote: &Remote,
    slots: Vec<Slot>,
    time: i64,
) -> Result<std::result::Result<Announcement, GcLock>> {
    let lease = LeaseRecord {
        format: GC_FORMAT,
        writer: remote.refs.writer().to_string(),
        time,
        slots,
    };
    let path = layout::lease(&uuid::Uuid::new_v4().to_string());
    store::put(&remote.store, &path, encode_json(&lease)?)
        .await
        .map_err(|e| remote.located(e))?;
    let announcement = Announcement {
        store: remote.store.clone(),
        path,
    };
    match current_lock(remote).await {
        Ok(None) => Ok(Ok(announcement)),
        Ok(Some(lock)) => {
            announcement.withdraw().await;
            Ok(Err(lock))
        }
        Err(e) => {
            announcement.withdraw().await;
            Err(e)
        }
    }
}

/// Waits until the collection holding the lock has finished (at most `limit`).
pub async fn wait_for_gc(remote: &Remote, lock: GcLock, limit: Duration) -> Result<()> {
    tracing::info!(remote = %remote.name, gc = %lock.id, "waiting for a garbage collection on the remote to finish");
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut current = lock;
    loop {
        if start.elapsed() >= limit {
            return Err(Error::GcRunning {
                url: remote.url.clone(),
                remote: remote.name.clone(),
                id: current.id,
                since: when(current.time),
            });
        }
        tokio::time::sleep(pause.min(limit.saturating_sub(start.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_millis(250));
        match current_lock(remote).await? {
            None => return Ok(()),
            Some(l) => current = l,
        }
    }
}

/// How a collection treats a lock it finds.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Report what would be removed; change nothing (no lock, no fences).
    pub dry_run: bool,
    /// Take the lock even though another collection holds it (the user says it is dead).
    pub break_lock: bool,
    /// Take over a lock held by this same checkout (`holder`): the caller guarantees (with a
    /// local lock) that no other collection from this checkout runs, so that one was
    /// interrupted.
    pub resume_own: bool,
    /// Who runs this collection (see [`GcLock::holder`]).
    pub holder: Option<String>,
    /// How long to give pushes in flight to finish before fencing them (default
    /// [`LEASE_GRACE`]; zero fences at once).
    pub lease_grace: Option<Duration>,
}

/// What a remote collection did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteGcReport {
    #[serde(flatten)]
    pub gc: GcReport,
    /// Fence records written (pushes in flight that must re-check and retry).
    pub fenced: u64,
    /// Leases of pushes that have not finished (still running, or crashed).
    pub leases: u64,
    /// The interrupted collection this one took over from.
    pub took_over: Option<String>,
    /// Notes of waiting pushes removed: older than [`STALE_NOTES`], left by pushes that
    /// stopped (docs/protocol.md, section 6, "Waiting pushes").
    pub stale_notes: u64,
}

/// The age from which a collection removes a waiting push's note.
pub const STALE_NOTES: Duration = Duration::from_secs(3600);

/// Collects `remote`. `cache` stores (the local repository) are read first while marking:
/// an object's id is the hash of its bytes, so any copy is as good as the remote's.
pub async fn collect(
    remote: &Remote,
    cache: &[&Objects],
    opts: &GcOptions,
    time: i64,
    progress: &dyn Progress,
) -> Result<RemoteGcReport> {
    remote.check().await?;
    let mut report = RemoteGcReport::default();
    if opts.dry_run {
        let listed = engine_gc::list_objects(&remote.objects).await?;
        let marked = mark(remote, cache).await?;
        let (garbage, kept) = engine_gc::partition(listed, &marked);
        report.gc = GcReport {
            removed: Swept::of(&garbage),
            kept,
            dry_run: true,
            ..Default::default()
        };
        return Ok(report);
    }
    // The lock and the fences are create-only writes: refuse a store that does not enforce
    // them (probed once per remote, unless the caller recorded that it passed).
    remote.ensure_trusted().await?;
    let ours = GcLock {
        format: GC_FORMAT,
        id: uuid::Uuid::new_v4().to_string(),
        writer: remote.refs.writer().to_string(),
        time,
        held: true,
        holder: opts.holder.clone(),
    };
    let (seq, took_over) = acquire_lock(remote, &ours, opts).await?;
    report.took_over = took_over.map(|l| l.id);
    let grace = opts.lease_grace.unwrap_or(LEASE_GRACE);
    let outcome = collect_locked(
        remote,
        cache,
        &ours.id,
        seq,
        time,
        grace,
        progress,
        &mut report,
    )
    .await;
    // Every step leaves the remote consistent, so the lock goes even after a failure (if
    // the store lets us): pushes need not wait for someone to run gc again.
    let released = release_lock(remote, &ours, seq).await;
    outcome?;
    released?;
    // Notes are hints that name no ref: old ones go whatever else happened.
    report.stale_notes = crate::waiting::remove_stale(remote, STALE_NOTES).await?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn collect_locked(
    remote: &Remote,
    cache: &[&Objects],
    id: &str,
    lock_seq: u64,
    time: i64,
    grace: Duration,
    progress: &dyn Progress,
    report: &mut RemoteGcReport,
) -> Result<()> {
    // 1. The candidates: only objects stored before the fences may be deleted.
    let listed = engine_gc::list_objects(&remote.objects).await?;
    // 2. Fence every push in flight.
    let fences = fence_leases(remote, id, lock_seq, time, grace).await?;
    report.fenced = fences.written;
    report.leases = fences.leases;
    // 3-4. Mark from the refs as they are now (no push can move them any more), sweep.
    let marked = mark(remote, cache).await?;
    let (garbage, kept) = engine_gc::partition(listed, &marked);
    report.gc.kept = kept;
    // Nothing is deleted unless this collection still holds the lock: one that was taken
    // over (`--break-lock` elsewhere) stops here.
    ensure_held(remote, lock_seq, id).await?;
    report.gc.removed = engine_gc::sweep(&remote.objects, &garbage, progress).await?;
    report.gc.iceberg_files =
        strata_engine::iceberg::collect(&remote.objects, &remote.refs, &garbage).await?;
    // 5. Compact the ref logs, keeping every record a lease names.
    ensure_held(remote, lock_seq, id).await?;
    for kind in [RefKind::Branch, RefKind::Tag] {
        for name in remote.refs.names(kind).await? {
            let pinned = fences.pins.get(&name).cloned().unwrap_or_default();
            report.gc.ref_records += remote.refs.compact(&name, &pinned).await?;
        }
    }
    Ok(())
}

/// Everything the remote's refs reach.
async fn mark(
    remote: &Remote,
    cache: &[&Objects],
) -> Result<std::collections::HashSet<engine_gc::ObjectKey>> {
    let mut roots = Vec::new();
    for kind in [RefKind::Branch, RefKind::Tag] {
        roots.extend(remote.refs.list(kind).await?.into_iter().map(|(_, c)| c));
    }
    let mut sources: Vec<&Objects> = cache.to_vec();
    sources.push(&remote.objects);
    engine_gc::mark(&sources, &roots)
        .await
        .map_err(|e| match e {
            source @ (strata_engine::Error::MissingObject { .. }
            | strata_engine::Error::CorruptObject { .. }) => Error::Incomplete {
                url: remote.url.clone(),
                source,
            },
            other => Error::Engine(other),
        })
}

/// Takes the lock: creates the record after the newest (create-only, so of two collections
/// one wins), which must then still be the newest: a writer that read an old listing could
/// otherwise create a number that compaction had freed, below the newest. Returns the number
/// of the record and the collection taken over from (`--break-lock`, or an interrupted
/// collection of this repository).
async fn acquire_lock(
    remote: &Remote,
    ours: &GcLock,
    opts: &GcOptions,
) -> Result<(u64, Option<GcLock>)> {
    let attempt = |_| async move {
        let (seq, took_over) = match newest_lock_record(remote).await? {
            None => (1, None),
            Some((n, record)) => match holder(n, record)? {
                None => (n + 1, None),
                Some(found) => {
                    // Only the same checkout resumes its own collection: a copy of the
                    // folder has the same writer id but another holder.
                    let own = opts.resume_own
                        && found.writer == ours.writer
                        && found.holder == ours.holder;
                    if !(opts.break_lock || own) {
                        return Err(Error::GcRunning {
                            url: remote.url.clone(),
                            remote: remote.name.clone(),
                            id: found.id,
                            since: when(found.time),
                        });
                    }
                    (n + 1, Some(found))
                }
            },
        };
        if !create_lock_record(remote, seq, ours).await? {
            return Ok(Attempt::Again(format!(
                "lock record {seq} is another collection's"
            )));
        }
        // Still the newest, and still ours (on a store whose create-only puts can both
        // succeed, the later one's content is what everyone reads). If that cannot be read,
        // the record this collection created is released before it gives up, so that pushes
        // are not held up by a lock nobody works under.
        let held = match holds(remote, seq, &ours.id).await {
            Ok(held) => held,
            Err(e) => {
                if let Err(release) = release_lock(remote, ours, seq).await {
                    tracing::warn!(remote = %remote.name, "could not release the garbage collection lock: {release}");
                }
                return Err(e);
            }
        };
        if !held {
            return Ok(Attempt::Again(format!(
                "lock record {seq} is not the newest"
            )));
        }
        if let Some(found) = &took_over {
            tracing::warn!(remote = %remote.name, gc = %found.id, "took over the garbage collection lock");
        }
        Ok(Attempt::Done((seq, took_over)))
    };
    Retry::at_once(5)
        .run(
            &format!("taking the garbage collection lock of {}", remote.url),
            attempt,
        )
        .await
}

/// Whether record `seq`, written by collection `id`, is the lock's newest record.
async fn holds(remote: &Remote, seq: u64, id: &str) -> Result<bool> {
    Ok(matches!(
        newest_lock_record(remote).await?,
        Some((newest, Ok(record))) if newest == seq && record.id == id && record.held
    ))
}

/// Stops a collection whose lock was taken over (`--break-lock` elsewhere): checked before
/// every step that deletes.
async fn ensure_held(remote: &Remote, seq: u64, id: &str) -> Result<()> {
    if holds(remote, seq, id).await? {
        return Ok(());
    }
    let by = match current_lock(remote).await? {
        Some(l) => format!("collection {}", l.id),
        None => "nobody (it was released)".into(),
    };
    Err(Error::Invalid(format!(
        "garbage collection {id} stopped: its lock on {} is now held by {by}; nothing more was deleted",
        remote.url
    )))
}

/// Creates lock record `seq` (create-only): `true` if it is this collection's, `false` if
/// another's (an unclear outcome is settled by reading the record back).
async fn create_lock_record(remote: &Remote, seq: u64, record: &GcLock) -> Result<bool> {
    let outcome = lock_log(remote)
        .create(seq, encode_json(record)?)
        .await
        .map_err(|e| remote.located(e))?;
    Ok(outcome == Outcome::Won)
}

/// Releases the lock held by record `seq`: creates the next record, saying so. If that
/// number is taken, someone took the lock over from this collection, and it is theirs now.
/// Then removes the records before it, which nothing reads any more.
async fn release_lock(remote: &Remote, ours: &GcLock, seq: u64) -> Result<()> {
    let released = GcLock {
        held: false,
        ..ours.clone()
    };
    if !create_lock_record(remote, seq + 1, &released).await? {
        return Ok(());
    }
    lock_log(remote)
        .remove_below(seq + 1, &BTreeSet::new())
        .await
        .map_err(|e| remote.located(e))?;
    Ok(())
}

struct Fences {
    /// Per ref, the record numbers announced by leases (never compacted away).
    pins: BTreeMap<RefName, BTreeSet<u64>>,
    written: u64,
    leases: u64,
}

/// How long a collection gives the pushes in flight to finish before fencing them.
pub const LEASE_GRACE: Duration = Duration::from_secs(2);

/// A lease written this long before the collection's lock is taken for a crashed push's and
/// not waited for.
const LEASE_STALE_SECS: i64 = 60;

/// Gives the pushes in flight a moment to finish (their leases disappear), so that a
/// collection seldom makes a push start over. Politeness only: whatever lease is still there
/// afterwards is fenced, whatever its age; the times compared are the store's own.
async fn let_pushes_finish(
    remote: &Remote,
    metas: &[object_store::ObjectMeta],
    lock_seq: u64,
    grace: Duration,
) -> Result<()> {
    let lock_time = store::head_opt(&remote.store, &layout::gc_lock_record(lock_seq))
        .await
        .ok()
        .flatten()
        .map(|m| m.last_modified);
    let mut waiting: BTreeSet<Path> = metas
        .iter()
        .filter(|m| {
            lock_time
                .is_none_or(|t| m.last_modified + chrono::Duration::seconds(LEASE_STALE_SECS) >= t)
        })
        .map(|m| m.location.clone())
        .collect();
    let start = std::time::Instant::now();
    let dir = layout::leases_dir();
    while !waiting.is_empty() && start.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now: BTreeSet<Path> = list(remote, &dir)
            .await?
            .into_iter()
            .map(|m| m.location)
            .collect();
        waiting.retain(|p| now.contains(p));
    }
    Ok(())
}

/// Fences every record that a lease announces: after this, the record exists, so the push
/// that announced it can never create it.
async fn fence_leases(
    remote: &Remote,
    gc: &str,
    lock_seq: u64,
    time: i64,
    grace: Duration,
) -> Result<Fences> {
    let dir = layout::leases_dir();
    let metas = list(remote, &dir).await?;
    let mut fences = Fences {
        pins: BTreeMap::new(),
        written: 0,
        leases: 0,
    };
    if !metas.is_empty() && !grace.is_zero() {
        let_pushes_finish(remote, &metas, lock_seq, grace).await?;
    }
    for m in metas {
        let lease = match get_json::<LeaseRecord>(remote, &m.location).await? {
            None => continue, // the push finished meanwhile
            Some(lease) => lease,
        };
        let slots = lease.and_then(|l| {
            l.slots
                .iter()
                .map(|s| RefName::parse(&s.ref_name).map(|n| (n, s.seq)))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        });
        // A lease that cannot be read could name any record: nothing may be deleted.
        let slots = slots.map_err(|reason| {
            Error::Invalid(format!(
                "garbage collection stopped before deleting anything: the push lease {}/{} is unreadable ({reason}); if no push is running, delete it and run gc again",
                remote.url, m.location
            ))
        })?;
        fences.leases += 1;
        for (name, seq) in slots {
            fences.written += remote
                .refs
                .fence(&name, seq, gc, time)
                .await
                .map_err(|e| match e {
                    strata_engine::Error::Invalid(reason) => Error::Invalid(format!(
                        "garbage collection stopped before deleting anything: the push lease {}/{} cannot be honoured ({reason}); if no push is running, delete it and run gc again",
                        remote.url, m.location
                    )),
                    other => other.into(),
                })?;
            fences.pins.entry(name).or_default().insert(seq);
        }
    }
    Ok(fences)
}
