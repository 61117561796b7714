//! The one place that knows the object-key layout (docs/protocol.md shows the same tree):
//!
//! ```text
//! strata.json                          repository marker and format version
//! objects/ab/cdef...                   JSON objects (commits, tables, index nodes) by BLAKE3 id
//! chunks/ab/cdef....parquet            Parquet chunks by BLAKE3 id
//! refs/heads/<branch>/<seq:020>        branch ref log: immutable numbered records
//! refs/heads/<branch>/latest           advisory copy of the newest record (never trusted alone)
//! refs/tags/<tag>/...                  the same for tags
//! waiting/heads/<branch>/<note>        pushes waiting to land (remote only; protocol section 6)
//! iceberg/...                          Iceberg views, derived per location (protocol section 10)
//! local/...                            per-checkout state; never part of a remote
//! ```

use object_store::path::Path;

use crate::id::ObjectId;
use crate::store::refs::RefKind;

/// The repository marker, holding the format version.
pub const MARKER: &str = "strata.json";

pub fn marker() -> Path {
    Path::from(MARKER)
}

pub fn object(id: &ObjectId) -> Path {
    let hex = id.to_hex();
    Path::from(format!("objects/{}/{}", &hex[..2], &hex[2..]))
}

pub fn chunk(id: &ObjectId) -> Path {
    let hex = id.to_hex();
    Path::from(format!("chunks/{}/{}.parquet", &hex[..2], &hex[2..]))
}

/// The folder of all objects whose id starts with the two hex digits `prefix2`.
pub fn object_dir(prefix2: &str) -> Path {
    Path::from(format!("objects/{prefix2}"))
}

pub fn refs_dir(kind: RefKind) -> Path {
    Path::from(format!("refs/{}", kind.dir()))
}

pub fn ref_dir(kind: RefKind, name: &str) -> Path {
    Path::from(format!("refs/{}/{name}", kind.dir()))
}

pub fn ref_record(kind: RefKind, name: &str, seq: u64) -> Path {
    ref_dir(kind, name).join(record_name(seq))
}

/// The file name of record `seq` of a numbered log: 20 digits.
pub fn record_name(seq: u64) -> String {
    format!("{seq:020}")
}

/// The file name of a ref's advisory hint.
pub const HINT: &str = "latest";

pub fn ref_hint(kind: RefKind, name: &str) -> Path {
    Path::from(format!("refs/{}/{name}/{HINT}", kind.dir()))
}

/// The folder of the garbage collection lock's records (docs/protocol.md, section 8): the
/// newest record says whether a collection holds the lock.
pub fn gc_lock_dir() -> Path {
    Path::from("gc/lock")
}

/// Record `seq` of the garbage collection lock.
pub fn gc_lock_record(seq: u64) -> Path {
    gc_lock_dir().join(record_name(seq))
}

/// The folder of push leases.
pub fn leases_dir() -> Path {
    Path::from("leases")
}

pub fn lease(id: &str) -> Path {
    Path::from(format!("leases/{id}"))
}

/// The folder of every waiting push's note (docs/protocol.md, section 6, "Waiting pushes").
pub const WAITING_DIR: &str = "waiting";

/// The folder of the notes of pushes waiting to land on `branch`.
pub fn waiting_dir(branch: &str) -> Path {
    Path::from(format!("{WAITING_DIR}/heads/{branch}"))
}

/// Folders holding immutable objects.
pub const OBJECTS_DIR: &str = "objects";
pub const CHUNKS_DIR: &str = "chunks";

/// The folders of `iceberg/` whose files are named by the object they are derived from.
const ICEBERG_BY_OBJECT: [&str; 4] = ["manifests", "delete-manifests", "deletes", "lists"];

