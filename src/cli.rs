//! Command-line definitions (clap derive). Doc comments here are the `--help` text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// minik: a real local Kubernetes cluster in one command.
///
/// Nodes are containers (docker, podman) or VMs (qemu) running systemd, containerd and runc.
/// Several clusters live side by side as profiles (-p NAME). State lives under MINIK_HOME
/// (default ~/.minik). Exit codes are listed in docs/exit-codes.md.
#[derive(Debug, Parser)]
#[command(
    name = "minik",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The profile (cluster) to act on.
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        env = "MINIK_PROFILE",
        default_value = "minik"
    )]
    pub profile: String,

    /// Output format: human text, or JSON (events and results, one object per line).
    #[arg(short, long, global = true, help_heading = "Global options", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Plain lines instead of spinners even on a terminal.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_progress: bool,

    /// Only warnings and errors.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,

    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a profile's nodes and start them, or start a stopped profile keeping its data.
    Start(StartArgs),
    /// Show the state of a profile's nodes (exit code: a bitmask, see docs/exit-codes.md).
    Status(StatusArgs),
    /// Stop a profile's nodes, keeping their data.
    Stop(StopArgs),
    /// Pause Kubernetes: stop kubelet and freeze the containers of kube-system (or of -n NS /
    /// -A) in every node. On --no-kubernetes profiles: freeze the whole nodes.
    Pause(PauseArgs),
    /// Resume what `pause` froze and start kubelet again (or thaw --no-kubernetes nodes).
    Unpause(PauseArgs),
    /// Delete a profile: its nodes, volumes, network and files.
    Delete(DeleteArgs),
    /// Manage profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Open a shell in a node, or run one command in it (stdin, stdout and exit code pass through).
    Ssh(SshArgs),
    /// Show a node's journal (systemd, containerd, kubelet).
    Logs(LogsArgs),
    /// Add, delete or list a profile's nodes.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Build node images.
    #[command(name = "node-image")]
    NodeImage {
        #[command(subcommand)]
        command: NodeImageCommand,
    },
    /// Run kubectl against the profile: the host's kubectl when it is within one minor of the
    /// cluster, else the control plane's (e.g. `minik kubectl -- get pods -A`).
    Kubectl(KubectlArgs),
    /// Point the profile's kubeconfig context at the API server's current address and make it
    /// the current context.
    #[command(name = "update-context")]
    UpdateContext,
    /// Optional cluster components: storage, ingress, metrics, dashboard, registry
    /// (docs/addons.md).
    Addons {
        #[command(subcommand)]
        command: AddonsCommand,
    },
    /// Images in the nodes' containerd: load from the local docker/podman store or an archive,
    /// list, remove (docs/images.md).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print minik's version.
    Version,
    /// Print a shell completion script (e.g. `minik completion bash > /etc/bash_completion.d/minik`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Driver: docker, podman or qemu. Default: the profile's driver, else the first engine
    /// found (docker, then podman, then qemu).
    #[arg(long, env = "MINIK_DRIVER")]
    pub driver: Option<String>,

    /// Number of nodes for a new profile: one control plane plus N-1 workers [default: 1].
    #[arg(long)]
    pub nodes: Option<u32>,

    /// Start the nodes without Kubernetes: a systemd + containerd sandbox.
    #[arg(long)]
    pub no_kubernetes: bool,

    /// Addons to enable, comma-separated (e.g. `ingress,metrics-server`), besides the default
    /// ones on a new profile; on an existing profile they are enabled too. `minik addons list`
    /// names them.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub addons: Vec<String>,

    /// Kubernetes version for new profiles (`stable` = minik's default).
    #[arg(long, value_name = "vX.Y.Z")]
    pub kubernetes_version: Option<String>,

    /// Take the Kubernetes binaries (kubeadm, kubelet, kubectl; optionally crictl and
    /// containerd; image tarballs) from this directory instead of downloading them, when the
    /// node image has to be built (air-gapped machines; `hack/build-kubernetes.sh` makes one).
    /// Layout: docs/kubernetes.md.
    #[arg(long, value_name = "DIR", env = "MINIK_KUBERNETES_FROM")]
    pub kubernetes_from: Option<PathBuf>,

    /// Wait until the API answers, every node is Ready and CoreDNS has ready endpoints.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,

    /// Do not switch the kubeconfig's current-context to the new cluster.
    #[arg(long)]
    pub keep_context: bool,

    /// Node image to use instead of minik's own (it must already be in the engine).
    #[arg(long, value_name = "IMG")]
    pub image: Option<String>,

    /// CPUs per node (fractions allowed; default: no limit).
    #[arg(long)]
    pub cpus: Option<f64>,

    /// Memory per node, e.g. 2g, 1536m (default: no limit).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Leave the nodes in place when start fails or is interrupted (SIGINT/SIGTERM), for
    /// debugging; without it minik removes what the start created.
    #[arg(long)]
    pub keep_on_failure: bool,

    /// How long to wait for each node to boot (and, with Kubernetes, for the cluster).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,

    /// qemu driver: the accelerator. `auto` checks with a test boot that KVM (Linux) or HVF
    /// (macOS) really runs a guest and falls back to tcg (emulation, slow) with a warning.
    /// Default: MINIK_QEMU_ACCEL, else what the profile used, else auto.
    #[arg(long, value_enum, value_name = "ACCEL")]
    pub qemu_accel: Option<QemuAccel>,

    /// qemu driver: disk size of each node of a new profile, e.g. 20g, 40960m [default: 20g].
    #[arg(long, value_name = "SIZE")]
    pub disk_size: Option<String>,
}

