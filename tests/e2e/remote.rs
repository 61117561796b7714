//! Remotes end to end: clone, fetch, push and pull between separate `strata` processes that
//! share a `file://` remote (a folder in a temporary directory), including many writers at
//! once, pushes killed at random moments and a corrupted remote. The three big scenarios
//! (many nodes taking turns, eight racing pushers, killed pushes) also run on the cloud
//! servers: radosgw and LocalStack (S3), Azurite (Azure) and fake-gcs-server (GCS); see
//! `backends.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::backends::{Backend, Remote};
use crate::harness::*;

/// The header of the `items` table every test here uses.
pub(crate) const ITEMS_HEADER: &str = "id,owner,value";

/// The rows of `items` by key: (owner, value).
type Rows = BTreeMap<i64, (String, i64)>;

/// A folder in a temporary directory to serve as the shared remote (not created yet: the
/// first push creates it).
pub(crate) fn hub() -> (Dir, PathBuf) {
    let dir = Dir::empty();
    let path = dir.join("hub");
    (dir, path)
}

/// The `file:///abs/path` URL of a folder.
pub(crate) fn file_url(path: &Path) -> String {
    let text = path.to_str().expect("temporary paths are UTF-8");
    assert!(text.starts_with('/'), "expected an absolute path: {text}");
    format!("file://{text}")
}

/// A path as a command-line argument.
pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// The CSV text of `rows` with the `items` header.
pub(crate) fn items_csv(rows: &[(i64, &str, i64)]) -> String {
    let mut out = format!("{ITEMS_HEADER}\n");
    for (id, owner, value) in rows {
        out.push_str(&format!("{id},{owner},{value}\n"));
    }
    out
}

/// A repository with a committed `items` table holding `rows`.
fn repo_with_items(rows: &[(i64, &str, i64)]) -> Dir {
    let dir = Dir::repo();
    dir.write("items.csv", items_csv(rows));
    dir.strata(&["import", "items", "items.csv", "--primary-key", "id"])
        .ok();
    dir.strata(&["commit", "-m", "add items"]).ok();
    dir
}

/// A repository with `items` (three rows) pushed with `-u` to `remote` as `origin/main`.
fn published(remote: &Path) -> Dir {
    published_on(Backend::File, arg(remote))
}

/// A repository with `items` (three rows) pushed with `-u` to the remote `location` (a URL or
/// path) on `backend` as `origin/main`.
#[track_caller]
pub(crate) fn published_on(backend: Backend, location: &str) -> Dir {
    let dir = repo_with_items(&[(1, "seed", 1), (2, "seed", 2), (3, "seed", 3)]);
    backend
        .run(&dir, &["remote", "add", "origin", location])
        .ok();
    backend
        .run(&dir, &["push", "--create", "-u", "origin", "main"])
        .ok();
    dir
}

/// A fresh clone of `url` in a new temporary folder.
#[track_caller]
fn clone_of(url: &str) -> Dir {
    clone_on(Backend::File, url)
}

/// A fresh clone of `url` (a remote on `backend`) in a new temporary folder.
#[track_caller]
pub(crate) fn clone_on(backend: Backend, url: &str) -> Dir {
    let dir = Dir::empty();
    backend.run(&dir, &["clone", url, arg(dir.path())]).ok();
    dir
}

/// Upserts `rows` into `items` (a working change).
#[track_caller]
fn upsert(dir: &Dir, rows: &[(i64, &str, i64)]) {
    dir.write("change.csv", items_csv(rows));
    dir.strata(&["import", "items", "change.csv", "--mode", "upsert"])
        .ok();
}

/// Upserts `rows` and commits them with `message`; returns the new commit's id.
#[track_caller]
pub(crate) fn commit_rows(dir: &Dir, rows: &[(i64, &str, i64)], message: &str) -> String {
    upsert(dir, rows);
    dir.strata(&["commit", "-m", message]).ok();
    dir.rev_id("HEAD")
}

/// The rows of an `items` export, by key.
#[track_caller]
fn parse_items(csv: &str) -> Rows {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(ITEMS_HEADER),
        "unexpected export:\n{csv}"
    );
    let mut rows = Rows::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 3, "unexpected export line {line:?}");
        let id: i64 = cells[0].parse().expect("the id column holds integers");
        let value: i64 = cells[2].parse().expect("the value column holds integers");
        let before = rows.insert(id, (cells[1].to_string(), value));
        assert!(before.is_none(), "key {id} exported twice:\n{csv}");
    }
    rows
}

/// The rows of the working `items` table.
#[track_caller]
fn items(dir: &Dir) -> Rows {
    parse_items(&dir.export_csv("items", None))
}

/// The ids of the commits `log --json` shows from `rev` (default HEAD), newest first.
#[track_caller]
pub(crate) fn history(dir: &Dir, rev: Option<&str>) -> Vec<String> {
    let mut args = vec!["log", "--json"];
    args.extend(rev);
    dir.strata(&args)
        .ok()
        .json_lines()
        .iter()
        .map(|c| {
            c["id"]
                .as_str()
                .expect("a commit id is a string")
                .to_string()
        })
        .collect()
}

/// The branches of `origin` as `remote show origin --json` reads them from the remote now.
#[track_caller]
fn remote_branches(dir: &Dir) -> BTreeMap<String, String> {
    remote_branches_on(Backend::File, dir)
}

/// [`remote_branches`] for an `origin` on `backend`.
#[track_caller]
pub(crate) fn remote_branches_on(backend: Backend, dir: &Dir) -> BTreeMap<String, String> {
    let out = backend
        .run(dir, &["remote", "show", "origin", "--json"])
        .ok();
    let shown = out.json();
    shown["branches"]
        .as_array()
        .expect("remote show lists branches")
        .iter()
        .map(|b| {
            (
                b["name"].as_str().expect("a branch name").to_string(),
                b["commit"].as_str().expect("a commit id").to_string(),
            )
        })
        .collect()
}

/// Pushes (to the upstream); a push rejected because the remote moved is followed by a pull
/// and another push, at most `tries` times. Returns how many pushes were rejected.
#[track_caller]
fn push_until_accepted(backend: Backend, dir: &Dir, tries: usize) -> usize {
    for attempt in 0..tries {
        let out = backend.run(dir, &["push"]);
        if out.status.success() {
            return attempt;
        }
        assert!(
            out.stderr.contains("rejected"),
            "the push failed other than by a rejection:\n{out:?}"
        );
        backend.run(dir, &["pull"]).ok();
    }
    panic!(
        "the push was rejected {tries} times in a row (remote on {})",
        backend.name()
    );
}

/// Asserts a transfer command failed as refused commands do (exit status 1, nothing on
/// standard output, exactly one `strata: error: ...` line, last on standard error; the lines
/// before it are the per-ref report, as git prints it). Returns the error line.
#[track_caller]
fn failure_line(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit status 1:\n{out:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "expected nothing on stdout:\n{out:?}"
    );
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("strata: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{out:?}");
    assert_eq!(
        out.stderr.lines().last(),
        Some(errors[0]),
        "expected the error line last:\n{out:?}"
    );
    errors[0].to_string()
}

/// `status --json`'s upstream object.
#[track_caller]
fn upstream(dir: &Dir) -> serde_json::Value {
    dir.strata(&["status", "--json"]).ok().json()["upstream"].clone()
}

/// A deterministic pseudo-random generator (SplitMix64).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------------
// Many nodes exchanging changes, on each backend

#[test]
fn the_field_failing_case_local_sees_node1_pushes_after_pulling_on_a_folder() {
    the_field_failing_case(Backend::File);
}

#[test]
fn the_field_failing_case_local_sees_node1_pushes_after_pulling_on_radosgw() {
    the_field_failing_case(Backend::Radosgw);
}

