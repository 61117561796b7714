//! History: revisions, commits, log and show.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use strata_engine::repo::Head;
use strata_engine::store::RefKind;
use strata_engine::{Commit, ObjectId};

use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::worktree::TableChange;

/// A commit as people and programs see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub parents: Vec<ObjectId>,
    /// `Name <email>`.
    pub author: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub message: String,
    /// Table name to table version.
    pub tables: BTreeMap<String, ObjectId>,
}

impl CommitInfo {
    fn new(id: ObjectId, c: Commit) -> Self {
        CommitInfo {
            id,
            parents: c.parents,
            author: c.author,
            time: c.time,
            message: c.message,
            tables: c.tables,
        }
    }

    /// The first line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// Which commits a log lists (all filters must match).
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Where the history starts (default: HEAD). `A..B` lists the commits reachable from B
    /// and not from A, `A...B` those reachable from either but not both (an empty side is
    /// HEAD).
    pub rev: Option<String>,
    /// Start from every branch, tag, remote-tracking branch and HEAD (with `rev`: as well).
    pub all: bool,
    /// At most this many commits (of those that match).
    pub limit: Option<usize>,
    /// The author contains this text (any case).
    pub author: Option<String>,
    /// Made at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// Made at or before this time.
    pub until: Option<i64>,
    /// Changed this table (against the first parent).
    pub table: Option<String>,
}

/// One entry of a ref's reflog: where it pointed, since when, and why it moved there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReflogEntry {
    /// `main@{N}`: the revision that names this entry.
    pub selector: String,
    pub commit: ObjectId,
    /// When the ref moved here (seconds since the Unix epoch, the mover's clock).
    pub time: i64,
    /// Why it moved (`commit: MESSAGE`, `reset: moving to REV`); `None` for moves that
    /// recorded none.
    pub reason: Option<String>,
}

/// A commit and what it changed, table by table, against its first parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitDetail {
    #[serde(flatten)]
    pub commit: CommitInfo,
    pub changes: Vec<TableChange>,
}

/// The commits of `all` (in log order) that `opts` selects by author, time and table, at most
/// `opts.limit` of them.
pub(crate) async fn select_commits(
    objects: &strata_engine::store::Objects,
    all: Vec<(ObjectId, Commit)>,
    opts: &LogOptions,
) -> Result<Vec<CommitInfo>> {
    let all: Vec<CommitInfo> = all
        .into_iter()
        .map(|(id, c)| CommitInfo::new(id, c))
        .collect();
    let tables: BTreeMap<ObjectId, BTreeMap<String, ObjectId>> =
        all.iter().map(|c| (c.id, c.tables.clone())).collect();
    let mut out = Vec::new();
    for c in &all {
        if opts.limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if let Some(a) = &opts.author {
            if !c.author.to_lowercase().contains(&a.to_lowercase()) {
                continue;
            }
        }
        if opts.since.is_some_and(|t| c.time < t) || opts.until.is_some_and(|t| c.time > t) {
            continue;
        }
        if let Some(t) = &opts.table {
            let parent = match c.parents.first() {
                Some(p) => match tables.get(p) {
                    Some(ts) => ts.get(t).copied(),
                    None => Commit::read(objects, p).await?.tables.get(t).copied(),
                },
                None => None,
            };
            if c.tables.get(t).copied() == parent {
                continue;
            }
        }
        out.push(c.clone());
    }
    Ok(out)
}

impl Repository {
    /// Resolves a revision to a commit id: a branch, a tag, a full or unique-prefix commit
    /// id, `HEAD`, `REMOTE/BRANCH`, each optionally followed by `~N`, `^` or `^N`.
    pub async fn resolve(&self, rev: &str) -> Result<ObjectId> {
        Ok(self.inner.resolve(rev).await?)
    }

