//! Cloud object stores (S3 and compatibles, GCS, Azure) built from a URL, the standard
//! environment and per-remote options. Credentials come from the environment or an AWS
//! profile, never from the URL or stored options.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use crate::error::{Error, Result};

/// Options Strata itself understands (not passed to the store).
pub const STRATA_OPTIONS: &[&str] = &[ALLOW_UNSAFE_STORE, crate::shared::ALLOW_NETWORK_FS];

/// Lets a store that fails the conditional-write probe be used anyway (with a warning).
pub const ALLOW_UNSAFE_STORE: &str = "allow_unsafe_store";

/// Whether some backend knows the option `key` (Strata's own, S3's, GCS's, Azure's, or the
/// HTTP client's), in any case.
/// Checks an option's value where a bad one would only fail later, deep in a request: an
/// endpoint (`endpoint`, `aws_endpoint`, GCS's base URL, ...) must be an absolute
/// `http(s)://HOST[:PORT]` URL. Returns why not, in one line.
pub fn check_option_value(key: &str, value: &str) -> std::result::Result<(), String> {
    let k = key.trim().to_ascii_lowercase();
    if !(k.contains("endpoint") || k.ends_with("base_url")) {
        return Ok(());
    }
    match url::Url::parse(value.trim()) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "option {key}='{value}' is not a server's URL: give http://HOST:PORT or https://HOST"
        )),
    }
}

pub fn is_known_option(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    STRATA_OPTIONS.contains(&key.as_str())
        || AmazonS3ConfigKey::from_str(&key).is_ok()
        || key.parse::<object_store::gcp::GoogleConfigKey>().is_ok()
        || key.parse::<object_store::azure::AzureConfigKey>().is_ok()
}

/// Whether the option `key` would hold a secret (a key, a token, a password) for some
/// backend. Such options are refused: options are stored in the repository, and secrets come
/// from the environment or the backend's credential files.
pub fn is_secret_option(key: &str) -> bool {
    use object_store::azure::AzureConfigKey as Az;
    use object_store::gcp::GoogleConfigKey as Gs;
    let key = key.trim().to_ascii_lowercase();
    let s3 = AmazonS3ConfigKey::from_str(&key);
    let gs = key.parse::<Gs>();
    let az = key.parse::<Az>();
    let secret = matches!(
        s3,
        Ok(AmazonS3ConfigKey::SecretAccessKey | AmazonS3ConfigKey::Token)
    ) || key.contains("customer_key")
        || matches!(gs, Ok(Gs::ServiceAccountKey | Gs::BearerToken))
        || matches!(
            az,
            Ok(Az::AccessKey
                | Az::ClientSecret
                | Az::SasKey
                | Az::Token
                | Az::FabricSessionToken
                | Az::EncryptionKey)
        );
    // An option no backend knows is judged by its name.
    let unknown = s3.is_err() && gs.is_err() && az.is_err();
    secret
        || unknown
            && ["secret", "token", "password", "private_key", "account_key"]
                .iter()
                .any(|s| key.contains(s))
}

/// `STORAGE_EMULATOR_HOST` may be `host:port` or a URL.
fn emulator_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        host.to_string()
    } else {
        format!("http://{host}")
    }
}

/// Timeouts, set as configuration keys so that the environment's client settings (such as
/// `AWS_ALLOW_HTTP`) are kept.
const TIMEOUTS: [(ClientConfigKey, &str); 2] = [
    (ClientConfigKey::ConnectTimeout, "5s"),
    (ClientConfigKey::Timeout, "120s"),
];

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// Reads `key` from section `section` of an INI-style AWS file.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            in_section = line[1..line.len() - 1].trim() == section;
            continue;
        }
        if in_section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

fn aws_file(var: &str, default: &str) -> Option<String> {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".aws")
            .join(default),
    };
    std::fs::read_to_string(path).ok()
}

/// Credentials from a profile's `credential_process`: a command that prints them as JSON
/// (`{"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...,
/// "Expiration": ...}`), as the AWS tools define it. This is also how profiles that use SSO or
/// assume a role are used: `credential_process = aws configure export-credentials --profile NAME
/// --format process`. The command runs again when the credentials are about to expire.
pub struct ProcessCredentials {
    command: String,
    cached: tokio::sync::Mutex<Option<Expiring>>,
}

/// Credentials and when they expire (never: `None`).
type Expiring = (Arc<AwsCredential>, Option<chrono::DateTime<chrono::Utc>>);

impl std::fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The command may name a profile; never the secrets it prints.
        f.debug_struct("ProcessCredentials")
            .field("command", &self.command)
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

