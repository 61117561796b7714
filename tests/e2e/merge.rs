//! `strata merge` and `strata conflicts`: fast-forwards, merge commits, the three-way merge
//! cell by cell, conflicts shown and resolved, and `merge --abort`.

use std::io::Write;

use serde_json::{json, Value};

use crate::harness::*;

/// A repository with `people` ([`PEOPLE_CSV`]) committed on main and a branch `feature` at
/// that commit; main is checked out.
fn forked() -> Dir {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    dir
}

/// Upserts the rows of `csv` into `table` (a working change).
fn upsert(dir: &Dir, table: &str, csv: &str) {
    dir.write("change.csv", csv);
    dir.strata(&["import", table, "change.csv", "--mode", "upsert"])
        .ok();
}

/// Deletes the rows whose keys `csv` lists from `table` (a working change).
fn delete(dir: &Dir, table: &str, csv: &str) {
    dir.write("keys.csv", csv);
    dir.strata(&["delete", table, "--keys", "keys.csv"]).ok();
}

/// Checks out `branch`, makes `change`, commits it as `message` and checks out main again.
/// Returns the new commit's id.
fn commit_on(dir: &Dir, branch: &str, message: &str, change: impl FnOnce(&Dir)) -> String {
    dir.strata(&["checkout", branch]).ok();
    change(dir);
    dir.strata(&["commit", "-m", message]).ok();
    let id = dir.rev_id("HEAD");
    dir.strata(&["checkout", "main"]).ok();
    id
}

/// [`forked`], then `theirs` committed on feature and `ours` committed on main.
fn diverged(ours: impl FnOnce(&Dir), theirs: impl FnOnce(&Dir)) -> Dir {
    let dir = forked();
    commit_on(&dir, "feature", "their change", theirs);
    commit_on(&dir, "main", "our change", ours);
    dir
}

/// Both sides changed bob's score: to 8.5 on main, to 7.5 on feature.
fn score_conflict() -> Dir {
    diverged(
        |d| upsert(d, "people", "id,name,score\n2,bob,8.5\n"),
        |d| upsert(d, "people", "id,name,score\n2,bob,7.5\n"),
    )
}

/// Merges feature, which must stop on conflicts; returns the error line.
fn merge_stops(dir: &Dir) -> String {
    dir.strata(&["merge", "feature"]).fails_with_one_line()
}

/// The parents of a commit, from `log --json`.
fn parents(dir: &Dir, rev: &str) -> Vec<String> {
    let out = dir.strata(&["log", "--json", "-n", "1", rev]).ok();
    out.json_lines()[0]["parents"]
        .as_array()
        .expect("parents is a list")
        .iter()
        .map(|p| p.as_str().expect("a parent is a commit id").to_string())
        .collect()
}

/// The message of a commit, from `log --json`.
fn message(dir: &Dir, rev: &str) -> String {
    let out = dir.strata(&["log", "--json", "-n", "1", rev]).ok();
    out.json_lines()[0]["message"]
        .as_str()
        .expect("a message is a string")
        .to_string()
}

/// `status --json` as a value.
fn status_json(dir: &Dir) -> Value {
    dir.strata(&["status", "--json"]).ok().json()
}

