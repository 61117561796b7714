//! Remotes: configure them, and push, fetch, pull and clone over the one sync protocol
//! (docs/protocol.md, section 6) on any backend: a folder, S3 and its compatibles, GCS, Azure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use strata_engine::repo::Head;
use strata_engine::store::{RefKind, RefName};
use strata_engine::{ObjectId, Progress};
use strata_remote::config::{self, RemoteConfig};
use strata_remote::push::{Lease, PushSpec, UpdateKind};
use strata_remote::url::Location;
use strata_remote::Remote;

use crate::error::{Error, Result, Suggestion};
use crate::merge::{MergeOptions, MergeOutcome};
use crate::repository::{Author, Repository};

/// A configured remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteInfo {
    pub name: String,
    pub url: String,
    /// Non-secret options (endpoint, region, ...).
    pub options: BTreeMap<String, String>,
}

/// A branch or tag on a remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteRef {
    pub name: String,
    pub commit: ObjectId,
}

/// A remote as it is now (read from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteDetail {
    pub name: String,
    pub url: String,
    pub options: BTreeMap<String, String>,
    pub branches: Vec<RemoteRef>,
    pub tags: Vec<RemoteRef>,
}

/// Checks remote options: keys are lower-cased; a secret is refused.
pub fn check_options(options: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in options {
        let key = k.trim().to_ascii_lowercase();
        if strata_remote::cloud::is_secret_option(&key) {
            return Err(Error::invalid(format!(
                "option '{k}' is a secret; secrets are read from the environment or the backend's credential files, never stored"
            )));
        }
        strata_remote::cloud::check_option_value(&key, v).map_err(Error::invalid)?;
        out.insert(key, v.trim().to_string());
    }
    Ok(out)
}

pub use strata_remote::cloud::{aws_credentials_configured, check_option_value, is_known_option};

/// Refuses options that a location's backend does not use (an S3 endpoint for a folder).
pub(crate) fn check_options_apply(
    location: &Location,
    options: &BTreeMap<String, String>,
) -> Result<()> {
    if matches!(location, Location::Cloud { .. }) {
        return Ok(());
    }
    match options
        .keys()
        .find(|k| !strata_remote::cloud::STRATA_OPTIONS.contains(&k.as_str()))
    {
        Some(k) => Err(Error::invalid(format!(
            "option '{k}' does not apply to {}: a folder remote takes only {}",
            location.to_url(),
            strata_remote::cloud::STRATA_OPTIONS.join(", ")
        ))),
        None => Ok(()),
    }
}

/// How a forced push checks the remote branch first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForceWithLease {
    /// The remote branch must be where `REMOTE/BRANCH` says it was at the last fetch.
    Tracking,
    /// `branch` on the remote must be at `expected` (a revision; `None`: must not exist).
    Expected {
        branch: String,
        expected: Option<String>,
    },
}

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The remote (default: the current branch's upstream's, else `origin`, else the only one).
    pub remote: Option<String>,
    /// What to push, as refspecs (default: the current branch, unless tags, deletes or
    /// `all` are pushed): `NAME` pushes a branch (else a tag) to the same name on the
    /// remote, `LOCAL:REMOTE` a local branch or tag to another name, `:REMOTE` deletes a
    /// remote branch; full names `refs/heads/X` and `refs/tags/X` are accepted on each side.
    pub branches: Vec<String>,
    /// Push every local branch.
    pub all: bool,
    /// Branches to delete on the remote.
    pub delete: Vec<String>,
    /// Move remote branches even when it is not a fast-forward.
    pub force: bool,
    pub force_with_lease: Option<ForceWithLease>,
    /// All refs move, or none.
    pub atomic: bool,
    /// Push every tag too.
    pub tags: bool,
    /// Remember `REMOTE/BRANCH` as each pushed branch's upstream.
    pub set_upstream: bool,
    /// How long to wait for garbage collections on the remote (default: `STRATA_GC_WAIT`
    /// seconds, else 120).
    pub gc_wait: Option<Duration>,
    /// Make the remote's location a new, empty repository if it is not one yet (an empty
    /// folder or prefix; a missing folder is made). Without it a push only goes to an existing
    /// repository, so that a typo in a URL never creates a remote.
    pub create: bool,
    /// When the remote branch moved since it was fetched, stop (as git does) instead of
    /// waiting to land. By default a push of the checked-out branch whose rejection is only
    /// that the remote moved leaves a note that its commit waits, and waits its turn among
    /// the pushes to that branch that lost: the first in line fetches what is new, merges it
    /// and the waiting commits in (when no row conflicts; merge commits record every side),
    /// and tries again, up to [`PUSH_ROUNDS`] times; a push whose commit another landed takes
    /// the branch as it is (docs/protocol.md, section 6, "Waiting pushes"). On a conflict it
    /// stops with the branch as it was.
    pub no_merge: bool,
}

