//! Standard output for people: straight to the terminal or pipe, or through a pager when a
//! long listing goes to a terminal (as git does), and colour only where it can be seen.

use std::io::{IsTerminal, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// The pager, while one runs: its process and the pipe into it.
static PAGER: Mutex<Option<(Child, ChildStdin)>> = Mutex::new(None);

/// Where `outln!` writes: the pager if one was started, else standard output.
pub struct Out;

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pager = PAGER.lock().unwrap_or_else(|e| e.into_inner());
        match pager.as_mut() {
            Some((_, stdin)) => stdin.write(buf),
            None => std::io::stdout().lock().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut pager = PAGER.lock().unwrap_or_else(|e| e.into_inner());
        match pager.as_mut() {
            Some((_, stdin)) => stdin.flush(),
            None => std::io::stdout().lock().flush(),
        }
    }
}

/// The pager command: `STRATA_PAGER`, else `PAGER`, else `less`; none when it is empty or
/// `cat`, or when standard output is not a terminal.
fn pager_command() -> Option<String> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let cmd = std::env::var("STRATA_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".to_string());
    let cmd = cmd.trim().to_string();
    (!cmd.is_empty() && cmd != "cat").then_some(cmd)
}

/// Starts the pager for a command whose output may be long (log, diff, show, reflog), when
/// standard output is a terminal. `less` gets `LESS=FRX` unless set: it quits at once when
/// the output fits on one screen, and keeps colours. A pager that cannot start is skipped.
pub fn start_pager() {
    let Some(cmd) = pager_command() else {
        return;
    };
    let mut command = Command::new("sh");
    command.arg("-c").arg(&cmd).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        command.env("LESS", "FRX");
    }
    match command.spawn() {
        Ok(mut child) => {
            if let Some(stdin) = child.stdin.take() {
                *PAGER.lock().unwrap_or_else(|e| e.into_inner()) = Some((child, stdin));
            }
        }
        Err(e) => tracing::debug!(pager = %cmd, error = %e, "could not start the pager"),
    }
}

/// Closes the pipe into the pager and waits until the user quits it.
pub fn finish_pager() {
    let taken = PAGER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((mut child, stdin)) = taken {
        drop(stdin);
        let _ = child.wait();
    }
}

/// Whether colour goes to standard output: never with `NO_COLOR` set (https://no-color.org),
/// always with `CLICOLOR_FORCE` set (not `0`), else on a terminal (not `TERM=dumb`).
pub fn colour() -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Paints text for standard output when colour is on.
#[derive(Clone, Copy)]
pub struct Paint {
    on: bool,
}

impl Paint {
    pub fn stdout() -> Self {
        Paint { on: colour() }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A commit id.
    pub fn id(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Branch and tag names beside a commit.
    pub fn decoration(&self, text: &str) -> String {
        self.paint("1;36", text)
    }

    /// Something added.
    pub fn added(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Something removed.
    pub fn removed(&self, text: &str) -> String {
        self.paint("31", text)
    }
}
