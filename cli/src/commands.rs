//! One function per command: call the library, render for people or as JSON.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use strata::{
    Author, CheckoutOptions, ExportFormat, FileFormat, Head, MergeOptions, MergeOutcome,
    Repository, Side, WriteMode, WriteOptions,
};

use crate::args::{Cli, Command, ConflictsCommand, ImportArgs, TableCommand};
use crate::render::{self, count, Bar};

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
        let repo = Repository::init(&target).await?;
        outln!(
            "Initialized empty strata repository in {}",
            repo.data_dir().display()
        )?;
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
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        let mut command = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command, "strata", &mut out);
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        std::io::Write::write_all(&mut lock, &out)?;
        return Ok(());
    }
    if let Command::Config {
        key,
        value,
        global: true,
        unset,
        list,
    } = &cli.command
    {
        return config_global(key.as_deref(), value.as_deref(), *unset, *list);
    }
    if let Some((from, options)) = cli.command.reads_remote() {
        let source = Source::Remote(Box::new(open_from(&cwd, from, options).await?));
        return read_command(&source, cli.command).await;
    }
    let repo = Repository::open(&cwd).await?;
    match cli.command {
        Command::Config {
            key,
            value,
            unset,
            list,
            ..
        } => config(&repo, key, value, unset, list).await,
        Command::Init { .. } | Command::Completions { .. } => unreachable!("handled above"),
        Command::Import(args) => import(&repo, args).await,
        Command::Delete {
            table,
            keys,
            format,
        } => delete(&repo, &table, &keys, format).await,
        Command::Table(cmd) => table(&repo, cmd).await,
        Command::Status {
            json,
            short,
            porcelain,
        } => {
            if short || porcelain {
                status_short(&repo, short).await
            } else {
                status(&repo, json).await
            }
        }
        cmd @ (Command::Diff { .. } | Command::Log { .. } | Command::Export { .. }) => {
            read_command(&Source::Local(&repo), cmd).await
        }
        Command::Commit {
            message,
            author,
            amend,
        } => commit(&repo, message.as_deref(), author, amend).await,
        Command::Reflog {
            name,
            max_count,
            json,
        } => {
            crate::output::start_pager();
            crate::history::reflog(&repo, name.as_deref(), max_count, json).await
        }
        Command::RevParse {
            revs,
            short,
            abbrev_ref,
        } => crate::history::rev_parse(&repo, &revs, short, abbrev_ref).await,
        Command::MergeBase { a, b, is_ancestor } => {
            crate::history::merge_base(&repo, &a, &b, is_ancestor).await
        }
        Command::Revert {
            rev,
            mainline,
            author,
        } => crate::history::pick(&repo, &rev, true, mainline, false, author).await,
        Command::CherryPick {
            rev,
            mainline,
            record_origin,
            author,
        } => crate::history::pick(&repo, &rev, false, mainline, record_origin, author).await,
        Command::Show { rev, stat, json } => {
            crate::output::start_pager();
            show(&repo, &rev, stat, json).await
        }
        Command::Iceberg {
            table,
            rev,
            remote,
            json,
        } => {
            let view = repo
                .iceberg(&table, &strata::ViewOptions { rev, remote })
                .await?;
            if json {
                return print_json(&view);
            }
            outln!("{}", view.metadata)?;
            Ok(())
        }
        Command::LsFiles {
            table,
            rev,
            remote,
            json,
        } => {
            let files = repo
                .ls_files(&table, &strata::ViewOptions { rev, remote })
                .await?;
            if json {
                return print_json(&files);
            }
            // A chunk with a delta names it in a column of its own (only shown when one has).
            let deltas = files.iter().any(|f| f.delta.is_some());
            let mut header = vec!["uri", "rows", "bytes", "key min", "key max"];
            if deltas {
                header.push("delta");
            }
            let mut out = render::table(&header);
            for f in files {
                let mut row = vec![
                    f.uri,
                    f.rows.to_string(),
                    f.bytes.to_string(),
                    f.key_min.join(", "),
                    f.key_max.join(", "),
                ];
                if deltas {
                    row.push(f.delta.unwrap_or_default());
                }
                out.add_row(row);
            }
            outln!("{out}")?;
            Ok(())
        }
        Command::Branch {
            name,
            start,
            delete,
            force_delete,
            rename,
            all,
            remotes,
            json,
        } => {
            if rename {
                return rename_branch(&repo, name, start).await;
            }
            if all || remotes {
                let mut refs = if all {
                    repo.branches().await?
                } else {
                    Vec::new()
                };
                for mut r in repo.remote_branches().await? {
                    if all {
                        r.name = format!("remotes/{}", r.name);
                    }
                    refs.push(r);
                }
                return list_refs(&refs, json);
            }
            let (delete, force) = match (delete, force_delete) {
                (Some(d), _) => (Some(d), false),
                (None, Some(d)) => (Some(d), true),
                (None, None) => (None, false),
            };
            branch(&repo, name, start, delete, force, json).await
        }
        Command::Checkout {
            target,
            start,
            create,
            force,
        } => {
            if start.is_some() && !create {
                bail!("checkout takes one branch or revision; to create a branch at a start point use 'checkout -b NAME START'");
            }
            let opts = CheckoutOptions {
                create_from: create.then(|| start.unwrap_or_else(|| "HEAD".into())),
                force,
            };
            let left = match repo.head().await? {
                Head::Detached(id) => Some(id),
                Head::Branch(_) => None,
            };
            let head = repo.checkout(&target, &opts).await?;
            if let Some(left) = left.filter(|l| head != Head::Detached(*l)) {
                warn_left_behind(&repo, left).await?;
            }
            match head {
                Head::Branch(b) => outln!("Switched to branch '{b}'")?,
                Head::Detached(id) => outln!("HEAD is now at {} (detached)", id.short())?,
            }
            Ok(())
        }
        Command::Tag {
            name,
            rev,
            delete,
            annotate: _,
            message,
            json,
        } => tag(&repo, name, rev, delete, message, json).await,
        Command::Reset { hard: _, rev } => {
            let id = repo.reset_hard(&rev).await?;
            let c = repo.commit_info(&id.to_hex()).await?;
            outln!("HEAD is now at {} {}", id.short(), c.summary())?;
            Ok(())
        }
        Command::Merge {
            rev,
            message,
            no_ff,
            ff_only,
            abort,
            author,
        } => {
            if abort {
                repo.merge_abort().await?;
                outln!("Merge aborted; the working tables are as they were before it")?;
                return Ok(());
            }
            let rev = rev.context("name the branch or revision to merge")?;
            let opts = MergeOptions {
                message,
                no_ff,
                ff_only,
                author: author.as_deref().map(Author::parse).transpose()?,
            };
            let outcome = repo.merge(&rev, &opts).await?;
            print_merge(&outcome, &format!("Merged '{rev}'"))?;
            match outcome.conflict_error(&format!("merge of '{rev}'"), false) {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
        Command::Conflicts(cmd) => conflicts(&repo, cmd).await,
        Command::Sync(cmd) => crate::sync::run(&repo, cmd).await,
    }
}

/// Prints one value as a line of JSON.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(crate::output::Out);
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// What a merge or pull did, for people (nothing for a merge that stopped on conflicts:
/// its error says it).
pub(crate) fn print_merge(outcome: &MergeOutcome, merged: &str) -> Result<()> {
    match outcome {
        MergeOutcome::UpToDate => outln!("Already up to date.")?,
        MergeOutcome::FastForward { commit } => outln!("Fast-forward to {}", commit.short())?,
        MergeOutcome::Merged { commit } => outln!("{merged}: commit {}", commit.short())?,
        MergeOutcome::Conflicts { .. } => {}
        MergeOutcome::Rebased { commit, replayed } => outln!(
            "Rebased {}: now at {}",
            count(*replayed as u64, "commit"),
            commit.short()
        )?,
    }
    Ok(())
}

fn write_mode(mode: Option<&str>) -> Result<Option<WriteMode>> {
    Ok(mode.map(WriteMode::parse).transpose()?)
}

fn file_format(format: Option<&str>) -> Result<Option<FileFormat>> {
    Ok(format.map(FileFormat::parse).transpose()?)
}

async fn import(repo: &Repository, args: ImportArgs) -> Result<()> {
    let opts = WriteOptions {
        mode: write_mode(args.mode.as_deref())?,
        primary_key: args.primary_key,
        chunk_rows: args.chunk_rows,
        types: args.types,
        compression: args.compression,
        delimiter: args.delimiter,
    };
    let format = file_format(args.format.as_deref())?;
    let bar = Bar::new(&format!("importing {}", args.table));
    let result = match format {
        Some(format) if args.file.as_os_str() == "-" => {
            let stdin = Box::new(std::io::stdin());
            repo.import_reader(&args.table, stdin, "standard input", format, &opts, &bar)
                .await
        }
        _ => {
            repo.import_file(&args.table, &args.file, format, &opts, &bar)
                .await
        }
    };
    bar.done();
    let s = result?;
    for note in &s.notes {
        eprintln!("note: {note}");
    }
    if let Some(change) = &s.schema_change {
        eprintln!("note: replacing {} changes its schema: {change}", s.table);
    }
    let verb = if s.created { "Created" } else { "Updated" };
    outln!(
        "{verb} table '{}': {} inserted, {} updated; {} in all ({} written, {} reused)",
        s.table,
        s.inserted,
        s.updated,
        count(s.rows, "row"),
        count(s.chunks_written, "chunk"),
        s.chunks_reused
    )?;
    Ok(())
}

async fn delete(repo: &Repository, table: &str, keys: &Path, format: Option<String>) -> Result<()> {
    let format = file_format(format.as_deref())?;
    let bar = Bar::new(&format!("deleting from {table}"));
    let result = match format {
        Some(format) if keys.as_os_str() == "-" => {
            let stdin = Box::new(std::io::stdin());
            repo.delete_from_reader(table, stdin, "standard input", format, &bar)
                .await
        }
        _ => repo.delete_from_file(table, keys, format, &bar).await,
    };
    bar.done();
    let s = result?;
    out!(
        "Deleted {} from '{}'; {} left",
        count(s.deleted, "row"),
        s.table,
        count(s.rows, "row")
    )?;
    if s.missing > 0 {
        out!(" ({} matched no row)", count(s.missing, "key"))?;
    }
    outln!()?;
    Ok(())
}

/// Runs a command that only reads: from the repository, or from a remote in place
/// (`--remote`).
async fn read_command(source: &Source<'_>, command: Command) -> Result<()> {
    match command {
        Command::Export {
            table,
            out,
            format,
            rev,
            row_group_rows,
            delimiter,
            compression,
            ..
        } => {
            let text = TextOptions {
                delimiter,
                compression,
            };
            export(source, &table, &out, format, rev, row_group_rows, text).await
        }
        Command::Table(TableCommand::List { rev, json, .. }) => {
            list_tables(source, rev.as_deref(), json).await
        }
        Command::Table(TableCommand::Show {
            table, rev, json, ..
        }) => show_table(source, &table, rev.as_deref(), json).await,
        Command::Diff {
            from,
            to,
            table,
            stat,
            json,
            exit_code,
            quiet,
            filter,
            ..
        } => {
            let opts = strata::DiffOptions {
                from,
                to,
                table,
                stat,
                filter,
            };
            if !quiet {
                crate::output::start_pager();
            }
            let changed = crate::diff::run(source, &opts, json, quiet).await?;
            if changed && (exit_code || quiet) {
                return Err(crate::Exit(1).into());
            }
            Ok(())
        }
        Command::Log {
            rev,
            oneline,
            all,
            graph,
            decorate,
            no_decorate,
            max_count,
            author,
            since,
            until,
            table,
            json,
            ..
        } => {
            let opts = strata::LogOptions {
                rev,
                all,
                limit: max_count,
                author,
                since,
                until,
                table,
            };
            let style = crate::history::LogStyle {
                oneline,
                graph,
                decorate: match (decorate, no_decorate) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                json,
            };
            crate::output::start_pager();
            crate::history::log(source, &opts, &style).await
        }
        _ => unreachable!("only reading commands come here"),
    }
}

/// Where a reading command reads: the repository, or a remote read in place (`--remote`).
pub(crate) enum Source<'a> {
    Local(&'a Repository),
    Remote(Box<strata::RemoteRepository>),
}

impl Source<'_> {
    async fn tables(&self, rev: Option<&str>) -> strata::Result<Vec<strata::TableSummary>> {
        match self {
            Source::Local(r) => r.tables(rev).await,
            Source::Remote(r) => r.tables(rev).await,
        }
    }

    async fn table(&self, name: &str, rev: Option<&str>) -> strata::Result<strata::TableInfo> {
        match self {
            Source::Local(r) => r.table(name, rev).await,
            Source::Remote(r) => r.table(name, rev).await,
        }
    }

    pub(crate) async fn diff(&self, opts: &strata::DiffOptions) -> strata::Result<strata::Diff> {
        match self {
            Source::Local(r) => r.diff(opts).await,
            Source::Remote(r) => r.diff(opts).await,
        }
    }

    pub(crate) async fn log(
        &self,
        opts: &strata::LogOptions,
    ) -> strata::Result<Vec<strata::CommitInfo>> {
        match self {
            Source::Local(r) => r.log_filtered(opts).await,
            Source::Remote(r) => r.log(opts).await,
        }
    }

    pub(crate) async fn ref_labels(
        &self,
    ) -> strata::Result<std::collections::BTreeMap<strata::ObjectId, Vec<String>>> {
        match self {
            Source::Local(r) => r.ref_labels().await,
            Source::Remote(r) => r.ref_labels().await,
        }
    }

    async fn export(
        &self,
        table: &str,
        rev: Option<&str>,
        out: Option<&Path>,
        opts: strata::ExportOptions,
        progress: &dyn strata::Progress,
    ) -> strata::Result<u64> {
        match self {
            Source::Local(r) => r.export(table, rev, out, opts, progress).await,
            Source::Remote(r) => r.export(table, rev, out, opts, progress).await,
        }
    }
}