/// Attempts of a push that merges the remote's new commits in when it was rejected.
///
/// The first push in line lands the waiting ones with its own, so a push rarely needs more
/// than two attempts: measured on a 2-core machine with 100 writers, each pushing once at the
/// same moment to a folder, at most 2.
pub const PUSH_ROUNDS: u32 = 100;

/// The pause before push attempt `round + 1`: a random time between 0 and a ceiling that
/// starts at 20 ms and doubles up to 5.12 s ("full jitter"). Only one writer lands per
/// attempt; spreading the others' next attempts over the whole window keeps few of them
/// active at once, so an attempt's fetch, merge and push can finish before the next writer
/// lands.
fn push_pause(round: u32) -> Duration {
    Duration::from_millis(random_below(20u64 << round.saturating_sub(1).min(8)))
}

/// A number of milliseconds below `ceiling`, different from process to process and from call
/// to call (jitter; not for anything that needs real randomness).
fn random_below(ceiling: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed =
        u64::from(nanos ^ std::process::id().rotate_left(16)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (seed >> 11) % ceiling.max(1)
}

/// Waiting pushes one push lands at most, its own included: a bound on how long one merging
/// push takes, so that the next in line gets its turn.
const CARRY: usize = 32;

/// How long the note of the first waiting push may stay as it is (no heartbeat, see
/// [`strata_remote::waiting::HEARTBEAT`]) before the others take it for stopped and merge
/// without waiting for it.
const TAKEOVER: Duration = Duration::from_secs(5);

/// Writes a push's note again every [`strata_remote::waiting::HEARTBEAT`] while it merges
/// for the pushes waiting behind it; stops when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(remote: &Remote, branch: &str, note: &strata_remote::waiting::Waiting) -> Self {
        let (remote, branch, note) = (remote.clone(), branch.to_string(), note.clone());
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(strata_remote::waiting::HEARTBEAT).await;
                if let Err(e) = strata_remote::waiting::refresh(&remote, &branch, &note).await {
                    tracing::info!(error = %e, "could not refresh this push's waiting note");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The pause between two looks at the waiting pushes, for the one at `place` in line: the
/// further back, the longer (jittered), so that a hundred waiting pushes do not keep the
/// store busy.
fn wait_pause(place: usize) -> Duration {
    let ceiling = (40 * (place as u64 + 1)).min(2000);
    Duration::from_millis(ceiling / 2 + random_below(ceiling / 2))
}

/// What a push waiting to land learned.
enum Turn {
    /// Its turn: merge what landed and these pushes waiting behind it.
    Mine(Vec<strata_remote::waiting::Waiting>),
    /// Its note is gone: most likely another push landed it.
    Gone,
}

/// The state of a push's rounds that outlives an error: its note, removed at the end.
#[derive(Default)]
struct Rounds {
    note: Option<(Remote, strata_remote::waiting::Waiting)>,
}

/// How a ref moved on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefMove {
    UpToDate,
    Created,
    FastForward,
    Forced,
    /// Forced over a damaged ref record (its old commit unknown).
    Replaced,
    Deleted,
}

/// One ref a push moved (or found up to date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedRef {
    /// The ref's name on the remote.
    pub name: String,
    /// The local branch or tag pushed into it (none for a delete).
    pub source: Option<String>,
    /// `branch` or `tag`.
    pub kind: &'static str,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
    #[serde(rename = "move")]
    pub moved: RefMove,
}

/// A ref the remote did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Why, in one line.
    pub message: String,
}

/// What a push did.
#[derive(Debug, Serialize)]
pub struct PushReport {
    pub remote: String,
    pub url: String,
    pub updates: Vec<PushedRef>,
    pub rejected: Vec<Rejection>,
    /// Refs an atomic push moved and then moved back (so that none stays moved).
    pub rolled_back: Vec<String>,
    /// Refs an atomic push moved and could not move back, with why: they stay moved.
    pub rollback_failed: Vec<Rejection>,
    /// Objects and bytes uploaded.
    pub objects: u64,
    pub bytes: u64,
    /// Merge commits made because the remote branch had moved (see
    /// [`PushOptions::no_merge`]), oldest first.
    pub merges: Vec<ObjectId>,
    /// Commits of other pushes that were waiting to land on the branch (docs/protocol.md,
    /// section 6, "Waiting pushes"), merged and landed by this one.
    pub carried: Vec<ObjectId>,
    /// Set when this push's commit was landed by another writer's push, which merged it: the
    /// remote branch's commit that carries it (the local branch now points there too).
    pub carried_in: Option<ObjectId>,
    /// Attempts made (1 when nothing had to be merged).
    pub rounds: u32,
    #[serde(skip)]
    first_rejection: Option<strata_remote::Error>,
    #[serde(skip)]
    atomic: bool,
}

