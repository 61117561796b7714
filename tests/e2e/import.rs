//! Importing CSV, Parquet and JSON Lines files in every mode, and deleting by key.

use serde_json::json;

use crate::harness::*;

#[test]
fn a_csv_import_creates_a_table_with_inferred_types_and_a_non_null_key() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    let out = dir
        .strata(&["import", "people", "people.csv", "--primary-key", "id"])
        .ok();
    assert_mentions(
        &out.stdout,
        &[
            "Created table 'people'",
            "3 inserted",
            "0 updated",
            "3 rows in all",
        ],
    );
    let show = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    assert_eq!(show["rows"], 3);
    assert_eq!(show["primary_key"], json!(["id"]));
    assert_eq!(
        show["columns"],
        json!([
            {"name": "id", "type": "int64", "nullable": false},
            {"name": "name", "type": "utf8", "nullable": true},
            {"name": "score", "type": "float64", "nullable": true},
        ])
    );
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn the_short_key_flag_and_a_composite_key_order_rows_by_every_key_column() {
    let dir = Dir::repo();
    dir.write(
        "sales.csv",
        "region,year,amount\nwest,2024,5\neast,2024,3\nwest,2023,4\neast,2023,1\n",
    );
    dir.strata(&["import", "sales", "sales.csv", "-k", "region,year"])
        .ok();
    assert_eq!(
        dir.export_csv("sales", None),
        "region,year,amount\neast,2023,1\neast,2024,3\nwest,2023,4\nwest,2024,5\n"
    );
    let show = dir
        .strata(&["table", "show", "sales", "--json"])
        .ok()
        .json();
    assert_eq!(show["primary_key"], json!(["region", "year"]));
}

#[test]
fn rows_given_out_of_key_order_are_stored_and_exported_in_key_order() {
    let dir = Dir::repo();
    dir.write(
        "people.csv",
        "id,name,score\n3,cy,3.0\n1,ann,1.5\n2,bob,2.5\n",
    );
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn a_parquet_file_exported_from_one_table_imports_into_another_with_the_same_rows() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "people.parquet"]).ok();
    let out = dir
        .strata(&["import", "copy", "people.parquet", "-k", "id"])
        .ok();
    assert_mentions(&out.stdout, &["Created table 'copy'", "3 rows in all"]);
    assert_eq!(dir.export_csv("copy", None), PEOPLE_CSV);
    let a = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    let b = dir.strata(&["table", "show", "copy", "--json"]).ok().json();
    assert_eq!(a["columns"], b["columns"]);
}

