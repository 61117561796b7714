//! Rows in and out as Arrow: scan any revision of a table (columns and key ranges chosen, only
//! the chunks those keys reach read), write batches from any reader, delete by key. Files are
//! one adapter on top (import and export).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::{ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use strata_engine::edit::{EditSummary, ImportOptions as EngineImport};
use strata_engine::export::Destination;
use strata_engine::import::Input;
use strata_engine::schema::ColumnDef;
use strata_engine::store::Objects;
use strata_engine::table::{scan_spec, ScanSpec};
use strata_engine::{ChunkParams, ObjectId, Progress, TableObject};

use crate::error::{Error, Result};
use crate::repository::Repository;

pub use strata_engine::alter::SchemaChange;
pub use strata_engine::edit::ImportMode as WriteMode;
pub use strata_engine::export::{delimiter_from_path, ExportFormat, ExportOptions};
pub use strata_engine::import::Compression;
pub use strata_engine::import::Format as FileFormat;

/// One value of a key column, in a key range. It is converted to the column's type (text to a
/// date, timestamp or decimal, say); a value that does not convert is an error.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Int(i64),
    UInt(u64),
    Bool(bool),
    Text(String),
    Binary(Vec<u8>),
}

macro_rules! key_from {
    ($($t:ty => $v:ident),*) => {
        $(impl From<$t> for KeyValue {
            fn from(x: $t) -> Self {
                KeyValue::$v(x.into())
            }
        })*
    };
}
key_from!(i64 => Int, i32 => Int, i16 => Int, i8 => Int, u64 => UInt, u32 => UInt, u16 => UInt,
    u8 => UInt, bool => Bool, String => Text, &str => Text, Vec<u8> => Binary);

/// A key, or the first columns of one (a prefix stands for every key that starts with it).
pub type Key = Vec<KeyValue>;

/// A range of keys to read.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRange {
    pub start: Bound<Key>,
    pub end: Bound<Key>,
}

impl KeyRange {
    /// Keys from `start` up to and including `end`.
    pub fn between(start: impl Into<Key>, end: impl Into<Key>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Included(end.into()),
        }
    }

    /// Keys `start <= key < end`.
    pub fn half_open(start: impl Into<Key>, end: impl Into<Key>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }

    /// One key (or, for a prefix, every key starting with it).
    pub fn key(key: impl Into<Key>) -> Self {
        let k = key.into();
        KeyRange {
            start: Bound::Included(k.clone()),
            end: Bound::Included(k),
        }
    }
}

impl From<KeyValue> for Key {
    fn from(v: KeyValue) -> Self {
        vec![v]
    }
}

/// What to read of a table.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// The revision (default: the working tables).
    pub rev: Option<String>,
    /// The columns, in this order (default: all).
    pub columns: Option<Vec<String>>,
    /// Only keys in one of these ranges (default: all keys).
    pub ranges: Vec<KeyRange>,
}

/// Rows of a table as a stream of Arrow batches, in key order.
pub struct Scan {
    schema: SchemaRef,
    rows: u64,
    chunks: usize,
    stream: BoxStream<'static, strata_engine::Result<RecordBatch>>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The rows of the whole table version (the scan may return fewer: its key ranges).
    pub fn table_rows(&self) -> u64 {
        self.rows
    }

    /// How many chunks the scan reads.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Reads every batch.
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(b) = self.stream.next().await {
            out.push(b?);
        }
        Ok(out)
    }
}

impl Stream for Scan {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream
            .poll_next_unpin(cx)
            .map(|o| o.map(|r| r.map_err(Error::from)))
    }
}

/// A table at a revision: its schema, key and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    pub table: String,
    /// The table version's id.
    pub id: ObjectId,
    pub rows: u64,
    /// Bytes of its chunks.
    pub bytes: u64,
    pub chunks: usize,
    pub primary_key: Vec<String>,
    pub columns: Vec<ColumnDef>,
    pub chunking: ChunkParams,
}

impl TableInfo {
    /// The Arrow schema of the table's rows.
    pub fn arrow_schema(&self) -> Result<SchemaRef> {
        let schema = strata_engine::schema::TableSchema {
            columns: self.columns.clone(),
            primary_key: self.primary_key.clone(),
        };
        Ok(schema.arrow()?)
    }
}

