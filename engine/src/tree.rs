//! The index over a table's chunks: a tree of content-addressed nodes, cut by content like
//! the chunks themselves (a prolly tree). Level 0 nodes list chunks; higher levels list
//! nodes. An edit rewrites only the nodes on the paths to the chunks it changed, so a
//! commit's metadata cost follows the change, not the table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::objects::{check_format, encode_json};
use crate::store::{ObjectKind, Objects};

/// Node format understood by this build. Format 2 adds a chunk's delta ([`Delta`]), format 3
/// a delta that deletes rows of its chunk ([`Delta::deletes`]). A node is written in the
/// lowest format that holds its entries, so the nodes of tables without deltas keep format 1
/// (and their ids), and those whose deltas delete nothing format 2.
pub const NODE_FORMAT: u32 = 3;

/// Average and largest number of entries per index node.
const NODE_AVG: u64 = 64;
const NODE_MAX: usize = 256;

/// How many objects are read at once when loading a tree.
const READ_CONCURRENCY: usize = 16;

/// One child of a node: a chunk (level 0) or a node (higher levels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: ObjectId,
    /// Rows below this entry.
    pub rows: u64,
    /// Stored bytes below this entry (chunks only).
    pub bytes: u64,
    /// Encoded key of the last row below this entry, as hex.
    pub last_key: String,
    /// Level 0 only: rows stored beside the chunk that replace, add to or delete its rows (a
    /// small edit of a chunk, stored without rewriting it). `rows` and `last_key` are those of the
    /// chunk and delta read together; `bytes` counts both files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
}

/// A chunk's delta: a chunk of its own (same schema and encoding, content-addressed), whose
/// rows replace the rows with the same keys in the base chunk and add the others, and whose
/// footer lists the keys of the base chunk's rows it deletes. A reader merges the two by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub id: ObjectId,
    /// Rows in the delta file.
    pub rows: u64,
    /// Stored size of the delta file.
    pub bytes: u64,
    /// Rows of the chunk the delta deletes (their keys are in the delta file's footer).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Entry {
    /// An entry without a delta.
    pub fn plain(id: ObjectId, rows: u64, bytes: u64, last_key: String) -> Self {
        Entry {
            id,
            rows,
            bytes,
            last_key,
            delta: None,
        }
    }

    /// The stored files of a chunk entry with their sizes: the chunk, and its delta if any.
    pub fn files(&self) -> Vec<(ObjectId, u64)> {
        match &self.delta {
            None => vec![(self.id, self.bytes)],
            Some(d) => vec![
                (self.id, self.bytes.saturating_sub(d.bytes)),
                (d.id, d.bytes),
            ],
        }
    }

    /// What identifies an entry's contents: its id, and its delta's.
    pub fn identity(&self) -> (ObjectId, Option<ObjectId>) {
        (self.id, self.delta.map(|d| d.id))
    }

    pub fn last_key_bytes(&self) -> Result<Vec<u8>> {
        decode_hex(&self.last_key).ok_or_else(|| Error::CorruptObject {
            id: self.id.to_hex(),
            reason: "an index entry's key is not hex".into(),
        })
    }
}

/// An index node as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub format: u32,
    pub kind: String,
    pub level: u8,
    pub entries: Vec<Entry>,
}

pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A tree built in memory: its root and the nodes to store.
pub struct BuiltTree {
    pub root: ObjectId,
    /// The new nodes, each with its level.
    pub nodes: Vec<(u8, ObjectId, Bytes)>,
}

fn is_node_boundary(entry: &Entry, count: usize) -> bool {
    count >= NODE_MAX || entry.id.prefix_u64().is_multiple_of(NODE_AVG)
}

/// Builds the index over `chunks` (in key order). Nodes whose ids are in `known` are
/// already stored and are not returned for writing.
pub fn build(chunks: Vec<Entry>, known: &HashSet<ObjectId>) -> Result<BuiltTree> {
    build_from(0, chunks, known)
}

/// Builds the levels from `level` up over `entries`, the entries of that level's nodes.
fn build_from(level: u8, entries: Vec<Entry>, known: &HashSet<ObjectId>) -> Result<BuiltTree> {
    let mut nodes = Vec::new();
    let mut level = level;
    let mut entries = entries;
    loop {
        let mut cut = Cutter::new(level, known);
        for e in entries {
            cut.push(e)?;
        }
        cut.finish()?;
        nodes.append(&mut cut.nodes);
        let mut parents = cut.sealed;
        if parents.is_empty() {
            parents.push(seal(level, Vec::new(), known, &mut nodes)?);
        }
        if parents.len() == 1 {
            return Ok(BuiltTree {
                root: parents[0].id,
                nodes,
            });
        }
        entries = parents;
        level += 1;
    }
}

