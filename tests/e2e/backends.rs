//! The storage a shared remote can live on, so that one scenario runs on each: a folder
//! (`file://`), Ceph radosgw and LocalStack (both S3), Azurite (Azure Blob Storage) and
//! fake-gcs-server (Google Cloud Storage), all started by `./test.sh` or
//! `bash localstack/all.sh start`. A server whose endpoint variable is unset makes the test
//! fail, saying how to start the servers; it is never skipped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::harness::{Dir, Output};

/// Where a test's shared remote is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A folder in a temporary directory, as a `file://` URL.
    File,
    /// Ceph radosgw: create-only puts are atomic.
    Radosgw,
    /// LocalStack: `If-Match` is atomic, but two create-only puts of a brand-new key can
    /// both succeed (see localstack/README.md).
    LocalStack,
    /// Azurite, the Azure Blob Storage emulator (`az://`).
    Azurite,
    /// fake-gcs-server, a Google Cloud Storage emulator (`gs://`).
    Gcs,
}

/// A fresh, empty remote location on a backend. For a folder it lives (and is removed) with
/// this value; S3 prefixes are unique per test and left in the (in-memory) bucket.
pub struct Remote {
    /// The URL to give `remote add` and `clone`.
    pub url: String,
    /// For a folder remote: the folder (not created yet; the first push creates it).
    pub folder: Option<PathBuf>,
    _holder: Option<Dir>,
}

impl Remote {
    /// How the remote is named on a command line as a user would type it: a plain path for a
    /// folder, the URL otherwise.
    pub fn plain(&self) -> &str {
        match &self.folder {
            Some(path) => path.to_str().expect("temporary paths are UTF-8"),
            None => &self.url,
        }
    }

    /// How many files the remote holds, where that can be counted cheaply (a folder); `None`
    /// on S3.
    pub fn file_count(&self) -> Option<usize> {
        self.folder.as_deref().map(count_files)
    }
}

/// How many files lie under a folder (0 if it does not exist).
pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.expect("a folder entry should be readable").path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

impl Backend {
    /// How many rounds a repeated scenario runs on this backend, of `full` on a folder. Each
    /// request to a server takes many times as long as on a folder, and the emulators and
    /// LocalStack share the machine's cores with the tests; the scenario is the same on each,
    /// so fewer rounds still meet each server's answers at every step. radosgw, the S3
    /// server whose guarantees the others are compared with, runs half; the others 3 in 10.
    pub fn rounds(self, full: i64) -> i64 {
        match self {
            Backend::File => full,
            Backend::Radosgw => (full / 2).max(1),
            Backend::LocalStack | Backend::Azurite | Backend::Gcs => (full * 3 / 10).max(1),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::File => "a folder",
            Backend::Radosgw => "radosgw",
            Backend::LocalStack => "LocalStack",
            Backend::Azurite => "Azurite",
            Backend::Gcs => "fake-gcs-server",
        }
    }

    /// Whether two racing create-only puts of the same new key can both succeed.
    pub fn create_only_is_atomic(self) -> bool {
        self != Backend::LocalStack
    }

    /// The S3 endpoint (`None` for a folder); panics, saying how to start the servers, when
    /// its variable is unset.
    pub fn endpoint(self) -> Option<String> {
        let var = match self {
            Backend::File => return None,
            Backend::Radosgw => "STRATA_RADOSGW_ENDPOINT",
            Backend::LocalStack => "STRATA_LOCALSTACK_ENDPOINT",
            Backend::Azurite => "STRATA_AZURITE_ENDPOINT",
            Backend::Gcs => "STRATA_GCS_ENDPOINT",
        };
        Some(std::env::var(var).unwrap_or_else(|_| {
            panic!(
                "{var} is not set: this test needs the local storage servers. Run ./test.sh, which \
                 starts them, or: bash localstack/all.sh start && eval \"$(bash localstack/all.sh env)\""
            )
        }))
    }

