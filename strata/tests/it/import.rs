//! Imports never change a value: a header that would hide a column is refused, inferred types
//! keep every value exactly as written (or the column stays text, with a note saying why), a
//! value that its column's type would change is refused with its column and line, and a
//! refused import leaves the repository as it was.

use std::path::PathBuf;
use std::sync::Arc;

use crate::common::*;
use arrow_array::{Float64Array, Int64Array, RecordBatch, RecordBatchIterator};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;
use strata::{ErrorKind, FileFormat, NoProgress, Suggestion, WriteMode, WriteOptions};

fn write_file(t: &TestRepo, name: &str, contents: &str) -> PathBuf {
    let path = t.path().join(name);
    std::fs::write(&path, contents).expect("the input file should be writable");
    path
}

fn create_opts(key: &str) -> WriteOptions {
    WriteOptions {
        primary_key: Some(vec![key.to_string()]),
        ..Default::default()
    }
}

fn with_types(key: &str, types: &[(&str, &str)]) -> WriteOptions {
    WriteOptions {
        types: types
            .iter()
            .map(|(c, t)| (c.to_string(), strata::parse_type(t).expect("a known type")))
            .collect(),
        ..create_opts(key)
    }
}

/// Imports `contents` as a new table `t`; returns the error, after checking that the
/// repository did not change.
async fn refused(t: &TestRepo, name: &str, contents: &str, opts: &WriteOptions) -> strata::Error {
    let path = write_file(t, name, contents);
    let before = t.snapshot();
    let err = t
        .import_file("t", &path, None, opts, &NoProgress)
        .await
        .expect_err("the import should be refused");
    before.assert_same(&t.snapshot(), "a refused import");
    err
}

/// An upsert of `contents` (a file called `name`) into `table` of `t` that must be refused
/// and change nothing.
async fn refused_upsert(t: &TestRepo, table: &str, name: &str, contents: &str) -> strata::Error {
    let path = write_file(t, name, contents);
    let before = t.snapshot();
    let err = t
        .import_file(table, &path, None, &mode(WriteMode::Upsert), &NoProgress)
        .await
        .expect_err("refused");
    before.assert_same(&t.snapshot(), "a refused upsert");
    err
}

