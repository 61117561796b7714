//! Immutable, content-addressed objects. Writes are create-only (an existing object is
//! left alone: same id, same bytes) and every read verifies the hash.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::{create_only, layout, storage_error};

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
}

impl Objects {
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Self {
        Objects {
            store,
            location: location.into(),
        }
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

    /// Stores bytes whose id the caller has computed already.
    pub async fn put_with_id(&self, kind: ObjectKind, id: ObjectId, bytes: Bytes) -> Result<()> {
        let path = kind.path(&id);
        match self
            .store
            .put_opts(&path, PutPayload::from_bytes(bytes), create_only())
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(storage_error(&path, e)),
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
        let path = kind.path(id);
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| storage_error(&path, e))?;
        Ok(())
    }

    /// Reads an object and checks that its bytes hash to `id`.
    pub async fn get(&self, kind: ObjectKind, id: &ObjectId) -> Result<Bytes> {
        let path = kind.path(id);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| storage_error(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::MissingObject {
                    id: id.to_hex(),
                    location: self.location.clone(),
                })
            }
            Err(e) => return Err(storage_error(&path, e)),
        };
        if ObjectId::of(&bytes) != *id {
            return Err(Error::CorruptObject {
                id: id.to_hex(),
                reason: format!("its {} bytes do not hash to its id", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Whether the object is stored (without reading it).
    pub async fn exists(&self, kind: ObjectKind, id: &ObjectId) -> Result<bool> {
        let path = kind.path(id);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error(&path, e)),
        }
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
