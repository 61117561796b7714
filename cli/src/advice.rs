//! What the command line tells people to do about an error: the library says what went wrong
//! and which kind of fix applies; this names the commands.

use strata::{StorageFault, Suggestion};

/// The one line printed for an error: what went wrong, then what to do.
pub fn describe(e: &anyhow::Error) -> String {
    let lib = e.chain().find_map(|c| c.downcast_ref::<strata::Error>());
    if let Some((fault, location)) = lib.and_then(|l| l.storage_fault()) {
        return format!("{} (while accessing {location})", storage(fault, &location));
    }
    // Each cause once: many errors repeat their cause's text in their own.
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    if let Some(s) = lib.and_then(|l| l.suggestion()) {
        line.push_str("; ");
        line.push_str(&advice(&s));
    } else if lib.is_some_and(|l| l.kind() == strata::ErrorKind::PermissionDenied) {
        line.push_str("; this user may not write there, or its file system is read-only");
    }
    line
}

/// The cloud a location is on, by its URL's scheme; S3 (and its compatibles) otherwise.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

impl Cloud {
    fn of(location: &str) -> Cloud {
        let scheme = location.split_once("://").map_or("", |(s, _)| s);
        match scheme.to_ascii_lowercase().as_str() {
            "gs" => Cloud::Gcs,
            "az" | "abfs" | "abfss" => Cloud::Azure,
            _ => Cloud::S3,
        }
    }
}

