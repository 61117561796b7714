//! Remote commands: remote, clone, fetch, push, pull, fsck.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata::{
    Author, CloneOptions, FsckOptions, GcOptions, ObjectId, PullOptions, PushOptions, RefMove,
    Repository,
};

use crate::commands::print_json;
use crate::render::count;

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Manage remotes: add, remove, rename, set-url, list (the default), show.
    Remote {
        #[command(subcommand)]
        command: Option<RemoteCommand>,
    },
    /// Copy a remote repository into a new folder.
    Clone {
        /// A path, file:///abs/path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix.
        url: String,
        /// Folder to create (default: the last part of the URL).
        dir: Option<PathBuf>,
        /// Branch to check out (default: main, or the only branch).
        #[arg(short, long)]
        branch: Option<String>,
        /// A remote option KEY=VALUE (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = remote_option)]
        options: Vec<String>,
    },
    /// Download branches and tags from a remote; update REMOTE/BRANCH refs.
    Fetch {
        remote: Option<String>,
        /// Fetch from every remote.
        #[arg(long, conflicts_with = "remote")]
        all: bool,
        /// Remove REMOTE/BRANCH refs of branches deleted on the remote.
        #[arg(long)]
        prune: bool,
    },
    /// Upload branches (default: the current one) and move them on the remote.
    Push {
        remote: Option<String>,
        /// Branches or tags to push: NAME, LOCAL:REMOTE, or :REMOTE to delete a remote branch.
        #[arg(value_name = "REFSPEC")]
        branches: Vec<String>,
        /// Push every local branch.
        #[arg(long)]
        all: bool,
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
        /// Make the remote's location a new repository if it is not one yet (an empty or
        /// missing folder, an empty prefix).
        #[arg(long)]
        create: bool,
        /// Stop when the remote branch moved, instead of merging its new commits in (when no
        /// row conflicts) and pushing again.
        #[arg(long, alias = "no-rebase")]
        no_merge: bool,
    },
    /// Fetch, then merge the upstream branch (fast-forward when possible).
    Pull {
        remote: Option<String>,
        branch: Option<String>,
        /// Refuse unless the merge is a fast-forward.
        #[arg(long, conflicts_with = "rebase")]
        ff_only: bool,
        #[arg(long)]
        author: Option<String>,
        /// Replay this branch's own commits on top of the remote branch instead of merging.
        #[arg(long, short = 'r')]
        rebase: bool,
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
        /// Also collect what only the reflog keeps: drop every reflog entry but each ref's
        /// current one (by default entries younger than 90 days are kept).
        #[arg(long, conflicts_with = "remote")]
        expire_reflog: bool,
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
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = remote_option)]
        options: Vec<String>,
    },
    /// Remove a remote and its remote-tracking refs.
    Remove { name: String },
    /// Rename a remote, with its remote-tracking refs and the upstreams that name it.
    Rename { old: String, new: String },
    /// Point a remote at another URL.
    SetUrl { name: String, url: String },
    /// List remotes (-v: with their URLs, as `list` shows them).
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
            ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        // The spinner turns while a long object is on its way, so a slow transfer shows life.
        bar.enable_steady_tick(std::time::Duration::from_millis(150));
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

impl strata::Progress for TransferBar {
    fn advance(&self, bytes: u64) {
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.set_message(indicatif::HumanBytes(b).to_string());
        self.bar.tick();
    }

    fn object(&self, bytes: u64) {
        let n = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.set_message(format!(
            "{}, {}",
            crate::render::count(n, "object"),
            indicatif::HumanBytes(b)
        ));
        self.bar.tick();
    }
}

/// Checks a `-o KEY=VALUE` at parse time: a key that no backend knows (a typo such as
/// `endpiont`) is a usage error rather than an option silently ignored.
pub(crate) fn remote_option(o: &str) -> std::result::Result<String, String> {
    let Some((k, v)) = o.split_once('=') else {
        return Err(format!("'{o}' is not KEY=VALUE"));
    };
    if strata::is_known_option(k) {
        strata::check_option_value(k, v)?;
        Ok(o.to_string())
    } else {
        Err(format!(
            "unknown remote option '{k}'; options include endpoint, region, allow_http, allow_unsafe_store, allow_network_fs"
        ))
    }
}