#[test]
fn merge_fast_forwards_to_a_branch_that_is_ahead_and_takes_its_tables() {
    let dir = forked();
    let theirs = commit_on(&dir, "feature", "feature work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    let out = dir.strata(&["merge", "feature"]).ok();
    assert_eq!(out.stdout, format!("Fast-forward to {}\n", &theirs[..12]));
    assert_eq!(dir.rev_id("HEAD"), theirs);
    assert_eq!(dir.rev_id("main"), theirs);
    assert_eq!(
        dir.export_csv("people", None),
        format!("{PEOPLE_CSV}4,dee,4.5\n")
    );
    assert_eq!(status_json(&dir)["tables"], json!([]));
    assert_eq!(
        parents(&dir, "HEAD").len(),
        1,
        "a fast-forward makes no commit"
    );
}

#[test]
fn merge_fast_forwards_to_a_branch_that_has_already_merged_ours() {
    let dir = forked();
    commit_on(&dir, "feature", "their change", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    commit_on(&dir, "main", "our change", |d| {
        upsert(d, "people", "id,name,score\n5,eve,5.5\n")
    });
    dir.strata(&["checkout", "feature"]).ok();
    dir.strata(&["merge", "main"]).ok();
    let merged = dir.rev_id("HEAD");
    let again = dir.strata(&["merge", "main"]).ok();
    assert_eq!(again.stdout, "Already up to date.\n");
    dir.strata(&["checkout", "main"]).ok();
    let out = dir.strata(&["merge", "feature"]).ok();
    assert_eq!(out.stdout, format!("Fast-forward to {}\n", &merged[..12]));
    assert_eq!(dir.rev_id("HEAD"), merged);
    assert_eq!(
        dir.export_csv("people", None),
        format!("{PEOPLE_CSV}4,dee,4.5\n5,eve,5.5\n")
    );
}

#[test]
fn merge_of_a_branch_already_contained_says_up_to_date_and_changes_nothing() {
    let dir = forked();
    commit_on(&dir, "main", "main work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    let before = dir.snapshot();
    let out = dir.strata(&["merge", "feature"]).ok();
    assert_eq!(out.stdout, "Already up to date.\n");
    before.assert_same(&dir.snapshot(), "merge of an ancestor");
}

#[test]
fn merge_ff_only_refuses_diverged_history_and_changes_nothing() {
    let dir = score_conflict();
    let line = dir.refused(&["merge", "--ff-only", "feature"]);
    assert_mentions(
        &line,
        &[
            "cannot fast-forward",
            "'feature'",
            "diverged",
            "without --ff-only",
        ],
    );
}

#[test]
fn merge_ff_only_fast_forwards_when_history_allows_it() {
    let dir = forked();
    let theirs = commit_on(&dir, "feature", "feature work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    dir.strata(&["merge", "--ff-only", "feature"]).ok();
    assert_eq!(dir.rev_id("HEAD"), theirs);
}

#[test]
fn merge_no_ff_makes_a_merge_commit_with_both_parents_even_when_a_fast_forward_is_possible() {
    let dir = forked();
    let ours = dir.rev_id("HEAD");
    let theirs = commit_on(&dir, "feature", "feature work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    let out = dir.strata(&["merge", "--no-ff", "feature"]).ok();
    let merge = dir.rev_id("HEAD");
    assert_eq!(
        out.stdout,
        format!("Merged 'feature': commit {}\n", &merge[..12])
    );
    assert_ne!(merge, theirs);
    assert_eq!(parents(&dir, "HEAD"), [ours, theirs.clone()]);
    assert_eq!(message(&dir, "HEAD"), "Merge 'feature' into main");
    assert_eq!(
        dir.export_csv("people", None),
        dir.export_csv("people", Some(&theirs))
    );
    assert_eq!(status_json(&dir)["tables"], json!([]));
}

#[test]
fn merge_no_ff_and_ff_only_together_are_a_usage_error() {
    let dir = forked();
    let before = dir.snapshot();
    dir.strata(&["merge", "--no-ff", "--ff-only", "feature"])
        .usage_error();
    before.assert_same(&dir.snapshot(), "merge --no-ff --ff-only");
}

#[test]
fn merge_of_diverged_branches_commits_the_union_of_their_changes_with_both_parents() {
    let dir = forked();
    let theirs = commit_on(&dir, "feature", "feature work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n5,eve,5.5\n");
        delete(d, "people", "id\n1\n");
    });
    let ours = commit_on(&dir, "main", "main work", |d| {
        upsert(d, "people", "id,name,score\n3,cyd,3.0\n6,fay,6.5\n")
    });
    let out = dir
        .strata(&["merge", "feature", "-m", "bring in feature"])
        .ok();
    assert_mentions(&out.stdout, &["Merged 'feature': commit"]);
    assert_eq!(parents(&dir, "HEAD"), [ours, theirs]);
    assert_eq!(message(&dir, "HEAD"), "bring in feature");
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n2,bob,2.5\n3,cyd,3.0\n4,dee,4.5\n5,eve,5.5\n6,fay,6.5\n"
    );
    assert_eq!(status_json(&dir)["merging"], Value::Null);
    assert_eq!(status_json(&dir)["tables"], json!([]));
}

#[test]
fn merge_takes_tables_added_on_either_side() {
    let dir = forked();
    commit_on(&dir, "feature", "cities", |d| {
        d.write("cities.csv", "city,pop\noslo,1\n");
        d.strata(&["import", "cities", "cities.csv", "-k", "city"])
            .ok();
    });
    commit_on(&dir, "main", "towns", |d| {
        d.write("towns.csv", "town,pop\nbergen,2\n");
        d.strata(&["import", "towns", "towns.csv", "-k", "town"])
            .ok();
    });
    dir.strata(&["merge", "feature"]).ok();
    let tables: Vec<String> = dir
        .strata(&["table", "list", "--json"])
        .ok()
        .json_lines()
        .iter()
        .map(|t| t["table"].as_str().expect("a table name").to_string())
        .collect();
    assert_eq!(tables, ["cities", "people", "towns"]);
    assert_eq!(dir.export_csv("cities", None), "city,pop\noslo,1\n");
}

#[test]
fn changes_to_different_cells_of_one_row_merge_cell_by_cell() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n2,bobby,2.5\n"),
        |d| upsert(d, "people", "id,name,score\n2,bob,9.5\n"),
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bobby,9.5\n3,cy,3.0\n"
    );
    assert_eq!(parents(&dir, "HEAD").len(), 2);
}

