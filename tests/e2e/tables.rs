//! table list, show, drop and rename.

use serde_json::json;

use crate::harness::*;

fn with_two_tables() -> Dir {
    let dir = Dir::with_people();
    dir.write("cities.csv", "city,country,pop\noslo,no,1\nrome,it,2\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "country,city"])
        .ok();
    dir
}

#[test]
fn table_list_shows_every_table_with_rows_columns_and_key() {
    let dir = with_two_tables();
    let human = dir.strata(&["table", "list"]).ok().stdout;
    assert_eq!(
        table_row(&human, "table"),
        ["table", "rows", "columns", "key"]
    );
    assert_eq!(
        table_row(&human, "cities"),
        ["cities", "2", "3", "country,", "city"]
    );
    assert_eq!(table_row(&human, "people"), ["people", "3", "3", "id"]);

    let json = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["table"], "cities");
    assert_eq!(json[0]["rows"], 2);
    assert_eq!(json[0]["columns"], 3);
    assert_eq!(json[0]["primary_key"], json!(["country", "city"]));
    assert_eq!(json[1]["table"], "people");
    assert_eq!(json[1]["rows"], 3);

    let committed = dir
        .strata(&["table", "list", "--json", "--rev", "HEAD"])
        .ok()
        .json_lines();
    assert_eq!(committed.len(), 1, "cities is not committed yet");
    assert_eq!(committed[0]["table"], "people");
}

#[test]
fn table_show_describes_columns_key_rows_and_chunks() {
    let dir = with_two_tables();
    let human = dir.strata(&["table", "show", "cities"]).ok().stdout;
    let json = dir
        .strata(&["table", "show", "cities", "--json"])
        .ok()
        .json();
    let id = json["id"].as_str().expect("an id");
    assert_mentions(
        &human,
        &[
            "table:       cities",
            &format!("id:          {id}"),
            "primary key: country, city",
            "rows:        2",
            "chunks:      1 (",
        ],
    );
    assert_eq!(table_row(&human, "pop"), ["pop", "int64", "true"]);
    assert_eq!(table_row(&human, "city"), ["city", "utf8", "false"]);
    assert_eq!(json["rows"], 2);
    assert_eq!(json["chunks"], 1);
    assert!(json["bytes"].as_u64().expect("bytes is a number") > 0);
    assert_eq!(json["primary_key"], json!(["country", "city"]));
    assert_eq!(
        json["columns"][2],
        json!({"name": "pop", "type": "int64", "nullable": true})
    );
}

#[test]
fn table_drop_removes_a_table_and_a_commit_records_it() {
    let dir = with_two_tables();
    dir.strata(&["commit", "-m", "cities"]).ok();
    let out = dir.strata(&["table", "drop", "cities"]).ok();
    assert_eq!(out.stdout, "Dropped table 'cities' (commit to record it)\n");
    let list = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert_eq!(list.len(), 1);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["tables"][0]["table"], "cities");
    assert_eq!(status["tables"][0]["state"], "removed");
    dir.strata(&["commit", "-m", "drop cities"]).ok();
    let line = dir.refused(&["export", "cities", "-"]);
    assert_mentions(&line, &["unknown table 'cities'"]);
    assert_eq!(
        dir.export_csv("cities", Some("HEAD~1")),
        "city,country,pop\nrome,it,2\noslo,no,1\n"
    );
}

#[test]
fn table_rename_keeps_the_rows_under_the_new_name() {
    let dir = with_two_tables();
    let out = dir.strata(&["table", "rename", "people", "folks"]).ok();
    assert_eq!(
        out.stdout,
        "Renamed table 'people' to 'folks' (commit to record it)\n"
    );
    assert_eq!(dir.export_csv("folks", None), PEOPLE_CSV);
    let line = dir.refused(&["export", "people", "-"]);
    assert_mentions(&line, &["unknown table 'people'"]);
    let status = dir.strata(&["status", "--json"]).ok().json();
    let states: Vec<(&str, &str)> = status["tables"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| {
            (
                t["table"].as_str().expect("a name"),
                t["state"].as_str().expect("a state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("cities", "added"),
            ("folks", "added"),
            ("people", "removed")
        ]
    );
}

#[test]
fn renaming_onto_an_existing_table_is_refused_and_changes_nothing() {
    let dir = with_two_tables();
    let line = dir.refused(&["table", "rename", "people", "cities"]);
    assert_mentions(&line, &["table 'cities' already exists"]);
}

#[test]
fn a_dropped_table_name_can_be_imported_again() {
    let dir = Dir::with_people();
    dir.strata(&["table", "drop", "people"]).ok();
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(
        status["tables"],
        json!([]),
        "the same rows make the same table"
    );
}

#[test]
fn table_alter_changes_columns_prints_each_change_and_diff_shows_it() {
    let dir = Dir::with_people();
    let out = dir
        .strata(&[
            "table",
            "alter",
            "people",
            "--add-column",
            "team:utf8=red",
            "--rename-column",
            "name=full_name",
            "--set-type",
            "score=utf8",
        ])
        .ok();
    assert_eq!(
        out.stdout,
        "Altered table 'people' (commit to record it):\n  added column team (utf8) = red\n  \
         renamed column name to full_name\n  changed column score to utf8\n\
         3 rows rewritten in 1 chunk\n"
    );
    assert_eq!(
        dir.export_csv("people", None),
        "id,full_name,score,team\n1,ann,1.5,red\n2,bob,2.5,red\n3,cy,3.0,red\n"
    );
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["tables"][0]["schema_changed"], true);
    let diff = dir.strata(&["diff"]).ok().stdout;
    assert_mentions(
        &diff,
        &[
            "schema: added column full_name",
            "schema: added column team",
            "schema: dropped column name",
            "schema: retyped score: float64 -> utf8",
        ],
    );
}

#[test]
fn table_alter_refuses_a_value_that_does_not_convert_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&[
        "table",
        "alter",
        "people",
        "--add-column",
        "team:utf8",
        "--set-type",
        "name=int64",
    ]);
    assert_mentions(
        &line,
        &[
            "table 'people'",
            "column 'name'",
            "\"ann\"",
            "(id=1)",
            "int64",
            "nothing was changed",
            "fix that row first ('strata import people FILE --mode upsert')",
        ],
    );
    let line = dir.refused(&["table", "alter", "people", "--drop-column", "id"]);
    assert_mentions(&line, &["column 'id'", "key columns cannot be dropped"]);
}

#[test]
fn table_alter_without_a_change_or_with_a_bad_type_is_a_usage_error() {
    let dir = Dir::with_people();
    let err = dir.refused_usage(&["table", "alter", "people"]);
    assert_mentions(&err, &["--add-column", "--set-type"]);
    let err = dir.refused_usage(&["table", "alter", "people", "--set-type", "score=money"]);
    assert_mentions(&err, &["unknown column type 'money'"]);
    let err = dir.refused_usage(&["table", "alter", "people", "--rename-column", "name"]);
    assert_mentions(&err, &["OLD=NEW"]);
}
