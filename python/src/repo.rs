//! The repository handle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};
use strata::{
    Author, Change, CheckoutOptions, DiffOptions, ErrorKind, MergeOptions, MergeOutcome,
    NoProgress, PullOptions, PushOptions, RowDiff, Side, WriteMode, WriteOptions,
};

use crate::convert::{self, to_py};
use crate::errors::{invalid, to_py as err, IntoPy};
use crate::runtime::wait;
use crate::table::{py_table, Source, Table};

/// A Strata repository on the local disk.
///
/// Open one with `strata.open(path)`, create one with `strata.init(path)`, copy a remote with
/// `strata.clone(url, path)`. Every method reads the repository afresh, so a handle kept for
/// long still sees changes made by other processes (the command line, say).
#[pyclass(module = "strata", name = "Repository", frozen)]
pub struct Repository {
    pub inner: strata::Repository,
}

/// What `log(rev, n, all)` of a repository or a remote lists.
pub fn log_options(rev: Option<String>, n: Option<usize>, all: bool) -> strata::LogOptions {
    strata::LogOptions {
        rev,
        all,
        limit: n,
        ..Default::default()
    }
}

fn author(a: Option<&str>) -> PyResult<Option<Author>> {
    a.map(Author::parse).transpose().py_err()
}

fn string_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(d) = options {
        for (k, v) in d.iter() {
            let value = if let Ok(b) = v.extract::<bool>() {
                b.to_string()
            } else {
                v.str()?.to_string()
            };
            out.insert(k.str()?.to_string(), value);
        }
    }
    Ok(out)
}

pub fn storage_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<BTreeMap<String, String>> {
    string_options(options)
}

/// A merge's outcome as a dict, with the conflicting rows when it stopped on them.
fn outcome<'py>(
    py: Python<'py>,
    repo: &strata::Repository,
    outcome: &MergeOutcome,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = to_py(py, outcome)?;
    let conflicts = if matches!(outcome, MergeOutcome::Conflicts { .. }) {
        let r = repo.clone();
        let list = wait(py, move || async move { r.conflicts(None).await }).py_err()?;
        to_py(py, &list.unwrap_or_default())?
    } else {
        PyList::empty(py).into_any()
    };
    dict.set_item("conflicts", conflicts)?;
    Ok(dict)
}

impl Repository {
    fn run<T, F, Fut>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        F: FnOnce(strata::Repository) -> Fut + Send,
        Fut: std::future::Future<Output = strata::Result<T>>,
        T: Send,
    {
        let repo = self.inner.clone();
        wait(py, move || f(repo)).py_err()
    }
}

/// The rows of a diff of one table as one Arrow batch: the key columns, `kind` (`added`,
/// `removed`, `modified`), then `old_<column>` and `new_<column>` for the other columns.
fn diff_batch(
    key: &[String],
    old: Option<&SchemaRef>,
    new: Option<&SchemaRef>,
    rows: &[RowDiff],
) -> PyResult<RecordBatch> {
    let either = new
        .or(old)
        .ok_or_else(|| invalid("a diffed table has no schema"))?;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for k in key {
        let f = either
            .field_with_name(k)
            .map_err(|e| invalid(format!("diff: {e}")))?;
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.key.get(k)).collect();
        let f = Field::new(k, f.data_type().clone(), false);
        columns.push(convert::json_column(&f, &values)?);
        fields.push(f);
    }
    fields.push(Field::new("kind", DataType::Utf8, false));
    columns.push(Arc::new(StringArray::from(
        rows.iter().map(|r| r.kind).collect::<Vec<_>>(),
    )));
    let mut names: Vec<String> = Vec::new();
    for s in [new, old].into_iter().flatten() {
        for f in s.fields() {
            if !key.contains(f.name()) && !names.contains(f.name()) {
                names.push(f.name().clone());
            }
        }
    }
    let side = |m: &Option<Map<String, Value>>, c: &str| -> Option<Value> {
        m.as_ref().and_then(|m| m.get(c)).cloned()
    };
    for c in &names {
        for (prefix, schema, pick) in [("old_", old, true), ("new_", new, false)] {
            let Some(f) = schema.and_then(|s| s.field_with_name(c).ok()) else {
                continue;
            };
            let owned: Vec<Option<Value>> = rows
                .iter()
                .map(|r| side(if pick { &r.old } else { &r.new }, c))
                .collect();
            let values: Vec<Option<&Value>> = owned.iter().map(Option::as_ref).collect();
            let f = Field::new(format!("{prefix}{c}"), f.data_type().clone(), true);
            columns.push(convert::json_column(&f, &values)?);
            fields.push(f);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| invalid(format!("diff: {e}")))
}