#[test]
fn the_same_cell_changed_to_the_same_value_on_both_sides_merges() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n2,bob,9.0\n3,cy,3.5\n"),
        |d| upsert(d, "people", "id,name,score\n2,bob,9.0\n"),
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,9.0\n3,cy,3.5\n"
    );
}

#[test]
fn a_row_deleted_on_both_sides_stays_deleted() {
    let dir = diverged(
        |d| delete(d, "people", "id\n1\n"),
        |d| {
            delete(d, "people", "id\n1\n");
            upsert(d, "people", "id,name,score\n4,dee,4.5\n");
        },
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n2,bob,2.5\n3,cy,3.0\n4,dee,4.5\n"
    );
}

#[test]
fn the_same_cell_changed_to_different_values_stops_the_merge_and_says_what_to_do_next() {
    let dir = score_conflict();
    let ours = dir.rev_id("HEAD");
    let out = dir.strata(&["merge", "feature"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line = out.fails_with_one_line();
    assert_mentions(
        &line,
        &[
            "merge of 'feature' stopped with 1 conflicting row in people",
            "strata conflicts show",
            "strata conflicts resolve --ours|--theirs",
            "strata commit",
            "strata merge --abort",
        ],
    );
    // Nothing is committed yet; the working table keeps our version of the row.
    assert_eq!(dir.rev_id("HEAD"), ours);
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.0\n"
    );
}

#[test]
fn changes_without_conflict_are_in_the_working_tables_while_conflicts_remain() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n2,bob,8.5\n"),
        |d| {
            upsert(
                d,
                "people",
                "id,name,score\n2,bob,7.5\n3,cy,3.9\n4,dee,4.5\n",
            )
        },
    );
    merge_stops(&dir);
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.9\n4,dee,4.5\n"
    );
}

#[test]
fn a_row_deleted_on_our_side_and_changed_on_theirs_is_a_conflict() {
    let dir = diverged(
        |d| delete(d, "people", "id\n3\n"),
        |d| upsert(d, "people", "id,name,score\n3,cy,3.9\n"),
    );
    merge_stops(&dir);
    let conflicts = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["kind"], "delete/modify");
    assert_eq!(conflicts[0]["key"], json!({"id": 3}));
    // Our deletion is what the working table holds until the conflict is resolved.
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n"
    );
    dir.strata(&["conflicts", "resolve", "--theirs"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.9\n"
    );
}

