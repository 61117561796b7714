//! The `strata` command: parses the command line, calls the engine, renders the result.
//! It owns the exit code and prints an error once, on one line.

mod args;
mod commands;
mod diff;
mod render;
mod sync;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let _ = std::io::stdout().flush();
            match explain_storage_error(&e) {
                Some(line) => eprintln!("strata: error: {line}"),
                None => eprintln!("strata: error: {e:#}"),
            }
            ExitCode::from(1)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// A reader that closed our standard output (`strata log | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Turns a storage failure (S3 and friends) into one line that says what to do. The store's
/// own message is long and technical; the cases users meet are few.
fn explain_storage_error(e: &anyhow::Error) -> Option<String> {
    let store_error = e
        .chain()
        .find_map(|c| c.downcast_ref::<object_store::Error>())?;
    let location = e
        .chain()
        .find_map(|c| match c.downcast_ref::<strata_engine::Error>() {
            Some(strata_engine::Error::Storage { path, .. }) => Some(path.clone()),
            _ => None,
        });
    let text = format!("{store_error:?} {store_error}").to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let what = if has(&["nosuchbucket", "specified bucket does not exist"]) {
        "the bucket does not exist: create it, or fix the bucket name in the remote URL"
    } else if has(&[
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "invalidtoken",
        "expiredtoken",
        "no credentials",
    ]) {
        "the credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
    } else if has(&[
        "accessdenied",
        "access denied",
        "403 forbidden",
        "status: 403",
    ]) {
        "permission denied: these credentials may not read or write this bucket and prefix"
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
    ]) {
        "unknown host: check the endpoint (AWS_ENDPOINT_URL or --option endpoint=...) and the bucket name"
    } else if has(&[
        "connection refused",
        "tcp connect error",
        "connect timed out",
        "error sending request",
        "timed out",
    ]) {
        "cannot reach the storage endpoint: is the server running, and is the endpoint right (AWS_ENDPOINT_URL, --option endpoint=..., allow_http for http://)?"
    } else {
        return None;
    };
    Some(match location {
        Some(l) => format!("{what} (while accessing {l})"),
        None => what.to_string(),
    })
}
