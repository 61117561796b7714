//! `strata diff`: renders the library's stream of changes for people, or as JSON Lines.

use std::io::Write;

use anyhow::Result;
use futures::StreamExt;
use serde_json::{Map, Value};
use strata::{Change, DiffOptions};

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn show_cells(row: &Map<String, Value>) -> String {
    let parts: Vec<String> = row
        .iter()
        .map(|(k, v)| format!("{k}={}", show_value(v)))
        .collect();
    parts.join(", ")
}

/// One change as people read it.
fn line(change: &Change) -> Vec<String> {
    match change {
        Change::Table(t) => {
            let what = if t.kind == "table_added" {
                " (new table)"
            } else {
                " (table removed)"
            };
            vec![format!("diff {}{what}", t.table)]
        }
        Change::Schema(s) => {
            let mut out = Vec::new();
            out.extend(
                s.added
                    .iter()
                    .map(|c| format!("  schema: added column {c}")),
            );
            out.extend(
                s.dropped
                    .iter()
                    .map(|c| format!("  schema: dropped column {c}")),
            );
            out.extend(s.retyped.iter().map(|c| format!("  schema: retyped {c}")));
            if s.key_changed {
                out.push("  schema: primary key changed".into());
            }
            out
        }
        Change::Row(r) => {
            let key = format!("({})", show_cells(&r.key));
            vec![match (r.kind, &r.old, &r.new) {
                ("added", _, Some(new)) => format!("+ {key} {}", show_cells(new)),
                ("removed", Some(old), _) => format!("- {key} {}", show_cells(old)),
                (_, Some(old), Some(new)) => {
                    let cells: Vec<String> = r
                        .changed
                        .iter()
                        .flatten()
                        .map(|c| {
                            let ov = old.get(c).map_or("(none)".into(), show_value);
                            let nv = new.get(c).map_or("(none)".into(), show_value);
                            format!("{c}: {ov} -> {nv}")
                        })
                        .collect();
                    format!("~ {key} {}", cells.join(", "))
                }
                _ => format!("? {key}"),
            }]
        }
        Change::Stat(s) => {
            let schema = if s.schema_changed {
                ", schema changed"
            } else {
                ""
            };
            vec![format!(
                "{} | {} added, {} removed, {} modified{schema}",
                s.table, s.added, s.removed, s.modified
            )]
        }
    }
}

/// Prints the differences (nothing when `quiet`); returns whether there were any.
pub async fn run(
    repo: &crate::commands::Source<'_>,
    opts: &DiffOptions,
    as_json: bool,
    quiet: bool,
) -> Result<bool> {
    let mut changes = repo.diff(opts).await?;
    if quiet {
        // The first change answers the question.
        return match changes.next().await {
            Some(change) => change.map(|_| true).map_err(Into::into),
            None => Ok(false),
        };
    }
    let mut changed = false;
    let mut out = std::io::BufWriter::new(crate::output::Out);
    let paint = crate::output::Paint::stdout();
    // For people, every changed table gets a `diff NAME` header, even one that exists on
    // both sides (the library only marks added and removed tables).
    let mut current: Option<String> = None;
    while let Some(change) = changes.next().await {
        let change = change?;
        changed = true;
        if as_json {
            serde_json::to_writer(&mut out, &change)?;
            writeln!(out)?;
            continue;
        }
        let table = match &change {
            Change::Table(t) => &t.table,
            Change::Schema(s) => &s.table,
            Change::Row(r) => &r.table,
            Change::Stat(s) => &s.table,
        };
        let new_table = current.as_deref() != Some(table.as_str());
        if new_table {
            current = Some(table.clone());
            if !opts.stat && !matches!(change, Change::Table(_)) {
                writeln!(out, "diff {table}")?;
            }
        }
        for l in line(&change) {
            let l = if l.starts_with("+ ") {
                paint.added(&l)
            } else if l.starts_with("- ") {
                paint.removed(&l)
            } else {
                l
            };
            writeln!(out, "{l}")?;
        }
    }
    out.flush()?;
    Ok(changed)
}
