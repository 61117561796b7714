//! Branches and tags.

use serde::Serialize;
use strata_engine::repo::Head;
use strata_engine::store::RefKind;
use strata_engine::ObjectId;

use crate::error::Result;
use crate::repository::Repository;

/// A branch or tag and the commit it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefInfo {
    pub name: String,
    pub commit: ObjectId,
    /// The branch checked out (always false for tags).
    pub current: bool,
}

impl Repository {
    async fn refs_of(&self, kind: RefKind) -> Result<Vec<RefInfo>> {
        let current = match self.inner.head().await? {
            Head::Branch(b) if kind == RefKind::Branch => Some(b),
            _ => None,
        };
        Ok(self
            .inner
            .list_refs(kind)
            .await?
            .into_iter()
            .map(|(name, commit)| RefInfo {
                current: current.as_deref() == Some(name.as_str()),
                name,
                commit,
            })
            .collect())
    }

    /// Every branch, by name.
    pub async fn branches(&self) -> Result<Vec<RefInfo>> {
        self.refs_of(RefKind::Branch).await
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

    /// Deletes a branch (not the one checked out); returns the commit it named.
    pub async fn delete_branch(&self, name: &str) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.delete_ref(RefKind::Branch, name).await?)
    }

    /// Creates a tag at `rev` (default: HEAD); fails if it exists.
    pub async fn create_tag(&self, name: &str, rev: Option<&str>) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.create_ref(RefKind::Tag, name, rev).await?)
    }

    /// Deletes a tag; returns the commit it named.
    pub async fn delete_tag(&self, name: &str) -> Result<ObjectId> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.delete_ref(RefKind::Tag, name).await?)
    }
}
