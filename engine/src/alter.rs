//! Changing a working table's schema in place: adding, dropping, renaming and retyping
//! columns, several changes at once, all or nothing.
//!
//! Every chunk is rewritten (its Parquet file holds the column names and types, which
//! Iceberg views and the statistics reader look columns up by), through the same chunker as
//! every write, so chunk boundaries stay a function of the keys. Whatever can fail on the
//! rows (a value that does not convert, keys that would no longer be in order) is checked in
//! a first pass that stores nothing: a refused change leaves the repository as it was.

use std::fmt;

use crate::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use crate::arrow::compute::{cast_with_options, CastOptions};
use crate::arrow::datatypes::{DataType, Field, Schema};

use crate::diff::value_json;
use crate::edit::EditSummary;
use crate::error::{Error, Result};
use crate::key::format_key;
use crate::repo::Repository;
use crate::schema::{type_name, ColumnDef, TableSchema};
use crate::table::{rewrite, store_table};

/// One change to a table's columns, for [`Repository::alter_table`]. Changes given together
/// are applied in order (a later one sees the columns as the earlier ones left them), and
/// either all of them are made or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// Adds a column after the others. Every row holds `default` (a value written as text,
    /// `42` or `2024-01-31`, converted to the column's type), or null without one.
    AddColumn {
        name: String,
        data_type: DataType,
        default: Option<String>,
    },
    /// Removes a column and its values. Key columns cannot be dropped.
    DropColumn { name: String },
    /// Renames a column; a key column keeps its place in the key under its new name.
    RenameColumn { from: String, to: String },
    /// Changes a column's type. Every value must convert, and convert back to the value it
    /// was (so `1.5` does not become `1`, and the text `007` does not become `7`); a value
    /// that does not is an error naming it and its row's key. A key column may change type
    /// only to a type in which its keys keep their order (int32 to int64, say: not int64 to
    /// text, where `10` sorts before `9`); floats cannot be keys.
    SetType { column: String, data_type: DataType },
}

fn shown_type(dt: &DataType) -> String {
    type_name(dt).unwrap_or_else(|| dt.to_string())
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaChange::AddColumn {
                name,
                data_type,
                default,
            } => {
                write!(f, "added column {name} ({})", shown_type(data_type))?;
                match default {
                    Some(d) => write!(f, " = {d}"),
                    None => Ok(()),
                }
            }
            SchemaChange::DropColumn { name } => write!(f, "dropped column {name}"),
            SchemaChange::RenameColumn { from, to } => write!(f, "renamed column {from} to {to}"),
            SchemaChange::SetType { column, data_type } => {
                write!(f, "changed column {column} to {}", shown_type(data_type))
            }
        }
    }
}

/// Where a column of the new table gets its values.
#[derive(Debug, Clone)]
enum Origin {
    /// An old column (by position), converted through these types in turn.
    Old(usize, Vec<DataType>),
    /// A new column: this one value (maybe null) in every row.
    Filled(ArrayRef),
}

#[derive(Debug, Clone)]
struct Planned {
    name: String,
    data_type: DataType,
    nullable: bool,
    origin: Origin,
}

/// The new table's columns and key, from the old schema and the changes.
struct Plan {
    columns: Vec<Planned>,
    key: Vec<String>,
}

/// Casting that fails on a value that does not convert.
fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// Casting that makes a value that does not convert null (to find which one).
fn lenient() -> CastOptions<'static> {
    CastOptions {
        safe: true,
        ..Default::default()
    }
}

fn refused(table: &str, column: &str, reason: impl Into<String>) -> Error {
    Error::SchemaChangeRefused {
        table: table.into(),
        column: column.into(),
        reason: reason.into(),
    }
}

fn supported(column: &str, dt: &DataType) -> Result<()> {
    match type_name(dt) {
        Some(_) => Ok(()),
        None => Err(Error::UnsupportedType {
            column: column.into(),
            data_type: dt.to_string(),
            input: None,
        }),
    }
}