impl PushReport {
    /// The push as an error when a ref was rejected (the first rejection, with its advice).
    pub fn error(&mut self) -> Option<Error> {
        let first = self.first_rejection.take()?;
        if !self.atomic {
            return Some(first.into());
        }
        let stayed: Vec<&str> = self
            .updates
            .iter()
            .filter(|u| u.moved != RefMove::UpToDate)
            .map(|u| u.name.as_str())
            .chain(self.rollback_failed.iter().map(|r| r.message.as_str()))
            .collect();
        let message = if !stayed.is_empty() {
            format!(
                "atomic push failed part way ({first}); these refs were moved and could not be moved back: {}",
                stayed.join("; ")
            )
        } else if !self.rolled_back.is_empty() {
            format!(
                "atomic push refused: no ref was left moved ({first}); {} moved and moved back",
                self.rolled_back.join(", ")
            )
        } else {
            format!("atomic push refused: no ref was moved ({first})")
        };
        Some(Error::Remote(strata_remote::Error::Invalid(message)))
    }
}

/// One remote branch a fetch moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchedBranch {
    pub branch: String,
    /// Where the remote-tracking branch was (none: new).
    pub old: Option<ObjectId>,
    pub new: ObjectId,
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchReport {
    pub remote: String,
    pub url: String,
    pub updated: Vec<FetchedBranch>,
    /// Remote-tracking branches removed (their branch is gone from the remote).
    pub pruned: Vec<String>,
    /// Tags created locally.
    pub new_tags: Vec<String>,
    pub objects: u64,
    pub bytes: u64,
}

impl FetchReport {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.pruned.is_empty() && self.new_tags.is_empty()
    }
}

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The remote (default: the upstream's, else the default remote).
    pub remote: Option<String>,
    /// The remote branch (default: the upstream's, else the current branch's name).
    pub branch: Option<String>,
    /// Refuse unless the merge is a fast-forward.
    pub ff_only: bool,
    pub author: Option<Author>,
    /// Replay the branch's own commits on top of the remote branch (keeping their authors,
    /// times and messages) instead of merging: a straight history. Refused for history with
    /// merge commits; on a conflicting cell nothing changes.
    pub rebase: bool,
}

/// What a pull did: the fetch, then the merge of `REMOTE/BRANCH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub fetch: FetchReport,
    /// `origin/main`.
    pub merged: String,
    pub outcome: MergeOutcome,
}

/// Options of a clone.
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// The branch to check out (default: `main`, else the first branch by name).
    pub branch: Option<String>,
    /// Remote options (endpoint, region, ...), stored for `origin`.
    pub options: BTreeMap<String, String>,
}

/// What a clone made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloneReport {
    pub dir: PathBuf,
    /// The branch checked out (none: the remote has no branches).
    pub branch: Option<String>,
}

/// The folder a clone of `url` makes by default: the last part of the URL.
pub fn clone_dir_name(url: &str) -> Option<String> {
    url.trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .map(str::to_string)
}

/// A number of seconds (fractions allowed) from the environment variable `name`, if set.
pub(crate) fn seconds_from_env(name: &str) -> Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(v) => {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{name}='{v}' is not a number of seconds; set it to e.g. 2 or 120"
                    ))
                })?;
            Ok(Some(Duration::from_secs_f64(secs)))
        }
        Err(_) => Ok(None),
    }
}

impl Repository {
    /// The configured remotes, by name.
    pub async fn remotes(&self) -> Result<Vec<RemoteInfo>> {
        Ok(config::remotes(&self.inner)
            .await?
            .into_iter()
            .map(|(name, c)| RemoteInfo {
                name,
                url: c.url,
                options: c.options,
            })
            .collect())
    }

