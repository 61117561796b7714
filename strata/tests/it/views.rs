//! Iceberg views in process: when they are published, caught up, withdrawn and collected, and
//! where they are on a remote. (The readers that read them, pyiceberg, DuckDB and Polars, are
//! run by python/tests/test_iceberg.py.)

use std::path::{Path, PathBuf};

use crate::common::{TestRepo, PEOPLE_CSV};
use strata::{GcOptions, NoProgress, PushOptions, ViewOptions};

fn at(rev: &str) -> ViewOptions {
    ViewOptions {
        rev: Some(rev.into()),
        remote: None,
    }
}

/// The local path of a `file://` URI.
fn path_of(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").expect("a file URI"))
}

fn hint(view_location: &str) -> String {
    std::fs::read_to_string(path_of(view_location).join("metadata/version-hint.text"))
        .expect("the hint is there")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_commit_publishes_the_view_that_iceberg_then_finds() {
    let t = TestRepo::with_people().await;
    let view = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    assert_eq!(view.ref_name, "refs/heads/main");
    assert_eq!(view.version, 1);
    assert_eq!(
        (view.files_written, view.bytes_written),
        (0, 0),
        "the commit published it"
    );
    assert!(path_of(&view.metadata).is_file());
    assert_eq!(hint(&view.location), "1");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path_of(&view.metadata)).expect("read"))
            .expect("json");
    assert_eq!(meta["format-version"], 2);
    assert_eq!(
        meta["schemas"][0]["identifier-field-ids"],
        serde_json::json!([1])
    );
    assert_eq!(meta["properties"]["strata.ref"], "refs/heads/main");
    let list = meta["snapshots"][0]["manifest-list"]
        .as_str()
        .expect("list");
    assert!(path_of(list).is_file());
    // A tag gets its own view of the same table object (sharing the list).
    t.create_tag("v1", None).await.expect("tag");
    let tagged = t.iceberg("people", &at("v1")).await.expect("tag view");
    assert_eq!(tagged.ref_name, "refs/tags/v1");
    assert_eq!(tagged.files_written, 0, "creating the tag published it");
    let tag_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path_of(&tagged.metadata)).expect("read"))
            .expect("json");
    assert_eq!(
        tag_meta["snapshots"][0]["manifest-list"], meta["snapshots"][0]["manifest-list"],
        "the same table object has one list"
    );
}

#[tokio::test]
async fn an_interrupted_publication_is_caught_up_by_iceberg() {
    let t = TestRepo::with_people().await;
    let view = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    let meta = path_of(&view.metadata);
    std::fs::remove_file(&meta).expect("remove");
    for f in files_under(&t.path().join(".strata/iceberg/lists")) {
        std::fs::remove_file(f).expect("remove");
    }
    let again = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    assert_eq!(again.metadata, view.metadata);
    assert_eq!(again.files_written, 2, "the list and the metadata file");
    assert!(meta.is_file());
    let third = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    assert_eq!(third.files_written, 0);
}

#[tokio::test]
async fn the_hint_only_moves_forward_and_iceberg_reads_the_ref_itself() {
    let t = TestRepo::with_people().await;
    let view = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    let hint_file = path_of(&view.location).join("metadata/version-hint.text");
    // A writer of a newer record got there first (a race between two publications).
    std::fs::write(&hint_file, "99").expect("write");
    t.upsert("people", "id,name,score\n1,ann,9.5\n").await;
    t.commit_changes("change").await;
    assert_eq!(hint(&view.location), "99");
    let now = t
        .iceberg("people", &ViewOptions::default())
        .await
        .expect("view");
    assert_eq!(now.version, 2);
    assert!(now.metadata.ends_with("/v2.metadata.json"));
}

#[tokio::test]
async fn a_dropped_table_and_a_deleted_branch_lose_their_views() {
    let t = TestRepo::with_people().await;
    t.create("other", &["id"], PEOPLE_CSV).await;
    t.commit_changes("other").await;
    let other = t
        .iceberg("other", &ViewOptions::default())
        .await
        .expect("view");
    t.drop_table("other").await.expect("drop");
    t.commit_changes("drop other").await;
    assert!(!path_of(&other.location)
        .join("metadata/version-hint.text")
        .exists());
    let err = t
        .iceberg("other", &ViewOptions::default())
        .await
        .expect_err("no such table");
    assert!(err.to_string().contains("other"), "{err}");

    t.branch("side").await;
    let side = t.iceberg("people", &at("side")).await.expect("view");
    t.delete_branch("side", true).await.expect("delete");
    assert!(!path_of(&side.location)
        .join("metadata/version-hint.text")
        .exists());
    let err = t.iceberg("people", &at("side")).await.expect_err("gone");
    assert!(err.to_string().contains("not a branch or tag"), "{err}");
}

