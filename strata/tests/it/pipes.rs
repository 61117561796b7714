//! Imports from and exports to what is not a plain file: a named pipe (as a shell's `<(...)`
//! and `>(...)` give), a descriptor path, a symbolic link; and files that cannot be written
//! (a missing folder, a full disk).

use strata::{ExportFormat, NoProgress, WriteOptions};

use crate::common::{TestRepo, PEOPLE_CSV};

/// Makes a named pipe at `path`.
#[cfg(unix)]
fn make_pipe(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo made the pipe");
}

/// The names in a folder.
#[cfg(unix)]
fn names_in(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .expect("the folder lists")
        .map(|e| e.expect("an entry").file_name())
        .collect()
}

/// A named pipe in a new temporary folder, with a thread writing `text` into it (as a
/// shell's `<(...)` does): the pipe's path, the folder, and the writer.
#[cfg(unix)]
fn pipe_with(
    name: &str,
    text: &str,
) -> (
    std::path::PathBuf,
    tempfile::TempDir,
    std::thread::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pipe = dir.path().join(name);
    make_pipe(&pipe);
    let writer = {
        let (pipe, text) = (pipe.clone(), text.to_string());
        std::thread::spawn(move || std::fs::write(pipe, text).expect("the pipe takes the rows"))
    };
    // An import that opened the pipe again would wait for a writer for ever: after half a
    // minute writers come and go, each open ending at once, so such an import fails instead
    // of hanging the run (until the pipe is gone with its folder).
    {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(30));
            while pipe.exists() {
                let _ = std::fs::OpenOptions::new().write(true).open(&pipe);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
    }
    (pipe, dir, writer)
}

/// An import reads its input more than once (types, then rows): from a pipe, which gives its
/// bytes once, it copies them first, as from standard input, instead of finding the pipe
/// empty the second time ("column 'id' is missing").
#[cfg(unix)]
#[tokio::test]
async fn an_import_from_a_named_pipe_reads_every_row() {
    let t = TestRepo::new().await;
    let (pipe, _dir, writer) = pipe_with("people.csv", PEOPLE_CSV);
    let opts = WriteOptions {
        primary_key: Some(vec!["id".into()]),
        ..Default::default()
    };
    let report = t
        .repo()
        .import_file("people", &pipe, None, &opts, &NoProgress)
        .await
        .expect("the pipe's rows import");
    writer.join().expect("the writer finishes");
    assert_eq!(report.rows as usize, PEOPLE_CSV.lines().count() - 1);
    let with_people = TestRepo::with_people().await;
    assert_eq!(
        t.csv("people", None).await,
        with_people.csv("people", None).await
    );

    // The keys of rows to delete, from a pipe too.
    let (pipe, _dir, writer) = pipe_with("gone.csv", "id\n2\n");
    let report = t
        .repo()
        .delete_from_file("people", &pipe, None, &NoProgress)
        .await
        .expect("the pipe's keys delete");
    writer.join().expect("the writer finishes");
    assert_eq!(report.rows, 2);

    // A pipe's name that tells no format: the error says to give it.
    let (pipe, _dir, writer) = pipe_with("rows", PEOPLE_CSV);
    let err = t
        .repo()
        .import_file("other", &pipe, None, &opts, &NoProgress)
        .await
        .expect_err("no format");
    assert!(err.to_string().contains("format"), "{err}");
    // Nothing read the pipe: drain it, so that its writer finishes.
    std::fs::read_to_string(&pipe).expect("the pipe reads");
    writer.join().expect("the writer finishes");
}

/// A named pipe (a device such as `/dev/null`, or `/dev/fd/N`, alike) is written as it is:
/// an export must not replace it with a file, and its reader gets the rows.
#[cfg(unix)]
#[tokio::test]
async fn an_export_to_a_named_pipe_writes_into_the_pipe_and_leaves_it_a_pipe() {
    use std::os::unix::fs::FileTypeExt;
    let t = TestRepo::with_people().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pipe = dir.path().join("rows.pipe");
    make_pipe(&pipe);
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read_to_string(pipe).expect("the pipe reads"))
    };
    let rows = t
        .repo()
        .export("people", None, Some(&pipe), ExportFormat::Csv, &NoProgress)
        .await
        .expect("the export writes into the pipe");
    // Checked before the reader is waited for: a pipe replaced by a file would leave the
    // reader waiting for a writer for ever.
    let kind = std::fs::symlink_metadata(&pipe).expect("the pipe is there");
    assert!(kind.file_type().is_fifo(), "still a pipe, not a file");
    let text = reader.join().expect("the reader finishes");
    assert_eq!(rows as usize, PEOPLE_CSV.lines().count() - 1);
    assert_eq!(text, t.csv("people", None).await);
    assert_eq!(
        names_in(dir.path()),
        ["rows.pipe"],
        "nothing written beside it"
    );
}

/// An export to a symbolic link replaces the file the link names, and the link stays.
#[cfg(unix)]
#[tokio::test]
async fn an_export_through_a_symbolic_link_replaces_the_file_it_names_and_keeps_the_link() {
    let t = TestRepo::with_people().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let real = dir.path().join("real.csv");
    std::fs::write(&real, "old rows\n").expect("the old file writes");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&real, &link).expect("the link is made");
    t.repo()
        .export("people", None, Some(&link), ExportFormat::Csv, &NoProgress)
        .await
        .expect("the export writes through the link");
    let kind = std::fs::symlink_metadata(&link).expect("the link is there");
    assert!(kind.file_type().is_symlink(), "still a link");
    let written = std::fs::read_to_string(&real).expect("the file reads");
    assert_eq!(written, t.csv("people", None).await);
}

