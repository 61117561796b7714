//! Chunk deltas: a small edit of a chunk is stored beside it as a delta (the changed rows, and
//! the keys of the deleted ones), the delta grows with later edits of the chunk until the
//! chunk is written anew, and every reader (scan, projection, key ranges, export, diff) sees
//! the chunk's rows with the delta merged in.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::common::*;
use futures::TryStreamExt;
use strata_engine::chunk::ChunkParams;
use strata_engine::diff::{diff_tables, RowChange};
use strata_engine::key::KeyRange;
use strata_engine::store::Objects;
use strata_engine::table::{apply, scan_spec, ChangeOp, ScanSpec, TableObject};
use strata_engine::tree::Entry;

/// Chunks of about 1,000 rows (at least 250): a delta holds up to a quarter of a chunk.
fn params() -> ChunkParams {
    ChunkParams::with_average(1000)
}

fn numbered(range: std::ops::Range<i64>) -> BTreeMap<i64, String> {
    range.map(|i| (i, format!("v{i}"))).collect()
}

async fn apply_op(
    objects: &Objects,
    t: Option<&TableObject>,
    op: ChangeOp,
    rows: &BTreeMap<i64, String>,
) -> TableObject {
    let mut src = if op == ChangeOp::Delete {
        keys_source(&rows.keys().copied().collect::<Vec<_>>())
    } else {
        source(rows, 1)
    };
    apply(objects, "t", t, schema(), params(), op, &mut src)
        .await
        .expect("apply")
        .0
}

async fn chunks(objects: &Objects, t: &TableObject) -> Vec<Entry> {
    t.chunks(objects).await.expect("chunks")
}

/// The entry whose chunk holds `key`.
async fn entry_of(objects: &Objects, t: &TableObject, key: i64) -> Entry {
    let probe = source(&[(key, String::new())].into(), 1);
    let encoded = probe.0[0].keys.get(0).to_vec();
    chunks(objects, t)
        .await
        .into_iter()
        .find(|e| e.last_key_bytes().expect("hex").as_slice() >= encoded.as_slice())
        .expect("a chunk holds the key")
}

/// Asserts that `t` holds `expected`, cut as importing those rows in one go cuts them.
async fn assert_imported_whole(
    objects: &Objects,
    t: &TableObject,
    expected: &BTreeMap<i64, String>,
) {
    assert_eq!(read_all(objects, t).await, *expected);
    let direct = apply_op(objects, None, ChangeOp::Upsert, expected).await;
    assert_eq!(layout(objects, t).await, layout(objects, &direct).await);
}

#[test]
fn edits_of_a_chunk_grow_its_delta_until_the_chunk_is_written_anew() {
    runtime().block_on(async {
        let objects = objects();
        let mut expected = numbered(0..20_000);
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
        let base = entry_of(&objects, &t0, 10_000).await;
        let first = base.last_key.clone();
        let mut t = t0.clone();
        // Keys of the chunk holding 10,000, changed one commit at a time.
        let keys: Vec<i64> = {
            let all = chunks(&objects, &t0).await;
            let at = all.iter().position(|e| e.id == base.id).expect("listed");
            let start: i64 = all[..at].iter().map(|e| e.rows as i64).sum();
            (start..start + base.rows as i64).collect()
        };
        // The chunk's rows as stored, and how many of them the delta replaces.
        let (mut stored, mut in_delta, mut rewrites) = (base.id, 0u64, 0);
        for (n, k) in keys.iter().enumerate() {
            let change: BTreeMap<i64, String> = [(*k, format!("edit {n}"))].into();
            expected.extend(change.clone());
            t = apply_op(&objects, Some(&t), ChangeOp::Upsert, &change).await;
            let e = entry_of(&objects, &t, *k).await;
            assert_eq!((e.rows, &e.last_key), (base.rows, &first));
            match e.delta {
                Some(d) => {
                    in_delta += 1;
                    assert_eq!((e.id, d.rows), (stored, in_delta), "edit {n}");
                    assert!(d.rows * 4 <= base.rows, "edit {n}: {} rows", d.rows);
                }
                None => {
                    // The delta would hold more than a quarter of the chunk: the chunk is
                    // written anew, and later edits make a delta of it.
                    assert!((in_delta + 1) * 4 > base.rows, "rewritten at edit {n}");
                    assert_ne!(e.id, stored);
                    (stored, in_delta) = (e.id, 0);
                    rewrites += 1;
                }
            }
            if n % 50 == 0 || e.delta.is_none() {
                assert_eq!(read_all(&objects, &t).await, expected, "edit {n}");
            }
            if rewrites == 1 && in_delta == 3 {
                break;
            }
        }
        assert_eq!((rewrites, in_delta), (1, 3));
        assert_eq!(read_all(&objects, &t).await, expected);
    });
}

