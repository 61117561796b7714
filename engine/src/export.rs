//! Writing a table version out as Parquet, CSV, JSON Lines or Arrow IPC, streamed in key
//! order chunk by chunk. Any revision exports at the same speed: a commit names its tables'
//! chunks directly, so nothing is replayed. A Parquet export copies the chunks' compressed
//! pages as they are (each chunk becomes a row group of the file): nothing is decoded or
//! encoded again, unless a row group size is asked for ([`ExportOptions::row_group_rows`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use crate::arrow::array::RecordBatch;
use crate::arrow::datatypes::SchemaRef;
use futures::{stream, StreamExt};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, ArrowWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::chunk::{decode_chunk, writer_properties};
use crate::id::ObjectId;
use crate::tree::Entry;

use crate::error::{Error, Result};
use crate::import::Compression;
use crate::progress::Progress;
use crate::store::Objects;
use crate::table::{decode_entry, read_entry, scan, TableObject};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
    Jsonl,
    Arrow,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Ok(ExportFormat::Parquet),
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "json" | "ndjson" => Ok(ExportFormat::Jsonl),
            "arrow" | "ipc" | "feather" => Ok(ExportFormat::Arrow),
            other => Err(Error::Invalid(format!(
                "unknown format '{other}'; use parquet, csv, jsonl or arrow"
            ))),
        }
    }

    /// The format's name, as `parse` takes it.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Arrow => "arrow",
        }
    }

    /// The format implied by a file name, if any, under a compression suffix
    /// (`rows.csv.gz` is CSV); `.tsv` is CSV (with tabs: [`delimiter_from_path`]).
    pub fn from_path(path: &Path) -> Option<Self> {
        match crate::import::inner_extension(path).as_str() {
            "tsv" => Some(ExportFormat::Csv),
            ext => Self::parse(ext).ok(),
        }
    }
}

/// The field delimiter a file name implies: a tab for `.tsv` (under any compression suffix),
/// else none (a comma).
pub fn delimiter_from_path(path: &Path) -> Option<u8> {
    (crate::import::inner_extension(path) == "tsv").then_some(b'\t')
}

/// How to write an export: the format, for Parquet the size of its row groups, for CSV its
/// delimiter, and for text how it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// Parquet only: rows per row group, the rows decoded and encoded again (readers read a
    /// file of large row groups faster). `None` copies each chunk's compressed pages as one
    /// row group, without decoding them (unless the chunk was written in another Parquet
    /// layout): the quickest export.
    pub row_group_rows: Option<usize>,
    /// CSV only: the field delimiter (`None`: a comma).
    pub delimiter: Option<u8>,
    /// CSV and JSON Lines only: the text compressed as it is written, gzip or zstd.
    pub compression: Compression,
}

impl From<ExportFormat> for ExportOptions {
    fn from(format: ExportFormat) -> Self {
        ExportOptions {
            format,
            row_group_rows: None,
            delimiter: None,
            compression: Compression::None,
        }
    }
}

impl ExportOptions {
    /// Refuses options that do not go together, before anything is read or written.
    pub fn check(&self) -> Result<()> {
        let what = match self.format {
            ExportFormat::Csv => "a CSV",
            ExportFormat::Jsonl => "a JSON Lines",
            ExportFormat::Arrow => "an Arrow IPC",
            ExportFormat::Parquet => "a Parquet",
        };
        if let Some(d) = self.delimiter {
            if self.format != ExportFormat::Csv {
                return Err(Error::Invalid(format!(
                    "a delimiter belongs to CSV files; {what} export has none: leave out the delimiter, or write CSV"
                )));
            }
            if matches!(d, b'"' | b'\r' | b'\n') || !d.is_ascii() {
                return Err(Error::Invalid(format!(
                    "a CSV delimiter is one ASCII character other than a quote or a line break, not {:?}",
                    char::from(d)
                )));
            }
        }
        if self.compression != Compression::None
            && matches!(self.format, ExportFormat::Parquet | ExportFormat::Arrow)
        {
            return Err(Error::Invalid(format!(
                "{what} export is not compressed as a whole ({}): leave out the compression (and the .gz or .zst of the name), or write CSV or JSON Lines",
                if self.format == ExportFormat::Parquet {
                    "Parquet compresses its pages inside the file, with zstd"
                } else {
                    "Arrow IPC files are read in place"
                }
            )));
        }
        match self.row_group_rows {
            Some(0) => Err(Error::Invalid(
                "a row group holds at least one row; give a positive number of rows".into(),
            )),
            Some(_) if self.format != ExportFormat::Parquet => Err(Error::Invalid(format!(
                "row groups belong to Parquet files; {what} export has none: leave out the row group size, or write Parquet"
            ))),
            _ => Ok(()),
        }
    }
}

/// Where an export goes: a file (written beside it, then renamed into place) or stdout.
pub enum Destination {
    File(PathBuf),
    Stdout,
}

/// Writes every row of `table` to `dest` in key order; returns the number of rows.
pub async fn export(
    objects: &Objects,
    table: &TableObject,
    dest: &Destination,
    opts: impl Into<ExportOptions>,
    progress: &dyn Progress,
) -> Result<u64> {
    let opts: ExportOptions = opts.into();
    opts.check()?;
    let format = opts.format;
    let schema = table.schema.arrow()?;
    let entries = table.chunks(objects).await?;
    progress.set_total(table.rows);
    let (out, tmp, shown): (
        Box<dyn Write + Send>,
        Option<(tempfile::NamedTempFile, PathBuf)>,
        PathBuf,
    ) = match dest {
        Destination::Stdout => (Box::new(std::io::stdout()), None, "standard output".into()),
        Destination::File(path) => {
            if path.is_dir() {
                return Err(Error::Invalid(format!(
                    "'{}' is a folder; name the file to write",
                    path.display()
                )));
            }
            match open_in_place(path)? {
                // A device or a pipe (`/dev/null`, a named pipe, `/dev/fd/N`): written as it
                // is. Renaming a finished file over it would replace it.
                Some(file) => (Box::new(file), None, path.clone()),
                None => {
                    let (file, tmp, path) = beside(path)?;
                    (Box::new(file), Some((tmp, path.clone())), path)
                }
            }
        }
    };
    let failed = Failed::default();
    let out: Box<dyn Write + Send> = Box::new(Output {
        inner: out,
        failed: failed.clone(),
    });
    let written = async {
        if format == ExportFormat::Parquet {
            match opts.row_group_rows {
                None => {
                    let key_idx = table.schema.key_indices();
                    copy_to_parquet(objects, &schema, &key_idx, entries, out, progress).await
                }
                Some(rows) => repack_to_parquet(objects, table, entries, out, rows, progress).await,
            }
        } else if matches!(format, ExportFormat::Csv | ExportFormat::Jsonl) {
            let form = TextForm {
                format,
                delimiter: opts.delimiter.unwrap_or(b','),
                compression: opts.compression,
            };
            write_text(objects, table, entries, form, out, progress).await
        } else {
            write_arrow(objects, table, entries, &schema, out, progress).await
        }
    };
    // A failed write is reported as one, whichever writer (Parquet's, Arrow's) it went through.
    let rows = written.await.map_err(|e| match failed.take() {
        Some(source) => Error::Write {
            path: shown.clone(),
            source,
        },
        None => e,
    })?;
    if let Some((tmp, path)) = tmp {
        tmp.persist(&path).map_err(|e| Error::Write {
            path: path.clone(),
            source: e.error,
        })?;
    }
    Ok(rows)
}