    /// Adds a remote. Options hold no secrets (refused). A cloud store is checked now: it
    /// must be reachable and enforce conditional writes.
    pub async fn add_remote(
        &self,
        name: &str,
        url: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<RemoteInfo> {
        let _lock = self.inner.lock_state().await?;
        let location = Location::parse(url, self.root())?;
        let mut conf = RemoteConfig {
            url: location.to_url(),
            options: check_options(options)?,
            verified: false,
        };
        check_options_apply(&location, &conf.options)?;
        strata_engine::names::validate_name("remote", name)?;
        if config::remotes(&self.inner).await?.contains_key(name) {
            return Err(Error::Remote(strata_remote::Error::RemoteExists {
                name: name.into(),
            }));
        }
        if matches!(location, Location::Cloud { .. }) {
            let writer = self.inner.refs().writer().to_string();
            let remote = Remote::open_url(name, &conf.url, &conf, self.root(), &writer, false)?;
            conf.verified = remote.ensure_trusted().await?;
        }
        config::add_remote(&self.inner, name, conf.clone()).await?;
        Ok(RemoteInfo {
            name: name.into(),
            url: conf.url,
            options: conf.options,
        })
    }

    /// Removes a remote and its remote-tracking branches.
    pub async fn remove_remote(&self, name: &str) -> Result<()> {
        let _lock = self.inner.lock_state().await?;
        Ok(config::remove_remote(&self.inner, name).await?)
    }

    /// Renames a remote, with its remote-tracking branches and the upstreams that name it.
    pub async fn rename_remote(&self, from: &str, to: &str) -> Result<()> {
        let _lock = self.inner.lock_state().await?;
        Ok(config::rename_remote(&self.inner, from, to).await?)
    }

    /// Points a remote at another URL (checked as `add_remote` checks one; its options stay).
    pub async fn set_remote_url(&self, name: &str, url: &str) -> Result<RemoteInfo> {
        let _lock = self.inner.lock_state().await?;
        let conf = config::remote(&self.inner, name).await?;
        let location = Location::parse(url, self.root())?;
        check_options_apply(&location, &conf.options)?;
        config::set_url(&self.inner, name, location.to_url()).await?;
        Ok(RemoteInfo {
            name: name.to_string(),
            url: location.to_url(),
            options: conf.options,
        })
    }

    /// A remote with its branches and tags, read from it now.
    pub async fn remote(&self, name: &str) -> Result<RemoteDetail> {
        let c = config::remote(&self.inner, name).await?;
        let r = Remote::configured(&self.inner, name, false).await?;
        r.check().await?;
        let refs = |list: Vec<(String, ObjectId)>| {
            list.into_iter()
                .map(|(name, commit)| RemoteRef { name, commit })
                .collect()
        };
        Ok(RemoteDetail {
            name: name.into(),
            url: c.url,
            options: c.options,
            branches: refs(r.refs.list(RefKind::Branch).await?),
            tags: refs(r.refs.list(RefKind::Tag).await?),
        })
    }

    /// The remote to use when none is named.
    async fn remote_or_default(&self, name: Option<&str>) -> Result<String> {
        match name {
            Some(n) => Ok(n.to_string()),
            None => Ok(config::default_remote(&self.inner).await?),
        }
    }

    /// Uploads branches (and tags) and moves them on the remote: objects first, then each
    /// ref by a compare-and-swap of its log. A branch the remote moved meanwhile, or that
    /// is not a fast-forward, is rejected ([`PushReport::error`]), unless the push may merge
    /// (see [`PushOptions::no_merge`]): then it waits its turn among the pushes waiting to land
    /// on that branch, and lands with them (docs/protocol.md, section 6, "Waiting pushes").
    pub async fn push(&self, opts: &PushOptions, progress: &dyn Progress) -> Result<PushReport> {
        let _lock = self.inner.lock_state().await?;
        let mut state = Rounds::default();
        let result = self.push_rounds(opts, progress, &mut state).await;
        // Whatever the outcome, this push no longer waits: its note goes (the notes of the
        // pushes it landed went when its ref moved).
        if let Some((remote, note)) = state.note.take() {
            strata_remote::waiting::withdraw(&remote, &note.path).await;
        }
        result
    }

    /// The rounds of [`Repository::push`]: an attempt, and while only the remote branch's
    /// moving rejects it, a wait for its turn and a merge of what landed (and of the pushes
    /// waiting behind it), then another attempt.
    async fn push_rounds(
        &self,
        opts: &PushOptions,
        progress: &dyn Progress,
        state: &mut Rounds,
    ) -> Result<PushReport> {
        // The branch's own commit: each round merges the remote's newest state into it
        // afresh, so the history gets one merge commit per commit landed, however many
        // rounds it took.
        let mine = self.inner.head_commit().await?;
        let mut merges: Vec<ObjectId> = Vec::new();
        let mut carried: Vec<strata_remote::waiting::Waiting> = Vec::new();
        // The remote branch's commit that the branch holds merged into `mine`, with nothing
        // merged on top (a merge that a later round may keep).
        let mut merged_at: Option<ObjectId> = None;
        // While this push merges for the others waiting, its note says it is at work.
        let mut _beat: Option<Heartbeat> = None;
        let mut round = 1;
        loop {
            let mut report = self.push_locked(opts, progress).await?;
            report.rounds = round;
            report.merges = merges.clone();
            report.carried = carried.iter().map(|w| w.commit).collect();
            let Some(branch) = self.mergeable_rejection(&report, opts).await? else {
                if report.first_rejection.is_none() {
                    if let Some((remote, _)) = &state.note {
                        for w in &carried {
                            strata_remote::waiting::withdraw(remote, &w.path).await;
                        }
                    }
                }
                return Ok(report);
            };
            let Some(mine) = mine else {
                return Ok(report);
            };
            if round >= PUSH_ROUNDS {
                return Ok(report);
            }
            let remote = Remote::configured(&self.inner, &report.remote, false).await?;
            let tracking = format!("{}/{branch}", report.remote);
            if state.note.is_none() && report.objects == 0 {
                // The attempt stopped before uploading (the branch had moved when it was
                // read): merge what is new first, so that a push that conflicts stops having
                // changed nothing on the remote.
                self.fetch_locked(Some(&report.remote), false, progress)
                    .await?;
                self.merge_tracking(mine, &tracking, &mut merges).await?;
                merged_at = self.inner.remote_tracking(&report.remote, &branch).await?;
            }
            if state.note.is_none() {
                // The commit goes up first (if the attempt did not upload it), then the note
                // that names it.
                let anchor = self.inner.remote_tracking(&report.remote, &branch).await?;
                let entered = match strata_remote::push::upload_commit(
                    &self.inner,
                    &remote,
                    mine,
                    anchor,
                    progress,
                )
                .await
                {
                    Ok(_) => strata_remote::waiting::enter(&remote, &branch, mine).await,
                    Err(e) => Err(e),
                };
                match entered {
                    Ok(note) => state.note = Some((remote.clone(), note)),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not leave a note that this push waits; merging alone")
                    }
                }
            }
            // A pause first: the other pushes that lost this round leave their notes, so that
            // the first of them merges them all, and that merge is as fresh as it can be.
            tokio::time::sleep(push_pause(round)).await;
            _beat = None;
            let others = match &state.note {
                Some((_, note)) => {
                    let turn = self.wait_turn(&remote, &branch, note).await;
                    if matches!(turn, Turn::Mine(_)) {
                        _beat = Some(Heartbeat::start(&remote, &branch, note));
                    }
                    turn
                }
                None => Turn::Mine(Vec::new()),
            };
            let before = self.inner.remote_tracking(&report.remote, &branch).await?;
            self.fetch_locked(Some(&report.remote), false, progress)
                .await?;
            let remote_tip = self.inner.remote_tracking(&report.remote, &branch).await?;
            if let Some(tip) = remote_tip {
                if self.inner.reachable(tip).await?.contains(&mine) {
                    // Another writer's push landed this one: take the branch as it is now.
                    if !merges.is_empty() {
                        self.inner.reset_hard(&mine.to_hex()).await?;
                    }
                    self.merge_locked(&tracking, &MergeOptions::default())
                        .await?;
                    if opts.set_upstream {
                        let up = strata_remote::config::Upstream {
                            remote: report.remote.clone(),
                            branch: branch.clone(),
                        };
                        strata_remote::config::set_upstream(&self.inner, &branch, up).await?;
                    }
                    report.rounds = round;
                    report.merges = Vec::new();
                    report.carried = Vec::new();
                    report.carried_in = Some(tip);
                    report.rejected.clear();
                    report.first_rejection = None;
                    report.updates = vec![PushedRef {
                        name: branch.clone(),
                        source: Some(branch.clone()),
                        kind: "branch",
                        old: before,
                        new: Some(tip),
                        moved: RefMove::FastForward,
                    }];
                    return Ok(report);
                }
            }
            // This push merges: what landed, then the pushes waiting behind it.
            carried.clear();
            if merged_at.is_none() || merged_at != remote_tip {
                self.merge_tracking(mine, &tracking, &mut merges).await?;
            }
            merged_at = None;
            if let Turn::Mine(others) = others {
                let (commit, landing) = self.carry(&remote, &tracking, others, progress).await?;
                merges.extend(commit);
                carried = landing;
            }
            tracing::info!(
                round,
                carried = carried.len(),
                "{tracking} had moved: merged it in, pushing again"
            );
            round += 1;
        }
    }

