//! Tables as stored: a table object (schema, key, chunking, index root) and the one
//! algorithm that changes a table, by merging a sorted stream of changes into its chunks.

use std::collections::{HashSet, VecDeque};

use crate::arrow::array::RecordBatch;
use crate::arrow::datatypes::SchemaRef;
use std::sync::Arc;

use futures::stream::{self, BoxStream, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::chunk::{
    decode_chunk_columns, decode_chunk_on, decode_chunk_rows_on, delta_deletes, encode_chunk_on,
    encode_delta, ChunkParams,
};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::key::{encode_keys, format_key, KeyRange, Keys, Rows};
use crate::schema::TableSchema;
use crate::store::objects::check_format;
use crate::store::{ObjectKind, Objects};
use crate::tree::{self, encode_hex, Delta, Entry, LazyTree, Span};

/// Table object format understood by this build.
pub const TABLE_FORMAT: u32 = 1;

/// A chunk's delta holds at most this share of the chunk's rows (1/4); an edit that would
/// make it larger rewrites the chunk.
const DELTA_SHARE: usize = 4;

/// A chunk entry as stored: its chunk's rows, and its delta's.
struct Stored<'a> {
    entry: &'a Entry,
    base: &'a Rows,
    delta: Option<&'a DeltaRows>,
    /// The chunk's bytes when only its key columns were decoded into `base` (its other
    /// columns are then null): the rows a delta compares are decoded from them.
    keys_only: Option<&'a bytes::Bytes>,
}

/// A chunk's delta as read: its rows (each replaces the chunk's row with its key, or adds
/// one), and the keys of the chunk's rows it deletes, in key order.
pub(crate) struct DeltaRows {
    pub rows: Rows,
    pub deleted: Keys,
}

impl DeltaRows {
    /// The rows the delta holds or deletes.
    fn len(&self) -> usize {
        self.rows.len() + self.deleted.len()
    }
}

/// An edit holds at most the changes of this many full chunks at once: more changes within
/// one chunk's keys are merged with its rows a part at a time.
const HELD_CHUNKS: usize = 4;

/// Chunks encoded and stored at once while writing.
const WRITE_CONCURRENCY: usize = 4;
/// Chunks read ahead while scanning: enough to keep every core decoding. Chunks decode in
/// unequal times and are handed out in key order, so a queue of several per core keeps the
/// cores busy: on two cores, 16 read a table a quarter faster than 4 (bench/).
pub(crate) fn read_ahead() -> usize {
    crate::chunk::cores().map_or(16, |n| (n * 8).clamp(16, 64))
}

/// A table as stored: the object a commit names for each table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableObject {
    pub format: u32,
    pub kind: String,
    pub schema: TableSchema,
    pub chunking: ChunkParams,
    /// Root of the index tree over the chunks.
    pub index: ObjectId,
    pub rows: u64,
    pub bytes: u64,
    /// Chunks in the table (absent in tables stored before it was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
}

impl TableObject {
    pub async fn read(objects: &Objects, id: &ObjectId) -> Result<Self> {
        let t: TableObject = objects.get_json(id).await?;
        check_format(&format!("table {id}"), t.format, TABLE_FORMAT)?;
        if t.kind != "table" {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: format!("expected a table, found a {}", t.kind),
            });
        }
        Ok(t)
    }

    /// The table's chunk entries in key order.
    pub async fn chunks(&self, objects: &Objects) -> Result<Vec<Entry>> {
        Ok(tree::load(objects, &self.index).await?.0)
    }
}

/// What a change stream does to the rows it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// Insert rows; a key that exists already is an error.
    Insert,
    /// Insert rows, replacing those with the same key.
    Upsert,
    /// Remove the rows with these keys (the batches hold only key columns).
    Delete,
}

/// A source of changes sorted by key, each key at most once.
pub trait ChangeSource {
    /// The next run of changes, or `None` at the end.
    fn next_rows(&mut self) -> Result<Option<Rows>>;
}

/// A `ChangeSource` over rows already in memory.
pub struct VecSource(pub VecDeque<Rows>);

impl ChangeSource for VecSource {
    fn next_rows(&mut self) -> Result<Option<Rows>> {
        Ok(self.0.pop_front())
    }
}

/// Buffers a change source so that changes can be taken up to a key.
struct Cursor<'a> {
    source: &'a mut dyn ChangeSource,
    current: Option<Rows>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(source: &'a mut dyn ChangeSource) -> Self {
        Cursor {
            source,
            current: None,
            pos: 0,
        }
    }

    fn fill(&mut self) -> Result<bool> {
        while self.current.as_ref().is_none_or(|c| self.pos >= c.len()) {
            match self.source.next_rows()? {
                Some(rows) => {
                    self.current = Some(rows);
                    self.pos = 0;
                }
                None => {
                    self.current = None;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn peek_key(&mut self) -> Result<Option<&[u8]>> {
        if !self.fill()? {
            return Ok(None);
        }
        Ok(self.current.as_ref().map(|c| c.keys.get(self.pos)))
    }

    /// The rest of the current run of changes (the next run when it is taken), or `None` at
    /// the end: what follows is read only when this is taken.
    fn take_next(&mut self) -> Result<Option<Rows>> {
        if !self.fill()? {
            return Ok(None);
        }
        let cur = self.current.as_ref().expect("filled");
        let rows = cur.slice(self.pos, cur.len());
        self.pos = cur.len();
        Ok(Some(rows))
    }

    /// The changes with keys `<= bound` (all remaining ones when `bound` is `None`), until
    /// it holds at least `limit` rows (the changes are read a run at a time): more may remain
    /// below `bound`.
    fn take_some_until(&mut self, bound: Option<&[u8]>, limit: usize) -> Result<Vec<Rows>> {
        let mut out = Vec::new();
        let mut taken = 0usize;
        while taken < limit && self.fill()? {
            let cur = self.current.as_ref().expect("filled");
            let end = match bound {
                Some(b) => cur.keys.partition_point_le(b),
                None => cur.len(),
            };
            if end <= self.pos {
                break;
            }
            taken += end - self.pos;
            out.push(cur.slice(self.pos, end));
            self.pos = end;
            if end < cur.len() {
                break;
            }
        }
        Ok(out)
    }
}

/// Counts of what applying changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Delete keys that matched no row.
    pub missing: u64,
    pub chunks_written: u64,
    pub chunks_reused: u64,
}

impl ApplyStats {
    /// Adds the row counts of `other` (what a merge counted).
    fn add_counts(&mut self, other: &ApplyStats) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.missing += other.missing;
    }
}

/// Cuts a stream of sorted rows into chunks and stores them.
struct Chunker<'a> {
    objects: &'a Objects,
    params: ChunkParams,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: u32,
    last_key: Vec<u8>,
    out: Vec<PendingEntry>,
    in_flight: usize,
    written: u64,
    /// Where the ids of the chunks this chunker's stores create are sent (see
    /// [`Objects::put_new`]): a write that then fails removes them again.
    created: NewChunks,
}

