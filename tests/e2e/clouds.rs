//! Google Cloud Storage and Azure Blob Storage remotes through the binary, against the
//! emulators the test command starts (fake-gcs-server and Azurite), configured as users of
//! those clouds configure them: each cloud's standard environment variables, or per-remote
//! options for the endpoint. Without a server these tests fail and say how to start one.

use std::process::Command;

use crate::backends::{Backend, AZURITE_ACCOUNT, AZURITE_KEY};
use crate::harness::{run_in, Dir, Output};

/// A repository published to `backend`, cloned into a second folder, changed there and pushed
/// back, then pulled into the first; both remote checks (fsck, gc) pass on the remote.
fn push_clone_pull(backend: Backend) {
    let remote = backend.remote("story");
    let first = Dir::with_people();
    backend
        .run(&first, &["remote", "add", "origin", &remote.url])
        .ok();
    backend
        .run(&first, &["push", "--create", "-u", "origin", "main"])
        .ok();
    let second = Dir::empty();
    backend.run(&second, &["clone", &remote.url, "copy"]).ok();
    let copy = second.join("copy");
    assert_eq!(
        run_in(&copy, &["export", "people", "-"]).ok().stdout,
        first.export_csv("people", None),
        "the clone from {} holds the table",
        backend.name()
    );
    std::fs::write(copy.join("more.csv"), "id,name,score\n100,zed,4.5\n").expect("write");
    run_in(&copy, &["import", "people", "more.csv", "--mode", "upsert"]).ok();
    run_in(&copy, &["commit", "-m", "add zed"]).ok();
    let mut push = crate::harness::strata_command(&copy, &["push"]);
    backend.apply(&mut push);
    let pushed = push.output().expect("push runs");
    assert!(
        pushed.status.success(),
        "push from the clone to {}: {}",
        backend.name(),
        String::from_utf8_lossy(&pushed.stderr)
    );
    backend.run(&first, &["pull"]).ok();
    assert!(first.export_csv("people", None).contains("100,zed,4.5"));
    backend.run(&first, &["fsck", "--remote", "origin"]).ok();
    backend
        .run(&first, &["gc", "--remote", "origin", "--json"])
        .ok();
    backend.run(&first, &["fsck", "--remote", "origin"]).ok();
}

#[test]
fn a_push_to_azure_from_one_clone_is_pulled_into_another_with_only_environment_variables() {
    push_clone_pull(Backend::Azurite);
}

#[test]
fn a_push_to_gcs_from_one_clone_is_pulled_into_another_with_only_environment_variables() {
    push_clone_pull(Backend::Gcs);
}

/// `strata` with nothing of any cloud's environment, but `vars`.
fn bare(dir: &Dir, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd: Command = dir.command(args);
    for (k, _) in std::env::vars() {
        if [
            "AWS_",
            "AZURE_",
            "AZURITE_",
            "GOOGLE_",
            "STORAGE_EMULATOR_HOST",
        ]
        .iter()
        .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied()).env("HOME", dir.path());
    let out = cmd.output().expect("the strata binary should start");
    Output::of(format!("strata {}", args.join(" ")), out)
}

/// The endpoint of the Azure emulator's account, as a real account's URL would be given.
fn azure_account_url() -> String {
    let endpoint = Backend::Azurite.endpoint().expect("an endpoint");
    format!("{}/{AZURITE_ACCOUNT}", endpoint.trim_end_matches('/'))
}

const AZURE_KEYS: [(&str, &str); 2] = [
    ("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT),
    ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY),
];

/// Adds a remote at `url` with `options` (KEY=VALUE), pushes to it (verbosely), clones it
/// with the same options into another folder and checks the clone holds the table; `vars`
/// is all the environment each command gets. Returns the repository and the push's output.
fn push_and_clone_with_options(
    url: &str,
    options: &[&str],
    vars: &[(&str, &str)],
) -> (Dir, Output) {
    let opts: Vec<&str> = options.iter().flat_map(|o| ["--option", *o]).collect();
    let dir = Dir::with_people();
    let mut add = vec!["remote", "add", "origin", url];
    add.extend(&opts);
    bare(&dir, &add, vars).ok();
    let pushed = bare(&dir, &["-vv", "push", "--create", "origin", "main"], vars).ok();
    let other = Dir::empty();
    let mut clone = vec!["clone", url, "copy"];
    clone.extend(&opts);
    bare(&other, &clone, vars).ok();
    assert_eq!(
        run_in(&other.join("copy"), &["export", "people", "-"])
            .ok()
            .stdout,
        dir.export_csv("people", None)
    );
    (dir, pushed)
}

#[test]
fn an_azure_endpoint_given_as_a_remote_option_is_stored_and_the_key_is_not() {
    let url = Backend::Azurite.remote("options").url;
    let endpoint = format!("endpoint={}", azure_account_url());
    let (dir, verbose) =
        push_and_clone_with_options(&url, &[&endpoint, "allow_http=true"], &AZURE_KEYS);
    let shown = bare(&dir, &["remote", "show", "origin", "--json"], &AZURE_KEYS).ok();
    for text in [&verbose.stdout, &verbose.stderr, &shown.stdout] {
        assert!(!text.contains(AZURITE_KEY), "the key appeared in output");
    }
    let config = dir.read_string(".strata/local/remotes.json");
    assert!(config.contains(&azure_account_url()), "{config}");
    assert!(
        !config.contains(AZURITE_KEY),
        "the key was stored: {config}"
    );
}

