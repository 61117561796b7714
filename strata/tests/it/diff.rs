//! Diff: which rows and cells changed between the working tables and HEAD, a revision and the
//! working tables, or two revisions; per table, or as counts.

use serde_json::{json, Value};
use strata::{Change, DiffOptions, ErrorKind, RowDiff, Suggestion};

use crate::common::*;

type Result = strata::Result<()>;

/// Changes `people` as [`PEOPLE_CSV`] left it: bob renamed bobby, dee added, ann removed.
async fn change_people(t: &TestRepo) {
    t.upsert("people", "id,name,score\n2,bobby,2.5\n4,dee,4.5\n")
        .await;
    t.delete_keys("people", "id\n1\n").await;
}

/// The changes [`change_people`] makes, as they serialize.
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

/// cy's score changed from 3.0 to 3.5, as it serializes.
fn cy_change_json() -> Value {
    json!({"table": "people", "kind": "modified", "key": {"id": 3},
           "old": {"id": 3, "name": "cy", "score": 3.0},
           "new": {"id": 3, "name": "cy", "score": 3.5}, "changed": ["score"]})
}

/// A repository with people committed, then [`change_people`] committed as a second commit.
async fn two_commits() -> TestRepo {
    let t = TestRepo::with_people().await;
    change_people(&t).await;
    t.commit_changes("second").await;
    t
}

/// Diff options limited to one table.
fn of_table(table: &str) -> DiffOptions {
    DiffOptions {
        table: Some(table.into()),
        ..Default::default()
    }
}

/// Diff options that count rows per table.
fn stat(opts: DiffOptions) -> DiffOptions {
    DiffOptions { stat: true, ..opts }
}

#[tokio::test]
async fn a_diff_with_no_revision_gives_the_working_changes_since_head_row_by_row() {
    let t = TestRepo::with_people().await;
    change_people(&t).await;
    assert_eq!(
        t.diff_json(&DiffOptions::default()).await,
        people_changes_json()
    );
}

