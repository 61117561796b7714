//! Table handles and streams of batches.

use std::sync::Mutex;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use futures::StreamExt;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use strata::{KeyRange, ScanOptions, TableInfo};
use tokio::sync::mpsc;

use crate::convert;
use crate::errors::{to_py, IntoPy};
use crate::ffi;
use crate::runtime::{runtime, wait};

/// Batches decoded ahead of the consumer (besides the scan's own read-ahead).
const AHEAD: usize = 2;

/// What a table handle reads: a repository, or a remote read in place.
#[derive(Clone)]
pub enum Source {
    Local(strata::Repository),
    Remote(strata::RemoteRepository),
}

impl Source {
    pub async fn scan(&self, table: &str, opts: &ScanOptions) -> strata::Result<strata::Scan> {
        match self {
            Source::Local(r) => r.scan(table, opts).await,
            Source::Remote(r) => r.scan(table, opts).await,
        }
    }

    pub async fn diff(&self, opts: &strata::DiffOptions) -> strata::Result<strata::Diff> {
        match self {
            Source::Local(r) => r.diff(opts).await,
            Source::Remote(r) => r.diff(opts).await,
        }
    }

    pub async fn table(&self, name: &str, rev: Option<&str>) -> strata::Result<TableInfo> {
        match self {
            Source::Local(r) => r.table(name, rev).await,
            Source::Remote(r) => r.table(name, rev).await,
        }
    }

    /// The commit `rev` names, and the revision's name; a remote's `None` is its default
    /// branch (a repository's is the working version, which has no commit).
    pub async fn resolve(
        &self,
        rev: Option<String>,
    ) -> strata::Result<(Option<strata::ObjectId>, Option<String>)> {
        match (self, rev) {
            (Source::Local(r), Some(rev)) => Ok((Some(r.resolve(&rev).await?), Some(rev))),
            (Source::Local(_), None) => Ok((None, None)),
            (Source::Remote(r), Some(rev)) => Ok((Some(r.resolve(Some(&rev)).await?), Some(rev))),
            (Source::Remote(r), None) => {
                let branch = r.default_branch().await?;
                Ok((Some(branch.commit), Some(branch.name)))
            }
        }
    }
}

/// A scan running on the runtime; batches are pulled on demand, decoded without the GIL.
pub struct ScanReader {
    schema: SchemaRef,
    rx: mpsc::Receiver<strata::Result<RecordBatch>>,
}

impl ScanReader {
    /// Starts a scan (errors such as an unknown table or column are reported here).
    pub fn start(py: Python<'_>, repo: &Source, table: &str, opts: ScanOptions) -> PyResult<Self> {
        let repo = repo.clone();
        let table = table.to_string();
        let scan = wait(py, move || async move { repo.scan(&table, &opts).await }).py_err()?;
        let schema = scan.schema();
        let (tx, rx) = mpsc::channel(AHEAD);
        runtime().spawn(async move {
            let mut scan = scan;
            while let Some(batch) = scan.next().await {
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(ScanReader { schema, rx })
    }

    /// The next batch; blocks the calling thread. A consumer may be a task of a runtime
    /// (the library reading a table handle given to `write`): its worker is then handed
    /// over while it waits.
    pub fn next_batch(&mut self) -> Option<strata::Result<RecordBatch>> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => self.rx.blocking_recv(),
            Ok(RuntimeFlavor::CurrentThread) => futures::executor::block_on(self.rx.recv()),
            Ok(_) => tokio::task::block_in_place(|| self.rx.blocking_recv()),
        }
    }
}

impl Iterator for ScanReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
            .map(|r| r.map_err(|e| ArrowError::ExternalError(Box::new(e))))
    }
}

impl RecordBatchReader for ScanReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Where a stream's batches come from.
enum BatchSource {
    Scan(ScanReader),
    Batches(std::vec::IntoIter<RecordBatch>),
}

/// A one-pass stream of Arrow record batches.
///
/// Iterate it for `pyarrow.RecordBatch` objects (needs pyarrow), hand it to anything that
/// reads the Arrow PyCapsule interface (`pyarrow.table(s)`, `polars.from_arrow(s)`, DuckDB),
/// or call `read_all()`. Batches are decoded as they are asked for, without the GIL.
#[pyclass(module = "strata", name = "RecordBatchStream")]
pub struct RecordBatchStream {
    schema: SchemaRef,
    source: Mutex<Option<BatchSource>>,
}

impl RecordBatchStream {
    pub fn from_scan(reader: ScanReader) -> Self {
        RecordBatchStream {
            schema: reader.schema.clone(),
            source: Mutex::new(Some(BatchSource::Scan(reader))),
        }
    }

    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        RecordBatchStream {
            schema,
            source: Mutex::new(Some(BatchSource::Batches(batches.into_iter()))),
        }
    }

    fn take(&self) -> PyResult<BatchSource> {
        self.source
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the stream is broken"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the stream was consumed already"))
    }
}

