//! SIGINT and SIGTERM: what Ctrl-C, `timeout`, and CI runners send.
//!
//! One listener per process ([`install`]) owns both signals:
//! - The first signal cancels the command. A command without cleanup of its own is dropped at
//!   its next await point and minik exits with `MK_INTERRUPTED` (15): what it did so far is a
//!   state the next `start` completes (every step of `stop`, `pause`, `start` of an existing
//!   profile is idempotent) or `delete` removes.
//! - A command that must clean up (the create of `start`, `node add`) enters a [`Scope`]: the
//!   first signal is then its own to handle ([`cancelled`] resolves inside it), and it exits 15
//!   after its cleanup.
//! - A second signal aborts at once, whatever runs: minik prints what may remain and how to
//!   remove it, and exits 15.
//!
//! `ssh`, `kubectl` and `logs` keep the default dispositions: a Ctrl-C there is meant for the
//! program they run (or ends a `logs -f`), as with `docker exec` and `kubectl logs -f`.

use crate::errors::INTERRUPTED;
use std::io::Write;
use std::sync::Mutex;
use std::sync::OnceLock;
use tokio::sync::watch;

/// The name of the first signal received, once there is one.
static FIRST: OnceLock<watch::Sender<Option<&'static str>>> = OnceLock::new();
/// Advice of the innermost active [`Scope`]s (what a second signal may leave behind).
static SCOPES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn channel() -> &'static watch::Sender<Option<&'static str>> {
    FIRST.get_or_init(|| watch::channel(None).0)
}

/// Starts the listener; call once inside the runtime. Failing to register (no signal support)
/// leaves the default dispositions, which is what minik did before.
pub fn install() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let tx = channel();
    tokio::spawn(async move {
        let mut seen = 0u32;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            seen += 1;
            if seen == 1 {
                tx.send_replace(Some(name));
                continue;
            }
            abort(name);
        }
    });
}

/// Ends the process for a second signal: says what may remain, exits 15 without cleanup.
fn abort(name: &str) -> ! {
    let advice = SCOPES
        .lock()
        .ok()
        .and_then(|s| s.last().cloned())
        .unwrap_or_else(|| INTERRUPTED.advice.to_string());
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "\nX Exiting due to {}: {name} again: stopping at once, without cleaning up",
        INTERRUPTED.id
    );
    let _ = writeln!(stderr, "  Advice: {advice}");
    std::process::exit(INTERRUPTED.exit_code.into())
}

/// Resolves with the signal's name once the first SIGINT or SIGTERM arrived (at once if it
/// already has).
pub async fn cancelled() -> &'static str {
    let mut rx = channel().subscribe();
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.unwrap_or("a signal"),
        // The sender lives in a static: never dropped.
        Err(_) => std::future::pending().await,
    }
}

/// Resolves like [`cancelled`], but only for a signal that no [`Scope`] handles: the guard
/// around whole commands.
pub async fn cancelled_outside_scope() -> &'static str {
    let name = cancelled().await;
    if in_scope() {
        // The scope's owner handles it; a second signal aborts through the listener.
        std::future::pending::<()>().await;
    }
    name
}

fn in_scope() -> bool {
    SCOPES.lock().map(|s| !s.is_empty()).unwrap_or(false)
}

/// Marks code that handles the first signal itself (cleanup of what it created). `advice` is
/// what a second signal, which skips that cleanup, tells the user.
pub struct Scope(());

impl Scope {
    pub fn enter(advice: impl Into<String>) -> Scope {
        if let Ok(mut s) = SCOPES.lock() {
            s.push(advice.into());
        }
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Ok(mut s) = SCOPES.lock() {
            s.pop();
        }
    }
}

/// A command stopped by the first SIGINT or SIGTERM (`MK_INTERRUPTED`).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {signal} while {doing}")]
pub struct Interrupted {
    /// The signal's name.
    pub signal: String,
    /// What the command was doing ("running the command").
    pub doing: String,
}

/// The error a command returns when [`cancelled`] resolved while it ran.
pub fn error(signal: &str, doing: &str) -> anyhow::Error {
    Interrupted {
        signal: signal.into(),
        doing: doing.into(),
    }
    .into()
}

/// `fut`, or the interruption error once SIGINT/SIGTERM arrived (`fut` is dropped at its
/// await point; the engine calls that create something finish anyway, and the drivers' delete
/// waits for them). `doing` completes "interrupted by SIGTERM while …".
pub async fn or_cancelled<T, E: Into<anyhow::Error>>(
    fut: impl std::future::Future<Output = Result<T, E>>,
    doing: &str,
) -> anyhow::Result<T> {
    tokio::select! {
        r = fut => r.map_err(Into::into),
        signal = cancelled() => Err(error(signal, doing)),
    }
}
