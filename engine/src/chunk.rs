//! Chunks: runs of rows in key order, each stored as one complete Parquet file.
//!
//! Where a chunk ends is decided by the keys alone: after at least `min_rows` rows, a row
//! ends its chunk when the xxh3 hash of its encoded key falls below a threshold that makes
//! the average chunk `avg_rows` long; a chunk never exceeds `max_rows`. Chunking therefore
//! starts afresh at every boundary, so the same rows always give the same chunks, and an
//! edit changes only the chunks around it until the boundaries line up again.

use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::arrow::array::RecordBatch;
use crate::arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::id::ObjectId;

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
        ChunkParams::with_average(8192)
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

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(CREATED_BY.to_string())
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20))
        // High-cardinality columns give up dictionary encoding early: faster and smaller.
        .set_dictionary_page_size_limit(64 * 1024)
        .build()
}

/// Encodes one chunk as a Parquet file.
pub fn encode_chunk(batch: &RecordBatch) -> Result<Bytes> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 3 + 1024);
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(writer_properties()))
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

/// Decodes only the columns `columns` (positions in the table's schema, in that order) of a
/// chunk: the pages of the other columns are not read. `None` decodes them all.
pub fn decode_chunk_columns(
    id: &ObjectId,
    bytes: Bytes,
    schema: &SchemaRef,
    columns: Option<&[usize]>,
) -> Result<RecordBatch> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_chunk_inner(id, bytes, schema, columns)
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
) -> Result<RecordBatch> {
    let corrupt = |e: String| Error::CorruptObject {
        id: id.to_hex(),
        reason: format!("the chunk does not decode: {e}"),
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| corrupt(e.to_string()))?
        .with_batch_size(1 << 20);
    let (schema, order) = match columns {
        None => (schema.clone(), None),
        Some(cols) => {
            if cols.iter().any(|&c| c >= builder.schema().fields().len()) {
                return Err(corrupt("it has fewer columns than the table".into()));
            }
            let mut sorted = cols.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let mask =
                parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), sorted.clone());
            builder = builder.with_projection(mask);
            // The reader returns the columns in file order; `order` puts them in the
            // order asked for.
            let order: Vec<usize> = cols
                .iter()
                .map(|c| sorted.iter().position(|s| s == c).expect("asked for"))
                .collect();
            (
                Arc::new(schema.project(cols).map_err(|e| corrupt(e.to_string()))?),
                Some(order),
            )
        }
    };
    let reader = builder.build().map_err(|e| corrupt(e.to_string()))?;
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
