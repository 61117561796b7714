//! An opened remote: its store, objects and ref logs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use strata_engine::repo::{Marker, REPO_FORMAT};
use strata_engine::store::objects::{check_format, encode_json};
use strata_engine::store::{self, layout, Objects, RefLog};
use strata_engine::Repository;

use crate::config::{self, RemoteConfig};
use crate::error::{Error, Result};
use crate::url::{open, Location};

/// A remote repository reached through an `ObjectStore`.
#[derive(Debug, Clone)]
pub struct Remote {
    pub name: String,
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub objects: Objects,
    pub refs: RefLog,
    /// The store passed the conditional-write probe (in this process or recorded earlier).
    verified: Arc<AtomicBool>,
    /// The user accepted a store that fails the probe.
    allow_unsafe: bool,
}

impl Remote {
    /// A remote over an already opened store (tests wrap stores with fault injection).
    pub fn from_store(name: &str, url: &str, store: Arc<dyn ObjectStore>, writer: &str) -> Self {
        Remote {
            name: name.into(),
            url: url.into(),
            objects: Objects::new(store.clone(), url),
            refs: RefLog::new(store.clone(), writer),
            store,
            verified: Arc::new(AtomicBool::new(false)),
            allow_unsafe: false,
        }
    }

    /// The same remote, taken as having passed the conditional-write probe (a store the
    /// caller checked already).
    pub fn assume_trusted(self) -> Self {
        self.verified.store(true, Ordering::SeqCst);
        self
    }

    /// Opens a URL. `create`: a missing folder is made (push and clone targets).
    pub fn open_url(
        name: &str,
        url: &str,
        config: &RemoteConfig,
        cwd: &Path,
        writer: &str,
        create: bool,
    ) -> Result<Self> {
        let location = Location::parse(url, cwd)?;
        #[cfg(feature = "testing")]
        let store = match crate::testing::routed(&location.to_url()) {
            Some(store) => store,
            None => open(&location, &config.options, create)?,
        };
        #[cfg(not(feature = "testing"))]
        let store = open(&location, &config.options, create)?;
        let mut remote = Self::from_store(name, &location.to_url(), store, writer);
        remote.verified.store(config.verified, Ordering::SeqCst);
        remote.allow_unsafe = config
            .options
            .get(crate::cloud::ALLOW_UNSAFE_STORE)
            .is_some_and(|v| v == "true");
        Ok(remote)
    }

    /// Probes the store's conditional writes unless it passed before; refuses a store that
    /// fails, unless the remote allows it explicitly (then warns, on every push).
    /// Returns true when the probe ran and passed now (so the caller may record it).
    pub async fn ensure_trusted(&self) -> Result<bool> {
        if self.allow_unsafe {
            tracing::warn!(
                remote = %self.name,
                "remote '{}' is used with allow_unsafe_store=true: its conditional writes are not verified, and concurrent pushes may overwrite each other",
                self.name
            );
            return Ok(false);
        }
        if self.verified.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let nonce = uuid::Uuid::new_v4().to_string();
        crate::probe::probe(&self.store, &self.url, &nonce)
            .await
            .map_err(|e| match e {
                Error::Engine(e) => self.located(e),
                other => other,
            })?;
        self.verified.store(true, Ordering::SeqCst);
        Ok(true)
    }

    /// [`Remote::ensure_trusted`], recording a passed probe in `repo`'s configuration.
    pub async fn ensure_trusted_in(&self, repo: &Repository) -> Result<()> {
        if self.ensure_trusted().await? {
            config::mark_verified(repo, &self.name).await?;
        }
        Ok(())
    }

    /// Opens the remote configured under `name` in `repo`.
    pub async fn configured(repo: &Repository, name: &str, create: bool) -> Result<Self> {
        let config = config::remote(repo, name).await?;
        let writer = repo.refs().writer().to_string();
        Self::open_url(name, &config.url, &config, repo.root(), &writer, create)
    }

    /// Checks that the remote holds a strata repository this build can read.
    pub async fn check(&self) -> Result<()> {
        let path = layout::marker();
        let Some(bytes) = store::get_opt(&self.store, &path)
            .await
            .map_err(|e| self.located(e))?
        else {
            return Err(Error::NotARepository {
                url: self.url.clone(),
                reason: if self.is_empty().await? {
                    "it is empty".into()
                } else {
                    format!("it holds other data and no {}", layout::MARKER)
                },
            });
        };
        let marker: Marker = serde_json::from_slice(&bytes).map_err(|e| Error::NotARepository {
            url: self.url.clone(),
            reason: format!("{} does not decode: {e}", layout::MARKER),
        })?;
        check_format(
            &format!("the remote {}", self.url),
            marker.format,
            REPO_FORMAT,
        )?;
        Ok(())
    }

    /// Makes an empty location a repository (create-only, so racing pushers agree); refuses a
    /// location that holds something else.
    pub async fn ensure_initialized(&self) -> Result<()> {
        match self.check().await {
            Ok(()) => return Ok(()),
            Err(Error::NotARepository { .. }) if self.is_empty().await? => {}
            Err(e) => return Err(e),
        }
        let marker = Marker {
            format: REPO_FORMAT,
            kind: "strata-repository".into(),
        };
        let bytes: Bytes = encode_json(&marker)?;
        // Racing initializers write the same bytes: whichever lands, the check below reads a
        // marker (and an unclear outcome is settled by that read too).
        let created = store::create(&self.store, &layout::marker(), bytes)
            .await
            .map_err(|e| self.located(e))?;
        match (self.check().await, created) {
            // Nothing landed: the create's own failure says why (a read-only folder, say).
            (Err(Error::NotARepository { .. }), store::Created::Unclear(e)) => Err(self.located(e)),
            (checked, _) => checked,
        }
    }

    async fn is_empty(&self) -> Result<bool> {
        store::is_empty(&self.store)
            .await
            .map_err(|e| self.located(e))
    }

    /// A storage error of this remote, with the key given as a full URL.
    pub fn located(&self, e: strata_engine::Error) -> Error {
        match e {
            strata_engine::Error::Storage { path, source } => {
                Error::Engine(strata_engine::Error::Storage {
                    path: format!("{}/{}", self.url.trim_end_matches('/'), path),
                    source,
                })
            }
            other => Error::Engine(other),
        }
    }
}
