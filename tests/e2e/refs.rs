//! Branches, tags, checkout and reset.

use serde_json::json;

use crate::harness::*;
use crate::history::three_commits;
use crate::remote::arg;

const BOBBY_CSV: &str = "id,name,score\n1,ann,1.5\n2,bobby,2.5\n3,cy,3.0\n";

/// Changes bob's name in the working `people` table.
fn rename_bob(dir: &Dir) {
    dir.write("bobby.csv", "id,name,score\n2,bobby,2.5\n");
    dir.strata(&["import", "people", "bobby.csv", "--mode", "upsert"])
        .ok();
}

#[test]
fn branch_creates_lists_and_deletes_branches() {
    let dir = three_commits();
    let head = dir.rev_id("HEAD");
    let out = dir.strata(&["branch", "feature"]).ok();
    assert_eq!(
        out.stdout,
        format!("Created branch feature at {}\n", &head[..12])
    );
    let old = dir.rev_id("HEAD~2");
    dir.strata(&["branch", "old", "HEAD~2"]).ok();
    assert_eq!(dir.rev_id("old"), old);

    let list = dir.strata(&["branch"]).ok();
    assert_eq!(
        list.lines(),
        [
            format!("  {:<24} {}", "feature", &head[..12]),
            format!("* {:<24} {}", "main", &head[..12]),
            format!("  {:<24} {}", "old", &old[..12]),
        ]
    );
    let json = dir.strata(&["branch", "--json"]).ok().json_lines();
    assert_eq!(
        json,
        [
            json!({"name": "feature", "commit": head, "current": false}),
            json!({"name": "main", "commit": head, "current": true}),
            json!({"name": "old", "commit": old, "current": false}),
        ]
    );

    let deleted = dir.strata(&["branch", "-d", "feature"]).ok();
    assert_eq!(
        deleted.stdout,
        format!("Deleted branch feature (was {})\n", &head[..12])
    );
    let names: Vec<String> = dir
        .strata(&["branch", "--json"])
        .ok()
        .json_lines()
        .iter()
        .map(|b| b["name"].as_str().expect("names are strings").to_string())
        .collect();
    assert_eq!(names, ["main", "old"]);
    let line = dir.refused(&["log", "feature"]);
    assert_mentions(&line, &["unknown revision 'feature'"]);
}

#[test]
fn a_deleted_branch_can_be_created_again() {
    let dir = three_commits();
    dir.strata(&["branch", "topic", "HEAD~1"]).ok();
    dir.strata(&["branch", "-d", "topic"]).ok();
    dir.strata(&["branch", "topic"]).ok();
    assert_eq!(dir.rev_id("topic"), dir.rev_id("HEAD"));
}

#[test]
fn a_branch_that_exists_cannot_be_created_again() {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    let line = dir.refused(&["branch", "feature"]);
    assert_mentions(&line, &["branch 'feature' already exists"]);
}

#[test]
fn the_checked_out_branch_cannot_be_deleted() {
    let dir = Dir::with_people();
    let line = dir.refused(&["branch", "-d", "main"]);
    assert_mentions(&line, &["cannot delete branch 'main'", "checked out"]);
}

#[test]
fn checkout_switches_between_branches_and_their_tables() {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    let out = dir.strata(&["checkout", "feature"]).ok();
    assert_eq!(out.stdout, "Switched to branch 'feature'\n");
    rename_bob(&dir);
    dir.strata(&["commit", "-m", "bobby"]).ok();
    assert_eq!(dir.export_csv("people", None), BOBBY_CSV);

    dir.strata(&["checkout", "main"]).ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["branch"], "main");
    assert_eq!(status["tables"], json!([]));
    assert_eq!(dir.strata(&["log", "--oneline"]).ok().lines().len(), 1);

    dir.strata(&["checkout", "feature"]).ok();
    assert_eq!(dir.export_csv("people", None), BOBBY_CSV);
    assert_eq!(dir.strata(&["log", "--oneline"]).ok().lines().len(), 2);
}