/// Opens what `--remote` names: a remote configured in the repository around `cwd`, else a
/// folder (relative to `cwd`) or a URL.
async fn open_from(cwd: &Path, from: &str, options: &[String]) -> Result<strata::RemoteRepository> {
    if let Ok(repo) = Repository::open(cwd).await {
        if repo.remotes().await?.iter().any(|r| r.name == from) {
            if !options.is_empty() {
                bail!(
                    "'{from}' is a configured remote, which keeps its own options; give --option with a URL instead"
                );
            }
            return Ok(repo.read_remote(from).await?);
        }
    }
    if !from.contains("://") && !from.contains('/') && !cwd.join(from).exists() {
        bail!(
            "'{from}' is neither a remote configured in this repository nor a folder; give a configured remote's name (inside its repository), a folder or a URL such as s3://bucket/prefix"
        );
    }
    let options = crate::sync::parse_options(options)?;
    let url = if from.contains("://") {
        from.to_string()
    } else {
        cwd.join(from).to_string_lossy().into_owned()
    };
    Ok(strata::RemoteRepository::open(&url, &options).await?)
}

async fn list_tables(source: &Source<'_>, rev: Option<&str>, json: bool) -> Result<()> {
    let tables = source.tables(rev).await?;
    if json {
        for t in &tables {
            print_json(t)?;
        }
    } else if tables.is_empty() {
        outln!("No tables yet; add one with 'strata import TABLE FILE --primary-key COLS'.")?;
    } else {
        let mut out = render::table(&["table", "rows", "columns", "key"]);
        for t in &tables {
            out.add_row(vec![
                t.table.clone(),
                t.rows.to_string(),
                t.columns.to_string(),
                t.primary_key.join(", "),
            ]);
        }
        outln!("{out}")?;
    }
    Ok(())
}

