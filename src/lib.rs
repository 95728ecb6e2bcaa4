//! minik: a real local Kubernetes cluster in one command.
//!
//! The binary (`src/main.rs`) only calls [`main`]. Layout: `cli` (clap types), `commands` (one
//! module per verb), `cluster` (driver-independent setup over the Driver/Runner traits),
//! `drivers` (dispatch to the driver crates under drivers/), `state` (MINIK_HOME), `ui`
//! (progress reporter), `errors` (reason registry and exit codes).

pub mod addons;
pub mod any_driver;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod errors;
pub mod images;
pub mod interrupt;
pub mod k8s;
pub mod node_image;
pub mod session;
pub mod state;
pub mod ui;

use clap::Parser;
use cli::{Cli, OutputFormat};
use std::io::Write;
use std::process::ExitCode;

/// Parses the command line, runs the command, prints any error with its reason and advice,
/// and returns the exit code.
pub fn main() -> ExitCode {
    // kube and reqwest both use rustls; pin ring as the process-wide provider so neither
    // panics choosing one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Nothing minik creates is writable by others, even under `umask 000` (MINIK_HOME and its
    // lock files set their own, stricter modes too).
    {
        use nix::sys::stat::{Mode, umask};
        let old = umask(Mode::from_bits_truncate(0o022));
        umask(old | Mode::from_bits_truncate(0o022));
    }

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_tracing(cli.global.verbose);
    let json = cli.global.output == OutputFormat::Json;

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("X cannot start the async runtime: {e}");
            return ExitCode::from(errors::INTERNAL.exit_code);
        }
    };
    let code = runtime.block_on(async move {
        let ctx = match commands::Context::new(cli.global) {
            Ok(ctx) => ctx,
            Err(e) => return report_error(json, &e),
        };
        // `ssh`, `kubectl` and `logs` (`-f`) leave Ctrl-C to the program they run or follow
        // (see `interrupt`).
        let passthrough = matches!(
            cli.command,
            cli::Command::Ssh(_) | cli::Command::Kubectl(_) | cli::Command::Logs(_)
        );
        let result = if passthrough {
            commands::run(&ctx, cli.command).await
        } else {
            interrupt::install();
            tokio::select! {
                r = commands::run(&ctx, cli.command) => r,
                signal = interrupt::cancelled_outside_scope() => {
                    Err(interrupt::error(signal, "running the command"))
                }
            }
        };
        match result {
            Ok(code) => code,
            Err(e) => report_error(json, &e),
        }
    });
    // A stdin reader blocked in a thread must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(code)
}

fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let _ = e.print();
            let first = e
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "X Exiting due to {}: {first}", errors::USAGE.id);
            let _ = writeln!(stderr, "  Advice: {}", errors::USAGE.advice);
            ExitCode::from(errors::USAGE.exit_code)
        }
    }
}

/// Prints an error as `X Exiting due to ID: message` plus advice (or a JSON error event) and
/// returns its exit code.
fn report_error(json: bool, err: &anyhow::Error) -> u8 {
    let (reason, advice) = errors::classify(err);
    let advice = advice.unwrap_or_else(|| reason.advice.to_string());
    let message = format!("{err:#}");
    if json {
        let event = serde_json::json!({
            "type": "error", "reason": reason.id, "exit_code": reason.exit_code,
            "message": message, "advice": advice,
        });
        let _ = writeln!(std::io::stdout(), "{event}");
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "X Exiting due to {}: {}",
        reason.id,
        ui::escape(&message)
    );
    let _ = writeln!(stderr, "  Advice: {}", ui::escape(&advice));
    reason.exit_code
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        // The kube client logs every refused connection at ERROR while minik's wait retries
        // them and reports what stayed unready itself: off unless asked for.
        0 => "warn,kube_client=off",
        1 => {
            "minik=debug,minik_driver_api=debug,minik_driver_docker=debug,minik_driver_podman=debug,minik_driver_qemu=debug"
        }
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINIK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
