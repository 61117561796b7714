//! History commands: log (with its graph and decorations), reflog, rev-parse, merge-base,
//! revert and cherry-pick.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{bail, Result};
use strata::{Author, CommitInfo, ObjectId, PickOptions, Repository};

use crate::commands::print_json;
use crate::render;

/// How `log` draws each commit.
pub struct LogStyle {
    pub oneline: bool,
    pub graph: bool,
    /// `None`: decorate when standard output is a terminal (as git's `auto`).
    pub decorate: Option<bool>,
    pub json: bool,
}

pub async fn log(
    repo: &crate::commands::Source<'_>,
    opts: &strata::LogOptions,
    style: &LogStyle,
) -> Result<()> {
    let commits = repo.log(opts).await?;
    if style.json {
        for c in &commits {
            print_json(c)?;
        }
        return Ok(());
    }
    let decorate = style
        .decorate
        .unwrap_or_else(|| std::io::stdout().is_terminal());
    let labels = if decorate {
        repo.ref_labels().await?
    } else {
        BTreeMap::new()
    };
    let paint = crate::output::Paint::stdout();
    let mut graph = Graph::default();
    for c in &commits {
        let decoration = match labels.get(&c.id) {
            Some(l) if !l.is_empty() => {
                format!(" {}", paint.decoration(&format!("({})", l.join(", "))))
            }
            _ => String::new(),
        };
        let g = if style.graph {
            graph.next(c)
        } else {
            GraphRows::default()
        };
        for line in &g.before {
            outln!("{line}")?;
        }
        let row = &g.row;
        if style.oneline {
            outln!(
                "{row}{}{decoration} {}",
                paint.id(&c.id.short()),
                c.summary()
            )?;
            for line in &g.after {
                outln!("{line}")?;
            }
        } else {
            outln!("{row}{}{decoration}", paint.id(&format!("commit {}", c.id)))?;
            for line in &g.after {
                outln!("{line}")?;
            }
            let mut body = Vec::new();
            if c.parents.len() > 1 {
                let ps: Vec<String> = c.parents.iter().map(|p| p.short()).collect();
                body.push(format!("Merge: {}", ps.join(" ")));
            }
            body.push(format!("Author: {}", c.author));
            body.push(format!("Date:   {}", render::date(c.time)));
            body.push(String::new());
            body.extend(c.message.lines().map(|l| format!("    {l}")));
            body.push(String::new());
            for line in body {
                if style.graph {
                    outln!("{}", format!("{}{line}", g.body).trim_end())?;
                } else {
                    outln!("{line}")?;
                }
            }
        }
    }
    Ok(())
}

/// Draws `log --graph`: one lane per line of history waiting for its next commit.
#[derive(Default)]
struct Graph {
    lanes: Vec<Option<ObjectId>>,
}

/// What the graph draws around one commit.
#[derive(Default)]
struct GraphRows {
    /// Lines before the commit: lanes joining its lane (`|/`).
    before: Vec<String>,
    /// The commit's row prefix (`| * `).
    row: String,
    /// Lines right after the row: a merge's new lanes (`|\`).
    after: Vec<String>,
    /// The prefix of the commit's other lines (`| | `).
    body: String,
}

impl Graph {
    fn bars(&self) -> String {
        let mut s = String::new();
        for l in &self.lanes {
            s.push_str(if l.is_some() { "| " } else { "  " });
        }
        s
    }