#[test]
fn a_json_lines_file_imports_with_the_same_rows_as_the_csv() {
    let dir = Dir::repo();
    dir.write(
        "people.jsonl",
        concat!(
            r#"{"id":1,"name":"ann","score":1.5}"#,
            "\n",
            r#"{"id":2,"name":"bob","score":2.5}"#,
            "\n",
            r#"{"id":3,"name":"cy","score":3.0}"#,
            "\n",
        ),
    );
    dir.strata(&["import", "people", "people.jsonl", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let show = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    assert_eq!(show["columns"][0]["type"], "int64");
    assert_eq!(show["columns"][2]["type"], "float64");
}

#[test]
fn the_format_flag_reads_a_file_whose_extension_says_nothing() {
    let dir = Dir::repo();
    dir.write("people.txt", PEOPLE_CSV);
    dir.strata(&[
        "import",
        "people",
        "people.txt",
        "-k",
        "id",
        "--format",
        "csv",
    ])
    .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn mode_create_makes_a_new_table_like_no_mode_at_all() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    dir.strata(&[
        "import",
        "people",
        "people.csv",
        "-k",
        "id",
        "--mode",
        "create",
    ])
    .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn mode_replace_swaps_every_row_and_may_change_the_schema() {
    let dir = Dir::with_people();
    dir.write("new.csv", "id,name,city\n7,gus,oslo\n8,hal,rome\n");
    let out = dir
        .strata(&["import", "people", "new.csv", "--mode", "replace"])
        .ok();
    assert_mentions(&out.stdout, &["Updated table 'people'", "2 rows in all"]);
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,city\n7,gus,oslo\n8,hal,rome\n"
    );
    let status = dir.strata(&["status", "--json"]).ok().json();
    let t = &status["tables"][0];
    assert_eq!(t["table"], "people");
    assert_eq!(t["state"], "modified");
    assert_eq!(t["schema_changed"], true);
    let human = dir.strata(&["status"]).ok();
    assert_mentions(&human.stdout, &["modified (schema)"]);
}

#[test]
fn a_replace_that_changes_the_schema_or_the_key_says_so_on_stderr() {
    let dir = Dir::with_people();
    dir.write("same.csv", PEOPLE_CSV);
    let out = dir
        .strata(&["import", "people", "same.csv", "--mode", "replace"])
        .ok();
    assert!(!out.stderr.contains("schema"), "{out:?}");
    dir.write("new.csv", "id,region,name\n7,eu,gus\n");
    let out = dir
        .strata(&[
            "import",
            "people",
            "new.csv",
            "--mode",
            "replace",
            "-k",
            "id,region",
        ])
        .ok();
    assert_eq!(
        out.stderr,
        "note: replacing people changes its schema: added column region, dropped column score; \
         key (id) -> (id, region)\n"
    );
}

#[test]
fn mode_append_adds_new_keys() {
    let dir = Dir::with_people();
    dir.write("more.csv", "id,name,score\n4,dee,4.5\n5,eve,5.5\n");
    let out = dir
        .strata(&["import", "people", "more.csv", "--mode", "append"])
        .ok();
    assert_mentions(&out.stdout, &["2 inserted", "0 updated", "5 rows in all"]);
    assert_eq!(
        dir.export_csv("people", None),
        format!("{PEOPLE_CSV}4,dee,4.5\n5,eve,5.5\n")
    );
}

#[test]
fn mode_append_refuses_a_key_that_exists_and_names_it() {
    let dir = Dir::with_people();
    dir.write("more.csv", "id,name,score\n2,bobby,9.5\n4,dee,4.5\n");
    let line = dir.refused(&["import", "people", "more.csv", "--mode", "append"]);
    assert_mentions(
        &line,
        &["people", "id=2", "already exists", "--mode upsert"],
    );
}

#[test]
fn mode_upsert_inserts_new_keys_and_overwrites_existing_ones() {
    let dir = Dir::with_people();
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n4,dee,4.5\n");
    let out = dir
        .strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    assert_mentions(&out.stdout, &["1 inserted", "1 updated", "4 rows in all"]);
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bobby,2.5\n3,cy,3.0\n4,dee,4.5\n"
    );
}

#[test]
fn columns_may_come_in_any_order_when_changing_a_table() {
    let dir = Dir::with_people();
    dir.write("up.csv", "score,id,name\n9.5,3,cyd\n");
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cyd,9.5\n"
    );
}

#[test]
fn delete_keys_removes_the_listed_rows_and_counts_keys_that_matched_nothing() {
    let dir = Dir::with_people();
    dir.write("gone.csv", "id\n3\n1\n9\n");
    let out = dir.strata(&["delete", "people", "--keys", "gone.csv"]).ok();
    assert_mentions(
        &out.stdout,
        &[
            "Deleted 2 rows from 'people'",
            "1 row left",
            "1 key matched no row",
        ],
    );
    assert_eq!(dir.export_csv("people", None), "id,name,score\n2,bob,2.5\n");
    let status = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(status["tables"][0]["removed"], 2);
}

#[test]
fn delete_keys_reads_json_lines_too() {
    let dir = Dir::with_people();
    dir.write("gone.jsonl", "{\"id\":2}\n");
    dir.strata(&["delete", "people", "--keys", "gone.jsonl"])
        .ok();
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n3,cy,3.0\n"
    );
}

#[test]
fn a_csv_with_only_a_header_makes_an_empty_table() {
    let dir = Dir::repo();
    dir.write("empty.csv", "id,name\n");
    dir.strata(&["import", "nobody", "empty.csv", "-k", "id"])
        .ok();
    let list = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["table"], "nobody");
    assert_eq!(list[0]["rows"], 0);
}