fn into_reader(schema: SchemaRef, source: BatchSource) -> Box<dyn RecordBatchReader + Send> {
    match source {
        BatchSource::Scan(r) => Box::new(r),
        BatchSource::Batches(b) => Box::new(RecordBatchIterator::new(b.map(Ok), schema)),
    }
}

/// A pyarrow RecordBatch for a batch.
fn py_batch<'py>(py: Python<'py>, batch: RecordBatch) -> PyResult<Bound<'py, PyAny>> {
    let pa = convert::pyarrow(py, "iterating over batches")?;
    let (schema, array) = ffi::export_batch(py, batch)?;
    pa.getattr("RecordBatch")?
        .call_method1("_import_from_c_capsule", (schema, array))
}

/// A pyarrow Table from a stream capsule.
pub fn py_table<'py>(
    py: Python<'py>,
    reader: Box<dyn RecordBatchReader + Send>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let pa = convert::pyarrow(py, what)?;
    let capsule = ffi::export_stream(py, reader)?;
    pa.getattr("RecordBatchReader")?
        .call_method1("_import_from_c_capsule", (capsule,))?
        .call_method0("read_all")
}

/// A pyarrow Schema.
pub fn py_schema<'py>(py: Python<'py>, schema: &SchemaRef) -> PyResult<Bound<'py, PyAny>> {
    let pa = convert::pyarrow(py, "the schema as a pyarrow.Schema")?;
    let capsule = ffi::export_schema(py, schema)?;
    pa.getattr("Schema")?
        .call_method1("_import_from_c_capsule", (capsule,))
}

#[pymethods]
impl RecordBatchStream {
    /// The Arrow schema of the batches (a `pyarrow.Schema`; needs pyarrow).
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_schema(py, &self.schema)
    }

    /// The Arrow PyCapsule interface: hands the stream to its consumer (once).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let source = self.take()?;
        ffi::export_stream(py, into_reader(self.schema.clone(), source))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self
            .source
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the stream is broken"))?;
        let next = match guard.as_mut() {
            None => None,
            Some(BatchSource::Batches(b)) => b.next().map(Ok),
            Some(BatchSource::Scan(r)) => py.detach(|| r.next_batch()),
        };
        match next {
            None => {
                *guard = None;
                Err(PyStopIteration::new_err(()))
            }
            Some(Ok(batch)) => {
                drop(guard);
                py_batch(py, batch)
            }
            Some(Err(e)) => {
                *guard = None;
                Err(to_py(e))
            }
        }
    }

    /// Reads the rest of the stream into a `pyarrow.Table` (needs pyarrow).
    fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = self.take()?;
        let batches = match source {
            BatchSource::Batches(b) => b.collect(),
            BatchSource::Scan(mut r) => py
                .detach(|| {
                    let mut out = Vec::new();
                    while let Some(b) = r.next_batch() {
                        out.push(b?);
                    }
                    Ok::<_, strata::Error>(out)
                })
                .py_err()?,
        };
        let schema = self.schema.clone();
        py_table(
            py,
            Box::new(RecordBatchIterator::new(
                batches.into_iter().map(Ok),
                schema,
            )),
            "read_all()",
        )
    }

    fn __repr__(&self) -> String {
        format!("<strata.RecordBatchStream schema={}>", self.schema)
    }
}

/// A table of a repository at a revision: its schema, key and size, and its rows.
///
/// Any reader of the Arrow PyCapsule interface reads it directly, with no copy:
/// `duckdb.sql("SELECT ... FROM t")`, `polars.from_arrow(t)`, `pyarrow.table(t)`.
/// Each read scans the table afresh.
#[pyclass(module = "strata", name = "Table", frozen)]
pub struct Table {
    repo: Source,
    info: TableInfo,
    schema: SchemaRef,
    /// The revision, resolved to a commit id (None: the working version).
    rev: Option<String>,
    rev_name: Option<String>,
}

impl Table {
    pub fn open(py: Python<'_>, repo: &Source, name: &str, rev: Option<String>) -> PyResult<Self> {
        let r = repo.clone();
        let n = name.to_string();
        let (info, commit, rev_name) = wait(py, move || async move {
            let (commit, rev_name) = r.resolve(rev).await?;
            let commit = commit.map(|c| c.to_hex());
            let info = r.table(&n, commit.as_deref()).await?;
            Ok::<_, strata::Error>((info, commit, rev_name))
        })
        .py_err()?;
        let schema = info.arrow_schema().py_err()?;
        Ok(Table {
            repo: repo.clone(),
            info,
            schema,
            rev: commit,
            rev_name,
        })
    }

