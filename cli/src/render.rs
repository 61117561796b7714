//! Human output: tables, dates, progress bars.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A table for people, sized to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
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

/// A date as people read it, in UTC.
pub fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A progress bar on standard error, drawn only when it is a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {human_pos}/{human_len} rows {per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_string());
        Bar(bar)
    }

    pub fn done(&self) {
        self.0.finish_and_clear();
    }
}

impl strata::Progress for Bar {
    fn set_total(&self, total: u64) {
        if total == 0 {
            self.0.set_position(0);
        } else {
            self.0.set_length(total);
        }
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_shown_in_utc() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::date(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
