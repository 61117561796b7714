//! A tour of the Strata library: create a repository, write a table from Arrow batches,
//! commit, change a row and commit again, read the older version back, read a range of keys
//! with only some of the columns, and push to a remote in a folder.
//!
//! Run it with `cargo run -p strata --example tour`; it works in a temporary folder that is
//! removed at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator, RecordBatchReader, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use strata::{
    Author, KeyRange, KeyValue, NoProgress, ObjectId, PushOptions, Repository, ScanOptions,
    WriteMode, WriteOptions,
};

/// What the tour did, for whoever runs it to check.
#[derive(Debug)]
pub struct Tour {
    /// The first commit (five cities) and the second (Oslo's new population).
    pub commits: [ObjectId; 2],
    /// Rows of the table now.
    pub rows: u64,
    /// Oslo's population as the first commit recorded it, read back from that revision.
    pub oslo_before: i64,
    /// Oslo's population now.
    pub oslo_now: i64,
    /// The columns and rows of the key-range scan: (city, population).
    pub range_columns: Vec<String>,
    pub range_rows: Vec<(String, i64)>,
    /// The branches on the remote after the push, with the commit each names.
    pub remote_branches: Vec<(String, ObjectId)>,
}

/// The schema of the `cities` table: the city (its key), its country and its population.
fn cities_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("city", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("population", DataType::Int64, false),
    ]))
}

/// One Arrow batch of cities.
fn cities(rows: &[(&str, &str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        cities_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("the columns match the schema")
}

/// `Repository::write` reads any `RecordBatchReader`; this one hands over a list of batches.
fn reader(batches: Vec<RecordBatch>) -> Box<dyn RecordBatchReader + Send> {
    Box::new(RecordBatchIterator::new(
        batches.into_iter().map(Ok),
        cities_schema(),
    ))
}

/// The (city, population) pairs of batches that hold those two columns.
fn city_populations(batches: &[RecordBatch]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let city = b
            .column_by_name("city")
            .expect("a city column")
            .as_string::<i32>();
        let population = b
            .column_by_name("population")
            .expect("a population column")
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((city.value(i).to_string(), population.value(i)));
        }
    }
    out
}

/// Oslo's population in batches of the whole table.
fn oslo(batches: &[RecordBatch]) -> i64 {
    city_populations(batches)
        .into_iter()
        .find(|(city, _)| city == "oslo")
        .map(|(_, population)| population)
        .expect("oslo is in the table")
}

/// Runs the tour in `dir`: the repository goes in `dir/repo`, its remote in `dir/remote`.
pub async fn run(dir: &Path) -> strata::Result<Tour> {
    // A new repository. Every commit made through this handle names its author; without
    // one, commits take STRATA_AUTHOR from the environment.
    let repo = Repository::init(dir.join("repo"))
        .await?
        .with_author(Author::parse("Tour Guide <guide@example.com>")?);
    println!("Created a repository in {}", repo.root().display());

    // A table from Arrow batches. A new table needs its primary key; the rows need not be
    // sorted. The write changes the working tables only: nothing is recorded until a commit.
    let first = cities(&[
        ("rome", "IT", 2_748_109),
        ("amsterdam", "NL", 921_402),
        ("oslo", "NO", 709_037),
        ("berlin", "DE", 3_755_251),
        ("lisbon", "PT", 545_796),
    ]);
    let create = WriteOptions {
        primary_key: Some(vec!["city".into()]),
        ..Default::default()
    };
    let report = repo
        .write("cities", reader(vec![first]), &create, &NoProgress)
        .await?;
    println!(
        "Wrote table '{}': {} rows in {} chunks",
        report.table, report.rows, report.chunks_written
    );
    let c1 = repo.commit("Add five cities", None).await?;
    let branch = c1.branch.as_deref().unwrap_or("a detached HEAD");
    println!("Committed {} on {branch}", c1.id.short());

    // Change one row: an upsert replaces the row with the same key (and adds new keys).
    let upsert = WriteOptions {
        mode: Some(WriteMode::Upsert),
        ..Default::default()
    };
    let report = repo
        .write(
            "cities",
            reader(vec![cities(&[("oslo", "NO", 717_710)])]),
            &upsert,
            &NoProgress,
        )
        .await?;
    println!("Upserted: {} row updated", report.updated);
    let c2 = repo.commit("Oslo grew", None).await?;
    println!("Committed {}", c2.id.short());

    // Any revision can be read back: a commit id, a branch, a tag, HEAD~1...
    let now = repo
        .scan("cities", &ScanOptions::default())
        .await?
        .collect()
        .await?;
    let then = repo
        .scan(
            "cities",
            &ScanOptions {
                rev: Some("HEAD~1".into()),
                ..Default::default()
            },
        )
        .await?
        .collect()
        .await?;
    let (oslo_before, oslo_now) = (oslo(&then), oslo(&now));
    println!("Oslo's population: {oslo_before} at HEAD~1, {oslo_now} now");

    // A range of keys, with only two columns: only the chunks those keys reach are read,
    // and only the columns asked for are decoded. Keys `b` <= city < `m`:
    let range = repo
        .scan(
            "cities",
            &ScanOptions {
                columns: Some(vec!["city".into(), "population".into()]),
                ranges: vec![KeyRange::half_open(
                    KeyValue::from("b"),
                    KeyValue::from("m"),
                )],
                ..Default::default()
            },
        )
        .await?;
    let range_columns: Vec<String> = range
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let range_rows = city_populations(&range.collect().await?);
    println!("Cities from b to m: {range_rows:?}");

    // A remote in a folder (s3://, gs:// and az:// URLs work the same way), and a push of
    // the current branch to it. A push that the remote refuses (someone else moved the
    // branch) is not an error by itself: the report says so.
    let remote_dir = dir.join("remote");
    repo.add_remote("origin", &remote_dir.to_string_lossy(), &BTreeMap::new())
        .await?;
    let mut pushed = repo
        .push(
            &PushOptions {
                remote: Some("origin".into()),
                set_upstream: true,
                // The folder is new: the first push makes it a repository.
                create: true,
                ..Default::default()
            },
            &NoProgress,
        )
        .await?;
    if let Some(rejected) = pushed.error() {
        return Err(rejected);
    }
    println!(
        "Pushed to {}: {} objects, {} bytes",
        pushed.url, pushed.objects, pushed.bytes
    );
    let remote = repo.remote("origin").await?;
    let remote_branches: Vec<(String, ObjectId)> = remote
        .branches
        .into_iter()
        .map(|b| (b.name, b.commit))
        .collect();
    for (name, commit) in &remote_branches {
        println!("  origin/{name} is at {}", commit.short());
    }

    Ok(Tour {
        commits: [c1.id, c2.id],
        rows: repo.table("cities", None).await?.rows,
        oslo_before,
        oslo_now,
        range_columns,
        range_rows,
        remote_branches,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let tour = run(dir.path()).await?;
    println!(
        "Done: {} rows, commits {} and {}",
        tour.rows,
        tour.commits[0].short(),
        tour.commits[1].short()
    );
    Ok(())
}