#[test]
fn a_row_changed_on_our_side_and_deleted_on_theirs_is_a_conflict() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n3,cy,3.9\n"),
        |d| delete(d, "people", "id\n3\n"),
    );
    merge_stops(&dir);
    let conflicts = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["kind"], "modify/delete");
    let score = conflicts[0]["cells"]
        .as_array()
        .expect("cells is a list")
        .iter()
        .find(|c| c["column"] == "score")
        .cloned()
        .expect("the score cell differs");
    assert_eq!(
        score,
        json!({"column": "score", "base": 3.0, "ours": 3.9, "theirs": null})
    );
    // Taking their side deletes the row.
    dir.strata(&["conflicts", "resolve", "--theirs"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n"
    );
    dir.strata(&["commit", "-m", "merged"]).ok();
    assert_eq!(parents(&dir, "HEAD").len(), 2);
}

#[test]
fn one_key_inserted_on_both_sides_with_different_rows_is_a_conflict() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n4,dee,4.5\n"),
        |d| upsert(d, "people", "id,name,score\n4,dan,4.5\n"),
    );
    merge_stops(&dir);
    let conflicts = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(
        conflicts,
        [
            json!({"table": "people", "kind": "add/add", "key": {"id": 4},
                "cells": [{"column": "name", "base": null, "ours": "dee", "theirs": "dan"}]})
        ]
    );
    dir.strata(&["conflicts", "resolve", "--ours"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        format!("{PEOPLE_CSV}4,dee,4.5\n")
    );
}

#[test]
fn one_key_inserted_on_both_sides_with_the_same_row_merges() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n4,dee,4.5\n"),
        |d| upsert(d, "people", "id,name,score\n4,dee,4.5\n5,eve,5.5\n"),
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        format!("{PEOPLE_CSV}4,dee,4.5\n5,eve,5.5\n")
    );
}

#[test]
fn a_column_added_on_our_side_merges_and_their_new_rows_get_null_in_it() {
    let dir = diverged(
        |d| {
            d.write(
                "wide.csv",
                "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,red\n",
            );
            d.strata(&["import", "people", "wide.csv", "--mode", "replace"])
                .ok();
        },
        |d| upsert(d, "people", "id,name,score\n2,bob,5.0\n4,dee,4.5\n"),
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score,team\n1,ann,1.5,red\n2,bob,5.0,blue\n3,cy,3.0,red\n4,dee,4.5,\n"
    );
    let rows = dir
        .strata(&["export", "people", "-", "--format", "jsonl"])
        .ok()
        .json_lines();
    assert_eq!(rows[3], json!({"id": 4, "name": "dee", "score": 4.5}));
    let show = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    let columns: Vec<&str> = show["columns"]
        .as_array()
        .expect("columns is a list")
        .iter()
        .map(|c| c["name"].as_str().expect("a column name"))
        .collect();
    assert_eq!(columns, ["id", "name", "score", "team"]);
}

#[test]
fn a_column_added_on_their_side_merges_and_our_new_rows_get_null_in_it() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n2,bob,5.0\n4,dee,4.5\n"),
        |d| {
            d.write(
                "wide.csv",
                "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,red\n",
            );
            d.strata(&["import", "people", "wide.csv", "--mode", "replace"])
                .ok();
        },
    );
    dir.strata(&["merge", "feature"]).ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score,team\n1,ann,1.5,red\n2,bob,5.0,blue\n3,cy,3.0,red\n4,dee,4.5,\n"
    );
}

#[test]
fn incompatible_schema_changes_stop_the_merge_with_a_clear_message_and_change_nothing() {
    let dir = diverged(
        |d| {
            d.write(
                "team.csv",
                "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,red\n",
            );
            d.strata(&["import", "people", "team.csv", "--mode", "replace"])
                .ok();
        },
        |d| {
            d.write(
                "level.csv",
                "id,name,score,level\n1,ann,1.5,1\n2,bob,2.5,2\n3,cy,3.0,3\n",
            );
            d.strata(&["import", "people", "level.csv", "--mode", "replace"])
                .ok();
        },
    );
    let line = dir.refused(&["merge", "feature"]);
    assert_mentions(
        &line,
        &[
            "cannot merge table 'people'",
            "schema",
            "team",
            "level",
            "make the schemas match on one side, commit, and merge again",
        ],
    );
    assert_eq!(status_json(&dir)["merging"], Value::Null);
}