/// The sending side of the ids of the chunks a write created; each store in flight holds a
/// clone, so the receiver ends once the writer and all its stores are done.
type NewChunks = tokio::sync::mpsc::UnboundedSender<ObjectId>;

enum PendingEntry {
    Ready(Entry),
    /// A chunk being encoded and stored: its entry arrives once it is encoded, before the
    /// store has finished with it.
    Writing {
        entry: tokio::sync::oneshot::Receiver<Entry>,
        put: JoinHandle<Result<()>>,
    },
}

impl<'a> Chunker<'a> {
    fn new(
        objects: &'a Objects,
        params: ChunkParams,
        schema: SchemaRef,
        created: NewChunks,
    ) -> Self {
        Chunker {
            objects,
            params,
            schema,
            pending: Vec::new(),
            pending_rows: 0,
            last_key: Vec::new(),
            out: Vec::new(),
            in_flight: 0,
            written: 0,
            created,
        }
    }

    fn at_boundary(&self) -> bool {
        self.pending_rows == 0
    }

    async fn push(&mut self, rows: &Rows) -> Result<()> {
        let mut start = 0;
        for i in 0..rows.len() {
            self.pending_rows += 1;
            if self.params.is_boundary(rows.keys.get(i), self.pending_rows) {
                self.pending.push(rows.batch.slice(start, i + 1 - start));
                self.last_key.clear();
                self.last_key.extend_from_slice(rows.keys.get(i));
                self.emit().await?;
                start = i + 1;
            }
        }
        if start < rows.len() {
            self.pending
                .push(rows.batch.slice(start, rows.len() - start));
            self.last_key.clear();
            self.last_key
                .extend_from_slice(rows.keys.get(rows.len() - 1));
        }
        Ok(())
    }

    async fn emit(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        let rows = u64::from(self.pending_rows);
        self.pending_rows = 0;
        let last_key = encode_hex(&self.last_key);
        let schema = self.schema.clone();
        let objects = self.objects.clone();
        // A chunk encoded alone (a small edit, or the first chunk of a write) has the cores
        // to itself: its columns are encoded side by side. Otherwise chunks are encoded side
        // by side, one thread each.
        let threads = if self.in_flight == 0 {
            crate::chunk::cores().unwrap_or(1)
        } else {
            1
        };
        let (send, entry) = tokio::sync::oneshot::channel();
        let created = self.created.clone();
        let put = tokio::spawn(async move {
            let (bytes, id) = crate::cpu::run(move || -> Result<_> {
                let batch = crate::arrow::compute::concat_batches(&schema, &batches)
                    .map_err(|e| Error::arrow("assembling a chunk", e))?;
                let bytes = encode_chunk_on(&batch, threads)?;
                let id = ObjectId::of(&bytes);
                Ok((bytes, id))
            })
            .await
            .map_err(|e| Error::Invalid(format!("chunk encoder failed: {e}")))??;
            // Whoever waits for the entry only needs it encoded; the put is joined later.
            let _ = send.send(Entry::plain(id, rows, bytes.len() as u64, last_key));
            if objects.put_new(ObjectKind::Chunk, id, bytes).await? {
                let _ = created.send(id);
            }
            Ok(())
        });
        self.out.push(PendingEntry::Writing { entry, put });
        self.in_flight += 1;
        self.written += 1;
        if self.in_flight > WRITE_CONCURRENCY {
            self.settle(WRITE_CONCURRENCY).await?;
        }
        Ok(())
    }

