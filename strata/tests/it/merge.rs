//! Merging: fast-forwards, merge commits, the three-way merge cell by cell, conflicts listed
//! and resolved, and aborting a merge.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};
use strata::{
    Change, CheckoutOptions, DiffOptions, ErrorKind, MergeOptions, MergeOutcome, MergingStatus,
    Side, Suggestion, TableStat, WriteOptions,
};

use crate::common::*;

type Result = strata::Result<()>;

/// A repository with `people` ([`PEOPLE_CSV`]) committed on main and a branch `feature` at
/// that commit; main is checked out.
async fn forked() -> TestRepo {
    let t = TestRepo::with_people().await;
    t.branch("feature").await;
    t
}

/// [`forked`], then `theirs` committed on feature and `ours` committed on main.
async fn diverged(
    ours: impl AsyncFnOnce(&TestRepo),
    theirs: impl AsyncFnOnce(&TestRepo),
) -> TestRepo {
    let t = forked().await;
    t.commit_on("feature", "their change", theirs).await;
    t.commit_on("main", "our change", ours).await;
    t
}

/// Both sides changed bob's score: to 8.5 on main, to 7.5 on feature.
async fn score_conflict() -> TestRepo {
    diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,8.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,7.5\n").await;
        },
    )
    .await
}

/// Merges feature with the default options.
async fn merge(t: &TestRepo, rev: &str) -> strata::Result<MergeOutcome> {
    t.merge(rev, &MergeOptions::default()).await
}

/// Merges feature, which must stop on conflicts; returns how many rows conflict in which
/// tables.
async fn merge_stops(t: &TestRepo) -> (usize, Vec<String>) {
    match merge(t, "feature").await {
        Ok(MergeOutcome::Conflicts { rows, tables }) => (rows, tables),
        other => panic!("expected the merge to stop on conflicts, got {other:?}"),
    }
}

/// The conflicts of the merge in progress (of one table, or all), as the JSON they
/// serialize to.
async fn conflicts_json(t: &TestRepo, table: Option<&str>) -> Vec<Value> {
    t.conflicts(table)
        .await
        .expect("the conflicts should be readable")
        .expect("a merge is in progress")
        .iter()
        .map(to_json)
        .collect()
}

/// The conflicting rows left per table of the merge in progress.
async fn conflicts_left(t: &TestRepo) -> BTreeMap<String, usize> {
    t.status()
        .await
        .expect("status")
        .merging
        .expect("a merge is in progress")
        .conflicts
}

/// Asserts that an operation was refused with a message that mentions `parts` and left
/// `.strata` exactly as it was.
macro_rules! refused {
    ($t:expr, $op:expr, $parts:expr) => {{
        let before = $t.snapshot();
        let err = $op.await.expect_err("the operation should be refused");
        assert_mentions(&err.to_string(), $parts);
        before.assert_same(&$t.snapshot(), stringify!($op));
        err
    }};
}

#[tokio::test]
async fn merge_fast_forwards_to_a_branch_that_is_ahead_and_takes_its_tables() -> Result {
    let t = forked().await;
    let theirs = t
        .commit_on("feature", "feature work", async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        })
        .await;
    let outcome = merge(&t, "feature").await?;
    assert_eq!(outcome, MergeOutcome::FastForward { commit: theirs });
    assert_eq!(t.id("HEAD").await, theirs);
    assert_eq!(t.id("main").await, theirs);
    assert_eq!(
        t.csv("people", None).await,
        format!("{PEOPLE_CSV}4,dee,4.5\n")
    );
    assert_eq!(t.status().await?.tables, []);
    assert_eq!(
        t.parents("HEAD").await.len(),
        1,
        "a fast-forward makes no commit"
    );
    Ok(())
}

