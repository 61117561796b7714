//! Many writers: a push whose branch the remote moved merges the new commits in and lands,
//! and a fault at any storage call of that merging push leaves everything consistent.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use strata::{CloneOptions, FsckOptions, NoProgress, PushOptions, Repository};
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
/// has moved on since the clone (row 10, from another writer): `b`'s push must merge.
/// Returns the template folder, the remote's URL, and the folder of `b`.
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

/// The rows of `people` on the remote's main, read through a fresh clone.
async fn remote_people(url: &str, dir: &Path) -> String {
    let (c, _) = Repository::clone(url, dir, &CloneOptions::default(), &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("clone of {url} failed: {e}"));
    let scan = c.scan("people", &Default::default()).await.expect("scan");
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
    let expected = "1,\"ann\"\n2,\"bob\"\n3,\"cy\"\n10,\"from a\"\n20,\"from b\"";

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
    assert_eq!(report.merges.len(), 1, "the push merged: {report:?}");
    println!("fault-free merging push: {}", counting.counts.summary());
    assert_eq!(
        remote_people(&url, &count_dir.join("check")).await,
        expected
    );

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
                    assert_eq!(
                        remote_people(&url, &run.join("acked")).await,
                        expected,
                        "{context}"
                    );
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
            assert_eq!(
                remote_people(&url, &run.join("after")).await,
                expected,
                "{context}"
            );
            std::fs::remove_dir_all(&run).ok();
        }
    }
    unroute(&url);
}
