//! The kubeadm configuration of one node, rendered as a multi-document YAML string.
//!
//! Every node gets the same four documents (as kind does): `ClusterConfiguration`, then
//! `InitConfiguration` (bootstrap control plane) or `JoinConfiguration` (everyone else), then
//! `KubeletConfiguration` and `KubeProxyConfiguration`. `kubeadm join` ignores the cluster-wide
//! documents with a warning (joining kubelets take their configuration from the cluster), but
//! keeping them in every node's file means the file on each node describes the whole cluster,
//! which the restart path can diff.
//!
//! The documents are typed serde structs, so field order and quoting are fixed and the output
//! is byte-for-byte deterministic (snapshots under tests/snapshots/kubeadm/).
//!
//! The settings that matter for nodes running inside containers, and why:
//! - kubelet `cgroupDriver: systemd` (systemd is PID 1 in the node) and `cgroupRoot: /kubelet`
//!   (the node image prepares that cgroup, so pods are not mixed with the node's own services);
//! - `failSwapOn: false` (the host's swap is visible in the node and cannot be turned off);
//! - `imageGCHighThresholdPercent: 100` and `evictionHard` at `0%` for nodefs/imagefs: the
//!   kubelet sees the host's disk, and a full host disk must not make it evict pods or delete the
//!   preloaded images (which could not be pulled again offline);
//! - kube-proxy `conntrack.maxPerCore: 0` and zero conntrack TCP timeouts: kube-proxy leaves the
//!   host-global conntrack sysctls alone instead of failing to write them;
//! - `skipPhases: [preflight]`: preflight checks fail in containers (kernel config, swap, ...).

use super::version::{KubeadmApi, KubernetesVersion};
use super::{InputError, InputKind};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// containerd's CRI socket in the node image.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";
/// Where the rendered configuration is written in each node. Under /var, which persists
/// across stop/start, so a restart can compare it with a freshly rendered one.
pub const KUBEADM_CONFIG_PATH: &str = "/var/lib/minik/kubeadm.yaml";
/// The API server's port inside the nodes (the drivers publish it; one definition).
pub use minik_driver_api::API_SERVER_PORT;
/// kind's and minik's default pod network.
pub const DEFAULT_POD_SUBNET: &str = "10.244.0.0/16";
/// kind's and minik's default service network.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/16";
/// The cluster DNS domain.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// The kubelet's cgroup root; the node image creates it (kubelet-cgroups in install-kubernetes).
pub const DEFAULT_CGROUP_ROOT: &str = "/kubelet";

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// The first control plane: runs `kubeadm init`.
    BootstrapControlPlane,
    /// Another control plane: `kubeadm join --control-plane` (CA files copied in beforehand).
    JoiningControlPlane,
    /// A worker: `kubeadm join`.
    Worker,
}

impl NodeRole {
    /// True for both kinds of control plane.
    pub fn is_control_plane(self) -> bool {
        !matches!(self, NodeRole::Worker)
    }
}

/// Everything that varies between clusters and nodes in the kubeadm configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeadmParams {
    /// The Kubernetes version; also picks the kubeadm config API.
    pub kubernetes_version: KubernetesVersion,
    /// kubeadm's `clusterName` (minik uses the profile name).
    pub cluster_name: String,
    /// `host:port` every node reaches the API server at (the bootstrap control plane's name or
    /// a load balancer, port 6443). Also the join discovery endpoint.
    pub control_plane_endpoint: String,
    /// This node's name (hostname and Kubernetes node name).
    pub node_name: String,
    /// This node's IP on the cluster network (kubelet `node-ip`, API advertise address).
    pub node_ip: String,
    /// Bootstrap control plane, joining control plane, or worker.
    pub role: NodeRole,
    /// The API server port inside the node ([`API_SERVER_PORT`]).
    pub api_server_port: u16,
    /// Pod CIDR ([`DEFAULT_POD_SUBNET`]).
    pub pod_subnet: String,
    /// Service CIDR ([`DEFAULT_SERVICE_SUBNET`]).
    pub service_subnet: String,
    /// Cluster DNS domain ([`DEFAULT_DNS_DOMAIN`]).
    pub dns_domain: String,
    /// Bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`: created by init, used by joins.
    pub token: String,
    /// API server certificate SANs besides `localhost` and `127.0.0.1` (always present so the
    /// host can use the published port). kubeadm adds the node IP and endpoint host itself.
    pub extra_cert_sans: Vec<String>,
    /// kubelet `provider-id` ([`provider_id`]).
    pub provider_id: String,
    /// Extra kubelet node labels (`node-labels`), e.g. `minik.io/profile`.
    pub node_labels: BTreeMap<String, String>,
    /// Register control planes without the NoSchedule taint (`taints: []`): for single-node
    /// clusters, so no separate untaint step is needed.
    pub schedulable_control_plane: bool,
    /// Set kubelet `failCgroupV1: false`, so 1.35+ kubelets run on cgroup v1 hosts (the
    /// caller sets it after detecting such a host and warning that v1 is deprecated).
    pub allow_cgroup_v1: bool,
    /// kubelet `cgroupRoot` ([`DEFAULT_CGROUP_ROOT`]).
    pub cgroup_root: String,
    /// The node runs on an emulated CPU (qemu TCG), several times slower than the host:
    /// kubeadm's waits ([`SLOW_TIMEOUTS`]) and the controller-manager's and scheduler's
    /// leader-election periods are raised so a control plane that takes minutes to come up
    /// is not given up on, and does not lose its lease under load.
    pub slow_nodes: bool,
}

