//! Push: upload what the remote lacks, then move each ref by compare-and-swap
//! (docs/protocol.md, section 6).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use strata_engine::iceberg;
use strata_engine::store::{RefKind, RefLog, RefName, RefState, TagNote};
use strata_engine::{ObjectId, Progress, Repository};

use crate::config::{self, Upstream};
use crate::error::{Error, Result};
use crate::gc;
use crate::remote::Remote;
use crate::transfer::{Transfer, TransferStats};

/// How the remote's current value must look for a forced update to proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The remote branch must be where `REMOTE/BRANCH` says it was at the last fetch.
    Tracking,
    /// The remote branch must be at this commit (`None`: must not exist).
    Expected(String, Option<ObjectId>),
}

/// Options of a push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub force: bool,
    pub lease: Option<Lease>,
    pub atomic: bool,
    pub tags: bool,
    pub set_upstream: bool,
    /// How long to wait for a garbage collection on the remote (default [`DEFAULT_GC_WAIT`]).
    pub gc_wait: Option<Duration>,
    /// Leave the remote's Iceberg views as they are (docs/protocol.md, section 10).
    pub skip_views: bool,
}

/// What happened to one ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    UpToDate,
    Created,
    FastForward,
    Forced,
    /// Forced over a current record that is damaged (its commit unknown).
    Replaced,
    Deleted,
}

/// One ref's update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub name: RefName,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
    pub kind: UpdateKind,
}

/// The outcome of a push: the refs that moved (or were up to date) and those rejected.
#[derive(Debug, Default)]
pub struct PushReport {
    /// Refs that moved (and stay moved), or were up to date.
    pub updates: Vec<RefUpdate>,
    pub rejected: Vec<Error>,
    /// Refs an atomic push moved, then moved back to their old values (new records).
    pub rolled_back: Vec<RefName>,
    /// Refs an atomic push moved and could not move back, with why: they stay moved.
    pub rollback_failed: Vec<(RefName, String)>,
    pub transferred: TransferStats,
}

struct Planned {
    state: RefState,
    new: Option<ObjectId>,
    kind: UpdateKind,
    /// An annotated tag's note, written with the new record.
    note: Option<TagNote>,
}

/// How long a push waits for a garbage collection on the remote before giving up.
pub const DEFAULT_GC_WAIT: Duration = Duration::from_secs(120);

/// One ref a push sets on the remote, and where its value comes from (a refspec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSpec {
    /// The local branch or tag whose commit is pushed; `None` deletes `remote`.
    pub local: Option<RefName>,
    /// The ref on the remote (of the same kind as `local`).
    pub remote: RefName,
}

impl PushSpec {
    /// Pushes a local branch or tag to the ref of the same name on the remote.
    pub fn same(name: RefName) -> Self {
        PushSpec {
            local: Some(name.clone()),
            remote: name,
        }
    }
}

/// Pushes local `branches` (and with `opts.tags`, all tags), and deletes `deletes` on the remote.
pub async fn push(
    repo: &Repository,
    remote: &Remote,
    branches: &[String],
    deletes: &[String],
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let mut specs = Vec::new();
    for b in branches {
        specs.push(PushSpec::same(RefName::branch(b)?));
    }
    for d in deletes {
        specs.push(PushSpec {
            local: None,
            remote: RefName::branch(d)?,
        });
    }
    push_specs(repo, remote, &specs, opts, progress).await
}

