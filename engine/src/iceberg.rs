//! Iceberg views: every branch and tag of a table, readable in place by engines that read
//! Apache Iceberg (DuckDB, Spark, Trino, Polars, pyiceberg), over Strata's own chunks.
//!
//! For a table at a ref, this module writes Iceberg format-2 metadata into the same location
//! as the chunks (docs/protocol.md, section 10):
//!
//! ```text
//! iceberg/manifests/ab/cdef....avro                 one manifest per level-0 index node
//! iceberg/lists/ab/cdef....avro                     one manifest list per table object
//! iceberg/<heads|tags>/<ref>/<table>/metadata/v<seq>.metadata.json
//! iceberg/<heads|tags>/<ref>/<table>/metadata/version-hint.text
//! ```
//!
//! Manifests and lists are named by the object they describe, so a one-row commit writes one
//! or two new manifests, one list and one small JSON file; everything else is shared with the
//! versions before it. The files name chunks by absolute URI, so they are written for one
//! location (a repository or a remote) and never copied between locations. Parquet chunks
//! carry no field ids: the metadata maps column names to ids (`schema.name-mapping.default`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::types::Value;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Schema, TimeUnit};
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use serde_json::json;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::schema::{parse_type, TableSchema};
use crate::store::layout::{
    self, delete_manifest_path, deletes_path, hint_path, list_path, manifest_path, metadata_path,
    table_dir,
};
use crate::store::objects::{ObjectKind, Objects};
use crate::store::refs::{RefKind, RefName};
use crate::store::{create, delete_opt, get_opt, head_opt, put, Created};
use crate::table::TableObject;
use crate::tree::{self, Entry, Node};
use crate::Commit;

/// The folder under a location's root that holds every Iceberg file.
pub use crate::store::layout::ICEBERG_DIR as DIR;

/// How many chunk footers are read at once when a manifest is written.
const READ_CONCURRENCY: usize = 16;

/// The manifest list's sort order id for Strata's key order.
const KEY_ORDER_ID: i64 = 1;

/// A location's root as engines name it (`file:///abs/.strata`, `s3://bucket/prefix`), and
/// its store.
#[derive(Clone, Debug)]
pub struct Location {
    pub objects: Objects,
    uri: String,
}

impl Location {
    /// `uri` is the absolute URI of the store's root; a trailing `/` is dropped.
    pub fn new(objects: Objects, uri: &str) -> Self {
        Location {
            objects,
            uri: uri.trim_end_matches('/').to_string(),
        }
    }

    /// The absolute URI of a key of this location.
    pub fn uri_of(&self, path: &Path) -> String {
        format!("{}/{}", self.uri, path)
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        self.objects.store()
    }
}

/// One table's view at a ref, as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct View {
    pub table: String,
    /// The Iceberg table folder (its `metadata/version-hint.text` names the current version).
    pub location: String,
    /// The current `metadata.json`.
    pub metadata: String,
    /// The ref record number the metadata describes (the `N` of `vN.metadata.json`).
    pub version: u64,
    /// Iceberg files this publication wrote, and their bytes (0 when all existed already).
    pub files_written: u64,
    pub bytes_written: u64,
}

/// What a chunk's footer says of one column.
struct ColumnStats {
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    nulls: Option<u64>,
}

/// One manifest as a manifest list names it. A data manifest's `rows` are the rows its
/// chunks hold with their deltas merged in; a delete manifest's, the positions it deletes.
#[derive(Clone, Debug)]
struct ManifestRef {
    path: String,
    length: i64,
    files: i32,
    rows: i64,
    /// A manifest of position-delete files.
    deletes: bool,
}

/// The Iceberg type of a Strata column type. Iceberg has no unsigned integers: `uint8` and
/// `uint16` are `int`, `uint32` is `long`, and `uint64` is `long` too (a value above 2^63-1
/// cannot be read as one, and readers fail on it rather than change it). Iceberg format 2
/// has microsecond timestamps only: other units are declared as `timestamp`/`timestamptz` and
/// converted by the readers; `timestamp[s]` is `long` (seconds), as Parquet stores it.
pub fn iceberg_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "int".into(),
        DataType::UInt8 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        // Parquet has no second unit: such columns are stored as plain 64-bit integers (the
        // Arrow type travels in the file's metadata, which only Arrow readers use).
        DataType::Timestamp(TimeUnit::Second, _) => "long".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Decimal128(p, s) => format!("decimal({p}, {s})"),
        _ => return None,
    })
}

fn columns(table: &str, schema: &TableSchema) -> Result<Vec<(String, DataType, bool)>> {
    schema
        .columns
        .iter()
        .map(|c| {
            let dt = parse_type(&c.data_type).ok_or_else(|| Error::UnsupportedType {
                column: c.name.clone(),
                data_type: c.data_type.clone(),
                input: None,
            })?;
            if iceberg_type(&dt).is_none() {
                return Err(Error::Iceberg {
                    what: format!("the Iceberg view of table '{table}'"),
                    reason: format!(
                        "column {} has type {}, which Iceberg lacks",
                        c.name, c.data_type
                    ),
                });
            }
            Ok((c.name.clone(), dt, c.nullable))
        })
        .collect()
}

/// The Iceberg schema (ids are column positions from 1) as JSON.
fn schema_json(table: &str, schema: &TableSchema) -> Result<serde_json::Value> {
    let cols = columns(table, schema)?;
    let fields: Vec<serde_json::Value> = cols
        .iter()
        .enumerate()
        .map(|(i, (name, dt, nullable))| {
            json!({"id": i + 1, "name": name, "required": !nullable,
                   "type": iceberg_type(dt).unwrap_or_default()})
        })
        .collect();
    let ids: Vec<usize> = schema.key_indices().iter().map(|i| i + 1).collect();
    Ok(json!({"type": "struct", "schema-id": 0, "identifier-field-ids": ids, "fields": fields}))
}

/// Iceberg's single-value serialization of a bound (the first value of `array`), or `None`
/// when the type gets no bounds (floats, whose NaNs order apart; `uint64`, whose order is not
/// `long`'s). `upper` rounds a nanosecond bound up rather than down.
fn bound(array: &ArrayRef, upper: bool) -> Option<Vec<u8>> {
    if array.is_empty() || array.is_null(0) {
        return None;
    }
    let int = |v: i32| Some(v.to_le_bytes().to_vec());
    let long = |v: i64| Some(v.to_le_bytes().to_vec());
    match array.data_type() {
        DataType::Int8 => int(array.as_primitive::<Int8Type>().value(0).into()),
        DataType::Int16 => int(array.as_primitive::<Int16Type>().value(0).into()),
        DataType::Int32 => int(array.as_primitive::<Int32Type>().value(0)),
        DataType::UInt8 => int(array.as_primitive::<UInt8Type>().value(0).into()),
        DataType::UInt16 => int(array.as_primitive::<UInt16Type>().value(0).into()),
        DataType::Int64 => long(array.as_primitive::<Int64Type>().value(0)),
        DataType::UInt32 => long(array.as_primitive::<UInt32Type>().value(0).into()),
        DataType::Date32 => int(array.as_primitive::<Date32Type>().value(0)),
        DataType::Boolean => Some(vec![u8::from(array.as_boolean().value(0))]),
        DataType::Utf8 => Some(array.as_string::<i32>().value(0).as_bytes().to_vec()),
        DataType::Binary => Some(array.as_binary::<i32>().value(0).to_vec()),
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                // Declared as `long`: the seconds themselves.
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(0),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(0)
                    .checked_mul(1_000)?,
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(0),
                TimeUnit::Nanosecond => {
                    let ns = array.as_primitive::<TimestampNanosecondType>().value(0);
                    if upper {
                        ns.div_euclid(1_000) + i64::from(ns.rem_euclid(1_000) != 0)
                    } else {
                        ns.div_euclid(1_000)
                    }
                }
            };
            long(micros)
        }
        DataType::Decimal128(_, _) => {
            let v = array.as_primitive::<Decimal128Type>().value(0);
            Some(decimal_bytes(v))
        }
        _ => None,
    }
}

