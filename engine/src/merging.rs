//! Merging branches in a repository: merge base, fast-forward, three-way merge with
//! conflicts recorded in the working state, resolution, abort.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::commit::Commit;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::merge::{key_rows, merge_tables, Conflict};
use crate::repo::{Head, Repository, Working};
use crate::store::layout;
use crate::store::RefName;
use crate::table::{apply, apply_rows, store_table, ChangeOp, TableObject, VecSource};
use crate::tree::decode_hex;

/// A merge that stopped on conflicts (`local/MERGE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeState {
    /// The commit being merged in.
    pub theirs: ObjectId,
    /// What the user called it.
    pub theirs_name: String,
    pub base: Option<ObjectId>,
    /// HEAD's commit when the merge started.
    pub head: Option<ObjectId>,
    /// The working tables before the merge (restored by `--abort`).
    pub pre_merge: Working,
    pub message: String,
    pub tables: BTreeMap<String, TableConflicts>,
}

/// Conflicts in one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableConflicts {
    pub conflicts: Vec<Conflict>,
    /// A table holding their versions of the conflicting rows they did not delete.
    pub theirs_rows: Option<ObjectId>,
}

impl MergeState {
    pub fn conflict_count(&self) -> usize {
        self.tables.values().map(|t| t.conflicts.len()).sum()
    }
}

/// Options of `merge`.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    pub message: Option<String>,
    pub no_ff: bool,
    pub ff_only: bool,
}

/// What `merge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    UpToDate,
    FastForward(ObjectId),
    Merged(ObjectId),
    /// Stopped with this many conflicting rows, in these tables.
    Conflicts(usize, Vec<String>),
    /// The branch's own commits were replayed on top of the other side (`pull --rebase`):
    /// the new tip, and how many commits were replayed.
    Rebased(ObjectId, usize),
}

/// Which side wins when resolving conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Theirs,
}

impl Repository {
    pub async fn merge_state(&self) -> Result<Option<MergeState>> {
        self.read_local("MERGE").await
    }

    async fn set_merge_state(&self, state: Option<&MergeState>) -> Result<()> {
        match state {
            Some(s) => self.write_local("MERGE", s).await,
            None => self.delete_local("MERGE").await,
        }
    }

    /// Fails when a merge is in progress.
    pub async fn ensure_no_merge(&self) -> Result<()> {
        if let Some(m) = self.merge_state().await? {
            return Err(Error::MergeInProgress {
                name: m.theirs_name,
            });
        }
        Ok(())
    }

    /// The merge base of two commits: a common ancestor that is not an ancestor of another
    /// common ancestor (a lowest common ancestor). When there are several (criss-cross
    /// history), the newest by commit time is used, then the smallest id.
    pub async fn merge_base(&self, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
        let ours = self.reachable(a).await?;
        let theirs = self.reachable(b).await?;
        let common: HashSet<ObjectId> = ours.intersection(&theirs).copied().collect();
        // Every proper ancestor of a common ancestor is not a lowest one.
        let mut below: HashSet<ObjectId> = HashSet::new();
        let mut stack: Vec<ObjectId> = Vec::new();
        for c in &common {
            stack.extend(Commit::read(self.objects(), c).await?.parents);
        }
        while let Some(c) = stack.pop() {
            if below.insert(c) {
                stack.extend(Commit::read(self.objects(), &c).await?.parents);
            }
        }
        let mut best = Vec::new();
        for c in common.difference(&below) {
            best.push((
                Commit::read(self.objects(), c).await?.time,
                std::cmp::Reverse(*c),
            ));
        }
        Ok(best.into_iter().max().map(|(_, std::cmp::Reverse(c))| c))
    }