#[test]
fn checkout_of_a_revision_detaches_head_and_commits_there_move_only_head() {
    let dir = three_commits();
    let main = dir.rev_id("main");
    let target = dir.rev_id("HEAD~1");
    let out = dir.strata(&["checkout", "HEAD~1"]).ok();
    assert_eq!(
        out.stdout,
        format!("HEAD is now at {} (detached)\n", &target[..12])
    );
    let status = dir.strata(&["status"]).ok();
    assert_mentions(
        &status.stdout,
        &[&format!("HEAD detached at {}", &target[..12])],
    );
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["branch"], serde_json::Value::Null);
    assert_eq!(json["detached"], target);
    assert_eq!(json["head"], target);

    dir.write("eve.csv", "id,name,score\n5,eve,5.5\n");
    dir.strata(&["import", "people", "eve.csv", "--mode", "append"])
        .ok();
    let commit = dir.strata(&["commit", "-m", "detached work"]).ok();
    assert!(commit.stdout.starts_with("[detached HEAD "), "{commit:?}");
    let detached = dir.rev_id("HEAD");
    assert_eq!(
        dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines()[0]["parents"],
        json!([target])
    );
    assert_eq!(dir.rev_id("main"), main, "main must not move");
    dir.strata(&["branch", "rescued", &detached]).ok();
    dir.strata(&["checkout", "main"]).ok();
    assert_eq!(dir.rev_id("rescued"), detached);
}

#[test]
fn checkout_of_a_tag_detaches_head_at_the_tagged_commit() {
    let dir = three_commits();
    dir.strata(&["tag", "v1", "HEAD~2"]).ok();
    dir.strata(&["checkout", "v1"]).ok();
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["detached"], dir.rev_id("v1"));
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn checkout_refuses_over_uncommitted_changes_and_changes_nothing() {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    rename_bob(&dir);
    let line = dir.refused(&["checkout", "feature"]);
    assert_mentions(&line, &["uncommitted changes in people", "reset --hard"]);
    let line = dir.refused(&["checkout", "HEAD"]);
    assert_mentions(&line, &["uncommitted changes in people"]);
    assert_eq!(dir.export_csv("people", None), BOBBY_CSV);
}

#[test]
fn checkout_force_discards_uncommitted_changes() {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    rename_bob(&dir);
    dir.write("cities.csv", "city,pop\noslo,1\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    dir.strata(&["checkout", "--force", "feature"]).ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["branch"], "feature");
    assert_eq!(status["tables"], json!([]));
    let line = dir.refused(&["export", "cities", "-"]);
    assert_mentions(&line, &["unknown table 'cities'"]);
    rename_bob(&dir);
    dir.strata(&["checkout", "-f", "main"]).ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn checkout_b_creates_a_branch_at_head_and_switches_to_it() {
    let dir = Dir::with_people();
    let out = dir.strata(&["checkout", "-b", "feature"]).ok();
    assert_eq!(out.stdout, "Switched to branch 'feature'\n");
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["branch"], "feature");
    assert_eq!(dir.rev_id("feature"), dir.rev_id("main"));
}

#[test]
fn checkout_b_with_a_start_revision_creates_the_branch_there() {
    let dir = three_commits();
    let start = dir.rev_id("HEAD~2");
    let out = dir.strata(&["checkout", "-b", "old", "HEAD~2"]).ok();
    assert_eq!(out.stdout, "Switched to branch 'old'\n");
    assert_eq!(dir.rev_id("old"), start);
    assert_eq!(dir.rev_id("HEAD"), start);
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["branch"], "old");
}

#[test]
fn checkout_b_refuses_over_uncommitted_changes_without_creating_the_branch() {
    let dir = Dir::with_people();
    rename_bob(&dir);
    let line = dir.refused(&["checkout", "-b", "feature"]);
    assert_mentions(&line, &["uncommitted changes in people"]);
    let line = dir.refused(&["log", "feature"]);
    assert_mentions(&line, &["unknown revision 'feature'"]);
}

