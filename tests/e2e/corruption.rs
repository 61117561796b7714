//! Damaged repositories: a flipped byte or a cut in any stored object is detected by the command
//! that reads it, which fails with one line naming the object; push, fetch and clone never copy
//! a damaged object and never move a ref to it.

use std::path::{Path, PathBuf};

use crate::harness::*;
use crate::remote::{arg, file_url, history, hub};

/// The object file of the commit HEAD names.
fn head_commit_file(dir: &Dir) -> PathBuf {
    let id = dir.rev_id("HEAD");
    dir.join(".strata/objects").join(&id[..2]).join(&id[2..])
}

/// The object file of the working version of `table`.
fn table_file(dir: &Dir, table: &str) -> (String, PathBuf) {
    let show = dir.strata(&["table", "show", table, "--json"]).ok().json();
    let id = show["id"].as_str().expect("a table id").to_string();
    let path = dir.join(".strata/objects").join(&id[..2]).join(&id[2..]);
    (id, path)
}

#[test]
fn a_flipped_byte_in_a_chunk_fails_the_export_naming_the_chunk() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    assert_eq!(chunks.len(), 1, "one small table is one chunk");
    let id = object_id_of(&chunks[0]);
    flip_a_byte(&chunks[0]);
    for args in [
        &["export", "people", "-"][..],
        &["export", "people", "out.csv", "--rev", "HEAD"],
        &["show"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
    assert!(
        !dir.join("out.csv").exists(),
        "a failed export must not leave a file"
    );
}

#[test]
fn a_flipped_byte_in_a_chunk_fails_an_upsert_that_must_rewrite_it() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    let id = object_id_of(&chunks[0]);
    flip_a_byte(&chunks[0]);
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n");
    let line = dir
        .strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_flipped_byte_in_a_table_object_fails_table_list_naming_it() {
    let dir = Dir::with_people();
    let (id, path) = table_file(&dir, "people");
    flip_a_byte(&path);
    for args in [
        &["table", "list"][..],
        &["table", "show", "people"],
        &["export", "people", "-"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
}

#[test]
fn a_flipped_byte_in_a_commit_fails_log_naming_it() {
    let dir = Dir::with_people();
    let id = dir.rev_id("HEAD");
    flip_a_byte(&head_commit_file(&dir));
    for args in [
        &["log"][..],
        &["show", "main"],
        &["export", "people", "-", "--rev", "HEAD"],
    ] {
        let line = dir.strata(args).fails_with_one_line();
        assert_mentions(&line, &[&format!("object {id} is corrupt")]);
    }
}

#[test]
fn a_corrupt_commit_named_by_its_full_id_is_reported_as_corrupt_not_unknown() {
    let dir = Dir::with_people();
    let id = dir.rev_id("HEAD");
    flip_a_byte(&head_commit_file(&dir));
    let line = dir.strata(&["log", &id]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_flipped_byte_in_an_index_node_fails_the_export_naming_it() {
    let dir = Dir::with_people();
    let (table_id, _) = table_file(&dir, "people");
    let commit_id = dir.rev_id("HEAD");
    let others: Vec<PathBuf> = dir
        .object_files()
        .into_iter()
        .filter(|p| {
            let id = object_id_of(p);
            id != table_id && id != commit_id
        })
        .collect();
    assert_eq!(
        others.len(),
        1,
        "one small table has one index node: {others:?}"
    );
    let id = object_id_of(&others[0]);
    flip_a_byte(&others[0]);
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is corrupt")]);
}

#[test]
fn a_missing_chunk_fails_the_export_naming_it() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    let id = object_id_of(&chunks[0]);
    std::fs::remove_file(&chunks[0]).expect("the chunk should be removable");
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    assert_mentions(&line, &[&format!("object {id} is missing")]);
}

#[test]
fn the_advice_in_a_corrupt_object_message_names_a_command_that_exists() {
    let dir = Dir::with_people();
    let chunks = dir.chunk_files();
    flip_a_byte(&chunks[0]);
    let line = dir.strata(&["export", "people", "-"]).fails_with_one_line();
    let advised = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `command` in the message: {line}"));
    let words: Vec<&str> = advised.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"strata"), "{line}");
    let out = dir.strata(&words[1..]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "the message advises `{advised}`, which strata does not know:\n{out:?}"
    );
}

#[test]
fn a_corrupt_working_state_file_is_reported_with_its_path() {
    let dir = Dir::with_people();
    dir.write(".strata/local/WORKING", "{ not json");
    let line = dir.strata(&["status"]).fails_with_one_line();
    assert_mentions(&line, &["WORKING", "corrupt"]);
}

#[test]
fn a_repository_written_by_a_newer_format_is_refused_with_advice_to_upgrade() {
    let dir = Dir::with_people();
    dir.write(
        ".strata/strata.json",
        r#"{"format":99,"kind":"strata-repository"}"#,
    );
    let before = dir.snapshot();
    let line = dir.strata(&["status"]).fails_with_one_line();
    assert_mentions(&line, &["format 99", "upgrade strata"]);
    before.assert_same(&dir.snapshot(), "a refused command");
}

/// The kinds of stored object, each reached from a commit the way a reader reaches it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Commit,
    Table,
    IndexNode,
    Chunk,
}

const KINDS: [Kind; 4] = [Kind::Commit, Kind::Table, Kind::IndexNode, Kind::Chunk];

/// The ways a stored file is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    FlippedByte,
    CutInHalf,
}