/// The destination as the writers below [`export`] name it (it names the path itself).
const DESTINATION: &str = "the export's destination";

/// An export's destination, which keeps the first error a write to it met (the Parquet and
/// Arrow writers above it report that error inside their own).
struct Output {
    inner: Box<dyn Write + Send>,
    failed: Failed,
}

/// The first write error of an [`Output`] (a copy: its OS error, else its kind and text).
#[derive(Clone, Default)]
struct Failed(Arc<std::sync::Mutex<Option<std::io::Error>>>);

impl Failed {
    fn keep(&self, e: &std::io::Error) {
        if e.kind() == std::io::ErrorKind::Interrupted {
            return; // tried again
        }
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert_with(|| match e.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(e.kind(), e.to_string()),
            });
        }
    }

    fn take(&self) -> Option<std::io::Error> {
        self.0.lock().ok()?.take()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.failed.keep(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|e| self.failed.keep(e))
    }
}

/// The destination `path` opened for writing, when it names something other than a file or
/// a folder (a device such as `/dev/null`, a named pipe, a socket), or a file a process has
/// open (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`: a shell's redirection, which chose
/// to truncate or append it, so it is appended to). Such a destination is written in place;
/// `None` for a path that does not exist or names a file, which is written beside it and
/// renamed into place.
fn open_in_place(path: &Path) -> Result<Option<File>> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if meta.is_dir() || (meta.is_file() && !names_an_open_file(path)) {
        return Ok(None);
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(Some)
        .map_err(|e| Error::Write {
            path: path.to_path_buf(),
            source: e,
        })
}

/// Whether `path` reaches its file through `/proc` (`/dev/stdout` and `/dev/fd/N` link
/// there): one of a process's open files, not a name in a folder to rename a file to.
fn names_an_open_file(path: &Path) -> bool {
    let in_proc = |p: &Path| p.starts_with("/proc");
    std::fs::read_link(path).is_ok_and(|target| in_proc(&target))
        || path
            .parent()
            .and_then(|folder| std::fs::canonicalize(folder).ok())
            .is_some_and(|folder| in_proc(&folder))
}

/// A new temporary file beside the file an export to `path` replaces (see [`written_path`]),
/// opened to be written, and that file's path, to rename it to when complete.
fn beside(path: &Path) -> Result<(File, tempfile::NamedTempFile, PathBuf)> {
    let path = written_path(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a folder"
        } else {
            "does not exist; make it first (mkdir -p)"
        };
        return Err(Error::Invalid(format!(
            "cannot write '{}': '{}' {why}",
            path.display(),
            dir.display()
        )));
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".strata-export-");
    // Temporary files are private (0600); the export is a file like any other the user
    // makes: 0666 less the umask (usually 0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // (The temporary file's own name is not shown: the error is about the file to write.)
    let failed = |e: std::io::Error| Error::Write {
        path: path.clone(),
        source: std::io::Error::from(e.kind()),
    };
    let tmp = builder.tempfile_in(&dir).map_err(failed)?;
    let file = tmp.reopen().map_err(failed)?;
    Ok((file, tmp, path))
}

/// The file an export to `path` replaces: `path`, or the file a symbolic link there names,
/// through any further links (the links stay, and name the new file). A link to nothing yet
/// is written through, as a shell's `>` does: the file it names is made.
fn written_path(path: &Path) -> Result<PathBuf> {
    let mut at = path.to_path_buf();
    // As many links as Linux follows in one path.
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return Ok(at);
        }
        let target = std::fs::read_link(&at).map_err(|e| Error::Io {
            path: at.clone(),
            source: e,
        })?;
        // A relative target is relative to the link's folder; an absolute one replaces it.
        at = match at.parent() {
            Some(folder) => folder.join(target),
            None => target,
        };
    }
    Err(Error::Invalid(format!(
        "cannot write '{}': its symbolic links form a loop (or a chain of more than 40)",
        path.display()
    )))
}

/// The export's Parquet file: the chunks' writer settings and the table's Arrow schema, as
/// a Parquet writer would record it.
fn parquet_file(
    schema: &SchemaRef,
    out: Box<dyn Write + Send>,
) -> Result<SerializedFileWriter<BufWriter<Box<dyn Write + Send>>>> {
    let start = |e| Error::parquet("starting the export", e);
    let mut props = writer_properties();
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    let parquet_schema = ArrowSchemaConverter::new().convert(schema).map_err(start)?;
    let out = BufWriter::with_capacity(1 << 20, out);
    SerializedFileWriter::new(out, parquet_schema.root_schema_ptr(), Arc::new(props)).map_err(start)
}

/// Writes the file's footer and flushes it to its destination.
fn finish_parquet_file(
    writer: SerializedFileWriter<BufWriter<Box<dyn Write + Send>>>,
) -> Result<()> {
    let out = writer
        .into_inner()
        .map_err(|e| Error::parquet("writing the export", e))?;
    let mut inner = out.into_inner().map_err(|e| Error::Write {
        path: DESTINATION.into(),
        source: e.into_error(),
    })?;
    inner.flush().map_err(|e| Error::Write {
        path: DESTINATION.into(),
        source: e,
    })
}

