//! Reading rows from CSV (with header), Parquet and JSON Lines files into a table's schema,
//! and turning them into a stream of changes sorted by key.
//!
//! Files already sorted by key stream straight through. Otherwise rows are sorted in runs of
//! [`RUN_ROWS`] rows, spilled to Arrow IPC files when there is more than one run, and merged:
//! memory stays bounded whatever the file's size.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arrow::array::AsArray;
use crate::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use crate::arrow::compute::{cast_with_options, concat_batches, take_record_batch, CastOptions};
use crate::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use crate::arrow::error::ArrowError;
use crate::arrow::ipc::reader::FileReader as IpcReader;
use crate::arrow::ipc::writer::FileWriter as IpcWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::csv_text::{byte_mask, CsvText, Parse};
use crate::error::{Error, Result};
use crate::key::{encode_keys, format_key, key_prefix, Keys, Rows};
use crate::progress::Progress;
use crate::schema::type_name;
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

    /// The format a file name's extension implies, under a compression suffix
    /// (`rows.csv.gz` is CSV); `.tsv` is CSV.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = inner_extension(path);
        let ext = if ext == "tsv" { "csv".to_string() } else { ext };
        Self::parse(&ext).map_err(|_| Error::UnknownFormat {
            path: path.display().to_string(),
        })
    }
}

/// The extension of a file name under its compression suffix, in lower case: `csv` for
/// `rows.CSV.gz`, `jsonl` for `rows.jsonl`.
pub(crate) fn inner_extension(path: &Path) -> String {
    let ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let outer = ext(path);
    if Compression::from_extension(&outer).is_some() {
        path.file_stem()
            .map(|s| ext(Path::new(s)))
            .unwrap_or_default()
    } else {
        outer
    }
}

/// How an input file's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Read as it is.
    None,
    /// gzip (`.gz`); several members one after the other are read as one stream.
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// Parses a `--compression` value: `gzip` (`gz`), `zstd` (`zst`) or `none`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            other => Self::from_extension(other).ok_or_else(|| {
                Error::Invalid(format!("unknown compression '{s}'; use gzip, zstd or none"))
            }),
        }
    }

    fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "gz" | "gzip" => Some(Compression::Gzip),
            "zst" | "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The compression a file name's last extension implies (`None` for any other).
    pub fn from_path(path: &Path) -> Self {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| Self::from_extension(&e.to_ascii_lowercase()))
            .unwrap_or(Compression::None)
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// How to read an input file; what is not given follows from the file's name.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The format (default: from the extension under any compression suffix).
    pub format: Option<Format>,
    /// The compression (default: from the last extension, `.gz` or `.zst`).
    pub compression: Option<Compression>,
    /// The field delimiter of a CSV file (default: a tab for `.tsv`, else a comma).
    pub delimiter: Option<u8>,
    /// What to call the input in messages (default: its path).
    pub name: Option<String>,
}

/// Parses a CSV delimiter as people write it: one character, or `\t` or `tab` for a tab.
pub fn parse_delimiter(s: &str) -> Result<u8> {
    let c = match s {
        "\\t" | "tab" | "TAB" => '\t',
        _ => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(Error::Invalid(format!(
                        "the delimiter '{s}' is not one character; give one, such as ';' or '|', or \\t for a tab"
                    )))
                }
            }
        }
    };
    if !c.is_ascii() || matches!(c, '"' | '\n' | '\r') {
        return Err(Error::Invalid(format!(
            "{c:?} cannot be a delimiter; give one ASCII character other than a quote or a line break"
        )));
    }
    Ok(c as u8)
}

/// Where rows come from: a file (CSV with a header, Parquet, JSON Lines), or a stream of
/// Arrow batches handed over in process.
#[derive(Debug, Clone)]
pub struct Input {
    source: Source,
    /// Columns whose type was inferred from a sample of the file: their values are read as
    /// text and converted only when the conversion keeps them exactly (see [`Input::infer`]).
    exact: Vec<String>,
    /// Blank lines of a JSON Lines file met so far (they hold no row), to turn row numbers
    /// into line numbers.
    blank_lines: Arc<std::sync::Mutex<std::collections::BTreeSet<u64>>>,
}

#[derive(Debug, Clone)]
enum Source {
    File {
        path: PathBuf,
        format: Format,
        compression: Compression,
        /// The field delimiter (CSV).
        delimiter: u8,
        /// What the input is called in messages.
        name: String,
    },
    Arrow(Arc<ArrowInput>),
}

/// Arrow batches read once from a caller's reader. An import first streams them (most input
/// is in key order); if they turn out not to be sorted, it reads them again to sort them, so
/// the batches read are kept until the import ends: in memory up to [`RETAIN_BYTES`], then
/// in a spill file under the repository's `tmp/`.
pub struct ArrowInput {
    name: String,
    schema: SchemaRef,
    spill_dir: PathBuf,
    state: std::sync::Mutex<ArrowState>,
}

impl std::fmt::Debug for ArrowInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowInput")
            .field("name", &self.name)
            .finish()
    }
}

/// Arrow batches kept in memory, at most, while a stream is read for the first time.
pub const RETAIN_BYTES: usize = 512 << 20;

struct ArrowState {
    reader: Option<Box<dyn arrow_array::RecordBatchReader + Send>>,
    /// How often the batches were opened (a second time replays what the first read).
    opened: u8,
    kept: Vec<RecordBatch>,
    kept_bytes: usize,
    spill: Option<(tempfile::NamedTempFile, IpcWriter<std::io::BufWriter<File>>)>,
}

impl ArrowState {
    fn keep(&mut self, batch: &RecordBatch, dir: &Path) -> Result<()> {
        if self.spill.is_none() {
            self.kept_bytes += batch.get_array_memory_size();
            self.kept.push(batch.clone());
            if self.kept_bytes <= RETAIN_BYTES {
                return Ok(());
            }
            let io = |e: std::io::Error| Error::Write {
                path: dir.to_path_buf(),
                source: e,
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            let file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
            let out = std::io::BufWriter::new(file.reopen().map_err(io)?);
            let writer = IpcWriter::try_new(out, &batch.schema())
                .map_err(|e| Error::arrow("spilling the input", e))?;
            self.spill = Some((file, writer));
            for b in std::mem::take(&mut self.kept) {
                self.spill_one(&b)?;
            }
            return Ok(());
        }
        self.spill_one(batch)
    }

    fn spill_one(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some((_, w)) = &mut self.spill {
            w.write(batch)
                .map_err(|e| Error::arrow("spilling the input", e))?;
        }
        Ok(())
    }
}

impl Input {
    /// A file, in `format` (default: from its extension).
    pub fn new(path: &Path, format: Option<Format>) -> Result<Self> {
        Self::with_options(
            path,
            &ReadOptions {
                format,
                ..Default::default()
            },
        )
    }

    /// A file, read as `opts` says (what they leave out follows from its name). A compressed
    /// file is decompressed as it is read, never as a whole.
    pub fn with_options(path: &Path, opts: &ReadOptions) -> Result<Self> {
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        if path.is_dir() {
            return Err(Error::Invalid(format!(
                "'{name}' is a directory, not a file"
            )));
        }
        let format = match opts.format {
            Some(f) => f,
            None => Format::from_path(path)?,
        };
        let compression = opts
            .compression
            .unwrap_or_else(|| Compression::from_path(path));
        let bad = |message: String| Error::BadInput {
            path: name.clone(),
            message,
        };
        if format == Format::Parquet && compression != Compression::None {
            return Err(bad(format!(
                "a Parquet file cannot be read {} compressed (Parquet compresses inside the file); decompress it first",
                compression.name()
            )));
        }
        if opts.delimiter.is_some() && format != Format::Csv {
            return Err(bad(
                "a delimiter applies to CSV only; this input is not read as CSV".to_string(),
            ));
        }
        let delimiter = match opts.delimiter {
            Some(d) => d,
            None if inner_extension(path) == "tsv" => b'\t',
            None => b',',
        };
        Ok(Input {
            source: Source::File {
                path: path.to_path_buf(),
                format,
                compression,
                delimiter,
                name,
            },
            exact: Vec::new(),
            blank_lines: Default::default(),
        })
    }

