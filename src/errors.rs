//! The reason registry: every error a user can cause or meet has a stable id, an exit code and
//! one line of advice (minikube's `reason` package is the model; the table is in
//! docs/exit-codes.md and a test keeps the two in sync).
//!
//! Library code returns typed errors; commands wrap them in [`Failure`] (via [`fail`] or the
//! [`From<DriverError>`] mapping) so `main` can print `reason id`, message and advice and exit
//! with the reason's code.

use minik_driver_api::DriverError;
use std::fmt;

/// A class of failure with a stable id, exit code and advice.
#[derive(Debug, PartialEq, Eq)]
pub struct Reason {
    pub id: &'static str,
    pub exit_code: u8,
    pub advice: &'static str,
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident = ($id:literal, $code:literal, $advice:literal); )*) => {
        $( $(#[$doc])* pub const $name: Reason = Reason { id: $id, exit_code: $code, advice: $advice }; )*
        /// Every reason, for the docs table test.
        pub const ALL: &[&Reason] = &[$(&$name),*];
    };
}

reasons! {
    /// A bug or an unexpected condition inside minik.
    INTERNAL = ("MK_INTERNAL", 10, "This is a bug in minik; please report it with the output of the failing command run with -v.");
    /// Bad flags or arguments.
    USAGE = ("MK_USAGE", 14, "Run the command with --help to see the accepted flags and values.");
    /// Interrupted by Ctrl-C / SIGTERM.
    INTERRUPTED = ("MK_INTERRUPTED", 15, "The command was interrupted; run `minik status` to see what state the profile is in.");
    /// Local files (MINIK_HOME, kubeconfig) cannot be read or written.
    HOST_FILES = ("HOST_FILES", 30, "Check that MINIK_HOME (default ~/.minik) is writable and the disk is not full.");
    /// Standard output cannot be written (a full disk behind a redirect, a closed terminal);
    /// a closed pipe is not an error: the process ends as SIGPIPE ends it.
    HOST_STDOUT = ("HOST_STDOUT", 33, "Check where standard output goes (a file on a full disk, a closed terminal), or redirect it elsewhere.");
    /// The kubeconfig file cannot be updated.
    HOST_KUBECONFIG = ("HOST_KUBECONFIG", 31, "Check the kubeconfig file named above (and $KUBECONFIG): it must be valid YAML and writable.");
    /// Another process holds a lock (kubeconfig).
    HOST_LOCK_TIMEOUT = ("HOST_LOCK_TIMEOUT", 32, "Another program is writing the same file; retry when it is done, or remove the stale .lock file it names.");
    /// A download failed or did not match its checksum.
    INET_DOWNLOAD = ("INET_DOWNLOAD", 40, "Check network access to the URL above, or supply the files locally with --kubernetes-from DIR.");
    /// An unknown driver name.
    DRV_UNKNOWN = ("DRV_UNKNOWN", 51, "Use one of the supported drivers: docker, podman, qemu (see `minik start --help`).");
    /// The engine refused to create or change a resource.
    DRV_ENGINE_ERROR = ("DRV_ENGINE_ERROR", 52, "Read the engine's message above; `minik delete -p PROFILE` removes anything half-created.");
    /// The node image is missing and could not be built.
    DRV_IMAGE = ("DRV_IMAGE", 53, "Build the node image with `minik node-image build`, or pass an existing one with --image.");
    /// A name minik needs is taken by something it did not create.
    DRV_NAME_CONFLICT = ("DRV_NAME_CONFLICT", 54, "Remove or rename the conflicting resource, or choose another profile name with -p.");
    /// The engine is not running / not answering.
    PROVIDER_NOT_RUNNING = ("PROVIDER_NOT_RUNNING", 63, "Start the engine (e.g. `sudo systemctl start docker`) and check that DOCKER_HOST points at it.");
    /// The engine is not installed.
    PROVIDER_NOT_FOUND = ("PROVIDER_NOT_FOUND", 65, "Install Docker Engine, podman or qemu, or choose an installed driver with --driver.");
    /// A node failed to come up or a command in it failed.
    GUEST_PROVISION = ("GUEST_PROVISION", 80, "Run `minik logs -p PROFILE` to see the node's journal; start with --keep-on-failure to inspect it.");
    /// Waiting for a node or cluster timed out.
    GUEST_TIMEOUT = ("GUEST_TIMEOUT", 81, "The node was too slow or is unhealthy: see `minik logs -p PROFILE`, or raise --wait-timeout.");
    /// Another minik process is working on the profile.
    GUEST_PROFILE_BUSY = ("GUEST_PROFILE_BUSY", 82, "Wait for the other minik command on this profile to finish, then retry.");
    /// The profile file cannot be parsed.
    GUEST_PROFILE_CORRUPT = ("GUEST_PROFILE_CORRUPT", 83, "Run `minik delete -p PROFILE` to remove the profile and everything it created, then start again.");
    /// Resources exist for a profile that has no profile file (or the reverse).
    GUEST_PROFILE_ORPHANED = ("GUEST_PROFILE_ORPHANED", 84, "Run `minik delete -p PROFILE` to remove the leftovers, then start again.");
    /// The profile does not exist.
    GUEST_NOT_FOUND = ("GUEST_NOT_FOUND", 85, "Create it with `minik start -p PROFILE`, or list existing ones with `minik profile list`.");
    /// The operation needs running nodes.
    GUEST_NOT_RUNNING = ("GUEST_NOT_RUNNING", 86, "Start the profile with `minik start -p PROFILE` (or `minik unpause` if it is paused).");
    /// The named node does not exist in the profile.
    GUEST_NODE_NOT_FOUND = ("GUEST_NODE_NOT_FOUND", 87, "List the profile's nodes with `minik status -p PROFILE`.");
    /// The operation is not possible in the profile's mode (e.g. Kubernetes commands on --no-kubernetes).
    GUEST_UNSUPPORTED = ("GUEST_UNSUPPORTED", 88, "See `minik start --help`: this needs a profile created with Kubernetes.");
    /// An image named for `image load` / `image rm` is in neither the engine's store nor the nodes.
    GUEST_IMAGE_NOT_FOUND = ("GUEST_IMAGE_NOT_FOUND", 89, "Build or pull the image first, or check its name with `docker images` / `minik image ls`.");
    /// An image archive is unusable, or importing into a node failed (nodes are put back as they were).
    GUEST_IMAGE_LOAD = ("GUEST_IMAGE_LOAD", 90, "Check the image or archive named above; `minik image ls` shows what the nodes hold.");
    /// kubeadm or another Kubernetes component failed.
    K8S_BOOTSTRAP = ("K8S_BOOTSTRAP", 100, "Run `minik logs -p PROFILE` for kubelet's journal; start with --keep-on-failure to inspect the node.");
    /// The cluster did not become ready in time.
    K8S_NOT_READY = ("K8S_NOT_READY", 101, "Look at the component named above with `minik kubectl -p PROFILE -- -n kube-system get pods`, or raise --wait-timeout.");
    /// Applying or removing an addon failed, or its pods did not become ready in time.
    K8S_ADDON = ("K8S_ADDON", 102, "See the addon's pods with `minik kubectl -p PROFILE -- get pods -A`; `minik addons disable NAME` removes it.");
}

/// A failure with a reason; the error type commands return (inside `anyhow::Error`).
#[derive(Debug)]
pub struct Failure {
    pub reason: &'static Reason,
    pub message: String,
    /// Advice that replaces the reason's generic advice, when a command knows better.
    pub advice: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Builds an `anyhow::Error` carrying `reason`.
pub fn fail(reason: &'static Reason, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        reason,
        message: message.into(),
        advice: None,
    })
}

