//! `strata status`, `commit`, `log` and `show` as people see them: the status table, the
//! commit line, the log in full and one-line forms, show's table of changes, `--json` as
//! printed, and what only a process has (the author and time from the environment). What
//! they report is tested through the library (strata/tests/it/history.rs).

use serde_json::json;

use crate::harness::*;

/// A repository with three commits on main: people as in [`PEOPLE_CSV`], then bob renamed
/// and dee added, then ann removed.
pub fn three_commits() -> Dir {
    let dir = Dir::with_people();
    dir.write("up.csv", "id,name,score\n2,bobby,2.5\n4,dee,4.5\n");
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "second"]).ok();
    dir.write("gone.csv", "id\n1\n");
    dir.strata(&["delete", "people", "--keys", "gone.csv"]).ok();
    dir.strata(&["commit", "-m", "third\n\nwith a body"]).ok();
    dir
}

#[test]
fn status_prints_a_table_of_changed_rows_for_people_and_the_status_as_json() {
    let dir = Dir::with_people();
    dir.write(
        "up.csv",
        "id,name,score\n2,bobby,2.5\n4,dee,4.5\n5,eve,5.5\n",
    );
    dir.strata(&["import", "people", "up.csv", "--mode", "upsert"])
        .ok();
    dir.write("gone.csv", "id\n1\n");
    dir.strata(&["delete", "people", "--keys", "gone.csv"]).ok();
    dir.write("cities.csv", "city,pop\noslo,1\nrome,2\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();

    let json = dir.strata(&["status", "--json"]).ok().json();
    assert_eq!(json["branch"], "main");
    assert_eq!(json["head"], dir.rev_id("HEAD"));
    assert_eq!(
        json["tables"],
        json!([
            {"table": "cities", "state": "added", "added": 2, "removed": 0, "modified": 0,
             "schema_changed": false},
            {"table": "people", "state": "modified", "added": 2, "removed": 1, "modified": 1,
             "schema_changed": false},
        ])
    );

    let human = dir.strata(&["status"]).ok().stdout;
    assert_mentions(&human, &["On branch main", "Changes not yet committed"]);
    assert_eq!(
        table_row(&human, "table"),
        ["table", "state", "added", "removed", "modified"]
    );
    assert_eq!(
        table_row(&human, "people"),
        ["people", "modified", "2", "1", "1"]
    );
    assert_eq!(
        table_row(&human, "cities"),
        ["cities", "added", "2", "0", "0"]
    );
}

#[test]
fn commit_prints_the_branch_short_id_and_summary_and_status_then_says_clean() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();
    let out = dir.strata(&["commit", "-m", "add people"]).ok();
    let id = dir.rev_id("HEAD");
    assert_eq!(out.stdout, format!("[main {}] add people\n", &id[..12]));
    let status = dir.strata(&["status"]).ok();
    assert_mentions(&status.stdout, &["nothing to commit, working tables clean"]);
}