/// Cuts one level's entries into nodes as they come: an entry on a boundary ends its node.
struct Cutter<'k> {
    level: u8,
    known: &'k HashSet<ObjectId>,
    current: Vec<Entry>,
    /// The entries of the nodes ended so far (the next level's entries).
    sealed: Vec<Entry>,
    /// The new nodes to store, with their level.
    nodes: Vec<(u8, ObjectId, Bytes)>,
}

impl<'k> Cutter<'k> {
    fn new(level: u8, known: &'k HashSet<ObjectId>) -> Self {
        Cutter {
            level,
            known,
            current: Vec::new(),
            sealed: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Adds an entry; true when it ended a node.
    fn push(&mut self, entry: Entry) -> Result<bool> {
        let boundary = is_node_boundary(&entry, self.current.len() + 1);
        self.current.push(entry);
        if boundary {
            self.end_node()?;
        }
        Ok(boundary)
    }

    /// Ends the node in progress, if any: the level ends here.
    fn finish(&mut self) -> Result<()> {
        if !self.current.is_empty() {
            self.end_node()?;
        }
        Ok(())
    }

    fn end_node(&mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.current);
        let entry = seal(self.level, entries, self.known, &mut self.nodes)?;
        self.sealed.push(entry);
        Ok(())
    }
}

fn seal(
    level: u8,
    entries: Vec<Entry>,
    known: &HashSet<ObjectId>,
    out: &mut Vec<(u8, ObjectId, Bytes)>,
) -> Result<Entry> {
    let rows = entries.iter().map(|e| e.rows).sum();
    let bytes = entries.iter().map(|e| e.bytes).sum();
    let last_key = entries
        .last()
        .map(|e| e.last_key.clone())
        .unwrap_or_default();
    let format = entries
        .iter()
        .map(|e| match e.delta {
            None => 1,
            Some(d) if d.deletes == 0 => 2,
            Some(_) => 3,
        })
        .max()
        .unwrap_or(1);
    let node = Node {
        format,
        kind: "node".into(),
        level,
        entries,
    };
    let encoded = encode_json(&node)?;
    let id = ObjectId::of(&encoded);
    if !known.contains(&id) {
        out.push((level, id, encoded));
    }
    Ok(Entry::plain(id, rows, bytes, last_key))
}

/// Stores the nodes of a built tree, a level at a time from the bottom: a node is stored only
/// once the nodes it lists are (the completeness invariant, docs/protocol.md, section 6: a
/// node present in a repository has all it reaches, so fetch stops walking there, even after
/// an interrupted write). The nodes of one level are stored at once.
pub async fn store(objects: &Objects, tree: BuiltTree) -> Result<ObjectId> {
    let mut nodes = tree.nodes;
    nodes.sort_by_key(|(level, _, _)| *level);
    let mut nodes = nodes.into_iter().peekable();
    while let Some(&(level, _, _)) = nodes.peek() {
        let this_level: Vec<_> = std::iter::from_fn(|| nodes.next_if(|n| n.0 == level)).collect();
        stream::iter(this_level)
            .map(|(_, id, bytes)| objects.put_with_id(ObjectKind::Meta, id, bytes))
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(tree.root)
}

/// Reads an index node, checked: its format is one this build understands ("upgrade strata"
/// otherwise), and its deltas are where its format allows them.
pub async fn read_node(objects: &Objects, id: &ObjectId) -> Result<Node> {
    Ok(read_node_bytes(objects, id).await?.0)
}

/// An index node and its stored bytes.
async fn read_node_bytes(objects: &Objects, id: &ObjectId) -> Result<(Node, Bytes)> {
    let bytes = objects.get(ObjectKind::Meta, id).await?;
    let node: Node = serde_json::from_slice(&bytes).map_err(|e| Error::CorruptObject {
        id: id.to_hex(),
        reason: format!("it does not decode: {e}"),
    })?;
    check_format(&format!("index node {id}"), node.format, NODE_FORMAT)?;
    if node.kind != "node" {
        return Err(Error::CorruptObject {
            id: id.to_hex(),
            reason: format!("expected an index node, found a {}", node.kind),
        });
    }
    if node.entries.iter().any(|e| e.delta.is_some()) && (node.level > 0 || node.format < 2) {
        return Err(Error::CorruptObject {
            id: id.to_hex(),
            reason:
                "a delta in an entry where none belongs (above level 0, or in a node of format 1)"
                    .into(),
        });
    }
    if node.format < 3
        && node
            .entries
            .iter()
            .any(|e| e.delta.is_some_and(|d| d.deletes > 0))
    {
        return Err(Error::CorruptObject {
            id: id.to_hex(),
            reason: format!(
                "a delta that deletes rows in a node of format {}",
                node.format
            ),
        });
    }
    Ok((node, bytes))
}

/// The chunk entries of a tree in key order, and the ids of all its nodes.
pub async fn load(objects: &Objects, root: &ObjectId) -> Result<(Vec<Entry>, HashSet<ObjectId>)> {
    let mut known = HashSet::new();
    known.insert(*root);
    let top = read_node(objects, root).await?;
    let mut level = top.level;
    let mut entries = top.entries;
    while level > 0 {
        let ids: Vec<ObjectId> = entries.iter().map(|e| e.id).collect();
        known.extend(ids.iter().copied());
        let nodes: Vec<Node> = stream::iter(ids)
            .map(|id| async move { read_node(objects, &id).await })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        entries = Vec::with_capacity(nodes.len() * NODE_AVG as usize);
        for n in nodes {
            if n.level + 1 != level {
                return Err(Error::Invalid(format!(
                    "index tree under {root} mixes levels {} and {level}",
                    n.level
                )));
            }
            entries.extend(n.entries);
        }
        level -= 1;
    }
    Ok((entries, known))
}

/// A replacement in one level's sequence of entries: the old entries whose keys lie in
/// `first..=last` (hex-encoded keys, compared as strings: hex keeps the byte order) give way to
/// `entries`. `first` and `last` are keys of old entries.
#[derive(Debug, Clone)]
pub struct Span {
    pub first: String,
    pub last: String,
    pub entries: Vec<Entry>,
}

/// A stored tree read on demand: a node is read when an edit or a seek reaches it, and kept.
pub struct LazyTree<'a> {
    objects: &'a Objects,
    root: Arc<Node>,
    root_id: ObjectId,
    nodes: HashMap<ObjectId, Arc<Node>>,
}

impl<'a> LazyTree<'a> {
    pub async fn open(objects: &'a Objects, root: &ObjectId) -> Result<LazyTree<'a>> {
        let node = Arc::new(read_node(objects, root).await?);
        let mut nodes = HashMap::new();
        nodes.insert(*root, node.clone());
        Ok(LazyTree {
            objects,
            root: node,
            root_id: *root,
            nodes,
        })
    }

    /// How many nodes have been read (the root included).
    pub fn nodes_read(&self) -> usize {
        self.nodes.len()
    }

    /// True when the tree lists no chunk (an empty table).
    pub fn is_empty(&self) -> bool {
        self.root.entries.is_empty()
    }

    async fn node(&mut self, id: &ObjectId, level: u8) -> Result<Arc<Node>> {
        if let Some(n) = self.nodes.get(id) {
            return Ok(n.clone());
        }
        let node = Arc::new(read_node(self.objects, id).await?);
        if node.level != level {
            return Err(Error::Invalid(format!(
                "index tree under {} has a level-{} node ({id}) where level {level} belongs",
                self.root_id, node.level
            )));
        }
        self.nodes.insert(*id, node.clone());
        Ok(node)
    }

    /// A cursor on the entries of `level`'s nodes, at the first entry whose key is at least
    /// `key` (or at the last entry when every key is smaller). With `node_start`, the cursor
    /// is at the first entry of that entry's node instead.
    pub async fn seek(&mut self, level: u8, key: &str, node_start: bool) -> Result<Cursor> {
        if level > self.root.level {
            return Err(Error::Invalid(format!(
                "index tree under {} has no level {level}",
                self.root_id
            )));
        }
        let mut path = Vec::new();
        let mut node = self.root.clone();
        loop {
            let idx = node
                .entries
                .iter()
                .position(|e| e.last_key.as_str() >= key)
                .unwrap_or(node.entries.len().saturating_sub(1));
            if node.level == level {
                path.push((node, if node_start { 0 } else { idx }));
                return Ok(Cursor { path, done: false });
            }
            let child = node.entries[idx].id;
            let child_level = node.level - 1;
            path.push((node, idx));
            node = self.node(&child, child_level).await?;
        }
    }
}

/// A position among the entries of one level of a [`LazyTree`], with the path from the root.
pub struct Cursor {
    path: Vec<(Arc<Node>, usize)>,
    done: bool,
}

impl Cursor {
    /// The entry at the cursor; `None` past the last one.
    pub fn peek(&self) -> Option<&Entry> {
        if self.done {
            return None;
        }
        let (node, idx) = self.path.last()?;
        node.entries.get(*idx)
    }