const DAMAGES: [Damage; 2] = [Damage::FlippedByte, Damage::CutInHalf];

impl Damage {
    fn apply(self, path: &Path) {
        match self {
            Damage::FlippedByte => flip_a_byte(path),
            Damage::CutInHalf => {
                let bytes = std::fs::read(path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                std::fs::write(path, &bytes[..bytes.len() / 2])
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            }
        }
    }
}

/// Every kind of object with every damage.
fn cases() -> impl Iterator<Item = (Kind, Damage)> {
    KINDS
        .into_iter()
        .flat_map(|k| DAMAGES.into_iter().map(move |d| (k, d)))
}

/// Where a JSON object lies under a store's root (`.strata` locally, the folder of a remote).
fn object_rel(id: &str) -> PathBuf {
    PathBuf::from("objects").join(&id[..2]).join(&id[2..])
}

/// Where a chunk lies under a store's root.
fn chunk_rel(id: &str) -> PathBuf {
    PathBuf::from("chunks")
        .join(&id[..2])
        .join(format!("{}.parquet", &id[2..]))
}

/// The id and path (relative to a store's root) of the object of `kind` that `commit` reaches
/// in the local store of `dir`, which holds the one small table `people`: the commit itself,
/// its table object, the table's single level-0 index node, or that node's single chunk.
#[track_caller]
fn object_of(dir: &Dir, commit: &str, kind: Kind) -> (String, PathBuf) {
    let json = |id: &str| -> serde_json::Value {
        let bytes = dir.read(Path::new(".strata").join(object_rel(id)));
        serde_json::from_slice(&bytes).expect("a stored object is JSON")
    };
    let named = |value: &serde_json::Value| value.as_str().expect("an id").to_string();
    if let Kind::Commit = kind {
        return (commit.to_string(), object_rel(commit));
    }
    let table = named(&json(commit)["tables"]["people"]);
    if let Kind::Table = kind {
        return (table.clone(), object_rel(&table));
    }
    let node_id = named(&json(&table)["index"]);
    if let Kind::IndexNode = kind {
        return (node_id.clone(), object_rel(&node_id));
    }
    let node = json(&node_id);
    assert_eq!(node["level"], 0, "a small table has a level-0 root: {node}");
    let entries = node["entries"].as_array().expect("node entries");
    assert_eq!(entries.len(), 1, "a small table is one chunk: {node}");
    let chunk = named(&entries[0]["id"]);
    (chunk.clone(), chunk_rel(&chunk))
}

/// Changes one row of `people` and commits it: every object of the new commit is new.
#[track_caller]
fn change_people(dir: &Dir) -> String {
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n");
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "rename bob"]).ok();
    dir.rev_id("HEAD")
}

/// Asserts that `strata fsck ARGS` fails and names `id` in what it prints.
#[track_caller]
fn fsck_names(dir: &Dir, args: &[&str], id: &str) {
    let out = dir.strata(args);
    let printed = format!("{}\n{}", out.stdout, out.stderr);
    out.fails();
    assert_mentions(&printed, &[id]);
}