    /// Batches from an Arrow reader, called `name` in messages. What an import must read
    /// twice and cannot keep in memory is spilled under `spill_dir`.
    pub fn arrow(
        name: &str,
        reader: Box<dyn arrow_array::RecordBatchReader + Send>,
        spill_dir: &Path,
    ) -> Self {
        Input {
            source: Source::Arrow(Arc::new(ArrowInput {
                name: name.to_string(),
                schema: reader.schema(),
                spill_dir: spill_dir.to_path_buf(),
                state: std::sync::Mutex::new(ArrowState {
                    reader: Some(reader),
                    opened: 0,
                    kept: Vec::new(),
                    kept_bytes: 0,
                    spill: None,
                }),
            })),
            exact: Vec::new(),
            blank_lines: Default::default(),
        }
    }

    /// The file, if the input is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Arrow(_) => None,
        }
    }

    pub(crate) fn name(&self) -> String {
        match &self.source {
            Source::File { name, .. } => name.clone(),
            Source::Arrow(a) => a.name.clone(),
        }
    }

    /// The file, opened as it is stored (Parquet needs to seek in it).
    fn file(&self) -> Result<(File, Format)> {
        match &self.source {
            Source::File { path, format, .. } => {
                File::open(path)
                    .map(|f| (f, *format))
                    .map_err(|e| Error::BadInput {
                        path: self.name(),
                        message: format!("cannot open it: {e}"),
                    })
            }
            Source::Arrow(_) => Err(Error::Invalid(format!("{} is not a file", self.name()))),
        }
    }

    /// The bytes of a text file (CSV, JSON Lines), decompressed as they are read.
    fn text(&self) -> Result<(Box<dyn Read + Send>, Format)> {
        let (file, format) = self.file()?;
        let compression = match &self.source {
            Source::File { compression, .. } => *compression,
            Source::Arrow(_) => Compression::None,
        };
        let file = BufReader::new(file);
        let reader: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(Decompressed {
                inner: flate2::read::MultiGzDecoder::new(file),
                what: "gzip",
            }),
            Compression::Zstd => Box::new(Decompressed {
                inner: zstd::stream::read::Decoder::with_buffer(file)
                    .map_err(|e| self.bad(format!("cannot start reading it as zstd: {e}")))?,
                what: "zstd",
            }),
        };
        let reader: Box<dyn Read + Send> = match format {
            Format::Csv => Box::new(QuoteCheck::new(reader, self.delimiter())),
            _ => reader,
        };
        Ok((reader, format))
    }

    /// The field delimiter of a CSV file.
    fn delimiter(&self) -> u8 {
        match &self.source {
            Source::File { delimiter, .. } => *delimiter,
            Source::Arrow(_) => b',',
        }
    }

    fn bad(&self, e: impl std::fmt::Display) -> Error {
        Error::BadInput {
            path: self.name(),
            message: e.to_string(),
        }
    }

    /// Where row `row` (0-based) of the input is, for messages.
    fn location(&self, row: u64) -> String {
        match &self.source {
            Source::File {
                format: Format::Csv,
                ..
            } => format!("line {}", row + 2),
            Source::File {
                format: Format::Jsonl,
                ..
            } => format!("line {}", self.jsonl_line(row)),
            _ => format!("row {}", row + 1),
        }
    }

    /// The line (1-based) of row `row` (0-based) of a JSON Lines file: blank lines hold no
    /// row.
    fn jsonl_line(&self, row: u64) -> u64 {
        let mut line = row + 1;
        if let Ok(blank) = self.blank_lines.lock() {
            for &b in blank.iter() {
                if b <= line {
                    line += 1;
                } else {
                    break;
                }
            }
        }
        line
    }

    /// Where two rows (0-based) of the input are, for messages: `lines 2 and 4`.
    fn locations(&self, a: u64, b: u64) -> String {
        let (a, b) = (a.min(b), a.max(b));
        match &self.source {
            Source::File {
                format: Format::Csv,
                ..
            } => format!("lines {} and {}", a + 2, b + 2),
            Source::File {
                format: Format::Jsonl,
                ..
            } => format!("lines {} and {}", self.jsonl_line(a), self.jsonl_line(b)),
            _ => format!("rows {} and {}", a + 1, b + 1),
        }
    }

    /// The batches of an Arrow input: the first time as they come (kept for a second
    /// reading), the second time what was kept, then the rest.
    fn arrow_batches(&self, a: &Arc<ArrowInput>) -> Result<BatchIter> {
        let mut state = a
            .state
            .lock()
            .map_err(|_| self.bad("the input reader failed"))?;
        state.opened += 1;
        match state.opened {
            1 => Ok(Box::new(Keeping {
                input: a.clone(),
                failed: false,
            })),
            2 => {
                let mut first: Vec<RecordBatch> = std::mem::take(&mut state.kept);
                let mut replay: BatchIter = Box::new(std::iter::empty());
                if let Some((file, mut writer)) = state.spill.take() {
                    writer
                        .finish()
                        .map_err(|e| Error::arrow("spilling the input", e))?;
                    drop(writer);
                    let f = file.reopen().map_err(|e| Error::Io {
                        path: file.path().to_path_buf(),
                        source: e,
                    })?;
                    let r = IpcReader::try_new(f, None)
                        .map_err(|e| Error::arrow("reading the spilled input", e))?;
                    // The file is removed once read (unlinked now, its data stays readable).
                    drop(file);
                    replay = Box::new(
                        r.map(|b| b.map_err(|e| Error::arrow("reading the spilled input", e))),
                    );
                    first.clear();
                }
                let rest = Keeping {
                    input: a.clone(),
                    failed: false,
                };
                Ok(Box::new(
                    first.into_iter().map(Ok).chain(replay).chain(rest),
                ))
            }
            _ => Err(self.bad("the input can be read only twice")),
        }
    }
    /// The input's own schema (inferred for CSV and JSON Lines, by Arrow's rules; see
    /// [`Input::infer`] for the schema a new table gets).
    pub fn schema(&self) -> Result<Schema> {
        let schema = self.own_schema()?;
        self.check_names(schema.fields().iter().map(|f| f.name().as_str()))?;
        Ok(schema)
    }

    /// Refuses a header with an empty column name or a name given twice: a second column of
    /// the same name would silently take the place of the first.
    fn check_names<'a>(&self, names: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (i, name) in names.enumerate() {
            if name.trim().is_empty() {
                return Err(self.bad(format!(
                    "column {} has no name; every column needs a unique name in the header",
                    i + 1
                )));
            }
            if !seen.insert(name) {
                return Err(self.bad(format!(
                    "column '{name}' appears twice; every column needs a unique name in the header"
                )));
            }
        }
        Ok(())
    }

    /// The schema a new table gets from this input: the input's own, with `types` given
    /// for some columns, and, for CSV and JSON Lines, inferred so that no value changes:
    /// a column whose sampled text a number would not keep exactly (`00123`, a whole number
    /// beyond int64) stays text, with a note saying why. The columns whose numeric type was
    /// inferred are then read exactly: a later value that the type would change fails the
    /// import instead (see [`Error::BadValue`]).
    pub fn infer(&self, types: &[(String, DataType)]) -> Result<Inferred> {
        let schema = self.schema()?;
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut notes = Vec::new();
        let text = self.is_text();
        if text {
            for (i, note) in self.sample_notes(&schema)? {
                let f = &fields[i];
                if types.iter().any(|(c, _)| c == f.name()) {
                    continue;
                }
                notes.push(format!(
                    "column '{}' is kept as text: {note}; give its type to store it otherwise",
                    f.name()
                ));
                fields[i] = f.clone().with_data_type(DataType::Utf8);
            }
        }
        for (column, dt) in types {
            match fields.iter_mut().find(|f| f.name() == column) {
                Some(f) => *f = f.clone().with_data_type(dt.clone()),
                None => {
                    return Err(self.bad(format!(
                        "a type is given for column '{column}', which the input does not have"
                    )))
                }
            }
        }
        let exact = if text {
            fields
                .iter()
                .filter(|f| !types.iter().any(|(c, _)| c == f.name()))
                .filter(|f| f.data_type() != &DataType::Utf8)
                .map(|f| f.name().clone())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Inferred {
            schema: Schema::new(fields),
            notes,
            exact,
        })
    }

    /// Whether the input is a text file (CSV, JSON Lines): its values are read as text and
    /// converted by Strata.
    fn is_text(&self) -> bool {
        matches!(
            self.source,
            Source::File {
                format: Format::Csv | Format::Jsonl,
                ..
            }
        )
    }

    /// This input, with the columns whose type was inferred read exactly.
    pub fn with_exact(mut self, columns: Vec<String>) -> Self {
        self.exact = columns;
        self
    }

    /// For the columns of an inferred schema whose sampled text its type would not keep,
    /// (column index, why).
    fn sample_notes(&self, schema: &Schema) -> Result<Vec<(usize, String)>> {
        if !self.is_text() {
            return Ok(Vec::new());
        }
        let (file, format) = self.text()?;
        let mut out = Vec::new();
        match format {
            Format::Csv => {
                let text = Arc::new(Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| Field::new(f.name(), DataType::Utf8, true))
                        .collect::<Vec<_>>(),
                ));
                let reader = CsvText::new(file, text, self.delimiter(), BATCH_ROWS);
                let n = schema.fields().len();
                let mut found: Vec<Option<String>> = vec![None; n];
                // Text columns: whether every value is a whole number, and the first one
                // beyond int64 (Arrow keeps such a column as text).
                let mut whole = vec![true; n];
                let mut beyond: Vec<Option<String>> = vec![None; n];
                let mut rows = 0u64;
                for batch in reader {
                    let batch = match batch {
                        Ok(b) => b,
                        // A file that cannot be read (bad compressed data) says so; the
                        // rest of a sample is only for notes, read again by the import.
                        Err(ArrowError::IoError(m, _)) => return Err(self.bad(m)),
                        Err(_) => break,
                    };
                    for (i, f) in schema.fields().iter().enumerate() {
                        let Some(col) = batch.column(i).as_string_opt::<i32>() else {
                            continue;
                        };
                        let sampled = (INFER_ROWS as u64).saturating_sub(rows) as usize;
                        for (r, v) in col.iter().enumerate().take(sampled) {
                            let Some(v) = v else { continue };
                            let at = || self.location(rows + r as u64);
                            if f.data_type() == &DataType::Utf8 {
                                if !whole[i] {
                                    break;
                                }
                                if !is_whole_number(v) {
                                    whole[i] = false;
                                } else if beyond[i].is_none() && v.parse::<i64>().is_err() {
                                    beyond[i] = Some(format!(
                                        "its value '{v}' at {} is a whole number beyond int64",
                                        at()
                                    ));
                                }
                            } else if found[i].is_none() {
                                if let Some(why) = changed_as(v, f.data_type()) {
                                    found[i] = Some(format!("its value '{v}' at {} {why}", at()));
                                }
                            }
                        }
                    }
                    rows += batch.num_rows() as u64;
                    if rows >= INFER_ROWS as u64 {
                        break;
                    }
                }
                for i in 0..n {
                    let note = match (&found[i], whole[i], &beyond[i]) {
                        (Some(f), _, _) => Some(f.clone()),
                        (None, true, Some(b)) => Some(b.clone()),
                        _ => None,
                    };
                    if let Some(note) = note {
                        out.push((i, note));
                    }
                }
            }
            Format::Jsonl => {
                let mut values = JsonValues {
                    lines: BufReader::new(file),
                    line: 0,
                    records: 0,
                    failed: None,
                };
                let mut seen = std::collections::HashSet::new();
                while let Some(Ok(v)) = values.next() {
                    let serde_json::Value::Object(map) = v else {
                        continue;
                    };
                    for (k, v) in map {
                        let serde_json::Value::Number(n) = v else {
                            continue;
                        };
                        if beyond_int64(&n) && seen.insert(k.clone()) {
                            if let Some((i, _)) = schema.column_with_name(&k) {
                                out.push((
                                    i,
                                    format!(
                                        "its value {n} at line {} is a whole number beyond int64",
                                        values.line
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            Format::Parquet => {}
        }
        Ok(out)
    }

    fn own_schema(&self) -> Result<Schema> {
        if let Source::Arrow(a) = &self.source {
            return Ok(a.schema.as_ref().clone());
        }
        if !self.is_text() {
            let (file, _) = self.file()?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| self.bad(format!("not a readable Parquet file: {e}")))?;
            return Ok(builder.schema().as_ref().clone());
        }
        let (mut file, format) = self.text()?;
        match format {
            Format::Csv => {
                let (schema, _) =
                    crate::csv_text::infer_schema(&mut file, self.delimiter(), INFER_ROWS)
                        .map_err(|e| self.bad(arrow_text(&e)))?;
                if schema.fields().is_empty() {
                    return Err(self.bad("the file is empty; a CSV file needs a header line"));
                }
                Ok(schema)
            }
            Format::Jsonl => {
                let mut values = JsonValues {
                    lines: BufReader::new(file),
                    line: 0,
                    records: 0,
                    failed: None,
                };
                let inferred =
                    crate::arrow::json::reader::infer_json_schema_from_iterator(&mut values);
                if let Some(e) = values.failed.take() {
                    return Err(self.bad(e));
                }
                let schema = inferred
                    .map_err(|e| self.bad(format!("line {}: {}", values.line, arrow_text(&e))))?;
                if schema.fields().is_empty() {
                    return Err(self.bad("the file holds no JSON objects"));
                }
                Ok(schema)
            }
            Format::Parquet => Err(self.bad("a Parquet file is not text")),
        }
    }

    /// The header names of the file, in file order.
    pub(crate) fn column_names(&self) -> Result<Vec<String>> {
        let schema = match &self.source {
            Source::File {
                format: Format::Csv,
                ..
            } => {
                let (mut file, _) = self.text()?;
                crate::csv_text::infer_schema(&mut file, self.delimiter(), 0)
                    .map_err(|e| self.bad(arrow_text(&e)))?
                    .0
            }
            _ => self.own_schema()?,
        };
        self.check_names(schema.fields().iter().map(|f| f.name().as_str()))?;
        Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
    }
}

/// The schema a new table gets from an input (see [`Input::infer`]).
#[derive(Debug, Clone)]
pub struct Inferred {
    pub schema: Schema,
    /// Why a column that looks numeric is kept as text, one line per column.
    pub notes: Vec<String>,
    /// The columns whose non-text type was inferred, to be read exactly.
    pub exact: Vec<String>,
}

/// The batches of an Arrow input's reader; the first time through, each is kept for a
/// second reading.
struct Keeping {
    input: Arc<ArrowInput>,
    failed: bool,
}

impl Iterator for Keeping {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let name = self.input.name.clone();
        let bad = |m: String| Error::BadInput {
            path: name.clone(),
            message: m,
        };
        let mut state = match self.input.state.lock() {
            Ok(s) => s,
            Err(_) => {
                self.failed = true;
                return Some(Err(bad("the input reader failed".into())));
            }
        };
        let next = state.reader.as_mut()?.next()?;
        let batch = match next {
            Ok(b) => b,
            Err(e) => {
                self.failed = true;
                return Some(Err(bad(arrow_text(&e))));
            }
        };
        if state.opened == 1 {
            let dir = self.input.spill_dir.clone();
            if let Err(e) = state.keep(&batch, &dir) {
                self.failed = true;
                return Some(Err(e));
            }
        }
        Some(Ok(batch))
    }
}

/// Reads a file's rows as batches of a target schema (a table's, or its key columns').
pub struct BatchReader {
    input: Input,
    inner: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// For each target column, its position in the file's batches.
    mapping: Vec<usize>,
    target: SchemaRef,
    /// For each target column, whether its type was inferred (so read exactly).
    exact: Vec<bool>,
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
        // The schema the file is parsed with: file order; for CSV and JSON Lines, every
        // column that is not nested is read as its text and converted afterwards (see
        // `convert_text`), so that no value is changed on the way and a value that does not
        // fit is reported with its column and line.
        let text = input.is_text();
        let read_schema = Arc::new(Schema::new(
            file_cols
                .iter()
                .map(|c| {
                    let f = target.field_with_name(c).expect("checked above");
                    let f = f.as_ref().clone().with_nullable(true);
                    if text && !f.data_type().is_nested() {
                        f.with_data_type(DataType::Utf8)
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>(),
        ));
        let exact: Vec<bool> = target
            .fields()
            .iter()
            .map(|f| input.exact.contains(f.name()))
            .collect();
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
        let format = match &input.source {
            Source::Arrow(a) => {
                let batches = input.arrow_batches(a)?;
                return Ok(BatchReader {
                    input: input.clone(),
                    inner: batches,
                    mapping,
                    target,
                    exact,
                    required: key_idx.to_vec(),
                    rows_read: 0,
                });
            }
            Source::File { format, .. } => *format,
        };
        let inner: Box<dyn Iterator<Item = _> + Send> = match format {
            Format::Csv => {
                let (file, _) = input.text()?;
                // Plain lines' int64 and float64 columns are parsed as they are cut (and
                // checked as `convert_text` checks them).
                let mut parses = vec![Parse::Text; file_cols.len()];
                for (ti, &fi) in mapping.iter().enumerate() {
                    parses[fi] = match target.field(ti).data_type() {
                        DataType::Int64 => Parse::Int64 { exact: exact[ti] },
                        DataType::Float64 => Parse::Float64 { exact: exact[ti] },
                        _ => Parse::Text,
                    };
                }
                let reader = CsvText::new(file, read_schema.clone(), input.delimiter(), BATCH_ROWS)
                    .parsing(parses);
                let input = input.clone();
                Box::new(reader.map(move |r| r.map_err(|e| input.bad(arrow_text(&e)))))
            }
            Format::Jsonl => Box::new(JsonLines {
                input: input.clone(),
                lines: BufReader::new(input.text()?.0),
                schema: read_schema,
                line: 0,
                ready: VecDeque::new(),
                done: false,
            }),
            Format::Parquet => {
                let (file, _) = input.file()?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| input.bad(format!("not a readable Parquet file: {e}")))?
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| input.bad(e))?;
                let input = input.clone();
                Box::new(reader.map(move |r| r.map_err(|e| input.bad(e))))
            }
        };
        Ok(BatchReader {
            input: input.clone(),
            inner: read_ahead(inner),
            mapping,
            target,
            exact,
            required: key_idx.to_vec(),
            rows_read: 0,
        })
    }

    /// The next batch in the target schema, with the file row number of its first row.
    ///
    /// (Parsing runs on its own thread, a couple of batches ahead: see [`read_ahead`].)
    pub fn next_batch(&mut self) -> Result<Option<(RecordBatch, u64)>> {
        let Some(batch) = self.inner.next() else {
            return Ok(None);
        };
        let first = self.rows_read;
        let batch = batch?;
        self.rows_read += batch.num_rows() as u64;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.mapping.len());
        for (ti, &fi) in self.mapping.iter().enumerate() {
            let field = self.target.field(ti);
            let col = batch.column(fi);
            let converted = if col.data_type() == field.data_type() {
                Ok(col.clone())
            } else if let Some(text) = col.as_string_opt::<i32>() {
                convert_text(text, field.data_type(), self.exact[ti])
            } else {
                convert(col, field.data_type())
            };
            let col = converted.map_err(|bad| {
                let value = crate::arrow::util::display::ArrayFormatter::try_new(
                    col.as_ref(),
                    &Default::default(),
                )
                .map(|f| f.value(bad.row).to_string())
                .unwrap_or_default();
                Error::BadValue {
                    message: format!(
                        "{}: value '{value}' in column '{}' at {} {}",
                        self.input.name(),
                        field.name(),
                        self.input.location(first + bad.row as u64),
                        bad.problem
                    ),
                    column: field.name().clone(),
                    keeps: self.exact[ti].then(|| "utf8".to_string()),
                }
            })?;
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

/// A CSV file's text, passed through unchanged, failing at its end when a quoted field that
/// starts in it is never closed. The CSV reader would otherwise take everything after the
/// opening quote, line breaks and all, as that one field: the rest of the file quietly
/// becomes one value of its last row. (pandas and DuckDB refuse such a file too.)
///
/// A quote starts a quoted field only at a field's start (the file's start, after its
/// byte-order mark, or after a delimiter or a line break), as `csv_core` reads it; inside,
/// a doubled quote is a quote, and a single one closes the field. Only the quotes are looked
/// at (text up to the first quote is passed over by `memchr`'s vector search, the rest 64
/// bytes at a time), and the line breaks of the text are counted once (for the message).
struct QuoteCheck<R> {
    inner: R,
    delimiter: u8,
    state: Quoting,
    /// The last byte of the text read so far (`None` at the file's start).
    last: Option<u8>,
    /// Line breaks in the text read so far.
    lines: u64,
    /// The line the open quoted field starts on.
    opened_on: u64,
    /// Bytes of a byte-order mark still to be passed over at the file's start.
    mark: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Outside,
    Inside,
    /// Inside, just after a quote: a quote at this position of the text (0 for the next
    /// text read) is a quote in the field; anything else means the field closed.
    Closing(usize),
}

impl<R: Read> QuoteCheck<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        QuoteCheck {
            inner,
            delimiter,
            state: Quoting::Outside,
            last: None,
            lines: 0,
            opened_on: 0,
            mark: 3,
        }
    }

    /// Follows the quoting through `text`, the next bytes of the file.
    fn follow(&mut self, mut text: &[u8]) {
        // A UTF-8 byte-order mark (`csv_core` passes over it): the first field starts after it.
        while self.mark > 0 && !text.is_empty() {
            if text[0] != [0xEF, 0xBB, 0xBF][3 - self.mark] {
                self.mark = 0;
                break;
            }
            text = &text[1..];
            self.mark -= 1;
        }
        if text.is_empty() {
            return;
        }
        self.mark = 0;
        let mut opened_at = None;
        // Text without a quote (most of many files) is passed over by one vector search.
        let first = memchr::memchr(b'"', text).unwrap_or(text.len());
        let mut at_block = first - first % 64;
        for block in text[at_block..].chunks(64) {
            let mut quotes = byte_mask(block, b'"');
            while quotes != 0 {
                let at = at_block + quotes.trailing_zeros() as usize;
                quotes &= quotes - 1;
                if let Quoting::Closing(next) = self.state {
                    if at == next {
                        self.state = Quoting::Inside;
                        continue;
                    }
                    self.state = Quoting::Outside;
                }
                match self.state {
                    Quoting::Inside => self.state = Quoting::Closing(at + 1),
                    _ => {
                        let before = match at {
                            0 => self.last,
                            _ => Some(text[at - 1]),
                        };
                        if before.is_none_or(|b| b == self.delimiter || b == b'\n' || b == b'\r') {
                            self.state = Quoting::Inside;
                            opened_at = Some(at);
                        }
                    }
                }
            }
            at_block += block.len();
        }
        self.state = match self.state {
            Quoting::Closing(next) if next >= text.len() => Quoting::Closing(0),
            Quoting::Closing(_) => Quoting::Outside,
            state => state,
        };
        // Still in a quoted field opened in this text (maybe just after a quote in it):
        // where it starts, for the message.
        if let (Quoting::Inside | Quoting::Closing(_), Some(at)) = (self.state, opened_at) {
            self.opened_on = self.lines + count_lines(&text[..at]) + 1;
        }
        self.lines += count_lines(text);
        self.last = text.last().copied();
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.follow(&buf[..n]);
        } else if !buf.is_empty() && self.state == Quoting::Inside {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the quoted field that starts on line {} is not closed by the end of the file; add the closing \" (a quote inside a quoted field is written twice, \"\")",
                    self.opened_on
                ),
            ));
        }
        Ok(n)
    }
}

