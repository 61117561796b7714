//! The one bounded retry loop: every attempt is logged, waits grow with jitter, and after the
//! last attempt the caller gets a clear error, never an endless loop.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;
#[cfg(test)]
use crate::error::Result;

/// What one attempt came to.
pub enum Attempt<T> {
    /// Done: the value.
    Done(T),
    /// Try again (after a pause); the reason is logged and, after the last attempt, reported.
    Again(String),
}

/// How often to try, and how long to wait in between.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (at least one).
    pub attempts: u32,
    /// The first pause; each next one doubles, up to `max_pause`.
    pub pause: Duration,
    pub max_pause: Duration,
}

impl Retry {
    /// `attempts` attempts, the first pause 20 ms, pauses up to 1 s.
    pub const fn times(attempts: u32) -> Self {
        Retry {
            attempts,
            pause: Duration::from_millis(20),
            max_pause: Duration::from_secs(1),
        }
    }

    /// No pause between attempts (the store state changes by itself, e.g. a listing that
    /// raced with a compaction).
    pub const fn at_once(attempts: u32) -> Self {
        Retry {
            attempts,
            pause: Duration::ZERO,
            max_pause: Duration::ZERO,
        }
    }

    /// Runs `step` until it is done or the attempts run out; `what` names the work in logs
    /// and in the final error.
    pub async fn run<T, E, F, Fut>(self, what: &str, mut step: F) -> std::result::Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::result::Result<Attempt<T>, E>>,
        E: From<Error>,
    {
        let mut pause = self.pause;
        let mut last = String::new();
        for attempt in 1..=self.attempts.max(1) {
            match step(attempt).await? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Again(why) => {
                    tracing::debug!(what, attempt, reason = %why, "trying again");
                    last = why;
                }
            }
            if attempt < self.attempts && !pause.is_zero() {
                tokio::time::sleep(jitter(pause)).await;
                pause = (pause * 2).min(self.max_pause);
            }
        }
        Err(Error::Unavailable(format!(
            "{what}: gave up after {} attempts ({last})",
            self.attempts.max(1)
        ))
        .into())
    }
}

/// A pause between half and all of `d`, so that writers that collided do not collide again.
fn jitter(d: Duration) -> Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64 % 1000;
    d / 2 + d / 2 * (r as u32) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_retry_stops_at_its_bound_with_the_last_reason() {
        let mut calls = 0;
        let out: Result<()> = Retry::at_once(3)
            .run("testing", |_| {
                calls += 1;
                async { Ok(Attempt::Again("busy".into())) }
            })
            .await;
        assert_eq!(calls, 3);
        let err = out.expect_err("gave up").to_string();
        assert!(
            err.contains("testing") && err.contains("3 attempts") && err.contains("busy"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_retry_returns_the_first_success() {
        let v: Result<u32> = Retry::times(5)
            .run("testing", |n| async move {
                Ok(if n < 3 {
                    Attempt::Again(format!("attempt {n}"))
                } else {
                    Attempt::Done(n)
                })
            })
            .await;
        assert_eq!(v.expect("done"), 3);
    }
}