#[test]
fn the_field_failing_case_local_sees_node1_pushes_after_pulling_on_localstack() {
    the_field_failing_case(Backend::LocalStack);
}

#[test]
fn the_field_failing_case_local_sees_node1_pushes_after_pulling_on_azurite() {
    the_field_failing_case(Backend::Azurite);
}

#[test]
fn the_field_failing_case_local_sees_node1_pushes_after_pulling_on_gcs() {
    the_field_failing_case(Backend::Gcs);
}

/// Three nodes share a remote on `backend`: `local` publishes, `node1` pushes, `local` pulls
/// and must see node1's rows; then rounds (twenty on a folder: [`Backend::rounds`]) of each
/// node pulling, changing and pushing.
fn the_field_failing_case(backend: Backend) {
    let started = Instant::now();
    let remote = backend.remote("three-nodes");
    let url = &remote.url;
    let mut model = Rows::new();

    // `local` publishes a table (a folder remote added as a plain path).
    let seed: Vec<(i64, &str, i64)> = (1..=5).map(|i| (i, "local", i * 10)).collect();
    let local = repo_with_items(&seed);
    for (id, owner, value) in &seed {
        model.insert(*id, (owner.to_string(), *value));
    }
    backend
        .run(&local, &["remote", "add", "origin", remote.plain()])
        .ok();
    backend.run(&local, &["push", "--create", "-u"]).ok();

    // `node1` clones (by URL), appends rows and pushes.
    let node1 = clone_on(backend, url);
    assert_eq!(items(&node1), model, "node1's clone has local's rows");
    let appended: Vec<(i64, &str, i64)> = (6..=8).map(|i| (i, "node1", i * 10)).collect();
    node1.write("more.csv", items_csv(&appended));
    node1
        .strata(&["import", "items", "more.csv", "--mode", "append"])
        .ok();
    node1.strata(&["commit", "-m", "node1 appends rows"]).ok();
    backend.run(&node1, &["push"]).ok();
    for (id, owner, value) in &appended {
        model.insert(*id, (owner.to_string(), *value));
    }
    let node1_export = node1.export_csv("items", None);

    // `node2` clones (a folder by plain path) and sees every row.
    let node2 = clone_on(backend, remote.plain());
    assert_eq!(node2.export_csv("items", None), node1_export);

    // `local` pulls and must see node1's rows.
    let out = backend.run(&local, &["pull"]).ok();
    assert_mentions(&out.stdout, &["Fast-forward"]);
    assert_eq!(
        local.export_csv("items", None),
        node1_export,
        "after pulling, local must see node1's rows"
    );
    assert_eq!(local.rev_id("HEAD"), node1.rev_id("HEAD"));

    // Rounds of each node in turn: pull, add and change rows, commit, push.
    let nodes = [("local", &local), ("node1", &node1), ("node2", &node2)];
    let mut owned: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut rejections = 0;
    let rounds = backend.rounds(20);
    for round in 0..rounds {
        for (n, (name, node)) in nodes.iter().enumerate() {
            backend.run(node, &["pull"]).ok();
            assert_eq!(
                items(node),
                model,
                "{name} after pulling in round {round} should see every change so far"
            );
            let mut change: Vec<(i64, &str, i64)> = Vec::new();
            for k in 0..2 {
                let id = 1000 + round * 100 + n as i64 * 10 + k;
                change.push((id, name, round));
            }
            if let Some(mine) = owned.get(name) {
                let id = mine[(round as usize * 7) % mine.len()];
                change.push((id, name, 10_000 + round));
            }
            commit_rows(node, &change, &format!("{name} round {round}"));
            rejections += push_until_accepted(backend, node, 10);
            for (id, owner, value) in &change {
                model.insert(*id, (owner.to_string(), *value));
                let list = owned.entry(name).or_default();
                if !list.contains(id) {
                    list.push(*id);
                }
            }
        }
    }
    assert_eq!(rejections, 0, "nodes taking turns should never be rejected");

    for (_, node) in &nodes {
        backend.run(node, &["pull"]).ok();
    }
    let exports: Vec<String> = nodes
        .iter()
        .map(|(_, n)| n.export_csv("items", None))
        .collect();
    assert_eq!(exports[0], exports[1], "local and node1 differ");
    assert_eq!(exports[0], exports[2], "local and node2 differ");
    assert_eq!(
        parse_items(&exports[0]),
        model,
        "every row ever added, with its last value"
    );
    let logs: Vec<String> = nodes
        .iter()
        .map(|(_, n)| n.strata(&["log", "--json"]).ok().stdout)
        .collect();
    assert_eq!(logs[0], logs[1], "local and node1 have different histories");
    assert_eq!(logs[0], logs[2], "local and node2 have different histories");
    let heads: Vec<String> = nodes.iter().map(|(_, n)| n.rev_id("HEAD")).collect();
    assert_eq!(heads[0], heads[1]);
    assert_eq!(heads[0], heads[2]);
    let out = backend.run(&node2, &["fsck", "--remote", "origin"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    eprintln!(
        "three nodes on {}: {} pushes in {:?}",
        backend.name(),
        3 * rounds,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Eight processes racing to push one branch, on each backend

#[test]
fn eight_processes_pushing_to_one_branch_lose_no_commit_on_a_folder() {
    eight_processes_pushing_to_one_branch(Backend::File);
}

#[test]
fn eight_processes_pushing_to_one_branch_lose_no_commit_on_radosgw() {
    eight_processes_pushing_to_one_branch(Backend::Radosgw);
}

#[test]
fn eight_processes_pushing_to_one_branch_lose_no_commit_on_azurite() {
    eight_processes_pushing_to_one_branch(Backend::Azurite);
}

#[test]
fn eight_processes_pushing_to_one_branch_lose_no_commit_on_gcs() {
    eight_processes_pushing_to_one_branch(Backend::Gcs);
}

// Not on LocalStack: its create-only put of a brand-new key is not atomic (two racing ref
// updates can both be acknowledged; see localstack/README.md), so "exactly one pusher wins"
// cannot be asserted there. Strata's probe is what decides whether to trust such a store.

/// Eight clones of a remote on `backend` each commit rows one at a time (six on a folder:
/// [`Backend::rounds`]), pushing after every commit and pulling when rejected; no
/// acknowledged commit may be lost.
fn eight_processes_pushing_to_one_branch(backend: Backend) {
    const WORKERS: i64 = 8;
    let commits = backend.rounds(6);
    const TRIES: usize = 200;
    let started = Instant::now();
    let remote = backend.remote("eight-pushers");
    let url = &remote.url;
    let seed = published_on(backend, url);
    let clones: Vec<Dir> = (0..WORKERS).map(|_| clone_on(backend, url)).collect();

    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(t, dir)| {
                s.spawn(move || {
                    let owner = format!("w{t}");
                    let mut acknowledged = Vec::new();
                    let mut rejections = 0;
                    for i in 0..commits {
                        let key = 1000 + t as i64 * 100 + i;
                        let made = commit_rows(
                            dir,
                            &[(key, &owner, i)],
                            &format!("worker {t} commit {i}"),
                        );
                        rejections += push_until_accepted(backend, dir, TRIES);
                        // Acknowledged: the commit made must be in the remote's history (a
                        // push may land it in another writer's merge).
                        acknowledged.push(made);
                    }
                    (acknowledged, rejections)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("a worker thread panicked (see its message above)")
            })
            .collect()
    });
    let pushing = started.elapsed();

    let acknowledged: Vec<&String> = results.iter().flat_map(|(a, _)| a).collect();
    let rejections: usize = results.iter().map(|(_, r)| r).sum();
    assert_eq!(acknowledged.len(), (WORKERS * commits) as usize);
    let distinct: BTreeSet<&String> = acknowledged.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        acknowledged.len(),
        "two workers made the same commit"
    );

    let fresh = clone_on(backend, url);
    let ids: BTreeSet<String> = history(&fresh, None).into_iter().collect();
    let lost: Vec<&&String> = acknowledged.iter().filter(|a| !ids.contains(**a)).collect();
    let why = if backend.create_only_is_atomic() {
        String::new()
    } else {
        format!(
            " ({} does not make create-only puts of a new key atomic: two racing ref \
             updates were probably both acknowledged)",
            backend.name()
        )
    };
    assert!(
        lost.is_empty(),
        "acknowledged pushes missing from the remote's history on {}{why}: {lost:?}",
        backend.name()
    );
    let rows = items(&fresh);
    assert_eq!(
        rows.len(),
        3 + (WORKERS * commits) as usize,
        "rows on {}{why}: {rows:?}",
        backend.name()
    );
    for t in 0..WORKERS {
        for i in 0..commits {
            let key = 1000 + t * 100 + i;
            assert_eq!(
                rows.get(&key),
                Some(&(format!("w{t}"), i)),
                "row {key}{why}"
            );
        }
    }
    let out = backend.run(&fresh, &["fsck", "--remote", "origin"]).ok();
    assert_mentions(&out.stdout, &["no problems"]);
    backend.run(&seed, &["pull"]).ok();
    assert_eq!(seed.rev_id("HEAD"), fresh.rev_id("HEAD"));
    eprintln!(
        "eight writers on {}: {} commits pushed in {pushing:?} with {rejections} rejections; \
         {:?} in all",
        backend.name(),
        acknowledged.len(),
        started.elapsed()
    );
}

/// Writes `items.csv` with `rows` rows, keys 0.. in order.
/// A repository with a committed `items` table of `rows` rows in chunks of about `chunk_rows`,
/// pushed with `-u` to `url` on `backend` as `origin/main`.
#[track_caller]
pub(crate) fn pushed_items(backend: Backend, url: &str, rows: i64, chunk_rows: u32) -> Dir {
    let local = Dir::repo();
    write_items_csv(&local, rows);
    let chunk_rows = chunk_rows.to_string();
    local
        .strata(&[
            "import",
            "items",
            "items.csv",
            "--primary-key",
            "id",
            "--chunk-rows",
            &chunk_rows,
        ])
        .ok();
    local
        .strata(&["commit", "-m", &format!("{rows} items")])
        .ok();
    backend.run(&local, &["remote", "add", "origin", url]).ok();
    backend
        .run(&local, &["push", "--create", "-u", "origin", "main"])
        .ok();
    local
}

fn write_items_csv(dir: &Dir, rows: i64) -> PathBuf {
    let path = dir.join("items.csv");
    let file = std::fs::File::create(&path).expect("the CSV should be creatable");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "{ITEMS_HEADER}").expect("write the header");
    for i in 0..rows {
        writeln!(w, "{i},owner{},{}", i % 97, i * 3).expect("write a row");
    }
    w.flush().expect("flush the CSV");
    path
}

// ---------------------------------------------------------------------------------------------
// Pushes killed at random moments, on each backend

#[test]
fn killing_push_processes_at_random_moments_leaves_the_remote_consistent_on_a_folder() {
    killing_push_processes_at_random_moments(Backend::File, 20);
}

#[test]
fn killing_push_processes_at_random_moments_leaves_the_remote_consistent_on_radosgw() {
    killing_push_processes_at_random_moments(Backend::Radosgw, CLOUD_KILLS);
}

#[test]
fn killing_push_processes_at_random_moments_leaves_the_remote_consistent_on_localstack() {
    killing_push_processes_at_random_moments(Backend::LocalStack, EMULATOR_KILLS);
}

#[test]
fn killing_push_processes_at_random_moments_leaves_the_remote_consistent_on_azurite() {
    killing_push_processes_at_random_moments(Backend::Azurite, EMULATOR_KILLS);
}

#[test]
fn killing_push_processes_at_random_moments_leaves_the_remote_consistent_on_gcs() {
    killing_push_processes_at_random_moments(Backend::Gcs, EMULATOR_KILLS);
}

/// How many pushes are killed on each cloud server (20 on a folder): fewer, because there every
/// iteration's fsck and clone take a few times longer.
const CLOUD_KILLS: u64 = 10;

/// On LocalStack and the Azure and GCS emulators: fewer again, to keep the whole test run
/// within its time (they share the machine's cores with the tests); the kill points are
/// random, so the runs on five backends together cover more of them.
const EMULATOR_KILLS: u64 = 6;

/// Pushes of 300 changed rows of a 25,000-row table (about 50 chunks) to a remote on
/// `backend` are killed `kills` times at random moments; after each, the remote passes fsck
/// and a fresh clone holds exactly the rows of the commit it checked out.
fn killing_push_processes_at_random_moments(backend: Backend, kills: u64) {
    // About 50 chunks of 512 rows: what makes a push's upload take long enough to be killed
    // part-way is its number of objects; the rows are what every fsck, clone and export of
    // the test reads.
    const ROWS: i64 = 25_000;
    let started = Instant::now();
    let remote: Remote = backend.remote("killed-pushes");
    let url = &remote.url;
    let local = pushed_items(backend, url, ROWS, 512);
    // One push like those below (300 rows changed, so every chunk) is timed. Each kill then
    // falls at a random moment between the latest delay known to fall before the upload and
    // the earliest known to fall after the branch moved (at first: none, and twice the timed
    // push). The bracket narrows onto the upload whatever the backend's speed and the machine's
    // load, and widens again when a noisy run contradicts it.
    let spread = |owner: &str, value: i64, offset: i64| -> String {
        let rows: Vec<(i64, &str, i64)> = (0..300)
            .map(|j| ((j * (ROWS / 300) + offset) % ROWS, owner, value))
            .collect();
        commit_rows(&local, &rows, &format!("{owner}: 300 rows"))
    };
    spread("timed", -1, 7);
    let timed = Instant::now();
    backend.run(&local, &["push"]).ok();
    let first_window_ms = (2 * timed.elapsed().as_millis() as u64).clamp(20, 3000);
    let (mut low_ms, mut high_ms) = (0u64, first_window_ms);

    // How the kills fell: before any upload, during the upload (the branch not moved) and
    // after the push finished. On a folder "during" means objects were stored; on S3, where
    // the test does not list objects, it means the push had logged that its upload began.
    // At least `kills` pushes are killed, and more (up to three times as many) until one
    // kill has landed during an upload.
    let (mut early, mut during, mut finished) = (0, 0, 0);
    for iteration in 0..kills * 3 {
        if iteration >= kills && during > 0 {
            break;
        }
        let mut rng = SplitMix(0x5EED_0000 + iteration);
        let offset = (rng.next() % 300) as i64;
        let tip = spread(&format!("kill{iteration}"), iteration as i64, offset);
        let files_before = remote.file_count();

        let mut child = backend
            .command(&local, &["-v", "push"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the push should start");
        let delay_ms = low_ms + rng.next() % (high_ms - low_ms).max(1);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("the push should be killable");
        let out = child
            .wait_with_output()
            .expect("the killed push should be reaped");
        let moved = remote_branches_on(backend, &local)["main"] == tip;
        assert!(
            moved || !out.status.success(),
            "iteration {iteration} on {}: the push reported success but the branch did not move",
            backend.name()
        );
        let upload_began = match (files_before, remote.file_count()) {
            (Some(before), Some(after)) => after > before,
            _ => String::from_utf8_lossy(&out.stderr).contains("uploading"),
        };
        if moved {
            finished += 1;
            high_ms = delay_ms.max(1);
            if low_ms + 5 >= high_ms {
                low_ms = high_ms / 2;
            }
        } else if upload_began {
            during += 1;
        } else {
            early += 1;
            low_ms = delay_ms;
            if high_ms <= low_ms + 5 {
                high_ms = (low_ms + low_ms / 2).clamp(low_ms + 20, 6000);
            }
        }

        let out = backend.run(&local, &["fsck", "--remote", "origin"]).ok();
        assert_mentions(&out.stdout, &["no problems"]);
        let fresh = clone_on(backend, url);
        fresh.strata(&["fsck"]).ok();
        let at = fresh.rev_id("HEAD");
        assert_eq!(
            fresh.export_csv("items", None),
            local.export_csv("items", Some(&at)),
            "iteration {iteration} on {}: the clone's rows differ from the commit it checked out",
            backend.name()
        );
    }

    // The test is about kills in the middle of an upload: some must have landed there.
    assert!(
        during > 0,
        "no kill on {} landed during an upload ({early} before it, {finished} after the branch \
         moved): the test did not test what it is about",
        backend.name()
    );
    backend.run(&local, &["push"]).ok();
    let fresh = clone_on(backend, url);
    assert_eq!(fresh.rev_id("HEAD"), local.rev_id("HEAD"));
    assert_eq!(
        fresh.export_csv("items", None),
        local.export_csv("items", None)
    );
    fresh.strata(&["fsck"]).ok();
    eprintln!(
        "killed pushes on {} (first window {first_window_ms} ms, last {low_ms}-{high_ms} ms): \
         {early} before any upload, {during} during the upload, {finished} after the branch moved; {:?} in all",
        backend.name(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Push

#[test]
fn a_push_that_is_not_a_fast_forward_is_rejected_with_advice_to_pull_and_changes_nothing() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");

    let before = Snapshot::of(&remote);
    let line = failure_line(b.strata(&["push", "--no-merge"]));
    assert_mentions(
        &line,
        &["rejected", "main", "non-fast-forward", "strata pull"],
    );
    before.assert_same(&Snapshot::of(&remote), "a rejected push");
    assert_eq!(remote_branches(&b)["main"], a.rev_id("HEAD"));
}

#[test]
fn a_forced_push_overwrites_the_remote_branch() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    b.strata(&["push", "--no-merge"]).fails();

    let out = b.strata(&["push", "--force"]).ok();
    assert_mentions(&out.stderr, &["forced update"]);
    assert_eq!(remote_branches(&b)["main"], mine);
    assert_eq!(b.rev_id("origin/main"), mine);
    let fresh = clone_of(&file_url(&remote));
    assert_eq!(items(&fresh), items(&b));
}

#[test]
fn a_push_with_lease_succeeds_when_the_remote_is_where_origin_says() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    // Rewrite the last commit.
    a.strata(&["reset", "--hard", "HEAD~1"]).ok();
    let rewritten = commit_rows(&a, &[(10, "a", 2)], "a adds 10, again");
    a.strata(&["push"]).fails();

    let out = a.strata(&["push", "--force-with-lease"]).ok();
    assert_mentions(&out.stderr, &["forced update"]);
    assert_eq!(remote_branches(&a)["main"], rewritten);
}

#[test]
fn a_push_with_lease_is_rejected_when_someone_else_pushed_meanwhile() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let base = b.rev_id("origin/main");
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    // b commits without having fetched a's push.
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");

    let before = Snapshot::of(&remote);
    let line = failure_line(b.strata(&["push", "--force-with-lease"]));
    assert_mentions(&line, &["rejected", "main", "stale lease"]);
    let expected = format!("--force-with-lease=main:{base}");
    let line = failure_line(b.strata(&["push", &expected]));
    assert_mentions(&line, &["rejected", "stale lease"]);
    before.assert_same(&Snapshot::of(&remote), "a push with a stale lease");
    assert_eq!(remote_branches(&b)["main"], theirs);

    // After a fetch, naming where the remote really is lets the push through.
    b.strata(&["fetch"]).ok();
    let current = format!("--force-with-lease=main:{theirs}");
    b.strata(&["push", &current]).ok();
    assert_eq!(remote_branches(&b)["main"], b.rev_id("HEAD"));
}

#[test]
fn a_push_with_lease_accepts_a_full_commit_id_that_was_never_fetched() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(20, "b", 1)], "b adds 20");

    // The lease compares ids only: the expected commit need not be present locally.
    let lease = format!("--force-with-lease=main:{theirs}");
    b.strata(&["push", &lease]).ok();
    assert_eq!(remote_branches(&b)["main"], mine);
}

