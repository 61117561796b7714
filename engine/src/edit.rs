//! Changing the working tables from files: import (create, replace, append, upsert) and
//! delete by key. New chunks are stored first and the working state is switched in one
//! atomic write at the end, so an interrupted import leaves the previous state intact.

use std::collections::HashSet;
use std::path::Path;

use crate::chunk::ChunkParams;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::import::{sort_file, BatchReader, Input, SortedFile};
use crate::key::Rows;
use crate::names::validate_name;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::schema::TableSchema;
use crate::table::{apply_and_store, ApplyStats, ChangeOp, ChangeSource, TableObject};
use crate::tree::decode_hex;

/// Passes changes through, noting which of the `watch` keys they touch (used to resolve
/// merge conflicts by importing or deleting the conflicting rows).
struct Recorder<'a> {
    inner: &'a mut dyn ChangeSource,
    watch: &'a HashSet<Vec<u8>>,
    hit: &'a mut HashSet<Vec<u8>>,
}

impl ChangeSource for Recorder<'_> {
    fn next_rows(&mut self) -> Result<Option<Rows>> {
        let rows = self.inner.next_rows()?;
        if let Some(r) = &rows {
            if !self.watch.is_empty() {
                for i in 0..r.keys.len() {
                    if self.watch.contains(r.keys.get(i)) {
                        self.hit.insert(r.keys.get(i).to_vec());
                    }
                }
            }
        }
        Ok(rows)
    }
}

/// How an import treats the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Create a new table; fails if it exists.
    Create,
    /// Replace all rows (and the schema) with the file's.
    Replace,
    /// Add rows; fails on a key that exists.
    Append,
    /// Add rows, replacing rows with the same key.
    Upsert,
}

impl ImportMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "create" => Ok(ImportMode::Create),
            "replace" => Ok(ImportMode::Replace),
            "append" => Ok(ImportMode::Append),
            "upsert" => Ok(ImportMode::Upsert),
            other => Err(Error::Invalid(format!(
                "unknown mode '{other}'; use create, replace, append or upsert"
            ))),
        }
    }
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub mode: Option<ImportMode>,
    pub primary_key: Option<Vec<String>>,
    pub format: Option<crate::import::Format>,
    /// How the file is compressed (default: from its name, `.gz` or `.zst`).
    pub compression: Option<crate::import::Compression>,
    /// The field delimiter of a CSV file (default: a tab for `.tsv`, else a comma).
    pub delimiter: Option<u8>,
    /// Average rows per chunk for a new table (default: [`ChunkParams::default`]).
    pub chunk_rows: Option<u32>,
    /// Types of some columns of a new table (create, replace), in place of the inferred
    /// ones; for an existing table they must be the table's.
    pub types: Vec<(String, crate::arrow::datatypes::DataType)>,
}

/// How to read the file of an import.
fn read_options(opts: &ImportOptions, name: Option<&str>) -> crate::import::ReadOptions {
    crate::import::ReadOptions {
        format: opts.format,
        compression: opts.compression,
        delimiter: opts.delimiter,
        name: name.map(str::to_string),
    }
}

/// Whether `path` can be read only once: a named pipe, a device, `/dev/stdin`, or a shell's
/// `<(...)` (`/dev/fd/N`). An import reads its input more than once, so such an input is
/// first copied, as standard input is.
fn reads_once(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// `opts` with the format, compression and delimiter that `path`'s name tells, where `opts`
/// leaves them out: for a copy of `path`, whose own name tells nothing.
fn told_by_name(opts: &ImportOptions, path: &Path) -> Result<ImportOptions> {
    use crate::import::{inner_extension, Compression, Format};
    let mut told = opts.clone();
    let format = match opts.format {
        Some(f) => f,
        None => Format::from_path(path)?,
    };
    told.format = Some(format);
    told.compression = Some(
        opts.compression
            .unwrap_or_else(|| Compression::from_path(path)),
    );
    if told.delimiter.is_none() && format == Format::Csv && inner_extension(path) == "tsv" {
        told.delimiter = Some(b'\t');
    }
    Ok(told)
}

/// `path` opened to be read once.
fn open_input(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::BadInput {
        path: path.display().to_string(),
        message: format!("cannot open it: {e}"),
    })
}

/// The temporary folder standard input is copied to: removed when dropped, with the
/// repository's `tmp/` when that is left empty.
struct Spool {
    dir: Option<tempfile::TempDir>,
    /// The file in it that the input is copied to.
    file: std::path::PathBuf,
}

