//! The error of driver-independent cluster work (reasons: `crate::errors`).

crate::errors::layer_error!(
    /// Cluster work failed: what failed is the kind, the message says where.
    ClusterError,
    /// What went wrong in cluster work.
    ClusterKind {
        /// kubeadm or another Kubernetes component failed.
        Bootstrap,
        /// The cluster did not become ready in time.
        NotReady,
        /// A node failed to come up, or a setup command in it failed.
        Provision,
        /// The operation needs running nodes.
        NotRunning,
        /// The profile has no such node.
        NodeNotFound,
        /// Resources exist without a profile file (or the reverse).
        Orphaned,
        /// Not possible in the profile's mode (e.g. Kubernetes work on --no-kubernetes).
        Unsupported,
        /// Waiting for a node timed out.
        Timeout,
        /// A request (flag value) cluster work cannot take.
        BadRequest,
        /// A bug or an unexpected condition inside minik.
        Bug,
    }
);