/// Asserts that a first push of `main` to the empty remote `origin` (folder `remote`) fails,
/// naming `id`, and leaves no branch there.
#[track_caller]
fn first_push_refused(dir: &Dir, remote: &Path, id: &str, case: &str) {
    let line = dir
        .strata(&["push", "--create", "-u", "origin", "main"])
        .fails_with_one_line();
    assert_mentions(&line, &[id]);
    assert!(
        remote_refs(remote).files_under("refs").is_empty(),
        "{case}: a failed push left a branch on the remote"
    );
}

/// The ref records stored in a remote's folder.
fn remote_refs(remote: &Path) -> Snapshot {
    Snapshot::of(remote).only(&["refs"])
}

#[test]
fn a_damaged_local_object_of_any_kind_fails_fsck_and_is_never_pushed_to_a_new_remote() {
    for (kind, damage) in cases() {
        eprintln!("case: {kind:?}, {damage:?}");
        let dir = Dir::with_people();
        let (_hub_dir, remote) = hub();
        dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        let (id, rel) = object_of(&dir, &dir.rev_id("HEAD"), kind);
        damage.apply(&dir.join(".strata").join(&rel));

        fsck_names(&dir, &["fsck"], &id);
        first_push_refused(&dir, &remote, &id, &format!("{kind:?}, {damage:?}"));
        assert!(
            !remote.join(&rel).exists(),
            "{kind:?}, {damage:?}: the damaged object was pushed"
        );
    }
}

#[test]
fn a_damaged_local_object_of_any_kind_never_moves_an_existing_remote_branch() {
    for (kind, damage) in cases() {
        eprintln!("case: {kind:?}, {damage:?}");
        let dir = Dir::with_people();
        let (_hub_dir, remote) = hub();
        dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        dir.strata(&["push", "--create", "-u", "origin", "main"])
            .ok();
        let pushed = dir.rev_id("origin/main");
        let refs = remote_refs(&remote);
        let head = change_people(&dir);
        let (id, rel) = object_of(&dir, &head, kind);
        damage.apply(&dir.join(".strata").join(&rel));

        fsck_names(&dir, &["fsck"], &id);
        let line = dir.strata(&["push"]).fails_with_one_line();
        assert_mentions(&line, &[&id]);
        refs.assert_same(&remote_refs(&remote), "a push of a damaged object");
        assert_eq!(dir.rev_id("origin/main"), pushed, "{kind:?}, {damage:?}");
        assert!(
            !remote.join(&rel).exists(),
            "{kind:?}, {damage:?}: the damaged object was pushed"
        );
    }
}

#[test]
fn a_damaged_remote_object_of_any_kind_fails_fsck_clone_and_fetch_naming_it() {
    for (kind, damage) in cases() {
        eprintln!("case: {kind:?}, {damage:?}");
        let (_hub_dir, remote) = hub();
        let url = file_url(&remote);
        let a = Dir::with_people();
        a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
        let b = Dir::empty();
        b.strata(&["clone", &url, arg(b.path())]).ok();
        let known = b.rev_id("origin/main");
        let head = change_people(&a);
        a.strata(&["push"]).ok();
        let (id, rel) = object_of(&a, &head, kind);
        damage.apply(&remote.join(&rel));

        fsck_names(&a, &["fsck", "--remote", "origin"], &id);

        let parent = Dir::empty();
        let target = parent.join("copy");
        let line = parent
            .strata(&["clone", &url, arg(&target)])
            .fails_with_one_line();
        assert_mentions(&line, &[&id]);
        assert!(
            !target.exists(),
            "{kind:?}, {damage:?}: a failed clone left {}",
            target.display()
        );

        let line = b.strata(&["fetch"]).fails_with_one_line();
        assert_mentions(&line, &[&id]);
        assert_eq!(
            b.rev_id("origin/main"),
            known,
            "{kind:?}, {damage:?}: the fetch moved origin/main"
        );
        assert!(
            !b.join(".strata").join(&rel).exists(),
            "{kind:?}, {damage:?}: the fetch stored the damaged object"
        );
    }
}

