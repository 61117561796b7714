//! Many writers: a push whose branch the remote moved merges the new commits in and lands,
//! with the pushes waiting behind it, and a fault at any storage call of that merging push
//! leaves everything consistent.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use strata::{CloneOptions, FsckOptions, NoProgress, PushOptions, RemoteRepository, Repository};
use strata_remote::testing::{route, unroute, Calls, CountingStore, Fault, FaultStore, Reach};

/// Copies a folder tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn folder(path: &Path) -> Arc<dyn ObjectStore> {
    std::fs::create_dir_all(path).expect("mkdir");
    Arc::new(LocalFileSystem::new_with_prefix(path).expect("store"))
}

/// A folder remote and a clone `b` of it whose commit (row 20) is not on the remote, which
/// has moved on since the clone (row 10, from another writer): `b`'s push must merge. A
/// third writer's commit (row 30) waits to land behind it (uploaded, with its note last in
/// line), so `b`'s push lands it too. Returns the remote's URL.
async fn template(root: &Path) -> String {
    let a = TestRepo::with_people().await;
    let remote = root.join("remote");
    let url = a
        .add_remote(
            "origin",
            remote.to_str().expect("utf-8"),
            &Default::default(),
        )
        .await
        .expect("remote add")
        .url;
    let first = PushOptions {
        create: true,
        ..Default::default()
    };
    a.push(&first, &NoProgress).await.expect("first push");
    let (b, _) = Repository::clone(&url, &root.join("b"), &CloneOptions::default(), &NoProgress)
        .await
        .expect("clone");
    let (c, _) = Repository::clone(&url, &root.join("c"), &CloneOptions::default(), &NoProgress)
        .await
        .expect("clone");
    let c = c.with_author(author()).with_commit_time(COMMIT_TIME);
    let csv = root.join("c-row.csv");
    std::fs::write(&csv, "id,name,score\n30,from c,3.0\n").expect("write");
    c.import_file(
        "people",
        &csv,
        None,
        &mode(strata::WriteMode::Upsert),
        &NoProgress,
    )
    .await
    .expect("upsert");
    let waiting = c.commit("c adds 30", None).await.expect("commit").id;
    let park = PushOptions {
        branches: vec!["main:parked".into()],
        ..Default::default()
    };
    assert!(c
        .push(&park, &NoProgress)
        .await
        .expect("push")
        .error()
        .is_none());
    let notes = remote.join("waiting/heads/main");
    std::fs::create_dir_all(&notes).expect("mkdir");
    std::fs::write(
        notes.join(format!("9999999999999-{}-test", waiting.to_hex())),
        "{}",
    )
    .expect("note");
    a.upsert("people", "id,name,score\n10,from a,1.0\n").await;
    a.commit_changes("a adds 10").await;
    let mut pushed = a
        .push(&PushOptions::default(), &NoProgress)
        .await
        .expect("push");
    assert!(pushed.error().is_none());
    let b = b.with_author(author()).with_commit_time(COMMIT_TIME);
    let csv = root.join("b-row.csv");
    std::fs::write(&csv, "id,name,score\n20,from b,2.0\n").expect("write");
    b.import_file(
        "people",
        &csv,
        None,
        &mode(strata::WriteMode::Upsert),
        &NoProgress,
    )
    .await
    .expect("upsert");
    b.commit("b adds 20", None).await.expect("commit");
    url
}

/// The rows of `people` on the remote's main, read straight from the remote.
async fn remote_people(url: &str) -> String {
    let remote = RemoteRepository::open(url, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("open of {url} failed: {e}"));
    let scan = remote
        .scan("people", &Default::default())
        .await
        .unwrap_or_else(|e| panic!("scan of {url} failed: {e}"));
    let batches = scan.collect().await.expect("read");
    rows_of(&batches)
        .iter()
        .map(|r| format!("{},{}", r["id"], r["name"]))
        .collect::<Vec<_>>()
        .join("\n")
}

