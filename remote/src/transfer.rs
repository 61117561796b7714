//! Copying the objects of commits from one store to another, dependencies first, skipping
//! what the destination has (docs/protocol.md, section 6, "the completeness invariant").
//!
//! Into a local repository, an object that is present is complete (the local store is only
//! collected under an exclusive lock). On a remote, only objects reachable from a ref are
//! known to be complete: an unreachable object may have lost its dependencies to a garbage
//! collection, so an upload checks below every object it did not reach from a ref.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use strata_engine::store::{ObjectKind, Objects};
use strata_engine::tree::{self, Node};
use strata_engine::{Commit, ObjectId, Progress, TableObject};

use crate::error::Result;

/// Objects copied at once.
const CONCURRENCY: usize = 8;

/// Counts of what a transfer copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransferStats {
    pub objects: u64,
    pub bytes: u64,
}

/// Copies from `src` to `dst`. `local` is the local repository's store, where the trees of
/// commits known to be complete on both sides are read from (cheaply).
pub struct Transfer<'a> {
    pub src: &'a Objects,
    pub dst: &'a Objects,
    pub local: &'a Objects,
    pub progress: &'a dyn Progress,
    /// Whether an object present on `dst` may be taken as complete (true into a local
    /// repository; false onto a remote, see the module documentation).
    trust_presence: bool,
    stats: std::sync::Mutex<TransferStats>,
}

impl<'a> Transfer<'a> {
    pub fn new(
        src: &'a Objects,
        dst: &'a Objects,
        local: &'a Objects,
        progress: &'a dyn Progress,
    ) -> Self {
        Transfer {
            src,
            dst,
            local,
            progress,
            trust_presence: true,
            stats: Default::default(),
        }
    }

    /// An upload to a remote: objects present there are checked below (not taken as complete)
    /// unless a ref reaches them.
    pub fn checking_presence(mut self) -> Self {
        self.trust_presence = false;
        self
    }

    pub fn stats(&self) -> TransferStats {
        *self.stats.lock().expect("stats lock")
    }

    fn count(&self, bytes: usize) {
        let mut s = self.stats.lock().expect("stats lock");
        s.objects += 1;
        s.bytes += bytes as u64;
        self.progress.object(bytes as u64);
    }

