//! Helpers shared by the remote crate's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use strata_engine::edit::{ImportMode, ImportOptions};
use strata_engine::progress::NoProgress;
use strata_engine::store::RefKind;
use strata_engine::Repository;
use strata_remote::fetch::fetch;
use strata_remote::fsck::{check_refs, fsck, Side};
use strata_remote::gc::{collect, current_lock, GcOptions};
use strata_remote::push::{push, PushOptions};
pub use strata_remote::testing::Reach;
use strata_remote::testing::{CountingStore, Fault, FaultStore};
use strata_remote::Remote;

pub fn write_rows(path: &Path, from: u64, to: u64, tag: &str) {
    let mut text = String::from("id,name,qty\n");
    for i in from..to {
        text.push_str(&format!("{i},{tag}{i},{}\n", i % 97));
    }
    std::fs::write(path, text).expect("write rows");
}

pub async fn import(repo: &Repository, file: &Path, mode: Option<ImportMode>) {
    let opts = ImportOptions {
        mode,
        primary_key: Some(vec!["id".into()]),
        chunk_rows: Some(256),
        ..Default::default()
    };
    repo.import("t", file, &opts, &NoProgress)
        .await
        .expect("import");
}

/// A repository with two commits on main and one on a second branch. The second commit
/// rewrites some chunks and stores a delete in a delta.
pub async fn representative_repo(dir: &Path) -> Repository {
    let repo = Repository::init(&dir.join("local")).await.expect("init");
    let file = dir.join("rows.csv");
    write_rows(&file, 0, 5000, "a");
    import(&repo, &file, None).await;
    repo.commit("first", "T <t@example.com>")
        .await
        .expect("commit");
    write_rows(&file, 2000, 2100, "b");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    // One row deleted: a delta of no rows beside its chunk, listing the row's key.
    let gone = dir.join("gone.csv");
    std::fs::write(&gone, "id\n4000\n").expect("write keys");
    repo.delete_keys("t", &gone, None, &NoProgress)
        .await
        .expect("delete");
    let table = repo.working().await.expect("working").tables["t"];
    let table = strata_engine::table::TableObject::read(repo.objects(), &table)
        .await
        .expect("table");
    let entries = table.chunks(repo.objects()).await.expect("chunks");
    assert!(
        entries
            .iter()
            .any(|e| e.delta.is_some_and(|d| d.deletes == 1)),
        "the delete is stored in a delta"
    );
    repo.commit("second", "T <t@example.com>")
        .await
        .expect("commit");
    repo.create_ref(RefKind::Branch, "side", Some("HEAD~1"))
        .await
        .expect("branch");
    repo
}

pub fn folder(path: &Path) -> Arc<dyn ObjectStore> {
    std::fs::create_dir_all(path).expect("mkdir");
    Arc::new(LocalFileSystem::new_with_prefix(path).expect("store"))
}

/// Checks the remote: every ref record is well-formed, every ref's history is complete and
/// verifies.
pub async fn assert_consistent(remote: &Remote, context: &str) {
    let (roots, mut problems) = check_refs(&remote.refs, "", Side::Remote(&remote.name))
        .await
        .unwrap_or_else(|e| panic!("{context}: cannot list the refs: {e}"));
    let (more, _) = fsck(&remote.objects, &roots, &[], Side::Remote(&remote.name)).await;
    problems.extend(more);
    assert!(
        problems.is_empty(),
        "{context}: remote inconsistent: {problems:?}"
    );
}

/// Clones the remote into a fresh repository and checks it is complete.
pub async fn assert_clone_complete(store: Arc<dyn ObjectStore>, dir: &Path, context: &str) {
    let repo = Repository::init(dir).await.expect("init clone");
    let remote = Remote::from_store("origin", "test", store.clone(), "clone");
    if let Err(e) = remote.check().await {
        // Only a remote that holds nothing at all (nothing was pushed) has nothing to clone.
        let left = strata_engine::store::list_all(&store, &object_store::path::Path::from(""))
            .await
            .expect("list");
        let stray: Vec<_> = left
            .iter()
            .filter(|m| !m.location.as_ref().starts_with("probe/"))
            .collect();
        assert!(
            stray.is_empty(),
            "{context}: the remote holds data but is not a repository ({e}): {stray:?}"
        );
        return;
    }
    fetch(&repo, &remote, false, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("{context}: clone failed: {e}"));
    let roots: Vec<(String, strata_engine::ObjectId)> = repo
        .remote_tracking_list("origin")
        .await
        .expect("tracking")
        .into_iter()
        .collect();
    let (problems, _) = fsck(repo.objects(), &roots, &[], Side::Local).await;
    assert!(
        problems.is_empty(),
        "{context}: clone incomplete: {problems:?}"
    );
}