impl Plan {
    fn of(table: &str, schema: &TableSchema, changes: &[SchemaChange]) -> Result<Plan> {
        let arrow = schema.arrow()?;
        let mut columns: Vec<Planned> = arrow
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Planned {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                nullable: f.is_nullable(),
                origin: Origin::Old(i, Vec::new()),
            })
            .collect();
        let mut key = schema.primary_key.clone();
        for change in changes {
            let position = |columns: &[Planned], name: &str| -> Result<usize> {
                columns
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| Error::UnknownColumn {
                        table: table.into(),
                        column: name.into(),
                        columns: columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            };
            let free = |columns: &[Planned], name: &str| -> Result<()> {
                if name.trim().is_empty() {
                    return Err(refused(table, name, "a column needs a name"));
                }
                if columns.iter().any(|c| c.name == name) {
                    return Err(Error::ColumnExists {
                        table: table.into(),
                        column: name.into(),
                    });
                }
                Ok(())
            };
            match change {
                SchemaChange::AddColumn {
                    name,
                    data_type,
                    default,
                } => {
                    free(&columns, name)?;
                    supported(name, data_type)?;
                    let value: ArrayRef = match default {
                        None => new_null_array(data_type, 1),
                        Some(text) => {
                            let raw: ArrayRef =
                                std::sync::Arc::new(StringArray::from(vec![text.as_str()]));
                            cast_with_options(&raw, data_type, &strict()).map_err(|e| {
                                refused(
                                    table,
                                    name,
                                    format!(
                                        "the default '{text}' is not a {}: {e}",
                                        shown_type(data_type)
                                    ),
                                )
                            })?
                        }
                    };
                    columns.push(Planned {
                        name: name.clone(),
                        data_type: data_type.clone(),
                        nullable: true,
                        origin: Origin::Filled(value),
                    });
                }
                SchemaChange::DropColumn { name } => {
                    let i = position(&columns, name)?;
                    if key.contains(name) {
                        return Err(refused(
                            table,
                            name,
                            format!(
                                "it is part of the primary key ({}); key columns cannot be dropped",
                                key.join(", ")
                            ),
                        ));
                    }
                    columns.remove(i);
                }
                SchemaChange::RenameColumn { from, to } => {
                    let i = position(&columns, from)?;
                    free(&columns, to)?;
                    columns[i].name = to.clone();
                    for k in key.iter_mut().filter(|k| *k == from) {
                        *k = to.clone();
                    }
                }
                SchemaChange::SetType { column, data_type } => {
                    let i = position(&columns, column)?;
                    supported(column, data_type)?;
                    let c = &mut columns[i];
                    if c.data_type == *data_type {
                        continue;
                    }
                    let is_key = key.contains(column);
                    if is_key && matches!(data_type, DataType::Float32 | DataType::Float64) {
                        return Err(refused(
                            table,
                            column,
                            "it is a key column, and floats cannot be keys",
                        ));
                    }
                    if !crate::arrow::compute::can_cast_types(&c.data_type, data_type) {
                        return Err(refused(
                            table,
                            column,
                            format!(
                                "a {} column cannot be changed to {}",
                                shown_type(&c.data_type),
                                shown_type(data_type)
                            ),
                        ));
                    }
                    match &mut c.origin {
                        Origin::Old(_, casts) => casts.push(data_type.clone()),
                        Origin::Filled(value) => {
                            *value = convert_value(table, column, value, data_type)?;
                        }
                    }
                    c.data_type = data_type.clone();
                }
            }
        }
        Ok(Plan { columns, key })
    }

    fn schema(&self) -> Result<TableSchema> {
        let mut columns = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            columns.push(ColumnDef {
                name: c.name.clone(),
                data_type: type_name(&c.data_type).ok_or_else(|| Error::UnsupportedType {
                    column: c.name.clone(),
                    data_type: c.data_type.to_string(),
                    input: None,
                })?,
                nullable: c.nullable,
            });
        }
        Ok(TableSchema {
            columns,
            primary_key: self.key.clone(),
        })
    }

    /// Whether any value is converted (so a conversion may fail).
    fn converts(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(&c.origin, Origin::Old(_, casts) if !casts.is_empty()))
    }

    /// The first key column whose type changes, if any (its keys' order may change).
    fn retyped_key(&self) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| {
                self.key.contains(&c.name)
                    && matches!(&c.origin, Origin::Old(_, casts) if !casts.is_empty())
            })
            .map(|c| c.name.as_str())
    }
}

/// A new column's one value, converted to another type.
fn convert_value(table: &str, column: &str, value: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    cast_with_options(value, to, &strict()).map_err(|e| {
        refused(
            table,
            column,
            format!(
                "its default {} does not convert to {}: {e}",
                value_json(value.as_ref(), 0),
                shown_type(to)
            ),
        )
    })
}