impl ProcessCredentials {
    pub fn new(command: &str) -> Self {
        ProcessCredentials {
            command: command.to_string(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn run(
        &self,
    ) -> object_store::Result<(Arc<AwsCredential>, Option<chrono::DateTime<chrono::Utc>>)> {
        let fail = |why: String| object_store::Error::Generic {
            store: "S3",
            source: format!("credential_process `{}` {why}", self.command).into(),
        };
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| fail(format!("could not run: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let parsed: ProcessOutput = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("printed no credentials it could read ({e})")))?;
        if parsed.version != 1 {
            return Err(fail(format!(
                "printed version {}; version 1 is understood",
                parsed.version
            )));
        }
        let expires = match parsed.expiration {
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| fail(format!("printed an expiration that is not a time ({e})")))?
                    .with_timezone(&chrono::Utc),
            ),
            None => None,
        };
        Ok((
            Arc::new(AwsCredential {
                key_id: parsed.access_key_id,
                secret_key: parsed.secret_access_key,
                token: parsed.session_token,
            }),
            expires,
        ))
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for ProcessCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        let fresh = |expires: &Option<chrono::DateTime<chrono::Utc>>| {
            expires.is_none_or(|t| t - chrono::Utc::now() > chrono::Duration::minutes(5))
        };
        if let Some((c, expires)) = cached.as_ref() {
            if fresh(expires) {
                return Ok(c.clone());
            }
        }
        let (c, expires) = self.run().await?;
        *cached = Some((c.clone(), expires));
        Ok(c)
    }
}

/// Fills what the environment does not give from the AWS profile (`AWS_PROFILE`, default
/// `default`): keys and session token from the credentials file, or a `credential_process`
/// from either file; region and endpoint from the config file. Web identity tokens, container
/// and instance credentials are object_store's own (`from_env`).
/// A profile's section in `~/.aws/config` (`[default]`, `[profile NAME]`).
fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    }
}

/// Whether any AWS credentials are configured where Strata looks for them (keys in the
/// environment, the profile's keys or `credential_process`, a web identity token, container
/// credentials). Instance metadata is not checked. Used to tell "no credentials at all" from
/// "these credentials may not do that" when a store refuses a request.
pub fn aws_credentials_configured() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        return true;
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let section = config_section(&profile);
    let creds = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = aws_file("AWS_CONFIG_FILE", "config");
    creds.as_deref().is_some_and(|c| {
        ini_value(c, &profile, "aws_access_key_id").is_some()
            || ini_value(c, &profile, "credential_process").is_some()
    }) || config
        .as_deref()
        .is_some_and(|c| ini_value(c, &section, "credential_process").is_some())
}

fn apply_profile(mut b: AmazonS3Builder) -> std::result::Result<AmazonS3Builder, String> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let set = |var: &str| std::env::var_os(var).is_some();
    let mut have_keys = set("AWS_ACCESS_KEY_ID");
    if !have_keys {
        if let Some(creds) = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            if let (Some(id), Some(secret)) = (
                ini_value(&creds, &profile, "aws_access_key_id"),
                ini_value(&creds, &profile, "aws_secret_access_key"),
            ) {
                have_keys = true;
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(token) = ini_value(&creds, &profile, "aws_session_token") {
                    b = b.with_token(token);
                }
            }
        }
    }
    let config = aws_file("AWS_CONFIG_FILE", "config");
    let config_section = config_section(&profile);
    if !have_keys {
        let process = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
            .and_then(|c| ini_value(&c, &profile, "credential_process"))
            .or_else(|| {
                config
                    .as_deref()
                    .and_then(|c| ini_value(c, &config_section, "credential_process"))
            });
        if let Some(command) = process {
            b = b.with_credentials(Arc::new(ProcessCredentials::new(&command)));
        }
    }
    if let Some(config) = config {
        let section = config_section;
        if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") {
            if let Some(region) = ini_value(&config, &section, "region") {
                b = b.with_region(region);
            }
        }
        if !set("AWS_ENDPOINT_URL") && !set("AWS_ENDPOINT") {
            if let Some(endpoint) = ini_value(&config, &section, "endpoint_url") {
                if check_option_value("endpoint_url", &endpoint).is_err() {
                    return Err(format!(
                        "the AWS profile '{profile}' has endpoint_url = '{endpoint}', which is not a server's URL: give http://HOST:PORT or https://HOST"
                    ));
                }
                b = b.with_endpoint(endpoint);
            }
        }
    }
    if !set("AWS_REGION") {
        if let Ok(region) = std::env::var("AWS_DEFAULT_REGION") {
            b = b.with_region(region);
        }
    }
    Ok(b)
}

/// A storage failure people meet often enough to be told what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFault {
    /// The bucket does not exist.
    NoSuchBucket,
    /// The store refused the credentials (unknown key, bad signature, expired token), or
    /// none were found.
    BadCredentials,
    /// The credentials may not read or write there.
    PermissionDenied,
    /// The endpoint's host name does not resolve.
    UnknownHost,
    /// Nothing answers at the endpoint (refused, timed out).
    Unreachable,
}