/// Writes the chunks `entries` as one Parquet file, in order: each chunk's row group is copied
/// with its compressed pages, statistics and page index, and the file carries the table's
/// Arrow schema as a Parquet writer would. A chunk whose Parquet schema is not the one this
/// build gives the table (written by another version) is decoded and encoded again instead.
async fn copy_to_parquet(
    objects: &Objects,
    schema: &SchemaRef,
    key_idx: &[usize],
    entries: Vec<Entry>,
    out: Box<dyn Write + Send>,
    progress: &dyn Progress,
) -> Result<u64> {
    let err = |e| Error::parquet("writing the export", e);
    let mut writer = parquet_file(schema, out)?;
    let encoders = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
    // Chunks are read, checked and their footers parsed a few ahead, on the blocking pool. A
    // chunk with a delta is decoded with it: its pages are not the rows.
    let mut chunks = stream::iter(entries)
        .map(|entry| {
            let schema = schema.clone();
            let key_idx = key_idx.to_vec();
            async move {
                let e = entry.clone();
                read_entry(objects, &entry, move |bytes, delta| {
                    if delta.is_some() {
                        let rows = decode_entry(&e, bytes, delta, &schema, None, &key_idx)?;
                        return Ok(Piece::Rows(rows));
                    }
                    let metadata = ParquetMetaDataReader::new()
                        .with_page_index_policy(PageIndexPolicy::Optional)
                        .parse_and_finish(&bytes)
                        .map_err(|err| Error::CorruptObject {
                            id: e.id.to_hex(),
                            reason: format!("the chunk does not decode: {err}"),
                        })?;
                    Ok(Piece::Pages(e.id, bytes, metadata))
                })
                .await
            }
        })
        .buffered(crate::table::read_ahead());
    let mut rows = 0u64;
    while let Some(chunk) = chunks.next().await {
        let batch = match chunk? {
            Piece::Pages(id, bytes, metadata) => {
                let copied = metadata.file_metadata().schema_descr().root_schema()
                    == writer.schema_descr().root_schema();
                if copied {
                    let added = append_row_groups(&mut writer, &bytes, &metadata)?;
                    rows += added;
                    progress.advance(added);
                    continue;
                }
                decode_chunk(&id, bytes, schema)?
            }
            Piece::Rows(batch) => batch,
        };
        let mut columns = encoders
            .create_column_writers(writer.flushed_row_groups().len())
            .map_err(err)?;
        let mut next = columns.iter_mut();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, array).map_err(err)? {
                let column = next.next().ok_or_else(|| {
                    Error::Invalid("the table's schema has more leaves than its file".into())
                })?;
                column.write(&leaf).map_err(err)?;
            }
        }
        let mut out = writer.next_row_group().map_err(err)?;
        for column in columns {
            column
                .close()
                .map_err(err)?
                .append_to_row_group(&mut out)
                .map_err(err)?;
        }
        out.close().map_err(err)?;
        let added = batch.num_rows() as u64;
        rows += added;
        progress.advance(added);
    }
    finish_parquet_file(writer)?;
    Ok(rows)
}

/// A chunk as a Parquet export takes it: its pages to copy, or its rows to encode.
enum Piece {
    Pages(ObjectId, bytes::Bytes, ParquetMetaData),
    Rows(RecordBatch),
}

/// Writes the rows as an Arrow IPC file, chunk by chunk.
async fn write_arrow(
    objects: &Objects,
    table: &TableObject,
    entries: Vec<Entry>,
    schema: &SchemaRef,
    out: Box<dyn Write + Send>,
    progress: &dyn Progress,
) -> Result<u64> {
    let err = |e| Error::arrow("writing the export", e);
    let out = BufWriter::with_capacity(1 << 20, out);
    let mut writer = crate::arrow::ipc::writer::FileWriter::try_new(out, schema).map_err(err)?;
    let mut rows = 0u64;
    let mut stream = std::pin::pin!(scan(objects, table, entries)?);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        writer.write(&batch).map_err(err)?;
        rows += batch.num_rows() as u64;
        progress.advance(batch.num_rows() as u64);
    }
    writer.finish().map_err(err)?;
    writer
        .into_inner()
        .map_err(err)?
        .flush()
        .map_err(|e| Error::Write {
            path: DESTINATION.into(),
            source: e,
        })?;
    Ok(rows)
}

/// Copies every row group of a Parquet file (`bytes`, its footer parsed as `metadata`) into
/// `writer` as it is: compressed pages, statistics and page index. Returns the rows copied.
fn append_row_groups<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    bytes: &bytes::Bytes,
    metadata: &ParquetMetaData,
) -> Result<u64> {
    let err = |e| Error::parquet("writing the export", e);
    let page_index = metadata.page_index();
    let mut added = 0u64;
    for (rg_idx, rg) in metadata.row_groups().iter().enumerate() {
        let mut out = writer.next_row_group().map_err(err)?;
        for (col_idx, column) in rg.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: u64::try_from(column.compressed_size()).unwrap_or(0),
                rows_written: u64::try_from(rg.num_rows()).unwrap_or(0),
                metadata: column.clone(),
                bloom_filter: None,
                column_index: page_index
                    .and_then(|pi| pi.column_index(rg_idx, col_idx))
                    .cloned(),
                offset_index: page_index
                    .and_then(|pi| pi.offset_index(rg_idx, col_idx))
                    .cloned(),
            };
            out.append_column(bytes, close).map_err(err)?;
        }
        out.close().map_err(err)?;
        added += u64::try_from(rg.num_rows()).unwrap_or(0);
    }
    Ok(added)
}

/// A row group being encoded on the blocking pool: its rows go in by `rows`, its Parquet
/// bytes (a file of that one group) come out of `done`.
struct Group {
    /// Dropped once the group is full, which lets its encoder finish.
    rows: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    done: tokio::task::JoinHandle<Result<bytes::Bytes>>,
    filled: usize,
}

impl Group {
    fn start(schema: SchemaRef, props: WriterProperties) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
        let done = tokio::task::spawn_blocking(move || {
            let err = |e| Error::parquet("encoding a row group of the export", e);
            let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
            while let Some(batch) = rx.blocking_recv() {
                let w = match writer.as_mut() {
                    Some(w) => w,
                    None => writer.insert(
                        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
                            .map_err(err)?,
                    ),
                };
                w.write(&batch).map_err(err)?;
            }
            match writer {
                // Flushes the row group and writes the footer.
                Some(w) => Ok(bytes::Bytes::from(w.into_inner().map_err(err)?)),
                None => Ok(bytes::Bytes::new()),
            }
        });
        Group {
            rows: Some(tx),
            done,
            filled: 0,
        }
    }

    /// Waits for the group's bytes and their footer.
    async fn finish(mut self) -> Result<(bytes::Bytes, ParquetMetaData)> {
        self.rows = None;
        let bytes = self
            .done
            .await
            .map_err(|e| Error::Invalid(format!("a row group's encoder failed: {e}")))??;
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&bytes)
            .map_err(|e| Error::parquet("reading back a row group of the export", e))?;
        Ok((bytes, metadata))
    }
}

/// Writes the chunks `entries` as one Parquet file in row groups of `size` rows (the last one
/// shorter): the chunks are decoded a few at once, and the row groups encoded side by side
/// (while one fills, up to one per core finish), then copied into the file in key order. Every
/// group is encoded as the first chunk says the table's columns are best written (which use
/// dictionaries), so that the file's groups agree.
async fn repack_to_parquet(
    objects: &Objects,
    table: &TableObject,
    entries: Vec<Entry>,
    out: Box<dyn Write + Send>,
    size: usize,
    progress: &dyn Progress,
) -> Result<u64> {
    let schema = table.schema.arrow()?;
    let mut writer = parquet_file(&schema, out)?;
    let at_once = crate::chunk::cores().unwrap_or(2);
    let mut encoding: std::collections::VecDeque<Group> = std::collections::VecDeque::new();
    let mut current: Option<Group> = None;
    let mut group_props: Option<WriterProperties> = None;
    let mut rows = 0u64;
    let mut batches = std::pin::pin!(scan(objects, table, entries)?);
    while let Some(batch) = batches.next().await {
        let mut batch = batch?;
        let props = group_props
            .get_or_insert_with(|| crate::chunk::row_group_properties(&batch, size))
            .clone();
        while batch.num_rows() > 0 {
            let group = match current.as_mut() {
                Some(g) => g,
                None => {
                    // At most one group per core is encoded at a time; the oldest is
                    // written out first, so the file keeps the key order.
                    while encoding.len() >= at_once {
                        if let Some(done) = encoding.pop_front() {
                            let (bytes, metadata) = done.finish().await?;
                            let added = append_row_groups(&mut writer, &bytes, &metadata)?;
                            rows += added;
                            progress.advance(added);
                        }
                    }
                    current.insert(Group::start(schema.clone(), props.clone()))
                }
            };
            let take = (size - group.filled).min(batch.num_rows());
            let sent = match &group.rows {
                Some(rows) => rows.send(batch.slice(0, take)).await.is_ok(),
                None => false,
            };
            if !sent {
                // The encoder stopped: its error says why.
                if let Some(failed) = current.take() {
                    failed.finish().await?;
                }
                return Err(Error::Invalid("a row group's encoder stopped".into()));
            }
            group.filled += take;
            batch = batch.slice(take, batch.num_rows() - take);
            if group.filled == size {
                if let Some(mut full) = current.take() {
                    full.rows = None;
                    encoding.push_back(full);
                }
            }
        }
    }
    encoding.extend(current.take());
    while let Some(done) = encoding.pop_front() {
        let (bytes, metadata) = done.finish().await?;
        let added = append_row_groups(&mut writer, &bytes, &metadata)?;
        rows += added;
        progress.advance(added);
    }
    finish_parquet_file(writer)?;
    Ok(rows)
}