/// A table in a list of tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    pub table: String,
    pub id: ObjectId,
    pub rows: u64,
    pub columns: usize,
    pub primary_key: Vec<String>,
}

/// How a write treats the table, and a new table's key.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `None`: create the table (refused when it exists).
    pub mode: Option<WriteMode>,
    /// Key columns: required to create a table; if given for another mode, they must be the
    /// table's (a replace may change them).
    pub primary_key: Option<Vec<String>>,
    /// Average rows per chunk of a new table (default 16384).
    pub chunk_rows: Option<u32>,
    /// Types of some columns of a new table, in place of the ones inferred from a file (or
    /// the batches' own). For an existing table they must be the table's. Type names:
    /// [`parse_type`].
    pub types: Vec<(String, DataType)>,
    /// How an imported file is compressed (default: from its name: `.gz` is gzip, `.zst`
    /// zstd, anything else none). A compressed file is decompressed as it is read. Parquet
    /// compresses inside the file, so a compressed Parquet file is refused. Files only:
    /// [`Repository::write`] refuses it.
    pub compression: Option<Compression>,
    /// The field delimiter of an imported CSV file (default: a tab for a `.tsv` file, else a
    /// comma); refused for other formats. As people write it: [`parse_delimiter`]. Files
    /// only: [`Repository::write`] refuses it.
    pub delimiter: Option<u8>,
}

impl WriteOptions {
    /// The engine's options for an import in `format`.
    fn engine(&self, format: Option<FileFormat>) -> EngineImport {
        EngineImport {
            mode: self.mode,
            primary_key: self.primary_key.clone(),
            format,
            compression: self.compression,
            delimiter: self.delimiter,
            chunk_rows: self.chunk_rows,
            types: self.types.clone(),
        }
    }
}

/// Parses a CSV field delimiter as people write it: one ASCII character (`;`, `|`), or `\t`
/// or `tab` for a tab. A quote or a line break is refused.
pub fn parse_delimiter(s: &str) -> Result<u8> {
    strata_engine::import::parse_delimiter(s).map_err(|e| Error::invalid(e.to_string()))
}

/// What a write, import or delete did to a working table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    pub table: String,
    /// The new working version of the table.
    pub table_id: ObjectId,
    /// Rows in the table now.
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Keys to delete that matched no row.
    pub missing: u64,
    pub chunks_written: u64,
    pub chunks_reused: u64,
    /// The table was created.
    pub created: bool,
    /// What to know about how the input was read: a column that looks numeric kept as
    /// text so that no value changes (a leading zero, a number beyond int64).
    pub notes: Vec<String>,
    /// How a replace changed the table's columns or key (`None` when it kept them, and for
    /// the other modes, which cannot change them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_change: Option<SchemaDiff>,
}

/// How a table's columns and key differ between two versions of it. A column is known by
/// its name only, so a renamed column is one dropped and one added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// Columns only the new version has.
    pub added: Vec<String>,
    /// Columns only the old version has.
    pub dropped: Vec<String>,
    /// `column: old type -> new type`.
    pub retyped: Vec<String>,
    /// The key columns before.
    pub old_key: Vec<String>,
    /// The key columns after.
    pub new_key: Vec<String>,
}

impl SchemaDiff {
    /// True when the columns' names and types and the key are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.retyped.is_empty()
            && self.old_key == self.new_key
    }
}

impl From<strata_engine::diff::SchemaChange> for SchemaDiff {
    fn from(c: strata_engine::diff::SchemaChange) -> Self {
        SchemaDiff {
            added: c.added,
            dropped: c.dropped,
            retyped: c.retyped,
            old_key: c.old_key,
            new_key: c.new_key,
        }
    }
}

