//! Properties of key-chunked tables: chunking depends on the rows alone, an edit rewrites
//! only the chunks around it, and what goes in comes out in key order.

use std::collections::BTreeMap;

use crate::common::*;
use proptest::prelude::*;
use strata_engine::table::{apply, ChangeOp, TableObject};

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
            // The same cut points and chunks (a small edit may store a chunk as the chunk
            // it was and a delta: the same rows, stored otherwise).
            prop_assert_eq!(layout(&objects, &t3).await, layout(&objects, &direct).await);
            prop_assert_eq!((t3.rows, t3.chunks), (direct.rows, direct.chunks));
            Ok(())
        })?;
    }
}

fn t2_bytes(entries: &[strata_engine::tree::Entry]) -> u64 {
    entries.iter().map(|e| e.bytes).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Edits scattered over a table of many index nodes (two levels) give the table that
    /// importing the edited rows in one go gives: the same rows, cut into the same chunks.
    #[test]
    fn scattered_edits_of_a_large_table_give_the_table_imported_whole(
        upserts in prop::collection::btree_map(-100i64..25_000, "[a-z]{0,3}", 0..60),
        dels in prop::collection::vec(0i64..25_000, 0..60),
        cut in 0i64..20_000,
    ) {
        runtime().block_on(async {
            let objects = objects();
            let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
            let t = create(&objects, &rows, 5000).await;
            // A run of deletes that empties many chunks in a row, besides the scattered ones.
            let mut dels: Vec<i64> = dels.into_iter().chain(cut..cut + 700).collect();
            dels.sort();
            dels.dedup();
            let edited = edit(&objects, &t, &upserts, &dels).await;
            let mut expected = rows.clone();
            expected.extend(upserts.clone());
            for d in &dels {
                expected.remove(d);
            }
            let direct = create(&objects, &expected, 5000).await;
            prop_assert_eq!(layout(&objects, &edited).await, layout(&objects, &direct).await);
            prop_assert_eq!((edited.rows, edited.chunks), (direct.rows, direct.chunks));
            let entries = edited.chunks(&objects).await.expect("chunks");
            prop_assert_eq!(edited.bytes, t2_bytes(&entries));
            prop_assert_eq!(read_all(&objects, &edited).await, expected);
            Ok(())
        })?;
    }
}

#[test]
fn changing_one_value_stores_a_one_row_delta_beside_its_chunk() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 1000).await;
        let before = t.chunks(&objects).await.expect("chunks");
        assert!(before.len() > 500, "{} chunks", before.len());
        let change: BTreeMap<i64, String> = [(12_345, "changed".to_string())].into();
        let (t2, stats) = upsert(&objects, &t, &change).await;
        assert_eq!(stats.updated, 1);
        assert_eq!(stats.chunks_written, 1);
        assert_eq!(stats.chunks_reused as usize, before.len() - 1);
        let after = t2.chunks(&objects).await.expect("chunks");
        assert_eq!(before.len(), after.len());
        assert_eq!(t2.chunks, Some(after.len() as u64));
        assert_eq!((t2.rows, t2.bytes), (t.rows, t2_bytes(&after)));
        let differing: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
        assert_eq!(differing.len(), 1);
        let (old, new) = differing[0];
        // The chunk stays; the changed row is stored beside it.
        assert_eq!(
            (new.id, new.rows, &new.last_key),
            (old.id, old.rows, &old.last_key)
        );
        let delta = new.delta.expect("a delta");
        assert_eq!(delta.rows, 1);
        assert_eq!(new.bytes, old.bytes + delta.bytes);
        let mut expected = rows.clone();
        expected.extend(change);
        assert_eq!(read_all(&objects, &t2).await, expected);
        // Changed back, the table is the one it was: the delta is gone.
        let back: BTreeMap<i64, String> = [(12_345, "v12345".to_string())].into();
        let (t3, _) = upsert(&objects, &t2, &back).await;
        assert_eq!(t3, t);
    });
}