    /// Where a branch or tag (default: the branch checked out) pointed, newest first: entry
    /// N is the revision `NAME@{N}`. Entries are kept 90 days by garbage collection.
    pub async fn reflog(&self, name: Option<&str>) -> Result<Vec<ReflogEntry>> {
        let ref_name = self.inner.reflog_ref(name.unwrap_or("")).await?;
        Ok(self
            .inner
            .reflog(&ref_name)
            .await?
            .into_iter()
            .enumerate()
            .filter_map(|(n, r)| {
                Some(ReflogEntry {
                    selector: format!("{}@{{{n}}}", ref_name.name),
                    commit: r.commit?,
                    time: r.time,
                    reason: r.reason,
                })
            })
            .collect())
    }

    /// A commit by revision.
    pub async fn commit_info(&self, rev: &str) -> Result<CommitInfo> {
        let id = self.inner.resolve(rev).await?;
        let c = Commit::read(self.inner.objects(), &id).await?;
        Ok(CommitInfo::new(id, c))
    }

    /// The history from `rev` (default: HEAD), newest first, at most `limit` commits.
    pub async fn log(&self, rev: Option<&str>, limit: Option<usize>) -> Result<Vec<CommitInfo>> {
        let start = match rev {
            Some(r) => self.inner.resolve(r).await?,
            None => self
                .inner
                .head_commit()
                .await?
                .ok_or_else(|| Error::InvalidState {
                    message: "no commits yet on this branch".into(),
                    suggestion: None,
                })?,
        };
        Ok(self
            .inner
            .log(start, limit)
            .await?
            .into_iter()
            .map(|(id, c)| CommitInfo::new(id, c))
            .collect())
    }

    /// Where a log starts, and the commits it hides (`A..B`, `A...B`).
    async fn log_range(&self, opts: &LogOptions) -> Result<(Vec<ObjectId>, HashSet<ObjectId>)> {
        let side = |s: &str| {
            if s.is_empty() {
                "HEAD".to_string()
            } else {
                s.to_string()
            }
        };
        let mut starts = Vec::new();
        let mut hidden = HashSet::new();
        match opts.rev.as_deref() {
            Some(r) if r.contains("...") => {
                let (a, b) = r.split_once("...").unwrap_or((r, ""));
                let a = self.inner.resolve(&side(a)).await?;
                let b = self.inner.resolve(&side(b)).await?;
                let ra = self.inner.reachable(a).await?;
                let rb = self.inner.reachable(b).await?;
                hidden = ra.intersection(&rb).copied().collect();
                starts.extend([a, b]);
            }
            Some(r) if r.contains("..") => {
                let (a, b) = r.split_once("..").unwrap_or((r, ""));
                let a = self.inner.resolve(&side(a)).await?;
                starts.push(self.inner.resolve(&side(b)).await?);
                hidden = self.inner.reachable(a).await?;
            }
            Some(r) => starts.push(self.inner.resolve(r).await?),
            None if opts.all => {}
            None => {
                starts.push(
                    self.inner
                        .head_commit()
                        .await?
                        .ok_or_else(|| Error::InvalidState {
                            message: "no commits yet on this branch".into(),
                            suggestion: None,
                        })?,
                )
            }
        }
        if opts.all {
            starts.extend(self.inner.head_commit().await?);
            starts.extend(self.ref_tips().await?);
        }
        starts.sort();
        starts.dedup();
        Ok((starts, hidden))
    }

    /// The history as [`Repository::log`] gives it, keeping only the commits that match
    /// every filter given; `limit` counts the commits kept.
    pub async fn log_filtered(&self, opts: &LogOptions) -> Result<Vec<CommitInfo>> {
        let (starts, hidden) = self.log_range(opts).await?;
        let all = self.inner.log_from(&starts, &hidden, None).await?;
        select_commits(self.inner.objects(), all, opts).await
    }