#[test]
fn commit_uses_the_author_and_time_from_the_environment_or_the_author_flag() {
    let dir = Dir::with_people();
    let first = dir.strata(&["log", "--json"]).ok().json_lines();
    assert_eq!(first[0]["author"], AUTHOR);
    assert_eq!(first[0]["time"], COMMIT_TIME);
    dir.write("more.csv", "id,name,score\n4,dee,4.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "append"])
        .ok();
    dir.strata(&["commit", "-m", "more", "--author", "Other <o@example.com>"])
        .ok();
    let log = dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    assert_eq!(log[0]["author"], "Other <o@example.com>");
}

#[test]
fn a_commit_time_that_is_not_a_number_is_refused_and_changes_nothing() {
    let dir = Dir::repo();
    dir.write("people.csv", PEOPLE_CSV);
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();
    let before = dir.snapshot();
    let out = dir
        .command(&["commit", "-m", "x"])
        .env("STRATA_COMMIT_TIME", "yesterday")
        .output()
        .expect("strata should start");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_mentions(&stderr, &["STRATA_COMMIT_TIME", "yesterday"]);
    before.assert_same(&dir.snapshot(), "a commit with a bad STRATA_COMMIT_TIME");
}

#[test]
fn log_lists_commits_newest_first_in_full_form() {
    let dir = three_commits();
    let ids = all_ids(&dir);
    let out = dir.strata(&["log"]).ok().stdout;
    let expected = format!(
        "commit {}\nAuthor: {AUTHOR}\nDate:   2023-11-14 22:13:20 UTC\n\n    third\n    \n    with a body\n\n\
         commit {}\nAuthor: {AUTHOR}\nDate:   2023-11-14 22:13:20 UTC\n\n    second\n\n\
         commit {}\nAuthor: {AUTHOR}\nDate:   2023-11-14 22:13:20 UTC\n\n    add people\n\n",
        ids[0], ids[1], ids[2]
    );
    assert_eq!(out, expected);
}

#[test]
fn log_oneline_shows_short_ids_and_summaries_and_n_limits_the_count() {
    let dir = three_commits();
    let ids = all_ids(&dir);
    let out = dir.strata(&["log", "--oneline"]).ok().stdout;
    assert_eq!(
        out,
        format!(
            "{} third\n{} second\n{} add people\n",
            &ids[0][..12],
            &ids[1][..12],
            &ids[2][..12]
        )
    );
    let two = dir.strata(&["log", "--oneline", "-n", "2"]).ok();
    assert_eq!(two.lines().len(), 2);
    let one = dir.strata(&["log", "--oneline", "--max-count", "1"]).ok();
    assert_eq!(one.lines(), [format!("{} third", &ids[0][..12])]);
    let from = dir.strata(&["log", "--oneline", "HEAD~1"]).ok();
    assert_eq!(from.lines().len(), 2);
    assert!(from.lines()[0].ends_with(" second"));
}

#[test]
fn show_prints_a_commit_and_the_rows_it_changed() {
    let dir = three_commits();
    let id = dir.rev_id("HEAD~1");
    let out = dir.strata(&["show", "HEAD~1"]).ok().stdout;
    assert!(
        out.starts_with(&format!("commit {id}\nAuthor: {AUTHOR}\n")),
        "{out}"
    );
    assert_mentions(&out, &["    second"]);
    assert_eq!(
        table_row(&out, "people"),
        ["people", "modified", "1", "0", "1"]
    );
    let head = dir.strata(&["show"]).ok().stdout;
    assert_eq!(
        table_row(&head, "people"),
        ["people", "modified", "0", "1", "0"]
    );
    let first = dir.strata(&["show", "HEAD~2"]).ok().stdout;
    assert_eq!(
        table_row(&first, "people"),
        ["people", "added", "3", "0", "0"]
    );
}

/// The ids of every commit from HEAD, newest first.
fn all_ids(dir: &Dir) -> Vec<String> {
    dir.strata(&["log", "--json"])
        .ok()
        .json_lines()
        .iter()
        .map(|c| c["id"].as_str().expect("ids are strings").to_string())
        .collect()
}

/// Runs strata as a user without STRATA_AUTHOR, with the account settings in `account`.
fn as_user(dir: &Dir, account: &std::path::Path, args: &[&str]) -> Output {
    let out = dir
        .command(args)
        .env_remove("STRATA_AUTHOR")
        .env("STRATA_CONFIG", account)
        .env("USER", "pat")
        .output()
        .expect("the strata binary should start");
    Output::of(format!("strata {}", args.join(" ")), out)
}

#[test]
fn commits_use_the_configured_identity_and_say_when_none_is_set() {
    let dir = Dir::repo();
    let account = dir.path().join("account").join("config.json");
    dir.write("people.csv", PEOPLE_CSV);
    dir.strata(&["import", "people", "people.csv", "-k", "id"])
        .ok();

    // Nothing set: the commit goes through, and says who it was made as and how to fix it.
    let out = as_user(&dir, &account, &["commit", "-m", "first"]).ok();
    assert_mentions(
        &out.stderr,
        &[
            "no identity is set",
            "pat <pat@localhost>",
            "strata config --global user.name",
        ],
    );
    let log = dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    assert_eq!(log[0]["author"], "pat <pat@localhost>");

    // The account's identity, then the repository's over it.
    as_user(
        &dir,
        &account,
        &["config", "--global", "user.name", "Ann Account"],
    )
    .ok();
    as_user(
        &dir,
        &account,
        &["config", "--global", "user.email", "ann@example.com"],
    )
    .ok();
    dir.write("more.csv", "id,name,score\n9,zed,9.5\n");
    dir.strata(&["import", "people", "more.csv", "--mode", "upsert"])
        .ok();
    let out = as_user(&dir, &account, &["commit", "-m", "second"]).ok();
    assert!(!out.stderr.contains("note:"), "{out:?}");
    let log = dir.strata(&["log", "--json", "-n", "1"]).ok().json_lines();
    assert_eq!(log[0]["author"], "Ann Account <ann@example.com>");

    as_user(
        &dir,
        &account,
        &["config", "user.email", "ann@work.example"],
    )
    .ok();
    let list = as_user(&dir, &account, &["config", "--list"]).ok();
    assert_eq!(
        list.stdout,
        "user.name=Ann Account (global)\nuser.email=ann@work.example (repository)\n"
    );
    let email = as_user(&dir, &account, &["config", "user.email"]).ok();
    assert_eq!(email.stdout, "ann@work.example\n");

    // Bad settings are refused and change nothing.
    let before = std::fs::read(&account).expect("the account settings were written");
    let line = as_user(
        &dir,
        &account,
        &["config", "--global", "user.email", "not-an-address"],
    )
    .fails_with_one_line();
    assert_mentions(&line, &["not an email address"]);
    let line = as_user(
        &dir,
        &account,
        &["config", "--global", "user.colour", "blue"],
    )
    .fails_with_one_line();
    assert_mentions(
        &line,
        &["unknown setting 'user.colour'", "user.name, user.email"],
    );
    assert_eq!(std::fs::read(&account).expect("still there"), before);

    as_user(&dir, &account, &["config", "--unset", "user.email"]).ok();
    let email = as_user(&dir, &account, &["config", "user.email"]).ok();
    assert_eq!(email.stdout, "ann@example.com\n");
}

#[test]
fn log_filters_by_author_time_and_table() {
    let dir = three_commits();
    // A fourth commit by someone else, later, touching another table.
    dir.write("cities.csv", "city,pop\noslo,1\n");
    dir.strata(&["import", "cities", "cities.csv", "-k", "city"])
        .ok();
    let out = dir
        .command(&["commit", "-m", "cities", "--author", "Bo <bo@example.com>"])
        .env("STRATA_COMMIT_TIME", (COMMIT_TIME + 86_400).to_string())
        .output()
        .expect("runs");
    assert!(out.status.success());
    let summaries = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["log", "--oneline"];
        all.extend_from_slice(args);
        dir.strata(&all)
            .ok()
            .stdout
            .lines()
            .map(|l| l.split_once(' ').map_or("", |(_, s)| s).to_string())
            .collect()
    };
    assert_eq!(summaries(&["--author", "bo@"]), ["cities"]);
    assert_eq!(
        summaries(&["--author", "TEST"]),
        ["third", "second", "add people"]
    );
    assert_eq!(summaries(&["--table", "cities"]), ["cities"]);
    assert_eq!(
        summaries(&["--table", "people"]),
        ["third", "second", "add people"]
    );
    assert_eq!(summaries(&["--since", "2023-11-15"]), ["cities"]);
    assert_eq!(summaries(&["--until", "2023-11-15", "-n", "1"]), ["third"]);
    assert_eq!(
        summaries(&["--since", &(COMMIT_TIME + 1).to_string()]),
        ["cities"]
    );
    let err = dir.strata(&["log", "--since", "yesterday"]).usage_error();
    assert_mentions(&err, &["'yesterday' is not a time"]);
}

