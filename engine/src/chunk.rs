//! Chunks: runs of rows in key order, each stored as one complete Parquet file.
//!
//! Where a chunk ends is decided by the keys alone: after at least `min_rows` rows, a row
//! ends its chunk when the xxh3 hash of its encoded key falls below a threshold that makes
//! the average chunk `avg_rows` long; a chunk never exceeds `max_rows`. Chunking therefore
//! starts afresh at every boundary, so the same rows always give the same chunks, and an
//! edit changes only the chunks around it until the boundaries line up again.

use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, RowGroups, RowSelection};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowLeafColumn};
use parquet::arrow::{parquet_to_arrow_field_levels, ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::serialized_reader::SerializedPageReader;
use serde::{Deserialize, Serialize};

use crate::arrow::array::RecordBatch;
use crate::arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::key::Keys;

/// Chunking parameters, stored with each table so that changing the defaults never
/// changes how an existing table is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkParams {
    pub min_rows: u32,
    pub avg_rows: u32,
    pub max_rows: u32,
}

impl Default for ChunkParams {
    /// Chosen by measurement (see docs/architecture.md, "Chunk size").
    fn default() -> Self {
        ChunkParams::with_average(16384)
    }
}

impl ChunkParams {
    pub fn with_average(avg_rows: u32) -> Self {
        let avg = avg_rows.max(4);
        ChunkParams {
            min_rows: avg / 4,
            avg_rows: avg,
            max_rows: avg.saturating_mul(4),
        }
    }

    /// Whether the row with encoded key `key`, the `count`-th row of the current chunk,
    /// ends that chunk.
    #[inline]
    pub fn is_boundary(&self, key: &[u8], count: u32) -> bool {
        if count >= self.max_rows {
            return true;
        }
        if count < self.min_rows {
            return false;
        }
        let spread = u64::from((self.avg_rows - self.min_rows).max(1));
        xxhash_rust::xxh3::xxh3_64(key).is_multiple_of(spread)
    }
}

/// The writer name recorded in every chunk, fixed so that chunk bytes (and so ids) do not
/// depend on the Parquet library's version string.
const CREATED_BY: &str = "strata chunk format 1";

/// The most rows a chunk's row group holds.
const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(CREATED_BY.to_string())
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        // High-cardinality columns give up dictionary encoding early: faster and smaller.
        .set_dictionary_page_size_limit(64 * 1024)
        .build()
}

/// Whether dictionary encoding is worth trying for a column of a chunk: not when a sample of
/// its values (256, evenly spread) is all or nearly all distinct. The Parquet writer would
/// otherwise build a dictionary of a key or a price column until the dictionary page limit,
/// then start again in plain encoding: work when writing, and two decoders when reading.
/// A function of the rows alone, as chunk bytes must be.
fn dictionary_pays(array: &dyn arrow_array::Array) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    const SAMPLE: usize = 256;
    let n = array.len();
    if n < SAMPLE * 4 {
        return true;
    }
    let data = array.to_data();
    let value = |i: usize| -> Option<&[u8]> {
        if array.is_null(i) {
            return None;
        }
        match array.data_type() {
            DataType::Utf8 => Some(array.as_string::<i32>().value(i).as_bytes()),
            DataType::LargeUtf8 => Some(array.as_string::<i64>().value(i).as_bytes()),
            DataType::Binary => Some(array.as_binary::<i32>().value(i)),
            DataType::LargeBinary => Some(array.as_binary::<i64>().value(i)),
            dt => {
                let w = dt.primitive_width()?;
                let at = (data.offset() + i) * w;
                data.buffers().first()?.as_slice().get(at..at + w)
            }
        }
    };
    // The sampled values are counted as distinct 64-bit hashes, sorted: this runs for every
    // column of every chunk, and hashing each value once is cheaper than a hash set's work.
    let mut hashes = Vec::with_capacity(SAMPLE);
    for k in 0..SAMPLE {
        // A null, or a type without fixed-width values (booleans), is not sampled.
        if let Some(v) = value(k * (n / SAMPLE)) {
            hashes.push(xxhash_rust::xxh3::xxh3_64(v));
        }
    }
    let sampled = hashes.len();
    if sampled < SAMPLE / 2 {
        return true;
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes.len() + 2 < sampled
}

