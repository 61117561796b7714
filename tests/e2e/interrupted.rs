//! An import killed part-way leaves the repository as it was before, and can be run again.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use crate::harness::*;

const BIG_ROWS: u64 = 2_000_000;

/// Writes a CSV with the columns of `people` and `rows` rows, keys 0.. in order.
fn write_big_csv(dir: &Dir, rows: u64) -> std::path::PathBuf {
    let path = dir.join("big.csv");
    let file = std::fs::File::create(&path).expect("the big file should be creatable");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"id,name,score\n").expect("write the header");
    let mut line = Vec::with_capacity(64);
    for i in 0..rows {
        line.clear();
        line.extend_from_slice(i.to_string().as_bytes());
        line.extend_from_slice(b",name");
        line.extend_from_slice(i.to_string().as_bytes());
        line.extend_from_slice(b",");
        line.extend_from_slice((i % 1000).to_string().as_bytes());
        line.extend_from_slice(b".5\n");
        w.write_all(&line).expect("write a row");
    }
    w.flush().expect("flush the big file");
    path
}

/// What people see of the repository: status, tables, history and the rows of `people`.
fn observe(dir: &Dir) -> Vec<String> {
    [
        &["status"][..],
        &["status", "--json"],
        &["table", "list"],
        &["table", "list", "--json"],
        &["log", "--oneline"],
        &["branch", "--json"],
        &["export", "people", "-"],
    ]
    .iter()
    .map(|args| {
        let out = dir.strata(args).ok();
        format!("$ strata {}\n{}", args.join(" "), out.stdout)
    })
    .collect()
}

#[test]
fn an_import_killed_part_way_leaves_the_previous_state_and_can_be_run_again() {
    let dir = Dir::with_people();
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n");
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    write_big_csv(&dir, BIG_ROWS);

    let before = observe(&dir);
    let state_before = dir.snapshot().only(&["refs", "local", "strata.json"]);

    let mut child = dir
        .command(&["import", "people", "big.csv", "--mode", "upsert"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the import should start");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let still_running = child
        .try_wait()
        .expect("the import's status should be readable")
        .is_none();
    assert!(
        still_running,
        "the import of {BIG_ROWS} rows finished within {:?}, before it could be interrupted",
        started.elapsed()
    );
    child.kill().expect("the import should be killable");
    let status = child.wait().expect("the killed import should be reaped");
    assert!(!status.success(), "the import was killed: {status:?}");

    let after = observe(&dir);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, b, "the interrupted import changed what strata shows");
    }
    state_before.assert_same(
        &dir.snapshot().only(&["refs", "local", "strata.json"]),
        "the interrupted import",
    );

    let rerun = dir
        .strata(&["import", "people", "big.csv", "--mode", "upsert"])
        .ok();
    assert_mentions(
        &rerun.stdout,
        &[
            &format!("{} rows in all", BIG_ROWS),
            "1999997 inserted",
            "3 updated",
        ],
    );
    let list = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert_eq!(list[0]["table"], "people");
    assert_eq!(list[0]["rows"], BIG_ROWS);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["tables"][0]["added"], BIG_ROWS - 3);
    dir.strata(&["commit", "-m", "big"]).ok();
    let head = dir
        .strata(&["export", "people", "-", "--rev", "HEAD~1"])
        .ok();
    assert_eq!(head.stdout, PEOPLE_CSV);

    // Ctrl-C stops an export at once, with status 130 and no file, whole or partial.
    let child = dir
        .command(&["export", "people", "out.csv"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the export should start");
    std::thread::sleep(Duration::from_millis(150));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill should run");
    assert!(
        kill.success(),
        "the export ended before it could be interrupted"
    );
    let out = child
        .wait_with_output()
        .expect("the export should be reaped");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("strata: interrupted"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("the folder should be listable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "out.csv" || n.starts_with(".strata-export-"))
        .collect();
    assert!(left.is_empty(), "the interrupted export left {left:?}");
}
