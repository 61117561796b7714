//! Reading rows from CSV (with header), Parquet and JSON Lines files into a table's schema,
//! and turning them into a stream of changes sorted by key.
//!
//! Files already sorted by key stream straight through. Otherwise rows are sorted in runs of
//! [`RUN_ROWS`] rows, spilled to Arrow IPC files when there is more than one run, and merged:
//! memory stays bounded whatever the file's size.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{cast_with_options, concat_batches, take_record_batch, CastOptions};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader as IpcReader;
use arrow::ipc::writer::FileWriter as IpcWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::key::{encode_keys, format_key, Keys, Rows};
use crate::progress::Progress;
use crate::table::ChangeSource;

/// Rows read per batch.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Rows sorted in memory at once when a file is not sorted by key.
pub const RUN_ROWS: usize = 1 << 20;
/// Rows sampled to infer the types of a CSV or JSON Lines file.
const INFER_ROWS: usize = 100_000;

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
}

impl Format {
    /// Parses a `--format` value.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
            other => Err(Error::Invalid(format!(
                "unknown format '{other}'; use csv, parquet or jsonl"
            ))),
        }
    }

    /// The format a file name's extension implies.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Self::parse(&ext).map_err(|_| Error::BadInput {
            path: path.display().to_string(),
            message: "cannot tell the format from the file name; pass --format csv|parquet|jsonl"
                .into(),
        })
    }
}

/// A file to read.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
}

impl Input {
    pub fn new(path: &Path, format: Option<Format>) -> Result<Self> {
        let format = match format {
            Some(f) => f,
            None => Format::from_path(path)?,
        };
        Ok(Input {
            path: path.to_path_buf(),
            format,
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::BadInput {
            path: self.name(),
            message: format!("cannot open it: {e}"),
        })
    }

    fn bad(&self, e: impl std::fmt::Display) -> Error {
        Error::BadInput {
            path: self.name(),
            message: e.to_string(),
        }
    }

    /// Where row `row` (0-based) of the file is, for messages.
    fn location(&self, row: u64) -> String {
        match self.format {
            Format::Csv => format!("line {}", row + 2),
            Format::Jsonl => format!("line {}", row + 1),
            Format::Parquet => format!("row {}", row + 1),
        }
    }

    /// The file's own schema (inferred for CSV and JSON Lines).
    pub fn schema(&self) -> Result<Schema> {
        let mut file = self.open()?;
        match self.format {
            Format::Csv => {
                let (schema, _) = arrow::csv::reader::Format::default()
                    .with_header(true)
                    .infer_schema(&mut file, Some(INFER_ROWS))
                    .map_err(|e| self.bad(e))?;
                if schema.fields().is_empty() {
                    return Err(self.bad("the file is empty; a CSV file needs a header line"));
                }
                Ok(schema)
            }
            Format::Jsonl => {
                let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(
                    BufReader::new(file),
                    Some(INFER_ROWS),
                )
                .map_err(|e| self.bad(e))?;
                if schema.fields().is_empty() {
                    return Err(self.bad("the file holds no JSON objects"));
                }
                Ok(schema)
            }
            Format::Parquet => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| self.bad(format!("not a readable Parquet file: {e}")))?;
                Ok(builder.schema().as_ref().clone())
            }
        }
    }

    /// The header names of the file, in file order.
    fn column_names(&self) -> Result<Vec<String>> {
        let schema = match self.format {
            Format::Csv => {
                let mut file = self.open()?;
                arrow::csv::reader::Format::default()
                    .with_header(true)
                    .infer_schema(&mut file, Some(0))
                    .map_err(|e| self.bad(e))?
                    .0
            }
            _ => self.schema()?,
        };
        Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
    }
}

/// Reads a file's rows as batches of a target schema (a table's, or its key columns').
pub struct BatchReader {
    input: Input,
    inner: Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>,
    /// For each target column, its position in the file's batches.
    mapping: Vec<usize>,
    target: SchemaRef,
    /// Target columns that may not be null (key columns).
    required: Vec<usize>,
    rows_read: u64,
}

