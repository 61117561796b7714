//! Changing a table's columns in place: each change read back after a commit and seen by a
//! diff as a schema change; a change the table or its rows do not allow refused with the
//! table and column, leaving the repository as it was; several changes all or nothing.

use crate::common::*;
use serde_json::json;
use strata::{DataType, ErrorKind, SchemaChange};

fn add(name: &str, ty: &str, default: Option<&str>) -> SchemaChange {
    SchemaChange::AddColumn {
        name: name.into(),
        data_type: strata::parse_type(ty).expect("a known type"),
        default: default.map(str::to_string),
    }
}

fn drop_column(name: &str) -> SchemaChange {
    SchemaChange::DropColumn { name: name.into() }
}

fn rename(from: &str, to: &str) -> SchemaChange {
    SchemaChange::RenameColumn {
        from: from.into(),
        to: to.into(),
    }
}

fn set_type(column: &str, ty: &str) -> SchemaChange {
    SchemaChange::SetType {
        column: column.into(),
        data_type: strata::parse_type(ty).expect("a known type"),
    }
}

/// Alters `people`, commits the change, and returns the first change of the diff between
/// the two commits (the schema event).
async fn alter_and_commit(t: &TestRepo, changes: &[SchemaChange]) -> serde_json::Value {
    let report = t
        .alter_table("people", changes)
        .await
        .unwrap_or_else(|e| panic!("altering people failed: {e}"));
    assert_eq!(report.rows, 3);
    assert!(report.chunks_written >= 1);
    t.commit_changes("alter people").await;
    let changes = t.diff_json(&between(Some("HEAD~1"), Some("HEAD"))).await;
    changes[0].clone()
}

/// Runs a change that must be refused; returns the error after checking that nothing in
/// the repository changed.
async fn refused(t: &TestRepo, changes: &[SchemaChange]) -> strata::Error {
    let before = t.snapshot();
    let err = t
        .alter_table("people", changes)
        .await
        .expect_err("the change should be refused");
    before.assert_same(&t.snapshot(), "a refused schema change");
    err
}

async fn column_types(t: &TestRepo, rev: Option<&str>) -> Vec<(String, String)> {
    t.table("people", rev)
        .await
        .expect("people exists")
        .columns
        .into_iter()
        .map(|c| (c.name, c.data_type))
        .collect()
}

#[tokio::test]
async fn adding_a_column_gives_nulls_or_its_default_in_every_row() {
    let t = TestRepo::with_people().await;
    let event = alter_and_commit(
        &t,
        &[add("team", "utf8", None), add("level", "int32", Some("7"))],
    )
    .await;
    assert_eq!(
        event,
        json!({"table": "people", "kind": "schema", "added": ["team", "level"], "dropped": [],
               "retyped": [], "key_changed": false})
    );
    assert_eq!(
        t.rows("people", Some("HEAD")).await,
        [
            json!({"id": 1, "name": "ann", "score": 1.5, "team": null, "level": 7}),
            json!({"id": 2, "name": "bob", "score": 2.5, "team": null, "level": 7}),
            json!({"id": 3, "name": "cy", "score": 3.0, "team": null, "level": 7}),
        ]
    );
    assert_eq!(
        column_types(&t, None).await.last(),
        Some(&("level".to_string(), "int32".to_string()))
    );
}

#[tokio::test]
async fn dropping_a_column_removes_it_and_its_values() {
    let t = TestRepo::with_people().await;
    let event = alter_and_commit(&t, &[drop_column("score")]).await;
    assert_eq!(event["dropped"], json!(["score"]));
    assert_eq!(event["added"], json!([]));
    assert_eq!(
        t.csv("people", Some("HEAD")).await,
        "id,name\n1,ann\n2,bob\n3,cy\n"
    );
    // The old commit still has it.
    assert_eq!(t.csv("people", Some("HEAD~1")).await, PEOPLE_CSV);
}

#[tokio::test]
async fn renaming_a_column_keeps_its_values_and_a_key_column_stays_the_key() {
    let t = TestRepo::with_people().await;
    let event = alter_and_commit(&t, &[rename("name", "full_name"), rename("id", "pid")]).await;
    assert_eq!(
        event,
        json!({"table": "people", "kind": "schema", "added": ["pid", "full_name"],
               "dropped": ["id", "name"], "retyped": [], "key_changed": true})
    );
    assert_eq!(
        t.csv("people", None).await,
        "pid,full_name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.0\n"
    );
    let info = t.table("people", None).await.expect("people exists");
    assert_eq!(info.primary_key, ["pid"]);
    // The renamed key still finds rows.
    t.upsert("people", "pid,full_name,score\n2,bo,9.5\n").await;
    assert_eq!(t.rows("people", None).await[1]["full_name"], "bo");
}

#[tokio::test]
async fn changing_a_type_converts_every_value() {
    let t = TestRepo::with_people().await;
    let event = alter_and_commit(&t, &[set_type("score", "utf8"), set_type("id", "int32")]).await;
    assert_eq!(
        event["retyped"],
        json!(["id: int64 -> int32", "score: float64 -> utf8"])
    );
    assert_eq!(
        t.rows("people", Some("HEAD")).await,
        [
            json!({"id": 1, "name": "ann", "score": "1.5"}),
            json!({"id": 2, "name": "bob", "score": "2.5"}),
            json!({"id": 3, "name": "cy", "score": "3.0"}),
        ]
    );
    let arrow = t
        .table("people", None)
        .await
        .expect("people exists")
        .arrow_schema()
        .expect("a schema");
    assert_eq!(arrow.field(0).data_type(), &DataType::Int32);
}

