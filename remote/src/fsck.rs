//! Integrity check: every ref record is well-formed, and every object reachable from the refs
//! exists, hashes to its id and decodes. Each problem says what to do about it; missing and
//! damaged objects can be restored from another copy of the repository ([`repair`]).

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use strata_engine::gc::{links, ObjectKey};

use strata_engine::chunk::{decode_chunk, delta_deletes};
use strata_engine::key::Keys;
use strata_engine::store::{layout, ObjectKind, Objects, RefKind, RefLog, RefName};
use strata_engine::table::merged_rows;
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
    /// The object that is missing or damaged, when another copy of it would mend the problem.
    #[serde(skip)]
    pub damaged: Option<ObjectKey>,
}

/// Where a check runs, which decides the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side<'a> {
    /// The local repository: missing or damaged objects come back from a remote.
    Local,
    /// The remote of this name: missing or damaged objects come back from a repository that
    /// has them.
    Remote(&'a str),
}

impl Side<'_> {
    fn object_fix(self) -> String {
        match self {
            Side::Local => "run `strata fsck --repair` to copy it again from a remote that has it, or clone afresh".into(),
            Side::Remote(remote) => format!("run `strata fsck --remote {remote} --repair` in a repository that has it intact (its own `strata fsck` is clean); that writes it again"),
        }
    }
}

/// Checks every ref log of one kind in `refs` and returns the refs' commits (the roots of the
/// object check) and the problems found in the records themselves. `label` prefixes names.
pub async fn check_refs(
    refs: &RefLog,
    label: &str,
    side: Side<'_>,
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
                damaged: None,
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
                        damaged: None,
                    });
                    continue;
                }
            };
            let shown = format!("{label}{name}");
            let folder = refs.records(&name).await?;
            let newest = folder.records.last().map(|(seq, _, _)| *seq);
            for (seq, key, record) in &folder.records {
                if let Err(e) = record {
                    let fix = match (side, Some(*seq) != newest) {
                        (Side::Local, true) => "an old record: nothing reads it; `strata gc` removes it".to_string(),
                        (Side::Remote(remote), true) => format!("an old record: nothing reads it; `strata gc --remote {remote}` removes it"),
                        (Side::Remote(remote), false) => {
                        let push = match name.kind {
                            RefKind::Branch => {
                                format!("strata push --force {remote} {}", name.name)
                            }
                            RefKind::Tag => format!("strata push --force --tags {remote}"),
                        };
                        format!("this is the ref's current record, so the ref cannot be read or moved: push a good commit over it with `{push}` (the damaged record becomes an old one, which `strata gc --remote {remote}` removes), or restore the file from a backup")
                        }
                        (Side::Local, false) => "this is the ref's current record, so the ref cannot be read or moved: restore the file from a backup, or (while nothing writes to this repository) delete it so that the ref falls back to its previous record, then move the ref again (commit or reset)".to_string(),
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
                        damaged: None,
                    });
                }
            }
            if let Some(Err(e)) = &folder.hint {
                problems.push(Problem {
                    object: layout::ref_hint(name.kind, &name.name).to_string(),
                    reached_from: shown.clone(),
                    message: format!("the hint does not decode: {e}"),
                    fix: "harmless (readers then list the records); the next move of the ref or `strata gc` rewrites it".into(),
                    damaged: None,
                });
            }
            for stray in &folder.strays {
                problems.push(Problem {
                    object: stray.clone(),
                    reached_from: shown.clone(),
                    message: "a file that is neither a ref record nor the hint".into(),
                    fix: "strata did not write it; move it out of the ref's folder".into(),
                    damaged: None,
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
                                Side::Remote(_) => "check the ref's folder on the remote; see the problems above".into(),
                            },
                            damaged: None,
                        });
                    }
                }
            }
        }
    }
    Ok((roots, problems))
}

/// What is wrong with an object, without the advice the error carries (a problem has its own).
fn describe(e: &strata_engine::Error) -> String {
    match e {
        strata_engine::Error::MissingObject { location, .. } => format!("missing from {location}"),
        strata_engine::Error::CorruptObject { reason, .. } => format!("damaged: {reason}"),
        other => other.to_string(),
    }
}