#[test]
fn deletes_and_inserts_in_a_chunk_join_its_delta_and_undoing_them_gives_back_the_table() {
    runtime().block_on(async {
        let objects = objects();
        let mut expected: BTreeMap<i64, String> =
            (0..20_000).map(|i| (i * 2, format!("v{i}"))).collect();
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
        let base = entry_of(&objects, &t0, 20_000).await;
        // A new key between two rows goes into the delta.
        let insert: BTreeMap<i64, String> = [(20_001, "new".to_string())].into();
        let t1 = apply_op(&objects, Some(&t0), ChangeOp::Insert, &insert).await;
        expected.extend(insert);
        let e = entry_of(&objects, &t1, 20_001).await;
        assert_eq!((e.id, e.rows), (base.id, base.rows + 1));
        assert_eq!(e.delta.map(|d| (d.rows, d.deletes)), Some((1, 0)));
        assert_eq!(t1.rows, t0.rows + 1);
        assert_eq!(read_all(&objects, &t1).await, expected);
        // A delete goes into the delta too: the key of the row it deletes, not the chunk
        // written anew.
        let gone: BTreeMap<i64, String> = [(20_002, String::new())].into();
        let t2 = apply_op(&objects, Some(&t1), ChangeOp::Delete, &gone).await;
        expected.remove(&20_002);
        let e = entry_of(&objects, &t2, 20_001).await;
        assert_eq!((e.id, e.rows), (base.id, base.rows));
        assert_eq!(e.delta.map(|d| (d.rows, d.deletes)), Some((1, 1)));
        assert_eq!(t2.rows, t0.rows);
        assert_eq!(read_all(&objects, &t2).await, expected);
        // The inserted row deleted again: a delta of no rows that deletes one.
        let t3 = apply_op(
            &objects,
            Some(&t2),
            ChangeOp::Delete,
            &[(20_001, String::new())].into(),
        )
        .await;
        expected.remove(&20_001);
        let e = entry_of(&objects, &t3, 20_000).await;
        assert_eq!((e.id, e.rows), (base.id, base.rows - 1));
        assert_eq!(e.delta.map(|d| (d.rows, d.deletes)), Some((0, 1)));
        assert_eq!(read_all(&objects, &t3).await, expected);
        // The deleted row back as it was: the chunk alone again, and the very table object.
        let back: BTreeMap<i64, String> = [(20_002, "v10001".to_string())].into();
        let t4 = apply_op(&objects, Some(&t3), ChangeOp::Upsert, &back).await;
        assert_eq!(t4, t0);
        // Deleting more than a quarter of the chunk writes it anew.
        let (first, rows) = {
            let all = chunks(&objects, &t0).await;
            let at = all.iter().position(|e| e.id == base.id).expect("listed");
            let before: i64 = all[..at].iter().map(|e| e.rows as i64).sum();
            (before * 2, base.rows as i64)
        };
        let many: BTreeMap<i64, String> = (0..rows / 4 + 1)
            .map(|i| (first + 2 * (2 * i + 1), String::new()))
            .collect();
        let t5 = apply_op(&objects, Some(&t0), ChangeOp::Delete, &many).await;
        let mut left = read_all(&objects, &t0).await;
        left.retain(|k, _| !many.contains_key(k));
        assert!(chunks(&objects, &t5)
            .await
            .iter()
            .all(|e| e.delta.is_none()));
        assert_imported_whole(&objects, &t5, &left).await;
    });
}

