//! Decoders never panic: every object format and ref name, fed arbitrary or damaged bytes,
//! either decodes or returns an error.

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use strata_engine::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use strata_engine::chunk::{decode_chunk, encode_chunk};
use strata_engine::store::{layout, RefKind, RefLog, RefName, RefRecord};
use strata_engine::tree::Node;
use strata_engine::{Commit, ObjectId, TableObject};

fn sample_chunk() -> (Bytes, strata_engine::arrow::datatypes::SchemaRef) {
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

/// Which ref files of `main` a test stores its bytes as.
#[derive(Debug, Clone, Copy)]
enum RefFiles {
    /// The record `00000000000000000001`.
    Record,
    /// The `latest` hint.
    Hint,
    /// Both.
    Both,
}

const REF_FILES: [RefFiles; 3] = [RefFiles::Record, RefFiles::Hint, RefFiles::Both];

/// Stores `bytes` as the ref files `which` of the branch `main` in a fresh in-memory store and
/// reads the branch back. Only panics (the test's failure) matter: `Ok` and `Err` are both fine.
fn read_main_stored_as(which: RefFiles, bytes: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let record = layout::ref_record(RefKind::Branch, "main", 1);
        let hint = layout::ref_hint(RefKind::Branch, "main");
        let paths = match which {
            RefFiles::Record => vec![record],
            RefFiles::Hint => vec![hint],
            RefFiles::Both => vec![record, hint],
        };
        for path in paths {
            store
                .put(&path, PutPayload::from(bytes.to_vec()))
                .await
                .expect("an in-memory put");
        }
        let name = RefName::branch("main").expect("a valid branch name");
        let _ = RefLog::new(store, "w").read(&name).await;
    });
}

/// A ref record's JSON with the given (possibly damaged) field values; well-formed JSON always.
#[allow(clippy::too_many_arguments)]
fn ref_record_json(
    format: u64,
    ref_name: &str,
    seq: u64,
    commit: &Option<String>,
    prev: u64,
    writer: &str,
    nonce: &str,
    time: i64,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "format": format,
        "ref": ref_name,
        "seq": seq,
        "commit": commit,
        "prev": prev,
        "writer": writer,
        "nonce": nonce,
        "time": time,
    }))
    .expect("JSON encodes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_as_a_ref_record_or_hint_never_panic_a_ref_read(data in prop::collection::vec(any::<u8>(), 0..512)) {
        for which in REF_FILES {
            read_main_stored_as(which, &data);
        }
    }

    #[test]
    fn ref_records_with_damaged_fields_are_refused_or_read_without_panicking(
        format in prop_oneof![Just(1u64), 0u64..4, any::<u64>()],
        ref_name in prop_oneof![Just("refs/heads/main".to_string()), Just("refs/heads/other".to_string()), ".{0,20}"],
        seq in prop_oneof![Just(1u64), 0u64..4, Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()],
        commit in prop::option::of(prop_oneof![
            "[0-9a-f]{64}",
            "[0-9a-fA-F]{0,70}",
            ".{0,20}",
        ]),
        prev in prop_oneof![Just(0u64), any::<u64>()],
        writer in ".{0,8}",
        nonce in ".{0,8}",
        time in any::<i64>(),
    ) {
        let bytes = ref_record_json(format, &ref_name, seq, &commit, prev, &writer, &nonce, time);
        for which in REF_FILES {
            read_main_stored_as(which, &bytes);
        }
    }

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

/// Strata writes its chunks with zstd and version 1 data pages, and decompresses zstd pages
/// itself; chunks with version 2 pages, other codecs, many pages, dictionaries and nulls
/// decode to the same rows, in full and by columns.
#[test]
fn chunks_written_with_other_parquet_settings_decode_to_the_same_rows() {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use strata_engine::arrow::array::Float64Array;
    use strata_engine::chunk::decode_chunk_columns;

    let n = 3000;
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from((0..n).collect::<Vec<i64>>())) as ArrayRef,
        ),
        (
            "tag",
            // Few values: dictionary pages. Some nulls.
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| (i % 7 != 3).then(|| format!("tag {}", i % 5)))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| format!("name {i} {}", i * 7919))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "price",
            Arc::new(Float64Array::from(
                (0..n)
                    .map(|i| (i % 11 != 0).then_some(i as f64 / 4.0))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .expect("batch");
    let schema = batch.schema();
    let zstd = Compression::ZSTD(ZstdLevel::try_new(3).expect("level"));
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        for compression in [zstd, Compression::SNAPPY, Compression::UNCOMPRESSED] {
            for page_rows in [100, 1 << 20] {
                let props = WriterProperties::builder()
                    .set_writer_version(version)
                    .set_compression(compression)
                    .set_write_batch_size(50)
                    .set_data_page_row_count_limit(page_rows)
                    .build();
                let mut buf = Vec::new();
                let mut writer =
                    ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).expect("writer");
                writer.write(&batch).expect("write");
                writer.close().expect("close");
                let bytes = Bytes::from(buf);
                let id = ObjectId::of(&bytes);
                let what = format!("{version:?}, {compression:?}, {page_rows} rows a page");
                let all = decode_chunk(&id, bytes.clone(), &schema).expect(&what);
                assert_eq!(all, batch, "{what}");
                let some = decode_chunk_columns(&id, bytes, &schema, Some(&[3, 1])).expect(&what);
                assert_eq!(some, batch.project(&[3, 1]).expect("project"), "{what}");
            }
        }
    }
}

