//! `strata diff` as people see it: a `diff TABLE` header per table, one line per changed row
//! (`+`, `-`, `~` with the changed cells), schema lines, `--stat` counts, and `--json` lines
//! as printed. Which rows a diff gives is tested through the library (strata/tests/it/diff.rs).

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

fn expected_lines(header: &str, changes: &[&str]) -> Vec<String> {
    std::iter::once(header.to_string())
        .chain(changes.iter().map(|c| c.to_string()))
        .collect()
}

#[test]
fn diff_prints_each_changed_row_for_people_and_one_json_line_per_change() {
    let dir = Dir::with_people();
    change_people(&dir);
    let out = dir.strata(&["diff"]).ok();
    assert_eq!(out.lines(), expected_lines("diff people", &PEOPLE_CHANGES));
    let json = dir.strata(&["diff", "--json"]).ok();
    assert_eq!(json.json_lines(), people_changes_json());
    assert_eq!(json.lines().len(), 3, "one change per line:\n{json:?}");

    // Revisions as arguments: one (against the working tables) or two.
    dir.strata(&["commit", "-m", "second"]).ok();
    assert_eq!(dir.strata(&["diff"]).ok().stdout, "");
    assert_eq!(dir.strata(&["diff", "--json"]).ok().stdout, "");
    let since_first = dir.strata(&["diff", "HEAD~1"]).ok();
    assert_eq!(since_first.stdout, out.stdout);
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
}

#[test]
fn diff_prints_cell_values_of_every_type_including_nulls() {
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
fn diff_prints_every_column_of_a_composite_key() {
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
fn diff_prints_a_header_for_each_table_and_marks_new_and_removed_tables() {
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

    let dir = Dir::with_people();
    dir.write("cities.csv", "city,pop\noslo,1\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    dir.strata(&["table", "drop", "people"]).ok();
    let human = dir.strata(&["diff"]).ok();
    assert_eq!(
        human.lines(),
        [
            "diff cities (new table)",
            "+ (city=\"oslo\") city=\"oslo\", pop=1",
            "diff people (table removed)",
            "- (id=1) id=1, name=\"ann\", score=1.5",
            "- (id=2) id=2, name=\"bob\", score=2.5",
            "- (id=3) id=3, name=\"cy\", score=3.0",
        ]
    );
}

#[test]
fn diff_prints_schema_changes_before_the_rows_they_touched() {
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
    let stat = dir.strata(&["diff", "--stat"]).ok();
    assert_eq!(
        stat.lines(),
        ["people | 0 added, 0 removed, 3 modified, schema changed"]
    );

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
    let human = dir.strata(&["diff"]).ok();
    assert_eq!(
        human.lines()[..3],
        [
            "diff people",
            "  schema: dropped column score",
            "  schema: primary key changed",
        ]
    );
}

#[test]
fn diff_stat_prints_one_line_of_counts_per_table_and_json_lines() {
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
fn diff_exit_code_and_quiet_say_whether_anything_changed() {
    let dir = Dir::with_people();
    let same = dir.strata(&["diff", "--exit-code"]).ok();
    assert_eq!(same.stdout, "");
    let quiet = dir.strata(&["diff", "--quiet"]).ok();
    assert_eq!(quiet.stdout, "");

    dir.write("more.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "upsert"])
        .ok();
    let out = dir.strata(&["diff", "--exit-code"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.contains("9"), "{out:?}");
    assert_eq!(out.stderr, "");
    let out = dir.strata(&["diff", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    // Without the flag a diff with changes succeeds, as git's does.
    dir.strata(&["diff"]).ok();
}

#[test]
fn status_short_and_porcelain_give_one_line_per_table() {
    let dir = Dir::with_people();
    dir.write("more.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "upsert"])
        .ok();
    dir.write("t.csv", "k\n1\n");
    dir.strata(&["import", "other", "t.csv", "-k", "k"]).ok();
    let short = dir.strata(&["status", "--short"]).ok();
    assert_eq!(short.stdout, "## main\nA  other\n M people\n");
    let porcelain = dir.strata(&["status", "--porcelain"]).ok();
    assert_eq!(porcelain.stdout, "A  other\n M people\n");
    dir.strata(&["commit", "-m", "both"]).ok();
    assert_eq!(dir.strata(&["status", "--porcelain"]).ok().stdout, "");
}

/// A repository where `items` changed since HEAD: a1's price rose past 10, a2's qty changed
/// (price 12 throughout), a3 (price 20) was removed and a4 (price 1) added.
fn items_changed() -> Dir {
    let dir = Dir::repo();
    dir.write(
        "items.csv",
        "sku,label,qty,price\na1,bolt,10,5.5\na2,nut,3,12.0\na3,washer,7,20.0\n",
    );
    dir.strata(&["import", "items", "items.csv", "-k", "sku"])
        .ok();
    dir.strata(&["commit", "-m", "items"]).ok();
    dir.write(
        "change.csv",
        "sku,label,qty,price\na1,bolt,10,15.5\na2,nut,4,12.0\na4,pin,1,1.0\n",
    );
    dir.strata(&["import", "items", "change.csv", "--mode", "replace"])
        .ok();
    dir
}

const A1: &str = "~ (sku=\"a1\") price: 5.5 -> 15.5";
const A2: &str = "~ (sku=\"a2\") qty: 3 -> 4";
const A3: &str = "- (sku=\"a3\") sku=\"a3\", label=\"washer\", qty=7, price=20.0";
const A4: &str = "+ (sku=\"a4\") sku=\"a4\", label=\"pin\", qty=1, price=1.0";

#[test]
fn diff_where_shows_only_the_changed_rows_for_which_the_filter_holds() {
    let dir = items_changed();
    let all = dir.strata(&["diff"]).ok();
    assert_eq!(all.lines(), expected_lines("diff items", &[A1, A2, A3, A4]));

    // Without a prefix, either version may satisfy it: a1's new price, a2's and a3's.
    let out = dir.strata(&["diff", "--where", "price > 10"]).ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A1, A2, A3]));
    let out = dir
        .strata(&["diff", "--where", "price < 2 or label = 'washer'"])
        .ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A3, A4]));
    let out = dir
        .strata(&[
            "diff",
            "--where",
            "NOT (qty = 4 OR qty IS NULL) AND sku <> 'a4'",
        ])
        .ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A1, A3]));

    let json = dir
        .strata(&["diff", "--json", "--where", "qty = 3"])
        .ok()
        .json_lines();
    assert_eq!(json.len(), 1, "{json:?}");
    assert_eq!(json[0]["key"], json!({"sku": "a2"}));
    assert_eq!(json[0]["changed"], json!(["qty"]));
}