/// `-o KEY=VALUE` options.
pub(crate) fn parse_options(options: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for o in options {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("option '{o}' is not KEY=VALUE"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(strata::check_options(&out)?)
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
    let dir =
        match dir {
            Some(d) => cwd.join(d),
            None => cwd.join(strata::clone_dir_name(url).context(
                "cannot pick a folder name from the URL; give one: strata clone URL DIR",
            )?),
        };
    let opts = CloneOptions {
        branch,
        options: parse_options(options)?,
    };
    let bar = TransferBar::new("cloning");
    let result = Repository::clone(url, &dir, &opts, &bar).await;
    bar.done();
    let (_, report) = result?;
    outln!("Cloned into '{}'", report.dir.display())?;
    match report.branch {
        Some(b) => outln!("Checked out branch '{b}'")?,
        None => outln!("The remote has no branches yet: you cloned an empty repository.")?,
    }
    Ok(())
}

pub async fn run(repo: &Repository, cmd: SyncCommand) -> Result<()> {
    match cmd {
        SyncCommand::Remote { command } => {
            remote(repo, command.unwrap_or(RemoteCommand::List { json: false })).await
        }
        SyncCommand::Clone { .. } => unreachable!("clone runs without a repository"),
        SyncCommand::Fetch { remote, all, prune } => {
            if all {
                for r in repo.remotes().await? {
                    fetch(repo, Some(&r.name), prune).await?;
                }
                return Ok(());
            }
            fetch(repo, remote.as_deref(), prune).await
        }
        SyncCommand::Push {
            remote,
            branches,
            all,
            set_upstream,
            force,
            force_with_lease,
            atomic,
            tags,
            delete,
            create,
            no_merge,
        } => {
            let lease = match force_with_lease.as_deref() {
                None => None,
                Some("") => Some(strata::ForceWithLease::Tracking),
                Some(spec) => {
                    let (b, e) = spec
                        .split_once(':')
                        .context("--force-with-lease takes BRANCH:EXPECTED (a commit, or empty for 'must not exist')")?;
                    Some(strata::ForceWithLease::Expected {
                        branch: b.to_string(),
                        expected: (!e.is_empty()).then(|| e.to_string()),
                    })
                }
            };
            let opts = PushOptions {
                remote,
                branches,
                all,
                delete,
                force,
                force_with_lease: lease,
                atomic,
                tags,
                set_upstream,
                gc_wait: None,
                create,
                no_merge,
            };
            push(repo, &opts).await
        }
        SyncCommand::Pull {
            remote,
            branch,
            ff_only,
            author,
            rebase,
        } => {
            let opts = PullOptions {
                remote,
                branch,
                ff_only,
                author: author.as_deref().map(Author::parse).transpose()?,
                rebase,
            };
            pull(repo, &opts).await
        }
        SyncCommand::Gc {
            remote,
            dry_run,
            break_lock,
            expire_reflog,
            json,
        } => {
            let opts = GcOptions {
                remote,
                dry_run,
                break_lock,
                expire_reflog,
            };
            gc(repo, &opts, json).await
        }
        SyncCommand::Fsck {
            remote,
            repair,
            json,
        } => fsck(repo, &FsckOptions { remote, repair }, json).await,
    }
}

async fn gc(repo: &Repository, opts: &GcOptions, as_json: bool) -> Result<()> {
    let bar = TransferBar::new(if opts.dry_run {
        "checking"
    } else {
        "collecting"
    });
    let result = repo.gc(opts, &bar).await;
    bar.done();
    let g = result?;
    if as_json {
        return print_json(&g.report);
    }
    let report = &g.report;
    if let Some(old) = &report.took_over {
        eprintln!("Took over from the interrupted garbage collection {old}");
    }
    let r = &report.gc;
    let verb = if r.dry_run { "Would remove" } else { "Removed" };
    outln!(
        "{verb} {} ({}) from {}; kept {} ({})",
        count(r.removed.objects, "object"),
        indicatif::HumanBytes(r.removed.bytes),
        g.location,
        count(r.kept.objects, "object"),
        indicatif::HumanBytes(r.kept.bytes)
    )?;
    if r.ref_records > 0 {
        outln!("Removed {}", count(r.ref_records, "old ref record"))?;
    }
    if report.stale_notes > 0 {
        outln!(
            "Removed {} of pushes that stopped waiting more than an hour ago",
            count(report.stale_notes, "note")
        )?;
    }
    if report.fenced > 0 {
        outln!(
            "Fenced {} ref records of pushes in flight (they start over after this collection)",
            report.fenced
        )?;
    }
    if report.leases > 0 {
        outln!(
            "{} pushes had not finished (still running, or interrupted); their leases stay until they end",
            report.leases
        )?;
    }
    Ok(())
}

async fn remote(repo: &Repository, cmd: RemoteCommand) -> Result<()> {
    match cmd {
        RemoteCommand::Add { name, url, options } => {
            let info = repo
                .add_remote(&name, &url, &parse_options(&options)?)
                .await?;
            outln!("Added remote '{name}' -> {}", info.url)?;
        }
        RemoteCommand::Remove { name } => {
            repo.remove_remote(&name).await?;
            outln!("Removed remote '{name}'")?;
        }
        RemoteCommand::Rename { old, new } => {
            repo.rename_remote(&old, &new).await?;
            outln!("Renamed remote '{old}' to '{new}'")?;
        }
        RemoteCommand::SetUrl { name, url } => {
            let info = repo.set_remote_url(&name, &url).await?;
            outln!("Remote '{name}' -> {}", info.url)?;
        }
        RemoteCommand::List { json } => {
            for r in repo.remotes().await? {
                if json {
                    print_json(&r)?;
                } else {
                    outln!("{}\t{}", r.name, r.url)?;
                }
            }
        }
        RemoteCommand::Show { name, json } => {
            let r = repo.remote(&name).await?;
            if json {
                return print_json(&r);
            }
            outln!("remote {name}")?;
            outln!("  URL: {}", r.url)?;
            for (k, v) in &r.options {
                outln!("  option {k} = {v}")?;
            }
            outln!("  branches:")?;
            for b in &r.branches {
                outln!("    {:<24} {}", b.name, b.commit.short())?;
            }
            if !r.tags.is_empty() {
                outln!("  tags:")?;
                for t in &r.tags {
                    outln!("    {:<24} {}", t.name, t.commit.short())?;
                }
            }
        }
    }
    Ok(())
}

/// Fetches, and tells people what moved.
async fn fetch(repo: &Repository, remote: Option<&str>, prune: bool) -> Result<()> {
    let bar = TransferBar::new("fetching");
    let result = repo.fetch(remote, prune, &bar).await;
    bar.done();
    print_fetch(&result?);
    Ok(())
}

fn print_fetch(report: &strata::FetchReport) {
    if report.is_empty() {
        return;
    }
    let name = &report.remote;
    eprintln!("From {}", report.url);
    for u in &report.updated {
        let b = &u.branch;
        match u.old {
            None => eprintln!(" * [new branch]      {b:<16} -> {name}/{b}"),
            Some(o) => eprintln!("   {}..{}  {b:<16} -> {name}/{b}", o.short(), u.new.short()),
        }
    }
    for b in &report.pruned {
        eprintln!(" - [deleted]         (none)           -> {name}/{b}");
    }
    for t in &report.new_tags {
        eprintln!(" * [new tag]         {t}");
    }
}

async fn push(repo: &Repository, opts: &PushOptions) -> Result<()> {
    let bar = TransferBar::new("pushing");
    let result = repo.push(opts, &bar).await;
    bar.done();
    let mut report = result?;
    if let Some(tip) = report.carried_in {
        eprintln!(
            "The remote branch had moved: another writer's push merged your commit and landed it ({}) (attempt {})",
            tip.short(),
            report.rounds
        );
    } else if let Some(m) = report.merges.first() {
        eprintln!(
            "The remote branch had moved: merged its new commits in ({}) and pushed again (attempt {})",
            m.short(),
            report.rounds
        );
    }
    if !report.carried.is_empty() {
        let ids: Vec<String> = report.carried.iter().map(|c| c.short()).collect();
        eprintln!(
            "Landed with it {} other push{} waiting on the branch: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "es" },
            ids.join(", ")
        );
    }
    eprintln!("To {}", report.url);
    for u in &report.updates {
        let n = &u.name;
        let from = u.source.as_deref().unwrap_or(n);
        match u.moved {
            RefMove::UpToDate => eprintln!(" = [up to date]      {from} -> {n}"),
            RefMove::Created => eprintln!(
                " * [new {}]{}{from} -> {n}",
                u.kind,
                if u.kind == "tag" {
                    "         "
                } else {
                    "      "
                }
            ),
            RefMove::FastForward => {
                eprintln!("   {}..{}  {from} -> {n}", short(u.old), short(u.new))
            }
            RefMove::Forced => eprintln!(
                " + {}...{} {from} -> {n} (forced update)",
                short(u.old),
                short(u.new)
            ),
            RefMove::Replaced => eprintln!(
                " + (damaged)...{} {from} -> {n} (forced over a damaged ref record)",
                short(u.new)
            ),
            RefMove::Deleted => eprintln!(" - [deleted]         {n}"),
        }
    }
    for r in &report.rejected {
        eprintln!(" ! {}", r.message);
    }
    match report.error() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn pull(repo: &Repository, opts: &PullOptions) -> Result<()> {
    let bar = TransferBar::new("fetching");
    let result = repo.pull(opts, &bar).await;
    bar.done();
    let report = result?;
    print_fetch(&report.fetch);
    match &report.outcome {
        strata::MergeOutcome::Rebased { commit, replayed } => outln!(
            "Rebased {} onto {}: now at {}",
            count(*replayed as u64, "commit"),
            report.merged,
            commit.short()
        )?,
        outcome => crate::commands::print_merge(outcome, &format!("Merged {}", report.merged))?,
    }
    match report.outcome.conflict_error("pull", true) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn fsck(repo: &Repository, opts: &FsckOptions, as_json: bool) -> Result<()> {
    let report = repo.fsck(opts).await?;
    if let Some(r) = &report.repair {
        for s in &r.skipped {
            eprintln!("strata: not repairing from {s}");
        }
        let line = format!(
            "{}: restored {} object{} from {}",
            report.location,
            r.restored,
            if r.restored == 1 { "" } else { "s" },
            r.sources.join(", ")
        );
        if as_json {
            eprintln!("{line}");
        } else {
            outln!("{line}")?;
        }
    }
    if as_json {
        for p in &report.problems {
            print_json(p)?;
        }
    } else {
        for p in &report.problems {
            outln!(
                "{} (reached from {}): {}; {}",
                p.object,
                p.reached_from,
                p.message,
                p.fix
            )?;
        }
    }
    match report.error() {
        Some(e) => Err(e.into()),
        None => {
            if !as_json {
                outln!(
                    "{}: {} checked, no problems",
                    report.location,
                    count(report.checked, "object")
                )?;
            }
            Ok(())
        }
    }
}
