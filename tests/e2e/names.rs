//! Invalid names for tables, branches and tags: each is refused with one line that quotes
//! the name and says what is wrong with it, and nothing is created.

use crate::harness::*;

/// Runs the command that would create a `kind` named `name`, which must be refused with
/// `reason`; then checks nothing by that name exists.
fn refuse_name(kind: &str, name: &str, shown: &str, reason: &str) {
    let dir = Dir::with_people();
    let args: Vec<&str> = match kind {
        "table" => vec!["import", name, "people.csv", "-k", "id"],
        "renamed table" => vec!["table", "rename", "people", name],
        "branch" => vec!["branch", name],
        "checkout branch" => vec!["checkout", "-b", name],
        "tag" => vec!["tag", name],
        other => panic!("unknown kind {other}"),
    };
    let line = dir.refused(&args);
    let noun = kind.rsplit(' ').next().expect("a noun");
    assert_mentions(&line, &[&format!("invalid {noun} name '{shown}'"), reason]);
}

macro_rules! invalid_names {
    ($($test:ident: $kind:literal, $name:expr, $shown:expr, $reason:literal;)*) => {
        $(
            #[test]
            fn $test() {
                refuse_name($kind, &$name, &$shown, $reason);
            }
        )*
    };
}

fn long_name() -> String {
    "a".repeat(101)
}

invalid_names! {
    an_empty_table_name_is_refused: "table", "", "", "it is empty";
    a_table_name_of_two_dots_is_refused: "table", "..", "..", "it contains '..'";
    a_table_name_with_a_slash_is_refused: "table", "a/b", "a/b", "it contains a slash";
    a_table_name_with_a_control_character_is_refused: "table", "a\tb", "a\\tb", "control character";
    the_table_name_head_is_refused_as_reserved: "table", "HEAD", "HEAD", "reserved word";
    a_table_name_of_101_characters_is_refused: "table", long_name(), long_name(), "longer than 100 bytes";
    renaming_a_table_to_an_empty_name_is_refused: "renamed table", "", "", "it is empty";
    renaming_a_table_to_two_dots_is_refused: "renamed table", "..", "..", "it contains '..'";
    renaming_a_table_to_a_name_with_a_slash_is_refused: "renamed table", "x/y", "x/y", "slash";
    renaming_a_table_to_a_name_with_a_newline_is_refused: "renamed table", "a\nb", "a\\nb", "control character";
    renaming_a_table_to_head_is_refused: "renamed table", "HEAD", "HEAD", "reserved word";
    renaming_a_table_to_101_characters_is_refused: "renamed table", long_name(), long_name(), "longer than 100 bytes";
    an_empty_branch_name_is_refused: "branch", "", "", "it is empty";
    a_branch_name_of_two_dots_is_refused: "branch", "..", "..", "it contains '..'";
    a_branch_name_with_a_slash_is_refused: "branch", "a/b", "a/b", "it contains a slash";
    a_branch_name_with_a_control_character_is_refused: "branch", "a\u{7}b", "a\\u{7}b", "control character";
    the_branch_name_head_is_refused_as_reserved: "branch", "HEAD", "HEAD", "reserved word";
    a_branch_name_of_101_characters_is_refused: "branch", long_name(), long_name(), "longer than 100 bytes";
    checkout_b_with_an_empty_branch_name_is_refused: "checkout branch", "", "", "it is empty";
    checkout_b_with_a_slash_in_the_branch_name_is_refused: "checkout branch", "a/b", "a/b", "slash";
    checkout_b_with_a_control_character_in_the_branch_name_is_refused: "checkout branch", "a\u{1b}b", "a\\u{1b}b", "control character";
    checkout_b_with_the_branch_name_head_is_refused: "checkout branch", "HEAD", "HEAD", "reserved word";
    checkout_b_with_two_dots_is_refused: "checkout branch", "..", "..", "it contains '..'";
    checkout_b_with_101_characters_is_refused: "checkout branch", long_name(), long_name(), "longer than 100 bytes";
    an_empty_tag_name_is_refused: "tag", "", "", "it is empty";
    a_tag_name_of_two_dots_is_refused: "tag", "..", "..", "it contains '..'";
    a_tag_name_with_a_slash_is_refused: "tag", "a/b", "a/b", "it contains a slash";
    a_tag_name_with_a_control_character_is_refused: "tag", "a\u{1}b", "a\\u{1}b", "control character";
    the_tag_name_head_is_refused_as_reserved: "tag", "HEAD", "HEAD", "reserved word";
    a_tag_name_of_101_characters_is_refused: "tag", long_name(), long_name(), "longer than 100 bytes";
}

#[test]
fn a_name_of_exactly_100_characters_is_accepted_for_tables_branches_and_tags() {
    let dir = Dir::with_people();
    let name = "b".repeat(100);
    dir.strata(&["import", &name, "people.csv", "-k", "id"])
        .ok();
    dir.strata(&["branch", &name]).ok();
    dir.strata(&["tag", &name]).ok();
    assert_eq!(dir.export_csv(&name, None), PEOPLE_CSV);
    assert_eq!(dir.rev_id(&name), dir.rev_id("HEAD"));
}
