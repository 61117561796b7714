//! Commands refused for what they name or ask: unknown tables, revisions and branches,
//! folders that are not repositories, schemas and keys that do not fit. Each is refused with
//! one line and leaves the repository as it was.

use crate::harness::*;

#[test]
fn an_unknown_table_is_named_by_every_command_that_reads_one() {
    let dir = Dir::with_people();
    let commands: [&[&str]; 7] = [
        &["export", "nope", "-"],
        &["export", "nope", "out.csv", "--rev", "HEAD"],
        &["table", "show", "nope"],
        &["table", "drop", "nope"],
        &["table", "rename", "nope", "other"],
        &["delete", "nope", "--keys", "people.csv"],
        &["table", "show", "nope", "--rev", "HEAD"],
    ];
    for args in commands {
        let line = dir.refused(args);
        assert_mentions(&line, &["unknown table 'nope'", "strata table list"]);
    }
    assert!(!dir.join("out.csv").exists());
}

#[test]
fn appending_or_upserting_into_a_missing_table_is_refused_and_says_how_to_create_it() {
    let dir = Dir::with_people();
    for mode in ["append", "upsert"] {
        let line = dir.refused(&["import", "nope", "people.csv", "--mode", mode]);
        assert_mentions(&line, &["table 'nope' does not exist", "--primary-key"]);
    }
}

#[test]
fn an_unknown_revision_is_named_by_every_command_that_takes_one() {
    let dir = Dir::with_people();
    let commands: [&[&str]; 10] = [
        &["log", "nope"],
        &["show", "nope"],
        &["checkout", "nope"],
        &["reset", "--hard", "nope"],
        &["export", "people", "-", "--rev", "nope"],
        &["table", "list", "--rev", "nope"],
        &["table", "show", "people", "--rev", "nope"],
        &["branch", "feature", "nope"],
        &["tag", "v1", "nope"],
        &["checkout", "-b", "feature", "nope"],
    ];
    for args in commands {
        let line = dir.refused(args);
        assert_mentions(&line, &["unknown revision 'nope'"]);
    }
}

#[test]
fn deleting_an_unknown_branch_names_it_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["branch", "-d", "nope"]);
    assert_mentions(&line, &["unknown branch 'nope'", "strata branch"]);
}

#[test]
fn deleting_an_unknown_tag_names_it_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["tag", "-d", "nope"]);
    assert_mentions(&line, &["'nope'"]);
}

#[test]
fn naming_a_revision_before_any_commit_says_there_are_none_yet() {
    let dir = Dir::repo();
    for args in [&["show"][..], &["tag", "v1"], &["branch", "feature"]] {
        let line = dir.refused(args);
        assert_mentions(&line, &["no commits yet"]);
    }
}

#[test]
fn a_folder_that_is_not_a_repository_is_refused_by_every_command_and_left_empty() {
    let dir = Dir::empty();
    dir.write("people.csv", PEOPLE_CSV);
    let commands: [&[&str]; 9] = [
        &["status"],
        &["log"],
        &["import", "people", "people.csv", "-k", "id"],
        &["export", "people", "-"],
        &["commit", "-m", "x"],
        &["branch"],
        &["table", "list"],
        &["checkout", "main"],
        &["reset", "--hard"],
    ];
    for args in commands {
        let before = Snapshot::of(dir.path());
        let out = dir.strata(args);
        let command = out.command.clone();
        let line = out.fails_with_one_line();
        assert_mentions(&line, &["not a strata repository", "strata init"]);
        before.assert_same(&Snapshot::of(dir.path()), &command);
    }
}

#[test]
fn a_dash_c_folder_that_does_not_exist_is_refused_with_its_name() {
    let dir = Dir::empty();
    let missing = dir.join("no-such-folder");
    let arg = missing.to_str().expect("temporary paths are UTF-8");
    let out = dir.strata(&["-C", arg, "status"]);
    let line = out.fails_with_one_line();
    assert_mentions(&line, &["no-such-folder"]);
    assert!(!missing.exists());
}

#[test]
fn a_dash_c_folder_that_does_not_exist_inside_a_repository_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused(&["-C", "no-such-folder", "table", "drop", "people"]);
    assert_mentions(&line, &["no-such-folder"]);
    assert!(!dir.join("no-such-folder").exists());
}

#[test]
fn an_import_with_a_column_missing_from_the_file_names_it_and_changes_nothing() {
    let dir = Dir::with_people();
    dir.write("less.csv", "id,name\n4,dee\n");
    let line = dir.refused(&["import", "people", "less.csv", "--mode", "append"]);
    assert_mentions(
        &line,
        &["table 'people'", "less.csv", "column 'score' is missing"],
    );
}

#[test]
fn an_import_with_an_extra_column_names_it_and_changes_nothing() {
    let dir = Dir::with_people();
    dir.write("more.csv", "id,name,score,age\n4,dee,4.5,40\n");
    let line = dir.refused(&["import", "people", "more.csv", "--mode", "upsert"]);
    assert_mentions(
        &line,
        &[
            "table 'people'",
            "more.csv",
            "column 'age' is not in the table",
        ],
    );
}