const ALL_FAULTS: [Fault; 5] = [
    Fault::Fail,
    Fault::LoseResponse,
    Fault::ApplyLater,
    Fault::Conflict,
    Fault::Torn,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_storage_call_of_a_merging_push_leaves_both_sides_consistent_and_a_retry_lands(
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("template");
    let url = template(&root).await;
    let without = "1,\"ann\"\n2,\"bob\"\n3,\"cy\"\n10,\"from a\"\n20,\"from b\"";
    let expected = &format!("{without}\n30,\"from c\"");
    // A fault may keep the waiting commit out (it is left to its own push); never b's.
    let landed = |rows: &str| rows == expected || rows == without;

    // How many storage calls does the merging push make without a fault?
    let count_dir = tmp.path().join("count");
    copy_dir(&root, &count_dir);
    let counting = Arc::new(CountingStore::new(folder(&count_dir.join("remote"))));
    route(&url, counting.clone());
    let b = Repository::open(count_dir.join("b")).await.expect("open b");
    let mut report = b
        .push(&PushOptions::default(), &NoProgress)
        .await
        .expect("push");
    assert!(report.error().is_none());
    assert_eq!(report.merges.len(), 2, "the push merged: {report:?}");
    assert_eq!(
        report.carried.len(),
        1,
        "and landed the waiting one: {report:?}"
    );
    println!("fault-free merging push: {}", counting.counts.summary());
    assert_eq!(remote_people(&url).await, *expected);

    for fault in ALL_FAULTS {
        // A plain failure at every call, and past the last. The other kinds differ from it
        // at writes only (see `Fault::calls`); they fault the first and last write of each kind
        // (every ref and lock record is a kind of its own) and one past the last write. The
        // bulk of the push's puts are content-addressed uploads made by the one code path that
        // the push fault matrices fault write by write with every kind.
        let reach = match fault.calls() {
            Calls::All => Reach::EveryCall,
            Calls::Writes => Reach::EachKindOfWrite,
        };
        for k in reach.calls(fault, &counting.counts) {
            let context = format!("{fault:?} at call {k}");
            let run = tmp.path().join(format!("{fault:?}-{k}"));
            copy_dir(&root, &run);
            let store = folder(&run.join("remote"));
            let faulty = Arc::new(FaultStore::at_distinct_call(store.clone(), k, fault));
            route(&url, faulty.clone());
            let b = Repository::open(run.join("b")).await.expect("open b");
            let outcome = b.push(&PushOptions::default(), &NoProgress).await;
            let context = format!(
                "{context} ({:?}): {:?}",
                faulty.fired(),
                outcome.as_ref().err()
            );
            faulty.apply_late().await;
            route(&url, store.clone());

            // Both sides are consistent, and this side is not left half-merged.
            let remote_check = b
                .fsck(&FsckOptions {
                    remote: Some("origin".into()),
                    repair: false,
                })
                .await
                .unwrap_or_else(|e| panic!("{context}: remote fsck failed: {e}"));
            assert!(
                remote_check.problems.is_empty(),
                "{context}: {remote_check:?}"
            );
            let local_check = b.fsck(&FsckOptions::default()).await.expect("fsck");
            assert!(
                local_check.problems.is_empty(),
                "{context}: {local_check:?}"
            );
            let status = b.status().await.expect("status");
            assert!(
                status.merging.is_none() && status.tables.is_empty(),
                "{context}: left mid-merge: {status:?}"
            );
            // An acknowledged push landed.
            if let Ok(mut report) = outcome {
                if report.error().is_none() {
                    let rows = remote_people(&url).await;
                    assert!(landed(&rows), "{context}: {rows}");
                }
            }
            // A retry lands, with every writer's row.
            let mut retry = b
                .push(&PushOptions::default(), &NoProgress)
                .await
                .unwrap_or_else(|e| panic!("{context}: retry failed: {e}"));
            assert!(
                retry.error().is_none(),
                "{context}: retry rejected: {retry:?}"
            );
            let rows = remote_people(&url).await;
            assert!(landed(&rows), "{context}: {rows}");
            std::fs::remove_dir_all(&run).ok();
        }
    }
    unroute(&url);
}

/// A remote whose `main` moved on since clones `b` and `c` were made (row 10, from `a`); `b`
/// and `c` each commit a change of their own (`b_csv`, `c_csv`), and `c`'s commit is on the
/// remote (as a push leaves it before its note), on the branch `parked`.
struct Waiters {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    url: String,
    b: Repository,
    c: Repository,
    c_commit: strata::ObjectId,
}

async fn waiters(b_csv: &str, c_csv: &str) -> Waiters {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let a = TestRepo::with_people().await;
    let url = a
        .add_remote(
            "origin",
            root.join("remote").to_str().expect("utf-8"),
            &Default::default(),
        )
        .await
        .expect("remote add")
        .url;
    let first = PushOptions {
        create: true,
        ..Default::default()
    };
    a.push(&first, &NoProgress).await.expect("first push");
    let clone = |name: &'static str| {
        let (url, root) = (url.clone(), root.clone());
        async move {
            let (r, _) = Repository::clone(
                &url,
                &root.join(name),
                &CloneOptions::default(),
                &NoProgress,
            )
            .await
            .expect("clone");
            r.with_author(author()).with_commit_time(COMMIT_TIME)
        }
    };
    let b = clone("b").await;
    let c = clone("c").await;
    a.upsert("people", "id,name,score\n10,from a,1.0\n").await;
    a.commit_changes("a adds 10").await;
    a.push(&PushOptions::default(), &NoProgress)
        .await
        .expect("push")
        .error()
        .map_or(Ok(()), Err)
        .expect("a's push lands");
    let change = |r: &Repository, csv: &str, name: &str| {
        let file = root.join(format!("{name}.csv"));
        std::fs::write(&file, csv).expect("write");
        let r = r.clone();
        let name = name.to_string();
        async move {
            r.import_file(
                "people",
                &file,
                None,
                &mode(strata::WriteMode::Upsert),
                &NoProgress,
            )
            .await
            .expect("upsert");
            r.commit(&format!("{name} changes people"), None)
                .await
                .expect("commit")
                .id
        }
    };
    change(&b, b_csv, "b").await;
    let c_commit = change(&c, c_csv, "c").await;
    let park = PushOptions {
        branches: vec!["main:parked".into()],
        ..Default::default()
    };
    c.push(&park, &NoProgress)
        .await
        .expect("push")
        .error()
        .map_or(Ok(()), Err)
        .expect("c's commit is uploaded");
    Waiters {
        _tmp: tmp,
        root,
        url,
        b,
        c,
        c_commit,
    }
}