#[test]
fn diff_where_from_and_to_test_the_old_and_the_new_value() {
    let dir = items_changed();
    let out = dir
        .strata(&["diff", "--where", "from_price < 10 and to_price > 10"])
        .ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A1]));
    // An added row has no old version: its from_ values are null.
    let out = dir.strata(&["diff", "--where", "from_sku is null"]).ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A4]));
    let out = dir.strata(&["diff", "--where", "to_qty >= 4"]).ok();
    assert_eq!(out.lines(), expected_lines("diff items", &[A1, A2]));
}

#[test]
fn diff_where_counts_with_stat_and_decides_the_exit_code() {
    let dir = items_changed();
    let stat = dir
        .strata(&["diff", "--stat", "--where", "price > 10"])
        .ok();
    assert_eq!(stat.lines(), ["items | 0 added, 1 removed, 2 modified"]);
    let json = dir
        .strata(&["diff", "--stat", "--json", "--where", "price < 2"])
        .ok()
        .json_lines();
    assert_eq!(
        json,
        [
            json!({"table": "items", "kind": "stat", "added": 1, "removed": 0, "modified": 0,
                "schema_changed": false})
        ]
    );

    // No row passes: nothing is printed and there are no differences.
    let none = dir
        .strata(&["diff", "--exit-code", "--stat", "--where", "price > 100"])
        .ok();
    assert_eq!(none.stdout, "");
    let out = dir.strata(&["diff", "--quiet", "--where", "price > 100"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = dir.strata(&["diff", "--quiet", "--where", "price > 15"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn diff_where_applies_to_the_table_chosen_and_names_a_column_a_table_lacks() {
    let dir = two_tables_changed();
    let out = dir
        .strata(&["diff", "--table", "cities", "--where", "pop > 2"])
        .ok();
    assert_eq!(
        out.lines(),
        ["diff cities", "~ (city=\"rome\") pop: 2 -> 3"]
    );
    // Every table compared must have the column.
    let line = dir.refused(&["diff", "--where", "pop > 2"]);
    assert_mentions(
        &line,
        &["table 'people'", "no column 'pop'", "id, name, score"],
    );
    let line = dir.refused(&["diff", "--table", "cities", "--where", "pop = 'many'"]);
    assert_mentions(&line, &["column 'pop'", "'many'", "int64"]);
}

#[test]
fn a_diff_filter_that_does_not_parse_is_a_usage_error_saying_where() {
    let dir = items_changed();
    for (filter, at) in [
        ("price >", "character 8"),
        ("price > 10 and", "character 15"),
        ("(price > 10", "character 12"),
        ("price >> 10", "character 8"),
    ] {
        let err = dir.refused_usage(&["diff", "--where", filter]);
        let first = err.lines().next().unwrap_or_default();
        assert_mentions(first, &["--where", "invalid filter", at]);
    }
}
