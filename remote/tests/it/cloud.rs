//! The protocol on real cloud storage servers started by the test command (./test.sh): Ceph
//! radosgw and LocalStack (S3), Azurite (Azure Blob Storage) and fake-gcs-server (Google
//! Cloud Storage). These tests never skip: without a server they fail and say how to start it.
//!
//! LocalStack's create-only put on a brand-new key is not atomic by design, so the "exactly one
//! winner" race is proven on radosgw, Azurite and fake-gcs-server (and on memory and folders);
//! LocalStack runs the rest.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::*;
use object_store::ObjectStore;
use strata_remote::conformance;
use strata_remote::testing::{create_gcs_emulator_bucket, Fault};

/// A cloud storage server the test command starts.
#[derive(Debug, Clone, Copy)]
enum Server {
    Radosgw,
    LocalStack,
    Azurite,
    Gcs,
}

/// Azurite's well-known development account and its published key (not a secret).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Server {
    fn endpoint(self) -> String {
        let var = match self {
            Server::Radosgw => "STRATA_RADOSGW_ENDPOINT",
            Server::LocalStack => "STRATA_LOCALSTACK_ENDPOINT",
            Server::Azurite => "STRATA_AZURITE_ENDPOINT",
            Server::Gcs => "STRATA_GCS_ENDPOINT",
        };
        std::env::var(var).unwrap_or_else(|_| {
            panic!(
                "{var} is not set: the cloud tests need the local storage servers. Run ./test.sh, \
                 which starts them, or: bash localstack/all.sh start && eval \"$(bash localstack/all.sh env)\""
            )
        })
    }

    /// A store under a fresh prefix of the test bucket (container) on this server, configured
    /// by options alone.
    fn store(self, name: &str) -> Arc<dyn ObjectStore> {
        let bucket = std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into());
        let endpoint = self.endpoint();
        let (scheme, options) = match self {
            Server::Radosgw | Server::LocalStack => (
                "s3",
                vec![("endpoint", endpoint), ("allow_http", "true".into())],
            ),
            Server::Azurite => (
                "az",
                vec![
                    (
                        "endpoint",
                        format!("{}/{AZURITE_ACCOUNT}", endpoint.trim_end_matches('/')),
                    ),
                    ("account_name", AZURITE_ACCOUNT.into()),
                    ("access_key", AZURITE_KEY.into()),
                    ("allow_http", "true".into()),
                ],
            ),
            Server::Gcs => (
                "gs",
                vec![("endpoint", endpoint), ("skip_signature", "true".into())],
            ),
        };
        let options: BTreeMap<String, String> = options
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let bucket = match self {
            // A bucket per store on the GCS emulator (see `create_gcs_emulator_bucket`).
            Server::Gcs => {
                let own = unique("strata").to_lowercase();
                create_gcs_emulator_bucket(&self.endpoint(), &own)
                    .unwrap_or_else(|e| panic!("the GCS emulator creates a bucket: {e}"));
                own
            }
            _ => bucket,
        };
        let url = format!("{scheme}://{bucket}/tests/{}", unique(name));
        strata_remote::cloud::open(scheme, &url, &options)
            .unwrap_or_else(|e| panic!("the {self:?} store builds: {e}"))
    }
}

fn unique(name: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{name}-{nanos:x}-{:x}", std::process::id())
}