    fn options(
        &self,
        columns: Option<Vec<String>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ScanOptions> {
        let ranges: Vec<KeyRange> = match filter {
            None => Vec::new(),
            Some(f) if f.is_none() => Vec::new(),
            Some(f) => {
                let ranges = convert::filter(f, &self.info.primary_key)?;
                if ranges.is_empty() {
                    return Err(crate::errors::invalid(
                        "the filter is empty: give at least one key or range",
                    ));
                }
                ranges
            }
        };
        Ok(ScanOptions {
            rev: self.rev.clone(),
            columns,
            ranges,
        })
    }

    fn collect(
        &self,
        py: Python<'_>,
        opts: ScanOptions,
    ) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
        let repo = self.repo.clone();
        let name = self.info.table.clone();
        wait(py, move || async move {
            let scan = repo.scan(&name, &opts).await?;
            let schema = scan.schema();
            Ok::<_, strata::Error>((schema, scan.collect().await?))
        })
        .py_err()
    }
}

#[pymethods]
impl Table {
    /// The table's name.
    #[getter]
    fn name(&self) -> &str {
        &self.info.table
    }

    /// The revision this handle reads (None: the working version).
    #[getter]
    fn rev(&self) -> Option<&str> {
        self.rev_name.as_deref()
    }

    /// The commit id of the revision (None: a repository's working version).
    #[getter]
    fn commit(&self) -> Option<&str> {
        self.rev.as_deref()
    }

    /// The table version's id.
    #[getter]
    fn id(&self) -> String {
        self.info.id.to_hex()
    }

    /// The Arrow schema (a `pyarrow.Schema`; needs pyarrow).
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_schema(py, &self.schema)
    }

    /// The columns as (name, type, nullable), in Strata's type names; needs no pyarrow.
    #[getter]
    fn columns(&self) -> Vec<(String, String, bool)> {
        self.info
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data_type.clone(), c.nullable))
            .collect()
    }

    /// The key columns.
    #[getter]
    fn primary_key(&self) -> Vec<String> {
        self.info.primary_key.clone()
    }

    /// The number of rows.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.info.rows
    }

    /// How many chunks store the rows.
    #[getter]
    fn num_chunks(&self) -> usize {
        self.info.chunks
    }

    /// Bytes of the stored chunks.
    #[getter]
    fn size_bytes(&self) -> u64 {
        self.info.bytes
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.info.rows).unwrap_or(usize::MAX)
    }

    /// Reads the rows into a `pyarrow.Table` (needs pyarrow), in key order.
    ///
    /// `columns`: the columns to read (default: all). `filter`: keys to read (see the
    /// module's documentation); only the chunks those keys reach are read.
    #[pyo3(signature = (columns=None, filter=None))]
    fn to_arrow<'py>(
        &self,
        py: Python<'py>,
        columns: Option<Vec<String>>,
        filter: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = self.options(columns, filter.as_ref())?;
        convert::pyarrow(py, "to_arrow()")?;
        let (schema, batches) = self.collect(py, opts)?;
        py_table(
            py,
            Box::new(RecordBatchIterator::new(
                batches.into_iter().map(Ok),
                schema,
            )),
            "to_arrow()",
        )
    }

    /// Reads the rows into a pandas DataFrame (needs pyarrow and pandas).
    #[pyo3(signature = (columns=None, filter=None))]
    fn to_pandas<'py>(
        &self,
        py: Python<'py>,
        columns: Option<Vec<String>>,
        filter: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.to_arrow(py, columns, filter)?
            .call_method0("to_pandas")
    }

    /// The rows as a stream of record batches, decoded as they are asked for.
    #[pyo3(signature = (columns=None, filter=None))]
    fn to_batches(
        &self,
        py: Python<'_>,
        columns: Option<Vec<String>>,
        filter: Option<Bound<'_, PyAny>>,
    ) -> PyResult<RecordBatchStream> {
        let opts = self.options(columns, filter.as_ref())?;
        let reader = ScanReader::start(py, &self.repo, &self.info.table, opts)?;
        Ok(RecordBatchStream::from_scan(reader))
    }

    /// How many chunks a read with this filter reads (the others are skipped by the index).
    #[pyo3(signature = (filter=None))]
    fn chunks_read(&self, py: Python<'_>, filter: Option<Bound<'_, PyAny>>) -> PyResult<usize> {
        let opts = self.options(Some(Vec::new()), filter.as_ref())?;
        let repo = self.repo.clone();
        let name = self.info.table.clone();
        wait(py, move || async move {
            let scan = repo.scan(&name, &opts).await?;
            Ok::<_, strata::Error>(strata::Scan::chunks(&scan))
        })
        .py_err()
    }

    /// The Arrow PyCapsule interface: a fresh stream of the whole table.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let opts = self.options(None, None)?;
        let reader = ScanReader::start(py, &self.repo, &self.info.table, opts)?;
        ffi::export_stream(py, Box::new(reader))
    }

    fn __repr__(&self) -> String {
        let cols: Vec<String> = self
            .info
            .columns
            .iter()
            .map(|c| format!("{}: {}", c.name, c.data_type))
            .collect();
        format!(
            "<strata.Table '{}'{} rows={} key=({}) columns=[{}]>",
            self.info.table,
            self.rev_name
                .as_ref()
                .map(|r| format!(" at '{r}'"))
                .unwrap_or_default(),
            self.info.rows,
            self.info.primary_key.join(", "),
            cols.join(", ")
        )
    }
}
