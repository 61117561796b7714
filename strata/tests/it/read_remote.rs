//! A remote read in place: every revision reads as it does in a clone, the remote's refs are
//! read afresh on every call, nothing is written to the remote, and bad input is refused with
//! the remote unchanged.

use std::collections::BTreeMap;

use crate::common::*;
use futures::TryStreamExt;
use strata::{
    CloneOptions, ErrorKind, ExportFormat, KeyRange, KeyValue, LogOptions, NoProgress, PushOptions,
    RemoteRepository, Repository, ScanOptions, WriteMode,
};

fn at(rev: Option<&str>) -> ScanOptions {
    ScanOptions {
        rev: rev.map(str::to_string),
        ..Default::default()
    }
}

async fn remote_rows(
    remote: &RemoteRepository,
    table: &str,
    opts: &ScanOptions,
) -> Vec<serde_json::Value> {
    let scan = remote.scan(table, opts).await.expect("remote scan");
    let batches: Vec<_> = scan.try_collect().await.expect("remote batches");
    rows_of(&batches)
}

/// A repository with two commits on main (the first tagged v1) and a branch `dev`, all
/// pushed to a folder remote. Returns it with the remote's URL.
async fn pushed(root: &std::path::Path) -> (TestRepo, String) {
    let a = TestRepo::with_people().await;
    a.create_tag("v1", None).await.expect("tag");
    a.upsert("people", "id,name,score\n2,bob,9.0\n4,dee,4.0\n")
        .await;
    a.commit_changes("second").await;
    a.create_branch("dev", None).await.expect("branch");
    a.switch_to("dev").await;
    a.delete_keys("people", "id\n1\n").await;
    a.commit_changes("on dev").await;
    a.switch_to("main").await;
    let url = a
        .add_remote(
            "origin",
            root.join("remote").to_str().expect("utf-8"),
            &BTreeMap::new(),
        )
        .await
        .expect("remote add")
        .url;
    let push = PushOptions {
        create: true,
        all: true,
        tags: true,
        ..Default::default()
    };
    a.push(&push, &NoProgress).await.expect("push");
    (a, url)
}

#[tokio::test]
async fn every_revision_of_a_remote_reads_as_it_does_locally() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, url) = pushed(root.path()).await;
    let remote = RemoteRepository::open(&url, &BTreeMap::new())
        .await
        .expect("open the remote");
    assert_eq!(remote.url(), url);
    let names = |refs: Vec<strata::RemoteRef>| -> Vec<(String, strata::ObjectId)> {
        refs.into_iter().map(|r| (r.name, r.commit)).collect()
    };
    assert_eq!(
        names(remote.branches().await.expect("branches")),
        vec![
            ("dev".into(), a.id("dev").await),
            ("main".into(), a.id("main").await)
        ]
    );
    assert_eq!(
        names(remote.tags().await.expect("tags")),
        vec![("v1".into(), a.id("v1").await)]
    );

    let main = a.id("main").await.to_hex();
    for (rev, local) in [
        (None, "main".to_string()),
        (Some("main".to_string()), "main".into()),
        (Some("dev".into()), "dev".into()),
        (Some("v1".into()), "v1".into()),
        (Some("main~1".into()), "main~1".into()),
        (Some("dev^".into()), "dev^".into()),
        (Some(main[..8].to_string()), main.clone()),
        (Some(main.to_uppercase()), main.clone()),
    ] {
        let rows = remote_rows(&remote, "people", &at(rev.as_deref())).await;
        assert_eq!(
            rows,
            a.rows("people", Some(&local)).await,
            "revision {rev:?}"
        );
        let info = remote.table("people", rev.as_deref()).await.expect("table");
        assert_eq!(
            info,
            a.table("people", Some(&local)).await.expect("local table")
        );
        assert_eq!(
            remote.resolve(rev.as_deref()).await.expect("resolve"),
            a.id(&local).await
        );
    }
    let tables = remote.tables(Some("v1")).await.expect("tables");
    assert_eq!(tables, a.tables(Some("v1")).await.expect("local tables"));

    // Columns and key ranges as in a local scan.
    let opts = ScanOptions {
        rev: Some("main".into()),
        columns: Some(vec!["score".into(), "id".into()]),
        ranges: vec![KeyRange::half_open(KeyValue::Int(2), KeyValue::Int(4))],
    };
    let local = a.scan("people", &opts).await.expect("local scan");
    let local: Vec<_> = local.try_collect().await.expect("local batches");
    assert_eq!(remote_rows(&remote, "people", &opts).await, rows_of(&local));
    assert_eq!(
        remote_rows(&remote, "people", &opts).await,
        vec![
            serde_json::json!({"score": 9.0, "id": 2}),
            serde_json::json!({"score": 3.0, "id": 3})
        ]
    );

    // An export from the remote is the export of the same revision from the repository.
    for (rev, name) in [(Some("v1"), "v1"), (None, "main")] {
        let from_remote = root.path().join(format!("remote-{name}.parquet"));
        let from_local = root.path().join(format!("local-{name}.parquet"));
        let n = remote
            .export(
                "people",
                rev,
                Some(&from_remote),
                ExportFormat::Parquet,
                &NoProgress,
            )
            .await
            .expect("remote export");
        a.export(
            "people",
            Some(name),
            Some(&from_local),
            ExportFormat::Parquet,
            &NoProgress,
        )
        .await
        .expect("local export");
        assert_eq!(n, a.table("people", Some(name)).await.expect("table").rows);
        assert_eq!(
            std::fs::read(&from_remote).expect("read"),
            std::fs::read(&from_local).expect("read")
        );
    }
}

