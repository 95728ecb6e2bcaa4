//! Deleting a profile: its nodes, volumes, network and files, then its cluster, user and
//! context from the kubeconfig. Resources are found by label, so this works when the profile
//! file is missing or corrupt.
//!
//! Order matters: the engine part runs first and completes, then the kubeconfig is edited.
//! A kubeconfig that cannot be changed (another program holds its lock too long, it does not
//! parse) is reported as an error afterwards, with the engine resources already gone, never
//! half-deleted.

use crate::any_driver::AnyDriver;
use crate::k8s::kubeconfig;
use crate::session::Session;
use crate::state::{Profile, ProfileLoad};
use minik_driver_api::{DeleteReport, Driver};
use std::path::PathBuf;
use std::time::Duration;

/// What a deletion removed.
#[derive(Debug, Default)]
pub struct Deleted {
    /// The engines' resources.
    pub report: DeleteReport,
    /// Whether the profile had a directory under MINIK_HOME.
    pub had_dir: bool,
    /// The kubeconfig files its context was removed from.
    pub kubeconfigs: Vec<PathBuf>,
    /// A kubeconfig failure after everything else was deleted (reported, not fatal to the
    /// other profiles of `delete --all`).
    pub kubeconfig_error: Option<anyhow::Error>,
}

/// Every profile name minik knows of: profile directories, and labelled resources on every
/// engine that answers (returned too, so each deletion need not connect again).
pub async fn all_profiles(s: &Session<'_>) -> anyhow::Result<(Vec<String>, Vec<AnyDriver>)> {
    let mut names: std::collections::BTreeSet<String> =
        Profile::list_names(s.home)?.into_iter().collect();
    let drivers = AnyDriver::reachable(s.home).await;
    for d in &drivers {
        names.extend(d.list_profiles().await?);
    }
    Ok((names.into_iter().collect(), drivers))
}

/// Deletes one profile; the caller holds its lock. An error is the engine part's (the kubeconfig was not
/// touched); a kubeconfig failure after the engine part completed is in
/// [`Deleted::kubeconfig_error`]. `reachable` is the engines to search when the profile file
/// does not name one (connected anew when `None`).
pub async fn delete(
    s: &Session<'_>,
    name: &str,
    reachable: Option<&[AnyDriver]>,
) -> anyhow::Result<Deleted> {
    // The recorded driver when the profile file is readable; otherwise every engine that
    // answers, since labels identify minik's resources there.
    let (recorded, kubernetes) = match Profile::load(s.home, name) {
        Ok(ProfileLoad::Found(p)) => (Some(p.driver), Some(p.kubernetes.is_some())),
        Ok(ProfileLoad::Missing) => (None, None),
        Err(e) => {
            s.reporter
                .warn(&format!("{e:#}; looking for its resources on every engine"));
            (None, None)
        }
    };
    let owned;
    let drivers: &[AnyDriver] = match (&recorded, reachable) {
        (Some(d), _) => {
            owned = vec![AnyDriver::connect(d, s.home)?];
            &owned
        }
        (None, Some(all)) => all,
        (None, None) => {
            owned = AnyDriver::reachable(s.home).await;
            &owned
        }
    };
    let step = s
        .reporter
        .step("delete", format!("Deleting profile \"{name}\""));
    let mut deleted = Deleted::default();
    for d in drivers {
        if kubernetes != Some(false) {
            // Paused containers first: the engine cannot kill a node holding frozen ones.
            if let Ok(live) = d.list_nodes(name).await {
                let names: Vec<&str> = live.iter().map(|n| n.name.as_str()).collect();
                let thaw = super::thaw_before_stop(d, &live, &names, s.reporter);
                if tokio::time::timeout(Duration::from_secs(60), thaw)
                    .await
                    .is_err()
                {
                    s.reporter
                        .warn("resuming paused containers took over 60 s; deleting anyway");
                }
            }
        }
        match d.delete_profile(name).await {
            Ok(r) => {
                let report = &mut deleted.report;
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
    deleted.had_dir = match Profile::remove_dir(s.home, name) {
        Ok(had) => had,
        Err(e) => {
            step.fail(&format!("{e:#}"));
            return Err(e);
        }
    };
    step.done();

    let (cleaned, result) = kubeconfig::remove_profile_everywhere(name).await;
    deleted.kubeconfigs = cleaned;
    deleted.kubeconfig_error = match result {
        Ok(()) => None,
        // A --no-kubernetes profile never wrote kubeconfig entries: a kubeconfig minik cannot
        // read is not this deletion's failure.
        Err(e) if kubernetes == Some(false) => {
            s.reporter
                .warn(&format!("kubeconfig not checked for \"{name}\": {e:#}"));
            None
        }
        Err(e) => Some(e.context(format!(
            "profile \"{name}\" was deleted, but its kubeconfig entries were not removed"
        ))),
    };
    Ok(deleted)
}
