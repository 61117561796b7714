//! Fetch and clone: read the remote's refs afresh, download what is missing, update the
//! remote-tracking refs (docs/protocol.md, section 6).

use std::path::Path;

use strata_engine::store::{RefKind, RefName};
use strata_engine::{ObjectId, Progress, Repository};

use crate::config::{self, RemoteConfig, Upstream};
use crate::error::{Error, Result};
use crate::remote::Remote;
use crate::transfer::{Transfer, TransferStats};

/// What a fetch changed.
#[derive(Debug, Default)]
pub struct FetchReport {
    /// (branch, old tracking value, new value) for branches that moved.
    pub updated: Vec<(String, Option<ObjectId>, ObjectId)>,
    pub pruned: Vec<String>,
    pub new_tags: Vec<String>,
    pub transferred: TransferStats,
}

/// Fetches every branch and tag of `remote` into `repo`.
pub async fn fetch(
    repo: &Repository,
    remote: &Remote,
    prune: bool,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    remote.check().await?;
    let mut attempts = 0;
    let (branches, tags, transferred) = loop {
        attempts += 1;
        let branches = remote.refs.list(RefKind::Branch).await?;
        let tags = remote.refs.list(RefKind::Tag).await?;
        match download(repo, remote, &branches, &tags, progress).await {
            Ok(stats) => break (branches, tags, stats),
            // A ref moved away and a garbage collection removed what it named while this
            // fetch was reading it: read the refs again (docs/protocol.md, section 6, "Faults").
            Err(e @ Error::Incomplete { .. }) if attempts < 3 => {
                let moved = remote.refs.list(RefKind::Branch).await? != branches
                    || remote.refs.list(RefKind::Tag).await? != tags;
                if !moved {
                    return Err(e);
                }
                tracing::info!(remote = %remote.name, "the remote's refs moved while fetching; fetching again");
            }
            Err(e) => return Err(e),
        }
    };
    let mut report = FetchReport {
        transferred,
        ..Default::default()
    };
    for (branch, commit) in &branches {
        let old = repo.remote_tracking(&remote.name, branch).await?;
        if old != Some(*commit) {
            repo.set_remote_tracking(&remote.name, branch, Some(*commit))
                .await?;
            report.updated.push((branch.clone(), old, *commit));
        }
    }
    if prune {
        for (branch, _) in repo.remote_tracking_list(&remote.name).await? {
            if !branches.iter().any(|(b, _)| *b == branch) {
                repo.set_remote_tracking(&remote.name, &branch, None)
                    .await?;
                report.pruned.push(branch);
            }
        }
    }
    for (tag, commit) in &tags {
        let name = RefName::tag(tag)?;
        let state = repo.refs().read(&name).await?;
        if state.commit().is_none() {
            let note = remote.refs.read(&name).await?.record.and_then(|r| r.note);
            repo.refs()
                .update_noted(
                    &state,
                    Some(*commit),
                    repo.now(),
                    Some("fetch: new tag"),
                    note,
                )
                .await?;
            report.new_tags.push(tag.clone());
        }
    }
    Ok(report)
}

/// Downloads one commit of the remote, and everything it reaches that the local store lacks,
/// without moving any ref (a waiting push's commit, docs/protocol.md, section 6). A commit no
/// ref reaches may have lost objects to a garbage collection: that is an `Incomplete` error.
pub async fn fetch_commit(
    repo: &Repository,
    remote: &Remote,
    commit: ObjectId,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    download(repo, remote, &[(String::new(), commit)], &[], progress).await
}

/// Downloads everything the given tips reach that the local store lacks.
async fn download(
    repo: &Repository,
    remote: &Remote,
    branches: &[(String, ObjectId)],
    tags: &[(String, ObjectId)],
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let tips: Vec<ObjectId> = branches.iter().chain(tags).map(|(_, c)| *c).collect();
    let transfer = Transfer::new(&remote.objects, repo.objects(), repo.objects(), progress);
    let incomplete = |e: crate::Error| match e {
        Error::Engine(
            source @ (strata_engine::Error::MissingObject { .. }
            | strata_engine::Error::CorruptObject { .. }),
        ) => Error::Incomplete {
            url: remote.url.clone(),
            source,
        },
        other => other,
    };
    let missing = transfer
        .missing_commits(&tips, &Default::default())
        .await
        .map_err(incomplete)?;
    transfer.copy_commits(missing).await.map_err(incomplete)?;
    Ok(transfer.stats())
}

/// Clones `url` into `dir`; returns the repository and the branch checked out (none for an
/// empty remote). A failed clone removes what it created.
pub async fn clone(
    url: &str,
    dir: &Path,
    branch: Option<&str>,
    options: RemoteConfig,
    progress: &dyn Progress,
) -> Result<(Repository, Option<String>)> {
    let existed = dir.exists();
    if existed
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Invalid(format!(
            "destination '{}' already exists and is not empty; choose another folder",
            dir.display()
        )));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Invalid(format!("cannot read the current folder: {e}")))?;
    // Check the source before creating anything.
    let probe = Remote::open_url("origin", url, &options, &cwd, "clone", false)?;
    probe.check().await?;
    let result = clone_into(&probe.url, dir, branch, options, progress).await;
    if result.is_err() {
        let cleanup = if existed {
            std::fs::remove_dir_all(dir.join(strata_engine::repo::DOT_DIR))
        } else {
            std::fs::remove_dir_all(dir)
        };
        if let Err(e) = cleanup {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a failed clone");
        }
    }
    result
}

async fn clone_into(
    url: &str,
    dir: &Path,
    branch: Option<&str>,
    mut options: RemoteConfig,
    progress: &dyn Progress,
) -> Result<(Repository, Option<String>)> {
    let repo = Repository::init(dir).await?;
    options.url = url.to_string();
    config::add_remote(&repo, "origin", options).await?;
    let remote = Remote::configured(&repo, "origin", false).await?;
    fetch(&repo, &remote, false, progress).await?;
    let tracking = repo.remote_tracking_list("origin").await?;
    let chosen = match branch {
        Some(b) => Some(
            tracking
                .iter()
                .find(|(n, _)| n == b)
                .cloned()
                .ok_or_else(|| Error::UnknownRemoteBranch {
                    remote: url.into(),
                    branch: b.into(),
                })?,
        ),
        None => tracking
            .iter()
            .find(|(n, _)| n == strata_engine::repo::DEFAULT_BRANCH)
            .or(tracking.first())
            .cloned(),
    };
    let Some((name, commit)) = chosen else {
        return Ok((repo, None));
    };
    config::set_upstream(
        &repo,
        &name,
        Upstream {
            remote: "origin".into(),
            branch: name.clone(),
        },
    )
    .await?;
    repo.start_branch_at(&name, commit, &format!("clone: from {url}"))
        .await?;
    Ok((repo, Some(name)))
}
