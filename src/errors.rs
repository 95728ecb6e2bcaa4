//! The reason registry: every error a user can cause or meet has a stable id, an exit code and
//! one line of advice (minikube's `reason` package is the model; the table is in
//! docs/exit-codes.md and a test keeps the two in sync).
//!
//! Library code below the commands returns typed errors that say what failed (a
//! [`KubeconfigError`], a [`StateError`], a [`ClusterError`], …); this module alone maps them
//! to reasons ([`Classified`]), and [`classify`] finds the first one in an error chain so
//! `main` can print `reason id`, message and advice and exit with the reason's code. Commands
//! refusing their own flags use [`Failure`] (via [`fail`] / [`fail_with`]).

use crate::addons::{AddonError, AddonKind};
use crate::any_driver::{AdvisedDriverError, ChoiceError, ChoiceKind};
use crate::cluster::error::{ClusterError, ClusterKind};
use crate::images::ImageError;
use crate::interrupt::Interrupted;
use crate::k8s::kubeconfig::KubeconfigError;
use crate::k8s::release::{ReleaseError, ReleaseKind};
use crate::k8s::{InputError, InputKind};
use crate::node_image::build::{BuildError, BuildKind};
use crate::state::StateError;
use minik_driver_api::DriverError;
use std::error::Error as StdError;
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

/// Defines a layer's error type for layers with many cases: `$name { kind, message, advice }`
/// (Display: the message; no source, so an error chain prints as the message alone) and the
/// `$kind` enum of what failed. Build one with `$name::new(kind, msg)`, add case-specific
/// advice with `.with_advice(..)`; [`Classified`] (here) maps each kind to a reason.
macro_rules! layer_error {
    (
        $(#[$doc:meta])* $name:ident,
        $(#[$kdoc:meta])* $kind:ident { $( $(#[$vdoc:meta])* $variant:ident ),* $(,)? }
    ) => {
        $(#[$kdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $kind {
            $( $(#[$vdoc])* $variant, )*
        }

        $(#[$doc])*
        #[derive(Debug, thiserror::Error)]
        #[error("{message}")]
        pub struct $name {
            pub kind: $kind,
            pub message: String,
            /// Advice specific to this case, replacing the reason's generic advice.
            pub advice: Option<String>,
        }

        impl $name {
            pub fn new(kind: $kind, message: impl Into<String>) -> Self {
                Self {
                    kind,
                    message: message.into(),
                    advice: None,
                }
            }

            #[must_use]
            pub fn with_advice(mut self, advice: impl Into<String>) -> Self {
                self.advice = Some(advice.into());
                self
            }
        }
    };
}
pub(crate) use layer_error;

/// An error that knows its reason: every typed error below the commands, mapped here and
/// nowhere else.
pub trait Classified {
    fn reason(&self) -> &'static Reason;
    /// Advice that replaces the reason's generic advice.
    fn advice(&self) -> Option<String> {
        None
    }
}

impl Classified for Failure {
    fn reason(&self) -> &'static Reason {
        self.reason
    }
    fn advice(&self) -> Option<String> {
        self.advice.clone()
    }
}

impl Classified for DriverError {
    fn reason(&self) -> &'static Reason {
        driver_reason(self)
    }
}

impl Classified for AdvisedDriverError {
    fn reason(&self) -> &'static Reason {
        driver_reason(&self.error)
    }
    fn advice(&self) -> Option<String> {
        Some(self.advice.clone())
    }
}

impl Classified for Interrupted {
    fn reason(&self) -> &'static Reason {
        &INTERRUPTED
    }
}

impl Classified for KubeconfigError {
    fn reason(&self) -> &'static Reason {
        match self {
            KubeconfigError::File(_) | KubeconfigError::Invalid(_) => &HOST_KUBECONFIG,
            KubeconfigError::LockTimeout { .. } => &HOST_LOCK_TIMEOUT,
            KubeconfigError::BadAdminConf(_) => &K8S_BOOTSTRAP,
            KubeconfigError::Internal(_) => &INTERNAL,
        }
    }
    fn advice(&self) -> Option<String> {
        match self {
            KubeconfigError::LockTimeout { advice, .. } => Some(advice.clone()),
            _ => None,
        }
    }
}

impl Classified for StateError {
    fn reason(&self) -> &'static Reason {
        match self {
            StateError::Files(_) => &HOST_FILES,
            StateError::InvalidName { .. } => &USAGE,
            StateError::Corrupt { .. } => &GUEST_PROFILE_CORRUPT,
            StateError::Busy { .. } => &GUEST_PROFILE_BUSY,
        }
    }
    fn advice(&self) -> Option<String> {
        match self {
            StateError::Files(_) => None,
            StateError::InvalidName { advice, .. }
            | StateError::Corrupt { advice, .. }
            | StateError::Busy { advice, .. } => Some(advice.clone()),
        }
    }
}

impl Classified for ImageError {
    fn reason(&self) -> &'static Reason {
        match self {
            ImageError::Unreadable { .. }
            | ImageError::BadArchive { .. }
            | ImageError::LoadFailed { .. } => &GUEST_IMAGE_LOAD,
            ImageError::NotAName { .. } => &USAGE,
            ImageError::NotInEngine { .. } => &GUEST_IMAGE_NOT_FOUND,
        }
    }
    fn advice(&self) -> Option<String> {
        match self {
            ImageError::Unreadable { advice, .. }
            | ImageError::BadArchive { advice, .. }
            | ImageError::LoadFailed { advice, .. }
            | ImageError::NotAName { advice, .. }
            | ImageError::NotInEngine { advice, .. } => Some(advice.clone()),
        }
    }
}