impl StorageFault {
    /// Recognises the common failures of a cloud store. object_store reports the S3 error
    /// code (`NoSuchBucket`, `InvalidAccessKeyId`, ...) and the HTTP client's failure only in
    /// its text, so that is where they are looked for: here, and nowhere else.
    pub fn of(e: &object_store::Error) -> Option<Self> {
        let text = format!("{e:?} {e}").to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        Some(
            if has(&[
                "nosuchbucket",
                "specified bucket does not exist",
                "containernotfound",
                "specified container does not exist",
            ]) {
                StorageFault::NoSuchBucket
            } else if has(&[
                "invalidaccesskeyid",
                "signaturedoesnotmatch",
                "invalidtoken",
                "expiredtoken",
                "no credentials",
                "authenticationfailed",
                "server failed to authenticate the request",
            ]) {
                StorageFault::BadCredentials
            } else if matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            ) || has(&[
                "accessdenied",
                "access denied",
                "403 forbidden",
                "status: 403",
            ]) {
                StorageFault::PermissionDenied
            } else if has(&[
                "dns error",
                "failed to lookup address",
                "name or service not known",
                "no such host",
            ]) {
                StorageFault::UnknownHost
            } else if has(&[
                "connection refused",
                "tcp connect error",
                "connect timed out",
                "error sending request",
                "timed out",
            ]) {
                StorageFault::Unreachable
            } else {
                return None;
            },
        )
    }
}