/// Pushes `main` with default options.
pub async fn push_main(repo: &Repository, remote: &Remote) -> strata_remote::push::PushReport {
    push(
        repo,
        remote,
        &["main".to_string()],
        &[],
        &PushOptions::default(),
        &NoProgress,
    )
    .await
    .expect("push main")
}

pub async fn push_all(
    repo: &Repository,
    remote: &Remote,
) -> strata_remote::Result<strata_remote::push::PushReport> {
    push_both(repo, remote, Views::Publish).await
}

/// Whether a push publishes its Iceberg views (docs/protocol.md, section 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    Publish,
    Skip,
}

/// Pushes main and side, publishing the views or not.
pub async fn push_both(
    repo: &Repository,
    remote: &Remote,
    views: Views,
) -> strata_remote::Result<strata_remote::push::PushReport> {
    push_both_and_tags(repo, remote, views, Tag::Left).await
}

/// Whether the fault matrix's push also pushes an annotated tag. Its record is written by the
/// code that writes branch records; the matrix on memory faults every call of it, and the one
/// on radosgw each kind of write, while the others leave it out to keep the suite quick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Annotated,
    Left,
}

/// Pushes main and side, and with `tag` every tag (the fault matrix's repository has an
/// annotated one).
async fn push_both_and_tags(
    repo: &Repository,
    remote: &Remote,
    views: Views,
    tag: Tag,
) -> strata_remote::Result<strata_remote::push::PushReport> {
    let opts = PushOptions {
        skip_views: views == Views::Skip,
        tags: tag == Tag::Annotated,
        ..Default::default()
    };
    push(
        repo,
        remote,
        &["main".to_string(), "side".to_string()],
        &[],
        &opts,
        &NoProgress,
    )
    .await
}

/// The note of the annotated tag `v1` that the fault matrix pushes.
fn v1_note() -> strata_engine::store::TagNote {
    strata_engine::store::TagNote {
        tagger: "T <t@example.com>".into(),
        time: 1_764_070_000,
        message: "The first release".into(),
    }
}

/// Checks that the remote's only tag is `v1`, at `commit`, with its note (when `tag`).
async fn assert_tag_landed(
    remote: &Remote,
    tag: Tag,
    commit: strata_engine::ObjectId,
    context: &str,
) {
    if tag == Tag::Left {
        return;
    }
    let tags = remote.refs.list(RefKind::Tag).await.expect("list tags");
    assert_eq!(tags, vec![("v1".to_string(), commit)], "{context}");
    let name = strata_engine::store::RefName::tag("v1").expect("name");
    let record = remote.refs.read(&name).await.expect("read tag").record;
    assert_eq!(
        record.and_then(|r| r.note),
        Some(v1_note()),
        "{context}: the tag's note"
    );
}

/// Every kind of fault.
pub const ALL_FAULTS: [Fault; 5] = [
    Fault::Fail,
    Fault::LoseResponse,
    Fault::ApplyLater,
    Fault::Conflict,
    Fault::Torn,
];

