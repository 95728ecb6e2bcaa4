//! `minik delete`: remove a profile (or every profile with `--all`) with `cluster::delete`,
//! and report what went.

use super::Context;
use crate::cli::DeleteArgs;
use crate::cluster::delete::{self, Deleted};
use crate::state::ProfileLock;
use serde_json::json;

pub async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<u8> {
    let s = ctx.session();
    if args.all {
        let (names, drivers) = delete::all_profiles(&s).await?;
        if names.is_empty() {
            ctx.reporter.info("No profiles to delete");
        }
        // A kubeconfig failure does not stop the other profiles' deletion; the first one is
        // reported at the end.
        let mut kubeconfig_error = None;
        for name in names {
            let _lock = ProfileLock::acquire(&ctx.home, &name)?;
            let deleted = delete::delete(&s, &name, Some(&drivers)).await?;
            if let Some(e) = report(ctx, &name, deleted) {
                kubeconfig_error.get_or_insert(e);
            }
        }
        return kubeconfig_error.map_or(Ok(0), Err);
    }
    let name = ctx.profile_name()?.to_string();
    let _lock = ProfileLock::acquire(&ctx.home, &name)?;
    let deleted = delete::delete(&s, &name, None).await?;
    report(ctx, &name, deleted).map_or(Ok(0), Err)
}

/// Prints what went; returns the kubeconfig failure, if any.
fn report(ctx: &Context, name: &str, deleted: Deleted) -> Option<anyhow::Error> {
    let Deleted {
        report,
        had_dir,
        kubeconfigs,
        kubeconfig_error,
    } = deleted;
    if report.is_empty() && !had_dir {
        if kubeconfigs.is_empty() {
            ctx.reporter.info(&format!(
                "Profile \"{name}\" does not exist: nothing to delete"
            ));
        }
    } else {
        ctx.reporter.info(&format!(
            "Deleted profile \"{name}\": {} node(s), {} volume(s), {} network(s)",
            report.nodes.len(),
            report.volumes.len(),
            report.networks.len()
        ));
    }
    for path in &kubeconfigs {
        ctx.reporter.info(&format!(
            "Removed context \"{name}\" from {}",
            path.display()
        ));
    }
    ctx.reporter.event(json!({
        "type": "result", "profile": name, "deleted": report,
        "kubeconfig": kubeconfigs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    }));
    kubeconfig_error
}
