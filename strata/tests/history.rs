//! Status, commit, log and show.

mod common;

use serde_json::json;
use strata::{Author, Committed, ErrorKind, ObjectId, TableChange, WriteMode};

use common::*;

type Result = strata::Result<()>;

/// A repository with three commits on main: people as in [`PEOPLE_CSV`], then bob renamed
/// and dee added, then ann removed.
async fn three_commits() -> TestRepo {
    let t = TestRepo::with_people().await;
    t.upsert("people", "id,name,score\n2,bobby,2.5\n4,dee,4.5\n")
        .await;
    t.commit_changes("second").await;
    t.delete_keys("people", "id\n1\n").await;
    t.commit_changes("third\n\nwith a body").await;
    t
}

/// A table's change, as status and show report it.
fn change(
    table: &str,
    state: &'static str,
    added: u64,
    removed: u64,
    modified: u64,
) -> TableChange {
    TableChange {
        table: table.into(),
        state,
        added,
        removed,
        modified,
        schema_changed: false,
    }
}

#[tokio::test]
async fn status_counts_added_removed_and_modified_rows_per_table() -> Result {
    let t = TestRepo::with_people().await;
    t.upsert(
        "people",
        "id,name,score\n2,bobby,2.5\n4,dee,4.5\n5,eve,5.5\n",
    )
    .await;
    t.delete_keys("people", "id\n1\n").await;
    t.create("cities", &["city"], "city,pop\noslo,1\nrome,2\n")
        .await;

    let status = t.status().await?;
    assert_eq!(status.branch.as_deref(), Some("main"));
    assert_eq!(status.detached, None);
    assert_eq!(status.head, Some(t.id("HEAD").await));
    assert_eq!(status.merging, None);
    assert_eq!(status.upstream, None);
    assert_eq!(
        status.tables,
        [
            change("cities", "added", 2, 0, 0),
            change("people", "modified", 2, 1, 1),
        ]
    );
    assert_eq!(
        to_json(&status.tables),
        json!([
            {"table": "cities", "state": "added", "added": 2, "removed": 0, "modified": 0,
             "schema_changed": false},
            {"table": "people", "state": "modified", "added": 2, "removed": 1, "modified": 1,
             "schema_changed": false},
        ])
    );
    Ok(())
}

#[tokio::test]
async fn status_reports_a_dropped_table_as_removed() -> Result {
    let t = TestRepo::with_people().await;
    t.drop_table("people").await?;
    assert_eq!(
        t.status().await?.tables,
        [change("people", "removed", 0, 3, 0)]
    );
    Ok(())
}

#[tokio::test]
async fn commit_records_the_working_tables_and_leaves_status_clean() -> Result {
    let t = TestRepo::new().await;
    t.create("people", &["id"], PEOPLE_CSV).await;
    let committed = t.commit("add people", None).await?;
    let id = t.id("HEAD").await;
    assert_eq!(
        committed,
        Committed {
            id,
            branch: Some("main".into()),
            guessed_author: None,
        }
    );
    let status = t.status().await?;
    assert_eq!(status.tables, []);
    assert_eq!(status.head, Some(id));
    assert_eq!(t.table_names(Some("HEAD")).await, ["people"]);
    assert_eq!(t.csv("people", Some("HEAD")).await, PEOPLE_CSV);
    Ok(())
}

#[tokio::test]
async fn commit_uses_the_handles_author_and_time_unless_a_commit_names_its_author() -> Result {
    let t = TestRepo::with_people().await;
    let first = t.log(None, None).await?;
    assert_eq!(first[0].author, AUTHOR);
    assert_eq!(first[0].time, COMMIT_TIME);
    t.import_csv(
        "people",
        "id,name,score\n4,dee,4.5\n",
        &mode(WriteMode::Append),
    )
    .await;
    let other = Author::parse("Other <o@example.com>")?;
    t.commit("more", Some(&other)).await?;
    let log = t.log(None, Some(1)).await?;
    assert_eq!(log[0].author, "Other <o@example.com>");
    assert_eq!(log[0].time, COMMIT_TIME);
    Ok(())
}

#[tokio::test]
async fn identical_work_gives_identical_commit_ids_in_two_repositories() {
    let a = TestRepo::with_people().await;
    let b = TestRepo::with_people().await;
    assert_eq!(a.id("HEAD").await, b.id("HEAD").await);
}

#[tokio::test]
async fn commit_with_nothing_changed_is_refused_and_changes_nothing() {
    let t = TestRepo::with_people().await;
    let before = t.snapshot();
    let err = t
        .commit("again", None)
        .await
        .expect_err("there is nothing to commit");
    assert_mentions(&err.to_string(), &["nothing to commit"]);
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    before.assert_same(&t.snapshot(), "a commit of nothing");
}

#[tokio::test]
async fn commit_with_an_empty_message_is_refused_and_changes_nothing() {
    let t = TestRepo::new().await;
    t.create("people", &["id"], PEOPLE_CSV).await;
    let before = t.snapshot();
    let err = t
        .commit("  ", None)
        .await
        .expect_err("an empty message is refused");
    assert_mentions(&err.to_string(), &["the commit message is empty"]);
    before.assert_same(&t.snapshot(), "a commit with an empty message");
}

