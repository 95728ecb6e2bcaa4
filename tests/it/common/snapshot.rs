//! Snapshot settings (insta): where the files live (tests/snapshots/, see its README) and
//! the filters that take out what depends on the machine or the run: the test's temp
//! MINIK_HOME, other temp paths ([`settings`]), host ports, durations and timestamps
//! ([`output_settings`]).
//!
//! Snapshots never depend on the terminal either: [`super::minik_command`] pins COLUMNS,
//! colours and TERM.

use std::path::Path;

/// Settings for snapshots under `tests/snapshots/<dir>/`, named by the snapshot name alone,
/// with `home` (the test's MINIK_HOME) and other temp paths filtered out. For text that holds
/// nothing that changes between runs (`--help`).
pub fn settings(dir: &str, home: Option<&Path>) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    // Relative to this binary's sources (tests/it/), whatever the checkout's path.
    s.set_snapshot_path(format!("../snapshots/{dir}"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    if let Some(home) = home {
        // Canonical and as given (a symlinked TMPDIR shows up either way).
        let mut paths = vec![home.to_string_lossy().into_owned()];
        if let Ok(canonical) = home.canonicalize() {
            paths.push(canonical.to_string_lossy().into_owned());
        }
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        paths.dedup();
        for p in paths {
            s.add_filter(&regex_escape(&p), "[HOME]");
        }
    }
    // Any other temp directory of tempfile (`.tmpXXXXXX`), wherever TMPDIR points.
    s.add_filter(r"(/[^\s/]+)*/\.tmp[A-Za-z0-9_]{6,}", "[TMP]");
    s
}

/// [`settings`] plus filters for what changes from run to run in a command's output: host
/// ports the engine picked, durations and timestamps.
pub fn output_settings(dir: &str, home: &Path) -> insta::Settings {
    let mut s = settings(dir, Some(home));
    // 127.0.0.1:PORT, and JSON maps of node port to host port (`"6443":PORT`).
    s.add_filter(
        r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d{1,5}\b",
        "$1:[PORT]",
    );
    s.add_filter(r#""(\d{1,5})"(\s*):(\s*)\d{1,5}\b"#, "\"$1\"$2:$3[PORT]");
    // Durations (`0.4s`, `12ms`, `1m 3s`) and timestamps.
    s.add_filter(
        r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|m|h)\b(\s?\d+(\.\d+)?\s?(ms|s))?",
        "[DURATION]",
    );
    s.add_filter(
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
        "[TIME]",
    );
    s
}

/// `text` as a regex that matches it literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The snapshot names present in `tests/snapshots/<dir>/` (file names without `.snap`).
pub fn stored(dir: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".snap").map(str::to_string))
        .collect();
    names.sort();
    names
}