/// Encodes one chunk as a Parquet file.
pub fn encode_chunk(batch: &RecordBatch) -> Result<Bytes> {
    encode_chunk_on(batch, 1)
}

/// As [`encode_chunk`], encoding the columns on up to `threads` threads at once (for a chunk
/// encoded alone, as after a small edit). The bytes are the same whatever the number.
pub fn encode_chunk_on(batch: &RecordBatch, threads: usize) -> Result<Bytes> {
    let err = |e| Error::parquet("encoding a chunk", e);
    let threads = threads.min(batch.num_columns());
    // One row group here; the serial writer starts another past MAX_ROW_GROUP_ROWS rows (a
    // table made with a huge `--chunk-rows`), so such chunks take the serial path to keep
    // their bytes.
    if threads <= 1 || batch.num_rows() > MAX_ROW_GROUP_ROWS {
        return encode_chunk_serial(batch);
    }
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 3 + 1024);
    let writer = ArrowWriter::try_new(
        &mut buf,
        batch.schema(),
        Some(stored_chunk_properties(batch)),
    )
    .map_err(err)?;
    // The writer ArrowWriter itself drives, driven here one column per task: the same
    // settings, schema and metadata, so the same bytes.
    let (mut file, factory) = writer.into_serialized_writer().map_err(err)?;
    let mut writers = factory.create_column_writers(0).map_err(err)?;
    let schema = batch.schema();
    let mut leaves = Vec::with_capacity(writers.len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        leaves.extend(compute_leaves(field, column).map_err(err)?);
    }
    if leaves.len() != writers.len() {
        return Err(Error::Invalid(format!(
            "encoding a chunk: {} leaf columns for {} column writers",
            leaves.len(),
            writers.len()
        )));
    }
    let jobs: Vec<(ArrowColumnWriter, ArrowLeafColumn)> = writers.drain(..).zip(leaves).collect();
    let done = each_on_threads(jobs, threads, |(mut w, leaf)| {
        w.write(&leaf).and_then(|()| w.close()).map_err(err)
    });
    let mut group = file.next_row_group().map_err(err)?;
    for chunk in done {
        let chunk = chunk.unwrap_or_else(|| {
            Err(Error::Invalid(
                "encoding a chunk: a column was not encoded".into(),
            ))
        })?;
        chunk.append_to_row_group(&mut group).map_err(err)?;
    }
    group.close().map_err(err)?;
    file.close().map_err(err)?;
    Ok(Bytes::from(buf))
}

/// The cores this process may use, if known. `std::thread::available_parallelism` reads the
/// cgroup's quota files on every call (three files on Linux, a noticeable part of a one-row
/// edit), so it is asked once.
pub(crate) fn cores() -> Option<usize> {
    static CORES: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().ok().map(|n| n.get()))
}

/// Runs `f` on each of `items`, on up to `threads` threads at once (each takes the next item
/// left, so uneven items spread evenly), and returns the results in the items' order: `None`
/// for an item whose run did not finish.
fn each_on_threads<I: Send, T: Send>(
    items: Vec<I>,
    threads: usize,
    f: impl Fn(I) -> T + Sync,
) -> Vec<Option<T>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let jobs: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let done: Vec<Mutex<Option<T>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        if let Some(item) = job.lock().ok().and_then(|mut j| j.take()) {
            let result = f(item);
            if let Ok(mut d) = done[i].lock() {
                *d = Some(result);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    done.into_iter()
        .map(|d| d.into_inner().ok().flatten())
        .collect()
}

/// The writer settings of an export's row groups of `rows` rows, its dictionaries chosen as a
/// chunk's are, from `sample` (the export's first chunk).
pub(crate) fn row_group_properties(sample: &RecordBatch, rows: usize) -> WriterProperties {
    chunk_properties(sample)
        .into_builder()
        .set_max_row_group_row_count(Some(rows))
        .build()
}

/// Chunks of at most this many rows (deltas of small edits, mostly) are stored uncompressed:
/// their pages are a few bytes each, which zstd does not make smaller, and writing them
/// compressed would make a compressor and a decompressor per column (most of the time of
/// encoding a one-row delta).
const UNCOMPRESSED_ROWS: usize = 64;

/// The writer settings of a chunk as stored: [`chunk_properties`], uncompressed for a chunk of
/// at most [`UNCOMPRESSED_ROWS`] rows.
fn stored_chunk_properties(batch: &RecordBatch) -> WriterProperties {
    let props = chunk_properties(batch);
    if batch.num_rows() > UNCOMPRESSED_ROWS {
        return props;
    }
    props
        .into_builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build()
}

/// The writer settings of one chunk: the common ones, and dictionary encoding off for the
/// columns where it does not pay.
fn chunk_properties(batch: &RecordBatch) -> WriterProperties {
    let mut props = writer_properties().into_builder();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !dictionary_pays(column.as_ref()) {
            props = props.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                false,
            );
        }
    }
    props.build()
}