#[test]
fn a_merge_with_uncommitted_changes_is_refused_and_changes_nothing() {
    let dir = score_conflict();
    upsert(&dir, "people", "id,name,score\n4,dee,4.5\n");
    let line = dir.refused(&["merge", "feature"]);
    assert_mentions(&line, &["uncommitted changes", "people"]);
}

#[test]
fn a_merge_of_an_unknown_revision_is_refused_and_changes_nothing() {
    let dir = forked();
    let line = dir.refused(&["merge", "nowhere"]);
    assert_mentions(&line, &["unknown revision 'nowhere'"]);
}

#[test]
fn status_and_status_json_show_the_conflicts_of_a_merge_in_progress() {
    let dir = score_conflict();
    let theirs = dir.rev_id("feature");
    merge_stops(&dir);

    let json = status_json(&dir);
    assert_eq!(
        json["merging"],
        json!({"theirs": theirs, "name": "feature", "conflicts": {"people": 1}})
    );
    // The working table holds our version of the only row that changed: it matches HEAD.
    assert_eq!(json["tables"], json!([]));

    let human = dir.strata(&["status"]).ok().stdout;
    assert_mentions(
        &human,
        &[
            "On branch main",
            "You are merging 'feature'.",
            "people: 1 conflicting rows",
            "strata conflicts show",
            "strata merge --abort",
        ],
    );
}

#[test]
fn status_says_to_commit_once_every_conflict_is_resolved() {
    let dir = score_conflict();
    merge_stops(&dir);
    dir.strata(&["conflicts", "resolve", "--ours"]).ok();
    let human = dir.strata(&["status"]).ok().stdout;
    assert_mentions(
        &human,
        &[
            "You are merging 'feature'.",
            "All conflicts resolved",
            "strata commit",
        ],
    );
    assert_eq!(status_json(&dir)["merging"]["conflicts"], json!({}));
}

/// A merge stopped on conflicts in two tables: bob's score in people, rome's pop in cities.
fn two_table_conflict() -> Dir {
    let dir = two_table_conflict_before_merge();
    let line = merge_stops(&dir);
    assert_mentions(&line, &["2 conflicting rows", "cities, people"]);
    dir
}

#[test]
fn conflicts_show_lists_base_ours_and_theirs_for_each_conflicting_cell() {
    let dir = two_table_conflict();
    let all = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(
        all,
        [
            json!({"table": "cities", "kind": "modify/modify", "key": {"city": "rome"},
                   "cells": [{"column": "pop", "base": 2, "ours": 20, "theirs": 30}]}),
            json!({"table": "people", "kind": "modify/modify", "key": {"id": 2},
                   "cells": [{"column": "score", "base": 2.5, "ours": 8.5, "theirs": 7.5}]}),
        ]
    );
    let human = dir.strata(&["conflicts", "show"]).ok();
    assert_eq!(
        human.lines(),
        [
            "cities (city=\"rome\") modify/modify",
            "    pop: base 2 | ours 20 | theirs 30",
            "people (id=2) modify/modify",
            "    score: base 2.5 | ours 8.5 | theirs 7.5",
        ]
    );
}

#[test]
fn conflicts_show_with_a_table_lists_only_that_tables_conflicts() {
    let dir = two_table_conflict();
    let people = dir
        .strata(&["conflicts", "show", "people", "--json"])
        .ok()
        .json_lines();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["table"], "people");
    let cities = dir.strata(&["conflicts", "show", "cities"]).ok();
    assert_eq!(
        cities.lines(),
        [
            "cities (city=\"rome\") modify/modify",
            "    pop: base 2 | ours 20 | theirs 30",
        ]
    );
}

