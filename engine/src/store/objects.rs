//! Immutable, content-addressed objects. Writes are create-only (an existing object is
//! left alone: same id, same bytes) and every read verifies the hash.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::retry::{Attempt, Retry};
use crate::store::{create, get_opt, head_opt, layout, put, Created};

/// What an object holds, which decides where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// JSON metadata: commits, tables, index nodes.
    Meta,
    /// A Parquet chunk of rows.
    Chunk,
}

impl ObjectKind {
    pub fn path(self, id: &ObjectId) -> Path {
        match self {
            ObjectKind::Meta => layout::object(id),
            ObjectKind::Chunk => layout::chunk(id),
        }
    }
}

/// Reads and writes immutable objects in one store.
#[derive(Clone, Debug)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    location: String,
    /// The store's folder, when the store is a folder on this machine (a repository's own
    /// objects): chunks are then read straight from their files, see [`Objects::read_chunk_and_delta`].
    folder: Option<PathBuf>,
    /// The JSON objects stored or read last, when kept ([`Objects::remembering`]).
    recent: Option<Arc<Mutex<Recent>>>,
}

/// The JSON objects (commits, tables, index nodes) a repository stored or read last, by id,
/// each checked against its id. An object never changes, so a copy kept in memory never goes
/// stale: an edit reads the objects the last edit wrote (its table, the nodes on its path),
/// and a commit the commit and tables before it, without reading their files again. Bounded
/// in count and bytes; the oldest go first.
#[derive(Default)]
struct Recent {
    objects: HashMap<ObjectId, Bytes>,
    order: VecDeque<ObjectId>,
    bytes: usize,
}

/// At most this many objects and bytes are kept (index nodes are 2-50 KiB).
const RECENT_OBJECTS: usize = 512;
const RECENT_BYTES: usize = 8 << 20;

impl std::fmt::Debug for Recent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} objects, {} bytes", self.objects.len(), self.bytes)
    }
}

impl Recent {
    fn get(&self, id: &ObjectId) -> Option<Bytes> {
        self.objects.get(id).cloned()
    }

    fn forget(&mut self, id: &ObjectId) {
        if let Some(b) = self.objects.remove(id) {
            self.bytes -= b.len();
            self.order.retain(|o| o != id);
        }
    }

    fn keep(&mut self, id: ObjectId, bytes: &Bytes) {
        if bytes.len() > RECENT_BYTES / 8 || self.objects.contains_key(&id) {
            return;
        }
        self.bytes += bytes.len();
        self.objects.insert(id, bytes.clone());
        self.order.push_back(id);
        while self.order.len() > RECENT_OBJECTS || self.bytes > RECENT_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.objects.remove(&old) {
                self.bytes -= b.len();
            }
        }
    }
}

impl Objects {
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Self {
        Objects {
            store,
            location: location.into(),
            folder: None,
            recent: None,
        }
    }

    /// The same objects, keeping the JSON objects last stored or read in memory (see
    /// [`Recent`]), for the objects of one repository that edits them one after another.
    pub fn remembering(mut self) -> Self {
        self.recent = Some(Arc::default());
        self
    }

    /// A JSON object kept in memory, if it is.
    fn recalled(&self, kind: ObjectKind, id: &ObjectId) -> Option<Bytes> {
        if kind != ObjectKind::Meta {
            return None;
        }
        self.recent.as_ref()?.lock().ok()?.get(id)
    }

    /// Keeps a JSON object (its bytes checked against `id` already) in memory, if this
    /// keeps any.
    fn remember(&self, kind: ObjectKind, id: ObjectId, bytes: &Bytes) {
        if kind != ObjectKind::Meta {
            return;
        }
        if let Some(mut recent) = self.recent.as_ref().and_then(|r| r.lock().ok()) {
            recent.keep(id, bytes);
        }
    }

