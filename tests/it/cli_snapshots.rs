//! Snapshot tests (insta, files under tests/snapshots/, see its README) of what users read:
//! the `--help` of every command and subcommand, and a profile's text and JSON output on the
//! fake engine. Independent of the machine: the harness pins the terminal environment
//! (COLUMNS, colours, TERM) and the filters of `common::snapshot` take out temp paths, ports,
//! durations and timestamps.

use crate::common::snapshot::{output_settings, settings, stored};
use crate::common::{Env, Out};
use clap::CommandFactory;

/// Every command path of the CLI that users see: `[]` (minik itself), `["start"]`,
/// `["node", "add"]`, ... (hidden commands and clap's `help` left out).
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut next = path.clone();
            next.push(sub.get_name().to_string());
            walk(sub, next, out);
        }
    }
    let mut out = Vec::new();
    walk(&minik::cli::Cli::command(), Vec::new(), &mut out);
    out
}

/// The snapshot name of a command path: `minik`, `minik-start`, `minik-node-add`.
fn help_name(path: &[String]) -> String {
    std::iter::once("minik")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

#[test]
fn help_of_every_command() {
    let env = Env::new();
    let paths = command_paths();
    assert!(paths.len() > 10, "{paths:?}");
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = env.minik(&args);
        out.expect(0);
        assert_eq!(out.stderr, "", "{args:?}");
        settings("help", Some(env.home())).bind(|| {
            insta::assert_snapshot!(help_name(path), out.stdout);
        });
    }
    // No snapshot of a command that is gone.
    let mut names: Vec<String> = paths.iter().map(|p| help_name(p)).collect();
    names.sort();
    assert_eq!(
        stored("help"),
        names,
        "stale or missing files in tests/snapshots/help"
    );
}

/// `minik help CMD` is `minik CMD --help`.
#[test]
fn help_subcommand_is_the_help_flag() {
    let env = Env::new();
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        let flag = env.minik(&[path[0].as_str(), "--help"]);
        let verb = env.minik(&["help", path[0].as_str()]);
        verb.expect(0);
        assert_eq!(verb.stdout, flag.stdout, "{path:?}");
    }
}

/// The text and JSON views of a two-node sandbox profile: `status`, `profile list`.
#[test]
fn profile_text_and_json_output() {
    let env = Env::new();
    let start = env.minik(&[
        "start",
        "-p",
        "snap",
        "--driver",
        "fake",
        "--no-kubernetes",
        "--nodes",
        "2",
    ]);
    start.expect(0);
    let snap = |name: &str, out: &Out| {
        output_settings("cli", env.home()).bind(|| {
            insta::assert_snapshot!(
                name,
                format!(
                    "exit code: {}\n--- stdout\n{}--- stderr\n{}",
                    out.code, out.stdout, out.stderr
                )
            );
        });
    };
    snap("start-text", &start);
    snap("status-text", &env.minik(&["status", "-p", "snap"]));
    snap(
        "status-json",
        &env.minik(&["status", "-p", "snap", "-o", "json"]),
    );
    snap("profile-list-text", &env.minik(&["profile", "list"]));
    snap(
        "profile-list-json",
        &env.minik(&["profile", "list", "-o", "json"]),
    );
    env.minik(&["stop", "-p", "snap"]).expect(0);
    snap("status-stopped-text", &env.minik(&["status", "-p", "snap"]));
    snap(
        "status-stopped-json",
        &env.minik(&["status", "-p", "snap", "-o", "json"]),
    );
    snap(
        "status-missing-text",
        &env.minik(&["status", "-p", "nothing-here"]),
    );
}