async fn show_table(source: &Source<'_>, table: &str, rev: Option<&str>, json: bool) -> Result<()> {
    let t = source.table(table, rev).await?;
    if json {
        return print_json(&t);
    }
    outln!("table:       {}", t.table)?;
    outln!("id:          {}", t.id)?;
    outln!("primary key: {}", t.primary_key.join(", "))?;
    outln!("rows:        {}", t.rows)?;
    outln!("chunks:      {} ({} bytes)", t.chunks, t.bytes)?;
    let mut out = render::table(&["column", "type", "nullable"]);
    for c in &t.columns {
        out.add_row(vec![
            c.name.clone(),
            c.data_type.clone(),
            c.nullable.to_string(),
        ]);
    }
    outln!("{out}")?;
    Ok(())
}

async fn table(repo: &Repository, cmd: TableCommand) -> Result<()> {
    match cmd {
        TableCommand::List { rev, json, .. } => {
            list_tables(&Source::Local(repo), rev.as_deref(), json).await?
        }
        TableCommand::Show {
            table, rev, json, ..
        } => show_table(&Source::Local(repo), &table, rev.as_deref(), json).await?,
        TableCommand::Drop { table } => {
            repo.drop_table(&table).await?;
            outln!("Dropped table '{table}' (commit to record it)")?;
        }
        TableCommand::Rename { from, to } => {
            repo.rename_table(&from, &to).await?;
            outln!("Renamed table '{from}' to '{to}' (commit to record it)")?;
        }
        TableCommand::Alter { table, changes } => {
            let r = repo.alter_table(&table, &changes.0).await?;
            outln!("Altered table '{table}' (commit to record it):")?;
            for c in &changes.0 {
                outln!("  {c}")?;
            }
            outln!(
                "{} rewritten in {}",
                count(r.rows, "row"),
                count(r.chunks_written, "chunk")
            )?;
        }
    }
    Ok(())
}

