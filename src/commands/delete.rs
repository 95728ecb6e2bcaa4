//! `minik delete`: remove a profile's nodes, volumes, network and files, then its cluster,
//! user and context from the kubeconfig. Resources are found by label, so this works when the
//! profile file is missing or corrupt.
//!
//! Order matters: the engine part runs first and completes, then the kubeconfig is edited.
//! A kubeconfig that cannot be changed (another program holds its lock too long, it does not
//! parse) is reported as an error afterwards, with the engine resources already gone, never
//! half-deleted.

use super::Context;
use crate::any_driver::AnyDriver;
use crate::cli::DeleteArgs;
use crate::k8s::kubeconfig::{self};
use crate::state::{Profile, ProfileLoad, ProfileLock};
use minik_driver_api::{DeleteReport, Driver};
use serde_json::json;
use std::collections::BTreeSet;

pub async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<u8> {
    if args.all {
        let mut names: BTreeSet<String> = Profile::list_names(&ctx.home)?.into_iter().collect();
        let drivers = AnyDriver::reachable(&ctx.home).await;
        for d in &drivers {
            names.extend(d.list_profiles().await?);
        }
        if names.is_empty() {
            ctx.reporter.info("No profiles to delete");
        }
        // A kubeconfig failure does not stop the other profiles' deletion; the first one is
        // reported at the end.
        let mut kubeconfig_error = None;
        for name in names {
            if let Err(e) = delete_one(ctx, &name, Some(&drivers)).await? {
                kubeconfig_error.get_or_insert(e);
            }
        }
        return kubeconfig_error.map_or(Ok(0), Err);
    }
    let name = ctx.profile_name()?.to_string();
    delete_one(ctx, &name, None).await??;
    Ok(0)
}

/// Deletes one profile. The outer error is the engine part's (nothing else was tried); the
/// inner one a kubeconfig failure after the engine part completed.
async fn delete_one(
    ctx: &Context,
    name: &str,
    all: Option<&[AnyDriver]>,
) -> anyhow::Result<anyhow::Result<()>> {
    let _lock = ProfileLock::acquire(&ctx.home, name)?;
    // The recorded driver when the profile file is readable; otherwise every engine that
    // answers, since labels identify minik's resources there.
    let (recorded, kubernetes) = match Profile::load(&ctx.home, name) {
        Ok(ProfileLoad::Found(p)) => (Some(p.driver), Some(p.kubernetes.is_some())),
        Ok(ProfileLoad::Missing) => (None, None),
        Err(e) => {
            ctx.reporter
                .warn(&format!("{e:#}; looking for its resources on every engine"));
            (None, None)
        }
    };
    let owned;
    let drivers: &[AnyDriver] = match (&recorded, all) {
        (Some(d), _) => {
            owned = vec![AnyDriver::connect(d, &ctx.home)?];
            &owned
        }
        (None, Some(all)) => all,
        (None, None) => {
            owned = AnyDriver::reachable(&ctx.home).await;
            &owned
        }
    };
    let step = ctx
        .reporter
        .step("delete", format!("Deleting profile \"{name}\""));
    let mut report = DeleteReport::default();
    for d in drivers {
        if kubernetes != Some(false) {
            // Paused containers first: the engine cannot kill a node holding frozen ones.
            if let Ok(live) = d.list_nodes(name).await {
                let names: Vec<&str> = live.iter().map(|n| n.name.as_str()).collect();
                let thaw = crate::cluster::thaw_before_stop(d, &live, &names, &ctx.reporter);
                if tokio::time::timeout(std::time::Duration::from_secs(60), thaw)
                    .await
                    .is_err()
                {
                    ctx.reporter
                        .warn("resuming paused containers took over 60 s; deleting anyway");
                }
            }
        }
        match d.delete_profile(name).await {
            Ok(r) => {
                report.nodes.extend(r.nodes);
                report.volumes.extend(r.volumes);
                report.networks.extend(r.networks);
                report.files.extend(r.files);
            }
            Err(e) => {
                step.fail(&e.to_string());
                return Err(anyhow::Error::from(e)
                    .context(format!("deleting profile \"{name}\" on {}", d.name())));
            }
        }
    }
    let had_dir = match Profile::remove_dir(&ctx.home, name) {
        Ok(had) => had,
        Err(e) => {
            step.fail(&format!("{e:#}"));
            return Err(e);
        }
    };
    step.done();

    let (cleaned, kubeconfig_result) = kubeconfig::remove_profile_everywhere(name).await;
    let kubeconfig_result = match kubeconfig_result {
        // A --no-kubernetes profile never wrote kubeconfig entries: a kubeconfig minik cannot
        // read is not this deletion's failure.
        Err(e) if kubernetes == Some(false) => {
            ctx.reporter
                .warn(&format!("kubeconfig not checked for \"{name}\": {e:#}"));
            Ok(())
        }
        other => other,
    };
    if report.is_empty() && !had_dir {
        if cleaned.is_empty() {
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
    for path in &cleaned {
        ctx.reporter.info(&format!(
            "Removed context \"{name}\" from {}",
            path.display()
        ));
    }
    ctx.reporter.event(json!({
        "type": "result", "profile": name, "deleted": report,
        "kubeconfig": cleaned.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    }));
    Ok(kubeconfig_result.map_err(|e| {
        e.context(format!(
            "profile \"{name}\" was deleted, but its kubeconfig entries were not removed"
        ))
    }))
}
