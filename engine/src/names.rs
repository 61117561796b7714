//! Validation of user-chosen names (tables, branches, tags, remotes).

use crate::error::{Error, Result};

/// Longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 100;

const RESERVED: &[&str] = &["HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "latest"];

/// Checks a table, branch, tag or remote name. Allowed: ASCII letters, digits, `_`, `-`, `.`;
/// not starting with `.` or `-`; no `..`; not a reserved word; at most [`MAX_NAME_LEN`] bytes.
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let bad = |reason: &'static str| {
        Err(Error::InvalidName {
            what,
            name: name.escape_default().to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 100 bytes");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("it contains a control character");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains a slash");
    }
    if name.contains("..") {
        return bad("it contains '..'");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it starts with '.' or '-'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return bad("only letters, digits, '_', '-' and '.' are allowed");
    }
    if RESERVED.contains(&name) {
        return bad("it is a reserved word");
    }
    if name.ends_with(".lock") {
        return bad("it ends with '.lock'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass_and_bad_names_say_why() {
        for ok in ["main", "feature-1", "v1.0", "sales_2024"] {
            validate_name("branch", ok).expect(ok);
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a\u{7}",
            "HEAD",
            ".hidden",
            "-x",
            "a b",
            "x.lock",
            &"a".repeat(101),
        ] {
            assert!(validate_name("branch", bad).is_err(), "{bad:?} should fail");
        }
    }
}