/// `/dev/stdout`, `/dev/fd/N` and `/proc/self/fd/N` name a file the process has open (a
/// shell's `> rows.csv`): the export goes into that open file, not into a new file renamed
/// over its name.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_export_to_an_open_files_descriptor_path_writes_into_that_file() {
    use std::os::fd::AsRawFd;
    let t = TestRepo::with_people().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("redirected.csv");
    let open = std::fs::File::create(&path).expect("the file is created");
    let by_fd = std::path::PathBuf::from(format!("/proc/self/fd/{}", open.as_raw_fd()));
    t.repo()
        .export("people", None, Some(&by_fd), ExportFormat::Csv, &NoProgress)
        .await
        .expect("the export writes into the open file");
    assert_eq!(
        names_in(dir.path()),
        ["redirected.csv"],
        "nothing written beside it"
    );
    // The open file has the rows, and it is still the file of that name.
    let written = std::fs::read_to_string(&by_fd).expect("the open file reads");
    assert_eq!(written, t.csv("people", None).await);
    use std::os::unix::fs::MetadataExt;
    let named = std::fs::metadata(&path).expect("the file is there");
    let held = open.metadata().expect("the open file's metadata");
    assert_eq!(named.ino(), held.ino(), "the same file, not a new one");
}

/// A symbolic link to a file not made yet is written through, as a shell's `>` writes: the
/// file it names is made, and the link stays.
#[cfg(unix)]
#[tokio::test]
async fn an_export_through_a_link_to_no_file_yet_makes_the_file_it_names() {
    let t = TestRepo::with_people().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let link = dir.path().join("link.csv");
    // Relative to the link's folder, through a second link.
    std::os::unix::fs::symlink("middle.csv", &link).expect("the link is made");
    std::os::unix::fs::symlink("real.csv", dir.path().join("middle.csv")).expect("a link");
    t.repo()
        .export("people", None, Some(&link), ExportFormat::Csv, &NoProgress)
        .await
        .expect("the export writes through the links");
    for name in ["link.csv", "middle.csv"] {
        let kind = std::fs::symlink_metadata(dir.path().join(name)).expect("the link is there");
        assert!(kind.file_type().is_symlink(), "{name} is still a link");
    }
    let written = std::fs::read_to_string(dir.path().join("real.csv")).expect("the file reads");
    assert_eq!(written, t.csv("people", None).await);
}

/// An export whose file cannot be made (its folder is missing, or is a file; its links form
/// a loop) says so, naming the file, and writes nothing anywhere.
#[cfg(unix)]
#[tokio::test]
async fn an_export_to_a_file_that_cannot_be_made_says_why_and_writes_nothing() {
    let t = TestRepo::with_people().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("file"), "a file\n").expect("a file writes");
    std::os::unix::fs::symlink("loop-b", dir.path().join("loop-a")).expect("a link");
    std::os::unix::fs::symlink("loop-a", dir.path().join("loop-b")).expect("a link");
    std::os::unix::fs::symlink("gone/rows.csv", dir.path().join("dangling")).expect("a link");
    let before = {
        let mut names = names_in(dir.path());
        names.sort();
        names
    };
    let cases = [
        (
            "missing/rows.csv",
            "/missing' does not exist; make it first",
        ),
        ("file/rows.csv", "/file' is not a folder"),
        ("loop-a", "its symbolic links form a loop"),
        ("dangling", "/gone' does not exist; make it first"),
    ];
    for (name, why) in cases {
        let path = dir.path().join(name);
        let err = t
            .repo()
            .export("people", None, Some(&path), ExportFormat::Csv, &NoProgress)
            .await
            .expect_err("the export is refused");
        let text = err.to_string();
        assert!(text.contains("cannot write '"), "{name}: {text}");
        assert!(text.contains(why), "{name}: {text}");
        assert!(!text.contains(".strata-export"), "{name}: {text}");
        let mut after = names_in(dir.path());
        after.sort();
        assert_eq!(after, before, "{name}: nothing written");
    }
}

/// A write that fails part way (a full disk: `/dev/full` refuses every write) is reported as
/// a failed write of the destination, with the system's reason, in every format (whichever
/// writer, Parquet's or Arrow's, it failed under).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failed_write_names_the_destination_and_the_reason_in_every_format() {
    let t = TestRepo::with_people().await;
    let full = std::path::Path::new("/dev/full");
    for format in [
        ExportFormat::Csv,
        ExportFormat::Jsonl,
        ExportFormat::Parquet,
        ExportFormat::Arrow,
    ] {
        let err = t
            .repo()
            .export("people", None, Some(full), format, &NoProgress)
            .await
            .expect_err("a full disk fails the export");
        assert_eq!(err.kind(), strata::ErrorKind::Io, "{format:?}: {err}");
        assert_eq!(
            err.to_string(),
            "cannot write /dev/full: No space left on device (os error 28)",
            "{format:?}"
        );
    }
    let kind = std::fs::metadata(full).expect("/dev/full is there");
    use std::os::unix::fs::FileTypeExt;
    assert!(kind.file_type().is_char_device(), "still a device");
}

/// A repository that cannot be made (a file stands where its folder would go) is refused as
/// a failed write of that folder, not a failed read.
#[tokio::test]
async fn an_init_where_no_folder_can_be_made_says_it_cannot_write_there() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("file"), "a file\n").expect("a file writes");
    let at = dir.path().join("file").join("repo");
    let Err(err) = strata::Repository::init(&at).await else {
        panic!("the init is refused");
    };
    assert_eq!(err.kind(), strata::ErrorKind::Io, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot write ") && text.contains("file/repo/.strata"),
        "{text}"
    );
}
