//! The seam between minik's cluster logic and the engines that run nodes.
//!
//! A [`Driver`] owns the machine lifecycle of a profile's nodes (create, start, stop, pause,
//! delete, live state). A [`Runner`] runs commands and moves files inside one node. Everything
//! above this crate (node boot checks, kubeadm, kubeconfig export, image load, addons) is written
//! against these two traits only, so it works unchanged on every driver and can be tested with
//! the [`fake`] implementations.
//!
//! Dispatch is through closed enums in the `minik` crate (as youki's `AnyCgroupManager`), so the
//! traits use `impl Future + Send` returns instead of `dyn` + async-trait.

#[cfg(feature = "testing")]
pub mod contract;
pub mod error;
pub mod fake;
pub mod runner;
pub mod types;

pub use error::DriverError;
pub use runner::{
    ExecRequest, Output, Runner, StdinSource, check_copy_path, copy_by_exec, read_by_exec,
};
pub use types::*;

use std::future::Future;
use std::time::Duration;

/// Receives what a driver wants the user to know while it works (a fallback it took, a slow
/// step). Implemented by the CLI's reporter; libraries never print.
pub trait Observer: Send + Sync {
    /// Something worked, but not the preferred way (one line, no trailing period needed).
    fn warn(&self, message: &str);
    /// Extra detail for verbose output.
    fn detail(&self, message: &str);
}

/// An observer that drops everything; for tests and internal probes.
pub struct NullObserver;

impl Observer for NullObserver {
    fn warn(&self, _message: &str) {}
    fn detail(&self, _message: &str) {}
}

/// The lifecycle of a profile's nodes on one engine.
///
/// Every resource a driver creates carries the labels from [`labels`] so that
/// [`Driver::delete_profile`] can find all of it even when minik's profile file is gone.
pub trait Driver: Send + Sync {
    /// The runner type that executes commands inside this driver's nodes.
    type Runner: Runner;

    /// The driver's name as users type it (`docker`, `podman`, `qemu`).
    fn name(&self) -> &'static str;

    /// Checks that the engine is installed and answering. Cheap; called before any work.
    fn check(&self) -> impl Future<Output = Result<EngineInfo, DriverError>> + Send;

    /// Creates the profile-wide resources (network, keys) if they do not exist yet.
    fn prepare(
        &self,
        cluster: &ClusterRequest,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Creates and starts one node. Returns once the node's init process runs; waiting for
    /// systemd and containerd is the caller's job (it is driver-independent, over the Runner).
    fn create_node(
        &self,
        cluster: &ClusterRequest,
        node: &NodeSpec,
        observer: &dyn Observer,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Starts a stopped node, keeping its data.
    fn start_node(&self, node: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Stops a node gracefully, killing it after `timeout`.
    fn stop_node(
        &self,
        node: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Freezes every process of a node.
    fn pause_node(&self, node: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Thaws a paused node.
    fn unpause_node(&self, node: &str) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Removes one node and its own resources (its /var volume or disk). Succeeds when the
    /// node does not exist; refuses a same-named resource minik did not create.
    fn delete_node(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<DeleteReport, DriverError>> + Send;

    /// Removes every resource labelled with this profile (nodes, volumes, network, files).
    /// Succeeds when there is nothing to remove.
    fn delete_profile(
        &self,
        profile: &str,
    ) -> impl Future<Output = Result<DeleteReport, DriverError>> + Send;

    /// The live state of the profile's nodes, sorted by node index. Empty if none exist.
    fn list_nodes(
        &self,
        profile: &str,
    ) -> impl Future<Output = Result<Vec<NodeInfo>, DriverError>> + Send;

    /// Names of every profile that has at least one labelled resource on this engine.
    fn list_profiles(&self) -> impl Future<Output = Result<Vec<String>, DriverError>> + Send;

    /// A runner for commands inside `node`.
    fn runner(&self, node: &str) -> Self::Runner;

    /// True when the profile's nodes run on an emulated CPU (qemu's TCG), several times
    /// slower than the host: Kubernetes then needs longer bootstrap timeouts. Containers and
    /// hardware-accelerated VMs run at native speed (the default).
    fn emulated(&self, _profile: &str) -> bool {
        false
    }
}

/// How long [`Driver::stop_node`] waits before killing, unless the user says otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
