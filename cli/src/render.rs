//! Human output: tables, dates, progress bars.

use std::io::IsTerminal;

use comfy_table::presets::{NOTHING, UTF8_BORDERS_ONLY};
use comfy_table::{ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A table for people: bordered and sized to the terminal on one, plain columns (no box
/// drawing, no wrapping) when the output goes to a pipe or a file.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_preset(NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(header.iter().copied());
    t
}

/// Tables that changed, with row counts; `schema` marks tables whose schema changed.
pub fn changes(changes: &[strata::TableChange], schema: bool) -> Table {
    let mut t = table(&["table", "state", "added", "removed", "modified"]);
    for s in changes {
        let state = if schema && s.schema_changed {
            format!("{} (schema)", s.state)
        } else {
            s.state.to_string()
        };
        t.add_row(vec![
            s.table.clone(),
            state,
            s.added.to_string(),
            s.removed.to_string(),
            s.modified.to_string(),
        ]);
    }
    t
}

/// `n` and a noun, singular for one: `1 row`, `2 rows`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A date as people read it, in UTC.
pub fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A progress bar on standard error, drawn only when it is a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    /// A counter of rows with their rate; it becomes a bar once the total is known.
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style("{spinner} {msg} {human_pos} rows, {rate}, {elapsed}"));
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(150));
        Bar(bar)
    }

    pub fn done(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress style with `{rate}`: whole rows per second.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(
                    w,
                    "{} rows/s",
                    indicatif::HumanCount(state.per_sec().max(0.0) as u64)
                );
            },
        )
}

impl strata::Progress for Bar {
    fn set_total(&self, total: u64) {
        if total > 0 {
            self.0.set_length(total);
            self.0.set_style(style(
                "{msg} {wide_bar} {human_pos}/{human_len} rows, {rate}, {eta} left",
            ));
        }
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(super::count(1u64, "row"), "1 row");
        assert_eq!(super::count(0u64, "row"), "0 rows");
        assert_eq!(super::count(2u64, "commit"), "2 commits");
    }

    #[test]
    fn dates_are_shown_in_utc() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::date(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