#[test]
fn a_delta_lists_its_deleted_keys_in_its_footer_and_a_bad_list_is_a_corrupt_delta() {
    use strata_engine::chunk::{delta_deletes, encode_chunk_on, encode_delta, DELETES_KEY};
    use strata_engine::key::{encode_keys, Keys};
    let (bytes, schema) = sample_chunk();
    let id = ObjectId::of(&bytes);
    let batch = decode_chunk(&id, bytes, &schema).expect("decode");
    // Deleting nothing: exactly a chunk of the rows.
    let plain = encode_delta(&batch, &Keys::default()).expect("encode");
    assert_eq!(plain, encode_chunk_on(&batch, 1).expect("encode"));
    assert!(delta_deletes(&ObjectId::of(&plain), &plain)
        .expect("read")
        .is_empty());
    // Rows and deleted keys: the rows decode as before, the keys come back in order.
    let keys = encode_keys(&batch.slice(3, 4), &[0])
        .expect("keys")
        .expect("no nulls");
    let with = encode_delta(&batch.slice(10, 5), &keys).expect("encode");
    let wid = ObjectId::of(&with);
    assert_eq!(
        decode_chunk(&wid, with.clone(), &schema).expect("decode"),
        batch.slice(10, 5)
    );
    assert_eq!(delta_deletes(&wid, &with).expect("read"), keys);
    // A list out of key order, a key that is not hex, or a list that is not JSON.
    let hex = |i: usize| strata_engine::tree::encode_hex(keys.get(i));
    for bad in [
        format!("[\"{}\",\"{}\"]", hex(1), hex(0)),
        format!("[\"{}\",\"{}\"]", hex(0), hex(0)),
        "[\"zz\"]".to_string(),
        "not json".to_string(),
    ] {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                DELETES_KEY.to_string(),
                bad.clone(),
            )]))
            .build();
        let mut buf = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
                .expect("writer");
        writer.write(&batch.slice(0, 1)).expect("write");
        writer.close().expect("close");
        let bytes = Bytes::from(buf);
        let bid = ObjectId::of(&bytes);
        let err = delta_deletes(&bid, &bytes).expect_err(&bad);
        assert!(
            matches!(&err, strata_engine::Error::CorruptObject { id, .. } if *id == bid.to_hex()),
            "{bad}: {err}"
        );
    }
    // Bytes that are not Parquet at all: an error, not a panic.
    let junk = Bytes::from_static(b"PAR1 not a footer PAR1");
    assert!(delta_deletes(&ObjectId::of(&junk), &junk).is_err());
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A chunk encoded a column per thread has the same bytes (so the same id) as one
    /// encoded on one thread, for every column type, with nulls, repeats and any length.
    #[test]
    fn chunks_encoded_on_several_threads_have_the_same_bytes(
        rows in 1usize..40_000,
        seed in any::<u64>(),
        distinct in 1u64..5000,
        threads in 2usize..6,
    ) {
        use strata_engine::arrow::array::{
            BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
            TimestampMicrosecondArray,
        };
        use strata_engine::chunk::encode_chunk_on;
        let v = |i: usize, s: u64| {
            let x = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(s);
            (x >> 7) % distinct
        };
        let null = |i: usize, s: u64| v(i, s).is_multiple_of(13);
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
            ("i32", Arc::new(Int32Array::from_iter((0..rows).map(|i| (!null(i, 1)).then(|| v(i, 1) as i32))))),
            ("f64", Arc::new(Float64Array::from_iter((0..rows).map(|i| (!null(i, 2)).then(|| v(i, 2) as f64 / 8.0))))),
            ("s", Arc::new(StringArray::from_iter((0..rows).map(|i| (!null(i, 3)).then(|| format!("value {}", v(i, 3))))))),
            ("b", Arc::new(BooleanArray::from_iter((0..rows).map(|i| (!null(i, 4)).then(|| v(i, 4) % 2 == 0))))),
            ("d", Arc::new(Date32Array::from_iter((0..rows).map(|i| (!null(i, 5)).then(|| v(i, 5) as i32))))),
            ("t", Arc::new(TimestampMicrosecondArray::from_iter((0..rows).map(|i| (!null(i, 6)).then(|| v(i, 6) as i64 * 1_000_003))))),
            ("dec", Arc::new(Decimal128Array::from_iter((0..rows).map(|i| (!null(i, 7)).then(|| i128::from(v(i, 7)) * 100 + 5))).with_precision_and_scale(12, 2).expect("decimal"))),
            ("bin", Arc::new(BinaryArray::from_iter((0..rows).map(|i| (!null(i, 8)).then(|| v(i, 8).to_le_bytes().to_vec()))))),
        ];
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let one = encode_chunk(&batch).expect("encode");
        let many = encode_chunk_on(&batch, threads).expect("encode on threads");
        prop_assert!(one == many, "{} rows on {threads} threads: {} bytes against {}", rows, many.len(), one.len());
        let back = decode_chunk(&ObjectId::of(&many), many, &batch.schema()).expect("decode");
        prop_assert_eq!(back, batch);
    }
}

/// A chunk longer than a row group (a table made with a huge `--chunk-rows`) has the same
/// bytes on several threads too.
#[test]
fn a_chunk_of_several_row_groups_has_the_same_bytes_on_several_threads() {
    use strata_engine::chunk::encode_chunk_on;
    let rows = (1 << 20) + 3;
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef,
        ),
        (
            "v",
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i % 7))) as ArrayRef,
        ),
    ])
    .expect("batch");
    let one = encode_chunk(&batch).expect("encode");
    let many = encode_chunk_on(&batch, 2).expect("encode on threads");
    assert!(one == many, "{} bytes against {}", many.len(), one.len());
}