    /// The same objects, stored in `folder` on this machine (the folder `store` is over).
    pub fn in_folder(mut self, folder: PathBuf) -> Self {
        self.folder = Some(folder);
        self
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Where this store is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Stores `bytes` and returns their id. Create-only: an object that exists already is
    /// the same bytes, so it is left as it is.
    pub async fn put(&self, kind: ObjectKind, bytes: Bytes) -> Result<ObjectId> {
        let id = ObjectId::of(&bytes);
        self.put_with_id(kind, id, bytes).await?;
        Ok(id)
    }

    /// Stores bytes whose id the caller has computed already. Create-only; when the key
    /// turns out to be taken (or the outcome is unclear), what is there is checked: an
    /// object of another size is a damaged copy and is written over with these bytes (the
    /// only bytes that belong there); nothing there yet (a `409` conflict of racing writers,
    /// a lost request) means the create is tried again.
    pub async fn put_with_id(&self, kind: ObjectKind, id: ObjectId, bytes: Bytes) -> Result<()> {
        self.put_new(kind, id, bytes).await.map(|_| ())
    }

    /// As [`Objects::put_with_id`]; `true` when this call created the object (it was not
    /// there, not even as a damaged copy), so that a write that fails afterwards may remove
    /// it again (see [`Objects::remove_new`]).
    pub async fn put_new(&self, kind: ObjectKind, id: ObjectId, bytes: Bytes) -> Result<bool> {
        // A JSON object stored is kept in memory for the reads that follow (only bytes that
        // are the object: a caller's id is checked, which costs little at their size).
        if kind == ObjectKind::Meta && self.recent.is_some() && ObjectId::of(&bytes) == id {
            let created = self.put_new_stored(kind, id, bytes.clone()).await?;
            self.remember(kind, id, &bytes);
            return Ok(created);
        }
        self.put_new_stored(kind, id, bytes).await
    }

    /// [`Objects::put_new`], to the store alone.
    async fn put_new_stored(&self, kind: ObjectKind, id: ObjectId, bytes: Bytes) -> Result<bool> {
        let path = kind.path(&id);
        let len = bytes.len() as u64;
        Retry::times(6)
            .run(&format!("storing {path}"), |_| {
                let path = &path;
                let bytes = bytes.clone();
                async move {
                    let why = match create(&self.store, path, bytes.clone()).await? {
                        Created::Created => return Ok(Attempt::Done(true)),
                        Created::Unclear(e) => e,
                    };
                    match head_opt(&self.store, path).await? {
                        Some(m) if m.size == len => Ok(Attempt::Done(false)),
                        Some(m) => {
                            tracing::warn!(%path, size = m.size, expected = len, "replacing a damaged copy");
                            self.restore(kind, &id, bytes).await?;
                            Ok(Attempt::Done(false))
                        }
                        None => Ok(Attempt::Again(why.to_string())),
                    }
                }
            })
            .await
    }

    /// Deletes an object (nothing there is no error), and forgets any copy kept in memory:
    /// for `gc`, once nothing names it.
    pub async fn delete(&self, kind: ObjectKind, id: &ObjectId) -> Result<()> {
        if let Some(mut recent) = self.recent.as_ref().and_then(|r| r.lock().ok()) {
            recent.forget(id);
        }
        crate::store::delete_opt(&self.store, &kind.path(id)).await
    }

    /// Removes objects that a write created ([`Objects::put_new`]) and then did not use,
    /// because it failed (bad input found after some of its chunks were stored): the store is
    /// left as it was, and on this machine the folders that held only them go too. Best
    /// effort: what cannot be removed stays unreferenced until `gc`. Only for objects that no
    /// other write can have stored meanwhile (the caller holds the repository's lock).
    pub async fn remove_new(&self, kind: ObjectKind, ids: &[ObjectId]) {
        for id in ids {
            let path = kind.path(id);
            if let Err(e) = crate::store::delete_opt(&self.store, &path).await {
                tracing::warn!(%path, error = %e, "could not remove an unused object");
            }
        }
        let Some(folder) = &self.folder else {
            return;
        };
        // The shard folders, then the kind's folder, each only if it is empty now.
        let mut dirs: Vec<PathBuf> = ids
            .iter()
            .filter_map(|id| {
                let file = folder.join(kind.path(id).as_ref());
                file.parent().map(std::path::Path::to_path_buf)
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let tops: Vec<PathBuf> = dirs
            .iter()
            .filter_map(|d| d.parent().map(std::path::Path::to_path_buf))
            .filter(|d| d != folder)
            .collect();
        for dir in dirs.iter().chain(&tops) {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Writes `bytes` over whatever is stored as `id` (a damaged copy, or nothing). Only the
    /// bytes that hash to `id` ever belong there, and that is checked first, so this cannot
    /// change an intact object.
    pub async fn restore(&self, kind: ObjectKind, id: &ObjectId, bytes: Bytes) -> Result<()> {
        if ObjectId::of(&bytes) != *id {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: "the copy to restore it from does not hash to its id".into(),
            });
        }
        put(&self.store, &kind.path(id), bytes).await
    }

    /// Reads a chunk and its delta `delta` (if it has one), checks that their bytes hash to
    /// their ids, and hands them to `decode` on the engine's threads (`crate::cpu`). From a
    /// folder on this machine both files are read in one task of the blocking pool, without a
    /// round trip through the async runtime between them (a scan reads hundreds of chunks a
    /// second); from a remote store both requests run at once.
    pub async fn read_chunk_and_delta<T, F>(
        &self,
        id: &ObjectId,
        delta: Option<&ObjectId>,
        decode: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Bytes, Option<Bytes>) -> Result<T> + Send + 'static,
    {
        let (id, delta) = (*id, delta.copied());
        let local = self.local_file(ObjectKind::Chunk, &id);
        let delta_file = delta.and_then(|d| Some((d, self.local_file(ObjectKind::Chunk, &d)?)));
        // A folder's files are read on the blocking pool as they are asked for; then, from
        // either store, the bytes are checked and decoded on the engine's threads, one per
        // core (see `crate::cpu`).
        let (bytes, delta_bytes) = match (local, delta_file) {
            (Some((file, location)), None) if delta.is_none() => {
                tokio::task::spawn_blocking(move || -> Result<_> {
                    Ok((read_file(&file, &id, location)?, None))
                })
                .await
                .map_err(|e| Error::Invalid(format!("reading a chunk failed: {e}")))??
            }
            (Some((file, location)), Some((d, (delta_file, _)))) => {
                tokio::task::spawn_blocking(move || -> Result<_> {
                    let delta = read_file(&delta_file, &d, location.clone())?;
                    Ok((read_file(&file, &id, location)?, Some(delta)))
                })
                .await
                .map_err(|e| Error::Invalid(format!("reading a chunk failed: {e}")))??
            }
            _ => {
                let delta_bytes = async {
                    match &delta {
                        Some(d) => self.get_unchecked(ObjectKind::Chunk, d).await.map(Some),
                        None => Ok(None),
                    }
                };
                let (delta_bytes, bytes) =
                    futures::try_join!(delta_bytes, self.get_unchecked(ObjectKind::Chunk, &id))?;
                (bytes, delta_bytes)
            }
        };
        crate::cpu::run(move || {
            if let (Some(d), Some(b)) = (&delta, &delta_bytes) {
                verify(d, b)?;
            }
            verify(&id, &bytes)?;
            decode(bytes, delta_bytes)
        })
        .await
        .map_err(|e| Error::Invalid(format!("chunk decoder failed: {e}")))?
    }

    /// Reads an object's bytes without checking them: the caller must [`verify`] them (off the
    /// async runtime, for large chunks) before using them.
    pub async fn get_unchecked(&self, kind: ObjectKind, id: &ObjectId) -> Result<Bytes> {
        get_opt(&self.store, &kind.path(id))
            .await?
            .ok_or_else(|| Error::MissingObject {
                id: id.to_hex(),
                location: self.location.clone(),
            })
    }

    /// The file of an object, when this store is a folder on this machine, and where the
    /// store is (for messages).
    fn local_file(&self, kind: ObjectKind, id: &ObjectId) -> Option<(PathBuf, String)> {
        let folder = self.folder.as_ref()?;
        Some((folder.join(kind.path(id).as_ref()), self.location.clone()))
    }

    /// Reads an object and checks that its bytes hash to `id`. From a folder on this machine
    /// the file is read and checked in one task of the blocking pool (the store's read takes
    /// two: an edit reads the objects on its path one after the other).
    pub async fn get(&self, kind: ObjectKind, id: &ObjectId) -> Result<Bytes> {
        if let Some(bytes) = self.recalled(kind, id) {
            return Ok(bytes);
        }
        let bytes = self.get_stored(kind, id).await?;
        self.remember(kind, *id, &bytes);
        Ok(bytes)
    }

    /// As [`Objects::get`], always from the store (never a copy kept in memory): whether
    /// the stored object is intact.
    pub async fn get_stored(&self, kind: ObjectKind, id: &ObjectId) -> Result<Bytes> {
        if let Some((file, location)) = self.local_file(kind, id) {
            let id = *id;
            let read =
                tokio::task::spawn_blocking(move || match read_local(&file, &id, location) {
                    // Another failure to read the file is reported as the store reports it.
                    Err(Error::Io { .. }) => None,
                    outcome => Some(outcome),
                });
            if let Some(outcome) = read
                .await
                .map_err(|e| Error::Invalid(format!("reading an object failed: {e}")))?
            {
                return outcome;
            }
        }
        let Some(bytes) = get_opt(&self.store, &kind.path(id)).await? else {
            return Err(Error::MissingObject {
                id: id.to_hex(),
                location: self.location.clone(),
            });
        };
        if ObjectId::of(&bytes) != *id {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: format!("its {} bytes do not hash to its id", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Whether the object is stored (without reading it). An empty file is no object
    /// (every object has bytes): a write cut short before it was flushed does not count.
    pub async fn exists(&self, kind: ObjectKind, id: &ObjectId) -> Result<bool> {
        Ok(self.size(kind, id).await?.is_some_and(|s| s > 0))
    }

    /// Whether the object is stored whole: present with its `len` bytes. A copy cut short (a
    /// torn write, a file truncated by a power failure) is not.
    pub async fn holds(&self, kind: ObjectKind, id: &ObjectId, len: u64) -> Result<bool> {
        Ok(self.size(kind, id).await? == Some(len))
    }

    /// The size of the stored object, if it is stored.
    pub async fn size(&self, kind: ObjectKind, id: &ObjectId) -> Result<Option<u64>> {
        Ok(head_opt(&self.store, &kind.path(id)).await?.map(|m| m.size))
    }

    /// Reads a JSON object and decodes it.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, id: &ObjectId) -> Result<T> {
        let bytes = self.get(ObjectKind::Meta, id).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptObject {
            id: id.to_hex(),
            reason: format!("it does not decode: {e}"),
        })
    }

    /// Encodes a value as JSON and stores it.
    pub async fn put_json<T: serde::Serialize>(&self, value: &T) -> Result<ObjectId> {
        let bytes = encode_json(value)?;
        self.put(ObjectKind::Meta, bytes).await
    }
}

/// Reads object `id` from its `file` in a folder on this machine (in `location`) and checks
/// it: the same outcomes as reading it through the store and checking it give. No file is a
/// missing object, any other bytes a damaged one.
fn read_local(file: &std::path::Path, id: &ObjectId, location: String) -> Result<Bytes> {
    let bytes = read_file(file, id, location)?;
    verify(id, &bytes)?;
    Ok(bytes)
}

/// Reads the file of object `id`, unchecked: the caller must [`verify`] its bytes.
fn read_file(file: &std::path::Path, id: &ObjectId, location: String) -> Result<Bytes> {
    let bytes = match std::fs::read(file) {
        Ok(b) => Bytes::from(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingObject {
                id: id.to_hex(),
                location,
            })
        }
        Err(source) => {
            return Err(Error::Io {
                path: file.to_path_buf(),
                source,
            })
        }
    };
    Ok(bytes)
}

/// Checks that `bytes` are the object `id` (they hash to it).
pub fn verify(id: &ObjectId, bytes: &[u8]) -> Result<()> {
    if ObjectId::of(bytes) != *id {
        return Err(Error::CorruptObject {
            id: id.to_hex(),
            reason: format!("its {} bytes do not hash to its id", bytes.len()),
        });
    }
    Ok(())
}

/// The canonical JSON encoding of an object (its id is the hash of these bytes).
pub fn encode_json<T: serde::Serialize>(value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Invalid(format!("cannot encode object: {e}")))
}

/// Checks an object's format number against what this build understands.
pub fn check_format(what: &str, found: u32, supported: u32) -> Result<()> {
    if found > supported {
        return Err(Error::FormatTooNew {
            what: what.to_string(),
            found,
            supported,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects_in(dir: &std::path::Path) -> Objects {
        let store = crate::store::local_folder(dir).expect("store");
        Objects::new(store, "test")
            .in_folder(dir.to_path_buf())
            .remembering()
    }

    #[tokio::test]
    async fn a_remembered_object_is_read_from_memory_but_checked_from_the_store() {
        let dir = tempfile::tempdir().expect("dir");
        let objects = objects_in(dir.path());
        let bytes = Bytes::from_static(br#"{"kind":"note"}"#);
        let id = objects
            .put(ObjectKind::Meta, bytes.clone())
            .await
            .expect("put");
        // The file is damaged after it was stored.
        let file = dir.path().join(ObjectKind::Meta.path(&id).as_ref());
        std::fs::write(&file, b"{}").expect("damage");
        assert_eq!(
            objects.get(ObjectKind::Meta, &id).await.expect("get"),
            bytes
        );
        let stored = objects.get_stored(ObjectKind::Meta, &id).await;
        assert!(
            matches!(stored, Err(Error::CorruptObject { .. })),
            "{stored:?}"
        );
        // Another handle on the same folder reads the file, and finds it damaged.
        let fresh = objects_in(dir.path()).get(ObjectKind::Meta, &id).await;
        assert!(
            matches!(fresh, Err(Error::CorruptObject { .. })),
            "{fresh:?}"
        );
    }

    #[tokio::test]
    async fn a_deleted_object_is_forgotten_and_chunks_are_never_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let objects = objects_in(dir.path());
        let meta = objects
            .put(ObjectKind::Meta, Bytes::from_static(b"{\"a\":1}"))
            .await
            .expect("put");
        objects.get(ObjectKind::Meta, &meta).await.expect("read");
        objects
            .delete(ObjectKind::Meta, &meta)
            .await
            .expect("delete");
        let gone = objects.get(ObjectKind::Meta, &meta).await;
        assert!(matches!(gone, Err(Error::MissingObject { .. })), "{gone:?}");

        let chunk = objects
            .put(ObjectKind::Chunk, Bytes::from_static(b"PAR1 not really"))
            .await
            .expect("put");
        std::fs::remove_file(dir.path().join(ObjectKind::Chunk.path(&chunk).as_ref()))
            .expect("remove");
        let gone = objects.get(ObjectKind::Chunk, &chunk).await;
        assert!(matches!(gone, Err(Error::MissingObject { .. })), "{gone:?}");
    }

    #[test]
    fn the_oldest_objects_go_first_past_the_bounds() {
        let mut recent = Recent::default();
        let ids: Vec<ObjectId> = (0..RECENT_OBJECTS + 3)
            .map(|i| ObjectId::of(i.to_string().as_bytes()))
            .collect();
        for id in &ids {
            recent.keep(*id, &Bytes::from_static(b"x"));
        }
        assert_eq!(recent.objects.len(), RECENT_OBJECTS);
        assert!(recent.get(&ids[2]).is_none());
        assert!(recent.get(&ids[3]).is_some());
        // Bytes bound: a few large objects push out the rest.
        let big = Bytes::from(vec![0u8; RECENT_BYTES / 8]);
        for i in 0..9u8 {
            recent.keep(ObjectId::of(&[i]), &big);
        }
        assert!(recent.bytes <= RECENT_BYTES, "{}", recent.bytes);
        assert!(recent.get(&ObjectId::of(&[8u8])).is_some());
        assert!(recent.get(&ids[RECENT_OBJECTS + 2]).is_none());
    }
}
