//! `minik logs`: a node's journal.

use super::{Context, live_nodes, state_of};
use crate::cli::LogsArgs;
use crate::cluster::{pick_node, require_running};
use minik_driver_api::{Driver, ExecRequest, Runner};

/// The journalctl command line for the given options.
pub fn journal_argv(args: &LogsArgs) -> Vec<String> {
    let mut argv: Vec<String> = [
        "journalctl",
        "--no-pager",
        "--no-hostname",
        "-o",
        "short-precise",
        "-n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(args.lines.to_string());
    if let Some(unit) = &args.unit {
        argv.push("-u".into());
        argv.push(unit.clone());
    }
    if args.follow {
        argv.push("-f".into());
    }
    argv
}

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<u8> {
    let profile = ctx.load_profile().await?;
    let node = pick_node(&profile, args.node.as_deref())?;
    let (driver, live) = live_nodes(ctx, &profile).await?;
    require_running(&profile, &node.name, state_of(&live, &node.name))?;
    let runner = driver.runner(&node.name);
    let mut stdout = crate::ui::out::Stdout::new();
    let mut stderr = tokio::io::stderr();
    let code = runner
        .exec_streaming(
            ExecRequest::new(journal_argv(&args)),
            &mut stdout,
            &mut stderr,
        )
        .await?;
    tokio::io::AsyncWriteExt::flush(&mut stdout).await.ok();
    if code != 0 {
        return Err(crate::cluster::command_failed(
            &node.name,
            "journalctl",
            &format!("exit code {code}"),
        ));
    }
    Ok(0)
}
