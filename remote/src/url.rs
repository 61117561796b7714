//! Remote URLs: which `ObjectStore` a URL names.
//!
//! - `file:///abs/path` or a plain path (absolute or relative to the current folder): a folder;
//! - `memory://NAME`: an in-process store shared by name (for tests inside one process);
//! - `s3://`, `gs://`, `az://`: recognised; served by the object-store backends of the build.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::memory::InMemory;
use object_store::ObjectStore;

use crate::error::{Error, Result};

/// A parsed remote location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Memory(String),
    Cloud { scheme: String, url: String },
}

impl Location {
    /// Parses a URL or path. Relative paths are resolved against `cwd`.
    pub fn parse(url: &str, cwd: &Path) -> Result<Self> {
        let shown = redact(url);
        let bad = |reason: &str| Error::BadUrl {
            url: shown.clone(),
            reason: reason.to_string(),
        };
        if url.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(rest) = url.strip_prefix("memory://") {
            if rest.is_empty() {
                return Err(bad("memory:// needs a name"));
            }
            return Ok(Location::Memory(rest.to_string()));
        }
        if url.starts_with("file:") {
            let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            let path = parsed
                .to_file_path()
                .map_err(|_| bad("a file URL needs an absolute path: file:///abs/path"))?;
            return Ok(Location::File(normalize(&path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(bad(
                    "credentials do not belong in a URL; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile",
                ));
            }
            return match scheme {
                "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => Ok(Location::Cloud {
                    scheme: scheme.to_string(),
                    url: url.to_string(),
                }),
                other => Err(bad(&format!(
                    "unknown scheme '{other}'; use a path, file://, s3://, gs:// or az://"
                ))),
            };
        }
        let path = Path::new(url);
        Ok(Location::File(normalize(&if path.is_absolute() {
            path.to_path_buf()
        } else {
            cwd.join(path)
        })))
    }

    /// The canonical form stored in the configuration.
    pub fn to_url(&self) -> String {
        match self {
            Location::File(p) => url::Url::from_file_path(p)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| p.display().to_string()),
            Location::Memory(n) => format!("memory://{n}"),
            Location::Cloud { url, .. } => url.clone(),
        }
    }
}

/// A URL as it may be shown: any user name or password replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_))
            if rest
                .split('/')
                .next()
                .is_some_and(|host| host.contains('@')) =>
        {
            let host_part = rest.split('/').next().unwrap_or("");
            let after = &rest[host_part.len()..];
            let host = host_part.rsplit('@').next().unwrap_or("");
            format!("{scheme}://***@{host}{after}")
        }
        _ => url.to_string(),
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Opens the store a location names. `create` makes a missing folder (for push and clone
/// targets); otherwise a missing folder is an error.
pub fn open(
    location: &Location,
    options: &BTreeMap<String, String>,
    create: bool,
) -> Result<Arc<dyn ObjectStore>> {
    match location {
        Location::File(path) => {
            let allowed = options
                .get(crate::shared::ALLOW_NETWORK_FS)
                .is_some_and(|v| v == "true");
            crate::shared::check_folder(path, &location.to_url(), allowed)?;
            if !path.exists() {
                if create {
                    std::fs::create_dir_all(path).map_err(|e| Error::BadUrl {
                        url: location.to_url(),
                        reason: format!("cannot create the folder: {e}"),
                    })?;
                } else {
                    return Err(Error::NotARepository {
                        url: location.to_url(),
                        reason: "the folder does not exist".into(),
                    });
                }
            }
            if !path.is_dir() {
                return Err(Error::NotARepository {
                    url: location.to_url(),
                    reason: "it is a file, not a folder".into(),
                });
            }
            // Every acknowledged write is flushed to disk, with its folder, before it
            // returns (docs/protocol.md, section 2).
            strata_engine::store::local_folder(path).map_err(|e| Error::BadUrl {
                url: location.to_url(),
                reason: e.to_string(),
            })
        }
        Location::Memory(name) => {
            let mut stores = memory_stores()
                .lock()
                .map_err(|_| Error::Invalid("the in-memory store registry is poisoned".into()))?;
            let store = stores
                .entry(name.clone())
                .or_insert_with(|| Arc::new(InMemory::new()))
                .clone();
            Ok(store)
        }
        Location::Cloud { scheme, url } => crate::cloud::open(scheme, url, options),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_name_locations() {
        let cwd = Path::new("/work");
        assert_eq!(
            Location::parse("file:///tmp/r", cwd).expect("file"),
            Location::File("/tmp/r".into())
        );
        assert_eq!(
            Location::parse("rel/r", cwd).expect("path"),
            Location::File("/work/rel/r".into())
        );
        assert_eq!(
            Location::parse("memory://x", cwd).expect("memory"),
            Location::Memory("x".into())
        );
        let err =
            Location::parse("s3://key:secret@bucket/p", cwd).expect_err("credentials refused");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(redact("s3://k:s@b/p"), "s3://***@b/p");
        assert!(Location::parse("ftp://host/p", cwd).is_err());
        assert!(matches!(
            Location::parse("s3://bucket/p", cwd),
            Ok(Location::Cloud { .. })
        ));
    }
}
