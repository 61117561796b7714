//! Row- and cell-level differences between two versions of the tables, as a stream of
//! changes. Serialized, each change is one line of the documented `diff --json` format.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde::Serialize;
use serde_json::{Map, Value};
use strata_engine::diff::{changed_columns, key_json, row_json, RowChange, TableDiff};
use strata_engine::{ObjectId, TableObject};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::filter::{BoundFilter, RowFilter, RowRef};
use crate::repository::Repository;

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// The old side (default: HEAD).
    pub from: Option<String>,
    /// The new side (default: the working tables).
    pub to: Option<String>,
    /// Only this table.
    pub table: Option<String>,
    /// Counts per table ([`Change::Stat`]) instead of rows.
    pub stat: bool,
    /// Only the changed rows for which this holds ([`RowFilter::parse`]). A table none of
    /// whose rows pass gives no change at all (no [`TableEvent`] or [`SchemaEvent`] either),
    /// and [`Change::Stat`] counts only the rows that pass. The filter is checked against
    /// each table the diff compares before any change is produced: a column a table lacks, or
    /// a value its column's type cannot hold, fails [`Repository::diff`].
    pub filter: Option<RowFilter>,
}

/// A table that exists on one side only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableEvent {
    pub table: String,
    /// `table_added` or `table_removed`.
    pub kind: &'static str,
}

/// How a table's schema changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaEvent {
    pub table: String,
    /// Always `schema`.
    pub kind: &'static str,
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// `column: old type -> new type`.
    pub retyped: Vec<String>,
    pub key_changed: bool,
}

/// One row that differs, by primary key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowDiff {
    pub table: String,
    /// `added`, `removed` or `modified`.
    pub kind: &'static str,
    /// The key columns.
    pub key: Map<String, Value>,
    /// The whole row before (none when added).
    pub old: Option<Map<String, Value>>,
    /// The whole row after (none when removed).
    pub new: Option<Map<String, Value>>,
    /// For `modified`: the names of the changed columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
}

/// Counts of one table's changed rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStat {
    pub table: String,
    /// Always `stat`.
    pub kind: &'static str,
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub schema_changed: bool,
}

/// One item of a diff. For each table that differs, in name order: a [`TableEvent`] if it
/// exists on one side only, a [`SchemaEvent`] if its schema changed, then its rows in key
/// order (or, with [`DiffOptions::stat`], one [`TableStat`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Change {
    Table(TableEvent),
    Schema(SchemaEvent),
    Row(RowDiff),
    Stat(TableStat),
}

/// The changes of a diff, produced as they are read.
pub struct Diff {
    rx: mpsc::Receiver<Result<Change>>,
}

impl Stream for Diff {
    type Item = Result<Change>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The two versions of a changed row (absent where the row does not exist).
fn versions<'a>(change: &RowChange<'a>) -> (RowRef<'a>, RowRef<'a>) {
    match change {
        RowChange::Added { new, row } => (None, Some((&new.batch, *row))),
        RowChange::Removed { old, row } => (Some((&old.batch, *row)), None),
        RowChange::Modified {
            old,
            old_row,
            new,
            new_row,
        } => (Some((&old.batch, *old_row)), Some((&new.batch, *new_row))),
    }
}

fn row_diff(table: &str, key: &[String], change: RowChange<'_>) -> Result<RowDiff> {
    Ok(match change {
        RowChange::Added { new, row } => RowDiff {
            table: table.to_string(),
            kind: "added",
            key: key_json(&new.batch, key, row),
            old: None,
            new: Some(row_json(&new.batch, row)),
            changed: None,
        },
        RowChange::Removed { old, row } => RowDiff {
            table: table.to_string(),
            kind: "removed",
            key: key_json(&old.batch, key, row),
            old: Some(row_json(&old.batch, row)),
            new: None,
            changed: None,
        },
        RowChange::Modified {
            old,
            old_row,
            new,
            new_row,
        } => RowDiff {
            table: table.to_string(),
            kind: "modified",
            key: key_json(&new.batch, key, new_row),
            old: Some(row_json(&old.batch, old_row)),
            new: Some(row_json(&new.batch, new_row)),
            changed: Some(changed_columns(&old.batch, old_row, &new.batch, new_row)?),
        },
    })
}

