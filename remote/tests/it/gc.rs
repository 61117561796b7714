//! Garbage collection of remotes: what it removes and keeps, pushes it fences, faults at
//! every storage call (docs/protocol.md, section 8).

use std::sync::Arc;

use crate::common::*;
use strata_remote::testing::Fault;

/// Faults a collection must survive: lock and fence records are created atomically on every
/// supported store, so torn writes are the push matrix's matter (objects).
const GC_FAULTS: [Fault; 4] = [
    Fault::Fail,
    Fault::LoseResponse,
    Fault::ApplyLater,
    Fault::Conflict,
];
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_engine::edit::ImportMode;
use strata_engine::progress::NoProgress;
use strata_engine::store::{RefKind, RefName};
use strata_remote::gc::{collect, GcOptions};
use strata_remote::push::{push, PushOptions, UpdateKind};
use strata_remote::testing::HookStore;
use strata_remote::Remote;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_what_no_ref_reaches_compacts_the_logs_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store = folder(&tmp.path().join("remote"));
    push_with_garbage(&repo, store.clone()).await;
    let remote = Remote::from_store("origin", "remote", store.clone(), "gc");
    let before = garbage_left(&remote).await;
    assert!(before > 0, "the deleted branch left garbage");

    let report = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("gc");
    assert_eq!(report.gc.removed.objects, before);
    assert!(report.gc.ref_records > 0, "{report:?}");
    assert_eq!(garbage_left(&remote).await, 0);
    assert_consistent(&remote, "after gc").await;
    assert_clone_complete(store.clone(), &tmp.path().join("clone"), "after gc").await;
    // Every log keeps only its newest record.
    for (kind, name) in [(RefKind::Branch, "main"), (RefKind::Branch, "tmp")] {
        let folder = remote
            .refs
            .records(&RefName::new(kind, name).expect("name"))
            .await
            .expect("records");
        assert_eq!(folder.records.len(), 1, "{name}: {:?}", folder.records);
    }
    // A second collection finds nothing; pushing and fetching go on as before.
    let again = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("gc");
    assert_eq!(again.gc.removed.objects, 0);
    let report = push_all(&repo, &remote).await.expect("push");
    assert!(report.rejected.is_empty());
}