#[test]
fn a_push_with_lease_accepts_the_remote_and_branch_after_the_flag() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    a.strata(&["reset", "--hard", "HEAD~1"]).ok();
    let rewritten = commit_rows(&a, &[(10, "a", 2)], "a adds 10, again");

    a.strata(&["push", "--force-with-lease", "origin", "main"])
        .ok();
    assert_eq!(remote_branches(&a)["main"], rewritten);
}

#[test]
fn pushing_with_delete_removes_the_remote_branch_and_fetch_prune_removes_the_tracking_ref() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    a.strata(&["branch", "feature"]).ok();
    a.strata(&["push", "origin", "feature"]).ok();
    let b = clone_of(&file_url(&remote));
    assert_eq!(b.rev_id("origin/feature"), a.rev_id("feature"));

    let out = a.strata(&["push", "--delete", "feature"]).ok();
    assert_mentions(&out.stderr, &["[deleted]", "feature"]);
    let branches = remote_branches(&a);
    assert_eq!(
        branches.keys().collect::<Vec<_>>(),
        ["main"],
        "the remote still lists feature"
    );
    a.strata(&["log", "-n", "1", "origin/feature"]).fails();
    a.strata(&["log", "-n", "1", "feature"]).ok();

    // A fetch without --prune keeps the tracking ref; with --prune it goes.
    b.strata(&["fetch"]).ok();
    b.strata(&["log", "-n", "1", "origin/feature"]).ok();
    let out = b.strata(&["fetch", "--prune"]).ok();
    assert_mentions(&out.stderr, &["[deleted]", "origin/feature"]);
    b.strata(&["log", "-n", "1", "origin/feature"]).fails();
    b.strata(&["log", "-n", "1", "origin/main"]).ok();

    // Deleting a branch the remote does not have is refused.
    let line = failure_line(a.strata(&["push", "--delete", "feature"]));
    assert_mentions(&line, &["feature", "does not exist"]);
}