/// Pushes each spec (and with `opts.tags`, every tag under its own name).
pub async fn push_specs(
    repo: &Repository,
    remote: &Remote,
    specs: &[PushSpec],
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    // Everything the push needs from this repository is checked before the remote is
    // touched: a push with a bad argument writes nothing anywhere.
    let mut wanted: Vec<(RefName, Option<ObjectId>)> = Vec::new();
    // Annotated tags' notes, by the name they get on the remote.
    let mut notes: HashMap<RefName, TagNote> = HashMap::new();
    for spec in specs {
        let commit =
            match &spec.local {
                None => None,
                Some(local) => {
                    Some(repo.refs().read(local).await?.commit().ok_or_else(
                        || match local.kind {
                            RefKind::Branch => strata_engine::Error::UnknownBranch {
                                name: local.name.clone(),
                            },
                            RefKind::Tag => strata_engine::Error::UnknownTag {
                                name: local.name.clone(),
                            },
                        },
                    )?)
                }
            };
        if let Some(local) = spec.local.as_ref().filter(|l| l.kind == RefKind::Tag) {
            if let Some(note) = repo.refs().read(local).await?.record.and_then(|r| r.note) {
                notes.insert(spec.remote.clone(), note);
            }
        }
        wanted.push((spec.remote.clone(), commit));
    }
    if opts.tags {
        for (t, c) in repo.list_refs(RefKind::Tag).await? {
            let name = RefName::tag(&t)?;
            if !wanted.iter().any(|(n, _)| *n == name) {
                if let Some(note) = repo.refs().read(&name).await?.record.and_then(|r| r.note) {
                    notes.insert(name.clone(), note);
                }
                wanted.push((name, Some(c)));
            }
        }
    }
    remote.ensure_initialized().await?;
    remote.ensure_trusted_in(repo).await?;

    // Refs moved by an attempt that a garbage collection then fenced: the next attempt finds
    // them up to date, but they moved in this push.
    let mut moved_earlier: Vec<RefUpdate> = Vec::new();
    let mut transferred = TransferStats::default();
    let limit = opts.gc_wait.unwrap_or(DEFAULT_GC_WAIT);
    let start = std::time::Instant::now();
    loop {
        let wait = match attempt(repo, remote, &wanted, &notes, opts, progress).await? {
            Attempt::Done(mut report) => {
                for u in &mut report.updates {
                    if u.kind == UpdateKind::UpToDate {
                        if let Some(earlier) = moved_earlier.iter().find(|e| e.name == u.name) {
                            *u = earlier.clone();
                        }
                    }
                }
                report.transferred.objects += transferred.objects;
                report.transferred.bytes += transferred.bytes;
                remember(repo, remote, &report, specs, opts).await?;
                return Ok(report);
            }
            Attempt::Fenced { moved, stats, lock } => {
                moved_earlier.extend(moved);
                transferred.objects += stats.objects;
                transferred.bytes += stats.bytes;
                lock
            }
        };
        // Collections keep this push waiting for at most `limit` in all.
        let remaining = limit.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            return Err(Error::Invalid(format!(
                "garbage collections on remote '{}' kept interrupting this push for {} s; push again (STRATA_GC_WAIT sets how long to wait)",
                remote.name,
                limit.as_secs()
            )));
        }
        let lock = match wait {
            Some(lock) => Some(lock),
            None => gc::current_lock(remote).await?,
        };
        if let Some(lock) = lock {
            gc::wait_for_gc(remote, lock, remaining).await?;
        }
    }
}

/// What one attempt of a push came to.
enum Attempt {
    Done(PushReport),
    /// A garbage collection runs (`lock`) or fenced this attempt: wait, then start over.
    Fenced {
        moved: Vec<RefUpdate>,
        stats: TransferStats,
        lock: Option<gc::GcLock>,
    },
}