async fn status(repo: &Repository, as_json: bool) -> Result<()> {
    let s = repo.status().await?;
    if as_json {
        return print_json(&s);
    }
    match (&s.branch, &s.detached) {
        (Some(b), _) => outln!("On branch {b}")?,
        (None, Some(id)) => outln!("HEAD detached at {}", id.short())?,
        (None, None) => {}
    }
    if let Some(u) = &s.upstream {
        let name = &u.name;
        match (u.ahead, u.behind) {
            (Some(0), Some(0)) => outln!("Your branch is up to date with '{name}'.")?,
            (Some(a), Some(0)) => outln!(
                "Your branch is ahead of '{name}' by {}; 'strata push' publishes them.",
                count(a as u64, "commit")
            )?,
            (Some(0), Some(b)) => outln!(
                "Your branch is behind '{name}' by {}; 'strata pull' brings them in.",
                count(b as u64, "commit")
            )?,
            (Some(a), Some(b)) => outln!(
                "Your branch and '{name}' have diverged: {a} and {b} different commits; 'strata pull' merges them."
            )?,
            _ => outln!("Your branch is based on '{name}', but the upstream is gone.")?,
        }
    }
    if let Some(m) = &s.merging {
        outln!("You are merging '{}'.", m.name)?;
        if m.conflicts.values().sum::<usize>() > 0 {
            for (t, n) in &m.conflicts {
                let rows = if *n == 1 { "row" } else { "rows" };
                outln!("  {t}: {n} conflicting {rows}")?;
            }
            outln!("  (see them with 'strata conflicts show'; resolve with 'strata conflicts resolve --ours|--theirs'")?;
            outln!(
                "   or by importing/deleting the rows; 'strata merge --abort' undoes the merge)"
            )?;
        } else {
            outln!("  All conflicts resolved: run 'strata commit' to finish the merge.")?;
        }
    }
    if s.head.is_none() {
        outln!("No commits yet")?;
    }
    if s.tables.is_empty() && s.merging.is_none() {
        outln!("nothing to commit, working tables clean")?;
        return Ok(());
    }
    if s.tables.is_empty() {
        return Ok(());
    }
    outln!("Changes not yet committed:")?;
    outln!("{}", render::changes(&s.tables, true))?;
    Ok(())
}

