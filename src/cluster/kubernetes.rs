//! Kubernetes on the nodes over the `Runner` only: the plan (nodes, addresses, token), the
//! pieces the setup steps are made of (kubeadm configuration, minik's imageless CNI: a bridge
//! and host-local conflist per node, routes to the other nodes' pod CIDRs, one masquerade
//! rule and a boot unit; `kubeadm init`/`join`; the default StorageClass), the kubeconfig export,
//! node removal, and waiting for readiness ([`wait_ready`]: API, nodes Ready, CoreDNS
//! endpoints, from the host with the kube client). The order the steps run in is
//! [`super::steps`]. Both the CNI and the storage class need no container image, so a cluster
//! comes up with nothing to pull beyond what kubeadm itself needs (preloaded in the node
//! image).

use super::error::{ClusterError, ClusterKind};
use crate::k8s::kubeadm::{self, KUBEADM_CONFIG_PATH, KubeadmParams, NodeRole};
use crate::k8s::kubeconfig;
use crate::k8s::version::KubernetesVersion;
use crate::state::Profile;
use crate::ui::Reporter;
use anyhow::Context as _;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::config::Kubeconfig;
use minik_driver_api::{Driver, Role, Runner};
use std::time::{Duration, Instant};

/// Where the first control plane's admin kubeconfig is.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// The CNI configuration minik writes.
pub const CNI_CONFLIST: &str = "/etc/cni/net.d/10-minik.conflist";
/// The script that installs pod routes and the masquerade rule.
pub const NET_SCRIPT: &str = "/etc/minik/net.sh";
/// The unit that runs [`NET_SCRIPT`] at every boot.
pub const NET_UNIT: &str = "/etc/systemd/system/minik-net.service";
/// The default StorageClass manifest.
pub const STORAGE_MANIFEST: &str = "/var/lib/minik/manifests/storage.yaml";

/// One node as the Kubernetes steps see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNode {
    pub name: String,
    pub role: Role,
    pub index: u32,
    /// The node's address on the profile network.
    pub ip: String,
}

/// Everything the steps need to know about the cluster.
#[derive(Debug, Clone)]
pub struct Plan {
    pub profile: String,
    pub version: KubernetesVersion,
    /// Sorted by index; the first is the bootstrap control plane.
    pub nodes: Vec<PlannedNode>,
    /// The host port the API server is published on.
    pub api_port: u16,
    /// kubeadm bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
    pub token: String,
    /// The nodes see a cgroup v1 hierarchy (kubelet ≥ 1.35 must be told to accept it).
    pub cgroup_v1: bool,
    /// The nodes run on an emulated CPU ([`minik_driver_api::Driver::emulated`]): kubeadm
    /// gets longer timeouts ([`KubeadmParams::slow_nodes`]).
    pub slow_nodes: bool,
}

impl Plan {
    /// The bootstrap control plane.
    pub fn control_plane(&self) -> &PlannedNode {
        &self.nodes[0]
    }

    /// `host:port` every node reaches the API server at.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.control_plane().ip, kubeadm::API_SERVER_PORT)
    }

    /// The kubeadm parameters for one node.
    pub fn kubeadm_params(&self, node: &PlannedNode) -> KubeadmParams {
        let role = if node.index == self.control_plane().index {
            NodeRole::BootstrapControlPlane
        } else if node.role == Role::ControlPlane {
            NodeRole::JoiningControlPlane
        } else {
            NodeRole::Worker
        };
        let mut p = KubeadmParams::new(
            self.version.clone(),
            &self.profile,
            self.endpoint(),
            &node.name,
            &node.ip,
            role,
            &self.token,
        );
        p.schedulable_control_plane = self.nodes.len() == 1;
        p.allow_cgroup_v1 = self.cgroup_v1 && self.version.fails_on_cgroup_v1_by_default();
        p.slow_nodes = self.slow_nodes;
        p.node_labels
            .insert("minik.io/profile".into(), self.profile.clone());
        p
    }
}

/// The pod CIDR of the node with `index`: `10.244.<index>.0/24` inside the default
/// `10.244.0.0/16` pod subnet. Assigned by minik, not the controller-manager, so routes can be
/// written before any node registers and never change.
pub fn pod_cidr(index: u32) -> String {
    // DEFAULT_POD_SUBNET is a /16: its first two octets, the node's index, a /24.
    let (net, _) = kubeadm::DEFAULT_POD_SUBNET
        .split_once('/')
        .expect("DEFAULT_POD_SUBNET is a CIDR");
    let prefix: Vec<&str> = net.split('.').take(2).collect();
    format!("{}.{index}.0/24", prefix.join("."))
}