/// The line breaks (`\n`) in `text` (`memchr`'s vector count).
fn count_lines(text: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', text).count() as u64
}

/// A decompressing reader whose errors say that the compressed data could not be read (an
/// error in the middle of a CSV or JSON Lines file is otherwise hard to place).
struct Decompressed<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot decompress it as {}: {e} (the data is damaged, or not {} data)",
                    self.what, self.what
                ),
            )
        })
    }
}

/// The text of an Arrow error without the variant's prefix (`Parser error: `, `Json error: `).
fn arrow_text(e: &ArrowError) -> String {
    match e {
        ArrowError::CsvError(s) => field_count_text(s).unwrap_or_else(|| s.clone()),
        ArrowError::ParseError(s) | ArrowError::JsonError(s) => s.clone(),
        ArrowError::IoError(s, _) => s.clone(),
        other => other.to_string(),
    }
}

/// Arrow's two messages for a CSV line with more or fewer fields than the header (one from
/// the reader, one from the schema inference), said the same way: which line, how many
/// fields it has against the header's, and what to do. `None` for any other message.
fn field_count_text(s: &str) -> Option<String> {
    let number = |t: &str| t.trim().parse::<u64>().ok();
    let (line, expected, found) = if let Some(rest) =
        s.strip_prefix("incorrect number of fields for line ")
    {
        // "incorrect number of fields for line L, expected E got F" (or "got more than F")
        let (line, rest) = rest.split_once(", expected ")?;
        let (expected, found) = rest.split_once(" got ")?;
        let found = match found.strip_prefix("more than ") {
            Some(f) => format!("more than {}", number(f)?),
            None => number(found)?.to_string(),
        };
        (number(line)?, number(expected)?, found)
    } else {
        // "Encountered unequal lengths between records on CSV file. Expected E records,
        // found F records at line L"
        let rest =
            s.strip_prefix("Encountered unequal lengths between records on CSV file. Expected ")?;
        let (expected, rest) = rest.split_once(" records, found ")?;
        let (found, line) = rest.split_once(" records at line ")?;
        (number(line)?, number(expected)?, number(found)?.to_string())
    };
    let fields = if found == "1" { "field" } else { "fields" };
    Some(format!(
        "line {line} has {found} {fields} but the header has {expected}: every line needs one field per column (a field that holds the delimiter, a quote or a line break goes in double quotes)"
    ))
}