    /// Stores `merged` (the rows of the chunk entry `stored` with `changes` merged in) as
    /// that entry's chunk plus a delta, when that is how it is stored best: the rows make
    /// exactly one chunk where the chunker would cut them (the cut points stay a function of
    /// the rows alone), and the rows that differ from the chunk's and the chunk's rows that
    /// are gone are few beside it (at most a quarter of its rows; so are the changes and the
    /// old delta's rows and deletes, which are not compared one by one beyond that). The
    /// delta holds just those rows and the keys of those gone; none of either (the changes
    /// restored the chunk's rows) is the chunk alone. Returns whether it did so; if not, the
    /// caller cuts the rows anew.
    async fn as_delta(
        &mut self,
        stored: &Stored<'_>,
        merged: &Picks<'_>,
        changes: &[Rows],
        is_last: bool,
        key_idx: &[usize],
    ) -> Result<bool> {
        let base = stored.base;
        let limit = base.len() / DELTA_SHARE;
        let changed: usize = changes.iter().map(Rows::len).sum();
        let before = stored.delta.map_or(0, DeltaRows::len);
        if !self.at_boundary() || base.is_empty() || changed + before > limit {
            return Ok(false);
        }
        let n = merged.len();
        for i in 0..n {
            let cut = self.params.is_boundary(merged.keys.get(i), (i + 1) as u32);
            if cut != (i + 1 == n) && (cut || !is_last) {
                return Ok(false);
            }
        }
        // The rows that may differ from the chunk's: those the delta held or deleted, and
        // those changed (in key order, once each).
        let mut candidates: Vec<&[u8]> = changes
            .iter()
            .flat_map(|c| (0..c.keys.len()).map(move |i| c.keys.get(i)))
            .collect();
        if let Some(d) = stored.delta {
            candidates.extend((0..d.rows.len()).map(|i| d.rows.keys.get(i)));
            candidates.extend((0..d.deleted.len()).map(|i| d.deleted.get(i)));
        }
        candidates.sort_unstable();
        candidates.dedup();
        // The chunk's rows that are gone (candidates the chunk holds and the rows do not), and
        // the rows that are new or differ from the chunk's row with their key, both in key
        // order.
        let mut deleted = Keys::default();
        let mut picked: Vec<u32> = Vec::new();
        // The positions of the chunk's rows that the delta replaces or deletes (ascending).
        let mut positions: Vec<i64> = Vec::new();
        // Each candidate's position in the chunk (if the chunk has its key) and in the
        // merged rows (if they have it).
        let found: Vec<(&[u8], Option<usize>, Option<usize>)> = candidates
            .iter()
            .map(|&key| {
                let at = base.keys.partition_point_le(key);
                let m = merged.keys.partition_point_le(key);
                (
                    key,
                    (at > 0 && base.keys.get(at - 1) == key).then(|| at - 1),
                    (m > 0 && merged.keys.get(m - 1) == key).then(|| m - 1),
                )
            })
            .collect();
        // The chunk's rows compared with their merged rows, when only the chunk's keys were
        // decoded: those rows alone, and where each lies among them.
        let compared = match stored.keys_only {
            None => None,
            Some(bytes) => {
                let rows: Vec<usize> = found
                    .iter()
                    .filter_map(|&(_, at, m)| at.filter(|_| m.is_some()))
                    .collect();
                // The key columns are in `base` already; the others are decoded side by side.
                let others: Vec<usize> = (0..self.schema.fields().len())
                    .filter(|c| !key_idx.contains(c))
                    .collect();
                let (id, bytes, schema) = (stored.entry.id, bytes.clone(), self.schema.clone());
                let (wanted, columns) = (rows.clone(), others.clone());
                let decoded = if rows.is_empty() || others.is_empty() {
                    Vec::new()
                } else {
                    tokio::task::spawn_blocking(move || {
                        let threads = crate::chunk::cores().unwrap_or(1);
                        decode_chunk_rows_on(&id, bytes, &schema, &columns, &wanted, threads)
                    })
                    .await
                    .map_err(|e| Error::Invalid(format!("chunk decoder failed: {e}")))??
                };
                Some((others, decoded, rows))
            }
        };
        let base_cell = |at: usize, c: usize| match &compared {
            Some((others, decoded, rows)) if !key_idx.contains(&c) => {
                let column = others.iter().position(|&o| o == c).unwrap_or(0);
                let i = rows.partition_point(|&r| r < at);
                decoded[column].slice(i, 1)
            }
            _ => base.batch.column(c).slice(at, 1),
        };
        for (key, at, m) in found {
            let Some(m) = m else {
                if let Some(at) = at {
                    deleted.push(key);
                    positions.push(at as i64);
                }
                continue;
            };
            let same = at.is_some_and(|at| {
                (0..base.batch.num_columns())
                    .all(|c| merged.cell(m, c).to_data() == base_cell(at, c).to_data())
            });
            if !same {
                picked.push(m as u32);
                if let Some(at) = at {
                    positions.push(at as i64);
                }
            }
        }
        if picked.len() + deleted.len() > limit {
            return Ok(false);
        }
        let entry = stored.entry;
        let base_bytes = entry.files()[0].1;
        let last_key = encode_hex(merged.keys.last().unwrap_or_default());
        if picked.is_empty() && deleted.is_empty() {
            self.out.push(PendingEntry::Ready(Entry::plain(
                entry.id, n as u64, base_bytes, last_key,
            )));
            return Ok(true);
        }
        let rows = merged.take(&picked)?;
        let delta_rows = rows.num_rows() as u64;
        let deletes = deleted.len() as u64;
        // Up to a quarter of a chunk: encoded off the runtime's threads.
        let bytes = tokio::task::spawn_blocking(move || encode_delta(&rows, &deleted))
            .await
            .map_err(|e| Error::Invalid(format!("delta encoder failed: {e}")))??;
        let id = ObjectId::of(&bytes);
        let len = bytes.len() as u64;
        crate::iceberg::remember_positions(id, entry.id, key_idx, positions);
        // Stored while the index is edited, as the chunker's chunks are (joined before any
        // node names it).
        let (send, received) = tokio::sync::oneshot::channel();
        let _ = send.send(Entry {
            id: entry.id,
            rows: n as u64,
            bytes: base_bytes + len,
            last_key,
            delta: Some(Delta {
                id,
                rows: delta_rows,
                bytes: len,
                deletes,
            }),
        });
        let (objects, created) = (self.objects.clone(), self.created.clone());
        let put = tokio::spawn(async move {
            if objects.put_new(ObjectKind::Chunk, id, bytes).await? {
                let _ = created.send(id);
            }
            Ok(())
        });
        self.out.push(PendingEntry::Writing {
            entry: received,
            put,
        });
        self.in_flight += 1;
        self.written += 1;
        if self.in_flight > WRITE_CONCURRENCY {
            self.settle(WRITE_CONCURRENCY).await?;
        }
        Ok(true)
    }

    /// Waits for writes until at most `limit` are in flight.
    async fn settle(&mut self, limit: usize) -> Result<()> {
        for slot in self.out.iter_mut() {
            if self.in_flight <= limit {
                break;
            }
            if let PendingEntry::Writing { entry, put } = slot {
                join_put(put).await?;
                let entry = received(entry).await?;
                *slot = PendingEntry::Ready(entry);
                self.in_flight -= 1;
            }
        }
        Ok(())
    }

    /// Every chunk's entry, in order, once all are stored.
    async fn finish(self) -> Result<(Vec<Entry>, u64)> {
        let (entries, written, puts) = self.finish_encoded().await?;
        puts.join().await?;
        Ok((entries, written))
    }

    /// Every chunk's entry, in order, once all are encoded: the stores still in flight are
    /// returned, for the caller to join (before anything refers to the chunks) while it
    /// writes what it builds on the entries.
    async fn finish_encoded(mut self) -> Result<(Vec<Entry>, u64, Puts)> {
        self.emit().await?;
        let mut entries = Vec::with_capacity(self.out.len());
        let mut puts = Puts::default();
        for slot in self.out {
            match slot {
                PendingEntry::Ready(e) => entries.push(e),
                PendingEntry::Writing { mut entry, mut put } => match (&mut entry).await {
                    Ok(e) => {
                        entries.push(e);
                        puts.0.push(put);
                    }
                    // Not encoded: the task's own result says why.
                    Err(_) => {
                        join_put(&mut put).await?;
                        return Err(Error::Invalid("a chunk was not encoded".into()));
                    }
                },
            }
        }
        Ok((entries, self.written, puts))
    }
}

/// Stores of chunks still in flight. Dropped unjoined (an error elsewhere), the stores go on
/// by themselves; their chunks stay unreferenced until gc, as those of any failed write.
#[derive(Default)]
struct Puts(Vec<JoinHandle<Result<()>>>);

impl Puts {
    /// Waits for every store; the first failure is the result.
    async fn join(self) -> Result<()> {
        for mut put in self.0 {
            join_put(&mut put).await?;
        }
        Ok(())
    }
}

async fn join_put(put: &mut JoinHandle<Result<()>>) -> Result<()> {
    put.await
        .map_err(|e| Error::Invalid(format!("chunk writer failed: {e}")))?
}

async fn received(entry: &mut tokio::sync::oneshot::Receiver<Entry>) -> Result<Entry> {
    entry
        .await
        .map_err(|_| Error::Invalid("a chunk was not encoded".into()))
}

/// Reads one chunk's rows with their keys (its delta merged in).
pub async fn read_chunk(
    objects: &Objects,
    entry: &Entry,
    schema: &SchemaRef,
    key_idx: &[usize],
) -> Result<Rows> {
    let (base, delta, _) = read_chunk_parts(objects, entry, schema, key_idx, false).await?;
    match delta {
        Some(delta) => overlay(&entry.id, &base, &delta),
        None => Ok(base),
    }
}