/// kubeadm's waits for nodes on an emulated CPU, against kubeadm's defaults: the control
/// plane's health (4 min), API calls (1 min; the admin ClusterRoleBinding of `init` is one),
/// etcd calls (2 min), the kubelet's TLS bootstrap and join discovery (5 min each).
pub const SLOW_TIMEOUTS: SlowTimeouts = SlowTimeouts {
    control_plane_component_health_check: "10m0s",
    kubernetes_api_call: "5m0s",
    etcd_api_call: "5m0s",
    tls_bootstrap: "10m0s",
    discovery: "10m0s",
};

/// Leader election of the controller-manager and the scheduler on emulated nodes (defaults
/// 15 s / 10 s / 2 s): a renewal that takes longer than 10 s under TCG would otherwise make
/// the component exit and restart.
const SLOW_LEADER_ELECTION: [(&str, &str); 3] = [
    ("leader-elect-lease-duration", "60s"),
    ("leader-elect-renew-deadline", "40s"),
    ("leader-elect-retry-period", "5s"),
];

/// kubeadm v1beta4 `timeouts` (InitConfiguration and JoinConfiguration); v1beta3 has only
/// `apiServer.timeoutForControlPlane` and `discovery.timeout`, set from the same values.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowTimeouts {
    pub control_plane_component_health_check: &'static str,
    #[serde(rename = "kubernetesAPICall")]
    pub kubernetes_api_call: &'static str,
    #[serde(rename = "etcdAPICall")]
    pub etcd_api_call: &'static str,
    #[serde(rename = "tlsBootstrap")]
    pub tls_bootstrap: &'static str,
    pub discovery: &'static str,
}

impl KubeadmParams {
    /// Parameters with every default filled in.
    pub fn new(
        kubernetes_version: KubernetesVersion,
        cluster_name: impl Into<String>,
        control_plane_endpoint: impl Into<String>,
        node_name: impl Into<String>,
        node_ip: impl Into<String>,
        role: NodeRole,
        token: impl Into<String>,
    ) -> Self {
        let cluster_name = cluster_name.into();
        let node_name = node_name.into();
        KubeadmParams {
            provider_id: provider_id(&cluster_name, &node_name),
            kubernetes_version,
            cluster_name,
            control_plane_endpoint: control_plane_endpoint.into(),
            node_name,
            node_ip: node_ip.into(),
            role,
            api_server_port: API_SERVER_PORT,
            pod_subnet: DEFAULT_POD_SUBNET.into(),
            service_subnet: DEFAULT_SERVICE_SUBNET.into(),
            dns_domain: DEFAULT_DNS_DOMAIN.into(),
            token: token.into(),
            extra_cert_sans: Vec::new(),
            node_labels: BTreeMap::new(),
            schedulable_control_plane: false,
            allow_cgroup_v1: false,
            cgroup_root: DEFAULT_CGROUP_ROOT.into(),
            slow_nodes: false,
        }
    }
}

/// The kubelet provider ID of a node: `minik://<profile>/<node>`.
pub fn provider_id(profile: &str, node: &str) -> String {
    format!("minik://{profile}/{node}")
}

/// A fresh random bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`), from the OS's random source.
///
/// kind uses a fixed token; a random one costs nothing and keeps other containers on the
/// same network from joining nodes during the token's 24 h lifetime.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 64];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    // Rejection sampling: 252 = 7 * 36, so accepted bytes map uniformly.
    let mut chars = raw
        .iter()
        .filter(|b| **b < 252)
        .map(|b| ALPHABET[usize::from(*b) % 36] as char);
    let token: String = chars.by_ref().take(22).collect();
    if token.len() < 22 {
        return Err(std::io::Error::other("not enough random bytes"));
    }
    Ok(format!("{}.{}", &token[..6], &token[6..]))
}