impl Spool {
    fn new(dir: tempfile::TempDir) -> Self {
        let file = dir.path().join("input");
        Spool {
            dir: Some(dir),
            file,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let parent = dir.path().parent().map(Path::to_path_buf);
            let _ = dir.close();
            if let Some(p) = parent {
                // Fails, as it should, while another command has a folder there.
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

/// What an import or delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditSummary {
    pub table: String,
    pub table_id: ObjectId,
    pub rows: u64,
    pub stats: ApplyStats,
    pub created: bool,
    /// What the user should know about how the input was read (a column kept as text).
    pub notes: Vec<String>,
    /// How a replace changed the table's columns or key (`None`: it did not).
    pub schema_change: Option<crate::diff::SchemaChange>,
}

impl Repository {
    /// Imports a file into a working table.
    pub async fn import(
        &self,
        table: &str,
        path: &Path,
        opts: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        validate_name("table", table)?;
        let (input, _spool) = self.input_at(path, opts)?;
        self.import_input(table, &input, opts, progress).await
    }

    /// The file at `path`, read as `opts` says. A path that can be read only once (see
    /// [`reads_once`]) is first copied, as standard input is, with its format, compression
    /// and delimiter told by its name; the copy lasts as long as the returned spool.
    fn input_at(&self, path: &Path, opts: &ImportOptions) -> Result<(Input, Option<Spool>)> {
        if !reads_once(path) {
            return Ok((Input::with_options(path, &read_options(opts, None))?, None));
        }
        let opts = told_by_name(opts, path)?;
        let name = path.display().to_string();
        let spool = self.spool(&mut open_input(path)?, &name)?;
        let input = Input::with_options(&spool.file, &read_options(&opts, Some(&name)))?;
        Ok((input, Some(spool)))
    }

    /// Imports what `reader` gives (standard input, say), in `opts.format`, which is
    /// required. An import reads its input more than once (to infer types, then to read the
    /// rows, and again to sort them when they are not in key order), so the bytes are first
    /// copied, as they come, to a file in the repository's `tmp/` folder, removed afterwards.
    /// `name` is what messages call the input.
    pub async fn import_reader(
        &self,
        table: &str,
        reader: &mut (dyn std::io::Read + Send),
        name: &str,
        opts: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        validate_name("table", table)?;
        if opts.format.is_none() {
            return Err(Error::Invalid(format!(
                "the format of {name} cannot be told from a file name; give it (csv, parquet or jsonl)"
            )));
        }
        let spool = self.spool(reader, name)?;
        let input = Input::with_options(&spool.file, &read_options(opts, Some(name)))?;
        self.import_input(table, &input, opts, progress).await
    }

    /// Copies what `reader` gives (called `name` in messages) to a file in the repository's
    /// `tmp/` folder, removed with the returned spool.
    fn spool(&self, reader: &mut (dyn std::io::Read + Send), name: &str) -> Result<Spool> {
        let spool = Spool::new(self.tmp_dir()?);
        let path = &spool.file;
        let io = |e: std::io::Error| Error::BadInput {
            path: name.to_string(),
            message: format!("cannot copy it to {}: {e}", path.display()),
        };
        let mut file = std::fs::File::create(path).map_err(io)?;
        std::io::copy(reader, &mut file).map_err(|e| Error::BadInput {
            path: name.to_string(),
            message: format!("cannot read it: {e}"),
        })?;
        file.sync_all().map_err(io)?;
        Ok(spool)
    }

    /// Imports rows (a file, or Arrow batches) into a working table.
    pub async fn import_input(
        &self,
        table: &str,
        input: &Input,
        opts: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        validate_name("table", table)?;
        let existing = match self.working().await?.tables.get(table) {
            Some(id) => Some(TableObject::read(self.objects(), id).await?),
            None => None,
        };
        let mode = match (opts.mode, &existing) {
            (None, None) => ImportMode::Create,
            (Some(ImportMode::Create) | None, Some(_)) => {
                return Err(Error::TableExists { name: table.into() })
            }
            (Some(ImportMode::Append | ImportMode::Upsert), None) => {
                return Err(Error::NoSuchTableToChange { name: table.into() })
            }
            (Some(m), _) => m,
        };
        let mut notes = Vec::new();
        let mut exact = Vec::new();
        let (schema, base, op, chunking) = match mode {
            ImportMode::Create | ImportMode::Replace => {
                let key = match (&opts.primary_key, &existing) {
                    (Some(k), _) => k.clone(),
                    (None, Some(t)) => t.schema.primary_key.clone(),
                    (None, None) => {
                        return Err(Error::KeyRequired {
                            table: table.into(),
                        })
                    }
                };
                let inferred = input.infer(&opts.types)?;
                notes = inferred.notes;
                exact = inferred.exact;
                let schema =
                    TableSchema::from_arrow(&inferred.schema, &key).map_err(|e| match e {
                        // The file's column: said with the file's name.
                        Error::UnsupportedType {
                            column, data_type, ..
                        } => Error::UnsupportedType {
                            column,
                            data_type,
                            input: Some(input.name()),
                        },
                        e => e,
                    })?;
                let chunking = match (opts.chunk_rows, &existing) {
                    (Some(n), _) => ChunkParams::with_average(n),
                    (None, Some(t)) => t.chunking,
                    (None, None) => ChunkParams::default(),
                };
                (schema, None, ChangeOp::Upsert, chunking)
            }
            ImportMode::Append | ImportMode::Upsert => {
                let t = existing.as_ref().expect("checked above");
                if let Some(k) = &opts.primary_key {
                    if *k != t.schema.primary_key {
                        return Err(Error::InvalidPrimaryKey {
                            reason: format!(
                                "table '{table}' has key {}; the key given ({}) differs",
                                t.schema.primary_key.join(","),
                                k.join(",")
                            ),
                        });
                    }
                }
                let op = if mode == ImportMode::Append {
                    ChangeOp::Insert
                } else {
                    ChangeOp::Upsert
                };
                let arrow = t.schema.arrow()?;
                for (column, dt) in &opts.types {
                    match arrow.field_with_name(column) {
                        Ok(f) if f.data_type() == dt => {}
                        Ok(f) => {
                            return Err(Error::SchemaMismatch {
                                table: table.into(),
                                path: input.name(),
                                details: format!(
                                    "column '{column}' is {} in the table; the type given is {}",
                                    crate::schema::type_name(f.data_type())
                                        .unwrap_or_else(|| f.data_type().to_string()),
                                    crate::schema::type_name(dt)
                                        .unwrap_or_else(|| dt.to_string())
                                ),
                            })
                        }
                        Err(_) => {
                            return Err(Error::SchemaMismatch {
                                table: table.into(),
                                path: input.name(),
                                details: format!(
                                    "a type is given for column '{column}', which the table does not have"
                                ),
                            })
                        }
                    }
                }
                (t.schema.clone(), Some(t), op, t.chunking)
            }
        };
        let input = &input.clone().with_exact(exact);
        let watch = self.conflict_keys(table).await?;
        let (object, id, stats, hit) = self
            .apply_file(table, input, &schema, base, op, chunking, &watch, progress)
            .await?;
        self.set_working_table(table, Some(id)).await?;
        // The rows the file held settle their conflicts; a replace settles the whole table's.
        let settled = if mode == ImportMode::Replace {
            watch
        } else {
            hit
        };
        if !settled.is_empty() {
            self.resolve_keys(table, &settled).await?;
        }
        Ok(EditSummary {
            table: table.into(),
            table_id: id,
            rows: object.rows,
            stats,
            created: existing.is_none(),
            notes,
            schema_change: existing
                .as_ref()
                .map(|old| crate::diff::SchemaChange::between(&old.schema, &object.schema))
                .filter(|c| !c.is_empty()),
        })
    }

    /// Deletes the rows whose keys are listed in a file (CSV, Parquet or JSON Lines with
    /// exactly the key columns).
    pub async fn delete_keys(
        &self,
        table: &str,
        path: &Path,
        format: Option<crate::import::Format>,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        let opts = ImportOptions {
            format,
            ..Default::default()
        };
        let (input, _spool) = self.input_at(path, &opts)?;
        self.delete_input(table, &input, progress).await
    }

    /// Deletes the rows whose keys `reader` gives (called `name` in messages), first copied
    /// to a file of the repository's `tmp/` folder, as an import from a reader is.
    pub async fn delete_keys_reader(
        &self,
        table: &str,
        reader: &mut (dyn std::io::Read + Send),
        name: &str,
        format: crate::import::Format,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        let opts = ImportOptions {
            format: Some(format),
            ..Default::default()
        };
        let spool = self.spool(reader, name)?;
        let input = Input::with_options(&spool.file, &read_options(&opts, Some(name)))?;
        self.delete_input(table, &input, progress).await
    }

    /// Deletes the rows whose keys `input` holds (exactly the key columns).
    pub async fn delete_input(
        &self,
        table: &str,
        input: &Input,
        progress: &dyn Progress,
    ) -> Result<EditSummary> {
        let (_, t) = self.table(table, None).await?;
        let key = &t.schema.primary_key;
        let columns = input.column_names()?;
        let problem = match columns.iter().find(|c| !key.contains(c)) {
            Some(c) => Some(format!("column '{c}' is not a key column")),
            None => key
                .iter()
                .find(|k| !columns.contains(k))
                .map(|k| format!("key column '{k}' is missing")),
        };
        if let Some(problem) = problem {
            return Err(Error::BadInput {
                path: input.name(),
                message: format!(
                    "{problem}; the keys must be given as exactly the key columns ({})",
                    key.join(", ")
                ),
            });
        }
        let key_schema = TableSchema {
            columns: t
                .schema
                .primary_key
                .iter()
                .filter_map(|k| t.schema.columns.iter().find(|c| &c.name == k).cloned())
                .collect(),
            primary_key: t.schema.primary_key.clone(),
        };
        let (object, id, stats, hit) = self
            .apply_keys(table, input, &key_schema, &t, progress)
            .await?;
        self.set_working_table(table, Some(id)).await?;
        // Deleting a conflicting row settles its conflict.
        if !hit.is_empty() {
            self.resolve_keys(table, &hit).await?;
        }
        Ok(EditSummary {
            table: table.into(),
            table_id: id,
            rows: object.rows,
            stats,
            created: false,
            notes: Vec::new(),
            schema_change: None,
        })
    }

    /// Encoded keys of the rows of `table` that conflict in a merge in progress.
    async fn conflict_keys(&self, table: &str) -> Result<HashSet<Vec<u8>>> {
        Ok(self
            .merge_state()
            .await?
            .and_then(|mut m| m.tables.remove(table))
            .map(|tc| {
                tc.conflicts
                    .iter()
                    .filter_map(|c| decode_hex(&c.key_hex))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes the keys the file lists; also returns which conflicting keys it touched.
    async fn apply_keys(
        &self,
        table: &str,
        input: &Input,
        key_schema: &TableSchema,
        base: &TableObject,
        progress: &dyn Progress,
    ) -> Result<(TableObject, ObjectId, ApplyStats, HashSet<Vec<u8>>)> {
        let arrow = key_schema.arrow()?;
        let key_idx: Vec<usize> = (0..key_schema.columns.len()).collect();
        let reader = BatchReader::open(input, table, arrow, &key_idx)?;
        let mut source = sort_file(reader, key_idx, &|| self.tmp_dir(), progress)?;
        let watch = self.conflict_keys(table).await?;
        let mut hit = HashSet::new();
        let mut recorder = Recorder {
            inner: source.as_mut(),
            watch: &watch,
            hit: &mut hit,
        };
        let (object, id, stats) = apply_and_store(
            self.objects(),
            table,
            Some(base),
            base.schema.clone(),
            base.chunking,
            ChangeOp::Delete,
            &mut recorder,
        )
        .await?;
        Ok((object, id, stats, hit))
    }

    /// Applies the rows of a file; also returns which of the `watch` keys (conflicting rows
    /// of a merge in progress) it held.
    #[allow(clippy::too_many_arguments)]
    async fn apply_file(
        &self,
        table: &str,
        input: &Input,
        schema: &TableSchema,
        base: Option<&TableObject>,
        op: ChangeOp,
        chunking: ChunkParams,
        watch: &HashSet<Vec<u8>>,
        progress: &dyn Progress,
    ) -> Result<(TableObject, ObjectId, ApplyStats, HashSet<Vec<u8>>)> {
        let arrow = schema.arrow()?;
        let key_idx = schema.key_indices();
        // First try streaming: most files are already in key order.
        let reader = BatchReader::open(input, table, arrow.clone(), &key_idx)?;
        let mut sorted = SortedFile::new(reader, key_idx.clone(), progress);
        let mut hit = HashSet::new();
        let mut recorder = Recorder {
            inner: &mut sorted,
            watch,
            hit: &mut hit,
        };
        match apply_and_store(
            self.objects(),
            table,
            base,
            schema.clone(),
            chunking,
            op,
            &mut recorder,
        )
        .await
        {
            Err(Error::NotSorted) => {
                tracing::debug!(table, "input is not sorted by key; sorting it");
            }
            Ok((object, id, stats)) => return Ok((object, id, stats, hit)),
            Err(e) => return Err(e),
        }
        // The chunks written so far are unreferenced; `gc` removes them.
        progress.set_total(0);
        let reader = BatchReader::open(input, table, arrow, &key_idx)?;
        let mut source: Box<dyn ChangeSource> =
            sort_file(reader, key_idx, &|| self.tmp_dir(), progress)?;
        let mut hit = HashSet::new();
        let mut recorder = Recorder {
            inner: source.as_mut(),
            watch,
            hit: &mut hit,
        };
        let (object, id, stats) = apply_and_store(
            self.objects(),
            table,
            base,
            schema.clone(),
            chunking,
            op,
            &mut recorder,
        )
        .await?;
        Ok((object, id, stats, hit))
    }
}
