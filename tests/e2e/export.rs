//! Exporting tables to files and to standard output.

use serde_json::json;

use crate::harness::*;

#[test]
fn export_to_a_csv_file_writes_the_rows_and_reports_on_stderr() {
    let dir = Dir::with_people();
    let out = dir.strata(&["export", "people", "out.csv"]).ok();
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr, "Exported 3 rows of 'people' to out.csv\n");
    assert_eq!(dir.read_string("out.csv"), PEOPLE_CSV);
}

#[test]
fn export_to_json_lines_writes_one_object_per_row() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "out.jsonl"]).ok();
    let rows: Vec<serde_json::Value> = dir
        .read_string("out.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        rows,
        [
            json!({"id": 1, "name": "ann", "score": 1.5}),
            json!({"id": 2, "name": "bob", "score": 2.5}),
            json!({"id": 3, "name": "cy", "score": 3.0}),
        ]
    );
}

#[test]
fn export_to_parquet_writes_a_parquet_file_that_imports_back() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "out.parquet"]).ok();
    let bytes = dir.read("out.parquet");
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    dir.strata(&["import", "back", "out.parquet", "-k", "id"])
        .ok();
    assert_eq!(dir.export_csv("back", None), PEOPLE_CSV);
}

#[test]
fn export_to_arrow_writes_an_arrow_ipc_file() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "out.arrow"]).ok();
    let bytes = dir.read("out.arrow");
    assert!(
        bytes.starts_with(b"ARROW1") && bytes.ends_with(b"ARROW1"),
        "not an Arrow IPC file: {:?}",
        &bytes[..bytes.len().min(16)]
    );
}

#[test]
fn the_format_flag_overrides_the_extension() {
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "out.data", "--format", "jsonl"])
        .ok();
    assert_eq!(dir.read_string("out.data").lines().count(), 3);
    assert!(dir.read_string("out.data").starts_with("{\"id\":1,"));
    dir.strata(&["export", "people", "out.csv", "--format", "parquet"])
        .ok();
    assert!(dir.read("out.csv").starts_with(b"PAR1"));
}

#[test]
fn export_to_dash_writes_csv_to_stdout_and_nothing_else() {
    let dir = Dir::with_people();
    let out = dir.strata(&["export", "people", "-"]).ok();
    assert_eq!(out.stdout, PEOPLE_CSV);
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("the folder is readable")
            .count(),
        2,
        "only .strata and people.csv should be in the folder"
    );
}

#[test]
fn export_to_dash_honours_the_format_flag() {
    let dir = Dir::with_people();
    let jsonl = dir
        .strata(&["export", "people", "-", "--format", "jsonl"])
        .ok();
    assert_eq!(jsonl.json_lines().len(), 3);
    let parquet = dir
        .strata(&["export", "people", "-", "--format", "parquet"])
        .ok();
    assert!(parquet.stdout_bytes.starts_with(b"PAR1"));
    assert!(parquet.stdout_bytes.ends_with(b"PAR1"));
    let arrow = dir
        .strata(&["export", "people", "-", "--format", "arrow"])
        .ok();
    assert!(arrow.stdout_bytes.starts_with(b"ARROW1"));
}

#[test]
fn export_overwrites_an_existing_file() {
    let dir = Dir::with_people();
    dir.write(
        "out.csv",
        "old contents that are longer than the export itself\n".repeat(10),
    );
    dir.strata(&["export", "people", "out.csv"]).ok();
    assert_eq!(dir.read_string("out.csv"), PEOPLE_CSV);
}

#[test]
fn export_of_an_empty_table_writes_just_the_header() {
    let dir = Dir::repo();
    dir.write("empty.csv", "id,name\n");
    dir.strata(&["import", "nobody", "empty.csv", "-k", "id"])
        .ok();
    dir.strata(&["export", "nobody", "out.parquet"]).ok();
    dir.strata(&["import", "again", "out.parquet", "-k", "id"])
        .ok();
    let list = dir.strata(&["table", "list", "--json"]).ok().json_lines();
    assert!(list.iter().all(|t| t["rows"] == 0), "{list:?}");
}

