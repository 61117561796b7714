//! Who commits: `user.name` and `user.email`, per repository (`.strata/local/user.json`) and
//! for the whole account (`$STRATA_CONFIG`, else `$XDG_CONFIG_HOME/strata/config.json`, else
//! `~/.config/strata/config.json`).
//!
//! A commit's author is, first found: the one given to the commit, the handle's
//! ([`Repository::with_author`]), `STRATA_AUTHOR`, the repository's identity, the account's;
//! else `$USER <$USER@localhost>`, and the commit's report says that no identity is set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::repository::{Author, Repository};

/// The settings there are.
pub const CONFIG_KEYS: [&str; 2] = ["user.name", "user.email"];

const REPO_FILE: &str = "user.json";

/// Where a setting is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigScope {
    /// This repository (its `.strata/local`).
    Repository,
    /// Every repository of this account.
    Global,
}

/// A setting and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
    pub scope: ConfigScope,
}

fn check_key(key: &str) -> Result<()> {
    if CONFIG_KEYS.contains(&key) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "unknown setting '{key}'; the settings are {}",
            CONFIG_KEYS.join(", ")
        )))
    }
}

/// The account's settings file.
pub fn global_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("strata").join("config.json"))
}

fn read_global() -> Result<BTreeMap<String, String>> {
    let Some(path) = global_config_path() else {
        return Ok(BTreeMap::new());
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!(
                "{} is not a settings file ({e}); fix or remove it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::invalid(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_global(values: &BTreeMap<String, String>) -> Result<()> {
    let path = global_config_path().ok_or_else(|| {
        Error::invalid("no place for account settings: set HOME or STRATA_CONFIG")
    })?;
    let fail = |e: std::io::Error| Error::invalid(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let text = serde_json::to_vec_pretty(values)
        .map_err(|e| Error::invalid(format!("cannot encode the settings: {e}")))?;
    // Written beside it and renamed into place: a reader never sees half a file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)
}

/// Checks a value before it is stored.
fn check_value(key: &str, value: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("{key} '{value}' {why}")));
    if value.trim().is_empty() {
        return bad("is empty");
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '<' || c == '>')
    {
        return bad("may not hold '<', '>' or control characters");
    }
    if key == "user.email" && !value.contains('@') {
        return bad("is not an email address (give one such as you@example.com)");
    }
    Ok(())
}

/// The account's settings (no repository needed).
pub fn global_config() -> Result<Vec<ConfigEntry>> {
    let global = read_global()?;
    Ok(CONFIG_KEYS
        .iter()
        .filter_map(|k| {
            global.get(*k).map(|v| ConfigEntry {
                key: k.to_string(),
                value: v.clone(),
                scope: ConfigScope::Global,
            })
        })
        .collect())
}

/// Sets (or with `None`, removes) one of the account's settings.
pub fn set_global_config(key: &str, value: Option<&str>) -> Result<()> {
    check_key(key)?;
    let mut map = read_global()?;
    match value {
        Some(v) => {
            check_value(key, v)?;
            map.insert(key.to_string(), v.trim().to_string());
        }
        None => {
            map.remove(key);
        }
    }
    write_global(&map)
}

impl Repository {
    /// Every setting, repository ones over account ones.
    pub async fn config_list(&self) -> Result<Vec<ConfigEntry>> {
        let repo: BTreeMap<String, String> =
            self.inner.read_local(REPO_FILE).await?.unwrap_or_default();
        let global = read_global()?;
        let mut out = Vec::new();
        for key in CONFIG_KEYS {
            if let Some(v) = repo.get(key) {
                out.push(ConfigEntry {
                    key: key.into(),
                    value: v.clone(),
                    scope: ConfigScope::Repository,
                });
            } else if let Some(v) = global.get(key) {
                out.push(ConfigEntry {
                    key: key.into(),
                    value: v.clone(),
                    scope: ConfigScope::Global,
                });
            }
        }
        Ok(out)
    }

    /// A setting's value (the repository's, else the account's).
    pub async fn config_get(&self, key: &str) -> Result<Option<ConfigEntry>> {
        check_key(key)?;
        Ok(self.config_list().await?.into_iter().find(|e| e.key == key))
    }

    /// Sets (or with `None`, removes) a setting in `scope`.
    pub async fn config_set(
        &self,
        key: &str,
        value: Option<&str>,
        scope: ConfigScope,
    ) -> Result<()> {
        check_key(key)?;
        if let Some(v) = value {
            check_value(key, v)?;
        }
        let apply = |map: &mut BTreeMap<String, String>| match value {
            Some(v) => {
                map.insert(key.to_string(), v.trim().to_string());
            }
            None => {
                map.remove(key);
            }
        };
        match scope {
            ConfigScope::Repository => {
                let _lock = self.inner.lock_state().await?;
                let mut map: BTreeMap<String, String> =
                    self.inner.read_local(REPO_FILE).await?.unwrap_or_default();
                apply(&mut map);
                Ok(self.inner.write_local(REPO_FILE, &map).await?)
            }
            ConfigScope::Global => set_global_config(key, value),
        }
    }

    /// The configured identity as an author, when both name and email are set.
    pub(crate) async fn configured_author(&self) -> Result<Option<Author>> {
        let get = |entries: &[ConfigEntry], key: &str| {
            entries
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        let entries = self.config_list().await?;
        match (get(&entries, "user.name"), get(&entries, "user.email")) {
            (Some(name), Some(email)) => Ok(Some(Author::parse(&format!("{name} <{email}>"))?)),
            _ => Ok(None),
        }
    }
}