    /// The commits reachable from `tips` that `dst` lacks, parents before children. Paths stop
    /// at commits in `known` (complete on `dst`), or present on `dst` when presence is trusted.
    /// Without that trust, every commit not in `known` is returned (and checked by the copy).
    pub async fn missing_commits(
        &self,
        tips: &[ObjectId],
        known: &HashSet<ObjectId>,
    ) -> Result<Vec<(ObjectId, Commit)>> {
        let mut found: HashMap<ObjectId, Commit> = HashMap::new();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut stack: Vec<ObjectId> = tips.to_vec();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || known.contains(&id) {
                continue;
            }
            if self.trust_presence && self.dst.exists(ObjectKind::Meta, &id).await? {
                continue;
            }
            let commit = Commit::read(self.src, &id).await?;
            stack.extend(commit.parents.iter().copied());
            found.insert(id, commit);
        }
        // Parents first: a depth-first post-order over the missing commits.
        let mut order = Vec::with_capacity(found.len());
        let mut done: HashSet<ObjectId> = HashSet::new();
        let mut roots: Vec<ObjectId> = found.keys().copied().collect();
        roots.sort();
        for root in roots {
            let mut work = vec![(root, false)];
            while let Some((id, expanded)) = work.pop() {
                if done.contains(&id) {
                    continue;
                }
                if expanded {
                    done.insert(id);
                    order.push(id);
                    continue;
                }
                work.push((id, true));
                if let Some(c) = found.get(&id) {
                    for p in &c.parents {
                        if found.contains_key(p) && !done.contains(p) {
                            work.push((*p, false));
                        }
                    }
                }
            }
        }
        Ok(order
            .into_iter()
            .map(|id| {
                let c = found.remove(&id).expect("ordered ids are found");
                (id, c)
            })
            .collect())
    }

    /// Copies the given commits (parents first) with everything they reach.
    pub async fn copy_commits(&self, commits: Vec<(ObjectId, Commit)>) -> Result<()> {
        tracing::info!(
            commits = commits.len(),
            "copying {} commits and what they reach",
            commits.len()
        );
        let started = std::time::Instant::now();
        let result = self.copy_commits_inner(commits).await;
        let s = self.stats();
        tracing::info!(
            objects = s.objects,
            bytes = s.bytes,
            "copied {} objects ({} bytes) in {:.1?}",
            s.objects,
            s.bytes,
            started.elapsed()
        );
        result
    }

    async fn copy_commits_inner(&self, commits: Vec<(ObjectId, Commit)>) -> Result<()> {
        for (id, commit) in commits {
            let mut parent_tables: HashMap<String, Vec<ObjectId>> = HashMap::new();
            for p in &commit.parents {
                // Parents are complete locally: they were there, or were copied just before.
                let pc = match Commit::read(self.local, p).await {
                    Ok(c) => c,
                    Err(_) => Commit::read(self.src, p).await?,
                };
                for (name, t) in pc.tables {
                    parent_tables.entry(name).or_default().push(t);
                }
            }
            for (name, table) in &commit.tables {
                let parents = parent_tables.get(name).cloned().unwrap_or_default();
                if parents.contains(table) {
                    continue;
                }
                self.copy_table(table, &parents).await?;
            }
            // Onto a remote a commit that is present (whole) was checked below just now.
            self.copy_object(ObjectKind::Meta, id).await?;
        }
        Ok(())
    }

    /// Copies one object's bytes (read and hash-checked from `src`), unless `dst` holds it
    /// whole already.
    async fn copy_object(&self, kind: ObjectKind, id: ObjectId) -> Result<()> {
        let bytes = self.src.get(kind, &id).await?;
        self.put(kind, id, bytes).await
    }

    /// Stores `bytes` as `id` on `dst` unless it holds them whole already (a copy of another
    /// size, cut short by a torn write, is written over).
    async fn put(&self, kind: ObjectKind, id: ObjectId, bytes: bytes::Bytes) -> Result<()> {
        if self.dst.holds(kind, &id, bytes.len() as u64).await? {
            return Ok(());
        }
        self.store(kind, id, bytes).await
    }

    /// Stores `bytes` as `id` on `dst` (known not to hold them whole).
    async fn store(&self, kind: ObjectKind, id: ObjectId, bytes: bytes::Bytes) -> Result<()> {
        let len = bytes.len();
        self.dst.put_with_id(kind, id, bytes).await?;
        self.count(len);
        Ok(())
    }

    /// Copies a table object and the parts of its index and chunks that `dst` lacks.
    pub async fn copy_table(&self, id: &ObjectId, parents: &[ObjectId]) -> Result<()> {
        let table_bytes = self.src.get(ObjectKind::Meta, id).await?;
        let whole = self
            .dst
            .holds(ObjectKind::Meta, id, table_bytes.len() as u64)
            .await?;
        if whole && self.trust_presence {
            return Ok(());
        }
        let table = TableObject::read(self.src, id).await?;
        // What the parents hold is found by comparing their index with this one: only the
        // nodes on the paths to the chunks that differ are read, so the cost follows the
        // change, not the table.
        let mut present_nodes = HashSet::new();
        let mut present_chunks = HashSet::new();
        let mut read = HashMap::new();
        for p in parents {
            let pt = TableObject::read(self.local, p).await?;
            let d = tree::diff(self.local, &pt.index, self.src, &table.index).await?;
            present_nodes.extend(d.old_nodes);
            present_nodes.extend(d.common.iter().copied());
            present_chunks.extend(d.common);
            present_chunks.extend(d.old_only.iter().flat_map(|e| e.files()).map(|(c, _)| c));
            read.extend(d.new_nodes);
        }
        let present = Present {
            nodes: present_nodes,
            chunks: present_chunks,
            read,
        };
        self.copy_index(table.index, &present).await?;
        if !whole {
            self.store(ObjectKind::Meta, *id, table_bytes).await?;
        }
        Ok(())
    }

    /// Copies the index under `root` and the chunks it names that `dst` lacks. The chunks
    /// go first, [`CONCURRENCY`] at once across every leaf, while the walk of the index reads
    /// the leaves ahead (a leaf at a time would let the copies run dry at each leaf's end);
    /// then the nodes, the leaves first and each level before the one above it, so that
    /// every object is stored after what it names.
    async fn copy_index(&self, root: ObjectId, present: &Present) -> Result<()> {
        let (tx, rx) = futures::channel::mpsc::channel::<(ObjectId, u64)>(CONCURRENCY * 8);
        let walk = async move {
            use futures::SinkExt;
            let mut tx = tx;
            // The nodes to store, by level (0: the leaves).
            let mut levels: Vec<Vec<(ObjectId, bytes::Bytes)>> = Vec::new();
            // In key order: the last entry of a node is pushed first.
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                if present.nodes.contains(&id) {
                    continue;
                }
                let bytes = match present.read.get(&id) {
                    Some(bytes) => bytes.clone(),
                    None => self.src.get(ObjectKind::Meta, &id).await?,
                };
                let whole = self
                    .dst
                    .holds(ObjectKind::Meta, &id, bytes.len() as u64)
                    .await?;
                if whole && self.trust_presence {
                    continue;
                }
                let node: Node = serde_json::from_slice(&bytes).map_err(|e| {
                    strata_engine::Error::CorruptObject {
                        id: id.to_hex(),
                        reason: format!("the index node does not decode: {e}"),
                    }
                })?;
                if node.level == 0 {
                    let chunks = node
                        .entries
                        .iter()
                        .flat_map(|e| e.files())
                        .filter(|(c, _)| !present.chunks.contains(c));
                    for chunk in chunks {
                        if tx.send(chunk).await.is_err() {
                            // The copies stopped on an error, which is the one reported.
                            return Ok(levels);
                        }
                    }
                } else {
                    stack.extend(node.entries.iter().rev().map(|e| e.id));
                }
                if !whole {
                    let level = node.level as usize;
                    if levels.len() <= level {
                        levels.resize_with(level + 1, Vec::new);
                    }
                    levels[level].push((id, bytes));
                }
            }
            Ok::<_, crate::Error>(levels)
        };
        let copies = rx
            .map(|(c, len)| async move {
                // The index entry says how big the chunk is: a copy of another size is
                // damaged and is written again.
                if !self.dst.holds(ObjectKind::Chunk, &c, len).await? {
                    let bytes = self.src.get(ObjectKind::Chunk, &c).await?;
                    self.store(ObjectKind::Chunk, c, bytes).await?;
                }
                Ok::<_, crate::Error>(())
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>();
        let (levels, _) = futures::try_join!(walk, copies)?;
        for nodes in levels {
            stream::iter(nodes)
                .map(|(id, bytes)| self.store(ObjectKind::Meta, id, bytes))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Ok(())
    }
}

struct Present {
    nodes: HashSet<ObjectId>,
    chunks: HashSet<ObjectId>,
    /// Nodes of the copied index already read from `src` (by the comparison with a parent).
    read: HashMap<ObjectId, bytes::Bytes>,
}
