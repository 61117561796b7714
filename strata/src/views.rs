//! Other engines' way in: each branch and tag of a table as an Iceberg table (DuckDB, Spark,
//! Trino, Polars, pyiceberg), and the chunk files of a table at a revision.

use strata_engine::iceberg::{self, Location};
use strata_engine::repo::Head;
use strata_engine::store::{Objects, RefKind, RefLog, RefName, RefState};
use strata_engine::{Commit, TableObject};
use strata_remote::Remote;

use crate::error::{Error, Result};
use crate::repository::Repository;

pub use strata_engine::iceberg::DataFile;

/// Which table view to look up: a branch or tag (default: the current branch) of this
/// repository, or of a remote.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// A branch or tag name (Iceberg views exist for refs, not for any revision; tag a
    /// revision to get one).
    pub rev: Option<String>,
    /// Look on this remote rather than in the repository.
    pub remote: Option<String>,
}

/// A table's Iceberg view at a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IcebergView {
    pub table: String,
    /// `refs/heads/main`, `refs/tags/v1`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub commit: crate::ObjectId,
    /// The Iceberg table folder: engines that follow `metadata/version-hint.text` (DuckDB's
    /// `iceberg_scan`) take it; it always shows the ref's newest published version.
    pub location: String,
    /// The `metadata.json` of this version (for pyiceberg's `StaticTable.from_metadata`,
    /// Polars' `scan_iceberg`, Spark and Trino's `register_table`).
    pub metadata: String,
    /// The ref record the version describes.
    pub version: u64,
    /// Iceberg files written to publish it now (0 when it was published already).
    pub files_written: u64,
    pub bytes_written: u64,
}

/// Where views are read and written, and where their objects come from.
struct Place {
    at: Location,
    refs: RefLog,
    source: Objects,
}

impl Repository {
    async fn view_place(&self, remote: Option<&str>) -> Result<Place> {
        Ok(match remote {
            None => Place {
                at: self.inner.iceberg_location(),
                refs: self.inner.refs().clone(),
                source: self.inner.objects().clone(),
            },
            Some(name) => {
                let r = Remote::configured(&self.inner, name, false).await?;
                r.check().await?;
                Place {
                    at: Location::new(r.objects.clone(), &r.url),
                    refs: r.refs.clone(),
                    source: r.objects.clone(),
                }
            }
        })
    }

    /// The ref `rev` names at `place` (a branch first, then a tag; default: the current
    /// branch), with the commit it holds.
    async fn view_ref(&self, place: &Place, rev: Option<&str>) -> Result<RefState> {
        let name = match rev {
            Some(r) => r.to_string(),
            None => match self.inner.head().await? {
                Head::Branch(b) => b,
                Head::Detached(_) => {
                    return Err(Error::invalid(
                        "HEAD is detached: name a branch or tag with --rev",
                    ))
                }
            },
        };
        for kind in [RefKind::Branch, RefKind::Tag] {
            let Ok(ref_name) = RefName::new(kind, &name) else {
                continue;
            };
            let state = place.refs.read(&ref_name).await?;
            if state.commit().is_some() {
                return Ok(state);
            }
        }
        Err(Error::invalid(format!(
            "'{name}' is not a branch or tag{}: Iceberg views exist for branches and tags (to read another revision, tag it first)",
            if place.at.objects.location().is_empty() {
                String::new()
            } else {
                format!(" of {}", place.at.objects.location())
            }
        )))
    }

    /// The Iceberg view of `table` at a branch or tag, published first if it is missing
    /// (views are published at every ref move and push; this catches up one that was
    /// interrupted, or a remote pushed to before views existed).
    pub async fn iceberg(&self, table: &str, opts: &ViewOptions) -> Result<IcebergView> {
        let place = self.view_place(opts.remote.as_deref()).await?;
        let state = self.view_ref(&place, opts.rev.as_deref()).await?;
        let commit = state
            .commit()
            .ok_or_else(|| Error::invalid("the ref is deleted"))?;
        let c = Commit::read(&place.source, &commit).await?;
        if !c.tables.contains_key(table) {
            return Err(strata_engine::Error::UnknownTable {
                name: table.to_string(),
            }
            .into());
        }
        let views = iceberg::publish(
            &place.at,
            &place.source,
            &state.name,
            state.seq,
            None,
            Some(commit),
        )
        .await?;
        let v = views
            .into_iter()
            .find(|v| v.table == table)
            .ok_or_else(|| Error::invalid(format!("no view of table '{table}' was published")))?;
        Ok(IcebergView {
            table: v.table,
            ref_name: state.name.to_string(),
            commit,
            location: v.location,
            metadata: v.metadata,
            version: v.version,
            files_written: v.files_written,
            bytes_written: v.bytes_written,
        })
    }

    /// The chunk files of `table` at a revision (any revision locally; a branch or tag on a
    /// remote), with absolute URIs, row counts and key bounds, in key order: what
    /// `read_parquet([...])` takes, except a chunk with a delta (named in `delta`), whose rows
    /// are the chunk's with the delta's replacing those of the same key, less those whose keys
    /// the delta's footer lists as deleted (`strata.deletes`, docs/protocol.md, section 3).
    pub async fn ls_files(&self, table: &str, opts: &ViewOptions) -> Result<Vec<DataFile>> {
        let place = self.view_place(opts.remote.as_deref()).await?;
        let t = match &opts.remote {
            None => self.inner.table(table, opts.rev.as_deref()).await?.1,
            Some(_) => {
                let state = self.view_ref(&place, opts.rev.as_deref()).await?;
                let commit = state
                    .commit()
                    .ok_or_else(|| Error::invalid("the ref is deleted"))?;
                let c = Commit::read(&place.source, &commit).await?;
                let id = c.tables.get(table).ok_or_else(|| {
                    Error::from(strata_engine::Error::UnknownTable {
                        name: table.to_string(),
                    })
                })?;
                TableObject::read(&place.source, id).await?
            }
        };
        Ok(iceberg::data_files(&place.at, &place.source, &t).await?)
    }
}
