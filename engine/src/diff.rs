//! Row-level comparison of two versions of a table. Chunks with the same id hold the same
//! rows, so only chunks that differ are read: the cost follows the size of the change.

use crate::arrow::array::{make_comparator, Array, RecordBatch};
use crate::arrow::compute::SortOptions;
use crate::arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::key::Rows;
use crate::store::Objects;
use crate::table::{read_chunk, TableObject};
use crate::tree::Entry;

/// One changed row, by primary key.
pub enum RowChange<'a> {
    Added {
        new: &'a Rows,
        row: usize,
    },
    Removed {
        old: &'a Rows,
        row: usize,
    },
    Modified {
        old: &'a Rows,
        old_row: usize,
        new: &'a Rows,
        new_row: usize,
    },
}

/// Counts of changed rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiffCounts {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
}

impl DiffCounts {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0 && self.modified == 0
    }
}

struct Side<'a> {
    objects: &'a Objects,
    entries: std::vec::IntoIter<Entry>,
    schema: SchemaRef,
    key_idx: Vec<usize>,
    rows: Option<Rows>,
    pos: usize,
    /// Counts the chunks read: tells when `rows` changed.
    generation: u64,
}

impl<'a> Side<'a> {
    fn new(objects: &'a Objects, table: Option<&TableObject>, entries: Vec<Entry>) -> Result<Self> {
        let (schema, key_idx) = match table {
            Some(t) => (t.schema.arrow()?, t.schema.key_indices()),
            None => (
                std::sync::Arc::new(crate::arrow::datatypes::Schema::empty()),
                Vec::new(),
            ),
        };
        Ok(Side {
            objects,
            entries: entries.into_iter(),
            schema,
            key_idx,
            rows: None,
            pos: 0,
            generation: 0,
        })
    }

    /// Makes sure a current row exists; false at the end.
    async fn ready(&mut self) -> Result<bool> {
        loop {
            if let Some(r) = &self.rows {
                if self.pos < r.len() {
                    return Ok(true);
                }
            }
            match self.entries.next() {
                Some(e) => {
                    self.rows =
                        Some(read_chunk(self.objects, &e, &self.schema, &self.key_idx).await?);
                    self.pos = 0;
                    self.generation += 1;
                }
                None => return Ok(false),
            }
        }
    }

    fn key(&self) -> &[u8] {
        self.rows.as_ref().expect("ready").keys.get(self.pos)
    }
}

/// [`rows_equal`] for many rows of one pair of batches: the column comparators are made once
/// per pair, not once per row.
struct RowEq {
    /// The generations of the two sides' batches it was made for.
    made_for: (u64, u64),
    /// For each column of `a`: `b`'s column of that name and a comparator of the two, or
    /// `None` when `b` lacks it or holds another type (such rows always differ).
    columns: Vec<Option<ColumnEq>>,
    /// `b` has a column `a` lacks: rows always differ.
    extra: bool,
}

struct ColumnEq {
    a: crate::arrow::array::ArrayRef,
    b: crate::arrow::array::ArrayRef,
    cmp: crate::arrow::array::DynComparator,
}

impl RowEq {
    fn new(a: &RecordBatch, b: &RecordBatch, made_for: (u64, u64)) -> Result<Self> {
        let (sa, sb) = (a.schema(), b.schema());
        let mut columns = Vec::with_capacity(sa.fields().len());
        for (ai, f) in sa.fields().iter().enumerate() {
            let column = match sb.index_of(f.name()) {
                Ok(bi) if a.column(ai).data_type() == b.column(bi).data_type() => {
                    let (ca, cb) = (a.column(ai).clone(), b.column(bi).clone());
                    let cmp = make_comparator(ca.as_ref(), cb.as_ref(), SortOptions::default())
                        .map_err(|e| Error::arrow("comparing rows", e))?;
                    Some(ColumnEq { a: ca, b: cb, cmp })
                }
                _ => None,
            };
            columns.push(column);
        }
        let extra = sb.fields().iter().any(|f| sa.index_of(f.name()).is_err());
        Ok(RowEq {
            made_for,
            columns,
            extra,
        })
    }

    /// The same answer as [`rows_equal`] for these batches.
    fn equal(&self, i: usize, j: usize) -> bool {
        !self.extra
            && self.columns.iter().all(|c| match c {
                None => false,
                Some(c) => match (c.a.is_null(i), c.b.is_null(j)) {
                    (true, true) => true,
                    (false, false) => (c.cmp)(i, j).is_eq(),
                    _ => false,
                },
            })
    }
}

