//! Benchmark harness: prints figures for import, one-row edits, export and memory over a
//! deterministic table (id int64 key 0..N-1, name utf8 of 12-20 letters, qty int64,
//! price float64, tag utf8 with 100 values).
//!
//! Usage: strata-bench [--rows N] [--python PATH] [--chunk-sweep] [--growth N,N,...]
//!        strata-bench --writers 8,32,100 [--remote ENDPOINT] [--rows N]
//! `--writers` runs the many-writers figures: clones of one remote (a folder, or an S3 bucket
//! at ENDPOINT with AWS credentials in the environment) each append 100 rows and run
//! `strata push` once, all at the same moment, beside one uncontended push of the same change
//! and beside as many pushes of it at once, each to a branch of its own (what N processes at
//! once cost this machine when no two race for one ref).
//! `--growth 1000000,10000000,100000000` prints, for each table size, what import and a full
//! scan cost (these grow with the table) beside what a one-row commit, a small diff and the
//! push of a one-row change cost (these should not).
//! `--upsert-loop DIR [--loops N]` times a one-row upsert and its commit in this process,
//! through the library as the Python package calls it, N times (default 31) on the table in
//! DIR (made with `--rows` rows if missing): medians of the write, the commit and their CPU,
//! beside the floor: the files the first of them stored durably (found by comparing the folder
//! before and after), written again one after the other through the same store, alone.
//! `--chunk-sweep` compares average chunk sizes (the environment variable SWEEP=2048,8192
//! picks them).
//! `bench/run.sh` builds it in release mode, installs pyarrow, and runs it for 1M and 10M rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use strata_engine::edit::{ImportMode, ImportOptions};
use strata_engine::export::{export, Destination, ExportFormat};
use strata_engine::progress::NoProgress;
use strata_engine::Repository;

const BATCH: usize = 64 * 1024;

struct Args {
    rows: u64,
    python: String,
    chunk_sweep: bool,
    /// Remote benchmark against this S3 endpoint ("file" for a local folder).
    remote: Option<String>,
    child_import: Option<(PathBuf, PathBuf, Option<u32>)>,
    /// Many-writers figures for these numbers of writers.
    writers: Vec<usize>,
    /// Growth figures for these table sizes.
    growth: Vec<u64>,
    /// The in-process upsert loop on the repository in this folder.
    upsert_loop: Option<PathBuf>,
    loops: usize,
}

/// What `--help` prints.
const USAGE: &str = "\
Usage: strata-bench [--rows N] [--python PATH] [--chunk-sweep] [--growth N,N,...]
       strata-bench --remote ENDPOINT [--rows N]
       strata-bench --writers 8,32,100 [--remote ENDPOINT] [--rows N]
       strata-bench --upsert-loop DIR [--rows N] [--loops N]

  --rows N            rows of the benchmark table (default 1000000)
  --python PATH       the Python with pyarrow that measures the floor (default python3,
                      or STRATA_BENCH_PYTHON)
  --remote ENDPOINT   the remote figures (push, clone, a scan in place) against an S3
                      endpoint, AWS credentials from the environment; with --writers, an
                      S3 endpoint or 'file' for a folder
  --growth N,N,...    import and scan beside a one-row commit, diff and push at each size
  --writers N,N,...   N clones appending and pushing at the same moment
  --upsert-loop DIR   one-row upserts and commits in this process on the table in DIR
  --loops N           how many (default 31)
  --chunk-sweep       compare average chunk sizes (SWEEP=2048,8192 picks them)
";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        rows: 1_000_000,
        python: std::env::var("STRATA_BENCH_PYTHON").unwrap_or_else(|_| "python3".into()),
        chunk_sweep: false,
        remote: None,
        child_import: None,
        writers: Vec::new(),
        growth: Vec::new(),
        upsert_loop: None,
        loops: 31,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => args.rows = it.next().context("--rows needs a number")?.parse()?,
            "--python" => args.python = it.next().context("--python needs a path")?,
            "--chunk-sweep" => args.chunk_sweep = true,
            "--upsert-loop" => {
                args.upsert_loop = Some(PathBuf::from(
                    it.next().context("--upsert-loop needs a folder")?,
                ))
            }
            "--loops" => args.loops = it.next().context("--loops needs a number")?.parse()?,
            "--growth" => {
                args.growth = it
                    .next()
                    .context("--growth needs row counts, as in 1000000,10000000")?
                    .split(',')
                    .map(|n| {
                        n.parse()
                            .with_context(|| format!("'{n}' is not a row count"))
                    })
                    .collect::<Result<_>>()?;
            }
            "--writers" => {
                args.writers = it
                    .next()
                    .context("--writers needs numbers, as in 8,32,100")?
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?
            }
            "--remote" => {
                args.remote = Some(
                    it.next()
                        .context("--remote needs an S3 endpoint URL or 'file'")?,
                )
            }
            "--child-import" => {
                let repo = PathBuf::from(it.next().context("repo")?);
                let file = PathBuf::from(it.next().context("file")?);
                let avg = it.next().map(|s| s.parse()).transpose()?;
                args.child_import = Some((repo, file, avg));
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; `strata-bench --help` lists them"),
        }
    }
    Ok(args)
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new("tag", DataType::Utf8, true),
    ]))
}

/// A deterministic pseudo-random number for row `i` and stream `s` (splitmix64).
fn mix(i: u64, s: u64) -> u64 {
    let mut z = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(s.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn name(i: u64) -> String {
    let len = 12 + (mix(i, 1) % 9) as usize;
    (0..len)
        .map(|j| (b'a' + (mix(i, 100 + j as u64) % 26) as u8) as char)
        .collect()
}

fn batch(start: u64, len: u64) -> Result<RecordBatch> {
    let ids: Vec<i64> = (start..start + len).map(|i| i as i64).collect();
    let names: Vec<String> = (start..start + len).map(name).collect();
    let qty: Vec<i64> = (start..start + len)
        .map(|i| (mix(i, 2) % 1000) as i64)
        .collect();
    let price: Vec<f64> = (start..start + len)
        .map(|i| (mix(i, 3) % 100_000) as f64 / 100.0)
        .collect();
    let tags: Vec<String> = (start..start + len)
        .map(|i| format!("tag{:02}", mix(i, 4) % 100))
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(qty)),
            Arc::new(Float64Array::from(price)),
            Arc::new(StringArray::from(tags)),
        ],
    )?)
}

/// Writes the benchmark table as an uncompressed Parquet file (the import input).
fn write_input(path: &Path, rows: u64) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::UNCOMPRESSED)
        .build();
    let mut w = ArrowWriter::try_new(file, schema(), Some(props))?;
    let mut start = 0;
    while start < rows {
        let len = (BATCH as u64).min(rows - start);
        w.write(&batch(start, len)?)?;
        start += len;
    }
    w.close()?;
    Ok(())
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_bytes(&p);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs in a child process so that its peak memory is the import's alone.
async fn child_import(repo: &Path, file: &Path, avg: Option<u32>) -> Result<()> {
    let r = Repository::init(repo).await?;
    let opts = ImportOptions {
        mode: None,
        primary_key: Some(vec!["id".into()]),
        format: None,
        chunk_rows: avg,
        ..Default::default()
    };
    let t = Instant::now();
    r.import("bench", file, &opts, &NoProgress).await?;
    r.commit("import", "Bench <bench@localhost>").await?;
    println!("{:.3} {:.1}", t.elapsed().as_secs_f64(), peak_rss_mib());
    Ok(())
}