impl BatchReader {
    /// Opens `input` to be read as `target` (whose key columns are `key_idx`). The file must
    /// have exactly the target's columns, in any order.
    pub fn open(input: &Input, table: &str, target: SchemaRef, key_idx: &[usize]) -> Result<Self> {
        let file_cols = input.column_names()?;
        let mut problems = Vec::new();
        for f in target.fields() {
            if !file_cols.contains(f.name()) {
                problems.push(format!("column '{}' is missing", f.name()));
            }
        }
        for c in &file_cols {
            if target.field_with_name(c).is_err() {
                problems.push(format!("column '{c}' is not in the table"));
            }
        }
        if file_cols.len() != target.fields().len() && problems.is_empty() {
            problems.push("a column appears twice".into());
        }
        if !problems.is_empty() {
            return Err(Error::SchemaMismatch {
                table: table.to_string(),
                path: input.name(),
                details: problems.join("; "),
            });
        }
        // The schema the file is parsed with: file order, target types.
        let read_schema = Arc::new(Schema::new(
            file_cols
                .iter()
                .map(|c| {
                    let f = target.field_with_name(c).expect("checked above");
                    f.as_ref().clone().with_nullable(true)
                })
                .collect::<Vec<_>>(),
        ));
        let mapping: Vec<usize> = target
            .fields()
            .iter()
            .map(|f| {
                file_cols
                    .iter()
                    .position(|c| c == f.name())
                    .expect("checked above")
            })
            .collect();
        let file = input.open()?;
        let inner: Box<dyn Iterator<Item = _> + Send> = match input.format {
            Format::Csv => Box::new(
                arrow::csv::ReaderBuilder::new(read_schema)
                    .with_header(true)
                    .with_batch_size(BATCH_ROWS)
                    .build(file)
                    .map_err(|e| input.bad(e))?,
            ),
            Format::Jsonl => Box::new(
                arrow::json::ReaderBuilder::new(read_schema)
                    .with_batch_size(BATCH_ROWS)
                    .with_strict_mode(true)
                    .build(BufReader::new(file))
                    .map_err(|e| input.bad(e))?,
            ),
            Format::Parquet => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| input.bad(format!("not a readable Parquet file: {e}")))?
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| input.bad(e))?;
                Box::new(reader.map(|r| r.map_err(ArrowError::from)))
            }
        };
        Ok(BatchReader {
            input: input.clone(),
            inner,
            mapping,
            target,
            required: key_idx.to_vec(),
            rows_read: 0,
        })
    }

    /// The next batch in the target schema, with the file row number of its first row.
    pub fn next_batch(&mut self) -> Result<Option<(RecordBatch, u64)>> {
        let Some(batch) = self.inner.next() else {
            return Ok(None);
        };
        let first = self.rows_read;
        let batch = batch.map_err(|e| self.input.bad(e))?;
        self.rows_read += batch.num_rows() as u64;
        let opts = CastOptions {
            safe: false,
            ..Default::default()
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.mapping.len());
        for (ti, &fi) in self.mapping.iter().enumerate() {
            let field = self.target.field(ti);
            let col = batch.column(fi);
            let col = if col.data_type() == field.data_type() {
                col.clone()
            } else {
                cast_with_options(col, field.data_type(), &opts).map_err(|e| {
                    self.input.bad(format!(
                        "column '{}' does not convert from {} to {}: {e}",
                        field.name(),
                        col.data_type(),
                        field.data_type()
                    ))
                })?
            };
            columns.push(col);
        }
        for &k in &self.required {
            let col = &columns[k];
            if col.null_count() > 0 {
                let row = (0..col.len()).find(|&r| col.is_null(r)).unwrap_or(0);
                return Err(Error::NullKey {
                    path: self.input.name(),
                    column: self.target.field(k).name().clone(),
                    location: self.input.location(first + row as u64),
                });
            }
        }
        let batch =
            RecordBatch::try_new(self.target.clone(), columns).map_err(|e| self.input.bad(e))?;
        Ok(Some((batch, first)))
    }
}

use arrow::array::Array;

/// The rows of a file, checked to be in strictly increasing key order. Meeting a key out
/// of order fails with [`Error::NotSorted`]; the caller then sorts instead.
pub struct SortedFile<'p> {
    reader: BatchReader,
    key_idx: Vec<usize>,
    prev: Option<Vec<u8>>,
    progress: &'p dyn Progress,
}

impl<'p> SortedFile<'p> {
    pub fn new(reader: BatchReader, key_idx: Vec<usize>, progress: &'p dyn Progress) -> Self {
        SortedFile {
            reader,
            key_idx,
            prev: None,
            progress,
        }
    }
}

