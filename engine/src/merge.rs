//! Three-way merge of tables, cell by cell. Only rows that changed on either side since the
//! merge base are read (both diffs skip shared chunks), so the cost follows the change.
//!
//! Rules, for a row (by primary key) changed on both sides:
//! 1. the same change on both sides (including both deleting it): merged;
//! 2. different cells changed: merged cell by cell; the same cell changed to the same value: merged;
//! 3. the same cell changed to different values: conflict;
//! 4. deleted on one side, changed on the other: conflict;
//! 5. inserted on both sides with different values: conflict.
//!
//! Schemas: equal schemas merge; a side that only added columns (the other keeping the base's
//! schema) merges, the other side's rows getting nulls in the new columns; anything else stops
//! the merge with a message. A conflicting row keeps our version in the result.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use crate::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::{diff_tables, key_json, value_json, RowChange};
use crate::error::{Error, Result};
use crate::key::{Keys, Rows};
use crate::schema::TableSchema;
use crate::store::Objects;
use crate::table::{apply_rows, ChangeOp, TableObject};
use crate::tree::encode_hex;

/// One conflicting cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellConflict {
    pub column: String,
    pub base: Value,
    pub ours: Value,
    pub theirs: Value,
}

/// One conflicting row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Key columns and values.
    pub key: serde_json::Map<String, Value>,
    /// The encoded key, as hex.
    pub key_hex: String,
    /// `modify/modify`, `delete/modify`, `modify/delete` or `add/add` (ours/theirs).
    pub kind: String,
    /// Conflicting cells (for `modify/modify`) or all cells that differ.
    pub cells: Vec<CellConflict>,
    /// Their version of the row, in the merged schema (`None`: they deleted it).
    pub theirs: Option<serde_json::Map<String, Value>>,
}

/// The result of merging one table.
pub struct TableMerge {
    pub table: TableObject,
    pub conflicts: Vec<Conflict>,
    /// Their versions of conflicting rows that exist on their side, for `resolve --theirs`.
    pub theirs_rows: Vec<Rows>,
}

type Row = RecordBatch; // one-row batch

#[derive(Default)]
struct Change {
    old: Option<Row>,
    new: Option<Row>,
}