struct ImportRun {
    secs: f64,
    peak_mib: f64,
}

/// The import run of median time.
fn median_run(runs: &mut [ImportRun]) -> ImportRun {
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let m = &runs[runs.len() / 2];
    ImportRun {
        secs: m.secs,
        peak_mib: m.peak_mib,
    }
}

/// Flushes every file's dirty pages to disk (`sync`), so that the next timed step does not
/// pay for the writeback of what the one before it wrote.
/// Copies every object of `store` into a new folder `dir` (list, then get and put, 8 at a
/// time), as object_store's folder store writes (with `fsync`: each file flushed). Returns
/// the seconds and the bytes copied.
async fn copy_loop(
    store: &Arc<dyn object_store::ObjectStore>,
    dir: &Path,
    fsync: bool,
) -> Result<(f64, u64)> {
    use futures::{StreamExt, TryStreamExt};
    std::fs::create_dir_all(dir)?;
    let target: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?.with_fsync(fsync));
    let t = Instant::now();
    let metas: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await?;
    let bytes: u64 = futures::stream::iter(metas)
        .map(|m| {
            let store = store.clone();
            let target = target.clone();
            async move {
                use object_store::ObjectStoreExt;
                let data = store.get(&m.location).await?.bytes().await?;
                let len = data.len() as u64;
                target.put(&m.location, data.into()).await?;
                Ok::<u64, object_store::Error>(len)
            }
        })
        .buffer_unordered(8)
        .try_fold(0u64, |a, b| async move { Ok(a + b) })
        .await?;
    Ok((t.elapsed().as_secs_f64(), bytes))
}

fn settle() -> Result<()> {
    let status = Command::new("sync").status().context("cannot run sync")?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    Ok(())
}

fn run_child_import(repo: &Path, file: &Path, avg: Option<u32>) -> Result<ImportRun> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--child-import").arg(repo).arg(file);
    if let Some(a) = avg {
        cmd.arg(a.to_string());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout)?;
    let mut parts = text.split_whitespace();
    Ok(ImportRun {
        secs: parts.next().context("time")?.parse()?,
        peak_mib: parts.next().context("rss")?.parse()?,
    })
}

/// pyarrow writing the rows of `input` to one zstd file: the seconds of the write alone, and
/// of the write followed by an `fsync` of the file and its folder (what a Strata import does
/// for every file before it returns, so that a power failure loses nothing it acknowledged).
fn pyarrow_write_secs(python: &str, input: &Path, out: &Path) -> Result<(f64, f64)> {
    let script = r#"
import os, sys, time
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
start = time.perf_counter()
pq.write_table(t, sys.argv[2], compression="zstd")
written = time.perf_counter() - start
fd = os.open(sys.argv[2], os.O_RDONLY)
os.fsync(fd)
os.close(fd)
fd = os.open(os.path.dirname(os.path.abspath(sys.argv[2])), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
print(written, time.perf_counter() - start)
"#;
    let text = python_output(python, script, &[input, out])?;
    let mut parts = text.split_whitespace();
    Ok((
        parts.next().context("write time")?.parse()?,
        parts.next().context("flushed write time")?.parse()?,
    ))
}

/// pyarrow reading the CSV file `input` (its multi-threaded reader) and writing its rows to
/// one zstd file: the seconds of both.
fn pyarrow_csv_secs(python: &str, input: &Path, out: &Path) -> Result<f64> {
    let script = r#"
import sys, time
import pyarrow.csv as pc
import pyarrow.parquet as pq
start = time.perf_counter()
pq.write_table(pc.read_csv(sys.argv[1]), sys.argv[2], compression="zstd")
print(time.perf_counter() - start)
"#;
    python_secs(python, script, &[input, out])
}

/// Runs a timing script with pyarrow in a fresh process; the seconds it prints.
fn python_secs(python: &str, script: &str, args: &[&Path]) -> Result<f64> {
    Ok(python_output(python, script, args)?.trim().parse()?)
}

/// Runs a timing script with pyarrow in a fresh process; what it prints.
fn python_output(python: &str, script: &str, args: &[&Path]) -> Result<String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    if !out.status.success() {
        bail!(
            "pyarrow failed (run bench/run.sh, which installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Every file below `path`.
fn files_below(path: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_below(&p));
            } else {
                out.insert(p);
            }
        }
    }
    out
}

/// What the last commit's Iceberg view cost: the files it added below `.strata/iceberg`
/// and their bytes, and the time to publish it, measured by removing those files and
/// publishing again, as the commit did (from the previous commit's view).
async fn view_cost(
    repo: &Repository,
    before: &std::collections::BTreeSet<PathBuf>,
    previous: strata_engine::ObjectId,
) -> Result<(usize, u64, f64)> {
    let dir = repo.root().join(".strata").join("iceberg");
    let added: Vec<PathBuf> = files_below(&dir).difference(before).cloned().collect();
    let bytes = added
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    for p in &added {
        std::fs::remove_file(p)?;
    }
    let state = repo
        .refs()
        .read(&strata_engine::store::RefName::branch("main")?)
        .await?;
    let t = Instant::now();
    repo.publish_views(&state, Some(previous)).await?;
    Ok((added.len(), bytes, t.elapsed().as_secs_f64()))
}

async fn one_row_upsert(repo: &Repository, dir: &Path, row: u64) -> Result<(f64, u64)> {
    let file = dir.join("one.csv");
    std::fs::write(
        &file,
        format!("id,name,qty,price,tag\n{row},changedname,1,1.5,tag01\n"),
    )?;
    let before = dir_bytes(&repo.root().join(".strata"));
    let opts = ImportOptions {
        mode: Some(ImportMode::Upsert),
        ..Default::default()
    };
    let t = Instant::now();
    repo.import("bench", &file, &opts, &NoProgress).await?;
    repo.commit("one row", "Bench <bench@localhost>").await?;
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, dir_bytes(&repo.root().join(".strata")) - before))
}

/// Appends `count` rows after the last key and commits; the bytes this added.
async fn append_rows(repo: &Repository, dir: &Path, rows: u64, count: u64) -> Result<u64> {
    let file = dir.join("append.csv");
    let mut text = String::from("id,name,qty,price,tag\n");
    for i in rows + 10..rows + 10 + count {
        text.push_str(&format!("{i},{},{},1.0,tag03\n", name(i), i % 1000));
    }
    std::fs::write(&file, text)?;
    let before = dir_bytes(&repo.root().join(".strata"));
    let opts = ImportOptions {
        mode: Some(ImportMode::Append),
        ..Default::default()
    };
    repo.import("bench", &file, &opts, &NoProgress).await?;
    repo.commit("append", "Bench <bench@localhost>").await?;
    Ok(dir_bytes(&repo.root().join(".strata")) - before)
}