/// Pushes a representative repository through a store that injects `faults` at its k-th call
/// (fails it, loses its response, applies it late, answers 409, tears it), for every k; after
/// each, the remote is consistent, a clone is complete, and a retried push finishes.
/// `fresh(name)` makes an empty store for one run.
pub async fn fault_matrix(
    fresh: impl Fn(&str) -> Arc<dyn ObjectStore>,
    faults: &[Fault],
    views: Views,
    reach: Reach,
    tag: Tag,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = representative_repo(tmp.path()).await;
    let main = repo.resolve("main").await.expect("main");
    let side = repo.resolve("side").await.expect("side");
    // An annotated tag goes with the branches: its note travels in its ref record.
    repo.create_ref_noted(RefKind::Tag, "v1", Some("side"), Some(v1_note()))
        .await
        .expect("tag");

    // How many storage calls does a fault-free push make? (The store kind is probed once
    // here; the probe has tests of its own, so the matrix runs on remotes taken as trusted.)
    let counting = Arc::new(CountingStore::new(fresh("count")));
    strata_remote::probe::probe(&(counting.clone() as Arc<dyn ObjectStore>), "count", "once")
        .await
        .expect("the store passes the probe");
    counting.counts.reset();
    let remote = Remote::from_store("origin", "count", counting.clone(), "w").assume_trusted();
    push_both_and_tags(&repo, &remote, views, tag)
        .await
        .expect("fault-free push");
    assert!(
        counting.counts.requests() > 10,
        "a representative push makes many calls"
    );
    println!("fault-free push: {}", counting.counts.summary());

    for &fault in faults {
        // Each kind where it differs from a plain failure (see `Fault::calls`).
        let picked = reach.calls(fault, &counting.counts);
        println!("{fault:?} at calls {picked:?}");
        for k in picked {
            let context = format!("{fault:?} at call {k}");
            let base = tmp.path().join(format!("{fault:?}-{k}"));
            let store = fresh(&format!("{fault:?}-{k}"));
            let faulty = Arc::new(FaultStore::at_distinct_call(store.clone(), k, fault));
            let remote =
                Remote::from_store("origin", "faulty", faulty.clone(), "w").assume_trusted();
            let outcome = push_both_and_tags(&repo, &remote, views, tag).await;
            let context = format!("{context} ({:?})", faulty.fired());
            // A write applied after the push gave up lands now.
            faulty.apply_late().await;
            let clean = Remote::from_store("origin", "clean", store.clone(), "w").assume_trusted();
            // A collection that failed releases its lock on the way out, unless the failed
            // call was the release itself (a write to the lock log): pushes are not held up.
            let failed_lock_write = faulty
                .fired()
                .is_some_and(|f| f.starts_with("put gc/lock/"));
            if fault == Fault::Fail && outcome.is_err() && !failed_lock_write {
                assert!(
                    current_lock(&clean).await.expect("lock").is_none(),
                    "{context}: the failed collection left its lock held"
                );
            }
            assert_consistent(&clean, &context).await;
            // An acknowledged push really landed.
            if let Ok(report) = &outcome {
                if report.rejected.is_empty() {
                    let now = clean.refs.list(RefKind::Branch).await.expect("list");
                    assert_eq!(
                        now,
                        vec![("main".to_string(), main), ("side".to_string(), side)],
                        "{context}"
                    );
                    assert_tag_landed(&clean, tag, side, &context).await;
                }
            }
            assert_clone_complete(store.clone(), &base.join("clone"), &context).await;
            // Re-running the push finishes.
            let report = push_both_and_tags(&repo, &clean, views, tag)
                .await
                .unwrap_or_else(|e| panic!("{context}: retry failed: {e}"));
            assert!(
                report.rejected.is_empty(),
                "{context}: retry rejected: {:?}",
                report.rejected
            );
            let now = clean.refs.list(RefKind::Branch).await.expect("list");
            assert_eq!(
                now,
                vec![("main".to_string(), main), ("side".to_string(), side)],
                "{context}"
            );
            assert_tag_landed(&clean, tag, side, &context).await;
            assert_consistent(&clean, &context).await;
        }
    }
}

/// The representative repository plus a branch `tmp` with a commit of its own.
pub async fn repo_with_throwaway_branch(dir: &Path) -> Repository {
    let repo = representative_repo(dir).await;
    repo.create_ref(RefKind::Branch, "tmp", Some("main"))
        .await
        .expect("branch");
    repo.checkout("tmp", false).await.expect("checkout tmp");
    let file = dir.join("tmp.csv");
    write_rows(&file, 4000, 4300, "tmp");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    repo.commit("throwaway", "T <t@example.com>")
        .await
        .expect("commit");
    repo.checkout("main", false).await.expect("checkout main");
    repo
}

