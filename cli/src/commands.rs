//! One function per command: call the engine, render for people or as JSON.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;
use strata_engine::clock::FixedClock;
use strata_engine::edit::{ImportMode, ImportOptions};
use strata_engine::export::{Destination, ExportFormat};
use strata_engine::import::Format;
use strata_engine::repo::{Head, TableStatus};
use strata_engine::store::RefKind;
use strata_engine::{Commit, ObjectId, Repository, TableObject};

use crate::args::{Cli, Command, ConflictsCommand, ImportArgs, TableCommand};
use crate::render::{self, Bar};

pub async fn run(cli: Cli) -> Result<()> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let cwd = match &cli.chdir {
        Some(d) => {
            let reason = match std::fs::metadata(d) {
                Ok(m) if m.is_dir() => None,
                Ok(_) => Some("Not a directory".to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some("No such file or directory".to_string())
                }
                Err(e) => Some(e.to_string()),
            };
            if let Some(reason) = reason {
                bail!("cannot change to '{}': {reason}", d.display());
            }
            here.join(d)
        }
        None => here,
    };
    if let Command::Init { dir } = &cli.command {
        let target = match dir {
            Some(d) => cwd.join(d),
            None => cwd.clone(),
        };
        Repository::init(&target).await?;
        println!(
            "Initialized empty strata repository in {}",
            target.join(strata_engine::repo::DOT_DIR).display()
        );
        return Ok(());
    }
    if let Command::Sync(crate::sync::SyncCommand::Clone {
        url,
        dir,
        branch,
        options,
    }) = cli.command
    {
        return crate::sync::clone(&cwd, &url, dir, branch, &options).await;
    }
    let repo = open(&cwd).await?;
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Import(args) => import(&repo, args).await,
        Command::Delete {
            table,
            keys,
            format,
        } => delete(&repo, &table, &keys, format).await,
        Command::Table(cmd) => table(&repo, cmd).await,
        Command::Status { json } => status(&repo, json).await,
        Command::Diff {
            from,
            to,
            table,
            stat,
            json,
        } => {
            let args = crate::diff::DiffArgs {
                from,
                to,
                table,
                stat,
                json,
            };
            crate::diff::run(&repo, args).await
        }
        Command::Commit { message, author } => commit(&repo, &message, author).await,
        Command::Log {
            rev,
            oneline,
            max_count,
            json,
        } => log(&repo, rev, oneline, max_count, json).await,
        Command::Show { rev, json } => show(&repo, &rev, json).await,
        Command::Branch {
            name,
            start,
            delete,
            json,
        } => manage_ref(&repo, RefKind::Branch, name, start, delete, json).await,
        Command::Checkout {
            target,
            start,
            create,
            force,
        } => {
            if start.is_some() && !create {
                bail!("checkout takes one branch or revision; to create a branch at a start point use 'checkout -b NAME START'");
            }
            let create = create.then(|| start.unwrap_or_else(|| "HEAD".into()));
            checkout(&repo, &target, create, force).await
        }
        Command::Tag {
            name,
            rev,
            delete,
            json,
        } => manage_ref(&repo, RefKind::Tag, name, rev, delete, json).await,
        Command::Reset { hard: _, rev } => {
            let id = repo.reset_hard(&rev).await?;
            let c = Commit::read(repo.objects(), &id).await?;
            println!("HEAD is now at {} {}", id.short(), c.summary());
            Ok(())
        }
        Command::Merge {
            rev,
            message,
            no_ff,
            ff_only,
            abort,
            author: given,
        } => {
            if abort {
                repo.merge_abort().await?;
                println!("Merge aborted; the working tables are as they were before it");
                return Ok(());
            }
            let rev = rev.context("name the branch or revision to merge")?;
            let opts = strata_engine::merging::MergeOptions {
                message,
                no_ff,
                ff_only,
            };
            merge(&repo, &rev, &author(given)?, &opts).await
        }
        Command::Conflicts(cmd) => conflicts(&repo, cmd).await,
        Command::Sync(cmd) => crate::sync::run(&repo, cmd).await,
        Command::Export {
            table,
            out,
            format,
            rev,
        } => export(&repo, &table, &out, format, rev).await,
    }
}