#[test]
fn a_damaged_ref_record_on_a_remote_is_named_by_fsck_and_fetch_and_restoring_it_heals_both() {
    for damage in DAMAGES {
        eprintln!("case: {damage:?}");
        let (_hub_dir, remote) = hub();
        let url = file_url(&remote);
        let a = Dir::with_people();
        a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
        let b = Dir::empty();
        b.strata(&["clone", &url, arg(b.path())]).ok();
        let known = b.rev_id("origin/main");
        change_people(&a);
        a.strata(&["push"]).ok();
        let newest = "refs/heads/main/00000000000000000002";
        let old = "refs/heads/main/00000000000000000001";
        let path = remote.join(newest);
        let original = std::fs::read(&path).expect("the newest record");

        // The current record: every reader of the ref stops, naming it.
        damage.apply(&path);
        let out = a.strata(&["fsck", "--remote", "origin", "--json"]);
        assert!(!out.status.success(), "{damage:?}: fsck passed");
        let problems = out.json_lines();
        assert!(
            problems
                .iter()
                .any(|p| p["object"] == newest && p["fix"].as_str().is_some_and(|f| !f.is_empty())),
            "{damage:?}: {problems:?}"
        );
        let line = b.strata(&["fetch"]).fails_with_one_line();
        assert_mentions(&line, &[newest, "damaged"]);
        assert_eq!(
            b.rev_id("origin/main"),
            known,
            "{damage:?}: origin/main moved"
        );

        // Restored, everything works again.
        std::fs::write(&path, &original).expect("restore");
        a.strata(&["fsck", "--remote", "origin"]).ok();
        b.strata(&["fetch"]).ok();

        // An old record: nothing reads it, fsck reports it, gc removes it.
        damage.apply(&remote.join(old));
        let out = a.strata(&["fsck", "--remote", "origin"]);
        assert!(!out.status.success(), "{damage:?}: fsck passed");
        assert_mentions(&out.stdout, &[old, "gc"]);
        b.strata(&["fetch"]).ok();
        a.strata(&["gc", "--remote", "origin"]).ok();
        a.strata(&["fsck", "--remote", "origin"]).ok();
    }
}