/// Like [`fail`], with advice specific to this case.
pub fn fail_with(
    reason: &'static Reason,
    message: impl Into<String>,
    advice: impl Into<String>,
) -> anyhow::Error {
    anyhow::Error::new(Failure {
        reason,
        message: message.into(),
        advice: Some(advice.into()),
    })
}

/// The reason a driver error maps to.
pub fn driver_reason(err: &DriverError) -> &'static Reason {
    match err {
        DriverError::EngineNotFound { .. } => &PROVIDER_NOT_FOUND,
        DriverError::EngineUnreachable { .. } => &PROVIDER_NOT_RUNNING,
        DriverError::ImageNotFound { .. } => &DRV_IMAGE,
        DriverError::NodeNotFound { .. } => &GUEST_NODE_NOT_FOUND,
        DriverError::NodeNotRunning { .. } => &GUEST_NOT_RUNNING,
        DriverError::NameConflict { .. } => &DRV_NAME_CONFLICT,
        DriverError::Exec { .. } => &GUEST_PROVISION,
        DriverError::Timeout { .. } => &GUEST_TIMEOUT,
        DriverError::Engine { .. } => &DRV_ENGINE_ERROR,
        DriverError::Io { .. } => &HOST_FILES,
    }
}

/// Finds the reason for an error chain: the first [`Failure`], else the first
/// [`DriverError`], else [`INTERNAL`].
pub fn classify(err: &anyhow::Error) -> (&'static Reason, Option<String>) {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.reason, f.advice.clone());
        }
        if let Some(d) = cause.downcast_ref::<DriverError>() {
            return (driver_reason(d), None);
        }
    }
    (&INTERNAL, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_ids_and_codes_are_unique() {
        let mut ids: Vec<_> = ALL.iter().map(|r| r.id).collect();
        let mut codes: Vec<_> = ALL.iter().map(|r| r.exit_code).collect();
        ids.sort();
        ids.dedup();
        codes.sort();
        codes.dedup();
        assert_eq!(ids.len(), ALL.len());
        assert_eq!(codes.len(), ALL.len());
        // 1..=7 are the status bitmask.
        assert!(ALL.iter().all(|r| r.exit_code > 7));
    }

    #[test]
    fn docs_table_lists_every_reason() {
        let doc = include_str!("../docs/exit-codes.md");
        for r in ALL {
            let row = format!("| {} | `{}` |", r.exit_code, r.id);
            assert!(
                doc.contains(&row),
                "docs/exit-codes.md lacks the row starting {row:?}"
            );
        }
    }

    #[test]
    fn classify_finds_driver_errors_under_context() {
        let err = anyhow::Error::new(DriverError::EngineUnreachable {
            engine: "docker".into(),
            endpoint: "unix:///x".into(),
            detail: "no".into(),
        })
        .context("checking the engine");
        assert_eq!(classify(&err).0.id, "PROVIDER_NOT_RUNNING");
        let err = fail(&GUEST_PROFILE_BUSY, "busy").context("starting");
        assert_eq!(classify(&err).0.exit_code, 82);
        assert_eq!(classify(&anyhow::anyhow!("boom")).0.id, "MK_INTERNAL");
    }
}
