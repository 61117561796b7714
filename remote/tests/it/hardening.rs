//! Regression tests for the ways an acknowledged write could be lost, a ref could name a
//! missing object, or a collection could delete live data: each fails without its fix.

use std::sync::Arc;

use crate::common::*;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use strata_engine::edit::ImportMode;
use strata_engine::progress::NoProgress;
use strata_engine::store::{layout, list_all, RefKind, RefLog, RefName};
use strata_remote::fetch::fetch;
use strata_remote::gc::{collect, current_lock, GcLock, GcOptions};
use strata_remote::push::{push, PushOptions};
use strata_remote::testing::{
    CaseInsensitiveStore, HookStore, IgnoresConditionsStore, ListingsFailAfterStore,
    StaleListingStore, StallStore,
};
use strata_remote::Remote;

/// A remote (memory) with the representative repository's main and side pushed, and a new
/// commit on main locally that is not pushed yet.
async fn one_commit_ahead(
    dir: &std::path::Path,
) -> (strata_engine::Repository, Arc<dyn ObjectStore>) {
    let repo = representative_repo(dir).await;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let remote = Remote::from_store("origin", "mem", store.clone(), "setup");
    push_all(&repo, &remote).await.expect("first push");
    let file = dir.join("more.csv");
    write_rows(&file, 7000, 7100, "late");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    repo.commit("more", "T <t@example.com>")
        .await
        .expect("commit");
    (repo, store)
}

/// Regression (hardening item 4): a ref write whose outcome is unknown (the request is applied
/// after the client gave up) must leave the push's lease in place, so that a collection
/// fences the record before deleting the objects it would name. Withdrawing the lease let the
/// late write land on deleted objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_write_applied_after_the_push_gave_up_never_names_deleted_objects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, store) = one_commit_ahead(tmp.path()).await;
    let before = Remote::from_store("origin", "mem", store.clone(), "check")
        .refs
        .read(&RefName::branch("main").expect("name"))
        .await
        .expect("read")
        .commit();
    let stall = Arc::new(StallStore::new(store.clone(), "refs/heads/main/0"));
    let remote = Remote::from_store("origin", "mem", stall.clone(), "pusher").assume_trusted();
    let err = push_main_result(&repo, &remote)
        .await
        .expect_err("the ref write cannot be settled");
    assert!(
        matches!(&err, strata_remote::Error::Engine(e) if e.is_unknown_outcome()),
        "{err}"
    );
    assert!(stall.holds_a_write(), "the write is still in flight");
    let leases = list_all(&store, &layout::leases_dir()).await.expect("list");
    assert_eq!(
        leases.len(),
        1,
        "the lease stays while the outcome is unknown"
    );

    // A collection runs meanwhile: it fences the announced record, then sweeps.
    let gc = Remote::from_store("origin", "mem", store.clone(), "gc").assume_trusted();
    let opts = GcOptions {
        lease_grace: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let report = collect(&gc, &[], &opts, 0, &NoProgress).await.expect("gc");
    assert_eq!(report.fenced, 1, "{report:?}");
    // The late write lands now: it must fail, the number being taken by the fence.
    let late = stall.apply_late().await.expect("a write was held");
    assert!(late.is_err(), "the late ref write landed after the fence");
    let clean = Remote::from_store("origin", "mem", store.clone(), "check");
    assert_consistent(&clean, "after the late write").await;
    assert_eq!(
        clean
            .refs
            .read(&RefName::branch("main").expect("name"))
            .await
            .expect("read")
            .commit(),
        before
    );
    // Pushing again finishes.
    stall.heal();
    let report = push_main_result(&repo, &clean).await.expect("push again");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_consistent(&clean, "after pushing again").await;
}

async fn push_main_result(
    repo: &strata_engine::Repository,
    remote: &Remote,
) -> strata_remote::Result<strata_remote::push::PushReport> {
    push(
        repo,
        remote,
        &["main".to_string()],
        &[],
        &PushOptions::default(),
        &NoProgress,
    )
    .await
}