async fn changes(
    objects: &Objects,
    base: Option<&TableObject>,
    side: &TableObject,
) -> Result<BTreeMap<Vec<u8>, Change>> {
    let mut out = BTreeMap::new();
    diff_tables(objects, base, Some(side), &mut |c| {
        match c {
            RowChange::Added { new, row } => {
                out.insert(
                    new.keys.get(row).to_vec(),
                    Change {
                        old: None,
                        new: Some(new.batch.slice(row, 1)),
                    },
                );
            }
            RowChange::Removed { old, row } => {
                out.insert(
                    old.keys.get(row).to_vec(),
                    Change {
                        old: Some(old.batch.slice(row, 1)),
                        new: None,
                    },
                );
            }
            RowChange::Modified {
                old,
                old_row,
                new,
                new_row,
            } => {
                out.insert(
                    new.keys.get(new_row).to_vec(),
                    Change {
                        old: Some(old.batch.slice(old_row, 1)),
                        new: Some(new.batch.slice(new_row, 1)),
                    },
                );
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The cell of `row` in column `name`, as a one-value array of type `like` (null if absent).
fn cell(row: &Row, name: &str, like: &crate::arrow::datatypes::DataType) -> ArrayRef {
    match row.schema().index_of(name) {
        Ok(i) if row.column(i).data_type() == like => row.column(i).clone(),
        _ => new_null_array(like, 1),
    }
}

fn cells_equal(a: &ArrayRef, b: &ArrayRef) -> bool {
    a.as_ref() == b.as_ref()
}

fn to_schema(row: &Row, schema: &SchemaRef) -> Result<Row> {
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| cell(row, f.name(), f.data_type()))
        .collect();
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| Error::arrow("converting a row to the merged schema", e))
}

/// Decides the merged schema, or explains why the schemas cannot merge.
fn merged_schema(
    table: &str,
    base: Option<&TableSchema>,
    ours: &TableSchema,
    theirs: &TableSchema,
) -> Result<TableSchema> {
    if ours == theirs {
        return Ok(ours.clone());
    }
    let only_adds = |from: &TableSchema, to: &TableSchema| {
        from.primary_key == to.primary_key
            && from.columns.iter().all(|c| to.columns.contains(c))
            && to.columns.len() > from.columns.len()
    };
    match base {
        Some(b) if b == ours && only_adds(b, theirs) => Ok(theirs.clone()),
        Some(b) if b == theirs && only_adds(b, ours) => Ok(ours.clone()),
        _ => {
            let diff = ours.differences(theirs);
            Err(Error::Invalid(format!(
                "cannot merge table '{table}': both sides changed its schema incompatibly ({}); \
                 make the schemas match on one side, commit, and merge again",
                if diff.is_empty() {
                    "the primary key differs".into()
                } else {
                    diff.join("; ")
                }
            )))
        }
    }
}

fn json_row(row: &Row) -> serde_json::Map<String, Value> {
    crate::diff::row_json(row, 0)
}

/// Merges `theirs` into `ours` against `base` (absent: the table was added on both sides).
pub async fn merge_tables(
    objects: &Objects,
    name: &str,
    base: Option<&TableObject>,
    ours: &TableObject,
    theirs: &TableObject,
) -> Result<TableMerge> {
    let schema = merged_schema(name, base.map(|b| &b.schema), &ours.schema, &theirs.schema)?;
    let arrow_schema = schema.arrow()?;
    let ours_is_target = schema == ours.schema;
    let (target, _other) = if ours_is_target {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    let ours_changes = changes(objects, base, ours).await?;
    let mut theirs_changes = changes(objects, base, theirs).await?;

    // What the result must hold for each key whose version differs from the target's.
    let mut upserts: BTreeMap<Vec<u8>, Row> = BTreeMap::new();
    let mut deletes: Vec<Vec<u8>> = Vec::new();
    let mut conflicts = Vec::new();
    let mut theirs_rows: Vec<(Vec<u8>, Row)> = Vec::new();
    let key_cols = schema.primary_key.clone();

    // Sets the result's row for `key` to `want` (None: absent), given what the target holds.
    let mut want = |key: &[u8], want: Option<&Row>, target_has: Option<&Row>| -> Result<()> {
        match (want, target_has) {
            (None, None) => {}
            (None, Some(_)) => deletes.push(key.to_vec()),
            (Some(w), t) => {
                let w = to_schema(w, &arrow_schema)?;
                let same = t
                    .map(|t| to_schema(t, &arrow_schema))
                    .transpose()?
                    .is_some_and(|t| t == w);
                if !same {
                    upserts.insert(key.to_vec(), w);
                }
            }
        }
        Ok(())
    };

    for (key, ours_c) in &ours_changes {
        let theirs_c = theirs_changes.remove(key);
        let Some(theirs_c) = theirs_c else {
            // Only we changed it: the result holds ours.
            let target_row = if ours_is_target {
                ours_c.new.as_ref()
            } else {
                ours_c.old.as_ref()
            };
            want(key, ours_c.new.as_ref(), target_row)?;
            continue;
        };
        let target_row = if ours_is_target {
            ours_c.new.as_ref()
        } else {
            theirs_c.new.as_ref()
        };
        let base_row = ours_c.old.as_ref();
        let kind = match (&ours_c.new, &theirs_c.new, base_row) {
            (None, None, _) => None,
            (None, Some(_), _) => Some("delete/modify"),
            (Some(_), None, _) => Some("modify/delete"),
            (Some(o), Some(t), None) => {
                if to_schema(o, &arrow_schema)? == to_schema(t, &arrow_schema)? {
                    None
                } else {
                    Some("add/add")
                }
            }
            (Some(_), Some(_), Some(_)) => None,
        };
        let mut conflict_cells = Vec::new();
        let mut merged: Option<Row> = None;
        match (kind, &ours_c.new, &theirs_c.new) {
            (None, None, None) => want(key, None, target_row)?,
            (None, Some(o), Some(t)) => {
                // Cell by cell against the base.
                let mut cols = Vec::with_capacity(arrow_schema.fields().len());
                for f in arrow_schema.fields() {
                    let (o_c, t_c) = (
                        cell(o, f.name(), f.data_type()),
                        cell(t, f.name(), f.data_type()),
                    );
                    let b_c = match base_row {
                        Some(b) => cell(b, f.name(), f.data_type()),
                        None => new_null_array(f.data_type(), 1),
                    };
                    let pick = if cells_equal(&o_c, &t_c) || cells_equal(&t_c, &b_c) {
                        o_c
                    } else if cells_equal(&o_c, &b_c) {
                        t_c
                    } else {
                        conflict_cells.push(CellConflict {
                            column: f.name().clone(),
                            base: value_json(b_c.as_ref(), 0),
                            ours: value_json(o_c.as_ref(), 0),
                            theirs: value_json(t_c.as_ref(), 0),
                        });
                        o_c
                    };
                    cols.push(pick);
                }
                if conflict_cells.is_empty() {
                    merged = Some(
                        RecordBatch::try_new(arrow_schema.clone(), cols)
                            .map_err(|e| Error::arrow("merging a row", e))?,
                    );
                }
            }
            _ => {}
        }
        let kind = match kind {
            None if !conflict_cells.is_empty() => Some("modify/modify"),
            k => k,
        };
        match kind {
            None => {
                if let Some(m) = merged {
                    want(key, Some(&m), target_row)?;
                }
            }
            Some(kind) => {
                // Conflict: the result keeps ours; theirs is recorded.
                want(key, ours_c.new.as_ref(), target_row)?;
                let shown = ours_c
                    .new
                    .as_ref()
                    .or(theirs_c.new.as_ref())
                    .or(base_row)
                    .expect("a changed row exists somewhere");
                if conflict_cells.is_empty() {
                    for f in arrow_schema.fields() {
                        let get = |r: Option<&Row>| {
                            r.map_or(Value::Null, |r| {
                                value_json(cell(r, f.name(), f.data_type()).as_ref(), 0)
                            })
                        };
                        let (b, o, t) = (
                            get(base_row),
                            get(ours_c.new.as_ref()),
                            get(theirs_c.new.as_ref()),
                        );
                        if o != t {
                            conflict_cells.push(CellConflict {
                                column: f.name().clone(),
                                base: b,
                                ours: o,
                                theirs: t,
                            });
                        }
                    }
                }
                let theirs_json = theirs_c
                    .new
                    .as_ref()
                    .map(|t| to_schema(t, &arrow_schema))
                    .transpose()?;
                if let Some(t) = &theirs_json {
                    theirs_rows.push((key.clone(), t.clone()));
                }
                conflicts.push(Conflict {
                    key: key_json(shown, &key_cols, 0),
                    key_hex: encode_hex(key),
                    kind: kind.into(),
                    cells: conflict_cells,
                    theirs: theirs_json.as_ref().map(json_row),
                });
            }
        }
    }
    // Keys only they changed: the result holds theirs.
    for (key, theirs_c) in &theirs_changes {
        let target_row = if ours_is_target {
            theirs_c.old.as_ref()
        } else {
            theirs_c.new.as_ref()
        };
        want(key, theirs_c.new.as_ref(), target_row)?;
    }

    let mut table = target.clone();
    if !upserts.is_empty() {
        let rows = rows_of(&arrow_schema, upserts.into_iter().collect())?;
        table = apply_rows(
            objects,
            name,
            &table,
            ChangeOp::Upsert,
            VecDeque::from([rows]),
        )
        .await?;
    }
    if !deletes.is_empty() {
        deletes.sort();
        let rows = key_rows(&schema, &arrow_schema, &deletes)?;
        table = apply_rows(
            objects,
            name,
            &table,
            ChangeOp::Delete,
            VecDeque::from([rows]),
        )
        .await?;
    }
    let theirs_rows = if theirs_rows.is_empty() {
        Vec::new()
    } else {
        vec![rows_of(&arrow_schema, theirs_rows)?]
    };
    Ok(TableMerge {
        table,
        conflicts,
        theirs_rows,
    })
}

/// Builds sorted rows from (encoded key, one-row batch) pairs already in key order.
pub fn rows_of(schema: &SchemaRef, rows: Vec<(Vec<u8>, Row)>) -> Result<Rows> {
    let mut keys = Keys::default();
    let mut batches = Vec::with_capacity(rows.len());
    for (k, r) in rows {
        keys.push(&k);
        batches.push(r);
    }
    let batch = crate::arrow::compute::concat_batches(schema, &batches)
        .map_err(|e| Error::arrow("collecting rows", e))?;
    Ok(Rows { batch, keys })
}

/// Rows that carry only encoded keys (for deletes, which never read the values).
pub fn key_rows(schema: &TableSchema, arrow_schema: &SchemaRef, keys: &[Vec<u8>]) -> Result<Rows> {
    let fields: Vec<crate::arrow::datatypes::Field> = schema
        .key_indices()
        .iter()
        .map(|&i| arrow_schema.field(i).clone().with_nullable(true))
        .collect();
    let columns = fields
        .iter()
        .map(|f| new_null_array(f.data_type(), keys.len()))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(crate::arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .map_err(|e| Error::arrow("collecting deleted keys", e))?;
    let mut encoded = Keys::default();
    for k in keys {
        encoded.push(k);
    }
    Ok(Rows {
        batch,
        keys: encoded,
    })
}
