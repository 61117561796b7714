//! The index over a table's chunks: a tree of content-addressed nodes, cut by content like
//! the chunks themselves (a prolly tree). Level 0 nodes list chunks; higher levels list
//! nodes. An edit rewrites only the nodes on the paths to the chunks it changed, so a
//! commit's metadata cost follows the change, not the table.

use std::collections::HashSet;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::objects::{check_format, encode_json};
use crate::store::{ObjectKind, Objects};

/// Node format understood by this build.
pub const NODE_FORMAT: u32 = 1;

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
}

impl Entry {
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
    pub nodes: Vec<(ObjectId, Bytes)>,
}

fn is_node_boundary(entry: &Entry, count: usize) -> bool {
    count >= NODE_MAX || entry.id.prefix_u64().is_multiple_of(NODE_AVG)
}

/// Builds the index over `chunks` (in key order). Nodes whose ids are in `known` are
/// already stored and are not returned for writing.
pub fn build(chunks: Vec<Entry>, known: &HashSet<ObjectId>) -> Result<BuiltTree> {
    let mut nodes = Vec::new();
    let mut level: u8 = 0;
    let mut entries = chunks;
    loop {
        let mut parents = Vec::new();
        let mut current: Vec<Entry> = Vec::new();
        let total = entries.len();
        for (i, e) in entries.into_iter().enumerate() {
            let boundary = is_node_boundary(&e, current.len() + 1);
            current.push(e);
            if boundary || i + 1 == total {
                parents.push(seal(
                    level,
                    std::mem::take(&mut current),
                    known,
                    &mut nodes,
                )?);
            }
        }
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

fn seal(
    level: u8,
    entries: Vec<Entry>,
    known: &HashSet<ObjectId>,
    out: &mut Vec<(ObjectId, Bytes)>,
) -> Result<Entry> {
    let rows = entries.iter().map(|e| e.rows).sum();
    let bytes = entries.iter().map(|e| e.bytes).sum();
    let last_key = entries
        .last()
        .map(|e| e.last_key.clone())
        .unwrap_or_default();
    let node = Node {
        format: NODE_FORMAT,
        kind: "node".into(),
        level,
        entries,
    };
    let encoded = encode_json(&node)?;
    let id = ObjectId::of(&encoded);
    if !known.contains(&id) {
        out.push((id, encoded));
    }
    Ok(Entry {
        id,
        rows,
        bytes,
        last_key,
    })
}

/// Stores the nodes of a built tree.
pub async fn store(objects: &Objects, tree: BuiltTree) -> Result<ObjectId> {
    stream::iter(tree.nodes)
        .map(|(id, bytes)| objects.put_with_id(ObjectKind::Meta, id, bytes))
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(tree.root)
}

async fn read_node(objects: &Objects, id: &ObjectId) -> Result<Node> {
    let node: Node = objects.get_json(id).await?;
    check_format(&format!("index node {id}"), node.format, NODE_FORMAT)?;
    if node.kind != "node" {
        return Err(Error::CorruptObject {
            id: id.to_hex(),
            reason: format!("expected an index node, found a {}", node.kind),
        });
    }
    Ok(node)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Entry {
        Entry {
            id: ObjectId::of(&i.to_be_bytes()),
            rows: 10,
            bytes: 100,
            last_key: encode_hex(&i.to_be_bytes()),
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
}
