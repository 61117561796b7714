//! `strata diff`: which rows and cells changed between the working tables and HEAD, a
//! revision and the working tables, or two revisions; per table, as counts, or as JSON Lines.

use serde_json::{json, Value};

use crate::harness::*;

/// Changes `people` as [`PEOPLE_CSV`] left it: bob renamed bobby, dee added, ann removed.
fn change_people(dir: &Dir) {
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n4,dee,4.5\n");
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    dir.write("gone.csv", "id\n1\n");
    dir.strata(&["delete", "people", "--keys", "gone.csv"]).ok();
}

/// The human lines for [`change_people`]'s changes, after the `diff people` header.
const PEOPLE_CHANGES: [&str; 3] = [
    "- (id=1) id=1, name=\"ann\", score=1.5",
    "~ (id=2) name: \"bob\" -> \"bobby\"",
    "+ (id=4) id=4, name=\"dee\", score=4.5",
];

/// The JSON lines for [`change_people`]'s changes.
fn people_changes_json() -> Vec<Value> {
    vec![
        json!({"table": "people", "kind": "removed", "key": {"id": 1},
               "old": {"id": 1, "name": "ann", "score": 1.5}, "new": null}),
        json!({"table": "people", "kind": "modified", "key": {"id": 2},
               "old": {"id": 2, "name": "bob", "score": 2.5},
               "new": {"id": 2, "name": "bobby", "score": 2.5}, "changed": ["name"]}),
        json!({"table": "people", "kind": "added", "key": {"id": 4},
               "old": null, "new": {"id": 4, "name": "dee", "score": 4.5}}),
    ]
}

/// A repository with people committed, then [`change_people`] committed as a second commit.
fn two_commits() -> Dir {
    let dir = Dir::with_people();
    change_people(&dir);
    dir.strata(&["commit", "-m", "second"]).ok();
    dir
}

fn expected_lines(header: &str, changes: &[&str]) -> Vec<String> {
    std::iter::once(header.to_string())
        .chain(changes.iter().map(|c| c.to_string()))
        .collect()
}

#[test]
fn diff_with_no_revision_shows_the_working_changes_since_head_row_by_row() {
    let dir = Dir::with_people();
    change_people(&dir);
    let out = dir.strata(&["diff"]).ok();
    assert_eq!(out.lines(), expected_lines("diff people", &PEOPLE_CHANGES));
}

#[test]
fn diff_of_clean_working_tables_prints_nothing_and_succeeds() {
    let dir = Dir::with_people();
    let out = dir.strata(&["diff"]).ok();
    assert_eq!(out.stdout, "");
    let out = dir.strata(&["diff", "--json"]).ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn diff_changes_nothing_in_the_repository() {
    let dir = Dir::with_people();
    change_people(&dir);
    let before = dir.snapshot();
    dir.strata(&["diff"]).ok();
    dir.strata(&["diff", "--json", "--stat"]).ok();
    dir.strata(&["diff", "HEAD"]).ok();
    before.assert_same(&dir.snapshot(), "diff");
}

#[test]
fn diff_in_a_repository_without_commits_shows_every_table_as_new() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();
    let out = dir.strata(&["diff"]).ok();
    assert_eq!(
        out.lines(),
        [
            "diff people (new table)",
            "+ (id=1) id=1, name=\"ann\", score=1.5",
            "+ (id=2) id=2, name=\"bob\", score=2.5",
            "+ (id=3) id=3, name=\"cy\", score=3.0",
        ]
    );
    let json = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(json.len(), 4, "{json:?}");
    assert_eq!(json[0], json!({"table": "people", "kind": "table_added"}));
    assert!(json[1..].iter().all(|l| l["kind"] == "added"), "{json:?}");
}

#[test]
fn diff_with_one_revision_compares_that_revision_with_the_working_tables() {
    let dir = two_commits();
    // An uncommitted change on top: cy's score.
    dir.write("cy.csv", "id,name,score\n3,cy,3.5\n");
    dir.strata(&["import", "people", "cy.csv", "--mode", "upsert"])
        .ok();

    let since_first = dir.strata(&["diff", "HEAD~1"]).ok();
    assert_eq!(
        since_first.lines(),
        [
            "diff people",
            PEOPLE_CHANGES[0],
            PEOPLE_CHANGES[1],
            "~ (id=3) score: 3.0 -> 3.5",
            PEOPLE_CHANGES[2],
        ]
    );
    let since_head = dir.strata(&["diff", "HEAD"]).ok();
    assert_eq!(
        since_head.lines(),
        ["diff people", "~ (id=3) score: 3.0 -> 3.5"]
    );
    // A revision named by its commit id works the same as by its name.
    let first = dir.rev_id("HEAD~1");
    let by_id = dir.strata(&["diff", &first[..12]]).ok();
    assert_eq!(by_id.stdout, since_first.stdout);
}

