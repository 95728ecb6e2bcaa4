//! Kubernetes on the nodes: kubeadm configuration, kubeconfig export and merge, and the
//! Kubernetes release binaries (download with checksum verification, or a local directory).

pub mod kubeadm;
pub mod kubeconfig;
pub mod release;
pub mod version;