#[tokio::test]
async fn gc_keeps_each_refs_current_view_and_removes_the_rest() {
    let t = TestRepo::with_people().await;
    t.create_tag("v1", None).await.expect("tag");
    t.branch("side").await;
    t.commit_on("side", "side change", async |t: &TestRepo| {
        t.upsert("people", "id,name,score\n9,zed,0.5\n").await;
    })
    .await;
    let side = t.iceberg("people", &at("side")).await.expect("view");
    t.upsert("people", "id,name,score\n1,ann,9.5\n").await;
    t.commit_changes("main change").await;
    t.delete_branch("side", true).await.expect("delete");
    let dot = t.path().join(".strata/iceberg");
    let old_main = dot.join("heads/main/people/metadata/v1.metadata.json");
    assert!(old_main.is_file());
    let report = t.gc(&GcOptions::default(), &NoProgress).await.expect("gc");
    assert!(
        report.report.gc.iceberg_files >= 4,
        "{:?}",
        report.report.gc
    );
    assert!(!old_main.exists(), "an older version of main's view");
    assert!(
        !path_of(&side.metadata).exists(),
        "the deleted branch's view"
    );
    for rev in ["main", "v1"] {
        let v = t.iceberg("people", &at(rev)).await.expect("view");
        assert_eq!(v.files_written, 0, "{rev}: gc removed part of its view");
    }
}

#[tokio::test]
async fn a_push_publishes_the_views_on_the_remote() {
    let t = TestRepo::with_people().await;
    t.create_tag("v1", None).await.expect("tag");
    let remote = tempfile::tempdir().expect("tempdir");
    let url = remote.path().join("r");
    t.add_remote("origin", url.to_str().expect("utf-8"), &Default::default())
        .await
        .expect("add");
    let opts = PushOptions {
        remote: Some("origin".into()),
        branches: vec!["main".into()],
        tags: true,
        create: true,
        ..Default::default()
    };
    t.push(&opts, &NoProgress).await.expect("push");
    for rev in ["main", "v1"] {
        let on_remote = ViewOptions {
            rev: Some(rev.into()),
            remote: Some("origin".into()),
        };
        let v = t.iceberg("people", &on_remote).await.expect("view");
        assert_eq!(v.files_written, 0, "{rev}: the push published it");
        assert!(path_of(&v.metadata).starts_with(&url), "{}", v.metadata);
        let files = t.ls_files("people", &on_remote).await.expect("files");
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 3);
        assert!(files.iter().all(|f| path_of(&f.uri).is_file()));
        assert_eq!(files[0].key_min, vec!["1".to_string()]);
        assert_eq!(files.last().expect("a file").key_max, vec!["3".to_string()]);
    }
    // A branch pushed, then deleted on the remote: the remote's collection removes its view
    // and keeps main's and the tag's whole.
    t.branch("side").await;
    t.commit_on("side", "side change", async |t: &TestRepo| {
        t.upsert("people", "id,name,score\n9,zed,0.5\n").await;
    })
    .await;
    let side = PushOptions {
        remote: Some("origin".into()),
        branches: vec!["side".into()],
        ..Default::default()
    };
    t.push(&side, &NoProgress).await.expect("push side");
    let side_view = url.join("iceberg/heads/side/people/metadata/version-hint.text");
    assert!(side_view.is_file());
    let delete = PushOptions {
        remote: Some("origin".into()),
        delete: vec!["side".into()],
        ..Default::default()
    };
    t.push(&delete, &NoProgress).await.expect("delete side");
    assert!(!side_view.exists(), "a deleted branch's hint is withdrawn");
    let gc = GcOptions {
        remote: Some("origin".into()),
        ..Default::default()
    };
    let report = t.gc(&gc, &NoProgress).await.expect("remote gc");
    assert!(
        report.report.gc.iceberg_files >= 3,
        "{:?}",
        report.report.gc
    );
    assert!(files_under(&url.join("iceberg/heads/side")).is_empty());
    for rev in ["main", "v1"] {
        let on_remote = ViewOptions {
            rev: Some(rev.into()),
            remote: Some("origin".into()),
        };
        let v = t.iceberg("people", &on_remote).await.expect("view");
        assert_eq!(v.files_written, 0, "{rev}: gc removed part of its view");
    }
}