/// `status --short` and `--porcelain`: `XY TABLE` lines, as git's short form (`A ` added,
/// `D ` removed, ` M` modified, `S` in the first column when the schema changed); the short
/// form starts with `## BRANCH`.
async fn status_short(repo: &Repository, with_branch: bool) -> Result<()> {
    let s = repo.status().await?;
    if with_branch {
        match &s.branch {
            Some(b) => outln!("## {b}")?,
            None => outln!("## HEAD (no branch)")?,
        }
    }
    for t in &s.tables {
        let code = match (t.state, t.schema_changed) {
            ("added", _) => "A ",
            ("removed", _) => "D ",
            (_, true) => "SM",
            _ => " M",
        };
        outln!("{code} {}", t.table)?;
    }
    if let Some(m) = &s.merging {
        for (t, n) in &m.conflicts {
            if *n > 0 {
                outln!("UU {t}")?;
            }
        }
    }
    Ok(())
}

async fn commit(
    repo: &Repository,
    message: Option<&str>,
    author: Option<String>,
    amend: bool,
) -> Result<()> {
    let author = author.as_deref().map(Author::parse).transpose()?;
    let c = match (amend, message) {
        (true, m) => repo.amend(m, author.as_ref()).await?,
        (false, Some(m)) => repo.commit(m, author.as_ref()).await?,
        (false, None) => bail!("give a commit message with -m"),
    };
    let branch = c.branch.as_deref().unwrap_or("detached HEAD");
    let info = repo.commit_info(&c.id.to_hex()).await?;
    outln!("[{branch} {}] {}", c.id.short(), info.summary())?;
    if let Some(a) = &c.guessed_author {
        eprintln!(
            "note: no identity is set, so this commit's author is {a}; set yours with\n  strata config --global user.name \"Your Name\"\n  strata config --global user.email you@example.com"
        );
    }
    Ok(())
}

