//! Decoders never panic: every object format and ref name, fed arbitrary or damaged bytes,
//! either decodes or returns an error.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use proptest::prelude::*;
use strata_engine::chunk::{decode_chunk, encode_chunk};
use strata_engine::store::RefRecord;
use strata_engine::tree::Node;
use strata_engine::{Commit, ObjectId, TableObject};

fn sample_chunk() -> (Bytes, arrow::datatypes::SchemaRef) {
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from((0..200).collect::<Vec<i64>>())) as ArrayRef,
        ),
        (
            "v",
            Arc::new(StringArray::from(
                (0..200).map(|i| format!("value {i}")).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .expect("batch");
    (encode_chunk(&batch).expect("encode"), batch.schema())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn damaged_chunks_are_refused_without_panicking(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let (bytes, schema) = sample_chunk();
        let mut damaged = bytes.to_vec();
        for (at, bits) in flips {
            let i = at % damaged.len();
            damaged[i] ^= bits.max(1);
        }
        let id = ObjectId::of(&damaged);
        let _ = decode_chunk(&id, Bytes::from(damaged.clone()), &schema);
        damaged.truncate(cut % (damaged.len() + 1));
        let _ = decode_chunk(&id, Bytes::from(damaged), &schema);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_object_decoders(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<Commit>(&data);
        let _ = serde_json::from_slice::<TableObject>(&data);
        let _ = serde_json::from_slice::<Node>(&data);
        let _ = serde_json::from_slice::<RefRecord>(&data);
        let (_, schema) = sample_chunk();
        let _ = decode_chunk(&ObjectId::of(&data), Bytes::from(data.clone()), &schema);
    }

    #[test]
    fn arbitrary_names_are_validated_without_panicking(name in ".{0,120}") {
        let _ = strata_engine::names::validate_name("branch", &name);
        let _ = strata_engine::store::RefName::branch(&name);
        let _ = name.parse::<ObjectId>();
    }

    #[test]
    fn json_objects_with_damaged_fields_are_refused(commit_json in r#"\{"format":[0-9]{1,3},"kind":"(commit|table|node)","parents":\[\],"tables":\{\},"author":".{0,5}","time":-?[0-9]{1,12},"message":".{0,5}"\}"#) {
        let _ = serde_json::from_str::<Commit>(&commit_json);
        let _ = serde_json::from_str::<TableObject>(&commit_json);
    }
}

#[test]
fn a_chunk_round_trips() {
    let (bytes, schema) = sample_chunk();
    let batch = decode_chunk(&ObjectId::of(&bytes), bytes, &schema).expect("decode");
    assert_eq!(batch.num_rows(), 200);
}

#[tokio::test]
async fn an_object_of_a_newer_format_is_refused_with_advice_to_upgrade() {
    let objects = strata_engine::store::Objects::new(
        Arc::new(object_store::memory::InMemory::new()),
        "memory",
    );
    let mut commit = Commit::new(vec![], Default::default(), "A <a@b>".into(), 0, "m".into());
    commit.format = 99;
    let id = objects.put_json(&commit).await.expect("put");
    let err = Commit::read(&objects, &id).await.expect_err("newer format");
    let text = err.to_string();
    assert!(
        text.contains("format 99") && text.contains("upgrade strata"),
        "{text}"
    );
}