/// How [`write_text`] writes: CSV or JSON Lines, a CSV file's delimiter, and how the text is
/// compressed.
#[derive(Clone, Copy)]
struct TextForm {
    format: ExportFormat,
    delimiter: u8,
    compression: Compression,
}

/// Writes the rows as CSV (with a header line) or JSON Lines. Formatting text costs more than
/// decoding, so batches are formatted on the blocking pool, several at once, and written in
/// key order. A compressed export is compressed there too, a batch at a time
/// ([`Packed::of`]), so that compressing takes every core rather than the writer's alone.
async fn write_text(
    objects: &Objects,
    table: &TableObject,
    entries: Vec<Entry>,
    form: TextForm,
    out: Box<dyn Write + Send>,
    progress: &dyn Progress,
) -> Result<u64> {
    let TextForm {
        format,
        delimiter,
        compression,
    } = form;
    let io = |e| Error::Write {
        path: DESTINATION.into(),
        source: e,
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let ahead = crate::table::read_ahead();
    // The text buffers are used again once written: a batch's text is megabytes, and fresh
    // memory for each costs the kernel's zeroing of every page (a tenth of an export's CPU).
    let spare: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::default();
    let pool = spare.clone();
    let mut texts = std::pin::pin!(scan(objects, table, entries)?
        .enumerate()
        .map(move |(i, batch)| {
            let pool = pool.clone();
            async move {
                let batch = batch?;
                crate::cpu::run(move || {
                    let mut text = pool
                        .lock()
                        .ok()
                        .and_then(|mut p| p.pop())
                        .unwrap_or_default();
                    text.clear();
                    format_text(&mut text, format, delimiter, &batch, i == 0)?;
                    let packed = Packed::of(text, compression, &pool)?;
                    Ok((packed, batch.num_rows() as u64))
                })
                .await
                .map_err(|e| Error::Invalid(format!("formatting the export failed: {e}")))?
            }
        })
        .buffered(ahead));
    let mut rows = 0u64;
    let mut gzip = Gzip::new(compression == Compression::Gzip);
    out.write_all(gzip.header()).map_err(io)?;
    let mut any = false;
    while let Some(packed) = texts.next().await {
        let (packed, n): (Packed, u64) = packed?;
        gzip.add(&packed);
        out.write_all(&packed.bytes).map_err(io)?;
        // Uncompressed, what was written is the text's buffer, used again; compressed, that
        // buffer went back when it was packed, and the packed bytes are let go.
        if compression == Compression::None {
            if let Ok(mut p) = spare.lock() {
                p.push(packed.bytes);
            }
        }
        any = true;
        rows += n;
        progress.advance(n);
    }
    if !any {
        // No rows: the header line alone (nothing for JSON Lines), compressed as a batch is
        // (so a zstd export is still one whole frame).
        let mut text = Vec::new();
        if format == ExportFormat::Csv {
            let schema = table.schema.arrow()?;
            let empty = RecordBatch::new_empty(schema);
            format_text(&mut text, format, delimiter, &empty, true)?;
        }
        let packed = Packed::of(text, compression, &Arc::default())?;
        gzip.add(&packed);
        out.write_all(&packed.bytes).map_err(io)?;
    }
    out.write_all(&gzip.end()?).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(rows)
}

/// One batch's text, as it is written: as it is, a zstd frame, or deflate blocks.
struct Packed {
    bytes: Vec<u8>,
    /// gzip: the CRC-32 and length of the text.
    crc: Option<flate2::Crc>,
    len: u64,
}

impl Packed {
    /// `text` packed as `compression` says; its buffer goes back to `pool` when it is not
    /// the one written.
    ///
    /// - zstd: a frame of its own (at level 1, as chunks are). The batches' frames one after
    ///   the other are one stream to a zstd reader.
    /// - gzip: raw deflate blocks ending in a sync flush (on a byte boundary, not final), as
    ///   `pigz` makes them: the batches' blocks one after the other are one deflate stream,
    ///   which [`Gzip`] puts between the gzip header and trailer (a single member, which every
    ///   gzip reader reads).
    fn of(
        text: Vec<u8>,
        compression: Compression,
        pool: &Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    ) -> Result<Packed> {
        thread_local! {
            static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
                const { std::cell::RefCell::new(None) };
            static DEFLATE: std::cell::RefCell<Option<flate2::Compress>> =
                const { std::cell::RefCell::new(None) };
        }
        let len = text.len() as u64;
        let bytes = match compression {
            Compression::None => {
                return Ok(Packed {
                    bytes: text,
                    crc: None,
                    len,
                })
            }
            Compression::Zstd => ZSTD.with(|c| {
                let failed = |e| Error::Invalid(format!("compressing the export failed: {e}"));
                let mut c = c.borrow_mut();
                let compressor = match &mut *c {
                    Some(compressor) => compressor,
                    None => c.insert(zstd::bulk::Compressor::new(1).map_err(failed)?),
                };
                compressor.compress(&text).map_err(failed)
            })?,
            Compression::Gzip => DEFLATE.with(|d| {
                let failed = |e: flate2::CompressError| {
                    Error::Invalid(format!("compressing the export failed: {e}"))
                };
                let mut d = d.borrow_mut();
                let deflate = d.get_or_insert_with(|| {
                    flate2::Compress::new(flate2::Compression::default(), false)
                });
                deflate.reset();
                let mut out = Vec::with_capacity(text.len() / 2 + 4096);
                loop {
                    if out.capacity() - out.len() < 4096 {
                        out.reserve(out.capacity());
                    }
                    let done = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
                    let rest = text.get(done..).unwrap_or_default();
                    deflate
                        .compress_vec(rest, &mut out, flate2::FlushCompress::Sync)
                        .map_err(failed)?;
                    let done = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
                    // The flush is complete when all is taken and room is left over.
                    if done >= text.len() && out.len() < out.capacity() {
                        break Ok::<_, Error>(out);
                    }
                }
            })?,
        };
        let crc = (compression == Compression::Gzip).then(|| {
            let mut crc = flate2::Crc::new();
            crc.update(&text);
            crc
        });
        if let Ok(mut p) = pool.lock() {
            p.push(text);
        }
        Ok(Packed { bytes, crc, len })
    }
}

/// The gzip member a gzip export is: its header, then the batches' deflate blocks, then a
/// final empty block and the trailer (the CRC-32 and length of the whole text, from the
/// batches' own). Nothing when the export is not gzip.
struct Gzip {
    on: bool,
    crc: flate2::Crc,
    len: u64,
}

impl Gzip {
    fn new(on: bool) -> Self {
        Gzip {
            on,
            crc: flate2::Crc::new(),
            len: 0,
        }
    }

    /// The header: no name, no time, an unknown system (as `flate2` writes it).
    fn header(&self) -> &'static [u8] {
        match self.on {
            true => &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff],
            false => &[],
        }
    }

    fn add(&mut self, packed: &Packed) {
        if let Some(crc) = &packed.crc {
            self.crc.combine(crc);
            self.len += packed.len;
        }
    }

    /// The final (empty) deflate block and the trailer.
    fn end(&self) -> Result<Vec<u8>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let mut last = flate2::Compress::new(flate2::Compression::default(), false);
        let mut out = Vec::with_capacity(64);
        last.compress_vec(&[], &mut out, flate2::FlushCompress::Finish)
            .map_err(|e| Error::Invalid(format!("compressing the export failed: {e}")))?;
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE: the length modulo 2^32.
        out.extend_from_slice(&(self.len as u32).to_le_bytes());
        Ok(out)
    }
}