/// Regression (hardening item 5): an atomic push fenced by a collection after moving its
/// first ref used to leave that ref moved while it waited, and then reported "no ref was
/// moved" when the second ref was rejected. Now the moved ref is moved back before waiting,
/// and the report says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_push_fenced_after_its_first_ref_moves_it_back_and_reports_the_truth() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, store) = one_commit_ahead(tmp.path()).await;
    // side gets a commit too, so both refs move.
    repo.checkout("side", false).await.expect("checkout");
    let file = tmp.path().join("side.csv");
    write_rows(&file, 8000, 8010, "side");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    repo.commit("side work", "T <t@example.com>")
        .await
        .expect("commit");
    let main = RefName::branch("main").expect("name");
    let side = RefName::branch("side").expect("name");
    let refs = RefLog::new(store.clone(), "other");
    let main_before = refs.read(&main).await.expect("read").commit();
    // Just before side's record is written: a collection fences it, and another writer moves
    // side after that (so the push, starting over, finds side moved and is rejected).
    let hook_store = store.clone();
    let elsewhere = main_before;
    let hook = Box::new(move || {
        let store = hook_store.clone();
        Box::pin(async move {
            let refs = RefLog::new(store, "other");
            let side = RefName::branch("side").expect("name");
            let state = refs.read(&side).await.expect("read side");
            refs.fence(&side, state.seq + 1, "gc-test", 0)
                .await
                .expect("fence");
            // Another writer moves side where the local side is not a fast-forward of.
            let state = refs.read(&side).await.expect("read side");
            refs.update(&state, elsewhere, 1)
                .await
                .expect("someone moves side");
        }) as futures::future::BoxFuture<'static, ()>
    });
    let hooked = Arc::new(HookStore::new(store.clone(), "refs/heads/side/0", hook));
    let remote = Remote::from_store("origin", "mem", hooked.clone(), "pusher").assume_trusted();
    let opts = PushOptions {
        atomic: true,
        ..Default::default()
    };
    let branches = ["main".to_string(), "side".to_string()];
    let report = push(&repo, &remote, &branches, &[], &opts, &NoProgress)
        .await
        .expect("push");
    assert!(hooked.has_run());
    assert!(
        !report.rejected.is_empty(),
        "side was moved by another writer"
    );
    // The refs the report says stay moved are exactly the ones that moved.
    let main_now = refs.read(&main).await.expect("read").commit();
    assert_eq!(main_now, main_before, "main was left moved: {report:?}");
    assert!(
        report.updates.iter().all(|u| u.name != main),
        "the report says main moved: {report:?}"
    );
    assert!(report.rollback_failed.is_empty(), "{report:?}");
    assert_consistent(
        &Remote::from_store("origin", "mem", store, "check"),
        "after",
    )
    .await;
    let _ = side;
}

/// Regression (hardening item 6): the collection lock was recognised as one's own by the
/// writer id, which a copy of a checkout shares: a copy could take over a running
/// collection. Now the lock names its checkout, and only that checkout resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_checkout_cannot_take_over_its_running_collection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    push_with_garbage(&repo, store.clone()).await;
    let running = GcLock {
        format: 1,
        id: "running".into(),
        writer: "same-writer".into(),
        time: 0,
        held: true,
        holder: Some("host:/original/.strata:1:2".into()),
    };
    object_store::ObjectStoreExt::put(
        store.as_ref(),
        &layout::gc_lock_record(1),
        serde_json::to_vec(&running).expect("json").into(),
    )
    .await
    .expect("lock");
    let copy = Remote::from_store("origin", "mem", store.clone(), "same-writer").assume_trusted();
    let as_copy = GcOptions {
        resume_own: true,
        holder: Some("host:/copy/.strata:1:3".into()),
        ..Default::default()
    };
    let err = collect(&copy, &[], &as_copy, 0, &NoProgress)
        .await
        .expect_err("the copy must not take over");
    assert!(
        matches!(err, strata_remote::Error::GcRunning { .. }),
        "{err}"
    );
    assert!(garbage_left(&copy).await > 0, "nothing was deleted");
    let as_original = GcOptions {
        resume_own: true,
        holder: running.holder.clone(),
        ..Default::default()
    };
    let report = collect(&copy, &[], &as_original, 0, &NoProgress)
        .await
        .expect("the original checkout resumes it");
    assert_eq!(report.took_over.as_deref(), Some("running"));
    assert_eq!(garbage_left(&copy).await, 0);
}