#[test]
fn checkout_b_of_a_branch_that_exists_is_refused_and_changes_nothing() {
    let dir = Dir::with_people();
    dir.strata(&["branch", "feature"]).ok();
    let line = dir.refused(&["checkout", "-b", "feature"]);
    assert_mentions(&line, &["branch 'feature' already exists"]);
}

#[test]
fn a_tag_stays_where_it_was_made_while_the_branch_moves_on() {
    let dir = Dir::with_people();
    let first = dir.rev_id("HEAD");
    let out = dir.strata(&["tag", "v1"]).ok();
    assert_eq!(out.stdout, format!("Created tag v1 at {}\n", &first[..12]));
    rename_bob(&dir);
    dir.strata(&["commit", "-m", "bobby"]).ok();
    assert_eq!(dir.rev_id("v1"), first);
    assert_ne!(dir.rev_id("HEAD"), first);
    dir.strata(&["tag", "v2"]).ok();
    dir.strata(&["tag", "v0", "HEAD~1"]).ok();

    let list = dir.strata(&["tag"]).ok();
    assert_eq!(list.lines().len(), 3);
    assert_eq!(list.lines()[0], format!("  {:<24} {}", "v0", &first[..12]));
    let json = dir.strata(&["tag", "--json"]).ok().json_lines();
    let names: Vec<&str> = json
        .iter()
        .map(|t| t["name"].as_str().expect("names are strings"))
        .collect();
    assert_eq!(names, ["v0", "v1", "v2"]);
    assert!(json.iter().all(|t| t["current"] == false));

    assert_eq!(dir.export_csv("people", Some("v1")), PEOPLE_CSV);
    assert_eq!(dir.export_csv("people", Some("v2")), BOBBY_CSV);

    let deleted = dir.strata(&["tag", "-d", "v1"]).ok();
    assert_eq!(
        deleted.stdout,
        format!("Deleted tag v1 (was {})\n", &first[..12])
    );
    assert_eq!(dir.strata(&["tag"]).ok().lines().len(), 2);
}

#[test]
fn a_tag_that_exists_cannot_be_created_again() {
    let dir = Dir::with_people();
    dir.strata(&["tag", "v1"]).ok();
    let line = dir.refused(&["tag", "v1"]);
    assert_mentions(&line, &["tag 'v1' already exists"]);
}

#[test]
fn reset_hard_moves_the_branch_back_and_discards_working_changes() {
    let dir = three_commits();
    let target = dir.rev_id("HEAD~2");
    dir.write("eve.csv", "id,name,score\n5,eve,5.5\n");
    dir.strata(&["import", "people", "eve.csv", "--mode", "append"])
        .ok();
    let out = dir.strata(&["reset", "--hard", "HEAD~2"]).ok();
    assert_eq!(
        out.stdout,
        format!("HEAD is now at {} add people\n", &target[..12])
    );
    assert_eq!(dir.rev_id("main"), target);
    assert_eq!(dir.strata(&["log", "--oneline"]).ok().lines().len(), 1);
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["tables"], json!([]));
}

#[test]
fn reset_hard_without_a_revision_discards_working_changes_only() {
    let dir = Dir::with_people();
    let head = dir.rev_id("HEAD");
    rename_bob(&dir);
    dir.strata(&["table", "rename", "people", "folks"]).ok();
    dir.strata(&["reset", "--hard"]).ok();
    assert_eq!(dir.rev_id("HEAD"), head);
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    assert_eq!(
        dir.strata(&["status", "--json"]).ok().json()["tables"],
        json!([])
    );
}

