//! Garbage collection of one store (docs/protocol.md, section 8): list the stored objects,
//! mark everything reachable from the roots, and delete the rest, referrers before the objects
//! they name, so that a crash at any moment leaves every remaining object's references intact.
//!
//! This module knows nothing about concurrency: the local repository runs it under an
//! exclusive lock, and the remote protocol (leases, fences, the gc lock) is in the remote
//! crate.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::store::{get_opt, layout, list_all, ObjectKind, Objects, RefKind, RefName};

/// Requests in flight at once while marking and deleting.
const CONCURRENCY: usize = 16;

/// An object by kind and id.
pub type ObjectKey = (ObjectKind, ObjectId);

/// Lists every object a store holds, with its size in bytes. Keys that are not objects
/// (files of an interrupted write, anything unknown) are left alone.
pub async fn list_objects(objects: &Objects) -> Result<BTreeMap<ObjectKey, u64>> {
    let mut out = BTreeMap::new();
    for dir in [layout::OBJECTS_DIR, layout::CHUNKS_DIR] {
        let prefix = object_store::path::Path::from(dir);
        let metas = list_all(objects.store(), &prefix).await?;
        for m in metas {
            if let Some(key) = layout::parse_object(&m.location) {
                out.insert(key, m.size);
            }
        }
    }
    Ok(out)
}

/// The objects a stored metadata object names: a commit its parents and tables, a table its
/// index root, an index node its children (nodes, or chunks at level 0).
pub fn links(id: &ObjectId, bytes: &[u8]) -> Result<Vec<ObjectKey>> {
    #[derive(Deserialize)]
    struct Entry {
        id: ObjectId,
        #[serde(default)]
        delta: Option<Delta>,
    }
    #[derive(Deserialize)]
    struct Delta {
        id: ObjectId,
    }
    #[derive(Deserialize)]
    struct AnyObject {
        kind: String,
        #[serde(default)]
        parents: Vec<ObjectId>,
        #[serde(default)]
        tables: BTreeMap<String, ObjectId>,
        #[serde(default)]
        index: Option<ObjectId>,
        #[serde(default)]
        level: u8,
        #[serde(default)]
        entries: Vec<Entry>,
    }
    let o: AnyObject = serde_json::from_slice(bytes).map_err(|e| Error::CorruptObject {
        id: id.to_hex(),
        reason: format!("it does not decode: {e}"),
    })?;
    let meta = |i: &ObjectId| (ObjectKind::Meta, *i);
    Ok(match o.kind.as_str() {
        "commit" => o
            .parents
            .iter()
            .chain(o.tables.values())
            .map(meta)
            .collect(),
        "table" => o.index.iter().map(meta).collect(),
        "node" if o.level == 0 => o
            .entries
            .iter()
            .flat_map(|e| std::iter::once(e.id).chain(e.delta.as_ref().map(|d| d.id)))
            .map(|id| (ObjectKind::Chunk, id))
            .collect(),
        "node" => o.entries.iter().map(|e| meta(&e.id)).collect(),
        other => {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: format!("unknown object kind '{other}'"),
            })
        }
    })
}

/// Reads a metadata object from the first of `sources` that has it intact (a local copy is
/// as good as the remote's: the id is the hash of the bytes).
async fn read_meta(sources: &[&Objects], id: &ObjectId) -> Result<bytes::Bytes> {
    let mut last = None;
    for s in sources {
        match s.get(ObjectKind::Meta, id).await {
            Ok(b) => return Ok(b),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Invalid("no store to read objects from".into())))
}