/// The name of a type in messages (`float64`), falling back to Arrow's.
fn shown_type(dt: &DataType) -> String {
    type_name(dt).unwrap_or_else(|| dt.to_string())
}

/// A value of a column that its type cannot hold as written: its row in the batch, and why.
struct Unfit {
    row: usize,
    problem: String,
}

/// Converts a column read as text to `to`. Fails on the first value that does not parse;
/// when `exact` (the type was inferred), also on one that the number would not keep as
/// written (see [`changed_as`]).
fn convert_text(
    text: &crate::arrow::array::StringArray,
    to: &DataType,
    exact: bool,
) -> std::result::Result<ArrayRef, Unfit> {
    use crate::arrow::datatypes::*;
    match to {
        DataType::Int8 => return parse_numbers::<Int8Type>(text, to, exact),
        DataType::Int16 => return parse_numbers::<Int16Type>(text, to, exact),
        DataType::Int32 => return parse_numbers::<Int32Type>(text, to, exact),
        DataType::Int64 => return parse_numbers::<Int64Type>(text, to, exact),
        DataType::UInt8 => return parse_numbers::<UInt8Type>(text, to, exact),
        DataType::UInt16 => return parse_numbers::<UInt16Type>(text, to, exact),
        DataType::UInt32 => return parse_numbers::<UInt32Type>(text, to, exact),
        DataType::UInt64 => return parse_numbers::<UInt64Type>(text, to, exact),
        DataType::Float32 => return parse_numbers::<Float32Type>(text, to, exact),
        DataType::Float64 => return parse_numbers::<Float64Type>(text, to, exact),
        _ => {}
    }
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    let out = cast_with_options(text, to, &opts).map_err(|e| Unfit {
        row: 0,
        problem: format!("cannot be read as {}: {}", shown_type(to), arrow_text(&e)),
    })?;
    if out.null_count() != text.null_count() {
        if let Some(row) = (0..text.len()).find(|&r| text.is_valid(r) && out.is_null(r)) {
            return Err(Unfit {
                row,
                problem: format!("is not a valid {}", shown_type(to)),
            });
        }
    }
    if exact {
        for (row, v) in text.iter().enumerate() {
            if let Some(why) = v.and_then(|v| changed_as(v, to)) {
                return Err(Unfit {
                    row,
                    problem: why.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// [`convert_text`] for a number type, in one pass: each value is parsed as Arrow's cast
/// parses it, and checked as it is parsed. (Most of a CSV file is often numbers: one pass
/// over the text, with no second array of nulls to build and compare, is the quicker way.)
fn parse_numbers<P: arrow_cast::parse::Parser>(
    text: &crate::arrow::array::StringArray,
    to: &DataType,
    exact: bool,
) -> std::result::Result<ArrayRef, Unfit> {
    let mut values = Vec::with_capacity(text.len());
    for row in 0..text.len() {
        if text.is_null(row) {
            values.push(P::Native::default());
            continue;
        }
        let v = text.value(row);
        let Some(n) = P::parse(v) else {
            return Err(Unfit {
                row,
                problem: format!("is not a valid {}", shown_type(to)),
            });
        };
        if exact {
            if let Some(why) = changed_as(v, to) {
                return Err(Unfit {
                    row,
                    problem: why.to_string(),
                });
            }
        }
        values.push(n);
    }
    Ok(Arc::new(crate::arrow::array::PrimitiveArray::<P>::new(
        values.into(),
        text.nulls().cloned(),
    )))
}

/// Converts a column of another type (a Parquet or Arrow input's) to the table's type,
/// refusing a value that would not survive: one out of the type's range, or a fraction
/// that an integer column would cut off.
fn convert(col: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, Unfit> {
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    let out = cast_with_options(col, to, &opts).map_err(|e| Unfit {
        row: 0,
        problem: format!(
            "cannot be converted from {} to {}: {}",
            shown_type(col.data_type()),
            shown_type(to),
            arrow_text(&e)
        ),
    })?;
    if out.null_count() != col.null_count() {
        if let Some(row) = (0..col.len()).find(|&r| col.is_valid(r) && out.is_null(r)) {
            return Err(Unfit {
                row,
                problem: format!("does not fit in {}", shown_type(to)),
            });
        }
    }
    if col.data_type().is_floating() && to.is_integer() {
        let back = cast_with_options(&out, &DataType::Float64, &opts);
        let orig = cast_with_options(col, &DataType::Float64, &opts);
        if let (Ok(back), Ok(orig)) = (back, orig) {
            let (back, orig) = (
                back.as_primitive::<Float64Type>(),
                orig.as_primitive::<Float64Type>(),
            );
            if let Some(row) =
                (0..orig.len()).find(|&r| orig.is_valid(r) && back.value(r) != orig.value(r))
            {
                return Err(Unfit {
                    row,
                    problem: format!("has a fraction that {} would cut off", shown_type(to)),
                });
            }
        }
    }
    Ok(out)
}

/// Whether `s` is a whole number as text: an optional sign and digits.
fn is_whole_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Why a number of type `to` would not keep the text `v` as written, if it would not: a
/// leading zero (`00123`, an identifier or a code more often than a quantity) is dropped.
pub(crate) fn changed_as(v: &str, to: &DataType) -> Option<&'static str> {
    if !(to.is_integer() || to.is_floating()) {
        return None;
    }
    // The whole part runs to the first '.', 'e' or 'E': it has a leading zero when it
    // starts with a '0' that another of its characters follows. (Only the first two bytes
    // are looked at: this runs for every value of a column whose type was inferred.)
    let b = v.as_bytes();
    let b = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    (b.len() > 1 && b[0] == b'0' && !matches!(b[1], b'.' | b'e' | b'E'))
        .then_some("has a leading zero, which a number would drop")
}

/// Whether a JSON number is a whole number beyond int64, which Arrow would read as a
/// float64, losing its last digits.
fn beyond_int64(n: &serde_json::Number) -> bool {
    if n.is_i64() {
        return false;
    }
    n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.223_372_036_854_776e18)
}

/// JSON values of a JSON Lines file, one per non-blank line, for schema inference. The
/// first line that is not JSON stops it with a message naming that line.
struct JsonValues<R> {
    lines: R,
    /// Lines read so far (the number of the current line).
    line: u64,
    records: usize,
    failed: Option<String>,
}

impl<R: BufRead> Iterator for JsonValues<R> {
    type Item = std::result::Result<serde_json::Value, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.records >= INFER_ROWS || self.failed.is_some() {
            return None;
        }
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match self.lines.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.failed = Some(format!("cannot read line {}: {e}", self.line + 1));
                    return None;
                }
            }
            self.line += 1;
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.records += 1;
            return match serde_json::from_slice(buf.trim_ascii()) {
                Ok(v) => Some(Ok(v)),
                Err(e) => {
                    self.failed = Some(format!(
                        "line {} is not valid JSON: {}",
                        self.line,
                        json_syntax_error(&e)
                    ));
                    None
                }
            };
        }
    }
}

/// A serde_json error of a one-line text, with its column but not its line (always 1).
fn json_syntax_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(head) if e.line() > 0 => format!("{head} at column {}", e.column()),
        _ => text,
    }
}