#[test]
fn reset_without_hard_is_a_usage_error_that_changes_nothing() {
    let dir = Dir::with_people();
    rename_bob(&dir);
    let before = dir.snapshot();
    let stderr = dir.strata(&["reset", "HEAD"]).usage_error();
    assert_mentions(&stderr, &["--hard"]);
    before.assert_same(&dir.snapshot(), "reset without --hard");
}

#[test]
fn an_unmerged_branch_is_kept_by_d_and_deleted_by_capital_d() {
    let dir = Dir::with_people();
    dir.strata(&["checkout", "-b", "topic"]).ok();
    dir.write("more.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "only on topic"]).ok();
    let topic = dir.rev_id("topic");
    dir.strata(&["checkout", "main"]).ok();

    let line = dir.refused(&["branch", "-d", "topic"]);
    assert_mentions(&line, &["branch 'topic' is not merged", &topic[..12], "-D"]);
    let out = dir.strata(&["branch", "-D", "topic"]).ok();
    assert_eq!(
        out.stdout,
        format!("Deleted branch topic (was {})\n", &topic[..12])
    );
    dir.refused(&["log", "topic"]);
}

#[test]
fn a_branch_is_renamed_with_m_and_head_follows_the_current_one() {
    let dir = Dir::with_people();
    let head = dir.rev_id("HEAD");
    dir.strata(&["branch", "feature"]).ok();
    let out = dir.strata(&["branch", "-m", "feature", "topic"]).ok();
    assert_eq!(
        out.stdout,
        format!("Renamed branch feature to topic (at {})\n", &head[..12])
    );
    dir.strata(&["branch", "-m", "trunk"]).ok();
    let names: Vec<String> = dir
        .strata(&["branch", "--json"])
        .ok()
        .json_lines()
        .iter()
        .map(|b| {
            format!(
                "{}{}",
                b["name"].as_str().unwrap_or(""),
                if b["current"] == true { "*" } else { "" }
            )
        })
        .collect();
    assert_eq!(names, ["topic", "trunk*"]);
    let line = dir.refused(&["branch", "-m", "topic", "trunk"]);
    assert_mentions(&line, &["branch 'trunk' already exists"]);
    let line = dir.refused(&["branch", "-m", "nope", "other"]);
    assert_mentions(&line, &["unknown branch 'nope'"]);
}

#[test]
fn checkout_dash_goes_back_to_the_previous_branch() {
    let dir = Dir::with_people();
    let line = dir.refused(&["checkout", "-"]);
    assert_mentions(&line, &["no previous branch"]);
    dir.strata(&["checkout", "-b", "topic"]).ok();
    let out = dir.strata(&["checkout", "-"]).ok();
    assert_eq!(out.stdout, "Switched to branch 'main'\n");
    let out = dir.strata(&["checkout", "-"]).ok();
    assert_eq!(out.stdout, "Switched to branch 'topic'\n");
}

#[test]
fn an_annotated_tag_keeps_its_tagger_and_message_through_push_and_clone() {
    let dir = three_commits();
    dir.strata(&[
        "tag",
        "-a",
        "v1",
        "-m",
        "first release\n\nwith notes",
        "HEAD~1",
    ])
    .ok();
    dir.strata(&["tag", "light"]).ok();
    let listed = dir.strata(&["tag"]).ok().stdout;
    assert_mentions(&listed, &["v1", "first release"]);
    let tags = dir.strata(&["tag", "--json"]).ok().json_lines();
    assert_eq!(tags[0]["name"], "light");
    assert!(tags[0].get("note").is_none(), "{tags:?}");
    assert_eq!(tags[1]["note"]["tagger"], AUTHOR);
    assert_eq!(tags[1]["note"]["message"], "first release\n\nwith notes");

    let shown = dir.strata(&["show", "v1", "--stat"]).ok().stdout;
    assert!(
        shown.starts_with(&format!("tag v1\nTagger: {AUTHOR}\nDate:   ")),
        "{shown}"
    );
    assert_mentions(&shown, &["first release", "with notes", "commit "]);

    let (_hub_dir, remote) = crate::remote::hub();
    dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    dir.strata(&["push", "--create", "origin", "main"]).ok();
    dir.strata(&["push", "origin", "v1"]).ok();
    let clone = Dir::empty();
    clone
        .strata(&[
            "clone",
            &crate::remote::file_url(&remote),
            arg(clone.path()),
        ])
        .ok();
    let json = clone.strata(&["show", "v1", "--json"]).ok().json();
    assert_eq!(json["tag"]["message"], "first release\n\nwith notes");
    assert_eq!(json["id"], dir.rev_id("v1"));

    // -a needs a message (there is no editor to ask for one).
    let usage = dir.refused_usage(&["tag", "-a", "v2"]);
    assert_mentions(&usage, &["--message"]);
}

#[test]
fn branch_lists_remote_tracking_branches_with_a_and_r_and_log_takes_a_count() {
    let dir = three_commits();
    let (_hub_dir, remote) = crate::remote::hub();
    dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    dir.strata(&["push", "--create", "origin", "main"]).ok();
    dir.strata(&["branch", "topic"]).ok();
    let all = dir.strata(&["branch", "-a"]).ok();
    assert_eq!(
        all.lines()
            .iter()
            .map(|l| l.split_whitespace().find(|w| *w != "*").unwrap_or(""))
            .collect::<Vec<_>>(),
        ["main", "topic", "remotes/origin/main"],
        "{all:?}"
    );
    let remotes = dir.strata(&["branch", "-r", "--json"]).ok().json();
    assert_eq!(remotes["name"], "origin/main");
    assert_eq!(remotes["commit"], dir.rev_id("main"));

    let two = dir.strata(&["log", "-2", "--oneline"]).ok();
    assert_eq!(two.lines().len(), 2, "{two:?}");
    let one = dir.strata(&["reflog", "-1"]).ok();
    assert_eq!(one.lines().len(), 1, "{one:?}");
}

#[test]
fn show_prints_the_changed_rows_under_the_table_of_changes() {
    let dir = three_commits();
    let out = dir.strata(&["show", "HEAD~1"]).ok().stdout;
    assert_mentions(
        &out,
        &[
            "second",
            "diff people",
            "~ (id=2) name: \"bob\" -> \"bobby\"",
            "+ (id=4)",
        ],
    );
    let stat = dir.strata(&["show", "HEAD~1", "--stat"]).ok().stdout;
    assert!(!stat.contains("diff people"), "{stat}");
    assert_eq!(
        table_row(&stat, "people"),
        ["people", "modified", "1", "0", "1"]
    );
}

#[test]
fn leaving_a_detached_head_with_commits_on_no_branch_warns_and_says_how_to_keep_them() {
    let dir = three_commits();
    dir.strata(&["checkout", "HEAD~1"]).ok();
    dir.write("eve.csv", "id,name,score\n5,eve,5.0\n");
    dir.strata(&["import", "people", "eve.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "adrift"]).ok();
    let adrift = dir.rev_id("HEAD");
    let out = dir.strata(&["checkout", "main"]).ok();
    assert_mentions(
        &out.stderr,
        &[
            "warning: you are leaving 1 commit behind, not on any branch:",
            &format!("{} adrift", &adrift[..12]),
            &format!("strata branch NAME {}", &adrift[..12]),
        ],
    );
    // Nothing is left behind when the commits are on a branch, or when there are none.
    dir.strata(&["checkout", &adrift]).ok();
    dir.strata(&["branch", "kept", &adrift]).ok();
    let out = dir.strata(&["checkout", "main"]).ok();
    assert!(!out.stderr.contains("warning"), "{out:?}");
    dir.strata(&["checkout", "HEAD~1"]).ok();
    let out = dir.strata(&["checkout", "main"]).ok();
    assert!(!out.stderr.contains("warning"), "{out:?}");
}