async fn open(cwd: &Path) -> Result<Repository> {
    let repo = Repository::open(cwd).await?;
    Ok(match std::env::var("STRATA_COMMIT_TIME") {
        Ok(t) => {
            let secs: i64 = t
                .parse()
                .with_context(|| format!("STRATA_COMMIT_TIME='{t}' is not a number of seconds"))?;
            repo.with_clock(Arc::new(FixedClock(secs)))
        }
        Err(_) => repo,
    })
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

async fn import(repo: &Repository, args: ImportArgs) -> Result<()> {
    let opts = ImportOptions {
        mode: args.mode.as_deref().map(ImportMode::parse).transpose()?,
        primary_key: args.primary_key,
        format: args.format.as_deref().map(Format::parse).transpose()?,
        chunk_rows: args.chunk_rows,
    };
    let bar = Bar::new(&format!("importing {}", args.table));
    let result = repo.import(&args.table, &args.file, &opts, &bar).await;
    bar.done();
    let s = result?;
    let verb = if s.created { "Created" } else { "Updated" };
    println!(
        "{verb} table '{}': {} inserted, {} updated; {} rows in all ({} chunks written, {} reused)",
        s.table,
        s.stats.inserted,
        s.stats.updated,
        s.rows,
        s.stats.chunks_written,
        s.stats.chunks_reused
    );
    Ok(())
}

async fn delete(repo: &Repository, table: &str, keys: &Path, format: Option<String>) -> Result<()> {
    let format = format.as_deref().map(Format::parse).transpose()?;
    let bar = Bar::new(&format!("deleting from {table}"));
    let result = repo.delete_keys(table, keys, format, &bar).await;
    bar.done();
    let s = result?;
    print!(
        "Deleted {} rows from '{}'; {} rows left",
        s.stats.deleted, s.table, s.rows
    );
    if s.stats.missing > 0 {
        print!(" ({} keys matched no row)", s.stats.missing);
    }
    println!();
    Ok(())
}

async fn table(repo: &Repository, cmd: TableCommand) -> Result<()> {
    match cmd {
        TableCommand::List { rev, json } => {
            let tables = match &rev {
                None => repo.working().await?.tables,
                Some(r) => repo.commit_tables(Some(repo.resolve(r).await?)).await?,
            };
            let mut t = render::table(&["table", "rows", "columns", "key"]);
            for (name, id) in &tables {
                let obj = TableObject::read(repo.objects(), id).await?;
                if json {
                    print_json(&json!({
                        "table": name, "id": id, "rows": obj.rows,
                        "columns": obj.schema.columns.len(), "primary_key": obj.schema.primary_key,
                    }))?;
                } else {
                    t.add_row(vec![
                        name.clone(),
                        obj.rows.to_string(),
                        obj.schema.columns.len().to_string(),
                        obj.schema.primary_key.join(", "),
                    ]);
                }
            }
            if !json {
                if tables.is_empty() {
                    println!("No tables yet; add one with 'strata import TABLE FILE --primary-key COLS'.");
                } else {
                    println!("{t}");
                }
            }
        }
        TableCommand::Show { table, rev, json } => {
            let (id, obj) = repo.table(&table, rev.as_deref()).await?;
            let chunks = obj.chunks(repo.objects()).await?;
            if json {
                print_json(&json!({
                    "table": table, "id": id, "rows": obj.rows, "bytes": obj.bytes,
                    "chunks": chunks.len(), "primary_key": obj.schema.primary_key,
                    "columns": obj.schema.columns, "chunking": obj.chunking,
                }))?;
            } else {
                println!("table:       {table}");
                println!("id:          {id}");
                println!("primary key: {}", obj.schema.primary_key.join(", "));
                println!("rows:        {}", obj.rows);
                println!("chunks:      {} ({} bytes)", chunks.len(), obj.bytes);
                let mut t = render::table(&["column", "type", "nullable"]);
                for c in &obj.schema.columns {
                    t.add_row(vec![
                        c.name.clone(),
                        c.data_type.clone(),
                        c.nullable.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        TableCommand::Drop { table } => {
            repo.drop_table(&table).await?;
            println!("Dropped table '{table}' (commit to record it)");
        }
        TableCommand::Rename { from, to } => {
            repo.rename_table(&from, &to).await?;
            println!("Renamed table '{from}' to '{to}' (commit to record it)");
        }
    }
    Ok(())
}

fn status_json(s: &TableStatus) -> serde_json::Value {
    json!({
        "table": s.table, "state": s.state, "added": s.rows.added,
        "removed": s.rows.removed, "modified": s.rows.modified, "schema_changed": s.schema_changed,
    })
}

async fn status(repo: &Repository, as_json: bool) -> Result<()> {
    let head = repo.head().await?;
    let head_commit = repo.head_commit().await?;
    let changes = repo.status().await?;
    let merge = repo.merge_state().await?;
    // Ahead/behind the upstream, as of the last fetch.
    let mut upstream = None;
    if let (Head::Branch(b), Some(local)) = (&head, head_commit) {
        if let Some(u) = strata_remote::config::upstream(repo, b).await? {
            let name = format!("{}/{}", u.remote, u.branch);
            let counts = match repo.remote_tracking(&u.remote, &u.branch).await? {
                Some(t) => Some(repo.ahead_behind(local, t).await?),
                None => None,
            };
            upstream = Some((name, counts));
        }
    }
    if as_json {
        let (branch, detached) = match &head {
            Head::Branch(b) => (Some(b.clone()), None),
            Head::Detached(id) => (None, Some(*id)),
        };
        let merging = merge.as_ref().map(|m| {
            json!({
                "theirs": m.theirs, "name": m.theirs_name,
                "conflicts": m.tables.iter().map(|(t, c)| (t.clone(), json!(c.conflicts.len()))).collect::<serde_json::Map<_, _>>(),
            })
        });
        let upstream = upstream.as_ref().map(|(name, c)| {
            json!({"name": name, "ahead": c.map(|c| c.0), "behind": c.map(|c| c.1), "gone": c.is_none()})
        });
        return print_json(&json!({
            "branch": branch, "detached": detached, "head": head_commit, "merging": merging, "upstream": upstream,
            "tables": changes.iter().map(status_json).collect::<Vec<_>>(),
        }));
    }
    match &head {
        Head::Branch(b) => println!("On branch {b}"),
        Head::Detached(id) => println!("HEAD detached at {}", id.short()),
    }
    match &upstream {
        Some((name, None)) => println!("Your branch is based on '{name}', but the upstream is gone."),
        Some((name, Some((0, 0)))) => println!("Your branch is up to date with '{name}'."),
        Some((name, Some((a, 0)))) => {
            println!("Your branch is ahead of '{name}' by {a} commits; 'strata push' publishes them.")
        }
        Some((name, Some((0, b)))) => {
            println!("Your branch is behind '{name}' by {b} commits; 'strata pull' brings them in.")
        }
        Some((name, Some((a, b)))) => println!(
            "Your branch and '{name}' have diverged: {a} and {b} different commits; 'strata pull' merges them."
        ),
        None => {}
    }
    if let Some(m) = &merge {
        println!("You are merging '{}'.", m.theirs_name);
        if m.conflict_count() > 0 {
            for (t, tc) in &m.tables {
                println!("  {t}: {} conflicting rows", tc.conflicts.len());
            }
            println!("  (see them with 'strata conflicts show'; resolve with 'strata conflicts resolve --ours|--theirs'");
            println!(
                "   or by importing/deleting the rows; 'strata merge --abort' undoes the merge)"
            );
        } else {
            println!("  All conflicts resolved: run 'strata commit' to finish the merge.");
        }
    }
    if head_commit.is_none() {
        println!("No commits yet");
    }
    if changes.is_empty() && merge.is_none() {
        println!("nothing to commit, working tables clean");
        return Ok(());
    }
    if changes.is_empty() {
        return Ok(());
    }
    println!("Changes not yet committed:");
    let mut t = render::table(&["table", "state", "added", "removed", "modified"]);
    for s in &changes {
        let state = if s.schema_changed {
            format!("{} (schema)", s.state)
        } else {
            s.state.to_string()
        };
        t.add_row(vec![
            s.table.clone(),
            state,
            s.rows.added.to_string(),
            s.rows.removed.to_string(),
            s.rows.modified.to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub(crate) fn author(given: Option<String>) -> Result<String> {
    let author = match given.or_else(|| std::env::var("STRATA_AUTHOR").ok()) {
        Some(a) => a,
        None => {
            let user = std::env::var("USER").unwrap_or_else(|_| "strata".into());
            format!("{user} <{user}@localhost>")
        }
    };
    let well_formed = author.split_once(" <").is_some_and(|(name, rest)| {
        !name.trim().is_empty() && rest.ends_with('>') && rest.len() > 1
    });
    if !well_formed || author.chars().any(char::is_control) {
        bail!(
            "author '{}' is not of the form \"Name <email>\"",
            author.escape_default()
        );
    }
    Ok(author)
}

async fn commit(repo: &Repository, message: &str, given_author: Option<String>) -> Result<()> {
    let author = author(given_author)?;
    let id = repo.commit(message, &author).await?;
    let branch = match repo.head().await? {
        Head::Branch(b) => b,
        Head::Detached(_) => "detached HEAD".into(),
    };
    let summary = message.lines().next().unwrap_or("");
    println!("[{branch} {}] {summary}", id.short());
    Ok(())
}

fn commit_json(id: &ObjectId, c: &Commit) -> serde_json::Value {
    json!({
        "id": id, "parents": c.parents, "author": c.author, "time": c.time,
        "message": c.message, "tables": c.tables,
    })
}

async fn log(
    repo: &Repository,
    rev: Option<String>,
    oneline: bool,
    max_count: Option<usize>,
    as_json: bool,
) -> Result<()> {
    let start = match &rev {
        Some(r) => repo.resolve(r).await?,
        None => match repo.head_commit().await? {
            Some(id) => id,
            None => bail!("no commits yet on this branch; commit something first"),
        },
    };
    for (id, c) in repo.log(start, max_count).await? {
        if as_json {
            print_json(&commit_json(&id, &c))?;
        } else if oneline {
            println!("{} {}", id.short(), c.summary());
        } else {
            println!("commit {id}");
            if c.parents.len() > 1 {
                let ps: Vec<String> = c.parents.iter().map(|p| p.short()).collect();
                println!("Merge: {}", ps.join(" "));
            }
            println!("Author: {}", c.author);
            println!("Date:   {}", render::date(c.time));
            println!();
            for line in c.message.lines() {
                println!("    {line}");
            }
            println!();
        }
    }
    Ok(())
}

async fn show(repo: &Repository, rev: &str, as_json: bool) -> Result<()> {
    let id = repo.resolve(rev).await?;
    let c = Commit::read(repo.objects(), &id).await?;
    let parent_tables = repo.commit_tables(c.parents.first().copied()).await?;
    let changes = repo.compare_tables(&parent_tables, &c.tables).await?;
    if as_json {
        let mut v = commit_json(&id, &c);
        v["changes"] = changes.iter().map(status_json).collect::<Vec<_>>().into();
        return print_json(&v);
    }
    println!("commit {id}");
    println!("Author: {}", c.author);
    println!("Date:   {}", render::date(c.time));
    println!();
    for line in c.message.lines() {
        println!("    {line}");
    }
    println!();
    if changes.is_empty() {
        println!("No table changes.");
    } else {
        let mut t = render::table(&["table", "state", "added", "removed", "modified"]);
        for s in &changes {
            t.add_row(vec![
                s.table.clone(),
                s.state.to_string(),
                s.rows.added.to_string(),
                s.rows.removed.to_string(),
                s.rows.modified.to_string(),
            ]);
        }
        println!("{t}");
    }
    Ok(())
}

async fn list_refs(repo: &Repository, kind: RefKind, as_json: bool) -> Result<()> {
    let current = match repo.head().await? {
        Head::Branch(b) if kind == RefKind::Branch => Some(b),
        _ => None,
    };
    for (name, id) in repo.list_refs(kind).await? {
        let is_current = current.as_deref() == Some(name.as_str());
        if as_json {
            print_json(&json!({ "name": name, "commit": id, "current": is_current }))?;
        } else {
            let mark = if is_current { "*" } else { " " };
            println!("{mark} {name:<24} {}", id.short());
        }
    }
    Ok(())
}

/// `branch` and `tag`: list, create at a start point, or delete.
async fn manage_ref(
    repo: &Repository,
    kind: RefKind,
    name: Option<String>,
    start: Option<String>,
    delete: Option<String>,
    as_json: bool,
) -> Result<()> {
    let noun = kind.noun();
    if let Some(d) = delete {
        let old = repo.delete_ref(kind, &d).await?;
        println!("Deleted {noun} {d} (was {})", old.short());
        return Ok(());
    }
    match name {
        None => list_refs(repo, kind, as_json).await,
        Some(n) => {
            let at = repo.create_ref(kind, &n, start.as_deref()).await?;
            println!("Created {noun} {n} at {}", at.short());
            Ok(())
        }
    }
}

async fn checkout(
    repo: &Repository,
    target: &str,
    create: Option<String>,
    force: bool,
) -> Result<()> {
    if let Some(start) = create {
        repo.ensure_clean(force).await?;
        repo.create_ref(RefKind::Branch, target, Some(&start))
            .await?;
    }
    match repo.checkout(target, force).await? {
        Head::Branch(b) => println!("Switched to branch '{b}'"),
        Head::Detached(id) => println!("HEAD is now at {} (detached)", id.short()),
    }
    Ok(())
}

async fn export(
    repo: &Repository,
    table: &str,
    out: &Path,
    format: Option<String>,
    rev: Option<String>,
) -> Result<()> {
    let format = match format {
        Some(f) => ExportFormat::parse(&f)?,
        None => match ExportFormat::from_path(out) {
            Some(f) => f,
            None if out.as_os_str() == "-" => ExportFormat::Csv,
            None => bail!(
                "cannot tell the format from '{}'; pass --format parquet|csv|jsonl|arrow",
                out.display()
            ),
        },
    };
    let (_, obj) = repo.table(table, rev.as_deref()).await?;
    let dest = if out.as_os_str() == "-" {
        Destination::Stdout
    } else {
        Destination::File(out.to_path_buf())
    };
    let bar = Bar::new(&format!("exporting {table}"));
    let result = strata_engine::export::export(repo.objects(), &obj, &dest, format, &bar).await;
    bar.done();
    let rows = result?;
    if let Destination::File(p) = dest {
        eprintln!("Exported {rows} rows of '{table}' to {}", p.display());
    }
    Ok(())
}

async fn merge(
    repo: &Repository,
    rev: &str,
    author: &str,
    opts: &strata_engine::merging::MergeOptions,
) -> Result<()> {
    use strata_engine::merging::MergeOutcome;
    match repo.merge(rev, author, opts).await? {
        MergeOutcome::UpToDate => println!("Already up to date."),
        MergeOutcome::FastForward(id) => println!("Fast-forward to {}", id.short()),
        MergeOutcome::Merged(id) => println!("Merged '{rev}': commit {}", id.short()),
        MergeOutcome::Conflicts(n, tables) => bail!(
            "merge of '{rev}' stopped with {n} conflicting rows in {}; see them with 'strata conflicts show', \
             resolve with 'strata conflicts resolve --ours|--theirs' (or import/delete the rows), then 'strata commit'; \
             'strata merge --abort' undoes the merge",
            tables.join(", ")
        ),
    }
    Ok(())
}

async fn conflicts(repo: &Repository, cmd: ConflictsCommand) -> Result<()> {
    use strata_engine::merging::Side;
    match cmd {
        ConflictsCommand::Show { table, json } => {
            let Some(state) = repo.merge_state().await? else {
                bail!("there is no merge in progress");
            };
            for (name, tc) in &state.tables {
                if table.as_ref().is_some_and(|t| t != name) {
                    continue;
                }
                for c in &tc.conflicts {
                    if json {
                        print_json(&json!({
                            "table": name, "kind": c.kind, "key": c.key, "cells": c.cells,
                        }))?;
                    } else {
                        let key: Vec<String> =
                            c.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        println!("{name} ({}) {}", key.join(", "), c.kind);
                        for cell in &c.cells {
                            println!(
                                "    {}: base {} | ours {} | theirs {}",
                                cell.column, cell.base, cell.ours, cell.theirs
                            );
                        }
                    }
                }
            }
        }
        ConflictsCommand::Resolve {
            table,
            ours,
            theirs: _,
        } => {
            let side = if ours { Side::Ours } else { Side::Theirs };
            let n = repo.resolve_conflicts(table.as_deref(), side).await?;
            let left = repo.merge_state().await?.map_or(0, |m| m.conflict_count());
            println!(
                "Resolved {n} conflicts with {} version; {left} remain{}",
                if ours { "our" } else { "their" },
                if left == 0 {
                    ": run 'strata commit' to finish the merge"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}