/// An unscaled decimal as Iceberg stores it: big-endian two's complement, in as few bytes as
/// keep its sign.
fn decimal_bytes(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// Reads the Parquet footer of chunk `id` of `len` bytes (one ranged read in the usual case).
async fn read_footer(objects: &Objects, id: &ObjectId, len: u64) -> Result<ParquetMetaData> {
    let path = layout::chunk(id);
    let store = objects.store();
    let storage = |e| crate::store::storage_error(&path, e);
    let tail_len = len.min(64 * 1024);
    let tail = store
        .get_range(&path, len - tail_len..len)
        .await
        .map_err(storage)?;
    let corrupt = |reason: String| Error::CorruptObject {
        id: id.to_hex(),
        reason,
    };
    if tail.len() < 8 {
        return Err(corrupt("the chunk is shorter than a Parquet footer".into()));
    }
    let mut end = [0u8; 8];
    end.copy_from_slice(&tail[tail.len() - 8..]);
    let footer = FooterTail::try_new(&end).map_err(|e| corrupt(e.to_string()))?;
    let meta_len = footer.metadata_length() as u64;
    if meta_len + 8 > len {
        return Err(corrupt("its footer is longer than the chunk".into()));
    }
    let meta = if meta_len + 8 <= tail.len() as u64 {
        let start = tail.len() - 8 - meta_len as usize;
        tail.slice(start..tail.len() - 8)
    } else {
        store
            .get_range(&path, len - 8 - meta_len..len - 8)
            .await
            .map_err(storage)?
    };
    ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| corrupt(e.to_string()))
}

/// Each column's bounds and null count in one chunk, by field id.
fn chunk_stats(meta: &ParquetMetaData, schema: &Schema) -> BTreeMap<i32, ColumnStats> {
    let mut out = BTreeMap::new();
    let parquet_schema = meta.file_metadata().schema_descr();
    for (i, field) in schema.fields().iter().enumerate() {
        let id = i as i32 + 1;
        let Ok(conv) = StatisticsConverter::try_new(field.name(), schema, parquet_schema) else {
            continue;
        };
        let groups = meta.row_groups();
        let single = groups.len() == 1;
        let lower = conv
            .row_group_mins(groups.iter())
            .ok()
            .filter(|_| single)
            .and_then(|a| bound(&a, false));
        let upper = conv
            .row_group_maxes(groups.iter())
            .ok()
            .filter(|_| single)
            .and_then(|a| bound(&a, true));
        let nulls = conv
            .row_group_null_counts(groups.iter())
            .ok()
            .and_then(|a| (!a.is_empty() && a.null_count() == 0).then(|| a.values().iter().sum()));
        out.insert(
            id,
            ColumnStats {
                lower,
                upper,
                nulls,
            },
        );
    }
    out
}

const MANIFEST_SCHEMA: &str = r#"{"type":"record","name":"manifest_entry","fields":[
 {"name":"status","type":"int","field-id":0},
 {"name":"snapshot_id","type":["null","long"],"default":null,"field-id":1},
 {"name":"sequence_number","type":["null","long"],"default":null,"field-id":3},
 {"name":"file_sequence_number","type":["null","long"],"default":null,"field-id":4},
 {"name":"data_file","field-id":2,"type":{"type":"record","name":"r2","fields":[
  {"name":"content","type":"int","field-id":134},
  {"name":"file_path","type":"string","field-id":100},
  {"name":"file_format","type":"string","field-id":101},
  {"name":"partition","field-id":102,"type":{"type":"record","name":"r102","fields":[]}},
  {"name":"record_count","type":"long","field-id":103},
  {"name":"file_size_in_bytes","type":"long","field-id":104},
  {"name":"value_counts","default":null,"field-id":109,"type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k119_v120","fields":[{"name":"key","type":"int","field-id":119},{"name":"value","type":"long","field-id":120}]}}]},
  {"name":"null_value_counts","default":null,"field-id":110,"type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k121_v122","fields":[{"name":"key","type":"int","field-id":121},{"name":"value","type":"long","field-id":122}]}}]},
  {"name":"lower_bounds","default":null,"field-id":125,"type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k126_v127","fields":[{"name":"key","type":"int","field-id":126},{"name":"value","type":"bytes","field-id":127}]}}]},
  {"name":"upper_bounds","default":null,"field-id":128,"type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k129_v130","fields":[{"name":"key","type":"int","field-id":129},{"name":"value","type":"bytes","field-id":130}]}}]},
  {"name":"key_metadata","type":["null","bytes"],"default":null,"field-id":131},
  {"name":"split_offsets","default":null,"field-id":132,"type":["null",{"type":"array","items":"long","element-id":133}]},
  {"name":"sort_order_id","type":["null","int"],"default":null,"field-id":140}
 ]}}
]}"#;

const LIST_SCHEMA: &str = r#"{"type":"record","name":"manifest_file","fields":[
 {"name":"manifest_path","type":"string","field-id":500},
 {"name":"manifest_length","type":"long","field-id":501},
 {"name":"partition_spec_id","type":"int","field-id":502},
 {"name":"content","type":"int","field-id":517},
 {"name":"sequence_number","type":"long","field-id":515},
 {"name":"min_sequence_number","type":"long","field-id":516},
 {"name":"added_snapshot_id","type":"long","field-id":503},
 {"name":"added_files_count","type":"int","field-id":504},
 {"name":"existing_files_count","type":"int","field-id":505},
 {"name":"deleted_files_count","type":"int","field-id":506},
 {"name":"added_rows_count","type":"long","field-id":512},
 {"name":"existing_rows_count","type":"long","field-id":513},
 {"name":"deleted_rows_count","type":"long","field-id":514},
 {"name":"key_metadata","type":["null","bytes"],"default":null,"field-id":519}
]}"#;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A schema's text as file headers carry it (its JSON without whitespace). Strata's two
/// schemas are compacted once, not for every file written or read.
fn header_schema(text: &str) -> Result<std::borrow::Cow<'static, str>> {
    static KNOWN: std::sync::OnceLock<HashMap<&'static str, String>> = std::sync::OnceLock::new();
    let compact = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t)
            .map(|v| v.to_string())
            .map_err(|e| Error::Iceberg {
                what: "an Iceberg manifest file".into(),
                reason: format!("the Avro schema is not JSON: {e}"),
            })
    };
    let known = KNOWN.get_or_init(|| {
        [MANIFEST_SCHEMA, LIST_SCHEMA]
            .into_iter()
            .filter_map(|t| compact(t).ok().map(|c| (t, c)))
            .collect()
    });
    match known.get(text) {
        Some(c) => Ok(std::borrow::Cow::Borrowed(c.as_str())),
        None => compact(text).map(std::borrow::Cow::Owned),
    }
}

/// An Avro object container file of `count` records, encoded one after another in `records`
/// (see [`crate::avro`]). The header carries the schema text exactly as given: Iceberg readers
/// need its `field-id`, `element-id` and `logicalType: map` attributes.
/// A manifest of `count` encoded entries (`content`: "data" or "deletes") for the level-0
/// index node `node`, with the table's schema as JSON text.
fn manifest_file(
    schema_text: String,
    content: &str,
    count: usize,
    records: &[u8],
    node: &ObjectId,
) -> Result<Bytes> {
    avro_file(
        MANIFEST_SCHEMA,
        count,
        records,
        &[
            ("schema", schema_text),
            ("schema-id", "0".into()),
            ("partition-spec", "[]".into()),
            ("partition-spec-id", "0".into()),
            ("format-version", "2".into()),
            ("content", content.into()),
        ],
        marker_of(node),
    )
}

fn avro_file(
    schema_text: &str,
    count: usize,
    records: &[u8],
    metadata: &[(&str, String)],
    marker: [u8; 16],
) -> Result<Bytes> {
    let schema = header_schema(schema_text)?;
    let mut meta: Vec<(&str, &[u8])> = metadata.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    meta.push(("avro.schema", schema.as_bytes()));
    // Deflate, as other Iceberg writers use: some readers take a file that names no codec
    // for a compressed one.
    meta.push(("avro.codec", b"deflate"));
    meta.sort_by(|a, b| a.0.cmp(b.0));
    crate::avro::container(&meta, marker, count, records)
        .map(Bytes::from)
        .map_err(|e| Error::Iceberg {
            what: "an Iceberg manifest file".into(),
            reason: format!("an Avro file could not be written: {e}"),
        })
}

fn marker_of(id: &ObjectId) -> [u8; 16] {
    let mut m = [0u8; 16];
    m.copy_from_slice(&id.as_bytes()[..16]);
    m
}

/// The Iceberg snapshot id of a table object: its id's first eight bytes, made positive.
pub fn snapshot_id(table: &ObjectId) -> i64 {
    (table.prefix_u64() >> 1) as i64
}

/// Writes `bytes` at `path` unless something is there already (the same file, since its
/// name says what it describes at this location). Returns the bytes written (0 if none).
async fn create_file(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Bytes) -> Result<u64> {
    let n = bytes.len() as u64;
    match create(store, path, bytes).await? {
        Created::Created => Ok(n),
        Created::Unclear(e) => match head_opt(store, path).await? {
            Some(_) => Ok(0),
            None => Err(e),
        },
    }
}

