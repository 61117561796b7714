//! The capability probe accepts stores that enforce create-only writes and refuses those that
//! only pretend to (fail closed); a push to a refused store changes nothing.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use strata_remote::probe::probe;
use strata_remote::testing::IgnoresConditionsStore;

#[tokio::test]
async fn a_store_that_enforces_create_only_writes_passes_the_probe() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    probe(&store, "memory://ok", "n1")
        .await
        .expect("memory enforces create-only writes");
    let dir = tempfile::tempdir().expect("tempdir");
    let folder: Arc<dyn ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("folder"),
    );
    probe(&folder, "file://", "n2")
        .await
        .expect("a folder enforces create-only writes");
}

#[tokio::test]
async fn a_store_that_ignores_conditional_writes_is_refused_with_a_clear_reason() {
    let store: Arc<dyn ObjectStore> =
        Arc::new(IgnoresConditionsStore::new(Arc::new(InMemory::new())));
    let err = probe(&store, "s3://pretend/x", "n")
        .await
        .expect_err("must be refused");
    let text = err.to_string();
    assert!(
        text.contains("does not enforce conditional writes"),
        "{text}"
    );
    assert!(
        matches!(err, strata_remote::Error::UnsafeStore { .. }),
        "{text}"
    );
}

#[tokio::test]
async fn a_push_to_a_store_that_ignores_conditional_writes_moves_no_ref() {
    use strata_engine::progress::NoProgress;
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = strata_engine::Repository::init(&tmp.path().join("local"))
        .await
        .expect("init");
    let file = tmp.path().join("t.csv");
    std::fs::write(&file, "id,v\n1,a\n").expect("write");
    let opts = strata_engine::edit::ImportOptions {
        primary_key: Some(vec!["id".into()]),
        ..Default::default()
    };
    repo.import("t", &file, &opts, &NoProgress)
        .await
        .expect("import");
    repo.commit("one", "T <t@example.com>")
        .await
        .expect("commit");
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store: Arc<dyn ObjectStore> = Arc::new(IgnoresConditionsStore::new(inner.clone()));
    let remote = strata_remote::Remote::from_store("origin", "memory://pretend", store, "w");
    let err = strata_remote::push::push(
        &repo,
        &remote,
        &["main".to_string()],
        &[],
        &Default::default(),
        &NoProgress,
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(err, strata_remote::Error::UnsafeStore { .. }),
        "{err}"
    );
    let clean = strata_remote::Remote::from_store("origin", "memory://pretend", inner, "r");
    assert!(clean
        .refs
        .list(strata_engine::store::RefKind::Branch)
        .await
        .expect("list")
        .is_empty());
}