/// True for a well-formed bootstrap token.
pub fn is_valid_token(token: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(token.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// Renders the node's kubeadm configuration (four YAML documents separated by `---`).
///
/// Fails with `MK_USAGE` when a parameter is malformed (names, IP, CIDRs, endpoint, token):
/// they come from flags and the driver, and kubeadm's own message would come much later.
pub fn render(params: &KubeadmParams) -> anyhow::Result<String> {
    validate(params)?;
    let api = params.kubernetes_version.kubeadm_api();
    let docs = [
        to_yaml(&cluster_configuration(params, api))?,
        match params.role {
            NodeRole::BootstrapControlPlane => to_yaml(&init_configuration(params, api))?,
            NodeRole::JoiningControlPlane | NodeRole::Worker => {
                to_yaml(&join_configuration(params, api))?
            }
        },
        to_yaml(&kubelet_configuration(params))?,
        to_yaml(&kube_proxy_configuration())?,
    ];
    Ok(docs.join("---\n"))
}

fn to_yaml<T: Serialize>(doc: &T) -> anyhow::Result<String> {
    let yaml = serde_saphyr::to_string(doc).map_err(|e| {
        InputError::new(
            InputKind::Bug,
            format!("cannot render the kubeadm configuration: {e}"),
        )
    })?;
    Ok(yaml)
}

fn invalid(what: &str, value: &str, why: &str) -> anyhow::Error {
    InputError::new(
        InputKind::Invalid,
        format!("invalid {what} {value:?} for the kubeadm configuration: {why}"),
    )
    .into()
}

fn validate(p: &KubeadmParams) -> anyhow::Result<()> {
    for (what, name) in [
        ("cluster name", &p.cluster_name),
        ("node name", &p.node_name),
    ] {
        if !is_dns_subdomain(name) {
            return Err(invalid(
                what,
                name,
                "must be lowercase letters, digits, '-' and '.', at most 253 characters",
            ));
        }
    }
    p.node_ip
        .parse::<IpAddr>()
        .map_err(|_| invalid("node IP", &p.node_ip, "not an IP address"))?;
    for (what, cidr) in [
        ("pod subnet", &p.pod_subnet),
        ("service subnet", &p.service_subnet),
    ] {
        if !is_cidr(cidr) {
            return Err(invalid(what, cidr, "not a CIDR such as 10.244.0.0/16"));
        }
    }
    if !is_host_port(&p.control_plane_endpoint) {
        return Err(invalid(
            "control-plane endpoint",
            &p.control_plane_endpoint,
            "must be HOST:PORT",
        ));
    }
    if !is_valid_token(&p.token) {
        return Err(invalid(
            "bootstrap token",
            &p.token,
            "must match [a-z0-9]{6}.[a-z0-9]{16}",
        ));
    }
    if !is_dns_subdomain(&p.dns_domain) {
        return Err(invalid("DNS domain", &p.dns_domain, "not a DNS name"));
    }
    if p.api_server_port == 0 {
        return Err(invalid("API server port", "0", "must be 1-65535"));
    }
    for san in &p.extra_cert_sans {
        if san.parse::<IpAddr>().is_err()
            && !is_dns_subdomain(san.strip_prefix("*.").unwrap_or(san))
        {
            return Err(invalid(
                "certificate SAN",
                san,
                "must be an IP address or a DNS name",
            ));
        }
    }
    for (k, v) in &p.node_labels {
        if !is_label_key(k) || !(v.is_empty() || is_label_name(v)) {
            return Err(invalid(
                "node label",
                &format!("{k}={v}"),
                "not a valid Kubernetes label",
            ));
        }
    }
    if !p.cgroup_root.starts_with('/') || p.cgroup_root.contains(char::is_whitespace) {
        return Err(invalid(
            "cgroup root",
            &p.cgroup_root,
            "must be an absolute cgroup path",
        ));
    }
    Ok(())
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A label name (or value): at most 63 alphanumerics, '-', '_', '.', alphanumeric at both ends.
fn is_label_name(s: &str) -> bool {
    let alnum = |c: Option<u8>| c.is_some_and(|b| b.is_ascii_alphanumeric());
    s.len() <= 63
        && alnum(s.bytes().next())
        && alnum(s.bytes().last())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A label key: `[prefix/]name`, the prefix a DNS subdomain.
fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    matches!(bits.parse::<u8>(), Ok(b) if b <= max && !bits.starts_with('+'))
}

fn is_host_port(s: &str) -> bool {
    // `[v6]:port` or `host:port`.
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => (h, p),
            _ => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if h.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_subdomain(h) => {
                (h, p)
            }
            _ => return false,
        }
    };
    !host.is_empty() && matches!(port.parse::<u16>(), Ok(p) if p != 0 && !port.starts_with('+'))
}

// ---- documents ---------------------------------------------------------------------------

/// Component flags: a string map in v1beta3, a `{name, value}` list in v1beta4. Kept sorted
/// by name so the output does not depend on insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    api: KubeadmApi,
    args: BTreeMap<String, String>,
}