/// Pushes main and side, then `tmp`, which is deleted again: its objects become garbage, and
/// `tmp`'s log has records to compact.
///
/// Without Iceberg views: a collection's handling of views is tested with the views
/// (strata/tests/it/views.rs); here every storage call of the collection gets a fault, and the
/// views would only add calls that delete derived files.
pub async fn push_with_garbage(repo: &Repository, store: Arc<dyn ObjectStore>) {
    let remote = Remote::from_store("origin", "setup", store, "setup").assume_trusted();
    let opts = PushOptions {
        skip_views: true,
        ..Default::default()
    };
    let both = ["main".to_string(), "side".to_string()];
    push(repo, &remote, &both, &[], &opts, &NoProgress)
        .await
        .expect("push");
    let tmp = ["tmp".to_string()];
    push(repo, &remote, &tmp, &[], &opts, &NoProgress)
        .await
        .expect("push tmp");
    push(repo, &remote, &[], &tmp, &opts, &NoProgress)
        .await
        .expect("delete tmp");
}

/// Objects on the remote that its refs do not reach (what a collection would remove).
pub async fn garbage_left(remote: &Remote) -> u64 {
    let opts = GcOptions {
        dry_run: true,
        ..Default::default()
    };
    collect(remote, &[], &opts, 0, &NoProgress)
        .await
        .expect("dry run")
        .gc
        .removed
        .objects
}

/// Collects a remote through a store that fails (or loses the response of) its k-th call,
/// for every k. After each: the remote is consistent and clones complete; a retried
/// collection (from the same repository) completes and leaves no garbage and no lock; pushes
/// work again.
pub async fn gc_fault_matrix(
    fresh: impl Fn(&str) -> Arc<dyn ObjectStore>,
    faults: &[Fault],
    reach: Reach,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;

    let store = fresh("count");
    push_with_garbage(&repo, store.clone()).await;
    let counting = Arc::new(CountingStore::new(store));
    let remote = Remote::from_store("origin", "count", counting.clone(), "w");
    strata_remote::probe::probe(&(counting.clone() as Arc<dyn ObjectStore>), "count", "once")
        .await
        .expect("the store passes the probe");
    let remote = remote.assume_trusted();
    counting.counts.reset();
    let report = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("fault-free gc");
    assert!(report.gc.removed.objects > 0, "{report:?}");
    assert!(report.gc.ref_records > 0, "{report:?}");
    println!("fault-free gc: {}", counting.counts.summary());

    for &fault in faults {
        let picked = reach.calls(fault, &counting.counts);
        println!("{fault:?} at calls {picked:?}");
        for k in picked {
            let context = format!("gc with {fault:?} at call {k}");
            let store = fresh(&format!("gc-{fault:?}-{k}"));
            push_with_garbage(&repo, store.clone()).await;
            let faulty = Arc::new(FaultStore::at_distinct_call(store.clone(), k, fault));
            // Probed once (below, by the fault-free run's store kind); a fault in the probe
            // itself is the probe's matter.
            let remote =
                Remote::from_store("origin", "faulty", faulty.clone(), "w").assume_trusted();
            let outcome = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress).await;
            let context = format!(
                "{context} ({:?}, outcome {:?})",
                faulty.fired(),
                outcome.as_ref().map(|_| ())
            );
            faulty.apply_late().await;
            let clean = Remote::from_store("origin", "clean", store.clone(), "w").assume_trusted();
            assert_consistent(&clean, &context).await;
            let base = tmp.path().join(format!("gc-{fault:?}-{k}"));
            assert_clone_complete(store.clone(), &base.join("clone"), &context).await;
            // The same repository runs gc again: it takes over its own interrupted lock.
            let resume = GcOptions {
                resume_own: true,
                ..Default::default()
            };
            collect(&clean, &[], &resume, 0, &NoProgress)
                .await
                .unwrap_or_else(|e| panic!("{context}: retried gc failed: {e}"));
            assert_eq!(garbage_left(&clean).await, 0, "{context}");
            assert!(
                current_lock(&clean).await.expect("lock").is_none(),
                "{context}: the lock is still there"
            );
            assert_consistent(&clean, &context).await;
            let report = push_both(&repo, &clean, Views::Skip)
                .await
                .unwrap_or_else(|e| panic!("{context}: push after gc failed: {e}"));
            assert!(report.rejected.is_empty(), "{context}");
        }
    }
}