fn keys_of(batch: &RecordBatch, key_idx: &[usize], input: &Input) -> Result<Keys> {
    encode_keys(batch, key_idx)?.map_err(|at| Error::NullKey {
        path: input.name(),
        column: at.column,
        location: input.location(at.row as u64),
    })
}

impl ChangeSource for SortedFile<'_> {
    fn next_rows(&mut self) -> Result<Option<Rows>> {
        let Some((batch, first)) = self.reader.next_batch()? else {
            return Ok(None);
        };
        let keys = keys_of(&batch, &self.key_idx, &self.reader.input)?;
        for i in 0..keys.len() {
            let prev = if i == 0 {
                self.prev.as_deref()
            } else {
                Some(keys.get(i - 1))
            };
            if let Some(p) = prev {
                match keys.get(i).cmp(p) {
                    std::cmp::Ordering::Greater => {}
                    std::cmp::Ordering::Less => return Err(Error::NotSorted),
                    std::cmp::Ordering::Equal => {
                        return Err(Error::DuplicateKey {
                            path: self.reader.input.name(),
                            key: format!(
                                "{} at {}",
                                format_key(&batch, &self.key_idx, i),
                                self.reader.input.location(first + i as u64)
                            ),
                        })
                    }
                }
            }
        }
        self.prev = keys.last().map(|k| k.to_vec());
        self.progress.advance(batch.num_rows() as u64);
        Ok(Some(Rows { batch, keys }))
    }
}

/// Sorts rows by key; fails on a duplicate key.
fn sort_run(
    schema: &SchemaRef,
    parts: Vec<Rows>,
    key_idx: &[usize],
    input: &Input,
) -> Result<Rows> {
    let batches: Vec<RecordBatch> = parts.iter().map(|r| r.batch.clone()).collect();
    let batch = concat_batches(schema, &batches).map_err(|e| Error::arrow("sorting rows", e))?;
    let mut keys = Keys::default();
    for p in &parts {
        keys.append(&p.keys);
    }
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| keys.get(a as usize).cmp(keys.get(b as usize)));
    for w in order.windows(2) {
        if keys.get(w[0] as usize) == keys.get(w[1] as usize) {
            return Err(Error::DuplicateKey {
                path: input.name(),
                key: format_key(&batch, key_idx, w[1] as usize),
            });
        }
    }
    let mut sorted_keys = Keys::with_capacity(keys.len(), 0);
    for &i in &order {
        sorted_keys.push(keys.get(i as usize));
    }
    let batch = take_record_batch(&batch, &UInt32Array::from(order))
        .map_err(|e| Error::arrow("sorting rows", e))?;
    Ok(Rows {
        batch,
        keys: sorted_keys,
    })
}

fn spill(dir: &Path, n: usize, rows: &Rows) -> Result<PathBuf> {
    let path = dir.join(format!("run-{n}.arrow"));
    let io = |e: std::io::Error| Error::Io {
        path: path.clone(),
        source: e,
    };
    let file = File::create(&path).map_err(io)?;
    let mut w = IpcWriter::try_new(file, &rows.batch.schema())
        .map_err(|e| Error::arrow("spilling a sort run", e))?;
    let mut start = 0;
    while start < rows.len() {
        let len = BATCH_ROWS.min(rows.len() - start);
        w.write(&rows.batch.slice(start, len))
            .map_err(|e| Error::arrow("spilling a sort run", e))?;
        start += len;
    }
    w.finish()
        .map_err(|e| Error::arrow("spilling a sort run", e))?;
    Ok(path)
}

