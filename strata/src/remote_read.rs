//! Reading a repository on a remote in place: any branch, tag or commit of a folder, S3, GCS
//! or Azure remote, without cloning it first.
//!
//! Nothing is written to the remote, so read-only credentials are enough. Every call reads the
//! remote's refs afresh (docs/protocol.md, section 4): nothing about a ref is remembered between
//! calls, and a revision is resolved to its commit once per call, so one call reads one
//! consistent version even while others push.

use std::collections::BTreeMap;
use std::path::Path;

use strata_engine::repo::resolve_stored;
use strata_engine::store::RefKind;
use strata_engine::{Commit, ObjectId, Progress, TableObject};
use strata_remote::config::RemoteConfig;
use strata_remote::Remote;

use crate::data::{
    export_table, scan_table, summaries, table_info, ExportOptions, Scan, ScanOptions,
};
use crate::error::{Error, Result, Suggestion};
use crate::remotes::{check_options, RemoteRef};
use crate::{CommitInfo, Diff, DiffOptions, LogOptions, TableInfo, TableSummary};

/// A repository on a remote, read where it lies.
///
/// ```no_run
/// # async fn demo() -> strata::Result<()> {
/// use std::collections::BTreeMap;
/// use strata::{RemoteRepository, ScanOptions};
///
/// let remote = RemoteRepository::open("s3://team-data/sales", &BTreeMap::new()).await?;
/// let opts = ScanOptions { rev: Some("v1".into()), ..Default::default() };
/// let batches = remote.scan("orders", &opts).await?.collect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteRepository {
    remote: Remote,
}