#[test]
fn an_import_over_many_chunks_keeps_every_row() {
    let dir = Dir::repo();
    let mut csv = String::from("id,name,score\n");
    for i in 0..5000 {
        csv.push_str(&format!("{i},n{i},{}.5\n", i % 97));
    }
    dir.write("many.csv", &csv);
    dir.strata(&[
        "import",
        "many",
        "many.csv",
        "-k",
        "id",
        "--chunk-rows",
        "256",
    ])
    .ok();
    let show = dir.strata(&["table", "show", "many", "--json"]).ok().json();
    assert_eq!(show["rows"], 5000);
    assert!(
        show["chunks"].as_u64().expect("chunks is a number") > 5,
        "expected several chunks: {show}"
    );
    assert_eq!(dir.export_csv("many", None), csv);
    dir.write("edit.csv", "id,name,score\n2500,changed,0.5\n");
    let out = dir
        .strata(&["import", "many", "edit.csv", "--mode", "upsert"])
        .ok();
    assert_mentions(&out.stdout, &["1 updated", "5000 rows in all"]);
    let reused = out
        .stdout
        .trim_end()
        .split(", ")
        .find_map(|part| part.strip_suffix(" reused)"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no reused count in {:?}", out.stdout));
    assert!(
        reused > 0,
        "an edit of one row should reuse the other chunks:\n{out:?}"
    );
}

#[test]
fn a_column_kept_as_text_is_noted_and_type_gives_it_a_number_type() {
    let dir = Dir::repo();
    dir.write("zips.csv", "id,zip\n1,00123\n2,40510\n");
    let out = dir.strata(&["import", "zips", "zips.csv", "-k", "id"]).ok();
    assert_mentions(
        &out.stderr,
        &["note: column 'zip' is kept as text", "'00123'"],
    );
    assert_eq!(dir.export_csv("zips", None), "id,zip\n1,00123\n2,40510\n");

    let out = dir
        .strata(&[
            "import",
            "nums",
            "zips.csv",
            "-k",
            "id",
            "--type",
            "zip=int64",
        ])
        .ok();
    assert!(!out.stderr.contains("note:"), "{out:?}");
    assert_eq!(dir.export_csv("nums", None), "id,zip\n1,123\n2,40510\n");
}

#[test]
fn a_type_that_is_not_column_equals_type_is_a_usage_error() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    let before = dir.snapshot();
    for bad in ["score", "score=float128"] {
        let err = dir
            .strata(&["import", "p", "people.csv", "-k", "id", "--type", bad])
            .usage_error();
        assert_mentions(&err, &[bad]);
    }
    before.assert_same(&dir.snapshot(), "a refused import");
}

#[test]
fn a_value_inference_would_change_is_refused_with_the_type_that_keeps_it() {
    let dir = Dir::repo();
    let mut csv = String::from("id,code\n");
    for i in 0..100_001 {
        csv.push_str(&format!("{i},{}\n", 500 + i));
    }
    csv.push_str("100001,0042\n");
    dir.write("codes.csv", csv);
    let before = dir.snapshot();
    let line = dir
        .strata(&["import", "codes", "codes.csv", "-k", "id"])
        .fails_with_one_line();
    assert_mentions(
        &line,
        &["'0042'", "'code'", "line 100003", "--type code=utf8"],
    );
    before.assert_same(&dir.snapshot(), "a refused import");
    dir.strata(&[
        "import",
        "codes",
        "codes.csv",
        "-k",
        "id",
        "--type",
        "code=utf8",
    ])
    .ok();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// [`PEOPLE_CSV`] with `sep` between fields.
fn people_separated_by(sep: &str) -> String {
    PEOPLE_CSV.replace(',', sep)
}

#[test]
fn a_tsv_file_is_read_with_tabs_between_fields() {
    let dir = Dir::repo();
    dir.write("people.tsv", people_separated_by("\t"));
    dir.strata(&["import", "people", "people.tsv", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn the_delimiter_flag_reads_fields_separated_by_that_character() {
    let dir = Dir::repo();
    dir.write("people.csv", people_separated_by(";"));
    dir.strata(&[
        "import",
        "people",
        "people.csv",
        "-k",
        "id",
        "--delimiter",
        ";",
    ])
    .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    let show = dir
        .strata(&["table", "show", "people", "--json"])
        .ok()
        .json();
    assert_eq!(show["columns"][2]["type"], "float64");

    dir.write("tabs.txt", people_separated_by("\t"));
    for tab in ["\\t", "tab"] {
        let table = format!("t{}", tab.len());
        dir.strata(&[
            "import",
            &table,
            "tabs.txt",
            "-k",
            "id",
            "--format",
            "csv",
            "--delimiter",
            tab,
        ])
        .ok();
        assert_eq!(dir.export_csv(&table, None), PEOPLE_CSV);
    }
}

#[test]
fn a_delimiter_that_is_not_one_character_is_a_usage_error() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    for bad in [";;", "", "\""] {
        let err = dir.refused_usage(&["import", "p", "people.csv", "-k", "id", "--delimiter", bad]);
        assert_mentions(&err, &["--delimiter"]);
    }
}

#[test]
fn a_gzip_csv_is_read_decompressed_and_compression_none_overrides_the_extension() {
    let dir = Dir::repo();
    dir.write("people.csv.gz", gzip(PEOPLE_CSV.as_bytes()));
    dir.strata(&["import", "people", "people.csv.gz", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);

    // A file named .gz that is not compressed, read as it is.
    dir.write("plain.csv.gz", PEOPLE_CSV);
    dir.strata(&[
        "import",
        "plain",
        "plain.csv.gz",
        "-k",
        "id",
        "--compression",
        "none",
    ])
    .ok();
    assert_eq!(dir.export_csv("plain", None), PEOPLE_CSV);
}

#[test]
fn a_zstd_json_lines_file_is_read_decompressed() {
    let dir = Dir::repo();
    let jsonl = concat!(
        r#"{"id":3,"name":"cy","score":3.0}"#,
        "\n",
        r#"{"id":1,"name":"ann","score":1.5}"#,
        "\n",
        r#"{"id":2,"name":"bob","score":2.5}"#,
        "\n",
    );
    let compressed = zstd::encode_all(jsonl.as_bytes(), 3).expect("zstd to memory");
    dir.write("people.jsonl.zst", &compressed);
    dir.strata(&["import", "people", "people.jsonl.zst", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    // The flag says it for a name that does not.
    dir.write("people.data", &compressed);
    dir.strata(&[
        "import",
        "again",
        "people.data",
        "-k",
        "id",
        "--format",
        "jsonl",
        "--compression",
        "zstd",
    ])
    .ok();
    assert_eq!(dir.export_csv("again", None), PEOPLE_CSV);
}

#[test]
fn a_csv_piped_into_standard_input_imports_like_the_file() {
    let dir = Dir::repo();
    let out = dir.strata_stdin(
        &["import", "people", "-", "-k", "id", "--format", "csv"],
        PEOPLE_CSV.as_bytes(),
    );
    let out = out.ok();
    assert_mentions(&out.stdout, &["Created table 'people'", "3 rows in all"]);
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
    // The copy of the input is gone.
    assert!(
        !dir.join(".strata/tmp").exists(),
        "a temporary folder was left behind"
    );
    // Compressed, and Parquet (which needs to seek), through the pipe too.
    dir.strata_stdin(
        &[
            "import",
            "zipped",
            "-",
            "-k",
            "id",
            "--format",
            "csv",
            "--compression",
            "gzip",
        ],
        &gzip(PEOPLE_CSV.as_bytes()),
    )
    .ok();
    assert_eq!(dir.export_csv("zipped", None), PEOPLE_CSV);
    dir.strata(&["export", "people", "people.parquet"]).ok();
    dir.strata_stdin(
        &["import", "pq", "-", "-k", "id", "--format", "parquet"],
        &dir.read("people.parquet"),
    )
    .ok();
    assert_eq!(dir.export_csv("pq", None), PEOPLE_CSV);
}

#[test]
fn standard_input_without_a_format_is_a_usage_error_that_changes_nothing() {
    let dir = Dir::repo();
    let before = dir.snapshot();
    let err = dir
        .strata_stdin(
            &["import", "people", "-", "-k", "id"],
            PEOPLE_CSV.as_bytes(),
        )
        .usage_error();
    assert_mentions(&err, &["--format"]);
    before.assert_same(
        &dir.snapshot(),
        "an import from standard input without a format",
    );
}

#[test]
fn bad_data_from_standard_input_is_refused_and_leaves_no_copy_behind() {
    let dir = Dir::with_people();
    let before = dir.snapshot();
    let out = dir.strata_stdin(
        &[
            "import", "people", "-", "--format", "csv", "--mode", "upsert",
        ],
        b"id,name,score\n7,gus,not a number\n",
    );
    let line = out.fails_with_one_line();
    assert_mentions(
        &line,
        &["standard input", "'not a number'", "score", "line 2"],
    );
    before.assert_same(&dir.snapshot(), "a refused import from standard input");
}

#[test]
fn a_corrupt_gzip_file_is_refused_in_one_line_and_changes_nothing() {
    let dir = Dir::with_people();
    let mut bytes = gzip(PEOPLE_CSV.repeat(50).as_bytes());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    bytes[mid + 1] ^= 0xFF;
    dir.write("more.csv.gz", &bytes);
    let line = dir.refused(&["import", "people", "more.csv.gz", "--mode", "upsert"]);
    assert_mentions(&line, &["more.csv.gz", "gzip"]);

    dir.write("junk.csv.gz", "id,name,score\n9,not,compressed\n");
    let line = dir.refused(&["import", "junk", "junk.csv.gz", "-k", "id"]);
    assert_mentions(&line, &["junk.csv.gz", "cannot decompress it as gzip"]);
}

#[test]
fn a_compressed_parquet_file_is_refused_with_what_to_do() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "people.parquet"]).ok();
    dir.write("people.parquet.gz", gzip(&dir.read("people.parquet")));
    let line = dir.refused(&["import", "copy", "people.parquet.gz", "-k", "id"]);
    assert_mentions(
        &line,
        &["people.parquet.gz", "Parquet", "decompress it first"],
    );
}