#[test]
fn pushing_with_tags_publishes_tags_that_a_clone_gets() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    a.strata(&["tag", "v1"]).ok();
    let tagged = a.rev_id("v1");
    let b = clone_of(&file_url(&remote));

    let out = a.strata(&["push", "--tags"]).ok();
    assert_mentions(&out.stderr, &["[new tag]", "v1"]);
    let fresh = clone_of(&file_url(&remote));
    let tags = fresh.strata(&["tag", "--json"]).ok().json_lines();
    assert_eq!(tags.len(), 1, "tags: {tags:?}");
    assert_eq!(tags[0]["name"], "v1");
    assert_eq!(tags[0]["commit"].as_str(), Some(tagged.as_str()));
    let out = b.strata(&["fetch"]).ok();
    assert_mentions(&out.stderr, &["[new tag]", "v1"]);
    assert_eq!(b.rev_id("v1"), tagged);
}

#[test]
fn an_atomic_push_of_two_branches_where_one_is_rejected_moves_neither() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    a.strata(&["branch", "feature"]).ok();
    a.strata(&["push", "origin", "feature"]).ok();
    // b moves feature on the remote.
    let b = clone_of(&file_url(&remote));
    b.strata(&["checkout", "-b", "feature", "origin/feature"])
        .ok();
    commit_rows(&b, &[(20, "b", 1)], "b on feature");
    b.strata(&["push", "origin", "feature"]).ok();
    // a commits on both branches: main is a fast-forward, feature is not.
    commit_rows(&a, &[(10, "a", 1)], "a on main");
    a.strata(&["checkout", "feature"]).ok();
    commit_rows(&a, &[(30, "a", 1)], "a on feature");

    let branches_before = remote_branches(&a);
    let refs_before = Snapshot::of(&remote.join("refs"));
    let line = failure_line(a.strata(&["push", "--atomic", "origin", "main", "feature"]));
    assert_mentions(&line, &["atomic", "feature"]);
    refs_before.assert_same(&Snapshot::of(&remote.join("refs")), "an atomic push");
    assert_eq!(remote_branches(&a), branches_before);

    // Without --atomic, main moves and feature is rejected.
    a.strata(&["push", "origin", "main", "feature"]).fails();
    let after = remote_branches(&a);
    assert_eq!(after["main"], a.rev_id("main"));
    assert_eq!(after["feature"], branches_before["feature"]);
}