/// [`three_commits`], then `topic` from `second` with one commit, and main merging it.
fn merged_topic() -> Dir {
    let dir = three_commits();
    dir.strata(&["checkout", "-b", "topic", "HEAD~1"]).ok();
    dir.write("t.csv", "id,name,score\n7,gil,7.0\n");
    dir.strata(&["import", "people", "t.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "topic work"]).ok();
    dir.strata(&["checkout", "main"]).ok();
    dir.write("m.csv", "id,name,score\n9,ida,9.0\n");
    dir.strata(&["import", "people", "m.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "main work"]).ok();
    dir.strata(&["merge", "topic", "-m", "merge topic"]).ok();
    dir.strata(&["tag", "v1", "HEAD~1"]).ok();
    dir
}

#[test]
fn log_graph_draws_the_fork_and_the_merge_with_branch_and_tag_names() {
    let dir = merged_topic();
    let out = dir
        .strata(&["log", "--graph", "--oneline", "--decorate", "--all"])
        .ok()
        .stdout;
    let short = |rev: &str| dir.rev_id(rev)[..12].to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("* {} (HEAD -> main) merge topic", short("main")),
        "{out}"
    );
    assert_eq!(lines[1], "|\\", "the merge opens a second lane:\n{out}");
    assert!(
        out.contains(&format!("* | {} (tag: v1) main work", short("v1")))
            || out.contains(&format!("| * {} (tag: v1) main work", short("v1"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} (topic) topic work", short("topic"))),
        "{out}"
    );
    assert!(out.contains("|/\n"), "the lanes join at the fork:\n{out}");
    assert!(
        out.ends_with(&format!("* {} add people\n", short("HEAD~4"))),
        "{out}"
    );
    assert_eq!(out.matches('*').count(), 6, "one row per commit:\n{out}");

    // Ranges: what topic has that main's first parent line lacks, and the other way.
    let only_topic = dir.strata(&["log", "--oneline", "main~1..topic"]).ok();
    assert_eq!(
        only_topic.lines(),
        [format!("{} topic work", short("topic")).as_str()]
    );
    let either = dir.strata(&["log", "--oneline", "topic...main~1"]).ok();
    assert_eq!(either.lines().len(), 3, "{either:?}");

    // Piped without --decorate: no names, so scripts read `ID SUMMARY`.
    let plain = dir.strata(&["log", "--oneline", "-n", "1"]).ok().stdout;
    assert_eq!(plain, format!("{} merge topic\n", short("main")));
}

#[test]
fn colour_is_used_when_forced_and_never_with_no_color_or_into_a_pipe() {
    let dir = merged_topic();
    let args = ["log", "--oneline", "--decorate", "-n", "1"];
    let forced = dir.strata_env(&args, "CLICOLOR_FORCE", "1".as_ref()).ok();
    assert!(forced.stdout.contains("\x1b[33m"), "{forced:?}");
    assert!(
        forced.stdout.contains("\x1b[1;36m(HEAD -> main)"),
        "{forced:?}"
    );
    let out = dir
        .command(&args)
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .expect("strata runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains('\x1b'), "{text}");
    let piped = dir.strata(&args).ok();
    assert!(!piped.stdout.contains('\x1b'), "{piped:?}");

    dir.write("d.csv", "id,name,score\n10,jo,1.0\n");
    dir.strata(&["import", "people", "d.csv", "--mode", "upsert"])
        .ok();
    let diff = dir
        .strata_env(&["diff"], "CLICOLOR_FORCE", "1".as_ref())
        .ok();
    assert!(diff.stdout.contains("\x1b[32m+ (id=10)"), "{diff:?}");
}

/// Runs `strata ARGS` on a terminal (a pseudo-terminal made by `script`), with `STRATA_PAGER`
/// set to `pager`; returns what the terminal showed.
fn on_a_terminal(dir: &Dir, args: &str, pager: &str) -> String {
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{} {args}", strata_bin()), "/dev/null"])
        .current_dir(dir.path())
        .env("STRATA_AUTHOR", AUTHOR)
        .env("STRATA_CONFIG", dir.join(".no-account-settings.json"))
        .env("STRATA_PAGER", pager)
        .env("NO_COLOR", "1")
        .env_remove("PAGER")
        .output()
        .expect("`script` (util-linux) should be installed: it gives strata a terminal");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn long_output_on_a_terminal_goes_through_the_pager_and_never_into_a_pipe() {
    let dir = merged_topic();
    let paged = on_a_terminal(&dir, "log --oneline", "sed s/^/PAGED:/");
    assert!(
        paged.contains("PAGED:") && paged.contains("merge topic"),
        "{paged}"
    );
    assert_eq!(
        paged.lines().filter(|l| l.starts_with("PAGED:")).count(),
        6,
        "every line went through the pager:\n{paged}"
    );
    // The pager's name `cat` (or empty) means no pager.
    let unpaged = on_a_terminal(&dir, "log --oneline", "cat");
    assert!(!unpaged.contains("PAGED:") && unpaged.contains("merge topic"));
    // Decorations are on by default on a terminal.
    assert!(unpaged.contains("(HEAD -> main)"), "{unpaged}");
    // Into a pipe, the pager is never started.
    let piped = dir.strata_env(
        &["log", "--oneline"],
        "STRATA_PAGER",
        "sed s/^/PAGED:/".as_ref(),
    );
    assert!(!piped.ok().stdout.contains("PAGED:"));
}

#[test]
fn reflog_rev_parse_and_merge_base_answer_as_scripts_expect() {
    let dir = merged_topic();
    dir.strata(&["reset", "--hard", "HEAD~1"]).ok();
    let reflog = dir.strata(&["reflog", "-n", "2"]).ok().stdout;
    let lines: Vec<&str> = reflog.lines().collect();
    assert_eq!(lines.len(), 2, "{reflog}");
    assert!(
        lines[0].ends_with("reset: moving to HEAD~1") && lines[0].contains(" main@{0}: "),
        "{reflog}"
    );
    assert!(lines[1].ends_with("merge topic: merge topic"), "{reflog}");
    let undone = dir.strata(&["rev-parse", "main@{1}"]).ok().stdout;
    dir.strata(&["reset", "--hard", "main@{1}"]).ok();
    assert_eq!(format!("{}\n", dir.rev_id("HEAD")), undone);
    let json = dir.strata(&["reflog", "--json", "-n", "1"]).ok().json();
    assert_eq!(json["selector"], "main@{0}");
    assert_eq!(json["commit"], dir.rev_id("HEAD"));

    let out = dir.strata(&["rev-parse", "--short", "HEAD", "topic"]).ok();
    assert_eq!(
        out.lines(),
        [&dir.rev_id("HEAD")[..12], &dir.rev_id("topic")[..12]]
    );
    assert_eq!(
        dir.strata(&["rev-parse", "--abbrev-ref", "HEAD"])
            .ok()
            .stdout,
        "main\n"
    );
    let base = dir.strata(&["merge-base", "main~1", "topic"]).ok().stdout;
    assert_eq!(base, format!("{}\n", dir.rev_id("HEAD~3")));
    dir.strata(&["merge-base", "--is-ancestor", "topic", "main"])
        .ok();
    let no = dir.strata(&["merge-base", "--is-ancestor", "main", "topic"]);
    assert_eq!(no.status.code(), Some(1), "{no:?}");
    assert_eq!(no.stdout, "");
    assert_eq!(no.stderr, "");
    let line = dir.refused(&["rev-parse", "main@{40}"]);
    assert_mentions(
        &line,
        &["main@{40}", "the reflog of main has", "strata reflog main"],
    );
}

#[test]
fn revert_cherry_pick_and_amend_print_the_new_commit_and_a_conflict_changes_nothing() {
    let dir = three_commits();
    let out = dir.strata(&["revert", "HEAD"]).ok();
    assert_eq!(
        out.stdout,
        format!("[main {}] Revert \"third\"\n", &dir.rev_id("HEAD")[..12])
    );
    assert!(dir.export_csv("people", None).contains("1,ann,1.5"));
    let out = dir
        .strata(&["commit", "--amend", "-m", "put ann back"])
        .ok();
    assert_eq!(
        out.stdout,
        format!("[main {}] put ann back\n", &dir.rev_id("HEAD")[..12])
    );
    dir.strata(&["checkout", "-b", "side", "HEAD~1"]).ok();
    let out = dir.strata(&["cherry-pick", "main", "-x"]).ok();
    assert_mentions(&out.stdout, &["[side ", "] put ann back"]);

    // bob was renamed by `second` and renamed again since: reverting `second` conflicts.
    dir.strata(&["checkout", "main"]).ok();
    dir.write("bob.csv", "id,name,score\n2,robert,2.5\n");
    dir.strata(&["import", "people", "bob.csv", "--mode", "upsert"])
        .ok();
    dir.strata(&["commit", "-m", "bob again"]).ok();
    let before = dir.snapshot().only(&["refs", "local"]);
    let line = dir.strata(&["revert", "HEAD~3"]).fails_with_one_line();
    assert_mentions(
        &line,
        &[
            "cannot revert HEAD~3",
            "1 cell conflicts",
            "in people",
            "nothing was changed",
            "strata merge",
        ],
    );
    before.assert_same(
        &dir.snapshot().only(&["refs", "local"]),
        "a conflicting revert",
    );
    let usage = dir.refused_usage(&["commit"]);
    assert_mentions(&usage, &["--message"]);
}