#[test]
fn a_node_is_written_in_the_lowest_format_that_holds_its_deltas() {
    runtime().block_on(async {
        use strata_engine::tree::{read_node, Node};
        let objects = objects();
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &numbered(0..20_000)).await;
        let upsert: BTreeMap<i64, String> = [(10_000, "changed".to_string())].into();
        let t1 = apply_op(&objects, Some(&t0), ChangeOp::Upsert, &upsert).await;
        let t2 = apply_op(
            &objects,
            Some(&t1),
            ChangeOp::Delete,
            &[(10_001, String::new())].into(),
        )
        .await;
        // One level-0 node at this size: the root.
        let formats = |t: &TableObject| {
            let (objects, root) = (objects.clone(), t.index);
            async move {
                let node = read_node(&objects, &root).await.expect("node");
                assert_eq!(node.level, 0);
                node.format
            }
        };
        assert_eq!(
            (formats(&t0).await, formats(&t1).await, formats(&t2).await),
            (1, 2, 3)
        );
        // A delta that deletes rows, in a node that says format 2: a corrupt node.
        let mut node: Node = objects.get_json(&t2.index).await.expect("node");
        node.format = 2;
        let id = objects.put_json(&node).await.expect("put");
        let err = read_node(&objects, &id)
            .await
            .expect_err("format 2 with deletes");
        assert!(
            err.to_string()
                .contains("deletes rows in a node of format 2"),
            "{err}"
        );
    });
}

#[test]
fn the_tables_last_row_deleted_joins_the_last_chunks_delta_and_rows_append_after() {
    runtime().block_on(async {
        let objects = objects();
        let mut expected = numbered(0..20_000);
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
        let last = chunks(&objects, &t0).await.pop().expect("a chunk");
        let t1 = apply_op(
            &objects,
            Some(&t0),
            ChangeOp::Delete,
            &[(19_999, String::new())].into(),
        )
        .await;
        expected.remove(&19_999);
        let e = chunks(&objects, &t1).await.pop().expect("a chunk");
        if last.rows >= 4 {
            assert_eq!(e.id, last.id);
            assert_eq!(e.delta.map(|d| (d.rows, d.deletes)), Some((0, 1)));
        }
        assert_eq!(e.rows, last.rows - 1);
        assert_ne!(e.last_key, last.last_key, "the last key is the row before");
        assert_imported_whole(&objects, &t1, &expected).await;
        let more = numbered(20_000..20_005);
        let t2 = apply_op(&objects, Some(&t1), ChangeOp::Insert, &more).await;
        expected.extend(more);
        assert_imported_whole(&objects, &t2, &expected).await;
    });
}

#[test]
fn rows_appended_past_the_last_key_join_the_last_chunks_delta() {
    runtime().block_on(async {
        let objects = objects();
        let mut expected = numbered(0..20_000);
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
        let before = chunks(&objects, &t0).await;
        let more = numbered(20_000..20_010);
        let t1 = apply_op(&objects, Some(&t0), ChangeOp::Insert, &more).await;
        expected.extend(more);
        let after = chunks(&objects, &t1).await;
        let last = after.last().expect("a chunk");
        if before.last().expect("a chunk").rows >= 40 {
            assert_eq!(last.id, before.last().expect("a chunk").id);
            assert_eq!(last.delta.map(|d| d.rows), Some(10));
        }
        assert_eq!(after.len(), before.len());
        assert_eq!(t1.rows, 20_010);
        assert_imported_whole(&objects, &t1, &expected).await;
    });
}