/// Requests of an earlier collection to the lock that reach the store late (a retry after a
/// lost response, a request stuck in the network) while a newer collection runs: they must
/// not free the newer collection's lock, or pushes would go on unfenced while it deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_lock_requests_of_an_earlier_collection_do_not_free_the_running_one() {
    use strata_engine::store::layout::gc_lock_record;
    use strata_remote::gc::{current_lock, GcLock};
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    push_with_garbage(&repo, store.clone()).await;
    let first = Remote::from_store("origin", "mem", store.clone(), "first");
    collect(&first, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("the first collection");
    // What the first collection wrote: record 1 (held) and record 2 (released).
    let released: GcLock = serde_json::from_slice(
        &store
            .get(&gc_lock_record(2))
            .await
            .expect("the release record")
            .bytes()
            .await
            .expect("bytes"),
    )
    .expect("a lock record");
    assert!(!released.held, "{released:?}");
    let held = GcLock {
        held: true,
        ..released.clone()
    };
    let first_id = released.id.clone();

    // While the second collection holds the lock, every request the first one made to the
    // lock arrives again.
    let replay_store = store.clone();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let slot = seen.clone();
    let hooked = Arc::new(HookStore::new(
        store.clone(),
        gc_lock_record(4).as_ref(),
        Box::new(move || {
            Box::pin(async move {
                let create = || object_store::PutOptions {
                    mode: object_store::PutMode::Create,
                    ..Default::default()
                };
                let bytes = |l: &GcLock| serde_json::to_vec(l).expect("json");
                let _ = replay_store
                    .put_opts(&gc_lock_record(1), bytes(&held).into(), create())
                    .await;
                let _ = replay_store
                    .put_opts(&gc_lock_record(2), bytes(&released).into(), create())
                    .await;
                let _ = replay_store.delete(&gc_lock_record(1)).await;
                let check = Remote::from_store("origin", "mem", replay_store, "check");
                *slot.lock().expect("slot") = Some(current_lock(&check).await.expect("lock"));
            })
        }),
    ));
    let second = Remote::from_store("origin", "mem", hooked.clone(), "second");
    collect(&second, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("the second collection");
    assert!(
        hooked.has_run(),
        "the late requests arrived during the collection"
    );
    let during = seen.lock().expect("slot").take().expect("the lock as seen");
    let during = during.expect("the running collection's lock vanished");
    assert_ne!(during.id, first_id, "{during:?}");
    assert!(during.held);
    // And once it has finished, the lock is free again.
    assert!(current_lock(&second).await.expect("lock").is_none());
}

/// A push has uploaded its objects, relying on some that were already on the remote but
/// unreachable, when a collection runs before it moves the ref. The collection deletes them;
/// the push must not publish a ref to them: its write is fenced, it waits, re-checks,
/// re-uploads, and lands complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_fenced_by_gc_re_uploads_what_gc_deleted_and_lands_complete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store = folder(&tmp.path().join("remote"));
    push_with_garbage(&repo, store.clone()).await;

    // main now makes the same change as the deleted branch: its table and chunks are on the
    // remote already, unreachable.
    let file = tmp.path().join("tmp.csv");
    write_rows(&file, 4000, 4300, "tmp");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    let tip = repo
        .commit("same change on main", "T <t@example.com>")
        .await
        .expect("commit");

    let gc_remote = Remote::from_store("origin", "remote", store.clone(), "gc");
    let gc_report = Arc::new(std::sync::Mutex::new(None));
    let slot = gc_report.clone();
    let hooked = Arc::new(HookStore::new(
        store.clone(),
        "refs/heads/main/0",
        Box::new(move || {
            Box::pin(async move {
                let now = GcOptions {
                    lease_grace: Some(std::time::Duration::ZERO),
                    ..Default::default()
                };
                let r = collect(&gc_remote, &[], &now, 0, &NoProgress).await;
                *slot.lock().expect("slot") = Some(r.expect("gc between upload and ref write"));
            })
        }),
    ));
    let remote = Remote::from_store("origin", "remote", hooked.clone(), "pusher");
    let report = push_main(&repo, &remote).await;
    assert!(hooked.has_run(), "the collection ran inside the push");
    let gc = gc_report.lock().expect("slot").take().expect("gc report");
    assert_eq!(gc.fenced, 1, "{gc:?}");
    assert!(gc.gc.removed.objects > 0, "{gc:?}");
    assert_eq!(report.updates.len(), 1);
    assert_eq!(report.updates[0].kind, UpdateKind::FastForward);
    assert_eq!(report.updates[0].new, Some(tip));
    let clean = Remote::from_store("origin", "remote", store.clone(), "check");
    let main = RefName::branch("main").expect("name");
    assert_eq!(
        clean.refs.read(&main).await.expect("read").commit(),
        Some(tip)
    );
    assert_consistent(&clean, "after the fenced push").await;
    assert_clone_complete(store, &tmp.path().join("clone"), "after the fenced push").await;
}

