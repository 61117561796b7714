//! What the library's integration tests share: a repository in a temporary folder, made by a
//! fixed author at a fixed time; rows written from small CSV texts or Arrow batches; tables
//! read back through `scan`; and snapshots of `.strata` to show that a refused operation
//! changed nothing.

// Each test file uses some of these helpers, none uses all.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::AsyncFnOnce;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator};
use futures::TryStreamExt;
use serde_json::{Map, Value};
use strata::{
    Author, Change, CheckoutOptions, DiffOptions, FileFormat, NoProgress, ObjectId, Repository,
    ScanOptions, WriteMode, WriteOptions, WriteReport,
};
use tempfile::TempDir;

/// The author of every test commit.
pub const AUTHOR: &str = "Test <test@example.com>";
/// The time of every test commit (2023-11-14 22:13:20 UTC).
pub const COMMIT_TIME: i64 = 1_700_000_000;

/// The rows of the `people` table most tests start from.
pub const PEOPLE_CSV: &str = "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.0\n";

/// A repository in a temporary folder (removed when dropped), whose commits are made by
/// [`AUTHOR`] at [`COMMIT_TIME`]. It dereferences to the [`Repository`] handle.
pub struct TestRepo {
    repo: Repository,
    dir: TempDir,
}

impl std::ops::Deref for TestRepo {
    type Target = Repository;

    fn deref(&self) -> &Repository {
        &self.repo
    }
}

/// The fixed author, parsed.
pub fn author() -> Author {
    Author::parse(AUTHOR).expect("the test author is well formed")
}

