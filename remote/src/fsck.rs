//! Integrity check: every object reachable from the given roots exists, hashes to its id and
//! decodes.

use std::collections::{HashSet, VecDeque};

use strata_engine::chunk::decode_chunk;
use strata_engine::store::{ObjectKind, Objects};
use strata_engine::tree::Node;
use strata_engine::{Commit, ObjectId, TableObject};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The object (id) or ref with the problem.
    pub object: String,
    /// The ref through which it was reached.
    pub reached_from: String,
    pub message: String,
}

/// Checks everything reachable from `roots` (label, commit) and `tables` (label, table).
/// Returns the problems found and the number of objects checked.
pub async fn fsck(
    objects: &Objects,
    roots: &[(String, ObjectId)],
    tables: &[(String, ObjectId)],
) -> (Vec<Problem>, u64) {
    let mut problems = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut checked = 0u64;
    let mut table_queue: VecDeque<(String, ObjectId)> = tables.iter().cloned().collect();
    for (label, root) in roots {
        let mut queue = VecDeque::from([*root]);
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            checked += 1;
            match Commit::read(objects, &id).await {
                Ok(c) => {
                    queue.extend(c.parents.iter().copied());
                    for t in c.tables.values() {
                        table_queue.push_back((label.clone(), *t));
                    }
                }
                Err(e) => problems.push(Problem {
                    object: id.to_hex(),
                    reached_from: label.clone(),
                    message: e.to_string(),
                }),
            }
        }
    }
    while let Some((label, id)) = table_queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        checked += 1;
        let table = match TableObject::read(objects, &id).await {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    object: id.to_hex(),
                    reached_from: label.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let schema = match table.schema.arrow() {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem {
                    object: id.to_hex(),
                    reached_from: label.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let mut nodes = VecDeque::from([table.index]);
        while let Some(n) = nodes.pop_front() {
            if !seen.insert(n) {
                continue;
            }
            checked += 1;
            let node: Node = match objects.get_json(&n).await {
                Ok(node) => node,
                Err(e) => {
                    problems.push(Problem {
                        object: n.to_hex(),
                        reached_from: label.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            for e in node.entries {
                if node.level > 0 {
                    nodes.push_back(e.id);
                    continue;
                }
                if !seen.insert(e.id) {
                    continue;
                }
                checked += 1;
                let outcome = match objects.get(ObjectKind::Chunk, &e.id).await {
                    Ok(bytes) => decode_chunk(&e.id, bytes, &schema).map(|b| b.num_rows() as u64),
                    Err(err) => Err(err),
                };
                match outcome {
                    Ok(rows) if rows == e.rows => {}
                    Ok(rows) => problems.push(Problem {
                        object: e.id.to_hex(),
                        reached_from: label.clone(),
                        message: format!(
                            "the chunk holds {rows} rows but its index entry says {}",
                            e.rows
                        ),
                    }),
                    Err(err) => problems.push(Problem {
                        object: e.id.to_hex(),
                        reached_from: label.clone(),
                        message: err.to_string(),
                    }),
                }
            }
        }
    }
    (problems, checked)
}