impl Waiters {
    fn notes_dir(&self) -> std::path::PathBuf {
        self.root.join("remote/waiting/heads/main")
    }

    /// Leaves a note on the remote that `commit` waits to land, named `<millis>-<commit>-x`.
    fn note(&self, millis: &str, commit: &strata::ObjectId) -> std::path::PathBuf {
        std::fs::create_dir_all(self.notes_dir()).expect("mkdir");
        let path = self
            .notes_dir()
            .join(format!("{millis}-{}-test", commit.to_hex()));
        std::fs::write(&path, "{}").expect("write the note");
        path
    }

    fn notes(&self) -> Vec<String> {
        match std::fs::read_dir(self.notes_dir()) {
            Ok(dir) => dir
                .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn remote_rows(&self) -> String {
        remote_people(&self.url).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_push_in_line_lands_the_waiting_ones_and_they_find_their_commits_landed() {
    let w = waiters(
        "id,name,score\n20,from b,2.0\n",
        "id,name,score\n30,from c,3.0\n",
    )
    .await;
    // c waits behind whoever comes next (its note sorts last).
    w.note("9999999999999", &w.c_commit);
    let mut report =
        w.b.push(&PushOptions::default(), &NoProgress)
            .await
            .expect("b's push");
    assert!(report.error().is_none(), "{report:?}");
    assert_eq!(report.carried, vec![w.c_commit], "b landed c's commit");
    assert_eq!(report.merges.len(), 2, "origin/main, then the waiting push");
    assert!(w.notes().is_empty(), "the notes are gone: {:?}", w.notes());
    let all = "1,\"ann\"\n2,\"bob\"\n3,\"cy\"\n10,\"from a\"\n20,\"from b\"\n30,\"from c\"";
    assert_eq!(w.remote_rows().await, all);
    let tip = w.b.resolve("origin/main").await.expect("tip");
    assert_eq!(w.b.resolve("main").await.expect("main"), tip);
    let merge = w.b.log(Some("main"), Some(1)).await.expect("log");
    assert_eq!(merge[0].parents.len(), 2);
    assert!(w
        .b
        .is_ancestor(&w.c_commit.to_hex(), "main")
        .await
        .expect("ancestry"));

    // c's own push then finds its commit in the branch: it takes the branch as it is.
    let mut report =
        w.c.push(&PushOptions::default(), &NoProgress)
            .await
            .expect("c's push");
    assert!(report.error().is_none(), "{report:?}");
    assert_eq!(report.carried_in, Some(tip), "{report:?}");
    assert!(report.merges.is_empty() && report.carried.is_empty());
    assert_eq!(w.c.resolve("main").await.expect("main"), tip);
    assert_eq!(w.c.resolve("origin/main").await.expect("tracking"), tip);
    assert!(w.c.status().await.expect("status").tables.is_empty());
    assert!(w.notes().is_empty(), "{:?}", w.notes());
    assert_eq!(w.remote_rows().await, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_push_that_conflicts_is_left_out_and_its_own_push_stops_on_the_conflict() {
    let w = waiters(
        "id,name,score\n1,from b,1.5\n",
        "id,name,score\n1,from c,1.5\n",
    )
    .await;
    w.note("9999999999999", &w.c_commit);
    let mut report =
        w.b.push(&PushOptions::default(), &NoProgress)
            .await
            .expect("b's push");
    assert!(report.error().is_none(), "{report:?}");
    assert!(
        report.carried.is_empty(),
        "c's commit conflicts: {report:?}"
    );
    assert_eq!(report.merges.len(), 1);
    assert_eq!(w.notes().len(), 1, "c's note stays for c: {:?}", w.notes());
    let landed = "1,\"from b\"\n2,\"bob\"\n3,\"cy\"\n10,\"from a\"";
    assert_eq!(w.remote_rows().await, landed);

    let before = w.c.resolve("main").await.expect("main");
    let e =
        w.c.push(&PushOptions::default(), &NoProgress)
            .await
            .expect_err("c's push stops on the conflict");
    assert_mentions(&e.to_string(), &["conflict", "1 row", "people"]);
    assert_eq!(w.c.resolve("main").await.expect("main"), before);
    let status = w.c.status().await.expect("status");
    assert!(status.merging.is_none() && status.tables.is_empty());
    assert_eq!(w.remote_rows().await, landed);
    // c's push withdrew the note it left; the one this test wrote stays (a stale hint).
    assert_eq!(w.notes().len(), 1, "{:?}", w.notes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_that_cannot_be_landed_cost_a_wait_at_most_never_a_commit() {
    let w = waiters(
        "id,name,score\n20,from b,2.0\n",
        "id,name,score\n30,from c,3.0\n",
    )
    .await;
    // A note whose commit was never uploaded, and one older than a note may be.
    let missing = strata::ObjectId::of(b"never uploaded");
    w.note("9999999999998", &missing);
    let stale = w.note("9999999999999", &w.c_commit);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("set the note's time");
    let mut report =
        w.b.push(&PushOptions::default(), &NoProgress)
            .await
            .expect("b's push");
    assert!(report.error().is_none(), "{report:?}");
    assert!(report.carried.is_empty(), "{report:?}");
    assert_eq!(
        w.remote_rows().await,
        "1,\"ann\"\n2,\"bob\"\n3,\"cy\"\n10,\"from a\"\n20,\"from b\""
    );
    assert_eq!(
        w.notes().len(),
        2,
        "notes nobody landed stay: {:?}",
        w.notes()
    );
    // A collection removes notes older than an hour.
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("set the note's time");
    let gc =
        w.b.gc(
            &strata::GcOptions {
                remote: Some("origin".into()),
                ..Default::default()
            },
            &NoProgress,
        )
        .await
        .expect("gc");
    assert_eq!(gc.report.stale_notes, 1);
    assert_eq!(w.notes().len(), 1, "{:?}", w.notes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_note_that_never_changes_is_taken_for_stopped_and_its_commit_landed() {
    let w = waiters(
        "id,name,score\n20,from b,2.0\n",
        "id,name,score\n30,from c,3.0\n",
    )
    .await;
    // c's note is first in line, but nobody writes it again (its push stopped).
    w.note("0000000000001", &w.c_commit);
    let started = std::time::Instant::now();
    let mut report =
        w.b.push(&PushOptions::default(), &NoProgress)
            .await
            .expect("b's push");
    assert!(report.error().is_none(), "{report:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "b waited for the first in line"
    );
    assert_eq!(report.carried, vec![w.c_commit], "{report:?}");
    assert!(w.notes().is_empty(), "{:?}", w.notes());
}