/// Exports revision `rev` of the bench table to `out` in `format`: the seconds it took.
async fn export_secs(
    repo: &Repository,
    rev: &str,
    out: &Path,
    format: ExportFormat,
) -> Result<f64> {
    let (_, table) = repo.table("bench", Some(rev)).await?;
    let t = Instant::now();
    export(
        repo.objects(),
        &table,
        &Destination::File(out.to_path_buf()),
        format,
        &NoProgress,
    )
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

async fn bench(args: &Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("input.parquet");
    let n = args.rows;
    write_input(&input, n)?;
    println!(
        "== {n} rows (input {:.1} MiB uncompressed Parquet)",
        mib(std::fs::metadata(&input)?.len())
    );
    // pyarrow's write and the imports (from that Parquet file, and from the same rows as
    // CSV) take turns over three rounds, each after a `sync`, so that none pays for writing
    // back what the step before it left in the page cache: medians.
    let py_out = tmp.path().join("pyarrow.parquet");
    let csv = tmp.path().join("input.csv");
    let repo_dir = tmp.path().join("repo");
    let (mut py, mut py_flushed, mut py_csv) = (Vec::new(), Vec::new(), Vec::new());
    let (mut runs, mut csv_runs) = (Vec::new(), Vec::new());
    for round in 0..3 {
        settle()?;
        let (plain, flushed) = pyarrow_write_secs(&args.python, &input, &py_out)?;
        py.push(plain);
        py_flushed.push(flushed);
        settle()?;
        let dir = match round {
            0 => repo_dir.clone(),
            r => tmp.path().join(format!("repo-{r}")),
        };
        runs.push(run_child_import(&dir, &input, None)?);
        if round == 0 {
            let repo = Repository::open(&repo_dir).await?;
            export_secs(&repo, "HEAD", &csv, ExportFormat::Csv).await?;
        } else {
            std::fs::remove_dir_all(&dir)?;
        }
        settle()?;
        let from_csv = tmp.path().join("repo-from-csv");
        csv_runs.push(run_child_import(&from_csv, &csv, None)?);
        std::fs::remove_dir_all(&from_csv)?;
        settle()?;
        py_csv.push(pyarrow_csv_secs(
            &args.python,
            &csv,
            &tmp.path().join("pyarrow-csv.parquet"),
        )?);
    }
    let (py, py_flushed) = (median(&mut py), median(&mut py_flushed));
    let py_size = std::fs::metadata(&py_out)?.len();
    let run = median_run(&mut runs);
    let repo = Repository::open(&repo_dir).await?;
    let size = dir_bytes(&repo_dir.join(".strata"));
    println!(
        "import: {:.2} s vs pyarrow zstd write {:.2} s = {:.2}x (target <= 1.2x), vs the same write flushed to disk {:.2} s = {:.2}x; {:.0} rows/s (medians of 3 rounds)",
        run.secs,
        py,
        run.secs / py,
        py_flushed,
        run.secs / py_flushed,
        n as f64 / run.secs
    );
    println!(
        "size: repository {:.1} MiB vs pyarrow file {:.1} MiB; peak memory of the import {:.0} MiB (target <= 1024)",
        mib(size),
        mib(py_size),
        run.peak_mib
    );
    let csv_size = std::fs::metadata(&csv)?.len();
    let csv_run = median_run(&mut csv_runs);
    println!(
        "import from CSV ({:.0} MiB): {:.2} s vs pyarrow zstd write {:.2} s = {:.2}x (target <= 1.2x), vs the same write flushed {:.2} s = {:.2}x, vs pyarrow reading the CSV and writing it {:.2} s = {:.2}x; peak memory {:.0} MiB (medians of 3 rounds)",
        mib(csv_size),
        csv_run.secs,
        py,
        csv_run.secs / py,
        py_flushed,
        csv_run.secs / py_flushed,
        median(&mut py_csv),
        csv_run.secs / median(&mut py_csv),
        csv_run.peak_mib
    );
    std::fs::remove_file(&csv)?;
    let mut times = Vec::new();
    let mut bytes = Vec::new();
    let mut views = Vec::new();
    for k in 0..5u64 {
        let iceberg_before = files_below(&repo_dir.join(".strata").join("iceberg"));
        let previous = repo.resolve("HEAD").await?;
        let (secs, added) = one_row_upsert(&repo, tmp.path(), (n / 7) * (k + 1) % n).await?;
        times.push(secs);
        bytes.push(added);
        views.push(view_cost(&repo, &iceberg_before, previous).await?);
    }
    // Each median on its own: the upserts fall in index leaves of different sizes.
    let mut view_files: Vec<usize> = views.iter().map(|v| v.0).collect();
    let mut view_bytes: Vec<u64> = views.iter().map(|v| v.1).collect();
    let mut view_secs: Vec<f64> = views.iter().map(|v| v.2).collect();
    view_files.sort_unstable();
    view_bytes.sort_unstable();
    println!(
        "Iceberg view of a one-row commit (included below): {} files, {:.1} KiB ({:.1}-{:.1}), {:.1} ms to publish (medians of 5)",
        view_files[2],
        view_bytes[2] as f64 / 1024.0,
        view_bytes[0] as f64 / 1024.0,
        view_bytes[4] as f64 / 1024.0,
        median(&mut view_secs) * 1000.0
    );
    times.sort_by(f64::total_cmp);
    println!(
        "one-row upsert + commit: median {:.0} ms (max {:.0} ms; target <= 300), bytes added {:.1} KiB median (max {:.1} KiB; target <= 1024)",
        times[2] * 1000.0,
        times[4] * 1000.0,
        {
            let mut b = bytes.clone();
            b.sort();
            b[2] as f64 / 1024.0
        },
        *bytes.iter().max().unwrap_or(&0) as f64 / 1024.0
    );
    let newest = export_secs(
        &repo,
        "HEAD",
        &tmp.path().join("newest.parquet"),
        ExportFormat::Parquet,
    )
    .await?;
    let first = export_secs(
        &repo,
        "HEAD~5",
        &tmp.path().join("first.parquet"),
        ExportFormat::Parquet,
    )
    .await?;
    println!(
        "export to Parquet: newest commit {:.2} s, first commit {:.2} s ({:.0} rows/s)",
        newest,
        first,
        n as f64 / newest
    );
    cli_exports(&args.python, &repo, tmp.path())?;
    diff_bench(&repo, tmp.path(), n).await
}

/// `strata export` of the newest commit to each format, beside pyarrow reading its own zstd
/// file of the same rows (the floor) and pyarrow writing those rows as CSV, taking turns over
/// three rounds, each step after a `sync`.
///
/// Each figure is the best of its three: on this machine a process that touches memory the
/// host has not backed lately spends most of its time clearing pages in the kernel, which
/// made a single read of the floor take anything from 0.4 to 1.3 s. The best run of each
/// step is the one that did not pay for that, on both sides.
fn cli_exports(python: &str, repo: &Repository, dir: &Path) -> Result<()> {
    let cli = std::env::current_exe()?.with_file_name("strata");
    if !cli.exists() {
        println!("CLI exports: CLI not built (cargo build --release -p strata-cli)");
        return Ok(());
    }
    let floor_file = dir.join("pyarrow.parquet");
    let formats = ["parquet", "arrow", "csv"];
    let (mut floor, mut py_csv) = (Vec::new(), Vec::new());
    let mut times = vec![Vec::new(); formats.len()];
    for _ in 0..3 {
        settle()?;
        floor.push(pyarrow_read_secs(python, &floor_file)?);
        settle()?;
        py_csv.push(pyarrow_csv_write_secs(
            python,
            &floor_file,
            &dir.join("pyarrow.csv"),
        )?);
        for (i, format) in formats.iter().enumerate() {
            let out_file = dir.join(format!("export.{format}"));
            settle()?;
            let t = Instant::now();
            let out = Command::new(&cli)
                .arg("-C")
                .arg(repo.root())
                .arg("export")
                .arg("bench")
                .arg(&out_file)
                .output()?;
            if !out.status.success() {
                bail!(
                    "strata export failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            times[i].push(t.elapsed().as_secs_f64());
            std::fs::remove_file(&out_file)?;
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let spread = |v: &[f64]| {
        let worst = v.iter().copied().fold(0.0, f64::max);
        format!("{:.2}-{worst:.2}", best(v))
    };
    let floor_best = best(&floor);
    let figures: Vec<String> = formats
        .iter()
        .zip(times.iter())
        .map(|(f, t)| {
            let secs = best(t);
            format!(
                "{f} {secs:.2} s = {:.2}x ({} s)",
                secs / floor_best,
                spread(t)
            )
        })
        .collect();
    println!(
        "CLI export of the newest commit (process included, best of 3, range in brackets): {} of pyarrow's read of its zstd file, {floor_best:.2} s ({} s) (target <= 1.3x); pyarrow writing the same rows as CSV: {:.2} s ({} s)",
        figures.join(", "),
        spread(&floor),
        best(&py_csv),
        spread(&py_csv),
    );
    Ok(())
}

/// pyarrow reading a Parquet file into a table, in a fresh process (the read alone is timed).
fn pyarrow_read_secs(python: &str, file: &Path) -> Result<f64> {
    let script = r#"
import sys, time
import pyarrow.parquet as pq
pq.read_table(sys.argv[1], columns=["id"])
start = time.perf_counter()
pq.read_table(sys.argv[1])
print(time.perf_counter() - start)
"#;
    python_secs(python, script, &[file])
}

/// pyarrow writing the rows of a Parquet file as CSV, in a fresh process (the write alone is
/// timed): what the same CSV costs pyarrow, beside the read floor.
fn pyarrow_csv_write_secs(python: &str, file: &Path, out: &Path) -> Result<f64> {
    let script = r#"
import sys, time
import pyarrow.csv as pc
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
start = time.perf_counter()
pc.write_csv(t, sys.argv[2])
print(time.perf_counter() - start)
"#;
    let secs = python_secs(python, script, &[file, out])?;
    std::fs::remove_file(out)?;
    Ok(secs)
}

/// One updated row plus 1,000 appended rows, diffed in-process and through the CLI.
async fn diff_bench(repo: &Repository, dir: &Path, n: u64) -> Result<()> {
    let file = dir.join("diff.csv");
    let mut text = String::from("id,name,qty,price,tag\n");
    text.push_str(&format!("{},updated,2,2.5,tag02\n", n / 3));
    for i in n..n + 1000 {
        text.push_str(&format!("{i},{},{},1.0,tag03\n", name(i), i % 1000));
    }
    std::fs::write(&file, text)?;
    let opts = ImportOptions {
        mode: Some(ImportMode::Upsert),
        ..Default::default()
    };
    repo.import("bench", &file, &opts, &NoProgress).await?;
    repo.commit("diff bench", "Bench <bench@localhost>").await?;
    let (_, old) = repo.table("bench", Some("HEAD~1")).await?;
    let (_, new) = repo.table("bench", Some("HEAD")).await?;
    let mut times = Vec::new();
    let mut counts = Default::default();
    for _ in 0..7 {
        let t = Instant::now();
        counts =
            strata_engine::diff::diff_tables(repo.objects(), Some(&old), Some(&new), &mut |_| {
                Ok(())
            })
            .await?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    print!(
        "diff of 1 updated + 1000 appended rows: in-process median {:.1} ms (target <= 50; {} added, {} modified)",
        times[3] * 1000.0,
        counts.added,
        counts.modified
    );
    let cli = std::env::current_exe()?.with_file_name("strata");
    if cli.exists() {
        let mut cli_times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let out = Command::new(&cli)
                .arg("-C")
                .arg(repo.root())
                .args(["diff", "HEAD~1", "HEAD", "--stat"])
                .output()?;
            if !out.status.success() {
                bail!(
                    "strata diff failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            cli_times.push(t.elapsed().as_secs_f64());
        }
        cli_times.sort_by(f64::total_cmp);
        println!(
            "; CLI 'strata diff --stat' median {:.1} ms (target <= 100)",
            cli_times[2] * 1000.0
        );
    } else {
        println!("; CLI not built (cargo build --release -p strata-cli)");
    }
    Ok(())
}

async fn sweep(args: &Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("input.parquet");
    write_input(&input, args.rows)?;
    println!("== chunk size sweep over {} rows", args.rows);
    println!(
        "avg rows | chunks | chunk of a random row | import s | export s | scan s (best of 3) | one-row upsert ms | KiB added | 1,000 appended: KiB added"
    );
    for avg in std::env::var("SWEEP")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|x| x.parse().ok())
                .collect::<Vec<u32>>()
        })
        .unwrap_or_else(|| vec![1024u32, 2048, 4096, 8192, 16384, 65536])
    {
        let dir = tmp.path().join(format!("r{avg}"));
        let run = run_child_import(&dir, &input, Some(avg))?;
        let repo = Repository::open(&dir).await?;
        let (_, t) = repo.table("bench", None).await?;
        let entries = t.chunks(repo.objects()).await?;
        let chunks = entries.len();
        // The chunk a random row falls in (what a one-row edit rewrites), on average: longer
        // chunks hold more rows, so this is sum(len^2) / sum(len), above the average length.
        let sq: f64 = entries.iter().map(|e| (e.rows as f64).powi(2)).sum();
        let edited_rows = sq / entries.iter().map(|e| e.rows as f64).sum::<f64>().max(1.0);
        let edited_kib = entries
            .iter()
            .map(|e| e.rows as f64 * e.bytes as f64)
            .sum::<f64>()
            / entries.iter().map(|e| e.rows as f64).sum::<f64>().max(1.0)
            / 1024.0;
        let exp = export_secs(
            &repo,
            "HEAD",
            &tmp.path().join("e.parquet"),
            ExportFormat::Parquet,
        )
        .await?;
        let mut scans = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let (_, mut stream, _) =
                strata_engine::table::scan_spec(repo.objects(), &t, Default::default()).await?;
            let mut batches = Vec::new();
            while let Some(b) = futures::StreamExt::next(&mut stream).await {
                batches.push(b?);
            }
            scans.push(start.elapsed().as_secs_f64());
            drop(batches);
        }
        scans.sort_by(f64::total_cmp);
        let (secs, added) = one_row_upsert(&repo, tmp.path(), args.rows / 2).await?;
        let appended = append_rows(&repo, tmp.path(), args.rows, 1000).await?;
        println!(
            "{avg:>8} | {chunks:>6} | {edited_rows:>8.0} rows, {edited_kib:>5.0} KiB | {:>8.2} | {:>8.2} | {:>18.2} | {:>17.0} | {:>9.1} | {:>9.1}",
            run.secs,
            exp,
            scans[0],
            secs * 1000.0,
            added as f64 / 1024.0,
            appended as f64 / 1024.0
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    if let Some((repo, file, avg)) = &args.child_import {
        return child_import(repo, file, *avg).await;
    }
    if let Some(dir) = &args.upsert_loop {
        upsert_loop(dir, args.rows, args.loops).await
    } else if !args.growth.is_empty() {
        growth_bench(&args).await
    } else if !args.writers.is_empty() {
        writers_bench(&args).await
    } else if let Some(endpoint) = &args.remote {
        remote_bench(&args, endpoint).await
    } else if args.chunk_sweep {
        sweep(&args).await
    } else {
        bench(&args).await
    }
}

/// Runs the release `strata` binary beside this one; fails with its standard error.
fn strata(cli: &Path, dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new(cli)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("STRATA_AUTHOR", "Bench <bench@example.com>")
        .output()?;
    if !out.status.success() {
        bail!(
            "strata {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Uncontended pushes timed for each row of the many-writers table.
const SINGLE_PUSHES: usize = 10;

/// Processor time (user and system) of this process's children that have ended and been
/// waited for, from /proc (in clock ticks of 10 ms: a mean over several children is fine
/// enough).
fn children_cpu_secs() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc/self/stat has no command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime: fields 16 and 17 of the whole line, 14 and 15 after the name.
    let ticks: f64 = [14, 15]
        .iter()
        .map(|&i| {
            fields
                .get(i - 1)
                .and_then(|f| f.parse::<f64>().ok())
                .context("/proc/self/stat lacks the children's times")
        })
        .sum::<Result<f64>>()?;
    Ok(ticks / 100.0)
}

/// Appends 100 rows with keys from `first` to the clone in `dir` and commits them.
fn commit_append(cli: &Path, dir: &Path, first: u64, message: &str) -> Result<()> {
    let mut csv = String::from("id,name,qty,price,tag\n");
    for k in first..first + 100 {
        csv.push_str(&format!("{k},writer,{k},1.5,w\n"));
    }
    let file = dir.join("append.csv");
    std::fs::write(&file, csv)?;
    let path = file.to_string_lossy().to_string();
    strata(cli, dir, &["import", "bench", &path, "--mode", "append"])?;
    strata(cli, dir, &["commit", "-m", message])?;
    Ok(())
}

/// Many writers pushing once each, as separate processes: wall time, each writer's latency
/// (median and worst) and attempts, beside one uncontended push of the same change.
async fn writers_bench(args: &Args) -> Result<()> {
    let cli = std::env::current_exe()?.with_file_name("strata");
    if !cli.exists() {
        bail!("build the command first: cargo build --release -p strata-cli");
    }
    let endpoint = args.remote.clone().unwrap_or_else(|| "file".into());
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("input.parquet");
    write_input(&input, args.rows)?;
    let seed = tmp.path().join("seed");
    run_child_import(&seed, &input, None)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let (url, options): (String, Vec<String>) = if endpoint == "file" {
        (
            tmp.path().join("remote").to_string_lossy().to_string(),
            Vec::new(),
        )
    } else {
        let bucket = std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into());
        (
            format!("s3://{bucket}/bench/writers-{nanos:x}"),
            vec![
                "-o".into(),
                format!("endpoint={endpoint}"),
                "-o".into(),
                "allow_http=true".into(),
            ],
        )
    };
    let opts: Vec<&str> = options.iter().map(String::as_str).collect();
    let mut add = vec!["remote", "add", "origin", url.as_str()];
    add.extend(&opts);
    strata(&cli, &seed, &add)?;
    strata(&cli, &seed, &["push", "--create", "-u", "origin", "main"])?;
    let clone = |name: &str| -> Result<PathBuf> {
        let dir = tmp.path().join(name);
        let d = dir.to_string_lossy().to_string();
        let mut a = vec!["clone", url.as_str(), d.as_str()];
        a.extend(&opts);
        strata(&cli, tmp.path(), &a)?;
        Ok(dir)
    };
    println!(
        "== many writers on {}: each clone of a {}-row table appends 100 rows and runs 'strata push' once, all at the same moment",
        if endpoint == "file" { "a folder" } else { endpoint.as_str() },
        args.rows
    );
    println!("writers | wall s | latency median s | worst s | attempts median / max | uncontended push s | wall / uncontended | same pushes to separate branches s | CPU of one push ms | CPU floor of n pushes s (/ uncontended)");
    let mut next_key = args.rows + 1_000_000;
    for &n in &args.writers {
        // One push of the same change with nobody else pushing (the median of ten), and the
        // processor time such a push takes (their mean).
        let single = clone(&format!("single-{n}"))?;
        let mut singles = Vec::new();
        let mut cpu_secs = 0.0;
        for i in 0..SINGLE_PUSHES {
            commit_append(&cli, &single, next_key, &format!("single {i}"))?;
            next_key += 100;
            let cpu = children_cpu_secs()?;
            let t = Instant::now();
            strata(&cli, &single, &["push"])?;
            singles.push(t.elapsed().as_secs_f64());
            cpu_secs += children_cpu_secs()? - cpu;
        }
        singles.sort_by(f64::total_cmp);
        let single_secs = singles[singles.len() / 2];
        let push_cpu = cpu_secs / SINGLE_PUSHES as f64;
        // The least wall time n such pushes can take on this machine's cores, were they
        // perfectly spread and never waited for one another.
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let cpu_floor = n as f64 * push_cpu / cores as f64;
        // The floor of n processes pushing at once on this machine: the same change, each
        // to a branch of its own (no two race for one ref).
        let solo: Vec<PathBuf> = (0..n)
            .map(|i| clone(&format!("s{n}-{i}")))
            .collect::<Result<_>>()?;
        for (i, d) in solo.iter().enumerate() {
            commit_append(&cli, d, next_key, &format!("solo {i}"))?;
            next_key += 100;
        }
        let start = Instant::now();
        let children: Vec<std::process::Child> = solo
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Command::new(&cli)
                    .arg("-C")
                    .arg(d)
                    .args(["push", "origin", &format!("main:solo-{n}-{i}")])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
            })
            .collect::<std::io::Result<_>>()?;
        for c in children {
            let out = c.wait_with_output()?;
            if !out.status.success() {
                bail!("a push to a branch of its own failed");
            }
        }
        let separate_secs = start.elapsed().as_secs_f64();
        for d in solo {
            std::fs::remove_dir_all(d).ok();
        }
        let dirs: Vec<PathBuf> = (0..n)
            .map(|i| clone(&format!("w{n}-{i}")))
            .collect::<Result<_>>()?;
        for (i, d) in dirs.iter().enumerate() {
            commit_append(&cli, d, next_key, &format!("writer {i}"))?;
            next_key += 100;
        }
        let start = Instant::now();
        let children: Vec<std::process::Child> = dirs
            .iter()
            .map(|d| {
                Command::new(&cli)
                    .arg("-C")
                    .arg(d)
                    .arg("push")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
            })
            .collect::<std::io::Result<_>>()?;
        let waits: Vec<std::thread::JoinHandle<Result<(f64, u32)>>> = children
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || -> Result<(f64, u32)> {
                    let out = c.wait_with_output()?;
                    let secs = start.elapsed().as_secs_f64();
                    let err = String::from_utf8_lossy(&out.stderr);
                    if !out.status.success() {
                        bail!("a writer's push failed: {err}");
                    }
                    let attempts = err
                        .split("(attempt ")
                        .nth(1)
                        .and_then(|r| r.split(')').next())
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(1);
                    Ok((secs, attempts))
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut attempts = Vec::new();
        for w in waits {
            let (secs, a) = w
                .join()
                .map_err(|_| anyhow::anyhow!("a waiting thread panicked"))??;
            latencies.push(secs);
            attempts.push(a);
        }
        let wall = start.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        attempts.sort_unstable();
        println!(
            "{n:>7} | {wall:>6.2} | {:>16.2} | {:>7.2} | {:>12} / {:<8} | {single_secs:>18.3} | {:>17.1}x | {separate_secs:>34.2} | {:>18.1} | {cpu_floor:.3} ({:.1}x)",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1],
            attempts[attempts.len() / 2],
            attempts[attempts.len() - 1],
            wall / single_secs,
            push_cpu * 1e3,
            cpu_floor / single_secs
        );
        for d in dirs {
            std::fs::remove_dir_all(d).ok();
        }
    }
    Ok(())
}

fn remote_store(
    endpoint: &str,
    dir: &Path,
    name: &str,
) -> Result<Arc<dyn object_store::ObjectStore>> {
    if endpoint == "file" {
        let path = dir.join(name);
        std::fs::create_dir_all(&path)?;
        return Ok(Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(path)?,
        ));
    }
    let bucket = std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let options = std::collections::BTreeMap::from([
        ("endpoint".to_string(), endpoint.to_string()),
        ("allow_http".to_string(), "true".to_string()),
    ]);
    Ok(strata_remote::cloud::open(
        "s3",
        &format!("s3://{bucket}/bench/{name}-{nanos:x}"),
        &options,
    )?)
}

/// Seconds to scan every row of the table `bench` at `rev`, resolved in `refs` and read from
/// `objects` (a repository's own, or a remote's in place), and the rows read.
async fn scan_secs(
    objects: &strata_engine::store::Objects,
    refs: &strata_engine::store::RefLog,
    rev: &str,
) -> Result<(f64, u64)> {
    scan_spec_secs(objects, refs, rev, Default::default()).await
}

/// The key range `lo <= id < hi` of the benchmark table, as a scan takes it.
fn id_range(lo: i64, hi: i64) -> Result<strata_engine::key::KeyRange> {
    let ids = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![lo, hi])) as ArrayRef],
    )?;
    let keys =
        strata_engine::key::encode_keys(&ids, &[0])?.map_err(|_| anyhow::anyhow!("a null key"))?;
    Ok(strata_engine::key::KeyRange {
        lower: std::ops::Bound::Included(keys.get(0).to_vec()),
        upper: std::ops::Bound::Excluded(keys.get(1).to_vec()),
    })
}