    /// Merges revision `rev` into the current branch.
    pub async fn merge(
        &self,
        rev: &str,
        author: &str,
        opts: &MergeOptions,
    ) -> Result<MergeOutcome> {
        self.ensure_no_merge().await?;
        self.ensure_clean(false).await?;
        let theirs = self.resolve(rev).await?;
        let head = self.head().await?;
        let ours = self.commit_of(&head).await?;
        let Some(ours) = ours else {
            // An unborn branch simply takes their history.
            self.move_head(&head, None, theirs, &format!("merge {rev}: fast-forward"))
                .await?;
            return Ok(MergeOutcome::FastForward(theirs));
        };
        let base = self.merge_base(ours, theirs).await?;
        if base == Some(theirs) {
            return Ok(MergeOutcome::UpToDate);
        }
        let can_ff = base == Some(ours);
        if opts.ff_only && !can_ff {
            return Err(Error::NotFastForward { rev: rev.into() });
        }
        if can_ff && !opts.no_ff {
            self.move_head(
                &head,
                Some(ours),
                theirs,
                &format!("merge {rev}: fast-forward"),
            )
            .await?;
            return Ok(MergeOutcome::FastForward(theirs));
        }
        let branch = match &head {
            Head::Branch(b) => b.clone(),
            Head::Detached(_) => "HEAD".into(),
        };
        let message = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Merge '{rev}' into {branch}"));
        let (merged, conflicts) = self.merge_commits(base, ours, Some(theirs)).await?;
        let working = Working { tables: merged };
        if conflicts.is_empty() {
            let commit = Commit::new(
                vec![ours, theirs],
                working.tables.clone(),
                author.into(),
                self.now(),
                message,
            );
            let id = self.objects().put_json(&commit).await?;
            let reason = format!("merge {rev}: {}", commit.summary());
            self.move_head(&head, Some(ours), id, &reason).await?;
            return Ok(MergeOutcome::Merged(id));
        }
        let state = MergeState {
            theirs,
            theirs_name: rev.into(),
            base,
            head: Some(ours),
            pre_merge: Working {
                tables: self.commit_tables(Some(ours)).await?,
            },
            message,
            tables: conflicts,
        };
        // The state goes first: a crash before the working tables change leaves a merge
        // that `--abort` undoes.
        self.set_merge_state(Some(&state)).await?;
        self.set_working(&working).await?;
        Ok(MergeOutcome::Conflicts(
            state.conflict_count(),
            state.tables.keys().cloned().collect(),
        ))
    }

    /// Merges the tables of commits `ours` and `theirs` from their `base` under the
    /// cell-level rules: the merged tables (with our side of each conflicting cell) and the
    /// conflicts, table by table.
    pub(crate) async fn merge_commits(
        &self,
        base: Option<ObjectId>,
        ours: ObjectId,
        theirs: Option<ObjectId>,
    ) -> Result<(BTreeMap<String, ObjectId>, BTreeMap<String, TableConflicts>)> {
        let base_tables = self.commit_tables(base).await?;
        let ours_tables = self.commit_tables(Some(ours)).await?;
        let theirs_tables = self.commit_tables(theirs).await?;
        self.merge_table_sets(&base_tables, &ours_tables, &theirs_tables, true)
            .await
    }

    /// Merges several commits into the current branch as one merge commit whose parents are
    /// HEAD and each commit merged, each against its merge base with HEAD under the
    /// cell-level rules. A commit whose rows conflict with what is merged so far is left out,
    /// and nothing of it changes; a commit already in HEAD's history counts as merged. No
    /// commit is made when nothing new merges. Returns the commit made and the commits
    /// merged (in the given order).
    pub async fn merge_several(
        &self,
        theirs: &[ObjectId],
        author: &str,
        message: &str,
    ) -> Result<(Option<ObjectId>, Vec<ObjectId>)> {
        self.ensure_no_merge().await?;
        self.ensure_clean(false).await?;
        let head = self.head().await?;
        let Some(ours) = self.commit_of(&head).await? else {
            return Err(Error::State(
                "there is no commit to merge into yet; commit first".into(),
            ));
        };
        let history = self.reachable(ours).await?;
        let mut tables = self.commit_tables(Some(ours)).await?;
        let mut parents = vec![ours];
        let mut merged = Vec::new();
        for &t in theirs {
            if history.contains(&t) {
                merged.push(t);
                continue;
            }
            if parents.contains(&t) {
                continue;
            }
            let base = self.merge_base(ours, t).await?;
            let base_tables = self.commit_tables(base).await?;
            let theirs_tables = self.commit_tables(Some(t)).await?;
            match self
                .merge_table_sets(&base_tables, &tables, &theirs_tables, false)
                .await
            {
                Ok((m, conflicts)) if conflicts.is_empty() => {
                    tables = m;
                    parents.push(t);
                    merged.push(t);
                }
                Ok(_) => tracing::info!(commit = %t, "left out of the merge: its rows conflict"),
                Err(e) => tracing::info!(commit = %t, error = %e, "left out of the merge"),
            }
        }
        if parents.len() == 1 {
            return Ok((None, merged));
        }
        let commit = Commit::new(parents, tables, author.into(), self.now(), message.into());
        let id = self.objects().put_json(&commit).await?;
        let reason = format!("merge: {}", commit.summary());
        self.move_head(&head, Some(ours), id, &reason).await?;
        Ok((Some(id), merged))
    }