#[test]
fn diff_with_two_revisions_compares_them_and_ignores_the_working_tables() {
    let dir = two_commits();
    dir.write("cy.csv", "id,name,score\n3,cy,3.5\n");
    dir.strata(&["import", "people", "cy.csv", "--mode", "upsert"])
        .ok();

    let forward = dir.strata(&["diff", "HEAD~1", "HEAD"]).ok();
    assert_eq!(
        forward.lines(),
        expected_lines("diff people", &PEOPLE_CHANGES)
    );
    let backward = dir.strata(&["diff", "HEAD", "HEAD~1"]).ok();
    assert_eq!(
        backward.lines(),
        [
            "diff people",
            "+ (id=1) id=1, name=\"ann\", score=1.5",
            "~ (id=2) name: \"bobby\" -> \"bob\"",
            "- (id=4) id=4, name=\"dee\", score=4.5",
        ]
    );
    let same = dir.strata(&["diff", "HEAD", "main"]).ok();
    assert_eq!(same.stdout, "");
}

#[test]
fn diff_json_gives_one_line_per_changed_row_with_key_old_new_and_changed_cells() {
    let dir = Dir::with_people();
    change_people(&dir);
    let lines = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(lines, people_changes_json());
    dir.strata(&["commit", "-m", "second"]).ok();
    let lines = dir
        .strata(&["diff", "--json", "HEAD~1", "HEAD"])
        .ok()
        .json_lines();
    assert_eq!(lines, people_changes_json());
}

#[test]
fn diff_shows_cell_values_of_every_type_including_nulls() {
    let dir = Dir::repo();
    dir.write(
        "items.csv",
        "sku,label,qty,price,active\na1,bolt,10,0.25,true\na2,nut,,1.5,false\na3,,7,2.0,true\n",
    );
    dir.strata(&["import", "items", "items.csv", "-k", "sku"])
        .ok();
    dir.strata(&["commit", "-m", "items"]).ok();
    dir.write(
        "change.csv",
        "sku,label,qty,price,active\na1,bolt,12,0.25,false\na2,nut,3,1.5,false\na3,washer,,2.0,true\n",
    );
    dir.strata(&["import", "items", "change.csv", "--mode", "upsert"])
        .ok();

    let lines = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["key"], json!({"sku": "a1"}));
    assert_eq!(lines[0]["changed"], json!(["qty", "active"]));
    assert_eq!(lines[0]["old"]["qty"], 10);
    assert_eq!(lines[0]["new"]["qty"], 12);
    assert_eq!(lines[0]["old"]["active"], true);
    assert_eq!(lines[0]["new"]["active"], false);
    assert_eq!(lines[1]["changed"], json!(["qty"]));
    assert_eq!(lines[1]["old"]["qty"], Value::Null);
    assert_eq!(lines[1]["new"]["qty"], 3);
    assert_eq!(lines[2]["changed"], json!(["label", "qty"]));
    assert_eq!(lines[2]["old"]["label"], Value::Null);
    assert_eq!(lines[2]["new"]["label"], "washer");
    assert_eq!(lines[2]["old"]["qty"], 7);
    assert_eq!(lines[2]["new"]["qty"], Value::Null);

    let human = dir.strata(&["diff"]).ok();
    assert_eq!(
        human.lines(),
        [
            "diff items",
            "~ (sku=\"a1\") qty: 10 -> 12, active: true -> false",
            "~ (sku=\"a2\") qty: null -> 3",
            "~ (sku=\"a3\") label: null -> \"washer\", qty: 7 -> null",
        ]
    );
}