#[test]
fn a_delta_holds_exactly_the_rows_that_differ_from_its_chunks() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 1000).await;
        // Five neighbours upserted at once: three with the values they hold, two changed.
        let same = |k: i64| (k, format!("v{k}"));
        let change: BTreeMap<i64, String> = [
            same(12_340),
            (12_341, "x".to_string()),
            same(12_342),
            (12_343, "y".to_string()),
            same(12_344),
        ]
        .into();
        let (t2, stats) = upsert(&objects, &t, &change).await;
        assert_eq!(stats.updated, 5);
        let before = t.chunks(&objects).await.expect("chunks");
        let after = t2.chunks(&objects).await.expect("chunks");
        let held: u64 = after
            .iter()
            .filter(|e| !before.contains(e))
            .map(|e| e.delta.expect("a delta").rows)
            .sum();
        assert_eq!(held, 2, "the delta holds the two changed rows only");
        let mut expected = rows.clone();
        expected.extend(change);
        assert_eq!(read_all(&objects, &t2).await, expected);
        // The same values again change nothing; the old ones give the table it was.
        let unchanged: BTreeMap<i64, String> = (12_330..12_350).map(same).collect();
        let (t3, _) = upsert(&objects, &t, &unchanged).await;
        assert_eq!(t3, t);
        let back: BTreeMap<i64, String> = [same(12_341), same(12_343)].into();
        let (t4, _) = upsert(&objects, &t2, &back).await;
        assert_eq!(t4, t);
    });
}