fn storage(fault: StorageFault, location: &str) -> &'static str {
    let cloud = Cloud::of(location);
    match (fault, cloud) {
        (StorageFault::NoSuchBucket, Cloud::Azure) => {
            "the container does not exist: create it, or fix the container name in the remote URL"
        }
        (StorageFault::NoSuchBucket, _) => {
            "the bucket does not exist: create it, or fix the bucket name in the remote URL"
        }
        (StorageFault::BadCredentials, Cloud::S3) => {
            "the credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        }
        (StorageFault::BadCredentials, Cloud::Gcs) => {
            "the credentials were refused: check GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT)"
        }
        (StorageFault::BadCredentials, Cloud::Azure) => {
            "the credentials were refused: check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY)"
        }
        (StorageFault::PermissionDenied, Cloud::S3) if !strata::aws_credentials_configured() => {
            "access denied, and no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        }
        (StorageFault::PermissionDenied, _) => {
            "permission denied: these credentials may not read or write this bucket and prefix"
        }
        (StorageFault::UnknownHost, Cloud::S3) => {
            "unknown host: check the endpoint (AWS_ENDPOINT_URL or --option endpoint=...) and the bucket name"
        }
        (StorageFault::UnknownHost, _) => {
            "unknown host: check the endpoint (--option endpoint=...) and the bucket or container name"
        }
        (StorageFault::Unreachable, Cloud::S3) => {
            "cannot reach the storage endpoint: is the server running, and is the endpoint right (AWS_ENDPOINT_URL, --option endpoint=..., allow_http for http://)?"
        }
        (StorageFault::Unreachable, _) => {
            "cannot reach the storage endpoint: is the server running, and is the endpoint right (--option endpoint=..., allow_http for http://)?"
        }
        _ => "the storage failed",
    }
}

/// A suggestion in the words of this command line.
pub fn advice(s: &Suggestion) -> String {
    match s {
        Suggestion::Init => "run `strata init` to create one".into(),
        Suggestion::RepairObjects => "`strata fsck --repair` (with --remote NAME for a remote's object) writes it again from an intact copy".into(),
        Suggestion::CheckRefRecords => {
            "`strata fsck` (with --remote NAME for a remote) says what to do".into()
        }
        Suggestion::ListTables => "`strata table list` shows the tables".into(),
        Suggestion::ListBranches => "`strata branch` lists the branches".into(),
        Suggestion::ListTags => "`strata tag` lists the tags".into(),
        Suggestion::ChooseImportMode => "use --mode append, upsert or replace to change it".into(),
        Suggestion::Upsert => "use --mode upsert to overwrite it".into(),
        Suggestion::RevisionSyntax => "give a branch, tag, commit id, HEAD, REV~N or REV^".into(),
        Suggestion::CommitOrDiscard => {
            "commit them first (or discard them with 'strata reset --hard')".into()
        }
        Suggestion::CheckoutAnother => "check out another branch first".into(),
        Suggestion::AddRemote { name } => format!("add one with `strata remote add {name} URL`"),
        Suggestion::PullThenPush => "run `strata pull` to combine them, then push again".into(),
        Suggestion::FetchThenPush => "fetch and check, then push again".into(),
        Suggestion::ForceTag => "use --force to replace it".into(),
        Suggestion::SafeStore => "use a store that does (S3, MinIO, Ceph, GCS, Azure, a local folder), or accept the risk with --option allow_unsafe_store=true".into(),
        Suggestion::WaitForGc { remote } => format!(
            "wait for it to finish. If it was interrupted, run `strata gc --remote {remote}` in the repository that started it, or `strata gc --remote {remote} --break-lock` if you are sure it is not running"
        ),
        Suggestion::ResolveConflicts { pull: false } => "see them with 'strata conflicts show', resolve with 'strata conflicts resolve --ours|--theirs' (or import/delete the rows), then 'strata commit'; 'strata merge --abort' undoes the merge".into(),
        Suggestion::ResolveConflicts { pull: true } => "see them with 'strata conflicts show', resolve with 'strata conflicts resolve --ours|--theirs' (or import/delete the rows), then 'strata commit' and push; 'strata merge --abort' undoes it".into(),
        Suggestion::FinishOrAbortMerge => {
            "finish it with 'strata commit' or undo it with 'strata merge --abort'".into()
        }
        Suggestion::SeeProblems => "each line above says what to do".into(),
        Suggestion::ResolveOrAbort => "resolve them ('strata conflicts show', 'strata conflicts resolve --ours|--theirs', or fix the rows with import/delete), or undo the merge with 'strata merge --abort'".into(),
        Suggestion::MergeWithoutFfOnly => "merge without --ff-only".into(),
        Suggestion::ApplyByHand => "make the change by hand ('strata import', 'strata delete') and commit, or merge the branch instead ('strata merge')".into(),
        Suggestion::GiveMessage => "give one with -m".into(),
        Suggestion::CreateTable => {
            "import without --mode (and with --primary-key) to create it".into()
        }
        Suggestion::GiveKey => "name its key columns with --primary-key COL[,COL...]".into(),
        Suggestion::GiveFormat => "pass --format csv|parquet|jsonl".into(),
        Suggestion::RetryLater => "run it again when the other command has finished".into(),
        Suggestion::FreeSpace => {
            "free some space on that disk, then run it again (what was stored before is intact)"
                .into()
        }
        Suggestion::CheckUrlOrCreate => {
            "check the URL; to make a new repository there, push with --create".into()
        }
        Suggestion::ForceDeleteBranch => "merge it first, or delete it anyway with -D".into(),
        Suggestion::RemountOrAllow => "or, knowing that pushes may then go unseen for up to a minute, accept it for this remote with --option allow_network_fs=true".into(),
        Suggestion::GiveColumnType {
            column,
            keeps: Some(keeps),
        } => format!("fix the value, or give the column's type: --type {column}={keeps} keeps every value as written"),
        Suggestion::GiveColumnType { .. } => "fix the value to suit the column's type".into(),
        Suggestion::FixValueOrChooseType { table } => format!("fix that row first ('strata import {table} FILE --mode upsert'), or choose a type that holds every value"),
        Suggestion::ListRemoteTables { url } => format!("`strata table list --remote {url}` lists its tables"),
        Suggestion::RemoteRevisionSyntax { url } => format!("give a branch, tag or commit id of the remote, with ~N or ^N if needed; `strata log --all --oneline --remote {url}` lists its commits"),
        _ => "see 'strata --help'".into(),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Read-only file system (os error 30)")
        }
    }
    impl std::error::Error for Inner {}

    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Unable to open file x: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let e = anyhow::Error::new(Outer(Inner)).context("pushing");
        assert_eq!(
            super::describe(&e),
            "pushing: Unable to open file x: Read-only file system (os error 30)"
        );
    }
}