    /// True when the entry at the cursor is the last of its node.
    pub fn at_node_end(&self) -> bool {
        self.path
            .last()
            .is_some_and(|(node, idx)| idx + 1 == node.entries.len())
    }

    /// True when the entry at the cursor is the last of the whole level.
    pub fn at_level_end(&self) -> bool {
        self.path
            .iter()
            .all(|(node, idx)| idx + 1 == node.entries.len())
    }

    /// Moves to the next entry, reading the nodes on the way.
    pub async fn advance(&mut self, tree: &mut LazyTree<'_>) -> Result<()> {
        if self.done || self.path.is_empty() {
            self.done = true;
            return Ok(());
        }
        let mut depth = self.path.len() - 1;
        loop {
            let (node, idx) = &mut self.path[depth];
            *idx += 1;
            if *idx < node.entries.len() {
                break;
            }
            if depth == 0 {
                self.done = true;
                return Ok(());
            }
            depth -= 1;
        }
        for d in depth + 1..self.path.len() {
            let (parent, idx) = &self.path[d - 1];
            let (child, level) = (parent.entries[*idx].id, parent.level - 1);
            let node = tree.node(&child, level).await?;
            self.path[d] = (node, 0);
        }
        Ok(())
    }
}

/// Applies `spans` (in key order, not overlapping) to the chunk entries of `tree` and returns
/// the new tree: the same tree [`build`] makes from the edited entries, found by reading and
/// cutting again only the nodes around the spans. At each level the nodes from the one that
/// holds a span's first entry are cut again until a cut falls on an old node's end; the nodes
/// after it are kept, so an edit reads and writes a few nodes per level whatever the size of
/// the table.
pub async fn edit(tree: &mut LazyTree<'_>, spans: Vec<Span>) -> Result<BuiltTree> {
    let top = tree.root.level;
    let mut created: Vec<(u8, ObjectId, Bytes)> = Vec::new();
    let mut spans = spans;
    for level in 0..top {
        if spans.is_empty() {
            break;
        }
        spans = recut(tree, level, spans, &mut created).await?;
    }
    // The root's entries, edited, are cut and built up like a new tree's.
    let mut entries = Vec::with_capacity(tree.root.entries.len());
    let mut old = tree.root.entries.iter().peekable();
    for span in spans {
        while let Some(e) = old.next_if(|e| e.last_key < span.first) {
            entries.push(e.clone());
        }
        while old.next_if(|e| e.last_key <= span.last).is_some() {}
        entries.extend(span.entries);
    }
    entries.extend(old.cloned());
    let known: HashSet<ObjectId> = tree.nodes.keys().copied().collect();
    if entries.is_empty() {
        // Every chunk is gone: no node cut below is part of the tree.
        return build(Vec::new(), &known);
    }
    let created = created.into_iter().filter(|(_, id, _)| !known.contains(id));
    if entries.len() > 1 || top == 0 {
        let built = build_from(top, entries, &known)?;
        let nodes = created.chain(built.nodes);
        return Ok(BuiltTree {
            root: built.root,
            nodes: nodes.collect(),
        });
    }
    // One entry left at the top: as in a tree built whole, it stands for its child, down to
    // the first node with more than one entry (or a level-0 node).
    let created: HashMap<ObjectId, (u8, Bytes)> = created
        .map(|(level, id, bytes)| (id, (level, bytes)))
        .collect();
    let mut root = entries[0].id;
    let root_level = loop {
        let node: Arc<Node> = match created.get(&root) {
            Some((_, bytes)) => {
                Arc::new(
                    serde_json::from_slice(bytes).map_err(|e| Error::CorruptObject {
                        id: root.to_hex(),
                        reason: format!("a new index node does not decode: {e}"),
                    })?,
                )
            }
            None => match tree.nodes.get(&root) {
                Some(n) => n.clone(),
                None => Arc::new(read_node(tree.objects, &root).await?),
            },
        };
        if node.level > 0 && node.entries.len() == 1 {
            root = node.entries[0].id;
        } else {
            break node.level;
        }
    };
    let nodes = created
        .into_iter()
        .filter(|(_, (level, _))| *level <= root_level)
        .map(|(id, (level, bytes))| (level, id, bytes))
        .collect();
    Ok(BuiltTree { root, nodes })
}

/// Cuts `level`'s nodes again around `spans` (replacements among that level's entries) and
/// returns the replacements they make among the next level's entries.
async fn recut(
    tree: &mut LazyTree<'_>,
    level: u8,
    spans: Vec<Span>,
    created: &mut Vec<(u8, ObjectId, Bytes)>,
) -> Result<Vec<Span>> {
    let root = tree.root_id;
    let out_of_order = || {
        Error::Invalid(format!(
            "an edit of the index tree under {root} names entries out of key order"
        ))
    };
    let none = HashSet::new();
    let mut out = Vec::new();
    let mut spans = spans.into_iter().peekable();
    while let Some(span) = spans.peek() {
        let mut cur = tree.seek(level, &span.first, true).await?;
        let first = cur
            .path
            .last()
            .and_then(|(node, _)| node.entries.last())
            .map(|e| e.last_key.clone())
            .ok_or_else(out_of_order)?;
        let mut last = first.clone();
        let mut cut = Cutter::new(level, &none);
        loop {
            let Some(entry) = cur.peek() else {
                cut.finish()?;
                break;
            };
            if let Some(span) = spans.next_if(|s| s.first <= entry.last_key) {
                if span.first != entry.last_key {
                    return Err(out_of_order());
                }
                for e in span.entries {
                    cut.push(e)?;
                }
                while let Some(e) = cur.peek() {
                    if e.last_key > span.last {
                        break;
                    }
                    last = e.last_key.clone();
                    cur.advance(tree).await?;
                }
                continue;
            }
            let entry = entry.clone();
            let ends_node = cur.at_node_end();
            cur.advance(tree).await?;
            last = entry.last_key.clone();
            if cut.push(entry)? && ends_node {
                break;
            }
        }
        created.extend(cut.nodes);
        out.push(Span {
            first,
            last,
            entries: cut.sealed,
        });
    }
    Ok(out)
}

/// What differs between two trees over the same key order: the chunk entries only one of
/// them holds (each in key order), the ids (of chunks and nodes) both hold, and the old tree's
/// nodes that were read. Only the nodes on the paths to differing chunks are read: subtrees
/// with the same id are the same rows and are not opened.
#[derive(Debug, Default)]
pub struct TreeDiff {
    pub old_only: Vec<Entry>,
    pub new_only: Vec<Entry>,
    pub common: HashSet<ObjectId>,
    pub old_nodes: HashSet<ObjectId>,
    /// The stored bytes of the new tree's nodes that were read (those that differ), so that
    /// a copy of them need not read them again.
    pub new_nodes: HashMap<ObjectId, Bytes>,
}

/// Compares the tree under `old` (in `old_objects`) with the tree under `new` (in
/// `new_objects`); see [`TreeDiff`].
pub async fn diff(
    old_objects: &Objects,
    old: &ObjectId,
    new_objects: &Objects,
    new: &ObjectId,
) -> Result<TreeDiff> {
    // The frontiers: (height, entry), height 0 for a chunk and level + 1 for a node.
    let root_entry = |id: &ObjectId| Entry::plain(*id, 0, 0, String::new());
    let (a_top, (b_top, b_bytes)) = (
        read_node(old_objects, old).await?,
        read_node_bytes(new_objects, new).await?,
    );
    let mut a = vec![(a_top.level + 1, root_entry(old))];
    let mut b = vec![(b_top.level + 1, root_entry(new))];
    let mut out = TreeDiff::default();
    out.new_nodes.insert(*new, b_bytes);
    let mut cache: HashMap<ObjectId, Node> = HashMap::from([(*old, a_top), (*new, b_top)]);
    loop {
        // A chunk with a delta is the same only with the same delta.
        let a_ids: HashSet<_> = a.iter().map(|(_, e)| e.identity()).collect();
        let b_ids: HashSet<_> = b.iter().map(|(_, e)| e.identity()).collect();
        for (id, delta) in a_ids.intersection(&b_ids) {
            out.common.insert(*id);
            out.common.extend(*delta);
        }
        a.retain(|(_, e)| !b_ids.contains(&e.identity()));
        b.retain(|(_, e)| !a_ids.contains(&e.identity()));
        let height = a.iter().chain(&b).map(|(h, _)| *h).max().unwrap_or(0);
        if height == 0 {
            break;
        }
        let wanted = |side: &[(u8, Entry)], objects: &'_ Objects| {
            side.iter()
                .filter(|(h, e)| *h == height && !cache.contains_key(&e.id))
                .map(|(_, e)| (e.id, objects.clone()))
                .collect::<Vec<_>>()
        };
        let mut wanted_ids = wanted(&a, old_objects);
        wanted_ids.extend(wanted(&b, new_objects));
        let read: Vec<(ObjectId, Node)> =
            stream::iter(wanted_ids)
                .map(|(id, objects)| async move {
                    Ok::<_, Error>((id, read_node(&objects, &id).await?))
                })
                .buffered(READ_CONCURRENCY)
                .try_collect()
                .await?;
        cache.extend(read);
        let mut expand = |side: Vec<(u8, Entry)>, old_side: bool| -> Result<Vec<(u8, Entry)>> {
            let mut next = Vec::with_capacity(side.len());
            for (h, e) in side {
                if h != height {
                    next.push((h, e));
                    continue;
                }
                let node = cache
                    .get(&e.id)
                    .ok_or_else(|| Error::Invalid(format!("index node {} was not read", e.id)))?;
                if node.level + 1 != h {
                    return Err(Error::Invalid(format!(
                        "index node {} is at level {} where level {} belongs",
                        e.id,
                        node.level,
                        h - 1
                    )));
                }
                if old_side {
                    out.old_nodes.insert(e.id);
                }
                next.extend(node.entries.iter().map(|c| (node.level, c.clone())));
            }
            Ok(next)
        };
        a = expand(std::mem::take(&mut a), true)?;
        b = expand(std::mem::take(&mut b), false)?;
        cache.retain(|_, n| n.level + 1 < height);
    }
    out.old_only = a.into_iter().map(|(_, e)| e).collect();
    out.new_only = b.into_iter().map(|(_, e)| e).collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Entry {
        Entry {
            id: ObjectId::of(&i.to_be_bytes()),
            rows: 10,
            bytes: 100,
            last_key: encode_hex(&i.to_be_bytes()),
            delta: None,
        }
    }

