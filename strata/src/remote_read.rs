//! Reading a repository on a remote in place: any branch, tag or commit of a folder, S3, GCS
//! or Azure remote, without cloning it first.
//!
//! Nothing is written to the remote, so read-only credentials are enough. Every call reads the
//! remote's refs afresh (docs/protocol.md, section 4): nothing about a ref is remembered between
//! calls, and a revision is resolved to its commit once per call, so one call reads one
//! consistent version even while others push.

use std::collections::BTreeMap;
use std::path::Path;

use strata_engine::export::Destination;
use strata_engine::repo::resolve_stored;
use strata_engine::store::RefKind;
use strata_engine::{Commit, ObjectId, Progress, TableObject};
use strata_remote::config::RemoteConfig;
use strata_remote::Remote;

use crate::data::{scan_table, summaries, table_info, ExportFormat, Scan, ScanOptions};
use crate::error::{Error, Result};
use crate::remotes::{check_options, RemoteRef};
use crate::{TableInfo, TableSummary};

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
        Self::open_in(url, &conf, &cwd).await
    }

    /// Opens `url` with a remote's configuration, relative paths from `cwd`.
    pub(crate) async fn open_in(url: &str, conf: &RemoteConfig, cwd: &Path) -> Result<Self> {
        let remote = Remote::open_url("remote", url, conf, cwd, "reader", false)?;
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
                .map_err(|e| self.remote_error(e)),
            None => {
                let branches = self.branches().await?;
                branches
                    .iter()
                    .find(|b| b.name == "main")
                    .or(branches.first())
                    .map(|b| b.commit)
                    .ok_or_else(|| Error::InvalidState {
                        message: format!("the remote {} has no branches yet", self.remote.url),
                        suggestion: None,
                    })
            }
        }
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
        let id = *tables
            .get(name)
            .ok_or_else(|| Error::from(strata_engine::Error::UnknownTable { name: name.into() }))?;
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
        format: ExportFormat,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let (_, t) = self.table_object(table, rev).await?;
        let dest = match out {
            Some(p) => Destination::File(p.to_path_buf()),
            None => Destination::Stdout,
        };
        Ok(
            strata_engine::export::export(&self.remote.objects, &t, &dest, format, progress)
                .await?,
        )
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
        RemoteRepository::open_in(&conf.url, &conf, self.inner.root()).await
    }
}