/// `--qemu-accel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QemuAccel {
    Auto,
    Kvm,
    Hvf,
    Tcg,
}

impl QemuAccel {
    /// The qemu driver's setting for the flag.
    pub fn choice(self) -> minik_driver_qemu::AccelChoice {
        use minik_driver_qemu::{Accel, AccelChoice};
        match self {
            QemuAccel::Auto => AccelChoice::Auto,
            QemuAccel::Kvm => AccelChoice::Fixed(Accel::Kvm),
            QemuAccel::Hvf => AccelChoice::Fixed(Accel::Hvf),
            QemuAccel::Tcg => AccelChoice::Fixed(Accel::Tcg),
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this node (full name or suffix such as m02).
    #[arg(short, long)]
    pub node: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Stop every profile.
    #[arg(long)]
    pub all: bool,
    /// Seconds to wait for a graceful shutdown before killing a node.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Namespaces whose containers to freeze, comma-separated [default: kube-system]
    /// (Kubernetes profiles only; `unpause` resumes whatever `pause` froze).
    #[arg(
        short,
        long,
        value_delimiter = ',',
        value_name = "NS,...",
        conflicts_with = "all_namespaces"
    )]
    pub namespaces: Vec<String>,
    /// Freeze the containers of every namespace (Kubernetes profiles only).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Args)]
pub struct KubectlArgs {
    /// kubectl's arguments, after `--`. With the node's kubectl, files must come on stdin
    /// (`-f -`), since paths are read inside the node, and there is no terminal for
    /// interactive commands (`exec -it`, `edit`): install a matching kubectl for those.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Delete every profile (and any leftovers labelled by minik).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List profiles with their driver, nodes and status.
    List,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// Node (full name or suffix such as m02); default: the first control plane.
    #[arg(short, long)]
    pub node: Option<String>,
    /// Command and arguments to run instead of a login shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Node (full name or suffix); default: the first control plane.
    #[arg(short, long)]
    pub node: Option<String>,
    /// Keep printing new entries.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this systemd unit (e.g. containerd, kubelet).
    #[arg(short, long)]
    pub unit: Option<String>,
    /// Number of most recent lines to show.
    #[arg(long, default_value_t = 200)]
    pub lines: u32,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Add a worker node (created, booted and, with Kubernetes, joined).
    Add(NodeAddArgs),
    /// Delete a worker node (drained and removed from the cluster first).
    Delete(NodeDeleteArgs),
    /// List the profile's nodes with their role, state and address.
    List,
}

#[derive(Debug, Args)]
pub struct NodeAddArgs {
    /// Add a control-plane node (HA; not supported yet).
    #[arg(long)]
    pub control_plane: bool,
    /// Wait until the new node is Ready.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,
    /// How long to wait for the node to boot and join.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Leave the new node in place when adding it fails, for debugging.
    #[arg(long)]
    pub keep_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct NodeDeleteArgs {
    /// The node (full name or suffix such as m02).
    pub node: String,
}

#[derive(Debug, Subcommand)]
pub enum AddonsCommand {
    /// List the addons, whether each is enabled in the profile, and which are on by default.
    List,
    /// Enable an addon (and the addons it needs), then wait for its pods to be Ready.
    Enable(AddonsEnableArgs),
    /// Disable an addon: delete every object it created.
    Disable(AddonsDisableArgs),
    /// List an addon's images: the name `--images`/`--registries` take, and the default.
    Images(AddonsImagesArgs),
}

#[derive(Debug, Args)]
pub struct AddonsImagesArgs {
    /// The addon (see `minik addons list`).
    pub name: String,
}

#[derive(Debug, Args)]
pub struct AddonsEnableArgs {
    /// The addon (see `minik addons list`).
    pub name: String,
    /// Wait until the addon's pods are Ready.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,
    /// How long to wait for the addon's pods.
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Replace images, comma-separated `NAME=REFERENCE` (names: `minik addons images ADDON`),
    /// e.g. for a mirror or an image built locally and loaded with `minik image load`.
    /// Remembered by the profile and used at every start; enabling again without it restores
    /// the defaults.
    #[arg(long, value_name = "NAME=REF,...", value_delimiter = ',', value_parser = parse_key_value)]
    pub images: Vec<(String, String)>,
    /// Pull images from another registry, comma-separated `NAME=HOST[:PORT]`: the registry part
    /// of the reference is replaced, the path, tag and digest kept.
    #[arg(long, value_name = "NAME=HOST,...", value_delimiter = ',', value_parser = parse_key_value)]
    pub registries: Vec<(String, String)>,
}

/// `NAME=VALUE`, both non-empty.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

#[derive(Debug, Args)]
pub struct AddonsDisableArgs {
    /// The addon (see `minik addons list`).
    pub name: String,
    /// How long to wait for the addon's objects to be gone.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Copy images into every node's containerd (namespace k8s.io), from the profile's engine
    /// store (docker or podman) or an archive; nodes that already have an image only get the
    /// missing names.
    Load(ImageLoadArgs),
    /// List the images in the nodes (with the nodes that have each).
    #[command(alias = "list")]
    Ls,
    /// Remove images from every node.
    Rm(ImageRmArgs),
}

#[derive(Debug, Args)]
pub struct ImageLoadArgs {
    /// Images in the local engine's store, by name (NAME[:TAG]).
    #[arg(required_unless_present = "archive", conflicts_with = "archive")]
    pub images: Vec<String>,
    /// Load every image of this archive instead (`docker save`/`podman save` output or an OCI
    /// layout tar, uncompressed).
    #[arg(long, value_name = "FILE.tar")]
    pub archive: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImageRmArgs {
    /// Images to remove (NAME[:TAG], as `minik image ls` shows them or as you loaded them).
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NodeImageCommand {
    /// Build the node image from the recipe embedded in this binary.
    Build(NodeImageBuildArgs),
}

#[derive(Debug, Args)]
pub struct NodeImageBuildArgs {
    /// Kubernetes to install: `none`, `stable` (minik's default version), or vX.Y.Z.
    #[arg(long, default_value = "none", value_name = "none|stable|vX.Y.Z")]
    pub kubernetes_version: String,
    /// Take kubeadm, kubelet and kubectl (optionally crictl and containerd; image tarballs)
    /// from this directory instead of downloading them from dl.k8s.io. Layout:
    /// docs/kubernetes.md.
    #[arg(long, value_name = "DIR", env = "MINIK_KUBERNETES_FROM")]
    pub kubernetes_from: Option<PathBuf>,
    /// Image tag (default: minik's own tag for that version).
    #[arg(long)]
    pub tag: Option<String>,
    /// Base image to build on.
    #[arg(long, default_value = "debian:trixie-slim")]
    pub base_image: String,
    /// Where containerd and runc come from: Debian's packages, upstream static releases, the
    /// --kubernetes-from directory (bundle: its containerd, Debian's runc and CNI plugins), or
    /// auto (bundle when the directory brings containerd; upstream for downloaded Kubernetes,
    /// which brings crictl too; else Debian's unless the version needs containerd 2). Debian
    /// has no crictl: give one in the --kubernetes-from directory for pause and status.
    #[arg(long, value_enum, default_value_t = ContainerdSource::Auto)]
    pub containerd_source: ContainerdSource,
    /// Engine to build with (docker or podman); default: the first that answers, as `start`.
    #[arg(long, env = "MINIK_DRIVER")]
    pub driver: Option<String>,
    /// Rebuild even when the tag already exists.
    #[arg(long)]
    pub force: bool,
    /// Also build the qemu driver's VM base disk from the node image (kernel, initrd and sshd
    /// added on top, converted to qcow2 under MINIK_HOME/cache/vm). Implied by --driver qemu,
    /// which then builds with docker, else podman.
    #[arg(long)]
    pub vm: bool,
    /// Also write the build context to this directory (for inspection).
    #[arg(long, hide = true)]
    pub dump_context: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainerdSource {
    Auto,
    Debian,
    Upstream,
    Bundle,
}

impl ContainerdSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerdSource::Auto => "auto",
            ContainerdSource::Debian => "debian",
            ContainerdSource::Upstream => "upstream",
            ContainerdSource::Bundle => "bundle",
        }
    }
}

/// Parses `90s`, `5m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use e.g. 90s, 5m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("invalid duration unit in {s:?} (use s, m or h)")),
    };
    if secs == 0 {
        return Err("duration must be positive".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Parses a memory size into MiB: `2g`, `2gb`, `2GiB`, `1536m`, `1536mb`, or plain MiB.
pub fn parse_memory_mib(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid memory size {s:?} (use e.g. 2g or 1536m)"))?;
    let mib = match unit.trim() {
        "" | "m" | "mb" | "mib" => n,
        "g" | "gb" | "gib" => n.checked_mul(1024).ok_or("memory size too large")?,
        _ => return Err(format!("invalid memory unit in {s:?} (use m or g)")),
    };
    Ok(mib)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("12").unwrap().as_secs(), 12);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_memory_mib("2g").unwrap(), 2048);
        assert_eq!(parse_memory_mib("1536MB").unwrap(), 1536);
        assert_eq!(parse_memory_mib("2GiB").unwrap(), 2048);
        assert_eq!(parse_memory_mib("700").unwrap(), 700);
        assert!(parse_memory_mib("lots").is_err());
        assert!(parse_memory_mib("2t").is_err());
    }
}
