//! Integrity check: every ref record is well-formed, and every object reachable from the refs
//! exists, hashes to its id and decodes. Each problem says what to do about it.

use std::collections::{HashSet, VecDeque};

use strata_engine::chunk::decode_chunk;
use strata_engine::store::{layout, ObjectKind, Objects, RefKind, RefLog, RefName};
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
    /// What to do about it.
    pub fix: String,
}

/// Where a check runs, which decides the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The local repository: missing or damaged objects come back from a remote.
    Local,
    /// A remote: missing or damaged objects come back by pushing from a repository that has them.
    Remote,
}

impl Side {
    fn object_fix(self) -> String {
        match self {
            Side::Local => "fetch it again from a remote that has it (`strata fetch`), or clone afresh".into(),
            Side::Remote => "push again from a repository that has it complete (`strata fsck` there first); a push uploads what the remote lacks".into(),
        }
    }
}

/// Checks every ref log of one kind in `refs` and returns the refs' commits (the roots of the
/// object check) and the problems found in the records themselves. `label` prefixes names.
pub async fn check_refs(
    refs: &RefLog,
    label: &str,
    side: Side,
) -> Result<(Vec<(String, ObjectId)>, Vec<Problem>), strata_engine::Error> {
    let mut roots = Vec::new();
    let mut problems = Vec::new();
    let store = refs.store();
    for kind in [RefKind::Branch, RefKind::Tag] {
        let dir = layout::refs_dir(kind);
        let listing = store.list_with_delimiter(Some(&dir)).await.map_err(|e| {
            strata_engine::Error::Storage {
                path: dir.to_string(),
                source: e,
            }
        })?;
        for stray in &listing.objects {
            problems.push(Problem {
                object: stray.location.to_string(),
                reached_from: format!("{label}refs/{}", kind.dir()),
                message: "a file where only ref folders belong".into(),
                fix: "strata did not write it; move it out of the refs folder".into(),
            });
        }
        for prefix in listing.common_prefixes {
            let Some(folder) = prefix.filename() else {
                continue;
            };
            let name = match RefName::new(kind, folder) {
                Ok(n) => n,
                Err(e) => {
                    problems.push(Problem {
                        object: prefix.to_string(),
                        reached_from: format!("{label}refs/{}", kind.dir()),
                        message: e.to_string(),
                        fix: "strata did not write it; move it out of the refs folder".into(),
                    });
                    continue;
                }
            };
            let shown = format!("{label}{name}");
            let folder = refs.records(&name).await?;
            let newest = folder.records.last().map(|(seq, _, _)| *seq);
            for (seq, key, record) in &folder.records {
                if let Err(e) = record {
                    let remote = label.trim_end_matches(": ");
                    let fix = if Some(*seq) != newest {
                        match side {
                            Side::Local => "an old record: nothing reads it; `strata gc` removes it".to_string(),
                            Side::Remote => format!("an old record: nothing reads it; `strata gc --remote {remote}` removes it"),
                        }
                    } else if side == Side::Remote {
                        let push = match name.kind {
                            RefKind::Branch => {
                                format!("strata push --force {remote} {}", name.name)
                            }
                            RefKind::Tag => format!("strata push --force --tags {remote}"),
                        };
                        format!("this is the ref's current record, so the ref cannot be read or moved: push a good commit over it with `{push}` (the damaged record becomes an old one, which `strata gc --remote {remote}` removes), or restore the file from a backup")
                    } else {
                        "this is the ref's current record, so the ref cannot be read or moved: restore the file from a backup, or (while nothing writes to this repository) delete it so that the ref falls back to its previous record, then move the ref again (commit or reset)".to_string()
                    };
                    let message = match e {
                        strata_engine::Error::CorruptRef { reason, .. } => {
                            format!("the ref record is damaged: {reason}")
                        }
                        other => other.to_string(),
                    };
                    problems.push(Problem {
                        object: key.clone(),
                        reached_from: shown.clone(),
                        message,
                        fix,
                    });
                }
            }
            if let Some(Err(e)) = &folder.hint {
                problems.push(Problem {
                    object: layout::ref_hint(name.kind, &name.name).to_string(),
                    reached_from: shown.clone(),
                    message: format!("the hint does not decode: {e}"),
                    fix: "harmless (readers then list the records); the next move of the ref or `strata gc` rewrites it".into(),
                });
            }
            for stray in &folder.strays {
                problems.push(Problem {
                    object: stray.clone(),
                    reached_from: shown.clone(),
                    message: "a file that is neither a ref record nor the hint".into(),
                    fix: "strata did not write it; move it out of the ref's folder".into(),
                });
            }
            match refs.read(&name).await {
                Ok(state) => {
                    if let Some(c) = state.commit() {
                        roots.push((shown, c));
                    }
                }
                Err(e) => {
                    if !problems.iter().any(|p| p.reached_from == shown) {
                        problems.push(Problem {
                            object: name.to_string(),
                            reached_from: shown,
                            message: e.to_string(),
                            fix: match side {
                                Side::Local => "check the ref's folder under .strata/refs; see the problems above".into(),
                                Side::Remote => "check the ref's folder on the remote; see the problems above".into(),
                            },
                        });
                    }
                }
            }
        }
    }
    Ok((roots, problems))
}

/// Checks everything reachable from `roots` (label, commit) and `tables` (label, table).
/// Returns the problems found and the number of objects checked.
pub async fn fsck(
    objects: &Objects,
    roots: &[(String, ObjectId)],
    tables: &[(String, ObjectId)],
    side: Side,
) -> (Vec<Problem>, u64) {
    let fix = side.object_fix();
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
                    fix: fix.clone(),
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
                    fix: fix.clone(),
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
                    fix: fix.clone(),
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
                        fix: fix.clone(),
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
                        fix: fix.clone(),
                    }),
                    Err(err) => problems.push(Problem {
                        object: e.id.to_hex(),
                        reached_from: label.clone(),
                        message: err.to_string(),
                        fix: fix.clone(),
                    }),
                }
            }
        }
    }
    (problems, checked)
}
