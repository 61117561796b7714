//! A small harness: temporary folders, a runner for the real `strata` binary, and snapshots
//! of `.strata` to show that a failing command changed nothing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use tempfile::TempDir;

/// The author every test commit is made by.
pub const AUTHOR: &str = "Test <test@example.com>";
/// The time every test commit is made at (2023-11-14 22:13:20 UTC).
pub const COMMIT_TIME: i64 = 1_700_000_000;

/// The path of the binary under test.
pub fn strata_bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

/// A `strata` command with a reproducible environment, run in `cwd`.
pub fn strata_command<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Command {
    let mut cmd = Command::new(strata_bin());
    cmd.args(args)
        .current_dir(cwd)
        .env("STRATA_AUTHOR", AUTHOR)
        .env("STRATA_COMMIT_TIME", COMMIT_TIME.to_string())
        // The account's settings of whoever runs the tests are not the tests' business.
        .env("STRATA_CONFIG", cwd.join(".no-account-settings.json"))
        .env_remove("STRATA_LOG")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        // Colour and paging are each test's choice.
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("STRATA_PAGER")
        .env_remove("PAGER");
    cmd
}

/// Runs `strata` with `args` in `cwd` and waits for it.
pub fn run_in<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Output {
    let shown: Vec<String> = args.iter().map(|a| format!("{:?}", a.as_ref())).collect();
    let out = strata_command(cwd, args)
        .output()
        .expect("the strata binary should start");
    Output::of(format!("strata {}", shown.join(" ")), out)
}

/// What a finished command printed and how it exited.
pub struct Output {
    pub command: String,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub status: ExitStatus,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  exit: {:?}\n  stdout: {}\n  stderr: {}",
            self.command,
            self.status.code(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

impl Output {
    /// What a finished process printed, shown as `command` in messages.
    pub fn of(command: String, out: std::process::Output) -> Output {
        Output {
            command,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stdout_bytes: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            status: out.status,
        }
    }

    /// Asserts the command succeeded; shows everything it printed when it did not.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.status.success(), "expected success:\n{self:?}");
        self
    }

    /// Asserts the command failed; returns its standard error.
    #[track_caller]
    pub fn fails(self) -> String {
        assert!(
            !self.status.success(),
            "expected the command to fail:\n{self:?}"
        );
        self.stderr
    }

    /// Asserts the command failed with the usage-error status (2); returns its standard error.
    #[track_caller]
    pub fn usage_error(self) -> String {
        assert_eq!(
            self.status.code(),
            Some(2),
            "expected a usage error:\n{self:?}"
        );
        self.stderr
    }

    /// Asserts the command failed the way a refused command should: exit status 1, nothing
    /// on standard output and exactly one line on standard error, `strata: error: ...`.
    /// Returns that line.
    #[track_caller]
    pub fn fails_with_one_line(self) -> String {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit status 1:\n{self:?}"
        );
        assert!(
            self.stdout.is_empty(),
            "expected nothing on stdout:\n{self:?}"
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr:\n{self:?}");
        assert!(
            lines[0].starts_with("strata: error: "),
            "expected the line to start with 'strata: error: ':\n{self:?}"
        );
        lines[0].to_string()
    }

    /// Standard output as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{self:?}"))
    }

    /// Standard output as JSON Lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e}):\n{self:?}"))
            })
            .collect()
    }

    /// The lines of standard output.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Asserts that `line` mentions every one of `parts`.
#[track_caller]
pub fn assert_mentions(line: &str, parts: &[&str]) {
    let missing: Vec<&&str> = parts.iter().filter(|p| !line.contains(**p)).collect();
    assert!(
        missing.is_empty(),
        "the message does not mention {missing:?}:\n  {line}"
    );
}

/// One entry of a snapshot: a folder or a file with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// Every folder and file under a folder, by relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Entry>);

impl Snapshot {
    /// Reads the whole tree under `root` (an absent `root` is an empty snapshot).
    pub fn of(root: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        if root.exists() {
            walk(root, root, &mut map);
        }
        Snapshot(map)
    }

    /// The entries whose relative path starts with one of `prefixes`.
    pub fn only(&self, prefixes: &[&str]) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .filter(|(p, _)| prefixes.iter().any(|pre| p.starts_with(pre)))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect(),
        )
    }

    /// Files (not folders) whose relative path starts with `prefix`.
    pub fn files_under(&self, prefix: &str) -> Vec<PathBuf> {
        self.0
            .iter()
            .filter(|(p, e)| p.starts_with(prefix) && matches!(e, Entry::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// A description of how `after` differs from this snapshot (empty when equal).
    pub fn differences(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (p, e) in &self.0 {
            match after.0.get(p) {
                None => out.push(format!("removed: {}", p.display())),
                Some(a) if a != e => out.push(format!("changed: {}", p.display())),
                Some(_) => {}
            }
        }
        for p in after.0.keys() {
            if !self.0.contains_key(p) {
                out.push(format!("added: {}", p.display()));
            }
        }
        out
    }

    /// Asserts that `after` is the same tree, byte for byte.
    #[track_caller]
    pub fn assert_same(&self, after: &Snapshot, what: &str) {
        let diff = self.differences(after);
        assert!(
            diff.is_empty(),
            "{what} changed the repository:\n  {}",
            diff.join("\n  ")
        );
    }
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<PathBuf, Entry>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a folder entry should be readable");
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("entries lie under the root")
            .to_path_buf();
        let meta = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("a symlink should be readable");
            map.insert(rel, Entry::Symlink(target));
        } else if meta.is_dir() {
            map.insert(rel, Entry::Dir);
            walk(root, &path, map);
        } else {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            map.insert(rel, Entry::File(bytes));
        }
    }
}