/// Reads one chunk's rows with their keys, and its delta's rows apart. With `keys_only`, and
/// when every other column may hold nulls, only the chunk's key columns are decoded: its
/// other columns are null, and its bytes are returned to decode them from when needed.
async fn read_chunk_parts(
    objects: &Objects,
    entry: &Entry,
    schema: &SchemaRef,
    key_idx: &[usize],
    keys_only: bool,
) -> Result<(Rows, Option<DeltaRows>, Option<bytes::Bytes>)> {
    let id = entry.id;
    let schema = schema.clone();
    let key_idx = key_idx.to_vec();
    let entry_delta = entry.delta;
    let keys_only = keys_only
        && schema
            .fields()
            .iter()
            .enumerate()
            .all(|(i, f)| key_idx.contains(&i) || f.is_nullable());
    read_entry(objects, entry, move |bytes, delta| {
        let delta = match (entry_delta, delta) {
            (Some(d), Some(delta)) => Some(DeltaRows {
                deleted: deleted_keys(&d, &delta)?,
                rows: decode_rows(&d.id, decode_chunk_on(&d.id, delta, &schema, 1)?, &key_idx)?,
            }),
            _ => None,
        };
        if keys_only {
            let keys = decode_chunk_columns(&id, bytes.clone(), &schema, Some(&key_idx))?;
            let rows = keys.num_rows();
            let columns: Vec<crate::arrow::array::ArrayRef> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| match key_idx.iter().position(|&k| k == i) {
                    Some(k) => keys.column(k).clone(),
                    None => crate::arrow::array::new_null_array(f.data_type(), rows),
                })
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
                Error::CorruptObject {
                    id: id.to_hex(),
                    reason: format!("its key columns are not the table's: {e}"),
                }
            })?;
            return Ok((decode_rows(&id, batch, &key_idx)?, delta, Some(bytes)));
        }
        Ok((decode_whole(&id, bytes, &schema, &key_idx)?, delta, None))
    })
    .await
}

/// A chunk's rows with their keys, decoded whole from `bytes` (read before for its keys
/// alone), off the runtime's threads.
async fn decode_base(
    id: &ObjectId,
    bytes: bytes::Bytes,
    schema: &SchemaRef,
    key_idx: &[usize],
) -> Result<Rows> {
    let (id, schema, key_idx) = (*id, schema.clone(), key_idx.to_vec());
    tokio::task::spawn_blocking(move || decode_whole(&id, bytes, &schema, &key_idx))
        .await
        .map_err(|e| Error::Invalid(format!("chunk decoder failed: {e}")))?
}

/// A chunk's rows with their keys, every column decoded. Chunks read one at a time (an edit,
/// a diff, a merge) have the cores to themselves: their columns are decoded side by side.
fn decode_whole(
    id: &ObjectId,
    bytes: bytes::Bytes,
    schema: &SchemaRef,
    key_idx: &[usize],
) -> Result<Rows> {
    let threads = crate::chunk::cores().unwrap_or(1);
    decode_rows(id, decode_chunk_on(id, bytes, schema, threads)?, key_idx)
}

/// The keys (in key order) of the chunk's rows a delta deletes, from the delta's bytes: its
/// footer is read only when its index entry counts some (fsck checks the two agree).
pub(crate) fn deleted_keys(d: &Delta, bytes: &bytes::Bytes) -> Result<Keys> {
    if d.deletes == 0 {
        return Ok(Keys::default());
    }
    delta_deletes(&d.id, bytes)
}

/// How many rows a chunk and its delta hold together (decoded, all columns; `deleted`: the
/// keys of the chunk's rows the delta deletes, from [`delta_deletes`]).
pub fn merged_rows(
    id: &ObjectId,
    base: &RecordBatch,
    delta: &RecordBatch,
    deleted: Keys,
    key_idx: &[usize],
) -> Result<u64> {
    let base = decode_rows(id, base.clone(), key_idx)?;
    let delta = DeltaRows {
        rows: decode_rows(id, delta.clone(), key_idx)?,
        deleted,
    };
    // A deleted key is one of the chunk's, and not one of the delta's rows.
    for i in 0..delta.deleted.len() {
        let key = delta.deleted.get(i);
        if !base.keys.contains(key) || delta.rows.keys.contains(key) {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: "its delta deletes a key the chunk does not hold, or one of its own rows"
                    .into(),
            });
        }
    }
    Ok(overlay(id, &base, &delta)?.len() as u64)
}

/// A decoded chunk's rows with their keys (`key_idx`: the key columns' positions in `batch`).
fn decode_rows(id: &ObjectId, batch: RecordBatch, key_idx: &[usize]) -> Result<Rows> {
    let keys = encode_keys(&batch, key_idx)?.map_err(|_| Error::CorruptObject {
        id: id.to_hex(),
        reason: "a key column holds a null".into(),
    })?;
    Ok(Rows { batch, keys })
}

/// Reads the files of a chunk entry (its chunk, and its delta if it has one, each checked
/// against its id) and hands them to `decode` on the blocking pool.
pub async fn read_entry<T, F>(objects: &Objects, entry: &Entry, decode: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(bytes::Bytes, Option<bytes::Bytes>) -> Result<T> + Send + 'static,
{
    objects
        .read_chunk_and_delta(&entry.id, entry.delta.as_ref().map(|d| &d.id), decode)
        .await
}

/// The rows of a chunk with its delta merged in by key: a delta row replaces the chunk's row
/// with its key, or is added in key order; a key the delta deletes leaves no row.
pub(crate) fn overlay(id: &ObjectId, base: &Rows, delta: &DeltaRows) -> Result<Rows> {
    overlay_picks(id, base, Some(delta))?.rows(&id.to_hex())
}

/// Rows picked from several batches, by (batch, row), with their keys: a merge before its
/// rows are copied into one batch (an edit that becomes a delta copies only the few it
/// holds).
struct Picks<'a> {
    batches: Vec<&'a RecordBatch>,
    indices: Vec<(usize, usize)>,
    keys: Keys,
}

impl<'a> Picks<'a> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    /// The picked rows in one batch (`table` names it in an error).
    fn rows(self, table: &str) -> Result<Rows> {
        let batch = gather(&self.batches, &self.indices)
            .map_err(|e| Error::arrow(format!("merging rows of table '{table}'"), e))?;
        Ok(Rows {
            batch,
            keys: self.keys,
        })
    }

    /// Column `c` of pick `m`, as a one-row array.
    fn cell(&self, m: usize, c: usize) -> crate::arrow::array::ArrayRef {
        let (b, row) = self.indices[m];
        self.batches[b].column(c).slice(row, 1)
    }

    /// Picks `start..end`, over the same batches.
    fn part(&self, start: usize, end: usize) -> Picks<'a> {
        Picks {
            batches: self.batches.clone(),
            indices: self.indices[start..end].to_vec(),
            keys: self.keys.slice(start, end),
        }
    }

    /// The picks `which` (positions, in order) in one batch.
    fn take(&self, which: &[u32]) -> Result<RecordBatch> {
        let indices: Vec<(usize, usize)> =
            which.iter().map(|&m| self.indices[m as usize]).collect();
        gather(&self.batches, &indices)
            .map_err(|e| Error::arrow("taking a chunk's changed rows", e))
    }
}