/// The CNI conflist for a node: a bridge with host-local IPAM over the node's pod CIDR, plus
/// portmap for hostPorts. Masquerading is done once per node by [`net_script`] so traffic
/// between pods on different nodes keeps its source address.
pub fn cni_conflist(node: &PlannedNode) -> String {
    let v = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "minik",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "minik0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr(node.index)}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    serde_json::to_string_pretty(&v).expect("static JSON") + "\n"
}

/// The script that routes every other node's pod CIDR through that node and masquerades
/// traffic leaving the pod network. Idempotent: it runs at every boot.
pub fn net_script(plan: &Plan, node: &PlannedNode) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by minik: routes to the other nodes' pods, and NAT for traffic leaving the pod network.\nset -e\n",
    );
    for other in plan.nodes.iter().filter(|n| n.index != node.index) {
        s.push_str(&format!(
            "ip route replace {} via {}\n",
            pod_cidr(other.index),
            other.ip
        ));
    }
    s.push_str(
        &format!(
            "iptables -t nat -C POSTROUTING -s {pods} ! -d {pods} -j MASQUERADE 2>/dev/null \\\n  || iptables -t nat -A POSTROUTING -s {pods} ! -d {pods} -j MASQUERADE\n",
            pods = kubeadm::DEFAULT_POD_SUBNET
        ),
    );
    s
}

/// The oneshot unit that applies [`NET_SCRIPT`] at boot, before kubelet. The node image ships
/// it enabled (so a node container recreated from its volume gets its routes back); the network
/// step writes and enables it too, for images made before that.
pub const NET_UNIT_TEXT: &str =
    include_str!("../../node-image/files/etc/systemd/system/minik-net.service");

/// The default StorageClass: the in-tree hostPath provisioner (enabled in the
/// controller-manager by the kubeadm config), so it needs no image.
pub const STORAGE_CLASS: &str = "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
  labels:
    app.kubernetes.io/managed-by: minik
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
";

/// Runs a setup command, failing with K8S_BOOTSTRAP naming the step, the node and the
/// command's last error line.
pub(super) async fn must<R: Runner>(
    runner: &R,
    step: &str,
    argv: &[&str],
) -> anyhow::Result<String> {
    let out = runner
        .run(argv)
        .await
        .with_context(|| format!("{step}: running {} on {}", argv.join(" "), runner.node()))?;
    if !out.success() {
        return Err(ClusterError::new(
            ClusterKind::Bootstrap,
            format!(
                "step {step} failed on node {}: `{}` exited with {}: {}",
                runner.node(),
                argv.join(" "),
                out.exit_code,
                out.last_error_line()
            ),
        )
        .with_advice(format!(
            "Run `{} -u kubelet` for the kubelet's journal; --keep-on-failure keeps the nodes.",
            super::logs_command(runner.node())
        ))
        .into());
    }
    Ok(out.stdout_str())
}

/// The kubelet's last journal lines, quoted in bootstrap and readiness failures.
const KUBELET_JOURNAL: [&str; 8] = [
    "journalctl",
    "--no-pager",
    "-u",
    "kubelet",
    "-n",
    "15",
    "-o",
    "cat",
];

/// Like [`must`], for kubeadm: on failure, the kubelet's last journal lines follow kubeadm's
/// own last error line in the message.
async fn kubeadm<R: Runner>(runner: &R, step: &str, argv: &[&str]) -> anyhow::Result<()> {
    let out = runner
        .run(argv)
        .await
        .with_context(|| format!("{step}: running {} on {}", argv.join(" "), runner.node()))?;
    if out.success() {
        return Ok(());
    }
    // kubeadm's own last error line first (what failed), then the kubelet's journal (why).
    let journal = runner
        .run(&KUBELET_JOURNAL)
        .await
        .map(|o| o.stdout_str())
        .unwrap_or_default();
    // kubeadm ends every failure with "To see the stack trace of this error execute with
    // --v=5 or higher"; the line before it says what failed ("error execution phase ...").
    let stderr = out.stderr_str();
    let cause = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("To see the stack trace"))
        .map(str::to_string)
        .unwrap_or_else(|| out.last_error_line());
    let mut message = format!(
        "step {step} failed on node {}: `{}` exited with {}: {cause}",
        runner.node(),
        argv.join(" "),
        out.exit_code,
    );
    if !journal.trim().is_empty() {
        message.push_str(&format!(
            "\nkubelet's last journal lines on {}:\n{}",
            runner.node(),
            journal.trim_end()
        ));
    }
    Err(ClusterError::new(ClusterKind::Bootstrap, message)
        .with_advice(format!(
            "Run `{} -u kubelet` for the kubelet's journal; --keep-on-failure keeps the nodes.",
            super::logs_command(runner.node())
        ))
        .into())
}