    /// The table-by-table merge of [`Repository::merge_commits`]. `keep_theirs_rows`: store
    /// the other side's version of conflicting rows (for a merge that stops to be resolved).
    async fn merge_table_sets(
        &self,
        base_tables: &BTreeMap<String, ObjectId>,
        ours_tables: &BTreeMap<String, ObjectId>,
        theirs_tables: &BTreeMap<String, ObjectId>,
        keep_theirs_rows: bool,
    ) -> Result<(BTreeMap<String, ObjectId>, BTreeMap<String, TableConflicts>)> {
        let mut merged = BTreeMap::new();
        let mut conflicts = BTreeMap::new();
        let names: BTreeSet<&String> = ours_tables.keys().chain(theirs_tables.keys()).collect();
        for name in names {
            let (b, o, t) = (
                base_tables.get(name),
                ours_tables.get(name),
                theirs_tables.get(name),
            );
            let result = if o == t || b == t {
                o.copied()
            } else if b == o {
                t.copied()
            } else {
                let (Some(o), Some(t)) = (o, t) else {
                    return Err(Error::Invalid(format!(
                        "cannot merge table '{name}': it was deleted on one side and changed on the other; \
                         restore or drop it on one side, commit, and merge again"
                    )));
                };
                let objects = self.objects();
                let base_t = match b {
                    Some(b) => Some(TableObject::read(objects, b).await?),
                    None => None,
                };
                let ours_t = TableObject::read(objects, o).await?;
                let theirs_t = TableObject::read(objects, t).await?;
                let m =
                    merge_tables(self.objects(), name, base_t.as_ref(), &ours_t, &theirs_t).await?;
                if !m.conflicts.is_empty() && !keep_theirs_rows {
                    conflicts.insert(
                        name.clone(),
                        TableConflicts {
                            conflicts: m.conflicts,
                            theirs_rows: None,
                        },
                    );
                    continue;
                }
                if !m.conflicts.is_empty() {
                    let theirs_rows = match m.theirs_rows.into_iter().next() {
                        Some(rows) => {
                            let (t, _) = apply(
                                self.objects(),
                                name,
                                None,
                                m.table.schema.clone(),
                                m.table.chunking,
                                ChangeOp::Upsert,
                                &mut VecSource(VecDeque::from([rows])),
                            )
                            .await?;
                            Some(store_table(self.objects(), &t).await?)
                        }
                        None => None,
                    };
                    conflicts.insert(
                        name.clone(),
                        TableConflicts {
                            conflicts: m.conflicts,
                            theirs_rows,
                        },
                    );
                }
                Some(store_table(self.objects(), &m.table).await?)
            };
            if let Some(id) = result {
                merged.insert(name.clone(), id);
            }
        }
        Ok((merged, conflicts))
    }

    /// Replaces HEAD's commit by one with the working tables, the same parents, and
    /// `message` and `author` (default: the replaced commit's): `commit --amend`.
    pub async fn amend(&self, message: Option<&str>, author: Option<&str>) -> Result<ObjectId> {
        self.ensure_no_merge().await?;
        let head = self.head().await?;
        let Some(old_id) = self.commit_of(&head).await? else {
            return Err(Error::State(
                "there is no commit to amend yet; commit first".into(),
            ));
        };
        let old = Commit::read(self.objects(), &old_id).await?;
        let message = message.unwrap_or(&old.message);
        if message.trim().is_empty() {
            return Err(Error::EmptyMessage);
        }
        let working = self.working().await?;
        let commit = Commit::new(
            old.parents.clone(),
            working.tables.clone(),
            author.unwrap_or(&old.author).to_string(),
            self.now(),
            message.to_string(),
        );
        let id = self.objects().put_json(&commit).await?;
        let reason = format!("commit (amend): {}", commit.summary());
        self.move_head(&head, Some(old_id), id, &reason).await?;
        Ok(id)
    }

