//! `strata diff`: row- and cell-level differences between two versions of the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Result;
use serde_json::{json, Map, Value};
use strata_engine::diff::{
    changed_columns, diff_tables, key_json, row_json, RowChange, SchemaChange,
};
use strata_engine::{ObjectId, Repository, TableObject};

/// What `diff` compares: a revision, or the working tables.
pub struct DiffArgs {
    pub from: Option<String>,
    pub to: Option<String>,
    pub table: Option<String>,
    pub stat: bool,
    pub json: bool,
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn show_key(key: &Map<String, Value>) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|(k, v)| format!("{k}={}", show_value(v)))
        .collect();
    format!("({})", parts.join(", "))
}

fn show_row(row: &Map<String, Value>) -> String {
    let parts: Vec<String> = row
        .iter()
        .map(|(k, v)| format!("{k}={}", show_value(v)))
        .collect();
    parts.join(", ")
}

pub async fn run(repo: &Repository, args: DiffArgs) -> Result<()> {
    // No revision: HEAD vs working. One: REV vs working. Two: FROM vs TO.
    let (old_rev, new_rev) = match (&args.from, &args.to) {
        (None, _) => (Some("HEAD".to_string()), None),
        (Some(f), None) => (Some(f.clone()), None),
        (Some(f), Some(t)) => (Some(f.clone()), Some(t.clone())),
    };
    let old = match old_rev.as_deref() {
        Some("HEAD") if repo.head_commit().await?.is_none() => BTreeMap::new(),
        r => repo.tables_at(r).await?,
    };
    let new = repo.tables_at(new_rev.as_deref()).await?;
    if let Some(t) = &args.table {
        if !old.contains_key(t) && !new.contains_key(t) {
            return Err(strata_engine::Error::UnknownTable { name: t.clone() }.into());
        }
    }
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for name in names {
        if args.table.as_ref().is_some_and(|t| t != name) {
            continue;
        }
        let (a, b) = (old.get(name), new.get(name));
        if a == b {
            continue;
        }
        diff_one(repo, name, a, b, &args, &mut out).await?;
    }
    Ok(())
}

async fn read(repo: &Repository, id: Option<&ObjectId>) -> Result<Option<TableObject>> {
    Ok(match id {
        Some(id) => Some(TableObject::read(repo.objects(), id).await?),
        None => None,
    })
}

async fn diff_one(
    repo: &Repository,
    name: &str,
    a: Option<&ObjectId>,
    b: Option<&ObjectId>,
    args: &DiffArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let (ta, tb) = (read(repo, a).await?, read(repo, b).await?);
    let key: Vec<String> = tb
        .as_ref()
        .or(ta.as_ref())
        .map(|t| t.schema.primary_key.clone())
        .unwrap_or_default();
    let schema_change = match (&ta, &tb) {
        (Some(x), Some(y)) => Some(SchemaChange::between(&x.schema, &y.schema)),
        _ => None,
    };
    // Header and schema changes come first.
    if args.json {
        match (&ta, &tb) {
            (None, Some(_)) => writeln!(out, "{}", json!({"table": name, "kind": "table_added"}))?,
            (Some(_), None) => {
                writeln!(out, "{}", json!({"table": name, "kind": "table_removed"}))?
            }
            _ => {}
        }
        if let Some(sc) = schema_change.as_ref().filter(|s| !s.is_empty()) {
            let mut v = serde_json::to_value(sc)?;
            v["table"] = name.into();
            v["kind"] = "schema".into();
            writeln!(out, "{v}")?;
        }
    } else if !args.stat {
        let what = match (&ta, &tb) {
            (None, _) => " (new table)",
            (_, None) => " (table removed)",
            _ => "",
        };
        writeln!(out, "diff {name}{what}")?;
        if let Some(sc) = schema_change.as_ref().filter(|s| !s.is_empty()) {
            for c in &sc.added {
                writeln!(out, "  schema: added column {c}")?;
            }
            for c in &sc.dropped {
                writeln!(out, "  schema: dropped column {c}")?;
            }
            for c in &sc.retyped {
                writeln!(out, "  schema: retyped {c}")?;
            }
            if sc.key_changed {
                writeln!(out, "  schema: primary key changed")?;
            }
        }
    }
    let (as_json, stat) = (args.json, args.stat);
    let mut write_err: Option<std::io::Error> = None;
    let mut visit = |change: RowChange<'_>| -> strata_engine::Result<()> {
        if stat || write_err.is_some() {
            return Ok(());
        }
        let line = match change {
            RowChange::Added { new, row } => {
                let k = key_json(&new.batch, &key, row);
                let r = row_json(&new.batch, row);
                if as_json {
                    json!({"table": name, "kind": "added", "key": k, "old": null, "new": r})
                        .to_string()
                } else {
                    format!("+ {} {}", show_key(&k), show_row(&r))
                }
            }
            RowChange::Removed { old, row } => {
                let k = key_json(&old.batch, &key, row);
                let r = row_json(&old.batch, row);
                if as_json {
                    json!({"table": name, "kind": "removed", "key": k, "old": r, "new": null})
                        .to_string()
                } else {
                    format!("- {} {}", show_key(&k), show_row(&r))
                }
            }
            RowChange::Modified {
                old,
                old_row,
                new,
                new_row,
            } => {
                let k = key_json(&new.batch, &key, new_row);
                let o = row_json(&old.batch, old_row);
                let n = row_json(&new.batch, new_row);
                let changed = changed_columns(&old.batch, old_row, &new.batch, new_row)?;
                if as_json {
                    json!({"table": name, "kind": "modified", "key": k, "old": o, "new": n, "changed": changed})
                        .to_string()
                } else {
                    let cells: Vec<String> = changed
                        .iter()
                        .map(|c| {
                            let ov = o.get(c).map_or("(none)".into(), show_value);
                            let nv = n.get(c).map_or("(none)".into(), show_value);
                            format!("{c}: {ov} -> {nv}")
                        })
                        .collect();
                    format!("~ {} {}", show_key(&k), cells.join(", "))
                }
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            write_err = Some(e);
        }
        Ok(())
    };
    let counts = diff_tables(repo.objects(), ta.as_ref(), tb.as_ref(), &mut visit).await?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    if stat {
        if as_json {
            writeln!(
                out,
                "{}",
                json!({"table": name, "kind": "stat", "added": counts.added, "removed": counts.removed,
                       "modified": counts.modified, "schema_changed": schema_change.is_some_and(|s| !s.is_empty())})
            )?;
        } else {
            let schema = if schema_change.is_some_and(|s| !s.is_empty()) {
                ", schema changed"
            } else {
                ""
            };
            writeln!(
                out,
                "{name} | {} added, {} removed, {} modified{schema}",
                counts.added, counts.removed, counts.modified
            )?;
        }
    }
    Ok(())
}
