//! The protocol's conformance suite: one function per behaviour the sync protocol relies on,
//! each taking the store under test. Every backend runs all of them (remote/tests/ runs memory
//! and local folders; the S3 servers run them too). Each panics with a message on failure.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_engine::store::{create_only, ObjectKind, Objects, RefLog, RefName};
use strata_engine::ObjectId;

use crate::testing::{Fault, FaultStore};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

fn commit_id(n: u64) -> ObjectId {
    ObjectId::of(&n.to_be_bytes())
}

/// A create-only put of a key that exists fails, and the first content stays.
pub async fn create_only_puts_never_overwrite(store: Arc<dyn ObjectStore>) {
    let path = Path::from(unique("conformance/immutable"));
    let create = create_only;
    store
        .put_opts(&path, PutPayload::from_static(b"first"), create())
        .await
        .expect("the first create-only put succeeds");
    let second = store
        .put_opts(&path, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "a second create-only put must fail with AlreadyExists, got {second:?}"
    );
    let got = store
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(
        got,
        Bytes::from_static(b"first"),
        "the object was overwritten"
    );
}

/// Of many writers creating the same ref record at once, exactly one wins.
pub async fn ref_create_is_exclusive(store: Arc<dyn ObjectStore>, writers: usize) {
    let name = RefName::branch(&unique("exclusive")).expect("name");
    let initial = RefLog::new(store.clone(), "reader")
        .read(&name)
        .await
        .expect("read");
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = RefLog::new(store.clone(), format!("writer-{w}"));
        let state = initial.clone();
        tasks.push(tokio::spawn(async move {
            log.update(&state, Some(commit_id(w as u64)), 0).await
        }));
    }
    let mut winners = Vec::new();
    for (w, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task") {
            Ok(_) => winners.push(w),
            Err(e) => assert!(
                e.is_conflict(),
                "a losing writer must see a conflict, got {e}"
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer must win, winners: {winners:?}"
    );
    let now = RefLog::new(store, "reader")
        .read(&name)
        .await
        .expect("read");
    assert_eq!(
        now.commit(),
        Some(commit_id(winners[0] as u64)),
        "the ref names the winner"
    );
}

/// An update based on a stale read fails, and so does one after A -> B -> A (no ABA).
pub async fn stale_updates_conflict_even_after_a_b_a(store: Arc<dyn ObjectStore>) {
    let name = RefName::branch(&unique("aba")).expect("name");
    let log = RefLog::new(store.clone(), "w");
    let s0 = log.read(&name).await.expect("read");
    let s1 = log.update(&s0, Some(commit_id(1)), 0).await.expect("A");
    let s2 = log.update(&s1, Some(commit_id(2)), 0).await.expect("B");
    let s3 = log
        .update(&s2, Some(commit_id(1)), 0)
        .await
        .expect("A again");
    let stale = RefLog::new(store.clone(), "stale");
    let err = stale
        .update(&s1, Some(commit_id(9)), 0)
        .await
        .expect_err("stale write must fail");
    assert!(err.is_conflict(), "expected a conflict, got {err}");
    let deleted = log.update(&s3, None, 0).await.expect("delete");
    let err = stale
        .update(&s3, Some(commit_id(9)), 0)
        .await
        .expect_err("stale after delete");
    assert!(err.is_conflict(), "expected a conflict, got {err}");
    assert_eq!(
        log.read(&name).await.expect("read"),
        deleted,
        "the delete is the newest record"
    );
}

/// `writers` tasks each move a ref `rounds` times, re-reading and retrying on conflict: every
/// acknowledged update is in the log and the log holds exactly `writers * rounds` records.
pub async fn concurrent_writers_lose_nothing(
    store: Arc<dyn ObjectStore>,
    writers: usize,
    rounds: usize,
) {
    let name = RefName::branch(&unique("counter")).expect("name");
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = RefLog::new(store.clone(), format!("writer-{w}"));
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for r in 0..rounds {
                let value = commit_id((w * 1000 + r) as u64);
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 10_000, "writer {w} starved");
                    let state = log.read(&name).await.expect("read");
                    match log.update(&state, Some(value), 0).await {
                        Ok(s) => {
                            acked.push((s.seq, value));
                            break;
                        }
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    let total = (writers * rounds) as u64;
    let final_state = RefLog::new(store.clone(), "reader")
        .read(&name)
        .await
        .expect("read");
    assert_eq!(final_state.seq, total, "every update is one record");
    let seqs: HashSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs.len() as u64,
        total,
        "two acknowledged updates claimed the same record"
    );
    for (seq, value) in acked {
        let path = strata_engine::store::layout::ref_record(name.kind, &name.name, seq);
        let bytes = store
            .get(&path)
            .await
            .expect("record")
            .bytes()
            .await
            .expect("bytes");
        let rec: strata_engine::store::RefRecord = serde_json::from_slice(&bytes).expect("decode");
        assert_eq!(
            rec.commit,
            Some(value),
            "record {seq} lost an acknowledged update"
        );
    }
}