#[pymethods]
impl Repository {
    /// The folder that holds the repository (the one containing `.strata`).
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.root().to_path_buf()
    }

    /// The branch checked out (None when HEAD is detached).
    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let head = self.run(py, |r| async move { r.head().await })?;
        Ok(match head {
            strata::Head::Branch(b) => Some(b),
            strata::Head::Detached(_) => None,
        })
    }

    /// The working tables compared with HEAD, a merge in progress, and the upstream.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.run(py, |r| async move { r.status().await })?;
        to_py(py, &s)
    }

    /// Records every working change as a new commit on the current branch; returns its id.
    /// `author` is "Name <email>" (default: STRATA_AUTHOR, else the user name). With
    /// `amend=True`, replaces the last commit instead (same parents; the message defaults to
    /// the old one, the author stays the old commit's unless given).
    #[pyo3(signature = (message=None, author=None, amend=false))]
    fn commit(
        &self,
        py: Python<'_>,
        message: Option<String>,
        author: Option<&str>,
        amend: bool,
    ) -> PyResult<String> {
        let author = self::author(author)?;
        if !amend && message.is_none() {
            return Err(invalid("commit() needs a message (or amend=True)"));
        }
        let c = self.run(py, move |r| async move {
            match (amend, message) {
                (true, m) => r.amend(m.as_deref(), author.as_ref()).await,
                (false, m) => r.commit(m.as_deref().unwrap_or(""), author.as_ref()).await,
            }
        })?;
        Ok(c.id.to_hex())
    }

    /// The history from `rev` (default: HEAD; `A..B` and `A...B` ranges too), newest
    /// first, at most `n` commits; `all=True` starts from every branch, tag and
    /// remote-tracking branch.
    #[pyo3(signature = (rev=None, n=None, all=false))]
    fn log<'py>(
        &self,
        py: Python<'py>,
        rev: Option<String>,
        n: Option<usize>,
        all: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = log_options(rev, n, all);
        let log = self.run(py, move |r| async move { r.log_filtered(&opts).await })?;
        to_py(py, &log)
    }

    /// Where a branch or tag (default: the current branch) pointed, newest first: dicts of
    /// selector (`main@{N}`, a revision), commit, time and reason.
    #[pyo3(signature = (name=None))]
    fn reflog<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let log = self.run(py, move |r| async move { r.reflog(name.as_deref()).await })?;
        to_py(py, &log)
    }

    /// Makes a new commit undoing what commit `rev` changed (merged with what changed since;
    /// a conflicting cell raises ConflictError and changes nothing). `mainline` picks a merge
    /// commit's parent. Returns the new commit's id.
    #[pyo3(signature = (rev, mainline=None, author=None))]
    fn revert(
        &self,
        py: Python<'_>,
        rev: String,
        mainline: Option<usize>,
        author: Option<&str>,
    ) -> PyResult<String> {
        let opts = strata::PickOptions {
            mainline,
            author: self::author(author)?,
            record_origin: false,
        };
        let c = self.run(py, move |r| async move { r.revert(&rev, &opts).await })?;
        Ok(c.id.to_hex())
    }

    /// Applies what commit `rev` changed on top of HEAD as a new commit with its message and
    /// author; `record_origin=True` adds "(cherry picked from commit ID)". Returns its id.
    #[pyo3(signature = (rev, mainline=None, record_origin=false, author=None))]
    fn cherry_pick(
        &self,
        py: Python<'_>,
        rev: String,
        mainline: Option<usize>,
        record_origin: bool,
        author: Option<&str>,
    ) -> PyResult<String> {
        let opts = strata::PickOptions {
            mainline,
            author: self::author(author)?,
            record_origin,
        };
        let c = self.run(py, move |r| async move { r.cherry_pick(&rev, &opts).await })?;
        Ok(c.id.to_hex())
    }

    /// The best common ancestor of two revisions (None when their histories never meet).
    fn merge_base(&self, py: Python<'_>, a: String, b: String) -> PyResult<Option<String>> {
        let id = self.run(py, move |r| async move { r.merge_base(&a, &b).await })?;
        Ok(id.map(|i| i.to_hex()))
    }

    /// Changes a working table's columns, all or nothing, in order. Each change is a tuple:
    /// `("add", NAME, TYPE)` or `("add", NAME, TYPE, DEFAULT)`, `("drop", NAME)`,
    /// `("rename", OLD, NEW)`, `("set_type", NAME, TYPE)`; types as `write(types=...)` takes
    /// them ("int64", "utf8", "decimal128(10, 2)", ...).
    fn alter_table<'py>(
        &self,
        py: Python<'py>,
        table: String,
        changes: Vec<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut parsed = Vec::new();
        for c in &changes {
            let ty = |s: &str| strata::parse_type(s).py_err();
            let change = match c.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["add", name, t] => strata::SchemaChange::AddColumn {
                    name: name.to_string(),
                    data_type: ty(t)?,
                    default: None,
                },
                ["add", name, t, d] => strata::SchemaChange::AddColumn {
                    name: name.to_string(),
                    data_type: ty(t)?,
                    default: Some(d.to_string()),
                },
                ["drop", name] => strata::SchemaChange::DropColumn {
                    name: name.to_string(),
                },
                ["rename", from, to] => strata::SchemaChange::RenameColumn {
                    from: from.to_string(),
                    to: to.to_string(),
                },
                ["set_type", column, t] => strata::SchemaChange::SetType {
                    column: column.to_string(),
                    data_type: ty(t)?,
                },
                other => {
                    return Err(invalid(format!(
                        "{other:?} is not a change: use (\"add\", NAME, TYPE[, DEFAULT]), (\"drop\", NAME), (\"rename\", OLD, NEW) or (\"set_type\", NAME, TYPE)"
                    )))
                }
            };
            parsed.push(change);
        }
        let report = self.run(
            py,
            move |r| async move { r.alter_table(&table, &parsed).await },
        )?;
        to_py(py, &report)
    }

    /// A commit and what it changed, table by table.
    #[pyo3(signature = (rev="HEAD".to_string()))]
    fn show<'py>(&self, py: Python<'py>, rev: String) -> PyResult<Bound<'py, PyAny>> {
        let d = self.run(py, move |r| async move { r.show(&rev).await })?;
        to_py(py, &d)
    }

    /// Resolves a revision (branch, tag, commit id or prefix, HEAD, REV~N, REV^) to a
    /// commit id.
    fn resolve(&self, py: Python<'_>, rev: String) -> PyResult<String> {
        let id = self.run(py, move |r| async move { r.resolve(&rev).await })?;
        Ok(id.to_hex())
    }

    /// Every branch: dicts of name, commit and current.
    fn branches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let b = self.run(py, |r| async move { r.branches().await })?;
        to_py(py, &b)
    }

    /// Creates a branch at `start` (default: HEAD); returns its commit id.
    #[pyo3(signature = (name, start=None))]
    fn branch(&self, py: Python<'_>, name: String, start: Option<String>) -> PyResult<String> {
        let id = self.run(py, move |r| async move {
            r.create_branch(&name, start.as_deref()).await
        })?;
        Ok(id.to_hex())
    }

    /// Deletes a branch (not the one checked out); returns the commit it named.
    #[pyo3(signature = (name, force=false))]
    fn delete_branch(&self, py: Python<'_>, name: String, force: bool) -> PyResult<String> {
        let id = self.run(
            py,
            move |r| async move { r.delete_branch(&name, force).await },
        )?;
        Ok(id.to_hex())
    }

    /// Every tag: dicts of name and commit.
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.run(py, |r| async move { r.tags().await })?;
        to_py(py, &t)
    }

    /// Creates a tag at `rev` (default: HEAD); returns its commit id. With `message`, an
    /// annotated tag: it records the tagger, the time and the message, which travel with it.
    #[pyo3(signature = (name, rev=None, message=None))]
    fn tag(
        &self,
        py: Python<'_>,
        name: String,
        rev: Option<String>,
        message: Option<String>,
    ) -> PyResult<String> {
        let id = self.run(py, move |r| async move {
            match message {
                Some(m) => {
                    r.create_annotated_tag(&name, rev.as_deref(), &m, None)
                        .await
                }
                None => r.create_tag(&name, rev.as_deref()).await,
            }
        })?;
        Ok(id.to_hex())
    }

    /// Deletes a tag; returns the commit it named.
    fn delete_tag(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let id = self.run(py, move |r| async move { r.delete_tag(&name).await })?;
        Ok(id.to_hex())
    }

    /// Switches to a branch, or to any revision (HEAD detached), replacing the working
    /// tables. Refuses over uncommitted changes unless `force`.
    #[pyo3(signature = (rev, force=false))]
    fn checkout(&self, py: Python<'_>, rev: String, force: bool) -> PyResult<()> {
        let opts = CheckoutOptions {
            create_from: None,
            force,
        };
        self.run(py, move |r| async move { r.checkout(&rev, &opts).await })?;
        Ok(())
    }

    /// Moves the current branch to `rev` and discards every working change (and a merge in
    /// progress); returns the commit id.
    #[pyo3(signature = (rev="HEAD".to_string()))]
    fn reset_hard(&self, py: Python<'_>, rev: String) -> PyResult<String> {
        let id = self.run(py, move |r| async move { r.reset_hard(&rev).await })?;
        Ok(id.to_hex())
    }

    /// The tables at a revision (default: the working tables).
    #[pyo3(signature = (rev=None))]
    fn tables<'py>(&self, py: Python<'py>, rev: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.run(py, move |r| async move { r.tables(rev.as_deref()).await })?;
        to_py(py, &t)
    }

    /// The Iceberg view of a table at a branch or tag (default: the current branch) of this
    /// repository or of a remote: a dict with `metadata` (the `metadata.json` URI, for
    /// `pyiceberg.table.StaticTable.from_metadata` and `polars.scan_iceberg`), `location`
    /// (the table folder, for DuckDB's `iceberg_scan`), `ref`, `commit` and `version`.
    /// Publishes the view first if it is missing.
    #[pyo3(signature = (table, rev=None, remote=None))]
    fn iceberg<'py>(
        &self,
        py: Python<'py>,
        table: String,
        rev: Option<String>,
        remote: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = strata::ViewOptions { rev, remote };
        let v = self.run(py, move |r| async move { r.iceberg(&table, &opts).await })?;
        to_py(py, &v)
    }

    /// The chunk files of a table at a revision (any revision locally; a branch or tag on a
    /// remote): dicts of `uri`, `rows`, `bytes`, `key_min` and `key_max`, in key order, and
    /// `delta` (the URI of the chunk's delta, whose rows replace those with the same key and
    /// whose footer's `strata.deletes` lists the keys of the chunk's rows it deletes) for a
    /// chunk that has one.
    #[pyo3(signature = (table, rev=None, remote=None))]
    fn ls_files<'py>(
        &self,
        py: Python<'py>,
        table: String,
        rev: Option<String>,
        remote: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = strata::ViewOptions { rev, remote };
        let f = self.run(py, move |r| async move { r.ls_files(&table, &opts).await })?;
        to_py(py, &f)
    }

    /// A handle on a table at a revision (default: the working version). A revision is
    /// resolved to its commit now, so the handle keeps reading that commit.
    #[pyo3(signature = (name, rev=None))]
    fn table(&self, py: Python<'_>, name: &str, rev: Option<String>) -> PyResult<Table> {
        Table::open(py, &Source::Local(self.inner.clone()), name, rev)
    }

    /// Writes Arrow data (anything with `__arrow_c_stream__`: pyarrow, Polars, DuckDB) or a
    /// pandas DataFrame into a working table. `mode`: "create" (needs `primary_key`),
    /// "append" (refuses existing keys), "upsert" (replaces rows with the same key) or
    /// "replace" (all rows and the schema). `types` gives some columns' types for a new
    /// table (`{"zip": "utf8"}`), converting the data's. Returns what changed; commit to
    /// record it.
    #[pyo3(signature = (name, data, mode="create", primary_key=None, chunk_rows=None, types=None))]
    #[allow(clippy::too_many_arguments)]
    fn write<'py>(
        &self,
        py: Python<'py>,
        name: String,
        data: &Bound<'py, PyAny>,
        mode: &str,
        primary_key: Option<&Bound<'py, PyAny>>,
        chunk_rows: Option<u32>,
        types: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut column_types = Vec::new();
        for (column, ty) in types.unwrap_or_default() {
            let ty = strata::parse_type(&ty).map_err(|e| invalid(e.to_string()))?;
            column_types.push((column, ty));
        }
        let mode = match mode {
            "create" => None,
            m => Some(WriteMode::parse(m).map_err(|_| {
                invalid(format!(
                    "mode '{m}' is not one of 'create', 'append', 'upsert', 'replace'"
                ))
            })?),
        };
        let primary_key: Option<Vec<String>> = match primary_key {
            None => None,
            Some(k) if k.is_none() => None,
            Some(k) => Some(match k.extract::<String>() {
                Ok(s) => vec![s],
                Err(_) => k.extract()?,
            }),
        };
        let reader = convert::arrow_input(data)?;
        let opts = WriteOptions {
            mode,
            primary_key,
            chunk_rows,
            types: column_types,
            ..Default::default()
        };
        let report = self.run(py, move |r| async move {
            r.write(&name, reader, &opts, &NoProgress).await
        })?;
        to_py(py, &report)
    }

    /// Deletes rows by key: `keys` is a list of keys (a value each, or a tuple for a
    /// composite key) or Arrow data holding exactly the key columns.
    fn delete<'py>(
        &self,
        py: Python<'py>,
        name: String,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let is_arrow = keys.hasattr("__arrow_c_stream__")?
            || keys.hasattr("__arrow_c_array__")?
            || keys.get_type().name()? == "DataFrame";
        let reader: Box<dyn arrow_array::RecordBatchReader + Send> = if is_arrow {
            convert::arrow_input(keys)?
        } else {
            let t = name.clone();
            let info = self.run(py, move |r| async move { r.table(&t, None).await })?;
            let schema = info.arrow_schema().py_err()?;
            let fields: Vec<Field> = info
                .primary_key
                .iter()
                .map(|k| {
                    schema
                        .field_with_name(k)
                        .cloned()
                        .map_err(|e| invalid(e.to_string()))
                })
                .collect::<PyResult<_>>()?;
            let values: Vec<Bound<'py, PyAny>> = keys.try_iter()?.collect::<PyResult<_>>()?;
            let batch = convert::keys_batch(&values, &fields)?;
            let schema = batch.schema();
            Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema))
        };
        let report = self.run(py, move |r| async move {
            r.delete(&name, reader, &NoProgress).await
        })?;
        to_py(py, &report)
    }

    /// Removes a table from the working tables (a change to commit).
    fn drop_table(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.run(py, move |r| async move { r.drop_table(&name).await })
    }

    /// Renames a working table (a change to commit).
    fn rename_table(&self, py: Python<'_>, old: String, new: String) -> PyResult<()> {
        self.run(py, move |r| async move { r.rename_table(&old, &new).await })
    }

    /// The rows that differ between two versions, as Arrow: revision `a` (default: HEAD)
    /// and revision `b` (default: the working tables). For one `table`, a `pyarrow.Table`
    /// with the key columns, `kind` ("added", "removed", "modified"), and `old_<column>`,
    /// `new_<column>` for the other columns; without `table`, a dict of such tables for
    /// every table that differs. `where` keeps only the rows a filter passes, as
    /// `strata diff --where` does. Needs pyarrow.
    #[pyo3(signature = (a=None, b=None, table=None, r#where=None))]
    fn diff<'py>(
        &self,
        py: Python<'py>,
        a: Option<String>,
        b: Option<String>,
        table: Option<String>,
        r#where: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        diff_arrow(py, Source::Local(self.inner.clone()), a, b, table, r#where)
    }

    /// Merges a revision (a branch, `origin/main`, a tag...) into the current branch: a
    /// fast-forward when possible, else a three-way merge, cell by cell. Returns a dict:
    /// `outcome` ("up_to_date", "fast_forward", "merged" or "conflicts"), `commit` when one
    /// was made, and `conflicts` (the conflicting rows; the merge is then in progress:
    /// resolve them and commit, or call merge_abort()).
    #[pyo3(signature = (rev, message=None, no_ff=false, ff_only=false, author=None))]
    fn merge<'py>(
        &self,
        py: Python<'py>,
        rev: String,
        message: Option<String>,
        no_ff: bool,
        ff_only: bool,
        author: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = MergeOptions {
            message,
            no_ff,
            ff_only,
            author: self::author(author)?,
        };
        let o = self.run(py, move |r| async move { r.merge(&rev, &opts).await })?;
        outcome(py, &self.inner, &o)
    }

    /// The conflicting rows of the merge in progress (of one table, or all); None when no
    /// merge is in progress.
    #[pyo3(signature = (table=None))]
    fn conflicts<'py>(
        &self,
        py: Python<'py>,
        table: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.run(
            py,
            move |r| async move { r.conflicts(table.as_deref()).await },
        )?;
        to_py(py, &c)
    }

    /// Resolves conflicts by taking one side's rows ("ours" or "theirs"), in one table or
    /// all; returns (resolved, left).
    #[pyo3(signature = (side, table=None))]
    fn resolve_conflicts(
        &self,
        py: Python<'_>,
        side: &str,
        table: Option<String>,
    ) -> PyResult<(usize, usize)> {
        let side = match side {
            "ours" => Side::Ours,
            "theirs" => Side::Theirs,
            other => return Err(invalid(format!("side '{other}' is not 'ours' or 'theirs'"))),
        };
        self.run(py, move |r| async move {
            r.resolve_conflicts(table.as_deref(), side).await
        })
    }

    /// Undoes the merge in progress: the working tables are exactly as before it.
    fn merge_abort(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |r| async move { r.merge_abort().await })
    }

    /// The configured remotes: dicts of name, url and options.
    #[getter]
    fn remotes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.run(py, |r| async move { r.remotes().await })?;
        to_py(py, &r)
    }

    /// Adds a remote: a folder path, or a URL (s3://bucket/prefix, gs://, az://).
    /// `storage_options` are the store's non-secret options (endpoint, region, allow_http,
    /// ...), kept with the remote; credentials come from the environment or an AWS profile.
    /// A cloud store is checked now (reachable, with conditional writes).
    #[pyo3(signature = (name, url, storage_options=None))]
    fn add_remote<'py>(
        &self,
        py: Python<'py>,
        name: String,
        url: String,
        storage_options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = string_options(storage_options)?;
        let info = self.run(py, move |r| async move {
            r.add_remote(&name, &url, &options).await
        })?;
        to_py(py, &info)
    }

    /// Removes a remote and its remote-tracking branches.
    fn remove_remote(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.run(py, move |r| async move { r.remove_remote(&name).await })
    }

    /// Uploads branches (default: the current one) and moves them on the remote (default:
    /// the upstream's, else origin). A branch that moved on the remote meanwhile raises
    /// ConflictError (pull first). Returns what moved.
    #[pyo3(signature = (remote=None, branches=None, force=false, tags=false, set_upstream=false, delete=None, atomic=false, create=false, merge=true))]
    #[allow(clippy::too_many_arguments)]
    fn push<'py>(
        &self,
        py: Python<'py>,
        remote: Option<String>,
        branches: Option<&Bound<'py, PyAny>>,
        force: bool,
        tags: bool,
        set_upstream: bool,
        delete: Option<Vec<String>>,
        atomic: bool,
        create: bool,
        merge: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let branches: Vec<String> = match branches {
            None => Vec::new(),
            Some(b) if b.is_none() => Vec::new(),
            Some(b) => match b.extract::<String>() {
                Ok(s) => vec![s],
                Err(_) => b.extract()?,
            },
        };
        let opts = PushOptions {
            remote,
            branches,
            all: false,
            delete: delete.unwrap_or_default(),
            force,
            force_with_lease: None,
            atomic,
            tags,
            set_upstream,
            gc_wait: None,
            create,
            no_merge: !merge,
        };
        let mut report = self.run(py, move |r| async move { r.push(&opts, &NoProgress).await })?;
        if let Some(e) = report.error() {
            return Err(err(e));
        }
        to_py(py, &report)
    }

    /// Downloads every branch and tag of a remote (default: the default remote) and moves
    /// the remote-tracking branches (`origin/main`). `prune` removes those whose branch is
    /// gone.
    #[pyo3(signature = (remote=None, prune=false))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        remote: Option<String>,
        prune: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = self.run(py, move |r| async move {
            r.fetch(remote.as_deref(), prune, &NoProgress).await
        })?;
        to_py(py, &f)
    }

    /// Fetches, then merges the remote branch (default: the upstream) into the current
    /// branch (with `rebase=True`: replays the branch's own commits on top of it). Returns
    /// the fetch, what was merged, and the merge's outcome as merge() does.
    #[pyo3(signature = (remote=None, branch=None, ff_only=false, author=None, rebase=false))]
    fn pull<'py>(
        &self,
        py: Python<'py>,
        remote: Option<String>,
        branch: Option<String>,
        ff_only: bool,
        author: Option<&str>,
        rebase: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = PullOptions {
            remote,
            branch,
            ff_only,
            author: self::author(author)?,
            rebase,
        };
        let p = self.run(py, move |r| async move { r.pull(&opts, &NoProgress).await })?;
        let d = to_py(py, &p)?;
        d.set_item("outcome", outcome(py, &self.inner, &p.outcome)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<strata.Repository '{}'>", self.inner.root().display())
    }
}

