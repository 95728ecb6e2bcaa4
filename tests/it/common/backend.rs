//! The per-driver hook of the real-engine suites (e2e, e2e_image, e2e_kubernetes): the
//! prerequisite check (fails, never skips), what a profile left behind (labelled engine
//! resources, or VM processes and files), and where the test image comes from.

use std::path::Path;
use std::process::{Command, Stdio};

/// The nested-container test image (tests/make-test-image.sh): busybox, `hello from minik`.
pub const HELLO_IMAGE: &str = "localhost/minik-test/hello:1";

/// The per-driver hook of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A container engine, inspected with its CLI (independent of minik's own view).
    Engine(&'static str),
    /// qemu VMs: processes and files under MINIK_HOME; the test image comes from docker.
    Qemu,
}

impl Backend {
    /// The engine CLI that has the test image (`save` exports it).
    pub fn image_cli(self) -> &'static str {
        match self {
            Backend::Engine(cli) => cli,
            Backend::Qemu => "docker",
        }
    }

    /// Fails the test (never skips) when a prerequisite is missing.
    pub fn check(self, driver: &str, home: &Path) {
        match self {
            Backend::Engine(cli) => check_engine(driver, cli),
            Backend::Qemu => check_qemu(home),
        }
    }

    /// What `profile` left behind, per kind (empty after a complete delete).
    pub fn leftovers(self, home: &Path, profile: &str) -> Vec<String> {
        match self {
            Backend::Engine(cli) => leftovers_in(cli, profile),
            Backend::Qemu => qemu_leftovers(home, profile),
        }
    }
}

/// Names of resources labelled with `profile` on the engine that CLI `cli` drives, per kind.
pub fn leftovers_in(cli: &str, profile: &str) -> Vec<String> {
    let filter = format!("label=io.minik.profile={profile}");
    let mut found = Vec::new();
    for args in [
        vec!["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        vec!["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"],
        vec![
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ],
    ] {
        let out = Command::new(cli).args(&args).output().unwrap();
        assert!(out.status.success(), "{cli} {args:?} failed");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("{}: {l}", args[0])),
        );
    }
    found
}

/// Fails the test (never skips) when the engine or the nested-container test image is missing.
pub fn check_engine(driver: &str, cli: &str) {
    let info = Command::new(cli)
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(info, Ok(s) if s.success()),
        "the {driver} engine is not answering (`{cli} info` failed): the e2e suite needs it running"
    );
    let img = Command::new(cli)
        .args(["image", "inspect", HELLO_IMAGE])
        .output()
        .unwrap();
    assert!(
        img.status.success(),
        "{HELLO_IMAGE} is missing in {cli}: run tests/make-test-image.sh"
    );
}

/// Where `.ci/run` builds the VM base disks the qemu suites share.
pub fn shared_vm_cache() -> std::path::PathBuf {
    match std::env::var_os("MINIK_E2E_VM_CACHE") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => Path::new(&std::env::var_os("HOME").expect("HOME"))
            .join(".minik")
            .join("cache")
            .join("vm"),
    }
}

/// Fails the test (never skips) when qemu, the VM disk of the current node recipe, or docker's
/// test image is missing. Links the shared disks into the suite's MINIK_HOME.
pub fn check_qemu(home: &Path) {
    for tool in ["qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen"] {
        let found = Command::new(tool)
            .arg(if tool.starts_with("ssh") {
                "-V"
            } else {
                "--version"
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success() || tool == "ssh-keygen")
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is missing: the qemu e2e suite needs qemu-system-x86 and qemu-utils"
        );
    }
    let tag = minik::node_image::default_tag("none");
    let name = minik_driver_qemu::disk::disk_name(&tag);
    let shared = shared_vm_cache().join(&name);
    assert!(
        minik_driver_qemu::BaseFiles::at(&shared).is_complete(),
        "no VM disk for {tag} in {}: run `minik node-image build --vm` (or set MINIK_E2E_VM_CACHE)",
        shared.display()
    );
    let own = home.join("cache").join("vm").join(&name);
    std::fs::create_dir_all(&own).unwrap();
    for entry in std::fs::read_dir(&shared).unwrap() {
        let entry = entry.unwrap();
        let to = own.join(entry.file_name());
        if std::fs::hard_link(entry.path(), &to).is_err() {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    check_engine("qemu (test image source)", "docker");
}

/// What a qemu profile left behind: qemu processes running from its directory, and the
/// directory itself (disks, sockets, keys).
pub fn qemu_leftovers(home: &Path, profile: &str) -> Vec<String> {
    let dir = home.join("profiles").join(profile);
    let marker = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("qemu-system") && cmdline.contains(&marker) {
            found.push(format!("process: {pid}"));
        }
    }
    let vm_dir = dir.join("qemu");
    if vm_dir.exists() {
        found.push(format!("files: {}", vm_dir.display()));
    }
    found
}