fn print_config(entries: &[strata::ConfigEntry], key: Option<&str>, list: bool) -> Result<()> {
    if list || key.is_none() {
        for e in entries {
            let scope = match e.scope {
                strata::ConfigScope::Repository => "repository",
                strata::ConfigScope::Global => "global",
            };
            outln!("{}={} ({scope})", e.key, e.value)?;
        }
        return Ok(());
    }
    let key = key.unwrap_or_default();
    if !strata::CONFIG_KEYS.contains(&key) {
        bail!(
            "unknown setting '{key}'; the settings are {}",
            strata::CONFIG_KEYS.join(", ")
        );
    }
    match entries.iter().find(|e| e.key == key) {
        Some(e) => outln!("{}", e.value)?,
        None => bail!("{key} is not set"),
    }
    Ok(())
}

fn config_global(key: Option<&str>, value: Option<&str>, unset: bool, list: bool) -> Result<()> {
    match (key, value, unset) {
        (Some(k), Some(v), false) => Ok(strata::set_global_config(k, Some(v))?),
        (Some(k), None, true) => Ok(strata::set_global_config(k, None)?),
        (None, _, true) => bail!("--unset needs the setting to remove"),
        _ => print_config(&strata::global_config()?, key, list),
    }
}

async fn config(
    repo: &Repository,
    key: Option<String>,
    value: Option<String>,
    unset: bool,
    list: bool,
) -> Result<()> {
    let scope = strata::ConfigScope::Repository;
    match (key.as_deref(), value.as_deref(), unset) {
        (Some(k), Some(v), false) => Ok(repo.config_set(k, Some(v), scope).await?),
        (Some(k), None, true) => Ok(repo.config_set(k, None, scope).await?),
        (None, _, true) => bail!("--unset needs the setting to remove"),
        _ => print_config(&repo.config_list().await?, key.as_deref(), list),
    }
}

/// Warns, as git does, when leaving a detached HEAD leaves commits no branch or tag reaches.
async fn warn_left_behind(repo: &Repository, left: strata::ObjectId) -> Result<()> {
    let behind = repo.unreferenced_commits(&left.to_hex()).await?;
    if behind.is_empty() {
        return Ok(());
    }
    eprintln!(
        "warning: you are leaving {} behind, not on any branch:",
        count(behind.len() as u64, "commit")
    );
    for c in behind.iter().take(5) {
        eprintln!("  {} {}", c.id.short(), c.summary());
    }
    if behind.len() > 5 {
        eprintln!("  ... and {} more", behind.len() - 5);
    }
    eprintln!(
        "To keep {}, make a branch there: strata branch NAME {}",
        if behind.len() == 1 { "it" } else { "them" },
        left.short()
    );
    Ok(())
}

