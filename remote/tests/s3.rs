//! The protocol on real S3 servers started by the test command (./test.sh): Ceph radosgw and
//! LocalStack. These tests never skip: without a server they fail and say how to start one.
//!
//! LocalStack's create-only put on a brand-new key is not atomic by design, so the "exactly one
//! winner" race is proven on radosgw (and on memory and folders); LocalStack runs the rest.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use object_store::ObjectStore;
use strata_remote::conformance;
use strata_remote::testing::Fault;

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: the S3 tests need the local S3 servers. Run ./test.sh, which starts them, \
             or: bash localstack/all.sh start && eval \"$(bash localstack/all.sh env)\""
        )
    })
}

fn unique(name: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{name}-{nanos:x}-{:x}", std::process::id())
}

/// A store under a fresh prefix of the test bucket on the server at `var`.
fn s3(var: &str, name: &str) -> Arc<dyn ObjectStore> {
    let bucket = std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into());
    let options = BTreeMap::from([
        ("endpoint".to_string(), endpoint(var)),
        ("allow_http".to_string(), "true".to_string()),
    ]);
    let url = format!("s3://{bucket}/tests/{}", unique(name));
    strata_remote::cloud::open("s3", &url, &options).expect("the S3 store builds")
}

const RADOSGW: &str = "STRATA_RADOSGW_ENDPOINT";
const LOCALSTACK: &str = "STRATA_LOCALSTACK_ENDPOINT";

macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_radosgw() {
                let f = $body;
                f(RADOSGW).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_localstack() {
                let f = $body;
                f(LOCALSTACK).await;
            }
        }
    };
}

on_both!(create_only_puts_never_overwrite, |var| async move {
    conformance::create_only_puts_never_overwrite(s3(var, "immutable")).await
});
on_both!(stale_updates_conflict_even_after_a_b_a, |var| async move {
    conformance::stale_updates_conflict_even_after_a_b_a(s3(var, "aba")).await
});
on_both!(concurrent_writers_lose_nothing, |var| async move {
    conformance::concurrent_writers_lose_nothing(s3(var, "counter"), 8, 5).await
});
on_both!(
    a_lost_response_is_resolved_by_reading_back,
    |var| async move { conformance::a_lost_response_is_resolved_by_reading_back(s3(var, "lost")).await }
);
on_both!(
    a_reader_never_sees_a_ref_to_a_missing_object,
    |var| async move {
        conformance::a_reader_never_sees_a_ref_to_a_missing_object(s3(var, "visible"), 30).await
    }
);
on_both!(
    the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record,
    |var| async move {
        conformance::the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record(s3(
            var, "gc-lock",
        ))
        .await
    }
);
on_both!(
    the_store_passes_the_conditional_write_probe,
    |var| async move {
        strata_remote::probe::probe(&s3(var, "probe"), var, "probe")
            .await
            .expect("probe")
    }
);
/// Faults at every storage call of a push, on radosgw: the two that depend on the server's
/// answers (a lost response, a 409); memory and folders run every kind in faults.rs.
/// LocalStack, the slowest server here and one whose create-only puts of a new key are not
/// atomic, is covered by the conformance tests above. The push publishes no Iceberg views
/// here: their calls are plain create-only puts and reads, which the memory and folder
/// matrices fault one by one, and each would add a whole push to this slowest matrix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_at_any_storage_call_of_a_push_leaves_the_remote_consistent_on_radosgw() {
    let base = unique("faults");
    fault_matrix(
        |name| s3(RADOSGW, &format!("{base}-{name}")),
        &[Fault::LoseResponse, Fault::Conflict],
        Views::Skip,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_many_racing_ref_writers_wins_on_radosgw() {
    for round in 0..20 {
        conformance::ref_create_is_exclusive(s3(RADOSGW, &format!("exclusive-{round}")), 16).await;
    }
}

/// Lost responses at every storage call of a collection, on radosgw (memory and folders run
/// every kind in gc.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_at_any_storage_call_of_gc_leaves_the_remote_consistent_on_radosgw() {
    let base = unique("gc-faults");
    gc_fault_matrix(
        |name| s3(RADOSGW, &format!("{base}-{name}")),
        &[Fault::LoseResponse, Fault::Conflict],
    )
    .await
}
