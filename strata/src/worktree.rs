//! The working state: what HEAD is, what changed since it, committing, switching and
//! resetting.

use std::collections::BTreeMap;

use serde::Serialize;
use strata_engine::repo::{Head, TableStatus};
use strata_engine::store::RefKind;
use strata_engine::{Commit, ObjectId};

use crate::error::{Error, Result};
use crate::repository::{Author, Repository};

/// How one table differs between two versions (HEAD and the working tables, or a commit and
/// its parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableChange {
    pub table: String,
    /// `added`, `removed` or `modified`.
    pub state: &'static str,
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub schema_changed: bool,
}

impl From<TableStatus> for TableChange {
    fn from(s: TableStatus) -> Self {
        TableChange {
            table: s.table,
            state: s.state,
            added: s.rows.added,
            removed: s.rows.removed,
            modified: s.rows.modified,
            schema_changed: s.schema_changed,
        }
    }
}

/// A merge that stopped on conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergingStatus {
    /// The commit being merged in.
    pub theirs: ObjectId,
    /// What it was called (`feature`, `origin/main`).
    pub name: String,
    /// Conflicting rows left, per table.
    pub conflicts: BTreeMap<String, usize>,
}

/// How the current branch compares with its upstream, as of the last fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamStatus {
    /// `origin/main`.
    pub name: String,
    /// Commits here that the upstream lacks (none when the upstream is gone).
    pub ahead: Option<usize>,
    /// Commits of the upstream that are not here.
    pub behind: Option<usize>,
    /// The remote-tracking branch no longer exists.
    pub gone: bool,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The branch checked out (none when HEAD is detached).
    pub branch: Option<String>,
    /// The commit HEAD is detached at.
    pub detached: Option<ObjectId>,
    /// HEAD's commit (none on a branch without commits).
    pub head: Option<ObjectId>,
    pub merging: Option<MergingStatus>,
    pub upstream: Option<UpstreamStatus>,
    /// Tables that differ from HEAD.
    pub tables: Vec<TableChange>,
}

/// What HEAD names.
pub use strata_engine::repo::Head as HeadRef;

/// Options of [`Repository::checkout`].
#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    /// Create a branch named like the target, starting here (a revision), and switch to it.
    pub create_from: Option<String>,
    /// Discard uncommitted changes (and a merge in progress).
    pub force: bool,
}

/// A commit just made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    pub id: ObjectId,
    /// The branch it was made on (none on a detached HEAD).
    pub branch: Option<String>,
    /// The author used when no identity is set (`user.name`, `user.email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guessed_author: Option<String>,
}

/// Options of [`Repository::revert`] and [`Repository::cherry_pick`].
#[derive(Debug, Clone, Default)]
pub struct PickOptions {
    /// For a merge commit: the parent (1, 2, ...) whose side its change is taken against.
    pub mainline: Option<usize>,
    /// The new commit's author (revert: default as for a commit; cherry-pick: default the
    /// picked commit's author, as git keeps it).
    pub author: Option<Author>,
    /// Cherry-pick: add "(cherry picked from commit ID)" to the message (`-x`).
    pub record_origin: bool,
}

/// Where `checkout -` goes back to (`.strata/local/previous-head.json`).
const PREVIOUS_HEAD: &str = "previous-head.json";

impl Repository {
    /// What HEAD names: a branch, or a commit (detached).
    pub async fn head(&self) -> Result<Head> {
        Ok(self.inner.head().await?)
    }

    /// The commit HEAD points at (none on a branch without commits).
    pub async fn head_commit(&self) -> Result<Option<ObjectId>> {
        Ok(self.inner.head_commit().await?)
    }

    /// The working tables compared with HEAD, a merge in progress, and the upstream.
    pub async fn status(&self) -> Result<Status> {
        let repo = &self.inner;
        let head = repo.head().await?;
        let head_commit = repo.commit_of(&head).await?;
        let tables = repo.status().await?.into_iter().map(Into::into).collect();
        let merging = repo.merge_state().await?.map(|m| MergingStatus {
            theirs: m.theirs,
            name: m.theirs_name.clone(),
            conflicts: m
                .tables
                .iter()
                .map(|(t, c)| (t.clone(), c.conflicts.len()))
                .collect(),
        });
        let mut upstream = None;
        if let (Head::Branch(b), Some(local)) = (&head, head_commit) {
            if let Some(u) = strata_remote::config::upstream(repo, b).await? {
                let counts = match repo.remote_tracking(&u.remote, &u.branch).await? {
                    Some(t) => Some(repo.ahead_behind(local, t).await?),
                    None => None,
                };
                upstream = Some(UpstreamStatus {
                    name: format!("{}/{}", u.remote, u.branch),
                    ahead: counts.map(|c| c.0),
                    behind: counts.map(|c| c.1),
                    gone: counts.is_none(),
                });
            }
        }
        let (branch, detached) = match head {
            Head::Branch(b) => (Some(b), None),
            Head::Detached(id) => (None, Some(id)),
        };
        Ok(Status {
            branch,
            detached,
            head: head_commit,
            merging,
            upstream,
            tables,
        })
    }