fn encode_chunk_serial(batch: &RecordBatch) -> Result<Bytes> {
    encode_with(batch, stored_chunk_properties(batch))
}

/// The footer key under which a delta lists the keys of its chunk's rows it deletes: a JSON
/// array of the encoded keys as hex, in key order (docs/protocol.md, section 3).
pub const DELETES_KEY: &str = "strata.deletes";

/// Encodes a chunk's delta: its rows as a chunk, and the keys of the chunk's rows it deletes
/// (`deleted`, in key order) in the file's footer. A delta that deletes nothing is encoded
/// exactly as a chunk of its rows.
pub fn encode_delta(batch: &RecordBatch, deleted: &Keys) -> Result<Bytes> {
    if deleted.is_empty() {
        return encode_chunk_on(batch, 1);
    }
    let hex: Vec<String> = (0..deleted.len())
        .map(|i| crate::tree::encode_hex(deleted.get(i)))
        .collect();
    let value = serde_json::to_string(&hex)
        .map_err(|e| Error::Invalid(format!("encoding a delta's deleted keys: {e}")))?;
    let props = stored_chunk_properties(batch)
        .into_builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(DELETES_KEY.to_string(), value)]))
        .build();
    encode_with(batch, props)
}

/// The keys (in key order) of the chunk's rows a delta's Parquet bytes delete: none unless
/// its footer lists some.
pub fn delta_deletes(id: &ObjectId, bytes: &Bytes) -> Result<Keys> {
    let corrupt = |reason: String| Error::CorruptObject {
        id: id.to_hex(),
        reason,
    };
    // Damaged bytes give an error, never a panic (as in `decode_chunk_columns`).
    let metadata =
        std::panic::catch_unwind(|| ParquetMetaDataReader::new().parse_and_finish(bytes))
            .map_err(|_| {
                corrupt("the delta does not decode (the Parquet decoder failed on it)".into())
            })?
            .map_err(|e| corrupt(format!("the delta does not decode: {e}")))?;
    let mut keys = Keys::default();
    let Some(value) = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == DELETES_KEY))
        .and_then(|kv| kv.value.as_deref())
    else {
        return Ok(keys);
    };
    let hex: Vec<String> = serde_json::from_str(value)
        .map_err(|e| corrupt(format!("its list of deleted keys does not decode: {e}")))?;
    for h in &hex {
        let key =
            crate::tree::decode_hex(h).ok_or_else(|| corrupt("a deleted key is not hex".into()))?;
        if keys.last().is_some_and(|last| last >= key.as_slice()) {
            return Err(corrupt("its deleted keys are not in key order".into()));
        }
        keys.push(&key);
    }
    Ok(keys)
}

fn encode_with(batch: &RecordBatch, props: WriterProperties) -> Result<Bytes> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 3 + 1024);
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
        .map_err(|e| Error::parquet("encoding a chunk", e))?;
    writer
        .write(batch)
        .map_err(|e| Error::parquet("encoding a chunk", e))?;
    writer
        .close()
        .map_err(|e| Error::parquet("encoding a chunk", e))?;
    Ok(Bytes::from(buf))
}

/// Decodes a chunk's Parquet bytes into one batch with the table's schema. Damaged bytes give
/// an error naming the chunk, never a panic (the Parquet decoder can panic on some malformed
/// input; that is caught here).
pub fn decode_chunk(id: &ObjectId, bytes: Bytes, schema: &SchemaRef) -> Result<RecordBatch> {
    decode_chunk_columns(id, bytes, schema, None)
}

