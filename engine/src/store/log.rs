//! A log of immutable numbered records: the one compare-and-swap primitive of the protocol,
//! under every ref (docs/protocol.md, section 4) and the remote's garbage-collection lock
//! (section 8).
//!
//! 1. Record `n` is the key `DIR/<n as 20 digits>`; the highest number present is the
//!    newest record, found by listing (never by probing numbers, which would break when old
//!    records are removed).
//! 2. The next record is created with a create-only put: of writers racing for one number,
//!    exactly one wins.
//! 3. An unclear outcome (a lost response, a retry that finds the key, a `409` conflict, a
//!    timeout) is settled by reading the record back: the same bytes (each record carries a
//!    fresh nonce) mean this writer won; other bytes mean it lost; nothing means no request
//!    landed yet, and the create is tried again. When that cannot be settled, the outcome is
//!    reported as unknown ([`crate::Error::UnknownOutcome`]) and callers must clean nothing up:
//!    the write may still land.
//! 4. Records are removed only by compaction, which keeps the newest and every number a
//!    writer may still try to create.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use crate::error::{Error, Result};
use crate::retry::{Attempt, Retry};
use crate::store::{create, delete_opt, get_opt, layout, list_after, list_all, Created};

/// How often an unclear create is tried again before its outcome is called unknown.
const CREATE_ATTEMPTS: u32 = 6;

/// A folder of numbered records in one store.
#[derive(Clone, Debug)]
pub struct NumberedLog {
    store: Arc<dyn ObjectStore>,
    dir: Path,
}

/// What creating a record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This writer's record is stored under the number.
    Won,
    /// Another writer's record is: these are its bytes.
    Lost(Bytes),
}

impl NumberedLog {
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path) -> Self {
        NumberedLog { store, dir }
    }

    /// The key of record `seq`.
    pub fn record(&self, seq: u64) -> Path {
        self.dir.clone().join(layout::record_name(seq))
    }

    /// The folder of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every key in the folder (records, and anything else stored there).
    pub async fn keys(&self) -> Result<Vec<ObjectMeta>> {
        list_all(&self.store, &self.dir).await
    }

    /// The numbers of the records after `after` (all of them for 0), in increasing order.
    pub async fn seqs_after(&self, after: u64) -> Result<Vec<u64>> {
        let metas = if after == 0 {
            list_all(&self.store, &self.dir).await?
        } else {
            list_after(&self.store, &self.dir, &self.record(after)).await?
        };
        let mut seqs: Vec<u64> = metas
            .iter()
            .filter(|m| {
                m.location
                    .prefix_match(&self.dir)
                    .is_some_and(|mut p| p.nth(1).is_none())
            })
            .filter_map(|m| m.location.filename().and_then(layout::parse_record_seq))
            .filter(|s| *s > after)
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The newest record and its number, or `None` when the log is empty. `from` is a number
    /// known to be at most the newest (a hint; 0 for none): listing starts just before it. A
    /// record listed but gone by the time it is read was removed by compaction because a
    /// newer one exists, so the listing is done again.
    pub async fn newest(&self, from: u64) -> Result<Option<(u64, Bytes)>> {
        let after = AtomicU64::new(from.saturating_sub(1));
        Retry::at_once(4)
            .run(
                &format!("reading the newest record of {}", self.dir),
                |_| {
                    let after = &after;
                    async move {
                        let start = after.load(Ordering::SeqCst);
                        let Some(seq) = self.seqs_after(start).await?.last().copied() else {
                            if start == 0 {
                                return Ok(Attempt::Done(self.newer_than(0, None).await?));
                            }
                            // The hint named a record that is not there: list everything.
                            after.store(0, Ordering::SeqCst);
                            return Ok(Attempt::Again("the hint names a removed record".into()));
                        };
                        match get_opt(&self.store, &self.record(seq)).await? {
                            Some(bytes) => {
                                Ok(Attempt::Done(self.newer_than(seq, Some(bytes)).await?))
                            }
                            None => {
                                after.store(0, Ordering::SeqCst);
                                Ok(Attempt::Again(format!("record {seq} vanished while read")))
                            }
                        }
                    }
                },
            )
            .await
    }

    /// The newest record, given that the listing's newest is `seq` (`bytes`; 0 and `None`:
    /// nothing listed): records created after it that a lagging listing did not show yet are
    /// found by reading the next numbers directly (one GET that finds nothing in the normal
    /// case). A read of a single key is fresh on every supported store even where listings
    /// may lag, so a reader never takes an old record for the newest (docs/protocol.md,
    /// section 4).
    async fn newer_than(&self, seq: u64, bytes: Option<Bytes>) -> Result<Option<(u64, Bytes)>> {
        let mut newest = bytes.map(|b| (seq, b));
        let mut next = seq + 1;
        while let Some(b) = get_opt(&self.store, &self.record(next)).await? {
            newest = Some((next, b));
            next += 1;
        }
        Ok(newest)
    }

    /// Whether `seq` is still the newest record (one LIST, one GET).
    pub async fn is_newest(&self, seq: u64) -> Result<bool> {
        let listed = self.seqs_after(seq.saturating_sub(1)).await?;
        let listed_newest =
            listed.last().copied().unwrap_or(0) == seq && (seq == 0 || listed.contains(&seq));
        // A listing that lags would not show a record just created: read the next number.
        Ok(listed_newest && get_opt(&self.store, &self.record(seq + 1)).await?.is_none())
    }

    /// The bytes of record `seq`, if it exists.
    pub async fn get(&self, seq: u64) -> Result<Option<Bytes>> {
        get_opt(&self.store, &self.record(seq)).await
    }

    /// Creates record `seq` holding `bytes` (which must be unique to this write: carry a
    /// nonce). See the module documentation for how unclear outcomes are settled.
    pub async fn create(&self, seq: u64, bytes: Bytes) -> Result<Outcome> {
        let path = self.record(seq);
        let sent = AtomicBool::new(false);
        let result: Result<Outcome> = Retry::times(CREATE_ATTEMPTS)
            .run(&format!("creating {path}"), |_| {
                let path = &path;
                let bytes = bytes.clone();
                let sent = &sent;
                async move {
                    sent.store(true, Ordering::SeqCst);
                    let why = match create(&self.store, path, bytes.clone()).await? {
                        Created::Created => return Ok(Attempt::Done(Outcome::Won)),
                        Created::Unclear(e) => e,
                    };
                    match get_opt(&self.store, path).await? {
                        Some(found) if found == bytes => Ok(Attempt::Done(Outcome::Won)),
                        Some(found) => Ok(Attempt::Done(Outcome::Lost(found))),
                        // Nothing there yet: the request did not land (or not yet: a 409
                        // means another request for the key is in flight).
                        None => Ok(Attempt::Again(why.to_string())),
                    }
                }
            })
            .await;
        match result {
            Ok(o) => Ok(o),
            Err(e) if sent.load(Ordering::SeqCst) => Err(Error::UnknownOutcome {
                what: format!("the write of {path}"),
                detail: e.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Removes the records below `below`, except the numbers in `keep`. Returns how many
    /// were removed.
    pub async fn remove_below(&self, below: u64, keep: &BTreeSet<u64>) -> Result<u64> {
        let mut removed = 0;
        for seq in self.seqs_after(0).await? {
            if seq < below && !keep.contains(&seq) {
                delete_opt(&self.store, &self.record(seq)).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