/// True when the node sees cgroup v1 (`/sys/fs/cgroup` is a tmpfs of v1 hierarchies).
pub async fn detect_cgroup_v1<R: Runner>(runner: &R) -> anyhow::Result<bool> {
    let fs = must(
        runner,
        "detect-cgroups",
        &["stat", "-fc", "%T", "/sys/fs/cgroup"],
    )
    .await?;
    Ok(fs.trim() != "cgroup2fs")
}

/// Writes the node's kubeadm configuration (init or join, per its place in `plan`).
pub async fn write_kubeadm_config<R: Runner>(
    runner: &R,
    plan: &Plan,
    node: &PlannedNode,
) -> anyhow::Result<()> {
    let yaml = kubeadm::render(&plan.kubeadm_params(node))?;
    runner
        .copy_to(KUBEADM_CONFIG_PATH, yaml.as_bytes(), 0o600)
        .await?;
    Ok(())
}

/// Installs (or refreshes) the node's CNI configuration and pod routes, and applies them now.
pub async fn configure_network<R: Runner>(
    runner: &R,
    plan: &Plan,
    node: &PlannedNode,
) -> anyhow::Result<()> {
    runner
        .copy_to(CNI_CONFLIST, cni_conflist(node).as_bytes(), 0o644)
        .await?;
    runner
        .copy_to(NET_SCRIPT, net_script(plan, node).as_bytes(), 0o755)
        .await?;
    runner
        .copy_to(NET_UNIT, NET_UNIT_TEXT.as_bytes(), 0o644)
        .await?;
    must(runner, "network", &["systemctl", "daemon-reload"]).await?;
    must(
        runner,
        "network",
        &["systemctl", "enable", "minik-net.service"],
    )
    .await?;
    must(
        runner,
        "network",
        &["systemctl", "restart", "minik-net.service"],
    )
    .await?;
    Ok(())
}

/// `kubeadm join` with the node's configuration.
pub async fn join<R: Runner>(runner: &R) -> anyhow::Result<()> {
    kubeadm(
        runner,
        "kubeadm-join",
        &["kubeadm", "join", "--config", KUBEADM_CONFIG_PATH, "--v=1"],
    )
    .await
}

/// A fresh bootstrap token from the control plane, for joins after the first day (the one
/// from `kubeadm init` expires after 24 hours).
pub async fn create_token<R: Runner>(control_plane: &R) -> anyhow::Result<String> {
    let out = must(
        control_plane,
        "kubeadm-token",
        &["kubeadm", "token", "create", "--ttl", "1h"],
    )
    .await?;
    let token = out.trim().to_string();
    if !kubeadm::is_valid_token(&token) {
        return Err(ClusterError::new(
            ClusterKind::Bootstrap,
            format!("`kubeadm token create` printed {token:?}, not a bootstrap token"),
        )
        .with_advice("Run `minik logs -u kubelet` on the control plane and retry.")
        .into());
    }
    Ok(token)
}

/// Takes a node out of the cluster: drain, delete the Node object (best effort: the node may
/// already be broken), and drop its pod route from the remaining nodes. `plan` no longer
/// lists the node.
pub async fn remove_node<D: Driver>(
    driver: &D,
    plan: &Plan,
    node: &PlannedNode,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let cp = driver.runner(&plan.control_plane().name);
    let drain: Vec<&str> = vec![
        "kubectl",
        "--kubeconfig",
        ADMIN_CONF,
        "drain",
        &node.name,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--timeout=60s",
    ];
    let delete: Vec<&str> = vec![
        "kubectl",
        "--kubeconfig",
        ADMIN_CONF,
        "delete",
        "node",
        &node.name,
        "--ignore-not-found",
    ];
    for argv in [drain, delete] {
        let out = cp.run(&argv).await?;
        if !out.success() {
            reporter.warn(&format!(
                "`{}` failed: {}",
                argv.join(" "),
                out.last_error_line()
            ));
        }
    }
    let cidr = pod_cidr(node.index);
    for other in &plan.nodes {
        let runner = driver.runner(&other.name);
        configure_network(&runner, plan, other).await?;
        // `ip route replace` never removes a route: drop the departed node's explicitly.
        let _ = runner.run(&["ip", "route", "del", &cidr]).await;
    }
    Ok(())
}

