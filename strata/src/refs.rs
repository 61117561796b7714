//! Branches and tags.

use serde::Serialize;
use strata_engine::repo::Head;
use strata_engine::store::{RefKind, RefName, TagNote};
use strata_engine::ObjectId;

use crate::error::{Error, Result, Suggestion};
use crate::repository::{Author, Repository};

/// A branch or tag and the commit it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefInfo {
    pub name: String,
    pub commit: ObjectId,
    /// The branch checked out (always false for tags).
    pub current: bool,
    /// An annotated tag's note (`tag -a`): tagger, time and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<TagNote>,
}

impl Repository {
    async fn refs_of(&self, kind: RefKind) -> Result<Vec<RefInfo>> {
        let current = match self.inner.head().await? {
            Head::Branch(b) if kind == RefKind::Branch => Some(b),
            _ => None,
        };
        let mut out = Vec::new();
        for (name, commit) in self.inner.list_refs(kind).await? {
            let note = match kind {
                RefKind::Tag => self.tag_note(&name).await?,
                RefKind::Branch => None,
            };
            out.push(RefInfo {
                current: current.as_deref() == Some(name.as_str()),
                name,
                commit,
                note,
            });
        }
        Ok(out)
    }

    /// Every branch, by name.
    pub async fn branches(&self) -> Result<Vec<RefInfo>> {
        self.refs_of(RefKind::Branch).await
    }

    /// Every remote-tracking branch (`REMOTE/BRANCH`, where the last fetch or push saw it),
    /// by name.
    pub async fn remote_branches(&self) -> Result<Vec<RefInfo>> {
        let mut out = Vec::new();
        for remote in strata_remote::config::remotes(&self.inner).await?.keys() {
            for (branch, commit) in self.inner.remote_tracking_list(remote).await? {
                out.push(RefInfo {
                    name: format!("{remote}/{branch}"),
                    commit,
                    current: false,
                    note: None,
                });
            }
        }
        Ok(out)
    }

    /// Every tag, by name.
    pub async fn tags(&self) -> Result<Vec<RefInfo>> {
        self.refs_of(RefKind::Tag).await
    }

    /// Creates a branch at `start` (default: HEAD); fails if it exists.
    pub async fn create_branch(&self, name: &str, start: Option<&str>) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.create_ref(RefKind::Branch, name, start).await?)
    }

    /// Deletes a branch (not the one checked out); returns the commit it named. Unless
    /// `force`, a branch whose commits are neither in HEAD's history nor in a remote-tracking
    /// branch's is refused: deleting it would leave them unreachable (as `git branch -d`).
    pub async fn delete_branch(&self, name: &str, force: bool) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        if !force {
            let tip = self
                .inner
                .list_refs(RefKind::Branch)
                .await?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c);
            if let Some(tip) = tip {
                if !self.is_kept_elsewhere(tip).await? {
                    return Err(Error::InvalidState {
                        message: format!(
                            "branch '{name}' is not merged: its commit {} is in neither HEAD's history nor a remote branch's, so deleting the branch would lose it",
                            tip.short()
                        ),
                        suggestion: Some(Suggestion::ForceDeleteBranch),
                    });
                }
            }
        }
        Ok(self.inner.delete_ref(RefKind::Branch, name).await?)
    }

    /// Renames a branch, with its upstream; HEAD follows it when it is checked out.
    pub async fn rename_branch(&self, from: &str, to: &str) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        let commit = self.inner.rename_branch(from, to).await?;
        strata_remote::config::rename_upstream(&self.inner, from, to).await?;
        Ok(commit)
    }

    /// Whether `commit` is reachable from HEAD or from a remote-tracking branch.
    async fn is_kept_elsewhere(&self, commit: ObjectId) -> Result<bool> {
        let mut tips: Vec<ObjectId> = self.inner.head_commit().await?.into_iter().collect();
        tips.extend(self.tracking_tips().await?);
        for tip in tips {
            if tip == commit || self.inner.merge_base(commit, tip).await? == Some(commit) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Creates a tag at `rev` (default: HEAD); fails if it exists.
    pub async fn create_tag(&self, name: &str, rev: Option<&str>) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.create_ref(RefKind::Tag, name, rev).await?)
    }

    /// Creates an annotated tag at `rev` (default: HEAD) with `message`, tagged by `tagger`
    /// (default: the commit author as [`Repository::commit`] finds it); fails if it exists.
    /// The note travels with the tag on push, fetch and clone.
    pub async fn create_annotated_tag(
        &self,
        name: &str,
        rev: Option<&str>,
        message: &str,
        tagger: Option<&Author>,
    ) -> Result<ObjectId> {
        if message.trim().is_empty() {
            return Err(strata_engine::Error::EmptyMessage.into());
        }
        let _lock = self.inner.lock_state().await?;
        let (tagger, _) = self.author(tagger).await?;
        let note = TagNote {
            tagger: tagger.to_string(),
            time: self.inner.now(),
            message: message.to_string(),
        };
        Ok(self
            .inner
            .create_ref_noted(RefKind::Tag, name, rev, Some(note))
            .await?)
    }

    /// The note of an annotated tag (`None`: a lightweight tag, or no such tag).
    pub async fn tag_note(&self, name: &str) -> Result<Option<TagNote>> {
        let Ok(tag) = RefName::tag(name) else {
            return Ok(None);
        };
        Ok(self
            .inner
            .refs()
            .read(&tag)
            .await?
            .record
            .and_then(|r| r.note))
    }

    /// Deletes a tag; returns the commit it named.
    pub async fn delete_tag(&self, name: &str) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.delete_ref(RefKind::Tag, name).await?)
    }
}