impl TestRepo {
    /// A new, empty repository.
    pub async fn new() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("strata-lib-")
            .tempdir()
            .expect("a temporary folder should be creatable");
        let repo = Repository::init(dir.path())
            .await
            .expect("a repository should be creatable in an empty folder")
            .with_author(author())
            .with_commit_time(COMMIT_TIME);
        TestRepo { repo, dir }
    }

    /// A repository with one committed table `people` (key `id`) holding [`PEOPLE_CSV`].
    pub async fn with_people() -> TestRepo {
        let t = TestRepo::new().await;
        t.create("people", &["id"], PEOPLE_CSV).await;
        t.commit_changes("add people").await;
        t
    }

    /// The handle (also reachable through `Deref`).
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The folder the repository lives in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `csv` to a file in the repository's folder and returns its path.
    fn csv_file(&self, csv: &str) -> PathBuf {
        let path = self.path().join("input.csv");
        std::fs::write(&path, csv)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Imports CSV text (with a header) into `table` as the import of a file does.
    pub async fn import_csv(&self, table: &str, csv: &str, opts: &WriteOptions) -> WriteReport {
        let path = self.csv_file(csv);
        self.repo
            .import_file(table, &path, Some(FileFormat::Csv), opts, &NoProgress)
            .await
            .unwrap_or_else(|e| panic!("importing into '{table}' failed: {e}\n{csv}"))
    }

    /// Creates `table` with key `key` from CSV text (a working change).
    pub async fn create(&self, table: &str, key: &[&str], csv: &str) -> WriteReport {
        let opts = WriteOptions {
            primary_key: Some(key.iter().map(|k| k.to_string()).collect()),
            ..Default::default()
        };
        self.import_csv(table, csv, &opts).await
    }

    /// Upserts the rows of CSV text into `table` (a working change).
    pub async fn upsert(&self, table: &str, csv: &str) -> WriteReport {
        self.import_csv(table, csv, &mode(WriteMode::Upsert)).await
    }

    /// Replaces every row of `table` (and its schema) by the rows of CSV text.
    pub async fn replace(&self, table: &str, csv: &str) -> WriteReport {
        self.import_csv(table, csv, &mode(WriteMode::Replace)).await
    }

    /// Deletes the rows whose keys CSV text lists (a working change).
    pub async fn delete_keys(&self, table: &str, csv: &str) -> WriteReport {
        let path = self.csv_file(csv);
        self.repo
            .delete_from_file(table, &path, Some(FileFormat::Csv), &NoProgress)
            .await
            .unwrap_or_else(|e| panic!("deleting from '{table}' failed: {e}\n{csv}"))
    }

    /// Writes Arrow batches into `table`.
    pub async fn write_batches(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        opts: &WriteOptions,
    ) -> WriteReport {
        let schema = batches
            .first()
            .expect("at least one batch to write")
            .schema();
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        self.repo
            .write(table, Box::new(reader), opts, &NoProgress)
            .await
            .unwrap_or_else(|e| panic!("writing into '{table}' failed: {e}"))
    }

    /// Commits every working change; returns the new commit's id.
    pub async fn commit_changes(&self, message: &str) -> ObjectId {
        self.repo
            .commit(message, None)
            .await
            .unwrap_or_else(|e| panic!("commit {message:?} failed: {e}"))
            .id
    }

    /// The commit a revision names.
    pub async fn id(&self, rev: &str) -> ObjectId {
        self.repo
            .resolve(rev)
            .await
            .unwrap_or_else(|e| panic!("cannot resolve {rev:?}: {e}"))
    }

    /// Switches to a branch or revision.
    pub async fn switch_to(&self, target: &str) {
        self.repo
            .checkout(target, &CheckoutOptions::default())
            .await
            .unwrap_or_else(|e| panic!("checkout of {target:?} failed: {e}"));
    }

    /// Creates branch `name` at HEAD.
    pub async fn branch(&self, name: &str) -> ObjectId {
        self.repo
            .create_branch(name, None)
            .await
            .unwrap_or_else(|e| panic!("cannot create branch {name:?}: {e}"))
    }

    /// Checks out `branch`, makes `change`, commits it as `message` and checks out main
    /// again. Returns the new commit's id.
    pub async fn commit_on(
        &self,
        branch: &str,
        message: &str,
        change: impl AsyncFnOnce(&TestRepo),
    ) -> ObjectId {
        self.switch_to(branch).await;
        change(self).await;
        let id = self.commit_changes(message).await;
        self.switch_to("main").await;
        id
    }

    /// A table (working version, or at `rev`) as CSV text with a header, as the CSV export
    /// writes it; read through `scan`.
    pub async fn csv(&self, table: &str, rev: Option<&str>) -> String {
        let batches = self.batches(table, rev).await;
        let mut out = Vec::new();
        {
            let mut w = arrow_csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for b in &batches {
                w.write(b).expect("batches convert to CSV");
            }
        }
        String::from_utf8(out).expect("CSV is text")
    }

    /// A table (working version, or at `rev`) as its rows, each an object of every column
    /// (nulls included), in key order; read through `scan`.
    pub async fn rows(&self, table: &str, rev: Option<&str>) -> Vec<Value> {
        rows_of(&self.batches(table, rev).await)
    }

    /// Every batch of a table (working version, or at `rev`).
    pub async fn batches(&self, table: &str, rev: Option<&str>) -> Vec<RecordBatch> {
        let opts = ScanOptions {
            rev: rev.map(str::to_string),
            ..Default::default()
        };
        let scan = self
            .repo
            .scan(table, &opts)
            .await
            .unwrap_or_else(|e| panic!("cannot scan '{table}' at {rev:?}: {e}"));
        scan.collect()
            .await
            .unwrap_or_else(|e| panic!("cannot read '{table}' at {rev:?}: {e}"))
    }

    /// The names of the tables (working, or at `rev`).
    pub async fn table_names(&self, rev: Option<&str>) -> Vec<String> {
        self.repo
            .tables(rev)
            .await
            .expect("the tables should be listable")
            .into_iter()
            .map(|t| t.table)
            .collect()
    }

    /// Every change of a diff, in order.
    pub async fn diff_changes(&self, opts: &DiffOptions) -> strata::Result<Vec<Change>> {
        self.repo.diff(opts).await?.try_collect().await
    }

    /// Every change of a diff, each as the JSON value it serializes to.
    pub async fn diff_json(&self, opts: &DiffOptions) -> Vec<Value> {
        let changes = self
            .diff_changes(opts)
            .await
            .unwrap_or_else(|e| panic!("diff {opts:?} failed: {e}"));
        changes.iter().map(to_json).collect()
    }

    /// The parents of a commit.
    pub async fn parents(&self, rev: &str) -> Vec<ObjectId> {
        self.repo
            .commit_info(rev)
            .await
            .unwrap_or_else(|e| panic!("cannot read commit {rev:?}: {e}"))
            .parents
    }

    /// The message of a commit.
    pub async fn message(&self, rev: &str) -> String {
        self.repo
            .commit_info(rev)
            .await
            .unwrap_or_else(|e| panic!("cannot read commit {rev:?}: {e}"))
            .message
    }

    /// A snapshot of the whole `.strata` folder.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.repo.data_dir())
    }
}

