//! `--remote`: `strata export`, `table list|show`, `diff` and `log` read a remote where it lies, from
//! any folder (no repository needed), at any branch, tag or commit, seeing every push at once.

use crate::backends::Backend;
use crate::harness::{assert_mentions, Dir, Snapshot};
use crate::remote::{clone_on, items_csv, published_on};

/// A repository with `items` (three rows, tagged v1) and then a fourth row, both pushed to a
/// remote on `backend`, read in place from a folder that holds no repository.
fn exports_from_a_remote_in_place(backend: Backend) {
    let remote = backend.remote("read-in-place");
    let dir = published_on(backend, remote.plain());
    dir.strata(&["tag", "v1"]).ok();
    backend.run(&dir, &["push", "origin", "v1"]).ok();
    dir.write("more.csv", items_csv(&[(4, "dir", 4)]));
    dir.strata(&["import", "items", "more.csv", "--mode", "append"])
        .ok();
    dir.strata(&["commit", "-m", "four"]).ok();
    backend.run(&dir, &["push"]).ok();

    let reader = Dir::empty();
    let url = remote.url.as_str();
    let read = |args: &[&str]| backend.run(&reader, args).ok().stdout;
    // Default: the remote's main branch; then a tag, a commit id and an ancestor.
    assert_eq!(
        read(&["export", "items", "-", "--remote", url]),
        dir.export_csv("items", Some("main"))
    );
    assert_eq!(
        read(&["export", "items", "-", "--remote", url, "--rev", "v1"]),
        dir.export_csv("items", Some("v1"))
    );
    let main = dir.rev_id("main");
    assert_eq!(
        read(&[
            "export",
            "items",
            "-",
            "--remote",
            url,
            "--rev",
            &main[..10]
        ]),
        dir.export_csv("items", Some("main"))
    );
    assert_eq!(
        read(&["export", "items", "-", "--remote", url, "--rev", "main~1"]),
        dir.export_csv("items", Some("v1"))
    );
    backend
        .run(
            &reader,
            &["export", "items", "items.parquet", "--remote", url],
        )
        .ok();
    assert!(reader.join("items.parquet").is_file());
    let list = backend
        .run(&reader, &["table", "list", "--remote", url, "--json"])
        .ok();
    let tables = list.json_lines();
    assert_eq!(tables.len(), 1, "{list:?}");
    assert_eq!(tables[0]["table"], "items");
    assert_eq!(tables[0]["rows"], 4);
    let show = backend
        .run(
            &reader,
            &[
                "table", "show", "items", "--remote", url, "--rev", "v1", "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(show["rows"], 3);
    assert_eq!(show["primary_key"], serde_json::json!(["id"]));

    // History and changes, as the repository shows them.
    let diff = read(&["diff", "v1", "main", "--json", "--remote", url]);
    assert!(diff.contains("\"added\""), "{diff}");
    assert_eq!(
        diff,
        dir.strata(&["diff", "v1", "main", "--json"]).ok().stdout
    );
    assert_eq!(
        read(&["diff", "v1", "--stat", "--remote", url]),
        dir.strata(&["diff", "v1", "main", "--stat"]).ok().stdout
    );
    let log = read(&["log", "--oneline", "--remote", url]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert_eq!(
        log,
        dir.strata(&["log", "main", "--oneline", "--no-decorate"])
            .ok()
            .stdout
    );
    assert_eq!(
        read(&["log", "v1", "--json", "--remote", url]),
        dir.strata(&["log", "v1", "--json"]).ok().stdout
    );

    // Inside a repository, a configured remote is named.
    assert_eq!(
        backend
            .run(
                &dir,
                &["export", "items", "-", "--remote", "origin", "--rev", "v1"]
            )
            .ok()
            .stdout,
        dir.export_csv("items", Some("v1"))
    );

    // Another machine pushes: the next read sees it.
    let other = clone_on(backend, url);
    other.write("five.csv", items_csv(&[(5, "other", 5)]));
    other
        .strata(&["import", "items", "five.csv", "--mode", "append"])
        .ok();
    other.strata(&["commit", "-m", "five"]).ok();
    backend.run(&other, &["push"]).ok();
    assert_eq!(
        read(&["export", "items", "-", "--remote", url]),
        other.export_csv("items", Some("main"))
    );

    // Bad input: one line that names it; nothing written anywhere.
    let before = remote.folder.as_deref().map(Snapshot::of);
    for (args, names) in [
        (
            vec!["export", "items", "-", "--remote", url, "--rev", "nosuch"],
            vec!["nosuch"],
        ),
        (vec!["export", "nope", "-", "--remote", url], vec!["nope"]),
        (
            vec!["export", "items", "-", "--remote", url, "--rev", "HEAD"],
            vec!["HEAD", "branch, a tag or a commit"],
        ),
        (vec!["diff", "--remote", url], vec!["revisions to compare"]),
        (
            vec!["export", "items", "-", "--remote", "origin"],
            vec!["'origin'", "neither a remote configured"],
        ),
        (
            vec!["table", "list", "--remote", url, "--rev", "origin/main"],
            vec!["origin/main", "remote-tracking"],
        ),
        (
            vec!["log", "v1..main", "--remote", url],
            vec!["v1..main", "clone"],
        ),
    ] {
        let line = backend.run(&reader, &args).fails_with_one_line();
        assert_mentions(&line, &names);
    }
    if let (Some(before), Some(folder)) = (&before, remote.folder.as_deref()) {
        before.assert_same(&Snapshot::of(folder), "the remote after refused reads");
    }
    let usage = reader
        .strata(&["export", "items", "-", "-o", "region=x"])
        .usage_error();
    assert!(usage.contains("--remote"), "{usage}");
    let entries: Vec<_> = std::fs::read_dir(reader.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("items.parquet")]);
}

#[test]
fn export_and_table_read_a_folder_remote_in_place() {
    exports_from_a_remote_in_place(Backend::File);
}

#[test]
fn export_and_table_read_a_radosgw_remote_in_place() {
    exports_from_a_remote_in_place(Backend::Radosgw);
}