/// A chunk's rows with its delta (if any) laid over them, as picks (see [`overlay`]).
fn overlay_picks<'a>(
    id: &ObjectId,
    base: &'a Rows,
    delta: Option<&'a DeltaRows>,
) -> Result<Picks<'a>> {
    let all = Picks {
        batches: vec![&base.batch],
        indices: (0..base.len()).map(|i| (0, i)).collect(),
        keys: base.keys.clone(),
    };
    let Some(delta) = delta else {
        return Ok(all);
    };
    // An upsert of the delta's rows into the chunk's (the chunk's id names it in an error).
    let mut stats = ApplyStats::default();
    let changes = std::slice::from_ref(&delta.rows);
    let merged = merge_picks(
        &id.to_hex(),
        all,
        changes,
        ChangeOp::Upsert,
        &[],
        &mut stats,
    )?;
    if delta.deleted.is_empty() {
        return Ok(merged);
    }
    // Both in key order: one pass keeps the rows whose keys are not deleted.
    let mut indices = Vec::with_capacity(merged.len());
    let mut keys = Keys::with_capacity(merged.len(), merged.keys.byte_len());
    let mut d = 0;
    for (i, &at) in merged.indices.iter().enumerate() {
        let key = merged.keys.get(i);
        while d < delta.deleted.len() && delta.deleted.get(d) < key {
            d += 1;
        }
        if d < delta.deleted.len() && delta.deleted.get(d) == key {
            continue;
        }
        indices.push(at);
        keys.push(key);
    }
    Ok(Picks {
        batches: merged.batches,
        indices,
        keys,
    })
}

/// The columns to decode to read `columns` (positions in a schema of `fields` columns;
/// `None`: all) with the key columns `key_idx` first, and where each column asked for lies
/// among them.
fn keys_first(
    key_idx: &[usize],
    columns: Option<&[usize]>,
    fields: usize,
) -> (Vec<usize>, Vec<usize>) {
    let wanted: Vec<usize> = columns.map_or_else(|| (0..fields).collect(), <[usize]>::to_vec);
    let mut cols: Vec<usize> = key_idx.to_vec();
    cols.extend(wanted.iter().copied().filter(|c| !key_idx.contains(c)));
    let positions = wanted
        .iter()
        .map(|c| cols.iter().position(|x| x == c).unwrap_or(0))
        .collect();
    (cols, positions)
}

/// Decodes the columns `columns` (positions in the table's schema; `None`: all) of a chunk
/// entry's files: the chunk alone, or the chunk and its delta merged by key.
pub(crate) fn decode_entry(
    entry: &Entry,
    bytes: bytes::Bytes,
    delta: Option<bytes::Bytes>,
    schema: &SchemaRef,
    columns: Option<&[usize]>,
    key_idx: &[usize],
) -> Result<RecordBatch> {
    let (Some(d), Some(delta)) = (entry.delta, delta) else {
        return decode_chunk_columns(&entry.id, bytes, schema, columns);
    };
    // The key columns first (to merge by), then the columns asked for.
    let (cols, positions) = keys_first(key_idx, columns, schema.fields().len());
    let keys_at: Vec<usize> = (0..key_idx.len()).collect();
    let base = decode_rows(
        &entry.id,
        decode_chunk_columns(&entry.id, bytes, schema, Some(&cols))?,
        &keys_at,
    )?;
    let delta = DeltaRows {
        deleted: deleted_keys(&d, &delta)?,
        rows: decode_rows(
            &d.id,
            decode_chunk_columns(&d.id, delta, schema, Some(&cols))?,
            &keys_at,
        )?,
    };
    let merged = overlay(&entry.id, &base, &delta)?;
    merged
        .batch
        .project(&positions)
        .map_err(|e| Error::arrow("choosing the columns to read", e))
}

/// Merges sorted `changes` into one chunk's sorted rows `old`.
fn merge_picks<'a>(
    table: &str,
    old: Picks<'a>,
    changes: &'a [Rows],
    op: ChangeOp,
    key_idx: &[usize],
    stats: &mut ApplyStats,
) -> Result<Picks<'a>> {
    let Picks {
        mut batches,
        indices: old_at,
        keys: old,
    } = old;
    let first = batches.len();
    if op != ChangeOp::Delete {
        batches.extend(changes.iter().map(|c| &c.batch));
    }
    // Sized for every row (the chunk's and the changes'), so that neither grows on the way.
    let rows = old.len() + changes.iter().map(Rows::len).sum::<usize>();
    let bytes = old.byte_len() + changes.iter().map(|c| c.keys.byte_len()).sum::<usize>();
    let mut indices: Vec<(usize, usize)> = Vec::with_capacity(rows);
    let mut keys = Keys::with_capacity(rows, bytes);
    let mut i = 0;
    // The old rows before a change's key are copied a run at a time.
    let copy_old = |i: usize, end: usize, indices: &mut Vec<(usize, usize)>, keys: &mut Keys| {
        indices.extend_from_slice(&old_at[i..end]);
        keys.extend_range(&old, i, end);
    };
    for (ci, change) in changes.iter().enumerate() {
        for j in 0..change.len() {
            let key = change.keys.get(j);
            let end = old.lower_bound_from(i, key);
            copy_old(i, end, &mut indices, &mut keys);
            i = end;
            let exists = i < old.len() && old.get(i) == key;
            match op {
                ChangeOp::Insert if exists => {
                    return Err(Error::KeyExists {
                        table: table.to_string(),
                        key: format_key(&change.batch, key_idx, j),
                    })
                }
                ChangeOp::Delete => {
                    if exists {
                        stats.deleted += 1;
                        i += 1;
                    } else {
                        stats.missing += 1;
                    }
                }
                ChangeOp::Insert | ChangeOp::Upsert => {
                    if exists {
                        stats.updated += 1;
                        i += 1;
                    } else {
                        stats.inserted += 1;
                    }
                    indices.push((first + ci, j));
                    keys.push(key);
                }
            }
        }
    }
    copy_old(i, old.len(), &mut indices, &mut keys);
    Ok(Picks {
        batches,
        indices,
        keys,
    })
}