impl std::fmt::Display for SchemaDiff {
    /// `added column x, dropped column y, retyped score: float64 -> utf8; key (id) -> (id,
    /// region)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.added.iter().map(|c| format!("added column {c}")));
        parts.extend(self.dropped.iter().map(|c| format!("dropped column {c}")));
        parts.extend(self.retyped.iter().map(|c| format!("retyped {c}")));
        write!(f, "{}", parts.join(", "))?;
        if self.old_key != self.new_key {
            if !parts.is_empty() {
                write!(f, "; ")?;
            }
            write!(
                f,
                "key ({}) -> ({})",
                self.old_key.join(", "),
                self.new_key.join(", ")
            )?;
        }
        Ok(())
    }
}

/// What [`Repository::alter_table`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlterReport {
    pub table: String,
    /// The new working version of the table.
    pub table_id: ObjectId,
    /// Rows in the table (the same as before).
    pub rows: u64,
    /// Chunks written: every chunk is rewritten.
    pub chunks_written: u64,
    /// How the columns and key differ from the version before (a rename is a column dropped
    /// and one added).
    pub schema: SchemaDiff,
}

/// Parses a column type as users write it: `int64` (also `int`, `bigint`), `int32`,
/// `int16`, `int8`, `uint8`..`uint64`, `float64` (`float`, `double`), `float32`, `utf8`
/// (`string`, `text`), `bool` (`boolean`), `binary`, `date32` (`date`), `timestamp[us]`
/// (`timestamp`; units s, ms, us, ns; `timestamp[us, UTC]` with a zone),
/// `decimal128(P, S)`.
pub fn parse_type(name: &str) -> Result<DataType> {
    let lower = name.trim().to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "int" | "integer" | "bigint" | "long" => "int64",
        "float" | "double" => "float64",
        "string" | "text" | "str" | "varchar" => "utf8",
        "boolean" => "bool",
        "date" => "date32",
        "timestamp" => "timestamp[us]",
        other => other,
    };
    // `decimal128(10,2)` and `timestamp[us,UTC]` are accepted without the space too.
    let spaced = canonical.replace(", ", ",").replace(',', ", ");
    let zoned = match (name.find('['), name.rfind(", ")) {
        // A time zone keeps its case (`Europe/Paris`).
        (Some(_), Some(_)) if lower.starts_with("timestamp[") => {
            let unit_end = spaced.find(", ").unwrap_or(spaced.len());
            let tz_start = name.find(',').map(|i| i + 1).unwrap_or(name.len());
            format!("{}, {}", &spaced[..unit_end], name[tz_start..].trim())
        }
        _ => spaced,
    };
    strata_engine::schema::parse_type(&zoned).ok_or_else(|| {
        Error::InvalidInput(format!(
            "unknown column type '{name}'; use int64, int32, float64, utf8, bool, date32, timestamp[us], decimal128(P, S) or binary"
        ))
    })
}

/// Parses `COLUMN=TYPE` (see [`parse_type`]).
pub fn parse_column_type(spec: &str) -> Result<(String, DataType)> {
    match spec.split_once('=') {
        Some((column, ty)) if !column.trim().is_empty() => {
            Ok((column.trim().to_string(), parse_type(ty)?))
        }
        _ => Err(Error::InvalidInput(format!(
            "'{spec}' is not COLUMN=TYPE (for example zip=utf8)"
        ))),
    }
}

impl From<EditSummary> for WriteReport {
    fn from(s: EditSummary) -> Self {
        WriteReport {
            table: s.table,
            table_id: s.table_id,
            rows: s.rows,
            inserted: s.stats.inserted,
            updated: s.stats.updated,
            deleted: s.stats.deleted,
            missing: s.stats.missing,
            chunks_written: s.stats.chunks_written,
            chunks_reused: s.stats.chunks_reused,
            created: s.created,
            notes: s.notes,
            schema_change: s.schema_change.map(SchemaDiff::from),
        }
    }
}