/// Reads JSON Lines in batches of lines, decoding each batch with Arrow's JSON decoder. When
/// a batch fails, its lines are decoded one by one to find the line to blame.
struct JsonLines {
    input: Input,
    lines: BufReader<Box<dyn Read + Send>>,
    schema: SchemaRef,
    /// Lines read so far.
    line: u64,
    ready: VecDeque<RecordBatch>,
    done: bool,
}

impl JsonLines {
    fn decoder(&self) -> std::result::Result<crate::arrow::json::reader::Decoder, ArrowError> {
        crate::arrow::json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(BATCH_ROWS)
            .with_strict_mode(true)
            .with_coerce_primitive(true)
            .build_decoder()
    }

    /// Decodes all of `buf` into batches.
    fn decode(&self, buf: &[u8]) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
        let mut decoder = self.decoder()?;
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let n = decoder.decode(&buf[pos..])?;
            pos += n;
            if n == 0 {
                // The decoder holds a full batch.
                match decoder.flush()? {
                    Some(b) => out.push(b),
                    None => {
                        return Err(ArrowError::JsonError(
                            "the JSON decoder stopped making progress".into(),
                        ))
                    }
                }
            }
        }
        if let Some(b) = decoder.flush()? {
            out.push(b);
        }
        Ok(out)
    }

    /// Reads the next batch of lines; returns false at the end of the file.
    fn fill(&mut self) -> Result<bool> {
        let mut buf = Vec::new();
        // (line number, start in `buf`) of each line read.
        let mut starts: Vec<(u64, usize)> = Vec::new();
        while starts.len() < BATCH_ROWS {
            let start = buf.len();
            let n = self.lines.read_until(b'\n', &mut buf).map_err(|e| {
                self.input
                    .bad(format!("cannot read line {}: {e}", self.line + 1))
            })?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            if buf[start..].iter().all(u8::is_ascii_whitespace) {
                if let Ok(mut blank) = self.input.blank_lines.lock() {
                    blank.insert(self.line);
                }
            }
            starts.push((self.line, start));
        }
        if starts.is_empty() {
            return Ok(false);
        }
        match self.decode(&buf) {
            Ok(batches) => {
                self.ready
                    .extend(batches.into_iter().filter(|b| b.num_rows() > 0));
                Ok(true)
            }
            Err(e) => Err(self.blame(&buf, &starts, &e)),
        }
    }

    /// Finds the line of `buf` that fails to decode and describes the failure.
    fn blame(&self, buf: &[u8], starts: &[(u64, usize)], batch_error: &ArrowError) -> Error {
        for (i, &(line, start)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(buf.len(), |&(_, s)| s);
            let text = &buf[start..end];
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Err(e) = self.decode(text) {
                return self.input.bad(format!("line {line}: {}", arrow_text(&e)));
            }
        }
        let (first, last) = (starts[0].0, starts[starts.len() - 1].0);
        self.input.bad(format!(
            "lines {first} to {last}: {}",
            arrow_text(batch_error)
        ))
    }
}