    /// Records every working change as a new commit on the current branch (there is no
    /// staging step). `author` defaults to this handle's, then to `STRATA_AUTHOR`, then to
    /// the configured identity (see [`crate::config`]).
    pub async fn commit(&self, message: &str, author: Option<&Author>) -> Result<Committed> {
        let _lock = self.inner.lock_state().await?;
        let (author, guessed) = self.author(author).await?;
        let id = self.inner.commit(message, author.as_str()).await?;
        let branch = match self.inner.head().await? {
            Head::Branch(b) => Some(b),
            Head::Detached(_) => None,
        };
        Ok(Committed {
            id,
            branch,
            guessed_author: guessed.then(|| author.to_string()),
        })
    }

    /// Replaces the last commit (`commit --amend`) by one with the working tables, the same
    /// parents, and `message` (default: the old message). The author stays the old commit's
    /// unless `author` is given.
    pub async fn amend(&self, message: Option<&str>, author: Option<&Author>) -> Result<Committed> {
        let _lock = self.inner.lock_state().await?;
        let id = self
            .inner
            .amend(message, author.map(Author::as_str))
            .await?;
        self.committed(id, false).await
    }

    /// Makes a new commit that undoes the change `rev` made, merged under the cell-level
    /// rules with what changed since. Needs a clean working state. On a conflicting cell
    /// nothing changes and the error names the tables.
    pub async fn revert(&self, rev: &str, opts: &PickOptions) -> Result<Committed> {
        let _lock = self.inner.lock_state().await?;
        let (author, guessed) = self.author(opts.author.as_ref()).await?;
        let id = self
            .inner
            .pick(
                rev,
                true,
                opts.mainline,
                &|c, id| format!("Revert \"{}\"\n\nThis reverts commit {id}.", c.summary()),
                &|_| author.to_string(),
            )
            .await?;
        self.committed(id, guessed).await
    }

    /// Applies the change commit `rev` made on top of HEAD as a new commit with its message
    /// and author, merged under the cell-level rules. Needs a clean working state. On a
    /// conflicting cell nothing changes and the error names the tables.
    pub async fn cherry_pick(&self, rev: &str, opts: &PickOptions) -> Result<Committed> {
        let _lock = self.inner.lock_state().await?;
        let origin = opts.record_origin;
        let author = opts.author.as_ref().map(|a| a.to_string());
        let id = self
            .inner
            .pick(
                rev,
                false,
                opts.mainline,
                &|c, id| {
                    if origin {
                        format!(
                            "{}\n\n(cherry picked from commit {id})",
                            c.message.trim_end()
                        )
                    } else {
                        c.message.clone()
                    }
                },
                &|c| author.clone().unwrap_or_else(|| c.author.clone()),
            )
            .await?;
        self.committed(id, false).await
    }

    async fn committed(&self, id: ObjectId, guessed: bool) -> Result<Committed> {
        let branch = match self.inner.head().await? {
            Head::Branch(b) => Some(b),
            Head::Detached(_) => None,
        };
        let guessed_author = if guessed {
            Some(Commit::read(self.inner.objects(), &id).await?.author)
        } else {
            None
        };
        Ok(Committed {
            id,
            branch,
            guessed_author,
        })
    }

    /// Switches to a branch, or to any revision (detached), replacing the working tables.
    /// Refuses over uncommitted changes unless `force`. `-` is the branch (or commit) checked
    /// out before the last switch, as in git.
    pub async fn checkout(&self, target: &str, opts: &CheckoutOptions) -> Result<Head> {
        let _lock = self.inner.lock_state().await?;
        let before = self.inner.head().await?;
        let target = if target == "-" && opts.create_from.is_none() {
            match self.inner.read_local::<String>(PREVIOUS_HEAD).await? {
                Some(p) => p,
                None => {
                    return Err(Error::InvalidState {
                        message: "there is no previous branch to go back to: 'checkout -' returns to the branch checked out before the last switch; name a branch instead".into(),
                        suggestion: None,
                    })
                }
            }
        } else {
            target.to_string()
        };
        if let Some(start) = &opts.create_from {
            self.inner.ensure_clean(opts.force).await?;
            self.inner
                .create_ref(RefKind::Branch, &target, Some(start))
                .await?;
        }
        let head = self.inner.checkout(&target, opts.force).await?;
        if head != before {
            let previous = match before {
                Head::Branch(b) => b,
                Head::Detached(id) => id.to_hex(),
            };
            self.inner.write_local(PREVIOUS_HEAD, &previous).await?;
        }
        Ok(head)
    }

    /// Moves the current branch (or a detached HEAD) to `rev` and discards every working
    /// change and a merge in progress.
    pub async fn reset_hard(&self, rev: &str) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.reset_hard(rev).await?)
    }
}