/// Whether `path` is a file that only files written after it name, and that nothing
/// acknowledges by itself: an object, a chunk, or an Iceberg manifest, manifest list or
/// position-delete file (each named by the object it holds or is derived from). Each is
/// written once, create-only. (A view's `metadata.json` is not: the path of one just
/// published is handed to the user even when no later write follows.)
pub fn is_named_only_later(path: &Path) -> bool {
    let mut parts = path.parts();
    match parts.next().as_ref().map(|p| p.as_ref()) {
        Some(OBJECTS_DIR | CHUNKS_DIR) => true,
        Some(ICEBERG_DIR) => parts
            .next()
            .is_some_and(|p| ICEBERG_BY_OBJECT.contains(&p.as_ref())),
        _ => false,
    }
}

/// Parses an object key (`objects/ab/cdef...` or `chunks/ab/cdef....parquet`) back into its
/// kind and id; `None` for any other key.
pub fn parse_object(path: &Path) -> Option<(crate::store::ObjectKind, ObjectId)> {
    let parts: Vec<_> = path.parts().collect();
    let [dir, prefix, file] = parts.as_slice() else {
        return None;
    };
    let (kind, rest) = match dir.as_ref() {
        OBJECTS_DIR => (crate::store::ObjectKind::Meta, file.as_ref()),
        CHUNKS_DIR => (
            crate::store::ObjectKind::Chunk,
            file.as_ref().strip_suffix(".parquet")?,
        ),
        _ => return None,
    };
    let id: ObjectId = format!("{}{rest}", prefix.as_ref()).parse().ok()?;
    (kind.path(&id) == *path).then_some((kind, id))
}

/// Parses the sequence number out of a record's file name; `None` for the hint.
pub fn parse_record_seq(file_name: &str) -> Option<u64> {
    if file_name.len() == 20 && file_name.bytes().all(|b| b.is_ascii_digit()) {
        file_name.parse().ok()
    } else {
        None
    }
}

/// Local (per-checkout) state, never pushed.
pub fn local(name: &str) -> Path {
    Path::from(format!("local/{name}"))
}

/// Temporary files of a running import (spilled sort runs).
pub const TMP_DIR: &str = "tmp";

/// The folder of a location's Iceberg views (docs/protocol.md, section 10).
pub const ICEBERG_DIR: &str = "iceberg";

/// `iceberg/<folder>/ab/cdef...<suffix>`: an Iceberg file named by the object `id` it is
/// derived from.
fn iceberg_file(folder: &str, id: &ObjectId, suffix: &str) -> Path {
    let hex = id.to_hex();
    Path::from(format!(
        "{ICEBERG_DIR}/{folder}/{}/{}{suffix}",
        &hex[..2],
        &hex[2..]
    ))
}

/// The Iceberg manifest of a level-0 index node.
pub fn manifest_path(node: &ObjectId) -> Path {
    iceberg_file("manifests", node, ".avro")
}

/// The Iceberg manifest of the position deletes of a level-0 index node's chunks with deltas.
pub fn delete_manifest_path(node: &ObjectId) -> Path {
    iceberg_file("delete-manifests", node, ".avro")
}

/// The Iceberg position-delete file of chunk `base`'s rows that its delta `delta` replaces.
pub fn deletes_path(delta: &ObjectId, base: &ObjectId) -> Path {
    iceberg_file("deletes", delta, &format!(".{}.parquet", base.to_hex()))
}

/// The Iceberg manifest list of a table object.
pub fn list_path(table: &ObjectId) -> Path {
    iceberg_file("lists", table, ".avro")
}

/// The Iceberg table folder of `table` at a ref: what engines are pointed at.
pub fn table_dir(kind: RefKind, name: &str, table: &str) -> Path {
    Path::from(format!("{ICEBERG_DIR}/{}/{name}/{table}", kind.dir()))
}

/// A view's `metadata.json` for record `seq` of its ref.
pub fn metadata_path(kind: RefKind, name: &str, table: &str, seq: u64) -> Path {
    table_dir(kind, name, table)
        .join("metadata")
        .join(format!("v{seq}.metadata.json"))
}

/// A view's `version-hint.text`.
pub fn hint_path(kind: RefKind, name: &str, table: &str) -> Path {
    table_dir(kind, name, table)
        .join("metadata")
        .join("version-hint.text")
}
