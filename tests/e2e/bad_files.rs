//! Files that cannot be imported: each import is refused with one line that names the file
//! and the problem (with its line, column or key), and the repository is left as it was.

use crate::harness::*;

/// Imports `file` (written with `contents`) into `people` with `--mode upsert`, which must
/// be refused; returns the error line.
fn upsert_refused(contents: &str, file: &str) -> String {
    let dir = Dir::with_people();
    dir.write(file, contents);
    dir.refused(&["import", "people", file, "--mode", "upsert"])
}

/// Imports `file` (written with `contents`) as a new table keyed on `key`, which must be
/// refused; returns the error line.
fn create_refused(contents: &[u8], file: &str, key: &str) -> String {
    let dir = Dir::with_people();
    dir.write(file, contents);
    dir.refused(&["import", "fresh", file, "-k", key])
}

#[test]
fn an_import_of_a_missing_file_names_the_file_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["import", "fresh", "missing.csv", "-k", "id"]);
    assert_mentions(&line, &["missing.csv", "No such file"]);
    let line = dir.refused(&["import", "people", "missing.csv", "--mode", "upsert"]);
    assert_mentions(&line, &["missing.csv", "No such file"]);
}

#[test]
fn a_delete_with_a_missing_keys_file_names_the_file_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["delete", "people", "--keys", "missing.csv"]);
    assert_mentions(&line, &["missing.csv", "No such file"]);
}

#[test]
fn an_import_of_a_folder_named_like_a_csv_file_says_it_is_a_folder_and_changes_nothing() {
    let dir = Dir::with_people();
    std::fs::create_dir(dir.join("folder.csv")).expect("a folder should be creatable");
    let line = dir.refused(&["import", "fresh", "folder.csv", "-k", "id"]);
    assert_mentions(&line, &["folder.csv"]);
    assert!(line.to_lowercase().contains("is a directory"), "{line}");
}

#[test]
fn an_import_of_a_folder_named_like_a_parquet_file_says_it_is_a_folder_and_changes_nothing() {
    let dir = Dir::with_people();
    std::fs::create_dir(dir.join("folder.parquet")).expect("a folder should be creatable");
    let line = dir.refused(&["import", "fresh", "folder.parquet", "-k", "id"]);
    assert_mentions(&line, &["folder.parquet"]);
    assert!(line.to_lowercase().contains("is a directory"), "{line}");
}

#[test]
fn an_import_of_a_csv_file_that_is_not_utf8_names_the_line_and_changes_nothing() {
    let line = create_refused(b"id,name\n1,ann\n2,\xff\xfe\n", "latin.csv", "id");
    assert_mentions(&line, &["latin.csv", "UTF-8", "line 3"]);
}

#[test]
fn an_import_of_a_garbage_parquet_file_says_it_is_not_parquet_and_changes_nothing() {
    let line = create_refused(
        b"this is not a parquet file at all, just some text",
        "garbage.parquet",
        "id",
    );
    assert_mentions(&line, &["garbage.parquet", "not a readable Parquet file"]);
}

#[test]
fn an_import_of_a_parquet_file_cut_short_is_refused_and_changes_nothing() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "whole.parquet"]).ok();
    let bytes = dir.read("whole.parquet");
    dir.write("cut.parquet", &bytes[..bytes.len() - 10]);
    let line = dir.refused(&["import", "fresh", "cut.parquet", "-k", "id"]);
    assert_mentions(&line, &["cut.parquet", "Parquet"]);
}

#[test]
fn an_empty_csv_file_is_refused_because_it_has_no_header() {
    let line = create_refused(b"", "empty.csv", "id");
    assert_mentions(&line, &["empty.csv", "empty", "header"]);
}

#[test]
fn a_file_whose_extension_names_no_format_is_refused_and_asks_for_format() {
    let line = create_refused(PEOPLE_CSV.as_bytes(), "people.txt", "id");
    assert_mentions(&line, &["people.txt", "--format"]);
}

#[test]
fn an_unknown_format_flag_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused_usage(&[
        "import",
        "fresh",
        "people.csv",
        "-k",
        "id",
        "--format",
        "xls",
    ]);
    assert_mentions(&line, &["unknown format 'xls'"]);
}