#[tokio::test]
async fn merge_fast_forwards_to_a_branch_that_has_already_merged_ours() -> Result {
    let t = forked().await;
    t.commit_on("feature", "their change", async |t| {
        t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
    })
    .await;
    t.commit_on("main", "our change", async |t| {
        t.upsert("people", "id,name,score\n5,eve,5.5\n").await;
    })
    .await;
    t.switch_to("feature").await;
    let outcome = merge(&t, "main").await?;
    let merged = t.id("HEAD").await;
    assert_eq!(outcome, MergeOutcome::Merged { commit: merged });
    assert_eq!(merge(&t, "main").await?, MergeOutcome::UpToDate);
    t.switch_to("main").await;
    let outcome = merge(&t, "feature").await?;
    assert_eq!(outcome, MergeOutcome::FastForward { commit: merged });
    assert_eq!(t.id("HEAD").await, merged);
    assert_eq!(
        t.csv("people", None).await,
        format!("{PEOPLE_CSV}4,dee,4.5\n5,eve,5.5\n")
    );
    Ok(())
}

#[tokio::test]
async fn merge_of_a_branch_already_contained_is_up_to_date_and_changes_nothing() -> Result {
    let t = forked().await;
    t.commit_on("main", "main work", async |t| {
        t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
    })
    .await;
    let before = t.snapshot();
    assert_eq!(merge(&t, "feature").await?, MergeOutcome::UpToDate);
    before.assert_same(&t.snapshot(), "merge of an ancestor");
    Ok(())
}

#[tokio::test]
async fn merge_ff_only_refuses_diverged_history_and_changes_nothing() {
    let t = score_conflict().await;
    let opts = MergeOptions {
        ff_only: true,
        ..Default::default()
    };
    refused!(
        t,
        t.merge("feature", &opts),
        &["cannot fast-forward", "'feature'", "diverged"]
    );
}

#[tokio::test]
async fn merge_ff_only_fast_forwards_when_history_allows_it() -> Result {
    let t = forked().await;
    let theirs = t
        .commit_on("feature", "feature work", async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        })
        .await;
    let opts = MergeOptions {
        ff_only: true,
        ..Default::default()
    };
    assert_eq!(
        t.merge("feature", &opts).await?,
        MergeOutcome::FastForward { commit: theirs }
    );
    assert_eq!(t.id("HEAD").await, theirs);
    Ok(())
}

#[tokio::test]
async fn merge_no_ff_makes_a_merge_commit_with_both_parents_even_when_a_fast_forward_is_possible(
) -> Result {
    let t = forked().await;
    let ours = t.id("HEAD").await;
    let theirs = t
        .commit_on("feature", "feature work", async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        })
        .await;
    let opts = MergeOptions {
        no_ff: true,
        ..Default::default()
    };
    let outcome = t.merge("feature", &opts).await?;
    let merge = t.id("HEAD").await;
    assert_eq!(outcome, MergeOutcome::Merged { commit: merge });
    assert_ne!(merge, theirs);
    assert_eq!(t.parents("HEAD").await, [ours, theirs]);
    assert_eq!(t.message("HEAD").await, "Merge 'feature' into main");
    assert_eq!(
        t.csv("people", None).await,
        t.csv("people", Some(&theirs.to_hex())).await
    );
    assert_eq!(t.status().await?.tables, []);
    Ok(())
}

#[tokio::test]
async fn merge_of_diverged_branches_commits_the_union_of_their_changes_with_both_parents() -> Result
{
    let t = forked().await;
    let theirs = t
        .commit_on("feature", "feature work", async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n5,eve,5.5\n")
                .await;
            t.delete_keys("people", "id\n1\n").await;
        })
        .await;
    let ours = t
        .commit_on("main", "main work", async |t| {
            t.upsert("people", "id,name,score\n3,cyd,3.0\n6,fay,6.5\n")
                .await;
        })
        .await;
    let opts = MergeOptions {
        message: Some("bring in feature".into()),
        ..Default::default()
    };
    let outcome = t.merge("feature", &opts).await?;
    assert_eq!(
        outcome,
        MergeOutcome::Merged {
            commit: t.id("HEAD").await
        }
    );
    assert_eq!(t.parents("HEAD").await, [ours, theirs]);
    assert_eq!(t.message("HEAD").await, "bring in feature");
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n2,bob,2.5\n3,cyd,3.0\n4,dee,4.5\n5,eve,5.5\n6,fay,6.5\n"
    );
    let status = t.status().await?;
    assert_eq!(status.merging, None);
    assert_eq!(status.tables, []);
    Ok(())
}

