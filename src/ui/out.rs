//! Writing to standard output: results (tables, JSON, completions) and streamed command
//! output (`ssh`, `kubectl`, `logs`).
//!
//! A closed pipe (`minik profile list | head -1`) ends the process as SIGPIPE ends any Unix
//! tool: quietly, with the signal's status (141 in a shell); minik ignores SIGPIPE only so
//! that its sockets and child pipes report errors instead of killing it. Any other write error
//! (`> /dev/full`) is reported once as `HOST_STDOUT` and ends the process with its code.
//! Neither is a panic, and neither masquerades as a MINIK_HOME problem.

use crate::errors::HOST_STDOUT;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Ends the process for a failed write to stdout (see the module docs). Never returns.
pub fn stdout_failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        die_of_sigpipe();
    }
    let mut stderr = io::stderr().lock();
    let _ = writeln!(
        stderr,
        "X Exiting due to {}: cannot write to standard output: {e}",
        HOST_STDOUT.id
    );
    let _ = writeln!(stderr, "  Advice: {}", HOST_STDOUT.advice);
    std::process::exit(HOST_STDOUT.exit_code.into())
}

fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigHandler, Signal, raise, signal};
    // SAFETY: restoring the default disposition of one signal; no handler code runs.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let _ = raise(Signal::SIGPIPE);
    // Only reached if the signal is blocked: the same status a shell would show.
    std::process::exit(128 + 13)
}

/// Writes `bytes` to stdout and flushes; a failure ends the process ([`stdout_failed`]).
pub fn write(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// `println!` for results: `outln!("{x}")`. Control characters are escaped
/// ([`crate::ui::escape`]); a failed write ends the process ([`stdout_failed`]) instead of
/// panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::ui::out::write(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::ui::out::write(
            format!("{}\n", $crate::ui::escape(&format!($($arg)*))).as_bytes(),
        )
    };
}

/// Tokio's stdout whose write errors end the process ([`stdout_failed`]): for output streamed
/// from a node, so a reader that goes away (`minik ssh -- seq 1 1000000 | head -1`) ends
/// minik quietly instead of failing the command as a local I/O error.
pub struct Stdout(tokio::io::Stdout);

impl Stdout {
    pub fn new() -> Stdout {
        Stdout(tokio::io::stdout())
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

fn checked<T>(r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    if let Poll::Ready(Err(e)) = &r {
        stdout_failed(e);
    }
    r
}

impl tokio::io::AsyncWrite for Stdout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        checked(Pin::new(&mut self.0).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        checked(Pin::new(&mut self.0).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        checked(Pin::new(&mut self.0).poll_shutdown(cx))
    }
}
