//! The `strata` command: parses the command line, calls the library, renders the result.
//! It owns the exit code, and prints an error once, on one line, with what to do about it.

/// `println!` that returns the write's error instead of panicking: a reader that closed the
/// pipe (`strata log | head -1`) ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::output::Out, $($arg)*)
    }};
}

/// `print!` that returns the write's error (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!($crate::output::Out, $($arg)*)
    }};
}

mod advice;
mod args;
mod commands;
mod diff;
mod history;
mod output;
mod render;
mod sync;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse_from(count_shorthand(std::env::args_os())) {
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
    // Ctrl-C stops the command where it is: its work is dropped at its next step (a
    // half-written export's temporary file is removed with it), and every step it may have
    // left half done is one that a crash leaves consistent too. A watcher on the runtime's
    // workers ends the process if the command cannot be dropped within two seconds (blocked
    // writing to a pipe nobody reads).
    let (interrupted, on_interrupt) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = interrupted.send(());
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            eprintln!("strata: interrupted");
            std::process::exit(130);
        }
        // No signal handling here: keep the channel open so the command runs to its end.
        let _open = interrupted;
        std::future::pending::<()>().await;
    });
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = commands::run(cli) => Some(r),
            _ = on_interrupt => None,
        }
    });
    runtime.shutdown_background();
    output::finish_pager();
    let Some(outcome) = outcome else {
        eprintln!("strata: interrupted");
        return ExitCode::from(130);
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                let _ = std::io::stdout().flush();
                return ExitCode::from(*code);
            }
            let _ = std::io::stdout().flush();
            eprintln!("strata: error: {}", advice::describe(&e));
            ExitCode::from(1)
        }
    }
}

/// `log -3` and `reflog -3` as git takes them: after `log` or `reflog`, `-N` is
/// `--max-count=N`.
fn count_shorthand(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut counted = false;
    let mut out = Vec::new();
    for a in args {
        let text = a.to_str().unwrap_or_default();
        if text == "--" {
            counted = false;
        } else if counted
            && text.len() > 1
            && text.starts_with('-')
            && text[1..].bytes().all(|b| b.is_ascii_digit())
        {
            out.push(format!("--max-count={}", &text[1..]).into());
            continue;
        } else if !out.is_empty() && (text == "log" || text == "reflog") {
            counted = true;
        }
        out.push(a);
    }
    out
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
/// Ends a command with an exit status and no message (`diff --exit-code` finding changes).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