// ---------------------------------------------------------------------------------------------
// Pull

#[test]
fn pull_ff_only_refuses_diverged_history_and_changes_no_local_branch() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    let rows = items(&b);

    let line = failure_line(b.strata(&["pull", "--ff-only"]));
    assert_mentions(&line, &["fast-forward"]);
    assert_eq!(b.rev_id("HEAD"), mine);
    assert_eq!(items(&b), rows);
    let status = b.strata(&["status", "--json"]).ok().json();
    assert!(status["merging"].is_null(), "status: {status}");
}

#[test]
fn pull_fast_forwards_a_branch_that_is_only_behind() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    let theirs = commit_rows(&a, &[(11, "a", 1)], "a adds 11");
    a.strata(&["push"]).ok();

    let out = b.strata(&["pull"]).ok();
    assert_mentions(&out.stdout, &["Fast-forward"]);
    assert_eq!(b.rev_id("HEAD"), theirs);
    assert_eq!(items(&b), items(&a));
    let out = b.strata(&["pull"]).ok();
    assert_mentions(&out.stdout, &["Already up to date"]);
}

#[test]
fn pull_merges_diverged_history_and_the_merge_can_be_pushed() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(20, "b", 1), (1, "b", 100)], "b adds 20, changes 1");

    let out = b.strata(&["pull"]).ok();
    assert_mentions(&out.stdout, &["Merged", "origin/main"]);
    let head = &b.strata(&["log", "--json", "-n", "1"]).ok().json_lines()[0];
    let parents: Vec<&str> = head["parents"]
        .as_array()
        .expect("parents are a list")
        .iter()
        .map(|p| p.as_str().expect("a parent id"))
        .collect();
    assert_eq!(parents, [mine.as_str(), theirs.as_str()]);
    let rows = items(&b);
    assert_eq!(rows.get(&10), Some(&("a".to_string(), 1)));
    assert_eq!(rows.get(&20), Some(&("b".to_string(), 1)));
    assert_eq!(rows.get(&1), Some(&("b".to_string(), 100)));
    assert_eq!(rows.len(), 5);

    b.strata(&["push"]).ok();
    let fresh = clone_of(&file_url(&remote));
    assert_eq!(fresh.rev_id("HEAD"), b.rev_id("HEAD"));
    assert_eq!(items(&fresh), rows);
}

#[test]
fn pull_fast_forwards_onto_a_pushed_merge_that_contains_the_local_head() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    b.strata(&["pull"]).ok();
    b.strata(&["push"]).ok();
    let merge = b.rev_id("HEAD");
    assert!(
        history(&b, None).contains(&theirs),
        "b's merge should contain a's commit"
    );

    // a's head is an ancestor of the remote's: pulling is a fast-forward.
    a.strata(&["fetch"]).ok();
    let up = upstream(&a);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(2))
    );
    let out = a.strata(&["pull", "--ff-only"]).ok();
    assert_mentions(&out.stdout, &["Fast-forward"]);
    assert_eq!(a.rev_id("HEAD"), merge);
    assert_eq!(items(&a), items(&b));
}

#[test]
fn pull_does_not_make_a_merge_commit_when_the_remote_already_contains_the_local_head() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    b.strata(&["pull"]).ok();
    b.strata(&["push"]).ok();
    let merge = b.rev_id("HEAD");

    let out = a.strata(&["pull"]).ok();
    assert_mentions(&out.stdout, &["Fast-forward"]);
    assert_eq!(
        a.rev_id("HEAD"),
        merge,
        "pull made a commit the remote does not need"
    );
    let up = upstream(&a);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn pull_merges_cleanly_when_only_this_side_changed_a_row_again() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(1, "a", 2)], "a changes 1");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    b.strata(&["pull"]).ok();
    b.strata(&["push"]).ok();
    // The remote's merge holds a's first change of row 1 untouched; a changes it again.
    commit_rows(&a, &[(1, "a", 3)], "a changes 1 again");

    a.strata(&["pull"]).ok();
    let rows = items(&a);
    assert_eq!(rows.get(&1), Some(&("a".to_string(), 3)));
    assert_eq!(rows.get(&20), Some(&("b".to_string(), 1)));
}

// ---------------------------------------------------------------------------------------------
// Status

#[test]
fn status_shows_ahead_and_behind_after_commits_and_after_fetch() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let up = upstream(&a);
    assert_eq!(up["name"], "origin/main");
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(up["gone"], false);

    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    commit_rows(&a, &[(11, "a", 1)], "a adds 11");
    let up = upstream(&a);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(2), Some(0))
    );
    let text = a.strata(&["status"]).ok().stdout;
    assert_mentions(&text, &["ahead of 'origin/main' by 2 commits"]);

    a.strata(&["push"]).ok();
    let up = upstream(&a);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(0))
    );
    assert_mentions(
        &a.strata(&["status"]).ok().stdout,
        &["up to date with 'origin/main'"],
    );

    // b only learns of a's commits when it fetches.
    let up = upstream(&b);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(0))
    );
    b.strata(&["fetch"]).ok();
    let up = upstream(&b);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(0), Some(2))
    );
    assert_mentions(
        &b.strata(&["status"]).ok().stdout,
        &["behind 'origin/main' by 2 commits"],
    );
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    let up = upstream(&b);
    assert_eq!(
        (up["ahead"].as_u64(), up["behind"].as_u64()),
        (Some(1), Some(2))
    );
    assert_mentions(&b.strata(&["status"]).ok().stdout, &["diverged"]);
}

// ---------------------------------------------------------------------------------------------
// Clone

#[test]
fn cloning_a_remote_without_branches_gives_an_empty_repository_that_can_push() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    a.strata(&["push", "--delete", "main"]).ok();
    assert!(remote_branches(&a).is_empty());

    let c = Dir::empty();
    let out = c.strata(&["clone", &file_url(&remote), arg(c.path())]).ok();
    assert_mentions(&out.stdout, &["empty repository"]);
    c.strata(&["status"]).ok();
    c.strata(&["log"]).fails();
    c.write("items.csv", items_csv(&[(7, "c", 7)]));
    c.strata(&["import", "items", "items.csv", "--primary-key", "id"])
        .ok();
    c.strata(&["commit", "-m", "c starts over"]).ok();
    c.strata(&["push", "--create", "-u", "origin", "main"]).ok();
    let d = clone_of(&file_url(&remote));
    assert_eq!(items(&d), items(&c));
}

#[test]
fn cloning_an_empty_folder_fails_with_one_line_and_creates_nothing() {
    let (hub_dir, remote) = hub();
    std::fs::create_dir(&remote).expect("the empty remote folder should be creatable");
    let target = hub_dir.join("copy");
    let line = hub_dir
        .strata(&["clone", arg(&remote), arg(&target)])
        .fails_with_one_line();
    assert_mentions(&line, &["not a strata repository", "empty"]);
    assert!(
        !target.exists(),
        "the failed clone created {}",
        target.display()
    );
    assert!(
        Snapshot::of(&remote).0.is_empty(),
        "the clone wrote to the remote"
    );
}