/// Regression (hardening item 6): a collection whose lock is taken over (`--break-lock`
/// from elsewhere) while it runs must stop before it deletes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_whose_lock_is_taken_over_stops_before_deleting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    push_with_garbage(&repo, store.clone()).await;
    let garbage = garbage_left(&Remote::from_store("origin", "mem", store.clone(), "x")).await;
    assert!(garbage > 0);
    // A push in flight announced a record: the collection fences it, and right then another
    // collection breaks the lock.
    let lease = serde_json::json!({"format": 1, "writer": "p", "time": 0,
        "slots": [{"ref": "refs/heads/main", "seq": 3}]});
    object_store::ObjectStoreExt::put(
        store.as_ref(),
        &layout::lease("in-flight"),
        serde_json::to_vec(&lease).expect("json").into(),
    )
    .await
    .expect("lease");
    let hook_store = store.clone();
    let hook = Box::new(move || {
        let store = hook_store.clone();
        Box::pin(async move {
            let thief = Remote::from_store("origin", "mem", store, "thief").assume_trusted();
            let lock = current_lock(&thief).await.expect("read").expect("held");
            let breaker = GcLock {
                id: "breaker".into(),
                writer: "thief".into(),
                ..lock
            };
            let seq = list_all(&thief.store, &layout::gc_lock_dir())
                .await
                .expect("list")
                .len() as u64;
            object_store::ObjectStoreExt::put(
                thief.store.as_ref(),
                &layout::gc_lock_record(seq + 1),
                serde_json::to_vec(&breaker).expect("json").into(),
            )
            .await
            .expect("break the lock");
        }) as futures::future::BoxFuture<'static, ()>
    });
    let hooked = Arc::new(HookStore::new(store.clone(), "refs/heads/main/0", hook));
    let gc = Remote::from_store("origin", "mem", hooked.clone(), "gc").assume_trusted();
    let opts = GcOptions {
        lease_grace: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let err = collect(&gc, &[], &opts, 0, &NoProgress)
        .await
        .expect_err("the collection lost its lock");
    assert!(hooked.has_run());
    assert!(err.to_string().contains("stopped"), "{err}");
    let check = Remote::from_store("origin", "mem", store.clone(), "x");
    assert_eq!(garbage_left(&check).await, garbage, "nothing was deleted");
}

/// Regression (hardening item 7): a collection writes create-only lock and fence records, so
/// it must refuse a store that does not enforce them (it used to run on a store never probed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_refuses_a_store_that_ignores_conditional_writes_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_throwaway_branch(tmp.path()).await;
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    push_with_garbage(&repo, inner.clone()).await;
    let broken = Arc::new(IgnoresConditionsStore::new(inner.clone()));
    let remote = Remote::from_store("origin", "mem", broken, "gc");
    let err = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, strata_remote::Error::UnsafeStore { .. }),
        "{err}"
    );
    let locks = list_all(&inner, &layout::gc_lock_dir())
        .await
        .expect("list");
    assert!(locks.is_empty(), "a lock record was written: {locks:?}");
}

/// Regression (hardening item 8): on a case-insensitive file system `Main` and `main` are one
/// folder. Reading `Main` reported main's records as damaged; now it is a ref that does not
/// exist, and creating it is refused because it differs from `main` only by case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_that_differ_only_by_case_are_refused_and_never_read_as_damaged() {
    let store: Arc<dyn ObjectStore> =
        Arc::new(CaseInsensitiveStore::new(Arc::new(InMemory::new())));
    let refs = RefLog::new(store.clone(), "w");
    let main = RefName::branch("main").expect("name");
    let state = refs.read(&main).await.expect("read");
    let c = strata_engine::ObjectId::of(b"1");
    refs.update(&state, Some(c), 0).await.expect("create main");
    let upper = RefName::branch("Main").expect("name");
    let read = refs.read(&upper).await.expect("Main reads as absent");
    assert_eq!(read.commit(), None);
    let err = refs
        .update(&read, Some(strata_engine::ObjectId::of(b"2")), 0)
        .await
        .expect_err("Main would be written into main's log");
    assert!(err.to_string().contains("main"), "{err}");
    assert_eq!(refs.read(&main).await.expect("read").commit(), Some(c));
    assert_eq!(
        refs.list(RefKind::Branch).await.expect("list"),
        vec![("main".to_string(), c)]
    );
}

