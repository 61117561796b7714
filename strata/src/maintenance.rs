//! Garbage collection and integrity checks, of this repository or of a remote.

use serde::Serialize;
use strata_engine::store::Objects;
use strata_engine::{ObjectId, Progress};
use strata_remote::fsck::{check_refs, Problem, Side};
use strata_remote::gc::{GcOptions as RemoteGcOptions, RemoteGcReport};
use strata_remote::Remote;

use crate::error::{Error, Result};
use crate::remotes::seconds_from_env;
use crate::repository::Repository;

pub use strata_remote::fsck::Problem as FsckProblem;

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Collect this remote instead of the local repository.
    pub remote: Option<String>,
    /// Report what would be removed; change nothing.
    pub dry_run: bool,
    /// Take a remote's collection lock from a collection that is not running any more
    /// (interrupted elsewhere). Use only when sure.
    pub break_lock: bool,
    /// Locally: drop every reflog entry but each ref's current one first, so that commits
    /// only the reflog kept are collected too (by default entries younger than 90 days are
    /// kept). Ignored for a remote, which has no reflog.
    pub expire_reflog: bool,
}

/// What a collection removed and kept.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// The repository folder, or the remote's URL.
    pub location: String,
    #[serde(flatten)]
    pub report: RemoteGcReport,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct FsckOptions {
    /// Check this remote instead of the local repository.
    pub remote: Option<String>,
    /// Write missing or damaged objects again from an intact copy: locally from the remotes,
    /// on a remote from this repository.
    pub repair: bool,
}

/// A repair's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub restored: u64,
    /// Where intact copies were read from.
    pub sources: Vec<String>,
    /// Remotes that could not be read from, with why.
    pub skipped: Vec<String>,
}

/// What fsck found.
#[derive(Debug, Clone, Serialize)]
pub struct FsckReport {
    /// The repository folder, or the remote's URL.
    pub location: String,
    /// Objects checked.
    pub checked: u64,
    /// Problems left (after a repair: those it could not mend), each with what to do.
    pub problems: Vec<Problem>,
    pub repair: Option<Repair>,
}

impl FsckReport {
    /// The check as an error when problems are left.
    pub fn error(&self) -> Option<Error> {
        (!self.problems.is_empty()).then(|| Error::Damaged {
            count: self.problems.len(),
            location: self.location.clone(),
        })
    }
}

/// One check of the local repository or a remote.
struct Checked {
    objects: Objects,
    location: String,
    problems: Vec<Problem>,
    checked: u64,
}

/// A repair's rounds are bounded: a store that does not keep what is written would
/// otherwise go on for ever.
const REPAIR_ROUNDS: usize = 100;

impl Repository {
    /// Deletes what nothing reaches (locally: from branches, tags, remote-tracking branches,
    /// HEAD, the working tables and a merge in progress; on a remote: from its branches and
    /// tags), and compacts old ref records. Safe while others push to the remote
    /// (docs/protocol.md, section 8); locally it waits for no one and refuses to run while
    /// another command uses the repository.
    pub async fn gc(&self, opts: &GcOptions, progress: &dyn Progress) -> Result<GcReport> {
        let repo = &self.inner;
        match &opts.remote {
            None => {
                if !opts.dry_run {
                    repo.lock_exclusive()?;
                }
                let gc = repo.gc(opts.dry_run, opts.expire_reflog, progress).await?;
                Ok(GcReport {
                    location: repo.root().display().to_string(),
                    report: RemoteGcReport {
                        gc,
                        ..Default::default()
                    },
                })
            }
            Some(name) => {
                let r = Remote::configured(repo, name, false).await?;
                if !opts.dry_run {
                    // The collection's lock and fences are create-only writes: the store
                    // must be one that enforces them.
                    r.check().await?;
                    r.ensure_trusted_in(repo).await?;
                }
                // Only one collection of a remote runs from this repository at a time;
                // holding this lock proves that a lock on the remote carrying this
                // repository's writer id belongs to a collection that was interrupted.
                let Some(file) = repo.try_lock_local("remote-gc.lock")? else {
                    return Err(Error::InvalidState {
                        message:
                            "another garbage collection of a remote is running from this repository"
                                .into(),
                        suggestion: None,
                    });
                };
                let gc_opts = RemoteGcOptions {
                    dry_run: opts.dry_run,
                    break_lock: opts.break_lock,
                    resume_own: true,
                    holder: Some(repo.checkout_identity()),
                    lease_grace: seconds_from_env("STRATA_GC_GRACE")?,
                };
                let result = strata_remote::gc::collect(
                    &r,
                    &[repo.objects()],
                    &gc_opts,
                    repo.now(),
                    progress,
                )
                .await;
                drop(file);
                Ok(GcReport {
                    location: r.url.clone(),
                    report: result?,
                })
            }
        }
    }

