//! S3 remotes through the binary, configured only by environment variables, against the real
//! servers the test command starts (radosgw; LocalStack does not check credentials). Without
//! a server these tests fail and say how to start one.

use std::process::Command;

use crate::harness::{Dir, Output};

fn radosgw() -> String {
    std::env::var("STRATA_RADOSGW_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "STRATA_RADOSGW_ENDPOINT is not set: the S3 tests need the local S3 servers. Run ./test.sh, \
             which starts them, or: bash localstack/all.sh start && eval \"$(bash localstack/all.sh env)\""
        )
    })
}

fn bucket() -> String {
    std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into())
}

fn unique_url(name: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "s3://{}/e2e/{name}-{nanos:x}-{:x}",
        bucket(),
        std::process::id()
    )
}

const SECRET: &str = "stratasecret";

/// `strata` with only the standard AWS environment variables for configuration.
fn s3_cmd(dir: &Dir, args: &[&str], endpoint: &str, key: &str, secret: &str) -> Output {
    let mut cmd: Command = dir.command(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("HOME", dir.path());
    let out = cmd.output().expect("the strata binary should start");
    Output::of(format!("strata {}", args.join(" ")), out)
}

fn s3(dir: &Dir, args: &[&str]) -> Output {
    s3_cmd(dir, args, &radosgw(), "strata", SECRET)
}

#[test]
fn a_push_to_s3_from_one_clone_is_pulled_into_another_with_only_environment_variables() {
    let url = unique_url("story");
    let first = Dir::with_people();
    s3(&first, &["remote", "add", "origin", &url]).ok();
    s3(&first, &["push", "--create", "-u", "origin", "main"]).ok();
    let second = Dir::empty();
    s3(&second, &["clone", &url, "copy"]).ok();
    let copy = second.join("copy");
    assert_eq!(
        crate::harness::run_in(&copy, &["export", "people", "-"])
            .ok()
            .stdout,
        first.export_csv("people", None)
    );
    std::fs::write(copy.join("more.csv"), "id,name,score\n100,zed,4.5\n").expect("write");
    crate::harness::run_in(&copy, &["import", "people", "more.csv", "--mode", "upsert"]).ok();
    crate::harness::run_in(&copy, &["commit", "-m", "add zed"]).ok();
    let mut cmd = crate::harness::strata_command(&copy, &["push"]);
    cmd.env("AWS_ENDPOINT_URL", radosgw())
        .env("AWS_ACCESS_KEY_ID", "strata")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_ALLOW_HTTP", "true");
    assert!(
        cmd.status().expect("push runs").success(),
        "push from the clone"
    );
    s3(&first, &["pull"]).ok();
    assert!(first.export_csv("people", None).contains("100,zed,4.5"));
    s3(&first, &["fsck", "--remote", "origin"]).ok();
}

#[test]
fn a_wrong_secret_is_refused_in_one_line_and_changes_nothing() {
    let dir = Dir::with_people();
    let url = unique_url("badkey");
    s3(&dir, &["remote", "add", "origin", &url]).ok();
    let before = dir.snapshot();
    let err = s3_cmd(
        &dir,
        &["push", "origin", "main"],
        &radosgw(),
        "strata",
        "wrong-secret",
    )
    .fails_with_one_line();
    assert!(err.contains("credentials were refused"), "{err}");
    assert!(
        !err.contains("wrong-secret") && !err.contains(SECRET),
        "the secret leaked: {err}"
    );
    before.assert_same(&dir.snapshot(), "a refused push");
}

#[test]
fn a_missing_bucket_is_named_in_one_line() {
    let dir = Dir::with_people();
    let err = s3(
        &dir,
        &[
            "remote",
            "add",
            "origin",
            "s3://no-such-bucket-strata-e2e/p",
        ],
    )
    .fails_with_one_line();
    assert!(err.contains("bucket does not exist"), "{err}");
}

#[test]
fn an_unreachable_endpoint_is_named_in_one_line() {
    let dir = Dir::with_people();
    let url = unique_url("unreachable");
    let err = s3_cmd(
        &dir,
        &["remote", "add", "origin", &url],
        "http://127.0.0.1:9",
        "strata",
        SECRET,
    )
    .fails_with_one_line();
    assert!(err.contains("cannot reach the storage endpoint"), "{err}");
}

#[test]
fn an_unknown_host_is_named_in_one_line() {
    let dir = Dir::with_people();
    let url = unique_url("unknownhost");
    let err = s3_cmd(
        &dir,
        &["remote", "add", "origin", &url],
        "http://no-such-host.invalid:7480",
        "strata",
        SECRET,
    )
    .fails_with_one_line();
    assert!(
        err.contains("unknown host") || err.contains("cannot reach the storage endpoint"),
        "{err}"
    );
}

#[test]
fn credentials_without_permission_on_the_bucket_are_denied_in_one_line() {
    let dir = Dir::with_people();
    let url = unique_url("denied");
    let err = s3_cmd(
        &dir,
        &["remote", "add", "origin", &url],
        &radosgw(),
        "outsider",
        "outsidersecret",
    )
    .fails_with_one_line();
    assert!(err.contains("permission denied"), "{err}");
    assert!(!err.contains("outsidersecret"), "the secret leaked: {err}");
}

#[test]
fn a_prefix_that_holds_something_else_is_not_taken_for_a_repository() {
    let dir = Dir::with_people();
    let url = unique_url("foreign");
    s3(&dir, &["remote", "add", "origin", &url]).ok();
    s3(&dir, &["push", "--create", "origin", "main"]).ok();
    // The chunks folder holds objects but no repository marker.
    let elsewhere = Dir::empty();
    let err = s3(&elsewhere, &["clone", &format!("{url}/chunks"), "c"]).fails_with_one_line();
    assert!(err.contains("not a strata repository"), "{err}");
    assert!(
        !elsewhere.join("c").exists(),
        "a failed clone leaves nothing behind"
    );
}

#[test]
fn credentials_never_appear_in_urls_config_or_output() {
    let dir = Dir::with_people();
    let err = s3(
        &dir,
        &["remote", "add", "o", "s3://AKIDEXAMPLE:topsecret@bucket/p"],
    )
    .fails_with_one_line();
    assert!(err.contains("credentials do not belong in a URL"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
    let err = s3(
        &dir,
        &[
            "remote",
            "add",
            "o",
            "s3://b/p",
            "--option",
            "secret_access_key=topsecret",
        ],
    )
    .fails_with_one_line();
    assert!(!err.contains("topsecret"), "{err}");
    let url = unique_url("secrets");
    s3(&dir, &["remote", "add", "origin", &url]).ok();
    let verbose = s3(&dir, &["-vv", "push", "--create", "origin", "main"]).ok();
    let shown = s3(&dir, &["remote", "show", "origin", "--json"]).ok();
    for text in [&verbose.stdout, &verbose.stderr, &shown.stdout] {
        assert!(!text.contains(SECRET), "the secret appeared in output");
    }
    let config = dir.read_string(".strata/local/remotes.json");
    assert!(!config.contains(SECRET), "the secret was stored: {config}");
}

/// An AWS profile whose credentials come from a `credential_process` (as SSO and assumed-role
/// profiles do, through `aws configure export-credentials`) is used as the AWS tools use it:
/// nothing secret in the environment, in the remote's options or in the output.
#[test]
fn a_profile_with_a_credential_process_pushes_and_clones() {
    let dir = Dir::with_people();
    let url = unique_url("process");
    let aws = dir.join(".aws");
    std::fs::create_dir_all(&aws).expect("mkdir");
    let script = dir.write(
        "creds.sh",
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"strata\", \"SecretAccessKey\": \"{SECRET}\", \"Expiration\": \"2999-01-01T00:00:00Z\"}}'\n"
        ),
    );
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile team]\nregion = us-east-1\nendpoint_url = {}\ncredential_process = sh {}\n",
            radosgw(),
            script.display()
        ),
    )
    .expect("config");
    let run = |d: &Dir, args: &[&str]| {
        let mut cmd: Command = d.command(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_PROFILE", "team")
            .env("AWS_CONFIG_FILE", aws.join("config"))
            .env("AWS_ALLOW_HTTP", "true")
            .env("HOME", dir.path());
        let out = cmd.output().expect("strata starts");
        Output::of(format!("strata {}", args.join(" ")), out)
    };
    run(&dir, &["remote", "add", "origin", &url]).ok();
    let pushed = run(&dir, &["push", "--create", "-u", "origin", "main"]).ok();
    assert!(!pushed.stderr.contains(SECRET), "{pushed:?}");
    let other = Dir::empty();
    run(&other, &["clone", &url, "copy"]).ok();
    let config = std::fs::read_to_string(dir.join(".strata/local/remotes.json")).expect("config");
    assert!(!config.contains(SECRET), "{config}");
    // A process that fails is named in the error, with what it printed.
    std::fs::write(&script, "#!/bin/sh\necho 'token expired' >&2\nexit 3\n").expect("write");
    let other = Dir::empty();
    let line = run(&other, &["clone", &url, "copy2"]).fails_with_one_line();
    crate::harness::assert_mentions(&line, &["credential_process", "token expired"]);
}
