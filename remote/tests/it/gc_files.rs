//! The gc lock and push leases are read from a store anyone can write to: whatever bytes they
//! hold, a collection and a push refuse or proceed, and never panic or delete on a lease they
//! cannot read.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use strata_engine::gc::list_objects;
use strata_engine::progress::NoProgress;
use strata_engine::store::layout;
use strata_engine::store::objects::encode_json;
use strata_engine::store::{ObjectKind, Objects, RefName};
use strata_engine::ObjectId;
use strata_remote::gc::{collect, current_lock, GcOptions};
use strata_remote::Remote;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A remote holding one branch and one unreachable object, plus `file` stored at `path`.
async fn remote_with(path: &object_store::path::Path, file: Vec<u8>) -> (Remote, ObjectId) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let remote = Remote::from_store("origin", "mem", store.clone(), "w");
    remote.ensure_initialized().await.expect("init");
    let objects = Objects::new(store.clone(), "mem");
    let garbage = objects
        .put(ObjectKind::Chunk, bytes::Bytes::from_static(b"garbage"))
        .await
        .expect("put");
    let main = RefName::branch("main").expect("name");
    let state = remote.refs.read(&main).await.expect("read");
    let commit =
        strata_engine::Commit::new(vec![], Default::default(), "T".into(), 0, "empty".into());
    let id = objects
        .put(ObjectKind::Meta, encode_json(&commit).expect("json"))
        .await
        .expect("commit");
    remote.refs.update(&state, Some(id), 0).await.expect("ref");
    store.put(path, file.into()).await.expect("file");
    (remote, garbage)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_lease_file_either_is_honoured_or_stops_gc_before_it_deletes(
        data in prop::collection::vec(any::<u8>(), 0..300),
        seq in 0u64..6,
        json in any::<bool>(),
    ) {
        runtime().block_on(async {
            let bytes = if json {
                format!(r#"{{"format":1,"writer":"x","time":0,"slots":[{{"ref":"refs/heads/main","seq":{seq}}}]}}"#).into_bytes()
            } else {
                data
            };
            let (remote, garbage) = remote_with(&layout::lease("l"), bytes).await;
            let opts = GcOptions { lease_grace: Some(std::time::Duration::ZERO), ..Default::default() };
            let outcome = collect(&remote, &[], &opts, 0, &NoProgress).await;
            let left = list_objects(&remote.objects).await.expect("list");
            let kept = left.contains_key(&(ObjectKind::Chunk, garbage));
            match outcome {
                Ok(_) => assert!(!kept, "a collection that succeeds removes the garbage"),
                Err(e) => {
                    assert!(kept, "a collection that fails on a lease deletes nothing: {e}");
                    assert!(e.to_string().contains("lease"), "{e}");
                }
            }
            assert!(current_lock(&remote).await.expect("lock").is_none());
        });
    }

    #[test]
    fn any_lock_file_blocks_gc_with_advice_and_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        runtime().block_on(async {
            let (remote, garbage) = remote_with(&layout::gc_lock_record(1), data).await;
            match collect(&remote, &[], &GcOptions::default(), 0, &NoProgress).await {
                Err(e) => {
                    let held = matches!(e, strata_remote::Error::GcRunning { .. });
                    assert!(held || e.to_string().contains("upgrade"), "{e}");
                }
                Ok(_) => panic!("a lock file held by no one we know must block gc"),
            }
            let left = list_objects(&remote.objects).await.expect("list");
            assert!(left.contains_key(&(ObjectKind::Chunk, garbage)));
        });
    }
}
