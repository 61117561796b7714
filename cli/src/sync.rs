//! Remote commands: remote, clone, fetch, push, pull, fsck.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use strata_engine::merging::{MergeOptions, MergeOutcome};
use strata_engine::repo::Head;
use strata_engine::store::RefKind;
use strata_engine::{ObjectId, Repository};
use strata_remote::config::{self, RemoteConfig};
use strata_remote::push::{Lease, PushOptions, UpdateKind};
use strata_remote::Remote;

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Manage remotes: add, remove, list, show.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Copy a remote repository into a new folder.
    Clone {
        /// A path, file:///abs/path, or s3://bucket/prefix.
        url: String,
        /// Folder to create (default: the last part of the URL).
        dir: Option<PathBuf>,
        /// Branch to check out (default: main, or the only branch).
        #[arg(short, long)]
        branch: Option<String>,
        /// A remote option KEY=VALUE (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// Download branches and tags from a remote; update REMOTE/BRANCH refs.
    Fetch {
        remote: Option<String>,
        /// Remove REMOTE/BRANCH refs of branches deleted on the remote.
        #[arg(long)]
        prune: bool,
    },
    /// Upload branches (default: the current one) and move them on the remote.
    Push {
        remote: Option<String>,
        branches: Vec<String>,
        /// Remember REMOTE/BRANCH as the upstream of each pushed branch.
        #[arg(short = 'u', long = "set-upstream")]
        set_upstream: bool,
        /// Move the remote branch even when it is not a fast-forward.
        #[arg(short, long)]
        force: bool,
        /// Force, but only if the remote branch is where REMOTE/BRANCH (or EXPECTED) says.
        #[arg(long, value_name = "BRANCH:EXPECTED", num_args = 0..=1, default_missing_value = "", require_equals = true)]
        force_with_lease: Option<String>,
        /// All refs move, or none.
        #[arg(long)]
        atomic: bool,
        /// Push all tags too.
        #[arg(long)]
        tags: bool,
        /// Delete this branch on the remote (repeatable).
        #[arg(long, value_name = "BRANCH")]
        delete: Vec<String>,
    },
    /// Fetch, then merge the upstream branch (fast-forward when possible).
    Pull {
        remote: Option<String>,
        branch: Option<String>,
        /// Refuse unless the merge is a fast-forward.
        #[arg(long)]
        ff_only: bool,
        #[arg(long)]
        author: Option<String>,
    },
    /// Delete objects that no ref reaches, locally or on a remote, and compact old ref records.
    Gc {
        /// Collect this remote instead of the local repository.
        #[arg(long)]
        remote: Option<String>,
        /// Report what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take the remote's collection lock from a collection that is not running any more
        /// (interrupted elsewhere). Use only when sure.
        #[arg(long, requires = "remote")]
        break_lock: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check that every object reachable from the refs exists, matches its id and decodes.
    Fsck {
        /// Check this remote instead of the local repository.
        #[arg(long)]
        remote: Option<String>,
        /// Write missing or damaged objects again from an intact copy: locally from the
        /// remotes, on a remote from this repository.
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote (checked for a repository on first fetch or push).
    Add {
        name: String,
        url: String,
        /// A remote option KEY=VALUE (repeatable), e.g. endpoint=http://127.0.0.1:7480.
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// Remove a remote and its remote-tracking refs.
    Remove { name: String },
    /// List remotes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a remote's URL, options and branches (read from the remote now).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// Progress of a transfer, in objects and bytes, on standard error when it is a terminal.
struct TransferBar {
    bar: ProgressBar,
    objects: AtomicU64,
    bytes: AtomicU64,
}

impl TransferBar {
    fn new(what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        TransferBar {
            bar,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

impl strata_engine::Progress for TransferBar {
    fn advance(&self, bytes: u64) {
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.set_message(indicatif::HumanBytes(b).to_string());
        self.bar.tick();
    }

    fn object(&self, bytes: u64) {
        let n = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar
            .set_message(format!("{n} objects, {}", indicatif::HumanBytes(b)));
        self.bar.tick();
    }
}

fn parse_options(options: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for o in options {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("option '{o}' is not KEY=VALUE"))?;
        let key = k.trim().to_ascii_lowercase();
        if [
            "secret_access_key",
            "aws_secret_access_key",
            "session_token",
            "aws_session_token",
            "password",
            "token",
        ]
        .iter()
        .any(|s| key.contains(s))
        {
            bail!("option '{k}' is a secret; secrets are read from the environment or a profile, never stored");
        }
        out.insert(key, v.trim().to_string());
    }
    Ok(out)
}

fn short(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "(none)".into(), |c| c.short())
}

/// `strata clone`: runs without a repository.
pub async fn clone(
    cwd: &Path,
    url: &str,
    dir: Option<PathBuf>,
    branch: Option<String>,
    options: &[String],
) -> Result<()> {
    let dir = match dir {
        Some(d) => cwd.join(d),
        None => {
            let last = url
                .trim_end_matches('/')
                .rsplit(['/', '\\'])
                .next()
                .filter(|s| !s.is_empty() && !s.contains(':'))
                .context(
                    "cannot pick a folder name from the URL; give one: strata clone URL DIR",
                )?;
            cwd.join(last)
        }
    };
    let config = RemoteConfig {
        url: url.to_string(),
        options: parse_options(options)?,
        verified: false,
    };
    let bar = TransferBar::new("cloning");
    let result = strata_remote::fetch::clone(url, &dir, branch.as_deref(), config, &bar).await;
    bar.done();
    let (_, checked_out) = result?;
    println!("Cloned into '{}'", dir.display());
    match checked_out {
        Some(b) => println!("Checked out branch '{b}'"),
        None => println!("The remote has no branches yet: you cloned an empty repository."),
    }
    Ok(())
}

pub async fn run(repo: &Repository, cmd: SyncCommand) -> Result<()> {
    match cmd {
        SyncCommand::Remote(cmd) => remote(repo, cmd).await,
        SyncCommand::Clone { .. } => unreachable!("clone runs without a repository"),
        SyncCommand::Fetch { remote, prune } => {
            let name = match remote {
                Some(r) => r,
                None => config::default_remote(repo).await?,
            };
            fetch(repo, &name, prune).await
        }
        SyncCommand::Push {
            remote,
            branches,
            set_upstream,
            force,
            force_with_lease,
            atomic,
            tags,
            delete,
        } => {
            let lease = match force_with_lease.as_deref() {
                None => None,
                Some("") => Some(Lease::Tracking),
                Some(spec) => {
                    let (b, e) = spec
                        .split_once(':')
                        .context("--force-with-lease takes BRANCH:EXPECTED (a commit, or empty for 'must not exist')")?;
                    // A full id is taken as it is (git accepts ids it has never fetched).
                    let expected = if e.is_empty() {
                        None
                    } else if let Ok(id) = e.parse::<ObjectId>() {
                        Some(id)
                    } else {
                        Some(repo.resolve(e).await?)
                    };
                    Some(Lease::Expected(b.to_string(), expected))
                }
            };
            let opts = PushOptions {
                force,
                lease,
                atomic,
                tags,
                set_upstream,
                gc_wait: gc_wait()?,
            };
            push(repo, remote, branches, delete, opts).await
        }
        SyncCommand::Pull {
            remote,
            branch,
            ff_only,
            author,
        } => pull(repo, remote, branch, ff_only, author).await,
        SyncCommand::Gc {
            remote,
            dry_run,
            break_lock,
            json,
        } => gc(repo, remote, dry_run, break_lock, json).await,
        SyncCommand::Fsck {
            remote,
            repair,
            json,
        } => fsck(repo, remote, repair, json).await,
    }
}

/// `STRATA_GC_WAIT`: seconds a push waits for garbage collections on the remote.
fn gc_wait() -> Result<Option<std::time::Duration>> {
    seconds_from_env("STRATA_GC_WAIT")
}

/// A number of seconds (fractions allowed) from the environment variable `name`, if set.
fn seconds_from_env(name: &str) -> Result<Option<std::time::Duration>> {
    match std::env::var(name) {
        Ok(v) => {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .with_context(|| {
                    format!("{name}='{v}' is not a number of seconds; set it to e.g. 2 or 120")
                })?;
            Ok(Some(std::time::Duration::from_secs_f64(secs)))
        }
        Err(_) => Ok(None),
    }
}

async fn gc(
    repo: &Repository,
    remote: Option<String>,
    dry_run: bool,
    break_lock: bool,
    as_json: bool,
) -> Result<()> {
    let bar = TransferBar::new(if dry_run { "checking" } else { "collecting" });
    let (location, report) = match &remote {
        None => {
            if !dry_run {
                repo.lock_exclusive()?;
            }
            let result = repo.gc(dry_run, &bar).await;
            bar.done();
            let report = strata_remote::gc::RemoteGcReport {
                gc: result?,
                ..Default::default()
            };
            (repo.root().display().to_string(), report)
        }
        Some(name) => {
            let r = Remote::configured(repo, name, false).await?;
            // Only one collection of a remote runs from this repository at a time; holding
            // this lock proves that a lock on the remote carrying this repository's writer id
            // belongs to a collection that was interrupted.
            let Some(file) = repo.try_lock_local("remote-gc.lock")? else {
                bail!("another garbage collection of a remote is running from this repository; wait for it to finish");
            };
            let opts = strata_remote::gc::GcOptions {
                dry_run,
                break_lock,
                resume_own: true,
                lease_grace: seconds_from_env("STRATA_GC_GRACE")?,
            };
            let result =
                strata_remote::gc::collect(&r, &[repo.objects()], &opts, repo.now(), &bar).await;
            bar.done();
            drop(file);
            (r.url.clone(), result?)
        }
    };
    if as_json {
        return crate::commands::print_json(&serde_json::to_value(&report)?);
    }
    if let Some(old) = &report.took_over {
        eprintln!("Took over from the interrupted garbage collection {old}");
    }
    let g = &report.gc;
    let verb = if g.dry_run { "Would remove" } else { "Removed" };
    println!(
        "{verb} {} objects ({}) from {location}; kept {} objects ({})",
        g.removed.objects,
        indicatif::HumanBytes(g.removed.bytes),
        g.kept.objects,
        indicatif::HumanBytes(g.kept.bytes)
    );
    if g.ref_records > 0 {
        println!("Removed {} old ref records", g.ref_records);
    }
    if report.fenced > 0 {
        println!(
            "Fenced {} ref records of pushes in flight (they start over after this collection)",
            report.fenced
        );
    }
    if report.leases > 0 {
        println!(
            "{} pushes had not finished (still running, or interrupted); their leases stay until they end",
            report.leases
        );
    }
    Ok(())
}

async fn remote(repo: &Repository, cmd: RemoteCommand) -> Result<()> {
    match cmd {
        RemoteCommand::Add { name, url, options } => {
            let location = strata_remote::url::Location::parse(&url, repo.root())?;
            let mut config = RemoteConfig {
                url: location.to_url(),
                options: parse_options(&options)?,
                verified: false,
            };
            strata_engine::names::validate_name("remote", &name)?;
            if config::remotes(repo).await?.contains_key(&name) {
                bail!("remote '{name}' already exists; 'strata remote remove {name}' first to change it");
            }
            // Cloud stores are checked now: reachable, and enforcing conditional writes.
            if matches!(location, strata_remote::url::Location::Cloud { .. }) {
                let writer = repo.refs().writer().to_string();
                let remote =
                    Remote::open_url(&name, &config.url, &config, repo.root(), &writer, false)?;
                config.verified = remote.ensure_trusted().await?;
            }
            config::add_remote(repo, &name, config).await?;
            println!("Added remote '{name}' -> {}", location.to_url());
        }
        RemoteCommand::Remove { name } => {
            config::remove_remote(repo, &name).await?;
            println!("Removed remote '{name}'");
        }
        RemoteCommand::List { json } => {
            for (name, c) in config::remotes(repo).await? {
                if json {
                    crate::commands::print_json(
                        &json!({"name": name, "url": c.url, "options": c.options}),
                    )?;
                } else {
                    println!("{name}\t{}", c.url);
                }
            }
        }
        RemoteCommand::Show { name, json } => {
            let c = config::remote(repo, &name).await?;
            let r = Remote::configured(repo, &name, false).await?;
            r.check().await?;
            let branches = r.refs.list(RefKind::Branch).await?;
            let tags = r.refs.list(RefKind::Tag).await?;
            if json {
                return crate::commands::print_json(&json!({
                    "name": name, "url": c.url, "options": c.options,
                    "branches": branches.iter().map(|(b, id)| json!({"name": b, "commit": id})).collect::<Vec<_>>(),
                    "tags": tags.iter().map(|(t, id)| json!({"name": t, "commit": id})).collect::<Vec<_>>(),
                }));
            }
            println!("remote {name}");
            println!("  URL: {}", c.url);
            for (k, v) in &c.options {
                println!("  option {k} = {v}");
            }
            println!("  branches:");
            for (b, id) in &branches {
                println!("    {b:<24} {}", id.short());
            }
            if !tags.is_empty() {
                println!("  tags:");
                for (t, id) in &tags {
                    println!("    {t:<24} {}", id.short());
                }
            }
        }
    }
    Ok(())
}

async fn fetch(repo: &Repository, name: &str, prune: bool) -> Result<()> {
    let r = Remote::configured(repo, name, false).await?;
    let bar = TransferBar::new("fetching");
    let result = strata_remote::fetch::fetch(repo, &r, prune, &bar).await;
    bar.done();
    let report = result?;
    if report.updated.is_empty() && report.pruned.is_empty() && report.new_tags.is_empty() {
        return Ok(());
    }
    eprintln!("From {}", r.url);
    for (b, old, new) in &report.updated {
        match old {
            None => eprintln!(" * [new branch]      {b:<16} -> {name}/{b}"),
            Some(o) => eprintln!("   {}..{}  {b:<16} -> {name}/{b}", o.short(), new.short()),
        }
    }
    for b in &report.pruned {
        eprintln!(" - [deleted]         (none)           -> {name}/{b}");
    }
    for t in &report.new_tags {
        eprintln!(" * [new tag]         {t}");
    }
    Ok(())
}

async fn push(
    repo: &Repository,
    remote: Option<String>,
    mut branches: Vec<String>,
    delete: Vec<String>,
    opts: PushOptions,
) -> Result<()> {
    let name = match remote {
        Some(r) => r,
        None => config::default_remote(repo).await?,
    };
    if branches.is_empty() && delete.is_empty() && !opts.tags {
        match repo.head().await? {
            Head::Branch(b) => branches.push(b),
            Head::Detached(_) => bail!("HEAD is detached: name the branch to push"),
        }
    }
    let r = Remote::configured(repo, &name, true).await?;
    let bar = TransferBar::new("pushing");
    let result = strata_remote::push::push(repo, &r, &branches, &delete, &opts, &bar).await;
    bar.done();
    let report = result?;
    eprintln!("To {}", r.url);
    for u in &report.updates {
        let n = &u.name.name;
        match u.kind {
            UpdateKind::UpToDate => eprintln!(" = [up to date]      {n} -> {n}"),
            UpdateKind::Created => eprintln!(
                " * [new {}]{}{n} -> {n}",
                u.name.kind.noun(),
                if u.name.kind == RefKind::Tag {
                    "         "
                } else {
                    "      "
                }
            ),
            UpdateKind::FastForward => {
                eprintln!("   {}..{}  {n} -> {n}", short(u.old), short(u.new))
            }
            UpdateKind::Forced => eprintln!(
                " + {}...{} {n} -> {n} (forced update)",
                short(u.old),
                short(u.new)
            ),
            UpdateKind::Replaced => eprintln!(
                " + (damaged)...{} {n} -> {n} (forced over a damaged ref record)",
                short(u.new)
            ),
            UpdateKind::Deleted => eprintln!(" - [deleted]         {n}"),
        }
    }
    if let Some(first) = report.rejected.first() {
        for e in &report.rejected {
            eprintln!(" ! {e}");
        }
        if opts.atomic {
            bail!("atomic push refused: no ref was moved ({first})");
        }
        return Err(anyhow::anyhow!("{first}"));
    }
    Ok(())
}

async fn pull(
    repo: &Repository,
    remote: Option<String>,
    branch: Option<String>,
    ff_only: bool,
    author: Option<String>,
) -> Result<()> {
    let current = match repo.head().await? {
        Head::Branch(b) => Some(b),
        Head::Detached(_) => None,
    };
    let upstream = match &current {
        Some(b) => config::upstream(repo, b).await?,
        None => None,
    };
    let name = match (remote, &upstream) {
        (Some(r), _) => r,
        (None, Some(u)) => u.remote.clone(),
        (None, None) => config::default_remote(repo).await?,
    };
    let branch = match (branch, &upstream, &current) {
        (Some(b), _, _) => b,
        (None, Some(u), _) if u.remote == name => u.branch.clone(),
        (None, _, Some(c)) => c.clone(),
        (None, _, None) => bail!("HEAD is detached: name the branch to pull"),
    };
    fetch(repo, &name, false).await?;
    let tracking = format!("{name}/{branch}");
    if repo.remote_tracking(&name, &branch).await?.is_none() {
        bail!("branch '{branch}' does not exist on remote '{name}'");
    }
    let opts = MergeOptions {
        message: Some(format!("Merge {tracking}")),
        no_ff: false,
        ff_only,
    };
    let author = crate::commands::author(author)?;
    match repo.merge(&tracking, &author, &opts).await? {
        MergeOutcome::UpToDate => println!("Already up to date."),
        MergeOutcome::FastForward(id) => println!("Fast-forward to {}", id.short()),
        MergeOutcome::Merged(id) => println!("Merged {tracking}: commit {}", id.short()),
        MergeOutcome::Conflicts(n, tables) => bail!(
            "pull stopped with {n} conflicting rows in {}; see them with 'strata conflicts show', resolve with \
             'strata conflicts resolve --ours|--theirs' (or import/delete the rows), then 'strata commit' and push; \
             'strata merge --abort' undoes it",
            tables.join(", ")
        ),
    }
    Ok(())
}

/// What `fsck` checks: the store, its roots, and where it is (for messages).
struct Checked {
    objects: strata_engine::store::Objects,
    location: String,
    problems: Vec<strata_remote::fsck::Problem>,
    checked: u64,
}

/// Checks the local repository, or the remote `remote`, once.
async fn check_once(repo: &Repository, remote: Option<&Remote>) -> Result<Checked> {
    use strata_remote::fsck::{check_refs, Side};
    let (objects, roots, tables, location, side, mut problems) = match remote {
        Some(r) => {
            let (roots, problems) =
                check_refs(&r.refs, &format!("{}: ", r.name), Side::Remote(&r.name)).await?;
            (
                r.objects.clone(),
                roots,
                Vec::new(),
                r.url.clone(),
                Side::Remote(&r.name),
                problems,
            )
        }
        None => {
            let (mut roots, problems) = check_refs(repo.refs(), "", Side::Local).await?;
            for (r, _) in config::remotes(repo).await? {
                for (b, c) in repo.remote_tracking_list(&r).await? {
                    roots.push((format!("{r}/{b}"), c));
                }
            }
            if let Some(h) = repo.head_commit().await? {
                roots.push(("HEAD".into(), h));
            }
            let tables: Vec<(String, ObjectId)> = repo
                .working()
                .await?
                .tables
                .into_iter()
                .map(|(t, id)| (format!("working table {t}"), id))
                .collect();
            (
                repo.objects().clone(),
                roots,
                tables,
                repo.root().display().to_string(),
                Side::Local,
                problems,
            )
        }
    };
    let (object_problems, checked) =
        strata_remote::fsck::fsck(&objects, &roots, &tables, side).await;
    problems.extend(object_problems);
    Ok(Checked {
        objects,
        location,
        problems,
        checked,
    })
}

/// The intact copies a repair may read, with how to name them: this repository for a
/// remote; every configured remote that can be reached for this repository.
async fn repair_sources(
    repo: &Repository,
    remote: Option<&Remote>,
) -> Result<Vec<(String, strata_engine::store::Objects)>> {
    if remote.is_some() {
        let label = format!("this repository ({})", repo.root().display());
        return Ok(vec![(label, repo.objects().clone())]);
    }
    let mut sources = Vec::new();
    for name in config::remotes(repo).await?.into_keys() {
        let opened = async {
            let r = Remote::configured(repo, &name, false).await?;
            r.check().await?;
            Ok::<_, strata_remote::Error>(r)
        };
        match opened.await {
            Ok(r) => sources.push((format!("remote '{name}'"), r.objects.clone())),
            Err(e) => eprintln!("strata: not repairing from remote '{name}': {e}"),
        }
    }
    if sources.is_empty() {
        bail!("nothing to repair from: this repository has no remote that can be reached; add one with 'strata remote add NAME URL', or clone afresh");
    }
    Ok(sources)
}

async fn fsck(
    repo: &Repository,
    remote: Option<String>,
    repair: bool,
    as_json: bool,
) -> Result<()> {
    let remote = match &remote {
        Some(name) => {
            let r = Remote::configured(repo, name, false).await?;
            r.check().await?;
            Some(r)
        }
        None => None,
    };
    let mut found = check_once(repo, remote.as_ref()).await?;
    if repair && found.problems.iter().any(|p| p.damaged.is_some()) {
        let named = repair_sources(repo, remote.as_ref()).await?;
        let sources: Vec<&strata_engine::store::Objects> = named.iter().map(|(_, s)| s).collect();
        let mut restored = 0;
        // Each round restores what the check found and what that reaches; a check after it
        // sees below the objects it restored, which may hold more to restore. (A store that
        // does not keep what is written would go on for ever: the rounds are bounded.)
        for _ in 0..100 {
            let damaged: Vec<_> = found.problems.iter().filter_map(|p| p.damaged).collect();
            if damaged.is_empty() {
                break;
            }
            let round = strata_remote::fsck::repair(&found.objects, &sources, &damaged).await?;
            restored += round.restored;
            if round.restored == 0 {
                for p in &mut found.problems {
                    if let Some(why) = p.damaged.and_then(|k| round.failed.get(&k)) {
                        p.fix = format!("cannot be restored: {why}; restore it from a backup or from a repository that has it");
                    }
                }
                break;
            }
            found = check_once(repo, remote.as_ref()).await?;
        }
        let from: Vec<&str> = named.iter().map(|(label, _)| label.as_str()).collect();
        let line = format!(
            "{}: restored {restored} object{} from {}",
            found.location,
            if restored == 1 { "" } else { "s" },
            from.join(", ")
        );
        if as_json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let Checked {
        location,
        problems,
        checked,
        ..
    } = found;
    if as_json {
        for p in &problems {
            crate::commands::print_json(&serde_json::to_value(p)?)?;
        }
    } else {
        for p in &problems {
            println!(
                "{} (reached from {}): {}; {}",
                p.object, p.reached_from, p.message, p.fix
            );
        }
    }
    if problems.is_empty() {
        if !as_json {
            println!("{location}: {checked} objects checked, no problems");
        }
        Ok(())
    } else {
        let n = problems.len();
        bail!(
            "{n} problem{} in {location}; each line above says what to do",
            if n == 1 { "" } else { "s" }
        )
    }
}
