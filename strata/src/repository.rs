//! The repository handle: open, create, and the settings every command shares (who commits,
//! and when).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_engine::clock::FixedClock;

use crate::error::{Error, Result};

/// Name of the folder that holds a repository's data.
pub use strata_engine::repo::DOT_DIR;

/// A Strata repository on the local disk: the one entry point to everything Strata does.
///
/// Every method reads the repository and its remotes afresh: nothing mutable is cached, so a
/// handle kept open for a long time still sees every change made by other processes.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) inner: strata_engine::Repository,
    author: Option<Author>,
}

/// Who made a commit: `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author(String);

impl Author {
    /// Checks that `text` is of the form `Name <email>`.
    pub fn parse(text: &str) -> Result<Self> {
        let well_formed = text.split_once(" <").is_some_and(|(name, rest)| {
            !name.trim().is_empty() && rest.ends_with('>') && rest.len() > 1
        });
        if !well_formed || text.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "author '{}' is not of the form \"Name <email>\"",
                text.escape_default()
            )));
        }
        Ok(Author(text.to_string()))
    }

    /// The author `STRATA_AUTHOR` names, if set.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var("STRATA_AUTHOR") {
            Ok(a) => Self::parse(&a).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A stand-in when no identity is set: the login name (`$USER <$USER@localhost>`).
    pub fn guessed() -> Result<Self> {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.trim().is_empty() && !u.contains(['<', '>']))
            .unwrap_or_else(|| "strata".into());
        Self::parse(&format!("{user} <{user}@localhost>"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Author {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads `STRATA_COMMIT_TIME` (seconds since the epoch), which fixes commit times so that
/// commits can be reproduced.
fn commit_time_from_env() -> Result<Option<i64>> {
    match std::env::var("STRATA_COMMIT_TIME") {
        Ok(t) => t.trim().parse().map(Some).map_err(|_| {
            Error::invalid(format!(
                "STRATA_COMMIT_TIME='{t}' is not a number of seconds"
            ))
        }),
        Err(_) => Ok(None),
    }
}

impl Repository {
    pub(crate) fn from_engine(inner: strata_engine::Repository) -> Result<Self> {
        let inner = match commit_time_from_env()? {
            Some(secs) => inner.with_clock(Arc::new(FixedClock(secs))),
            None => inner,
        };
        Ok(Repository {
            inner,
            author: None,
        })
    }

    /// Creates an empty repository in `dir` (made if missing; its data goes in
    /// `dir/.strata`). The first branch is `main`.
    pub async fn init(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_engine(strata_engine::Repository::init(dir.as_ref()).await?)
    }

    /// Opens the repository that contains `path` (searching parent folders, as git does).
    /// `STRATA_COMMIT_TIME`, when set, fixes the time of every commit made through it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_engine(strata_engine::Repository::open(path.as_ref()).await?)
    }

    /// Commits made through this handle carry `author` unless a commit names its own.
    pub fn with_author(mut self, author: Author) -> Self {
        self.author = Some(author);
        self
    }

    /// Commits made through this handle carry this time (seconds since the Unix epoch).
    pub fn with_commit_time(mut self, secs: i64) -> Self {
        self.inner = self.inner.with_clock(Arc::new(FixedClock(secs)));
        self
    }

    /// The folder that contains `.strata`.
    pub fn root(&self) -> &Path {
        self.inner.root()
    }

    /// The folder holding the repository's data (`ROOT/.strata`).
    pub fn data_dir(&self) -> PathBuf {
        self.inner.root().join(DOT_DIR)
    }

    /// The author of a commit, and whether it was guessed: the one given, else this
    /// handle's, else `STRATA_AUTHOR`, else the configured identity (see
    /// [`crate::config`]), else [`Author::guessed`].
    pub(crate) async fn author(&self, given: Option<&Author>) -> Result<(Author, bool)> {
        if let Some(a) = given.or(self.author.as_ref()) {
            return Ok((a.clone(), false));
        }
        if let Some(a) = Author::from_env()? {
            return Ok((a, false));
        }
        if let Some(a) = self.configured_author().await? {
            return Ok((a, false));
        }
        Ok((Author::guessed()?, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_must_name_a_person_and_an_address() {
        assert!(Author::parse("Ann <ann@example.com>").is_ok());
        for bad in ["Ann", "<ann@example.com>", "Ann <", "Ann <>", "Ann\n <a@b>"] {
            assert!(Author::parse(bad).is_err(), "{bad:?}");
        }
    }
}