#[tokio::test]
async fn a_value_that_does_not_convert_is_refused_naming_it_and_nothing_changes() {
    let t = TestRepo::with_people().await;
    let err = refused(&t, &[set_type("name", "int64")]).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_mentions(
        &err.to_string(),
        &[
            "table 'people'",
            "column 'name'",
            "\"ann\"",
            "(id=1)",
            "int64",
        ],
    );
    // A value that would change (1.5 to 2) is refused too, naming the first such row.
    let err = refused(&t, &[set_type("score", "int64")]).await;
    assert_mentions(&err.to_string(), &["column 'score'", "1.5", "(id=1)"]);
    assert_eq!(t.csv("people", None).await, PEOPLE_CSV);
}

#[tokio::test]
async fn a_key_column_cannot_be_dropped() {
    let t = TestRepo::with_people().await;
    let err = refused(&t, &[drop_column("id")]).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_mentions(&err.to_string(), &["table 'people'", "column 'id'", "key"]);
}

#[tokio::test]
async fn a_key_column_may_change_type_only_if_its_keys_keep_their_order() {
    let t = TestRepo::new().await;
    t.create("people", &["id"], "id,name\n9,a\n10,b\n11,c\n")
        .await;
    let before = t.snapshot();
    let err = t
        .alter_table("people", &[set_type("id", "utf8")])
        .await
        .expect_err("'10' sorts before '9' as text");
    before.assert_same(&t.snapshot(), "a refused key type change");
    assert_mentions(
        &err.to_string(),
        &["column 'id'", "order", "(id=9)", "(id=10)"],
    );
    let err = t
        .alter_table("people", &[set_type("id", "float64")])
        .await
        .expect_err("floats cannot be keys");
    assert_mentions(&err.to_string(), &["column 'id'", "floats cannot be keys"]);
    t.alter_table("people", &[set_type("id", "uint16")])
        .await
        .expect("uint16 keeps the order");
    assert_eq!(t.csv("people", None).await, "id,name\n9,a\n10,b\n11,c\n");
}

#[tokio::test]
async fn an_unknown_column_or_table_is_refused_with_its_name() {
    let t = TestRepo::with_people().await;
    let err = refused(&t, &[drop_column("age")]).await;
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_mentions(&err.to_string(), &["no column 'age'", "id, name, score"]);
    let err = refused(&t, &[rename("name", "score")]).await;
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_mentions(&err.to_string(), &["already has a column 'score'"]);
    let before = t.snapshot();
    let err = t
        .alter_table("nobody", &[drop_column("x")])
        .await
        .expect_err("no such table");
    before.assert_same(&t.snapshot(), "altering an unknown table");
    assert_mentions(&err.to_string(), &["unknown table 'nobody'"]);
}

#[tokio::test]
async fn several_changes_apply_in_order_and_all_or_nothing() {
    let t = TestRepo::with_people().await;
    // The last change fails: the first two are not made either.
    let err = refused(
        &t,
        &[
            add("team", "utf8", None),
            rename("score", "points"),
            set_type("name", "bool"),
        ],
    )
    .await;
    assert_mentions(&err.to_string(), &["column 'name'"]);
    assert_eq!(
        column_types(&t, None).await,
        column_types(&t, Some("HEAD")).await
    );
    // In order: a later change sees the names the earlier ones gave.
    t.alter_table(
        "people",
        &[
            rename("score", "points"),
            set_type("points", "utf8"),
            add("score", "int64", Some("0")),
            drop_column("name"),
        ],
    )
    .await
    .expect("the changes apply in order");
    assert_eq!(
        t.csv("people", None).await,
        "id,points,score\n1,1.5,0\n2,2.5,0\n3,3.0,0\n"
    );
    let status = t.status().await.expect("a status");
    assert!(to_json(&status)
        .to_string()
        .contains("\"schema_changed\":true"));
}

#[tokio::test]
async fn a_replace_that_changes_the_schema_reports_how() {
    let t = TestRepo::with_people().await;
    let same = t.replace("people", PEOPLE_CSV).await;
    assert_eq!(same.schema_change, None);
    let report = t
        .import_csv(
            "people",
            "id,region,name,score\n1,eu,ann,x\n",
            &strata::WriteOptions {
                primary_key: Some(vec!["id".into(), "region".into()]),
                ..mode(strata::WriteMode::Replace)
            },
        )
        .await;
    let change = report.schema_change.expect("the schema changed");
    assert_eq!(change.added, ["region"]);
    assert_eq!(change.retyped, ["score: float64 -> utf8"]);
    assert_eq!(
        change.to_string(),
        "added column region, retyped score: float64 -> utf8; key (id) -> (id, region)"
    );
}

#[tokio::test]
async fn chunks_stay_where_the_keys_put_them_so_undoing_a_change_gives_the_same_table() {
    let t = TestRepo::new().await;
    let mut csv = String::from("id,name\n");
    for i in 0..200 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    let opts = strata::WriteOptions {
        primary_key: Some(vec!["id".into()]),
        chunk_rows: Some(8),
        ..Default::default()
    };
    t.import_csv("people", &csv, &opts).await;
    let before = t.table("people", None).await.expect("people exists");
    assert!(before.chunks > 4, "several chunks: {}", before.chunks);
    let renamed = t
        .alter_table("people", &[rename("name", "label")])
        .await
        .expect("a rename");
    assert_ne!(renamed.table_id, before.id);
    assert_eq!(renamed.chunks_written as usize, before.chunks);
    let back = t
        .alter_table("people", &[rename("label", "name")])
        .await
        .expect("a rename back");
    assert_eq!(back.table_id, before.id, "the same rows cut the same way");
}