/// A ref write whose response is lost still reports the truth (read back by nonce), and a
/// write that failed without landing is tried again: each lands exactly once.
pub async fn a_lost_response_is_resolved_by_reading_back(store: Arc<dyn ObjectStore>) {
    let name = RefName::branch(&unique("lost")).expect("name");
    let clean = RefLog::new(store.clone(), "setup");
    let state = clean.read(&name).await.expect("read");
    let state = clean
        .update(&state, Some(commit_id(6)), 0)
        .await
        .expect("create the ref");
    // Call 1 is the next record's create-only put: it lands, but its response is lost.
    let faulty = Arc::new(FaultStore::new(store.clone(), 1, Fault::LoseResponse));
    let log = RefLog::new(faulty.clone(), "w");
    let after = log
        .update(&state, Some(commit_id(7)), 0)
        .await
        .expect("a write that landed must be reported as a success");
    assert!(
        faulty.fired().is_some_and(|f| f.starts_with("put")),
        "{:?}",
        faulty.fired()
    );
    assert_eq!((after.seq, after.commit()), (2, Some(commit_id(7))));
    let read = RefLog::new(store.clone(), "r")
        .read(&name)
        .await
        .expect("read");
    assert_eq!((read.seq, read.commit()), (2, Some(commit_id(7))));
    // A write that failed without landing is tried again, and lands once.
    let faulty = Arc::new(FaultStore::new(store.clone(), 1, Fault::Fail));
    let after = RefLog::new(faulty.clone(), "w")
        .update(&read, Some(commit_id(8)), 0)
        .await
        .expect("a failed request is tried again");
    assert!(
        faulty.fired().is_some_and(|f| f.starts_with("put")),
        "{:?}",
        faulty.fired()
    );
    assert_eq!(after.seq, 3);
    let read = RefLog::new(store.clone(), "r")
        .read(&name)
        .await
        .expect("read");
    assert_eq!((read.seq, read.commit()), (3, Some(commit_id(8))));
    let records = RefLog::new(store, "r")
        .records(&name)
        .await
        .expect("records");
    assert_eq!(
        records.records.len(),
        3,
        "one record per acknowledged write"
    );
}