/// Checks everything reachable from `roots` (label, commit) and `tables` (label, table).
/// Returns the problems found and the number of objects checked.
pub async fn fsck(
    objects: &Objects,
    roots: &[(String, ObjectId)],
    tables: &[(String, ObjectId)],
    side: Side<'_>,
) -> (Vec<Problem>, u64) {
    let fix = side.object_fix();
    let mut problems = Vec::new();
    let mut problem = |id: &ObjectId, label: &str, message: String, damaged: Option<ObjectKind>| {
        problems.push(Problem {
            object: id.to_hex(),
            reached_from: label.to_string(),
            message,
            fix: fix.clone(),
            damaged: damaged.map(|kind| (kind, *id)),
        })
    };
    let mut seen: HashSet<ObjectId> = HashSet::new();
    // The entries whose rows were checked: a chunk, and the delta read with it if any.
    let mut seen_rows: HashSet<(ObjectId, Option<ObjectId>)> = HashSet::new();
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
                Err(e) => problem(&id, label, describe(&e), Some(ObjectKind::Meta)),
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
                problem(&id, &label, describe(&e), Some(ObjectKind::Meta));
                continue;
            }
        };
        let schema = match table.schema.arrow() {
            Ok(s) => s,
            Err(e) => {
                // Intact bytes that say something unusable: another copy is the same.
                problem(&id, &label, e.to_string(), None);
                continue;
            }
        };
        let key_idx = table.schema.key_indices();
        let mut nodes = VecDeque::from([table.index]);
        while let Some(n) = nodes.pop_front() {
            if !seen.insert(n) {
                continue;
            }
            checked += 1;
            let node: Node = match strata_engine::tree::read_node(objects, &n).await {
                Ok(node) => node,
                Err(e) => {
                    problem(&n, &label, describe(&e), Some(ObjectKind::Meta));
                    continue;
                }
            };
            for e in node.entries {
                if node.level > 0 {
                    nodes.push_back(e.id);
                    continue;
                }
                // A chunk shared by several entries (alone, or with different deltas) is
                // read again only for an entry whose rows are not checked yet.
                let unchecked = seen_rows.insert(e.identity());
                let files = e.files();
                let fresh: Vec<bool> = files.iter().map(|(f, _)| seen.insert(*f)).collect();
                if !unchecked && !fresh.contains(&true) {
                    continue;
                }
                checked += fresh.iter().filter(|f| **f).count() as u64;
                let mut decoded = Vec::new();
                for ((file, _), first) in files.iter().zip(&fresh) {
                    let outcome = match objects.get(ObjectKind::Chunk, file).await {
                        // A delta's footer lists the chunk's rows it deletes.
                        Ok(bytes) if Some(*file) == e.delta.map(|d| d.id) => {
                            delta_deletes(file, &bytes).and_then(|deleted| {
                                Ok((decode_chunk(file, bytes, &schema)?, deleted))
                            })
                        }
                        Ok(bytes) => {
                            decode_chunk(file, bytes, &schema).map(|b| (b, Keys::default()))
                        }
                        Err(err) => Err(err),
                    };
                    match outcome {
                        Ok(batch) => decoded.push(batch),
                        Err(err) if *first => {
                            problem(file, &label, describe(&err), Some(ObjectKind::Chunk))
                        }
                        Err(_) => {}
                    }
                }
                if decoded.len() < files.len() {
                    continue;
                }
                let rows = match (&e.delta, decoded.as_slice()) {
                    (Some(d), [(base, _), (delta, deleted)]) => {
                        if deleted.len() as u64 != d.deletes {
                            problem(
                                &d.id,
                                &label,
                                format!(
                                    "the delta deletes {} rows but its index entry says {}",
                                    deleted.len(),
                                    d.deletes
                                ),
                                None,
                            );
                        }
                        if delta.num_rows() as u64 != d.rows {
                            problem(
                                &d.id,
                                &label,
                                format!(
                                    "the delta holds {} rows but its index entry says {}",
                                    delta.num_rows(),
                                    d.rows
                                ),
                                None,
                            );
                        }
                        merged_rows(&e.id, base, delta, deleted.clone(), &key_idx)
                    }
                    (_, [(base, _), ..]) => Ok(base.num_rows() as u64),
                    _ => continue,
                };
                match rows {
                    Ok(rows) if rows == e.rows => {}
                    Ok(rows) => problem(
                        &e.id,
                        &label,
                        format!(
                            "the chunk holds {rows} rows but its index entry says {}",
                            e.rows
                        ),
                        None,
                    ),
                    Err(err) => problem(&e.id, &label, describe(&err), None),
                }
            }
        }
    }
    (problems, checked)
}