#[test]
fn a_table_stored_before_tables_counted_their_chunks_reads_and_edits_as_before() {
    runtime().block_on(async {
        let objects = objects();
        let rows: BTreeMap<i64, String> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 1000).await;
        let chunks = t.chunks(&objects).await.expect("chunks").len();
        assert_eq!(t.chunks, Some(chunks as u64));
        // The object as an older version stored it: no "chunks" field.
        let mut json = serde_json::to_value(&t).expect("encode");
        json.as_object_mut().expect("an object").remove("chunks");
        let old: TableObject = serde_json::from_value(json).expect("an older table decodes");
        assert_eq!(
            old,
            TableObject {
                chunks: None,
                ..t.clone()
            }
        );
        assert!(!serde_json::to_string(&old)
            .expect("encode")
            .contains("chunks"));
        // Editing it counts its chunks once, and the new version carries the count.
        let change: BTreeMap<i64, String> = [(777, "changed".to_string())].into();
        let (edited, stats) = upsert(&objects, &old, &change).await;
        assert_eq!(stats.chunks_reused as usize, chunks - 1);
        assert_eq!(edited.chunks, Some(chunks as u64));
        let (fresh, _) = upsert(&objects, &t, &change).await;
        assert_eq!(edited, fresh);
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

mod export {
    //! A Parquet export copies each chunk as a row group of the file, pages as they are; a chunk
    //! in another Parquet layout is decoded and encoded again. Either way the file holds the
    //! table's rows in key order, with the table's Arrow schema.

    use std::collections::{BTreeMap, HashSet};

    use crate::common::*;
    use std::sync::Arc;

    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use strata_engine::arrow::array::RecordBatch;
    use strata_engine::arrow::datatypes::{Field, Schema};
    use strata_engine::chunk::decode_chunk;
    use strata_engine::export::{export, Destination, ExportFormat, ExportOptions};
    use strata_engine::progress::NoProgress;
    use strata_engine::store::{ObjectKind, Objects};
    use strata_engine::table::TableObject;
    use strata_engine::tree;

    fn rows(n: i64) -> BTreeMap<i64, String> {
        (0..n).map(|i| (i * 3, format!("value {i}"))).collect()
    }

    /// Exports `t` to a Parquet file and reads it back: its rows, and how many row groups.
    async fn export_and_read(objects: &Objects, t: &TableObject) -> (BTreeMap<i64, String>, usize) {
        let (rows, groups) = export_in_groups(objects, t, None).await;
        (rows, groups.len())
    }

    /// Exports `t` to a Parquet file (in row groups of `row_group_rows`) and reads it back:
    /// its rows, and the rows of each row group.
    async fn export_in_groups(
        objects: &Objects,
        t: &TableObject,
        row_group_rows: Option<usize>,
    ) -> (BTreeMap<i64, String>, Vec<i64>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.parquet");
        let opts = ExportOptions {
            row_group_rows,
            ..ExportFormat::Parquet.into()
        };
        let n = export(
            objects,
            t,
            &Destination::File(path.clone()),
            opts,
            &NoProgress,
        )
        .await
        .expect("export");
        assert_eq!(n, t.rows);
        let file = std::fs::File::open(&path).expect("open");
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
        let groups = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(
            builder.schema().fields(),
            t.schema.arrow().expect("schema").fields(),
            "the file carries the table's Arrow schema"
        );
        let batches = builder.build().expect("reader").map(|b| b.expect("batch"));
        (rows_in_key_order(batches), groups)
    }

    #[test]
    fn a_parquet_export_copies_each_chunk_as_a_row_group() {
        runtime().block_on(async {
            let objects = objects();
            let expected = rows(2000);
            let t = create(&objects, &expected, 97).await;
            let chunks = t.chunks(&objects).await.expect("chunks").len();
            assert!(chunks > 20, "many chunks: {chunks}");
            let (got, groups) = export_and_read(&objects, &t).await;
            assert_eq!(got, expected);
            assert_eq!(groups, chunks);
        });
    }

    /// Asked for row groups of a size, a Parquet export decodes the chunks and writes groups of
    /// that many rows (the last one shorter), with every row in key order.
    #[test]
    fn a_parquet_export_in_row_groups_of_a_chosen_size_holds_every_row() {
        runtime().block_on(async {
            let objects = objects();
            let expected = rows(2000);
            let t = create(&objects, &expected, 97).await;
            assert!(t.chunks(&objects).await.expect("chunks").len() > 20);
            // Groups spanning chunks, many more groups than chunks (encoded side by side, so
            // their order in the file is checked too), and one group for the whole table.
            for (size, groups) in [
                (750, vec![750, 750, 500]),
                (7, [vec![7; 285], vec![5]].concat()),
                (5000, vec![2000]),
            ] {
                let (got, sizes) = export_in_groups(&objects, &t, Some(size)).await;
                assert_eq!(sizes, groups, "groups of {size}");
                assert_eq!(got, expected, "groups of {size}");
            }
        });
    }

    /// A row group size with a format that has none, or of no rows, is refused before any
    /// file is made.
    #[test]
    fn a_row_group_size_is_refused_for_text_and_arrow_and_when_zero() {
        runtime().block_on(async {
            let objects = objects();
            let t = create(&objects, &rows(10), 97).await;
            let dir = tempfile::tempdir().expect("tempdir");
            for (format, rows_per_group, words) in [
                (ExportFormat::Csv, 100, "a CSV export has none"),
                (ExportFormat::Jsonl, 100, "a JSON Lines export has none"),
                (ExportFormat::Arrow, 100, "an Arrow IPC export has none"),
                (ExportFormat::Parquet, 0, "at least one row"),
            ] {
                let path = dir.path().join("out");
                let opts = ExportOptions {
                    row_group_rows: Some(rows_per_group),
                    ..format.into()
                };
                let e = export(
                    &objects,
                    &t,
                    &Destination::File(path.clone()),
                    opts,
                    &NoProgress,
                )
                .await
                .expect_err("refused");
                assert!(e.to_string().contains(words), "{format:?}: {e}");
                assert!(!path.exists(), "{format:?}: a file was made");
                let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
                assert!(left.is_empty(), "{format:?}: {left:?}");
            }
        });
    }

    #[test]
    fn a_chunk_in_another_parquet_layout_is_encoded_again_in_the_export() {
        runtime().block_on(async {
            let objects = objects();
            let expected = rows(600);
            let t = create(&objects, &expected, 50).await;
            let schema = t.schema.arrow().expect("schema");
            let mut entries = t.chunks(&objects).await.expect("chunks");
            // The third chunk, written again with Parquet field ids: the same rows, another
            // Parquet schema.
            let old = &entries[2];
            let bytes = objects
                .get(ObjectKind::Chunk, &old.id)
                .await
                .expect("chunk");
            let batch = decode_chunk(&old.id, bytes, &schema).expect("decode");
            let with_ids = Arc::new(Schema::new(
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        Field::new(f.name(), f.data_type().clone(), f.is_nullable()).with_metadata(
                            std::collections::HashMap::from([(
                                "PARQUET:field_id".to_string(),
                                (i + 1).to_string(),
                            )]),
                        )
                    })
                    .collect::<Vec<_>>(),
            ));
            let mut buf = Vec::new();
            let mut writer =
                ArrowWriter::try_new(&mut buf, with_ids.clone(), None).expect("writer");
            writer
                .write(&RecordBatch::try_new(with_ids, batch.columns().to_vec()).expect("batch"))
                .expect("write");
            writer.close().expect("close");
            let id = objects
                .put(ObjectKind::Chunk, bytes::Bytes::from(buf))
                .await
                .expect("store");
            assert_ne!(id, old.id);
            entries[2].id = id;
            let built = tree::build(entries.clone(), &HashSet::new()).expect("index");
            let index = tree::store(&objects, built).await.expect("store index");
            let mixed = TableObject { index, ..t.clone() };
            let (got, groups) = export_and_read(&objects, &mixed).await;
            assert_eq!(got, expected);
            assert_eq!(groups, entries.len());
        });
    }

    /// CSV and JSON Lines are formatted a few batches at once, and written in key order: a header
    /// line first (alone, for a table without rows).
    #[test]
    fn text_exports_hold_every_row_in_key_order_after_one_header() {
        runtime().block_on(async {
            let objects = objects();
            let expected = rows(3000);
            let t = create(&objects, &expected, 101).await;
            let empty = create(&objects, &BTreeMap::new(), 10).await;
            let dir = tempfile::tempdir().expect("tempdir");
            for (format, table, name) in [
                (ExportFormat::Csv, &t, "t.csv"),
                (ExportFormat::Jsonl, &t, "t.jsonl"),
                (ExportFormat::Csv, &empty, "empty.csv"),
            ] {
                let path = dir.path().join(name);
                export(
                    &objects,
                    table,
                    &Destination::File(path.clone()),
                    format,
                    &NoProgress,
                )
                .await
                .expect("export");
                let text = std::fs::read_to_string(&path).expect("read");
                let mut lines = text.lines();
                let want: Vec<String> = if std::ptr::eq(table, &empty) {
                    Vec::new()
                } else if format == ExportFormat::Csv {
                    expected.iter().map(|(k, v)| format!("{k},{v}")).collect()
                } else {
                    expected
                        .iter()
                        .map(|(k, v)| format!(r#"{{"id":{k},"v":"{v}"}}"#))
                        .collect()
                };
                if format == ExportFormat::Csv {
                    assert_eq!(lines.next(), Some("id,v"), "{name}: one header first");
                }
                let got: Vec<String> = lines.map(str::to_string).collect();
                assert_eq!(got, want, "{name}");
            }
        });
    }
}

/// Gives the rows of `0`, then fails, as a bad value found late in a file does.
struct FailingAfter(strata_engine::table::VecSource);

impl strata_engine::table::ChangeSource for FailingAfter {
    fn next_rows(&mut self) -> strata_engine::error::Result<Option<strata_engine::key::Rows>> {
        match self.0.next_rows()? {
            Some(rows) => Ok(Some(rows)),
            None => Err(strata_engine::error::Error::Invalid(
                "a value found bad after the rows before it".into(),
            )),
        }
    }
}

/// Every file and folder below `dir`.
fn entries_below(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(entries_below(&p));
        }
        out.insert(p);
    }
    out
}