/// Reads the whole file and returns its rows sorted by key, spilling runs into `tmp`.
pub fn sort_file(
    mut reader: BatchReader,
    key_idx: Vec<usize>,
    tmp: &Path,
    progress: &dyn Progress,
) -> Result<Box<dyn ChangeSource>> {
    let schema = reader.target.clone();
    let input = reader.input.clone();
    let mut runs = Vec::new();
    let mut buffer: Vec<Rows> = Vec::new();
    let mut buffered = 0;
    while let Some((batch, _)) = reader.next_batch()? {
        let keys = keys_of(&batch, &key_idx, &input)?;
        buffered += batch.num_rows();
        progress.advance(batch.num_rows() as u64);
        buffer.push(Rows { batch, keys });
        if buffered >= RUN_ROWS {
            let run = sort_run(&schema, std::mem::take(&mut buffer), &key_idx, &input)?;
            runs.push(spill(tmp, runs.len(), &run)?);
            buffered = 0;
        }
    }
    let last = sort_run(&schema, buffer, &key_idx, &input)?;
    if runs.is_empty() {
        let mut parts = VecDeque::new();
        let mut start = 0;
        while start < last.len() {
            let end = (start + BATCH_ROWS).min(last.len());
            parts.push_back(last.slice(start, end));
            start = end;
        }
        return Ok(Box::new(crate::table::VecSource(parts)));
    }
    if !last.is_empty() {
        runs.push(spill(tmp, runs.len(), &last)?);
    }
    let mut cursors = Vec::new();
    for path in runs {
        let mut file = File::open(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        let r =
            IpcReader::try_new(file, None).map_err(|e| Error::arrow("reading a sort run", e))?;
        cursors.push(RunCursor {
            reader: r,
            rows: None,
            pos: 0,
        });
    }
    let mut merge = MergeRuns {
        schema,
        key_idx,
        input,
        cursors,
        heap: BinaryHeap::new(),
        prev: None,
        started: false,
    };
    merge.start()?;
    Ok(Box::new(merge))
}

struct RunCursor {
    reader: IpcReader<File>,
    rows: Option<Rows>,
    pos: usize,
}

struct MergeRuns {
    schema: SchemaRef,
    key_idx: Vec<usize>,
    input: Input,
    cursors: Vec<RunCursor>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    prev: Option<Vec<u8>>,
    started: bool,
}

impl MergeRuns {
    /// Makes cursor `i` point at a row, loading its next batch when needed.
    fn advance(&mut self, i: usize) -> Result<()> {
        let c = &mut self.cursors[i];
        loop {
            if let Some(r) = &c.rows {
                if c.pos < r.len() {
                    self.heap.push(Reverse((r.keys.get(c.pos).to_vec(), i)));
                    return Ok(());
                }
            }
            match c.reader.next() {
                Some(b) => {
                    let batch = b.map_err(|e| Error::arrow("reading a sort run", e))?;
                    let keys = keys_of(&batch, &self.key_idx, &self.input)?;
                    c.rows = Some(Rows { batch, keys });
                    c.pos = 0;
                }
                None => {
                    c.rows = None;
                    return Ok(());
                }
            }
        }
    }

    fn start(&mut self) -> Result<()> {
        for i in 0..self.cursors.len() {
            self.advance(i)?;
        }
        self.started = true;
        Ok(())
    }
}

impl ChangeSource for MergeRuns {
    fn next_rows(&mut self) -> Result<Option<Rows>> {
        debug_assert!(self.started);
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut keys = Keys::default();
        let mut segment: Option<(usize, usize, usize)> = None; // (cursor, start, len)
        let mut count = 0;
        while count < BATCH_ROWS {
            let Some(Reverse((key, i))) = self.heap.pop() else {
                break;
            };
            if self.prev.as_deref() == Some(key.as_slice()) {
                let r = self.cursors[i].rows.as_ref().expect("has rows");
                return Err(Error::DuplicateKey {
                    path: self.input.name(),
                    key: format_key(&r.batch, &self.key_idx, self.cursors[i].pos),
                });
            }
            let pos = self.cursors[i].pos;
            segment = match segment {
                Some((c, s, l)) if c == i && s + l == pos => Some((c, s, l + 1)),
                Some((c, s, l)) => {
                    let r = self.cursors[c].rows.as_ref().expect("has rows");
                    parts.push(r.batch.slice(s, l));
                    Some((i, pos, 1))
                }
                None => Some((i, pos, 1)),
            };
            keys.push(&key);
            self.prev = Some(key);
            count += 1;
            self.cursors[i].pos += 1;
            let at_end = self.cursors[i]
                .rows
                .as_ref()
                .is_none_or(|r| self.cursors[i].pos >= r.len());
            if at_end {
                // Close the segment before the cursor's batch is replaced.
                if let Some((c, s, l)) = segment.take() {
                    let r = self.cursors[c].rows.as_ref().expect("has rows");
                    parts.push(r.batch.slice(s, l));
                }
            }
            self.advance(i)?;
        }
        if let Some((c, s, l)) = segment {
            let r = self.cursors[c].rows.as_ref().expect("has rows");
            parts.push(r.batch.slice(s, l));
        }
        if count == 0 {
            return Ok(None);
        }
        let batch = concat_batches(&self.schema, &parts)
            .map_err(|e| Error::arrow("merging sort runs", e))?;
        Ok(Some(Rows { batch, keys }))
    }
}