#[test]
fn a_row_with_two_conflicting_cells_lists_both_and_keeps_merged_cells_out() {
    let dir = diverged(
        |d| upsert(d, "people", "id,name,score\n2,bobby,8.5\n"),
        |d| upsert(d, "people", "id,name,score\n2,robert,7.5\n"),
    );
    merge_stops(&dir);
    let conflicts = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(
        conflicts[0]["cells"],
        json!([
            {"column": "name", "base": "bob", "ours": "bobby", "theirs": "robert"},
            {"column": "score", "base": 2.5, "ours": 8.5, "theirs": 7.5},
        ])
    );
}

#[test]
fn conflicts_resolve_ours_keeps_our_rows_and_lets_the_merge_be_committed() {
    let dir = two_table_conflict();
    let ours = dir.rev_id("HEAD");
    let theirs = dir.rev_id("feature");
    let out = dir.strata(&["conflicts", "resolve", "--ours"]).ok();
    assert_mentions(
        &out.stdout,
        &[
            "Resolved 2 conflicts with our version; 0 remain",
            "strata commit",
        ],
    );
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.0\n"
    );
    assert_eq!(
        dir.export_csv("cities", None),
        "city,pop\noslo,1\nrome,20\n"
    );
    assert_eq!(
        dir.strata(&["conflicts", "show"]).ok().stdout,
        "",
        "no conflict is left to show"
    );
    dir.strata(&["commit", "-m", "merged feature"]).ok();
    assert_eq!(parents(&dir, "HEAD"), [ours, theirs]);
    assert_eq!(status_json(&dir)["merging"], Value::Null);
    assert_eq!(status_json(&dir)["tables"], json!([]));
}

#[test]
fn conflicts_resolve_theirs_takes_their_rows() {
    let dir = two_table_conflict();
    let out = dir.strata(&["conflicts", "resolve", "--theirs"]).ok();
    assert_mentions(&out.stdout, &["Resolved 2 conflicts with their version"]);
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,robert,7.5\n3,cy,3.0\n"
    );
    assert_eq!(
        dir.export_csv("cities", None),
        "city,pop\noslo,1\nrome,30\n"
    );
    dir.strata(&["commit", "-m", "merged feature"]).ok();
    assert_eq!(
        dir.export_csv("people", Some("HEAD")),
        "id,name,score\n1,ann,1.5\n2,robert,7.5\n3,cy,3.0\n"
    );
}

#[test]
fn conflicts_resolve_for_one_table_leaves_the_other_tables_conflicts() {
    let dir = two_table_conflict();
    let out = dir
        .strata(&["conflicts", "resolve", "cities", "--theirs"])
        .ok();
    assert_mentions(&out.stdout, &["Resolved 1 conflicts", "1 remain"]);
    assert_eq!(
        dir.export_csv("cities", None),
        "city,pop\noslo,1\nrome,30\n"
    );
    let left = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["table"], "people");
    assert_eq!(
        status_json(&dir)["merging"]["conflicts"],
        json!({"people": 1})
    );
    let line = dir.refused(&["conflicts", "resolve", "cities", "--ours"]);
    assert_mentions(&line, &["table 'cities' has no conflicts"]);
}

#[test]
fn conflicts_resolve_needs_ours_or_theirs_but_not_both() {
    let dir = score_conflict();
    merge_stops(&dir);
    let before = dir.snapshot();
    dir.strata(&["conflicts", "resolve"]).usage_error();
    dir.strata(&["conflicts", "resolve", "--ours", "--theirs"])
        .usage_error();
    before.assert_same(&dir.snapshot(), "conflicts resolve without one side");
}