/// Shared folders (hardening, network file systems): on a store whose listings lag (a folder
/// on NFS or SMB with attribute caching), a fetch still sees the newest push, because the
/// newest ref record found by listing is confirmed by reading the next number directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_sees_a_push_that_a_lagging_listing_does_not_show_yet() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let base: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let repo = representative_repo(a.path()).await;
    push_all(
        &repo,
        &Remote::from_store("origin", "mem", base.clone(), "a"),
    )
    .await
    .expect("first push");
    let reader = strata_engine::Repository::init(b.path())
        .await
        .expect("init");
    let stale: Arc<dyn ObjectStore> = Arc::new(StaleListingStore::new(
        base.clone(),
        std::time::Duration::from_secs(600),
    ));
    let theirs = Remote::from_store("origin", "mem", stale.clone(), "b").assume_trusted();
    fetch(&reader, &theirs, false, &NoProgress)
        .await
        .expect("first fetch");

    // A new commit is pushed through the lagging store: listings will not show its record.
    let file = a.path().join("more.csv");
    write_rows(&file, 9000, 9010, "new");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    let pushed = repo
        .commit("more", "T <t@example.com>")
        .await
        .expect("commit");
    let ours = Remote::from_store("origin", "mem", stale.clone(), "a").assume_trusted();
    push_main_result(&repo, &ours).await.expect("push");
    let dir = layout::ref_dir(RefKind::Branch, "main");
    let newest = |l: Vec<object_store::ObjectMeta>| l.into_iter().map(|m| m.location).max();
    let listed = newest(list_all(&stale, &dir).await.expect("list"));
    let stored = newest(list_all(&base, &dir).await.expect("list"));
    assert_ne!(listed, stored, "the listing should lag in this test");

    let report = fetch(&reader, &theirs, false, &NoProgress)
        .await
        .expect("fetch");
    let tracking = reader
        .remote_tracking("origin", "main")
        .await
        .expect("tracking");
    assert_eq!(
        tracking,
        Some(pushed),
        "the fetch missed the push: {report:?}"
    );

    // A push from the old view loses instead of overwriting.
    let c = tempfile::tempdir().expect("tempdir");
    let late = representative_repo(c.path()).await;
    let file = c.path().join("other.csv");
    write_rows(&file, 9500, 9501, "other");
    import(&late, &file, Some(ImportMode::Upsert)).await;
    late.commit("other", "T <t@example.com>")
        .await
        .expect("commit");
    let report = push_main_result(
        &late,
        &Remote::from_store("origin", "mem", stale, "c").assume_trusted(),
    )
    .await
    .expect("the push runs");
    assert!(
        report.updates.is_empty() && !report.rejected.is_empty(),
        "a push from an old base must lose: {report:?}"
    );
}

/// Shared folders: a store whose listings lag is refused before a collection writes or
/// deletes anything: its lease listing could miss a push in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_refuses_a_store_whose_listings_lag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_repo, store) = one_commit_ahead(tmp.path()).await;
    let before = list_all(&store, &object_store::path::Path::from(""))
        .await
        .expect("list");
    let stale: Arc<dyn ObjectStore> = Arc::new(StaleListingStore::new(
        store.clone(),
        std::time::Duration::from_secs(600),
    ));
    let gc = Remote::from_store("origin", "mem", stale, "gc");
    let err = collect(&gc, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, strata_remote::Error::UnsafeStore { ref detail, .. } if detail.contains("stale")),
        "{err}"
    );
    let after = list_all(&store, &object_store::path::Path::from(""))
        .await
        .expect("list");
    let kept: Vec<_> = after
        .iter()
        .filter(|m| !m.location.as_ref().starts_with("probe/"))
        .map(|m| m.location.clone())
        .collect();
    let had: Vec<_> = before.iter().map(|m| m.location.clone()).collect();
    assert_eq!(kept, had, "the refused collection changed the remote");
}

/// A collection that cannot confirm it holds the lock it just took (its listings start
/// failing) releases it before giving up: pushes are not held up by a lock nobody works
/// under until someone breaks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_that_cannot_confirm_its_lock_releases_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_repo, store) = one_commit_ahead(tmp.path()).await;
    let broken = Arc::new(ListingsFailAfterStore::new(
        store.clone(),
        "gc/lock/",
        "gc/lock",
    ));
    let gc = Remote::from_store("origin", "mem", broken, "gc").assume_trusted();
    collect(&gc, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect_err("the lock cannot be confirmed");
    let clean = Remote::from_store("origin", "mem", store, "check");
    assert!(
        current_lock(&clean).await.expect("lock").is_none(),
        "the lock is left held"
    );
}
