//! Everything minik keeps on disk under MINIK_HOME: profile specs, locks, caches.
//!
//! One source of truth: a profile file holds what the user asked for; what is running, paused,
//! which ports and IPs, is always read live from the driver.

mod atomic;
mod lock;
mod profile;

pub use atomic::write_atomic;
pub use lock::ProfileLock;
pub use profile::{
    KubernetesSpec, NodeRecord, PROFILE_SCHEMA, Profile, ProfileLoad, validate_profile_name,
};

use std::path::PathBuf;

/// What went wrong with MINIK_HOME's files (reasons: `crate::errors`).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory under MINIK_HOME cannot be read, written, created or removed.
    #[error("{0}")]
    Files(String),
    /// A profile name minik cannot use.
    #[error("{message}")]
    InvalidName { message: String, advice: String },
    /// A profile file that does not parse or does not describe its profile.
    #[error("{message}")]
    Corrupt { message: String, advice: String },
    /// Another minik command holds the profile's lock.
    #[error("{message}")]
    Busy { message: String, advice: String },
}

impl StateError {
    /// `Files`: "`doing` PATH: ERROR" (e.g. "cannot read /x/profile.json: …").
    pub fn file(doing: &str, path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        StateError::Files(format!("{doing} {}: {e}", path.display()))
    }
}

/// The directory layout under MINIK_HOME (default `~/.minik`).
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$MINIK_HOME`, else `~/.minik`.
    pub fn from_env() -> anyhow::Result<Home> {
        if let Some(dir) = std::env::var_os("MINIK_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home {
                root: PathBuf::from(dir),
            });
        }
        let home = dirs::home_dir().ok_or_else(|| {
            StateError::Files("cannot find the home directory; set MINIK_HOME".into())
        })?;
        Ok(Home {
            root: home.join(".minik"),
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// `profiles/` — one directory per profile.
    pub fn profiles_dir(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// `profiles/NAME/` — the profile file and per-profile files (keys, disks for VMs).
    pub fn profile_dir(&self, name: &str) -> PathBuf {
        self.profiles_dir().join(name)
    }

    /// `profiles/NAME/profile.json`.
    pub fn profile_file(&self, name: &str) -> PathBuf {
        self.profile_dir(name).join("profile.json")
    }

    /// `locks/NAME.lock` — outside the profile directory so `delete` can remove that while
    /// holding the lock.
    pub fn lock_file(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// `cache/` — downloads and build contexts.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `cache/vm/` — VM base disks of the qemu driver (disk, kernel, initrd), one directory per
    /// node image and VM recipe; profiles hard-link what they use.
    pub fn vm_disk_cache_dir(&self) -> PathBuf {
        self.cache_dir().join("vm")
    }

    /// `profiles/NAME/qemu/` — a qemu profile's VM files: its SSH keys, its copy of the base
    /// disk, and per node the overlay disk, QMP socket, pidfile and serial log.
    pub fn qemu_profile_dir(&self, name: &str) -> PathBuf {
        self.profile_dir(name).join("qemu")
    }

    /// `cache/engine-security.json` — per engine ID, whether it allows `--privileged` nodes
    /// (the docker and podman drivers' `auto` security mode asks each engine once).
    pub fn engine_security_file(&self) -> PathBuf {
        self.cache_dir().join("engine-security.json")
    }

    /// The fake engine's state file (hidden `--driver fake`, for tests).
    pub fn fake_engine_file(&self) -> PathBuf {
        self.root.join("fake-engine.json")
    }
}

/// Creates `dir` and its missing parents with mode 0700, whatever the umask: MINIK_HOME holds
/// SSH keys, kubeconfigs and profile state.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
