//! Damaged repositories: a flipped byte in any stored object is detected by the command that
//! reads it, which fails with one line naming the object.

use std::path::PathBuf;

use crate::harness::*;

/// The object file of the commit HEAD names.
fn head_commit_file(dir: &Dir) -> PathBuf {
    let id = dir.rev_id("HEAD");
    dir.join(".strata/objects").join(&id[..2]).join(&id[2..])
}

/// The object file of the working version of `table`.
fn table_file(dir: &Dir, table: &str) -> (String, PathBuf) {
    let show = dir.strata(&["table", "show", table, "--json"]).ok().json();
    let id = show["id"].as_str().expect("a table id").to_string();
    let path = dir.join(".strata/objects").join(&id[..2]).join(&id[2..]);
    (id, path)
}

#[test]
fn a_flipped_byte_in_a_chunk_fails_the_export_naming_the_chunk() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    assert_eq!(chunks.len(), 1, "one small table is one chunk");
    let id = object_id_of(&chunks[0]);
    flip_a_byte(&chunks[0]);
    for args in [
        &["export", "people", "-"][..],
        &["export", "people", "out.csv", "--rev", "HEAD"],
        &["show"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
    assert!(
        !dir.join("out.csv").exists(),
        "a failed export must not leave a file"
    );
}

#[test]
fn a_flipped_byte_in_a_chunk_fails_an_upsert_that_must_rewrite_it() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    let id = object_id_of(&chunks[0]);
    flip_a_byte(&chunks[0]);
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n");
    let line = dir
        .strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_flipped_byte_in_a_table_object_fails_table_list_naming_it() {
    let dir = Dir::with_people();
    let (id, path) = table_file(&dir, "people");
    flip_a_byte(&path);
    for args in [
        &["table", "list"][..],
        &["table", "show", "people"],
        &["export", "people", "-"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
}

#[test]
fn a_flipped_byte_in_a_commit_fails_log_naming_it() {
    let dir = Dir::with_people();
    let id = dir.rev_id("HEAD");
    flip_a_byte(&head_commit_file(&dir));
    for args in [
        &["log"][..],
        &["show", "main"],
        &["export", "people", "-", "--rev", "HEAD"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
}

#[test]
fn a_corrupt_commit_named_by_its_full_id_is_reported_as_corrupt_not_unknown() {
    let dir = Dir::with_people();
    let id = dir.rev_id("HEAD");
    flip_a_byte(&head_commit_file(&dir));
    let line = dir.strata(&["log", &id]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_flipped_byte_in_an_index_node_fails_the_export_naming_it() {
    let dir = Dir::with_people();
    let (table_id, _) = table_file(&dir, "people");
    let commit_id = dir.rev_id("HEAD");
    let others: Vec<PathBuf> = dir
        .object_files()
        .into_iter()
        .filter(|p| {
            let id = object_id_of(p);
            id != table_id && id != commit_id
        })
        .collect();
    assert_eq!(
        others.len(),
        1,
        "one small table has one index node: {others:?}"
    );
    let id = object_id_of(&others[0]);
    flip_a_byte(&others[0]);
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_missing_chunk_fails_the_export_naming_it() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    let id = object_id_of(&chunks[0]);
    std::fs::remove_file(&chunks[0]).expect("the chunk should be removable");
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is missing")]);
}

#[test]
fn the_advice_in_a_corrupt_object_message_names_a_command_that_exists() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    flip_a_byte(&chunks[0]);
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    let advised = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `command` in the message: {line}"));
    let words: Vec<&str> = advised.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"strata"), "{line}");
    let out = dir.strata(&words[1..]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "the message advises `{advised}`, which strata does not know:\n{out:?}"
    );
}

#[test]
fn a_corrupt_working_state_file_is_reported_with_its_path() {
    let dir = Dir::with_people();
    dir.write(".strata/local/WORKING", "{ not json");
    let line = dir.strata(&["status"]).fails_with_one_line();
    assert_mentions(&line, &["WORKING", "corrupt"]);
}

#[test]
fn a_repository_written_by_a_newer_format_is_refused_with_advice_to_upgrade() {
    let dir = Dir::with_people();
    dir.write(
        ".strata/strata.json",
        r#"{"format":99,"kind":"strata-repository"}"#,
    );
    let before = dir.snapshot();
    let line = dir.strata(&["status"]).fails_with_one_line();
    assert_mentions(&line, &["format 99", "upgrade strata"]);
    before.assert_same(&dir.snapshot(), "a refused command");
}