/// Builds a one-row array of `value` converted to `data_type`.
fn key_array(column: &str, value: &KeyValue, data_type: &DataType) -> Result<ArrayRef> {
    use arrow_array::{BinaryArray, BooleanArray, Int64Array, StringArray, UInt64Array};
    let raw: ArrayRef = match value {
        KeyValue::Int(v) => Arc::new(Int64Array::from(vec![*v])),
        KeyValue::UInt(v) => Arc::new(UInt64Array::from(vec![*v])),
        KeyValue::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
        KeyValue::Text(v) => Arc::new(StringArray::from(vec![v.as_str()])),
        KeyValue::Binary(v) => Arc::new(BinaryArray::from(vec![v.as_slice()])),
    };
    let opts = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(&raw, data_type, &opts).map_err(|e| {
        Error::invalid(format!(
            "key value {value:?} does not convert to column '{column}' ({data_type}): {e}"
        ))
    })
}

/// Encodes a key (or a prefix of one) of `table` as the engine orders keys.
fn encode_key(table: &TableObject, key: &Key) -> Result<Vec<u8>> {
    let schema = table.schema.arrow()?;
    let key_idx = table.schema.key_indices();
    if key.is_empty() || key.len() > key_idx.len() {
        return Err(Error::invalid(format!(
            "a key of this table has {} value{} ({}); got {}",
            key_idx.len(),
            if key_idx.len() == 1 { "" } else { "s" },
            table.schema.primary_key.join(", "),
            key.len()
        )));
    }
    let mut fields = Vec::with_capacity(key.len());
    let mut columns = Vec::with_capacity(key.len());
    for (value, &i) in key.iter().zip(&key_idx) {
        let f = schema.field(i);
        columns.push(key_array(f.name(), value, f.data_type())?);
        fields.push(Field::new(f.name(), f.data_type().clone(), false));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::invalid(format!("bad key: {e}")))?;
    let idx: Vec<usize> = (0..key.len()).collect();
    let keys = strata_engine::key::encode_keys(&batch, &idx)?
        .map_err(|at| Error::invalid(format!("key column '{}' is null", at.column)))?;
    Ok(keys.get(0).to_vec())
}

