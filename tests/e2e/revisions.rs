//! Naming commits: HEAD, branches, tags, ids, prefixes, REV~N and REV^; and reading tables
//! as they were at any of them.

use crate::harness::*;
use crate::history::three_commits;

/// The commit ids of [`three_commits`], oldest first.
fn ids(dir: &Dir) -> [String; 3] {
    let log = dir.strata(&["log", "--json"]).ok().json_lines();
    let id = |i: usize| log[i]["id"].as_str().expect("ids are strings").to_string();
    [id(2), id(1), id(0)]
}

#[test]
fn every_revision_form_names_the_expected_commit() {
    let dir = three_commits();
    let [c1, c2, c3] = ids(&dir);
    dir.strata(&["tag", "v2", &c2]).ok();
    dir.strata(&["branch", "side", &c1]).ok();
    let upper = c1[..10].to_ascii_uppercase();
    let cases: Vec<(&str, &String)> = vec![
        ("HEAD", &c3),
        ("main", &c3),
        ("side", &c1),
        ("v2", &c2),
        (&c1, &c1),
        (&c2[..8], &c2),
        (&c3[..12], &c3),
        (&upper, &c1),
        ("HEAD~0", &c3),
        ("HEAD~1", &c2),
        ("HEAD~2", &c1),
        ("HEAD~", &c2),
        ("HEAD^", &c2),
        ("HEAD^^", &c1),
        ("HEAD^1", &c2),
        ("HEAD~1^", &c1),
        ("main~2", &c1),
        ("v2~1", &c1),
        ("v2^", &c1),
    ];
    let shown: Vec<String> = cases
        .iter()
        .filter(|(rev, want)| dir.rev_id(rev) != **want)
        .map(|(rev, want)| format!("{rev} should name {}", &want[..12]))
        .collect();
    assert!(shown.is_empty(), "{}", shown.join("\n"));
    let prefixed = format!("{}~1", &c3[..8]);
    assert_eq!(dir.rev_id(&prefixed), c2);
}

#[test]
fn a_revision_before_the_first_commit_says_where_history_ends_and_changes_nothing() {
    let dir = three_commits();
    for (rev, reason) in [
        ("HEAD~3", "'HEAD~2' is the first commit"),
        ("HEAD^^^", "'HEAD^^' is the first commit"),
        ("HEAD^2", "'HEAD' has one parent ('HEAD^')"),
        ("main~10", "'main~2' is the first commit"),
        ("HEAD~2~1", "'HEAD~2' is the first commit"),
    ] {
        let line = dir.refused(&["log", rev]);
        assert_mentions(
            &line,
            &[
                &format!("revision '{rev}' names no commit"),
                reason,
                "strata log",
            ],
        );
    }
}

#[test]
fn an_id_prefix_that_matches_no_commit_is_an_unknown_revision() {
    let dir = three_commits();
    let [c1, ..] = ids(&dir);
    let wrong: String = c1[..8]
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let line = dir.refused(&["show", &wrong]);
    assert_mentions(&line, &[&format!("unknown revision '{wrong}'")]);
}

#[test]
fn the_id_of_a_table_object_is_not_a_commit() {
    let dir = three_commits();
    let table = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    let id = table["id"].as_str().expect("a table id").to_string();
    let line = dir.refused(&["show", &id]);
    assert_mentions(&line, &[&id]);
}

#[test]
fn an_export_of_an_old_commit_is_the_data_as_it_was_then() {
    let dir = three_commits();
    let second = "id,name,score\n1,ann,1.5\n2,bobby,2.5\n3,cy,3.0\n4,dee,4.5\n";
    let third = "id,name,score\n2,bobby,2.5\n3,cy,3.0\n4,dee,4.5\n";
    dir.write("working.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "working.csv", "--mode", "append"])
        .ok();
    let working = format!("{third}9,zed,9.5\n");

    assert_eq!(dir.export_csv("people", None), working);
    assert_eq!(dir.export_csv("people", Some("HEAD")), third);
    assert_eq!(dir.export_csv("people", Some("HEAD~1")), second);
    assert_eq!(dir.export_csv("people", Some("HEAD~2")), PEOPLE_CSV);
    let [c1, ..] = ids(&dir);
    assert_eq!(dir.export_csv("people", Some(&c1)), PEOPLE_CSV);

    dir.strata(&["export", "people", "then.csv", "--rev", "HEAD~1"])
        .ok();
    assert_eq!(dir.read_string("then.csv"), second);
    dir.strata(&["export", "people", "then.jsonl", "--rev", "HEAD~2"])
        .ok();
    assert_eq!(dir.read_string("then.jsonl").lines().count(), 3);
}

#[test]
fn table_list_and_show_read_any_revision() {
    let dir = three_commits();
    dir.strata(&["table", "drop", "people"]).ok();
    dir.strata(&["commit", "-m", "drop"]).ok();
    let now = dir.strata(&["table", "list", "--json"]).ok();
    assert!(now.stdout.is_empty(), "{now:?}");
    let then = dir
        .strata(&["table", "list", "--json", "--rev", "HEAD~2"])
        .ok()
        .json_lines();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0]["rows"], 4);
    let show = dir
        .strata(&["table", "show", "people", "--json", "--rev", "HEAD~3"])
        .ok()
        .json();
    assert_eq!(show["rows"], 3);
}