async fn show(repo: &Repository, rev: &str, stat: bool, as_json: bool) -> Result<()> {
    let d = repo.show(rev).await?;
    let note = repo.tag_note(rev).await?;
    if as_json {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            detail: &'a strata::CommitDetail,
            #[serde(skip_serializing_if = "Option::is_none")]
            tag: Option<&'a strata::TagNote>,
        }
        return print_json(&Shown {
            detail: &d,
            tag: note.as_ref(),
        });
    }
    if let Some(n) = &note {
        outln!("tag {rev}")?;
        outln!("Tagger: {}", n.tagger)?;
        outln!("Date:   {}", render::date(n.time))?;
        outln!()?;
        for line in n.message.lines() {
            outln!("{line}")?;
        }
        outln!()?;
    }
    let c = &d.commit;
    outln!("commit {}", c.id)?;
    outln!("Author: {}", c.author)?;
    outln!("Date:   {}", render::date(c.time))?;
    outln!()?;
    for line in c.message.lines() {
        outln!("    {line}")?;
    }
    outln!()?;
    if d.changes.is_empty() {
        outln!("No table changes.")?;
        return Ok(());
    }
    outln!("{}", render::changes(&d.changes, false))?;
    // The changed rows, as `diff PARENT COMMIT` shows them (a first commit's rows are all
    // new: `strata export` shows them).
    if let (false, Some(parent)) = (stat, c.parents.first()) {
        outln!()?;
        let opts = strata::DiffOptions {
            from: Some(parent.to_hex()),
            to: Some(c.id.to_hex()),
            ..Default::default()
        };
        crate::diff::run(&Source::Local(repo), &opts, false, false).await?;
    }
    Ok(())
}

fn list_refs(refs: &[strata::RefInfo], as_json: bool) -> Result<()> {
    for r in refs {
        if as_json {
            print_json(r)?;
        } else {
            let mark = if r.current { "*" } else { " " };
            match &r.note {
                Some(n) => outln!(
                    "{mark} {:<24} {} {}",
                    r.name,
                    r.commit.short(),
                    n.message.lines().next().unwrap_or("")
                )?,
                None => outln!("{mark} {:<24} {}", r.name, r.commit.short())?,
            }
        }
    }
    Ok(())
}

async fn rename_branch(repo: &Repository, a: Option<String>, b: Option<String>) -> Result<()> {
    let (from, to) = match (a, b) {
        (Some(from), Some(to)) => (from, to),
        (Some(to), None) => match repo.head().await? {
            strata::Head::Branch(current) => (current, to),
            strata::Head::Detached(_) => {
                bail!("HEAD is detached: name the branch to rename, 'strata branch -m OLD NEW'")
            }
        },
        (None, _) => bail!("name the new branch name: 'strata branch -m [OLD] NEW'"),
    };
    let at = repo.rename_branch(&from, &to).await?;
    outln!("Renamed branch {from} to {to} (at {})", at.short())?;
    Ok(())
}

async fn branch(
    repo: &Repository,
    name: Option<String>,
    start: Option<String>,
    delete: Option<String>,
    force: bool,
    as_json: bool,
) -> Result<()> {
    if let Some(d) = delete {
        let old = repo.delete_branch(&d, force).await?;
        outln!("Deleted branch {d} (was {})", old.short())?;
        return Ok(());
    }
    match name {
        None => list_refs(&repo.branches().await?, as_json),
        Some(n) => {
            let at = repo.create_branch(&n, start.as_deref()).await?;
            outln!("Created branch {n} at {}", at.short())?;
            Ok(())
        }
    }
}

async fn tag(
    repo: &Repository,
    name: Option<String>,
    rev: Option<String>,
    delete: Option<String>,
    message: Option<String>,
    as_json: bool,
) -> Result<()> {
    if let Some(d) = delete {
        let old = repo.delete_tag(&d).await?;
        outln!("Deleted tag {d} (was {})", old.short())?;
        return Ok(());
    }
    match name {
        None => list_refs(&repo.tags().await?, as_json),
        Some(n) => {
            let at = match &message {
                Some(m) => {
                    repo.create_annotated_tag(&n, rev.as_deref(), m, None)
                        .await?
                }
                None => repo.create_tag(&n, rev.as_deref()).await?,
            };
            outln!("Created tag {n} at {}", at.short())?;
            Ok(())
        }
    }
}