    /// Checks every ref record, and that every reachable object exists, matches its id and
    /// decodes. With `repair`, writes missing and damaged objects again from intact copies
    /// (dependencies first) until nothing more can be restored.
    pub async fn fsck(&self, opts: &FsckOptions) -> Result<FsckReport> {
        let remote = match &opts.remote {
            Some(name) => {
                let r = Remote::configured(&self.inner, name, false).await?;
                r.check().await?;
                Some(r)
            }
            None => None,
        };
        let mut found = self.check_once(remote.as_ref()).await?;
        let mut repair = None;
        if opts.repair && found.problems.iter().any(|p| p.damaged.is_some()) {
            let (named, skipped) = self.repair_sources(remote.as_ref()).await?;
            let sources: Vec<&Objects> = named.iter().map(|(_, s)| s).collect();
            let mut restored = 0;
            // Each round restores what the check found and what that reaches; a check after
            // it sees below the objects it restored, which may hold more to restore.
            for _ in 0..REPAIR_ROUNDS {
                let damaged: Vec<_> = found.problems.iter().filter_map(|p| p.damaged).collect();
                if damaged.is_empty() {
                    break;
                }
                let round = strata_remote::fsck::repair(&found.objects, &sources, &damaged).await?;
                restored += round.restored;
                if round.restored == 0 {
                    for p in &mut found.problems {
                        if let Some(why) = p.damaged.and_then(|k| round.failed.get(&k)) {
                            p.fix = format!("cannot be restored: {why}; restore it from a backup or from a repository that has it");
                        }
                    }
                    break;
                }
                found = self.check_once(remote.as_ref()).await?;
            }
            repair = Some(Repair {
                restored,
                sources: named.into_iter().map(|(label, _)| label).collect(),
                skipped,
            });
        }
        Ok(FsckReport {
            location: found.location,
            checked: found.checked,
            problems: found.problems,
            repair,
        })
    }

    /// Checks the local repository, or `remote`, once.
    async fn check_once(&self, remote: Option<&Remote>) -> Result<Checked> {
        let repo = &self.inner;
        let (objects, roots, tables, location, side, mut problems) = match remote {
            Some(r) => {
                let (roots, problems) =
                    check_refs(&r.refs, &format!("{}: ", r.name), Side::Remote(&r.name)).await?;
                (
                    r.objects.clone(),
                    roots,
                    Vec::new(),
                    r.url.clone(),
                    Side::Remote(&r.name),
                    problems,
                )
            }
            None => {
                let (mut roots, problems) = check_refs(repo.refs(), "", Side::Local).await?;
                for (r, _) in strata_remote::config::remotes(repo).await? {
                    for (b, c) in repo.remote_tracking_list(&r).await? {
                        roots.push((format!("{r}/{b}"), c));
                    }
                }
                if let Some(h) = repo.head_commit().await? {
                    roots.push(("HEAD".into(), h));
                }
                let tables: Vec<(String, ObjectId)> = repo
                    .working()
                    .await?
                    .tables
                    .into_iter()
                    .map(|(t, id)| (format!("working table {t}"), id))
                    .collect();
                (
                    repo.objects().clone(),
                    roots,
                    tables,
                    repo.root().display().to_string(),
                    Side::Local,
                    problems,
                )
            }
        };
        let (object_problems, checked) =
            strata_remote::fsck::fsck(&objects, &roots, &tables, side).await;
        problems.extend(object_problems);
        Ok(Checked {
            objects,
            location,
            problems,
            checked,
        })
    }

    /// The intact copies a repair may read, with how to name them: this repository for a
    /// remote; every configured remote that can be reached for this repository (and the
    /// ones that cannot, with why).
    async fn repair_sources(
        &self,
        remote: Option<&Remote>,
    ) -> Result<(Vec<(String, Objects)>, Vec<String>)> {
        let repo = &self.inner;
        if remote.is_some() {
            let label = format!("this repository ({})", repo.root().display());
            return Ok((vec![(label, repo.objects().clone())], Vec::new()));
        }
        let mut sources = Vec::new();
        let mut skipped = Vec::new();
        for name in strata_remote::config::remotes(repo).await?.into_keys() {
            let opened = async {
                let r = Remote::configured(repo, &name, false).await?;
                r.check().await?;
                Ok::<_, strata_remote::Error>(r)
            };
            match opened.await {
                Ok(r) => sources.push((format!("remote '{name}'"), r.objects.clone())),
                Err(e) => skipped.push(format!("remote '{name}': {e}")),
            }
        }
        if sources.is_empty() {
            return Err(Error::InvalidState {
                message:
                    "nothing to repair from: this repository has no remote that can be reached"
                        .into(),
                suggestion: Some(crate::Suggestion::AddRemote {
                    name: "NAME".into(),
                }),
            });
        }
        Ok((sources, skipped))
    }
}
