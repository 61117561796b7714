//! Work that keeps a core busy from start to end (decoding a chunk, encoding one, formatting a
//! batch as text) runs on a few threads of its own, one per core, in the order it was asked
//! for.
//!
//! A scan asks for many chunks at once, so that reads run ahead of the caller. Were each
//! chunk's decoding a task of tokio's blocking pool, dozens of threads would share two cores:
//! each batch would be done later, and each of those threads allocates from an arena of the
//! C allocator of its own (up to eight per core), so memory that one thread frees is seldom
//! what another allocates next, and every new page is one the kernel maps and clears again.
//! On these threads the work is done in turn, a batch's memory is used again by the next, and
//! the reads in front of them (on the blocking pool) still run ahead. A 10M-row CSV export took
//! 60,000 page faults and a peak of 200 MB on the blocking pool, 31,000 and 110 MB here, and
//! 13% less time; a 10M-row import from Parquet a peak of 140 MB and 1.68-1.72 s on the
//! blocking pool, 85 MB and 1.39-1.51 s here (docs/architecture.md, "CPU work on a thread per
//! core").
//!
//! Only work that never waits for other work on these threads may run on them: work that
//! waited for work queued behind it would wait forever.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// A piece of work for the threads.
type Job = Box<dyn FnOnce() + Send>;

/// Work that did not end: it panicked, or the threads are gone.
#[derive(Debug, thiserror::Error)]
#[error("the work stopped before it ended (a bug; please report it)")]
pub(crate) struct Stopped;

/// Where work is sent: `None` when no thread could be started (the work then goes to tokio's
/// blocking pool).
fn threads() -> Option<&'static Sender<Job>> {
    static THREADS: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    THREADS
        .get_or_init(|| {
            let (send, receive) = channel::<Job>();
            let receive = Arc::new(Mutex::new(receive));
            let mut started = 0;
            for n in 0..crate::chunk::cores().unwrap_or(1).max(1) {
                let receive = receive.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("strata-cpu-{n}"))
                    .spawn(move || work_on(&receive));
                started += usize::from(spawned.is_ok());
            }
            (started > 0).then_some(send)
        })
        .as_ref()
}

/// A thread's loop: the next job, until the sender is gone.
fn work_on(receive: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only to take a job, so a poisoned lock's receiver is still whole.
        let job = receive.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Runs `work` on the threads and waits for its result.
pub(crate) async fn run<T, F>(work: F) -> Result<T, Stopped>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic is the caller's to report; the thread goes on to the next job.
        let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
    });
    let sent = match threads() {
        Some(send) => send.send(job),
        None => Err(std::sync::mpsc::SendError(job)),
    };
    if let Err(std::sync::mpsc::SendError(job)) = sent {
        tokio::task::spawn_blocking(job);
    }
    match result.await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_tasks_run_at_once_than_there_are_cores() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.expect("spawned").expect("ran"));
        }
        assert_eq!(done, (0..24).collect::<Vec<_>>());
        let cores = crate::chunk::cores().unwrap_or(1).max(1);
        let most = most.load(Ordering::SeqCst);
        assert!(most <= cores, "{most} tasks ran at once on {cores} cores");
        assert!(most >= 1);
    }

    #[tokio::test]
    async fn work_that_panics_is_reported_and_the_threads_go_on() {
        let cores = crate::chunk::cores().unwrap_or(1).max(1);
        for _ in 0..cores + 1 {
            let stopped = run(|| -> u32 { panic!("work that fails") }).await;
            assert!(stopped.is_err());
        }
        assert_eq!(run(|| 7).await.expect("ran"), 7);
    }
}