impl Iterator for JsonLines {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

use crate::arrow::array::Array;

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

/// Sorts rows by key; fails on a duplicate key. The rows are consecutive rows of the file,
/// starting at its row `first` (0-based), so a duplicate is reported with both its lines.
fn sort_run(
    schema: &SchemaRef,
    parts: Vec<Rows>,
    key_idx: &[usize],
    input: &Input,
    first: u64,
) -> Result<Rows> {
    let batches: Vec<RecordBatch> = parts.iter().map(|r| r.batch.clone()).collect();
    let batch = concat_batches(schema, &batches).map_err(|e| Error::arrow("sorting rows", e))?;
    let mut keys = Keys::default();
    for p in &parts {
        keys.append(&p.keys);
    }
    // By each key's first 16 bytes as a number, then (when those are equal) its bytes.
    let mut by_prefix: Vec<(u128, u32)> = (0..keys.len())
        .map(|i| (keys.prefix(i), i as u32))
        .collect();
    by_prefix.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| keys.get(a.1 as usize).cmp(keys.get(b.1 as usize)))
    });
    let order: Vec<u32> = by_prefix.iter().map(|&(_, i)| i).collect();
    for w in by_prefix.windows(2) {
        let ((p0, a), (p1, b)) = (w[0], w[1]);
        if p0 == p1 && keys.get(a as usize) == keys.get(b as usize) {
            return Err(Error::DuplicateKey {
                path: input.name(),
                key: format!(
                    "{} at {}",
                    format_key(&batch, key_idx, b as usize),
                    input.locations(first + u64::from(a), first + u64::from(b))
                ),
            });
        }
    }
    let mut sorted_keys = Keys::with_capacity(keys.len(), keys.byte_len());
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
    let io = |e: std::io::Error| Error::Write {
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

/// The folder sort runs spill into, made on the first spill. Dropping it removes the folder,
/// and its parent (the repository's `tmp`) when that is left empty.
struct SpillDir<'a> {
    make: &'a dyn Fn() -> Result<tempfile::TempDir>,
    dir: Option<tempfile::TempDir>,
}

impl SpillDir<'_> {
    fn path(&mut self) -> Result<PathBuf> {
        if self.dir.is_none() {
            self.dir = Some((self.make)()?);
        }
        Ok(self
            .dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .expect("made above"))
    }

    /// Keeps the folder alive for as long as the returned guard.
    fn into_guard(mut self) -> SpillGuard {
        SpillGuard(self.dir.take())
    }
}

impl Drop for SpillDir<'_> {
    fn drop(&mut self) {
        drop(SpillGuard(self.dir.take()));
    }
}

/// Removes a spill folder, and its parent when that is left empty, when dropped.
struct SpillGuard(Option<tempfile::TempDir>);