/// One attempt: read the refs, announce the records to create, upload, move the refs.
async fn attempt(
    repo: &Repository,
    remote: &Remote,
    wanted: &[(RefName, Option<ObjectId>)],
    notes: &HashMap<RefName, TagNote>,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Attempt> {
    // 1-2. Read every target ref afresh and check its update.
    let mut report = PushReport::default();
    let mut planned: Vec<Planned> = Vec::new();
    let mut reach_cache: HashMap<ObjectId, HashSet<ObjectId>> = HashMap::new();
    for (name, new) in wanted.iter().cloned() {
        let (state, checked) = match remote.refs.read(&name).await {
            // A damaged current record: only a plain force replaces it (its commit is
            // unknown, so no lease can match it and nothing is a fast-forward of it). Not an
            // atomic push: rolling back could not bring the damaged record back.
            Err(e @ strata_engine::Error::CorruptRef { .. })
                if opts.force && opts.lease.is_none() && !opts.atomic =>
            {
                tracing::info!(r#ref = %name, error = %e, "replacing a damaged ref record");
                let kind = if new.is_some() {
                    UpdateKind::Replaced
                } else {
                    UpdateKind::Deleted
                };
                (RefLog::state_over_damage(&name, e)?, Ok(kind))
            }
            read => {
                let state = read?;
                let old = state.commit();
                let checked = check(repo, remote, &name, old, new, opts, &mut reach_cache).await;
                (state, checked)
            }
        };
        let old = state.commit();
        match checked {
            Ok(UpdateKind::UpToDate) => report.updates.push(RefUpdate {
                name,
                old,
                new,
                kind: UpdateKind::UpToDate,
            }),
            Ok(kind) => planned.push(Planned {
                note: notes.get(&state.name).cloned(),
                state,
                new,
                kind,
            }),
            Err(e) if e.is_rejection() || matches!(e, Error::UnknownRemoteBranch { .. }) => {
                report.rejected.push(e)
            }
            Err(e) => return Err(e),
        }
    }
    if planned.is_empty() || (opts.atomic && !report.rejected.is_empty()) {
        return Ok(Attempt::Done(report));
    }

    // Announce the records this attempt may create (an atomic push may also roll back).
    let mut slots = Vec::new();
    for p in &planned {
        let seqs = if opts.atomic && planned.len() > 1 {
            vec![p.state.seq + 1, p.state.seq + 2]
        } else {
            vec![p.state.seq + 1]
        };
        for seq in seqs {
            slots.push(gc::Slot {
                ref_name: p.state.name.to_string(),
                seq,
            });
        }
    }
    let lease = match gc::announce(remote, slots, repo.now()).await? {
        Ok(lease) => lease,
        Err(lock) => {
            return Ok(Attempt::Fenced {
                moved: Vec::new(),
                stats: TransferStats::default(),
                lock: Some(lock),
            })
        }
    };
    // The refs must still be where they were read: a number freed by compaction before the
    // lease was written could otherwise be created again (docs/protocol.md, section 8).
    let mut current = Vec::with_capacity(planned.len());
    for p in planned {
        match remote.refs.is_current(&p.state).await {
            Ok(true) => current.push(p),
            Ok(false) => report.rejected.push(Error::Moved {
                branch: p.state.name.name.clone(),
            }),
            Err(e) => {
                lease.withdraw().await;
                return Err(e.into());
            }
        }
    }
    if current.is_empty() || (opts.atomic && !report.rejected.is_empty()) {
        lease.withdraw().await;
        return Ok(Attempt::Done(report));
    }
    let outcome = upload_and_move(repo, remote, current, report, opts, progress).await;
    match &outcome {
        // A ref write that may still land: the lease must stay, so that a collection fences
        // it before deleting anything it names (docs/protocol.md, section 8).
        Err(Error::Engine(e)) if e.is_unknown_outcome() => lease.keep(),
        _ => lease.withdraw().await,
    }
    outcome
}

/// Uploads `commit` and what it reaches, taking as complete on the remote only what
/// `anchor` (a commit the remote's branch had, when this repository has it) reaches; moves no
/// ref. A waiting push does this before leaving its note (docs/protocol.md, section 6,
/// "Waiting pushes"). Without a lease a garbage collection may remove what this uploads: the
/// push that merges the commit then cannot read it and leaves it to its own push.
pub async fn upload_commit(
    repo: &Repository,
    remote: &Remote,
    commit: ObjectId,
    anchor: Option<ObjectId>,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    upload(
        repo,
        remote,
        &[commit],
        anchor.into_iter().collect(),
        progress,
    )
    .await
}

/// Uploads what `tips` reach, oldest first, taking as complete on the remote only what the
/// `anchors` (commits the remote's refs hold) reach; anchors this repository does not have
/// (pushed by others, not fetched) cannot help.
async fn upload(
    repo: &Repository,
    remote: &Remote,
    tips: &[ObjectId],
    anchors: Vec<ObjectId>,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let mut local_anchors = Vec::with_capacity(anchors.len());
    for a in anchors {
        if repo
            .objects()
            .exists(strata_engine::store::ObjectKind::Meta, &a)
            .await?
        {
            local_anchors.push(a);
        }
    }
    let known = repo.reachable_from(&local_anchors).await?;
    let transfer = Transfer::new(repo.objects(), &remote.objects, repo.objects(), progress)
        .checking_presence();
    let missing = transfer.missing_commits(tips, &known).await?;
    tracing::info!(remote = %remote.url, commits = missing.len(), "uploading");
    transfer.copy_commits(missing).await?;
    Ok(transfer.stats())
}

/// Steps 3-5 of a push, under a lease.
async fn upload_and_move(
    repo: &Repository,
    remote: &Remote,
    planned: Vec<Planned>,
    mut report: PushReport,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Attempt> {
    // 3-4. Upload everything the new values reach, oldest first. Only what the remote's refs
    // reach is taken as complete there.
    let tips: Vec<ObjectId> = planned.iter().filter_map(|p| p.new).collect();
    let mut anchors: Vec<ObjectId> = planned.iter().filter_map(|p| p.state.commit()).collect();
    if planned.iter().any(|p| p.kind != UpdateKind::FastForward) {
        // A new or forced ref: the remote's other branches may already hold most of it.
        for name in remote.refs.names(RefKind::Branch).await? {
            match remote.refs.read(&name).await {
                Ok(state) => anchors.extend(state.commit()),
                // A damaged ref (this push may be replacing it) cannot help.
                Err(strata_engine::Error::CorruptRef { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    report.transferred = upload(repo, remote, &tips, anchors, progress).await?;

    // 5. Move the refs.
    let mut moved: Vec<(RefState, Option<ObjectId>)> = Vec::new();
    for p in planned {
        let name = p.state.name.clone();
        match remote
            .refs
            .update_noted(&p.state, p.new, repo.now(), None, p.note.clone())
            .await
        {
            Ok(after) => {
                moved.push((after, p.state.commit()));
                report.updates.push(RefUpdate {
                    name,
                    old: p.state.commit(),
                    new: p.new,
                    kind: p.kind,
                });
            }
            Err(e) if e.is_fence() => {
                // A garbage collection may have deleted what this attempt relied on: the
                // refs not moved yet are pushed again, from the start, once it has finished.
                // An atomic push first moves back the refs it moved, so that all of them
                // move together in the next attempt.
                tracing::info!(r#ref = %name, "fenced by a garbage collection; pushing again after it");
                let stats = report.transferred;
                if opts.atomic {
                    undo(repo, remote, moved, &mut report).await;
                    if !report.rollback_failed.is_empty() {
                        report.rejected.push(Error::Invalid(format!(
                            "{name} was fenced by a garbage collection"
                        )));
                        return Ok(Attempt::Done(report));
                    }
                    return Ok(Attempt::Fenced {
                        moved: Vec::new(),
                        stats,
                        lock: None,
                    });
                }
                // The refs moved so far stay moved: their views are published now (the
                // next attempt finds them up to date).
                if !opts.skip_views {
                    publish_views(repo, remote, &moved).await;
                }
                let moved = report
                    .updates
                    .into_iter()
                    .filter(|u| u.kind != UpdateKind::UpToDate)
                    .collect();
                return Ok(Attempt::Fenced {
                    moved,
                    stats,
                    lock: None,
                });
            }
            Err(e) if e.is_conflict() => {
                let rejection = Error::Moved {
                    branch: name.name.clone(),
                };
                report.rejected.push(rejection);
                if opts.atomic {
                    undo(repo, remote, moved, &mut report).await;
                    return Ok(Attempt::Done(report));
                }
            }
            Err(e) => {
                if opts.atomic && !e.is_unknown_outcome() {
                    undo(repo, remote, moved, &mut report).await;
                    report.rejected.push(Error::Engine(e));
                    return Ok(Attempt::Done(report));
                }
                if !opts.skip_views {
                    publish_views(repo, remote, &moved).await;
                }
                return Err(e.into());
            }
        }
    }
    if !opts.skip_views {
        publish_views(repo, remote, &moved).await;
    }
    Ok(Attempt::Done(report))
}

/// Publishes the Iceberg views of the refs a push moved, on the remote (docs/protocol.md,
/// section 10): after the moves, so that a view never names what the ref does not. Chunk
/// footers are read from the local repository, which holds everything it pushed. A failure
/// is a warning: the push itself is done, and the next push or `strata iceberg --remote`
/// publishes the views.
async fn publish_views(repo: &Repository, remote: &Remote, moved: &[(RefState, Option<ObjectId>)]) {
    let at = iceberg::Location::new(remote.objects.clone(), &remote.url);
    for (after, old) in moved {
        if let Err(e) = iceberg::publish(
            &at,
            repo.objects(),
            &after.name,
            after.seq,
            *old,
            after.commit(),
        )
        .await
        {
            tracing::warn!(r#ref = %after.name, remote = %remote.url, error = %e, "could not publish the Iceberg views");
        }
    }
}

/// Moves refs that an atomic push already moved back to their old values (new records), and
/// records in the report which came back and which could not.
async fn undo(
    repo: &Repository,
    remote: &Remote,
    moved: Vec<(RefState, Option<ObjectId>)>,
    report: &mut PushReport,
) {
    for (state, old) in moved {
        let name = state.name.clone();
        report.updates.retain(|u| u.name != name);
        match remote.refs.update(&state, old, repo.now()).await {
            Ok(_) => report.rolled_back.push(name),
            Err(e) => {
                tracing::warn!(r#ref = %name, error = %e, "could not roll back an atomic push");
                report.rollback_failed.push((name, e.to_string()));
            }
        }
    }
}

/// 6. Remembers where the remote branches are now (and the upstreams with `-u`).
async fn remember(
    repo: &Repository,
    remote: &Remote,
    report: &PushReport,
    specs: &[PushSpec],
    opts: &PushOptions,
) -> Result<()> {
    for u in &report.updates {
        if u.name.kind == RefKind::Branch {
            repo.set_remote_tracking(&remote.name, &u.name.name, u.new)
                .await?;
            if opts.set_upstream && u.new.is_some() {
                let local = specs
                    .iter()
                    .find(|s| s.remote == u.name)
                    .and_then(|s| s.local.as_ref())
                    .filter(|l| l.kind == RefKind::Branch);
                if let Some(local) = local {
                    let up = Upstream {
                        remote: remote.name.clone(),
                        branch: u.name.name.clone(),
                    };
                    config::set_upstream(repo, &local.name, up).await?;
                }
            }
        }
    }
    Ok(())
}

async fn check(
    repo: &Repository,
    remote: &Remote,
    name: &RefName,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    opts: &PushOptions,
    reach_cache: &mut HashMap<ObjectId, HashSet<ObjectId>>,
) -> Result<UpdateKind> {
    if old == new {
        return if new.is_none() {
            Err(Error::UnknownRemoteBranch {
                remote: remote.name.clone(),
                branch: name.name.clone(),
            })
        } else {
            Ok(UpdateKind::UpToDate)
        };
    }
    if let Some(lease) = &opts.lease {
        let expected = match lease {
            Lease::Tracking => repo.remote_tracking(&remote.name, &name.name).await?,
            Lease::Expected(b, e) if *b == name.name => *e,
            Lease::Expected(..) => old,
        };
        if expected != old {
            return Err(Error::StaleLease {
                branch: name.name.clone(),
                expected: expected.map_or("nothing".into(), |c| c.short()),
                actual: old.map_or("nothing".into(), |c| c.short()),
            });
        }
    }
    let Some(new) = new else {
        return Ok(UpdateKind::Deleted);
    };
    let Some(old) = old else {
        return Ok(UpdateKind::Created);
    };
    if name.kind == RefKind::Tag && !opts.force {
        return Err(Error::TagExists {
            tag: name.name.clone(),
        });
    }
    if opts.force || opts.lease.is_some() {
        return Ok(UpdateKind::Forced);
    }
    let reachable = match reach_cache.get(&new) {
        Some(r) => r,
        None => {
            let r = repo.reachable(new).await?;
            reach_cache.entry(new).or_insert(r)
        }
    };
    if reachable.contains(&old) {
        Ok(UpdateKind::FastForward)
    } else {
        Err(Error::NonFastForward {
            branch: name.name.clone(),
        })
    }
}
