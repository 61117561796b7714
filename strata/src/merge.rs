//! Merging branches: fast-forward or a three-way merge, cell by cell; conflicts recorded in
//! the repository until they are resolved or the merge is aborted.

use serde::Serialize;
use serde_json::{Map, Value};
use strata_engine::ObjectId;

use crate::error::{Error, Result};
use crate::repository::{Author, Repository};

pub use strata_engine::merge::CellConflict;
pub use strata_engine::merging::Side;

/// Options of a merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// The merge commit's message (default: `Merge REV`).
    pub message: Option<String>,
    /// Make a merge commit even when a fast-forward is possible.
    pub no_ff: bool,
    /// Refuse unless the merge is a fast-forward.
    pub ff_only: bool,
    /// The merge commit's author (default: the repository handle's).
    pub author: Option<Author>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MergeOutcome {
    /// Nothing to merge: the other side is already here.
    UpToDate,
    /// The branch moved forward to the other side's commit.
    FastForward { commit: ObjectId },
    /// A merge commit was made.
    Merged { commit: ObjectId },
    /// The merge stopped: these rows conflict, in these tables. The merge is in progress:
    /// resolve the conflicts and commit, or abort it.
    Conflicts { rows: usize, tables: Vec<String> },
    /// The branch's own commits were replayed on top of the other side (`pull --rebase`).
    Rebased { commit: ObjectId, replayed: usize },
}

impl From<strata_engine::merging::MergeOutcome> for MergeOutcome {
    fn from(o: strata_engine::merging::MergeOutcome) -> Self {
        use strata_engine::merging::MergeOutcome as M;
        match o {
            M::UpToDate => MergeOutcome::UpToDate,
            M::FastForward(commit) => MergeOutcome::FastForward { commit },
            M::Merged(commit) => MergeOutcome::Merged { commit },
            M::Conflicts(rows, tables) => MergeOutcome::Conflicts { rows, tables },
            M::Rebased(commit, replayed) => MergeOutcome::Rebased { commit, replayed },
        }
    }
}

impl MergeOutcome {
    /// The merge stopped on conflicts, as an error (`what`: `merge of 'feature'`, `pull`).
    pub fn conflict_error(&self, what: &str, pull: bool) -> Option<Error> {
        match self {
            MergeOutcome::Conflicts { rows, tables } => Some(Error::MergeConflicts {
                what: what.to_string(),
                rows: *rows,
                tables: tables.clone(),
                pull,
            }),
            _ => None,
        }
    }
}

/// One conflicting row of a merge in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictInfo {
    pub table: String,
    /// `modify/modify`, `delete/modify`, `modify/delete` or `add/add` (ours/theirs).
    pub kind: String,
    /// The key columns.
    pub key: Map<String, Value>,
    /// The cells that conflict (base, ours, theirs).
    pub cells: Vec<CellConflict>,
}

impl Repository {
    /// Merges revision `rev` into the current branch: a fast-forward when possible, else a
    /// three-way merge, row by row and cell by cell. Conflicting rows stop the merge
    /// ([`MergeOutcome::Conflicts`]); the merge is then in progress.
    pub async fn merge(&self, rev: &str, opts: &MergeOptions) -> Result<MergeOutcome> {
        let _lock = self.inner.lock_state().await?;
        self.merge_locked(rev, opts).await
    }

    /// [`Repository::merge`], under the state lock the caller holds.
    pub(crate) async fn merge_locked(
        &self,
        rev: &str,
        opts: &MergeOptions,
    ) -> Result<MergeOutcome> {
        let (author, _) = self.author(opts.author.as_ref()).await?;
        let engine_opts = strata_engine::merging::MergeOptions {
            message: opts.message.clone(),
            no_ff: opts.no_ff,
            ff_only: opts.ff_only,
        };
        Ok(self
            .inner
            .merge(rev, author.as_str(), &engine_opts)
            .await?
            .into())
    }

    /// Undoes a merge in progress: the working tables are exactly as before it.
    pub async fn merge_abort(&self) -> Result<()> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.merge_abort().await?)
    }

    /// The conflicting rows of the merge in progress (of one table, or all); `None` when no
    /// merge is in progress.
    pub async fn conflicts(&self, table: Option<&str>) -> Result<Option<Vec<ConflictInfo>>> {
        let Some(state) = self.inner.merge_state().await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (name, tc) in state.tables {
            if table.is_some_and(|t| t != name) {
                continue;
            }
            for c in tc.conflicts {
                out.push(ConflictInfo {
                    table: name.clone(),
                    kind: c.kind,
                    key: c.key,
                    cells: c.cells,
                });
            }
        }
        Ok(Some(out))
    }

    /// Resolves the conflicts of one table (or all) by taking one side's rows; returns how
    /// many were resolved and how many remain.
    pub async fn resolve_conflicts(
        &self,
        table: Option<&str>,
        side: Side,
    ) -> Result<(usize, usize)> {
        let _lock = self.inner.lock_state().await?;
        let n = self.inner.resolve_conflicts(table, side).await?;
        let left = self
            .inner
            .merge_state()
            .await?
            .map_or(0, |m| m.conflict_count());
        Ok((n, left))
    }
}