#[tokio::test]
async fn merge_takes_tables_added_on_either_side() -> Result {
    let t = forked().await;
    t.commit_on("feature", "cities", async |t| {
        t.create("cities", &["city"], "city,pop\noslo,1\n").await;
    })
    .await;
    t.commit_on("main", "towns", async |t| {
        t.create("towns", &["town"], "town,pop\nbergen,2\n").await;
    })
    .await;
    merge(&t, "feature").await?;
    assert_eq!(t.table_names(None).await, ["cities", "people", "towns"]);
    assert_eq!(t.csv("cities", None).await, "city,pop\noslo,1\n");
    Ok(())
}

#[tokio::test]
async fn changes_to_different_cells_of_one_row_merge_cell_by_cell() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bobby,2.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,9.5\n").await;
        },
    )
    .await;
    let outcome = merge(&t, "feature").await?;
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bobby,9.5\n3,cy,3.0\n"
    );
    assert_eq!(t.parents("HEAD").await.len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_same_cell_changed_to_the_same_value_on_both_sides_merges() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,9.0\n3,cy,3.5\n")
                .await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,9.0\n").await;
        },
    )
    .await;
    let outcome = merge(&t, "feature").await?;
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,9.0\n3,cy,3.5\n"
    );
    Ok(())
}

#[tokio::test]
async fn a_row_deleted_on_both_sides_stays_deleted() -> Result {
    let t = diverged(
        async |t| {
            t.delete_keys("people", "id\n1\n").await;
        },
        async |t| {
            t.delete_keys("people", "id\n1\n").await;
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        },
    )
    .await;
    let outcome = merge(&t, "feature").await?;
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n2,bob,2.5\n3,cy,3.0\n4,dee,4.5\n"
    );
    Ok(())
}

#[tokio::test]
async fn the_same_cell_changed_to_different_values_stops_the_merge_with_its_conflicts() -> Result {
    let t = score_conflict().await;
    let ours = t.id("HEAD").await;
    let outcome = merge(&t, "feature").await?;
    assert_eq!(
        outcome,
        MergeOutcome::Conflicts {
            rows: 1,
            tables: vec!["people".into()]
        }
    );
    let err = outcome
        .conflict_error("merge of 'feature'", false)
        .expect("conflicts are an error");
    assert_eq!(
        err.to_string(),
        "merge of 'feature' stopped with 1 conflicting row in people"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.suggestion(),
        Some(Suggestion::ResolveConflicts { pull: false })
    );
    // Nothing is committed yet; the working table keeps our version of the row.
    assert_eq!(t.id("HEAD").await, ours);
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.0\n"
    );
    Ok(())
}

#[tokio::test]
async fn changes_without_conflict_are_in_the_working_tables_while_conflicts_remain() {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,8.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,7.5\n3,cy,3.9\n4,dee,4.5\n")
                .await;
        },
    )
    .await;
    assert_eq!(merge_stops(&t).await, (1, vec!["people".to_string()]));
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.9\n4,dee,4.5\n"
    );
}

#[tokio::test]
async fn a_row_deleted_on_our_side_and_changed_on_theirs_is_a_conflict() -> Result {
    let t = diverged(
        async |t| {
            t.delete_keys("people", "id\n3\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n3,cy,3.9\n").await;
        },
    )
    .await;
    merge_stops(&t).await;
    let conflicts = t.conflicts(None).await?.expect("a merge is in progress");
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].table, "people");
    assert_eq!(conflicts[0].kind, "delete/modify");
    assert_eq!(conflicts[0].key, object(json!({"id": 3})));
    // Our deletion is what the working table holds until the conflict is resolved.
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n"
    );
    assert_eq!(t.resolve_conflicts(None, Side::Theirs).await?, (1, 0));
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy,3.9\n"
    );
    Ok(())
}