    /// Merges the remote-tracking branch `tracking` into the branch's own commit `mine`
    /// (dropping the merges of an earlier round, never pushed): the merge commit joins
    /// `merges`. Rows that conflict stop the push, with the branch back at `mine`.
    async fn merge_tracking(
        &self,
        mine: ObjectId,
        tracking: &str,
        merges: &mut Vec<ObjectId>,
    ) -> Result<()> {
        if !merges.is_empty() {
            self.inner.reset_hard(&mine.to_hex()).await?;
            merges.clear();
        }
        let merge = MergeOptions {
            message: Some(format!("Merge {tracking}")),
            no_ff: false,
            ff_only: false,
            author: None,
        };
        match self.merge_locked(tracking, &merge).await? {
            MergeOutcome::Merged { commit } => merges.push(commit),
            MergeOutcome::FastForward { .. }
            | MergeOutcome::UpToDate
            | MergeOutcome::Rebased { .. } => {}
            MergeOutcome::Conflicts { rows, tables } => {
                // The branch goes back to where it was; the conflict is the user's call.
                self.inner.merge_abort().await?;
                return Err(Error::InvalidState {
                    message: format!(
                        "the push was rejected: {tracking} moved, and its changes conflict with yours on {rows} row{} (in {}); your branch is as it was",
                        if rows == 1 { "" } else { "s" },
                        tables.join(", ")
                    ),
                    suggestion: Some(Suggestion::PullThenPush),
                });
            }
        }
        Ok(())
    }