#[test]
fn a_csv_row_with_an_unclosed_quote_names_its_line_and_changes_nothing() {
    let line = create_refused(
        b"id,name,score\n1,ann,1.5\n2,\"bob,2.5\n3,cy,3.0\n",
        "quote.csv",
        "id",
    );
    assert_mentions(&line, &["quote.csv", "line 3"]);
}

#[test]
fn a_csv_row_with_an_unclosed_quote_in_an_upsert_names_its_line_and_changes_nothing() {
    let line = upsert_refused(
        "id,name,score\n1,ann,1.5\n2,bob,2.5\n4,\"dee,4.5\n5,eve,5.5\n",
        "quote.csv",
    );
    assert_mentions(&line, &["quote.csv", "line 4"]);
}

#[test]
fn a_csv_row_with_too_few_fields_names_its_line_and_changes_nothing() {
    let line = create_refused(
        b"id,name,score\n1,ann,1.5\n2,bob,2.5\n3,cy\n4,dee,4.5\n",
        "short.csv",
        "id",
    );
    assert_mentions(&line, &["short.csv", "line 4", "3", "2"]);
}

#[test]
fn a_csv_row_with_too_many_fields_names_its_line_and_changes_nothing() {
    let line = upsert_refused("id,name,score\n1,ann,1.5\n2,bob,2.5,extra\n", "long.csv");
    assert_mentions(&line, &["long.csv", "line 3", "3", "4"]);
}

#[test]
fn a_csv_value_of_the_wrong_type_names_the_column_and_line_and_changes_nothing() {
    let line = upsert_refused(
        "id,name,score\n4,dee,4.5\n5,eve,lots\n6,fay,6.5\n",
        "types.csv",
    );
    assert_mentions(&line, &["types.csv", "'lots'", "score", "line 3"]);
}

#[test]
fn a_json_lines_value_of_the_wrong_type_names_the_column_and_line_and_changes_nothing() {
    let line = upsert_refused(
        concat!(
            "{\"id\":4,\"name\":\"dee\",\"score\":4.5}\n",
            "{\"id\":5,\"name\":\"eve\",\"score\":\"lots\"}\n",
        ),
        "types.jsonl",
    );
    assert_mentions(&line, &["types.jsonl", "score", "line 2"]);
}

#[test]
fn a_malformed_json_line_names_its_line_and_changes_nothing() {
    let line = create_refused(
        concat!(
            "{\"id\":1,\"name\":\"ann\"}\n",
            "{\"id\":2,\"name\":\"bob\"}\n",
            "{\"id\":3,\"name\":\n",
            "{\"id\":4,\"name\":\"dee\"}\n",
        )
        .as_bytes(),
        "broken.jsonl",
        "id",
    );
    assert_mentions(&line, &["broken.jsonl", "line 3"]);
}

#[test]
fn a_null_primary_key_in_a_csv_file_names_the_key_column_and_line_and_changes_nothing() {
    let line = create_refused(
        b"id,name,score\n1,ann,1.5\n2,bob,2.5\n,nobody,0.5\n4,dee,4.5\n",
        "nullkey.csv",
        "id",
    );
    assert_mentions(
        &line,
        &["nullkey.csv", "null in primary key column 'id'", "line 4"],
    );
}

#[test]
fn a_null_primary_key_in_an_upsert_names_the_key_column_and_line_and_changes_nothing() {
    let line = upsert_refused("id,name,score\n4,dee,4.5\n,nobody,0.5\n", "nullkey.csv");
    assert_mentions(&line, &["null in primary key column 'id'", "line 3"]);
}

#[test]
fn a_missing_key_in_a_json_line_names_the_key_column_and_line_and_changes_nothing() {
    let line = create_refused(
        b"{\"id\":1,\"name\":\"ann\"}\n{\"name\":\"nobody\"}\n",
        "nullkey.jsonl",
        "id",
    );
    assert_mentions(
        &line,
        &["nullkey.jsonl", "null in primary key column 'id'", "line 2"],
    );
}