#[test]
fn importing_the_conflicting_row_with_upsert_resolves_it() {
    let dir = two_table_conflict();
    dir.write("fix.csv", "id,name,score\n2,bob,8.0\n");
    dir.strata(&["import", "people", "fix.csv", "--mode", "upsert"])
        .ok();
    let left = dir
        .strata(&["conflicts", "show", "--json"])
        .ok()
        .json_lines();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["table"], "cities");
    assert_eq!(
        status_json(&dir)["merging"]["conflicts"],
        json!({"cities": 1})
    );

    dir.write("fix.csv", "city,pop\nrome,25\n");
    dir.strata(&["import", "cities", "fix.csv", "--mode", "upsert"])
        .ok();
    assert_eq!(dir.strata(&["conflicts", "show"]).ok().stdout, "");
    dir.strata(&["commit", "-m", "merged by hand"]).ok();
    assert_eq!(parents(&dir, "HEAD").len(), 2);
    assert_eq!(
        dir.export_csv("people", Some("HEAD")),
        "id,name,score\n1,ann,1.5\n2,bob,8.0\n3,cy,3.0\n"
    );
    assert_eq!(
        dir.export_csv("cities", Some("HEAD")),
        "city,pop\noslo,1\nrome,25\n"
    );
}

#[test]
fn deleting_the_conflicting_row_resolves_it() {
    let dir = score_conflict();
    merge_stops(&dir);
    delete(&dir, "people", "id\n2\n");
    assert_eq!(status_json(&dir)["merging"]["conflicts"], json!({}));
    dir.strata(&["commit", "-m", "merged without bob"]).ok();
    assert_eq!(
        dir.export_csv("people", Some("HEAD")),
        "id,name,score\n1,ann,1.5\n3,cy,3.0\n"
    );
}

#[test]
fn commit_is_refused_while_conflicts_remain_and_changes_nothing() {
    let dir = two_table_conflict();
    let line = dir.refused(&["commit", "-m", "too early"]);
    assert_mentions(
        &line,
        &[
            "2 conflicts remain in cities, people",
            "strata conflicts resolve",
            "strata merge --abort",
        ],
    );
    dir.strata(&["conflicts", "resolve", "people", "--ours"])
        .ok();
    let line = dir.refused(&["commit", "-m", "still too early"]);
    assert_mentions(&line, &["1 conflicts remain in cities"]);
}

#[test]
fn a_merge_in_progress_refuses_another_merge_and_a_checkout() {
    let dir = score_conflict();
    merge_stops(&dir);
    let line = dir.refused(&["merge", "feature"]);
    assert_mentions(
        &line,
        &[
            "a merge of 'feature' is in progress",
            "strata merge --abort",
        ],
    );
    let line = dir.refused(&["checkout", "feature"]);
    assert_mentions(&line, &["a merge of 'feature' is in progress"]);
}

#[test]
fn merge_abort_restores_the_state_before_the_merge_exactly() {
    let dir = two_table_conflict_before_merge();
    let before_local = dir.snapshot().only(&["local", "refs"]);
    let working = dir.read(".strata/local/WORKING");
    let people = dir.export_csv("people", None);
    let cities = dir.export_csv("cities", None);
    let status = status_json(&dir);

    merge_stops(&dir);
    // Work during the merge: one table resolved, an unrelated row added.
    dir.strata(&["conflicts", "resolve", "cities", "--theirs"])
        .ok();
    upsert(&dir, "people", "id,name,score\n9,zed,9.5\n");
    assert_ne!(dir.export_csv("people", None), people);

    let out = dir.strata(&["merge", "--abort"]).ok();
    assert_mentions(&out.stdout, &["Merge aborted"]);
    assert_eq!(dir.read(".strata/local/WORKING"), working);
    before_local.assert_same(&dir.snapshot().only(&["local", "refs"]), "merge --abort");
    assert_eq!(dir.export_csv("people", None), people);
    assert_eq!(dir.export_csv("cities", None), cities);
    assert_eq!(status_json(&dir), status);
    assert!(!dir.join(".strata/local/MERGE").exists());

    // The same merge can be started again and stops on the same conflicts.
    let line = merge_stops(&dir);
    assert_mentions(&line, &["2 conflicting rows"]);
}