/// Everything reachable from `roots` (commits and tables, as metadata objects). A reachable
/// object that cannot be read stops the marking: nothing may be deleted on a partial view.
pub async fn mark(sources: &[&Objects], roots: &[ObjectId]) -> Result<HashSet<ObjectKey>> {
    let mut marked: HashSet<ObjectKey> = HashSet::new();
    let mut frontier: Vec<ObjectId> = Vec::new();
    for r in roots {
        if marked.insert((ObjectKind::Meta, *r)) {
            frontier.push(*r);
        }
    }
    while !frontier.is_empty() {
        let batch = std::mem::take(&mut frontier);
        let found: Vec<Vec<ObjectKey>> = stream::iter(batch)
            .map(|id| async move {
                let bytes = read_meta(sources, &id).await?;
                links(&id, &bytes)
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for key in found.into_iter().flatten() {
            if marked.insert(key) && key.0 == ObjectKind::Meta {
                frontier.push(key.1);
            }
        }
    }
    Ok(marked)
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub objects: u64,
    pub bytes: u64,
}

impl Swept {
    /// The count and total size of a set of listed objects.
    pub fn of(objects: &BTreeMap<ObjectKey, u64>) -> Self {
        Swept {
            objects: objects.len() as u64,
            bytes: objects.values().sum(),
        }
    }
}

/// Deletes `garbage` from `objects`, referrers first: an object is deleted only after every
/// garbage object that names it, so a crash in the middle never leaves an object whose
/// references are gone.
pub async fn sweep(
    objects: &Objects,
    garbage: &BTreeMap<ObjectKey, u64>,
    progress: &dyn Progress,
) -> Result<Swept> {
    // Learn who names whom among the garbage (unreadable garbage names nothing).
    let metas: Vec<ObjectId> = garbage
        .keys()
        .filter(|(k, _)| *k == ObjectKind::Meta)
        .map(|(_, id)| *id)
        .collect();
    let named: Vec<(ObjectId, Vec<ObjectKey>)> = stream::iter(metas)
        .map(|id| async move {
            let links = match objects.get(ObjectKind::Meta, &id).await {
                Ok(bytes) => links(&id, &bytes).unwrap_or_default(),
                Err(Error::CorruptObject { .. }) | Err(Error::MissingObject { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            Ok::<_, Error>((id, links))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut referrers: HashMap<ObjectKey, usize> = HashMap::new();
    let mut children: HashMap<ObjectKey, Vec<ObjectKey>> = HashMap::new();
    for (id, links) in named {
        for l in links {
            if garbage.contains_key(&l) {
                *referrers.entry(l).or_default() += 1;
                children.entry((ObjectKind::Meta, id)).or_default().push(l);
            }
        }
    }
    progress.set_total(garbage.values().sum());
    let mut swept = Swept::default();
    let mut wave: Vec<ObjectKey> = garbage
        .keys()
        .filter(|k| !referrers.contains_key(k))
        .copied()
        .collect();
    let mut done: HashSet<ObjectKey> = HashSet::new();
    while !wave.is_empty() {
        stream::iter(wave.iter().copied())
            .map(|(kind, id)| async move { objects.delete(kind, &id).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let mut next = Vec::new();
        for key in wave {
            let size = garbage.get(&key).copied().unwrap_or(0);
            swept.objects += 1;
            swept.bytes += size;
            progress.advance(size);
            done.insert(key);
            for child in children.remove(&key).unwrap_or_default() {
                if let Some(n) = referrers.get_mut(&child) {
                    *n -= 1;
                    if *n == 0 {
                        referrers.remove(&child);
                        next.push(child);
                    }
                }
            }
        }
        wave = next;
    }
    // Content addressing rules out cycles; anything left over is removed last.
    let rest: Vec<ObjectKey> = garbage
        .keys()
        .filter(|k| !done.contains(k))
        .copied()
        .collect();
    for (kind, id) in rest {
        objects.delete(kind, &id).await?;
        swept.objects += 1;
        swept.bytes += garbage.get(&(kind, id)).copied().unwrap_or(0);
    }
    Ok(swept)
}

/// The result of collecting one store.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    /// Objects removed (or, on a dry run, that would be).
    pub removed: Swept,
    /// Objects kept because something reaches them.
    pub kept: Swept,
    /// Old ref records removed.
    pub ref_records: u64,
    /// Iceberg files removed (docs/protocol.md, section 10).
    pub iceberg_files: u64,
    pub dry_run: bool,
}

/// Splits the listed objects into garbage (not marked) and kept, with totals.
pub fn partition(
    listed: BTreeMap<ObjectKey, u64>,
    marked: &HashSet<ObjectKey>,
) -> (BTreeMap<ObjectKey, u64>, Swept) {
    let mut kept = Swept::default();
    let mut garbage = BTreeMap::new();
    for (key, size) in listed {
        if marked.contains(&key) {
            kept.objects += 1;
            kept.bytes += size;
        } else {
            garbage.insert(key, size);
        }
    }
    (garbage, kept)
}

/// How long garbage collection keeps reflog entries (and the commits they name): 90 days.
pub const REFLOG_KEEP_SECS: i64 = 90 * 24 * 3600;

impl Repository {
    /// Per existing branch and tag, its reflog entries made at or after `since` (record
    /// number to commit).
    async fn reflog_kept(&self, since: i64) -> Result<Vec<(RefName, BTreeMap<u64, ObjectId>)>> {
        let mut out = Vec::new();
        for kind in [RefKind::Branch, RefKind::Tag] {
            for name in self.refs().names(kind).await? {
                let kept: BTreeMap<u64, ObjectId> = self
                    .reflog(&name)
                    .await?
                    .into_iter()
                    .filter(|r| r.time >= since)
                    .filter_map(|r| r.commit.map(|c| (r.seq, c)))
                    .collect();
                if !kept.is_empty() {
                    out.push((name, kept));
                }
            }
        }
        Ok(out)
    }

    /// Every commit and table this checkout still needs: branches, tags, remote-tracking
    /// refs, HEAD, the working tables and a merge in progress.
    pub async fn gc_roots(&self) -> Result<Vec<ObjectId>> {
        self.gc_roots_keeping(Some(self.now() - REFLOG_KEEP_SECS))
            .await
    }

    /// As [`Repository::gc_roots`], plus the commits of the reflog entries made at or after
    /// `reflog_since` (`None`: none).
    async fn gc_roots_keeping(&self, reflog_since: Option<i64>) -> Result<Vec<ObjectId>> {
        let mut roots = Vec::new();
        for kind in [RefKind::Branch, RefKind::Tag] {
            roots.extend(self.list_refs(kind).await?.into_iter().map(|(_, c)| c));
        }
        if let Some(since) = reflog_since {
            for (_, kept) in self.reflog_kept(since).await? {
                roots.extend(kept.into_values());
            }
        }
        let remotes = layout::local("remotes");
        let metas = list_all(self.store(), &remotes).await?;
        for m in metas {
            // Removed since the listing (a fetch pruning it): nothing to keep.
            let Some(bytes) = get_opt(self.store(), &m.location).await? else {
                continue;
            };
            let id: ObjectId = serde_json::from_slice(&bytes).map_err(|e| Error::BadInput {
                path: m.location.to_string(),
                message: format!(
                    "the remote-tracking ref does not decode ({e}); fix or delete the file"
                ),
            })?;
            roots.push(id);
        }
        roots.extend(self.head_commit().await?);
        roots.extend(self.working().await?.tables.into_values());
        if let Some(m) = self.merge_state().await? {
            roots.push(m.theirs);
            roots.extend(m.base);
            roots.extend(m.head);
            roots.extend(m.pre_merge.tables.into_values());
            roots.extend(m.tables.values().filter_map(|t| t.theirs_rows));
        }
        roots.sort();
        roots.dedup();
        Ok(roots)
    }

    /// Collects this repository's own store: removes unreachable objects, compacts the ref
    /// logs, and removes what an interrupted import left in `tmp/`. Needs the exclusive lock
    /// ([`Repository::lock_exclusive`]), so no other command runs meanwhile.
    ///
    /// Reflog entries younger than [`REFLOG_KEEP_SECS`] (90 days, as git's default) are
    /// kept with the commits they name, so a reset or a forced pull stays undoable;
    /// `expire_reflog` drops every entry but each ref's current one first.
    pub async fn gc(
        &self,
        dry_run: bool,
        expire_reflog: bool,
        progress: &dyn Progress,
    ) -> Result<GcReport> {
        let listed = list_objects(self.objects()).await?;
        let since = (!expire_reflog).then(|| self.now() - REFLOG_KEEP_SECS);
        let roots = self.gc_roots_keeping(since).await?;
        let kept_entries = match since {
            Some(since) => self.reflog_kept(since).await?,
            None => Vec::new(),
        };
        let marked = mark(&[self.objects()], &roots).await?;
        let (garbage, kept) = partition(listed, &marked);
        let mut report = GcReport {
            kept,
            dry_run,
            ..Default::default()
        };
        if dry_run {
            report.removed = Swept::of(&garbage);
            return Ok(report);
        }
        report.removed = sweep(self.objects(), &garbage, progress).await?;
        report.iceberg_files =
            crate::iceberg::collect(self.objects(), self.refs(), &garbage).await?;
        for kind in [RefKind::Branch, RefKind::Tag] {
            for name in self.refs().names(kind).await? {
                let pinned: BTreeSet<u64> = kept_entries
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, kept)| kept.keys().copied().collect())
                    .unwrap_or_default();
                report.ref_records += self.refs().compact(&name, &pinned).await?;
            }
        }
        let tmp = self.root().join(crate::repo::DOT_DIR).join(layout::TMP_DIR);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::Io {
                path: tmp.clone(),
                source: e,
            })?;
        }
        Ok(report)
    }
}