#[tokio::test]
async fn a_remote_read_in_place_sees_every_push_and_writes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, url) = pushed(root.path()).await;
    let remote = RemoteRepository::open(&url, &BTreeMap::new())
        .await
        .expect("open the remote");
    let folder = root.path().join("remote");
    let before = Snapshot::of(&folder);
    let first = remote_rows(&remote, "people", &at(None)).await;
    remote.tables(None).await.expect("tables");
    remote.branches().await.expect("branches");
    Snapshot::of(&folder).assert_same(&before, "the remote after reading it");

    // Another writer pushes: the same handle reads the new head at once.
    let (b, _) = Repository::clone(
        &url,
        &root.path().join("b"),
        &CloneOptions::default(),
        &NoProgress,
    )
    .await
    .expect("clone");
    let b = b.with_author(author()).with_commit_time(COMMIT_TIME);
    b.import_file(
        "people",
        &{
            let p = root.path().join("more.csv");
            std::fs::write(&p, "id,name,score\n5,eve,5.0\n").expect("write");
            p
        },
        None,
        &mode(WriteMode::Upsert),
        &NoProgress,
    )
    .await
    .expect("upsert");
    b.commit("from b", None).await.expect("commit");
    b.push(&PushOptions::default(), &NoProgress)
        .await
        .expect("push");
    let now = remote_rows(&remote, "people", &at(None)).await;
    assert_eq!(now.len(), first.len() + 1);
    let local: Vec<_> = b
        .scan("people", &at(Some("main")))
        .await
        .expect("scan")
        .try_collect()
        .await
        .expect("batches");
    assert_eq!(now, rows_of(&local));
    assert_eq!(
        remote.resolve(Some("main")).await.expect("resolve"),
        b.resolve("main").await.expect("resolve")
    );
    drop(a);
}