#[test]
fn a_malformed_author_is_refused_with_the_form_an_author_takes() {
    let err = Author::parse("nobody").expect_err("an author needs an address");
    assert_mentions(&err.to_string(), &["author 'nobody'", "Name <email>"]);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn log_lists_commits_newest_first_linked_by_parents() -> Result {
    let t = three_commits().await;
    let log = t.log(None, None).await?;
    let messages: Vec<&str> = log.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(messages, ["third\n\nwith a body", "second", "add people"]);
    assert_eq!(log[0].summary(), "third");
    assert_eq!(log[0].id, t.id("HEAD").await);
    assert_eq!(log[0].parents, [log[1].id]);
    assert_eq!(log[1].parents, [log[2].id]);
    assert_eq!(log[2].parents, Vec::<ObjectId>::new());
    for c in &log {
        assert_eq!(c.author, AUTHOR);
        assert_eq!(c.time, COMMIT_TIME);
        assert!(c.tables.contains_key("people"), "{c:?}");
    }
    assert_eq!(t.log(None, Some(2)).await?.len(), 2);
    let one = t.log(None, Some(1)).await?;
    assert_eq!(one, log[..1]);
    let from = t.log(Some("HEAD~1"), None).await?;
    assert_eq!(from, log[1..]);
    Ok(())
}

#[tokio::test]
async fn log_never_lists_a_parent_before_its_child_when_clocks_are_skewed() -> Result {
    let t = TestRepo::with_people().await;
    // A second machine whose clock is behind commits on a branch; main goes on; they merge.
    let behind = strata::Repository::open(t.path())
        .await?
        .with_author(author())
        .with_commit_time(COMMIT_TIME - 3600);
    t.branch("side").await;
    t.switch_to("side").await;
    t.upsert("people", "id,name,score\n7,gil,7.5\n").await;
    behind.commit("behind", None).await?;
    t.switch_to("main").await;
    let ahead = strata::Repository::open(t.path())
        .await?
        .with_author(author())
        .with_commit_time(COMMIT_TIME + 3600);
    t.upsert("people", "id,name,score\n8,hal,8.5\n").await;
    ahead.commit("ahead", None).await?;
    t.merge("side", &Default::default()).await?;
    let log = t.log(None, None).await?;
    let messages: Vec<&str> = log.iter().map(|c| c.summary()).collect();
    assert_eq!(
        messages,
        ["Merge 'side' into main", "ahead", "behind", "add people"]
    );
    // Every commit comes before each of its parents.
    for (i, c) in log.iter().enumerate() {
        for p in &c.parents {
            let at = log
                .iter()
                .position(|x| x.id == *p)
                .expect("parents are listed");
            assert!(at > i, "{} is listed before its child {}", p, c.id);
        }
    }
    Ok(())
}

#[tokio::test]
async fn log_before_the_first_commit_says_there_are_no_commits() {
    let t = TestRepo::new().await;
    let err = t
        .log(None, None)
        .await
        .expect_err("there is no history yet");
    assert_mentions(&err.to_string(), &["no commits yet"]);
    assert_eq!(err.kind(), ErrorKind::InvalidState);
}

#[tokio::test]
async fn show_gives_a_commit_and_the_rows_it_changed_per_table() -> Result {
    let t = three_commits().await;
    let second = t.show("HEAD~1").await?;
    assert_eq!(second.commit.id, t.id("HEAD~1").await);
    assert_eq!(second.commit.author, AUTHOR);
    assert_eq!(second.commit.message, "second");
    assert_eq!(second.commit, t.commit_info("HEAD~1").await?);
    assert_eq!(second.changes, [change("people", "modified", 1, 0, 1)]);
    assert_eq!(
        t.show("HEAD").await?.changes,
        [change("people", "modified", 0, 1, 0)]
    );
    assert_eq!(
        t.show("HEAD~2").await?.changes,
        [change("people", "added", 3, 0, 0)]
    );
    Ok(())
}

#[tokio::test]
async fn show_serializes_as_the_commit_with_its_changes() -> Result {
    let t = three_commits().await;
    let show = to_json(&t.show("HEAD~1").await?);
    assert_eq!(show["id"], t.id("HEAD~1").await.to_hex());
    assert_eq!(show["message"], "second");
    assert_eq!(
        show["changes"],
        json!([{"table": "people", "state": "modified", "added": 1, "removed": 0,
                "modified": 1, "schema_changed": false}])
    );
    Ok(())
}

#[tokio::test]
async fn show_of_a_commit_that_only_renamed_a_table_lists_both_names() -> Result {
    let t = TestRepo::with_people().await;
    t.rename_table("people", "folks").await?;
    t.commit_changes("rename").await;
    let states: Vec<(String, &str)> = t
        .show("HEAD")
        .await?
        .changes
        .into_iter()
        .map(|c| (c.table, c.state))
        .collect();
    assert_eq!(
        states,
        [
            ("folks".to_string(), "added"),
            ("people".to_string(), "removed")
        ]
    );
    Ok(())
}