#[test]
fn cloning_into_an_existing_non_empty_folder_is_refused_and_creates_nothing() {
    let (_hub_dir, remote) = hub();
    let _a = published(&remote);
    let dest = Dir::empty();
    dest.write("notes.txt", "mine");
    let before = Snapshot::of(dest.path());
    let line = dest
        .strata(&["clone", &file_url(&remote), arg(dest.path())])
        .fails_with_one_line();
    assert_mentions(&line, &["already exists", "not empty"]);
    before.assert_same(&Snapshot::of(dest.path()), "a refused clone");
}

#[test]
fn cloning_or_fetching_a_folder_that_is_not_a_repository_fails_with_one_clear_line() {
    let other = Dir::empty();
    other.write("data/a.csv", "x,y\n1,2\n");
    let data = other.join("data");
    let before = Snapshot::of(&data);

    let target = other.join("copy");
    let line = other
        .strata(&["clone", &file_url(&data), arg(&target)])
        .fails_with_one_line();
    assert_mentions(&line, &["not a strata repository"]);
    assert!(
        !target.exists(),
        "the failed clone created {}",
        target.display()
    );

    let missing = other.join("nowhere");
    let line = other
        .strata(&["clone", arg(&missing), arg(&target)])
        .fails_with_one_line();
    assert_mentions(&line, &["not a strata repository", "does not exist"]);
    assert!(
        !target.exists(),
        "the failed clone created {}",
        target.display()
    );
    assert!(
        !missing.exists(),
        "the failed clone created the remote folder"
    );

    let repo = Dir::repo();
    repo.strata(&["remote", "add", "other", arg(&data)]).ok();
    let line = repo.refused(&["fetch", "other"]);
    assert_mentions(&line, &["not a strata repository"]);
    before.assert_same(&Snapshot::of(&data), "clone and fetch");
}

// ---------------------------------------------------------------------------------------------
// Remote configuration

#[test]
fn remote_add_refuses_invalid_and_duplicate_names_and_remote_remove_forgets_a_remote() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    for bad in ["bad name", "a/b", ".hidden", ""] {
        let line = a.refused(&["remote", "add", bad, arg(&remote)]);
        assert_mentions(&line, &["remote"]);
    }
    let line = a.refused(&["remote", "add", "origin", arg(&remote)]);
    assert_mentions(&line, &["origin", "already exists"]);

    a.strata(&["remote", "add", "backup", &file_url(&remote)])
        .ok();
    let listed = a.strata(&["remote", "list", "--json"]).ok().json_lines();
    let names: Vec<&str> = listed
        .iter()
        .map(|r| r["name"].as_str().expect("a remote name"))
        .collect();
    assert_eq!(names, ["backup", "origin"]);
    a.strata(&["fetch", "backup"]).ok();
    a.strata(&["log", "-n", "1", "backup/main"]).ok();

    a.strata(&["remote", "remove", "origin"]).ok();
    let listed = a.strata(&["remote", "list"]).ok().stdout;
    assert!(!listed.contains("origin"), "still listed:\n{listed}");
    a.strata(&["log", "-n", "1", "origin/main"]).fails();
    assert!(upstream(&a).is_null(), "the upstream still names origin");
    let line = a.refused(&["remote", "remove", "origin"]);
    assert_mentions(&line, &["origin"]);
    a.strata(&["log", "-n", "1", "backup/main"]).ok();
}

// ---------------------------------------------------------------------------------------------
// Fetch

#[test]
fn a_process_fetching_repeatedly_sees_every_push_in_between() {
    let (_hub_dir, remote) = hub();
    let pusher = published(&remote);
    let fetcher = clone_of(&file_url(&remote));
    for round in 0..5 {
        let pushed = commit_rows(&pusher, &[(100 + round, "pusher", round)], "one more");
        pusher.strata(&["push"]).ok();
        let out = fetcher.strata(&["fetch"]).ok();
        assert_mentions(&out.stderr, &["origin/main"]);
        assert_eq!(
            fetcher.rev_id("origin/main"),
            pushed,
            "fetch {round} did not see the newest push"
        );
        assert_eq!(
            fetcher.export_csv("items", Some("origin/main")),
            pusher.export_csv("items", None)
        );
    }
    // A fetch with nothing new changes nothing.
    let before = fetcher.snapshot();
    let out = fetcher.strata(&["fetch"]).ok();
    assert!(
        out.stderr.is_empty(),
        "an up-to-date fetch printed:\n{out:?}"
    );
    before.assert_same(&fetcher.snapshot(), "an up-to-date fetch");
}

#[test]
fn fetch_refuses_a_corrupted_remote_object_naming_it_and_keeps_the_tracking_ref() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let known = b.rev_id("origin/main");
    let before = Snapshot::of(&remote);
    commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let after = Snapshot::of(&remote);
    let new_chunks: Vec<PathBuf> = after
        .files_under("chunks")
        .into_iter()
        .filter(|p| !before.0.contains_key(p))
        .collect();
    assert!(!new_chunks.is_empty(), "the push uploaded no chunk");
    let victim = remote.join(&new_chunks[0]);
    flip_a_byte(&victim);
    let id = object_id_of(&victim);

    let line = b.strata(&["fetch"]).fails_with_one_line();
    assert_mentions(&line, &[&id]);
    assert_eq!(
        b.rev_id("origin/main"),
        known,
        "the fetch moved origin/main"
    );
    let line = failure_line(b.strata(&["pull"]));
    assert_mentions(&line, &[&id]);
    assert_eq!(b.rev_id("HEAD"), known);
    assert_eq!(b.rev_id("origin/main"), known);

    let out = b.strata(&["fsck", "--remote", "origin"]);
    assert_mentions(&out.stdout, &[&id]);
    out.fails();
}

// ---------------------------------------------------------------------------------------------
// A push never makes a remote by accident

/// Regression (hardening item 9): `strata push origin typo` against a new folder URL used to
/// create the folder, the marker and the probe keys before finding the branch name wrong.
#[test]
fn a_push_of_an_unknown_branch_to_a_new_location_creates_nothing() {
    let dir = Dir::with_people();
    let target = dir.join("new-remote");
    dir.strata(&["remote", "add", "origin", &target.to_string_lossy()])
        .ok();
    let before = dir.snapshot();
    for args in [
        vec!["push", "origin", "typo"],
        vec!["push", "--create", "origin", "typo"],
    ] {
        let line = dir.strata(&args).fails_with_one_line();
        assert_mentions(&line, &["typo"]);
        assert!(!target.exists(), "{args:?} created {}", target.display());
    }
    before.assert_same(&dir.snapshot(), "pushes of an unknown branch");
}

/// A push goes only to an existing repository unless told to make one: a typo in a path
/// cannot silently create a new remote.
#[test]
fn a_push_to_a_location_that_is_not_a_repository_needs_create() {
    let dir = Dir::with_people();
    let target = dir.join("typo-remote");
    dir.strata(&["remote", "add", "origin", &target.to_string_lossy()])
        .ok();
    let line = dir
        .strata(&["push", "origin", "main"])
        .fails_with_one_line();
    assert_mentions(&line, &["not a strata repository", "--create"]);
    assert!(!target.exists(), "the folder was created");
    // An empty folder is refused too, and left empty.
    std::fs::create_dir_all(&target).expect("mkdir");
    let line = dir
        .strata(&["push", "origin", "main"])
        .fails_with_one_line();
    assert_mentions(&line, &["is empty", "--create"]);
    assert_eq!(std::fs::read_dir(&target).expect("read").count(), 0);
    // With --create it becomes a repository, and later pushes need no flag.
    dir.strata(&["push", "--create", "origin", "main"]).ok();
    dir.strata(&["push", "origin", "main"]).ok();
    let clone = Dir::empty();
    clone
        .strata(&["clone", &target.to_string_lossy(), "c"])
        .ok();
}