    #[tokio::test]
    async fn a_tree_round_trips_and_one_change_rewrites_few_nodes() {
        let objects = Objects::new(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "memory",
        );
        let chunks: Vec<Entry> = (0..5000).map(entry).collect();
        let built = build(chunks.clone(), &HashSet::new()).expect("build");
        let total_nodes = built.nodes.len();
        let root = store(&objects, built).await.expect("store");
        let (loaded, known) = load(&objects, &root).await.expect("load");
        assert_eq!(loaded, chunks);
        let mut changed = chunks.clone();
        changed[2500].rows = 11;
        let rebuilt = build(changed, &known).expect("rebuild");
        assert!(total_nodes > 50, "{total_nodes} nodes");
        assert!(
            rebuilt.nodes.len() <= 4,
            "{} nodes rewritten",
            rebuilt.nodes.len()
        );
        assert_eq!(
            decode_hex(&encode_hex(&[0, 255, 16])),
            Some(vec![0, 255, 16])
        );
    }

    /// An entry with key `key` whose id ends its node with the given odds (per 1024), so
    /// that trees cut mostly by the content, mostly by the 256-entry limit, or in between
    /// are all tried.
    fn entry_with(key: u64, boundary_per_1024: u64, seed: u64) -> Entry {
        let mut nonce = 0u64;
        let want = (seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1024 < boundary_per_1024;
        loop {
            let id = ObjectId::of(&[key.to_be_bytes(), nonce.to_be_bytes()].concat());
            if id.prefix_u64().is_multiple_of(NODE_AVG) == want {
                return Entry {
                    id,
                    rows: key % 7 + 1,
                    bytes: key % 11 + 1,
                    last_key: encode_hex(&key.to_be_bytes()),
                    delta: None,
                };
            }
            nonce += 1;
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    fn memory() -> Objects {
        Objects::new(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "memory",
        )
    }

    /// Edits `old` (keys 1000, 2000, ...) with `edits`: (first old index, old entries
    /// replaced (at least one), new entries), and returns the spans and the edited sequence.
    fn spans_of(
        old: &[Entry],
        edits: &[(usize, usize, usize)],
        odds: u64,
        seed: u64,
    ) -> (Vec<Span>, Vec<Entry>) {
        let mut spans = Vec::new();
        let mut edited = Vec::new();
        let mut next = 0;
        for &(start, len, added) in edits {
            if start < next || start >= old.len() {
                continue;
            }
            let end = (start + len.max(1)).min(old.len());
            edited.extend_from_slice(&old[next..start]);
            // New keys lie strictly between the old entries around the span.
            let low = start as u64 * 1000 + 1;
            let step = ((end - start) as u64 * 1000 + 998) / (added as u64 + 1);
            let entries: Vec<Entry> = (1..=added as u64)
                .map(|j| entry_with(low + j * step, odds, seed ^ j))
                .collect();
            edited.extend(entries.iter().cloned());
            spans.push(Span {
                first: old[start].last_key.clone(),
                last: old[end - 1].last_key.clone(),
                entries,
            });
            next = end;
        }
        edited.extend_from_slice(&old[next..]);
        (spans, edited)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Editing a stored tree in place gives the tree built whole from the edited entries,
        /// whatever the edits, the size of the tree and how its nodes are cut.
        #[test]
        fn an_edited_tree_is_the_tree_built_from_the_edited_entries(
            n in 1usize..4000,
            odds in proptest::sample::select(vec![0u64, 4, 16, 64, 256]),
            seed in 0u64..1_000_000,
            edits in proptest::collection::vec((0usize..4000, 0usize..400, 0usize..6), 0..6),
        ) {
            let mut edits = edits;
            edits.sort();
            let old: Vec<Entry> = (1..=n as u64).map(|k| entry_with(k * 1000, odds, seed)).collect();
            let (spans, edited) = spans_of(&old, &edits, odds, seed);
            runtime().block_on(async {
                let objects = memory();
                let root = store(&objects, build(old, &HashSet::new()).expect("build")).await.expect("store");
                let mut tree = LazyTree::open(&objects, &root).await.expect("open");
                let made = edit(&mut tree, spans).await.expect("edit");
                let whole = build(edited.clone(), &HashSet::new()).expect("build");
                proptest::prop_assert_eq!(made.root, whole.root);
                let root = store(&objects, made).await.expect("store");
                let (loaded, _) = load(&objects, &root).await.expect("every node of the edit is stored");
                proptest::prop_assert_eq!(loaded, edited);
                Ok(())
            })?;
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// The differing chunks two trees' diff finds are those that only one of their
        /// whole entry lists holds, in key order.
        #[test]
        fn a_tree_diff_finds_the_chunks_only_one_side_holds(
            n in 1usize..3000,
            odds in proptest::sample::select(vec![0u64, 16, 64, 256]),
            seed in 0u64..1_000_000,
            edits in proptest::collection::vec((0usize..3000, 0usize..300, 0usize..6), 0..5),
            swap in proptest::bool::ANY,
        ) {
            let mut edits = edits;
            edits.sort();
            let old: Vec<Entry> = (1..=n as u64).map(|k| entry_with(k * 1000, odds, seed)).collect();
            let (_, edited) = spans_of(&old, &edits, odds, seed);
            let (old, new) = if swap { (edited, old) } else { (old, edited) };
            runtime().block_on(async {
                let objects = memory();
                let a = store(&objects, build(old.clone(), &HashSet::new()).expect("build")).await.expect("store");
                let b = store(&objects, build(new.clone(), &HashSet::new()).expect("build")).await.expect("store");
                let found = diff(&objects, &a, &objects, &b).await.expect("diff");
                let only = |x: &[Entry], y: &[Entry]| -> Vec<Entry> {
                    let ys: HashSet<ObjectId> = y.iter().map(|e| e.id).collect();
                    x.iter().filter(|e| !ys.contains(&e.id)).cloned().collect()
                };
                proptest::prop_assert_eq!(&found.old_only, &only(&old, &new));
                proptest::prop_assert_eq!(&found.new_only, &only(&new, &old));
                // What a copy of the new tree skips as present is really in the old one.
                let (_, a_nodes) = load(&objects, &a).await.expect("load");
                let a_chunks: HashSet<ObjectId> = old.iter().map(|e| e.id).collect();
                for id in found.common.iter().chain(&found.old_nodes) {
                    proptest::prop_assert!(a_nodes.contains(id) || a_chunks.contains(id));
                }
                Ok(())
            })?;
        }
    }

    #[test]
    fn a_one_entry_edit_reads_a_few_nodes_per_level() {
        runtime().block_on(async {
            let objects = memory();
            let old: Vec<Entry> = (1..=100_000u64)
                .map(|k| entry_with(k * 1000, 16, 7))
                .collect();
            let built = build(old.clone(), &HashSet::new()).expect("build");
            let all = built.nodes.len();
            let root = store(&objects, built).await.expect("store");
            let mut tree = LazyTree::open(&objects, &root).await.expect("open");
            let levels = usize::from(tree.root.level) + 1;
            let (spans, edited) = spans_of(&old, &[(54_321, 1, 1)], 16, 7);
            let made = edit(&mut tree, spans).await.expect("edit");
            assert!(
                tree.nodes_read() <= 3 * levels && made.nodes.len() <= 2 * levels,
                "{} nodes read and {} written of {all} ({levels} levels)",
                tree.nodes_read(),
                made.nodes.len()
            );
            assert_eq!(
                made.root,
                build(edited, &HashSet::new()).expect("build").root
            );
        });
    }
}

#[cfg(test)]
pub(crate) mod store_order {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
    };

    use super::*;

    /// Records the keys whose puts have finished, in that order; the puts of the `slow` keys
    /// take 50 ms, so a parent stored alongside such a child would finish first.
    #[derive(Debug)]
    pub(crate) struct Recording {
        pub(crate) inner: InMemory,
        pub(crate) slow: Mutex<HashSet<String>>,
        pub(crate) done: Mutex<Vec<String>>,
    }

    impl std::fmt::Display for Recording {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Recording")
        }
    }

    #[async_trait]
    impl ObjectStore for Recording {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> Result<PutResult> {
            let slow = self
                .slow
                .lock()
                .map(|s| s.contains(location.as_ref()))
                .unwrap_or(false);
            if slow {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let r = self.inner.put_opts(location, payload, opts).await;
            if let Ok(mut d) = self.done.lock() {
                d.push(location.to_string());
            }
            r
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// A node is stored only after every node it lists: after an interrupted store, a node
    /// present has all it reaches (fetch stops walking at a present node).
    #[tokio::test]
    async fn nodes_are_stored_after_the_nodes_they_list() {
        let entries: Vec<Entry> = (0..20_000u64)
            .map(|i| Entry {
                id: ObjectId::of(&i.to_be_bytes()),
                rows: 10,
                bytes: 100,
                last_key: encode_hex(&i.to_be_bytes()),
                delta: None,
            })
            .collect();
        let built = build(entries, &HashSet::new()).expect("build");
        let levels: HashSet<u8> = built.nodes.iter().map(|n| n.0).collect();
        assert!(levels.len() >= 3, "{levels:?}: too few levels to test");
        let recording = Arc::new(Recording {
            inner: InMemory::new(),
            // The last level-0 node: the nodes above it come next in a tree's list.
            slow: Mutex::new(
                built
                    .nodes
                    .iter()
                    .rfind(|n| n.0 == 0)
                    .map(|n| ObjectKind::Meta.path(&n.1).to_string())
                    .into_iter()
                    .collect(),
            ),
            done: Mutex::new(Vec::new()),
        });
        let children: HashMap<String, Vec<String>> = built
            .nodes
            .iter()
            .map(|(level, id, bytes)| {
                let node: Node = serde_json::from_slice(bytes).expect("node");
                let kids = match level {
                    0 => Vec::new(),
                    _ => node
                        .entries
                        .iter()
                        .map(|e| ObjectKind::Meta.path(&e.id).to_string())
                        .collect(),
                };
                (ObjectKind::Meta.path(id).to_string(), kids)
            })
            .collect();
        let objects = Objects::new(recording.clone(), "memory");
        store(&objects, built).await.expect("store");
        let done = recording.done.lock().expect("log").clone();
        assert_eq!(done.len(), children.len());
        let at: HashMap<&String, usize> = done.iter().enumerate().map(|(i, k)| (k, i)).collect();
        for (node, kids) in &children {
            for kid in kids {
                assert!(
                    at[kid] < at[node],
                    "node {node} was stored before its child {kid}"
                );
            }
        }
    }
}
