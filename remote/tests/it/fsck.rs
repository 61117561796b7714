//! fsck's checks of the counts an index entry states: the rows of a chunk read with its
//! delta, the rows a delta holds, and the rows it deletes. Each is found in a table whose index
//! node says otherwise (a node written by a faulty build: its bytes hash to its id, so only
//! the counts can tell), and named with the object and the numbers.

use strata_engine::edit::ImportMode;
use strata_engine::id::ObjectId;
use strata_engine::progress::NoProgress;
use strata_engine::store::Objects;
use strata_engine::table::TableObject;
use strata_engine::tree::{read_node, Entry, Node};
use strata_engine::Repository;
use strata_remote::fsck::{fsck, Side};

use crate::common::*;

/// A working table of 2,000 rows (chunks of about 256) whose first chunk has a delta that
/// changes one row and deletes one.
async fn table_with_a_deleting_delta(dir: &std::path::Path) -> (Repository, TableObject) {
    let repo = Repository::init(&dir.join("local")).await.expect("init");
    let file = dir.join("rows.csv");
    write_rows(&file, 0, 2000, "a");
    import(&repo, &file, None).await;
    repo.commit("rows", "T <t@example.com>")
        .await
        .expect("commit");
    write_rows(&file, 7, 8, "b");
    import(&repo, &file, Some(ImportMode::Upsert)).await;
    let keys = dir.join("gone.csv");
    std::fs::write(&keys, "id\n9\n").expect("write keys");
    repo.delete_keys("t", &keys, None, &NoProgress)
        .await
        .expect("delete");
    let id = repo.working().await.expect("working").tables["t"];
    let table = TableObject::read(repo.objects(), &id).await.expect("table");
    (repo, table)
}

/// The table with the index entry of its chunk with a delta changed by `change`, stored; its
/// id.
async fn with_entry(
    objects: &Objects,
    table: &TableObject,
    change: impl FnOnce(&mut Entry),
) -> ObjectId {
    let mut node: Node = read_node(objects, &table.index).await.expect("node");
    assert_eq!(node.level, 0, "the chunks are listed in the root");
    let at = node
        .entries
        .iter()
        .position(|e| e.delta.is_some())
        .expect("a chunk has a delta");
    change(&mut node.entries[at]);
    let index = objects.put_json(&node).await.expect("store the node");
    let tampered = TableObject {
        index,
        ..table.clone()
    };
    objects.put_json(&tampered).await.expect("store the table")
}

async fn problems(objects: &Objects, table: ObjectId) -> Vec<(String, String)> {
    let (found, _) = fsck(objects, &[], &[("working t".into(), table)], Side::Local).await;
    found.into_iter().map(|p| (p.object, p.message)).collect()
}

#[tokio::test]
async fn fsck_names_a_delta_or_chunk_whose_index_entry_states_other_counts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, table) = table_with_a_deleting_delta(tmp.path()).await;
    let objects = repo.objects();
    let node = read_node(objects, &table.index).await.expect("node");
    let with_delta: Vec<&Entry> = node.entries.iter().filter(|e| e.delta.is_some()).collect();
    let [entry] = with_delta[..] else {
        panic!("the edits joined one chunk's delta: {with_delta:?}");
    };
    let delta = entry.delta.expect("a delta");
    assert_eq!((delta.rows, delta.deletes), (1, 1));
    let (chunk, delta_id) = (entry.id.to_hex(), delta.id.to_hex());

    // As written, nothing is wrong.
    let id = repo.working().await.expect("working").tables["t"];
    assert_eq!(problems(objects, id).await, []);

    let deletes = with_entry(objects, &table, |e| {
        e.delta.as_mut().expect("delta").deletes = 2;
    })
    .await;
    assert_eq!(
        problems(objects, deletes).await,
        [(
            delta_id.clone(),
            "the delta deletes 1 rows but its index entry says 2".to_string()
        )]
    );

    // A delta said to delete nothing, as in a node of format 2.
    let none = with_entry(objects, &table, |e| {
        e.delta.as_mut().expect("delta").deletes = 0;
    })
    .await;
    assert_eq!(
        problems(objects, none).await,
        [(
            delta_id.clone(),
            "the delta deletes 1 rows but its index entry says 0".to_string()
        )]
    );

    let rows = with_entry(objects, &table, |e| {
        e.delta.as_mut().expect("delta").rows = 3;
    })
    .await;
    assert_eq!(
        problems(objects, rows).await,
        [(
            delta_id.clone(),
            "the delta holds 1 rows but its index entry says 3".to_string()
        )]
    );

    let merged = with_entry(objects, &table, |e| e.rows += 1).await;
    assert_eq!(
        problems(objects, merged).await,
        [(
            chunk,
            format!(
                "the chunk holds {} rows but its index entry says {}",
                entry.rows,
                entry.rows + 1
            )
        )]
    );
}