#[test]
fn exported_files_get_the_same_permissions_as_other_new_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::with_people();
    dir.strata(&["export", "people", "out.csv"]).ok();
    let reference = dir.write("reference.txt", "x");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .expect("the file exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        format!("{:o}", mode(&dir.join("out.csv"))),
        format!("{:o}", mode(&reference)),
        "an exported file should be as readable as any file the user creates"
    );
}

#[test]
fn export_with_no_format_and_an_unknown_extension_is_refused_and_writes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["export", "people", "out.data"]);
    assert_mentions(&line, &["out.data", "--format"]);
    assert!(!dir.join("out.data").exists());
}

#[test]
fn export_with_an_unknown_format_is_refused() {
    let dir = Dir::with_people();
    let line = dir.refused_usage(&["export", "people", "out.csv", "--format", "xlsx"]);
    assert_mentions(&line, &["unknown format 'xlsx'"]);
    assert!(!dir.join("out.csv").exists());
}

#[test]
fn a_row_group_size_is_refused_for_csv_and_when_zero_and_writes_nothing() {
    let dir = Dir::with_people();
    let line = dir.refused(&["export", "people", "out.csv", "--row-group-rows", "100"]);
    assert_mentions(
        &line,
        &[
            "--row-group-rows",
            "'out.csv' is written as csv",
            "--format parquet",
        ],
    );
    assert!(!dir.join("out.csv").exists());
    let line = dir.refused(&["export", "people", "-", "--row-group-rows", "100"]);
    assert_mentions(&line, &["standard output is written as csv"]);
    dir.refused_usage(&["export", "people", "out.parquet", "--row-group-rows", "0"]);
    assert!(!dir.join("out.parquet").exists());
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes), &mut text)
        .expect("a whole gzip stream of UTF-8");
    text
}

fn unzstd(bytes: &[u8]) -> String {
    String::from_utf8(zstd::decode_all(bytes).expect("a whole zstd stream")).expect("UTF-8")
}

#[test]
fn a_tsv_gz_or_zst_name_writes_tabs_and_compresses_as_it_says_and_imports_back() {
    let dir = Dir::with_people();
    let tabs = PEOPLE_CSV.replace(',', "\t");
    for (i, (name, read, expected)) in [
        ("out.tsv", None, tabs.clone()),
        (
            "out.csv.gz",
            Some(gunzip as fn(&[u8]) -> String),
            PEOPLE_CSV.to_string(),
        ),
        ("out.TSV.gz", Some(gunzip), tabs.clone()),
        ("out.csv.zst", Some(unzstd), PEOPLE_CSV.to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.strata(&["export", "people", name]).ok();
        assert_eq!(
            out.stderr,
            format!("Exported 3 rows of 'people' to {name}\n")
        );
        let bytes = dir.read(name);
        let text = match read {
            Some(read) => read(&bytes),
            None => String::from_utf8(bytes).expect("UTF-8"),
        };
        assert_eq!(text, expected, "{name}");
        // The import reads each back the same way, by its name.
        let table = format!("back{i}");
        dir.strata(&["import", &table, name, "-k", "id"]).ok();
        assert_eq!(dir.export_csv(&table, None), PEOPLE_CSV, "{name}");
    }
    dir.strata(&["export", "people", "out.jsonl.zst"]).ok();
    let lines = unzstd(&dir.read("out.jsonl.zst"));
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.starts_with("{\"id\":1,"), "{lines}");
}

