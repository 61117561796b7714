//! Crash consistency and cost of the sync protocol, in one process over a local folder:
//! a fault at every storage call of a representative push, and request counts.

use std::sync::Arc;

use crate::common::*;
use strata_engine::edit::{ImportMode, ImportOptions};
use strata_engine::progress::NoProgress;
use strata_engine::Repository;
use strata_remote::fetch::fetch;
use strata_remote::push::{push, PushOptions};
use strata_remote::testing::CountingStore;
use strata_remote::Remote;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_of_any_kind_at_any_storage_call_of_a_push_leaves_a_folder_remote_consistent_and_a_retry_completes(
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    fault_matrix(
        |name| folder(&tmp.path().join(name)),
        &ALL_FAULTS,
        Views::Publish,
        Reach::EveryCall,
        Tag::Left,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_of_any_kind_at_any_storage_call_of_a_push_leaves_a_memory_remote_consistent_and_a_retry_completes(
) {
    fault_matrix(
        |_| Arc::new(object_store::memory::InMemory::new()),
        &ALL_FAULTS,
        Views::Publish,
        Reach::EveryCall,
        Tag::Annotated,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_a_one_row_change_uploads_only_the_changed_chunk_and_metadata() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(&tmp.path().join("local"))
        .await
        .expect("init");
    let file = tmp.path().join("rows.csv");
    write_rows(&file, 0, 200_000, "a");
    let opts = ImportOptions {
        primary_key: Some(vec!["id".into()]),
        ..Default::default()
    };
    repo.import("t", &file, &opts, &NoProgress)
        .await
        .expect("import");
    repo.commit("first", "T <t@example.com>")
        .await
        .expect("commit");
    let counting = Arc::new(CountingStore::new(folder(&tmp.path().join("remote"))));
    let remote = Remote::from_store("origin", "remote", counting.clone(), "w");
    let main = ["main".to_string()];
    push(
        &repo,
        &remote,
        &main,
        &[],
        &PushOptions::default(),
        &NoProgress,
    )
    .await
    .expect("push");
    let full = counting
        .counts
        .bytes_put
        .load(std::sync::atomic::Ordering::SeqCst);

    write_rows(&file, 123_456, 123_457, "changed");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    repo.commit("one row", "T <t@example.com>")
        .await
        .expect("commit");
    counting.counts.reset();
    push(
        &repo,
        &remote,
        &main,
        &[],
        &PushOptions::default(),
        &NoProgress,
    )
    .await
    .expect("push");
    let puts = counting
        .counts
        .puts
        .load(std::sync::atomic::Ordering::SeqCst);
    let bytes = counting
        .counts
        .bytes_put
        .load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "one-row push over a 200k-row table: {} (first push uploaded {full} bytes)",
        counting.counts.summary()
    );
    // One chunk (the change is stored as a delta of its chunk), at most two index nodes, the
    // table, the commit, the ref record, its hint, and the push's lease (docs/protocol.md,
    // section 8); then the Iceberg view: the data manifest, the delta's position-delete file
    // and its delete manifest, the list, the metadata file and its hint (section 10).
    assert!(puts <= 8 + 6, "{puts} PUTs for a one-row change");
    assert!(
        bytes * 10 < full,
        "{bytes} bytes uploaded of {full} for a one-row change"
    );
    // (Each ref read confirms its newest record with one more GET: docs/protocol.md,
    // section 4. Publishing the view takes about a dozen requests, whatever the table's size.)
    assert!(
        counting.counts.requests() <= 24 + 12,
        "{}",
        counting.counts.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_up_to_date_fetch_costs_a_constant_number_of_requests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(&tmp.path().join("local"))
        .await
        .expect("init");
    let file = tmp.path().join("rows.csv");
    let counting = Arc::new(CountingStore::new(folder(&tmp.path().join("remote"))));
    let remote = Remote::from_store("origin", "remote", counting.clone(), "w");
    let other = Repository::init(&tmp.path().join("other"))
        .await
        .expect("init");
    let main = ["main".to_string()];
    let mut costs = Vec::new();
    for round in 0..6u64 {
        write_rows(&file, round * 1000, round * 1000 + 1000, "r");
        import(
            &repo,
            &file,
            if round == 0 {
                None
            } else {
                Some(ImportMode::Upsert)
            },
        )
        .await;
        repo.commit("more", "T <t@example.com>")
            .await
            .expect("commit");
        push(
            &repo,
            &remote,
            &main,
            &[],
            &PushOptions::default(),
            &NoProgress,
        )
        .await
        .expect("push");
        fetch(&other, &remote, false, &NoProgress)
            .await
            .expect("fetch");
        counting.counts.reset();
        let report = fetch(&other, &remote, false, &NoProgress)
            .await
            .expect("up-to-date fetch");
        assert!(report.updated.is_empty());
        costs.push(counting.counts.requests());
    }
    println!("up-to-date fetch requests after 1..6 commits: {costs:?}");
    assert!(
        costs.iter().all(|c| *c == costs[0]),
        "cost grew with history: {costs:?}"
    );
    // Marker, branch listing, hint, record listing, record, the GET that confirms no newer
    // record exists (a lagging listing could hide it: docs/protocol.md, section 4), tags.
    assert!(costs[0] <= 7, "{costs:?}");
}

/// A push stores each object only after every object it names (chunks before the index nodes
/// that list them, child nodes before parents, an index before its table, tables before the
/// commit, the commit before its ref record), with several leaves copied side by side and
/// puts finishing in another order than they were started in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_stores_every_object_after_the_objects_it_names() {
    use strata_engine::store::ObjectKind;
    use strata_engine::tree::Node;
    use strata_engine::{Commit, ObjectId, TableObject};
    use strata_remote::testing::OrderStore;

    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(&tmp.path().join("local"))
        .await
        .expect("init");
    let file = tmp.path().join("rows.csv");
    write_rows(&file, 0, 40_000, "a");
    let opts = ImportOptions {
        primary_key: Some(vec!["id".into()]),
        chunk_rows: Some(64),
        ..Default::default()
    };
    repo.import("t", &file, &opts, &NoProgress)
        .await
        .expect("import");
    repo.commit("first", "T <t@example.com>")
        .await
        .expect("commit");
    let order = Arc::new(OrderStore::new(Arc::new(
        object_store::memory::InMemory::new(),
    )));
    let remote = Remote::from_store("origin", "memory://order", order.clone(), "w");
    push_main(&repo, &remote).await;

    let finished = order.finished();
    let at = |key: &str| {
        finished
            .iter()
            .position(|k| k == key)
            .unwrap_or_else(|| panic!("{key} was not stored"))
    };
    let (mut leaves, mut checked) = (0, 0);
    for (i, key) in finished.iter().enumerate() {
        let Some(hex) = key.strip_prefix("objects/") else {
            continue;
        };
        let id: ObjectId = hex.replace('/', "").parse().expect("an object id");
        let bytes = repo
            .objects()
            .get(ObjectKind::Meta, &id)
            .await
            .expect("the object is local");
        let named: Vec<String> = if let Ok(node) = serde_json::from_slice::<Node>(&bytes) {
            let kind = if node.level == 0 {
                leaves += 1;
                ObjectKind::Chunk
            } else {
                ObjectKind::Meta
            };
            node.entries
                .iter()
                .map(|e| kind.path(&e.id).to_string())
                .collect()
        } else if let Ok(table) = serde_json::from_slice::<TableObject>(&bytes) {
            vec![ObjectKind::Meta.path(&table.index).to_string()]
        } else if let Ok(commit) = serde_json::from_slice::<Commit>(&bytes) {
            commit
                .tables
                .values()
                .map(|t| ObjectKind::Meta.path(t).to_string())
                .collect()
        } else {
            continue;
        };
        for n in named {
            assert!(at(&n) < i, "{key} was stored before {n}, which it names");
            checked += 1;
        }
    }
    assert!(
        leaves >= 3,
        "the table should span several leaves, has {leaves}"
    );
    assert!(checked > 600, "only {checked} references checked");
    let commit = ObjectKind::Meta
        .path(&repo.resolve("main").await.expect("main"))
        .to_string();
    let record = finished
        .iter()
        .position(|k| k.starts_with("refs/heads/main/0"))
        .expect("a ref record");
    assert!(
        at(&commit) < record,
        "the ref moved before its commit was stored"
    );
}