/// As [`decode_chunk`], decoding the columns on up to `threads` threads at once (for a chunk
/// read alone, as by an edit or a diff; a scan decodes chunks side by side instead).
pub fn decode_chunk_on(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    threads: usize,
) -> Result<RecordBatch> {
    let n = schema.fields().len();
    let threads = threads.min(n);
    if threads <= 1 {
        return decode_chunk(id, bytes, schema);
    }
    let all: Vec<usize> = (0..n).collect();
    let columns = decode_columns_on(id, bytes, schema, &all, None, threads)?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::CorruptObject {
        id: id.to_hex(),
        reason: format!("its columns are not the table's: {e}"),
    })
}

/// Decodes only the columns `columns` (positions in the table's schema, in that order) of a
/// chunk: the pages of the other columns are not read. `None` decodes them all.
pub fn decode_chunk_columns(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: Option<&[usize]>,
) -> Result<RecordBatch> {
    decode_chunk_selected(id, bytes, schema, columns, None)
}

/// Decodes the rows at positions `rows` (ascending) of the columns `columns` (positions in
/// the table's schema) of a chunk, a column per thread on up to `threads` threads: the other
/// rows' values are skipped, not decoded. The columns come in the order asked for.
pub fn decode_chunk_rows_on(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: &[usize],
    rows: &[usize],
    threads: usize,
) -> Result<Vec<arrow_array::ArrayRef>> {
    decode_columns_on(id, bytes, schema, columns, Some(rows), threads)
}

/// Decodes the columns `columns` of a chunk (the rows `rows` of them, or all), a column per
/// thread on up to `threads` threads, in the order asked for.
fn decode_columns_on(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: &[usize],
    rows: Option<&[usize]>,
    threads: usize,
) -> Result<Vec<arrow_array::ArrayRef>> {
    let done = each_on_threads(columns.to_vec(), threads.max(1), |c| {
        decode_chunk_selected(id, bytes.clone(), schema, Some(&[c]), rows)
    });
    done.into_iter()
        .map(|column| {
            let batch = column.unwrap_or_else(|| {
                Err(Error::CorruptObject {
                    id: id.to_hex(),
                    reason: "a column of the chunk was not decoded".into(),
                })
            })?;
            Ok(batch.column(0).clone())
        })
        .collect()
}

fn decode_chunk_selected(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: Option<&[usize]>,
    rows: Option<&[usize]>,
) -> Result<RecordBatch> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_chunk_inner(id, bytes, schema, columns, rows)
    }))
    .unwrap_or_else(|_| {
        Err(Error::CorruptObject {
            id: id.to_hex(),
            reason: "the chunk does not decode (the Parquet decoder failed on it)".into(),
        })
    })
}