fn encode_bound(table: &TableObject, b: &Bound<Key>) -> Result<Bound<Vec<u8>>> {
    Ok(match b {
        Bound::Included(k) => Bound::Included(encode_key(table, k)?),
        Bound::Excluded(k) => Bound::Excluded(encode_key(table, k)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

/// Name, size and key of each table of a revision.
pub(crate) async fn summaries(
    objects: &Objects,
    tables: BTreeMap<String, ObjectId>,
) -> Result<Vec<TableSummary>> {
    let mut out = Vec::with_capacity(tables.len());
    for (name, id) in tables {
        let t = TableObject::read(objects, &id).await?;
        out.push(TableSummary {
            table: name,
            id,
            rows: t.rows,
            columns: t.schema.columns.len(),
            primary_key: t.schema.primary_key,
        });
    }
    Ok(out)
}

/// What [`Repository::table`] reports of a stored table.
pub(crate) async fn table_info(
    objects: &Objects,
    name: &str,
    id: ObjectId,
    t: TableObject,
) -> Result<TableInfo> {
    let chunks = match t.chunks {
        Some(n) => n as usize,
        None => t.chunks(objects).await?.len(),
    };
    Ok(TableInfo {
        table: name.to_string(),
        id,
        rows: t.rows,
        bytes: t.bytes,
        chunks,
        primary_key: t.schema.primary_key,
        columns: t.schema.columns,
        chunking: t.chunking,
    })
}

/// Writes a stored table to a file, or to standard output (`None`), as
/// [`Repository::export`] does; returns the number of rows.
pub(crate) async fn export_table(
    objects: &Objects,
    t: &TableObject,
    out: Option<&Path>,
    opts: ExportOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    let dest = match out {
        Some(p) => Destination::File(p.to_path_buf()),
        None => Destination::Stdout,
    };
    Ok(strata_engine::export::export(objects, t, &dest, opts, progress).await?)
}

/// Reads a stored table as [`Repository::scan`] does.
pub(crate) async fn scan_table(
    objects: &Objects,
    table: &str,
    t: &TableObject,
    opts: &ScanOptions,
) -> Result<Scan> {
    let columns = match &opts.columns {
        None => None,
        Some(names) => {
            let mut idx = Vec::with_capacity(names.len());
            for n in names {
                let i = t
                    .schema
                    .columns
                    .iter()
                    .position(|c| &c.name == n)
                    .ok_or_else(|| {
                        let all: Vec<&str> =
                            t.schema.columns.iter().map(|c| c.name.as_str()).collect();
                        Error::invalid(format!(
                            "table '{table}' has no column '{n}'; its columns are {}",
                            all.join(", ")
                        ))
                    })?;
                idx.push(i);
            }
            Some(idx)
        }
    };
    let mut ranges = Vec::with_capacity(opts.ranges.len());
    for r in &opts.ranges {
        ranges.push(strata_engine::key::KeyRange {
            lower: encode_bound(t, &r.start)?,
            upper: encode_bound(t, &r.end)?,
        });
    }
    let spec = ScanSpec { columns, ranges };
    let (schema, stream, chunks) = scan_spec(objects, t, spec).await?;
    Ok(Scan {
        schema,
        rows: t.rows,
        chunks,
        stream,
    })
}

impl Repository {
    /// A table at a revision (default: the working version), with its stored object.
    async fn table_object(&self, name: &str, rev: Option<&str>) -> Result<(ObjectId, TableObject)> {
        Ok(self.inner.table(name, rev).await?)
    }

    /// The tables at a revision (default: the working tables), by name.
    pub async fn tables(&self, rev: Option<&str>) -> Result<Vec<TableSummary>> {
        summaries(self.inner.objects(), self.inner.tables_at(rev).await?).await
    }

    /// One table at a revision (default: the working version).
    pub async fn table(&self, name: &str, rev: Option<&str>) -> Result<TableInfo> {
        let (id, t) = self.table_object(name, rev).await?;
        table_info(self.inner.objects(), name, id, t).await
    }

    /// Reads a table at a revision as a stream of Arrow batches in key order. Only the
    /// columns asked for are decoded, and only the chunks that the key ranges reach are read
    /// (found through the index, without reading the others).
    pub async fn scan(&self, table: &str, opts: &ScanOptions) -> Result<Scan> {
        let (_, t) = self.table_object(table, opts.rev.as_deref()).await?;
        scan_table(self.inner.objects(), table, &t, opts).await
    }

    /// Writes Arrow batches into a working table: creates it, or appends, upserts or replaces
    /// rows ([`WriteOptions::mode`]). The batches need not be sorted by key. New chunks are
    /// stored first and the working state switches in one atomic step, so a failed write
    /// leaves the table as it was.
    pub async fn write(
        &self,
        table: &str,
        batches: Box<dyn RecordBatchReader + Send>,
        opts: &WriteOptions,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        if opts.compression.is_some() || opts.delimiter.is_some() {
            return Err(Error::invalid(
                "a compression or a delimiter applies to files; write takes Arrow batches",
            ));
        }
        let _lock = self.inner.lock_state().await?;
        let input = Input::arrow("the written batches", batches, &self.tmp_base());
        let engine_opts = opts.engine(None);
        Ok(self
            .inner
            .import_input(table, &input, &engine_opts, progress)
            .await?
            .into())
    }

    /// Deletes the rows whose keys the batches hold (exactly the key columns).
    pub async fn delete(
        &self,
        table: &str,
        keys: Box<dyn RecordBatchReader + Send>,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        let _lock = self.inner.lock_state().await?;
        let input = Input::arrow("the keys to delete", keys, &self.tmp_base());
        Ok(self
            .inner
            .delete_input(table, &input, progress)
            .await?
            .into())
    }

    /// Imports a file (CSV with a header, Parquet, JSON Lines; `format` default: from the
    /// extension under any compression suffix, `rows.csv.gz` being CSV) into a working table,
    /// as [`Repository::write`] does with batches. [`WriteOptions::compression`] and
    /// [`WriteOptions::delimiter`] say how to read it.
    pub async fn import_file(
        &self,
        table: &str,
        path: &Path,
        format: Option<FileFormat>,
        opts: &WriteOptions,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        let _lock = self.inner.lock_state().await?;
        Ok(self
            .inner
            .import(table, path, &opts.engine(format), progress)
            .await?
            .into())
    }

    /// Imports what `reader` gives (standard input, say) in `format`, as
    /// [`Repository::import_file`] does with a file (with [`WriteOptions::compression`], the
    /// bytes are decompressed). `name` is what messages call the input ("standard input").
    /// An import reads its input more than once (to infer types, to read the rows, and to
    /// sort them when they are not in key order), so the bytes are first copied as they come
    /// to a file in the repository's `tmp/` folder, which is removed afterwards; this is
    /// also what lets Parquet, which must seek, come from a pipe.
    pub async fn import_reader(
        &self,
        table: &str,
        mut reader: Box<dyn std::io::Read + Send>,
        name: &str,
        format: FileFormat,
        opts: &WriteOptions,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        let _lock = self.inner.lock_state().await?;
        Ok(self
            .inner
            .import_reader(
                table,
                reader.as_mut(),
                name,
                &opts.engine(Some(format)),
                progress,
            )
            .await?
            .into())
    }

    /// Deletes the rows whose keys a file lists (exactly the key columns).
    pub async fn delete_from_file(
        &self,
        table: &str,
        path: &Path,
        format: Option<FileFormat>,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        let _lock = self.inner.lock_state().await?;
        Ok(self
            .inner
            .delete_keys(table, path, format, progress)
            .await?
            .into())
    }

    /// Deletes the rows whose keys `reader` gives (exactly the key columns, in `format`;
    /// called `name` in messages), as [`Repository::delete_from_file`] does with a file. What
    /// it gives is first copied to a file of the repository's `tmp/` folder, removed after.
    pub async fn delete_from_reader(
        &self,
        table: &str,
        mut reader: Box<dyn std::io::Read + Send>,
        name: &str,
        format: FileFormat,
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        let _lock = self.inner.lock_state().await?;
        Ok(self
            .inner
            .delete_keys_reader(table, reader.as_mut(), name, format, progress)
            .await?
            .into())
    }

    /// Writes a table at a revision (default: the working version) to a file, or to standard
    /// output (`None`), in key order; returns the number of rows. A file is written beside
    /// its destination and renamed into place when complete (through a symbolic link, the
    /// file it names); a device or a named pipe (`/dev/null`) is written as it is, and a
    /// file the process has open (`/dev/stdout`, `/dev/fd/N`) is appended to. `opts` is an
    /// [`ExportFormat`], or [`ExportOptions`] for a Parquet file's row group size, a CSV
    /// file's delimiter, or a CSV or JSON Lines file compressed as it is written (gzip, zstd).
    /// The file's name is not looked at: the command line reads `.tsv`, `.gz` and `.zst`
    /// from it ([`ExportFormat::from_path`], [`delimiter_from_path`], [`Compression::from_path`]).
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
        export_table(self.inner.objects(), &t, out, opts, progress).await
    }

    /// Removes a table from the working tables (a change to commit).
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.drop_table(name).await?)
    }

    /// Changes the columns of a working table (a change to commit): adds, drops, renames or
    /// retypes them, `changes` applied in order, all or nothing. Every chunk is rewritten
    /// (rows keep their keys, so chunk boundaries stay where the keys put them; a rename
    /// rewrites them too, as chunk files name their columns). A change the table or its
    /// rows do not allow (an unknown column, a key column dropped, a value that does not
    /// convert to a new type) is refused before anything is stored, so the repository is left
    /// as it was. Refused while a merge is in progress.
    pub async fn alter_table(&self, table: &str, changes: &[SchemaChange]) -> Result<AlterReport> {
        let _lock = self.inner.lock_state().await?;
        let s = self.inner.alter_table(table, changes).await?;
        Ok(AlterReport {
            table: s.table,
            table_id: s.table_id,
            rows: s.rows,
            chunks_written: s.stats.chunks_written,
            schema: s.schema_change.map(SchemaDiff::from).unwrap_or_default(),
        })
    }

    /// Renames a working table (a change to commit).
    pub async fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        let _lock = self.inner.lock_state().await?;
        Ok(self.inner.rename_table(from, to).await?)
    }

    /// Where imports spill what does not fit in memory.
    fn tmp_base(&self) -> std::path::PathBuf {
        self.data_dir().join("tmp")
    }
}
