//! Commits: a snapshot of every table, its parents, author, time and message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::objects::check_format;
use crate::store::Objects;

/// Commit format understood by this build.
pub const COMMIT_FORMAT: u32 = 1;

/// A commit as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub format: u32,
    pub kind: String,
    pub parents: Vec<ObjectId>,
    /// Table name to table object id.
    pub tables: BTreeMap<String, ObjectId>,
    pub author: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub message: String,
}

impl Commit {
    pub fn new(
        parents: Vec<ObjectId>,
        tables: BTreeMap<String, ObjectId>,
        author: String,
        time: i64,
        message: String,
    ) -> Self {
        Commit {
            format: COMMIT_FORMAT,
            kind: "commit".into(),
            parents,
            tables,
            author,
            time,
            message,
        }
    }

    pub async fn read(objects: &Objects, id: &ObjectId) -> Result<Self> {
        let c: Commit = objects.get_json(id).await?;
        check_format(&format!("commit {id}"), c.format, COMMIT_FORMAT)?;
        if c.kind != "commit" {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: format!("expected a commit, found a {}", c.kind),
            });
        }
        Ok(c)
    }

    /// The first line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}