/// The rows `indices` (batch, row) of `batches`, in that order. An edit keeps most of a
/// chunk's rows in long runs: those are copied a run at a time (slices, concatenated), which
/// is several times faster than a row at a time; rows from everywhere are interleaved.
pub(crate) fn gather(
    batches: &[&RecordBatch],
    indices: &[(usize, usize)],
) -> std::result::Result<RecordBatch, crate::arrow::error::ArrowError> {
    use crate::arrow::compute::interleave_record_batch;
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(b, row) in indices {
        match runs.last_mut() {
            Some((rb, start, len)) if *rb == b && *start + *len == row => *len += 1,
            _ => runs.push((b, row, 1)),
        }
    }
    // The rows take the first batch's schema (the chunk's), as interleaving gives them.
    let schema = batches[0].schema();
    // One run is a slice of its batch, shared rather than copied.
    if let [(b, start, len)] = runs[..] {
        return RecordBatch::try_new(schema, batches[b].slice(start, len).columns().to_vec());
    }
    // Interleaving pays per row, concatenation per run and per column.
    if runs.is_empty() || runs.len() * 16 > indices.len() {
        return interleave_record_batch(batches, indices);
    }
    let columns = (0..schema.fields().len())
        .map(|c| {
            let parts: Vec<_> = runs
                .iter()
                .map(|&(b, start, len)| batches[b].column(c).slice(start, len))
                .collect();
            let refs: Vec<&dyn crate::arrow::array::Array> =
                parts.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

/// Cuts rows that are all new to the table (past its last key, or into an empty table):
/// inserted, or, when deleted, missing.
async fn push_new(
    chunker: &mut Chunker<'_>,
    rows: &Rows,
    op: ChangeOp,
    stats: &mut ApplyStats,
) -> Result<()> {
    match op {
        ChangeOp::Delete => stats.missing += rows.len() as u64,
        ChangeOp::Insert | ChangeOp::Upsert => {
            stats.inserted += rows.len() as u64;
            chunker.push(rows).await?;
        }
    }
    Ok(())
}

/// As [`apply`], storing the table object too (after its chunks and index): its id is
/// returned.
pub async fn apply_and_store(
    objects: &Objects,
    table: &str,
    base: Option<&TableObject>,
    schema: TableSchema,
    chunking: ChunkParams,
    op: ChangeOp,
    source: &mut dyn ChangeSource,
) -> Result<(TableObject, ObjectId, ApplyStats)> {
    let (t, stats) = apply(objects, table, base, schema, chunking, op, source).await?;
    let id = store_table(objects, &t).await?;
    Ok((t, id, stats))
}

/// Applies sorted changes to a table (or creates one when `base` is `None`) and stores the
/// result's chunks and index (not the table object: [`store_table`], or
/// [`apply_and_store`]). Only the chunks the changes fall in (and the next ones, until the
/// chunking lines up again) are read and written, and only the index nodes on their paths:
/// the cost follows the change, not the table.
pub async fn apply(
    objects: &Objects,
    table: &str,
    base: Option<&TableObject>,
    schema: TableSchema,
    chunking: ChunkParams,
    op: ChangeOp,
    source: &mut dyn ChangeSource,
) -> Result<(TableObject, ApplyStats)> {
    let (created, mut new_chunks) = tokio::sync::mpsc::unbounded_channel();
    let mut indexed = false;
    let result = apply_with(
        objects,
        table,
        base,
        schema,
        chunking,
        op,
        source,
        created,
        &mut indexed,
    )
    .await;
    // The rows are stored as they are read, so bad input (a value, a key, the order) may be
    // found after some chunks are: the chunks this write created are removed again, once
    // every store in flight has ended, and the repository is left as it was. Not once the
    // index is being stored: a node stored names its chunks.
    if result.is_err() && !indexed {
        let mut ids = Vec::new();
        while let Some(id) = new_chunks.recv().await {
            ids.push(id);
        }
        objects.remove_new(ObjectKind::Chunk, &ids).await;
    }
    result
}

/// [`apply`], sending the ids of the chunks it creates to `created`; `indexed` is set once
/// it starts storing the index.
#[allow(clippy::too_many_arguments)]
async fn apply_with(
    objects: &Objects,
    table: &str,
    base: Option<&TableObject>,
    schema: TableSchema,
    chunking: ChunkParams,
    op: ChangeOp,
    source: &mut dyn ChangeSource,
    created: NewChunks,
    indexed: &mut bool,
) -> Result<(TableObject, ApplyStats)> {
    let arrow_schema = schema.arrow()?;
    let key_idx = schema.key_indices();
    let mut stats = ApplyStats::default();
    let mut cursor = Cursor::new(source);
    let mut chunker = Chunker::new(objects, chunking, arrow_schema.clone(), created);
    let mut tree = match base {
        Some(t) => Some(LazyTree::open(objects, &t.index).await?),
        None => None,
    };
    let (built, puts, rows, bytes, chunks) = match (base, tree.as_mut()) {
        (Some(base), Some(tree)) if !tree.is_empty() => {
            // The regions of old chunks that are read and cut again: their first and last
            // keys, and the range of the chunker's output that replaces them.
            let mut regions = Vec::new();
            let (mut old_rows, mut old_bytes, mut old_chunks) = (0u64, 0u64, 0u64);
            while let Some(key) = cursor.peek_key()? {
                let key = encode_hex(key);
                let mut at = tree.seek(0, &key, false).await?;
                let Some(first) = at.peek().map(|e| e.last_key.clone()) else {
                    break;
                };
                let mut last = first.clone();
                let start = chunker.out.len();
                while let Some(entry) = at.peek() {
                    let entry = entry.clone();
                    let is_last = at.at_level_end();
                    let last_key = entry.last_key_bytes()?;
                    let touched = match cursor.peek_key()? {
                        Some(k) => k <= last_key.as_slice() || is_last,
                        None => false,
                    };
                    if chunker.at_boundary() && !touched {
                        break;
                    }
                    // The changes that fall in this chunk, up to a bound: more than that are
                    // merged with the chunk's rows a part at a time (below).
                    let held = chunker.params.max_rows as usize * HELD_CHUNKS;
                    let mut changes = cursor.take_some_until(Some(last_key.as_slice()), held)?;
                    let in_range = |cursor: &mut Cursor<'_>| -> Result<bool> {
                        Ok(cursor.peek_key()?.is_some_and(|k| k <= last_key.as_slice()))
                    };
                    // Whether changes past the table's last key remain, to be cut as new
                    // rows after this chunk.
                    let mut more = false;
                    if in_range(&mut cursor)? {
                        // Many changes within one chunk's keys (a large insert between two
                        // of its rows): the chunk's rows are merged with them a part at a
                        // time and cut as they come, so that only one part is held.
                        let (base, delta, _) =
                            read_chunk_parts(objects, &entry, &arrow_schema, &key_idx, false)
                                .await?;
                        let old = overlay_picks(&entry.id, &base, delta.as_ref())?;
                        let mut from = 0;
                        loop {
                            let upto = match changes.last().and_then(|c| c.keys.last()) {
                                Some(hi) => old.keys.partition_point_le(hi),
                                None => old.len(),
                            };
                            let part = old.part(from, upto);
                            from = upto;
                            let merged =
                                merge_picks(table, part, &changes, op, &key_idx, &mut stats)?;
                            chunker.push(&merged.rows(table)?).await?;
                            if changes.is_empty() {
                                break;
                            }
                            changes = if in_range(&mut cursor)? {
                                cursor.take_some_until(Some(last_key.as_slice()), held)?
                            } else {
                                Vec::new()
                            };
                        }
                        more = is_last;
                    } else {
                        // Past the table's last key every change is a new row. As many as one
                        // chunk holds are taken with the last chunk (with it, they may make
                        // one chunk, kept as a delta); past that they cannot, and the rest
                        // are cut after it as they are read.
                        if is_last {
                            let mut beyond = 0usize;
                            while beyond <= chunker.params.max_rows as usize {
                                match cursor.take_next()? {
                                    Some(rows) => {
                                        beyond += rows.len();
                                        changes.push(rows);
                                    }
                                    None => break,
                                }
                            }
                            more = cursor.peek_key()?.is_some();
                        }
                        // When the edit may be stored as a delta of this chunk, only the
                        // chunk's keys are decoded first (with its delta): a delta needs the
                        // other columns of the few rows it compares, and only a rewrite
                        // needs them all (then decoded from the bytes already read).
                        let may_be_delta = !changes.is_empty()
                            && !more
                            && chunker.at_boundary()
                            && changes.iter().map(Rows::len).sum::<usize>()
                                + entry.delta.map_or(0, |d| (d.rows + d.deletes) as usize)
                                <= entry.rows as usize / DELTA_SHARE;
                        let (base, delta, bytes) = read_chunk_parts(
                            objects,
                            &entry,
                            &arrow_schema,
                            &key_idx,
                            may_be_delta,
                        )
                        .await?;
                        // What merging counts is added once the merge is the one kept.
                        let mut counted = ApplyStats::default();
                        let kept = {
                            let old = overlay_picks(&entry.id, &base, delta.as_ref())?;
                            let merged = if changes.is_empty() {
                                old
                            } else {
                                merge_picks(table, old, &changes, op, &key_idx, &mut counted)?
                            };
                            let stored = Stored {
                                entry: &entry,
                                base: &base,
                                delta: delta.as_ref(),
                                keys_only: bytes.as_ref(),
                            };
                            let kept = !changes.is_empty()
                                && !more
                                && chunker
                                    .as_delta(&stored, &merged, &changes, is_last, &key_idx)
                                    .await?;
                            if !kept && bytes.is_none() {
                                chunker.push(&merged.rows(table)?).await?;
                            }
                            kept
                        };
                        if let (false, Some(bytes)) = (kept, bytes) {
                            // Rewritten after all: the chunk's other columns are decoded now.
                            counted = ApplyStats::default();
                            let base =
                                decode_base(&entry.id, bytes, &arrow_schema, &key_idx).await?;
                            let old = overlay_picks(&entry.id, &base, delta.as_ref())?;
                            let merged =
                                merge_picks(table, old, &changes, op, &key_idx, &mut counted)?;
                            chunker.push(&merged.rows(table)?).await?;
                        }
                        stats.add_counts(&counted);
                    }
                    if more {
                        while let Some(rows) = cursor.take_next()? {
                            push_new(&mut chunker, &rows, op, &mut stats).await?;
                        }
                    }
                    old_rows += entry.rows;
                    old_bytes += entry.bytes;
                    old_chunks += 1;
                    last = entry.last_key;
                    at.advance(tree).await?;
                }
                chunker.emit().await?;
                regions.push((first, last, start, chunker.out.len()));
            }
            let (entries, written, puts) = chunker.finish_encoded().await?;
            stats.chunks_written = written;
            let base_chunks = match base.chunks {
                Some(n) => n,
                // A table stored before tables counted their chunks.
                None => tree::load(objects, &base.index).await?.0.len() as u64,
            };
            stats.chunks_reused = base_chunks.saturating_sub(old_chunks);
            let new_rows: u64 = entries.iter().map(|e| e.rows).sum();
            let new_bytes: u64 = entries.iter().map(|e| e.bytes).sum();
            let new_chunks = entries.len() as u64;
            let mut entries = entries.into_iter();
            let spans = regions
                .into_iter()
                .map(|(first, last, start, end)| Span {
                    first,
                    last,
                    entries: entries.by_ref().take(end - start).collect(),
                })
                .collect();
            let built = tree::edit(tree, spans).await?;
            (
                built,
                puts,
                (base.rows + new_rows).saturating_sub(old_rows),
                (base.bytes + new_bytes).saturating_sub(old_bytes),
                (base_chunks + new_chunks).saturating_sub(old_chunks),
            )
        }
        _ => {
            // A new or empty table: every change is a new row. The rows are cut and
            // encoded as they are read, a run at a time (the encoders work while the next
            // rows are read, and only the runs in flight are held).
            while let Some(rows) = cursor.take_next()? {
                push_new(&mut chunker, &rows, op, &mut stats).await?;
            }
            let (entries, written, puts) = chunker.finish_encoded().await?;
            stats.chunks_written = written;
            let rows = entries.iter().map(|e| e.rows).sum();
            let bytes = entries.iter().map(|e| e.bytes).sum();
            let chunks = entries.len() as u64;
            let known = HashSet::new();
            (tree::build(entries, &known)?, puts, rows, bytes, chunks)
        }
    };
    let object = TableObject {
        format: TABLE_FORMAT,
        kind: "table".into(),
        schema,
        chunking,
        index: built.root,
        rows,
        bytes,
        chunks: Some(chunks),
    };
    // Each object only once all it names is stored (docs/protocol.md, section 6, "The
    // completeness invariant"): the chunks (their stores overlapped the index's edit), then
    // the index nodes.
    puts.join().await?;
    *indexed = true;
    tree::store(objects, built).await?;
    Ok((object, stats))
}

/// Applies sorted rows held in memory to a table, keeping its schema and chunking.
pub async fn apply_rows(
    objects: &Objects,
    name: &str,
    table: &TableObject,
    op: ChangeOp,
    rows: VecDeque<Rows>,
) -> Result<TableObject> {
    let (t, _) = apply(
        objects,
        name,
        Some(table),
        table.schema.clone(),
        table.chunking,
        op,
        &mut VecSource(rows),
    )
    .await?;
    Ok(t)
}

/// Rewrites every row of a table through `transform` (one chunk's rows at a time, in key
/// order) into a table with `schema`, keeping its chunking: the rows are cut into chunks by
/// their keys, as every write cuts them. With `check_order`, the keys `transform` gives are
/// checked to stay strictly increasing (`Err` with the two keys, shown as in messages, when
/// they do not). With `write` false, nothing is stored: the rows are only checked, and
/// `None` is returned.
pub async fn rewrite(
    objects: &Objects,
    base: &TableObject,
    schema: TableSchema,
    transform: &(dyn Fn(RecordBatch) -> Result<RecordBatch> + Sync),
    check_order: bool,
    write: bool,
) -> Result<std::result::Result<Option<(TableObject, ApplyStats)>, (String, String)>> {
    let (entries, known) = tree::load(objects, &base.index).await?;
    let arrow_schema = schema.arrow()?;
    let key_idx = schema.key_indices();
    // (The rows are checked by a run with `write` false first; nothing is removed.)
    let (created, _) = tokio::sync::mpsc::unbounded_channel();
    let mut chunker = Chunker::new(objects, base.chunking, arrow_schema.clone(), created);
    let mut previous: Option<(Vec<u8>, RecordBatch, usize)> = None;
    let mut batches = std::pin::pin!(scan(objects, base, entries)?);
    while let Some(batch) = batches.next().await {
        let batch = transform(batch?)?;
        let batch = RecordBatch::try_new(arrow_schema.clone(), batch.columns().to_vec())
            .map_err(|e| Error::arrow("rewriting the rows", e))?;
        let keys = encode_keys(&batch, &key_idx)?.map_err(|at| {
            Error::Invalid(format!("key column '{}' would hold a null", at.column))
        })?;
        if check_order && !keys.is_empty() {
            if let Some((prev, prev_batch, row)) = &previous {
                if keys.get(0) <= prev.as_slice() {
                    let shown = format_key(prev_batch, &key_idx, *row);
                    return Ok(Err((shown, format_key(&batch, &key_idx, 0))));
                }
            }
            for i in 1..keys.len() {
                if keys.get(i) <= keys.get(i - 1) {
                    let shown = format_key(&batch, &key_idx, i - 1);
                    return Ok(Err((shown, format_key(&batch, &key_idx, i))));
                }
            }
            let last = keys.len() - 1;
            previous = Some((keys.get(last).to_vec(), batch.clone(), last));
        }
        if write {
            chunker.push(&Rows { batch, keys }).await?;
        }
    }
    if !write {
        return Ok(Ok(None));
    }
    let (entries, written) = chunker.finish().await?;
    let stats = ApplyStats {
        chunks_written: written,
        ..ApplyStats::default()
    };
    let rows = entries.iter().map(|e| e.rows).sum();
    let bytes = entries.iter().map(|e| e.bytes).sum();
    let chunks = entries.len() as u64;
    let built = tree::build(entries, &known)?;
    let index = tree::store(objects, built).await?;
    Ok(Ok(Some((
        TableObject {
            format: TABLE_FORMAT,
            kind: "table".into(),
            schema,
            chunking: base.chunking,
            index,
            rows,
            bytes,
            chunks: Some(chunks),
        },
        stats,
    ))))
}

/// Stores a table object and returns its id.
pub async fn store_table(objects: &Objects, table: &TableObject) -> Result<ObjectId> {
    objects.put_json(table).await
}

/// Streams a table's rows in key order, chunk by chunk, reading a few chunks ahead.
pub fn scan<'a>(
    objects: &'a Objects,
    table: &'a TableObject,
    entries: Vec<Entry>,
) -> Result<impl Stream<Item = Result<RecordBatch>> + 'a> {
    let schema = table.schema.arrow()?;
    let key_idx = table.schema.key_indices();
    Ok(stream::iter(entries)
        .map(move |entry| {
            let schema = schema.clone();
            let key_idx = key_idx.clone();
            async move {
                let e = entry.clone();
                read_entry(objects, &entry, move |bytes, delta| {
                    decode_entry(&e, bytes, delta, &schema, None, &key_idx)
                })
                .await
            }
        })
        .buffered(read_ahead()))
}