/// Writes a manifest unless it exists; returns its length as stored and the bytes written (0
/// if none). Another writer may have stored it first (two tables of one commit may share a
/// node, and their manifests differ in the schema they carry): a list names the file as
/// stored.
async fn create_manifest(at: &Location, path: &Path, bytes: Bytes) -> Result<(i64, u64)> {
    let mut length = bytes.len() as i64;
    let n = create_file(at.store(), path, bytes).await?;
    if n == 0 {
        if let Some(meta) = head_opt(at.store(), path).await? {
            length = to_i64(meta.size);
        }
    }
    Ok((length, n))
}

/// Appends a manifest entry's `data_file` for one chunk, from its footer's statistics
/// (the record `r2` of [`MANIFEST_SCHEMA`]); with `deletes`, for a position-delete file.
fn encode_data_file(
    out: &mut Vec<u8>,
    uri: &str,
    rows: i64,
    bytes: u64,
    st: &BTreeMap<i32, ColumnStats>,
    deletes: bool,
) {
    use crate::avro::{bytes as avro_bytes, long};
    long(out, i64::from(deletes)); // content: data (0) or position deletes (1)
    avro_bytes(out, uri.as_bytes());
    avro_bytes(out, b"PARQUET");
    // partition: an empty record, no bytes.
    long(out, rows);
    long(out, to_i64(bytes));
    // Each map is the union's second branch, an array of (key, value) records: one block,
    // then the empty block that ends it.
    fn map<T>(out: &mut Vec<u8>, items: &[(i32, T)], value: impl Fn(&mut Vec<u8>, &T)) {
        long(out, 1);
        if !items.is_empty() {
            long(out, items.len() as i64);
            for (k, v) in items {
                long(out, i64::from(*k));
                value(out, v);
            }
        }
        long(out, 0);
    }
    let counts: Vec<(i32, i64)> = st.keys().map(|k| (*k, rows)).collect();
    map(out, &counts, |o, v| long(o, *v));
    let nulls: Vec<(i32, i64)> = st
        .iter()
        .filter_map(|(k, s)| s.nulls.map(|v| (*k, to_i64(v))))
        .collect();
    map(out, &nulls, |o, v| long(o, *v));
    for upper in [false, true] {
        let bounds: Vec<(i32, &[u8])> = st
            .iter()
            .filter_map(|(k, s)| {
                let b = if upper { &s.upper } else { &s.lower };
                b.as_deref().map(|v| (*k, v))
            })
            .collect();
        map(out, &bounds, |o, v| avro_bytes(o, v));
    }
    long(out, 0); // key_metadata: null
    long(out, 0); // split_offsets: null
    if deletes {
        long(out, 0); // sort_order_id: null (delete files are sorted by path and position)
    } else {
        long(out, 1); // sort_order_id: the key order
        long(out, KEY_ORDER_ID);
    }
}

/// Appends a manifest entry (`manifest_entry` of [`MANIFEST_SCHEMA`]) around an encoded
/// `data_file`: added, with the snapshot and sequence numbers inherited.
fn encode_entry(out: &mut Vec<u8>, data_file: &[u8]) {
    crate::avro::long(out, 1); // status: added
    crate::avro::long(out, 0); // snapshot_id: null
    crate::avro::long(out, 0); // sequence_number: null
    crate::avro::long(out, 0); // file_sequence_number: null
    out.extend_from_slice(data_file);
}

/// The encoded `data_file` of each entry of a manifest Strata wrote, by chunk URI, read
/// without decoding the values, so that they are copied into the next manifest as they are.
/// `None` when the file is not a manifest of [`MANIFEST_SCHEMA`]. Each comes with its
/// `record_count`.
fn data_files_of(file: &[u8]) -> Option<HashMap<String, (Vec<u8>, i64)>> {
    use crate::avro::Cursor;
    let (schema, data, count) = crate::avro::records(file)?;
    if schema != header_schema(MANIFEST_SCHEMA).ok()?.as_bytes() {
        return None;
    }
    fn long(c: &mut Cursor<'_>) -> Option<()> {
        c.long().map(|_| ())
    }
    fn bytes(c: &mut Cursor<'_>) -> Option<()> {
        c.bytes().map(|_| ())
    }
    fn union(c: &mut Cursor<'_>, value: impl Fn(&mut Cursor<'_>) -> Option<()>) -> Option<()> {
        match c.long()? {
            0 => Some(()),
            1 => value(c),
            _ => None,
        }
    }
    let mut c = Cursor::new(&data);
    let mut out = HashMap::with_capacity(count);
    for _ in 0..count {
        long(&mut c)?; // status
        for _ in 0..3 {
            union(&mut c, long)?; // snapshot and sequence numbers
        }
        let start = c.at;
        long(&mut c)?; // content
        let uri = std::str::from_utf8(c.bytes()?).ok()?.to_string();
        bytes(&mut c)?; // file_format
        let count = c.long()?; // record_count
        long(&mut c)?; // file_size_in_bytes
        for value_is_bytes in [false, false, true, true] {
            // value_counts, null_value_counts, lower_bounds, upper_bounds
            union(&mut c, |c| {
                c.skip_array(|c| {
                    long(c)?;
                    if value_is_bytes {
                        bytes(c)
                    } else {
                        long(c)
                    }
                })
            })?;
        }
        union(&mut c, bytes)?; // key_metadata
        union(&mut c, |c| c.skip_array(long))?; // split_offsets
        union(&mut c, long)?; // sort_order_id
        out.insert(uri, (data[start..c.at].to_vec(), count));
    }
    c.done().then_some(out)
}

/// Writes the manifests of one level-0 index node: its data manifest (every chunk, and every
/// delta that holds rows), and, when its chunks have deltas that replace or delete rows, the
/// manifest of their position deletes (written side by side with the data manifest; a data
/// manifest found present without it has it made again).
async fn write_manifest(
    at: &Location,
    source: &Objects,
    table: &str,
    schema: &TableSchema,
    node: &ObjectId,
    reuse: &HashMap<String, (Vec<u8>, i64)>,
) -> Result<(Vec<ManifestRef>, u64)> {
    let path = manifest_path(node);
    let (node_obj, existing) =
        futures::try_join!(tree::read_node(source, node), head_opt(at.store(), &path))?;
    let files: Vec<(ObjectId, u64)> = node_obj.entries.iter().flat_map(listed_files).collect();
    let rows: i64 = node_obj.entries.iter().map(|e| to_i64(e.rows)).sum();
    let has_deltas = node_obj.entries.iter().any(|e| e.delta.is_some());
    // One that exists (written for another version, or before an interruption) is not read
    // again: its counts are the node's.
    if let Some(meta) = existing {
        let mut out = vec![ManifestRef {
            path: at.uri_of(&path),
            length: to_i64(meta.size),
            files: files.len() as i32,
            rows,
            deletes: false,
        }];
        let mut written = 0;
        if has_deltas {
            let dpath = delete_manifest_path(node);
            let found = match get_opt(at.store(), &dpath).await? {
                Some(bytes) => {
                    let entries = data_files_of(&bytes).unwrap_or_default();
                    // A delete manifest is stored side by side with its files: one whose
                    // files are not all there (a write cut short) is made again.
                    all_present(at, entries.keys())
                        .await?
                        .then_some((bytes, entries))
                }
                None => None,
            };
            match found {
                Some((bytes, entries)) => {
                    out.push(ManifestRef {
                        path: at.uri_of(&dpath),
                        length: bytes.len() as i64,
                        files: entries.len() as i32,
                        rows: entries.values().map(|(_, n)| n).sum(),
                        deletes: true,
                    });
                }
                // The delete manifest is stored beside the data manifest, not before it: one
                // that a write cut short is made now (and none when the deltas only add rows).
                // The files that are there are kept.
                None => {
                    let (deletes, n) =
                        write_deletes(at, source, schema, node, &node_obj, reuse).await?;
                    out.extend(deletes);
                    written = n;
                }
            }
        }
        return Ok((out, written));
    }
    // The position deletes and the data manifest are made and stored side by side.
    let deletes = async {
        if has_deltas {
            write_deletes(at, source, schema, node, &node_obj, reuse).await
        } else {
            Ok((None, 0))
        }
    };
    let data = async {
        let (bytes, count) = data_manifest(at, source, table, schema, node, &files, reuse).await?;
        let (length, n) = create_manifest(at, &path, bytes).await?;
        Ok::<_, Error>((length, n, count))
    };
    let ((deletes, written), (length, n, count)) = futures::try_join!(deletes, data)?;
    let mut out = vec![ManifestRef {
        path: at.uri_of(&path),
        length,
        files: count,
        rows,
        deletes: false,
    }];
    out.extend(deletes);
    Ok((out, written + n))
}

