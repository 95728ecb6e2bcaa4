//! `minik delete`: remove a profile's nodes, volumes, network and files. Resources are found
//! by label, so this works when the profile file is missing or corrupt.

use super::Context;
use crate::cli::DeleteArgs;
use crate::drivers::AnyDriver;
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
        for name in names {
            delete_one(ctx, &name, Some(&drivers)).await?;
        }
        return Ok(0);
    }
    let name = ctx.profile_name()?.to_string();
    delete_one(ctx, &name, None).await?;
    Ok(0)
}

async fn delete_one(ctx: &Context, name: &str, all: Option<&[AnyDriver]>) -> anyhow::Result<()> {
    let _lock = ProfileLock::acquire(&ctx.home, name)?;
    // The recorded driver when the profile file is readable; otherwise every engine that
    // answers, since labels identify minik's resources there.
    let recorded = match Profile::load(&ctx.home, name) {
        Ok(ProfileLoad::Found(p)) => Some(p.driver),
        Ok(ProfileLoad::Missing) => None,
        Err(e) => {
            ctx.reporter
                .warn(&format!("{e:#}; looking for its resources on every engine"));
            None
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
    if report.is_empty() && !had_dir {
        ctx.reporter.info(&format!(
            "Profile \"{name}\" does not exist: nothing to delete"
        ));
    } else {
        ctx.reporter.info(&format!(
            "Deleted profile \"{name}\": {} node(s), {} volume(s), {} network(s)",
            report.nodes.len(),
            report.volumes.len(),
            report.networks.len()
        ));
    }
    ctx.reporter
        .event(json!({"type": "result", "profile": name, "deleted": report}));
    Ok(())
}