fn decode_chunk_inner(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: Option<&[usize]>,
    rows: Option<&[usize]>,
) -> Result<RecordBatch> {
    let corrupt = |e: String| Error::CorruptObject {
        id: id.to_hex(),
        reason: format!("the chunk does not decode: {e}"),
    };
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .map_err(|e| corrupt(e.to_string()))?;
    let parquet_schema = metadata.file_metadata().schema_descr();
    if parquet_schema.root_schema().get_fields().len() != schema.fields().len() {
        return Err(corrupt(format!(
            "it has {} columns, the table {}",
            parquet_schema.root_schema().get_fields().len(),
            schema.fields().len()
        )));
    }
    // The table's schema gives the Arrow types (the chunk's embedded copy is not decoded).
    let hint = schema.fields().clone();
    let (mask, schema, order) = match columns {
        None => (ProjectionMask::all(), schema.clone(), None),
        Some(cols) => {
            if cols.iter().any(|&c| c >= schema.fields().len()) {
                return Err(corrupt("it has fewer columns than the table".into()));
            }
            let mut sorted = cols.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let mask = ProjectionMask::roots(parquet_schema, sorted.clone());
            // The reader returns the columns in file order; `order` puts them in the
            // order asked for.
            let order: Vec<usize> = cols
                .iter()
                .map(|c| sorted.iter().position(|s| s == c).expect("asked for"))
                .collect();
            (
                mask,
                Arc::new(schema.project(cols).map_err(|e| corrupt(e.to_string()))?),
                Some(order),
            )
        }
    };
    let levels = parquet_to_arrow_field_levels(parquet_schema, mask, Some(&hint))
        .map_err(|e| corrupt(e.to_string()))?;
    let row_groups = ChunkRowGroups {
        bytes: Arc::new(bytes),
        metadata,
    };
    let selection = match rows {
        None => None,
        Some(rows) => {
            let total = RowGroups::num_rows(&row_groups);
            if rows.iter().any(|&r| r >= total) || rows.windows(2).any(|w| w[0] >= w[1]) {
                return Err(corrupt(format!(
                    "rows {rows:?} asked of its {total} rows are not ascending positions in it"
                )));
            }
            Some(RowSelection::from_consecutive_ranges(
                rows.iter().map(|&r| r..r + 1),
                total,
            ))
        }
    };
    // One batch of exactly the rows asked for: the reader reserves room for a whole batch in
    // each column before it decodes, and room for more rows than the chunk holds is fresh
    // memory (megabytes, mapped anew and cleared by the kernel) for every chunk decoded. A
    // footer's row count is not trusted beyond 2^20 rows a batch (a chunk holds far fewer).
    let batch_rows = match rows {
        Some(rows) => rows.len(),
        None => RowGroups::num_rows(&row_groups),
    }
    .clamp(1, 1 << 20);
    let reader = ParquetRecordBatchReader::try_new_with_row_groups(
        &levels,
        &row_groups,
        batch_rows,
        selection,
    )
    .map_err(|e| corrupt(e.to_string()))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| corrupt(e.to_string()))?);
    }
    let file_schema = match batches.first() {
        Some(b) => b.schema(),
        None => return Ok(RecordBatch::new_empty(schema)),
    };
    let batch = crate::arrow::compute::concat_batches(&file_schema, &batches)
        .map_err(|e| corrupt(e.to_string()))?;
    let columns = match order {
        None => batch.columns().to_vec(),
        Some(order) => order.iter().map(|&i| batch.column(i).clone()).collect(),
    };
    RecordBatch::try_new(schema, columns)
        .map_err(|e| corrupt(format!("its columns are not the table's: {e}")))
}

/// A chunk's row groups for the Parquet reader, with its zstd pages decompressed here rather
/// than by the reader. The reader makes a zstd compressor and decompressor for every column
/// of every file it opens; a scan opens thousands of small chunks, and making those contexts
/// took a tenth of its time (and much of its allocator's). Here each thread keeps one
/// decompressor for all the pages it decodes.
struct ChunkRowGroups {
    bytes: Arc<Bytes>,
    metadata: ParquetMetaData,
}

impl RowGroups for ChunkRowGroups {
    fn num_rows(&self) -> usize {
        self.metadata
            .row_groups()
            .iter()
            .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
            .sum()
    }

    fn column_chunks(&self, i: usize) -> parquet::errors::Result<Box<dyn PageIterator>> {
        let mut readers = Vec::with_capacity(self.metadata.num_row_groups());
        for rg in self.metadata.row_groups() {
            let column = rg.column(i);
            let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
            let zstd = matches!(column.compression(), Compression::ZSTD(_));
            let reader: Box<dyn PageReader> = if zstd {
                // Told the pages are stored as they are, the reader hands them over
                // still compressed (and makes no codec).
                let plain = column
                    .clone()
                    .into_builder()
                    .set_compression(Compression::UNCOMPRESSED)
                    .build()?;
                Box::new(ZstdPages {
                    pages: SerializedPageReader::new(self.bytes.clone(), &plain, rows, None)?,
                    // No page holds more than its column's whole uncompressed size.
                    limit: usize::try_from(column.uncompressed_size()).unwrap_or(0),
                })
            } else {
                Box::new(SerializedPageReader::new(
                    self.bytes.clone(),
                    column,
                    rows,
                    None,
                )?)
            };
            readers.push(Ok(reader));
        }
        Ok(Box::new(Readers(readers.into_iter())))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(self.metadata.row_groups().iter())
    }

    fn metadata(&self) -> &ParquetMetaData {
        &self.metadata
    }
}

/// One page reader per row group of a column.
struct Readers(std::vec::IntoIter<parquet::errors::Result<Box<dyn PageReader>>>);