#[test]
fn an_import_with_columns_both_missing_and_extra_names_all_of_them() {
    let dir = Dir::with_people();
    dir.write("other.jsonl", "{\"id\":4,\"nick\":\"d\",\"points\":1}\n");
    let line = dir.refused(&["import", "people", "other.jsonl", "--mode", "append"]);
    assert_mentions(
        &line,
        &[
            "other.jsonl",
            "column 'name' is missing",
            "column 'score' is missing",
            "column 'nick' is not in the table",
            "column 'points' is not in the table",
        ],
    );
}

#[test]
fn an_import_with_a_column_named_twice_is_refused() {
    let dir = Dir::with_people();
    dir.write("twice.csv", "id,name,score,name\n4,dee,4.5,dee\n");
    let line = dir.refused(&["import", "people", "twice.csv", "--mode", "upsert"]);
    assert_mentions(&line, &["twice.csv", "twice"]);
}

#[test]
fn an_import_into_an_existing_table_without_a_mode_is_refused_and_suggests_one() {
    let dir = Dir::with_people();
    for extra in [&[][..], &["--mode", "create"]] {
        let mut args = vec!["import", "people", "people.csv"];
        args.extend_from_slice(extra);
        let line = dir.refused(&args);
        assert_mentions(
            &line,
            &[
                "table 'people' already exists",
                "--mode append, upsert or replace",
            ],
        );
    }
}

#[test]
fn a_new_table_without_a_primary_key_is_refused_and_asks_for_one() {
    let dir = Dir::with_people();
    let line = dir.refused(&["import", "fresh", "people.csv"]);
    assert_mentions(&line, &["table 'fresh' is new", "--primary-key"]);
}

#[test]
fn a_primary_key_column_that_does_not_exist_is_named_with_the_real_columns() {
    let dir = Dir::with_people();
    let line = dir.refused(&["import", "fresh", "people.csv", "-k", "id,ident"]);
    assert_mentions(&line, &["no column 'ident'", "id, name, score"]);
}

#[test]
fn a_primary_key_column_named_twice_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused(&["import", "fresh", "people.csv", "-k", "id,id"]);
    assert_mentions(&line, &["column 'id' is named twice"]);
}

#[test]
fn a_float_primary_key_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused(&["import", "fresh", "people.csv", "-k", "score"]);
    assert_mentions(&line, &["'score'", "float"]);
}

#[test]
fn an_append_with_a_different_primary_key_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused(&[
        "import",
        "people",
        "people.csv",
        "--mode",
        "append",
        "-k",
        "name",
    ]);
    assert_mentions(&line, &["table 'people' has key id", "name"]);
}

#[test]
fn an_unknown_mode_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused_usage(&["import", "people", "people.csv", "--mode", "merge"]);
    assert_mentions(
        &line,
        &["unknown mode 'merge'", "create, replace, append or upsert"],
    );
}

#[test]
fn modes_formats_and_remote_options_are_checked_as_usage_errors() {
    let dir = Dir::with_people();
    let err = dir.refused_usage(&["import", "people", "people.csv", "--mode", "UPSERT"]);
    assert_mentions(&err, &["unknown mode 'UPSERT'"]);
    let err = dir.refused_usage(&["delete", "people", "--keys", "k.csv", "--format", "xlsx"]);
    assert_mentions(&err, &["unknown format 'xlsx'"]);
    for bad in ["colour=blue", "endpiont=http://127.0.0.1:9000", "endpoint"] {
        let err = dir.refused_usage(&["remote", "add", "origin", "s3://b/p", "-o", bad]);
        assert_mentions(&err, &[bad.split('=').next().unwrap_or(bad)]);
    }
    let err = dir.refused_usage(&["clone", "s3://b/p", "c", "-o", "colour=blue"]);
    assert_mentions(&err, &["unknown remote option 'colour'"]);
}

#[test]
fn an_endpoint_that_is_not_a_url_is_refused_as_an_option_or_from_the_environment() {
    let dir = Dir::with_people();
    for bad in [
        "endpoint=",
        "endpoint=localhost:9000",
        "aws_endpoint=ftp://x",
    ] {
        let err = dir.refused_usage(&["remote", "add", "origin", "s3://b/p", "-o", bad]);
        assert_mentions(&err, &["is not a server's URL", "http://HOST:PORT"]);
    }
    // From the environment, as object_store reads it: refused before any request.
    let before = dir.snapshot();
    let out = dir
        .command(&["remote", "add", "origin", "s3://b/p"])
        .env("AWS_ENDPOINT", "")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .output()
        .expect("strata runs");
    let out = Output::of("AWS_ENDPOINT='' strata remote add".into(), out);
    let line = out.fails_with_one_line();
    assert_mentions(
        &line,
        &["AWS_ENDPOINT=''", "is not a server's URL", "unset it"],
    );
    before.assert_same(&dir.snapshot(), "a bad endpoint in the environment");
}

#[test]
fn an_s3_option_for_a_folder_remote_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused(&[
        "remote",
        "add",
        "origin",
        "/tmp/somewhere",
        "-o",
        "endpoint=http://127.0.0.1:9000",
    ]);
    assert_mentions(
        &line,
        &["option 'endpoint' does not apply", "folder remote"],
    );
}
