//! Creating repositories and finding them from other folders.

use crate::harness::*;

#[test]
fn init_creates_an_empty_repository_on_branch_main() {
    let dir = Dir::empty();
    let out = dir.strata(&["init"]).ok();
    assert_mentions(&out.stdout, &["Initialized empty strata repository in"]);
    assert!(
        dir.join(".strata/strata.json").is_file(),
        "init should write the repository marker"
    );
    let status = dir.strata(&["status"]).ok();
    assert_mentions(
        &status.stdout,
        &["On branch main", "No commits yet", "nothing to commit"],
    );
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["branch"], "main");
    assert_eq!(json["head"], serde_json::Value::Null);
    assert_eq!(json["tables"], serde_json::json!([]));
    let tables = dir.strata(&["table", "list"]).ok();
    assert_mentions(&tables.stdout, &["No tables yet"]);
}

#[test]
fn init_with_a_folder_creates_the_repository_in_that_folder() {
    let dir = Dir::empty();
    let out = dir.strata(&["init", "data"]).ok();
    let expected = dir.join("data").join(".strata");
    assert!(
        expected.join("strata.json").is_file(),
        "expected a repository at {}; the folder now holds {:?}\n{out:?}",
        expected.display(),
        Snapshot::of(dir.path()).0.keys().collect::<Vec<_>>()
    );
    dir.strata(&["-C", "data", "status"]).ok();
}

#[test]
fn init_twice_is_refused_and_changes_nothing() {
    let dir = Dir::repo();
    let line = dir.refused(&["init"]);
    assert_mentions(&line, &["already exists"]);
}

#[test]
fn commands_run_in_a_subfolder_find_the_repository_above() {
    let dir = Dir::with_people();
    std::fs::create_dir_all(dir.join("a/b")).expect("subfolders should be creatable");
    let out = run_in(&dir.join("a/b"), &["export", "people", "-"]).ok();
    assert_eq!(out.stdout, PEOPLE_CSV);
}

#[test]
fn dash_c_runs_a_command_as_if_started_in_another_folder() {
    let dir = Dir::with_people();
    let elsewhere = Dir::empty();
    let repo = dir.path().to_str().expect("temporary paths are UTF-8");
    let out = elsewhere
        .strata(&["-C", repo, "export", "people", "-"])
        .ok();
    assert_eq!(out.stdout, PEOPLE_CSV);
    let log = elsewhere.strata(&["-C", repo, "log", "--oneline"]).ok();
    assert_eq!(log.lines().len(), 1);
    assert!(
        !elsewhere.join(".strata").exists(),
        "-C must not create anything in the folder strata was started in"
    );
    std::fs::create_dir_all(dir.join("deep/er")).expect("subfolders should be creatable");
    let sub = dir.join("deep/er");
    let sub = sub.to_str().expect("temporary paths are UTF-8");
    let status = elsewhere.strata(&["-C", sub, "status"]).ok();
    assert_mentions(&status.stdout, &["On branch main"]);
}

#[test]
fn dash_c_with_init_creates_the_repository_in_that_folder() {
    let dir = Dir::empty();
    let target = dir.join("made-by-c");
    std::fs::create_dir_all(&target).expect("the folder should be creatable");
    let arg = target.to_str().expect("temporary paths are UTF-8");
    let out = dir.strata(&["-C", arg, "init"]).ok();
    assert!(
        target.join(".strata/strata.json").is_file(),
        "expected a repository in {}\n{out:?}",
        target.display()
    );
    assert!(!dir.join(".strata").exists());
}