async fn column_type(t: &TestRepo, column: &str) -> String {
    let info = t.table("t", None).await.expect("table t exists");
    info.columns
        .iter()
        .find(|c| c.name == column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .data_type
        .clone()
}

#[tokio::test]
async fn a_csv_header_that_names_a_column_twice_is_refused_naming_it() {
    let t = TestRepo::new().await;
    let err = refused(&t, "dup.csv", "id,id,qty\n1,2,3\n", &create_opts("id")).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_mentions(&err.to_string(), &["dup.csv", "'id'", "twice"]);
}

#[tokio::test]
async fn a_csv_line_with_too_few_or_too_many_fields_is_refused_naming_the_line_and_counts() {
    let t = TestRepo::new().await;
    // Among the rows types are inferred from, and after them (read by another part of Arrow,
    // with a message of its own): the same words either way.
    let late = |last: &str| long_numbers_then(last);
    for (name, text, line, has) in [
        (
            "few.csv",
            "id,qty\n1,2\n3\n".to_string(),
            "line 3",
            "has 1 field ",
        ),
        (
            "many.csv",
            "id,qty\n1,2,3\n".to_string(),
            "line 2",
            "has 3 fields",
        ),
        (
            "late_few.csv",
            late("7").replace("100005,7\n", "100005\n"),
            "line 100007",
            "has 1 field ",
        ),
        ("late_many.csv", late("7,8"), "line 100007", "has 3 fields"),
    ] {
        let err = refused(&t, name, &text, &create_opts("id")).await;
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert_mentions(
            &err.to_string(),
            &[name, line, has, "the header has 2", "double quotes"],
        );
    }
    // The same for an upsert into a table that exists.
    let t = TestRepo::with_people().await;
    let err = refused_upsert(&t, "people", "short.csv", "id,name,score\n4,dee\n").await;
    assert_mentions(
        &err.to_string(),
        &["line 2", "has 2 fields", "header has 3"],
    );
}

#[tokio::test]
async fn a_quoted_field_never_closed_is_refused_naming_its_line() {
    let t = TestRepo::new().await;
    // Without the check, the rest of the file would be read as one value of row 2.
    let text = "id,note\n1,\"fine, and \"\"quoted\"\"\"\n2,\"open\n3,x\n4,y\n";
    let err = refused(&t, "open.csv", text, &create_opts("id")).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_mentions(
        &err.to_string(),
        &["open.csv", "starts on line 3", "not closed", "\"\""],
    );
    // After the rows types are inferred from, in a file where many fields are quoted.
    let mut long = String::from("id,name\n");
    for i in 0..100_005 {
        long.push_str(&format!("{i},\"n{i}\"\n"));
    }
    long.push_str("100005,\"last\n");
    let err = refused(&t, "late_open.csv", &long, &create_opts("id")).await;
    assert_mentions(&err.to_string(), &["starts on line 100007", "not closed"]);
}

#[tokio::test]
async fn a_nested_column_is_refused_naming_the_file_the_column_and_what_to_do() {
    let t = TestRepo::new().await;
    for (name, text, shown) in [
        ("objects.jsonl", "{\"id\":1,\"w\":{\"a\":1}}\n", "Struct"),
        ("lists.jsonl", "{\"id\":1,\"w\":[1,2]}\n", "List"),
    ] {
        let err = refused(&t, name, text, &create_opts("id")).await;
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{name}");
        assert_mentions(
            &err.to_string(),
            &[name, "'w'", shown, "cannot hold", "flatten"],
        );
    }
}

#[tokio::test]
async fn quoted_fields_keep_their_quotes_delimiters_and_line_breaks() {
    let t = TestRepo::new().await;
    // A byte-order mark, a quoted header, a doubled quote, a line break and a delimiter in
    // quoted fields, a quote inside an unquoted field, text after a closing quote.
    let text =
        "\u{feff}\"id\",\"v\"\r\n1,\"a \"\"b\"\"\"\r\n2,\"x\r\ny, z\"\r\n3,5\"\r\n4,\"p\"q\r\n";
    t.create("t", &["id"], text).await;
    assert_eq!(
        t.rows("t", None).await,
        vec![
            json!({"id": 1, "v": "a \"b\""}),
            json!({"id": 2, "v": "x\r\ny, z"}),
            json!({"id": 3, "v": "5\""}),
            json!({"id": 4, "v": "pq"}),
        ]
    );
}

#[tokio::test]
async fn quotes_and_line_endings_after_many_plain_lines_are_read_and_numbered_from_the_start() {
    let t = TestRepo::new().await;
    // Plain lines (read by splitting), then a quoted field, a carriage return, a blank line and
    // an empty field: the rest of the file is read by the CSV parser, as the start would be.
    let mut text = String::from("id,v\n");
    for i in 0..150_000 {
        text.push_str(&format!("{i},n{i}\n"));
    }
    text.push_str("150000,\"a, \"\"b\"\"\nc\"\r\n\n150001,\r\n150002,z");
    t.create("t", &["id"], &text).await;
    let rows = t.rows("t", None).await;
    assert_eq!(rows.len(), 150_003);
    assert_eq!(rows[149_999], json!({"id": 149_999, "v": "n149999"}));
    assert_eq!(
        rows[150_000..],
        [
            json!({"id": 150_000, "v": "a, \"b\"\nc"}),
            json!({"id": 150_001, "v": null}),
            json!({"id": 150_002, "v": "z"}),
        ]
    );
    // A short line after them is numbered from the file's start, as a record (the header is
    // record 1; a blank line is none, a quoted line break is within one).
    let short = text.replace("150001,\r\n", "150001\r\n");
    let err = refused(
        &TestRepo::new().await,
        "short.csv",
        &short,
        &create_opts("id"),
    )
    .await;
    assert_mentions(&err.to_string(), &["line 150003", "has 1 field "]);
}

#[tokio::test]
async fn a_csv_header_with_an_empty_column_name_is_refused_naming_its_position() {
    let t = TestRepo::new().await;
    let err = refused(&t, "empty.csv", "id,,qty\n1,2,3\n", &create_opts("id")).await;
    assert_mentions(&err.to_string(), &["empty.csv", "column 2", "no name"]);
}

#[tokio::test]
async fn an_upsert_whose_header_repeats_a_column_is_refused() {
    let t = TestRepo::with_people().await;
    let err = refused_upsert(&t, "people", "dup.csv", "id,name,name\n1,a,b\n").await;
    assert_mentions(&err.to_string(), &["'name'", "twice"]);
}

#[tokio::test]
async fn leading_zeros_keep_a_column_as_text_with_a_note() {
    let t = TestRepo::new().await;
    let path = write_file(&t, "zips.csv", "id,zip\n1,00123\n2,40510\n");
    let report = t
        .import_file("t", &path, None, &create_opts("id"), &NoProgress)
        .await
        .expect("imported");
    assert_eq!(column_type(&t, "zip").await, "utf8");
    assert_eq!(column_type(&t, "id").await, "int64");
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert_mentions(
        &report.notes[0],
        &["'zip'", "'00123'", "line 2", "leading zero"],
    );
    assert_eq!(
        t.rows("t", None).await,
        vec![
            json!({"id": 1, "zip": "00123"}),
            json!({"id": 2, "zip": "40510"})
        ]
    );
}

#[tokio::test]
async fn a_key_beyond_int64_stays_text_with_a_note_and_keeps_every_digit() {
    let t = TestRepo::new().await;
    let path = write_file(&t, "big.csv", "id,v\n1,a\n99999999999999999999,b\n");
    let report = t
        .import_file("t", &path, None, &create_opts("id"), &NoProgress)
        .await
        .expect("imported");
    assert_eq!(column_type(&t, "id").await, "utf8");
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert_mentions(
        &report.notes[0],
        &["'id'", "99999999999999999999", "line 3", "int64"],
    );
    let csv = t.csv("t", None).await;
    assert!(csv.contains("99999999999999999999"), "{csv}");
}

#[tokio::test]
async fn a_text_column_of_words_gets_no_note() {
    let t = TestRepo::new().await;
    let report = t.create("t", &["id"], "id,name\n1,ann\n2,bob\n").await;
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

/// A file whose first rows (all of the sample types are inferred from) are plain numbers.
fn long_numbers_then(last: &str) -> String {
    let mut csv = String::from("id,code\n");
    for i in 0..100_005 {
        csv.push_str(&format!("{i},{}\n", 1000 + i));
    }
    csv.push_str(&format!("100005,{last}\n"));
    csv
}

#[tokio::test]
async fn a_leading_zero_after_the_sampled_rows_fails_the_import_naming_value_and_line() {
    let t = TestRepo::new().await;
    let err = refused(
        &t,
        "late.csv",
        &long_numbers_then("00042"),
        &create_opts("id"),
    )
    .await;
    assert_mentions(
        &err.to_string(),
        &[
            "late.csv",
            "'00042'",
            "'code'",
            "line 100007",
            "leading zero",
        ],
    );
    assert_eq!(
        err.suggestion(),
        Some(Suggestion::GiveColumnType {
            column: "code".into(),
            keeps: Some("utf8".into())
        })
    );
}

#[tokio::test]
async fn a_number_beyond_int64_after_the_sampled_rows_fails_the_import() {
    let t = TestRepo::new().await;
    let text = long_numbers_then("99999999999999999999");
    let err = refused(&t, "late.csv", &text, &create_opts("id")).await;
    assert_mentions(
        &err.to_string(),
        &[
            "'99999999999999999999'",
            "'code'",
            "line 100007",
            "not a valid int64",
        ],
    );
}

#[tokio::test]
async fn a_given_type_keeps_the_text_where_inference_would_fail() {
    let t = TestRepo::new().await;
    let path = write_file(&t, "late.csv", &long_numbers_then("00042"));
    let report = t
        .import_file(
            "t",
            &path,
            None,
            &with_types("id", &[("code", "string")]),
            &NoProgress,
        )
        .await
        .expect("imported with the type given");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(column_type(&t, "code").await, "utf8");
    assert!(t.csv("t", None).await.contains("100005,00042"));
}

#[tokio::test]
async fn a_given_type_stores_numbers_where_the_file_has_leading_zeros() {
    let t = TestRepo::new().await;
    let path = write_file(&t, "zips.csv", "id,zip\n1,00123\n");
    let report = t
        .import_file(
            "t",
            &path,
            None,
            &with_types("id", &[("zip", "int32")]),
            &NoProgress,
        )
        .await
        .expect("imported");
    assert!(report.notes.is_empty());
    assert_eq!(column_type(&t, "zip").await, "int32");
    assert_eq!(t.rows("t", None).await, vec![json!({"id": 1, "zip": 123})]);
}

#[tokio::test]
async fn a_type_for_a_column_the_file_lacks_is_refused() {
    let t = TestRepo::new().await;
    let err = refused(
        &t,
        "p.csv",
        PEOPLE_CSV,
        &with_types("id", &[("nope", "utf8")]),
    )
    .await;
    assert_mentions(&err.to_string(), &["'nope'"]);
}

#[tokio::test]
async fn a_type_that_differs_from_an_existing_tables_is_refused() {
    let t = TestRepo::with_people().await;
    let path = write_file(&t, "more.csv", "id,name,score\n9,zed,1.0\n");
    let before = t.snapshot();
    let opts = WriteOptions {
        mode: Some(WriteMode::Upsert),
        types: vec![("score".into(), DataType::Utf8)],
        ..Default::default()
    };
    let err = t
        .import_file("people", &path, None, &opts, &NoProgress)
        .await
        .expect_err("refused");
    before.assert_same(&t.snapshot(), "a refused upsert");
    assert_mentions(&err.to_string(), &["'score'", "float64", "utf8"]);
}

#[test]
fn type_names_are_parsed_as_users_write_them() {
    for (name, dt) in [
        ("int64", DataType::Int64),
        ("INT", DataType::Int64),
        ("string", DataType::Utf8),
        ("double", DataType::Float64),
        ("boolean", DataType::Boolean),
        ("date", DataType::Date32),
        ("decimal128(10,2)", DataType::Decimal128(10, 2)),
    ] {
        assert_eq!(strata::parse_type(name).expect(name), dt, "{name}");
    }
    let err = strata::parse_type("varchar2").expect_err("unknown");
    assert_mentions(&err.to_string(), &["varchar2", "int64", "utf8"]);
    assert!(strata::parse_column_type("zip").is_err());
    assert_eq!(
        strata::parse_column_type("zip=text").expect("parsed"),
        ("zip".to_string(), DataType::Utf8)
    );
}

#[tokio::test]
async fn a_declared_int_column_refuses_a_json_fraction_instead_of_cutting_it() {
    let t = TestRepo::new().await;
    t.create("t", &["id"], "id,qty\n1,5\n").await;
    let err = refused_upsert(
        &t,
        "t",
        "more.jsonl",
        "{\"id\": 2, \"qty\": 3}\n{\"id\": 3, \"qty\": 1.5}\n",
    )
    .await;
    assert_mentions(&err.to_string(), &["'1.5'", "'qty'", "line 2", "int64"]);
}

#[tokio::test]
async fn a_json_number_beyond_int64_is_kept_as_text_with_every_digit() {
    let t = TestRepo::new().await;
    let path = write_file(
        &t,
        "big.jsonl",
        "{\"id\": 1, \"n\": 5}\n{\"id\": 2, \"n\": 123456789012345678901}\n",
    );
    let report = t
        .import_file("t", &path, None, &create_opts("id"), &NoProgress)
        .await
        .expect("imported");
    assert_eq!(column_type(&t, "n").await, "utf8");
    assert_mentions(&report.notes.join("\n"), &["'n'", "line 2", "int64"]);
    assert_eq!(
        t.rows("t", None).await,
        vec![
            json!({"id": 1, "n": "5"}),
            json!({"id": 2, "n": "123456789012345678901"})
        ]
    );
}

#[tokio::test]
async fn a_json_lines_error_names_the_real_line_after_blank_lines() {
    let t = TestRepo::new().await;
    let text = "{\"id\": 1, \"qty\": 5}\n\n\n{\"id\": 1, \"qty\": 6}\n";
    let err = refused(&t, "dup.jsonl", text, &create_opts("id")).await;
    assert_mentions(&err.to_string(), &["line 4"]);
    let text = "{\"id\": 1, \"qty\": 5}\n\n{\"id\": null, \"qty\": 6}\n";
    let err = refused(&t, "null.jsonl", text, &create_opts("id")).await;
    assert_mentions(&err.to_string(), &["line 3"]);
    t.create("t", &["id"], "id,qty\n1,5\n").await;
    let path = write_file(
        &t,
        "bad.jsonl",
        "{\"id\": 1, \"qty\": 5}\n\n{\"id\": 2, \"qty\": \"many\"}\n",
    );
    let err = t
        .import_file("t", &path, None, &mode(WriteMode::Upsert), &NoProgress)
        .await
        .expect_err("'many' is not an int64");
    assert_mentions(&err.to_string(), &["'many'", "'qty'", "line 3"]);
}

#[tokio::test]
async fn batches_of_floats_written_to_an_int_column_keep_whole_values_and_refuse_fractions() {
    let t = TestRepo::new().await;
    t.create("t", &["id"], "id,qty\n1,5\n").await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Float64, true),
    ]));
    let batch = |qty: f64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(Float64Array::from(vec![qty])),
            ],
        )
        .expect("batch")
    };
    let reader = |b: RecordBatch| {
        Box::new(RecordBatchIterator::new(vec![Ok(b)], schema.clone()))
            as Box<dyn arrow_array::RecordBatchReader + Send>
    };
    t.write(
        "t",
        reader(batch(7.0)),
        &mode(WriteMode::Upsert),
        &NoProgress,
    )
    .await
    .expect("7.0 is a whole number");
    let before = t.snapshot();
    let err = t
        .write(
            "t",
            reader(batch(7.5)),
            &mode(WriteMode::Upsert),
            &NoProgress,
        )
        .await
        .expect_err("7.5 would lose its fraction");
    before.assert_same(&t.snapshot(), "a refused write");
    assert_mentions(&err.to_string(), &["'7.5'", "'qty'", "fraction"]);
    assert_eq!(
        t.rows("t", None).await,
        vec![json!({"id": 1, "qty": 5}), json!({"id": 2, "qty": 7})]
    );
}