#[tokio::test]
async fn a_row_changed_on_our_side_and_deleted_on_theirs_is_a_conflict() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n3,cy,3.9\n").await;
        },
        async |t| {
            t.delete_keys("people", "id\n3\n").await;
        },
    )
    .await;
    merge_stops(&t).await;
    let conflicts = conflicts_json(&t, None).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["kind"], "modify/delete");
    let score = conflicts[0]["cells"]
        .as_array()
        .expect("cells is a list")
        .iter()
        .find(|c| c["column"] == "score")
        .cloned()
        .expect("the score cell differs");
    assert_eq!(
        score,
        json!({"column": "score", "base": 3.0, "ours": 3.9, "theirs": null})
    );
    // Taking their side deletes the row.
    assert_eq!(t.resolve_conflicts(None, Side::Theirs).await?, (1, 0));
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n"
    );
    t.commit_changes("merged").await;
    assert_eq!(t.parents("HEAD").await.len(), 2);
    Ok(())
}

#[tokio::test]
async fn one_key_inserted_on_both_sides_with_different_rows_is_a_conflict() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n4,dan,4.5\n").await;
        },
    )
    .await;
    merge_stops(&t).await;
    assert_eq!(
        conflicts_json(&t, None).await,
        [
            json!({"table": "people", "kind": "add/add", "key": {"id": 4},
                "cells": [{"column": "name", "base": null, "ours": "dee", "theirs": "dan"}]})
        ]
    );
    assert_eq!(t.resolve_conflicts(None, Side::Ours).await?, (1, 0));
    assert_eq!(
        t.csv("people", None).await,
        format!("{PEOPLE_CSV}4,dee,4.5\n")
    );
    Ok(())
}

#[tokio::test]
async fn one_key_inserted_on_both_sides_with_the_same_row_merges() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n4,dee,4.5\n5,eve,5.5\n")
                .await;
        },
    )
    .await;
    let outcome = merge(&t, "feature").await?;
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        t.csv("people", None).await,
        format!("{PEOPLE_CSV}4,dee,4.5\n5,eve,5.5\n")
    );
    Ok(())
}

/// `people` with a column `team` added.
const WITH_TEAM: &str = "id,name,score,team\n1,ann,1.5,red\n2,bob,2.5,blue\n3,cy,3.0,red\n";

#[tokio::test]
async fn a_column_added_on_our_side_merges_and_their_new_rows_get_null_in_it() -> Result {
    let t = diverged(
        async |t| {
            t.replace("people", WITH_TEAM).await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,5.0\n4,dee,4.5\n")
                .await;
        },
    )
    .await;
    merge(&t, "feature").await?;
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score,team\n1,ann,1.5,red\n2,bob,5.0,blue\n3,cy,3.0,red\n4,dee,4.5,\n"
    );
    let rows = t.rows("people", None).await;
    assert_eq!(
        rows[3],
        json!({"id": 4, "name": "dee", "score": 4.5, "team": null})
    );
    let columns: Vec<String> = t
        .table("people", None)
        .await?
        .columns
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(columns, ["id", "name", "score", "team"]);
    Ok(())
}