/// The chunks a scan of `ranges` must read, in key order, each with whether its rows must be
/// filtered (it lies only partly in the ranges). No ranges: every chunk, unfiltered. Chunks
/// are chosen by the keys in the index alone, without reading them.
pub fn plan_scan(entries: Vec<Entry>, ranges: &[KeyRange]) -> Result<Vec<(Entry, bool)>> {
    if ranges.is_empty() {
        return Ok(entries.into_iter().map(|e| (e, false)).collect());
    }
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    for entry in entries {
        let last = entry.last_key_bytes()?;
        let lo = after.as_deref();
        if ranges.iter().any(|r| r.overlaps(lo, &last)) {
            let filter = !ranges.iter().any(|r| r.covers(lo, &last));
            out.push((entry, filter));
        }
        after = Some(last);
    }
    Ok(out)
}

/// What a scan reads: which columns (positions in the table's schema; `None`: all) and which
/// keys (no ranges: all).
#[derive(Debug, Clone, Default)]
pub struct ScanSpec {
    pub columns: Option<Vec<usize>>,
    pub ranges: Vec<KeyRange>,
}

/// Streams the rows of a table that `spec` selects, in key order, chunk by chunk: only the
/// chunks the key ranges reach are read, only the columns asked for are decoded, and a few
/// chunks are fetched and decoded ahead, in parallel.
pub async fn scan_spec(
    objects: &Objects,
    table: &TableObject,
    spec: ScanSpec,
) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch>>, usize)> {
    let schema = table.schema.arrow()?;
    let out_schema = match &spec.columns {
        Some(c) => Arc::new(
            schema
                .project(c)
                .map_err(|e| Error::arrow("choosing the columns to read", e))?,
        ),
        None => schema.clone(),
    };
    let entries = table.chunks(objects).await?;
    let plan = plan_scan(entries, &spec.ranges)?;
    let chunks = plan.len();
    let key_idx = table.schema.key_indices();
    let objects = objects.clone();
    let spec = Arc::new(spec);
    let stream = stream::iter(plan)
        .map(move |(entry, filter)| {
            let objects = objects.clone();
            let schema = schema.clone();
            let spec = spec.clone();
            let key_idx = key_idx.clone();
            async move {
                // Reading, hashing and decoding run on the blocking pool, several chunks at once.
                let e = entry.clone();
                read_entry(&objects, &entry, move |bytes, delta| {
                    read_selected(&e, bytes, delta, &schema, &spec, &key_idx, filter)
                })
                .await
            }
        })
        .buffered(read_ahead())
        .boxed();
    Ok((out_schema, stream, chunks))
}