impl Iterator for Readers {
    type Item = parquet::errors::Result<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl PageIterator for Readers {}

/// Pages of a zstd column, decompressed as they are read.
struct ZstdPages<R: PageReader> {
    pages: R,
    /// The most bytes a page may decompress to.
    limit: usize,
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses one zstd frame (a page's values). Its size is in its header: the Parquet
/// writer's frames always record it.
fn unzstd(frame: &[u8], limit: usize) -> parquet::errors::Result<Vec<u8>> {
    if frame.is_empty() {
        return Ok(Vec::new());
    }
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| ParquetError::General("a page's zstd frame has no size".into()))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= limit)
        .ok_or_else(|| {
            ParquetError::General(format!(
                "a page's zstd frame claims {size} bytes, more than its column's {limit}"
            ))
        })?;
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| ParquetError::General(format!("zstd: {e}")))?,
            ),
        };
        // The size comes from the data: a damaged header may claim more than memory holds,
        // which must be an error, not an abort.
        let mut out = Vec::new();
        out.try_reserve_exact(size).map_err(|_| {
            ParquetError::General(format!("a page's zstd frame claims {size} bytes"))
        })?;
        decompressor
            .decompress_to_buffer(frame, &mut out)
            .map_err(|e| ParquetError::General(format!("a page does not decompress: {e}")))?;
        if out.len() != size {
            return Err(ParquetError::General(
                "a page decompressed to the wrong size".into(),
            ));
        }
        Ok(out)
    })
}

fn decompress_page(page: Page, limit: usize) -> parquet::errors::Result<Page> {
    Ok(match page {
        Page::DataPage {
            buf,
            num_values,
            encoding,
            def_level_encoding,
            rep_level_encoding,
            statistics,
        } => Page::DataPage {
            buf: Bytes::from(unzstd(&buf, limit)?),
            num_values,
            encoding,
            def_level_encoding,
            rep_level_encoding,
            statistics,
        },
        Page::DataPageV2 {
            buf,
            num_values,
            encoding,
            num_nulls,
            num_rows,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed,
            statistics,
        } => {
            let buf = if is_compressed {
                // The levels come first, never compressed.
                let levels = usize::try_from(def_levels_byte_len + rep_levels_byte_len)
                    .ok()
                    .filter(|&n| n <= buf.len())
                    .ok_or_else(|| ParquetError::General("a page's levels overrun it".into()))?;
                let mut out = buf[..levels].to_vec();
                out.extend_from_slice(&unzstd(&buf[levels..], limit)?);
                Bytes::from(out)
            } else {
                buf
            };
            Page::DataPageV2 {
                buf,
                num_values,
                encoding,
                num_nulls,
                num_rows,
                def_levels_byte_len,
                rep_levels_byte_len,
                is_compressed: false,
                statistics,
            }
        }
        Page::DictionaryPage {
            buf,
            num_values,
            encoding,
            is_sorted,
        } => Page::DictionaryPage {
            buf: Bytes::from(unzstd(&buf, limit)?),
            num_values,
            encoding,
            is_sorted,
        },
    })
}

impl<R: PageReader> Iterator for ZstdPages<R> {
    type Item = parquet::errors::Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl<R: PageReader> PageReader for ZstdPages<R> {
    fn get_next_page(&mut self) -> parquet::errors::Result<Option<Page>> {
        let limit = self.limit;
        self.pages
            .get_next_page()?
            .map(|page| decompress_page(page, limit))
            .transpose()
    }

    fn peek_next_page(&mut self) -> parquet::errors::Result<Option<PageMetadata>> {
        self.pages.peek_next_page()
    }

    fn skip_next_page(&mut self) -> parquet::errors::Result<()> {
        self.pages.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> parquet::errors::Result<bool> {
        self.pages.at_record_boundary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn rows(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("name {}", i % 7)),
        ));
        RecordBatch::try_new(schema, vec![ids, names]).expect("batch")
    }