#[test]
fn scans_of_some_columns_and_key_ranges_and_diffs_read_a_chunk_with_its_delta() {
    runtime().block_on(async {
        let objects = objects();
        let mut expected = numbered(0..20_000);
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
        // Two rows of one chunk change.
        let change: BTreeMap<i64, String> = [
            (10_000, "changed".to_string()),
            (10_001, "also".to_string()),
        ]
        .into();
        let t1 = apply_op(&objects, Some(&t0), ChangeOp::Upsert, &change).await;
        expected.extend(change);
        // And one is deleted.
        let t1 = apply_op(
            &objects,
            Some(&t1),
            ChangeOp::Delete,
            &[(9_995, String::new())].into(),
        )
        .await;
        expected.remove(&9_995);
        let deltas = chunks(&objects, &t1)
            .await
            .into_iter()
            .filter_map(|e| e.delta);
        let (rows, deletes) = deltas.fold((0, 0), |(r, d), x| (r + x.rows, d + x.deletes));
        assert_eq!((rows, deletes), (2, 1));

        let key = |k: i64| {
            source(&[(k, String::new())].into(), 1).0[0]
                .keys
                .get(0)
                .to_vec()
        };
        let spec = ScanSpec {
            columns: Some(vec![1]),
            ranges: vec![KeyRange {
                lower: Bound::Included(key(9_990)),
                upper: Bound::Excluded(key(10_001)),
            }],
        };
        let (_, stream, _) = scan_spec(&objects, &t1, spec).await.expect("scan");
        let batches: Vec<_> = stream.try_collect().await.expect("read");
        let values: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<strata_engine::arrow::array::StringArray>()
                    .expect("strings");
                (0..strata_engine::arrow::array::Array::len(a))
                    .map(|i| a.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let want: Vec<String> = expected
            .range(9_990..10_001)
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(values, want);

        let mut changed = Vec::new();
        let counts = diff_tables(&objects, Some(&t0), Some(&t1), &mut |c| {
            if let RowChange::Modified { new, new_row, .. } = c {
                let ids = new
                    .batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<strata_engine::arrow::array::Int64Array>()
                    .expect("ids");
                changed.push(ids.value(new_row));
            }
            Ok(())
        })
        .await
        .expect("diff");
        assert_eq!((counts.added, counts.removed, counts.modified), (0, 1, 2));
        assert_eq!(changed, vec![10_000, 10_001]);
    });
}

/// The chunks' last keys, in order: where the table is cut.
async fn cuts(objects: &Objects, t: &TableObject) -> Vec<String> {
    chunks(objects, t)
        .await
        .into_iter()
        .map(|e| e.last_key)
        .collect()
}

#[test]
fn deletes_join_a_delta_up_to_a_quarter_of_the_chunk_and_one_more_writes_it_anew() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i * 2, format!("v{i}"))).collect();
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &rows).await;
        let base = entry_of(&objects, &t0, 20_000).await;
        let first = {
            let all = chunks(&objects, &t0).await;
            let at = all.iter().position(|e| e.id == base.id).expect("listed");
            all[..at].iter().map(|e| e.rows as i64).sum::<i64>() * 2
        };
        // Every other row of the chunk from its second, `n` of them: never its last row, so
        // no cut moves (the chunk keeps far more than its least number of rows).
        let doomed = |n: u64| -> BTreeMap<i64, String> {
            (0..n as i64)
                .map(|i| (first + 2 * (2 * i + 1), String::new()))
                .collect()
        };
        let left = |gone: &BTreeMap<i64, String>| -> BTreeMap<i64, String> {
            let mut left = rows.clone();
            left.retain(|k, _| !gone.contains_key(k));
            left
        };
        let of_base = |entries: Vec<Entry>| -> Entry {
            entries
                .into_iter()
                .find(|e| e.last_key == base.last_key)
                .expect("the chunk's last key is still a cut")
        };

        // A quarter of the chunk's rows (rounded down) deleted: a delta of their keys.
        let quarter = doomed(base.rows / 4);
        let t1 = apply_op(&objects, Some(&t0), ChangeOp::Delete, &quarter).await;
        let e = of_base(chunks(&objects, &t1).await);
        assert_eq!(
            (e.id, e.rows, e.delta.map(|d| (d.rows, d.deletes))),
            (base.id, base.rows - base.rows / 4, Some((0, base.rows / 4)))
        );
        assert_eq!(cuts(&objects, &t1).await, cuts(&objects, &t0).await);
        assert_eq!(read_all(&objects, &t1).await, left(&quarter));

        // One row more: the same cuts, but the chunk is written anew, without a delta.
        let more = doomed(base.rows / 4 + 1);
        let t2 = apply_op(&objects, Some(&t0), ChangeOp::Delete, &more).await;
        let e = of_base(chunks(&objects, &t2).await);
        assert_ne!(e.id, base.id);
        assert_eq!((e.rows, e.delta), (base.rows - base.rows / 4 - 1, None));
        assert_eq!(cuts(&objects, &t2).await, cuts(&objects, &t0).await);
        assert_imported_whole(&objects, &t2, &left(&more)).await;

        // The same from the delta of a quarter: one more delete joins the delta's count
        // and the chunk is written anew.
        let one: BTreeMap<i64, String> = more
            .keys()
            .filter(|k| !quarter.contains_key(k))
            .map(|k| (*k, String::new()))
            .collect();
        let t3 = apply_op(&objects, Some(&t1), ChangeOp::Delete, &one).await;
        assert_eq!(t3, t2, "the same rows, stored the same way");
    });
}