/// [`two_table_conflict`] without the merge.
fn two_table_conflict_before_merge() -> Dir {
    let dir = Dir::with_people();
    dir.write("cities.csv", "city,pop\noslo,1\nrome,2\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    dir.strata(&["commit", "-m", "cities"]).ok();
    dir.strata(&["branch", "feature"]).ok();
    commit_on(&dir, "feature", "their change", |d| {
        upsert(d, "people", "id,name,score\n2,robert,7.5\n");
        upsert(d, "cities", "city,pop\nrome,30\n");
    });
    commit_on(&dir, "main", "our change", |d| {
        upsert(d, "people", "id,name,score\n2,bob,8.5\n");
        upsert(d, "cities", "city,pop\nrome,20\n");
    });
    dir
}

#[test]
fn merge_abort_and_conflicts_without_a_merge_are_refused() {
    let dir = forked();
    let line = dir.refused(&["merge", "--abort"]);
    assert_mentions(&line, &["there is no merge to abort"]);
    let line = dir.refused(&["conflicts", "show"]);
    assert_mentions(&line, &["there is no merge in progress"]);
    let line = dir.refused(&["conflicts", "resolve", "--ours"]);
    assert_mentions(&line, &["there is no merge in progress"]);
}

#[test]
fn checkout_force_discards_a_merge_in_progress() {
    let dir = score_conflict();
    let ours = dir.rev_id("HEAD");
    merge_stops(&dir);
    dir.strata(&["checkout", "--force", "main"]).ok();
    assert_eq!(status_json(&dir)["merging"], Value::Null);
    assert_eq!(status_json(&dir)["tables"], json!([]));
    assert_eq!(dir.rev_id("HEAD"), ours);
}

/// Writes a CSV of `rows` rows `id,name,score` (ids 0..rows) for the large-table test.
fn write_large_csv(dir: &Dir, name: &str, rows: u64) {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("the CSV file should be creatable");
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "id,name,score").expect("the CSV file should be writable");
    for i in 0..rows {
        writeln!(out, "{i},name{i},{}.5", i % 1000).expect("the CSV file should be writable");
    }
    out.flush().expect("the CSV file should be writable");
}

#[test]
fn a_merge_of_a_million_row_table_where_a_few_rows_differ_merges_those_rows_quickly() {
    let dir = Dir::repo();
    write_large_csv(&dir, "big.csv", 1_000_000);
    dir.strata(&["import", "big", "big.csv", "--primary-key", "id"])
        .ok();
    dir.strata(&["commit", "-m", "a million rows"]).ok();
    let base = dir.rev_id("HEAD");
    dir.strata(&["branch", "feature"]).ok();
    let theirs = commit_on(&dir, "feature", "their three rows", |d| {
        upsert(
            d,
            "big",
            "id,name,score\n11,eleven,1.0\n500001,half,2.0\n1000000,new,3.0\n",
        )
    });
    let ours = commit_on(&dir, "main", "our three rows", |d| {
        upsert(
            d,
            "big",
            "id,name,score\n10,ten,1.0\n500000,middle,2.0\n999999,last,3.0\n",
        )
    });

    let started = std::time::Instant::now();
    let out = dir.strata(&["merge", "feature"]).ok();
    let took = started.elapsed();
    assert_mentions(&out.stdout, &["Merged 'feature'"]);
    eprintln!("merging a million-row table took {took:?}");
    assert_eq!(parents(&dir, "HEAD"), [ours, theirs]);

    let changed = dir
        .strata(&["diff", "--json", &base, "HEAD"])
        .ok()
        .json_lines();
    let keys: Vec<Value> = changed.iter().map(|c| c["key"]["id"].clone()).collect();
    assert_eq!(
        keys,
        [
            json!(10),
            json!(11),
            json!(500000),
            json!(500001),
            json!(999999),
            json!(1000000)
        ]
    );
    assert_eq!(changed[5]["kind"], "added");
    assert_eq!(
        changed[5]["new"],
        json!({"id": 1000000, "name": "new", "score": 3.0})
    );
    assert_eq!(changed[2]["new"]["name"], "middle");
    assert_eq!(changed[3]["new"]["name"], "half");
    let ours_only = dir
        .strata(&["diff", "--stat", "HEAD~1", "HEAD"])
        .ok()
        .lines()
        .join("\n");
    assert_eq!(ours_only, "big | 1 added, 0 removed, 2 modified");
    let list = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert_eq!(list[0]["rows"], 1_000_001);
}