/// [`scan_secs`] of what `spec` selects.
async fn scan_spec_secs(
    objects: &strata_engine::store::Objects,
    refs: &strata_engine::store::RefLog,
    rev: &str,
    spec: strata_engine::table::ScanSpec,
) -> Result<(f64, u64)> {
    use futures::StreamExt;
    let t = Instant::now();
    let commit = strata_engine::repo::resolve_stored(refs, objects, rev).await?;
    let tables = strata_engine::Commit::read(objects, &commit).await?.tables;
    let id = tables.get("bench").context("no table 'bench'")?;
    let table = strata_engine::TableObject::read(objects, id).await?;
    let (_, mut stream, _) = strata_engine::table::scan_spec(objects, &table, spec).await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows() as u64;
    }
    Ok((t.elapsed().as_secs_f64(), rows))
}

/// Push, fetch and clone costs against a remote (requests and bytes through a counting
/// wrapper), and clone throughput against a plain object_store copy loop.
async fn remote_bench(args: &Args, endpoint: &str) -> Result<()> {
    use std::sync::atomic::Ordering;
    use strata_remote::testing::CountingStore;
    use strata_remote::Remote;
    let tmp = tempfile::tempdir()?;
    let n = args.rows;
    let input = tmp.path().join("input.parquet");
    write_input(&input, n)?;
    let repo_dir = tmp.path().join("repo");
    run_child_import(&repo_dir, &input, None)?;
    let repo = Repository::open(&repo_dir).await?;
    println!(
        "== remote {endpoint}, {n} rows ({:.1} MiB in the repository)",
        mib(dir_bytes(&repo_dir.join(".strata")))
    );
    let store = remote_store(endpoint, tmp.path(), "remote")?;
    let counting = Arc::new(CountingStore::new(store.clone()));
    let remote = Remote::from_store("origin", endpoint, counting.clone(), "bench");
    let main = ["main".to_string()];
    let opts = strata_remote::push::PushOptions::default();
    let t = Instant::now();
    strata_remote::push::push(&repo, &remote, &main, &[], &opts, &NoProgress).await?;
    let secs = t.elapsed().as_secs_f64();
    let up = counting.counts.bytes_put.load(Ordering::SeqCst);
    println!(
        "first push: {:.2} s, {:.1} MiB/s; {}",
        secs,
        mib(up) / secs,
        counting.counts.summary()
    );

    one_row_upsert(&repo, tmp.path(), n / 2).await?;
    counting.counts.reset();
    let t = Instant::now();
    strata_remote::push::push(&repo, &remote, &main, &[], &opts, &NoProgress).await?;
    println!(
        "push of a one-row change: {:.0} ms; {}",
        t.elapsed().as_secs_f64() * 1000.0,
        counting.counts.summary()
    );

    // Clone (a fresh repository fetching everything) against a plain copy loop of the same
    // objects (list, then get and put, 8 at a time), into a folder as object_store writes it
    // (no flush) and into one flushed file by file, as a clone stores what it fetches (so that
    // a power failure loses nothing it acknowledged). Three rounds taking turns, each step
    // after a `sync`, best of three each (one run alone swings with the server).
    let (mut clone_times, mut plain_times, mut flushed_times) = (vec![], vec![], vec![]);
    let (mut clone_calls, mut down, mut bytes) = (String::new(), 0, 0);
    let mut last_clone = None;
    for round in 0..3 {
        settle()?;
        let clone_dir = tmp.path().join(format!("clone-{round}"));
        let clone = Repository::init(&clone_dir).await?;
        counting.counts.reset();
        let t = Instant::now();
        strata_remote::fetch::fetch(&clone, &remote, false, &NoProgress).await?;
        let secs = t.elapsed().as_secs_f64();
        if clone_times.iter().all(|&best| secs < best) {
            clone_calls = counting.counts.summary();
            down = counting.counts.bytes_got.load(Ordering::SeqCst);
        }
        clone_times.push(secs);
        for (name, fsync, times) in [
            ("plain", false, &mut plain_times),
            ("flushed", true, &mut flushed_times),
        ] {
            settle()?;
            let dir = tmp.path().join(format!("{name}-{round}"));
            let (secs, copied) = copy_loop(&store, &dir, fsync).await?;
            times.push(secs);
            bytes = copied;
            std::fs::remove_dir_all(&dir)?;
        }
        if let Some(dir) = last_clone.replace(clone_dir) {
            std::fs::remove_dir_all(dir)?;
        }
        if round == 2 {
            counting.counts.reset();
            strata_remote::fetch::fetch(&clone, &remote, false, &NoProgress).await?;
            println!("up-to-date fetch: {}", counting.counts.summary());
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let range = |v: &[f64]| {
        format!(
            "{:.2}-{:.2}",
            best(v),
            v.iter().copied().fold(0.0, f64::max)
        )
    };
    let (clone_secs, plain, flushed) =
        (best(&clone_times), best(&plain_times), best(&flushed_times));
    println!(
        "clone (fetch into an empty repository, best of 3, range in brackets): {clone_secs:.2} s ({} s), {:.1} MiB/s; {clone_calls}",
        range(&clone_times),
        mib(down) / clone_secs,
    );
    println!(
        "object_store copy loop of the same objects: {plain:.2} s ({} s), {:.1} MiB/s (clone takes {:.2}x its time); flushing each file as a clone does: {flushed:.2} s ({} s) (clone takes {:.2}x its time)",
        range(&plain_times),
        mib(bytes) / plain,
        clone_secs / plain,
        range(&flushed_times),
        clone_secs / flushed
    );

    // A scan of the newest revision straight from the remote against the same scan of the
    // local repository, taking turns, best of three each.
    let (mut local_best, mut remote_best) = (f64::MAX, f64::MAX);
    let mut remote_calls = String::new();
    for _ in 0..3 {
        let (secs, rows) = scan_secs(repo.objects(), repo.refs(), "main").await?;
        local_best = local_best.min(secs);
        counting.counts.reset();
        let (secs, remote_rows) = scan_secs(&remote.objects, &remote.refs, "main").await?;
        remote_best = remote_best.min(secs);
        remote_calls = counting.counts.summary();
        if rows != remote_rows {
            bail!("the remote scan read {remote_rows} rows, the local one {rows}");
        }
    }
    println!(
        "scan of the newest revision straight from the remote: {:.2} s; of the local repository: {:.2} s ({:.2}x; target <= 1.5x; best of 3 each, taking turns); the copy loop's time is {:.2}x the local scan; {remote_calls}",
        remote_best,
        local_best,
        remote_best / local_best,
        plain / local_best
    );
    // 1% of the keys, straight from the remote and locally (best of 3 each, taking turns).
    let (lo, hi) = ((n / 3) as i64, (n / 3 + n / 100) as i64);
    let (mut local_best, mut remote_best) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let spec = || -> Result<strata_engine::table::ScanSpec> {
            Ok(strata_engine::table::ScanSpec {
                columns: None,
                ranges: vec![id_range(lo, hi)?],
            })
        };
        let (secs, rows) = scan_spec_secs(repo.objects(), repo.refs(), "main", spec()?).await?;
        local_best = local_best.min(secs);
        counting.counts.reset();
        let (secs, remote_rows) =
            scan_spec_secs(&remote.objects, &remote.refs, "main", spec()?).await?;
        remote_best = remote_best.min(secs);
        remote_calls = counting.counts.summary();
        if rows != remote_rows || rows != (hi - lo) as u64 {
            bail!(
                "the key-range scans read {remote_rows} and {rows} rows, not {}",
                hi - lo
            );
        }
    }
    println!(
        "1% of the keys straight from the remote: {:.0} ms; from the local repository: {:.0} ms; {remote_calls}",
        remote_best * 1000.0,
        local_best * 1000.0
    );

    // Garbage collection: the one-row change is forced away, so its objects become garbage.
    repo.reset_hard("HEAD~1").await?;
    let force = strata_remote::push::PushOptions {
        force: true,
        ..Default::default()
    };
    strata_remote::push::push(&repo, &remote, &main, &[], &force, &NoProgress).await?;
    counting.counts.reset();
    let t = Instant::now();
    let report = strata_remote::gc::collect(
        &remote,
        &[repo.objects()],
        &strata_remote::gc::GcOptions::default(),
        0,
        &NoProgress,
    )
    .await?;
    println!(
        "gc of the remote after forcing the change away: {:.0} ms, removed {} objects ({:.1} KiB), kept {}; {}",
        t.elapsed().as_secs_f64() * 1000.0,
        report.gc.removed.objects,
        report.gc.removed.bytes as f64 / 1024.0,
        report.gc.kept.objects,
        counting.counts.summary()
    );
    let t = Instant::now();
    let local = repo.gc(false, false, &NoProgress).await?;
    println!(
        "gc of the local repository: {:.0} ms, removed {} objects, kept {}",
        t.elapsed().as_secs_f64() * 1000.0,
        local.removed.objects,
        local.kept.objects
    );

    // After a collection, a push's lock check also reads the lock's newest record.
    one_row_upsert(&repo, tmp.path(), n / 2 + 1).await?;
    counting.counts.reset();
    let t = Instant::now();
    strata_remote::push::push(&repo, &remote, &main, &[], &opts, &NoProgress).await?;
    println!(
        "push of a one-row change after a collection: {:.0} ms; {}",
        t.elapsed().as_secs_f64() * 1000.0,
        counting.counts.summary()
    );
    Ok(())
}

/// The median of `values` (which it sorts).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// For each size: import and full scan (which grow with the table) beside a one-row upsert and
/// commit, a small diff and the push of a one-row change to a folder remote (which should not).
async fn growth_bench(args: &Args) -> Result<()> {
    use std::sync::atomic::Ordering;
    use strata_remote::testing::CountingStore;
    use strata_remote::Remote;
    let mut lines = Vec::new();
    for &n in &args.growth {
        let tmp = tempfile::tempdir()?;
        let input = tmp.path().join("input.parquet");
        write_input(&input, n)?;
        // The import does not pay for the writeback of its input.
        settle()?;
        let repo_dir = tmp.path().join("repo");
        let run = run_child_import(&repo_dir, &input, None)?;
        std::fs::remove_file(&input)?;
        let repo = Repository::open(&repo_dir).await?;
        let (_, t) = repo.table("bench", None).await?;
        let start = Instant::now();
        let (_, mut stream, _) =
            strata_engine::table::scan_spec(repo.objects(), &t, Default::default()).await?;
        let mut scanned = 0usize;
        while let Some(b) = futures::StreamExt::next(&mut stream).await {
            scanned += b?.num_rows();
        }
        let scan = start.elapsed().as_secs_f64();
        anyhow::ensure!(scanned as u64 == n, "the scan read {scanned} of {n} rows");

        // A folder remote holding the table, behind a counting wrapper.
        let store: Arc<dyn object_store::ObjectStore> = {
            let p = tmp.path().join("remote");
            std::fs::create_dir_all(&p)?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(p)?)
        };
        let counting = Arc::new(CountingStore::new(store));
        let remote = Remote::from_store("origin", "file", counting.clone(), "bench");
        let main = ["main".to_string()];
        let opts = strata_remote::push::PushOptions::default();
        strata_remote::push::push(&repo, &remote, &main, &[], &opts, &NoProgress).await?;

        let (mut commit_ms, mut commit_kib, mut diff_ms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut push_ms, mut push_kib, mut push_calls) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..5u64 {
            let (secs, added) = one_row_upsert(&repo, tmp.path(), (n / 7) * (k + 1) % n).await?;
            commit_ms.push(secs * 1000.0);
            commit_kib.push(added as f64 / 1024.0);
            // A small diff: this one-row commit against the one before it.
            let (_, old) = repo.table("bench", Some("HEAD~1")).await?;
            let (_, new) = repo.table("bench", Some("HEAD")).await?;
            let t = Instant::now();
            let counts = strata_engine::diff::diff_tables(
                repo.objects(),
                Some(&old),
                Some(&new),
                &mut |_| Ok(()),
            )
            .await?;
            diff_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(counts.modified == 1, "the diff found {counts:?}");
            counting.counts.reset();
            let t = Instant::now();
            strata_remote::push::push(&repo, &remote, &main, &[], &opts, &NoProgress).await?;
            push_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            push_kib.push(counting.counts.bytes_put.load(Ordering::SeqCst) as f64 / 1024.0);
            let c = &counting.counts;
            push_calls.push(
                (c.gets.load(Ordering::SeqCst)
                    + c.puts.load(Ordering::SeqCst)
                    + c.heads.load(Ordering::SeqCst)
                    + c.lists.load(Ordering::SeqCst)) as f64,
            );
        }
        let line = format!(
            "{n:>11} | {:>8.2} | {:>6.2} | {:>13.1} | {:>10.1} | {:>9.1} | {:>10.1} | {:>9.1} | {:>10.0}",
            run.secs,
            scan,
            median(&mut commit_ms),
            median(&mut commit_kib),
            median(&mut diff_ms),
            median(&mut push_ms),
            median(&mut push_kib),
            median(&mut push_calls),
        );
        println!("{line}");
        lines.push(line);
    }
    println!("== growth (medians of 5 one-row changes; push to a folder remote)");
    println!(
        "       rows | import s | scan s | 1-row commit ms | commit KiB | diff ms | push ms | push KiB | push calls"
    );
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// This process's CPU time (user and system), in seconds.
fn cpu_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's name (which is in parentheses).
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// One-row upserts and their commits, in this process through the library (as the Python
/// package makes them): medians of the write, the commit, both, and their CPU.
async fn upsert_loop(dir: &Path, rows: u64, loops: usize) -> Result<()> {
    use strata::{Author, NoProgress, WriteMode, WriteOptions};
    let author = Author::parse("Bench <bench@localhost>")?;
    if !dir.join(".strata").exists() {
        let repo = strata::Repository::init(dir).await?;
        let batches: Vec<std::result::Result<RecordBatch, arrow_schema::ArrowError>> = (0..rows)
            .step_by(BATCH)
            .map(|s| {
                batch(s, (rows - s).min(BATCH as u64))
                    .map_err(|e| arrow_schema::ArrowError::ExternalError(e.into()))
            })
            .collect();
        let reader = arrow_array::RecordBatchIterator::new(batches, schema());
        let opts = WriteOptions {
            primary_key: Some(vec!["id".into()]),
            ..Default::default()
        };
        repo.write("bench", Box::new(reader), &opts, &NoProgress)
            .await?;
        repo.commit("import", Some(&author)).await?;
        settle()?;
    }
    let repo = strata::Repository::open(dir).await?;
    let opts = WriteOptions {
        mode: Some(WriteMode::Upsert),
        ..Default::default()
    };
    let (mut w, mut c, mut wc, mut cc, mut both) = (vec![], vec![], vec![], vec![], vec![]);
    // Values no earlier run wrote, so that every upsert changes its row.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dot = dir.join(".strata");
    let mut before = Some(file_states(&dot)?);
    let mut durable = Vec::new();
    for k in 0..loops as u64 {
        let row = (rows / 7) * (k + 1) % rows;
        let mut one = batch(row, 1)?;
        let changed: ArrayRef = Arc::new(StringArray::from(vec![format!("changed{run}-{k}")]));
        let mut columns = one.columns().to_vec();
        columns[1] = changed;
        one = RecordBatch::try_new(schema(), columns)?;
        let reader = arrow_array::RecordBatchIterator::new(vec![Ok(one)], schema());
        let (t0, c0) = (Instant::now(), cpu_secs());
        repo.write("bench", Box::new(reader), &opts, &NoProgress)
            .await?;
        let (t1, c1) = (Instant::now(), cpu_secs());
        repo.commit(&format!("one row {k}"), Some(&author)).await?;
        let (t2, c2) = (Instant::now(), cpu_secs());
        w.push((t1 - t0).as_secs_f64());
        c.push((t2 - t1).as_secs_f64());
        both.push((t2 - t0).as_secs_f64());
        wc.push(c1 - c0);
        cc.push(c2 - c1);
        if let Some(before) = before.take() {
            durable = durable_files(&before, &file_states(&dot)?);
        }
    }
    let ms = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1000.0
    };
    let floor = if durable.is_empty() {
        0.0
    } else {
        durable_writes_secs(dir, &durable, loops).await? * 1000.0
    };
    // CPU time is counted in ticks of 10 ms: its mean over the runs, not a median.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 * 1000.0;
    println!(
        "one-row upsert + commit in process, {loops} runs on {rows} rows: median {:.2} ms (write {:.2} ms, commit {:.2} ms); mean CPU write {:.1} ms, commit {:.1} ms",
        ms(&mut both),
        ms(&mut w),
        ms(&mut c),
        mean(&wc),
        mean(&cc)
    );
    if durable.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = durable
        .iter()
        .map(|(p, size)| format!("{} ({size} B)", p.display()))
        .collect();
    println!(
        "floor: the {} files it stores durably, written alone one after the other through the same store: median {floor:.2} ms (the upsert + commit takes {:.2}x that)\n  {}",
        durable.len(),
        ms(&mut both) / floor,
        listed.join("\n  ")
    );
    Ok(())
}