/// Converts one column of a chunk's rows to `to`, refusing a value that does not convert or
/// does not convert back to itself (its row's key, from `batch`, names it).
fn convert(
    table: &str,
    column: &str,
    batch: &RecordBatch,
    key_idx: &[usize],
    values: &ArrayRef,
    to: &DataType,
) -> Result<ArrayRef> {
    let bad = |row: usize, detail: String| Error::ValueDoesNotConvert {
        table: table.into(),
        column: column.into(),
        problem: format!(
            "the value {} of the row with key {} does not convert to {}{detail}",
            value_json(values.as_ref(), row),
            format_key(batch, key_idx, row),
            shown_type(to)
        ),
    };
    // The first row holding a value that became null (or that changed, with `back`).
    let first_lost = |converted: &ArrayRef| -> Option<usize> {
        (0..values.len()).find(|&r| values.is_valid(r) && converted.is_null(r))
    };
    let out = match cast_with_options(values, to, &strict()) {
        Ok(out) => out,
        Err(e) => {
            let row = cast_with_options(values, to, &lenient())
                .ok()
                .and_then(|lenient| first_lost(&lenient));
            return Err(match row {
                Some(r) => bad(r, String::new()),
                None => refused(
                    table,
                    column,
                    format!("its values do not convert to {}: {e}", shown_type(to)),
                ),
            });
        }
    };
    let back = cast_with_options(&out, values.data_type(), &lenient())
        .map_err(|e| Error::arrow(format!("checking the values of column '{column}'"), e))?;
    let same = arrow_ord::cmp::not_distinct(values, &back)
        .map_err(|e| Error::arrow(format!("checking the values of column '{column}'"), e))?;
    if let Some(r) = (0..values.len()).find(|&r| !same.value(r)) {
        let became = value_json(out.as_ref(), r);
        return Err(bad(r, format!(" unchanged (it would become {became})")));
    }
    Ok(out)
}

impl Repository {
    /// Changes the columns of a working table (a change to commit): `changes` in order, all
    /// or nothing. Every chunk is rewritten; a change the rows do not allow is refused before
    /// anything is stored. Refused while a merge is in progress.
    pub async fn alter_table(&self, table: &str, changes: &[SchemaChange]) -> Result<EditSummary> {
        if changes.is_empty() {
            return Err(Error::Invalid(format!(
                "no change given for table '{table}'"
            )));
        }
        self.ensure_no_merge().await?;
        let (_, base) = self.table(table, None).await?;
        let plan = Plan::of(table, &base.schema, changes)?;
        let schema = plan.schema()?;
        let arrow = schema.arrow()?;
        let old_key_idx = base.schema.key_indices();
        let transform = |batch: RecordBatch| -> Result<RecordBatch> {
            let n = batch.num_rows();
            let mut columns = Vec::with_capacity(plan.columns.len());
            for c in &plan.columns {
                columns.push(match &c.origin {
                    Origin::Old(i, casts) => {
                        let mut values = batch.column(*i).clone();
                        for dt in casts {
                            values = convert(table, &c.name, &batch, &old_key_idx, &values, dt)?;
                        }
                        values
                    }
                    Origin::Filled(value) if value.is_null(0) => new_null_array(&c.data_type, n),
                    Origin::Filled(value) => {
                        let zeros = crate::arrow::array::UInt32Array::from(vec![0u32; n]);
                        arrow_select::take::take(value.as_ref(), &zeros, None)
                            .map_err(|e| Error::arrow("filling a new column", e))?
                    }
                });
            }
            let fields: Vec<Field> = arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
            RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
                .map_err(|e| Error::arrow(format!("changing the columns of table '{table}'"), e))
        };
        let retyped_key = plan.retyped_key();
        if plan.converts() {
            let checked = rewrite(
                self.objects(),
                &base,
                schema.clone(),
                &transform,
                retyped_key.is_some(),
                false,
            )
            .await?;
            if let Err((before, after)) = checked {
                let column = retyped_key.unwrap_or_default();
                return Err(refused(
                    table,
                    column,
                    format!(
                        "with its new type the keys would no longer be in order and distinct \
                         (key {before} would not come before {after}); a key column may only \
                         change to a type that keeps its order"
                    ),
                ));
            }
        }
        let written = rewrite(self.objects(), &base, schema, &transform, false, true).await?;
        let Ok(Some((object, stats))) = written else {
            return Err(Error::Invalid(format!(
                "rewriting table '{table}' gave no table"
            )));
        };
        let id = store_table(self.objects(), &object).await?;
        self.set_working_table(table, Some(id)).await?;
        Ok(EditSummary {
            table: table.into(),
            table_id: id,
            rows: object.rows,
            stats,
            created: false,
            notes: Vec::new(),
            schema_change: Some(crate::diff::SchemaChange::between(
                &base.schema,
                &object.schema,
            )),
        })
    }
}