/// What [`repair`] did.
#[derive(Debug, Default)]
pub struct Repaired {
    /// Objects written again from an intact copy.
    pub restored: u64,
    /// Objects that could not be restored, with why (no source holds them intact, or they
    /// need such an object).
    pub failed: HashMap<ObjectKey, String>,
}

/// Whether `target` holds the object intact (present, and hashing to its id).
async fn intact(target: &Objects, (kind, id): ObjectKey) -> Result<bool, strata_engine::Error> {
    match target.get_stored(kind, &id).await {
        Ok(_) => Ok(true),
        Err(
            strata_engine::Error::MissingObject { .. } | strata_engine::Error::CorruptObject { .. },
        ) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The bytes of an object from the first of `sources` that holds it intact, or why none does.
async fn intact_copy(sources: &[&Objects], (kind, id): ObjectKey) -> Result<Bytes, String> {
    let mut why = Vec::new();
    for s in sources {
        match s.get(kind, &id).await {
            Ok(bytes) => return Ok(bytes),
            Err(strata_engine::Error::MissingObject { .. }) => {
                why.push(format!("{} does not have it", s.location()))
            }
            Err(strata_engine::Error::CorruptObject { .. }) => {
                why.push(format!("{} holds a damaged copy too", s.location()))
            }
            Err(e) => why.push(format!("{}: {e}", s.location())),
        }
    }
    Err(if why.is_empty() {
        "there is no other copy to restore it from".to_string()
    } else {
        format!("no other copy holds it intact ({})", why.join("; "))
    })
}

/// An object's intact bytes and the objects they name.
type Looked = (Bytes, Vec<ObjectKey>);

/// Writes the `damaged` objects of `target` again from intact copies in `sources`, together
/// with whatever they reach that `target` lacks or holds damaged, dependencies first: an
/// object is written only once everything it names is intact, so a restored object, like any
/// other, reaches only stored objects (docs/protocol.md, section 6). Objects `target` holds
/// intact already are left alone.
pub async fn repair(
    target: &Objects,
    sources: &[&Objects],
    damaged: &[ObjectKey],
) -> Result<Repaired, strata_engine::Error> {
    let mut out = Repaired::default();
    let mut done: HashSet<ObjectKey> = HashSet::new();
    // A depth-first post-order: an object is looked at (`None`), then written once what it
    // names is done (`Some`: its intact bytes and what they name).
    let mut stack: Vec<(ObjectKey, Option<Looked>)> = damaged.iter().map(|k| (*k, None)).collect();
    while let Some((key, looked)) = stack.pop() {
        if done.contains(&key) {
            continue;
        }
        match looked {
            None => {
                if intact(target, key).await? {
                    done.insert(key);
                    continue;
                }
                let bytes = match intact_copy(sources, key).await {
                    Ok(b) => b,
                    Err(why) => {
                        out.failed.insert(key, why);
                        done.insert(key);
                        continue;
                    }
                };
                let named = match key.0 {
                    ObjectKind::Meta => links(&key.1, &bytes)?,
                    ObjectKind::Chunk => Vec::new(),
                };
                let pending: Vec<ObjectKey> = named
                    .iter()
                    .filter(|k| !done.contains(k))
                    .copied()
                    .collect();
                stack.push((key, Some((bytes, named))));
                stack.extend(pending.into_iter().map(|k| (k, None)));
            }
            Some((bytes, named)) => {
                done.insert(key);
                if let Some(missing) = named.iter().find(|k| out.failed.contains_key(k)) {
                    let why = format!(
                        "it names {}, which cannot be restored either",
                        missing.1.to_hex()
                    );
                    out.failed.insert(key, why);
                    continue;
                }
                target.restore(key.0, &key.1, bytes).await?;
                out.restored += 1;
            }
        }
    }
    Ok(out)
}