#[test]
fn a_delete_stored_in_a_delta_conflicts_with_a_change_of_its_row_and_merges_beside_others() {
    runtime().block_on(async {
        use strata_engine::merge::merge_tables;
        let objects = objects();
        let rows = numbered(0..20_000);
        let b = apply_op(&objects, None, ChangeOp::Upsert, &rows).await;
        let gone: BTreeMap<i64, String> = [(10_000, String::new())].into();
        let deleted = apply_op(&objects, Some(&b), ChangeOp::Delete, &gone).await;
        let d = entry_of(&objects, &deleted, 10_001).await.delta;
        assert_eq!(d.map(|d| (d.rows, d.deletes)), Some((0, 1)), "in a delta");
        let changed = apply_op(
            &objects,
            Some(&b),
            ChangeOp::Upsert,
            &[(10_000, "theirs".to_string())].into(),
        )
        .await;
        let neighbour = apply_op(
            &objects,
            Some(&b),
            ChangeOp::Upsert,
            &[(10_001, "next".to_string())].into(),
        )
        .await;
        assert_eq!(
            entry_of(&objects, &neighbour, 10_001).await.id,
            entry_of(&objects, &deleted, 10_001).await.id,
            "both change the same chunk"
        );

        let merge = |ours: TableObject, theirs: TableObject| {
            let objects = objects.clone();
            let b = b.clone();
            async move {
                merge_tables(&objects, "t", Some(&b), &ours, &theirs)
                    .await
                    .expect("merge")
            }
        };
        let kinds = |m: &strata_engine::merge::TableMerge| -> Vec<String> {
            m.conflicts.iter().map(|c| c.kind.clone()).collect()
        };

        // Deleted here, changed there: a conflict, and our side is kept.
        let m = merge(deleted.clone(), changed.clone()).await;
        assert_eq!(kinds(&m), ["delete/modify"]);
        let mut expected = rows.clone();
        expected.remove(&10_000);
        assert_eq!(read_all(&objects, &m.table).await, expected);
        // The other way round.
        let m = merge(changed.clone(), deleted.clone()).await;
        assert_eq!(kinds(&m), ["modify/delete"]);
        assert_eq!(
            read_all(&objects, &m.table)
                .await
                .get(&10_000)
                .map(String::as_str),
            Some("theirs")
        );
        // Deleted on both sides: no conflict.
        let m = merge(deleted.clone(), deleted.clone()).await;
        assert!(m.conflicts.is_empty());
        assert_eq!(read_all(&objects, &m.table).await, expected);
        // Deleted here, the next row of the chunk changed there: both, in either order.
        expected.insert(10_001, "next".into());
        for (ours, theirs) in [(&deleted, &neighbour), (&neighbour, &deleted)] {
            let m = merge(ours.clone(), theirs.clone()).await;
            assert!(m.conflicts.is_empty());
            assert_eq!(read_all(&objects, &m.table).await, expected);
        }
    });
}