/// A mount table in which `folder` is an NFS mount with the default (caching) options.
fn nfs_mount_table(dir: &Dir, folder: &Path, options: &str) -> PathBuf {
    let real = std::fs::canonicalize(folder).expect("the folder exists");
    let point = real.display().to_string().replace(' ', "\\040");
    dir.write(
        "mountinfo",
        format!(
            "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             40 22 0:45 / {point} rw,relatime shared:20 - nfs4 srv:/export {options}\n"
        ),
    )
}

#[test]
fn a_folder_remote_on_a_caching_network_file_system_is_refused_until_allowed() {
    let shared = tempfile::tempdir().expect("tempdir");
    let dir = repo_with_items(&[(1, "a", 1)]);
    let table = nfs_mount_table(
        &dir,
        shared.path(),
        "rw,vers=4.2,acregmin=3,acregmax=60,acdirmin=30,acdirmax=60,hard",
    );
    dir.strata(&["remote", "add", "origin", arg(shared.path())])
        .ok();
    let before = Snapshot::of(shared.path());
    let line = dir
        .strata_env(
            &["push", "--create", "origin", "main"],
            "STRATA_MOUNTINFO",
            table.as_os_str(),
        )
        .fails_with_one_line();
    assert_mentions(
        &line,
        &[
            "network file system",
            "nfs4",
            "noac,lookupcache=none",
            "allow_network_fs=true",
        ],
    );
    before.assert_same(&Snapshot::of(shared.path()), "a refused push");

    // Mounted without caches, the same folder is accepted.
    let safe = nfs_mount_table(
        &dir,
        shared.path(),
        "rw,vers=4.2,noac,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,lookupcache=none",
    );
    dir.strata_env(
        &["push", "--create", "origin", "main"],
        "STRATA_MOUNTINFO",
        safe.as_os_str(),
    )
    .ok();

    // A caching mount is accepted when the remote says so, with a warning.
    let other = repo_with_items(&[(1, "b", 1)]);
    let table = nfs_mount_table(&other, shared.path(), "rw,vers=4.2,acdirmax=60");
    other
        .strata(&[
            "remote",
            "add",
            "origin",
            arg(shared.path()),
            "-o",
            "allow_network_fs=true",
        ])
        .ok();
    let out = other
        .strata_env(&["fetch", "origin"], "STRATA_MOUNTINFO", table.as_os_str())
        .ok();
    assert_mentions(&out.stderr, &["network file system"]);
}

#[test]
fn a_remote_is_renamed_with_its_tracking_refs_and_repointed_with_set_url() {
    let shared = tempfile::tempdir().expect("tempdir");
    let moved = tempfile::tempdir().expect("tempdir");
    let dir = published(shared.path());
    let head = dir.rev_id("HEAD");
    let out = dir.strata(&["remote", "rename", "origin", "upstream"]).ok();
    assert_eq!(out.stdout, "Renamed remote 'origin' to 'upstream'\n");
    assert_eq!(dir.rev_id("upstream/main"), head);
    dir.refused(&["log", "origin/main"]);
    assert_eq!(upstream(&dir)["name"], "upstream/main");
    assert_eq!(upstream(&dir)["gone"], false);
    // `remote` alone lists, as `remote -v` does in git.
    let list = dir.strata(&["remote"]).ok();
    assert!(list.stdout.starts_with("upstream\t"), "{list:?}");

    // The data moves; the remote follows it; push and fetch work there.
    copy_tree(shared.path(), moved.path());
    dir.strata(&["remote", "set-url", "upstream", arg(moved.path())])
        .ok();
    dir.strata(&["fetch", "upstream"]).ok();
    let line = dir.refused(&["remote", "rename", "upstream", "upstream"]);
    assert_mentions(&line, &["already exists"]);
    let line = dir.refused(&["remote", "set-url", "nope", arg(moved.path())]);
    assert_mentions(&line, &["nope"]);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn after_a_pull_stops_on_conflicts_push_says_to_finish_the_merge_as_status_does() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(1, "from a", 5)], "a edits 1");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(1, "from b", 6)], "b edits 1");
    let stopped = b.strata(&["pull"]);
    assert!(!stopped.status.success(), "{stopped:?}");
    let status = b.strata(&["status"]).ok();
    assert_mentions(
        &status.stdout,
        &["You are merging", "strata conflicts show"],
    );
    let line = b.refused(&["push"]);
    assert_mentions(
        &line,
        &["a merge of", "in progress", "commit", "merge --abort"],
    );
    assert!(
        !line.contains("pull"),
        "push must not advise a pull in the middle of one: {line}"
    );
}

#[test]
fn a_push_after_the_remote_moved_merges_the_new_commits_in_and_lands() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(20, "b", 1), (1, "b edits 1", 1)], "b adds 20");

    let out = b.strata(&["push"]).ok();
    assert_mentions(&out.stderr, &["had moved", "merged"]);
    let head = b.rev_id("HEAD");
    assert_eq!(remote_branches(&b)["main"], head);
    let merge = b.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    let parents: Vec<&str> = merge[0]["parents"]
        .as_array()
        .expect("parents")
        .iter()
        .map(|p| p.as_str().unwrap_or(""))
        .collect();
    assert_eq!(parents, [mine.as_str(), theirs.as_str()]);
    // Each writer's commit is in the history, with its author and message.
    let log = history(&b, None);
    assert!(log.contains(&mine) && log.contains(&theirs), "{log:?}");
    a.strata(&["pull"]).ok();
    assert_eq!(items(&a), items(&b));
    assert_eq!(items(&b).get(&10), Some(&("a".to_string(), 1)));
    assert_eq!(items(&b).get(&1), Some(&("b edits 1".to_string(), 1)));
    let status = b.strata(&["status", "--porcelain"]).ok();
    assert_eq!(status.stdout, "");
}

#[test]
fn a_push_whose_changes_conflict_with_the_remotes_stops_and_leaves_the_branch_as_it_was() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(1, "from a", 5)], "a edits 1");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(1, "from b", 6)], "b edits 1");
    let before = Snapshot::of(&remote);

    let line = failure_line(b.strata(&["push"]));
    assert_mentions(
        &line,
        &["rejected", "conflict", "1 row", "items", "strata pull"],
    );
    assert_eq!(b.rev_id("HEAD"), mine, "the branch moved");
    assert_eq!(b.strata(&["status", "--porcelain"]).ok().stdout, "");
    before.assert_same(&Snapshot::of(&remote), "a push that stopped on a conflict");
}