/// `kubeadm init` on the bootstrap control plane, with its configuration.
pub async fn init<R: Runner>(control_plane: &R) -> anyhow::Result<()> {
    kubeadm(
        control_plane,
        "kubeadm-init",
        &[
            "kubeadm",
            "init",
            "--config",
            KUBEADM_CONFIG_PATH,
            "--skip-token-print",
            "--v=1",
        ],
    )
    .await
}

/// The profile's kubeconfig, from the control plane's admin.conf: renamed to the profile and
/// pointed at the API server's published port (not yet written anywhere).
pub async fn export_kubeconfig<D: Driver>(driver: &D, plan: &Plan) -> anyhow::Result<Kubeconfig> {
    let admin = driver
        .runner(&plan.control_plane().name)
        .read_file(ADMIN_CONF)
        .await
        .context("reading admin.conf from the control plane")?;
    Ok(kubeconfig::export(
        &String::from_utf8_lossy(&admin),
        &plan.profile,
        &kubeconfig::local_server(plan.api_port),
    )?)
}

/// What is not ready yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The API server does not answer.
    Api(String),
    /// A node is missing or its Ready condition is not True.
    Node(String),
    /// CoreDNS has no ready endpoint.
    CoreDns,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Api(e) => write!(f, "the API server does not answer ({e})"),
            NotReady::Node(n) => write!(f, "node {n} is not Ready"),
            NotReady::CoreDns => f.write_str("CoreDNS has no ready endpoint"),
        }
    }
}

/// Judges readiness from the objects read from the API: every expected node Ready, and a
/// kube-dns EndpointSlice with at least one ready endpoint.
pub fn readiness(
    expected: &[String],
    nodes: &[Node],
    slices: &[EndpointSlice],
) -> Result<(), NotReady> {
    for name in expected {
        let ready = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name.as_str()))
            .is_some_and(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
        if !ready {
            return Err(NotReady::Node(name.clone()));
        }
    }
    let dns_ready = slices.iter().any(|s| {
        s.endpoints
            .iter()
            .any(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
    });
    if !dns_ready {
        return Err(NotReady::CoreDns);
    }
    Ok(())
}

/// Builds a kube client for the profile's context of `config`.
pub async fn client(config: &Kubeconfig, profile: &str) -> anyhow::Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: Some(profile.to_string()),
        ..Default::default()
    };
    let mut cfg = kube::Config::from_custom_kubeconfig(config.clone(), &options)
        .await
        .context("reading the profile's kubeconfig")?;
    cfg.connect_timeout = Some(Duration::from_secs(3));
    cfg.read_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(cfg).context("creating the Kubernetes client")
}

async fn check_once(client: &kube::Client, expected: &[String]) -> Result<(), NotReady> {
    use kube::api::{Api, ListParams};
    // `/readyz`, not only an answer: a restarted API server answers while its post-start
    // hooks (the RBAC bootstrap) still run, and the nodes' Ready conditions read from etcd
    // are then the ones from before the stop (seen on qemu under TCG: `start` returned, and
    // `/readyz` failed on poststarthook/rbac/bootstrap-roles right after).
    let readyz = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| NotReady::Api(e.to_string()))?;
    let answer = client
        .request_text(readyz)
        .await
        .map_err(|e| NotReady::Api(format!("/readyz: {e}")))?;
    if answer.trim() != "ok" {
        return Err(NotReady::Api(format!("/readyz says {}", answer.trim())));
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| NotReady::Api(e.to_string()))?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("kubernetes.io/service-name=kube-dns"))
        .await
        .map_err(|e| NotReady::Api(e.to_string()))?;
    readiness(expected, &nodes.items, &slices.items)
}

