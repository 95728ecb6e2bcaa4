//! Kubernetes on the nodes: kubeadm configuration, kubeconfig export and merge, and the
//! Kubernetes release binaries (download with checksum verification, or a local directory).

pub mod kubeadm;
pub mod kubeconfig;
pub mod release;
pub mod version;

crate::errors::layer_error!(
    /// A Kubernetes setting minik cannot use (a version, a kubeadm parameter), or a
    /// configuration it cannot render (reasons: `crate::errors`).
    InputError,
    /// What went wrong with a Kubernetes setting.
    InputKind {
        /// The user's value is invalid or unsupported.
        Invalid,
        /// A bug: minik cannot render its own configuration.
        Bug,
    }
);