#[tokio::test]
async fn bad_input_to_a_remote_read_is_refused_and_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_a, url) = pushed(root.path()).await;
    let remote = RemoteRepository::open(&url, &BTreeMap::new())
        .await
        .expect("open the remote");
    let folder = root.path().join("remote");
    let before = Snapshot::of(&folder);

    let e = remote
        .scan("nope", &at(None))
        .await
        .expect_err("unknown table");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("nope"), "{e}");
    for rev in ["nosuch", "main~9", "abcdef12"] {
        let e = remote
            .table("people", Some(rev))
            .await
            .expect_err("unknown revision");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{rev}: {e}");
    }
    for rev in ["HEAD", "main@{1}"] {
        let e = remote
            .table("people", Some(rev))
            .await
            .expect_err("no HEAD");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{rev}: {e}");
        assert!(e.to_string().contains("branch, a tag or a commit"), "{e}");
    }
    let opts = ScanOptions {
        columns: Some(vec!["nope".into()]),
        ..Default::default()
    };
    let e = remote
        .scan("people", &opts)
        .await
        .expect_err("unknown column");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    Snapshot::of(&folder).assert_same(&before, "the remote after refused reads");

    // Not a repository: an empty folder, a missing one, a secret among the options.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let e = RemoteRepository::open(empty.to_str().expect("utf-8"), &BTreeMap::new())
        .await
        .expect_err("an empty folder");
    assert!(e.to_string().contains("empty"), "{e}");
    assert!(std::fs::read_dir(&empty)
        .expect("read_dir")
        .next()
        .is_none());
    let missing = root.path().join("missing");
    RemoteRepository::open(missing.to_str().expect("utf-8"), &BTreeMap::new())
        .await
        .expect_err("a missing folder");
    assert!(
        !missing.exists(),
        "opening a remote to read it must not create it"
    );
    let secret = BTreeMap::from([("secret_access_key".to_string(), "x".to_string())]);
    let e = RemoteRepository::open(&url, &secret)
        .await
        .expect_err("a secret");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn a_configured_remote_is_read_in_place_by_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, _) = pushed(root.path()).await;
    let remote = a.read_remote("origin").await.expect("read origin");
    assert_eq!(
        remote_rows(&remote, "people", &at(Some("v1"))).await,
        a.rows("people", Some("v1")).await
    );
    let e = a.read_remote("nope").await.expect_err("unknown remote");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

async fn changes(diff: strata::Diff) -> Vec<serde_json::Value> {
    let all: Vec<strata::Change> = diff.try_collect().await.expect("changes");
    all.iter().map(to_json).collect()
}