    /// Waits until this push's note is first among those waiting on `branch` (its turn to
    /// merge and push), or is gone (a push that merged it landed, or the note was lost). A
    /// first note that stays first for [`TAKEOVER`] belongs to a push that stopped; then this
    /// one merges anyway. Errors of the listing only end the wait (the notes are hints).
    async fn wait_turn(
        &self,
        remote: &Remote,
        branch: &str,
        note: &strata_remote::waiting::Waiting,
    ) -> Turn {
        let mut first: Option<(String, Option<strata_remote::waiting::Time>)> = None;
        let mut since = std::time::Instant::now();
        loop {
            let listed = match strata_remote::waiting::list(remote, branch).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the pushes waiting; merging alone");
                    return Turn::Mine(Vec::new());
                }
            };
            // A note naming the same commit holds this push's place too: one left by an
            // earlier push of it (stopped, or written late), or another clone's push of it.
            if !listed.iter().any(|w| w.path == note.path) {
                return Turn::Gone;
            }
            let place = listed
                .iter()
                .position(|w| w.commit == note.commit)
                .unwrap_or(0);
            if place == 0 {
                return Turn::Mine(
                    listed
                        .into_iter()
                        .filter(|w| w.commit != note.commit)
                        .collect(),
                );
            }
            // The first in line is at work while its note changes (its heartbeat) or another
            // takes its place.
            let head = (listed[0].path.to_string(), listed[0].modified);
            if first.as_ref() != Some(&head) {
                first = Some(head);
                since = std::time::Instant::now();
            }
            if since.elapsed() >= TAKEOVER {
                tracing::info!(note = %listed[0].path, "the first waiting push has not landed for a while; merging the others");
                return Turn::Mine(
                    listed
                        .into_iter()
                        .filter(|w| w.commit != note.commit)
                        .collect(),
                );
            }
            tokio::time::sleep(wait_pause(place)).await;
        }
    }

    /// Merges the commits of pushes waiting behind this one into the branch, as one merge
    /// commit (this push then lands them with its own). A commit whose objects are gone from
    /// the remote, or whose rows conflict with what is merged before it, is left to its own
    /// push, which finds out. Returns the merge commit (if one was made) and the waiting
    /// pushes it lands (those already in the history included).
    async fn carry(
        &self,
        remote: &Remote,
        tracking: &str,
        others: Vec<strata_remote::waiting::Waiting>,
        progress: &dyn Progress,
    ) -> Result<(Option<ObjectId>, Vec<strata_remote::waiting::Waiting>)> {
        let mut readable = Vec::new();
        for w in others.into_iter().take(CARRY - 1) {
            match strata_remote::fetch::fetch_commit(&self.inner, remote, w.commit, progress).await
            {
                Ok(_) => readable.push(w),
                Err(e) => {
                    tracing::info!(commit = %w.commit, error = %e, "a waiting push's commit cannot be read; leaving it to its own push")
                }
            }
        }
        if readable.is_empty() {
            return Ok((None, Vec::new()));
        }
        let ids: Vec<ObjectId> = readable.iter().map(|w| w.commit).collect();
        let (author, _) = self.author(None).await?;
        let message = format!("Merge pushes waiting on {tracking}");
        let (commit, merged) = self
            .inner
            .merge_several(&ids, author.as_str(), &message)
            .await?;
        let landing = readable
            .into_iter()
            .filter(|w| merged.contains(&w.commit))
            .collect();
        Ok((commit, landing))
    }

    /// One attempt of [`Repository::push`], under the state lock the caller holds.
    async fn push_locked(&self, opts: &PushOptions, progress: &dyn Progress) -> Result<PushReport> {
        let repo = &self.inner;
        let name = self.remote_or_default(opts.remote.as_deref()).await?;
        let mut branches = opts.branches.clone();
        if branches.is_empty() && opts.delete.is_empty() && !opts.tags && !opts.all {
            match repo.head().await? {
                Head::Branch(b) => branches.push(b),
                Head::Detached(_) => {
                    return Err(Error::InvalidState {
                        message: "HEAD is detached: name the branch to push".into(),
                        suggestion: None,
                    })
                }
            }
        }
        // Unknown branches and tags are refused before anything else happens.
        let mut specs = Vec::new();
        if opts.all {
            for (b, _) in repo.list_refs(RefKind::Branch).await? {
                specs.push(PushSpec::same(RefName::branch(&b)?));
            }
        }
        for b in &branches {
            let spec = self.push_spec(b).await?;
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
        for d in &opts.delete {
            specs.push(PushSpec {
                local: None,
                remote: RefName::branch(d)?,
            });
        }
        // A merge in progress (a pull stopped on conflicts) is finished before the branch
        // it merges into is pushed: its commit is not made yet.
        if let Head::Branch(current) = repo.head().await? {
            let current = RefName::branch(&current)?;
            if specs.iter().any(|s| s.local.as_ref() == Some(&current)) {
                repo.ensure_no_merge().await?;
            }
        }
        let lease = match &opts.force_with_lease {
            None => None,
            Some(ForceWithLease::Tracking) => Some(Lease::Tracking),
            Some(ForceWithLease::Expected { branch, expected }) => {
                // A full id is taken as it is (git accepts ids it has never fetched).
                let expected = match expected {
                    None => None,
                    Some(e) => match e.parse::<ObjectId>() {
                        Ok(id) => Some(id),
                        Err(_) => Some(repo.resolve(e).await?),
                    },
                };
                Some(Lease::Expected(branch.clone(), expected))
            }
        };
        let gc_wait = match opts.gc_wait {
            Some(w) => Some(w),
            None => seconds_from_env("STRATA_GC_WAIT")?,
        };
        let engine_opts = strata_remote::push::PushOptions {
            force: opts.force,
            lease,
            atomic: opts.atomic,
            tags: opts.tags,
            set_upstream: opts.set_upstream,
            gc_wait,
            skip_views: false,
        };
        let r = Remote::configured(repo, &name, opts.create).await?;
        if !opts.create {
            r.check().await?;
        }
        let report =
            strata_remote::push::push_specs(repo, &r, &specs, &engine_opts, progress).await?;
        let updates = report
            .updates
            .iter()
            .map(|u| PushedRef {
                name: u.name.name.clone(),
                source: match specs.iter().find(|s| s.remote == u.name) {
                    Some(s) => s.local.as_ref().map(|l| l.name.clone()),
                    None => u.new.map(|_| u.name.name.clone()),
                },
                kind: u.name.kind.noun(),
                old: u.old,
                new: u.new,
                moved: match u.kind {
                    UpdateKind::UpToDate => RefMove::UpToDate,
                    UpdateKind::Created => RefMove::Created,
                    UpdateKind::FastForward => RefMove::FastForward,
                    UpdateKind::Forced => RefMove::Forced,
                    UpdateKind::Replaced => RefMove::Replaced,
                    UpdateKind::Deleted => RefMove::Deleted,
                },
            })
            .collect();
        let rejected = report
            .rejected
            .iter()
            .map(|e| Rejection {
                message: e.to_string(),
            })
            .collect();
        Ok(PushReport {
            remote: name,
            url: r.url.clone(),
            updates,
            rejected,
            rolled_back: report.rolled_back.iter().map(|r| r.name.clone()).collect(),
            rollback_failed: report
                .rollback_failed
                .iter()
                .map(|(r, why)| Rejection {
                    message: format!("{} ({why})", r.name),
                })
                .collect(),
            objects: report.transferred.objects,
            bytes: report.transferred.bytes,
            merges: Vec::new(),
            carried: Vec::new(),
            carried_in: None,
            rounds: 1,
            first_rejection: report.rejected.into_iter().next(),
            atomic: opts.atomic,
        })
    }

    /// A refspec of [`PushOptions::branches`] as the ref it sets on the remote.
    async fn push_spec(&self, spec: &str) -> Result<PushSpec> {
        let named = |s: &str, kind: RefKind| {
            if s.starts_with("refs/") {
                RefName::parse(s)
            } else {
                RefName::new(kind, s)
            }
        };
        let (local, remote) = match spec.split_once(':') {
            Some(("", r)) => {
                return Ok(PushSpec {
                    local: None,
                    remote: named(r, RefKind::Branch)?,
                })
            }
            Some((l, r)) => (l, Some(r)),
            None => (spec, None),
        };
        let local = if local.starts_with("refs/") {
            RefName::parse(local)?
        } else {
            let branch = RefName::branch(local)?;
            let tag = RefName::tag(local)?;
            if self.inner.refs().read(&branch).await?.commit().is_some() {
                branch
            } else if self.inner.refs().read(&tag).await?.commit().is_some() {
                tag
            } else {
                return Err(strata_engine::Error::UnknownBranch {
                    name: local.to_string(),
                }
                .into());
            }
        };
        let remote = match remote {
            Some(r) => named(r, local.kind)?,
            None => local.clone(),
        };
        if remote.kind != local.kind {
            return Err(Error::InvalidInput(format!(
                "cannot push {} '{}' into the {} '{}': push a branch to a branch and a tag to a tag",
                local.kind.noun(),
                local.name,
                remote.kind.noun(),
                remote.name
            )));
        }
        Ok(PushSpec {
            local: Some(local),
            remote,
        })
    }

    /// The branch whose rejection a merge can settle: the checked-out branch, rejected only
    /// because the remote moved, pushed without force or lease, with nothing uncommitted.
    async fn mergeable_rejection(
        &self,
        report: &PushReport,
        opts: &PushOptions,
    ) -> Result<Option<String>> {
        if opts.no_merge
            || opts.force
            || opts.atomic
            || opts.branches.len() > 1
            || opts.branches.iter().any(|b| b.contains(':'))
            || opts.all
            || opts.tags
            || opts.force_with_lease.is_some()
            || !opts.delete.is_empty()
        {
            return Ok(None);
        }
        let branch = match &report.first_rejection {
            Some(
                strata_remote::Error::NonFastForward { branch }
                | strata_remote::Error::Moved { branch },
            ) => branch,
            _ => return Ok(None),
        };
        if report.rejected.len() != 1 {
            return Ok(None);
        }
        if self.inner.head().await? != Head::Branch(branch.clone()) {
            return Ok(None);
        }
        if !self.inner.status().await?.is_empty() || self.inner.merge_state().await?.is_some() {
            return Ok(None);
        }
        Ok(Some(branch.clone()))
    }

    /// Downloads every branch and tag of a remote (default: the default remote), reading its
    /// refs afresh, and moves the remote-tracking branches. `prune` removes those whose
    /// branch is gone.
    pub async fn fetch(
        &self,
        remote: Option<&str>,
        prune: bool,
        progress: &dyn Progress,
    ) -> Result<FetchReport> {
        let _lock = self.inner.lock_state().await?;
        self.fetch_locked(remote, prune, progress).await
    }

    /// [`Repository::fetch`], under the state lock the caller holds.
    async fn fetch_locked(
        &self,
        remote: Option<&str>,
        prune: bool,
        progress: &dyn Progress,
    ) -> Result<FetchReport> {
        let name = self.remote_or_default(remote).await?;
        let r = Remote::configured(&self.inner, &name, false).await?;
        let report = strata_remote::fetch::fetch(&self.inner, &r, prune, progress).await?;
        Ok(FetchReport {
            remote: name,
            url: r.url.clone(),
            updated: report
                .updated
                .into_iter()
                .map(|(branch, old, new)| FetchedBranch { branch, old, new })
                .collect(),
            pruned: report.pruned,
            new_tags: report.new_tags,
            objects: report.transferred.objects,
            bytes: report.transferred.bytes,
        })
    }

    /// Fetches, then merges the remote branch into the current branch (a fast-forward when
    /// possible). The remote and branch default to the current branch's upstream.
    pub async fn pull(&self, opts: &PullOptions, progress: &dyn Progress) -> Result<PullReport> {
        let _lock = self.inner.lock_state().await?;
        let repo = &self.inner;
        let current = match repo.head().await? {
            Head::Branch(b) => Some(b),
            Head::Detached(_) => None,
        };
        let upstream = match &current {
            Some(b) => config::upstream(repo, b).await?,
            None => None,
        };
        let name = match (&opts.remote, &upstream) {
            (Some(r), _) => r.clone(),
            (None, Some(u)) => u.remote.clone(),
            (None, None) => config::default_remote(repo).await?,
        };
        let branch = match (&opts.branch, &upstream, &current) {
            (Some(b), _, _) => b.clone(),
            (None, Some(u), _) if u.remote == name => u.branch.clone(),
            (None, _, Some(c)) => c.clone(),
            (None, _, None) => {
                return Err(Error::InvalidState {
                    message: "HEAD is detached: name the branch to pull".into(),
                    suggestion: None,
                })
            }
        };
        let fetch = self.fetch_locked(Some(&name), false, progress).await?;
        let tracking = format!("{name}/{branch}");
        if repo.remote_tracking(&name, &branch).await?.is_none() {
            return Err(Error::Remote(strata_remote::Error::UnknownRemoteBranch {
                remote: name,
                branch,
            }));
        }
        let outcome = if opts.rebase {
            let onto = repo.resolve(&tracking).await?;
            repo.rebase(onto, &tracking).await?.into()
        } else {
            let merge = MergeOptions {
                message: Some(format!("Merge {tracking}")),
                no_ff: false,
                ff_only: opts.ff_only,
                author: opts.author.clone(),
            };
            self.merge_locked(&tracking, &merge).await?
        };
        Ok(PullReport {
            fetch,
            merged: tracking,
            outcome,
        })
    }

    /// Copies the repository at `url` into the folder `dir` (which must be empty or not
    /// exist), adds it as the remote `origin`, and checks out a branch. A failed clone
    /// removes what it created.
    pub async fn clone(
        url: &str,
        dir: &Path,
        opts: &CloneOptions,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneReport)> {
        let conf = RemoteConfig {
            url: url.to_string(),
            options: check_options(&opts.options)?,
            verified: false,
        };
        let (repo, branch) =
            strata_remote::fetch::clone(url, dir, opts.branch.as_deref(), conf, progress).await?;
        let repo = Repository::from_engine(repo)?;
        Ok((
            repo,
            CloneReport {
                dir: dir.to_path_buf(),
                branch,
            },
        ))
    }
}