/// The data manifest of a level-0 node whose chunk and delta files are `files`, and how many
/// files it names.
async fn data_manifest(
    at: &Location,
    source: &Objects,
    table: &str,
    schema: &TableSchema,
    node: &ObjectId,
    files: &[(ObjectId, u64)],
    reuse: &HashMap<String, (Vec<u8>, i64)>,
) -> Result<(Bytes, i32)> {
    let arrow = schema.arrow()?;
    // A chunk that an earlier manifest of this location describes is taken from it; only
    // the others' footers are read (after a one-row edit: the one or two new files).
    let stats: Vec<Option<(BTreeMap<i32, ColumnStats>, i64)>> = stream::iter(files.to_vec())
        .map(|(id, len)| {
            let arrow = arrow.clone();
            let known = reuse.contains_key(&at.uri_of(&layout::chunk(&id)));
            async move {
                if known {
                    return Ok(None);
                }
                let meta = read_footer(source, &id, len).await?;
                let rows = meta.file_metadata().num_rows();
                Ok::<_, Error>(Some((chunk_stats(&meta, &arrow), rows)))
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let schema_text = schema_json(table, schema)?.to_string();
    let mut records = Vec::with_capacity(files.len() * 256);
    let mut data_file = Vec::with_capacity(512);
    let mut count = 0i32;
    for ((id, len), st) in files.iter().zip(stats) {
        let uri = at.uri_of(&layout::chunk(id));
        match (st, reuse.get(&uri)) {
            (Some((st, n)), _) => {
                data_file.clear();
                encode_data_file(&mut data_file, &uri, n, *len, &st, false);
                encode_entry(&mut records, &data_file);
            }
            (None, Some((known, _))) => encode_entry(&mut records, known),
            (None, None) => continue,
        }
        count += 1;
    }
    let bytes = manifest_file(
        schema_text,
        "data",
        usize::try_from(count).unwrap_or(0),
        &records,
        node,
    )?;
    Ok((bytes, count))
}

/// The field ids Iceberg gives a position-delete file's columns.
const DELETE_FILE_PATH_ID: i32 = 2_147_483_546;
const DELETE_POS_ID: i32 = 2_147_483_545;

/// The data files a chunk entry lists in a view: its chunk, and its delta unless the delta
/// holds no rows (it only deletes some of the chunk's: its position deletes say which).
fn listed_files(e: &Entry) -> Vec<(ObjectId, u64)> {
    let mut files = e.files();
    if e.delta.is_some_and(|d| d.rows == 0) {
        files.truncate(1);
    }
    files
}

/// Writes the position-delete file of each chunk of `node_obj` whose delta replaces or
/// deletes rows of it (the positions of those rows in the chunk), and the manifest that names
/// them; `None` when no delta replaces or deletes a row (they only add rows).
async fn write_deletes(
    at: &Location,
    source: &Objects,
    schema: &TableSchema,
    node: &ObjectId,
    node_obj: &Node,
    reuse: &HashMap<String, (Vec<u8>, i64)>,
) -> Result<(Option<ManifestRef>, u64)> {
    let arrow = schema.arrow()?;
    let key_idx = schema.key_indices();
    let with_deltas: Vec<Entry> = node_obj
        .entries
        .iter()
        .filter(|e| e.delta.is_some())
        .cloned()
        .collect();
    // Each file's bytes and record first; then the files and the manifest that names them
    // are stored side by side (nothing names the manifest until the manifest list does, which
    // is written once all three kinds of files are stored; a data manifest found present
    // has its delete manifest's files checked, see `write_manifest`).
    let files: Vec<Option<DeleteFile>> = stream::iter(with_deltas)
        .map(|e| {
            let (arrow, key_idx) = (arrow.clone(), key_idx.clone());
            async move {
                let Some(d) = e.delta else {
                    return Ok(None);
                };
                let path = deletes_path(&d.id, &e.id);
                // A delete file an earlier manifest of this location names is taken as it is.
                if let Some((record, count)) = reuse.get(&at.uri_of(&path)) {
                    return Ok(Some(DeleteFile {
                        store: None,
                        positions: *count,
                        record: record.clone(),
                    }));
                }
                let positions = replaced_positions(source, &e, &arrow, &key_idx).await?;
                if positions.is_empty() {
                    return Ok(None);
                }
                let base = at.uri_of(&layout::chunk(&e.id));
                let bytes = position_deletes(&base, &positions)?;
                let len = bytes.len() as u64;
                let mut st = BTreeMap::new();
                st.insert(
                    DELETE_FILE_PATH_ID,
                    ColumnStats {
                        lower: Some(base.as_bytes().to_vec()),
                        upper: Some(base.as_bytes().to_vec()),
                        nulls: Some(0),
                    },
                );
                let (lo, hi) = (positions[0], positions[positions.len() - 1]);
                st.insert(
                    DELETE_POS_ID,
                    ColumnStats {
                        lower: Some(lo.to_le_bytes().to_vec()),
                        upper: Some(hi.to_le_bytes().to_vec()),
                        nulls: Some(0),
                    },
                );
                let mut record = Vec::with_capacity(256);
                encode_data_file(
                    &mut record,
                    &at.uri_of(&path),
                    positions.len() as i64,
                    len,
                    &st,
                    true,
                );
                Ok::<_, Error>(Some(DeleteFile {
                    store: Some((path, bytes)),
                    positions: positions.len() as i64,
                    record,
                }))
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut files: Vec<_> = files.into_iter().flatten().collect();
    if files.is_empty() {
        return Ok((None, 0));
    }
    let mut records = Vec::new();
    for f in &files {
        encode_entry(&mut records, &f.record);
    }
    let bytes = manifest_file(
        schema_json("", schema)?.to_string(),
        "deletes",
        files.len(),
        &records,
        node,
    )?;
    let path = delete_manifest_path(node);
    let stores: Vec<(Path, Bytes)> = files.iter_mut().filter_map(|f| f.store.take()).collect();
    let store_files = stream::iter(stores)
        .map(|(path, bytes)| async move { create_file(at.store(), &path, bytes).await })
        .buffer_unordered(READ_CONCURRENCY)
        .try_fold(0u64, |sum, n| async move { Ok(sum + n) });
    let (files_written, (length, n)) =
        futures::try_join!(store_files, create_manifest(at, &path, bytes))?;
    Ok((
        Some(ManifestRef {
            path: at.uri_of(&path),
            length,
            files: files.len() as i32,
            rows: files.iter().map(|f| f.positions).sum(),
            deletes: true,
        }),
        files_written + n,
    ))
}

/// Whether every file of this location that `uris` name is there.
async fn all_present<'a>(at: &Location, uris: impl Iterator<Item = &'a String>) -> Result<bool> {
    let prefix = format!("{}/", at.uri);
    let paths: Vec<Path> = uris
        .filter_map(|u| u.strip_prefix(&prefix))
        .map(Path::from)
        .collect();
    let found: Vec<bool> = stream::iter(paths)
        .map(|p| async move { Ok::<_, Error>(head_opt(at.store(), &p).await?.is_some()) })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().all(|f| f))
}

/// A position-delete file as its delete manifest names it.
struct DeleteFile {
    /// Where it is to be stored and its bytes (`None`: an earlier manifest names it).
    store: Option<(Path, Bytes)>,
    /// Rows it deletes.
    positions: i64,
    /// Its encoded `data_file` record.
    record: Vec<u8>,
}

/// How many deltas' positions [`remember_positions`] keeps (at most a quarter of a chunk's
/// rows each: 128 KiB at the largest chunks).
const REMEMBERED: usize = 64;

/// The positions of the chunk's rows that deltas replace or delete, as the edits that wrote
/// the deltas found them, by (delta, chunk, key columns: the same two files under another
/// primary key replace other rows): a commit in the same process lists a new delta's
/// position deletes without decoding its chunk again. Ids name contents, so an entry never
/// goes stale; the oldest are dropped.
static POSITIONS: std::sync::Mutex<std::collections::VecDeque<Remembered>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// (delta, chunk, key columns) and the chunk's positions the delta replaces or deletes.
type Remembered = ((ObjectId, ObjectId, Vec<usize>), Arc<Vec<i64>>);

/// Remembers the positions (ascending) of chunk `base`'s rows that `delta` replaces or
/// deletes, by the key columns `key_idx`.
pub(crate) fn remember_positions(
    delta: ObjectId,
    base: ObjectId,
    key_idx: &[usize],
    positions: Vec<i64>,
) {
    let Ok(mut memo) = POSITIONS.lock() else {
        return;
    };
    if memo
        .iter()
        .any(|((d, b, k), _)| (*d, *b) == (delta, base) && k == key_idx)
    {
        return;
    }
    if memo.len() >= REMEMBERED {
        memo.pop_front();
    }
    memo.push_back(((delta, base, key_idx.to_vec()), Arc::new(positions)));
}

fn remembered_positions(
    delta: ObjectId,
    base: ObjectId,
    key_idx: &[usize],
) -> Option<Arc<Vec<i64>>> {
    let memo = POSITIONS.lock().ok()?;
    memo.iter()
        .find(|((d, b, k), _)| (*d, *b) == (delta, base) && k == key_idx)
        .map(|(_, p)| p.clone())
}

/// The positions (0-based, ascending) of the rows of chunk entry `e` that its delta replaces
/// or deletes (`key_idx`: the key columns' positions in `arrow`).
async fn replaced_positions(
    source: &Objects,
    e: &Entry,
    arrow: &arrow_schema::SchemaRef,
    key_idx: &[usize],
) -> Result<Vec<i64>> {
    let remembered = e
        .delta
        .and_then(|d| remembered_positions(d.id, e.id, key_idx));
    // Builds with debug assertions (the tests) check the remembered positions against the
    // chunk's; others trust them.
    if let Some(p) = &remembered {
        if !cfg!(debug_assertions) {
            return Ok(p.to_vec());
        }
    }
    let decoded = decoded_positions(source, e, arrow, key_idx).await?;
    if let Some(p) = remembered {
        assert_eq!(
            *p, decoded,
            "the positions an edit remembered for chunk {} differ from its delta's",
            e.id
        );
    }
    Ok(decoded)
}

/// The positions of the chunk's rows its delta replaces or deletes, from the two files.
async fn decoded_positions(
    source: &Objects,
    e: &Entry,
    arrow: &arrow_schema::SchemaRef,
    key_idx: &[usize],
) -> Result<Vec<i64>> {
    let (id, entry_delta) = (e.id, e.delta);
    let (arrow, key_idx) = (arrow.clone(), key_idx.to_vec());
    crate::table::read_entry(source, e, move |bytes, delta| {
        let (Some(d), Some(delta)) = (entry_delta, delta) else {
            return Ok(Vec::new());
        };
        let keys_of = |id: &ObjectId, bytes: Bytes| -> Result<crate::key::Keys> {
            let batch = crate::chunk::decode_chunk_columns(id, bytes, &arrow, Some(&key_idx))?;
            let at: Vec<usize> = (0..key_idx.len()).collect();
            crate::key::encode_keys(&batch, &at)?.map_err(|_| Error::CorruptObject {
                id: id.to_hex(),
                reason: "a key column holds a null".into(),
            })
        };
        // The chunk's rows the delta replaces (its rows' keys) or deletes (its footer's).
        let deleted = crate::table::deleted_keys(&d, &delta)?;
        let (base, delta) = (keys_of(&id, bytes)?, keys_of(&d.id, delta)?);
        let mut out = Vec::new();
        let (mut j, mut k) = (0, 0);
        for i in 0..base.len() {
            let key = base.get(i);
            while j < delta.len() && delta.get(j) < key {
                j += 1;
            }
            while k < deleted.len() && deleted.get(k) < key {
                k += 1;
            }
            let replaced = j < delta.len() && delta.get(j) == key;
            if replaced || (k < deleted.len() && deleted.get(k) == key) {
                out.push(i as i64);
            }
        }
        Ok(out)
    })
    .await
}

/// An Iceberg position-delete file: `positions` of the data file `uri`.
fn position_deletes(uri: &str, positions: &[i64]) -> Result<Bytes> {
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::Field;
    let field = |name: &str, dt: DataType, id: i32| {
        Field::new(name, dt, false).with_metadata(HashMap::from([(
            "PARQUET:field_id".to_string(),
            id.to_string(),
        )]))
    };
    let schema = Arc::new(Schema::new(vec![
        field("file_path", DataType::Utf8, DELETE_FILE_PATH_ID),
        field("pos", DataType::Int64, DELETE_POS_ID),
    ]));
    let err = |e: String| Error::Iceberg {
        what: format!("the position deletes of {uri}"),
        reason: e,
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![uri; positions.len()])),
            Arc::new(Int64Array::from(positions.to_vec())),
        ],
    )
    .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)
        .map_err(|e| err(e.to_string()))?;
    writer.write(&batch).map_err(|e| err(e.to_string()))?;
    writer.close().map_err(|e| err(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// The manifests a list names, by manifest URI (to reuse them for a list of a later version).
fn read_list(bytes: &[u8]) -> Option<HashMap<String, ManifestRef>> {
    let reader = apache_avro::Reader::new(bytes).ok()?;
    let mut out = HashMap::new();
    for value in reader {
        let Ok(Value::Record(fields)) = value else {
            return None;
        };
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let (
            Some(Value::String(path)),
            Some(Value::Long(length)),
            Some(Value::Int(files)),
            Some(Value::Long(rows)),
            Some(Value::Int(content)),
        ) = (
            field("manifest_path"),
            field("manifest_length"),
            field("added_files_count"),
            field("added_rows_count"),
            field("content"),
        )
        else {
            return None;
        };
        out.insert(
            path.clone(),
            ManifestRef {
                path: path.clone(),
                length: *length,
                files: *files,
                rows: *rows,
                deletes: *content == 1,
            },
        );
    }
    Some(out)
}

/// The manifest entries of the base version's manifests that the new version does not share
/// (the nodes an edit replaced), by chunk URI: the new manifests take the entries of the
/// chunks they kept from there instead of reading those chunks' footers again. A manifest
/// that cannot be read only costs those reads.
async fn replaced_entries(
    at: &Location,
    known: &HashMap<String, ManifestRef>,
    nodes: &[ObjectId],
) -> HashMap<String, (Vec<u8>, i64)> {
    let current: std::collections::HashSet<String> = nodes
        .iter()
        .flat_map(|n| [manifest_path(n), delete_manifest_path(n)])
        .map(|p| at.uri_of(&p))
        .collect();
    let prefix = format!("{}/", at.uri);
    let mut out = HashMap::new();
    for uri in known.keys().filter(|u| !current.contains(*u)) {
        let Some(key) = uri.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(Some(bytes)) = get_opt(at.store(), &Path::from(key)).await else {
            continue;
        };
        if let Some(entries) = data_files_of(&bytes) {
            out.extend(entries);
        }
    }
    out
}

/// The level-0 nodes of a table's index, in key order.
async fn level0_nodes(source: &Objects, root: &ObjectId) -> Result<Vec<ObjectId>> {
    let top = tree::read_node(source, root).await?;
    if top.level == 0 {
        return Ok(vec![*root]);
    }
    let mut level = top.level;
    let mut ids: Vec<ObjectId> = top.entries.iter().map(|e| e.id).collect();
    while level > 1 {
        let nodes: Vec<Node> = stream::iter(ids)
            .map(|id| async move { tree::read_node(source, &id).await })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        ids = nodes
            .into_iter()
            .flat_map(|n| n.entries.into_iter().map(|e| e.id))
            .collect();
        level -= 1;
    }
    Ok(ids)
}

/// Writes the manifest list of a table object (and the manifests it needs) unless it exists.
/// `base` is an earlier version of the table whose list may exist here: the manifests they
/// share are taken from it instead of being looked up one by one.
async fn write_list(
    at: &Location,
    source: &Objects,
    name: &str,
    id: &ObjectId,
    table: &TableObject,
    base: Option<&ObjectId>,
    written: &mut (u64, u64),
) -> Result<()> {
    let path = list_path(id);
    if head_opt(at.store(), &path).await?.is_some() {
        return Ok(());
    }
    let base_list = async {
        match base.filter(|b| *b != id) {
            Some(base) => get_opt(at.store(), &list_path(base)).await,
            None => Ok(None),
        }
    };
    let (base_list, nodes) = futures::try_join!(base_list, level0_nodes(source, &table.index))?;
    let known = base_list
        .and_then(|bytes| read_list(&bytes))
        .unwrap_or_default();
    let reuse = replaced_entries(at, &known, &nodes).await;
    let mut manifests = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let uri = at.uri_of(&manifest_path(node));
        if let Some(m) = known.get(&uri) {
            manifests.push(m.clone());
            // A node's delete manifest goes with its data manifest.
            if let Some(d) = known.get(&at.uri_of(&delete_manifest_path(node))) {
                manifests.push(d.clone());
            }
            continue;
        }
        let (m, n) = write_manifest(at, source, name, &table.schema, node, &reuse).await?;
        if n > 0 {
            written.0 += m.len() as u64;
            written.1 += n;
        }
        manifests.extend(m);
    }
    let snapshot = snapshot_id(id);
    let mut records = Vec::with_capacity(manifests.len() * 128);
    for m in &manifests {
        use crate::avro::{bytes as avro_bytes, long};
        avro_bytes(&mut records, m.path.as_bytes());
        long(&mut records, m.length);
        long(&mut records, 0); // partition_spec_id
        long(&mut records, i64::from(m.deletes)); // content: data (0) or deletes (1)
        long(&mut records, 1); // sequence_number
        long(&mut records, 1); // min_sequence_number
        long(&mut records, snapshot); // added_snapshot_id
        long(&mut records, i64::from(m.files)); // added_files_count
        long(&mut records, 0); // existing_files_count
        long(&mut records, 0); // deleted_files_count
        long(&mut records, m.rows); // added_rows_count
        long(&mut records, 0); // existing_rows_count
        long(&mut records, 0); // deleted_rows_count
        long(&mut records, 0); // key_metadata: null
    }
    let bytes = avro_file(
        LIST_SCHEMA,
        manifests.len(),
        &records,
        &[
            ("snapshot-id", snapshot.to_string()),
            ("parent-snapshot-id", "null".into()),
            ("sequence-number", "1".into()),
            ("format-version", "2".into()),
        ],
        marker_of(id),
    )?;
    let n = create_file(at.store(), &path, bytes).await?;
    if n > 0 {
        written.0 += 1;
        written.1 += n;
    }
    Ok(())
}

/// The `metadata.json` of `table` (object `id`) at record `seq` of a ref.
fn metadata_json(
    at: &Location,
    ref_name: &RefName,
    seq: u64,
    name: &str,
    id: &ObjectId,
    table: &TableObject,
    time: i64,
) -> Result<serde_json::Value> {
    let schema = schema_json(name, &table.schema)?;
    let snapshot = snapshot_id(id);
    let ms = time.saturating_mul(1000);
    let mapping: Vec<serde_json::Value> = table
        .schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"field-id": i + 1, "names": [c.name]}))
        .collect();
    let key_order: Vec<serde_json::Value> = table
        .schema
        .key_indices()
        .iter()
        .map(|i| {
            json!({"transform": "identity", "source-id": i + 1, "direction": "asc",
                   "null-order": "nulls-first"})
        })
        .collect();
    let hash = blake3::hash(format!("{ref_name}\n{name}").as_bytes());
    let mut uuid_bytes = [0u8; 16];
    uuid_bytes.copy_from_slice(&hash.as_bytes()[..16]);
    let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
    let location = at.uri_of(&table_dir(ref_name.kind, &ref_name.name, name));
    Ok(json!({
        "format-version": 2,
        "table-uuid": uuid.to_string(),
        "location": location,
        "last-sequence-number": 1,
        "last-updated-ms": ms,
        "last-column-id": table.schema.columns.len(),
        "current-schema-id": 0,
        "schemas": [schema],
        "default-spec-id": 0,
        "partition-specs": [{"spec-id": 0, "fields": []}],
        "last-partition-id": 999,
        "default-sort-order-id": KEY_ORDER_ID,
        "sort-orders": [{"order-id": 0, "fields": []},
                        {"order-id": KEY_ORDER_ID, "fields": key_order}],
        "properties": {
            "schema.name-mapping.default": serde_json::Value::Array(mapping).to_string(),
            "strata.ref": ref_name.to_string(),
            "strata.ref-record": seq.to_string(),
            "strata.table-object": id.to_hex(),
        },
        "current-snapshot-id": snapshot,
        "refs": {"main": {"snapshot-id": snapshot, "type": "branch"}},
        "snapshots": [{
            "snapshot-id": snapshot,
            "sequence-number": 1,
            "timestamp-ms": ms,
            "manifest-list": at.uri_of(&list_path(id)),
            "summary": {"operation": "append",
                        "total-records": table.rows.to_string(),
                        "total-files-size": table.bytes.to_string()},
            "schema-id": 0
        }],
        "snapshot-log": [{"snapshot-id": snapshot, "timestamp-ms": ms}],
        "metadata-log": []
    }))
}