/// Sends the changes of one table (with a filter, only the rows that pass, and the table's
/// events only before the first of them); false when the receiver went away.
async fn diff_table(
    objects: &strata_engine::store::Objects,
    name: &str,
    old: Option<TableObject>,
    new: Option<TableObject>,
    stat: bool,
    filter: Option<BoundFilter>,
    tx: &mpsc::Sender<Result<Change>>,
) -> Result<bool> {
    let key: Vec<String> = new
        .as_ref()
        .or(old.as_ref())
        .map(|t| t.schema.primary_key.clone())
        .unwrap_or_default();
    let schema = match (&old, &new) {
        (Some(x), Some(y)) => Some(strata_engine::diff::SchemaChange::between(
            &x.schema, &y.schema,
        )),
        _ => None,
    };
    let schema_changed = schema.as_ref().is_some_and(|s| !s.is_empty());
    let mut head = Vec::new();
    match (&old, &new) {
        (None, Some(_)) => head.push(Change::Table(TableEvent {
            table: name.into(),
            kind: "table_added",
        })),
        (Some(_), None) => head.push(Change::Table(TableEvent {
            table: name.into(),
            kind: "table_removed",
        })),
        _ => {}
    }
    if let Some(sc) = schema.filter(|s| !s.is_empty()) {
        head.push(Change::Schema(SchemaEvent {
            table: name.into(),
            kind: "schema",
            added: sc.added,
            dropped: sc.dropped,
            retyped: sc.retyped,
            key_changed: sc.key_changed,
        }));
    }
    // Without a filter the table's events come first; with one, before its first row that
    // passes, if any does.
    let mut head = if stat { Vec::new() } else { head };
    if filter.is_none() {
        for h in head.drain(..) {
            if tx.send(Ok(h)).await.is_err() {
                return Ok(false);
            }
        }
    }
    let mut passed = strata_engine::diff::DiffCounts::default();
    let mut diff = TableDiff::new(objects, old.as_ref(), new.as_ref()).await?;
    while let Some(change) = diff.next().await? {
        if let Some(f) = &filter {
            let (o, n) = versions(&change);
            if !f.matches(o, n) {
                continue;
            }
            match (o.is_some(), n.is_some()) {
                (false, _) => passed.added += 1,
                (_, false) => passed.removed += 1,
                _ => passed.modified += 1,
            }
        }
        if stat {
            continue;
        }
        for h in head.drain(..) {
            if tx.send(Ok(h)).await.is_err() {
                return Ok(false);
            }
        }
        let row = row_diff(name, &key, change)?;
        if tx.send(Ok(Change::Row(row))).await.is_err() {
            return Ok(false);
        }
    }
    if stat {
        let c = if filter.is_some() {
            if passed.is_empty() {
                return Ok(true);
            }
            passed
        } else {
            diff.counts()
        };
        let s = Change::Stat(TableStat {
            table: name.into(),
            kind: "stat",
            added: c.added,
            removed: c.removed,
            modified: c.modified,
            schema_changed,
        });
        if tx.send(Ok(s)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A table's version, if there is one.
async fn read_table(
    objects: &strata_engine::store::Objects,
    id: Option<ObjectId>,
) -> Result<Option<TableObject>> {
    Ok(match id {
        Some(id) => Some(TableObject::read(objects, &id).await?),
        None => None,
    })
}

impl Repository {
    /// Compares two versions of the tables, row by row and cell by cell: HEAD with the
    /// working tables (no revision), `from` with the working tables, or `from` with `to`.
    /// Only chunks that differ are read, so the cost follows the size of the change. Bad
    /// revisions and tables are reported here; the changes follow on the stream.
    pub async fn diff(&self, opts: &DiffOptions) -> Result<Diff> {
        let repo = &self.inner;
        let from = opts.from.as_deref().unwrap_or("HEAD");
        let old: BTreeMap<String, ObjectId> =
            if from == "HEAD" && repo.head_commit().await?.is_none() {
                BTreeMap::new()
            } else {
                repo.tables_at(Some(from)).await?
            };
        let new = repo.tables_at(opts.to.as_deref()).await?;
        diff_between(repo.objects().clone(), old, new, opts).await
    }
}

/// The changes from the tables `old` to the tables `new` (both read from `objects`), as
/// [`Repository::diff`] gives them.
pub(crate) async fn diff_between(
    objects: strata_engine::store::Objects,
    old: BTreeMap<String, ObjectId>,
    new: BTreeMap<String, ObjectId>,
    opts: &DiffOptions,
) -> Result<Diff> {
    if let Some(t) = &opts.table {
        if !old.contains_key(t) && !new.contains_key(t) {
            return Err(strata_engine::Error::UnknownTable { name: t.clone() }.into());
        }
    }
    let names: BTreeSet<String> = old.keys().chain(new.keys()).cloned().collect();
    let mut pairs = Vec::new();
    for name in names {
        if opts.table.as_ref().is_some_and(|t| *t != name) {
            continue;
        }
        let (a, b) = (old.get(&name).copied(), new.get(&name).copied());
        if a != b {
            pairs.push((name, a, b));
        }
    }
    // With a filter, every table is read first to check the filter against its columns,
    // so that a filter that does not fit fails here, before any change is produced.
    let mut tables = Vec::with_capacity(pairs.len());
    for (name, a, b) in pairs {
        let Some(f) = &opts.filter else {
            tables.push((name, a, b, None));
            continue;
        };
        let (ta, tb) = (
            read_table(&objects, a).await?,
            read_table(&objects, b).await?,
        );
        let schema = |t: &Option<TableObject>| t.as_ref().map(|t| t.schema.arrow());
        let (sa, sb) = (schema(&ta).transpose()?, schema(&tb).transpose()?);
        let bound = f.bind(&name, sa.as_deref(), sb.as_deref())?;
        tables.push((name, a, b, Some((ta, tb, bound))));
    }
    let stat = opts.stat;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        for (name, a, b, read) in tables {
            let result = async {
                let (ta, tb, filter) = match read {
                    Some((ta, tb, bound)) => (ta, tb, Some(bound)),
                    None => (
                        read_table(&objects, a).await?,
                        read_table(&objects, b).await?,
                        None,
                    ),
                };
                diff_table(&objects, &name, ta, tb, stat, filter, &tx).await
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Ok(Diff { rx })
}