/// About how many bytes `batch`'s text takes: its strings' bytes, and a few more than a
/// number's usual digits for each other value. A batch's memory size is no measure of it: its
/// arrays may hold room their decoder reserved and never used (megabytes for a few rows).
fn text_estimate(batch: &RecordBatch) -> usize {
    use crate::arrow::array::{Array, AsArray};
    use crate::arrow::datatypes::DataType;
    let rows = batch.num_rows();
    let values: usize = batch
        .columns()
        .iter()
        .map(|a| match a.data_type() {
            DataType::Utf8 => string_bytes(a.as_string::<i32>().value_offsets()),
            DataType::LargeUtf8 => string_bytes(a.as_string::<i64>().value_offsets()),
            DataType::Binary => 2 * string_bytes(a.as_binary::<i32>().value_offsets()),
            DataType::LargeBinary => 2 * string_bytes(a.as_binary::<i64>().value_offsets()),
            _ => 16 * rows,
        } + 2 * rows)
        .sum();
    values + 1024
}

/// The bytes between the first and the last of `offsets`.
fn string_bytes<O: crate::arrow::array::OffsetSizeTrait>(offsets: &[O]) -> usize {
    match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => (*last - *first).as_usize(),
        _ => 0,
    }
}

/// Appends one batch as CSV (fields separated by `delimiter`, after a header line when
/// `header`) or JSON Lines to `buf`.
fn format_text(
    buf: &mut Vec<u8>,
    format: ExportFormat,
    delimiter: u8,
    batch: &RecordBatch,
    header: bool,
) -> Result<()> {
    let err = |e| Error::arrow("writing the export", e);
    // A buffer used again is cleared, not shrunk: one big enough is kept as it is, and one too
    // small is replaced rather than grown, as growing copies its whole old allocation.
    let estimate = text_estimate(batch);
    if buf.capacity() < estimate {
        *buf = Vec::with_capacity(estimate);
    }
    if format == ExportFormat::Csv {
        csv_text(buf, batch, header, delimiter).map_err(err)?;
    } else {
        let mut w = crate::arrow::json::LineDelimitedWriter::new(&mut *buf);
        w.write(batch).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(())
}

/// Appends `batch` as CSV to `buf` (after a header line of the column names when `header`):
/// the bytes arrow's CSV writer writes with its defaults (a comma, `"` quotes doubled inside
/// a quoted field, quotes only where needed, `\n` line ends, an empty field for a null, each
/// value as arrow displays it), without the writer's record buffers. Each value is written
/// straight into `buf` (see [`ColumnText`]: integers, floats and strings directly, other
/// types by arrow's formatter) and quoted in place by `csv_core` when it needs it; a row whose
/// fields are all empty (which the `csv` crate writes specially) is written by arrow's writer
/// itself.
fn csv_text(
    buf: &mut Vec<u8>,
    batch: &RecordBatch,
    header: bool,
    delimiter: u8,
) -> std::result::Result<(), crate::arrow::error::ArrowError> {
    use crate::arrow::error::ArrowError;
    use arrow_cast::display::FormatOptions;
    let core = csv_core::WriterBuilder::new().delimiter(delimiter).build();
    if header {
        let schema = batch.schema();
        let names: Vec<&[u8]> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_bytes())
            .collect();
        if names.iter().all(|n| n.is_empty()) {
            let mut w = crate::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(delimiter)
                .build(&mut *buf);
            return w.write(batch);
        }
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                buf.push(delimiter);
            }
            let start = buf.len();
            buf.extend_from_slice(name);
            quote_in_place(&core, buf, start);
        }
        buf.push(b'\n');
    }
    let options = FormatOptions::default().with_null("");
    let columns = batch
        .columns()
        .iter()
        .map(|a| {
            if a.data_type().is_nested() {
                Err(ArrowError::CsvError(format!(
                    "Nested type {} is not supported in CSV",
                    a.data_type()
                )))
            } else {
                ColumnText::new(a.as_ref(), &options, delimiter)
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if columns.is_empty() {
        return Ok(());
    }
    let mut out = Utf8Sink(std::mem::take(buf));
    for row in 0..batch.num_rows() {
        let row_start = out.0.len();
        for (c, column) in columns.iter().enumerate() {
            if c > 0 {
                out.0.push(delimiter);
            }
            let start = out.0.len();
            column.write(row, &mut out).map_err(|e| {
                ArrowError::CsvError(format!(
                    "Error processing row {}, col {}: {e}",
                    row + 1,
                    c + 1
                ))
            })?;
            if column.may_quote() {
                quote_in_place(&core, &mut out.0, start);
            }
        }
        if out.0.len() - row_start == columns.len() - 1 {
            // Every field is empty: as arrow's writer writes such a row.
            out.0.truncate(row_start);
            let mut w = crate::arrow::csv::WriterBuilder::new()
                .with_header(false)
                .with_delimiter(delimiter)
                .build(&mut out.0);
            w.write(&batch.slice(row, 1))?;
        } else {
            out.0.push(b'\n');
        }
    }
    *buf = out.0;
    Ok(())
}

/// Appends the text of one row's value of a column to a buffer.
type WriteValue<'a> = Box<dyn Fn(usize, &mut Vec<u8>) + 'a>;

/// How a directly written column's value is written: the most common types by a branch on
/// the type, others through a function of their own.
enum Values<'a> {
    Int64(&'a [i64]),
    Float64(&'a [f64]),
    Utf8(&'a crate::arrow::array::StringArray),
    Other(WriteValue<'a>),
}

/// Appends a float's text as arrow (with `ryu`) displays it: `1e+16` is written `1e16`.
fn write_float<F: zmij::Float>(v: F, out: &mut Vec<u8>) {
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format(v).as_bytes();
    match text.iter().position(|&b| b == b'+') {
        Some(plus) => {
            out.extend_from_slice(&text[..plus]);
            out.extend_from_slice(&text[plus + 1..]);
        }
        None => out.extend_from_slice(text),
    }
}

/// Appends a float64's text as [`write_float`] does, quicker for a value with at most four
/// decimals (a price, an amount, a reading: most floats a CSV file holds).
///
/// Such a value `v` is, to the bit, the float nearest to `n / 10^4` for the whole number
/// `n = round(v * 10^4)`, so the decimal text of `n / 10^4` reads back as `v`. Below
/// [`FEW_DECIMALS_BELOW`] the floats are closer together than a hundred-thousandth, so no
/// text with fewer digits reads back as `v`: that text, its trailing zeros dropped (one
/// kept after the point), is the shortest one, which is what `ryu` and `zmij` write (and in
/// this range they write no exponent). Any other value, zero among them (for its sign), goes
/// to [`write_float`].
fn write_f64(v: f64, out: &mut Vec<u8>) {
    const SCALE: f64 = 10_000.0;
    let a = v.abs();
    if (1.0 / SCALE..FEW_DECIMALS_BELOW).contains(&a) {
        // The nearest whole number when there is one within a hundredth (a cast, not a
        // call to `round`): any other is refused by the check.
        let n = (a * SCALE + 0.5) as u64;
        if n as f64 / SCALE == a {
            if v < 0.0 {
                out.push(b'-');
            }
            out.extend_from_slice(itoa::Buffer::new().format(n / 10_000).as_bytes());
            let mut frac = n % 10_000;
            let mut digits = 4;
            while digits > 1 && frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
            // The point and the decimals, written as five bytes and cut to their length.
            let mut text = [b'.', b'0', b'0', b'0', b'0'];
            for d in (1..=digits).rev() {
                text[d] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            out.extend_from_slice(&text);
            out.truncate(out.len() - (4 - digits));
            return;
        }
    }
    write_float(v, out)
}

/// Appends `data[start..end]` (a string's bytes among its column's): when it is at most 16
/// bytes and 16 are there to copy, as a copy of 16 bytes cut to its length (a copy of known
/// length is a move or two, where one of any length is a call to `memcpy`: for a value of a
/// few bytes, that call was much of its cost).
fn append_slice(out: &mut Vec<u8>, data: &[u8], start: usize, end: usize) {
    let len = end - start;
    match data.get(start..start + 16) {
        Some(sixteen) if len <= 16 => {
            out.extend_from_slice(sixteen);
            out.truncate(out.len() - (16 - len));
        }
        _ => out.extend_from_slice(&data[start..end]),
    }
}

/// The magnitude below which [`write_f64`] writes a value with few decimals itself: 2^30,
/// where one float is 2^-23 (about 1.2e-7) from the next.
const FEW_DECIMALS_BELOW: f64 = 1_073_741_824.0;

/// How [`csv_text`] writes one column's values. Integers, floats and strings, most of a
/// table's text, are written directly, with the text arrow's formatter displays: an
/// integer in decimal, a float as the shortest text that reads back as it (the `ryu` form
/// arrow uses, here from `zmij`, about twice as quick, with `ryu`'s exponent without a
/// `+`), a string as it is. Other types go through arrow's formatter. A null is nothing.
enum ColumnText<'a> {
    Direct {
        /// The column's nulls, when it has any.
        nulls: Option<arrow_buffer::NullBuffer>,
        write: Values<'a>,
        /// Whether a value may hold a comma, a quote or a line break: only text may, and
        /// not when none of the column's text holds one.
        text: bool,
    },
    Formatted {
        formatter: arrow_cast::display::ArrayFormatter<'a>,
        may_quote: bool,
    },
}

impl<'a> ColumnText<'a> {
    fn new(
        array: &'a dyn crate::arrow::array::Array,
        options: &arrow_cast::display::FormatOptions<'a>,
        delimiter: u8,
    ) -> std::result::Result<Self, crate::arrow::error::ArrowError> {
        use crate::arrow::array::AsArray;
        use crate::arrow::datatypes::{DataType::*, *};
        fn int<'a, T>(a: &'a dyn crate::arrow::array::Array) -> WriteValue<'a>
        where
            T: ArrowPrimitiveType,
            T::Native: itoa::Integer,
        {
            let a = a.as_primitive::<T>();
            Box::new(move |row, out| {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes())
            })
        }
        fn float<'a, T>(a: &'a dyn crate::arrow::array::Array) -> WriteValue<'a>
        where
            T: ArrowPrimitiveType,
            T::Native: zmij::Float,
        {
            let a = a.as_primitive::<T>();
            Box::new(move |row, out| write_float(a.value(row), out))
        }
        /// A string column, and whether any of its values may need quotes.
        fn text<O: crate::arrow::array::OffsetSizeTrait>(
            a: &dyn crate::arrow::array::Array,
            delimiter: u8,
        ) -> (&crate::arrow::array::GenericStringArray<O>, bool) {
            let a = a.as_string::<O>();
            (
                a,
                may_need_quotes(a.value_offsets(), a.value_data(), delimiter),
            )
        }
        // The text of a number, a boolean or a date holds none of these delimiters (nor a
        // quote or a line break); with any other, every value is looked at.
        let plain = matches!(delimiter, b',' | b'\t' | b';' | b'|');
        let (write, text): (Values<'a>, bool) = match array.data_type() {
            Int64 => (
                Values::Int64(array.as_primitive::<Int64Type>().values()),
                false,
            ),
            Float64 => (
                Values::Float64(array.as_primitive::<Float64Type>().values()),
                false,
            ),
            Utf8 => {
                let (a, quotes) = text::<i32>(array, delimiter);
                (Values::Utf8(a), quotes)
            }
            Int8 => (Values::Other(int::<Int8Type>(array)), false),
            Int16 => (Values::Other(int::<Int16Type>(array)), false),
            Int32 => (Values::Other(int::<Int32Type>(array)), false),
            UInt8 => (Values::Other(int::<UInt8Type>(array)), false),
            UInt16 => (Values::Other(int::<UInt16Type>(array)), false),
            UInt32 => (Values::Other(int::<UInt32Type>(array)), false),
            UInt64 => (Values::Other(int::<UInt64Type>(array)), false),
            Float32 => (Values::Other(float::<Float32Type>(array)), false),
            LargeUtf8 => {
                let (a, quotes) = text::<i64>(array, delimiter);
                let write =
                    move |row, out: &mut Vec<u8>| out.extend_from_slice(a.value(row).as_bytes());
                (Values::Other(Box::new(write)), quotes)
            }
            Utf8View => {
                let a = array.as_string_view();
                (
                    Values::Other(Box::new(move |row, out: &mut Vec<u8>| {
                        out.extend_from_slice(a.value(row).as_bytes())
                    })),
                    true,
                )
            }
            dt => {
                // Numbers, booleans and dates are displayed without a comma, quote or line
                // break: only the other columns' values are looked at for quoting.
                let may_quote = !plain
                    || !matches!(
                        dt,
                        Float16 | Decimal128(..) | Decimal256(..) | Boolean | Date32 | Date64
                    );
                return Ok(ColumnText::Formatted {
                    formatter: arrow_cast::display::ArrayFormatter::try_new(array, options)?,
                    may_quote,
                });
            }
        };
        // Only a column with nulls is looked at for them (a bit each, not a call through the
        // array's type).
        let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
        let text = text || !plain;
        Ok(ColumnText::Direct { nulls, write, text })
    }

    /// Appends the value of `row` to `out`.
    fn write(
        &self,
        row: usize,
        out: &mut Utf8Sink,
    ) -> std::result::Result<(), crate::arrow::error::ArrowError> {
        match self {
            ColumnText::Direct { nulls, write, .. } => {
                if nulls.as_ref().is_none_or(|n| n.is_valid(row)) {
                    let out = &mut out.0;
                    match write {
                        Values::Int64(v) => {
                            out.extend_from_slice(itoa::Buffer::new().format(v[row]).as_bytes())
                        }
                        Values::Float64(v) => write_f64(v[row], out),
                        Values::Utf8(a) => {
                            let offsets = a.value_offsets();
                            append_slice(
                                out,
                                a.value_data(),
                                offsets[row] as usize,
                                offsets[row + 1] as usize,
                            )
                        }
                        Values::Other(write) => write(row, out),
                    }
                }
                Ok(())
            }
            ColumnText::Formatted { formatter, .. } => formatter.value(row).write(out),
        }
    }

    /// Whether a value may need quotes.
    fn may_quote(&self) -> bool {
        match self {
            ColumnText::Direct { text, .. } => *text,
            ColumnText::Formatted { may_quote, .. } => *may_quote,
        }
    }
}

/// Whether any value of a string column whose values are `data` between `offsets` may need
/// quotes: whether that text holds a byte that makes `csv_core`'s writer (as [`csv_text`]
/// builds it) quote a field: the delimiter, a quote or a line break. One pass over the
/// column's text, in blocks the compiler turns into vector instructions, instead of looking
/// at each value.
fn may_need_quotes<O: crate::arrow::array::OffsetSizeTrait>(
    offsets: &[O],
    data: &[u8],
    delimiter: u8,
) -> bool {
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return false;
    };
    let Some(text) = data.get(first.as_usize()..last.as_usize()) else {
        return true;
    };
    text.chunks(64).any(|block| {
        block.iter().fold(false, |any, &b| {
            any | (b == delimiter) | matches!(b, b'"' | b'\r' | b'\n')
        })
    })
}

/// Quotes the field that `buf` holds from `start` on, if it needs quotes (as `csv` decides).
fn quote_in_place(core: &csv_core::Writer, buf: &mut Vec<u8>, start: usize) {
    if !core.should_quote(&buf[start..]) {
        return;
    }
    let field = buf.split_off(start);
    // At worst every byte is a quote, doubled; and the two quotes around it.
    buf.reserve(field.len() * 2 + 2);
    buf.push(core.get_quote());
    let at = buf.len();
    buf.resize(at + field.len() * 2, 0);
    let (_, _, written) = csv_core::quote(
        &field,
        &mut buf[at..],
        core.get_quote(),
        core.get_escape(),
        core.get_double_quote(),
    );
    buf.truncate(at + written);
    buf.push(core.get_quote());
}

/// A byte buffer that arrow's formatter writes text into.
struct Utf8Sink(Vec<u8>);

impl std::fmt::Write for Utf8Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int32Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    use crate::arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    /// What arrow's CSV writer writes for the batch.
    fn by_arrow(batch: &RecordBatch, header: bool, delimiter: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = crate::arrow::csv::WriterBuilder::new()
            .with_header(header)
            .with_delimiter(delimiter)
            .build(&mut out);
        w.write(batch).expect("arrow writes it");
        drop(w);
        out
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(
            proptest::string::string_regex("[a ,\"\\n\\r\\\\é#'-]{0,4}").expect("regex"),
        )
    }

    /// A column of `n` values of one of the types a table may hold.
    fn column(kind: u8, n: usize) -> BoxedStrategy<ArrayRef> {
        match kind % 10 {
            0 => proptest::collection::vec(proptest::option::of(any::<i64>()), n)
                .prop_map(|v| Arc::new(Int64Array::from(v)) as ArrayRef)
                .boxed(),
            1 => proptest::collection::vec(
                proptest::option::of(prop_oneof![
                    any::<f64>(),
                    Just(f64::NAN),
                    Just(f64::INFINITY),
                    Just(-0.0),
                    Just(1e-300),
                    Just(0.1),
                    Just(1e16),
                    Just(-1.5e300),
                    Just(123_456_789_012_345_680.0)
                ]),
                n,
            )
            .prop_map(|v| Arc::new(Float64Array::from(v)) as ArrayRef)
            .boxed(),
            2 | 3 => proptest::collection::vec(text(), n)
                .prop_map(|v| Arc::new(StringArray::from(v)) as ArrayRef)
                .boxed(),
            4 => proptest::collection::vec(proptest::option::of(any::<bool>()), n)
                .prop_map(|v| Arc::new(BooleanArray::from(v)) as ArrayRef)
                .boxed(),
            5 => proptest::collection::vec(proptest::option::of(-100_000i32..100_000), n)
                .prop_map(|v| Arc::new(Date32Array::from(v)) as ArrayRef)
                .boxed(),
            6 => proptest::collection::vec(
                proptest::option::of(-4_000_000_000_000_000i64..4_000_000_000_000_000),
                n,
            )
            .prop_map(|v| Arc::new(TimestampMicrosecondArray::from(v)) as ArrayRef)
            .boxed(),
            8 => prop_oneof![
                proptest::collection::vec(proptest::option::of(any::<i32>()), n)
                    .prop_map(|v| Arc::new(Int32Array::from(v)) as ArrayRef),
                proptest::collection::vec(proptest::option::of(any::<u64>()), n)
                    .prop_map(|v| Arc::new(UInt64Array::from(v)) as ArrayRef),
                proptest::collection::vec(
                    proptest::option::of(prop_oneof![
                        any::<f32>(),
                        Just(f32::NAN),
                        Just(f32::NEG_INFINITY),
                        Just(3e30f32),
                        Just(0.1f32)
                    ]),
                    n
                )
                .prop_map(|v| Arc::new(Float32Array::from(v)) as ArrayRef),
            ]
            .boxed(),
            9 => prop_oneof![
                proptest::collection::vec(text(), n)
                    .prop_map(|v| Arc::new(LargeStringArray::from(v)) as ArrayRef),
                proptest::collection::vec(text(), n)
                    .prop_map(|v| Arc::new(StringViewArray::from(v)) as ArrayRef),
            ]
            .boxed(),
            _ => prop_oneof![
                proptest::collection::vec(proptest::option::of(-10_000_000i128..10_000_000), n)
                    .prop_map(|v| Arc::new(
                        Decimal128Array::from(v)
                            .with_precision_and_scale(10, 2)
                            .expect("decimal")
                    ) as ArrayRef),
                proptest::collection::vec(
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
                    n
                )
                .prop_map(|v| Arc::new(BinaryArray::from(
                    v.iter().map(|b| b.as_deref()).collect::<Vec<_>>()
                )) as ArrayRef),
            ]
            .boxed(),
        }
    }

    fn batch() -> impl Strategy<Value = RecordBatch> {
        (
            proptest::collection::vec(
                (
                    any::<u8>(),
                    proptest::string::string_regex("[a ,\"]{0,2}").expect("regex"),
                ),
                1..4,
            ),
            0usize..6,
        )
            .prop_flat_map(|(kinds, n)| {
                let columns: Vec<BoxedStrategy<ArrayRef>> =
                    kinds.iter().map(|(k, _)| column(*k, n)).collect();
                let names: Vec<String> = kinds
                    .iter()
                    .enumerate()
                    .map(|(i, (_, name))| {
                        // Distinct names, some empty or needing quotes.
                        if i == 0 {
                            name.clone()
                        } else {
                            format!("{name}{i}")
                        }
                    })
                    .collect();
                columns.prop_map(move |columns| {
                    let fields: Vec<Field> = names
                        .iter()
                        .zip(&columns)
                        .map(|(name, c)| Field::new(name, c.data_type().clone(), true))
                        .collect();
                    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
                })
            })
    }

    /// The text of every value of `array` as [`csv_text`] writes it and as arrow's CSV writer
    /// does, one value per line: equal, or the first value that differs.
    fn same_text_as_arrow(array: ArrayRef) {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "v",
                array.data_type().clone(),
                true,
            )])),
            vec![array.clone()],
        )
        .expect("batch");
        let mut ours = Vec::new();
        csv_text(&mut ours, &batch, false, b',').expect("ours");
        let theirs = by_arrow(&batch, false, b',');
        if ours != theirs {
            let (ours, theirs) = (
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
            );
            let (row, (a, b)) = ours
                .lines()
                .zip(theirs.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .expect("a line differs");
            panic!("{}: row {row} is {a} here, {b} by arrow", array.data_type());
        }
    }

    #[test]
    fn the_bytes_a_column_is_searched_for_are_those_csv_core_quotes_for() {
        for delimiter in [b',', b'\t', b';', b'|', b' ', b'x'] {
            let core = csv_core::WriterBuilder::new().delimiter(delimiter).build();
            for b in 0..=255u8 {
                let text = [b'#'; 70].iter().copied().chain([b]).collect::<Vec<u8>>();
                assert_eq!(
                    core.should_quote(&[b]),
                    may_need_quotes(&[0i32, 1, 71], &text, delimiter),
                    "byte {b}, delimiter {delimiter}"
                );
            }
        }
        // Only the column's own text is looked at (a sliced array's neighbours are not).
        assert!(!may_need_quotes(&[1i64, 3], b",ab,", b','));
        assert!(!may_need_quotes::<i32>(&[], b"", b','));
    }

    #[test]
    fn integers_and_floats_have_arrows_text_for_every_kind_and_many_values() {
        use crate::arrow::array::{Int16Array, Int8Array, UInt16Array, UInt32Array, UInt8Array};
        // Bit patterns spread over every exponent (xorshift), and the edges.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut bits = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = 200_000;
        let mut f64s: Vec<f64> = (0..n).map(|_| f64::from_bits(bits())).collect();
        f64s.extend([
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1e15,
            1e16,
            1e-5,
            1e-6,
            1e-7,
            0.1,
            123_456.789,
            -2.5e-300,
            9_007_199_254_740_993.0,
        ]);
        f64s.extend((0..10_000).map(|i| f64::from(i) / 100.0));
        // Values with few decimals (written by a quicker path), up to and beyond the edge
        // of that path, either sign, and neighbours a bit away that it must leave alone.
        let mut few = Vec::new();
        for scale in [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0] {
            for _ in 0..20_000 {
                let n = (bits() >> (bits() % 64)) as f64;
                let v = n / scale;
                few.extend([
                    v,
                    -v,
                    f64::from_bits(v.to_bits() + 1),
                    f64::from_bits(v.to_bits().saturating_sub(1)),
                ]);
            }
        }
        let edge = FEW_DECIMALS_BELOW;
        few.extend([
            edge,
            edge - 0.0001,
            edge - 0.5,
            edge + 0.25,
            0.0001,
            0.00015,
            0.00009999,
            1e-4,
            0.5,
            99.99,
            999_999_999.999_9,
        ]);
        assert!(
            few.iter()
                .filter(|v| (1e-4..edge).contains(&v.abs()))
                .count()
                > 50_000
        );
        f64s.extend(few);
        let mut f32s: Vec<f32> = (0..n).map(|_| f32::from_bits(bits() as u32)).collect();
        f32s.extend([
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            1e12,
            1e13,
            1e-6,
            1e-7,
        ]);
        same_text_as_arrow(Arc::new(Float64Array::from(f64s)));
        same_text_as_arrow(Arc::new(Float32Array::from(f32s)));
        let ints: Vec<i64> = (0..n)
            .map(|_| bits() as i64 >> (bits() % 64))
            .chain([i64::MIN, i64::MAX, 0, -1])
            .collect();
        same_text_as_arrow(Arc::new(Int64Array::from(ints.clone())));
        same_text_as_arrow(Arc::new(UInt64Array::from(
            ints.iter()
                .map(|&v| v as u64)
                .chain([u64::MAX])
                .collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(Int32Array::from(
            ints.iter()
                .map(|&v| v as i32)
                .chain([i32::MIN])
                .collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(UInt32Array::from(
            ints.iter().map(|&v| v as u32).collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(Int16Array::from(
            ints.iter()
                .map(|&v| v as i16)
                .chain([i16::MIN])
                .collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(UInt16Array::from(
            ints.iter().map(|&v| v as u16).collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(Int8Array::from(
            ints.iter()
                .map(|&v| v as i8)
                .chain([i8::MIN])
                .collect::<Vec<_>>(),
        )));
        same_text_as_arrow(Arc::new(UInt8Array::from(
            ints.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        )));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn csv_text_is_what_arrows_writer_writes(
            batch in batch(),
            header in any::<bool>(),
            // Delimiters that a number's, a date's or a text's characters may be too.
            delimiter in prop::sample::select(vec![b',', b',', b'\t', b';', b'|', b' ', b'.', b'-', b'1', b'e', b'a', b':']),
        ) {
            let mut ours = b"kept".to_vec();
            csv_text(&mut ours, &batch, header, delimiter).expect("ours");
            let mut theirs = b"kept".to_vec();
            theirs.extend(by_arrow(&batch, header, delimiter));
            prop_assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }
}
