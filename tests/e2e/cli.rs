//! What a git user expects of a command line: a closed pipe ends a command quietly.

use std::process::Stdio;

use crate::harness::*;

/// A repository with `n` commits of a table `t` and enough rows for long output.
fn long_history(n: u64) -> Dir {
    let dir = Dir::repo();
    let mut text = String::from("id,v\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},value number {i}\n"));
    }
    dir.write("t.csv", text);
    dir.strata(&["import", "t", "t.csv", "--primary-key", "id"])
        .ok();
    dir.strata(&["commit", "-m", "rows"]).ok();
    for i in 0..n {
        dir.write("one.csv", format!("id,v\n{i},changed {i}\n"));
        dir.strata(&["import", "t", "one.csv", "--mode", "upsert"])
            .ok();
        dir.strata(&["commit", "-m", &format!("change {i}")]).ok();
    }
    dir
}

/// Regression: `strata log | head -1` panicked ("failed printing to stdout: Broken pipe",
/// exit 101) on a long history; so did every command that prints, and an export to a closed
/// pipe printed an error. Like git, a command whose reader went away ends quietly.
#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_command_quietly() {
    let dir = long_history(3);
    for args in [
        vec!["log"],
        vec!["log", "--oneline"],
        vec!["show"],
        vec!["status"],
        vec!["branch"],
        vec!["table", "list"],
        vec!["diff", "HEAD~2", "HEAD"],
        vec!["export", "t", "-", "--format", "csv"],
        vec!["export", "t", "-", "--format", "jsonl"],
        vec!["export", "t", "-", "--format", "parquet"],
        vec!["fsck"],
    ] {
        let mut child = dir
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata starts");
        // The reader goes away at once (as `head` does once it has its lines): every write
        // of the command then fails with a broken pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "strata {}: exit {:?}, stderr: {stderr}",
            args.join(" "),
            out.status.code()
        );
    }
}

#[test]
fn tables_printed_into_a_pipe_are_plain_columns() {
    let dir = Dir::with_people();
    dir.write("more.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "upsert"])
        .ok();
    for args in [
        &["status"][..],
        &["table", "list"],
        &["table", "show", "people"],
        &["diff", "--stat"],
    ] {
        let out = dir.strata(args).ok();
        assert!(
            !out.stdout
                .chars()
                .any(|c| ('\u{2500}'..='\u{257f}').contains(&c)),
            "box drawing in piped output of {args:?}:\n{}",
            out.stdout
        );
    }
    let status = dir.strata(&["status"]).ok();
    assert_eq!(
        table_row(&status.stdout, "people"),
        ["people", "modified", "1", "0", "0"]
    );
}

#[test]
fn completions_are_printed_for_each_shell_and_help_names_a_command() {
    let dir = Dir::empty();
    for (shell, marker) in [
        ("bash", "_strata()"),
        ("zsh", "#compdef strata"),
        ("fish", "complete -c strata"),
    ] {
        let out = dir.strata(&["completions", shell]).ok();
        assert!(
            out.stdout.contains(marker),
            "{shell}: {}",
            &out.stdout[..out.stdout.len().min(300)]
        );
        assert!(
            out.stdout.contains("import"),
            "{shell} completes the commands"
        );
    }
    dir.strata(&["completions", "tcsh"]).usage_error();
    let help = dir.strata(&["help", "import"]).ok();
    assert_mentions(&help.stdout, &["--primary-key", "--type"]);
}