/// An export's `--delimiter` and `--compression`.
struct TextOptions {
    delimiter: Option<u8>,
    compression: Option<strata::Compression>,
}

async fn export(
    repo: &Source<'_>,
    table: &str,
    out: &Path,
    format: Option<String>,
    rev: Option<String>,
    row_group_rows: Option<u64>,
    text: TextOptions,
) -> Result<()> {
    let stdout = out.as_os_str() == "-";
    if !stdout && out.is_dir() {
        bail!(
            "'{}' is a folder; name the file to write, such as {}",
            out.display(),
            out.join(format!("{table}.parquet")).display()
        );
    }
    let format = match format {
        Some(f) => ExportFormat::parse(&f)?,
        None => match ExportFormat::from_path(out) {
            Some(f) => f,
            None if stdout => ExportFormat::Csv,
            None => bail!(
                "cannot tell the format from '{}'; pass --format parquet|csv|jsonl|arrow",
                out.display()
            ),
        },
    };
    if row_group_rows.is_some() && format != ExportFormat::Parquet {
        bail!(
            "--row-group-rows applies to Parquet files, and {} is written as {}: leave it out, or pass --format parquet",
            if stdout {
                "standard output".to_string()
            } else {
                format!("'{}'", out.display())
            },
            format.name()
        );
    }
    let shown = || {
        if stdout {
            "standard output".to_string()
        } else {
            format!("'{}'", out.display())
        }
    };
    // What the name implies (`.tsv`, `.gz`, `.zst`) is taken only for the format it names.
    let named = !stdout && ExportFormat::from_path(out) == Some(format);
    if text.delimiter.is_some() && format != ExportFormat::Csv {
        bail!(
            "--delimiter applies to CSV files, and {} is written as {}: leave it out, or pass --format csv",
            shown(),
            format.name()
        );
    }
    let compression = match text.compression {
        Some(c) => c,
        None if named => strata::Compression::from_path(out),
        None => strata::Compression::None,
    };
    if compression != strata::Compression::None
        && !matches!(format, ExportFormat::Csv | ExportFormat::Jsonl)
    {
        bail!(
            "{} would be compressed, but a {} file is not compressed as a whole (Parquet compresses inside the file): leave out the compression and the .gz or .zst of the name, or write csv or jsonl",
            shown(),
            format.name()
        );
    }
    let delimiter = text
        .delimiter
        .or_else(|| named.then(|| strata::delimiter_from_path(out)).flatten());
    let opts = strata::ExportOptions {
        format,
        row_group_rows: row_group_rows.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        delimiter,
        compression,
    };
    let bar = Bar::new(&format!("exporting {table}"));
    let dest = (!stdout).then_some(out);
    let result = repo.export(table, rev.as_deref(), dest, opts, &bar).await;
    bar.done();
    let rows = result?;
    if !stdout {
        eprintln!("Exported {rows} rows of '{table}' to {}", out.display());
    }
    Ok(())
}

async fn conflicts(repo: &Repository, cmd: ConflictsCommand) -> Result<()> {
    match cmd {
        ConflictsCommand::Show { table, json } => {
            let Some(list) = repo.conflicts(table.as_deref()).await? else {
                bail!("there is no merge in progress");
            };
            for c in &list {
                if json {
                    print_json(c)?;
                } else {
                    let key: Vec<String> = c.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    outln!("{} ({}) {}", c.table, key.join(", "), c.kind)?;
                    for cell in &c.cells {
                        outln!(
                            "    {}: base {} | ours {} | theirs {}",
                            cell.column,
                            cell.base,
                            cell.ours,
                            cell.theirs
                        )?;
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
            let (n, left) = repo.resolve_conflicts(table.as_deref(), side).await?;
            outln!(
                "Resolved {} with {} version; {left} remain{}",
                count(n as u64, "conflict"),
                if ours { "our" } else { "their" },
                if left == 0 {
                    ": run 'strata commit' to finish the merge"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(())
}