/// The rows that differ between two versions of a repository's or a remote's tables, as
/// Arrow (see `Repository.diff`).
pub fn diff_arrow<'py>(
    py: Python<'py>,
    source: Source,
    a: Option<String>,
    b: Option<String>,
    table: Option<String>,
    r#where: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    convert::pyarrow(py, "diff()")?;
    let filter = match &r#where {
        Some(w) => Some(strata::RowFilter::parse(w).map_err(|e| invalid(e.to_string()))?),
        None => None,
    };
    type Side = Option<SchemaRef>;
    type Collected = BTreeMap<String, (Vec<String>, Side, Side, Vec<RowDiff>)>;
    let table_name = table.clone();
    let collected: Collected = wait(py, move || async move {
        let r = source;
        // A remote may move while this runs: both sides are read at the commits they name
        // now, so the rows and the schemas come from the same two versions.
        let (a, b) = match &r {
            Source::Remote(_) => {
                let hex = |c: Option<strata::ObjectId>| c.map(|c| c.to_hex());
                (hex(r.resolve(a).await?.0), hex(r.resolve(b).await?.0))
            }
            Source::Local(_) => (a, b),
        };
        let opts = DiffOptions {
            from: a.clone(),
            to: b.clone(),
            table: table_name,
            stat: false,
            filter,
        };
        let mut diff = r.diff(&opts).await?;
        let mut rows: BTreeMap<String, Vec<RowDiff>> = BTreeMap::new();
        while let Some(change) = diff.next().await {
            match change? {
                Change::Row(row) => rows.entry(row.table.clone()).or_default().push(row),
                Change::Table(t) => {
                    rows.entry(t.table).or_default();
                }
                Change::Schema(s) => {
                    rows.entry(s.table).or_default();
                }
                _ => {}
            }
        }
        if let Some(t) = &opts.table {
            rows.entry(t.clone()).or_default();
        }
        let from = a.unwrap_or_else(|| "HEAD".into());
        let mut out = BTreeMap::new();
        for (name, rows) in rows {
            let side = |rev: Option<String>| {
                let r = r.clone();
                let name = name.clone();
                async move {
                    match r.table(&name, rev.as_deref()).await {
                        Ok(info) => Ok(Some(info)),
                        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            };
            let old = side(Some(from.clone())).await?;
            let new = side(b.clone()).await?;
            let key = new
                .as_ref()
                .or(old.as_ref())
                .map(|i| i.primary_key.clone())
                .unwrap_or_default();
            let old = old.map(|i| i.arrow_schema()).transpose()?;
            let new = new.map(|i| i.arrow_schema()).transpose()?;
            out.insert(name, (key, old, new, rows));
        }
        Ok::<_, strata::Error>(out)
    })
    .py_err()?;
    let mut tables = Vec::new();
    for (name, (key, old, new, rows)) in collected {
        let batch = diff_batch(&key, old.as_ref(), new.as_ref(), &rows)?;
        let schema = batch.schema();
        let t = py_table(
            py,
            Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)),
            "diff()",
        )?;
        tables.push((name, t));
    }
    match table {
        Some(t) => tables
            .into_iter()
            .find(|(n, _)| *n == t)
            .map(|(_, v)| v)
            .ok_or_else(|| invalid(format!("table '{t}' is not in the diff"))),
        None => {
            let d = PyDict::new(py);
            for (n, v) in tables {
                d.set_item(n, v)?;
            }
            Ok(d.into_any())
        }
    }
}