/// A push reads its ref, then (before it announces the record it will create) others move the
/// ref on and a collection compacts the log, freeing the number the push means to create. The
/// push must notice that its ref moved, not create the freed number again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_record_number_was_compacted_away_is_rejected_not_resurrected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = representative_repo(&tmp.path().join("a")).await;
    let store = folder(&tmp.path().join("remote"));
    let setup = Remote::from_store("origin", "remote", store.clone(), "a");
    push_all(&a, &setup).await.expect("first push");
    let file = tmp.path().join("a.csv");
    write_rows(&file, 7000, 7010, "a");
    import(&a, &file, Some(ImportMode::Upsert)).await;
    a.commit("a's change", "A <a@example.com>")
        .await
        .expect("commit");

    let b = repo_with_throwaway_branch(&tmp.path().join("b")).await;
    let b_remote = Remote::from_store("origin", "remote", store.clone(), "b");
    let gc_remote = Remote::from_store("origin", "remote", store.clone(), "gc");
    let b_file = tmp.path().join("b.csv");
    let hooked = Arc::new(HookStore::new(
        store.clone(),
        "leases/",
        Box::new(move || {
            Box::pin(async move {
                // The import's future is not Send: run b on a thread of its own.
                tokio::task::spawn_blocking(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async move {
                        let force = PushOptions {
                            force: true,
                            ..Default::default()
                        };
                        let main = ["main".to_string()];
                        for round in 0..2 {
                            write_rows(&b_file, 8000 + round, 8001 + round, "b");
                            import(&b, &b_file, Some(ImportMode::Upsert)).await;
                            b.commit("b's change", "B <b@example.com>")
                                .await
                                .expect("commit");
                            push(&b, &b_remote, &main, &[], &force, &NoProgress)
                                .await
                                .expect("b pushes");
                        }
                        let report =
                            collect(&gc_remote, &[], &GcOptions::default(), 0, &NoProgress)
                                .await
                                .expect("gc");
                        assert!(report.gc.ref_records >= 2, "{report:?}");
                    })
                })
                .await
                .expect("b and the collection");
            })
        }),
    ));
    let remote = Remote::from_store("origin", "remote", hooked.clone(), "a");
    let report = push_main(&a, &remote).await;
    assert!(hooked.has_run());
    assert!(
        matches!(
            report.rejected.as_slice(),
            [strata_remote::Error::Moved { .. }]
        ),
        "{report:?}"
    );
    let main = RefName::branch("main").expect("name");
    let clean = Remote::from_store("origin", "remote", store.clone(), "check");
    let folder = clean.refs.records(&main).await.expect("records");
    let numbers: Vec<u64> = folder.records.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(
        numbers,
        vec![3],
        "only b's newest record is left: {numbers:?}"
    );
    assert_consistent(&clean, "after the rejected push").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_lock_held_by_another_repository_is_refused_unless_broken() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    push_with_garbage(&repo, store.clone()).await;
    // A collection by another repository that crashed: its lock stays.
    let lock = strata_remote::gc::GcLock {
        format: 1,
        id: "crashed-run".into(),
        writer: "other".into(),
        time: 0,
        held: true,
        holder: None,
    };
    store
        .put(
            &strata_engine::store::layout::gc_lock_record(1),
            serde_json::to_vec(&lock).expect("json").into(),
        )
        .await
        .expect("put lock");
    let mine = Remote::from_store("origin", "mem", store.clone(), "mine");
    let resume = GcOptions {
        resume_own: true,
        ..Default::default()
    };
    let err = collect(&mine, &[], &resume, 0, &NoProgress)
        .await
        .expect_err("another repository's lock");
    assert!(
        matches!(err, strata_remote::Error::GcRunning { .. }),
        "{err}"
    );
    // A push with something to move waits for the lock, then gives up with advice.
    let file = tmp.path().join("more.csv");
    write_rows(&file, 9000, 9010, "more");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    let tip = repo
        .commit("more", "T <t@example.com>")
        .await
        .expect("commit");
    let opts = PushOptions {
        gc_wait: Some(std::time::Duration::from_millis(300)),
        ..Default::default()
    };
    let main = ["main".to_string()];
    let err = push(&repo, &mine, &main, &[], &opts, &NoProgress)
        .await
        .expect_err("blocked by the lock");
    assert!(
        matches!(err, strata_remote::Error::GcRunning { .. }),
        "{err}"
    );
    let main_ref = RefName::branch("main").expect("name");
    assert_ne!(
        mine.refs.read(&main_ref).await.expect("read").commit(),
        Some(tip)
    );
    let broken = GcOptions {
        break_lock: true,
        ..Default::default()
    };
    let report = collect(&mine, &[], &broken, 0, &NoProgress)
        .await
        .expect("broken lock");
    assert!(report.took_over.is_some());
    assert_eq!(garbage_left(&mine).await, 0);
    assert_consistent(&mine, "after breaking the lock").await;
    push(&repo, &mine, &main, &[], &opts, &NoProgress)
        .await
        .expect("push after the lock is gone");
    assert_eq!(
        mine.refs.read(&main_ref).await.expect("read").commit(),
        Some(tip)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_storage_call_of_gc_leaves_a_folder_remote_consistent_and_a_retry_completes()
{
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    gc_fault_matrix(
        |name| folder(&root.join(name)),
        &GC_FAULTS,
        Reach::EveryCall,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_storage_call_of_gc_leaves_a_memory_remote_consistent_and_a_retry_completes()
{
    gc_fault_matrix(|_| Arc::new(InMemory::new()), &GC_FAULTS, Reach::EveryCall).await;
}
