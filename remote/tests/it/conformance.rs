//! The conformance suite on the in-process stores: memory and a local folder.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use strata_remote::conformance;

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

fn folder(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("folder store"))
}

macro_rules! both {
    ($name:ident, $call:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_memory() {
                let f = $call;
                f(memory()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_a_local_folder() {
                let dir = tempfile::tempdir().expect("tempdir");
                let f = $call;
                f(folder(&dir)).await;
            }
        }
    };
}

both!(
    create_only_puts_never_overwrite,
    conformance::create_only_puts_never_overwrite
);
both!(ref_create_is_exclusive, |s| {
    conformance::ref_create_is_exclusive(s, 32)
});
both!(
    stale_updates_conflict_even_after_a_b_a,
    conformance::stale_updates_conflict_even_after_a_b_a
);
both!(concurrent_writers_lose_nothing, |s| {
    conformance::concurrent_writers_lose_nothing(s, 8, 10)
});
both!(
    a_lost_response_is_resolved_by_reading_back,
    conformance::a_lost_response_is_resolved_by_reading_back
);
both!(a_reader_never_sees_a_ref_to_a_missing_object, |s| {
    conformance::a_reader_never_sees_a_ref_to_a_missing_object(s, 50)
});
both!(
    the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record,
    conformance::the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record
);