    /// 4,000 rows of the benchmark table's kind: a key, a name of its own, a quantity of 1,000
    /// values, a price of 100,000 and a tag of 100, a tenth of the names null.
    fn table_rows() -> RecordBatch {
        use arrow_array::Float64Array;
        let n = 4_000u64;
        let mix = |i: u64, s: u64| {
            let mut z =
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ s.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^ (z >> 31)
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("qty", DataType::Int64, true),
            Field::new("price", DataType::Float64, true),
            Field::new("tag", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64))),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 10 != 3).then(|| format!("n{:x}", mix(i, 1)))),
            )),
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| (mix(i, 2) % 1000) as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (mix(i, 3) % 100_000) as f64 / 100.0),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("tag{}", mix(i, 4) % 100)),
            )),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    #[test]
    fn dictionary_encoding_is_kept_for_columns_whose_values_repeat() {
        let batch = table_rows();
        let pays: Vec<bool> = batch
            .columns()
            .iter()
            .map(|c| dictionary_pays(c.as_ref()))
            .collect();
        // id, name and price are all but distinct; qty and tag repeat.
        assert_eq!(pays, [false, false, true, false, true]);
        // Too short to sample, or mostly null: dictionary encoding stays.
        assert!(dictionary_pays(&Int64Array::from_iter_values(0..1000)));
        let sparse = Int64Array::from_iter((0..4000).map(|i| (i % 3 != 0).then_some(i)));
        assert!(dictionary_pays(&sparse));
    }

    /// A chunk's bytes are its id: the same rows must make the same bytes in every version,
    /// or a table written again would share nothing with its old chunks. A change here is a
    /// change of the chunk format (docs/protocol.md, section 2), to be made on purpose.
    #[test]
    fn a_chunk_of_known_rows_has_the_same_bytes_as_ever() {
        let batch = table_rows();
        let bytes = encode_chunk(&batch).expect("encode");
        assert_eq!(encode_chunk_on(&batch, 2).expect("encode"), bytes);
        assert_eq!(
            ObjectId::of(&bytes).to_hex(),
            "c15608b277c56f83a799d4a30f32c039a62c6968335db8a3b30660c9b3e4d3e4"
        );
    }

    #[test]
    fn small_chunks_are_stored_uncompressed_and_read_back_alike() {
        for n in [
            1,
            2,
            UNCOMPRESSED_ROWS as i64,
            UNCOMPRESSED_ROWS as i64 + 1,
            3000,
        ] {
            let batch = rows(n);
            let bytes = encode_chunk(&batch).expect("encode");
            // Encoded on several threads, a chunk has the same bytes.
            assert_eq!(
                encode_chunk_on(&batch, 2).expect("encode"),
                bytes,
                "{n} rows"
            );
            let meta = ParquetMetaDataReader::new()
                .parse_and_finish(&bytes)
                .expect("footer");
            for column in meta.row_group(0).columns() {
                let small = n as usize <= UNCOMPRESSED_ROWS;
                assert_eq!(
                    column.compression(),
                    if small {
                        Compression::UNCOMPRESSED
                    } else {
                        Compression::ZSTD(ZstdLevel::try_new(1).expect("level"))
                    },
                    "{n} rows"
                );
            }
            let id = ObjectId::of(&bytes);
            let read = decode_chunk_on(&id, bytes.clone(), &batch.schema(), 1).expect("decode");
            assert_eq!(read, batch, "{n} rows");
            // Some rows alone: those, in order.
            let last = n as usize - 1;
            let picked: Vec<usize> = [0, last / 2, last]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let positions =
                arrow_array::UInt32Array::from_iter_values(picked.iter().map(|&r| r as u32));
            let expected = arrow_select::take::take_record_batch(&batch, &positions).expect("take");
            for threads in [1, 2] {
                let some = decode_chunk_rows_on(
                    &id,
                    bytes.clone(),
                    &batch.schema(),
                    &[1, 0],
                    &picked,
                    threads,
                )
                .expect("decode rows");
                let columns = vec![expected.column(1).clone(), expected.column(0).clone()];
                assert_eq!(some, columns, "{n} rows");
            }
            // Positions that are not ascending, or past the end, are refused.
            let schema = batch.schema();
            let rows =
                |at: &[usize]| decode_chunk_rows_on(&id, bytes.clone(), &schema, &[0], at, 1);
            assert!(rows(&[n as usize]).is_err());
            if n > 1 {
                assert!(rows(&[1, 0]).is_err());
            }
        }
    }
}