/// Write options of a mode.
pub fn mode(mode: WriteMode) -> WriteOptions {
    WriteOptions {
        mode: Some(mode),
        ..Default::default()
    }
}

/// Diff options from `from` to `to` (each `None`: HEAD, and the working tables).
pub fn between(from: Option<&str>, to: Option<&str>) -> DiffOptions {
    DiffOptions {
        from: from.map(str::to_string),
        to: to.map(str::to_string),
        ..Default::default()
    }
}

/// The JSON a report serializes to.
pub fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("reports serialize to JSON")
}

/// Batches as rows: one object per row with every column, nulls included.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<Value> {
    let mut out = Vec::new();
    {
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::JsonArray>(&mut out);
        for b in batches {
            w.write(b).expect("batches convert to JSON");
        }
        w.finish().expect("batches convert to JSON");
    }
    if out.is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice(&out).expect("the JSON writer writes JSON") {
        Value::Array(rows) => rows,
        other => panic!("expected an array of rows, got {other}"),
    }
}

/// A JSON object from a `json!` literal.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("expected an object, got {other}"),
    }
}

/// Asserts that `text` mentions every one of `parts`.
#[track_caller]
pub fn assert_mentions(text: &str, parts: &[&str]) {
    let missing: Vec<&&str> = parts.iter().filter(|p| !text.contains(**p)).collect();
    assert!(
        missing.is_empty(),
        "the message does not mention {missing:?}:\n  {text}"
    );
}

/// Every folder and file under a folder, by relative path (`None` for a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Option<Vec<u8>>>);

impl Snapshot {
    /// Reads the whole tree under `root`.
    pub fn of(root: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        walk(root, root, &mut map);
        Snapshot(map)
    }

    /// The entries whose relative path starts with one of `prefixes`.
    pub fn only(&self, prefixes: &[&str]) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .filter(|(p, _)| prefixes.iter().any(|pre| p.starts_with(pre)))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect(),
        )
    }

    /// Asserts that `after` is the same tree, byte for byte.
    #[track_caller]
    pub fn assert_same(&self, after: &Snapshot, what: &str) {
        let mut diff = Vec::new();
        for (p, e) in &self.0 {
            match after.0.get(p) {
                None => diff.push(format!("removed: {}", p.display())),
                Some(a) if a != e => diff.push(format!("changed: {}", p.display())),
                Some(_) => {}
            }
        }
        for p in after.0.keys() {
            if !self.0.contains_key(p) {
                diff.push(format!("added: {}", p.display()));
            }
        }
        assert!(
            diff.is_empty(),
            "{what} changed the repository:\n  {}",
            diff.join("\n  ")
        );
    }
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry should be readable").path();
        let rel = path
            .strip_prefix(root)
            .expect("entries lie under the root")
            .to_path_buf();
        if path.is_dir() {
            map.insert(rel, None);
            walk(root, &path, map);
        } else {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            map.insert(rel, Some(bytes));
        }
    }
}

/// A batch of `people` rows (`id` int64, `name` utf8, `score` float64).
pub fn people_batch(rows: &[(i64, &str, f64)]) -> RecordBatch {
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("the columns match the schema")
}