#[tokio::test]
async fn a_diff_of_clean_working_tables_is_empty() {
    let t = TestRepo::with_people().await;
    assert_eq!(
        t.diff_json(&DiffOptions::default()).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        t.diff_json(&stat(DiffOptions::default())).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn a_diff_changes_nothing_in_the_repository() {
    let t = TestRepo::with_people().await;
    change_people(&t).await;
    let before = t.snapshot();
    t.diff_json(&DiffOptions::default()).await;
    t.diff_json(&stat(DiffOptions::default())).await;
    t.diff_json(&between(Some("HEAD"), None)).await;
    before.assert_same(&t.snapshot(), "diff");
}

#[tokio::test]
async fn a_diff_in_a_repository_without_commits_shows_every_table_as_new() {
    let t = TestRepo::new().await;
    t.create("people", &["id"], PEOPLE_CSV).await;
    assert_eq!(
        t.diff_json(&DiffOptions::default()).await,
        [
            json!({"table": "people", "kind": "table_added"}),
            json!({"table": "people", "kind": "added", "key": {"id": 1}, "old": null,
                   "new": {"id": 1, "name": "ann", "score": 1.5}}),
            json!({"table": "people", "kind": "added", "key": {"id": 2}, "old": null,
                   "new": {"id": 2, "name": "bob", "score": 2.5}}),
            json!({"table": "people", "kind": "added", "key": {"id": 3}, "old": null,
                   "new": {"id": 3, "name": "cy", "score": 3.0}}),
        ]
    );
}

#[tokio::test]
async fn a_diff_from_one_revision_compares_that_revision_with_the_working_tables() {
    let t = two_commits().await;
    // An uncommitted change on top: cy's score.
    t.upsert("people", "id,name,score\n3,cy,3.5\n").await;

    let since_first = t.diff_json(&between(Some("HEAD~1"), None)).await;
    let mut expected = people_changes_json();
    expected.insert(2, cy_change_json());
    assert_eq!(since_first, expected);
    assert_eq!(
        t.diff_json(&between(Some("HEAD"), None)).await,
        [cy_change_json()]
    );
    // A revision named by its commit id works the same as by its name.
    let first = t.id("HEAD~1").await.to_hex();
    assert_eq!(
        t.diff_json(&between(Some(&first[..12]), None)).await,
        since_first
    );
}

#[tokio::test]
async fn a_diff_between_two_revisions_compares_them_and_ignores_the_working_tables() {
    let t = two_commits().await;
    t.upsert("people", "id,name,score\n3,cy,3.5\n").await;

    assert_eq!(
        t.diff_json(&between(Some("HEAD~1"), Some("HEAD"))).await,
        people_changes_json()
    );
    assert_eq!(
        t.diff_json(&between(Some("HEAD"), Some("HEAD~1"))).await,
        [
            json!({"table": "people", "kind": "added", "key": {"id": 1}, "old": null,
                   "new": {"id": 1, "name": "ann", "score": 1.5}}),
            json!({"table": "people", "kind": "modified", "key": {"id": 2},
                   "old": {"id": 2, "name": "bobby", "score": 2.5},
                   "new": {"id": 2, "name": "bob", "score": 2.5}, "changed": ["name"]}),
            json!({"table": "people", "kind": "removed", "key": {"id": 4},
                   "old": {"id": 4, "name": "dee", "score": 4.5}, "new": null}),
        ]
    );
    assert_eq!(
        t.diff_json(&between(Some("HEAD"), Some("main"))).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn a_diff_gives_each_changed_row_with_its_key_old_and_new_rows_and_changed_cells() -> Result {
    let t = TestRepo::with_people().await;
    change_people(&t).await;
    let changes = t.diff_changes(&DiffOptions::default()).await?;
    assert_eq!(
        changes[1],
        Change::Row(RowDiff {
            table: "people".into(),
            kind: "modified",
            key: object(json!({"id": 2})),
            old: Some(object(json!({"id": 2, "name": "bob", "score": 2.5}))),
            new: Some(object(json!({"id": 2, "name": "bobby", "score": 2.5}))),
            changed: Some(vec!["name".into()]),
        })
    );
    assert_eq!(
        changes.iter().map(to_json).collect::<Vec<_>>(),
        people_changes_json()
    );
    t.commit_changes("second").await;
    assert_eq!(
        t.diff_json(&between(Some("HEAD~1"), Some("HEAD"))).await,
        people_changes_json()
    );
    Ok(())
}

#[tokio::test]
async fn a_diff_shows_cell_values_of_every_type_including_nulls() {
    let t = TestRepo::new().await;
    t.create(
        "items",
        &["sku"],
        "sku,label,qty,price,active\na1,bolt,10,0.25,true\na2,nut,,1.5,false\na3,,7,2.0,true\n",
    )
    .await;
    t.commit_changes("items").await;
    t.upsert(
        "items",
        "sku,label,qty,price,active\na1,bolt,12,0.25,false\na2,nut,3,1.5,false\na3,washer,,2.0,true\n",
    )
    .await;

    let lines = t.diff_json(&DiffOptions::default()).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["key"], json!({"sku": "a1"}));
    assert_eq!(lines[0]["changed"], json!(["qty", "active"]));
    assert_eq!(lines[0]["old"]["qty"], 10);
    assert_eq!(lines[0]["new"]["qty"], 12);
    assert_eq!(lines[0]["old"]["active"], true);
    assert_eq!(lines[0]["new"]["active"], false);
    assert_eq!(lines[0]["new"]["price"], 0.25);
    assert_eq!(lines[1]["changed"], json!(["qty"]));
    assert_eq!(lines[1]["old"]["qty"], Value::Null);
    assert_eq!(lines[1]["new"]["qty"], 3);
    assert_eq!(lines[2]["changed"], json!(["label", "qty"]));
    assert_eq!(lines[2]["old"]["label"], Value::Null);
    assert_eq!(lines[2]["new"]["label"], "washer");
    assert_eq!(lines[2]["old"]["qty"], 7);
    assert_eq!(lines[2]["new"]["qty"], Value::Null);
}

#[tokio::test]
async fn a_diff_names_every_column_of_a_composite_key() {
    let t = TestRepo::new().await;
    t.create(
        "sales",
        &["region", "year"],
        "region,year,amount\neast,2023,1\neast,2024,2\n",
    )
    .await;
    t.commit_changes("sales").await;
    t.upsert("sales", "region,year,amount\neast,2024,5\nwest,2024,3\n")
        .await;
    assert_eq!(
        t.diff_json(&DiffOptions::default()).await,
        [
            json!({"table": "sales", "kind": "modified", "key": {"region": "east", "year": 2024},
                   "old": {"region": "east", "year": 2024, "amount": 2},
                   "new": {"region": "east", "year": 2024, "amount": 5}, "changed": ["amount"]}),
            json!({"table": "sales", "kind": "added", "key": {"region": "west", "year": 2024},
                   "old": null, "new": {"region": "west", "year": 2024, "amount": 3}}),
        ]
    );
}

/// A repository where `people` and `cities` both changed since HEAD.
async fn two_tables_changed() -> TestRepo {
    let t = TestRepo::with_people().await;
    t.create("cities", &["city"], "city,pop\noslo,1\nrome,2\n")
        .await;
    t.commit_changes("cities").await;
    change_people(&t).await;
    t.upsert("cities", "city,pop\nrome,3\n").await;
    t
}

/// rome's population changed from 2 to 3, as it serializes.
fn rome_change_json() -> Value {
    json!({"table": "cities", "kind": "modified", "key": {"city": "rome"},
           "old": {"city": "rome", "pop": 2}, "new": {"city": "rome", "pop": 3},
           "changed": ["pop"]})
}

#[tokio::test]
async fn a_diff_lists_tables_in_name_order_and_can_be_limited_to_one_table() {
    let t = two_tables_changed().await;
    let mut all = vec![rome_change_json()];
    all.extend(people_changes_json());
    assert_eq!(t.diff_json(&DiffOptions::default()).await, all);
    assert_eq!(
        t.diff_json(&of_table("people")).await,
        people_changes_json()
    );
    assert_eq!(t.diff_json(&of_table("cities")).await, [rome_change_json()]);
}

#[tokio::test]
async fn a_diff_of_an_unknown_table_is_refused_with_its_name() {
    let t = two_tables_changed().await;
    let before = t.snapshot();
    let err = t
        .diff_changes(&of_table("nobody"))
        .await
        .expect_err("an unknown table is refused");
    assert_mentions(&err.to_string(), &["unknown table 'nobody'"]);
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.suggestion(), Some(Suggestion::ListTables));
    before.assert_same(&t.snapshot(), "a diff of an unknown table");
}

#[tokio::test]
async fn a_diff_of_an_unknown_revision_is_refused_with_its_name() {
    let t = TestRepo::with_people().await;
    let before = t.snapshot();
    for opts in [
        between(Some("no-such-branch"), None),
        between(Some("HEAD"), Some("no-such-branch")),
    ] {
        let err = t
            .diff_changes(&opts)
            .await
            .expect_err("an unknown revision is refused");
        assert_mentions(&err.to_string(), &["unknown revision 'no-such-branch'"]);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.suggestion(), Some(Suggestion::RevisionSyntax));
    }
    before.assert_same(&t.snapshot(), "a diff of an unknown revision");
}

#[tokio::test]
async fn a_diff_stat_counts_rows_per_table() {
    let t = two_tables_changed().await;
    let cities = json!({"table": "cities", "kind": "stat", "added": 0, "removed": 0,
                        "modified": 1, "schema_changed": false});
    assert_eq!(
        t.diff_json(&stat(DiffOptions::default())).await,
        [
            cities.clone(),
            json!({"table": "people", "kind": "stat", "added": 1, "removed": 1, "modified": 1,
                   "schema_changed": false}),
        ]
    );
    assert_eq!(t.diff_json(&stat(of_table("cities"))).await, [cities]);
}

#[tokio::test]
async fn a_diff_reports_a_schema_change_before_the_rows_it_touched() {
    let t = TestRepo::with_people().await;
    t.replace(
        "people",
        "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,\n",
    )
    .await;

    let changes = t.diff_json(&DiffOptions::default()).await;
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert_eq!(
        changes[0],
        json!({"table": "people", "kind": "schema", "added": ["team"], "dropped": [],
               "retyped": [], "key_changed": false})
    );
    assert_eq!(
        changes[1],
        json!({"table": "people", "kind": "modified", "key": {"id": 1},
               "old": {"id": 1, "name": "ann", "score": 1.5},
               "new": {"id": 1, "name": "ann", "score": 1.5, "team": "red"}, "changed": ["team"]})
    );
    assert_eq!(changes[2]["new"]["team"], "blue");
    assert_eq!(changes[3]["new"]["team"], Value::Null);
    assert_eq!(changes[3]["changed"], json!(["team"]));

    assert_eq!(
        t.diff_json(&stat(DiffOptions::default())).await,
        [
            json!({"table": "people", "kind": "stat", "added": 0, "removed": 0, "modified": 3,
                   "schema_changed": true})
        ]
    );
}

#[tokio::test]
async fn a_diff_reports_a_dropped_column_and_a_new_key_as_schema_changes() {
    let t = TestRepo::with_people().await;
    t.import_csv(
        "people",
        "id,name\n1,ann\n2,bob\n3,cy\n",
        &strata::WriteOptions {
            primary_key: Some(vec!["name".into()]),
            ..mode(strata::WriteMode::Replace)
        },
    )
    .await;
    let changes = t.diff_json(&DiffOptions::default()).await;
    assert_eq!(
        changes[0],
        json!({"table": "people", "kind": "schema", "added": [], "dropped": ["score"],
               "retyped": [], "key_changed": true}),
        "{changes:?}"
    );
}

#[tokio::test]
async fn a_diff_marks_added_and_removed_tables_before_their_rows() -> Result {
    let t = TestRepo::with_people().await;
    t.create("cities", &["city"], "city,pop\noslo,1\n").await;
    t.drop_table("people").await?;
    assert_eq!(
        t.diff_json(&DiffOptions::default()).await,
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
    Ok(())
}

#[tokio::test]
async fn a_diff_of_a_renamed_table_shows_one_table_removed_and_one_added() -> Result {
    let t = TestRepo::with_people().await;
    t.rename_table("people", "persons").await?;
    assert_eq!(
        t.diff_json(&stat(DiffOptions::default())).await,
        [
            json!({"table": "people", "kind": "stat", "added": 0, "removed": 3, "modified": 0,
                   "schema_changed": false}),
            json!({"table": "persons", "kind": "stat", "added": 3, "removed": 0, "modified": 0,
                   "schema_changed": false}),
        ]
    );
    Ok(())
}

/// Diff options with a filter.
fn filtered(filter: &str) -> DiffOptions {
    DiffOptions {
        filter: Some(strata::RowFilter::parse(filter).expect("the filter parses")),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_filtered_diff_gives_a_tables_events_only_before_a_row_that_passes() {
    let t = TestRepo::with_people().await;
    t.create("cities", &["city"], "city,pop\noslo,1\n").await;
    t.import_csv(
        "people",
        "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,\n",
        &mode(strata::WriteMode::Replace),
    )
    .await;
    // Only people has a team; cities is new and has none, so the filter does not fit it.
    let err = t
        .diff(&filtered("to_team = 'blue'"))
        .await
        .err()
        .expect("cities has no column team");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("table 'cities'"), "{err}");

    let people = |f: &str| DiffOptions {
        table: Some("people".into()),
        ..filtered(f)
    };
    assert_eq!(
        t.diff_json(&people("to_team = 'blue'")).await,
        [
            json!({"table": "people", "kind": "schema", "added": ["team"], "dropped": [],
                   "retyped": [], "key_changed": false}),
            json!({"table": "people", "kind": "modified", "key": {"id": 2},
                   "old": {"id": 2, "name": "bob", "score": 2.5},
                   "new": {"id": 2, "name": "bob", "score": 2.5, "team": "blue"},
                   "changed": ["team"]}),
        ]
    );
    // The old version has no team: from_team is null there.
    assert_eq!(
        t.diff_json(&people("from_team is not null")).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        t.diff_json(&stat(people("to_team is null and score > 2.9")))
            .await,
        [
            json!({"table": "people", "kind": "stat", "added": 0, "removed": 0, "modified": 1,
                "schema_changed": true})
        ]
    );
}