#[test]
fn a_gcs_endpoint_given_as_a_remote_option_needs_no_environment() {
    let url = Backend::Gcs.remote("options").url;
    let endpoint = format!("endpoint={}", Backend::Gcs.endpoint().expect("an endpoint"));
    push_and_clone_with_options(&url, &[&endpoint, "skip_signature=true"], &[]);
}

#[test]
fn a_wrong_azure_key_is_refused_in_one_line_and_changes_nothing() {
    let dir = Dir::with_people();
    let url = Backend::Azurite.remote("badkey").url;
    Backend::Azurite
        .run(&dir, &["remote", "add", "origin", &url])
        .ok();
    let before = dir.snapshot();
    // A well-formed key (base64) that is not the account's.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let err = bare(
        &dir,
        &["push", "origin", "main"],
        &[
            ("AZURE_STORAGE_USE_EMULATOR", "true"),
            (
                "AZURITE_BLOB_STORAGE_URL",
                &Backend::Azurite.endpoint().expect("an endpoint"),
            ),
            ("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT),
            ("AZURE_STORAGE_ACCOUNT_KEY", wrong),
        ],
    )
    .fails_with_one_line();
    assert!(err.contains("credentials were refused"), "{err}");
    assert!(err.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{err}");
    assert!(!err.contains(wrong), "the key leaked: {err}");
    before.assert_same(&dir.snapshot(), "a refused push");
}

#[test]
fn a_missing_container_or_bucket_is_named_in_one_line() {
    let dir = Dir::with_people();
    let err = Backend::Azurite
        .run(
            &dir,
            &["remote", "add", "origin", "az://no-such-container-e2e/p"],
        )
        .fails_with_one_line();
    assert!(err.contains("container does not exist"), "{err}");
    let err = Backend::Gcs
        .run(
            &dir,
            &["remote", "add", "origin", "gs://no-such-bucket-e2e/p"],
        )
        .fails_with_one_line();
    assert!(err.contains("bucket does not exist"), "{err}");
}

/// A URL that names no bucket, or an Azure URL with no account anywhere (no variable, no
/// option), is refused in one line that says what to give; nothing is configured.
#[test]
fn a_cloud_url_missing_its_bucket_or_account_says_what_to_give() {
    let dir = Dir::with_people();
    let before = dir.snapshot();
    for (url, wanted) in [
        ("s3:///p", "use s3://bucket/prefix"),
        ("gs:///p", "use gs://bucket/prefix"),
        ("az:///p", "use az://container/prefix"),
        (
            "az://container/p",
            "set AZURE_STORAGE_ACCOUNT_NAME, or give -o account_name=NAME",
        ),
    ] {
        let out = bare(&dir, &["remote", "add", "origin", url], &[]);
        let err = out.fails_with_one_line();
        assert!(err.contains(wanted), "{url}: {err}");
    }
    before.assert_same(&dir.snapshot(), "refused URLs");
}

#[test]
fn secret_options_of_either_cloud_are_refused_and_never_shown() {
    let dir = Dir::with_people();
    let before = dir.snapshot();
    for (url, option) in [
        ("az://c/p", "account_key=topsecret"),
        ("az://c/p", "azure_storage_sas_key=topsecret"),
        ("az://c/p", "client_secret=topsecret"),
        ("gs://b/p", "service_account_key=topsecret"),
        ("gs://b/p", "bearer_token=topsecret"),
    ] {
        let err =
            bare(&dir, &["remote", "add", "o", url, "--option", option], &[]).fails_with_one_line();
        assert!(err.contains("is a secret"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }
    before.assert_same(&dir.snapshot(), "refused options");
}

/// One history moved S3 → Azure → GCS by clone and push: every copy has the same commit ids
/// and the same rows, and each remote passes fsck.
#[test]
fn a_repository_cloned_from_one_cloud_to_another_keeps_its_ids_and_tables() {
    let all = [Backend::Radosgw, Backend::Azurite, Backend::Gcs];
    let with_all = |cmd: &mut Command| {
        for b in all {
            b.apply(cmd);
        }
    };
    let run = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = crate::harness::strata_command(dir, args);
        with_all(&mut cmd);
        let out = cmd.output().expect("the strata binary should start");
        Output::of(format!("strata {}", args.join(" ")), out).ok()
    };
    let origin = Dir::with_people();
    origin.strata(&["branch", "side"]).ok();
    origin.strata(&["tag", "v1"]).ok();
    let ids = |dir: &std::path::Path| {
        ["main", "side", "v1"].map(|rev| {
            run_in(dir, &["show", rev, "--json"])
                .ok()
                .json()
                .get("id")
                .cloned()
        })
    };
    let mut from = origin.path().to_path_buf();
    let holder = Dir::empty();
    for (i, backend) in all.into_iter().enumerate() {
        let remote = backend.remote("across");
        run(&from, &["remote", "add", "next", &remote.url]);
        run(
            &from,
            &["push", "--create", "--tags", "next", "main", "side"],
        );
        run(&from, &["fsck", "--remote", "next"]);
        let name = format!("copy{i}");
        run(holder.path(), &["clone", &remote.url, &name]);
        let copy = holder.join(&name);
        run_in(&copy, &["branch", "side", "origin/side"]).ok();
        assert_eq!(
            ids(&copy),
            ids(origin.path()),
            "the clone from {} has main, side and v1 at the same commits",
            backend.name()
        );
        for rev in ["main", "side", "v1"] {
            assert_eq!(
                run_in(&copy, &["export", "people", "-", "--rev", rev])
                    .ok()
                    .stdout,
                origin.export_csv("people", Some(rev)),
                "{rev} of the clone from {}",
                backend.name()
            );
        }
        from = copy;
    }
}