/// A temporary folder, removed when dropped; usually holding a repository.
pub struct Dir {
    tmp: TempDir,
}

impl Dir {
    /// An empty folder, not a repository.
    pub fn empty() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("strata-e2e-")
                .tempdir()
                .expect("a temporary folder should be creatable"),
        }
    }

    /// A folder with a new, empty repository.
    pub fn repo() -> Dir {
        let dir = Dir::empty();
        dir.strata(&["init"]).ok();
        dir
    }

    /// A repository with one committed table `people` holding [`PEOPLE_CSV`].
    pub fn with_people() -> Dir {
        let dir = Dir::repo();
        dir.write("people.csv", PEOPLE_CSV);
        dir.strata(&["import", "people", "people.csv", "--primary-key", "id"])
            .ok();
        dir.strata(&["commit", "-m", "add people"]).ok();
        dir
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A path inside the folder.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// Runs `strata` in this folder.
    pub fn strata<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run_in(self.path(), args)
    }

    /// A `strata` command in this folder, to be started by the caller.
    /// Runs strata here with one more environment variable set.
    pub fn strata_env<S: AsRef<OsStr>>(&self, args: &[S], key: &str, value: &OsStr) -> Output {
        let shown: Vec<String> = args.iter().map(|a| format!("{:?}", a.as_ref())).collect();
        let out = self
            .command(args)
            .env(key, value)
            .output()
            .expect("the strata binary should start");
        Output::of(format!("{key}={value:?} strata {}", shown.join(" ")), out)
    }

    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        strata_command(self.path(), args)
    }

    /// Runs `strata` in this folder with `input` piped into its standard input.
    pub fn strata_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        use std::io::Write as _;
        let shown: Vec<String> = args.iter().map(|a| format!("{:?}", a.as_ref())).collect();
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the strata binary should start");
        let mut stdin = child.stdin.take().expect("standard input is piped");
        // A command that fails before reading closes the pipe: not the test's failure.
        let _ = stdin.write_all(input);
        drop(stdin);
        let out = child
            .wait_with_output()
            .expect("the strata binary should finish");
        Output::of(format!("... | strata {}", shown.join(" ")), out)
    }

    /// Writes a file (making its folders) and returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Reads a file as bytes.
    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        let path = self.join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Reads a file as text.
    pub fn read_string(&self, rel: impl AsRef<Path>) -> String {
        String::from_utf8(self.read(rel)).expect("the file should be UTF-8")
    }

    /// A snapshot of the whole `.strata` folder.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.join(".strata"))
    }

    /// Runs a command that must be refused: exit status 1, one line on stderr and the
    /// `.strata` folder unchanged byte for byte. Returns the error line.
    #[track_caller]
    pub fn refused<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let before = self.snapshot();
        let out = self.strata(args);
        let command = out.command.clone();
        let line = out.fails_with_one_line();
        before.assert_same(&self.snapshot(), &command);
        line
    }

    /// Runs a command that must be refused as a usage error: exit status 2 and the `.strata`
    /// folder unchanged byte for byte. Returns standard error.
    #[track_caller]
    pub fn refused_usage<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let before = self.snapshot();
        let out = self.strata(args);
        let command = out.command.clone();
        let err = out.usage_error();
        before.assert_same(&self.snapshot(), &command);
        err
    }

    /// The id of the commit a revision names, as `strata log --json -n 1 REV` reports it.
    #[track_caller]
    pub fn rev_id(&self, rev: &str) -> String {
        let out = self.strata(&["log", "--json", "-n", "1", rev]).ok();
        let commits = out.json_lines();
        assert_eq!(commits.len(), 1, "expected one commit:\n{out:?}");
        commits[0]["id"]
            .as_str()
            .expect("a commit id is a string")
            .to_string()
    }

    /// A table exported as CSV to standard output (working version, or at `rev`).
    #[track_caller]
    pub fn export_csv(&self, table: &str, rev: Option<&str>) -> String {
        let mut args = vec!["export", table, "-"];
        if let Some(r) = rev {
            args.extend(["--rev", r]);
        }
        self.strata(&args).ok().stdout
    }

    /// Every chunk file under `.strata/chunks`.
    pub fn chunk_files(&self) -> Vec<PathBuf> {
        self.snapshot()
            .files_under("chunks")
            .into_iter()
            .map(|p| self.join(".strata").join(p))
            .collect()
    }

    /// Every object file under `.strata/objects`.
    pub fn object_files(&self) -> Vec<PathBuf> {
        self.snapshot()
            .files_under("objects")
            .into_iter()
            .map(|p| self.join(".strata").join(p))
            .collect()
    }
}

/// The object id a file under `.strata/objects` or `.strata/chunks` is stored for.
pub fn object_id_of(path: &Path) -> String {
    let dir = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .expect("an object file lies in a two-digit folder");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("an object file has a name");
    let rest = name.strip_suffix(".parquet").unwrap_or(name);
    format!("{dir}{rest}")
}

/// Flips every bit of the byte in the middle of a file.
pub fn flip_a_byte(path: &Path) {
    let mut bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The rows of the `people` table every test starts from; exports of it are byte-identical.
pub const PEOPLE_CSV: &str = "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.0\n";

/// The cells of the line of a bordered human table that starts with `first` (borders dropped).
#[track_caller]
pub fn table_row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    for line in text.lines() {
        let cells: Vec<&str> = line
            .split_whitespace()
            .filter(|c| !c.chars().all(|ch| "│|┆".contains(ch)))
            .collect();
        if cells.first() == Some(&first) {
            return cells;
        }
    }
    panic!("no row starting with {first:?} in:\n{text}");
}