/// [`Classified`] for a [`layer_error!`] type: its kinds' reasons; advice from the value.
macro_rules! classified_layer {
    ($name:ty, $kind:ident { $( $variant:ident => $reason:expr ),* $(,)? }) => {
        impl Classified for $name {
            fn reason(&self) -> &'static Reason {
                match self.kind {
                    $( $kind::$variant => $reason, )*
                }
            }
            fn advice(&self) -> Option<String> {
                self.advice.clone()
            }
        }
    };
}

classified_layer!(ClusterError, ClusterKind {
    Bootstrap => &K8S_BOOTSTRAP,
    NotReady => &K8S_NOT_READY,
    Provision => &GUEST_PROVISION,
    NotRunning => &GUEST_NOT_RUNNING,
    NodeNotFound => &GUEST_NODE_NOT_FOUND,
    Orphaned => &GUEST_PROFILE_ORPHANED,
    Unsupported => &GUEST_UNSUPPORTED,
    Timeout => &GUEST_TIMEOUT,
    BadRequest => &USAGE,
    Bug => &INTERNAL,
});

classified_layer!(AddonError, AddonKind {
    Failed => &K8S_ADDON,
    NotRunning => &GUEST_NOT_RUNNING,
    Unsupported => &GUEST_UNSUPPORTED,
    Unknown => &USAGE,
    Bug => &INTERNAL,
});

classified_layer!(BuildError, BuildKind {
    Image => &DRV_IMAGE,
    Usage => &USAGE,
    Bug => &INTERNAL,
});

classified_layer!(ReleaseError, ReleaseKind {
    Download => &INET_DOWNLOAD,
    Files => &HOST_FILES,
    Usage => &USAGE,
    Bug => &INTERNAL,
});

classified_layer!(InputError, InputKind {
    Invalid => &USAGE,
    Bug => &INTERNAL,
});

classified_layer!(ChoiceError, ChoiceKind {
    UnknownDriver => &DRV_UNKNOWN,
    NoEngineAnswers => &PROVIDER_NOT_RUNNING,
    NoEngineInstalled => &PROVIDER_NOT_FOUND,
    BadSetting => &USAGE,
});

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

/// One link of an error chain as a [`Classified`] error of type `T`, if it is one.
fn as_classified<'a, T: Classified + StdError + 'static>(
    cause: &'a (dyn StdError + 'static),
) -> Option<&'a dyn Classified> {
    cause.downcast_ref::<T>().map(|e| e as &dyn Classified)
}

type Probe = for<'a> fn(&'a (dyn StdError + 'static)) -> Option<&'a dyn Classified>;

/// Every error type that chooses its reason, tried on each link of a chain; a bare
/// [`DriverError`] only counts when none of these is in the chain (it is the most generic).
const TYPED: &[Probe] = &[
    as_classified::<Failure>,
    as_classified::<Interrupted>,
    as_classified::<AdvisedDriverError>,
    as_classified::<ChoiceError>,
    as_classified::<KubeconfigError>,
    as_classified::<ReleaseError>,
    as_classified::<InputError>,
    as_classified::<StateError>,
    as_classified::<ImageError>,
    as_classified::<AddonError>,
    as_classified::<BuildError>,
    as_classified::<ClusterError>,
];

/// Finds the reason for an error chain: the first typed error ([`TYPED`]), else the first
/// [`DriverError`], else [`INTERNAL`]. Returns the reason and the error's own advice, if any.
pub fn classify(err: &anyhow::Error) -> (&'static Reason, Option<String>) {
    err.chain()
        .find_map(|cause| TYPED.iter().find_map(|probe| probe(cause)))
        .or_else(|| err.chain().find_map(as_classified::<DriverError>))
        .map_or((&INTERNAL, None), |c| (c.reason(), c.advice()))
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

    #[test]
    fn classify_finds_typed_errors_with_their_advice_under_context() {
        let err = anyhow::Error::new(
            ClusterError::new(ClusterKind::Timeout, "node n did not boot").with_advice("look"),
        )
        .context("starting");
        assert_eq!(classify(&err), (&GUEST_TIMEOUT, Some("look".to_string())));
        // The typed error prints as its message: the chain reads as it did with `fail_with`.
        assert_eq!(format!("{err:#}"), "starting: node n did not boot");
        let err = anyhow::Error::new(StateError::Files("cannot read x".into()));
        assert_eq!(classify(&err), (&HOST_FILES, None));
        let err = anyhow::Error::new(KubeconfigError::LockTimeout {
            message: "timed out".into(),
            advice: "retry".into(),
        });
        assert_eq!(classify(&err), (&HOST_LOCK_TIMEOUT, Some("retry".into())));
    }

    #[test]
    fn a_driver_error_with_advice_keeps_the_driver_reason() {
        let unreachable = || DriverError::EngineUnreachable {
            engine: "podman".into(),
            endpoint: "unix:///x".into(),
            detail: "no".into(),
        };
        let err = anyhow::Error::new(AdvisedDriverError::new(unreachable(), "start it"));
        assert_eq!(format!("{err:#}"), unreachable().to_string());
        assert_eq!(
            classify(&err),
            (&PROVIDER_NOT_RUNNING, Some("start it".to_string()))
        );
        let err = anyhow::Error::new(Interrupted {
            signal: "SIGINT".into(),
            doing: "waiting".into(),
        });
        assert_eq!(format!("{err:#}"), "interrupted by SIGINT while waiting");
        assert_eq!(classify(&err), (&INTERRUPTED, None));
    }
}
