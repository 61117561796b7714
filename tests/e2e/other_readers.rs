//! Strata's Parquet files are read by a Parquet reader other than the one that wrote them:
//! pyarrow, run by the Python in `STRATA_TEST_PYTHON` (or `python3`).

use std::process::Command;

use crate::harness::*;

const ROWS: u64 = 3000;

/// The Python to run: `STRATA_TEST_PYTHON`, else `python3`. Fails the test, with what to do,
/// when it cannot import pyarrow.
fn python_with_pyarrow() -> String {
    let python = std::env::var("STRATA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let advice = "run the README's test command, ./test.sh, which installs pyarrow into .venv \
                  and sets STRATA_TEST_PYTHON to its python";
    let out = Command::new(&python)
        .args(["-c", "import pyarrow.parquet; print(pyarrow.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python:?} ({e}); {advice}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr.lines().last().unwrap_or("no output");
    assert!(
        out.status.success(),
        "{python:?} cannot import pyarrow ({reason}); {advice}"
    );
    python
}

/// Runs a pyarrow check script with `args`; the one JSON object it prints.
fn run_check(python: &str, script: &str, args: &[&std::path::Path]) -> serde_json::Value {
    let out = Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python should start");
    assert!(
        out.status.success(),
        "pyarrow could not read strata's files:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the check prints one JSON object")
}

const CHECK_CHUNKS: &str = r#"
import glob, json, os, sys
import pyarrow.parquet as pq

root, exported = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(root, ".strata", "chunks", "**", "*.parquet"), recursive=True))
report = {"files": len(files), "rows": 0, "without_statistics": [], "columns": None}
for f in files:
    meta = pq.ParquetFile(f).metadata
    report["rows"] += meta.num_rows
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if report["columns"] is None:
        report["columns"] = names
    for g in range(meta.num_row_groups):
        for i in range(meta.num_columns):
            if meta.row_group(g).column(i).statistics is None:
                report["without_statistics"].append([f, g, names[i]])
    pq.read_table(f)
table = pq.read_table(exported)
report["exported_rows"] = table.num_rows
report["exported_columns"] = table.column_names
report["exported_first"] = table.slice(0, 1).to_pylist()[0]
report["exported_last"] = table.slice(table.num_rows - 1, 1).to_pylist()[0]
print(json.dumps(report))
"#;

/// A repository with a table `rows` (key `id`) of [`ROWS`] rows, `header` then `row(i)` for
/// each, in chunks of about 200 rows.
fn with_rows(header: &str, row: impl Fn(u64) -> String) -> Dir {
    let dir = Dir::repo();
    let mut csv = format!("{header}\n");
    for i in 0..ROWS {
        csv.push_str(&row(i));
        csv.push('\n');
    }
    dir.write("rows.csv", &csv);
    dir.strata(&[
        "import",
        "rows",
        "rows.csv",
        "-k",
        "id",
        "--chunk-rows",
        "200",
    ])
    .ok();
    dir
}

#[test]
fn pyarrow_reads_every_chunk_with_statistics_and_the_exported_parquet_file() {
    let python = python_with_pyarrow();
    let dir = with_rows("id,name,score", |i| format!("{i},name{i},{}.25", i % 50));
    dir.strata(&["commit", "-m", "rows"]).ok();
    let show = dir.strata(&["table", "show", "rows", "--json"]).ok().json();
    assert_eq!(show["rows"], ROWS);
    let chunks = show["chunks"].as_u64().expect("chunks is a number");
    assert!(chunks > 3, "expected several chunks: {show}");
    dir.strata(&["export", "rows", "rows.parquet"]).ok();

    let report = run_check(
        &python,
        CHECK_CHUNKS,
        &[dir.path(), &dir.join("rows.parquet")],
    );
    assert_eq!(report["files"], chunks, "{report}");
    assert_eq!(report["rows"], ROWS, "{report}");
    assert_eq!(
        report["columns"],
        serde_json::json!(["id", "name", "score"])
    );
    assert_eq!(
        report["without_statistics"],
        serde_json::json!([]),
        "every column chunk should carry statistics"
    );
    assert_eq!(report["exported_rows"], ROWS);
    assert_eq!(
        report["exported_columns"],
        serde_json::json!(["id", "name", "score"])
    );
    assert_eq!(
        report["exported_first"],
        serde_json::json!({"id": 0, "name": "name0", "score": 0.25})
    );
    assert_eq!(
        report["exported_last"],
        serde_json::json!({"id": ROWS - 1, "name": format!("name{}", ROWS - 1), "score": 49.25})
    );
}

const CHECK_ROW_GROUPS: &str = r#"
import json, sys
import pyarrow.parquet as pq

meta = pq.ParquetFile(sys.argv[1]).metadata
table = pq.read_table(sys.argv[1])
print(json.dumps({
    "groups": [meta.row_group(g).num_rows for g in range(meta.num_row_groups)],
    "with_statistics": all(
        meta.row_group(g).column(i).statistics is not None
        for g in range(meta.num_row_groups) for i in range(meta.num_columns)
    ),
    "ids_in_order": table.column("id").to_pylist() == list(range(table.num_rows)),
}))
"#;

#[test]
fn pyarrow_reads_an_export_in_row_groups_of_the_size_asked_for() {
    let python = python_with_pyarrow();
    let dir = with_rows("id,name", |i| format!("{i},name{i}"));
    dir.strata(&["export", "rows", "rows.parquet", "--row-group-rows", "1200"])
        .ok();
    let report = run_check(&python, CHECK_ROW_GROUPS, &[&dir.join("rows.parquet")]);
    assert_eq!(
        report,
        serde_json::json!({"groups": [1200, 1200, 600], "with_statistics": true, "ids_in_order": true})
    );
}