macro_rules! on_all {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_radosgw() {
                let f = $body;
                f(Server::Radosgw).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_localstack() {
                let f = $body;
                f(Server::LocalStack).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_azurite() {
                let f = $body;
                f(Server::Azurite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_gcs() {
                let f = $body;
                f(Server::Gcs).await;
            }
        }
    };
}

on_all!(
    create_only_puts_never_overwrite,
    |server: Server| async move {
        conformance::create_only_puts_never_overwrite(server.store("immutable")).await
    }
);
on_all!(
    stale_updates_conflict_even_after_a_b_a,
    |server: Server| async move {
        conformance::stale_updates_conflict_even_after_a_b_a(server.store("aba")).await
    }
);
on_all!(
    concurrent_writers_lose_nothing,
    |server: Server| async move {
        conformance::concurrent_writers_lose_nothing(server.store("counter"), 8, 5).await
    }
);
on_all!(
    a_lost_response_is_resolved_by_reading_back,
    |server: Server| async move {
        conformance::a_lost_response_is_resolved_by_reading_back(server.store("lost")).await
    }
);
on_all!(
    a_reader_never_sees_a_ref_to_a_missing_object,
    |server: Server| async move {
        conformance::a_reader_never_sees_a_ref_to_a_missing_object(server.store("visible"), 30)
            .await
    }
);
on_all!(
    the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record,
    |server: Server| async move {
        conformance::the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record(
            server.store("gc-lock"),
        )
        .await
    }
);
on_all!(
    the_store_passes_the_conditional_write_probe,
    |server: Server| async move {
        strata_remote::probe::probe(&server.store("probe"), &format!("{server:?}"), "probe")
            .await
            .expect("probe")
    }
);
/// Faults at the first and the last write of each kind of a push: its version file, its lease,
/// its chunks, its objects, every ref record and `latest` copy, and the lease's release (see
/// `Counts::first_and_last_writes_of_each_kind`). Memory and folders fault every call with
/// every kind in faults.rs; what a server adds is its own answer to a write, and the push's
/// twenty-odd chunk and object puts are made by one code path and answered alike. At a read or
/// a listing every kind acts as a plain failure, which the wrapper answers before the server
/// is asked (see `Fault::calls`).
/// The push publishes no Iceberg views here: their calls are plain create-only puts and
/// reads, which the memory and folder matrices fault one by one, and each would add a whole
/// push to these matrices. LocalStack, the slowest server here and one whose create-only
/// puts of a new key are not atomic, is covered by the conformance tests above. On radosgw the
/// push also carries an annotated tag (its record is one more kind of write).
async fn push_faults(server: Server, faults: &[Fault]) {
    let base = unique("faults");
    let tag = match server {
        Server::Radosgw => Tag::Annotated,
        _ => Tag::Left,
    };
    fault_matrix(
        |name| server.store(&format!("{base}-{name}")),
        faults,
        Views::Skip,
        Reach::EachKindOfWrite,
        tag,
    )
    .await
}

/// On radosgw, a lost response at each kind of write of a push: the server stored the write, and
/// the push reads it back or meets the server's own refusal when it tries again. (A refused
/// write or any other fault the wrapper injects without asking the server acts the same on
/// every store; memory and folders run those.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_response_at_each_kind_of_write_of_a_push_leaves_the_remote_consistent_on_radosgw() {
    push_faults(Server::Radosgw, &[Fault::LoseResponse]).await
}

/// On the emulators, a lost response at each kind of write of a push: the server stored the write
/// and the push was told it failed, so its next try of a create-only put meets the server's
/// own refusal, in each cloud's own words (Azure 409 `BlobAlreadyExists`, GCS 412
/// `PreconditionFailed`), and must take it for what it is. (A refused write injected by the
/// wrapper is the same on every server; radosgw, folders and memory run that one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_response_at_each_kind_of_write_of_a_push_leaves_the_remote_consistent_on_azurite() {
    push_faults(Server::Azurite, &[Fault::LoseResponse]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_response_at_each_kind_of_write_of_a_push_leaves_the_remote_consistent_on_gcs() {
    push_faults(Server::Gcs, &[Fault::LoseResponse]).await
}

async fn racing_ref_writers(server: Server) {
    for round in 0..20 {
        conformance::ref_create_is_exclusive(server.store(&format!("exclusive-{round}")), 16).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_many_racing_ref_writers_wins_on_radosgw() {
    racing_ref_writers(Server::Radosgw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_many_racing_ref_writers_wins_on_azurite() {
    racing_ref_writers(Server::Azurite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_many_racing_ref_writers_wins_on_gcs() {
    racing_ref_writers(Server::Gcs).await
}

/// A lost response at each kind of write of a collection (every write to a lock or ref record,
/// the first and last deletion of chunks and of objects), on radosgw (memory and folders run every
/// kind in gc.rs; see the push matrix above for why a server needs only this one). A
/// collection's calls are the same kinds of request as a push's (create-only puts, reads,
/// listings, deletes), which the emulators answer in the matrices and conformance tests
/// above; this matrix is the slowest here, so it runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_response_at_each_kind_of_write_of_gc_leaves_the_remote_consistent_on_radosgw() {
    let base = unique("gc-faults");
    gc_fault_matrix(
        |name| Server::Radosgw.store(&format!("{base}-{name}")),
        &[Fault::LoseResponse],
        Reach::EachKindOfWrite,
    )
    .await
}