#[test]
fn a_view_file_cut_short_beside_its_data_manifest_is_made_again() {
    runtime().block_on(async {
        use object_store::ObjectStoreExt;
        use strata_engine::iceberg::{prepare, Location};
        use strata_engine::store::layout::{
            delete_manifest_path, deletes_path, list_path, manifest_path,
        };
        let objects = objects();
        let t0 = apply_op(&objects, None, ChangeOp::Upsert, &numbered(0..20_000)).await;
        let t1 = apply_op(
            &objects,
            Some(&t0),
            ChangeOp::Upsert,
            &[(10_000, "changed".to_string())].into(),
        )
        .await;
        let t1 = apply_op(
            &objects,
            Some(&t1),
            ChangeOp::Delete,
            &[(10_001, String::new())].into(),
        )
        .await;
        let id = objects.put_json(&t1).await.expect("table");
        let node = {
            let mut nodes = vec![t1.index];
            let mut leaf = None;
            while let Some(n) = nodes.pop() {
                let node = strata_engine::tree::read_node(&objects, &n)
                    .await
                    .expect("node");
                if node.level > 0 {
                    nodes.extend(node.entries.iter().map(|e| e.id));
                } else if node.entries.iter().any(|e| e.delta.is_some()) {
                    leaf = Some(n);
                }
            }
            leaf.expect("a node lists the chunk with a delta")
        };
        let at = Location::new(objects.clone(), "memory:///r");
        let tables = BTreeMap::from([("t".to_string(), id)]);
        let store = objects.store().clone();
        let read = |path: object_store::path::Path| {
            let store = store.clone();
            async move {
                store
                    .get(&path)
                    .await
                    .expect("stored")
                    .bytes()
                    .await
                    .expect("read")
            }
        };
        prepare(&at, &objects, &tables, &BTreeMap::new())
            .await
            .expect("prepare");
        let list = read(list_path(&id)).await;
        let deletes = read(delete_manifest_path(&node)).await;
        // A write cut short: the data manifest stored, the delete manifest and the list not.
        store
            .head(&manifest_path(&node))
            .await
            .expect("a data manifest");
        for path in [delete_manifest_path(&node), list_path(&id)] {
            store.delete(&path).await.expect("delete");
        }
        prepare(&at, &objects, &tables, &BTreeMap::new())
            .await
            .expect("prepare again");
        assert_eq!(read(delete_manifest_path(&node)).await, deletes);
        assert_eq!(read(list_path(&id)).await, list);
        // Cut short the other way: both manifests stored (they are stored side by side with
        // the position-delete files), a position-delete file and the list not. The delete
        // manifest found is not trusted: its missing file is made again.
        let leaf = strata_engine::tree::read_node(&objects, &node)
            .await
            .expect("node");
        let file = leaf
            .entries
            .iter()
            .find_map(|e| e.delta.map(|d| deletes_path(&d.id, &e.id)))
            .expect("a chunk with a delta");
        let positions = read(file.clone()).await;
        for path in [file.clone(), list_path(&id)] {
            store.delete(&path).await.expect("delete");
        }
        prepare(&at, &objects, &tables, &BTreeMap::new())
            .await
            .expect("prepare once more");
        assert_eq!(read(file).await, positions);
        assert_eq!(read(delete_manifest_path(&node)).await, deletes);
        assert_eq!(read(list_path(&id)).await, list);
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

    /// The rows of a chunk that its delta replaces or deletes are found by the edit that
    /// writes the delta, and the views' position deletes take them from it in the same
    /// process; builds with debug assertions (these tests) check them against the chunk and
    /// the delta read back. Rounds of scattered upserts (some to the value a row has, some of
    /// new keys between the old ones) and deletes, each followed by the views' preparation.
    #[test]
    fn the_positions_an_edit_finds_are_the_ones_its_delta_replaces(
        rounds in proptest::collection::vec(
            (
                proptest::collection::btree_map(0i64..40_000, 0u8..3, 0..40),
                proptest::collection::vec(0i64..40_000, 0..20),
            ),
            1..4,
        )
    ) {
        runtime().block_on(async {
            use strata_engine::iceberg::{prepare, Location};
            let objects = objects();
            // Even keys only, so that odd ones are new rows between them.
            let mut expected: BTreeMap<i64, String> =
                (0..20_000).map(|i| (2 * i, format!("v{}", 2 * i))).collect();
            let mut t = apply_op(&objects, None, ChangeOp::Upsert, &expected).await;
            let at = Location::new(objects.clone(), "memory:///r");
            let mut previous = BTreeMap::new();
            let mut with_deltas = 0;
            for (upserts, deletes) in rounds {
                // 0: the value the row has (or would have); 1 and 2: other values.
                let upserts: BTreeMap<i64, String> = upserts
                    .into_iter()
                    .map(|(k, v)| (k, if v == 0 { format!("v{k}") } else { format!("x{k}.{v}") }))
                    .collect();
                t = apply_op(&objects, Some(&t), ChangeOp::Upsert, &upserts).await;
                expected.extend(upserts);
                let deletes: BTreeMap<i64, String> =
                    deletes.into_iter().map(|k| (k, String::new())).collect();
                t = apply_op(&objects, Some(&t), ChangeOp::Delete, &deletes).await;
                for k in deletes.keys() {
                    expected.remove(k);
                }
                let id = objects.put_json(&t).await.expect("table");
                let tables = BTreeMap::from([("t".to_string(), id)]);
                prepare(&at, &objects, &tables, &previous).await.expect("prepare");
                previous = tables;
                with_deltas += chunks(&objects, &t).await.iter().filter(|e| e.delta.is_some()).count();
            }
            proptest::prop_assert_eq!(read_all(&objects, &t).await, expected);
            proptest::prop_assume!(with_deltas > 0);
            Ok(())
        })?;
    }
}