impl RemoteRepository {
    /// Opens the repository at `url` (a folder, `file://`, `s3://bucket/prefix`, `gs://`,
    /// `az://`) for reading. `options` are the store's non-secret options (endpoint, region,
    /// ...); credentials come from the environment or an AWS profile, as for a remote.
    pub async fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let conf = RemoteConfig {
            url: url.to_string(),
            options: check_options(options)?,
            verified: false,
        };
        let cwd = std::env::current_dir().map_err(|e| {
            Error::from(strata_engine::Error::Io {
                path: ".".into(),
                source: e,
            })
        })?;
        let location = strata_remote::url::Location::parse(url, &cwd)?;
        crate::remotes::check_options_apply(&location, &conf.options)?;
        Self::open_in("remote", url, &conf, &cwd).await
    }

    /// Opens `url` (the remote `name`) with a remote's configuration, relative paths from
    /// `cwd`.
    pub(crate) async fn open_in(
        name: &str,
        url: &str,
        conf: &RemoteConfig,
        cwd: &Path,
    ) -> Result<Self> {
        let remote = Remote::open_url(name, url, conf, cwd, "reader", false)?;
        remote.check().await?;
        Ok(RemoteRepository { remote })
    }

    /// The remote's URL (a folder as a `file://` URL).
    pub fn url(&self) -> &str {
        &self.remote.url
    }

    /// The remote's branches, by name, as they are now.
    pub async fn branches(&self) -> Result<Vec<RemoteRef>> {
        self.refs(RefKind::Branch).await
    }

    /// The remote's tags, by name, as they are now.
    pub async fn tags(&self) -> Result<Vec<RemoteRef>> {
        self.refs(RefKind::Tag).await
    }

    async fn refs(&self, kind: RefKind) -> Result<Vec<RemoteRef>> {
        Ok(self
            .remote
            .refs
            .list(kind)
            .await
            .map_err(|e| self.remote_error(e))?
            .into_iter()
            .map(|(name, commit)| RemoteRef { name, commit })
            .collect())
    }

    /// The commit a revision names: a branch, a tag, a full or unique-prefix commit id, each
    /// optionally followed by `~N`, `^` or `^N`. `None`: the branch `main`, else the first
    /// branch by name (the branch a clone checks out).
    pub async fn resolve(&self, rev: Option<&str>) -> Result<ObjectId> {
        match rev {
            Some(rev) => resolve_stored(&self.remote.refs, &self.remote.objects, rev)
                .await
                .map_err(|e| match e {
                    strata_engine::Error::UnknownRevision { rev } => Error::NotOnRemote {
                        message: format!(
                            "unknown revision '{rev}' on the remote {}",
                            self.remote.url
                        ),
                        suggestion: Suggestion::RemoteRevisionSyntax {
                            url: self.remote.url.clone(),
                        },
                    },
                    other => self.remote_error(other),
                }),
            None => Ok(self.default_branch().await?.commit),
        }
    }

    /// The branch read when no revision is given: `main`, else the first branch by name (the
    /// branch a clone checks out), as it is now.
    pub async fn default_branch(&self) -> Result<RemoteRef> {
        let branches = self.branches().await?;
        let pick = match branches.iter().position(|b| b.name == "main") {
            Some(i) => Some(i),
            None if branches.is_empty() => None,
            None => Some(0),
        };
        pick.and_then(|i| branches.into_iter().nth(i))
            .ok_or_else(|| Error::InvalidState {
                message: format!(
                    "the remote {} has no branches yet: name a tag or a commit to read, or push a branch there first",
                    self.remote.url
                ),
                suggestion: None,
            })
    }

    async fn commit_tables(&self, rev: Option<&str>) -> Result<BTreeMap<String, ObjectId>> {
        let commit = self.resolve(rev).await?;
        Ok(Commit::read(&self.remote.objects, &commit)
            .await
            .map_err(|e| self.remote_error(e))?
            .tables)
    }

    async fn table_object(&self, name: &str, rev: Option<&str>) -> Result<(ObjectId, TableObject)> {
        let tables = self.commit_tables(rev).await?;
        let id = *tables.get(name).ok_or_else(|| Error::NotOnRemote {
            message: format!(
                "unknown table '{name}' at {} on the remote {}",
                rev.unwrap_or("the default branch"),
                self.remote.url
            ),
            suggestion: Suggestion::ListRemoteTables {
                url: self.remote.url.clone(),
            },
        })?;
        let t = TableObject::read(&self.remote.objects, &id)
            .await
            .map_err(|e| self.remote_error(e))?;
        Ok((id, t))
    }

    /// The tables at a revision (default: see [`RemoteRepository::resolve`]), by name.
    pub async fn tables(&self, rev: Option<&str>) -> Result<Vec<TableSummary>> {
        let tables = self.commit_tables(rev).await?;
        summaries(&self.remote.objects, tables).await
    }

    /// One table at a revision.
    pub async fn table(&self, name: &str, rev: Option<&str>) -> Result<TableInfo> {
        let (id, t) = self.table_object(name, rev).await?;
        table_info(&self.remote.objects, name, id, t).await
    }

    /// Reads a table at a revision as a stream of Arrow batches in key order, straight from
    /// the remote, as [`crate::Repository::scan`] reads a local one: only the columns asked
    /// for are decoded, only the chunks the key ranges reach are fetched, several at once.
    pub async fn scan(&self, table: &str, opts: &ScanOptions) -> Result<Scan> {
        let (_, t) = self.table_object(table, opts.rev.as_deref()).await?;
        scan_table(&self.remote.objects, table, &t, opts).await
    }

    /// Writes a table at a revision to a file, or to standard output (`None`), as
    /// [`crate::Repository::export`] does; returns the number of rows.
    pub async fn export(
        &self,
        table: &str,
        rev: Option<&str>,
        out: Option<&Path>,
        opts: impl Into<ExportOptions>,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let opts = opts.into();
        opts.check()?;
        let (_, t) = self.table_object(table, rev).await?;
        export_table(&self.remote.objects, &t, out, opts, progress).await
    }

    /// Compares two revisions, row by row and cell by cell, as [`crate::Repository::diff`]
    /// does: only the chunks that differ are fetched. `from` is required (a remote has no
    /// working tables); `to` defaults to `main`, else the first branch.
    pub async fn diff(&self, opts: &DiffOptions) -> Result<Diff> {
        let Some(from) = opts.from.as_deref() else {
            return Err(Error::invalid(
                "a remote read in place has no working tables: name the revisions to compare (FROM, and TO or the default branch)",
            ));
        };
        let old = self.commit_tables(Some(from)).await?;
        let new = self.commit_tables(opts.to.as_deref()).await?;
        crate::diff::diff_between(self.remote.objects.clone(), old, new, opts).await
    }

    /// The history, newest first, as [`crate::Repository::log_filtered`] lists it: from a
    /// revision (default: `main`, else the first branch) or, with `all`, from every branch
    /// and tag, selected by author, time and table. Ranges (`A..B`) need a clone.
    pub async fn log(&self, opts: &LogOptions) -> Result<Vec<CommitInfo>> {
        if let Some(rev) = opts.rev.as_deref().filter(|r| r.contains("..")) {
            return Err(Error::invalid(format!(
                "'{rev}': a remote read in place lists the history of one revision (or --all); clone it to list a range"
            )));
        }
        let mut starts = Vec::new();
        if opts.all {
            starts.extend(self.branches().await?.into_iter().map(|r| r.commit));
            starts.extend(self.tags().await?.into_iter().map(|r| r.commit));
        }
        if opts.rev.is_some() || !opts.all {
            starts.push(self.resolve(opts.rev.as_deref()).await?);
        }
        let all =
            strata_engine::repo::log_from(&self.remote.objects, &starts, &Default::default(), None)
                .await
                .map_err(|e| self.remote_error(e))?;
        crate::history::select_commits(&self.remote.objects, all, opts).await
    }

    /// The remote's branch and tag names at each commit, for a log's decorations.
    pub async fn ref_labels(&self) -> Result<BTreeMap<ObjectId, Vec<String>>> {
        let mut labels: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
        for r in self.branches().await? {
            labels.entry(r.commit).or_default().push(r.name);
        }
        for r in self.tags().await? {
            labels
                .entry(r.commit)
                .or_default()
                .push(format!("tag: {}", r.name));
        }
        Ok(labels)
    }

    /// A storage error of the remote, with the key given as a full URL.
    fn remote_error(&self, e: strata_engine::Error) -> Error {
        Error::from(self.remote.located(e))
    }
}

impl crate::Repository {
    /// The configured remote `name`, opened to be read in place (with its stored options).
    pub async fn read_remote(&self, name: &str) -> Result<RemoteRepository> {
        let conf = strata_remote::config::remote(&self.inner, name).await?;
        RemoteRepository::open_in(name, &conf.url, &conf, self.inner.root()).await
    }
}