#[tokio::test]
async fn a_column_added_on_their_side_merges_and_our_new_rows_get_null_in_it() -> Result {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bob,5.0\n4,dee,4.5\n")
                .await;
        },
        async |t| {
            t.replace("people", WITH_TEAM).await;
        },
    )
    .await;
    merge(&t, "feature").await?;
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score,team\n1,ann,1.5,red\n2,bob,5.0,blue\n3,cy,3.0,red\n4,dee,4.5,\n"
    );
    assert_eq!(t.rows("people", None).await[3]["team"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn incompatible_schema_changes_stop_the_merge_with_a_clear_message_and_change_nothing(
) -> Result {
    let t = diverged(
        async |t| {
            t.replace("people", WITH_TEAM).await;
        },
        async |t| {
            t.replace(
                "people",
                "id,name,score,level\n1,ann,1.5,1\n2,bob,2.5,2\n3,cy,3.0,3\n",
            )
            .await;
        },
    )
    .await;
    refused!(
        t,
        merge(&t, "feature"),
        &[
            "cannot merge table 'people'",
            "schema",
            "team",
            "level",
            "make the schemas match on one side, commit, and merge again",
        ]
    );
    assert_eq!(t.status().await?.merging, None);
    Ok(())
}

#[tokio::test]
async fn a_merge_with_uncommitted_changes_is_refused_and_changes_nothing() {
    let t = score_conflict().await;
    t.upsert("people", "id,name,score\n4,dee,4.5\n").await;
    let err = refused!(t, merge(&t, "feature"), &["uncommitted changes", "people"]);
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.suggestion(), Some(Suggestion::CommitOrDiscard));
}

#[tokio::test]
async fn a_merge_of_an_unknown_revision_is_refused_and_changes_nothing() {
    let t = forked().await;
    let err = refused!(t, merge(&t, "nowhere"), &["unknown revision 'nowhere'"]);
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.suggestion(), Some(Suggestion::RevisionSyntax));
}

#[tokio::test]
async fn status_shows_the_conflicts_of_a_merge_in_progress() -> Result {
    let t = score_conflict().await;
    let theirs = t.id("feature").await;
    merge_stops(&t).await;
    let status = t.status().await?;
    assert_eq!(
        status.merging,
        Some(MergingStatus {
            theirs,
            name: "feature".into(),
            conflicts: BTreeMap::from([("people".to_string(), 1)]),
        })
    );
    assert_eq!(
        to_json(&status.merging),
        json!({"theirs": theirs.to_hex(), "name": "feature", "conflicts": {"people": 1}})
    );
    // The working table holds our version of the only row that changed: it matches HEAD.
    assert_eq!(status.tables, []);
    assert_eq!(status.branch.as_deref(), Some("main"));
    Ok(())
}

#[tokio::test]
async fn status_shows_no_conflicts_left_once_every_conflict_is_resolved() -> Result {
    let t = score_conflict().await;
    merge_stops(&t).await;
    t.resolve_conflicts(None, Side::Ours).await?;
    let merging = t.status().await?.merging.expect("the merge is in progress");
    assert_eq!(merging.name, "feature");
    assert_eq!(merging.conflicts, BTreeMap::new());
    Ok(())
}

/// [`two_table_conflict`] without the merge.
async fn two_table_conflict_before_merge() -> TestRepo {
    let t = TestRepo::with_people().await;
    t.create("cities", &["city"], "city,pop\noslo,1\nrome,2\n")
        .await;
    t.commit_changes("cities").await;
    t.branch("feature").await;
    t.commit_on("feature", "their change", async |t| {
        t.upsert("people", "id,name,score\n2,robert,7.5\n").await;
        t.upsert("cities", "city,pop\nrome,30\n").await;
    })
    .await;
    t.commit_on("main", "our change", async |t| {
        t.upsert("people", "id,name,score\n2,bob,8.5\n").await;
        t.upsert("cities", "city,pop\nrome,20\n").await;
    })
    .await;
    t
}

/// A merge stopped on conflicts in two tables: bob's score in people, rome's pop in cities.
async fn two_table_conflict() -> TestRepo {
    let t = two_table_conflict_before_merge().await;
    assert_eq!(
        merge_stops(&t).await,
        (2, vec!["cities".to_string(), "people".to_string()])
    );
    t
}

/// The conflict in `cities` of [`two_table_conflict`].
fn rome_conflict() -> Value {
    json!({"table": "cities", "kind": "modify/modify", "key": {"city": "rome"},
           "cells": [{"column": "pop", "base": 2, "ours": 20, "theirs": 30}]})
}

/// The conflict in `people` of [`two_table_conflict`].
fn bob_conflict() -> Value {
    json!({"table": "people", "kind": "modify/modify", "key": {"id": 2},
           "cells": [{"column": "score", "base": 2.5, "ours": 8.5, "theirs": 7.5}]})
}