/// Decodes the columns of one chunk that a scan asks for, keeping only the rows in its key
/// ranges when `filter`.
fn read_selected(
    entry: &Entry,
    bytes: bytes::Bytes,
    delta: Option<bytes::Bytes>,
    schema: &SchemaRef,
    spec: &ScanSpec,
    key_idx: &[usize],
    filter: bool,
) -> Result<RecordBatch> {
    let id = &entry.id;
    if !filter {
        return decode_entry(
            entry,
            bytes,
            delta,
            schema,
            spec.columns.as_deref(),
            key_idx,
        );
    }
    // The key columns first, then the columns asked for.
    let (cols, positions) = keys_first(key_idx, spec.columns.as_deref(), schema.fields().len());
    let batch = decode_entry(entry, bytes, delta, schema, Some(&cols), key_idx)?;
    let Rows { batch, keys } = decode_rows(id, batch, &(0..key_idx.len()).collect::<Vec<_>>())?;
    let mask: crate::arrow::array::BooleanArray = (0..keys.len())
        .map(|i| Some(spec.ranges.iter().any(|r| r.contains(keys.get(i)))))
        .collect();
    let kept = crate::arrow::compute::filter_record_batch(&batch, &mask)
        .map_err(|e| Error::arrow("selecting rows by key", e))?;
    kept.project(&positions)
        .map_err(|e| Error::arrow("choosing the columns to read", e))
}