/// Waits until the API answers, every node is Ready and CoreDNS has a ready endpoint. On
/// timeout the error names what is not ready and carries its last log lines, read through the
/// node runners.
pub async fn wait_ready<D: Driver>(
    driver: &D,
    plan: &Plan,
    config: &Kubeconfig,
    reporter: &Reporter,
    timeout: Duration,
) -> anyhow::Result<()> {
    let step = reporter.step("wait", "Waiting for nodes and CoreDNS to be ready");
    let expected: Vec<String> = plan.nodes.iter().map(|n| n.name.clone()).collect();
    let client = client(config, &plan.profile).await?;
    let start = Instant::now();
    let last = loop {
        match check_once(&client, &expected).await {
            Ok(()) => {
                step.done();
                return Ok(());
            }
            Err(e) if start.elapsed() >= timeout => break e,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    step.fail(&last.to_string());
    Err(not_ready_error(driver, plan, &last, timeout).await)
}

/// The K8S_NOT_READY error for `what`, with the most useful log lines.
async fn not_ready_error<D: Driver>(
    driver: &D,
    plan: &Plan,
    what: &NotReady,
    timeout: Duration,
) -> anyhow::Error {
    let cp = driver.runner(&plan.control_plane().name);
    let (node, argv): (String, Vec<&str>) = match what {
        NotReady::Node(n) => (n.clone(), KUBELET_JOURNAL.to_vec()),
        NotReady::CoreDns => (
            plan.control_plane().name.clone(),
            vec![
                "kubectl",
                "--kubeconfig",
                ADMIN_CONF,
                "-n",
                "kube-system",
                "logs",
                "-l",
                "k8s-app=kube-dns",
                "--tail",
                "15",
            ],
        ),
        NotReady::Api(_) => (
            plan.control_plane().name.clone(),
            vec!["crictl", "ps", "-a", "--name", "kube-apiserver"],
        ),
    };
    let logs = if node == plan.control_plane().name {
        cp.run(&argv).await
    } else {
        driver.runner(&node).run(&argv).await
    }
    .map(|o| format!("{}{}", o.stdout_str(), o.stderr_str()))
    .unwrap_or_default();
    let mut message = format!(
        "the cluster was not ready after {}s: {what}",
        timeout.as_secs()
    );
    if !logs.trim().is_empty() {
        message.push_str(&format!(
            "\nlast lines of `{}` on {node}:\n{}",
            argv.join(" "),
            logs.trim_end()
        ));
    }
    ClusterError::new(ClusterKind::NotReady, message)
        .with_advice(format!(
            "Inspect with `minik kubectl -p {} -- get pods -A`, or raise --wait-timeout.",
            plan.profile
        ))
        .into()
}

/// The Kubernetes plan for a profile's live nodes. `new_token` makes a fresh bootstrap token
/// (creation); a restart needs none.
pub async fn plan_for<D: Driver>(
    driver: &D,
    profile: &Profile,
    version: KubernetesVersion,
    new_token: bool,
) -> anyhow::Result<Plan> {
    let live = driver.list_nodes(&profile.name).await?;
    let mut nodes = Vec::new();
    for n in &profile.nodes {
        let info = live.iter().find(|l| l.name == n.name).ok_or_else(|| {
            ClusterError::new(
                ClusterKind::Provision,
                format!("node {} disappeared while starting", n.name),
            )
        })?;
        let ip = info.ip.clone().ok_or_else(|| {
            ClusterError::new(
                ClusterKind::Provision,
                format!("node {} has no address on the profile network", n.name),
            )
        })?;
        nodes.push(PlannedNode {
            name: n.name.clone(),
            role: n.role,
            index: n.index,
            ip,
        });
    }
    let cp = &profile.control_plane().name;
    let api_port = live
        .iter()
        .find(|l| &l.name == cp)
        .and_then(|l| l.api_port)
        .ok_or_else(|| {
            ClusterError::new(
                ClusterKind::Provision,
                format!("control plane {cp} publishes no API server port"),
            )
        })?;
    let runner = driver.runner(cp);
    let cgroup_v1 = detect_cgroup_v1(&runner).await?;
    let token = if new_token {
        crate::k8s::kubeadm::random_token()
            .map_err(|e| ClusterError::new(ClusterKind::Bug, format!("no randomness: {e}")))?
    } else {
        String::new()
    };
    Ok(Plan {
        profile: profile.name.clone(),
        version,
        nodes,
        api_port,
        token,
        cgroup_v1,
        slow_nodes: driver.emulated(&profile.name),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ui::{Mode, Reporter};
    use minik_driver_api::fake::{FakeDriver, FakeEngine, Response};
    use minik_driver_api::{ClusterRequest, NodeSpec, NullObserver};

    /// A plan of `n` nodes of profile `k` (also the step list's tests' fixture).
    pub(crate) fn plan(n: u32) -> Plan {
        Plan {
            profile: "k".into(),
            version: "v1.35.0".parse().unwrap(),
            nodes: (0..n)
                .map(|i| PlannedNode {
                    name: crate::state::Profile::node_name("k", i),
                    role: if i == 0 {
                        Role::ControlPlane
                    } else {
                        Role::Worker
                    },
                    index: i,
                    ip: format!("192.168.49.{}", i + 2),
                })
                .collect(),
            api_port: 40123,
            token: "abcdef.0123456789abcdef".into(),
            cgroup_v1: true,
            slow_nodes: false,
        }
    }

    const ADMIN: &str = "apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: https://192.168.49.2:6443
    certificate-authority-data: Y2E=
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
contexts:
- name: kubernetes-admin@kubernetes
  context:
    cluster: kubernetes
    user: kubernetes-admin
current-context: kubernetes-admin@kubernetes
";

    async fn fake_cluster(p: &Plan, dir: &std::path::Path) -> FakeDriver {
        let driver = FakeDriver::new(FakeEngine::new(dir.join("engine.json")));
        let req = ClusterRequest {
            profile: p.profile.clone(),
            image: "img".into(),
            cpus: None,
            memory_mib: None,
            env: Default::default(),
        };
        for n in &p.nodes {
            let spec = NodeSpec {
                name: n.name.clone(),
                role: n.role,
                index: n.index,
            };
            driver
                .create_node(&req, &spec, &NullObserver)
                .await
                .unwrap();
        }
        // kubeadm init writes admin.conf; the fake node gets it the same way.
        driver
            .runner(&p.nodes[0].name)
            .copy_to(ADMIN_CONF, ADMIN.as_bytes(), 0o600)
            .await
            .unwrap();
        driver
    }

    #[tokio::test]
    async fn steps_send_the_right_commands_to_each_node() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(3);
        let driver = fake_cluster(&p, dir.path()).await;
        let reporter = Reporter::new(Mode::Quiet);
        let config = crate::cluster::steps::bootstrap(&driver, &p, &reporter)
            .await
            .unwrap();

        // The kubeconfig is renamed to the profile and points at the published port.
        assert_eq!(config.current_context.as_deref(), Some("k"));
        assert_eq!(
            config.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .server
                .as_deref(),
            Some("https://127.0.0.1:40123")
        );

        let log = driver.engine().log();
        let on = |node: &str| -> Vec<String> {
            log.iter()
                .filter(|r| r.node == node)
                .map(|r| r.argv.join(" "))
                .collect()
        };
        let cp = on("k");
        let init = cp
            .iter()
            .position(|c| c.starts_with("kubeadm init"))
            .expect("init on the control plane");
        let storage = cp
            .iter()
            .position(|c| c.contains("apply -f /var/lib/minik/manifests/storage.yaml"))
            .unwrap();
        assert!(
            cp[..init]
                .iter()
                .any(|c| c == "<copy> /var/lib/minik/kubeadm.yaml 600")
        );
        assert!(
            cp[..init]
                .iter()
                .any(|c| c == "systemctl restart minik-net.service")
        );
        assert!(storage > init);
        assert!(!cp.iter().any(|c| c.starts_with("kubeadm join")));
        for worker in ["k-m02", "k-m03"] {
            let w = on(worker);
            assert!(
                w.iter()
                    .any(|c| c == "kubeadm join --config /var/lib/minik/kubeadm.yaml --v=1"),
                "{w:?}"
            );
            assert!(!w.iter().any(|c| c.starts_with("kubeadm init")));
        }
        // Joins come after init.
        let first_join = log
            .iter()
            .position(|r| {
                r.argv.first().map(String::as_str) == Some("kubeadm") && r.argv[1] == "join"
            })
            .unwrap();
        let init_at = log
            .iter()
            .position(|r| {
                r.argv.first().map(String::as_str) == Some("kubeadm") && r.argv[1] == "init"
            })
            .unwrap();
        assert!(first_join > init_at);

        // Each node got its own kubeadm role and pod CIDR, and routes to the others.
        let engine = driver.engine();
        assert!(
            engine
                .file("k", KUBEADM_CONFIG_PATH)
                .unwrap()
                .contains("kind: InitConfiguration")
        );
        assert!(
            engine
                .file("k-m02", KUBEADM_CONFIG_PATH)
                .unwrap()
                .contains("kind: JoinConfiguration")
        );
        assert!(
            engine
                .file("k-m03", CNI_CONFLIST)
                .unwrap()
                .contains("10.244.2.0/24")
        );
        let net = engine.file("k-m02", NET_SCRIPT).unwrap();
        assert!(net.contains("ip route replace 10.244.0.0/24 via 192.168.49.2"));
        assert!(net.contains("ip route replace 10.244.2.0/24 via 192.168.49.4"));
        assert!(!net.contains("10.244.1.0/24 via"), "no route to itself");
        // cgroup v1 node with 1.35: kubelet is told to accept v1.
        assert!(
            engine
                .file("k", KUBEADM_CONFIG_PATH)
                .unwrap()
                .contains("failCgroupV1: false")
        );
    }

    #[tokio::test]
    async fn a_failing_step_is_named_with_the_kubelet_journal() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(2);
        let driver = fake_cluster(&p, dir.path()).await;
        let engine = driver.engine().clone();
        engine.respond(Response {
            node: "k".into(),
            prefix: vec!["kubeadm".into(), "init".into()],
            exit_code: 1,
            stdout: String::new(),
            stderr: "[wait-control-plane] timed out waiting for the condition\nTo see the stack trace of this error execute with --v=5 or higher\n".into(),
        });
        engine.respond(Response {
            node: "k".into(),
            prefix: vec!["journalctl".into()],
            exit_code: 0,
            stdout: "kubelet: failed to run Kubelet: misconfiguration\n".into(),
            stderr: String::new(),
        });
        let err = crate::cluster::steps::bootstrap(&driver, &p, &Reporter::new(Mode::Quiet))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("step kubeadm-init failed on node k"),
            "{text}"
        );
        assert!(
            text.contains("timed out waiting for the condition"),
            "{text}"
        );
        assert!(text.contains("failed to run Kubelet"), "{text}");
        // The headline the CLI prints (the outermost message) says what kubeadm reported, not
        // only the journal (it used to be a context that hid kubeadm's line).
        let top = err.to_string();
        assert!(top.contains("timed out waiting for the condition"), "{top}");
        assert!(top.contains("failed to run Kubelet"), "{top}");
        assert_eq!(crate::errors::classify(&err).0.id, "K8S_BOOTSTRAP");
        // Nothing after the failed step ran: no join.
        assert!(
            !engine
                .log()
                .iter()
                .any(|r| r.argv.first().map(String::as_str) == Some("kubeadm")
                    && r.argv[1] == "join")
        );
    }

    #[test]
    fn conflist_is_valid_json_with_the_node_cidr() {
        let p = plan(2);
        let v: serde_json::Value = serde_json::from_str(&cni_conflist(&p.nodes[1])).unwrap();
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.1.0/24"
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn storage_class_parses_as_a_typed_object() {
        let sc: k8s_openapi::api::storage::v1::StorageClass =
            serde_saphyr::from_str(STORAGE_CLASS).unwrap();
        assert_eq!(sc.provisioner, "kubernetes.io/host-path");
        assert_eq!(
            sc.metadata
                .annotations
                .unwrap()
                .get("storageclass.kubernetes.io/is-default-class")
                .map(String::as_str),
            Some("true")
        );
    }

    #[test]
    fn readiness_names_what_is_missing() {
        use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
        use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
        let node = |name: &str, ready: &str| Node {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let slice = |ready: bool| EndpointSlice {
            endpoints: vec![Endpoint {
                addresses: vec!["10.244.0.5".into()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let expected = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            readiness(&expected, &[node("a", "True")], &[slice(true)]),
            Err(NotReady::Node("b".into()))
        );
        assert_eq!(
            readiness(
                &expected,
                &[node("a", "True"), node("b", "False")],
                &[slice(true)]
            ),
            Err(NotReady::Node("b".into()))
        );
        assert_eq!(
            readiness(
                &expected,
                &[node("a", "True"), node("b", "True")],
                &[slice(false)]
            ),
            Err(NotReady::CoreDns)
        );
        assert_eq!(
            readiness(
                &expected,
                &[node("a", "True"), node("b", "True")],
                &[slice(true)]
            ),
            Ok(())
        );
    }
}