#[tokio::test]
async fn a_reader_imports_in_the_format_given_and_data_not_in_the_compression_is_refused() {
    let t = TestRepo::new().await;
    let semicolons = PEOPLE_CSV.replace(',', ";");
    let opts = WriteOptions {
        delimiter: Some(strata::parse_delimiter(";").expect("one character")),
        ..create_opts("id")
    };
    let reader = Box::new(std::io::Cursor::new(semicolons.into_bytes()));
    let report = t
        .import_reader(
            "people",
            reader,
            "the pipe",
            FileFormat::Csv,
            &opts,
            &NoProgress,
        )
        .await
        .expect("the import should succeed");
    assert_eq!(report.rows, 3);
    assert!(
        !t.path().join(".strata/tmp").exists(),
        "the copy of the input was left behind"
    );

    // Bytes that are not what the compression says fail, naming the input, and change
    // nothing.
    let before = t.snapshot();
    let opts = WriteOptions {
        compression: Some(strata::Compression::Zstd),
        ..create_opts("id")
    };
    let reader = Box::new(std::io::Cursor::new(PEOPLE_CSV.as_bytes().to_vec()));
    let err = t
        .import_reader(
            "other",
            reader,
            "the pipe",
            FileFormat::Csv,
            &opts,
            &NoProgress,
        )
        .await
        .expect_err("plain text is not zstd");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(
        text.starts_with("the pipe: ") && text.contains("zstd"),
        "{text}"
    );
    before.assert_same(&t.snapshot(), "a refused import");
}

#[tokio::test]
async fn write_refuses_the_options_that_only_files_have() {
    let t = TestRepo::new().await;
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))])
        .expect("a batch");
    let reader = Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema));
    let opts = WriteOptions {
        delimiter: Some(b';'),
        ..create_opts("id")
    };
    let err = t
        .write("t", reader, &opts, &NoProgress)
        .await
        .expect_err("a delimiter means nothing to batches");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
