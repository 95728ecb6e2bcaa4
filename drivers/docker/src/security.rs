//! How node containers get the privileges that systemd, containerd and nested containers need.

use bollard::models::{HostConfig, HostConfigCgroupnsModeEnum};

/// Which security options node containers are created with.
///
/// Chosen by the flavor's environment variable (`MINIK_DOCKER_SECURITY` for docker):
/// `privileged`, `capabilities` or `auto` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// Try [`SecurityMode::Privileged`] for the first node; if the engine refuses to start it
    /// (some VMs lack capabilities in their bounding set, so runc fails with "unable to apply
    /// caps"), use [`SecurityMode::Capabilities`] for it and every later node of this driver.
    Auto,
    /// `--privileged --cgroupns=private`, seccomp and AppArmor unconfined: what kind and minikube
    /// use, and what a cgroup v2 host needs for a node to manage its own cgroups.
    Privileged,
    /// Every capability but `SYS_RESOURCE`, seccomp, AppArmor and `/proc` masking off, and a
    /// private cgroup namespace: works where `--privileged` is refused.
    Capabilities,
}

impl SecurityMode {
    /// Parses `privileged`, `capabilities` or `auto` (case-insensitive).
    pub fn parse(value: &str) -> Option<SecurityMode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(SecurityMode::Auto),
            "privileged" => Some(SecurityMode::Privileged),
            "capabilities" | "caps" => Some(SecurityMode::Capabilities),
            _ => None,
        }
    }
}

/// A concrete choice: what a node is actually created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    Privileged,
    Capabilities,
}

impl Profile {
    /// Adds this profile's options to a node's host config.
    pub(crate) fn apply(self, host: &mut HostConfig) {
        let security_opt = vec![
            "seccomp=unconfined".to_string(),
            "apparmor=unconfined".to_string(),
        ];
        match self {
            Profile::Privileged => {
                host.privileged = Some(true);
                host.cgroupns_mode = Some(HostConfigCgroupnsModeEnum::PRIVATE);
            }
            Profile::Capabilities => {
                host.privileged = Some(false);
                host.cap_add = Some(vec!["ALL".into()]);
                host.cap_drop = Some(vec!["SYS_RESOURCE".into()]);
                // Without --privileged, /proc/sys is read-only and parts of /proc are masked;
                // kube-proxy and the node's entrypoint write sysctls. Empty lists (not absent
                // ones) replace the engine's defaults: the CLI's `systempaths=unconfined`.
                host.masked_paths = Some(Vec::new());
                host.readonly_paths = Some(Vec::new());
                // A private cgroup namespace, as under --privileged: the node's entrypoint makes
                // the read-only cgroup v1 mounts writable itself, so every node (and every
                // nested container or kubelet in it) gets cgroups below its own, never at the
                // host's root where two nodes' `/k8s.io/<id>` or `/kubelet` would collide.
                host.cgroupns_mode = Some(HostConfigCgroupnsModeEnum::PRIVATE);
                // On cgroup v1 the engine's device cgroup for a container that is not
                // privileged allows only the default devices, and a cgroup may not allow more
                // than its parent: runc then fails every privileged pod (kube-proxy) with
                // `failed to write "a *:* rwm" ... devices.allow: operation not permitted`.
                // --privileged allows every device; this rule does the same for the node's
                // device cgroup (its /dev stays the engine's default set).
                host.device_cgroup_rules = Some(vec!["a *:* rwm".into()]);
            }
        }
        host.security_opt = Some(security_opt);
    }
}

/// Whether a failed start of a privileged container means the engine cannot grant
/// `--privileged` here (as opposed to any other start failure).
pub(crate) fn is_privilege_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unable to apply caps")
        || (m.contains("operation not permitted") && m.contains("runc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_modes() {
        assert_eq!(
            SecurityMode::parse("Privileged"),
            Some(SecurityMode::Privileged)
        );
        assert_eq!(
            SecurityMode::parse("capabilities"),
            Some(SecurityMode::Capabilities)
        );
        assert_eq!(SecurityMode::parse(" auto "), Some(SecurityMode::Auto));
        assert_eq!(SecurityMode::parse("yes"), None);
    }

    #[test]
    fn refusal_detection() {
        let msg = "failed to create shim task: OCI runtime create failed: runc create failed: unable to \
                   start container process: unable to apply caps: operation not permitted: unknown";
        assert!(is_privilege_refusal(msg));
        assert!(!is_privilege_refusal(
            "driver failed programming external connectivity: port is already allocated"
        ));
    }

    #[test]
    fn capabilities_profile_keeps_a_private_cgroup_namespace() {
        let mut host = HostConfig {
            binds: Some(vec!["v:/var".into()]),
            ..Default::default()
        };
        Profile::Capabilities.apply(&mut host);
        assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_string()]));
        // No host cgroup mount: each node's cgroups stay below its own (see `apply`).
        assert_eq!(host.binds.as_ref().map(Vec::len), Some(1));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(
            host.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
        assert_eq!(host.masked_paths, Some(vec![]));
        // Privileged pods (kube-proxy) need every device allowed in the node's device cgroup.
        assert_eq!(
            host.device_cgroup_rules,
            Some(vec!["a *:* rwm".to_string()])
        );
        let mut host = HostConfig::default();
        Profile::Privileged.apply(&mut host);
        assert_eq!(host.privileged, Some(true));
        assert_eq!(
            host.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
    }
}