    fn next(&mut self, c: &CommitInfo) -> GraphRows {
        let mut out = GraphRows::default();
        let col = match self.lanes.iter().position(|l| *l == Some(c.id)) {
            Some(col) => col,
            None => match self.lanes.iter().position(Option::is_none) {
                Some(free) => {
                    self.lanes[free] = Some(c.id);
                    free
                }
                None => {
                    self.lanes.push(Some(c.id));
                    self.lanes.len() - 1
                }
            },
        };
        // Other lanes waiting for this commit join its lane.
        while let Some(j) = self
            .lanes
            .iter()
            .rposition(|l| *l == Some(c.id))
            .filter(|j| *j > col)
        {
            let mut line = String::new();
            for (k, l) in self.lanes.iter().enumerate() {
                if k < j {
                    line.push_str(if l.is_some() { "| " } else { "  " });
                } else if k == j || l.is_some() {
                    line.pop();
                    line.push_str("/ ");
                } else {
                    line.push_str("  ");
                }
            }
            out.before.push(line.trim_end().to_string());
            self.lanes.remove(j);
        }
        for (k, l) in self.lanes.iter().enumerate() {
            out.row.push_str(if k == col {
                "* "
            } else if l.is_some() {
                "| "
            } else {
                "  "
            });
        }
        // The lane goes on to the first parent; further parents open lanes to its right.
        self.lanes[col] = c.parents.first().copied();
        for (i, p) in c.parents.iter().enumerate().skip(1) {
            if self.lanes.contains(&Some(*p)) {
                continue;
            }
            let at = (col + i).min(self.lanes.len());
            let mut chars = vec![' '; 2 * (self.lanes.len() + 1)];
            for (k, l) in self.lanes.iter().enumerate() {
                if l.is_some() {
                    if k < at {
                        chars[2 * k] = '|';
                    } else {
                        chars[2 * k + 1] = '\\';
                    }
                }
            }
            chars[2 * at - 1] = '\\';
            let line: String = chars.into_iter().collect();
            out.after.push(line.trim_end().to_string());
            self.lanes.insert(at, Some(*p));
        }
        while self.lanes.last() == Some(&None) {
            self.lanes.pop();
        }
        out.body = self.bars();
        out
    }
}

pub async fn reflog(
    repo: &Repository,
    name: Option<&str>,
    limit: Option<usize>,
    as_json: bool,
) -> Result<()> {
    let paint = crate::output::Paint::stdout();
    for e in repo
        .reflog(name)
        .await?
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
    {
        if as_json {
            print_json(&e)?;
            continue;
        }
        outln!(
            "{} {}: {}  {}",
            paint.id(&e.commit.short()),
            e.selector,
            render::date(e.time),
            e.reason.as_deref().unwrap_or("(no reason recorded)")
        )?;
    }
    Ok(())
}

pub async fn rev_parse(
    repo: &Repository,
    revs: &[String],
    short: bool,
    abbrev_ref: bool,
) -> Result<()> {
    for rev in revs {
        if abbrev_ref && (rev == "HEAD" || rev == "@") {
            match repo.head().await? {
                strata::Head::Branch(b) => outln!("{b}")?,
                strata::Head::Detached(_) => outln!("HEAD")?,
            }
            continue;
        }
        let id = repo.resolve(rev).await?;
        if short {
            outln!("{}", id.short())?;
        } else {
            outln!("{id}")?;
        }
    }
    Ok(())
}

/// `merge-base A B` prints the best common ancestor; `--is-ancestor A B` answers by the
/// exit status alone (0 yes, 1 no), as git does.
pub async fn merge_base(repo: &Repository, a: &str, b: &str, is_ancestor: bool) -> Result<()> {
    if is_ancestor {
        if repo.is_ancestor(a, b).await? {
            return Ok(());
        }
        return Err(crate::Exit(1).into());
    }
    match repo.merge_base(a, b).await? {
        Some(id) => {
            outln!("{id}")?;
            Ok(())
        }
        None => bail!("'{a}' and '{b}' have no common ancestor: their histories never meet"),
    }
}

pub async fn pick(
    repo: &Repository,
    rev: &str,
    revert: bool,
    mainline: Option<usize>,
    record_origin: bool,
    author: Option<String>,
) -> Result<()> {
    let opts = PickOptions {
        mainline,
        author: author.as_deref().map(Author::parse).transpose()?,
        record_origin,
    };
    let c = if revert {
        repo.revert(rev, &opts).await?
    } else {
        repo.cherry_pick(rev, &opts).await?
    };
    let info = repo.commit_info(&c.id.to_hex()).await?;
    let branch = c.branch.as_deref().unwrap_or("detached HEAD");
    outln!("[{branch} {}] {}", c.id.short(), info.summary())?;
    Ok(())
}