#[test]
fn a_damaged_current_ref_record_on_a_remote_is_replaced_by_a_forced_push_and_gc_then_removes_it() {
    for damage in DAMAGES {
        eprintln!("case: {damage:?}");
        let (_hub_dir, remote) = hub();
        let url = file_url(&remote);
        let a = Dir::with_people();
        a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
        let b = Dir::empty();
        b.strata(&["clone", &url, arg(b.path())]).ok();
        change_people(&a);
        a.strata(&["push"]).ok();
        let newest = "refs/heads/main/00000000000000000002";
        damage.apply(&remote.join(newest));
        let stored = || Snapshot::of(&remote).only(&["refs", "objects", "chunks"]);
        let before = stored();

        // A collection cannot know what the damaged ref keeps: it refuses and deletes nothing.
        let line = a
            .strata(&["gc", "--remote", "origin"])
            .fails_with_one_line();
        assert_mentions(&line, &[newest, "damaged"]);
        before.assert_same(&stored(), "a gc over a damaged ref record");

        // A plain push cannot compare with the damaged record: refused, nothing changes.
        a.write("more.csv", "id,name,score\n9,ivy,9.5\n");
        a.strata(&["import", "people", "more.csv", "--mode", "upsert"])
            .ok();
        a.strata(&["commit", "-m", "ivy"]).ok();
        let line = a.strata(&["push"]).fails_with_one_line();
        assert_mentions(&line, &[newest, "damaged"]);
        before.assert_same(&stored(), "a plain push over a damaged ref record");
        // Nor an atomic one: its roll-back could not bring the damaged record back.
        let line = a
            .strata(&["push", "--force", "--atomic", "origin", "main"])
            .fails_with_one_line();
        assert_mentions(&line, &[newest, "damaged"]);
        before.assert_same(&stored(), "an atomic push over a damaged ref record");

        // fsck names the repair, and the repair works.
        let out = a.strata(&["fsck", "--remote", "origin", "--json"]);
        assert!(!out.status.success(), "{damage:?}: fsck passed");
        let fix = out
            .json_lines()
            .into_iter()
            .find(|p| p["object"] == newest)
            .and_then(|p| p["fix"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{damage:?}: fsck did not name {newest}"));
        assert_mentions(&fix, &["strata push --force origin main"]);
        let out = a.strata(&["push", "--force", "origin", "main"]).ok();
        assert_mentions(&out.stderr, &["damaged"]);
        b.strata(&["fetch"]).ok();
        assert_eq!(b.rev_id("origin/main"), a.rev_id("main"), "{damage:?}");

        // The damaged record is now an old one: fsck reports it, gc removes it.
        let out = a.strata(&["fsck", "--remote", "origin"]);
        assert!(!out.status.success(), "{damage:?}: fsck passed");
        assert_mentions(&out.stdout, &[newest, "gc"]);
        a.strata(&["gc", "--remote", "origin"]).ok();
        assert!(!remote.join(newest).exists(), "{damage:?}: gc kept it");
        a.strata(&["fsck", "--remote", "origin"]).ok();
        b.strata(&["fsck"]).ok();
    }
}

#[test]
fn a_damaged_tag_record_on_a_remote_is_replaced_by_the_push_fsck_names() {
    let (_hub_dir, remote) = hub();
    let a = Dir::with_people();
    a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    a.strata(&["tag", "v1"]).ok();
    a.strata(&["push", "--create", "-u", "origin", "main", "--tags"])
        .ok();
    let record = "refs/tags/v1/00000000000000000001";
    Damage::CutInHalf.apply(&remote.join(record));
    let line = a
        .strata(&["push", "origin", "main", "--tags"])
        .fails_with_one_line();
    assert_mentions(&line, &[record, "damaged"]);
    let out = a.strata(&["fsck", "--remote", "origin", "--json"]);
    let fix = out
        .json_lines()
        .into_iter()
        .find(|p| p["object"] == record)
        .and_then(|p| p["fix"].as_str().map(str::to_string))
        .expect("fsck names the damaged tag record");
    assert_mentions(&fix, &["strata push --force --tags origin"]);
    a.strata(&["push", "--force", "--tags", "origin"]).ok();
    let b = Dir::empty();
    b.strata(&["clone", &file_url(&remote), arg(b.path())]).ok();
    assert_eq!(b.rev_id("v1"), a.rev_id("v1"));
}

// ---------------------------------------------------------------------------------------------
// Repair: `fsck --repair` writes damaged and missing objects again from an intact copy

/// How an object is lost for the repair tests: any damage above, or the file deleted.
fn lose(damage: Option<Damage>, path: &Path) {
    match damage {
        Some(d) => d.apply(path),
        None => std::fs::remove_file(path)
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display())),
    }
}

/// Every kind of object with every way of losing it (`None`: deleted).
fn losses() -> impl Iterator<Item = (Kind, Option<Damage>)> {
    KINDS.into_iter().flat_map(|k| {
        DAMAGES
            .into_iter()
            .map(Some)
            .chain([None])
            .map(move |d| (k, d))
    })
}

#[test]
fn fsck_repair_writes_a_damaged_or_missing_remote_object_of_any_kind_again_from_the_repository() {
    for (kind, loss) in losses() {
        eprintln!("case: {kind:?}, {loss:?}");
        let (_hub_dir, remote) = hub();
        let url = file_url(&remote);
        let a = Dir::with_people();
        a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
        let head = change_people(&a);
        a.strata(&["push"]).ok();
        let (id, rel) = object_of(&a, &head, kind);
        lose(loss, &remote.join(&rel));

        // fsck names the repair, and the repair works.
        let out = a.strata(&["fsck", "--remote", "origin", "--json"]);
        let problems = out.json_lines();
        out.fails();
        let problem = problems
            .iter()
            .find(|p| p["object"] == id.as_str())
            .unwrap_or_else(|| panic!("{kind:?}, {loss:?}: fsck does not name {id}: {problems:?}"));
        let fix = problem["fix"].as_str().expect("a fix");
        assert_mentions(fix, &["strata fsck --remote origin --repair"]);
        let refs = remote_refs(&remote);
        let out = a.strata(&["fsck", "--remote", "origin", "--repair"]).ok();
        assert_mentions(&out.stdout, &["restored 1 object from", "no problems"]);
        assert_eq!(
            std::fs::read(remote.join(&rel)).expect("the restored object"),
            a.read(Path::new(".strata").join(&rel)),
            "{kind:?}, {loss:?}: the restored object differs from the repository's"
        );
        refs.assert_same(&remote_refs(&remote), "a repair");

        let fresh = Dir::empty();
        fresh.strata(&["clone", &url, arg(fresh.path())]).ok();
        assert_eq!(
            fresh.export_csv("people", None),
            a.export_csv("people", None)
        );
        // Nothing more to do.
        let out = a.strata(&["fsck", "--remote", "origin", "--repair"]).ok();
        assert!(!out.stdout.contains("restored"), "{out:?}");
    }
}

