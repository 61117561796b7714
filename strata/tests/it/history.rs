//! Status, commit, log and show.

use serde_json::json;
use strata::{
    Author, Committed, ErrorKind, GcOptions, LogOptions, MergeOptions, NoProgress, ObjectId,
    PickOptions, TableChange, WriteMode,
};

use crate::common::*;

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

// ---- reflog, ranges, merge-base, revert, cherry-pick, amend ----

/// The reasons of a ref's reflog, newest first.
async fn reasons(t: &TestRepo, name: Option<&str>) -> Vec<String> {
    t.reflog(name)
        .await
        .expect("the reflog should be readable")
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_reflog_lists_every_move_of_a_branch_and_name_at_n_undoes_a_reset() -> Result {
    let t = three_commits().await;
    let third = t.id("HEAD").await;
    t.reset_hard("HEAD~2").await?;
    assert_eq!(
        reasons(&t, None).await,
        [
            "reset: moving to HEAD~2",
            "commit: third",
            "commit: second",
            "commit (initial): add people"
        ]
    );
    let log = t.reflog(Some("main")).await?;
    assert_eq!(log[0].selector, "main@{0}");
    assert_eq!(log[1].selector, "main@{1}");
    assert_eq!(log[1].commit, third);
    assert_eq!(t.id("main@{1}").await, third);
    assert_eq!(t.id("@{1}").await, third, "@{{N}} is the current branch's");
    assert_eq!(t.id("main@{1}~1").await, t.id("main@{2}").await);

    // The reset is undone by resetting to where the branch was.
    t.reset_hard("main@{1}").await?;
    assert_eq!(t.id("HEAD").await, third);
    assert_eq!(
        t.reflog(None).await?[0].reason.as_deref(),
        Some("reset: moving to main@{1}")
    );

    let past = t.resolve("main@{9}").await.expect_err("beyond the reflog");
    assert_eq!(past.kind(), ErrorKind::InvalidInput);
    assert!(past.to_string().contains("has 5 entries"), "{past}");
    Ok(())
}

#[tokio::test]
async fn branches_and_tags_record_why_they_moved_and_a_recreated_branch_starts_a_new_reflog(
) -> Result {
    let t = three_commits().await;
    t.create_branch("topic", Some("HEAD~1")).await?;
    t.rename_branch("topic", "feature").await?;
    assert_eq!(
        reasons(&t, Some("feature")).await,
        ["branch: renamed from topic"]
    );
    t.create_tag("v1", None).await?;
    assert_eq!(reasons(&t, Some("v1")).await, ["tag: created from HEAD"]);
    t.delete_branch("feature", true).await?;
    t.create_branch("feature", None).await?;
    assert_eq!(
        reasons(&t, Some("feature")).await,
        ["branch: created from HEAD"],
        "the deleted branch's entries are not the new one's"
    );
    Ok(())
}

#[tokio::test]
async fn gc_keeps_the_commits_the_reflog_names_until_the_reflog_is_expired() -> Result {
    let t = three_commits().await;
    let third = t.id("HEAD").await;
    let third_rows = t.csv("people", Some("HEAD")).await;
    t.reset_hard("HEAD~2").await?;

    let kept = t.gc(&GcOptions::default(), &NoProgress).await?;
    assert_eq!(kept.report.gc.removed.objects, 0, "{kept:?}");
    assert_eq!(t.id("main@{1}").await, third);
    assert_eq!(t.csv("people", Some("main@{1}")).await, third_rows);

    let expire = GcOptions {
        expire_reflog: true,
        ..Default::default()
    };
    let swept = t.gc(&expire, &NoProgress).await?;
    assert!(swept.report.gc.removed.objects > 0, "{swept:?}");
    assert_eq!(t.reflog(None).await?.len(), 1);
    let gone = t.resolve(&third.to_hex()).await.expect_err("collected");
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    Ok(())
}

/// A history that forks at `second`: main gets `main-1`, topic gets `topic-1` and `topic-2`.
async fn forked() -> TestRepo {
    let t = three_commits().await;
    t.create_branch("topic", Some("HEAD~1"))
        .await
        .expect("branch");
    t.commit_on("topic", "topic-1", async |t| {
        t.upsert("people", "id,name,score\n7,gil,7.0\n").await;
    })
    .await;
    t.commit_on("topic", "topic-2", async |t| {
        t.upsert("people", "id,name,score\n8,hal,8.0\n").await;
    })
    .await;
    t.upsert("people", "id,name,score\n9,ida,9.0\n").await;
    t.commit_changes("main-1").await;
    t
}

async fn summaries(t: &TestRepo, opts: &LogOptions) -> Vec<String> {
    t.log_filtered(opts)
        .await
        .unwrap_or_else(|e| panic!("log {opts:?} failed: {e}"))
        .iter()
        .map(|c| c.summary().to_string())
        .collect()
}

fn range(rev: &str) -> LogOptions {
    LogOptions {
        rev: Some(rev.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn log_ranges_list_what_one_side_has_and_the_other_lacks() -> Result {
    let t = forked().await;
    assert_eq!(
        summaries(&t, &range("main..topic")).await,
        ["topic-2", "topic-1"]
    );
    assert_eq!(
        summaries(&t, &range("topic..main")).await,
        ["main-1", "third"]
    );
    assert_eq!(summaries(&t, &range("topic..")).await, ["main-1", "third"]);
    assert_eq!(
        summaries(&t, &range("main...topic")).await.len(),
        4,
        "the symmetric difference"
    );
    assert!(summaries(&t, &range("main..main")).await.is_empty());
    let all = LogOptions {
        all: true,
        ..Default::default()
    };
    assert_eq!(
        summaries(&t, &all).await.len(),
        6,
        "every branch's commits, once"
    );

    assert_eq!(
        t.merge_base("main", "topic").await?,
        Some(t.id("main~2").await)
    );
    assert!(t.is_ancestor("main~2", "topic").await?);
    assert!(t.is_ancestor("main", "main").await?);
    assert!(!t.is_ancestor("main", "topic").await?);
    let labels = t.ref_labels().await?;
    assert_eq!(labels[&t.id("main").await], ["HEAD -> main"]);
    assert_eq!(labels[&t.id("topic").await], ["topic"]);
    Ok(())
}

#[tokio::test]
async fn revert_undoes_one_commit_and_keeps_what_came_after() -> Result {
    let t = three_commits().await;
    t.upsert("people", "id,name,score\n3,cyril,3.0\n").await;
    t.commit_changes("fourth").await;
    // `second` renamed bob and added dee; reverting it keeps the later changes.
    let c = t.revert("HEAD~2", &PickOptions::default()).await?;
    assert_eq!(c.branch.as_deref(), Some("main"));
    assert_eq!(t.parents("HEAD").await, [t.id("HEAD~1").await]);
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n2,bob,2.5\n3,cyril,3.0\n"
    );
    let message = t.message("HEAD").await;
    assert!(
        message.starts_with("Revert \"second\"\n\nThis reverts commit "),
        "{message}"
    );
    assert_eq!(reasons(&t, None).await[0], "revert: Revert \"second\"");
    Ok(())
}

#[tokio::test]
async fn a_revert_or_pick_that_conflicts_changes_nothing_and_names_the_table() -> Result {
    let t = three_commits().await;
    t.upsert("people", "id,name,score\n2,robert,2.5\n").await;
    t.commit_changes("bob again").await;
    // Refs, HEAD and the working tables stay; chunks the attempt wrote are unreferenced
    // (gc removes them).
    let state = ["refs", "local", "strata.json"];
    let before = t.snapshot().only(&state);
    // Reverting `second` would set bob's name back while `bob again` changed it since.
    let e = t
        .revert("HEAD~2", &PickOptions::default())
        .await
        .expect_err("conflict");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        e.to_string().contains("in people; nothing was changed"),
        "{e}"
    );
    before.assert_same(&t.snapshot().only(&state), "a conflicting revert");

    t.upsert("people", "id,name,score\n5,eve,5.0\n").await;
    let dirty = t
        .cherry_pick("HEAD~1", &PickOptions::default())
        .await
        .expect_err("working changes");
    assert_eq!(dirty.kind(), ErrorKind::InvalidState, "{dirty}");
    Ok(())
}

#[tokio::test]
async fn cherry_pick_applies_a_commit_of_another_branch_with_its_message_and_author() -> Result {
    let t = forked().await;
    let picked = t.id("topic").await;
    let opts = PickOptions {
        record_origin: true,
        ..Default::default()
    };
    t.cherry_pick("topic", &opts).await?;
    assert_eq!(t.parents("HEAD").await, [t.id("HEAD~1").await]);
    let info = t.commit_info("HEAD").await?;
    assert_eq!(info.author, t.commit_info("topic").await?.author);
    assert_eq!(
        info.message,
        format!("topic-2\n\n(cherry picked from commit {picked})")
    );
    let rows = t.csv("people", None).await;
    assert!(
        rows.contains("8,hal,8.0") && !rows.contains("7,gil"),
        "{rows}"
    );

    // A merge commit needs its mainline.
    t.merge("topic", &MergeOptions::default()).await?;
    let e = t
        .revert("HEAD", &PickOptions::default())
        .await
        .expect_err("a merge without -m");
    assert!(e.to_string().contains("-m N"), "{e}");
    t.revert(
        "HEAD",
        &PickOptions {
            mainline: Some(1),
            ..Default::default()
        },
    )
    .await?;
    assert!(!t.csv("people", None).await.contains("7,gil"));
    Ok(())
}

#[tokio::test]
async fn amend_replaces_the_last_commit_on_the_same_parent_keeping_its_author() -> Result {
    let t = three_commits().await;
    let old = t.id("HEAD").await;
    let old_author = t.commit_info("HEAD").await?.author;
    t.upsert("people", "id,name,score\n6,fay,6.0\n").await;
    let amended = t.amend(Some("third, amended"), None).await?;
    assert_ne!(amended.id, old);
    let info = t.commit_info("HEAD").await?;
    assert_eq!(info.message, "third, amended");
    assert_eq!(info.author, old_author);
    assert_eq!(info.parents, t.commit_info(&old.to_hex()).await?.parents);
    assert!(t.csv("people", Some("HEAD")).await.contains("6,fay,6.0"));
    assert_eq!(t.status().await?.tables, []);
    assert_eq!(t.id("main@{1}").await, old);
    // Without a message, the old one stays.
    t.amend(None, None).await?;
    assert_eq!(t.message("HEAD").await, "third, amended");
    Ok(())
}

#[tokio::test]
async fn an_annotated_tag_records_its_tagger_time_and_message_and_a_light_one_none() -> Result {
    let t = three_commits().await;
    let at = t
        .create_annotated_tag("v1", Some("HEAD~1"), "release", None)
        .await?;
    assert_eq!(at, t.id("HEAD~1").await);
    t.create_tag("light", None).await?;
    let note = t
        .tag_note("v1")
        .await?
        .expect("an annotated tag has a note");
    assert_eq!(note.tagger, AUTHOR);
    assert_eq!(note.time, COMMIT_TIME);
    assert_eq!(note.message, "release");
    assert_eq!(t.tag_note("light").await?, None);
    let tags = t.tags().await?;
    assert_eq!(tags[1].note.as_ref(), Some(&note));
    let empty = t
        .create_annotated_tag("v2", None, "  ", None)
        .await
        .expect_err("an empty message");
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    assert!(t.tag_note("v2").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn unreferenced_commits_are_those_no_branch_or_tag_reaches() -> Result {
    let t = three_commits().await;
    t.switch_to("HEAD~1").await;
    t.upsert("people", "id,name,score\n5,eve,5.0\n").await;
    let a = t.commit_changes("adrift 1").await;
    t.upsert("people", "id,name,score\n6,fay,6.0\n").await;
    let b = t.commit_changes("adrift 2").await;
    let left: Vec<ObjectId> = t
        .unreferenced_commits(&b.to_hex())
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, [b, a]);
    t.create_tag("keep", Some(&a.to_hex())).await?;
    assert_eq!(t.unreferenced_commits(&b.to_hex()).await?.len(), 1);
    assert!(t.unreferenced_commits("main").await?.is_empty());
    Ok(())
}
