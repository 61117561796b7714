//! Values between Python and Strata: reports as dicts and lists, Python values as keys, key
//! ranges from `filter`, Arrow input from anything that speaks the Arrow PyCapsule interface
//! (or a pandas DataFrame), and JSON-rendered diff values back to typed Arrow columns.

use std::ops::Bound as KeyBound;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, RecordBatchIterator, RecordBatchReader,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyCapsule, PyDict, PyFloat, PyInt, PyList, PySlice, PyString, PyTuple,
};
use serde_json::Value;
use strata::{Key, KeyRange, KeyValue};

use crate::errors::invalid;
use crate::ffi;

/// A serializable report as Python dicts, lists, strings and numbers.
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| invalid(format!("a report could not be converted: {e}")))?;
    json_to_py(py, &v)
}

pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for i in items {
                list.append(json_to_py(py, i)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Text for a date, time, decimal or other value: its `isoformat()` when it has one, else
/// `str()`.
fn as_text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if v.hasattr("isoformat")? {
        return v.call_method0("isoformat")?.extract();
    }
    Ok(v.str()?.to_string())
}

/// One Python value as a key value (converted by the library to the column's type).
pub fn key_value(v: &Bound<'_, PyAny>) -> PyResult<KeyValue> {
    if v.is_instance_of::<PyBool>() {
        return Ok(KeyValue::Bool(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() || (v.hasattr("__index__")? && !v.is_instance_of::<PyFloat>()) {
        let i = v.call_method0("__index__")?;
        if let Ok(x) = i.extract::<i64>() {
            return Ok(KeyValue::Int(x));
        }
        return Ok(KeyValue::UInt(i.extract()?));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(KeyValue::Text(s.to_string()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(KeyValue::Binary(b.as_bytes().to_vec()));
    }
    if v.is_instance_of::<PyFloat>() {
        return Err(invalid(format!(
            "{} is a float; a key is never a float (keys are integers, text, dates, times, decimals or bytes)",
            v.repr()?
        )));
    }
    if v.is_none() {
        return Err(invalid("a key value is None; keys are never null"));
    }
    Ok(KeyValue::Text(as_text(v)?))
}

/// A key: one value, or a tuple of values for the first columns of a composite key.
pub fn key(v: &Bound<'_, PyAny>) -> PyResult<Key> {
    if let Ok(t) = v.cast::<PyTuple>() {
        return t.iter().map(|x| key_value(&x)).collect();
    }
    Ok(vec![key_value(v)?])
}

const OPS: [&str; 7] = ["=", "==", "<", "<=", ">", ">=", "in"];

const FILTER_HELP: &str = "filter takes a key (a value, or a tuple for a composite key), a slice of keys (slice(start, stop): start <= key < stop), predicates on the first key column as a list of (column, op, value) with op one of = == < <= > >= in, or a list of keys and slices";

/// The key ranges a `filter` stands for. `key_columns` are the table's key.
pub fn filter(v: &Bound<'_, PyAny>, key_columns: &[String]) -> PyResult<Vec<KeyRange>> {
    if let Ok(s) = v.cast::<PySlice>() {
        if !s.getattr("step")?.is_none() {
            return Err(invalid("a key slice has no step: slice(start, stop)"));
        }
        let bound = |name: &str, included: bool| -> PyResult<KeyBound<Key>> {
            let x = s.getattr(name)?;
            if x.is_none() {
                return Ok(KeyBound::Unbounded);
            }
            let k = key(&x)?;
            Ok(if included {
                KeyBound::Included(k)
            } else {
                KeyBound::Excluded(k)
            })
        };
        return Ok(vec![KeyRange {
            start: bound("start", true)?,
            end: bound("stop", false)?,
        }]);
    }
    if v.is_instance_of::<PyList>() {
        let items: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
        // A 3-tuple whose middle value is an operator is a predicate, not a key.
        let is_predicate = |x: &Bound<'_, PyAny>| -> bool {
            x.cast::<PyTuple>().is_ok_and(|t| {
                t.len() == 3
                    && t.get_item(0).is_ok_and(|c| c.is_instance_of::<PyString>())
                    && t.get_item(1)
                        .ok()
                        .and_then(|o| o.extract::<String>().ok())
                        .is_some_and(|o| OPS.contains(&o.as_str()))
            })
        };
        if !items.is_empty() && items.iter().all(is_predicate) {
            return predicates(&items, key_columns);
        }
        let mut out = Vec::new();
        for item in &items {
            out.extend(filter(item, key_columns)?);
        }
        return Ok(out);
    }
    if v.is_instance_of::<PyDict>() {
        return Err(invalid(FILTER_HELP));
    }
    Ok(vec![KeyRange::key(key(v)?)])
}

/// `[(column, op, value), ...]`, all true at once, on the first key column.
fn predicates(items: &[Bound<'_, PyAny>], key_columns: &[String]) -> PyResult<Vec<KeyRange>> {
    let first = &key_columns[0];
    let mut start: KeyBound<Key> = KeyBound::Unbounded;
    let mut end: KeyBound<Key> = KeyBound::Unbounded;
    let mut points: Option<Vec<Key>> = None;
    for item in items {
        let (column, op, value): (String, String, Bound<'_, PyAny>) = item.extract()?;
        if &column != first {
            return Err(invalid(format!(
                "filter predicates work on the first key column ('{first}'); filter '{column}' in your query engine"
            )));
        }
        match op.as_str() {
            "=" | "==" => {
                let k = key(&value)?;
                start = KeyBound::Included(k.clone());
                end = KeyBound::Included(k);
            }
            ">" => start = KeyBound::Excluded(key(&value)?),
            ">=" => start = KeyBound::Included(key(&value)?),
            "<" => end = KeyBound::Excluded(key(&value)?),
            "<=" => end = KeyBound::Included(key(&value)?),
            "in" => {
                let keys: Vec<Key> = value
                    .try_iter()?
                    .map(|x| x.and_then(|x| key(&x)))
                    .collect::<PyResult<_>>()?;
                points = Some(keys);
            }
            _ => return Err(invalid(FILTER_HELP)),
        }
    }
    match points {
        Some(keys) if matches!((&start, &end), (KeyBound::Unbounded, KeyBound::Unbounded)) => {
            Ok(keys.into_iter().map(KeyRange::key).collect())
        }
        Some(_) => Err(invalid(
            "filter: 'in' cannot be combined with other predicates on the key; use one or the other",
        )),
        None => Ok(vec![KeyRange { start, end }]),
    }
}

/// Anything Arrow-shaped as a reader of batches: objects with `__arrow_c_stream__` (pyarrow,
/// Polars, DuckDB, Strata itself) or `__arrow_c_array__` (one batch), pandas DataFrames
/// (through pyarrow), and, when pyarrow is installed, whatever `pyarrow.table()` takes.
pub fn arrow_input(data: &Bound<'_, PyAny>) -> PyResult<Box<dyn RecordBatchReader + Send>> {
    let py = data.py();
    let ty = data.get_type();
    let module: String = ty.getattr("__module__")?.extract().unwrap_or_default();
    let class: String = ty.getattr("__name__")?.extract().unwrap_or_default();
    if module.starts_with("pandas") && class == "DataFrame" {
        let pa = pyarrow(py, "writing a pandas DataFrame")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("preserve_index", false)?;
        let table = pa
            .getattr("Table")?
            .call_method("from_pandas", (data,), Some(&kwargs))?;
        return arrow_input(&table);
    }
    if data.hasattr("__arrow_c_stream__")? {
        let capsule = data.call_method0("__arrow_c_stream__")?;
        let capsule = capsule.cast::<PyCapsule>()?;
        return Ok(Box::new(ffi::import_stream(capsule)?));
    }
    if data.hasattr("__arrow_c_array__")? {
        let pair = data.call_method0("__arrow_c_array__")?;
        let (schema, array): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
        let batch = ffi::import_batch(schema.cast::<PyCapsule>()?, array.cast::<PyCapsule>()?)?;
        let schema = batch.schema();
        return Ok(Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)));
    }
    if let Ok(pa) = py.import("pyarrow") {
        if let Ok(table) = pa.call_method1("table", (data,)) {
            return arrow_input(&table);
        }
    }
    Err(invalid(format!(
        "cannot write a {module}.{class}: give Arrow data (anything with __arrow_c_stream__, such as a pyarrow Table, a Polars DataFrame or a DuckDB result) or a pandas DataFrame"
    )))
}

/// The pyarrow module, or an error that says what needs it.
pub fn pyarrow<'py>(py: Python<'py>, what: &str) -> PyResult<Bound<'py, PyModule>> {
    py.import("pyarrow").map_err(|_| {
        PyImportError::new_err(format!(
            "{what} needs pyarrow: pip install pyarrow (Polars and DuckDB read tables without it, through __arrow_c_stream__)"
        ))
    })
}

/// Keys given as Python values (one value, or a tuple per key) as a batch of the key columns.
pub fn keys_batch(values: &[Bound<'_, PyAny>], key_fields: &[Field]) -> PyResult<RecordBatch> {
    let mut columns = Vec::with_capacity(key_fields.len());
    for (j, field) in key_fields.iter().enumerate() {
        let mut cells = Vec::with_capacity(values.len());
        for v in values {
            let k = key(v)?;
            if k.len() != key_fields.len() {
                return Err(invalid(format!(
                    "a key of this table has {} value{} ({}); got {}",
                    key_fields.len(),
                    if key_fields.len() == 1 { "" } else { "s" },
                    key_fields
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    v.repr()?
                )));
            }
            cells.push(k[j].clone());
        }
        columns.push(key_column(field, &cells)?);
    }
    let schema = Arc::new(Schema::new(
        key_fields
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns).map_err(|e| invalid(format!("bad keys: {e}")))
}

fn key_column(field: &Field, cells: &[KeyValue]) -> PyResult<ArrayRef> {
    let raw: ArrayRef = match cells.first() {
        None | Some(KeyValue::Text(_)) => {
            let mut b = StringBuilder::new();
            for c in cells {
                match c {
                    KeyValue::Text(s) => b.append_value(s),
                    other => return Err(mixed(field, other)),
                }
            }
            Arc::new(b.finish())
        }
        Some(KeyValue::Int(_)) | Some(KeyValue::UInt(_)) => {
            if cells.iter().all(|c| matches!(c, KeyValue::Int(_))) {
                let v: Vec<i64> = cells
                    .iter()
                    .map(|c| if let KeyValue::Int(x) = c { *x } else { 0 })
                    .collect();
                Arc::new(Int64Array::from(v))
            } else {
                let mut v = Vec::with_capacity(cells.len());
                for c in cells {
                    match c {
                        KeyValue::UInt(x) => v.push(*x),
                        KeyValue::Int(x) => v.push(u64::try_from(*x).map_err(|_| {
                            invalid(format!("key {x} does not fit column '{}'", field.name()))
                        })?),
                        other => return Err(mixed(field, other)),
                    }
                }
                Arc::new(UInt64Array::from(v))
            }
        }
        Some(KeyValue::Bool(_)) => {
            let mut b = BooleanBuilder::new();
            for c in cells {
                match c {
                    KeyValue::Bool(x) => b.append_value(*x),
                    other => return Err(mixed(field, other)),
                }
            }
            Arc::new(b.finish())
        }
        Some(KeyValue::Binary(_)) => {
            let mut b = BinaryBuilder::new();
            for c in cells {
                match c {
                    KeyValue::Binary(x) => b.append_value(x),
                    other => return Err(mixed(field, other)),
                }
            }
            Arc::new(b.finish())
        }
    };
    cast(&raw, field)
}

fn mixed(field: &Field, v: &KeyValue) -> PyErr {
    invalid(format!(
        "the keys of column '{}' mix types ({v:?} among others)",
        field.name()
    ))
}

fn cast(raw: &ArrayRef, field: &Field) -> PyResult<ArrayRef> {
    let opts = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(raw, field.data_type(), &opts).map_err(|e| {
        invalid(format!(
            "values do not convert to column '{}' ({}): {e}",
            field.name(),
            field.data_type()
        ))
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn get<'a>(v: &Option<&'a Value>) -> Option<&'a Value> {
    v.filter(|x| !x.is_null())
}

/// Values of one column as the diff renders them (JSON) back to a typed Arrow column.
pub fn json_column(field: &Field, values: &[Option<&Value>]) -> PyResult<ArrayRef> {
    let raw: ArrayRef = match field.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| get(v).and_then(Value::as_i64))
                .collect::<Int64Array>(),
        ),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Arc::new(
            values
                .iter()
                .map(|v| get(v).and_then(Value::as_u64))
                .collect::<UInt64Array>(),
        ),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| get(v).and_then(Value::as_f64))
                .collect::<Float64Array>(),
        ),
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(get(v).and_then(Value::as_bool));
            }
            Arc::new(b.finish())
        }
        DataType::Binary | DataType::LargeBinary => {
            let mut b = BinaryBuilder::new();
            for v in values {
                b.append_option(get(v).and_then(Value::as_str).and_then(hex_decode));
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            for v in values {
                match get(v) {
                    None => b.append_null(),
                    Some(Value::String(s)) => b.append_value(s),
                    Some(other) => b.append_value(other.to_string()),
                }
            }
            Arc::new(b.finish())
        }
    };
    cast(&raw, field)
}