#[test]
fn fsck_repair_writes_a_damaged_or_missing_local_object_of_any_kind_again_from_a_remote() {
    for (kind, loss) in losses() {
        eprintln!("case: {kind:?}, {loss:?}");
        let (_hub_dir, remote) = hub();
        let a = Dir::with_people();
        a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
        let head = change_people(&a);
        a.strata(&["push"]).ok();
        let csv = a.export_csv("people", None);
        let (id, rel) = object_of(&a, &head, kind);
        lose(loss, &a.join(".strata").join(&rel));

        let out = a.strata(&["fsck"]);
        let printed = out.stdout.clone();
        out.fails();
        assert_mentions(&printed, &[&id, "strata fsck --repair"]);
        let out = a.strata(&["fsck", "--repair"]).ok();
        assert_mentions(&out.stdout, &["restored 1 object from", "no problems"]);
        assert_eq!(
            a.read(Path::new(".strata").join(&rel)),
            std::fs::read(remote.join(&rel)).expect("the remote's copy"),
            "{kind:?}, {loss:?}: the restored object differs from the remote's"
        );
        assert_eq!(a.export_csv("people", None), csv);
        assert_eq!(a.export_csv("people", Some("HEAD~1")).lines().count(), 4);
    }
}

#[test]
fn fsck_repair_restores_a_whole_lost_history_below_a_missing_commit_in_one_run() {
    let (_hub_dir, remote) = hub();
    let url = file_url(&remote);
    let a = Dir::with_people();
    a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    for round in 0..3 {
        a.write(
            "up.csv",
            format!("id,name,score\n{},n{round},1.0\n", 10 + round),
        );
        a.strata(&["import", "people", "up.csv", "--mode", "upsert"])
            .ok();
        a.strata(&["commit", "-m", &format!("round {round}")]).ok();
    }
    a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
    // Every chunk and every object but the ref records' commit is gone: the newest commit
    // reaches the rest only through objects that are missing too.
    let lost = crate::backends::count_files(&remote.join("chunks"))
        + crate::backends::count_files(&remote.join("objects"));
    std::fs::remove_dir_all(remote.join("chunks")).expect("remove the chunks");
    std::fs::remove_dir_all(remote.join("objects")).expect("remove the objects");

    let out = a.strata(&["fsck", "--remote", "origin", "--repair"]).ok();
    assert_mentions(
        &out.stdout,
        &[&format!("restored {lost} objects from"), "no problems"],
    );
    let fresh = Dir::empty();
    fresh.strata(&["clone", &url, arg(fresh.path())]).ok();
    fresh.strata(&["fsck"]).ok();
    assert_eq!(history(&fresh, None), history(&a, None));
    assert_eq!(
        fresh.export_csv("people", None),
        a.export_csv("people", None)
    );
}

#[test]
fn fsck_repair_without_an_intact_copy_says_so_and_changes_nothing() {
    // A commit that was never pushed: no remote has its objects.
    let (_hub_dir, remote) = hub();
    let a = Dir::with_people();
    a.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    a.strata(&["push", "--create", "-u", "origin", "main"]).ok();
    let head = change_people(&a);
    let (id, rel) = object_of(&a, &head, Kind::Chunk);
    flip_a_byte(&a.join(".strata").join(&rel));
    let before = a.snapshot();
    let out = a.strata(&["fsck", "--repair"]);
    let printed = out.stdout.clone();
    let error = out.fails();
    assert_mentions(&printed, &[&id, "cannot be restored", "origin"]);
    assert_mentions(&error, &["1 problem"]);
    before.assert_same(&a.snapshot(), "a repair without an intact copy");

    // A repository without remotes has nothing to repair from.
    let b = Dir::with_people();
    let chunks = b.chunk_files();
    flip_a_byte(&chunks[0]);
    let line = b.refused(&["fsck", "--repair"]);
    assert_mentions(&line, &["nothing to repair from", "strata remote add"]);
}