/// Whether row `i` of `a` and row `j` of `b` hold the same values, column by column (by
/// name); rows of tables with different columns always differ.
pub fn rows_equal(a: &RecordBatch, i: usize, b: &RecordBatch, j: usize) -> Result<bool> {
    Ok(changed_columns(a, i, b, j)?.is_empty())
}

/// The names of the columns whose values differ between row `i` of `a` and row `j` of `b`.
/// Columns present on one side only count as changed.
pub fn changed_columns(
    a: &RecordBatch,
    i: usize,
    b: &RecordBatch,
    j: usize,
) -> Result<Vec<String>> {
    let sa = a.schema();
    let sb = b.schema();
    let mut out = Vec::new();
    for (ai, f) in sa.fields().iter().enumerate() {
        let Ok(bi) = sb.index_of(f.name()) else {
            out.push(f.name().clone());
            continue;
        };
        let (ca, cb) = (a.column(ai), b.column(bi));
        let same = match (ca.is_null(i), cb.is_null(j)) {
            (true, true) => true,
            (false, false) if ca.data_type() == cb.data_type() => {
                let cmp = make_comparator(ca.as_ref(), cb.as_ref(), SortOptions::default())
                    .map_err(|e| Error::arrow("comparing rows", e))?;
                cmp(i, j).is_eq()
            }
            _ => false,
        };
        if !same {
            out.push(f.name().clone());
        }
    }
    for f in sb.fields() {
        if sa.index_of(f.name()).is_err() {
            out.push(f.name().clone());
        }
    }
    Ok(out)
}

/// The changed rows between two versions of a table (either may be absent), one at a time, in
/// key order. Only chunks that differ are read.
pub struct TableDiff<'a> {
    a: Side<'a>,
    b: Side<'a>,
    same_key: bool,
    /// Rows of each side that the change returned last consumed (moved past on the next call).
    consumed: (bool, bool),
    counts: DiffCounts,
    /// Compares rows of the current pair of chunks.
    eq: Option<RowEq>,
}

impl<'a> TableDiff<'a> {
    pub async fn new(
        objects: &'a Objects,
        old: Option<&TableObject>,
        new: Option<&TableObject>,
    ) -> Result<TableDiff<'a>> {
        let same_key = match (old, new) {
            (Some(a), Some(b)) => a.schema.primary_key == b.schema.primary_key,
            _ => true,
        };
        // Under the same key only the chunks one side lacks are read, found through the
        // index nodes that differ; otherwise rows cannot be matched and every chunk is read.
        let (old_only, new_only) = match (old, new) {
            (Some(a), Some(b)) if same_key => {
                let d = crate::tree::diff(objects, &a.index, objects, &b.index).await?;
                (d.old_only, d.new_only)
            }
            _ => (
                match old {
                    Some(t) => t.chunks(objects).await?,
                    None => Vec::new(),
                },
                match new {
                    Some(t) => t.chunks(objects).await?,
                    None => Vec::new(),
                },
            ),
        };
        Ok(TableDiff {
            a: Side::new(objects, old, old_only)?,
            b: Side::new(objects, new, new_only)?,
            same_key,
            consumed: (false, false),
            counts: DiffCounts::default(),
            eq: None,
        })
    }

    /// Counts of the changes returned so far.
    pub fn counts(&self) -> DiffCounts {
        self.counts
    }

    /// The next changed row, or `None` when there are no more.
    pub async fn next(&mut self) -> Result<Option<RowChange<'_>>> {
        let (ca, cb) = std::mem::take(&mut self.consumed);
        if ca {
            self.a.pos += 1;
        }
        if cb {
            self.b.pos += 1;
        }
        let order = loop {
            let ra = self.a.ready().await?;
            let rb = self.b.ready().await?;
            let order = match (ra, rb) {
                (false, false) => return Ok(None),
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (true, true) if self.same_key => self.a.key().cmp(self.b.key()),
                // Different keys: rows cannot be matched; report all as removed then added.
                (true, true) => std::cmp::Ordering::Less,
            };
            if order.is_eq() {
                let (ar, br) = (
                    self.a.rows.as_ref().expect("ready"),
                    self.b.rows.as_ref().expect("ready"),
                );
                let gens = (self.a.generation, self.b.generation);
                if self.eq.as_ref().map(|e| e.made_for) != Some(gens) {
                    self.eq = Some(RowEq::new(&ar.batch, &br.batch, gens)?);
                }
                let eq = self.eq.as_ref().expect("made just now");
                if eq.equal(self.a.pos, self.b.pos) {
                    self.a.pos += 1;
                    self.b.pos += 1;
                    continue;
                }
            }
            break order;
        };
        Ok(Some(match order {
            std::cmp::Ordering::Less => {
                self.counts.removed += 1;
                self.consumed = (true, false);
                RowChange::Removed {
                    old: self.a.rows.as_ref().expect("ready"),
                    row: self.a.pos,
                }
            }
            std::cmp::Ordering::Greater => {
                self.counts.added += 1;
                self.consumed = (false, true);
                RowChange::Added {
                    new: self.b.rows.as_ref().expect("ready"),
                    row: self.b.pos,
                }
            }
            std::cmp::Ordering::Equal => {
                self.counts.modified += 1;
                self.consumed = (true, true);
                RowChange::Modified {
                    old: self.a.rows.as_ref().expect("ready"),
                    old_row: self.a.pos,
                    new: self.b.rows.as_ref().expect("ready"),
                    new_row: self.b.pos,
                }
            }
        }))
    }
}

