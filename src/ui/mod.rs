//! All user-facing progress output goes through [`Reporter`]: spinners on a terminal, one plain
//! line per finished step otherwise (CI logs), or one JSON event per line with `-o json`.
//! Results (tables, status) are printed by commands on stdout; progress goes to stderr, except
//! in JSON mode where everything is an event on stdout.

pub mod out;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners on stderr.
    Tty,
    /// One line per finished step on stderr.
    Plain,
    /// JSON events on stdout.
    Json,
    /// Nothing but warnings and errors.
    Quiet,
}

impl Mode {
    /// Picks a mode: JSON when asked, else spinners only on an interactive stderr that is not
    /// a CI log or a dumb terminal.
    pub fn detect(json: bool, no_progress: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if no_progress
            || !std::io::stderr().is_terminal()
            || std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
            || std::env::var("TERM").is_ok_and(|t| t == "dumb")
        {
            Mode::Plain
        } else {
            Mode::Tty
        }
    }
}

/// The progress reporter shared by a command's work.
pub struct Reporter {
    mode: Mode,
    multi: Option<MultiProgress>,
    out: Mutex<()>,
}

/// One running step; finish it with [`Step::done`] or [`Step::fail`]. Dropping it unfinished
/// counts as failed (an error is propagating).
pub struct Step<'a> {
    reporter: &'a Reporter,
    id: &'static str,
    title: String,
    started: Instant,
    bar: Option<ProgressBar>,
    finished: bool,
}

/// `text` with every control character but newline and tab written as an escape (`\x1b`),
/// so that names and messages from outside (an archive's entry names, an engine's error, a
/// profile file) cannot move the cursor, clear the screen or set the window title when
/// minik echoes them. Streams that are meant to be raw (`ssh`, `kubectl`, `logs`) do not go
/// through it.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let is_raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(is_raw) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_raw(c) {
            let code = c as u32;
            if code < 0x100 {
                out.push_str(&format!("\\x{code:02x}"));
            } else {
                out.push_str(&format!("\\u{{{code:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Reporter {
    pub fn new(mode: Mode) -> Reporter {
        let multi = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter {
            mode,
            multi,
            out: Mutex::new(()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Emits a JSON event line (JSON mode only).
    pub fn event(&self, value: serde_json::Value) {
        if self.mode == Mode::Json {
            let _guard = self.out.lock();
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{value}");
            let _ = stdout.flush();
        }
    }

    fn line(&self, text: &str) {
        let text = &*escape(text);
        let _guard = self.out.lock();
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    /// Starts a step. `id` is stable (JSON consumers key on it); `title` is for humans.
    pub fn step(&self, id: &'static str, title: impl Into<String>) -> Step<'_> {
        let title = title.into();
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                    .expect("valid template"),
            );
            bar.set_message(escape(&title).into_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        self.event(json!({"type": "step", "id": id, "title": title, "status": "started"}));
        Step {
            reporter: self,
            id,
            title,
            started: Instant::now(),
            bar,
            finished: false,
        }
    }

    /// A warning: shown in every mode.
    pub fn warn(&self, message: &str) {
        match self.mode {
            Mode::Json => self.event(json!({"type": "warning", "message": message})),
            _ => self.line(&format!("! {message}")),
        }
    }

    /// An informational line (not shown in quiet mode).
    pub fn info(&self, message: &str) {
        match self.mode {
            Mode::Json => self.event(json!({"type": "info", "message": message})),
            Mode::Quiet => {}
            _ => self.line(message),
        }
    }

    /// Detail only shown with -v (plain / tty) — emitted as `debug` events in JSON.
    pub fn detail(&self, message: &str) {
        tracing::debug!("{message}");
    }
}

impl minik_driver_api::Observer for Reporter {
    fn warn(&self, message: &str) {
        Reporter::warn(self, message);
    }
    fn detail(&self, message: &str) {
        Reporter::detail(self, message);
    }
}

impl Step<'_> {
    /// Changes the title shown while the step runs (e.g. a count).
    pub fn set_title(&mut self, title: impl Into<String>) {
        self.title = title.into();
        if let Some(bar) = &self.bar {
            bar.set_message(escape(&self.title).into_owned());
        }
    }

    fn finish(&mut self, ok: bool, error: Option<String>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        let mark = if ok { "✓" } else { "✗" };
        let text = format!("{mark} {} ({})", self.title, secs(elapsed));
        match self.reporter.mode {
            Mode::Tty => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
                self.reporter.line(&text);
            }
            Mode::Plain => self.reporter.line(&text),
            Mode::Quiet => {
                if !ok {
                    self.reporter.line(&text);
                }
            }
            Mode::Json => {
                let mut event = json!({
                    "type": "step", "id": self.id, "title": self.title,
                    "status": if ok { "done" } else { "failed" },
                    "duration_ms": elapsed.as_millis() as u64,
                });
                if let Some(e) = error {
                    event["error"] = json!(e);
                }
                self.reporter.event(event);
            }
        }
    }

    /// Marks the step done.
    pub fn done(mut self) {
        self.finish(true, None);
    }

    /// Marks the step failed with a short error.
    pub fn fail(mut self, error: &str) {
        self.finish(false, Some(error.to_string()));
    }

    /// Finishes according to `result`, passing it through.
    pub fn finish_with<T>(self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        match &result {
            Ok(_) => self.done(),
            Err(e) => self.fail(&format!("{e:#}")),
        }
        result
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        self.finish(false, None);
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped_but_lines_stay() {
        assert_eq!(escape("plain: a/b:1"), "plain: a/b:1");
        assert_eq!(
            escape("x\x1b]0;owned\x07y\x1b[2J\tz\n"),
            "x\\x1b]0;owned\\x07y\\x1b[2J\tz\n"
        );
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m", "C1 CSI");
    }
}