/// The table object of the version a view's hint names, if it names a readable one.
async fn hinted_table(at: &Location, ref_name: &RefName, table: &str) -> Option<ObjectId> {
    let (kind, name) = (ref_name.kind, ref_name.name.as_str());
    let seq = read_hint(at.store(), &hint_path(kind, name, table))
        .await
        .ok()??;
    let bytes = get_opt(at.store(), &metadata_path(kind, name, table, seq))
        .await
        .ok()??;
    let meta: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    meta["properties"]["strata.table-object"]
        .as_str()?
        .parse()
        .ok()
}

/// The record number `version-hint.text` names, if it names one.
async fn read_hint(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<u64>> {
    Ok(get_opt(store, path)
        .await?
        .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok()))
}

/// Writes the manifests and manifest lists of the tables in `tables` that differ from
/// `base` (the same names in the version they replace, whose lists serve as bases): the
/// files a view of them will name, before any ref holds them. Publishing such a version
/// then writes only its metadata. Nothing names these files until then.
pub async fn prepare(
    at: &Location,
    source: &Objects,
    tables: &BTreeMap<String, ObjectId>,
    base: &BTreeMap<String, ObjectId>,
) -> Result<()> {
    let changed: Vec<(String, ObjectId, Option<ObjectId>)> = tables
        .iter()
        .filter(|(name, id)| base.get(*name) != Some(*id))
        .map(|(name, id)| (name.clone(), *id, base.get(name).copied()))
        .collect();
    stream::iter(changed)
        .map(|(name, id, base)| async move {
            let table = TableObject::read(source, &id).await?;
            let mut written = (0, 0);
            write_list(at, source, &name, &id, &table, base.as_ref(), &mut written).await
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Publishes the Iceberg view of every table of `commit` at record `seq` of `ref_name`, at
/// location `at`; objects (tables, nodes, chunk footers) are read from `source`, which holds
/// them all (the repository itself, or the local repository when publishing on a remote).
/// `previous` is the commit the ref held before: its tables' lists serve as bases, and the
/// views of tables it had that `commit` lacks are withdrawn. A deleted ref (`commit: None`)
/// withdraws every view. Every file is written before `version-hint.text` names it.
pub async fn publish(
    at: &Location,
    source: &Objects,
    ref_name: &RefName,
    seq: u64,
    previous: Option<ObjectId>,
    commit: Option<ObjectId>,
) -> Result<Vec<View>> {
    let old_tables = async {
        Ok::<_, Error>(match previous {
            Some(c) => read_commit(source, &c).await?.tables,
            None => BTreeMap::new(),
        })
    };
    let new_tables = async {
        Ok::<_, Error>(match commit {
            Some(c) => {
                let commit = read_commit(source, &c).await?;
                (commit.tables, commit.time)
            }
            None => (BTreeMap::new(), 0),
        })
    };
    let (old_tables, (new_tables, time)) = futures::try_join!(old_tables, new_tables)?;
    let todo: Vec<(String, ObjectId, Option<ObjectId>)> = new_tables
        .iter()
        .map(|(name, id)| (name.clone(), *id, old_tables.get(name).copied()))
        .collect();
    let views: Vec<View> = stream::iter(todo)
        .map(|(name, id, old)| async move {
            // Without the ref's previous value, the version the hint names serves as the
            // base.
            let base = match old {
                Some(b) => Some(b),
                None => hinted_table(at, ref_name, &name).await,
            };
            publish_table(at, source, ref_name, seq, &name, &id, base.as_ref(), time).await
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    for name in old_tables.keys().filter(|n| !new_tables.contains_key(*n)) {
        delete_opt(at.store(), &hint_path(ref_name.kind, &ref_name.name, name)).await?;
    }
    Ok(views)
}

async fn read_commit(source: &Objects, id: &ObjectId) -> Result<Commit> {
    Commit::read(source, id).await
}

#[allow(clippy::too_many_arguments)]
async fn publish_table(
    at: &Location,
    source: &Objects,
    ref_name: &RefName,
    seq: u64,
    name: &str,
    id: &ObjectId,
    base: Option<&ObjectId>,
    time: i64,
) -> Result<View> {
    let (kind, rname) = (ref_name.kind, ref_name.name.as_str());
    let meta_path = metadata_path(kind, rname, name, seq);
    let mut written = (0u64, 0u64);
    let hint = hint_path(kind, rname, name);
    // The table object (needed unless the metadata file exists) and the hint are read
    // alongside.
    let (existing, table, hinted) = futures::join!(
        head_opt(at.store(), &meta_path),
        TableObject::read(source, id),
        read_hint(at.store(), &hint)
    );
    if existing?.is_none() {
        let table = table?;
        write_list(at, source, name, id, &table, base, &mut written).await?;
        let json = metadata_json(at, ref_name, seq, name, id, &table, time)?;
        let bytes = Bytes::from(
            serde_json::to_vec_pretty(&json).map_err(|e| Error::Iceberg {
                what: format!("the Iceberg view of table '{name}'"),
                reason: format!("its metadata does not encode: {e}"),
            })?,
        );
        let n = create_file(at.store(), &meta_path, bytes).await?;
        if n > 0 {
            written.0 += 1;
            written.1 += n;
        }
    }
    // The hint only moves forward: a slower writer of an older record leaves it alone. It
    // is advisory, like a ref's `latest`: `strata iceberg` always reads the ref itself.
    if hinted?.is_none_or(|h| h < seq) {
        put(at.store(), &hint, Bytes::from(seq.to_string())).await?;
    }
    Ok(View {
        table: name.to_string(),
        location: at.uri_of(&table_dir(kind, rname, name)),
        metadata: at.uri_of(&meta_path),
        version: seq,
        files_written: written.0,
        bytes_written: written.1,
    })
}

/// One chunk of a table as other engines may read it: where it is, its rows and bytes, and
/// the lowest and highest value of each key column in its file (as text; a row its delta
/// deletes may be one of them). A chunk with a delta names it: its rows are the chunk's, each
/// replaced by the delta's row with its key, plus the delta's other rows, less the rows whose
/// keys the delta's footer lists as deleted (`rows` counts the rows read together, `bytes`
/// both files).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataFile {
    pub uri: String,
    pub rows: u64,
    pub bytes: u64,
    pub key_min: Vec<String>,
    pub key_max: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

/// The chunks of `table` at location `at`, in key order, with their key columns' bounds from
/// each chunk's footer (read from `source`).
pub async fn data_files(
    at: &Location,
    source: &Objects,
    table: &TableObject,
) -> Result<Vec<DataFile>> {
    let arrow = table.schema.arrow()?;
    let keys = table.schema.primary_key.clone();
    let entries = table.chunks(source).await?;
    stream::iter(entries)
        .map(|e| {
            let (arrow, keys) = (arrow.clone(), keys.clone());
            async move {
                let mut metas = Vec::new();
                for (id, len) in e.files() {
                    metas.push((id, read_footer(source, &id, len).await?));
                }
                let (mut key_min, mut key_max) = (Vec::new(), Vec::new());
                for k in &keys {
                    let (mut mins, mut maxes) = (Vec::new(), Vec::new());
                    for (id, meta) in &metas {
                        let parquet_schema = meta.file_metadata().schema_descr();
                        let conv = StatisticsConverter::try_new(k, &arrow, parquet_schema)
                            .map_err(|err| Error::CorruptObject {
                                id: id.to_hex(),
                                reason: err.to_string(),
                            })?;
                        mins.extend(conv.row_group_mins(meta.row_groups().iter()).ok());
                        maxes.extend(conv.row_group_maxes(meta.row_groups().iter()).ok());
                    }
                    key_min.push(extreme(&mins, false));
                    key_max.push(extreme(&maxes, true));
                }
                Ok::<_, Error>(DataFile {
                    uri: at.uri_of(&layout::chunk(&e.id)),
                    rows: e.rows,
                    bytes: e.bytes,
                    key_min,
                    key_max,
                    delta: e.delta.map(|d| at.uri_of(&layout::chunk(&d.id))),
                })
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

/// The lowest (or, with `highest`, the highest) non-null value of `arrays` as text; empty
/// when there is none.
fn extreme(arrays: &[ArrayRef], highest: bool) -> String {
    let parts: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref() as &dyn Array).collect();
    let Ok(all) = arrow_select::concat::concat(&parts) else {
        return String::new();
    };
    let opts = arrow_schema::SortOptions {
        descending: highest,
        nulls_first: false,
    };
    arrow_ord::sort::sort_to_indices(&all, Some(opts), Some(1))
        .ok()
        .and_then(|idx| {
            let i = idx.values().first().copied()? as usize;
            (!all.is_null(i)).then(|| arrow_cast::display::array_value_to_string(&all, i).ok())?
        })
        .unwrap_or_default()
}

/// A view: its ref's kind and name, and its table.
type ViewKey = (RefKind, String, String);

/// Removes the Iceberg files that nothing needs any more, after a collection swept
/// `garbage` from `objects`' store: the manifests and lists of swept objects, every version
/// of a view older than its ref's current record except the one `version-hint.text` names,
/// and the views of deleted refs and of tables their ref no longer holds. Refs are read after
/// the listing, so a view a push publishes meanwhile (a newer record) is never removed.
/// Returns how many files were removed.
pub async fn collect(
    objects: &Objects,
    refs: &crate::store::RefLog,
    garbage: &BTreeMap<(ObjectKind, ObjectId), u64>,
) -> Result<u64> {
    let store = objects.store();
    let listed = crate::store::list_all(store, &Path::from(DIR)).await?;
    let mut doomed: Vec<Path> = Vec::new();
    // (kind, ref, table) -> version files
    let mut views: BTreeMap<ViewKey, Vec<(Option<u64>, Path)>> = BTreeMap::new();
    for m in listed {
        if let Some((kind, id)) = derived_from(&m.location) {
            if garbage.contains_key(&(kind, id)) {
                doomed.push(m.location);
            }
            continue;
        }
        let parts: Vec<&str> = m.location.as_ref().split('/').collect();
        let [_, dir, name, table, "metadata", file] = parts[..] else {
            continue;
        };
        let kind = match dir {
            "heads" => RefKind::Branch,
            "tags" => RefKind::Tag,
            _ => continue,
        };
        let seq = file
            .strip_prefix('v')
            .and_then(|f| f.strip_suffix(".metadata.json"))
            .and_then(|n| n.parse().ok());
        views
            .entry((kind, name.to_string(), table.to_string()))
            .or_default()
            .push((seq, m.location));
    }
    for ((kind, name, table), files) in views {
        let Ok(ref_name) = RefName::new(kind, &name) else {
            continue;
        };
        let state = refs.read(&ref_name).await?;
        let held = match state.commit() {
            Some(c) => match Commit::read(objects, &c).await {
                Ok(commit) => commit.tables.contains_key(&table),
                Err(_) => true,
            },
            None => false,
        };
        let hint = read_hint(store, &hint_path(kind, &name, &table)).await?;
        for (seq, path) in files {
            match seq {
                Some(n) if n < state.seq && (Some(n) != hint || !held) => doomed.push(path),
                None if !held && hint.is_some_and(|h| h <= state.seq) => doomed.push(path),
                _ => {}
            }
        }
    }
    let n = doomed.len() as u64;
    stream::iter(doomed)
        .map(|p| async move { delete_opt(store, &p).await })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(n)
}

/// Whether a key of a location belongs to the Iceberg views.
pub fn is_iceberg_key(path: &Path) -> bool {
    path.as_ref().starts_with("iceberg/")
}

/// The object an Iceberg file is derived from (a manifest's node, a list's table), if it is
/// such a file.
pub fn derived_from(path: &Path) -> Option<(ObjectKind, ObjectId)> {
    let s = path.as_ref();
    if let Some(rest) = s.strip_prefix("iceberg/deletes/") {
        // A position-delete file goes with the delta it is made for.
        let (dir, rest) = rest.split_once('/')?;
        let (file, _) = rest.split_once('.')?;
        return format!("{dir}{file}")
            .parse::<ObjectId>()
            .ok()
            .map(|id| (ObjectKind::Chunk, id));
    }
    let rest = s
        .strip_prefix("iceberg/manifests/")
        .or_else(|| s.strip_prefix("iceberg/delete-manifests/"))
        .or_else(|| s.strip_prefix("iceberg/lists/"))?;
    let (dir, file) = rest.split_once('/')?;
    let hex = format!("{dir}{}", file.strip_suffix(".avro")?);
    hex.parse::<ObjectId>()
        .ok()
        .map(|id| (ObjectKind::Meta, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema as AvroSchema;

    fn avro_schema(json: &str) -> Result<AvroSchema> {
        AvroSchema::parse_str(json).map_err(|e| Error::Iceberg {
            what: "an Iceberg manifest file".into(),
            reason: format!("the Avro schema does not parse: {e}"),
        })
    }

    fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
        match record {
            Value::Record(fields) => &fields.iter().find(|(n, _)| n == name).expect(name).1,
            other => panic!("not a record: {other:?}"),
        }
    }

    fn map_keys(v: &Value) -> Vec<i32> {
        match v {
            Value::Union(1, inner) => match inner.as_ref() {
                Value::Array(items) => items
                    .iter()
                    .map(|i| match field(i, "key") {
                        Value::Int(k) => *k,
                        other => panic!("not an int key: {other:?}"),
                    })
                    .collect(),
                other => panic!("not an array: {other:?}"),
            },
            other => panic!("not a map: {other:?}"),
        }
    }

    /// Two tables of one commit may share an index node (every empty table has the same
    /// one) while their manifests differ (each carries its table's schema): whichever table
    /// stores the shared manifest second still gives its list the size of the file stored.
    #[tokio::test]
    async fn tables_sharing_a_node_name_the_manifest_by_its_stored_size() {
        use crate::schema::{ColumnDef, TableSchema};
        use crate::tree::store_order::Recording;
        // The shared manifest's puts are slow, so that both tables find it missing and both
        // store it.
        let empty_node = crate::tree::build(Vec::new(), &std::collections::HashSet::new())
            .expect("tree")
            .root;
        let recording = std::sync::Arc::new(Recording {
            inner: object_store::memory::InMemory::new(),
            slow: std::sync::Mutex::new([manifest_path(&empty_node).to_string()].into()),
            done: std::sync::Mutex::new(Vec::new()),
        });
        let objects = Objects::new(recording.clone(), "memory");
        let at = Location::new(objects.clone(), "memory:///r");
        let empty = crate::tree::store(
            &objects,
            crate::tree::build(Vec::new(), &std::collections::HashSet::new()).expect("tree"),
        )
        .await
        .expect("index");
        let mut tables = BTreeMap::new();
        for (name, extra) in [("a", "x"), ("b", "a_much_longer_column_name")] {
            let schema = TableSchema {
                columns: vec![
                    ColumnDef {
                        name: "id".into(),
                        data_type: "int64".into(),
                        nullable: false,
                    },
                    ColumnDef {
                        name: extra.into(),
                        data_type: "utf8".into(),
                        nullable: true,
                    },
                ],
                primary_key: vec!["id".into()],
            };
            let table = TableObject {
                format: crate::table::TABLE_FORMAT,
                kind: "table".into(),
                schema,
                chunking: crate::chunk::ChunkParams::default(),
                index: empty,
                rows: 0,
                bytes: 0,
                chunks: Some(0),
            };
            tables.insert(
                name.to_string(),
                objects.put_json(&table).await.expect("table"),
            );
        }
        prepare(&at, &objects, &tables, &BTreeMap::new())
            .await
            .expect("prepare");
        let stored = head_opt(at.store(), &manifest_path(&empty))
            .await
            .expect("head")
            .expect("the shared manifest is stored");
        let stores = recording.done.lock().expect("log").clone();
        assert_eq!(
            stores
                .iter()
                .filter(|k| **k == manifest_path(&empty).to_string())
                .count(),
            2,
            "both tables stored the shared manifest: {stores:?}"
        );
        for (name, id) in &tables {
            let list = get_opt(at.store(), &list_path(id))
                .await
                .expect("get")
                .expect("the list is stored");
            let named = read_list(&list).expect("the list reads");
            let lengths: Vec<i64> = named.values().map(|m| m.length).collect();
            assert_eq!(lengths, vec![to_i64(stored.size)], "table {name}");
        }
    }

    #[test]
    fn manifests_encoded_here_read_as_avro_and_their_entries_copy_whole() {
        let mut st = BTreeMap::new();
        st.insert(
            1,
            ColumnStats {
                lower: Some(1i64.to_le_bytes().to_vec()),
                upper: Some(9i64.to_le_bytes().to_vec()),
                nulls: Some(0),
            },
        );
        st.insert(
            2,
            ColumnStats {
                lower: Some(b"a".to_vec()),
                upper: None,
                nulls: None,
            },
        );
        let uris = [
            "file:///r/chunks/aa/1.parquet",
            "file:///r/chunks/bb/2.parquet",
        ];
        let mut records = Vec::new();
        for (i, uri) in uris.iter().enumerate() {
            let mut df = Vec::new();
            encode_data_file(&mut df, uri, 10 + i as i64, 1000, &st, false);
            encode_entry(&mut records, &df);
        }
        let file = avro_file(
            MANIFEST_SCHEMA,
            2,
            &records,
            &[("format-version", "2".into())],
            [3; 16],
        )
        .expect("written");
        let schema = avro_schema(MANIFEST_SCHEMA).expect("parses");
        let values: Vec<Value> = apache_avro::Reader::new(&file[..])
            .expect("an Avro file")
            .map(|v| v.expect("a record"))
            .collect();
        assert_eq!(values.len(), 2);
        for v in &values {
            assert!(v.validate(&schema), "{v:?}");
        }
        assert_eq!(field(&values[0], "status"), &Value::Int(1));
        let df = field(&values[1], "data_file");
        assert_eq!(field(df, "file_path"), &Value::String(uris[1].into()));
        assert_eq!(field(df, "record_count"), &Value::Long(11));
        assert_eq!(field(df, "file_size_in_bytes"), &Value::Long(1000));
        assert_eq!(map_keys(field(df, "value_counts")), vec![1, 2]);
        assert_eq!(map_keys(field(df, "null_value_counts")), vec![1]);
        assert_eq!(map_keys(field(df, "lower_bounds")), vec![1, 2]);
        assert_eq!(map_keys(field(df, "upper_bounds")), vec![1]);
        assert_eq!(
            field(df, "sort_order_id"),
            &Value::Union(1, Box::new(Value::Int(1)))
        );
        // The entries read back for the next manifest are the bytes written.
        let raw = data_files_of(&file).expect("a manifest of ours");
        let mut again = Vec::new();
        for uri in uris {
            encode_entry(&mut again, &raw[uri].0);
        }
        assert_eq!(again, records);
        // Anything else is not taken for one.
        assert!(data_files_of(&file[..file.len() - 3]).is_none());
        let list = avro_file(LIST_SCHEMA, 0, &[], &[], [3; 16]).expect("written");
        assert!(data_files_of(&list).is_none());
    }

    #[test]
    fn decimals_take_the_fewest_bytes_that_keep_their_sign() {
        assert_eq!(decimal_bytes(0), vec![0x00]);
        assert_eq!(decimal_bytes(127), vec![0x7F]);
        assert_eq!(decimal_bytes(128), vec![0x00, 0x80]);
        assert_eq!(decimal_bytes(-1), vec![0xFF]);
        assert_eq!(decimal_bytes(-129), vec![0xFF, 0x7F]);
        assert_eq!(decimal_bytes(1234), vec![0x04, 0xD2]);
    }

    #[test]
    fn the_avro_schemas_parse_and_keep_their_field_ids() {
        for text in [MANIFEST_SCHEMA, LIST_SCHEMA] {
            let schema = avro_schema(text).expect("parses");
            let written = serde_json::to_string(&schema).expect("serializes");
            assert!(written.contains("\"field-id\""), "{written}");
        }
    }

    #[test]
    fn every_strata_type_has_an_iceberg_type() {
        for name in [
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float32",
            "float64",
            "bool",
            "utf8",
            "binary",
            "date32",
            "timestamp[s]",
            "timestamp[ns, UTC]",
            "decimal128(10, 2)",
        ] {
            let dt = parse_type(name).expect("a Strata type");
            assert!(iceberg_type(&dt).is_some(), "{name}");
        }
    }

    #[test]
    fn derived_files_name_their_object() {
        let id = ObjectId::of(b"x");
        assert_eq!(
            derived_from(&manifest_path(&id)),
            Some((ObjectKind::Meta, id))
        );
        assert_eq!(derived_from(&list_path(&id)), Some((ObjectKind::Meta, id)));
        assert_eq!(
            derived_from(&delete_manifest_path(&id)),
            Some((ObjectKind::Meta, id))
        );
        // A position-delete file goes with its delta, not with the chunk it names.
        let base = ObjectId::of(b"base");
        assert_eq!(
            derived_from(&deletes_path(&id, &base)),
            Some((ObjectKind::Chunk, id))
        );
        assert_eq!(
            derived_from(&Path::from(
                "iceberg/heads/main/t/metadata/v1.metadata.json"
            )),
            None
        );
    }
}