    /// The commits in `rev`'s history that no branch, tag or remote-tracking branch reaches,
    /// newest first: what a switch away from a detached HEAD at `rev` leaves behind (kept
    /// only until garbage collection).
    pub async fn unreferenced_commits(&self, rev: &str) -> Result<Vec<CommitInfo>> {
        let id = self.inner.resolve(rev).await?;
        let tips = self.ref_tips().await?;
        let reached = self.inner.reachable_from(&tips).await?;
        Ok(self
            .inner
            .log_from(&[id], &reached, None)
            .await?
            .into_iter()
            .map(|(id, c)| CommitInfo::new(id, c))
            .collect())
    }

    /// The commits every branch, tag and remote-tracking branch names.
    async fn ref_tips(&self) -> Result<Vec<ObjectId>> {
        let mut tips = Vec::new();
        for kind in [RefKind::Branch, RefKind::Tag] {
            tips.extend(
                self.inner
                    .list_refs(kind)
                    .await?
                    .into_iter()
                    .map(|(_, c)| c),
            );
        }
        tips.extend(self.tracking_tips().await?);
        Ok(tips)
    }

    /// The commits the remote-tracking branches of every remote name.
    pub(crate) async fn tracking_tips(&self) -> Result<Vec<ObjectId>> {
        let mut tips = Vec::new();
        for remote in strata_remote::config::remotes(&self.inner).await?.keys() {
            tips.extend(
                self.inner
                    .remote_tracking_list(remote)
                    .await?
                    .into_iter()
                    .map(|(_, c)| c),
            );
        }
        Ok(tips)
    }

    /// The best common ancestor of two revisions (`None`: their histories never meet), as
    /// merge uses it.
    pub async fn merge_base(&self, a: &str, b: &str) -> Result<Option<ObjectId>> {
        let a = self.inner.resolve(a).await?;
        let b = self.inner.resolve(b).await?;
        Ok(self.inner.merge_base(a, b).await?)
    }

    /// Whether revision `a` is in the history of revision `b` (a commit is in its own).
    pub async fn is_ancestor(&self, a: &str, b: &str) -> Result<bool> {
        let a = self.inner.resolve(a).await?;
        let b = self.inner.resolve(b).await?;
        Ok(a == b || self.inner.reachable(b).await?.contains(&a))
    }

    /// The names pointing at each commit, as `log --decorate` shows them: `HEAD -> main`
    /// (or `HEAD` when detached), branches, `tag: v1`, remote-tracking `origin/main`.
    pub async fn ref_labels(&self) -> Result<BTreeMap<ObjectId, Vec<String>>> {
        let mut labels: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
        let head = self.inner.head().await?;
        let current = match &head {
            Head::Branch(b) => Some(b.clone()),
            Head::Detached(id) => {
                labels.entry(*id).or_default().push("HEAD".into());
                None
            }
        };
        for (name, c) in self.inner.list_refs(RefKind::Branch).await? {
            let label = if current.as_deref() == Some(name.as_str()) {
                format!("HEAD -> {name}")
            } else {
                name
            };
            let l = labels.entry(c).or_default();
            if label.starts_with("HEAD") {
                l.insert(0, label);
            } else {
                l.push(label);
            }
        }
        for (name, c) in self.inner.list_refs(RefKind::Tag).await? {
            labels.entry(c).or_default().push(format!("tag: {name}"));
        }
        for remote in strata_remote::config::remotes(&self.inner).await?.keys() {
            for (branch, c) in self.inner.remote_tracking_list(remote).await? {
                labels
                    .entry(c)
                    .or_default()
                    .push(format!("{remote}/{branch}"));
            }
        }
        Ok(labels)
    }

    /// A commit and what it changed.
    pub async fn show(&self, rev: &str) -> Result<CommitDetail> {
        let id = self.inner.resolve(rev).await?;
        let c = Commit::read(self.inner.objects(), &id).await?;
        let parent_tables = self.inner.commit_tables(c.parents.first().copied()).await?;
        let changes = self
            .inner
            .compare_tables(&parent_tables, &c.tables)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(CommitDetail {
            commit: CommitInfo::new(id, c),
            changes,
        })
    }
}
