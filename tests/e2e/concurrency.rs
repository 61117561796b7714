//! Several strata processes in one checkout at once: commands that change the checkout's
//! state take turns, so none overwrites another's change.

use std::collections::BTreeSet;
use std::io::Write;

use crate::harness::*;

/// A CSV of `rows` rows with keys from `first`, for the table `t` (id, v).
fn rows_csv(dir: &Dir, name: &str, first: u64, rows: u64) -> std::path::PathBuf {
    let mut text = String::with_capacity(rows as usize * 16);
    text.push_str("id,v\n");
    for i in first..first + rows {
        text.push_str(&format!("{i},v{i}\n"));
    }
    dir.write(name, text)
}

/// The keys of table `t`, exported as CSV.
fn keys(dir: &Dir) -> BTreeSet<u64> {
    dir.export_csv("t", None)
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|k| k.parse().expect("a numeric key"))
        .collect()
}

/// Regression (hardening item 1): two `import --mode append` runs at once in one checkout
/// both exited 0 while the working state kept only one of them (last writer wins).
#[test]
fn two_imports_at_once_in_one_checkout_both_land() {
    const ROWS: u64 = 50_000;
    let dir = Dir::repo();
    let seed = rows_csv(&dir, "seed.csv", 0, 10);
    dir.strata(&[
        "import",
        "t",
        &seed.to_string_lossy(),
        "--primary-key",
        "id",
    ])
    .ok();
    for round in 0..3u64 {
        let base = 1_000_000 * (round + 1);
        let a = rows_csv(&dir, "a.csv", base, ROWS);
        let b = rows_csv(&dir, "b.csv", base + ROWS, ROWS);
        let mut children: Vec<_> = [a, b]
            .iter()
            .map(|f| {
                dir.command(&["import", "t", &f.to_string_lossy(), "--mode", "append"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("strata starts")
            })
            .collect();
        for child in children.drain(..) {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: an import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let have = keys(&dir);
        let missing: Vec<u64> = (base..base + 2 * ROWS)
            .filter(|k| !have.contains(k))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: rows of one import were lost, e.g. keys {missing:?}"
        );
    }
    let _ = std::io::stderr().flush();
}

/// Commits made by two processes at once, each after its own import, are both in history:
/// one of them waits for the other.
#[test]
fn two_commits_at_once_in_one_checkout_both_land() {
    let dir = Dir::repo();
    let seed = rows_csv(&dir, "seed.csv", 0, 10);
    dir.strata(&[
        "import",
        "t",
        &seed.to_string_lossy(),
        "--primary-key",
        "id",
    ])
    .ok();
    dir.strata(&["commit", "-m", "seed"]).ok();
    for round in 0..5u64 {
        let f = rows_csv(&dir, "r.csv", 100 + round, 1);
        dir.strata(&["import", "t", &f.to_string_lossy(), "--mode", "append"])
            .ok();
        let children: Vec<_> = ["x", "y"]
            .iter()
            .map(|m| {
                dir.command(&["commit", "-m", &format!("{m} {round}")])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("strata starts")
            })
            .collect();
        let outcomes: Vec<bool> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait").status.success())
            .collect();
        // One commit records the change; the other finds nothing left to commit. Never two
        // commits with the same parent, one of them lost from the branch.
        assert_eq!(
            outcomes.iter().filter(|ok| **ok).count(),
            1,
            "round {round}: {outcomes:?}"
        );
    }
    let log = dir.strata(&["log", "--oneline"]).ok();
    assert_eq!(log.stdout.lines().count(), 6, "{}", log.stdout);
}