#[test]
fn diff_names_every_column_of_a_composite_key() {
    let dir = Dir::repo();
    dir.write(
        "sales.csv",
        "region,year,amount\neast,2023,1\neast,2024,2\n",
    );
    dir.strata(&["import", "sales", "sales.csv", "-k", "region,year"])
        .ok();
    dir.strata(&["commit", "-m", "sales"]).ok();
    dir.write("more.csv", "region,year,amount\neast,2024,5\nwest,2024,3\n");
    dir.strata(&["import", "sales", "more.csv", "--mode", "upsert"])
        .ok();
    let lines = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(
        lines,
        [
            json!({"table": "sales", "kind": "modified", "key": {"region": "east", "year": 2024},
                   "old": {"region": "east", "year": 2024, "amount": 2},
                   "new": {"region": "east", "year": 2024, "amount": 5}, "changed": ["amount"]}),
            json!({"table": "sales", "kind": "added", "key": {"region": "west", "year": 2024},
                   "old": null, "new": {"region": "west", "year": 2024, "amount": 3}}),
        ]
    );
    let human = dir.strata(&["diff"]).ok();
    assert_eq!(
        human.lines(),
        [
            "diff sales",
            "~ (region=\"east\", year=2024) amount: 2 -> 5",
            "+ (region=\"west\", year=2024) region=\"west\", year=2024, amount=3",
        ]
    );
}