#[test]
fn a_compressed_export_of_many_batches_or_of_none_is_one_stream_a_reader_reads_whole() {
    let dir = Dir::repo();
    let mut csv = String::from("id,v\n");
    let mut keys = String::from("id\n");
    for i in 0..100_000 {
        csv.push_str(&format!("{i},value {i}\n"));
        keys.push_str(&format!("{i}\n"));
    }
    dir.strata_stdin(
        &["import", "big", "-", "--format", "csv", "-k", "id"],
        csv.as_bytes(),
    )
    .ok();
    // The chunks' batches become frames of their own, one after the other; for gzip, deflate
    // blocks of their own in one member, whose length and CRC-32 the decoder checks.
    dir.strata(&["export", "big", "big.csv.zst"]).ok();
    assert_eq!(unzstd(&dir.read("big.csv.zst")), csv);
    dir.strata(&["export", "big", "big.csv.gz"]).ok();
    // `gunzip` reads one member (a `GzDecoder`, not a `MultiGzDecoder`): the whole text.
    assert_eq!(gunzip(&dir.read("big.csv.gz")), csv);
    // An empty table: the header alone, and for JSON Lines an empty stream, each still a
    // whole zstd (or gzip) stream.
    dir.strata_stdin(
        &["delete", "big", "--keys", "-", "--format", "csv"],
        keys.as_bytes(),
    )
    .ok();
    dir.strata(&["export", "big", "none.csv.zst"]).ok();
    assert_eq!(unzstd(&dir.read("none.csv.zst")), "id,v\n");
    dir.strata(&["export", "big", "none.jsonl.zst"]).ok();
    assert_eq!(unzstd(&dir.read("none.jsonl.zst")), "");
    dir.strata(&["export", "big", "none.jsonl.gz"]).ok();
    assert_eq!(gunzip(&dir.read("none.jsonl.gz")), "");
}

#[test]
fn the_delimiter_and_compression_flags_override_the_name_and_reach_standard_output() {
    let dir = Dir::with_people();
    let out = dir
        .strata(&[
            "export",
            "people",
            "-",
            "--delimiter",
            ";",
            "--compression",
            "gzip",
        ])
        .ok();
    assert_eq!(gunzip(&out.stdout_bytes), PEOPLE_CSV.replace(',', ";"));
    // A value holding the delimiter is quoted.
    dir.strata_stdin(
        &["import", "notes", "-", "--format", "csv", "-k", "id"],
        b"id,note\n1,\"a;b\"\n2,\"c,d\"\n",
    )
    .ok();
    let out = dir
        .strata(&[
            "export",
            "notes",
            "-",
            "--format",
            "csv",
            "--delimiter",
            ";",
        ])
        .ok();
    assert_eq!(out.stdout, "id;note\n1;\"a;b\"\n2;c,d\n");
    // A flag wins over what the name says; `none` writes the text as it is.
    dir.strata(&[
        "export",
        "people",
        "plain.csv.gz",
        "--compression",
        "none",
        "--delimiter",
        "tab",
    ])
    .ok();
    assert_eq!(
        dir.read_string("plain.csv.gz"),
        PEOPLE_CSV.replace(',', "\t")
    );
}

#[test]
fn a_delimiter_or_compression_for_a_format_without_one_is_refused_and_writes_nothing() {
    let dir = Dir::with_people();
    for (args, words) in [
        (
            &["export", "people", "out.parquet.gz"][..],
            &[
                "'out.parquet.gz' would be compressed",
                "parquet",
                "csv or jsonl",
            ][..],
        ),
        (
            &["export", "people", "out.arrow", "--compression", "zstd"],
            &["'out.arrow' would be compressed", "arrow"],
        ),
        (
            &["export", "people", "out.jsonl", "--delimiter", ";"],
            &[
                "--delimiter applies to CSV",
                "'out.jsonl' is written as jsonl",
            ],
        ),
    ] {
        let line = dir.refused(args);
        assert_mentions(&line, words);
        assert!(!dir.join(args[2]).exists(), "{}", args[2]);
    }
    dir.refused_usage(&["export", "people", "out.csv", "--delimiter", "\""]);
    dir.refused_usage(&["export", "people", "out.csv", "--compression", "lzma"]);
    assert!(!dir.join("out.csv").exists());
}

#[test]
fn export_into_a_missing_folder_is_refused_and_names_it() {
    let dir = Dir::with_people();
    let line = dir.refused(&["export", "people", "no/such/dir/out.csv"]);
    assert_mentions(&line, &["no/such/dir"]);
}

#[test]
fn export_into_a_folder_says_it_is_a_folder() {
    let dir = Dir::with_people();
    std::fs::create_dir(dir.join("out")).expect("mkdir");
    let line = dir.refused(&["export", "people", "out"]);
    assert_mentions(&line, &["'out' is a folder", "people.parquet"]);
}