    /// A fresh, empty remote; `name` makes S3 prefixes easier to recognise.
    pub fn remote(self, name: &str) -> Remote {
        match self.endpoint() {
            None => {
                let holder = Dir::empty();
                let folder = holder.join("hub");
                let text = folder.to_str().expect("temporary paths are UTF-8");
                assert!(text.starts_with('/'), "expected an absolute path: {text}");
                Remote {
                    url: format!("file://{text}"),
                    folder: Some(folder),
                    _holder: Some(holder),
                }
            }
            Some(endpoint) => Remote {
                url: unique_url(self, &endpoint, name),
                folder: None,
                _holder: None,
            },
        }
    }

    /// The URL scheme of this backend's remotes.
    fn scheme(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::Radosgw | Backend::LocalStack => "s3",
            Backend::Azurite => "az",
            Backend::Gcs => "gs",
        }
    }

    /// Gives `cmd` what it needs to reach this backend, through each cloud's standard
    /// environment only (any inherited variable of that cloud removed first): nothing for a
    /// folder; `AWS_*` for S3; `AZURE_STORAGE_*` and `AZURITE_BLOB_STORAGE_URL` for Azurite;
    /// `STORAGE_EMULATOR_HOST` for the GCS emulator.
    pub fn apply(self, cmd: &mut Command) -> &mut Command {
        let Some(endpoint) = self.endpoint() else {
            return cmd;
        };
        let prefixes: &[&str] = match self {
            Backend::File => &[],
            Backend::Radosgw | Backend::LocalStack => &["AWS_"],
            Backend::Azurite => &["AZURE_", "AZURITE_"],
            Backend::Gcs => &["GOOGLE_", "STORAGE_EMULATOR_HOST"],
        };
        for (k, _) in std::env::vars_os() {
            if k.to_str()
                .is_some_and(|k| prefixes.iter().any(|p| k.starts_with(p)))
            {
                cmd.env_remove(k);
            }
        }
        match self {
            Backend::File => cmd,
            Backend::Radosgw | Backend::LocalStack => cmd
                .env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_ACCESS_KEY_ID", "strata")
                .env("AWS_SECRET_ACCESS_KEY", "stratasecret")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ALLOW_HTTP", "true"),
            Backend::Azurite => cmd
                .env("AZURE_STORAGE_USE_EMULATOR", "true")
                .env("AZURITE_BLOB_STORAGE_URL", endpoint)
                .env("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
                .env("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY),
            Backend::Gcs => cmd.env("STORAGE_EMULATOR_HOST", endpoint),
        }
    }

    /// A `strata` command in `dir` that can reach this backend, to be started by the caller.
    pub fn command<S: AsRef<OsStr>>(self, dir: &Dir, args: &[S]) -> Command {
        let mut cmd = dir.command(args);
        self.apply(&mut cmd);
        cmd
    }

    /// Runs `strata` in `dir` with what it needs to reach this backend, and waits for it.
    pub fn run<S: AsRef<OsStr>>(self, dir: &Dir, args: &[S]) -> Output {
        let shown: Vec<String> = args.iter().map(|a| format!("{:?}", a.as_ref())).collect();
        let out = self
            .command(dir, args)
            .output()
            .expect("the strata binary should start");
        Output::of(
            format!("strata {} (remote on {})", shown.join(" "), self.name()),
            out,
        )
    }
}

/// Azurite's well-known development account and its published key (not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The bucket (a container on Azure) the test servers hold.
fn test_bucket() -> String {
    std::env::var("STRATA_TEST_BUCKET").unwrap_or_else(|_| "strata".into())
}

/// `SCHEME://BUCKET/e2e/NAME-...`, unique to this process and call. On the GCS emulator the
/// remote gets a bucket of its own (see `create_gcs_emulator_bucket`); elsewhere it is a
/// prefix of the test bucket.
fn unique_url(backend: Backend, endpoint: &str, name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let unique = format!(
        "{nanos:x}-{:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let bucket = match backend {
        Backend::Gcs => {
            let own = format!("strata-e2e-{unique}");
            strata_remote::testing::create_gcs_emulator_bucket(endpoint, &own)
                .unwrap_or_else(|e| panic!("the GCS emulator creates a bucket: {e}"));
            own
        }
        _ => test_bucket(),
    };
    format!("{}://{bucket}/e2e/{name}-{unique}", backend.scheme())
}