/// A repository where `people` and `cities` both changed since HEAD.
fn two_tables_changed() -> Dir {
    let dir = Dir::with_people();
    dir.write("cities.csv", "city,pop\noslo,1\nrome,2\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    dir.strata(&["commit", "-m", "cities"]).ok();
    change_people(&dir);
    dir.write("pop.csv", "city,pop\nrome,3\n");
    dir.strata(&["import", "cities", "pop.csv", "--mode", "upsert"])
        .ok();
    dir
}

#[test]
fn diff_lists_tables_in_name_order_and_table_limits_it_to_one() {
    let dir = two_tables_changed();
    let all = dir.strata(&["diff"]).ok();
    assert_eq!(
        all.lines(),
        [
            "diff cities",
            "~ (city=\"rome\") pop: 2 -> 3",
            "diff people",
            PEOPLE_CHANGES[0],
            PEOPLE_CHANGES[1],
            PEOPLE_CHANGES[2],
        ]
    );
    let people = dir.strata(&["diff", "--table", "people"]).ok();
    assert_eq!(
        people.lines(),
        expected_lines("diff people", &PEOPLE_CHANGES)
    );
    let cities = dir
        .strata(&["diff", "--table", "cities", "--json"])
        .ok()
        .json_lines();
    assert_eq!(cities.len(), 1, "{cities:?}");
    assert_eq!(cities[0]["table"], "cities");
    assert_eq!(cities[0]["changed"], json!(["pop"]));
}

#[test]
fn diff_of_an_unknown_table_is_refused_with_its_name() {
    let dir = two_tables_changed();
    let line = dir.refused(&["diff", "--table", "nobody"]);
    assert_mentions(&line, &["unknown table 'nobody'"]);
}

#[test]
fn diff_of_an_unknown_revision_is_refused_with_its_name() {
    let dir = Dir::with_people();
    let line = dir.refused(&["diff", "no-such-branch"]);
    assert_mentions(&line, &["unknown revision 'no-such-branch'"]);
    let line = dir.refused(&["diff", "HEAD", "no-such-branch"]);
    assert_mentions(&line, &["unknown revision 'no-such-branch'"]);
}

#[test]
fn diff_stat_counts_rows_per_table_for_people_and_in_json() {
    let dir = two_tables_changed();
    let stat = dir.strata(&["diff", "--stat"]).ok();
    assert_eq!(
        stat.lines(),
        [
            "cities | 0 added, 0 removed, 1 modified",
            "people | 1 added, 1 removed, 1 modified",
        ]
    );
    let json = dir.strata(&["diff", "--stat", "--json"]).ok().json_lines();
    assert_eq!(
        json,
        [
            json!({"table": "cities", "kind": "stat", "added": 0, "removed": 0, "modified": 1,
                   "schema_changed": false}),
            json!({"table": "people", "kind": "stat", "added": 1, "removed": 1, "modified": 1,
                   "schema_changed": false}),
        ]
    );
    let one = dir.strata(&["diff", "--stat", "--table", "cities"]).ok();
    assert_eq!(one.lines(), ["cities | 0 added, 0 removed, 1 modified"]);
}

#[test]
fn diff_reports_a_schema_change_before_the_rows_it_touched() {
    let dir = Dir::with_people();
    dir.write(
        "wide.csv",
        "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,\n",
    );
    dir.strata(&["import", "people", "wide.csv", "--mode", "replace"])
        .ok();

    let human = dir.strata(&["diff"]).ok();
    assert_eq!(
        human.lines(),
        [
            "diff people",
            "  schema: added column team",
            "~ (id=1) team: (none) -> \"red\"",
            "~ (id=2) team: (none) -> \"blue\"",
            "~ (id=3) team: (none) -> null",
        ]
    );

    let json = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(json.len(), 4, "{json:?}");
    assert_eq!(
        json[0],
        json!({"table": "people", "kind": "schema", "added": ["team"], "dropped": [],
               "retyped": [], "key_changed": false})
    );
    assert_eq!(
        json[1],
        json!({"table": "people", "kind": "modified", "key": {"id": 1},
               "old": {"id": 1, "name": "ann", "score": 1.5},
               "new": {"id": 1, "name": "ann", "score": 1.5, "team": "red"}, "changed": ["team"]})
    );

    let stat = dir.strata(&["diff", "--stat"]).ok();
    assert_eq!(
        stat.lines(),
        ["people | 0 added, 0 removed, 3 modified, schema changed"]
    );
    let stat = dir.strata(&["diff", "--stat", "--json"]).ok().json_lines();
    let counts: Vec<&Value> = stat.iter().filter(|l| l["kind"] == "stat").collect();
    assert_eq!(counts.len(), 1, "{stat:?}");
    assert_eq!(counts[0]["schema_changed"], true);
    assert_eq!(counts[0]["modified"], 3);
}

#[test]
fn diff_reports_a_dropped_column_and_a_new_key_as_schema_changes() {
    let dir = Dir::with_people();
    dir.write("narrow.csv", "id,name\n1,ann\n2,bob\n3,cy\n");
    dir.strata(&[
        "import",
        "people",
        "narrow.csv",
        "--mode",
        "replace",
        "-k",
        "name",
    ])
    .ok();
    let json = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(json[0]["kind"], "schema", "{json:?}");
    assert_eq!(json[0]["dropped"], json!(["score"]));
    assert_eq!(json[0]["key_changed"], true);
    let human = dir.strata(&["diff"]).ok();
    assert_eq!(human.lines()[0], "diff people");
    assert_mentions(
        &human.stdout,
        &[
            "schema: dropped column score",
            "schema: primary key changed",
        ],
    );
}

#[test]
fn diff_json_marks_added_and_removed_tables_before_their_rows() {
    let dir = Dir::with_people();
    dir.write("cities.csv", "city,pop\noslo,1\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    dir.strata(&["table", "drop", "people"]).ok();

    let json = dir.strata(&["diff", "--json"]).ok().json_lines();
    assert_eq!(
        json,
        [
            json!({"table": "cities", "kind": "table_added"}),
            json!({"table": "cities", "kind": "added", "key": {"city": "oslo"}, "old": null,
                   "new": {"city": "oslo", "pop": 1}}),
            json!({"table": "people", "kind": "table_removed"}),
            json!({"table": "people", "kind": "removed", "key": {"id": 1},
                   "old": {"id": 1, "name": "ann", "score": 1.5}, "new": null}),
            json!({"table": "people", "kind": "removed", "key": {"id": 2},
                   "old": {"id": 2, "name": "bob", "score": 2.5}, "new": null}),
            json!({"table": "people", "kind": "removed", "key": {"id": 3},
                   "old": {"id": 3, "name": "cy", "score": 3.0}, "new": null}),
        ]
    );
    let human = dir.strata(&["diff"]).ok();
    assert_eq!(human.lines()[0], "diff cities (new table)");
    assert!(
        human.lines().contains(&"diff people (table removed)"),
        "{human:?}"
    );
}

#[test]
fn diff_of_a_renamed_table_shows_one_table_removed_and_one_added() {
    let dir = Dir::with_people();
    dir.strata(&["table", "rename", "people", "persons"]).ok();
    let stat = dir.strata(&["diff", "--stat"]).ok();
    assert_eq!(
        stat.lines(),
        [
            "people | 0 added, 3 removed, 0 modified",
            "persons | 3 added, 0 removed, 0 modified",
        ]
    );
}
