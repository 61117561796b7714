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

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use strata_engine::gc::{self as engine_gc, GcReport, Swept};
use strata_engine::store::objects::{check_format, encode_json};
use strata_engine::store::{create_only, layout, Objects, RefKind, RefName};
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
    match remote.store.get(path).await {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|e| remote.storage(path, e))?;
            Ok(Some(
                serde_json::from_slice(&bytes).map_err(|e| format!("{path} does not decode: {e}")),
            ))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote.storage(path, e)),
    }
}

/// Everything stored under `dir` on the remote.
async fn list(remote: &Remote, dir: &Path) -> Result<Vec<object_store::ObjectMeta>> {
    remote
        .store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(|e| remote.storage(dir, e))
}

/// The newest record of the lock: its number, and what it says (`Err`: it does not decode).
async fn newest_lock_record(
    remote: &Remote,
) -> Result<Option<(u64, std::result::Result<GcLock, String>)>> {
    let dir = layout::gc_lock_dir();
    for _ in 0..5 {
        let metas = list(remote, &dir).await?;
        let newest = metas
            .iter()
            .filter_map(|m| m.location.filename().and_then(layout::parse_record_seq))
            .max();
        let Some(seq) = newest else {
            return Ok(None);
        };
        // Gone since the listing: compaction removed it, so a newer one exists.
        if let Some(record) = get_json::<GcLock>(remote, &layout::gc_lock_record(seq)).await? {
            return Ok(Some((seq, record)));
        }
    }
    Err(Error::Invalid(format!(
        "the garbage collection lock {}/{dir} kept changing while it was read; retry",
        remote.url
    )))
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
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(lease = %self.path, error = %e, "could not remove a push lease")
            }
        }
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
    let bytes = encode_json(&lease)?;
    remote
        .store
        .put(&path, PutPayload::from_bytes(bytes))
        .await
        .map_err(|e| remote.storage(&path, e))?;
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
    /// Take over a lock held by this same repository: the caller guarantees (with a local
    /// lock) that no other collection from this repository runs, so that one was interrupted.
    pub resume_own: bool,
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
}

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
            ref_records: 0,
        };
        return Ok(report);
    }
    let ours = GcLock {
        format: GC_FORMAT,
        id: uuid::Uuid::new_v4().to_string(),
        writer: remote.refs.writer().to_string(),
        time,
        held: true,
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
    report.gc.removed = engine_gc::sweep(&remote.objects, &garbage, progress).await?;
    // 5. Compact the ref logs, keeping every record a lease names.
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
    for _ in 0..5 {
        let (seq, took_over) = match newest_lock_record(remote).await? {
            None => (1, None),
            Some((n, record)) => match holder(n, record)? {
                None => (n + 1, None),
                Some(found) => {
                    let own = opts.resume_own && found.writer == ours.writer;
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
            continue;
        }
        // Still the newest, and still ours (on a store whose create-only puts can both
        // succeed, the later one's content is what everyone reads).
        match newest_lock_record(remote).await? {
            Some((newest, Ok(record))) if newest == seq && record.id == ours.id => {
                if let Some(found) = &took_over {
                    tracing::warn!(remote = %remote.name, gc = %found.id, "took over the garbage collection lock");
                }
                return Ok((seq, took_over));
            }
            // A number below the newest, or another collection's: not the lock. Look again.
            _ => continue,
        }
    }
    Err(Error::Invalid(format!(
        "could not take the garbage collection lock {}/{}; retry",
        remote.url,
        layout::gc_lock_dir()
    )))
}

/// Creates lock record `seq` (create-only). A failure, or an unknown outcome, is settled by
/// reading the record back: `true` if it is this collection's, `false` if another's.
async fn create_lock_record(remote: &Remote, seq: u64, record: &GcLock) -> Result<bool> {
    let path = layout::gc_lock_record(seq);
    let put = remote
        .store
        .put_opts(
            &path,
            PutPayload::from_bytes(encode_json(record)?),
            create_only(),
        )
        .await;
    let Err(e) = put else {
        return Ok(true);
    };
    match get_json::<GcLock>(remote, &path).await? {
        Some(Ok(found)) => Ok(found.id == record.id),
        Some(Err(_)) => Ok(false),
        // Taken, then removed again by compaction: not ours.
        None if matches!(e, object_store::Error::AlreadyExists { .. }) => Ok(false),
        None => Err(remote.storage(&path, e)),
    }
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
    let dir = layout::gc_lock_dir();
    let metas = list(remote, &dir).await?;
    for m in metas {
        let old = m
            .location
            .filename()
            .and_then(layout::parse_record_seq)
            .is_some_and(|n| n <= seq);
        if old {
            match remote.store.delete(&m.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote.storage(&m.location, e)),
            }
        }
    }
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
    let lock_time = remote
        .store
        .head(&layout::gc_lock_record(lock_seq))
        .await
        .ok()
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
