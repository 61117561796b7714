//! Helpers shared by the engine's integration tests: tables of (id int64, v utf8) rows.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures::TryStreamExt;
use proptest::prelude::*;
use strata_engine::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use strata_engine::chunk::ChunkParams;
use strata_engine::key::{encode_keys, Rows};
use strata_engine::schema::TableSchema;
use strata_engine::store::Objects;
use strata_engine::table::{apply, scan, ChangeOp, TableObject, VecSource};

pub fn objects() -> Objects {
    Objects::new(Arc::new(object_store::memory::InMemory::new()), "memory")
}

pub fn schema() -> TableSchema {
    let s = strata_engine::arrow::datatypes::Schema::new(vec![
        strata_engine::arrow::datatypes::Field::new(
            "id",
            strata_engine::arrow::datatypes::DataType::Int64,
            false,
        ),
        strata_engine::arrow::datatypes::Field::new(
            "v",
            strata_engine::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ]);
    TableSchema::from_arrow(&s, &["id".to_string()]).expect("schema")
}

/// Rows from a sorted map, in batches of `batch` rows.
pub fn source(rows: &BTreeMap<i64, String>, batch: usize) -> VecSource {
    let arrow_schema = schema().arrow().expect("arrow schema");
    let items: Vec<(&i64, &String)> = rows.iter().collect();
    let mut out = VecDeque::new();
    for part in items.chunks(batch.max(1)) {
        let ids: Vec<i64> = part.iter().map(|(k, _)| **k).collect();
        let vs: Vec<&str> = part.iter().map(|(_, v)| v.as_str()).collect();
        let b = RecordBatch::try_new(
            arrow_schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)) as ArrayRef,
                Arc::new(StringArray::from(vs)) as ArrayRef,
            ],
        )
        .expect("batch");
        let keys = encode_keys(&b, &[0]).expect("types").expect("no nulls");
        out.push_back(Rows { batch: b, keys });
    }
    VecSource(out)
}

pub fn keys_source(ids: &[i64]) -> VecSource {
    let s = strata_engine::arrow::datatypes::Schema::new(vec![
        strata_engine::arrow::datatypes::Field::new(
            "id",
            strata_engine::arrow::datatypes::DataType::Int64,
            false,
        ),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(s),
        vec![Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef],
    )
    .expect("batch");
    let keys = encode_keys(&b, &[0]).expect("types").expect("no nulls");
    VecSource(VecDeque::from([Rows { batch: b, keys }]))
}

pub const PARAMS: ChunkParams = ChunkParams {
    min_rows: 4,
    avg_rows: 16,
    max_rows: 64,
};

pub async fn create(objects: &Objects, rows: &BTreeMap<i64, String>, batch: usize) -> TableObject {
    apply(
        objects,
        "t",
        None,
        schema(),
        PARAMS,
        ChangeOp::Upsert,
        &mut source(rows, batch),
    )
    .await
    .expect("create")
    .0
}

pub async fn read_all(objects: &Objects, t: &TableObject) -> BTreeMap<i64, String> {
    let entries = t.chunks(objects).await.expect("chunks");
    let batches: Vec<RecordBatch> = scan(objects, t, entries)
        .expect("scan")
        .try_collect()
        .await
        .expect("read");
    rows_in_key_order(batches)
}

/// How a table is cut into chunks: each chunk's last key and rows (a chunk with a delta
/// counted with it). A function of the rows alone, whatever the edits that made them.
pub async fn layout(objects: &Objects, t: &TableObject) -> Vec<(String, u64)> {
    t.chunks(objects)
        .await
        .expect("chunks")
        .into_iter()
        .map(|e| (e.last_key, e.rows))
        .collect()
}

/// The (id, v) rows of `batches`, checking that they come in key order.
pub fn rows_in_key_order(batches: impl IntoIterator<Item = RecordBatch>) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    let mut last = None;
    for b in batches {
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ids");
        let vs = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("values");
        for i in 0..b.num_rows() {
            assert!(last < Some(ids.value(i)), "rows come out in key order");
            last = Some(ids.value(i));
            out.insert(ids.value(i), vs.value(i).to_string());
        }
    }
    out
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn table_strategy() -> impl Strategy<Value = BTreeMap<i64, String>> {
    prop::collection::btree_map(0i64..5000, "[a-z]{0,5}", 0..400)
}

/// Upserts `rows` into `t` (in batches of one row), with what the edit did.
pub async fn upsert(
    objects: &Objects,
    t: &TableObject,
    rows: &BTreeMap<i64, String>,
) -> (TableObject, strata_engine::table::ApplyStats) {
    apply(
        objects,
        "t",
        Some(t),
        schema(),
        PARAMS,
        ChangeOp::Upsert,
        &mut source(rows, 1),
    )
    .await
    .expect("upsert")
}

/// Applies upserts then deletes to a table.
pub async fn edit(
    objects: &Objects,
    t: &TableObject,
    upserts: &BTreeMap<i64, String>,
    deletes: &[i64],
) -> TableObject {
    let mut t = t.clone();
    if !upserts.is_empty() {
        t = apply(
            objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Upsert,
            &mut source(upserts, 17),
        )
        .await
        .expect("upsert")
        .0;
    }
    let mut dels = deletes.to_vec();
    dels.sort();
    dels.dedup();
    if !dels.is_empty() {
        t = apply(
            objects,
            "t",
            Some(&t),
            schema(),
            PARAMS,
            ChangeOp::Delete,
            &mut keys_source(&dels),
        )
        .await
        .expect("delete")
        .0;
    }
    t
}