/// While one task stores objects and then moves a ref to them, readers that follow the ref
/// always find the object.
pub async fn a_reader_never_sees_a_ref_to_a_missing_object(
    store: Arc<dyn ObjectStore>,
    rounds: usize,
) {
    let name = RefName::branch(&unique("visible")).expect("name");
    let objects = Objects::new(store.clone(), "conformance");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // How many reads the reader has finished. The writer waits (a bounded while) for the
    // reader to read between its updates: on a fast store (memory) on a loaded machine, a
    // writer left alone can finish every round while the reader waits to be scheduled.
    let read_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let store = store.clone();
        let name = name.clone();
        let objects = objects.clone();
        let done = done.clone();
        let read_count = read_count.clone();
        tokio::spawn(async move {
            let reader_moves = |seen: usize| {
                let read_count = read_count.clone();
                async move {
                    for _ in 0..10_000 {
                        if read_count.load(std::sync::atomic::Ordering::SeqCst) > seen {
                            return;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            };
            reader_moves(0).await;
            let log = RefLog::new(store, "writer");
            for i in 0..rounds {
                let id = objects
                    .put(
                        ObjectKind::Meta,
                        Bytes::from(format!("{{\"round\":{i},\"name\":\"{}\"}}", name.name)),
                    )
                    .await
                    .expect("put object");
                let state = log.read(&name).await.expect("read");
                log.update(&state, Some(id), 0).await.expect("update");
                reader_moves(read_count.load(std::sync::atomic::Ordering::SeqCst)).await;
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    // The reader reads until the writer is done, checking every value it sees.
    let reader = {
        let store = store.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let log = RefLog::new(store, "reader");
            let mut seen = std::collections::HashSet::new();
            let mut reads = 0usize;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                if let Some(id) = log.read(&name).await.expect("read").commit() {
                    objects
                        .get(ObjectKind::Meta, &id)
                        .await
                        .expect("a ref named a missing object");
                    seen.insert(id);
                }
                reads += 1;
                read_count.store(reads, std::sync::atomic::Ordering::SeqCst);
                if finished {
                    break;
                }
                tokio::task::yield_now().await;
            }
            (seen.len(), reads)
        })
    };
    writer.await.expect("writer");
    let (distinct, reads) = reader.await.expect("reader");
    let last = RefLog::new(store, "r").read(&name).await.expect("read");
    assert_eq!(last.seq, rounds as u64);
    // The reader really read while the ref moved: it saw it at several values.
    assert!(
        distinct >= 2,
        "the reader saw the ref at {distinct} value(s) in {reads} reads; it must see it move"
    );
}

/// The garbage-collection lock (docs/protocol.md, section 8): a held lock stops another
/// collection (naming the holder) until it is broken explicitly; breaking takes it over;
/// every collection releases it by a newer record; a released lock is taken by the next.
pub async fn the_gc_lock_admits_one_collection_and_is_released_by_a_newer_record(
    store: Arc<dyn ObjectStore>,
) {
    use crate::gc::{collect, current_lock, GcLock, GcOptions};
    use crate::Remote;
    use strata_engine::progress::NoProgress;
    use strata_engine::store::layout;
    let marker = serde_json::json!({"format": 1, "kind": "strata-repository"});
    store
        .put(
            &layout::marker(),
            serde_json::to_vec(&marker).expect("json").into(),
        )
        .await
        .expect("marker");
    let remote = Remote::from_store("origin", "conformance", store.clone(), "me").assume_trusted();
    // A collection elsewhere holds the lock.
    let foreign = GcLock {
        format: 1,
        id: "elsewhere".into(),
        writer: "other".into(),
        time: 0,
        held: true,
        holder: Some("other-host:/other/.strata:1:1".into()),
    };
    store
        .put_opts(
            &layout::gc_lock_record(1),
            serde_json::to_vec(&foreign).expect("json").into(),
            create_only(),
        )
        .await
        .expect("a held lock");
    let err = collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect_err("a held lock stops the collection");
    assert!(
        matches!(err, crate::Error::GcRunning { ref id, .. } if id == "elsewhere"),
        "{err}"
    );
    assert_eq!(
        current_lock(&remote)
            .await
            .expect("read")
            .map(|l| l.id)
            .as_deref(),
        Some("elsewhere"),
        "a refused collection leaves the lock as it was"
    );
    // Broken explicitly, it is taken over; the collection then releases it.
    let breaking = GcOptions {
        break_lock: true,
        ..Default::default()
    };
    let report = collect(&remote, &[], &breaking, 0, &NoProgress)
        .await
        .expect("--break-lock takes the lock over");
    assert_eq!(report.took_over.as_deref(), Some("elsewhere"));
    assert!(
        current_lock(&remote).await.expect("read").is_none(),
        "released"
    );
    // A released lock is taken by the next collection, and released again.
    collect(&remote, &[], &GcOptions::default(), 0, &NoProgress)
        .await
        .expect("the next collection");
    assert!(
        current_lock(&remote).await.expect("read").is_none(),
        "released"
    );
    let records = strata_engine::store::list_all(&store, &layout::gc_lock_dir())
        .await
        .expect("list");
    assert_eq!(
        records.len(),
        1,
        "only the newest lock record is kept: {records:?}"
    );
}

/// Runs every behaviour against one store.
pub async fn run_all(store: Arc<dyn ObjectStore>) {
    create_only_puts_never_overwrite(store.clone()).await;
    ref_create_is_exclusive(store.clone(), 16).await;
    stale_updates_conflict_even_after_a_b_a(store.clone()).await;
    concurrent_writers_lose_nothing(store.clone(), 8, 5).await;
    a_lost_response_is_resolved_by_reading_back(store.clone()).await;
    a_reader_never_sees_a_ref_to_a_missing_object(store, 30).await;
}
