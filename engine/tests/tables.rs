//! Properties of key-chunked tables: chunking depends on the rows alone, an edit rewrites
//! only the chunks around it, and what goes in comes out in key order.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use strata_engine::table::{apply, ChangeOp};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn what_is_imported_is_exported_in_key_order(rows in table_strategy(), batch in 1usize..100) {
        let rt = runtime();
        rt.block_on(async {
            let objects = objects();
            let t = create(&objects, &rows, batch).await;
            prop_assert_eq!(t.rows as usize, rows.len());
            prop_assert_eq!(read_all(&objects, &t).await, rows);
            Ok(())
        })?;
    }

    #[test]
    fn chunking_depends_on_the_rows_alone_not_on_the_edit_history(
        first in table_strategy(), second in table_strategy(), dels in prop::collection::vec(0i64..5000, 0..50)
    ) {
        let rt = runtime();
        rt.block_on(async {
            let objects = objects();
            // History: create from `first`, upsert `second`, delete `dels`.
            let t1 = create(&objects, &first, 7).await;
            let (t2, _) = apply(&objects, "t", Some(&t1), schema(), PARAMS, ChangeOp::Upsert, &mut source(&second, 13))
                .await.expect("upsert");
            let mut dels = dels.clone();
            dels.sort();
            dels.dedup();
            let (t3, _) = apply(&objects, "t", Some(&t2), schema(), PARAMS, ChangeOp::Delete, &mut keys_source(&dels))
                .await.expect("delete");
            // The same rows, imported in one go.
            let mut expected = first.clone();
            expected.extend(second.clone());
            for d in &dels {
                expected.remove(d);
            }
            let direct = create(&objects, &expected, 50).await;
            prop_assert_eq!(read_all(&objects, &t3).await, expected);
            prop_assert_eq!(t3.chunks(&objects).await.expect("chunks"), direct.chunks(&objects).await.expect("chunks"));
            prop_assert_eq!(t3.index, direct.index);
            Ok(())
        })?;
    }
}

#[test]
fn changing_one_value_rewrites_exactly_one_chunk() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 1000).await;
        let before = t.chunks(&objects).await.expect("chunks");
        assert!(before.len() > 500, "{} chunks", before.len());
        let change: BTreeMap<i64, String> = [(12_345, "changed".to_string())].into();
        let (t2, stats) = apply(
            &objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Upsert,
            &mut source(&change, 1),
        )
        .await
        .expect("upsert");
        assert_eq!(stats.updated, 1);
        assert_eq!(stats.chunks_written, 1);
        let after = t2.chunks(&objects).await.expect("chunks");
        assert_eq!(before.len(), after.len());
        let differing = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.id != b.id)
            .count();
        assert_eq!(differing, 1);
    });
}

#[test]
fn inserting_or_deleting_one_row_rewrites_at_most_a_few_chunks() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i * 2, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 1000).await;
        let before: std::collections::HashSet<_> = t
            .chunks(&objects)
            .await
            .expect("chunks")
            .into_iter()
            .map(|e| e.id)
            .collect();
        let insert: BTreeMap<i64, String> = [(20_001, "new".to_string())].into();
        let (t2, _) = apply(
            &objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Insert,
            &mut source(&insert, 1),
        )
        .await
        .expect("insert");
        let new_chunks = t2
            .chunks(&objects)
            .await
            .expect("chunks")
            .into_iter()
            .filter(|e| !before.contains(&e.id))
            .count();
        assert!(
            new_chunks <= 3,
            "{new_chunks} chunks rewritten by one insert"
        );
        let (t3, stats) = apply(
            &objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Delete,
            &mut keys_source(&[30_000]),
        )
        .await
        .expect("delete");
        assert_eq!(stats.deleted, 1);
        let new_chunks = t3
            .chunks(&objects)
            .await
            .expect("chunks")
            .into_iter()
            .filter(|e| !before.contains(&e.id))
            .count();
        assert!(
            new_chunks <= 3,
            "{new_chunks} chunks rewritten by one delete"
        );
    });
}

#[test]
fn appending_an_existing_key_is_refused_with_the_key() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..100).map(|i| (i, "x".to_string())).collect();
        let t = create(&objects, &rows, 10).await;
        let dup: BTreeMap<i64, String> = [(42, "y".to_string())].into();
        let err = apply(
            &objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Insert,
            &mut source(&dup, 1),
        )
        .await
        .expect_err("duplicate");
        assert!(err.to_string().contains("id=42"), "{err}");
    });
}
