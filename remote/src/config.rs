//! Per-checkout remote configuration (`local/remotes.json`) and branch upstreams
//! (`local/upstreams.json`). Never holds credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_engine::names::validate_name;
use strata_engine::Repository;

use crate::error::{Error, Result};

/// One configured remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteConfig {
    pub url: String,
    /// Non-secret options (endpoint, region, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The store passed the conditional-write probe.
    #[serde(default)]
    pub verified: bool,
}

/// The remote branch a local branch tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub remote: String,
    pub branch: String,
}

const REMOTES: &str = "remotes.json";
const UPSTREAMS: &str = "upstreams.json";

pub async fn remotes(repo: &Repository) -> Result<BTreeMap<String, RemoteConfig>> {
    Ok(repo.read_local(REMOTES).await?.unwrap_or_default())
}

pub async fn remote(repo: &Repository, name: &str) -> Result<RemoteConfig> {
    remotes(repo)
        .await?
        .remove(name)
        .ok_or_else(|| Error::UnknownRemote { name: name.into() })
}

pub async fn add_remote(repo: &Repository, name: &str, config: RemoteConfig) -> Result<()> {
    validate_name("remote", name)?;
    let mut all = remotes(repo).await?;
    if all.contains_key(name) {
        return Err(Error::RemoteExists { name: name.into() });
    }
    all.insert(name.into(), config);
    Ok(repo.write_local(REMOTES, &all).await?)
}

/// Records that a remote passed the conditional-write probe.
pub async fn mark_verified(repo: &Repository, name: &str) -> Result<()> {
    let mut all = remotes(repo).await?;
    if let Some(c) = all.get_mut(name) {
        c.verified = true;
        repo.write_local(REMOTES, &all).await?;
    }
    Ok(())
}

pub async fn remove_remote(repo: &Repository, name: &str) -> Result<()> {
    let mut all = remotes(repo).await?;
    if all.remove(name).is_none() {
        return Err(Error::UnknownRemote { name: name.into() });
    }
    repo.write_local(REMOTES, &all).await?;
    for (branch, _) in repo.remote_tracking_list(name).await? {
        repo.set_remote_tracking(name, &branch, None).await?;
    }
    let mut ups = upstreams(repo).await?;
    ups.retain(|_, u| u.remote != name);
    Ok(repo.write_local(UPSTREAMS, &ups).await?)
}

pub async fn upstreams(repo: &Repository) -> Result<BTreeMap<String, Upstream>> {
    Ok(repo.read_local(UPSTREAMS).await?.unwrap_or_default())
}

pub async fn upstream(repo: &Repository, branch: &str) -> Result<Option<Upstream>> {
    Ok(upstreams(repo).await?.remove(branch))
}

pub async fn set_upstream(repo: &Repository, branch: &str, upstream: Upstream) -> Result<()> {
    let mut ups = upstreams(repo).await?;
    ups.insert(branch.into(), upstream);
    Ok(repo.write_local(UPSTREAMS, &ups).await?)
}

/// The remote to use when none is named: the current branch's upstream, else `origin`, else
/// the only remote.
/// Renames a remote: its configuration, remote-tracking branches and the upstreams that
/// name it. The new name is written first, so a failure midway leaves both.
pub async fn rename_remote(repo: &Repository, from: &str, to: &str) -> Result<()> {
    validate_name("remote", to)?;
    let mut all = remotes(repo).await?;
    if all.contains_key(to) {
        return Err(Error::RemoteExists { name: to.into() });
    }
    let Some(conf) = all.remove(from) else {
        return Err(Error::UnknownRemote { name: from.into() });
    };
    all.insert(to.into(), conf);
    repo.write_local(REMOTES, &all).await?;
    for (branch, commit) in repo.remote_tracking_list(from).await? {
        repo.set_remote_tracking(to, &branch, Some(commit)).await?;
        repo.set_remote_tracking(from, &branch, None).await?;
    }
    let mut ups = upstreams(repo).await?;
    for u in ups.values_mut() {
        if u.remote == from {
            u.remote = to.into();
        }
    }
    repo.write_local(UPSTREAMS, &ups).await?;
    Ok(())
}

/// Points a remote at another URL; the new store is probed again before it is trusted.
pub async fn set_url(repo: &Repository, name: &str, url: String) -> Result<()> {
    let mut all = remotes(repo).await?;
    let Some(conf) = all.get_mut(name) else {
        return Err(Error::UnknownRemote { name: name.into() });
    };
    conf.url = url;
    conf.verified = false;
    repo.write_local(REMOTES, &all).await?;
    Ok(())
}

/// Moves a branch's upstream to its new name (after a rename).
pub async fn rename_upstream(repo: &Repository, from: &str, to: &str) -> Result<()> {
    let mut ups = upstreams(repo).await?;
    if let Some(u) = ups.remove(from) {
        ups.insert(to.to_string(), u);
        repo.write_local(UPSTREAMS, &ups).await?;
    }
    Ok(())
}

pub async fn default_remote(repo: &Repository) -> Result<String> {
    if let strata_engine::repo::Head::Branch(b) = repo.head().await? {
        if let Some(u) = upstream(repo, &b).await? {
            return Ok(u.remote);
        }
    }
    let all = remotes(repo).await?;
    if all.contains_key("origin") {
        return Ok("origin".into());
    }
    match all.keys().collect::<Vec<_>>().as_slice() {
        [only] => Ok((*only).clone()),
        [] => Err(Error::NoRemote),
        _ => Err(Error::Invalid(
            "several remotes are configured and none is named 'origin'; name the remote".into(),
        )),
    }
}
