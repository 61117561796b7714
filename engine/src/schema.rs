//! Table schemas: the supported column types, their stable names in stored objects, and the
//! primary key.

use std::sync::Arc;

use crate::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One column as stored in a table object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    /// Stable type name, e.g. `int64`, `utf8`, `timestamp[us, UTC]`, `decimal128(10, 2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// A table's columns and primary key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
}

fn unit_name(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// The stable name of a supported type, or `None` when Strata does not store it.
pub fn type_name(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "bool".into(),
        DataType::Utf8 => "utf8".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date32".into(),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit_name(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, {}]", unit_name(u), tz),
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        _ => return None,
    })
}

/// Parses a stable type name back into an Arrow type.
pub fn parse_type(name: &str) -> Option<DataType> {
    Some(match name {
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "bool" => DataType::Boolean,
        "utf8" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date32" => DataType::Date32,
        _ => {
            if let Some(inner) = name
                .strip_prefix("timestamp[")
                .and_then(|s| s.strip_suffix(']'))
            {
                let (unit, tz) = match inner.split_once(", ") {
                    Some((u, tz)) => (u, Some(Arc::from(tz))),
                    None => (inner, None),
                };
                let unit = match unit {
                    "s" => TimeUnit::Second,
                    "ms" => TimeUnit::Millisecond,
                    "us" => TimeUnit::Microsecond,
                    "ns" => TimeUnit::Nanosecond,
                    _ => return None,
                };
                DataType::Timestamp(unit, tz)
            } else if let Some(inner) = name
                .strip_prefix("decimal128(")
                .and_then(|s| s.strip_suffix(')'))
            {
                let (p, s) = inner.split_once(", ")?;
                DataType::Decimal128(p.parse().ok()?, s.parse().ok()?)
            } else {
                return None;
            }
        }
    })
}

/// The stored type an input type is converted to (e.g. large or view strings to `utf8`,
/// dictionaries to their values), or `None` when it has no supported equivalent.
pub fn normalize_type(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
        DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            Some(DataType::Binary)
        }
        DataType::Dictionary(_, v) => normalize_type(v),
        DataType::Date64 => Some(DataType::Date32),
        DataType::Null => Some(DataType::Utf8),
        other => type_name(other).map(|_| other.clone()),
    }
}

impl TableSchema {
    /// Builds a table schema from an Arrow schema (types normalized) and key column names.
    pub fn from_arrow(schema: &Schema, primary_key: &[String]) -> Result<Self> {
        if primary_key.is_empty() {
            return Err(Error::InvalidPrimaryKey {
                reason: "give at least one key column".into(),
            });
        }
        for (i, k) in primary_key.iter().enumerate() {
            if schema.field_with_name(k).is_err() {
                let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::InvalidPrimaryKey {
                    reason: format!("no column '{k}'; the columns are {}", names.join(", ")),
                });
            }
            if primary_key[..i].contains(k) {
                return Err(Error::InvalidPrimaryKey {
                    reason: format!("column '{k}' is named twice"),
                });
            }
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let dt = normalize_type(f.data_type()).ok_or_else(|| Error::UnsupportedType {
                column: f.name().clone(),
                data_type: f.data_type().to_string(),
                input: None,
            })?;
            let is_key = primary_key.contains(f.name());
            if is_key && matches!(dt, DataType::Float32 | DataType::Float64) {
                return Err(Error::InvalidPrimaryKey {
                    reason: format!("column '{}' is a float; floats cannot be keys", f.name()),
                });
            }
            columns.push(ColumnDef {
                name: f.name().clone(),
                data_type: type_name(&dt).expect("normalized types have names"),
                nullable: !is_key,
            });
        }
        Ok(TableSchema {
            columns,
            primary_key: primary_key.to_vec(),
        })
    }

    /// The Arrow schema of the table's rows.
    pub fn arrow(&self) -> Result<SchemaRef> {
        let mut fields = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let dt = parse_type(&c.data_type).ok_or_else(|| Error::UnsupportedType {
                column: c.name.clone(),
                data_type: c.data_type.clone(),
                input: None,
            })?;
            fields.push(Field::new(&c.name, dt, c.nullable));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Positions of the key columns in the row schema.
    pub fn key_indices(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| &c.name == k))
            .collect()
    }

    /// Describes how `other` differs from this schema (empty when they match).
    pub fn differences(&self, other: &TableSchema) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.columns {
            match other.columns.iter().find(|o| o.name == c.name) {
                None => out.push(format!("column '{}' is missing", c.name)),
                Some(o) if o.data_type != c.data_type => out.push(format!(
                    "column '{}' is {} but the table has {}",
                    c.name, o.data_type, c.data_type
                )),
                Some(_) => {}
            }
        }
        for o in &other.columns {
            if !self.columns.iter().any(|c| c.name == o.name) {
                out.push(format!("column '{}' is not in the table", o.name));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_type_name_round_trips() {
        let types = [
            DataType::Int8,
            DataType::UInt64,
            DataType::Float32,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            DataType::Decimal128(12, 3),
        ];
        for t in types {
            let name = type_name(&t).expect("supported");
            assert_eq!(parse_type(&name), Some(t));
        }
        assert_eq!(type_name(&DataType::Float16), None);
    }
}