/// Rows are stored as they are read, so a write can fail after storing chunks: the chunks it
/// created are removed again, with the folders they made, and the store is as it was. Into an
/// existing table (chunks cut again around the changes, and rows past its end, more than a
/// chunk holds, cut as they are read) and into a new one.
#[test]
fn a_write_that_fails_after_storing_chunks_leaves_the_store_as_it_was() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = strata_engine::store::local_folder(dir.path()).expect("folder");
        let objects =
            strata_engine::store::Objects::new(store, "folder").in_folder(dir.path().to_path_buf());
        let rows: BTreeMap<i64, String> = (0..2_000).map(|i| (i, format!("v{i}"))).collect();
        let t = create(&objects, &rows, 100).await;
        let before = entries_below(dir.path());
        let more: BTreeMap<i64, String> = (1_000..3_000).map(|i| (i, format!("w{i}"))).collect();
        for base in [Some(&t), None] {
            let failed = apply(
                &objects,
                "t",
                base,
                schema(),
                PARAMS,
                ChangeOp::Upsert,
                &mut FailingAfter(source(&more, 50)),
            )
            .await;
            assert!(failed.is_err(), "the source fails");
            assert_eq!(entries_below(dir.path()), before);
        }
        // The same write without the failure stores it all.
        let (t2, stats) = apply(
            &objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Upsert,
            &mut source(&more, 50),
        )
        .await
        .expect("upsert");
        assert_eq!((stats.updated, stats.inserted), (1_000, 1_000));
        let mut expected = rows.clone();
        expected.extend(more);
        assert_eq!(read_all(&objects, &t2).await, expected);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Many more changes than an edit holds at once, all between two rows of one chunk (a
    /// large insert, or deletes, into a sparse table; at its end too): the chunk's rows are
    /// merged with them a part at a time, and the table is the one importing the rows whole
    /// gives, chunk for chunk.
    #[test]
    fn many_changes_within_one_chunk_give_the_table_imported_whole(
        start in 0i64..40,
        len in 1_500i64..5_000,
        step in 1i64..4,
        delete in any::<bool>(),
        batch in 1usize..700,
    ) {
        runtime().block_on(async {
            let objects = objects();
            // Sparse rows: a few chunks of keys 10,000 apart.
            let rows: BTreeMap<i64, String> =
                (0..300).map(|i| (i * 10_000, format!("v{i}"))).collect();
            let t = create(&objects, &rows, 64).await;
            // Dense changes from somewhere in the table, some past its last key.
            let first = start * 70_000 + 1;
            let keys: Vec<i64> = (0..len).map(|i| first + i * step).collect();
            let mut expected = rows.clone();
            let edited = if delete {
                // Deletes of keys between the rows, and of every row among them.
                let mut dels: Vec<i64> = keys.iter().map(|k| k - 1).collect();
                dels.sort();
                dels.dedup();
                for d in &dels {
                    expected.remove(d);
                }
                apply(&objects, "t", Some(&t), schema(), PARAMS, ChangeOp::Delete, &mut keys_source(&dels))
                    .await.expect("delete").0
            } else {
                let upserts: BTreeMap<i64, String> =
                    keys.iter().map(|k| (*k, format!("n{k}"))).collect();
                expected.extend(upserts.clone());
                apply(&objects, "t", Some(&t), schema(), PARAMS, ChangeOp::Upsert, &mut source(&upserts, batch))
                    .await.expect("upsert").0
            };
            let direct = create(&objects, &expected, 500).await;
            prop_assert_eq!(layout(&objects, &edited).await, layout(&objects, &direct).await);
            prop_assert_eq!((edited.rows, edited.chunks), (direct.rows, direct.chunks));
            prop_assert_eq!(read_all(&objects, &edited).await, expected);
            Ok(())
        })?;
    }
}