/// Compares two versions of a table (either may be absent) and calls `visit` for every
/// changed row, in key order.
pub async fn diff_tables(
    objects: &Objects,
    old: Option<&TableObject>,
    new: Option<&TableObject>,
    visit: &mut dyn FnMut(RowChange<'_>) -> Result<()>,
) -> Result<DiffCounts> {
    let mut diff = TableDiff::new(objects, old, new).await?;
    while let Some(change) = diff.next().await? {
        visit(change)?;
    }
    Ok(diff.counts())
}

/// How a table's schema changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchemaChange {
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// `column: old type -> new type`.
    pub retyped: Vec<String>,
    pub key_changed: bool,
    /// The key columns before and after.
    pub old_key: Vec<String>,
    pub new_key: Vec<String>,
}

impl SchemaChange {
    pub fn between(old: &crate::schema::TableSchema, new: &crate::schema::TableSchema) -> Self {
        let mut c = SchemaChange::default();
        for o in &old.columns {
            match new.columns.iter().find(|n| n.name == o.name) {
                None => c.dropped.push(o.name.clone()),
                Some(n) if n.data_type != o.data_type => c
                    .retyped
                    .push(format!("{}: {} -> {}", o.name, o.data_type, n.data_type)),
                Some(_) => {}
            }
        }
        for n in &new.columns {
            if !old.columns.iter().any(|o| o.name == n.name) {
                c.added.push(n.name.clone());
            }
        }
        c.key_changed = old.primary_key != new.primary_key;
        c.old_key = old.primary_key.clone();
        c.new_key = new.primary_key.clone();
        c
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.retyped.is_empty()
            && !self.key_changed
    }
}

/// One cell as JSON: numbers and booleans as JSON values, everything else as its text.
pub fn value_json(col: &dyn Array, row: usize) -> serde_json::Value {
    use crate::arrow::array::AsArray;
    use crate::arrow::datatypes::*;
    use serde_json::Value;
    if col.is_null(row) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int8 => col.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => {
            serde_json::Number::from_f64(f64::from(col.as_primitive::<Float32Type>().value(row)))
                .map_or(Value::Null, Value::Number)
        }
        DataType::Float64 => {
            serde_json::Number::from_f64(col.as_primitive::<Float64Type>().value(row))
                .map_or(Value::Null, Value::Number)
        }
        DataType::Boolean => col.as_boolean().value(row).into(),
        DataType::Utf8 => col.as_string::<i32>().value(row).into(),
        _ => {
            let opts = crate::arrow::util::display::FormatOptions::default();
            crate::arrow::util::display::ArrayFormatter::try_new(col, &opts)
                .map(|f| Value::String(f.value(row).to_string()))
                .unwrap_or(Value::Null)
        }
    }
}

/// A whole row as a JSON object, columns in schema order.
pub fn row_json(batch: &RecordBatch, row: usize) -> serde_json::Map<String, serde_json::Value> {
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().clone(), value_json(batch.column(i).as_ref(), row)))
        .collect()
}

/// The key columns of a row as a JSON object.
pub fn key_json(
    batch: &RecordBatch,
    key: &[String],
    row: usize,
) -> serde_json::Map<String, serde_json::Value> {
    let schema = batch.schema();
    key.iter()
        .filter_map(|k| {
            schema
                .index_of(k)
                .ok()
                .map(|i| (k.clone(), value_json(batch.column(i).as_ref(), row)))
        })
        .collect()
}