#[test]
fn a_null_in_the_second_column_of_a_composite_key_names_that_column() {
    let line = create_refused(
        b"region,year,amount\neast,2023,1\neast,,2\n",
        "sales.csv",
        "region,year",
    );
    assert_mentions(&line, &["null in primary key column 'year'", "line 3"]);
}

#[test]
fn a_duplicate_primary_key_names_the_key_and_its_line_and_changes_nothing() {
    let line = create_refused(
        b"id,name,score\n1,ann,1.5\n2,bob,2.5\n2,bobby,2.5\n3,cy,3.0\n",
        "dup.csv",
        "id",
    );
    assert_mentions(
        &line,
        &["dup.csv", "duplicate primary key", "id=2", "line 4"],
    );
}

#[test]
fn a_duplicate_primary_key_in_an_unsorted_file_names_the_key_and_changes_nothing() {
    let line = create_refused(
        b"id,name,score\n3,cy,3.0\n1,ann,1.5\n3,cyd,3.5\n2,bob,2.5\n",
        "dup.csv",
        "id",
    );
    assert_mentions(&line, &["dup.csv", "duplicate primary key", "id=3"]);
}

#[test]
fn a_duplicate_composite_key_names_every_key_column() {
    let line = create_refused(
        b"region,year,amount\neast,2023,1\neast,2024,2\neast,2024,3\n",
        "sales.csv",
        "region,year",
    );
    assert_mentions(&line, &["duplicate primary key", "east", "2024"]);
}

#[test]
fn a_duplicate_primary_key_in_a_parquet_file_names_the_key_and_changes_nothing() {
    let dir = Dir::repo();
    dir.write("visits.csv", "id,city\n1,oslo\n2,oslo\n3,rome\n");
    dir.strata(&["import", "visits", "visits.csv", "-k", "id"])
        .ok();
    dir.strata(&["export", "visits", "visits.parquet"]).ok();
    let line = dir.refused(&["import", "cities", "visits.parquet", "-k", "city"]);
    assert_mentions(
        &line,
        &["visits.parquet", "duplicate primary key", "city=oslo"],
    );
}

#[test]
fn a_delete_keys_file_listing_a_key_twice_is_refused_naming_the_key() {
    let dir = Dir::with_people();
    dir.write("gone.csv", "id\n2\n2\n");
    let stderr = dir
        .strata(&["delete", "people", "--keys", "gone.csv"])
        .fails();
    assert_mentions(&stderr, &["gone.csv", "duplicate primary key", "id=2"]);
    assert_eq!(dir.export_csv("people", None), PEOPLE_CSV);
}

#[test]
fn delete_reads_its_keys_from_standard_input_given_their_format() {
    let dir = Dir::with_people();
    let out = dir
        .strata_stdin(
            &["delete", "people", "--keys", "-", "--format", "csv"],
            b"id\n2\n9\n",
        )
        .ok();
    assert_eq!(
        out.stdout,
        "Deleted 1 row from 'people'; 2 rows left (1 key matched no row)\n"
    );
    assert_eq!(
        dir.export_csv("people", None),
        "id,name,score\n1,ann,1.5\n3,cy,3.0\n"
    );
    // Nothing is left in the repository's tmp folder.
    let tmp = dir.join(".strata/tmp");
    assert!(
        !tmp.exists() || std::fs::read_dir(&tmp).expect("tmp").next().is_none(),
        "tmp is not empty"
    );
    // Without --format: a usage error that reads nothing.
    let err = dir.refused_usage(&["delete", "people", "--keys", "-"]);
    assert_mentions(&err, &["--format"]);
    // Bad keys from standard input are named as such.
    let before = dir.snapshot();
    let stderr = dir
        .strata_stdin(
            &["delete", "people", "--keys", "-", "--format", "csv"],
            b"id,name\n1,ann\n",
        )
        .fails();
    assert_mentions(
        &stderr,
        &["standard input", "column 'name' is not a key column"],
    );
    before.assert_same(&dir.snapshot(), "a refused delete");
}

#[test]
fn a_delete_keys_file_with_other_columns_is_refused_and_changes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["delete", "people", "--keys", "people.csv"]);
    assert_mentions(
        &line,
        &[
            "people.csv",
            "column 'name' is not a key column",
            "the keys must be given as exactly the key columns (id)",
        ],
    );
}
