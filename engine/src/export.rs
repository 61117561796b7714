//! Writing a table version out as Parquet, CSV, JSON Lines or Arrow IPC, streamed in key
//! order chunk by chunk. Any revision exports at the same speed: a commit names its tables'
//! chunks directly, so nothing is replayed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::arrow::array::RecordBatch;
use crate::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::Objects;
use crate::table::{scan, TableObject};

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

    /// The format implied by a file name, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| Self::parse(e).ok())
    }
}

enum Sink {
    Parquet(ArrowWriter<BufWriter<Box<dyn Write + Send>>>),
    Csv(crate::arrow::csv::Writer<BufWriter<Box<dyn Write + Send>>>),
    Jsonl(crate::arrow::json::LineDelimitedWriter<BufWriter<Box<dyn Write + Send>>>),
    Arrow(crate::arrow::ipc::writer::FileWriter<BufWriter<Box<dyn Write + Send>>>),
}

impl Sink {
    fn new(format: ExportFormat, out: Box<dyn Write + Send>, schema: &SchemaRef) -> Result<Self> {
        let out = BufWriter::with_capacity(1 << 20, out);
        let err = |e| Error::arrow("starting the export", e);
        Ok(match format {
            ExportFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(
                        ZstdLevel::try_new(1).expect("valid level"),
                    ))
                    .build();
                Sink::Parquet(
                    ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .map_err(|e| Error::parquet("starting the export", e))?,
                )
            }
            ExportFormat::Csv => Sink::Csv(
                crate::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            ExportFormat::Jsonl => Sink::Jsonl(crate::arrow::json::LineDelimitedWriter::new(out)),
            ExportFormat::Arrow => Sink::Arrow(
                crate::arrow::ipc::writer::FileWriter::try_new(out, schema).map_err(err)?,
            ),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let err = |e| Error::arrow("writing the export", e);
        match self {
            Sink::Parquet(w) => w
                .write(batch)
                .map_err(|e| Error::parquet("writing the export", e)),
            Sink::Csv(w) => w.write(batch).map_err(err),
            Sink::Jsonl(w) => w.write(batch).map_err(err),
            Sink::Arrow(w) => w.write(batch).map_err(err),
        }
    }

    fn finish(self) -> Result<()> {
        let err = |e| Error::arrow("finishing the export", e);
        let flush = |mut w: BufWriter<Box<dyn Write + Send>>| {
            w.flush().map_err(|e| Error::Io {
                path: "the export's destination".into(),
                source: e,
            })
        };
        match self {
            Sink::Parquet(w) => {
                let inner = w
                    .into_inner()
                    .map_err(|e| Error::parquet("finishing the export", e))?;
                flush(inner)
            }
            Sink::Csv(w) => flush(w.into_inner()),
            Sink::Jsonl(mut w) => {
                w.finish().map_err(err)?;
                flush(w.into_inner())
            }
            Sink::Arrow(mut w) => {
                w.finish().map_err(err)?;
                flush(w.into_inner().map_err(err)?)
            }
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
    format: ExportFormat,
    progress: &dyn Progress,
) -> Result<u64> {
    let schema = table.schema.arrow()?;
    let entries = table.chunks(objects).await?;
    progress.set_total(table.rows);
    let (out, tmp): (
        Box<dyn Write + Send>,
        Option<(tempfile::NamedTempFile, PathBuf)>,
    ) = match dest {
        Destination::Stdout => (Box::new(std::io::stdout()), None),
        Destination::File(path) => {
            if path.is_dir() {
                return Err(Error::Invalid(format!(
                    "'{}' is a folder; name the file to write",
                    path.display()
                )));
            }
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut builder = tempfile::Builder::new();
            builder.prefix(".strata-export-");
            // Temporary files are private (0600); the export is a file like any other the
            // user makes: 0666 less the umask (usually 0644).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                builder.permissions(std::fs::Permissions::from_mode(0o666));
            }
            let tmp = builder.tempfile_in(&dir).map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?;
            let file: File = tmp.reopen().map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            (Box::new(file), Some((tmp, path.clone())))
        }
    };
    let mut sink = Sink::new(format, out, &schema)?;
    let mut rows = 0u64;
    let mut stream = std::pin::pin!(scan(objects, table, entries)?);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        sink.write(&batch)?;
        rows += batch.num_rows() as u64;
        progress.advance(batch.num_rows() as u64);
    }
    sink.finish()?;
    if let Some((tmp, path)) = tmp {
        tmp.persist(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e.error,
        })?;
    }
    Ok(rows)
}
