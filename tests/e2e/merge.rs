//! `strata merge` and `strata conflicts` as people see them: what a merge prints, the line it
//! fails with, conflicts shown for people and as JSON Lines, what resolving and aborting
//! print, and usage errors. The merge rules themselves are tested through the library
//! (strata/tests/it/merge.rs).

use serde_json::json;

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

/// Both sides changed bob's score: to 8.5 on main, to 7.5 on feature.
fn score_conflict() -> Dir {
    let dir = forked();
    commit_on(&dir, "feature", "their change", |d| {
        upsert(d, "people", "id,name,score\n2,bob,7.5\n")
    });
    commit_on(&dir, "main", "our change", |d| {
        upsert(d, "people", "id,name,score\n2,bob,8.5\n")
    });
    dir
}

/// Merges feature, which must stop on conflicts; returns the error line.
fn merge_stops(dir: &Dir) -> String {
    dir.strata(&["merge", "feature"]).fails_with_one_line()
}

/// Both sides changed one row of `people` (bob) and one of `cities` (rome) differently;
/// not merged yet.
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

/// [`two_table_conflict_before_merge`], merged: it stops on two conflicting rows.
fn two_table_conflict() -> Dir {
    let dir = two_table_conflict_before_merge();
    let line = merge_stops(&dir);
    assert_mentions(&line, &["2 conflicting rows", "cities, people"]);
    dir
}

#[test]
fn merge_prints_a_fast_forward_an_up_to_date_branch_and_a_merge_commit() {
    let dir = forked();
    let theirs = commit_on(&dir, "feature", "feature work", |d| {
        upsert(d, "people", "id,name,score\n4,dee,4.5\n")
    });
    let out = dir.strata(&["merge", "feature"]).ok();
    assert_eq!(out.stdout, format!("Fast-forward to {}\n", &theirs[..12]));
    let again = dir.strata(&["merge", "feature"]).ok();
    assert_eq!(again.stdout, "Already up to date.\n");

    commit_on(&dir, "feature", "more work", |d| {
        upsert(d, "people", "id,name,score\n5,eve,5.5\n")
    });
    let out = dir
        .strata(&["merge", "--no-ff", "feature", "-m", "bring in feature"])
        .ok();
    let merge = dir.rev_id("HEAD");
    assert_eq!(
        out.stdout,
        format!("Merged 'feature': commit {}\n", &merge[..12])
    );
    let log = dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    assert_eq!(log[0]["message"], "bring in feature");
    assert_eq!(log[0]["parents"].as_array().map(Vec::len), Some(2));
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
fn a_merge_that_stops_on_conflicts_fails_with_one_line_that_says_what_to_do_next() {
    let dir = score_conflict();
    let line = merge_stops(&dir);
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
}

#[test]
fn refused_merges_and_commits_print_one_line_that_says_what_to_do() {
    let dir = two_table_conflict_before_merge();
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
    merge_stops(&dir);
    let line = dir.refused(&["commit", "-m", "too early"]);
    assert_mentions(
        &line,
        &[
            "2 conflicts remain in cities, people",
            "strata conflicts resolve",
            "strata merge --abort",
        ],
    );
    let line = dir.refused(&["merge", "feature"]);
    assert_mentions(
        &line,
        &[
            "a merge of 'feature' is in progress",
            "strata merge --abort",
        ],
    );
}

#[test]
fn status_describes_a_merge_in_progress_and_says_to_commit_once_conflicts_are_resolved() {
    let dir = score_conflict();
    let theirs = dir.rev_id("feature");
    merge_stops(&dir);
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(
        json["merging"],
        json!({"theirs": theirs, "name": "feature", "conflicts": {"people": 1}})
    );
    let human = dir.strata(&["status"]).ok().stdout;
    assert_mentions(
        &human,
        &[
            "On branch main",
            "You are merging 'feature'.",
            "people: 1 conflicting row",
            "strata conflicts show",
            "strata merge --abort",
        ],
    );

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
}

#[test]
fn conflicts_show_prints_each_conflicting_cell_for_people_and_as_json_lines() {
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
    let people = dir
        .strata(&["conflicts", "show", "people", "--json"])
        .ok()
        .json_lines();
    assert_eq!(people, all[1..]);
    let cities = dir.strata(&["conflicts", "show", "cities"]).ok();
    assert_eq!(cities.lines(), human.lines()[..2]);
}

#[test]
fn conflicts_resolve_says_how_many_conflicts_it_resolved_and_how_many_remain() {
    let dir = two_table_conflict();
    let out = dir
        .strata(&["conflicts", "resolve", "cities", "--theirs"])
        .ok();
    assert_eq!(
        out.stdout,
        "Resolved 1 conflict with their version; 1 remain\n"
    );
    let out = dir.strata(&["conflicts", "resolve", "--ours"]).ok();
    assert_eq!(
        out.stdout,
        "Resolved 1 conflict with our version; 0 remain: run 'strata commit' to finish the merge\n"
    );
    assert_eq!(
        dir.strata(&["conflicts", "show"]).ok().stdout,
        "",
        "no conflict is left to show"
    );
    // --theirs took their rome, --ours kept our bob.
    assert_eq!(
        dir.export_csv("cities", None),
        "city,pop\noslo,1\nrome,30\n"
    );
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.0\n"
    );
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
fn merge_abort_says_the_merge_is_undone_and_conflicts_without_a_merge_are_refused() {
    let dir = score_conflict();
    merge_stops(&dir);
    let out = dir.strata(&["merge", "--abort"]).ok();
    assert_eq!(
        out.stdout,
        "Merge aborted; the working tables are as they were before it\n"
    );
    let line = dir.refused(&["merge", "--abort"]);
    assert_mentions(&line, &["there is no merge in progress"]);
    let line = dir.refused(&["conflicts", "show"]);
    assert_mentions(&line, &["there is no merge in progress"]);
    let line = dir.refused(&["conflicts", "resolve", "--ours"]);
    assert_mentions(&line, &["there is no merge in progress"]);
}