    /// Applies the change commit `rev` made (`revert`: its inverse) on top of HEAD as a new
    /// commit, merging it under the cell-level rules with what changed since. A merge
    /// commit's change is taken against its parent number `mainline`. On a conflict nothing
    /// changes ([`Error::PickConflicts`]). The new commit's message and author are `message`
    /// and `author`.
    pub async fn pick(
        &self,
        rev: &str,
        revert: bool,
        mainline: Option<usize>,
        message: &dyn Fn(&Commit, ObjectId) -> String,
        author: &dyn Fn(&Commit) -> String,
    ) -> Result<ObjectId> {
        let what = if revert { "revert" } else { "cherry-pick" };
        self.ensure_no_merge().await?;
        self.ensure_clean(false).await?;
        let target = self.resolve(rev).await?;
        let picked = Commit::read(self.objects(), &target).await?;
        let parent = match (picked.parents.len(), mainline) {
            (n, None) if n > 1 => {
                return Err(Error::Invalid(format!(
                    "{rev} is a merge commit: say which parent's side to {what} against with -m N (1 to {n})"
                )))
            }
            (n, Some(m)) if m == 0 || m > n => {
                return Err(Error::Invalid(format!(
                    "-m {m}: {rev} has {n} parent{}; give 1 to {n}",
                    if n == 1 { "" } else { "s" }
                )))
            }
            (_, Some(m)) => Some(picked.parents[m - 1]),
            (_, None) => picked.parents.first().copied(),
        };
        let head = self.head().await?;
        let Some(ours) = self.commit_of(&head).await? else {
            return Err(Error::State(format!(
                "HEAD has no commits yet: there is nothing to {what} onto"
            )));
        };
        let (base, theirs) = if revert {
            (Some(target), parent)
        } else {
            (parent, Some(target))
        };
        let (merged, conflicts) = self.merge_commits(base, ours, theirs).await?;
        if !conflicts.is_empty() {
            return Err(Error::PickConflicts {
                what: what.into(),
                rev: rev.into(),
                count: conflicts.values().map(|t| t.conflicts.len()).sum(),
                tables: conflicts.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        if merged == self.commit_tables(Some(ours)).await? {
            return Err(Error::State(format!(
                "{what} of {rev} changes nothing: HEAD already has {}",
                if revert {
                    "none of its change"
                } else {
                    "its change"
                }
            )));
        }
        let commit = Commit::new(
            vec![ours],
            merged,
            author(&picked),
            self.now(),
            message(&picked, target),
        );
        let id = self.objects().put_json(&commit).await?;
        let reason = format!("{what}: {}", commit.summary());
        self.move_head(&head, Some(ours), id, &reason).await?;
        Ok(id)
    }

    /// Replays the commits of HEAD's history that `onto` lacks on top of `onto`, oldest
    /// first, each keeping its author, time and message, then moves HEAD's branch there
    /// (`pull --rebase`). Each is merged under the cell-level rules; one whose change `onto`
    /// already has is dropped. History with merge commits is refused (merge instead). On a
    /// conflicting cell nothing changes ([`Error::PickConflicts`]). `name` names `onto` in
    /// messages and the reflog.
    pub async fn rebase(&self, onto: ObjectId, name: &str) -> Result<MergeOutcome> {
        self.ensure_no_merge().await?;
        self.ensure_clean(false).await?;
        let head = self.head().await?;
        let reason = format!("pull --rebase: onto {name}");
        let Some(ours) = self.commit_of(&head).await? else {
            self.move_head(&head, None, onto, &reason).await?;
            return Ok(MergeOutcome::FastForward(onto));
        };
        let base = self.merge_base(ours, onto).await?;
        if base == Some(onto) {
            return Ok(MergeOutcome::UpToDate);
        }
        if base == Some(ours) {
            self.move_head(&head, Some(ours), onto, &reason).await?;
            return Ok(MergeOutcome::FastForward(onto));
        }
        let theirs = self.reachable(onto).await?;
        let mut mine = self.log_from(&[ours], &theirs, None).await?;
        mine.reverse();
        if let Some((id, _)) = mine.iter().find(|(_, c)| c.parents.len() > 1) {
            return Err(Error::State(format!(
                "cannot rebase onto {name}: the commits to replay include the merge {}; pull without --rebase (a merge) instead",
                id.short()
            )));
        }
        let mut tip = onto;
        let mut replayed = 0;
        for (id, c) in &mine {
            let (merged, conflicts) = self
                .merge_commits(c.parents.first().copied(), tip, Some(*id))
                .await?;
            if !conflicts.is_empty() {
                return Err(Error::PickConflicts {
                    what: format!("rebase onto {name}: replaying"),
                    rev: id.short(),
                    count: conflicts.values().map(|t| t.conflicts.len()).sum(),
                    tables: conflicts.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            if merged == self.commit_tables(Some(tip)).await? {
                continue;
            }
            let commit = Commit::new(
                vec![tip],
                merged,
                c.author.clone(),
                c.time,
                c.message.clone(),
            );
            tip = self.objects().put_json(&commit).await?;
            replayed += 1;
        }
        self.move_head(&head, Some(ours), tip, &reason).await?;
        Ok(MergeOutcome::Rebased(tip, replayed))
    }

    /// Moves HEAD's branch (or detached HEAD) from `expected` to `to`, and the working tables.
    async fn move_head(
        &self,
        head: &Head,
        expected: Option<ObjectId>,
        to: ObjectId,
        reason: &str,
    ) -> Result<()> {
        match head {
            Head::Branch(b) => {
                self.move_branch(&RefName::branch(b)?, expected, Some(to), reason)
                    .await?
            }
            Head::Detached(_) => self.set_head(&Head::Detached(to)).await?,
        }
        let tables = self.commit_tables(Some(to)).await?;
        self.set_working(&Working { tables }).await
    }

    /// Undoes a merge that stopped on conflicts, restoring the working tables exactly.
    pub async fn merge_abort(&self) -> Result<()> {
        let Some(state) = self.merge_state().await? else {
            return Err(Error::NoMerge);
        };
        self.set_working(&state.pre_merge).await?;
        self.set_merge_state(None).await
    }

    /// Resolves the conflicts of `table` (all tables when `None`) by taking one side.
    pub async fn resolve_conflicts(&self, table: Option<&str>, side: Side) -> Result<usize> {
        let Some(mut state) = self.merge_state().await? else {
            return Err(Error::NoMerge);
        };
        let names: Vec<String> = match table {
            Some(t) if state.tables.contains_key(t) => vec![t.to_string()],
            Some(t) => {
                return Err(Error::State(format!(
                    "table '{t}' has no conflicts; the tables with conflicts are {}",
                    state.tables.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
            None => state.tables.keys().cloned().collect(),
        };
        let mut resolved = 0;
        for name in names {
            let tc = state.tables.remove(&name).expect("listed above");
            resolved += tc.conflicts.len();
            if side == Side::Ours {
                continue;
            }
            let (_, mut current) = self.table(&name, None).await?;
            if let Some(rows_id) = tc.theirs_rows {
                let rows_table = TableObject::read(self.objects(), &rows_id).await?;
                let entries = rows_table.chunks(self.objects()).await?;
                let schema = rows_table.schema.arrow()?;
                let key_idx = rows_table.schema.key_indices();
                let mut parts = VecDeque::new();
                for e in &entries {
                    parts.push_back(
                        crate::table::read_chunk(self.objects(), e, &schema, &key_idx).await?,
                    );
                }
                current =
                    apply_rows(self.objects(), &name, &current, ChangeOp::Upsert, parts).await?;
            }
            let mut deleted: Vec<Vec<u8>> = tc
                .conflicts
                .iter()
                .filter(|c| c.theirs.is_none())
                .filter_map(|c| decode_hex(&c.key_hex))
                .collect();
            if !deleted.is_empty() {
                deleted.sort();
                let rows = key_rows(&current.schema, &current.schema.arrow()?, &deleted)?;
                let rows = VecDeque::from([rows]);
                current =
                    apply_rows(self.objects(), &name, &current, ChangeOp::Delete, rows).await?;
            }
            let id = store_table(self.objects(), &current).await?;
            self.set_working_table(&name, Some(id)).await?;
        }
        self.set_merge_state(Some(&state)).await?;
        Ok(resolved)
    }

    /// Marks the conflicts of `table` whose encoded keys are in `keys` as resolved.
    pub async fn resolve_keys(&self, table: &str, keys: &HashSet<Vec<u8>>) -> Result<()> {
        let Some(mut state) = self.merge_state().await? else {
            return Ok(());
        };
        let Some(tc) = state.tables.get_mut(table) else {
            return Ok(());
        };
        tc.conflicts
            .retain(|c| decode_hex(&c.key_hex).is_none_or(|k| !keys.contains(&k)));
        if tc.conflicts.is_empty() {
            state.tables.remove(table);
        }
        self.set_merge_state(Some(&state)).await
    }

    /// Called by `commit`: the extra parent of a merge in progress, after checking that no
    /// conflict remains. Clears the state once the commit is recorded.
    pub(crate) async fn merge_parent(&self) -> Result<Option<(ObjectId, String)>> {
        match self.merge_state().await? {
            None => Ok(None),
            Some(s) if s.conflict_count() > 0 => Err(Error::ConflictsRemain {
                count: s.conflict_count(),
                tables: s.tables.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
            Some(s) => Ok(Some((s.theirs, s.message))),
        }
    }

    pub(crate) async fn clear_merge(&self) -> Result<()> {
        self.set_merge_state(None).await
    }
}

/// Where the merge state lives.
pub fn merge_state_path() -> object_store::path::Path {
    layout::local("MERGE")
}