/// A repository whose table `items` (2,000 rows, one chunk) had one row changed: the change is
/// stored as a delta beside the chunk. Returns the folder and the delta's file.
fn with_a_delta() -> (Dir, PathBuf) {
    let dir = Dir::repo();
    let mut csv = String::from("id,name\n");
    for i in 0..2000 {
        csv.push_str(&format!("{i},item {i}\n"));
    }
    dir.write("items.csv", &csv);
    dir.strata(&["import", "items", "items.csv", "--primary-key", "id"])
        .ok();
    dir.strata(&["commit", "-m", "items"]).ok();
    let before = dir.chunk_files();
    dir.write("up.csv", "id,name\n7,changed\n");
    dir.strata(&["import", "items", "up.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "one row"]).ok();
    let added: Vec<PathBuf> = dir
        .chunk_files()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "one new file, the delta: {added:?}");
    assert!(
        before.iter().all(|p| p.exists()),
        "the chunk is kept beside its delta"
    );
    (dir, added[0].clone())
}

#[test]
fn a_damaged_or_missing_delta_fails_fsck_export_and_push_naming_it() {
    for damage in [Some(Damage::FlippedByte), Some(Damage::CutInHalf), None] {
        eprintln!("case: {damage:?}");
        let (dir, delta) = with_a_delta();
        let id = object_id_of(&delta);
        let (_hub_dir, remote) = hub();
        dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
        match damage {
            Some(d) => d.apply(&delta),
            None => std::fs::remove_file(&delta).expect("the delta should be removable"),
        }
        fsck_names(&dir, &["fsck"], &id);
        let line = dir.strata(&["export", "items", "-"]).fails_with_one_line();
        assert_mentions(&line, &[&id]);
        first_push_refused(&dir, &remote, &id, &format!("{damage:?}"));
        // The commit before the change reads as it did.
        let out = dir
            .strata(&["export", "items", "-", "--rev", "HEAD~1"])
            .ok();
        assert_mentions(&out.stdout, &["1999,item 1999"]);
    }
}

#[test]
fn a_chunk_with_a_delta_is_pushed_cloned_and_read_whole() {
    let (dir, delta) = with_a_delta();
    // One more row of the chunk deleted: the delta lists its key, beside the changed row.
    dir.write("gone.csv", "id\n9\n");
    dir.strata(&["delete", "items", "--keys", "gone.csv"]).ok();
    dir.strata(&["commit", "-m", "one row less"]).ok();
    // A collection keeps the delta (and its view's position deletes) that the branch reads.
    dir.strata(&["gc"]).ok();
    dir.strata(&["fsck"]).ok();
    let (_hub_dir, remote) = hub();
    dir.strata(&["remote", "add", "origin", arg(&remote)]).ok();
    dir.strata(&["push", "--create", "-u", "origin", "main"])
        .ok();
    let rel = delta
        .strip_prefix(dir.join(".strata"))
        .expect("under .strata");
    assert!(
        remote.join(rel).exists(),
        "the first delta is on the remote"
    );
    let clone = Dir::empty();
    clone
        .strata(&["clone", arg(&remote), arg(&clone.join("c"))])
        .ok();
    let out = run_in(&clone.join("c"), &["export", "items", "-"]).ok();
    assert_eq!(
        out.stdout,
        dir.strata(&["export", "items", "-"]).ok().stdout
    );
    assert_mentions(&out.stdout, &["7,changed", "8,item 8", "10,item 10"]);
    assert!(!out.stdout.contains("\n9,"), "the deleted row is gone");
    assert_eq!(out.stdout.lines().count(), 2000, "a header and 1,999 rows");
    run_in(&clone.join("c"), &["fsck"]).ok();
    dir.strata(&["fsck", "--remote", "origin"]).ok();
}
