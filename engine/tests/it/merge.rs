//! The algebra of diff and merge: merging an unchanged side is the identity, conflict-free
//! merges do not depend on the order of the sides, and a diff applied to its source gives
//! its target.

use std::collections::BTreeMap;

use crate::common::*;
use proptest::prelude::*;
use strata_engine::diff::{diff_tables, RowChange};
use strata_engine::merge::merge_tables;
use strata_engine::table::TableObject;

fn edits() -> impl Strategy<Value = (BTreeMap<i64, String>, Vec<i64>)> {
    (
        prop::collection::btree_map(0i64..3000, "[a-z]{0,4}", 0..40),
        prop::collection::vec(0i64..3000, 0..20),
    )
}

/// Restricts edits to keys where `keep(key)` holds.
fn only(
    e: &(BTreeMap<i64, String>, Vec<i64>),
    keep: impl Fn(i64) -> bool,
) -> (BTreeMap<i64, String>, Vec<i64>) {
    (
        e.0.iter()
            .filter(|(k, _)| keep(**k))
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
        e.1.iter().copied().filter(|k| keep(*k)).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20))]

    #[test]
    fn merging_an_unchanged_side_gives_the_other_side(base in table_strategy(), e in edits()) {
        runtime().block_on(async {
            let objects = objects();
            let b = create(&objects, &base, 64).await;
            let x = edit(&objects, &b, &e.0, &e.1).await;
            let m1 = merge_tables(&objects, "t", Some(&b), &x, &b).await.expect("merge");
            prop_assert!(m1.conflicts.is_empty());
            prop_assert_eq!(m1.table.index, x.index);
            // The other way round, the same rows cut the same way (a chunk that `x` stores
            // as a chunk and a delta may be stored whole, or the other way round).
            let m2 = merge_tables(&objects, "t", Some(&b), &b, &x).await.expect("merge");
            prop_assert!(m2.conflicts.is_empty());
            prop_assert_eq!(read_all(&objects, &m2.table).await, read_all(&objects, &x).await);
            prop_assert_eq!(layout(&objects, &m2.table).await, layout(&objects, &x).await);
            Ok(())
        })?;
    }

    #[test]
    fn conflict_free_merges_give_the_same_table_in_either_order(base in table_strategy(), e1 in edits(), e2 in edits()) {
        runtime().block_on(async {
            let objects = objects();
            let b = create(&objects, &base, 64).await;
            // Even keys change on one side, odd keys on the other: no conflicts possible.
            let (u1, d1) = only(&e1, |k| k % 2 == 0);
            let (u2, d2) = only(&e2, |k| k % 2 == 1);
            let x = edit(&objects, &b, &u1, &d1).await;
            let y = edit(&objects, &b, &u2, &d2).await;
            let xy = merge_tables(&objects, "t", Some(&b), &x, &y).await.expect("merge");
            let yx = merge_tables(&objects, "t", Some(&b), &y, &x).await.expect("merge");
            prop_assert!(xy.conflicts.is_empty() && yx.conflicts.is_empty());
            prop_assert_eq!(read_all(&objects, &xy.table).await, read_all(&objects, &yx.table).await);
            prop_assert_eq!(layout(&objects, &xy.table).await, layout(&objects, &yx.table).await);
            let mut expected = base.clone();
            expected.extend(u1);
            expected.extend(u2);
            for k in d1.iter().chain(&d2) {
                expected.remove(k);
            }
            prop_assert_eq!(read_all(&objects, &xy.table).await, expected);
            Ok(())
        })?;
    }

    #[test]
    fn applying_a_diff_to_its_source_gives_its_target(a in table_strategy(), b in table_strategy()) {
        runtime().block_on(async {
            let objects = objects();
            let ta = create(&objects, &a, 64).await;
            let tb = create(&objects, &b, 64).await;
            let mut upserts = BTreeMap::new();
            let mut deletes = Vec::new();
            let ids = |rows: &strata_engine::key::Rows, i: usize| {
                rows.batch.column(0).as_any().downcast_ref::<strata_engine::arrow::array::Int64Array>().expect("ids").value(i)
            };
            let vals = |rows: &strata_engine::key::Rows, i: usize| {
                rows.batch.column(1).as_any().downcast_ref::<strata_engine::arrow::array::StringArray>().expect("values").value(i).to_string()
            };
            diff_tables(&objects, Some(&ta), Some(&tb), &mut |c| {
                match c {
                    RowChange::Added { new, row } => { upserts.insert(ids(new, row), vals(new, row)); }
                    RowChange::Modified { new, new_row, .. } => { upserts.insert(ids(new, new_row), vals(new, new_row)); }
                    RowChange::Removed { old, row } => deletes.push(ids(old, row)),
                }
                Ok(())
            }).await.expect("diff");
            let applied: TableObject = edit(&objects, &ta, &upserts, &deletes).await;
            prop_assert_eq!(read_all(&objects, &applied).await, read_all(&objects, &tb).await);
            prop_assert_eq!(layout(&objects, &applied).await, layout(&objects, &tb).await);
            Ok(())
        })?;
    }
}

#[test]
fn changing_the_same_cell_differently_is_a_conflict_that_keeps_ours() {
    runtime().block_on(async {
        let objects = objects();
        let base: BTreeMap<i64, String> = (0..100).map(|i| (i, "base".to_string())).collect();
        let b = create(&objects, &base, 64).await;
        let x = edit(&objects, &b, &[(5, "ours".to_string())].into(), &[7]).await;
        let y = edit(
            &objects,
            &b,
            &[(5, "theirs".to_string()), (7, "theirs".to_string())].into(),
            &[],
        )
        .await;
        let m = merge_tables(&objects, "t", Some(&b), &x, &y)
            .await
            .expect("merge");
        let kinds: Vec<&str> = m.conflicts.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["modify/modify", "delete/modify"]);
        let rows = read_all(&objects, &m.table).await;
        assert_eq!(rows.get(&5).map(String::as_str), Some("ours"));
        assert_eq!(rows.get(&7), None);
    });
}