/// Each file under `dot` (by path below it), with its size, inode and modification time.
fn file_states(
    dot: &Path,
) -> Result<std::collections::HashMap<PathBuf, (u64, u64, std::time::SystemTime)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::HashMap::new();
    let mut dirs = vec![dot.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(dot)?.to_path_buf();
                out.insert(rel, (meta.len(), meta.ino(), meta.modified()?));
            }
        }
    }
    Ok(out)
}

/// The files an operation stored durably, by comparing the folder before and after it: those
/// created or replaced, with their sizes, except refs' `latest` hints (advisory, written
/// without a flush) and lock files.
fn durable_files(
    before: &std::collections::HashMap<PathBuf, (u64, u64, std::time::SystemTime)>,
    after: &std::collections::HashMap<PathBuf, (u64, u64, std::time::SystemTime)>,
) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<(PathBuf, u64)> = after
        .iter()
        .filter(|&(p, state)| before.get(p) != Some(state))
        .filter(|(p, _)| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name != "latest" && !name.ends_with(".lock") && name != "lock"
        })
        .map(|(p, (size, _, _))| (p.clone(), *size))
        .collect();
    out.sort();
    out
}

/// The median time of writing files of the sizes and at the places of `files` (their names
/// suffixed with the run's number), one after the other, each through the store a repository
/// uses (which flushes a file before it returns, or, for a file named by its object, before
/// the next write links anything), into folders that exist: what a protocol that must store
/// these files in order costs on this disk at the least.
async fn durable_writes_secs(dir: &Path, files: &[(PathBuf, u64)], loops: usize) -> Result<f64> {
    use object_store::{ObjectStore, PutMode, PutPayload};
    let tmp = tempfile::tempdir_in(dir)?;
    for (path, _) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(tmp.path().join(parent))?;
        }
    }
    let store = strata_engine::store::local_folder(tmp.path())?;
    settle()?;
    let mut times = Vec::with_capacity(loops);
    for k in 0..loops {
        let start = Instant::now();
        for (path, size) in files {
            let at = object_store::path::Path::from(format!("{}-{k}", path.display()));
            let bytes = PutPayload::from(vec![b'x'; *size as usize]);
            store.put_opts(&at, bytes, PutMode::Create.into()).await?;
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
