//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Version control for tables, with remotes in object storage.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 on success, 1 when the command failed, 2 on a usage error.\n\
Run 'strata help <command>' (or 'strata <command> --help') for the options of a command."
)]
pub struct Cli {
    /// Run as if strata was started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR", id = "chdir")]
    pub chdir: Option<PathBuf>,

    /// Show what strata does (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty repository.
    Init {
        /// Where to create it (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Import rows from a CSV, Parquet or JSON Lines file into a table.
    Import(ImportArgs),
    /// Delete the rows whose keys a file lists.
    Delete {
        table: String,
        /// File with the key columns (CSV with header, Parquet or JSON Lines), or - for
        /// standard input (then --format is required).
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// Format of the keys file (default: from its extension).
        #[arg(long, value_parser = input_format, required_if_eq("keys", "-"))]
        format: Option<String>,
    },
    /// List, show, drop, rename or alter tables.
    #[command(subcommand)]
    Table(TableCommand),
    /// Show which tables changed since HEAD, with rows added, removed and modified.
    Status {
        #[arg(long)]
        json: bool,
        /// One line per changed table: `A` added, `D` removed, `M` modified, then its name.
        #[arg(short, long, conflicts_with = "json")]
        short: bool,
        /// The short form, meant for scripts (stable across versions; no branch line).
        #[arg(long, conflicts_with_all = ["json", "short"])]
        porcelain: bool,
    },
    /// Show changed rows and cells: working vs HEAD, REV vs working, or FROM vs TO.
    Diff {
        from: Option<String>,
        to: Option<String>,
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// Counts per table instead of rows.
        #[arg(long)]
        stat: bool,
        /// Exit with status 1 if there are differences, 0 if none.
        #[arg(long)]
        exit_code: bool,
        /// Print nothing; exit with status 1 if there are differences (implies --exit-code).
        #[arg(long, short = 'q', conflicts_with = "json")]
        quiet: bool,
        /// JSON Lines, one object per changed row (format in README).
        #[arg(long)]
        json: bool,
        /// Only the changed rows for which EXPR holds, e.g. "price > 10 and to_status =
        /// 'open'" (from_COL / to_COL: the old / new value; syntax in README).
        #[arg(long = "where", value_name = "EXPR", value_parser = row_filter)]
        filter: Option<strata::RowFilter>,
        /// Read a remote in place, without a clone: a configured remote's name, a folder, or a
        /// URL (s3://bucket/prefix, gs://, az://). Works outside a repository.
        #[arg(long, value_name = "REMOTE|URL")]
        remote: Option<String>,
        /// A store option KEY=VALUE for a URL given to --remote (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", requires = "remote", value_parser = crate::sync::remote_option)]
        options: Vec<String>,
    },
    /// Get or set who commits: user.name and user.email, for this repository or (--global)
    /// every repository of this account.
    Config {
        /// user.name or user.email.
        key: Option<String>,
        /// The value to set.
        value: Option<String>,
        /// The account's setting (every repository) rather than this repository's.
        #[arg(long)]
        global: bool,
        /// Remove the setting.
        #[arg(long, conflicts_with = "value")]
        unset: bool,
        /// List the settings and where each comes from.
        #[arg(long, short = 'l', conflicts_with_all = ["key", "value", "unset"])]
        list: bool,
    },
    /// Print a shell completion script: `strata completions bash > /etc/bash_completion.d/strata`,
    /// `strata completions zsh > "${fpath[1]}/_strata"`, `strata completions fish > ~/.config/fish/completions/strata.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Record all working changes as a new commit.
    Commit {
        /// The commit message.
        #[arg(short, long, required_unless_present = "amend")]
        message: Option<String>,
        /// Author as "Name <email>" (default: $STRATA_AUTHOR, else user.name and user.email;
        /// with --amend, the amended commit's author).
        #[arg(long)]
        author: Option<String>,
        /// Replace the last commit by one with the working tables (and the new message, if
        /// given), on the same parents.
        #[arg(long)]
        amend: bool,
    },
    /// Make a new commit that undoes what a commit changed.
    Revert {
        rev: String,
        /// For a merge commit: the parent (1, 2, ...) whose side is kept.
        #[arg(short = 'm', long = "mainline", value_name = "N")]
        mainline: Option<usize>,
        #[arg(long)]
        author: Option<String>,
    },
    /// Apply what a commit changed on top of HEAD, as a new commit with its message and author.
    CherryPick {
        rev: String,
        /// For a merge commit: the parent (1, 2, ...) its change is taken against.
        #[arg(short = 'm', long = "mainline", value_name = "N")]
        mainline: Option<usize>,
        /// Add "(cherry picked from commit ID)" to the message.
        #[arg(short = 'x')]
        record_origin: bool,
        /// Author of the new commit (default: the picked commit's).
        #[arg(long)]
        author: Option<String>,
    },
    /// Where a branch or tag (default: the current branch) pointed, newest first; entry N
    /// is the revision NAME@{N}, so a reset or a forced pull can be undone.
    Reflog {
        name: Option<String>,
        /// Show at most N entries.
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        max_count: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Print the commit id each revision names.
    RevParse {
        #[arg(required = true)]
        revs: Vec<String>,
        /// Abbreviated ids.
        #[arg(long)]
        short: bool,
        /// For HEAD: the name of the branch checked out (HEAD when detached).
        #[arg(long)]
        abbrev_ref: bool,
    },
    /// Print the best common ancestor of two revisions (the base a merge uses).
    MergeBase {
        a: String,
        b: String,
        /// Print nothing: exit 0 if A is in the history of B, 1 if not.
        #[arg(long)]
        is_ancestor: bool,
    },
    /// Show the commit history.
    Log {
        /// Start from this revision (default: HEAD); A..B: in B's history but not A's;
        /// A...B: in either's but not both.
        rev: Option<String>,
        /// One line per commit.
        #[arg(long)]
        oneline: bool,
        /// Start from every branch, tag, remote-tracking branch and HEAD.
        #[arg(long)]
        all: bool,
        /// Draw the history's lines beside the commits.
        #[arg(long)]
        graph: bool,
        /// Show the branches and tags at each commit (default: on a terminal).
        #[arg(long, overrides_with = "no_decorate")]
        decorate: bool,
        /// Do not show branch and tag names.
        #[arg(long)]
        no_decorate: bool,
        /// Show at most N commits.
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        max_count: Option<usize>,
        /// Only commits whose author contains this text (any case).
        #[arg(long, value_name = "TEXT")]
        author: Option<String>,
        /// Only commits made at or after this time: YYYY-MM-DD, "YYYY-MM-DD HH:MM:SS" (UTC)
        /// or seconds since the Unix epoch.
        #[arg(long, value_name = "DATE", value_parser = time_arg)]
        since: Option<i64>,
        /// Only commits made at or before this time (as --since).
        #[arg(long, value_name = "DATE", value_parser = time_arg)]
        until: Option<i64>,
        /// Only commits that changed this table.
        #[arg(long, value_name = "TABLE")]
        table: Option<String>,
        /// JSON Lines, one commit per line.
        #[arg(long)]
        json: bool,
        /// Read a remote in place, without a clone: a configured remote's name, a folder, or a
        /// URL (s3://bucket/prefix, gs://, az://). Works outside a repository.
        #[arg(long, value_name = "REMOTE|URL")]
        remote: Option<String>,
        /// A store option KEY=VALUE for a URL given to --remote (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", requires = "remote", value_parser = crate::sync::remote_option)]
        options: Vec<String>,
    },
    /// Print the Iceberg metadata of a table at a branch or tag, for DuckDB, Spark, Trino,
    /// Polars and pyiceberg to read in place (published first if missing).
    Iceberg {
        table: String,
        /// A branch or tag (default: the current branch).
        #[arg(long)]
        rev: Option<String>,
        /// The view on this remote rather than in the repository.
        #[arg(long)]
        remote: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a table's chunk files (absolute URIs) with their rows, key bounds and deltas.
    LsFiles {
        table: String,
        /// Any revision locally; a branch or tag with --remote (default: the current branch).
        #[arg(long)]
        rev: Option<String>,
        /// The files on this remote rather than in the repository.
        #[arg(long)]
        remote: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a commit and what it changed.
    Show {
        #[arg(default_value = "HEAD")]
        rev: String,
        /// Only the table of changes, not the changed rows.
        #[arg(long)]
        stat: bool,
        #[arg(long)]
        json: bool,
    },
    /// List branches, create one, rename one with -m, or delete one with -d (-D if unmerged).
    Branch {
        /// Name of the branch to create (with -m: the old and new names).
        name: Option<String>,
        /// Where it starts (default: HEAD); with -m, the new name.
        start: Option<String>,
        /// Delete the named branch; refused when its commits are in neither HEAD's history
        /// nor a remote branch's.
        #[arg(short, long, value_name = "NAME", conflicts_with_all = ["name", "start", "force_delete", "rename"])]
        delete: Option<String>,
        /// Delete the named branch even if it is not merged.
        #[arg(short = 'D', value_name = "NAME", conflicts_with_all = ["name", "start", "rename"])]
        force_delete: Option<String>,
        /// Rename a branch: `branch -m OLD NEW`, or `branch -m NEW` for the current one.
        #[arg(short = 'm', long = "move", requires = "name")]
        rename: bool,
        /// List the remote-tracking branches too (`remotes/REMOTE/BRANCH`).
        #[arg(short = 'a', long = "all", conflicts_with_all = ["name", "start", "delete", "force_delete", "rename"])]
        all: bool,
        /// List only the remote-tracking branches (`REMOTE/BRANCH`).
        #[arg(short = 'r', long = "remotes", conflicts_with_all = ["name", "start", "delete", "force_delete", "rename", "all"])]
        remotes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Switch to a branch, or to any revision (detached).
    Checkout {
        /// Branch or revision (with -b: the new branch's name).
        target: String,
        /// With -b: where the new branch starts (default: HEAD).
        start: Option<String>,
        /// Create a branch named TARGET and switch to it.
        #[arg(short = 'b')]
        create: bool,
        /// Discard uncommitted changes (and a merge in progress).
        #[arg(short, long)]
        force: bool,
    },
    /// List tags, create one (annotated with -a -m), or delete one with -d.
    Tag {
        name: Option<String>,
        /// Revision to tag (default: HEAD).
        rev: Option<String>,
        #[arg(short, long, value_name = "NAME", conflicts_with_all = ["name", "rev"])]
        delete: Option<String>,
        /// Make an annotated tag: it records who tagged, when, and the message (-m).
        #[arg(short = 'a', long = "annotate", requires_all = ["name", "message"])]
        annotate: bool,
        /// The annotated tag's message (implies -a).
        #[arg(short = 'm', long, requires = "name", conflicts_with = "delete")]
        message: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move the current branch to a revision and discard working changes.
    Reset {
        /// Required: discard working changes.
        #[arg(long, required = true)]
        hard: bool,
        #[arg(default_value = "HEAD")]
        rev: String,
    },
    /// Join another branch's history into the current branch.
    Merge {
        /// Branch or revision to merge.
        #[arg(required_unless_present = "abort")]
        rev: Option<String>,
        /// Message of the merge commit.
        #[arg(short, long)]
        message: Option<String>,
        /// Make a merge commit even when a fast-forward is possible.
        #[arg(long, conflicts_with = "ff_only")]
        no_ff: bool,
        /// Refuse unless the merge is a fast-forward.
        #[arg(long)]
        ff_only: bool,
        /// Undo a merge that stopped on conflicts.
        #[arg(long, conflicts_with_all = ["rev", "message", "no_ff", "ff_only"])]
        abort: bool,
        #[arg(long)]
        author: Option<String>,
    },
    /// Show or resolve the conflicts of a merge in progress.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    #[command(flatten)]
    Sync(crate::sync::SyncCommand),
    /// Write a table, at any revision, to a Parquet, CSV, JSON Lines or Arrow file.
    Export {
        table: String,
        /// Output file, or - for standard output.
        out: PathBuf,
        /// parquet, csv, jsonl or arrow (default: from the extension).
        #[arg(long, value_parser = output_format)]
        format: Option<String>,
        /// The revision to export (default: the working version; with --remote, the remote's
        /// main branch, else its first).
        #[arg(long)]
        rev: Option<String>,
        /// Parquet only: write row groups of this many rows, decoding and encoding the rows
        /// again (other engines read large row groups faster). By default each chunk's pages
        /// are copied as one row group (about 16,384 rows with the default chunk size), which
        /// is much quicker to write.
        #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..))]
        row_group_rows: Option<u64>,
        /// CSV only: the field delimiter, one character, or \t or tab (default: a tab for a
        /// .tsv file, else a comma).
        #[arg(long, value_name = "C", value_parser = delimiter)]
        delimiter: Option<u8>,
        /// CSV and JSON Lines only: gzip, zstd or none (default: from the extension, .gz or
        /// .zst).
        #[arg(long, value_parser = compression)]
        compression: Option<strata::Compression>,
        /// Read a remote in place, without a clone: a configured remote's name, a folder, or a
        /// URL (s3://bucket/prefix, gs://, az://). Works outside a repository.
        #[arg(long, value_name = "REMOTE|URL")]
        remote: Option<String>,
        /// A store option KEY=VALUE for a URL given to --remote (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", requires = "remote", value_parser = crate::sync::remote_option)]
        options: Vec<String>,
    },
}

impl Command {
    /// `--remote` and its options, for a command that reads a remote in place.
    pub fn reads_remote(&self) -> Option<(&str, &[String])> {
        match self {
            Command::Export {
                remote: Some(from),
                options,
                ..
            }
            | Command::Table(TableCommand::List {
                remote: Some(from),
                options,
                ..
            })
            | Command::Table(TableCommand::Show {
                remote: Some(from),
                options,
                ..
            })
            | Command::Diff {
                remote: Some(from),
                options,
                ..
            }
            | Command::Log {
                remote: Some(from),
                options,
                ..
            } => Some((from, options)),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub table: String,
    /// The file, or - for standard input (then --format is required).
    pub file: PathBuf,
    /// Key columns, comma-separated (required to create a table).
    #[arg(long, short = 'k', value_delimiter = ',', value_name = "COLS")]
    pub primary_key: Option<Vec<String>>,
    /// create (default), replace, append or upsert.
    #[arg(long, value_parser = write_mode)]
    pub mode: Option<String>,
    /// csv, parquet or jsonl (default: from the extension, under .gz or .zst; .tsv is CSV).
    #[arg(long, value_parser = input_format, required_if_eq("file", "-"))]
    pub format: Option<String>,
    /// The field delimiter of a CSV file: one character, or \t or tab (default: a tab for
    /// .tsv files, else a comma).
    #[arg(long, value_name = "C", value_parser = delimiter)]
    pub delimiter: Option<u8>,
    /// gzip, zstd or none (default: from the extension, .gz or .zst).
    #[arg(long, value_parser = compression)]
    pub compression: Option<strata::Compression>,
    /// Average rows per chunk for a new table.
    #[arg(long, hide = true)]
    pub chunk_rows: Option<u32>,
    /// A column's type for a new table, instead of the inferred one (repeatable):
    /// int64, int32, float64, utf8, bool, date32, timestamp[us], decimal128(P, S), binary.
    #[arg(long = "type", value_name = "COL=TYPE", value_parser = column_type)]
    pub types: Vec<(String, strata::DataType)>,
}

/// Checks an import mode at parse time, so that a wrong one is a usage error.
fn write_mode(s: &str) -> Result<String, String> {
    strata::WriteMode::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn row_filter(s: &str) -> Result<strata::RowFilter, String> {
    strata::RowFilter::parse(s).map_err(|e| e.to_string())
}

fn delimiter(s: &str) -> Result<u8, String> {
    strata::parse_delimiter(s).map_err(|e| e.to_string())
}

fn compression(s: &str) -> Result<strata::Compression, String> {
    strata::Compression::parse(s).map_err(|e| e.to_string())
}

fn input_format(s: &str) -> Result<String, String> {
    strata::FileFormat::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn output_format(s: &str) -> Result<String, String> {
    strata::ExportFormat::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// A time as `log --since` takes it, in seconds since the Unix epoch (UTC).
fn time_arg(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Ok(dt.and_utc().timestamp());
        }
    }
    Err(format!(
        "'{s}' is not a time: use YYYY-MM-DD, \"YYYY-MM-DD HH:MM:SS\" (UTC) or seconds since 1970"
    ))
}

fn column_type(spec: &str) -> Result<(String, strata::DataType), String> {
    strata::parse_column_type(spec).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// List tables with their row counts.
    List {
        #[arg(long)]
        rev: Option<String>,
        #[arg(long)]
        json: bool,
        /// Read a remote in place, without a clone: a configured remote's name, a folder, or a
        /// URL (s3://bucket/prefix, gs://, az://). Works outside a repository.
        #[arg(long, value_name = "REMOTE|URL")]
        remote: Option<String>,
        /// A store option KEY=VALUE for a URL given to --remote (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", requires = "remote", value_parser = crate::sync::remote_option)]
        options: Vec<String>,
    },
    /// Show a table's columns, key and size.
    Show {
        table: String,
        #[arg(long)]
        rev: Option<String>,
        #[arg(long)]
        json: bool,
        /// Read a remote in place, without a clone: a configured remote's name, a folder, or a
        /// URL (s3://bucket/prefix, gs://, az://). Works outside a repository.
        #[arg(long, value_name = "REMOTE|URL")]
        remote: Option<String>,
        /// A store option KEY=VALUE for a URL given to --remote (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", requires = "remote", value_parser = crate::sync::remote_option)]
        options: Vec<String>,
    },
    /// Remove a table (a working change).
    Drop { table: String },
    /// Rename a table (a working change).
    Rename { from: String, to: String },
    /// Change a table's columns (a working change): the options apply in the order given,
    /// all or none; every chunk is rewritten.
    #[command(
        after_help = "Examples:\n  strata table alter people --add-column email:utf8\n  strata table alter people --add-column active:bool=true --drop-column score\n  strata table alter people --rename-column name=full_name --set-type id=int32"
    )]
    Alter {
        table: String,
        #[command(flatten)]
        changes: AlterChanges,
    },
}

/// The changes of `table alter`, in the order they were given on the command line (clap's
/// derive would group them by option).
#[derive(Debug, Clone)]
pub struct AlterChanges(pub Vec<strata::SchemaChange>);

const ALTER_OPTIONS: [&str; 4] = ["add_column", "drop_column", "rename_column", "set_type"];

impl clap::FromArgMatches for AlterChanges {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut changes: Vec<(usize, strata::SchemaChange)> = Vec::new();
        for id in ALTER_OPTIONS {
            if let (Ok(Some(values)), Some(at)) =
                (m.try_get_many::<strata::SchemaChange>(id), m.indices_of(id))
            {
                changes.extend(at.zip(values.cloned()));
            }
        }
        changes.sort_by_key(|(at, _)| *at);
        Ok(AlterChanges(changes.into_iter().map(|(_, c)| c).collect()))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for AlterChanges {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        use clap::{Arg, ArgAction, ArgGroup};
        cmd.arg(
            Arg::new("add_column")
                .long("add-column")
                .value_name("NAME:TYPE[=DEFAULT]")
                .action(ArgAction::Append)
                .value_parser(add_column)
                .help("Add a column (types as import --type takes them), null in every row or DEFAULT"),
        )
        .arg(
            Arg::new("drop_column")
                .long("drop-column")
                .value_name("NAME")
                .action(ArgAction::Append)
                .value_parser(drop_column)
                .help("Remove a column (not a key column)"),
        )
        .arg(
            Arg::new("rename_column")
                .long("rename-column")
                .value_name("OLD=NEW")
                .action(ArgAction::Append)
                .value_parser(rename_column)
                .help("Rename a column (a key column too)"),
        )
        .arg(
            Arg::new("set_type")
                .long("set-type")
                .value_name("COL=TYPE")
                .action(ArgAction::Append)
                .value_parser(set_type)
                .help("Change a column's type; every value must convert to it unchanged"),
        )
        .group(
            ArgGroup::new("changes")
                .args(ALTER_OPTIONS)
                .multiple(true)
                .required(true),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn add_column(spec: &str) -> Result<strata::SchemaChange, String> {
    let Some((name, rest)) = spec.split_once(':').filter(|(n, _)| !n.trim().is_empty()) else {
        return Err(format!(
            "'{spec}' is not NAME:TYPE or NAME:TYPE=DEFAULT (for example email:utf8)"
        ));
    };
    let (ty, default) = match rest.split_once('=') {
        Some((ty, d)) => (ty, Some(d.to_string())),
        None => (rest, None),
    };
    Ok(strata::SchemaChange::AddColumn {
        name: name.trim().to_string(),
        data_type: strata::parse_type(ty).map_err(|e| e.to_string())?,
        default,
    })
}

fn drop_column(name: &str) -> Result<strata::SchemaChange, String> {
    if name.trim().is_empty() {
        return Err("give the name of the column to drop".into());
    }
    Ok(strata::SchemaChange::DropColumn {
        name: name.trim().to_string(),
    })
}

fn rename_column(spec: &str) -> Result<strata::SchemaChange, String> {
    match spec.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok(strata::SchemaChange::RenameColumn {
                from: from.trim().to_string(),
                to: to.trim().to_string(),
            })
        }
        _ => Err(format!(
            "'{spec}' is not OLD=NEW (for example name=full_name)"
        )),
    }
}

fn set_type(spec: &str) -> Result<strata::SchemaChange, String> {
    let (column, data_type) = strata::parse_column_type(spec).map_err(|e| e.to_string())?;
    Ok(strata::SchemaChange::SetType { column, data_type })
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List conflicting cells with their base, our and their values.
    Show {
        table: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Resolve conflicts by taking our or their version of each conflicting row.
    Resolve {
        table: Option<String>,
        #[arg(long, conflicts_with = "theirs", required_unless_present = "theirs")]
        ours: bool,
        #[arg(long)]
        theirs: bool,
    },
}