impl Args {
    fn new<const N: usize>(api: KubeadmApi, args: [(&str, String); N]) -> Self {
        Args {
            api,
            args: args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
    fn extend(&mut self, args: impl IntoIterator<Item = (&'static str, &'static str)>) {
        self.args.extend(
            args.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.api {
            KubeadmApi::V1Beta3 => {
                let mut map = serializer.serialize_map(Some(self.args.len()))?;
                for (k, v) in &self.args {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            KubeadmApi::V1Beta4 => {
                #[derive(Serialize)]
                struct Arg<'a> {
                    name: &'a str,
                    value: &'a str,
                }
                let mut seq = serializer.serialize_seq(Some(self.args.len()))?;
                for (name, value) in &self.args {
                    seq.serialize_element(&Arg { name, value })?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterConfiguration<'a> {
    api_version: &'static str,
    kind: &'static str,
    cluster_name: &'a str,
    kubernetes_version: String,
    control_plane_endpoint: &'a str,
    api_server: ApiServer,
    controller_manager: Component,
    #[serde(skip_serializing_if = "Component::is_empty")]
    scheduler: Component,
    networking: Networking<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiServer {
    #[serde(rename = "certSANs")]
    cert_sans: Vec<String>,
    /// v1beta3 only (v1beta4 moved it to `timeouts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_for_control_plane: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(skip_serializing_if = "Args::is_empty")]
    extra_args: Args,
}

impl Component {
    fn is_empty(&self) -> bool {
        self.extra_args.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Networking<'a> {
    dns_domain: &'a str,
    pod_subnet: &'a str,
    service_subnet: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitConfiguration<'a> {
    api_version: &'static str,
    kind: &'static str,
    bootstrap_tokens: Vec<BootstrapToken<'a>>,
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint<'a>,
    node_registration: NodeRegistration<'a>,
    skip_phases: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<SlowTimeouts>,
}

#[derive(Serialize)]
struct BootstrapToken<'a> {
    token: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiEndpoint<'a> {
    advertise_address: &'a str,
    bind_port: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeRegistration<'a> {
    name: &'a str,
    cri_socket: &'static str,
    kubelet_extra_args: Args,
    /// `Some(vec![])` renders `taints: []` (no taint); `None` keeps kubeadm's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    taints: Option<Vec<()>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinConfiguration<'a> {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<JoinControlPlane<'a>>,
    discovery: Discovery<'a>,
    node_registration: NodeRegistration<'a>,
    skip_phases: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<SlowTimeouts>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinControlPlane<'a> {
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Discovery<'a> {
    bootstrap_token: DiscoveryToken<'a>,
    /// v1beta3 only (v1beta4 moved it to `timeouts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoveryToken<'a> {
    api_server_endpoint: &'a str,
    token: &'a str,
    #[serde(rename = "unsafeSkipCAVerification")]
    unsafe_skip_ca_verification: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfiguration<'a> {
    api_version: &'static str,
    kind: &'static str,
    cgroup_driver: &'static str,
    cgroup_root: &'a str,
    container_runtime_endpoint: &'static str,
    eviction_hard: BTreeMap<&'static str, &'static str>,
    #[serde(rename = "failCgroupV1", skip_serializing_if = "Option::is_none")]
    fail_cgroup_v1: Option<bool>,
    fail_swap_on: bool,
    #[serde(rename = "imageGCHighThresholdPercent")]
    image_gc_high_threshold_percent: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeProxyConfiguration {
    api_version: &'static str,
    kind: &'static str,
    conntrack: Conntrack,
    iptables: Iptables,
    mode: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Conntrack {
    max_per_core: u32,
    tcp_close_wait_timeout: &'static str,
    tcp_established_timeout: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Iptables {
    min_sync_period: &'static str,
}

fn cluster_configuration(p: &KubeadmParams, api: KubeadmApi) -> ClusterConfiguration<'_> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    for san in &p.extra_cert_sans {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    ClusterConfiguration {
        api_version: api.api_version(),
        kind: "ClusterConfiguration",
        cluster_name: &p.cluster_name,
        kubernetes_version: p.kubernetes_version.to_string(),
        control_plane_endpoint: &p.control_plane_endpoint,
        api_server: ApiServer {
            cert_sans: sans,
            timeout_for_control_plane: (p.slow_nodes && api == KubeadmApi::V1Beta3)
                .then_some(SLOW_TIMEOUTS.control_plane_component_health_check),
        },
        // The in-tree hostPath provisioner backs a default StorageClass that needs no image
        // (kind's original default storage): works offline and on one node. Pod CIDRs are
        // assigned per node by minik's own CNI (cluster::kubernetes::pod_cidr), not by the
        // controller-manager, so node routes can be written before any node registers.
        controller_manager: Component {
            extra_args: {
                let mut args = Args::new(
                    api,
                    [
                        ("allocate-node-cidrs", "false".into()),
                        ("enable-hostpath-provisioner", "true".into()),
                    ],
                );
                if p.slow_nodes {
                    args.extend(SLOW_LEADER_ELECTION);
                }
                args
            },
        },
        scheduler: Component {
            extra_args: {
                let mut args = Args::new(api, []);
                if p.slow_nodes {
                    args.extend(SLOW_LEADER_ELECTION);
                }
                args
            },
        },
        networking: Networking {
            dns_domain: &p.dns_domain,
            pod_subnet: &p.pod_subnet,
            service_subnet: &p.service_subnet,
        },
    }
}

fn node_registration(p: &KubeadmParams, api: KubeadmApi) -> NodeRegistration<'_> {
    let mut args = Args::new(
        api,
        [
            ("node-ip", p.node_ip.clone()),
            ("provider-id", p.provider_id.clone()),
        ],
    );
    if !p.node_labels.is_empty() {
        let labels: Vec<String> = p
            .node_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.args.insert("node-labels".into(), labels.join(","));
    }
    NodeRegistration {
        name: &p.node_name,
        cri_socket: CRI_SOCKET,
        kubelet_extra_args: args,
        taints: (p.role.is_control_plane() && p.schedulable_control_plane).then(Vec::new),
    }
}

fn init_configuration(p: &KubeadmParams, api: KubeadmApi) -> InitConfiguration<'_> {
    InitConfiguration {
        api_version: api.api_version(),
        kind: "InitConfiguration",
        bootstrap_tokens: vec![BootstrapToken { token: &p.token }],
        local_api_endpoint: ApiEndpoint {
            advertise_address: &p.node_ip,
            bind_port: p.api_server_port,
        },
        node_registration: node_registration(p, api),
        skip_phases: vec!["preflight"],
        timeouts: v1beta4_timeouts(p, api),
    }
}

/// `timeouts` for emulated nodes on the v1beta4 API.
fn v1beta4_timeouts(p: &KubeadmParams, api: KubeadmApi) -> Option<SlowTimeouts> {
    (p.slow_nodes && api == KubeadmApi::V1Beta4).then_some(SLOW_TIMEOUTS)
}

fn join_configuration(p: &KubeadmParams, api: KubeadmApi) -> JoinConfiguration<'_> {
    JoinConfiguration {
        api_version: api.api_version(),
        kind: "JoinConfiguration",
        control_plane: p.role.is_control_plane().then(|| JoinControlPlane {
            local_api_endpoint: ApiEndpoint {
                advertise_address: &p.node_ip,
                bind_port: p.api_server_port,
            },
        }),
        discovery: Discovery {
            bootstrap_token: DiscoveryToken {
                api_server_endpoint: &p.control_plane_endpoint,
                token: &p.token,
                // The CA is not known to the joiner in advance; the token is the trust, and the
                // nodes share a private network (kind does the same).
                unsafe_skip_ca_verification: true,
            },
            timeout: (p.slow_nodes && api == KubeadmApi::V1Beta3)
                .then_some(SLOW_TIMEOUTS.discovery),
        },
        node_registration: node_registration(p, api),
        skip_phases: vec!["preflight"],
        timeouts: v1beta4_timeouts(p, api),
    }
}

fn kubelet_configuration(p: &KubeadmParams) -> KubeletConfiguration<'_> {
    KubeletConfiguration {
        api_version: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        cgroup_driver: "systemd",
        cgroup_root: &p.cgroup_root,
        container_runtime_endpoint: CRI_SOCKET,
        eviction_hard: BTreeMap::from([
            ("imagefs.available", "0%"),
            ("nodefs.available", "0%"),
            ("nodefs.inodesFree", "0%"),
        ]),
        fail_cgroup_v1: p.allow_cgroup_v1.then_some(false),
        fail_swap_on: false,
        image_gc_high_threshold_percent: 100,
    }
}

fn kube_proxy_configuration() -> KubeProxyConfiguration {
    KubeProxyConfiguration {
        api_version: "kubeproxy.config.k8s.io/v1alpha1",
        kind: "KubeProxyConfiguration",
        // 0 = "leave the sysctl as it is": these are host-global (or read-only) in a node.
        conntrack: Conntrack {
            max_per_core: 0,
            tcp_close_wait_timeout: "0s",
            tcp_established_timeout: "0s",
        },
        iptables: Iptables {
            min_sync_period: "1s",
        },
        mode: "iptables",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::classify;
    use serde_json::{Value, json};
    use std::path::PathBuf;

    const TOKEN: &str = "abcdef.0123456789abcdef";

    fn params(version: &str, node: &str, ip: &str, role: NodeRole) -> KubeadmParams {
        KubeadmParams::new(
            version.parse().unwrap(),
            "minik",
            "minik:6443",
            node,
            ip,
            role,
            TOKEN,
        )
    }

    /// The snapshot cases: (file name, parameters). Single node, multi-node bootstrap, control
    /// plane and worker joins, for one v1beta3 and one v1beta4 version.
    fn golden_cases() -> Vec<(&'static str, KubeadmParams)> {
        let mut single_v3 = params(
            "v1.33.0",
            "minik",
            "192.168.49.2",
            NodeRole::BootstrapControlPlane,
        );
        single_v3.schedulable_control_plane = true;
        let mut single_v4 = params(
            "v1.37.1",
            "minik",
            "192.168.49.2",
            NodeRole::BootstrapControlPlane,
        );
        single_v4.schedulable_control_plane = true;
        single_v4.allow_cgroup_v1 = true;
        single_v4.extra_cert_sans =
            vec!["minik.local".into(), "127.0.0.1".into(), "10.0.0.7".into()];
        single_v4.node_labels =
            BTreeMap::from([("minik.io/profile".to_string(), "minik".to_string())]);
        vec![
            ("v1beta3-init-single-node.yaml", single_v3),
            (
                "v1beta3-init-multi-node.yaml",
                params(
                    "v1.33.0",
                    "minik",
                    "192.168.49.2",
                    NodeRole::BootstrapControlPlane,
                ),
            ),
            (
                "v1beta3-join-worker.yaml",
                params("v1.33.0", "minik-m02", "192.168.49.3", NodeRole::Worker),
            ),
            (
                "v1beta3-join-control-plane.yaml",
                params(
                    "v1.35.0",
                    "minik-m02",
                    "192.168.49.3",
                    NodeRole::JoiningControlPlane,
                ),
            ),
            ("v1beta4-init-single-node.yaml", single_v4),
            (
                "v1beta4-init-multi-node.yaml",
                params(
                    "v1.37.1",
                    "minik",
                    "192.168.49.2",
                    NodeRole::BootstrapControlPlane,
                ),
            ),
            (
                "v1beta4-join-control-plane.yaml",
                params(
                    "v1.37.1",
                    "minik-m02",
                    "192.168.49.3",
                    NodeRole::JoiningControlPlane,
                ),
            ),
            (
                "v1beta4-join-worker.yaml",
                params("v1.36.0", "minik-m03", "192.168.49.4", NodeRole::Worker),
            ),
            (
                "v1beta3-init-slow-nodes.yaml",
                slow("v1.34.0", NodeRole::BootstrapControlPlane),
            ),
            (
                "v1beta3-join-slow-nodes.yaml",
                slow("v1.34.0", NodeRole::Worker),
            ),
            (
                "v1beta4-init-slow-nodes.yaml",
                slow("v1.37.2", NodeRole::BootstrapControlPlane),
            ),
            (
                "v1beta4-join-slow-nodes.yaml",
                slow("v1.37.2", NodeRole::Worker),
            ),
        ]
    }

    /// A node on an emulated CPU (qemu TCG).
    fn slow(version: &str, role: NodeRole) -> KubeadmParams {
        let (name, ip) = match role {
            NodeRole::BootstrapControlPlane => ("minik", "192.168.49.2"),
            _ => ("minik-m02", "192.168.49.3"),
        };
        let mut p = params(version, name, ip, role);
        p.slow_nodes = true;
        p
    }

    /// The snapshot of each case: tests/snapshots/kubeadm/<case>.snap holds the rendered file
    /// byte for byte below insta's header. After an intended change:
    /// `INSTA_UPDATE=always cargo test --lib kubeadm`, then review `git diff tests/snapshots`.
    #[test]
    fn rendered_configs_match_snapshots() {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../tests/snapshots/kubeadm");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| {
            for (name, p) in golden_cases() {
                let rendered = render(&p).unwrap();
                // insta trims trailing whitespace: what it cannot see is checked here.
                assert!(
                    rendered.ends_with('\n')
                        && !rendered.ends_with("\n\n")
                        && !rendered.contains('\r'),
                    "{name}: one final newline, no CR"
                );
                insta::assert_snapshot!(name.trim_end_matches(".yaml"), rendered);
            }
        });
    }

    #[test]
    fn every_snapshot_has_a_case() {
        let cases: Vec<&str> = golden_cases()
            .iter()
            .map(|c| c.0.trim_end_matches(".yaml"))
            .collect();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/kubeadm");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(case) = name.strip_suffix(".snap") {
                assert!(cases.contains(&case), "stale snapshot {name}");
            }
        }
    }

    fn docs(p: &KubeadmParams) -> Vec<Value> {
        let text = render(p).unwrap();
        serde_saphyr::from_multiple::<Value>(&text).unwrap()
    }

    fn kinds(docs: &[Value]) -> Vec<(String, String)> {
        docs.iter()
            .map(|d| {
                (
                    d["apiVersion"].as_str().unwrap().to_string(),
                    d["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_document_parses_back_with_the_right_api_version_and_kind() {
        for (name, p) in golden_cases() {
            let api = p.kubernetes_version.kubeadm_api().api_version();
            let middle = if p.role == NodeRole::BootstrapControlPlane {
                "InitConfiguration"
            } else {
                "JoinConfiguration"
            };
            let want = vec![
                (api.to_string(), "ClusterConfiguration".to_string()),
                (api.to_string(), middle.to_string()),
                (
                    "kubelet.config.k8s.io/v1beta1".into(),
                    "KubeletConfiguration".into(),
                ),
                (
                    "kubeproxy.config.k8s.io/v1alpha1".into(),
                    "KubeProxyConfiguration".into(),
                ),
            ];
            assert_eq!(kinds(&docs(&p)), want, "{name}");
        }
    }

    #[test]
    fn v1beta3_uses_maps_and_v1beta4_uses_name_value_lists() {
        let v3 = docs(&params(
            "v1.35.2",
            "minik",
            "10.0.0.2",
            NodeRole::BootstrapControlPlane,
        ));
        assert_eq!(
            v3[0]["controllerManager"]["extraArgs"],
            json!({"allocate-node-cidrs": "false", "enable-hostpath-provisioner": "true"})
        );
        assert_eq!(
            v3[1]["nodeRegistration"]["kubeletExtraArgs"],
            json!({"node-ip": "10.0.0.2", "provider-id": "minik://minik/minik"})
        );

        let v4 = docs(&params(
            "v1.36.0",
            "minik",
            "10.0.0.2",
            NodeRole::BootstrapControlPlane,
        ));
        assert_eq!(v4[0]["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(
            v4[0]["controllerManager"]["extraArgs"],
            json!([
                {"name": "allocate-node-cidrs", "value": "false"},
                {"name": "enable-hostpath-provisioner", "value": "true"}
            ])
        );
        assert_eq!(
            v4[1]["nodeRegistration"]["kubeletExtraArgs"],
            json!([{"name": "node-ip", "value": "10.0.0.2"}, {"name": "provider-id", "value": "minik://minik/minik"}])
        );
    }

    #[test]
    fn init_configuration_fields() {
        let mut p = params(
            "v1.37.1",
            "minik",
            "192.168.49.2",
            NodeRole::BootstrapControlPlane,
        );
        p.extra_cert_sans = vec!["localhost".into(), "api.example".into()];
        let d = docs(&p);
        assert_eq!(d[0]["controlPlaneEndpoint"], "minik:6443");
        assert_eq!(d[0]["kubernetesVersion"], "v1.37.1");
        assert_eq!(d[0]["clusterName"], "minik");
        assert_eq!(
            d[0]["apiServer"]["certSANs"],
            json!(["localhost", "127.0.0.1", "api.example"])
        );
        assert_eq!(
            d[0]["networking"],
            json!({"dnsDomain": "cluster.local", "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"})
        );
        let init = &d[1];
        assert_eq!(init["bootstrapTokens"], json!([{"token": TOKEN}]));
        assert_eq!(
            init["localAPIEndpoint"],
            json!({"advertiseAddress": "192.168.49.2", "bindPort": 6443})
        );
        assert_eq!(init["nodeRegistration"]["criSocket"], CRI_SOCKET);
        assert_eq!(init["nodeRegistration"]["name"], "minik");
        assert_eq!(init["skipPhases"], json!(["preflight"]));
        // Tainted by kubeadm's default unless the control plane is meant to run workloads.
        assert!(init["nodeRegistration"].get("taints").is_none());
        p.schedulable_control_plane = true;
        assert_eq!(docs(&p)[1]["nodeRegistration"]["taints"], json!([]));
    }

    #[test]
    fn join_configuration_fields() {
        for (role, cp) in [
            (NodeRole::Worker, false),
            (NodeRole::JoiningControlPlane, true),
        ] {
            let mut p = params("v1.33.0", "minik-m02", "192.168.49.3", role);
            // Only control planes can be untainted; a worker never gets `taints: []`.
            p.schedulable_control_plane = true;
            let join = docs(&p).remove(1);
            assert_eq!(
                join["discovery"]["bootstrapToken"],
                json!({"apiServerEndpoint": "minik:6443", "token": TOKEN, "unsafeSkipCAVerification": true})
            );
            assert_eq!(join["skipPhases"], json!(["preflight"]));
            assert_eq!(
                join["nodeRegistration"]["kubeletExtraArgs"]["provider-id"],
                "minik://minik/minik-m02"
            );
            if cp {
                assert_eq!(
                    join["controlPlane"]["localAPIEndpoint"],
                    json!({"advertiseAddress": "192.168.49.3", "bindPort": 6443})
                );
                assert_eq!(join["nodeRegistration"]["taints"], json!([]));
            } else {
                assert!(join.get("controlPlane").is_none());
                assert!(join["nodeRegistration"].get("taints").is_none());
            }
        }
    }

    #[test]
    fn kubelet_and_kube_proxy_settings_for_nested_nodes() {
        let mut p = params(
            "v1.35.0",
            "minik",
            "10.1.2.3",
            NodeRole::BootstrapControlPlane,
        );
        let d = docs(&p);
        let kubelet = &d[2];
        assert_eq!(kubelet["cgroupDriver"], "systemd");
        assert_eq!(kubelet["cgroupRoot"], "/kubelet");
        assert_eq!(kubelet["failSwapOn"], false);
        assert_eq!(kubelet["imageGCHighThresholdPercent"], 100);
        assert_eq!(
            kubelet["evictionHard"],
            json!({"imagefs.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%"})
        );
        assert!(kubelet.get("failCgroupV1").is_none());
        let proxy = &d[3];
        assert_eq!(proxy["mode"], "iptables");
        assert_eq!(proxy["conntrack"]["maxPerCore"], 0);
        assert_eq!(proxy["iptables"]["minSyncPeriod"], "1s");

        p.allow_cgroup_v1 = true;
        assert_eq!(docs(&p)[2]["failCgroupV1"], false);
    }

    #[test]
    fn node_labels_are_joined_in_key_order() {
        let mut p = params(
            "v1.37.1",
            "minik",
            "10.1.2.3",
            NodeRole::BootstrapControlPlane,
        );
        p.node_labels = BTreeMap::from([
            ("z".to_string(), "1".to_string()),
            ("minik.io/a".to_string(), "".to_string()),
        ]);
        let args = &docs(&p)[1]["nodeRegistration"]["kubeletExtraArgs"];
        assert_eq!(args[0], json!({"name": "node-ip", "value": "10.1.2.3"}));
        assert_eq!(
            args[1],
            json!({"name": "node-labels", "value": "minik.io/a=,z=1"})
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        for (_, p) in golden_cases() {
            assert_eq!(render(&p).unwrap(), render(&p.clone()).unwrap());
        }
    }

    #[test]
    fn ipv6_node_and_endpoint_are_accepted() {
        let mut p = params(
            "v1.37.1",
            "minik",
            "fd00::2",
            NodeRole::BootstrapControlPlane,
        );
        p.control_plane_endpoint = "[fd00::2]:6443".into();
        p.pod_subnet = "fd01::/48".into();
        p.service_subnet = "fd02::/112".into();
        assert_eq!(
            docs(&p)[1]["localAPIEndpoint"]["advertiseAddress"],
            "fd00::2"
        );
    }

    #[test]
    fn malformed_parameters_are_usage_errors_naming_the_field() {
        let base = params("v1.37.1", "minik", "10.0.0.2", NodeRole::Worker);
        type Mutation = Box<dyn Fn(&mut KubeadmParams)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("node IP", Box::new(|p| p.node_ip = "10.0.0".into())),
            ("node name", Box::new(|p| p.node_name = "Minik_1".into())),
            ("cluster name", Box::new(|p| p.cluster_name = String::new())),
            (
                "pod subnet",
                Box::new(|p| p.pod_subnet = "10.244.0.0/33".into()),
            ),
            (
                "service subnet",
                Box::new(|p| p.service_subnet = "10.96.0.0".into()),
            ),
            (
                "control-plane endpoint",
                Box::new(|p| p.control_plane_endpoint = "minik".into()),
            ),
            (
                "control-plane endpoint",
                Box::new(|p| p.control_plane_endpoint = "minik:0".into()),
            ),
            (
                "control-plane endpoint",
                Box::new(|p| p.control_plane_endpoint = "fd00::1:6443".into()),
            ),
            (
                "bootstrap token",
                Box::new(|p| p.token = "abcdef.0123".into()),
            ),
            (
                "bootstrap token",
                Box::new(|p| p.token = "ABCDEF.0123456789abcdef".into()),
            ),
            (
                "certificate SAN",
                Box::new(|p| p.extra_cert_sans = vec!["bad name".into()]),
            ),
            (
                "node label",
                Box::new(|p| p.node_labels = BTreeMap::from([("a".into(), "x/y".into())])),
            ),
            (
                "node label",
                Box::new(|p| p.node_labels = BTreeMap::from([("-a".into(), "x".into())])),
            ),
            (
                "cgroup root",
                Box::new(|p| p.cgroup_root = "kubelet".into()),
            ),
            ("API server port", Box::new(|p| p.api_server_port = 0)),
            (
                "DNS domain",
                Box::new(|p| p.dns_domain = "Cluster.Local".into()),
            ),
        ];
        for (what, mutate) in cases {
            let mut p = base.clone();
            mutate(&mut p);
            let err = render(&p).unwrap_err();
            assert_eq!(classify(&err).0.id, "MK_USAGE", "{what}");
            assert!(
                err.to_string().starts_with(&format!("invalid {what} ")),
                "{what}: {err}"
            );
        }
        render(&base).unwrap();
    }

    #[test]
    fn random_tokens_are_valid_and_differ() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert!(is_valid_token(&a), "{a}");
        assert!(is_valid_token(&b), "{b}");
        assert_ne!(a, b);
        assert!(is_valid_token(TOKEN));
        assert!(!is_valid_token("abcdef0123456789abcdef"));
    }

    #[test]
    fn roles_and_provider_ids() {
        assert!(NodeRole::BootstrapControlPlane.is_control_plane());
        assert!(NodeRole::JoiningControlPlane.is_control_plane());
        assert!(!NodeRole::Worker.is_control_plane());
        assert_eq!(provider_id("dev", "dev-m02"), "minik://dev/dev-m02");
    }
}