#[tokio::test]
async fn a_remote_diff_and_log_read_in_place_match_the_repository() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, url) = pushed(root.path()).await;
    let remote = RemoteRepository::open(&url, &BTreeMap::new())
        .await
        .expect("open the remote");
    let ids = |log: Vec<strata::CommitInfo>| -> Vec<strata::ObjectId> {
        log.into_iter().map(|c| c.id).collect()
    };
    for (opts, local) in [
        (LogOptions::default(), Some("main")),
        (
            LogOptions {
                rev: Some("dev".into()),
                ..Default::default()
            },
            Some("dev"),
        ),
        (
            LogOptions {
                all: true,
                ..Default::default()
            },
            None,
        ),
        (
            LogOptions {
                rev: Some("dev".into()),
                limit: Some(1),
                ..Default::default()
            },
            Some("dev"),
        ),
    ] {
        let mut local_opts = opts.clone();
        local_opts.rev = local.map(str::to_string);
        assert_eq!(
            ids(remote.log(&opts).await.expect("remote log")),
            ids(a.log_filtered(&local_opts).await.expect("local log")),
            "{opts:?}"
        );
    }
    let range = LogOptions {
        rev: Some("main..dev".into()),
        ..Default::default()
    };
    let e = remote.log(&range).await.expect_err("a range");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("clone"), "{e}");

    let labels = remote.ref_labels().await.expect("labels");
    assert_eq!(labels[&a.id("main").await], vec!["main".to_string()]);
    assert_eq!(labels[&a.id("dev").await], vec!["dev".to_string()]);
    assert_eq!(labels[&a.id("v1").await], vec!["tag: v1".to_string()]);

    for (from, to) in [("v1", Some("main")), ("v1", None), ("main", Some("dev"))] {
        let opts = strata::DiffOptions {
            from: Some(from.into()),
            to: to.map(str::to_string),
            ..Default::default()
        };
        let local = strata::DiffOptions {
            to: Some(to.unwrap_or("main").into()),
            ..opts.clone()
        };
        let got = changes(remote.diff(&opts).await.expect("remote diff")).await;
        assert!(!got.is_empty());
        assert_eq!(
            got,
            changes(a.diff(&local).await.expect("local diff")).await
        );
    }
    let e = remote
        .diff(&strata::DiffOptions::default())
        .await
        .err()
        .expect("no revisions");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn remote_revisions_and_defaults_follow_the_rules_of_a_clone() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, url) = pushed(root.path()).await;
    let folder = root.path().join("remote");
    let before = Snapshot::of(&folder);
    let remote = RemoteRepository::open(&url, &BTreeMap::new())
        .await
        .expect("open the remote");
    // Every kind of read leaves the remote as it was.
    remote.log(&LogOptions::default()).await.expect("log");
    let opts = strata::DiffOptions {
        from: Some("v1".into()),
        ..Default::default()
    };
    changes(remote.diff(&opts).await.expect("diff")).await;
    let out = root.path().join("out.csv");
    remote
        .export("people", None, Some(&out), ExportFormat::Csv, &NoProgress)
        .await
        .expect("export");
    remote.ref_labels().await.expect("labels");
    Snapshot::of(&folder).assert_same(&before, "the remote after reading it every way");

    // Errors name the remote and say what to list.
    let e = remote
        .table("nope", Some("v1"))
        .await
        .expect_err("unknown table");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string().contains(&url) && e.to_string().contains("v1"),
        "{e}"
    );
    assert_eq!(
        e.suggestion(),
        Some(strata::Suggestion::ListRemoteTables { url: url.clone() })
    );
    let e = remote
        .table("people", Some("nosuch"))
        .await
        .expect_err("unknown rev");
    assert_eq!(
        e.suggestion(),
        Some(strata::Suggestion::RemoteRevisionSyntax { url: url.clone() })
    );
    for (rev, says) in [("origin/main", "remote-tracking"), ("ab", "too short")] {
        let e = remote.resolve(Some(rev)).await.expect_err(rev);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{rev}: {e}");
        assert!(e.to_string().contains(says), "{rev}: {e}");
    }
    // A folder takes no S3 options.
    let s3 = BTreeMap::from([("endpoint".to_string(), "http://127.0.0.1:1".to_string())]);
    let e = RemoteRepository::open(&url, &s3)
        .await
        .expect_err("an S3 option");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // A branch named like a tag wins, as locally; without `main`, the first branch is read;
    // with no branch at all, reading needs a revision.
    a.create_branch("v1", Some("dev")).await.expect("branch v1");
    a.create_branch("aaa", Some("dev"))
        .await
        .expect("branch aaa");
    let push = PushOptions {
        all: true,
        ..Default::default()
    };
    a.push(&push, &NoProgress).await.expect("push");
    assert_eq!(
        remote.resolve(Some("v1")).await.expect("v1"),
        a.id("dev").await
    );
    assert_eq!(
        remote.resolve(Some("v1")).await.expect("v1"),
        a.resolve("v1").await.expect("local v1")
    );
    let del = PushOptions {
        delete: vec!["main".into()],
        ..Default::default()
    };
    a.push(&del, &NoProgress).await.expect("delete main");
    let first = remote.default_branch().await.expect("default");
    assert_eq!(
        (first.name.as_str(), first.commit),
        ("aaa", a.id("dev").await)
    );
    let del = PushOptions {
        delete: vec!["aaa".into(), "dev".into(), "v1".into()],
        ..Default::default()
    };
    a.push(&del, &NoProgress).await.expect("delete the rest");
    let e = remote.table("people", None).await.expect_err("no branches");
    assert_eq!(e.kind(), ErrorKind::InvalidState, "{e}");
    assert_eq!(
        remote_rows(&remote, "people", &at(Some("v1"))).await.len(),
        3,
        "the tag still reads"
    );
}