/// TLS and request signing use ring. Installing it as the process's default provider is
/// idempotent: a second call (or a provider some other part of the program installed) is
/// left as it is.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the store for a cloud URL, wrapped so that it sees only the URL's prefix.
pub fn open(
    scheme: &str,
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>> {
    let bad = |reason: String| Error::BadUrl {
        url: url.to_string(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let bucket = parsed.host_str().unwrap_or("").to_string();
    if bucket.is_empty() {
        let form = match scheme {
            "s3" | "s3a" => "s3://bucket/prefix",
            "gs" => "gs://bucket/prefix",
            _ => "az://container/prefix",
        };
        return Err(bad(format!("it names no bucket: use {form}")));
    }
    let prefix = parsed.path().trim_matches('/').to_string();
    for (k, v) in options {
        check_option_value(k, v).map_err(bad)?;
    }
    // The builders read their backend's variables from the environment as well.
    let family = match scheme {
        "s3" | "s3a" => "aws_",
        "gs" => "google_",
        _ => "azure_",
    };
    for (k, v) in std::env::vars() {
        if k.to_ascii_lowercase().starts_with(family) && check_option_value(&k, &v).is_err() {
            return Err(bad(format!(
                "the environment variable {k}='{v}' is not a server's URL: give http://HOST:PORT or https://HOST, or unset it"
            )));
        }
    }
    install_crypto_provider();
    let store_options = options
        .iter()
        .filter(|(k, _)| !STRATA_OPTIONS.contains(&k.as_str()));
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => {
            let mut b = apply_profile(AmazonS3Builder::from_env())
                .map_err(bad)?
                .with_bucket_name(&bucket)
                .with_retry(retry());
            for (k, v) in TIMEOUTS {
                b = b.with_config(AmazonS3ConfigKey::Client(k), v);
            }
            for (k, v) in store_options {
                let key = AmazonS3ConfigKey::from_str(k).map_err(|_| {
                    bad(format!(
                        "unknown option '{k}'; S3 options include endpoint, region, allow_http, virtual_hosted_style_request"
                    ))
                })?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        "gs" => {
            use object_store::gcp::GoogleConfigKey;
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(retry());
            for (k, v) in TIMEOUTS {
                b = b.with_config(GoogleConfigKey::Client(k), v);
            }
            // Google's emulator variable: the server at that address, without credentials
            // (as Google's own client libraries use it). A per-remote endpoint wins.
            if let Some(host) = std::env::var("STORAGE_EMULATOR_HOST")
                .ok()
                .filter(|h| !h.trim().is_empty())
            {
                b = b
                    .with_config(GoogleConfigKey::BaseUrl, emulator_url(&host))
                    .with_config(GoogleConfigKey::SkipSignature, "true");
            }
            for (k, v) in store_options {
                // `endpoint`, as for the other backends, is the service's base URL.
                let key = if k == "endpoint" {
                    GoogleConfigKey::BaseUrl
                } else {
                    k.parse().map_err(|_| {
                        bad(format!(
                            "unknown option '{k}' for gs://; GCS options include endpoint, skip_signature, service_account (a key file's path)"
                        ))
                    })?
                };
                b = b.with_config(key, v);
            }
            // Unsigned requests (an emulator, a public bucket) need no token: without this,
            // object_store would still ask the instance metadata server for one.
            let unsigned = b
                .get_config_value(&GoogleConfigKey::SkipSignature)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if unsigned {
                b = b.with_credentials(Arc::new(object_store::StaticCredentialProvider::new(
                    object_store::gcp::GcpCredential {
                        bearer: String::new(),
                    },
                )));
            }
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        "az" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (k, v) in TIMEOUTS {
                b = b.with_config(object_store::azure::AzureConfigKey::Client(k), v);
            }
            for (k, v) in store_options {
                let key = k.parse().map_err(|_| {
                    bad(format!(
                        "unknown option '{k}' for az://; Azure options include endpoint, account_name, use_emulator, allow_http"
                    ))
                })?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| {
                let text = e.to_string();
                if text.contains("Account must be specified") {
                    bad("it names no storage account: set AZURE_STORAGE_ACCOUNT_NAME, or give -o account_name=NAME, or use abfss://container@ACCOUNT.dfs.core.windows.net/prefix (AZURE_STORAGE_USE_EMULATOR=true for Azurite)".into())
                } else {
                    bad(text)
                }
            })?)
        }
        other => return Err(bad(format!("unknown scheme '{other}'"))),
    };
    if prefix.is_empty() {
        Ok(store)
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_are_read_by_section() {
        let text = "[default]\naws_access_key_id = A\n[profile dev]\nregion = eu-west-1\n";
        assert_eq!(
            ini_value(text, "default", "aws_access_key_id").as_deref(),
            Some("A")
        );
        assert_eq!(
            ini_value(text, "profile dev", "region").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(ini_value(text, "profile dev", "aws_access_key_id"), None);
    }

    #[test]
    fn cloud_urls_build_stores_without_network() {
        let opts = BTreeMap::from([("region".to_string(), "us-east-1".to_string())]);
        open("s3", "s3://bucket/some/prefix", &opts).expect("s3 builds");
        assert!(open(
            "s3",
            "s3://bucket/p",
            &BTreeMap::from([("nonsense".to_string(), "1".to_string())])
        )
        .is_err());
        assert!(open("s3", "s3:///p", &opts).is_err());
        // A URL without a bucket, or an Azure URL without an account, says what to give.
        for (scheme, url, form) in [
            ("s3", "s3:///p", "use s3://bucket/prefix"),
            ("gs", "gs:///p", "use gs://bucket/prefix"),
            ("az", "az:///p", "use az://container/prefix"),
        ] {
            let err = open(scheme, url, &BTreeMap::new())
                .err()
                .map(|e| e.to_string());
            assert!(err.as_deref().is_some_and(|e| e.contains(form)), "{err:?}");
        }
        let gs = BTreeMap::from([
            ("endpoint".to_string(), "http://127.0.0.1:1".to_string()),
            ("skip_signature".to_string(), "true".to_string()),
        ]);
        open("gs", "gs://bucket/some/prefix", &gs).expect("gs builds");
        let az = BTreeMap::from([
            ("use_emulator".to_string(), "true".to_string()),
            ("account_name".to_string(), "devstoreaccount1".to_string()),
        ]);
        open("az", "az://container/some/prefix", &az).expect("az builds");
        let err = open(
            "gs",
            "gs://bucket/p",
            &BTreeMap::from([("region".to_string(), "x".to_string())]),
        )
        .expect_err("region is no GCS option");
        assert!(err.to_string().contains("GCS options include"), "{err}");
    }

    #[test]
    fn secrets_of_every_backend_are_recognised_and_paths_are_not() {
        for key in [
            "aws_secret_access_key",
            "secret_access_key",
            "token",
            "aws_sse_customer_key_base64",
            "google_service_account_key",
            "service_account_key",
            "bearer_token",
            "azure_storage_account_key",
            "access_key",
            "account_key",
            "master_key",
            "client_secret",
            "sas_token",
            "sas_key",
            "azure_storage_token",
            "My_Password",
        ] {
            assert!(is_secret_option(key), "{key} holds a secret");
        }
        for key in [
            "endpoint",
            "region",
            "aws_access_key_id",
            "aws_web_identity_token_file",
            "google_service_account",
            "service_account",
            "account_name",
            "use_emulator",
            "allow_http",
            "skip_signature",
        ] {
            assert!(!is_secret_option(key), "{key} holds no secret");
        }
    }

    #[test]
    fn the_emulator_host_may_be_given_with_or_without_a_scheme() {
        assert_eq!(emulator_url("127.0.0.1:4443"), "http://127.0.0.1:4443");
        assert_eq!(emulator_url("https://gcs.local/"), "https://gcs.local");
    }
}