#[tokio::test]
async fn conflicts_lists_base_ours_and_theirs_for_each_conflicting_cell() {
    let t = two_table_conflict().await;
    assert_eq!(
        conflicts_json(&t, None).await,
        [rome_conflict(), bob_conflict()]
    );
}

#[tokio::test]
async fn conflicts_of_one_table_lists_only_that_tables_conflicts() {
    let t = two_table_conflict().await;
    assert_eq!(conflicts_json(&t, Some("people")).await, [bob_conflict()]);
    assert_eq!(conflicts_json(&t, Some("cities")).await, [rome_conflict()]);
}

#[tokio::test]
async fn a_row_with_two_conflicting_cells_lists_both_and_keeps_merged_cells_out() {
    let t = diverged(
        async |t| {
            t.upsert("people", "id,name,score\n2,bobby,8.5\n").await;
        },
        async |t| {
            t.upsert("people", "id,name,score\n2,robert,7.5\n").await;
        },
    )
    .await;
    merge_stops(&t).await;
    let conflicts = conflicts_json(&t, None).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(
        conflicts[0]["cells"],
        json!([
            {"column": "name", "base": "bob", "ours": "bobby", "theirs": "robert"},
            {"column": "score", "base": 2.5, "ours": 8.5, "theirs": 7.5},
        ])
    );
}

#[tokio::test]
async fn resolving_conflicts_with_ours_keeps_our_rows_and_lets_the_merge_be_committed() -> Result {
    let t = two_table_conflict().await;
    let ours = t.id("HEAD").await;
    let theirs = t.id("feature").await;
    assert_eq!(t.resolve_conflicts(None, Side::Ours).await?, (2, 0));
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,bob,8.5\n3,cy,3.0\n"
    );
    assert_eq!(t.csv("cities", None).await, "city,pop\noslo,1\nrome,20\n");
    assert_eq!(
        conflicts_json(&t, None).await,
        Vec::<Value>::new(),
        "no conflict is left"
    );
    t.commit_changes("merged feature").await;
    assert_eq!(t.parents("HEAD").await, [ours, theirs]);
    let status = t.status().await?;
    assert_eq!(status.merging, None);
    assert_eq!(status.tables, []);
    Ok(())
}

#[tokio::test]
async fn resolving_conflicts_with_theirs_takes_their_rows() -> Result {
    let t = two_table_conflict().await;
    assert_eq!(t.resolve_conflicts(None, Side::Theirs).await?, (2, 0));
    assert_eq!(
        t.csv("people", None).await,
        "id,name,score\n1,ann,1.5\n2,robert,7.5\n3,cy,3.0\n"
    );
    assert_eq!(t.csv("cities", None).await, "city,pop\noslo,1\nrome,30\n");
    t.commit_changes("merged feature").await;
    assert_eq!(
        t.csv("people", Some("HEAD")).await,
        "id,name,score\n1,ann,1.5\n2,robert,7.5\n3,cy,3.0\n"
    );
    Ok(())
}

#[tokio::test]
async fn resolving_the_conflicts_of_one_table_leaves_the_other_tables_conflicts() -> Result {
    let t = two_table_conflict().await;
    assert_eq!(
        t.resolve_conflicts(Some("cities"), Side::Theirs).await?,
        (1, 1)
    );
    assert_eq!(t.csv("cities", None).await, "city,pop\noslo,1\nrome,30\n");
    assert_eq!(conflicts_json(&t, None).await, [bob_conflict()]);
    assert_eq!(
        conflicts_left(&t).await,
        BTreeMap::from([("people".to_string(), 1)])
    );
    refused!(
        t,
        t.resolve_conflicts(Some("cities"), Side::Ours),
        &["table 'cities' has no conflicts"]
    );
    Ok(())
}