impl Drop for SpillGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let parent = dir.path().parent().map(Path::to_path_buf);
            let _ = dir.close();
            if let Some(p) = parent {
                // Fails, as it should, while another command has a folder there.
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

/// Reads the whole file and returns its rows sorted by key. Runs that do not fit in memory
/// spill into a temporary folder that `make_tmp` makes (only when needed).
pub fn sort_file(
    reader: BatchReader,
    key_idx: Vec<usize>,
    make_tmp: &dyn Fn() -> Result<tempfile::TempDir>,
    progress: &dyn Progress,
) -> Result<Box<dyn ChangeSource>> {
    sort_in_runs(reader, key_idx, make_tmp, progress, RUN_ROWS)
}

/// [`sort_file`], sorting runs of `run_rows` rows.
fn sort_in_runs(
    mut reader: BatchReader,
    key_idx: Vec<usize>,
    make_tmp: &dyn Fn() -> Result<tempfile::TempDir>,
    progress: &dyn Progress,
    run_rows: usize,
) -> Result<Box<dyn ChangeSource>> {
    let schema = reader.target.clone();
    let input = reader.input.clone();
    let mut tmp = SpillDir {
        make: make_tmp,
        dir: None,
    };
    let mut runs = Vec::new();
    let mut buffer: Vec<Rows> = Vec::new();
    let mut buffered = 0;
    let mut run_first = 0;
    while let Some((batch, first)) = reader.next_batch()? {
        let keys = keys_of(&batch, &key_idx, &input)?;
        if buffer.is_empty() {
            run_first = first;
        }
        buffered += batch.num_rows();
        progress.advance(batch.num_rows() as u64);
        buffer.push(Rows { batch, keys });
        if buffered >= run_rows {
            let run = sort_run(
                &schema,
                std::mem::take(&mut buffer),
                &key_idx,
                &input,
                run_first,
            )?;
            runs.push(spill(&tmp.path()?, runs.len(), &run)?);
            buffered = 0;
        }
    }
    let last = sort_run(&schema, buffer, &key_idx, &input, run_first)?;
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
        runs.push(spill(&tmp.path()?, runs.len(), &last)?);
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
        spare: Vec::new(),
        prev: None,
        started: false,
        _tmp: tmp.into_guard(),
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
    /// Each cursor's next key, by its prefix ([`Keys::prefix`]) first.
    heap: BinaryHeap<Reverse<(u128, Vec<u8>, usize)>>,
    /// Key buffers used again (a merge moves every row's key through the heap).
    spare: Vec<Vec<u8>>,
    prev: Option<Vec<u8>>,
    started: bool,
    /// The folder of the runs, removed when the merge is dropped (after the cursors).
    _tmp: SpillGuard,
}

impl MergeRuns {
    /// Makes cursor `i` point at a row, loading its next batch when needed.
    fn advance(&mut self, i: usize) -> Result<()> {
        let c = &mut self.cursors[i];
        loop {
            if let Some(r) = &c.rows {
                if c.pos < r.len() {
                    let mut key = self.spare.pop().unwrap_or_default();
                    key.clear();
                    key.extend_from_slice(r.keys.get(c.pos));
                    self.heap.push(Reverse((key_prefix(&key), key, i)));
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
        // The rows taken, as (batch, row) of the cursors' batches they come from, gathered
        // into one batch at the end: a run of consecutive rows is copied at once, rows from
        // everywhere (input in random order) one by one into the same columns.
        let mut held: Vec<RecordBatch> = Vec::new();
        let mut held_at: Vec<Option<usize>> = vec![None; self.cursors.len()];
        let mut indices: Vec<(usize, usize)> = Vec::with_capacity(BATCH_ROWS);
        let mut keys = Keys::default();
        while indices.len() < BATCH_ROWS {
            let Some(Reverse((_, key, i))) = self.heap.pop() else {
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
            let b = match held_at[i] {
                Some(b) => b,
                None => {
                    let r = self.cursors[i].rows.as_ref().expect("has rows");
                    held.push(r.batch.clone());
                    held_at[i] = Some(held.len() - 1);
                    held.len() - 1
                }
            };
            indices.push((b, pos));
            keys.push(&key);
            if let Some(old) = self.prev.replace(key) {
                self.spare.push(old);
            }
            self.cursors[i].pos += 1;
            let at_end = self.cursors[i]
                .rows
                .as_ref()
                .is_none_or(|r| self.cursors[i].pos >= r.len());
            if at_end {
                // The cursor's next batch is another one to hold.
                held_at[i] = None;
            }
            self.advance(i)?;
        }
        if indices.is_empty() {
            return Ok(None);
        }
        let batches: Vec<&RecordBatch> = held.iter().collect();
        let batch = crate::table::gather(&batches, &indices)
            .map_err(|e| Error::arrow("merging sort runs", e))?;
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            .map_err(|e| Error::arrow("merging sort runs", e))?;
        Ok(Some(Rows { batch, keys }))
    }
}

/// Batches read ahead on a separate thread.
type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Runs a reader on its own thread, at most two batches ahead of its consumer, so that parsing
/// the file overlaps with chunking and encoding. The thread ends when the reader ends or the
/// consumer goes away.
fn read_ahead(inner: BatchIter) -> BatchIter {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    std::thread::spawn(move || {
        for item in inner {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    Box::new(rx.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `ids` (with a name derived from each) as an Arrow input in batches of `batch`.
    fn arrow_input(ids: &[i64], batch: usize, spill: &Path) -> (Input, SchemaRef) {
        use crate::arrow::array::{Int64Array, StringArray};
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batches: Vec<std::result::Result<RecordBatch, ArrowError>> = ids
            .chunks(batch)
            .map(|c| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(c.to_vec())) as ArrayRef,
                        Arc::new(StringArray::from_iter_values(
                            c.iter().map(|i| format!("n{i}")),
                        )),
                    ],
                )
            })
            .collect();
        let reader = arrow_array::RecordBatchIterator::new(batches, schema.clone());
        (Input::arrow("rows", Box::new(reader), spill), schema)
    }

    fn merged(ids: &[i64], run_rows: usize) -> Result<Vec<(i64, String)>> {
        use crate::arrow::array::{AsArray, Int64Array};
        let dir = tempfile::tempdir().expect("dir");
        let (input, schema) = arrow_input(ids, 337, dir.path());
        let reader = BatchReader::open(&input, "t", schema, &[0])?;
        let spill = dir.path().to_path_buf();
        let make = move || {
            tempfile::tempdir_in(&spill).map_err(|e| Error::Io {
                path: spill.clone(),
                source: e,
            })
        };
        let mut source = sort_in_runs(
            reader,
            vec![0],
            &make,
            &crate::progress::NoProgress,
            run_rows,
        )?;
        let mut out = Vec::new();
        while let Some(rows) = source.next_rows()? {
            let id = rows
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            let name = rows.batch.column(1).as_string::<i32>();
            let keys = encode_keys(&rows.batch, &[0])
                .expect("types")
                .expect("no nulls");
            assert_eq!(keys, rows.keys, "the keys are the rows'");
            out.extend((0..rows.len()).map(|r| (id.value(r), name.value(r).to_string())));
        }
        Ok(out)
    }

    /// Where a CSV file's quoting stands at its end, following `csv_core`'s rules byte by
    /// byte: the line of a quoted field still open, if one is.
    fn open_quote_by_bytes(text: &[u8], delimiter: u8) -> Option<u64> {
        let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(text);
        let (mut line, mut opened) = (1u64, None);
        let (mut field_start, mut inside) = (true, false);
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            if inside {
                if b == b'"' {
                    if text.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        inside = false;
                        opened = None;
                    }
                }
            } else if b == b'"' && field_start {
                inside = true;
                opened = Some(line);
            }
            field_start = !inside && (b == delimiter || b == b'\n' || b == b'\r');
            if b == b'\n' {
                line += 1;
            }
            i += 1;
        }
        opened
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The check finds a quoted field left open exactly when reading the file byte by
        /// byte does, and names its line, however the reads cut the file.
        #[test]
        fn an_open_quoted_field_is_found_as_reading_byte_by_byte_finds_it(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b',', b'\t', b'"', b'"', b'\n', b'\r']),
                0..300,
            ),
            bom in proptest::prelude::any::<bool>(),
            tab in proptest::prelude::any::<bool>(),
            reads in proptest::collection::vec(1usize..80, 1..20),
        ) {
            let mut text = text;
            if bom {
                text.splice(0..0, [0xEF, 0xBB, 0xBF]);
            }
            let delimiter = if tab { b'\t' } else { b',' };
            let expected = open_quote_by_bytes(&text, delimiter);
            // Reads of the sizes given, in turn.
            struct Cut<'a> { text: &'a [u8], sizes: Vec<usize>, n: usize }
            impl Read for Cut<'_> {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    let size = self.sizes[self.n % self.sizes.len()].min(buf.len()).min(self.text.len());
                    self.n += 1;
                    buf[..size].copy_from_slice(&self.text[..size]);
                    self.text = &self.text[size..];
                    Ok(size)
                }
            }
            let mut check = QuoteCheck::new(Cut { text: &text, sizes: reads, n: 0 }, delimiter);
            let mut out = Vec::new();
            let result = check.read_to_end(&mut out);
            match expected {
                None => {
                    proptest::prop_assert!(result.is_ok(), "{:?}: {result:?}", String::from_utf8_lossy(&text));
                    proptest::prop_assert_eq!(out, text);
                }
                Some(line) => {
                    let err = result.expect_err("an open quoted field");
                    let said = format!("starts on line {line} is not closed");
                    proptest::prop_assert!(err.to_string().contains(&said), "{:?}: {err}", String::from_utf8_lossy(&text));
                }
            }
        }
    }

    #[test]
    fn quotes_are_found_in_every_place_of_a_block() {
        for len in 0..130 {
            for at in 0..len {
                let mut block = vec![b'x'; len];
                block[at] = b'"';
                let found: Vec<usize> = (0..64)
                    .filter(|i| byte_mask(&block[..len.min(64)], b'"') >> i & 1 == 1)
                    .collect();
                let expected: Vec<usize> = (at < 64).then_some(at).into_iter().collect();
                assert_eq!(found, expected, "a quote at {at} of {len} bytes");
            }
        }
    }

    #[test]
    fn arrows_messages_for_a_line_of_the_wrong_length_are_said_one_way() {
        let said = |s: &str| field_count_text(s);
        assert_eq!(
            said("incorrect number of fields for line 7, expected 3 got more than 512").as_deref(),
            Some(
                "line 7 has more than 512 fields but the header has 3: every line needs one field \
                 per column (a field that holds the delimiter, a quote or a line break goes in \
                 double quotes)"
            )
        );
        let short = said("incorrect number of fields for line 4, expected 2 got 1");
        assert!(short.is_some_and(|t| t.starts_with("line 4 has 1 field but the header has 2:")));
        let long = said(
            "Encountered unequal lengths between records on CSV file. Expected 2 records, found 5 \
             records at line 9",
        );
        assert!(long.is_some_and(|t| t.starts_with("line 9 has 5 fields but the header has 2:")));
        // Other messages, and these without a line, are left as they are.
        assert_eq!(said("Error reading CSV file"), None);
        assert_eq!(
            said(
                "Encountered unequal lengths between records on CSV file. Expected 2 records, \
                 found 5 records"
            ),
            None
        );
        let other = ArrowError::CsvError("Error reading CSV file".into());
        assert_eq!(arrow_text(&other), "Error reading CSV file");
    }

    #[test]
    fn rows_sorted_in_many_runs_merge_into_key_order() {
        // Runs of more rows than a spilled batch holds (each run is read back in batches),
        // and fewer; every key once, in an order far from sorted, with a stretch in order.
        let n = 200_000i64;
        let mut ids: Vec<i64> = (0..n).map(|i| (i * 7_919) % n).collect();
        ids[1_000..30_000].sort_unstable();
        for run_rows in [700, 70_000, 250_000] {
            let rows = merged(&ids, run_rows).expect("merged");
            let expected: Vec<(i64, String)> = (0..n).map(|i| (i, format!("n{i}"))).collect();
            assert_eq!(rows, expected, "runs of {run_rows}");
        }
    }

    #[test]
    fn a_key_twice_in_different_runs_is_refused_with_the_key() {
        let mut ids: Vec<i64> = (0..3_000).rev().collect();
        ids.push(2_999);
        let e = merged(&ids, 500).expect_err("a duplicate");
        assert!(
            matches!(&e, Error::DuplicateKey { key, .. } if key.contains("2999")),
            "{e}"
        );
    }

    #[test]
    fn a_leading_zero_is_one_before_more_of_the_whole_part() {
        let zero = |v: &str| changed_as(v, &DataType::Int64).is_some();
        for v in ["00123", "01", "-01", "+007", "00", "01.5", "00e3", "0x1"] {
            assert!(zero(v), "{v} has a leading zero");
        }
        for v in [
            "0", "-0", "+0", "0.5", "-0.25", "0e5", "0E5", "10", "100", "", "-", "1.0",
        ] {
            assert!(!zero(v), "{v} has no leading zero");
        }
        assert!(changed_as("007", &DataType::Float64).is_some());
        assert!(changed_as("007", &DataType::Utf8).is_none());
    }

    #[test]
    fn text_becomes_numbers_with_nulls_kept_and_the_first_bad_value_named_by_row() {
        use crate::arrow::array::{Array, StringArray};
        let text = StringArray::from(vec![Some("1.5"), None, Some("-2"), Some("3e2")]);
        let out = convert_text(&text, &DataType::Float64, true)
            .ok()
            .expect("parses");
        let out = out.as_primitive::<Float64Type>();
        assert_eq!(out.data_type(), &DataType::Float64);
        assert!(out.is_null(1) && out.null_count() == 1);
        assert_eq!(
            (out.value(0), out.value(2), out.value(3)),
            (1.5, -2.0, 300.0)
        );

        let ints = StringArray::from(vec![Some("7"), None, Some("x"), Some("012")]);
        let bad = convert_text(&ints, &DataType::Int32, true).expect_err("refused");
        assert_eq!(bad.row, 2);
        assert!(bad.problem.contains("not a valid int32"), "{}", bad.problem);

        // A leading zero is refused only for an inferred type (exact), and by its row.
        let zeros = StringArray::from(vec![Some("7"), None, Some("012")]);
        let bad = convert_text(&zeros, &DataType::Int64, true).expect_err("refused");
        assert_eq!(bad.row, 2);
        assert!(bad.problem.contains("leading zero"), "{}", bad.problem);
        let kept = convert_text(&zeros, &DataType::UInt16, false)
            .ok()
            .expect("parses");
        assert_eq!(
            kept.as_primitive::<crate::arrow::datatypes::UInt16Type>()
                .value(2),
            12
        );
        let too_big = StringArray::from(vec!["70000"]);
        assert!(convert_text(&too_big, &DataType::UInt16, false).is_err());
    }

    #[test]
    fn the_format_comes_from_the_extension_under_a_compression_suffix() {
        let format = |p: &str| Format::from_path(Path::new(p)).ok();
        assert_eq!(format("rows.csv"), Some(Format::Csv));
        assert_eq!(format("rows.CSV.GZ"), Some(Format::Csv));
        assert_eq!(format("rows.tsv.zst"), Some(Format::Csv));
        assert_eq!(format("rows.jsonl.zst"), Some(Format::Jsonl));
        assert_eq!(format("rows.parquet"), Some(Format::Parquet));
        assert_eq!(format("rows.gz"), None);
        assert_eq!(format("rows"), None);
        let compression = |p: &str| Compression::from_path(Path::new(p));
        assert_eq!(compression("rows.csv.gz"), Compression::Gzip);
        assert_eq!(compression("rows.jsonl.zst"), Compression::Zstd);
        assert_eq!(compression("rows.csv"), Compression::None);
        assert_eq!(compression("rows.gz.csv"), Compression::None);
    }

    #[test]
    fn compression_names_parse_and_others_are_refused() {
        for (s, c) in [
            ("gzip", Compression::Gzip),
            ("gz", Compression::Gzip),
            ("ZSTD", Compression::Zstd),
            ("zst", Compression::Zstd),
            ("none", Compression::None),
        ] {
            assert_eq!(Compression::parse(s).ok(), Some(c), "{s}");
        }
        assert!(Compression::parse("bzip2").is_err());
    }

    #[test]
    fn a_delimiter_is_one_ascii_character_or_a_name_for_tab() {
        assert_eq!(parse_delimiter(";").ok(), Some(b';'));
        assert_eq!(parse_delimiter("|").ok(), Some(b'|'));
        assert_eq!(parse_delimiter("\\t").ok(), Some(b'\t'));
        assert_eq!(parse_delimiter("tab").ok(), Some(b'\t'));
        assert_eq!(parse_delimiter("\t").ok(), Some(b'\t'));
        for bad in ["", ";;", "\"", "\n", "é"] {
            assert!(parse_delimiter(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_tsv_file_defaults_to_tabs_and_a_compressed_parquet_file_is_refused() {
        let input = Input::new(Path::new("rows.tsv.gz"), None).expect("a tsv input");
        assert_eq!(input.delimiter(), b'\t');
        let input = Input::new(Path::new("rows.csv"), None).expect("a csv input");
        assert_eq!(input.delimiter(), b',');
        let err = Input::new(Path::new("rows.parquet.gz"), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("decompress it first"), "{err}");
        let opts = ReadOptions {
            delimiter: Some(b';'),
            ..Default::default()
        };
        assert!(Input::with_options(Path::new("rows.jsonl"), &opts).is_err());
    }
}