/// `n` clones of one remote on `backend` each add a row of their own and update a row of
/// their own (disjoint keys), and push once, all at the same moment: every push lands (merging
/// the commits that landed first), with nothing lost.
fn many_writers_push_once(backend: Backend, n: usize) {
    let remote = backend.remote(&format!("writers-{n}"));
    let url = &remote.url;
    let seed = published_on(backend, url);
    // One row per writer to update.
    let owned: Vec<(i64, &str, i64)> = (0..n as i64).map(|i| (2000 + i, "seed", 0)).collect();
    commit_rows(&seed, &owned, "rows to update");
    backend.run(&seed, &["push"]).ok();
    let writers: Vec<Dir> = (0..n).map(|_| clone_on(backend, url)).collect();
    for (i, w) in writers.iter().enumerate() {
        let i = i as i64;
        commit_rows(
            w,
            &[(1000 + i, "w", i), (2000 + i, "updated", i)],
            &format!("writer {i}"),
        );
    }
    let start = Instant::now();
    let children: Vec<_> = writers
        .iter()
        .map(|w| {
            backend
                .command(w, &["push"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("push starts")
        })
        .collect();
    let mut merged = 0;
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().expect("push ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "writer {i}'s push failed: {stderr}");
        merged += stderr.matches("merged its new commits in").count();
    }
    println!(
        "{n} writers on {}, one push each: all landed in {:.2?} with {merged} merges",
        backend.name(),
        start.elapsed()
    );
    let check = clone_on(backend, url);
    let rows = items(&check);
    for i in 0..n as i64 {
        assert_eq!(
            rows.get(&(1000 + i)),
            Some(&("w".to_string(), i)),
            "writer {i}'s new row is missing"
        );
        assert_eq!(
            rows.get(&(2000 + i)),
            Some(&("updated".to_string(), i)),
            "writer {i}'s update is missing"
        );
    }
    assert_eq!(rows.len(), 3 + 2 * n);
    let log = check.strata(&["log", "--oneline"]).ok().stdout;
    for i in 0..n {
        assert!(
            log.contains(&format!("writer {i}")),
            "writer {i}'s commit is not in the history:\n{log}"
        );
    }
    backend.run(&check, &["fsck", "--remote", "origin"]).ok();
}

#[test]
fn eight_writers_pushing_once_at_the_same_moment_all_land() {
    many_writers_push_once(Backend::File, 8);
}

#[test]
fn thirty_two_writers_pushing_once_at_the_same_moment_all_land() {
    many_writers_push_once(Backend::File, 32);
}

#[test]
fn eight_writers_pushing_once_at_the_same_moment_all_land_on_radosgw() {
    many_writers_push_once(Backend::Radosgw, 8);
}

#[test]
fn thirty_two_writers_pushing_once_at_the_same_moment_all_land_on_radosgw() {
    many_writers_push_once(Backend::Radosgw, 32);
}

// ---------------------------------------------------------------------------------------------
// Refspecs: tags, other names, every branch, deletes; fetch from every remote

#[test]
fn push_takes_tags_other_names_every_branch_and_deletes_as_git_does() {
    let (_hub_dir, remote) = hub();
    let dir = published(&remote);
    dir.strata(&["tag", "v1"]).ok();
    dir.strata(&["branch", "topic"]).ok();
    commit_rows(&dir, &[(4, "main", 4)], "on main");

    let out = dir.strata(&["push", "origin", "v1"]).ok();
    assert_mentions(&out.stderr, &["[new tag]", "v1 -> v1"]);
    let out = dir.strata(&["push", "-u", "origin", "topic:feature"]).ok();
    assert_mentions(&out.stderr, &["[new branch]", "topic -> feature"]);
    let branches = remote_branches(&dir);
    assert_eq!(branches["feature"], dir.rev_id("topic"));
    assert!(!branches.contains_key("topic"), "{branches:?}");
    dir.strata(&["checkout", "topic"]).ok();
    assert_eq!(upstream(&dir)["name"], "origin/feature");
    dir.strata(&["checkout", "main"]).ok();

    let out = dir.strata(&["push", "origin", "--all"]).ok();
    assert_mentions(&out.stderr, &["main -> main", "topic -> topic"]);
    let branches = remote_branches(&dir);
    assert_eq!(branches["main"], dir.rev_id("main"));
    assert_eq!(branches["topic"], dir.rev_id("topic"));

    let out = dir.strata(&["push", "origin", ":feature"]).ok();
    assert_mentions(&out.stderr, &["[deleted]", "feature"]);
    assert!(!remote_branches(&dir).contains_key("feature"));

    // A tag into a branch, and a name that is neither: one line, nothing changed anywhere.
    let before = Snapshot::of(&remote);
    let line = dir.refused(&["push", "origin", "v1:refs/heads/x"]);
    assert_mentions(&line, &["cannot push tag 'v1' into the branch 'x'"]);
    let line = dir.refused(&["push", "origin", "nothing-here"]);
    assert_mentions(&line, &["unknown branch 'nothing-here'"]);
    before.assert_same(&Snapshot::of(&remote), "refused pushes");

    // fetch --all reads every remote.
    let (_second_dir, second) = hub();
    dir.strata(&["remote", "add", "second", arg(&second)]).ok();
    dir.strata(&["push", "--create", "second", "main"]).ok();
    let other = clone_of(&file_url(&remote));
    other
        .strata(&["remote", "add", "second", arg(&second)])
        .ok();
    other.strata(&["fetch", "--all"]).ok();
    assert_eq!(other.rev_id("second/main"), dir.rev_id("main"));
    assert_eq!(other.rev_id("origin/topic"), dir.rev_id("topic"));
    assert_eq!(other.rev_id("v1"), dir.rev_id("v1"));
}

#[test]
fn pull_rebase_replays_the_local_commits_on_top_of_the_remote_branch() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    let theirs = commit_rows(&a, &[(10, "a", 1)], "a adds 10");
    a.strata(&["push"]).ok();
    commit_rows(&b, &[(20, "b", 1)], "b adds 20");
    commit_rows(&b, &[(1, "b edits 1", 1)], "b edits 1");

    let out = b.strata(&["pull", "--rebase"]).ok();
    assert_mentions(&out.stdout, &["Rebased 2 commits onto origin/main"]);
    let log = b.strata(&["log", "--json", "-n", "3"]).ok().json_lines();
    let summaries: Vec<&str> = log
        .iter()
        .map(|c| c["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(summaries, ["b edits 1", "b adds 20", "a adds 10"]);
    assert_eq!(log[2]["id"], theirs.as_str());
    assert!(
        log.iter()
            .all(|c| c["parents"].as_array().map_or(0, Vec::len) == 1),
        "a straight history: {log:?}"
    );
    assert_eq!(log[0]["author"], AUTHOR);
    let rows = items(&b);
    assert_eq!(rows.get(&10), Some(&("a".to_string(), 1)));
    assert_eq!(rows.get(&1), Some(&("b edits 1".to_string(), 1)));
    let reflog = b.strata(&["reflog", "-n", "1"]).ok().stdout;
    assert_mentions(&reflog, &["pull --rebase: onto origin/main"]);
    // The rebased branch is a fast-forward of the remote's.
    let out = b.strata(&["push", "--no-merge"]).ok();
    assert_mentions(&out.stderr, &["main -> main"]);
    a.strata(&["pull", "--ff-only"]).ok();
    assert_eq!(items(&a), items(&b));
}

#[test]
fn pull_rebase_that_conflicts_or_meets_a_merge_changes_nothing() {
    let (_hub_dir, remote) = hub();
    let a = published(&remote);
    let b = clone_of(&file_url(&remote));
    commit_rows(&a, &[(1, "from a", 5)], "a edits 1");
    a.strata(&["push"]).ok();
    let mine = commit_rows(&b, &[(1, "from b", 6)], "b edits 1");
    b.strata(&["fetch"]).ok();
    // Refs, HEAD and the working tables stay; chunks the attempt wrote are unreferenced
    // (gc removes them).
    let before = b.snapshot().only(&["refs", "local"]);
    let line = b.strata(&["pull", "--rebase"]).fails_with_one_line();
    before.assert_same(
        &b.snapshot().only(&["refs", "local"]),
        "a conflicting rebase",
    );
    assert_mentions(
        &line,
        &[
            "cannot rebase onto origin/main",
            "1 cell conflicts",
            "items",
            "nothing was changed",
        ],
    );
    assert_eq!(b.rev_id("HEAD"), mine);

    // A local merge commit is not replayed: merge instead.
    let c = clone_of(&file_url(&remote));
    c.strata(&["checkout", "-b", "side", "HEAD~1"]).ok();
    commit_rows(&c, &[(30, "side", 1)], "side adds 30");
    c.strata(&["checkout", "main"]).ok();
    commit_rows(&c, &[(31, "main", 1)], "main adds 31");
    c.strata(&["merge", "side"]).ok();
    commit_rows(&a, &[(40, "a", 1)], "a adds 40");
    a.strata(&["push"]).ok();
    c.strata(&["fetch"]).ok();
    let line = c.refused(&["pull", "--rebase"]);
    assert_mentions(&line, &["include the merge", "pull without --rebase"]);
}