#[tokio::test]
async fn importing_the_conflicting_row_with_upsert_resolves_it() -> Result {
    let t = two_table_conflict().await;
    t.upsert("people", "id,name,score\n2,bob,8.0\n").await;
    assert_eq!(conflicts_json(&t, None).await, [rome_conflict()]);
    assert_eq!(
        conflicts_left(&t).await,
        BTreeMap::from([("cities".to_string(), 1)])
    );

    t.upsert("cities", "city,pop\nrome,25\n").await;
    assert_eq!(conflicts_json(&t, None).await, Vec::<Value>::new());
    t.commit_changes("merged by hand").await;
    assert_eq!(t.parents("HEAD").await.len(), 2);
    assert_eq!(
        t.csv("people", Some("HEAD")).await,
        "id,name,score\n1,ann,1.5\n2,bob,8.0\n3,cy,3.0\n"
    );
    assert_eq!(
        t.csv("cities", Some("HEAD")).await,
        "city,pop\noslo,1\nrome,25\n"
    );
    Ok(())
}

#[tokio::test]
async fn writing_the_conflicting_row_as_arrow_resolves_it() -> Result {
    let t = score_conflict().await;
    merge_stops(&t).await;
    t.write_batches(
        "people",
        vec![people_batch(&[(2, "bob", 8.0)])],
        &mode(strata::WriteMode::Upsert),
    )
    .await;
    assert_eq!(conflicts_left(&t).await, BTreeMap::new());
    t.commit_changes("merged by hand").await;
    assert_eq!(
        t.csv("people", Some("HEAD")).await,
        "id,name,score\n1,ann,1.5\n2,bob,8.0\n3,cy,3.0\n"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_the_conflicting_row_resolves_it() -> Result {
    let t = score_conflict().await;
    merge_stops(&t).await;
    t.delete_keys("people", "id\n2\n").await;
    assert_eq!(conflicts_left(&t).await, BTreeMap::new());
    t.commit_changes("merged without bob").await;
    assert_eq!(
        t.csv("people", Some("HEAD")).await,
        "id,name,score\n1,ann,1.5\n3,cy,3.0\n"
    );
    Ok(())
}

#[tokio::test]
async fn commit_is_refused_while_conflicts_remain_and_changes_nothing() -> Result {
    let t = two_table_conflict().await;
    refused!(
        t,
        t.commit("too early", None),
        &["2 conflicts remain in cities, people"]
    );
    t.resolve_conflicts(Some("people"), Side::Ours).await?;
    refused!(
        t,
        t.commit("still too early", None),
        &["1 conflict remains in cities"]
    );
    Ok(())
}

#[tokio::test]
async fn a_merge_in_progress_refuses_another_merge_and_a_checkout() {
    let t = score_conflict().await;
    merge_stops(&t).await;
    refused!(
        t,
        merge(&t, "feature"),
        &["a merge of 'feature' is in progress"]
    );
    refused!(
        t,
        t.checkout("feature", &CheckoutOptions::default()),
        &["a merge of 'feature' is in progress"]
    );
}

#[tokio::test]
async fn merge_abort_restores_the_state_before_the_merge_exactly() -> Result {
    let t = two_table_conflict_before_merge().await;
    let before_local = t.snapshot().only(&["local", "refs"]);
    let working_file = t.data_dir().join("local/WORKING");
    let working = std::fs::read(&working_file).expect("the working state is a file");
    let people = t.csv("people", None).await;
    let cities = t.csv("cities", None).await;
    let status = t.status().await?;

    merge_stops(&t).await;
    // Work during the merge: one table resolved, an unrelated row added.
    t.resolve_conflicts(Some("cities"), Side::Theirs).await?;
    t.upsert("people", "id,name,score\n9,zed,9.5\n").await;
    assert_ne!(t.csv("people", None).await, people);

    t.merge_abort().await?;
    assert_eq!(
        std::fs::read(&working_file).expect("the working state is a file"),
        working
    );
    before_local.assert_same(&t.snapshot().only(&["local", "refs"]), "merge_abort");
    assert_eq!(t.csv("people", None).await, people);
    assert_eq!(t.csv("cities", None).await, cities);
    assert_eq!(t.status().await?, status);
    assert!(!t.data_dir().join("local/MERGE").exists());

    // The same merge can be started again and stops on the same conflicts.
    assert_eq!(merge_stops(&t).await.0, 2);
    Ok(())
}

#[tokio::test]
async fn merge_abort_and_resolving_without_a_merge_are_refused_and_conflicts_are_none() -> Result {
    let t = forked().await;
    refused!(t, t.merge_abort(), &["there is no merge in progress"]);
    refused!(
        t,
        t.resolve_conflicts(None, Side::Ours),
        &["there is no merge in progress"]
    );
    assert_eq!(t.conflicts(None).await?, None);
    assert_eq!(t.status().await?.merging, None);
    Ok(())
}

#[tokio::test]
async fn checkout_force_discards_a_merge_in_progress() -> Result {
    let t = score_conflict().await;
    let ours = t.id("HEAD").await;
    merge_stops(&t).await;
    let force = CheckoutOptions {
        force: true,
        ..Default::default()
    };
    t.checkout("main", &force).await?;
    let status = t.status().await?;
    assert_eq!(status.merging, None);
    assert_eq!(status.tables, []);
    assert_eq!(t.id("HEAD").await, ours);
    assert_eq!(t.conflicts(None).await?, None);
    Ok(())
}

/// Batches of `rows` rows `id,name,score` (ids 0..rows), as a large CSV import would give.
fn large_batches(rows: i64) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let step = 100_000;
    (0..rows)
        .step_by(step)
        .map(|start| {
            let ids = start..(start + step as i64).min(rows);
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(ids.clone())),
                    Arc::new(StringArray::from_iter_values(
                        ids.clone().map(|i| format!("name{i}")),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        ids.map(|i| (i % 1000) as f64 + 0.5),
                    )),
                ],
            )
            .expect("the columns match the schema")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_of_a_million_row_table_where_a_few_rows_differ_merges_those_rows_quickly() -> Result
{
    let t = TestRepo::new().await;
    let opts = WriteOptions {
        primary_key: Some(vec!["id".into()]),
        ..Default::default()
    };
    t.write_batches("big", large_batches(1_000_000), &opts)
        .await;
    t.commit_changes("a million rows").await;
    let base = t.id("HEAD").await;
    t.branch("feature").await;
    let theirs = t
        .commit_on("feature", "their three rows", async |t| {
            t.upsert(
                "big",
                "id,name,score\n11,eleven,1.0\n500001,half,2.0\n1000000,new,3.0\n",
            )
            .await;
        })
        .await;
    let ours = t
        .commit_on("main", "our three rows", async |t| {
            t.upsert(
                "big",
                "id,name,score\n10,ten,1.0\n500000,middle,2.0\n999999,last,3.0\n",
            )
            .await;
        })
        .await;

    let started = std::time::Instant::now();
    let outcome = merge(&t, "feature").await?;
    eprintln!("merging a million-row table took {:?}", started.elapsed());
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(t.parents("HEAD").await, [ours, theirs]);

    let changed = t
        .diff_json(&between(Some(&base.to_hex()), Some("HEAD")))
        .await;
    let keys: Vec<Value> = changed.iter().map(|c| c["key"]["id"].clone()).collect();
    assert_eq!(
        keys,
        [
            json!(10),
            json!(11),
            json!(500000),
            json!(500001),
            json!(999999),
            json!(1000000)
        ]
    );
    assert_eq!(changed[5]["kind"], "added");
    assert_eq!(
        changed[5]["new"],
        json!({"id": 1000000, "name": "new", "score": 3.0})
    );
    assert_eq!(changed[2]["new"]["name"], "middle");
    assert_eq!(changed[3]["new"]["name"], "half");
    let ours_only = t
        .diff_changes(&DiffOptions {
            stat: true,
            ..between(Some("HEAD~1"), Some("HEAD"))
        })
        .await?;
    let [Change::Stat(stat)] = ours_only.as_slice() else {
        panic!("expected the counts of one table: {ours_only:?}");
    };
    assert_eq!(
        *stat,
        TableStat {
            table: "big".into(),
            kind: "stat",
            added: 1,
            removed: 0,
            modified: 2,
            schema_changed: false,
        }
    );
    let tables = t.tables(None).await?;
    assert_eq!(tables[0].rows, 1_000_001);
    Ok(())
}
