//! History: revisions, commits, log and show.

use std::collections::BTreeMap;

use serde::Serialize;
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
    /// Where the history starts (default: HEAD).
    pub rev: Option<String>,
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

/// A commit and what it changed, table by table, against its first parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitDetail {
    #[serde(flatten)]
    pub commit: CommitInfo,
    pub changes: Vec<TableChange>,
}

impl Repository {
    /// Resolves a revision to a commit id: a branch, a tag, a full or unique-prefix commit
    /// id, `HEAD`, `REMOTE/BRANCH`, each optionally followed by `~N`, `^` or `^N`.
    pub async fn resolve(&self, rev: &str) -> Result<ObjectId> {
        Ok(self.inner.resolve(rev).await?)
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

    /// The history as [`Repository::log`] gives it, keeping only the commits that match
    /// every filter given; `limit` counts the commits kept.
    pub async fn log_filtered(&self, opts: &LogOptions) -> Result<Vec<CommitInfo>> {
        let all = self.log(opts.rev.as_deref(), None).await?;
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
                        None => self.inner.commit_tables(Some(*p)).await?.get(t).copied(),
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
