//! Resource limits for node containers that the host can grant.
//!
//! Unless told otherwise, podman gives containers `nofile` and `nproc` limits (1048576 and
//! more) that may exceed the hard limits of the podman process itself, and runc then fails to
//! start the container ("error setting rlimit type 7: operation not permitted"): without
//! `CAP_SYS_RESOURCE` (missing from some VMs' bounding sets) a process cannot raise a hard
//! limit. So minik sets both explicitly, never above the hard limits of the process that
//! starts the containers:
//! - the podman service behind a local socket, found with `SO_PEERCRED` and read from
//!   `/proc/PID/limits` (podman lowers its own `nproc` to 32768, so the caller's limits are not
//!   the service's);
//! - else (a remote or socket-activated service) this process's own hard limits.
//!
//! Both are also capped at podman's own ceilings: `nofile` 1048576, `nproc` 32768.

use bollard::models::ResourcesUlimits;
use nix::sys::resource::{Resource, getrlimit};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Highest `nofile` minik asks for (podman raises its own to this when it can).
pub const MAX_NOFILE: u64 = 1_048_576;
/// Highest `nproc` minik asks for (podman caps its own at this).
pub const MAX_NPROC: u64 = 32_768;

/// Hard limits of a process; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardLimits {
    /// `RLIMIT_NOFILE`.
    pub nofile: Option<u64>,
    /// `RLIMIT_NPROC`.
    pub nproc: Option<u64>,
}

/// Where [`HardLimits`] were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsSource {
    /// The podman service process with this pid.
    Service(u32),
    /// This process.
    Minik,
}

impl HardLimits {
    /// This process's hard limits.
    pub fn own() -> HardLimits {
        let hard = |r| match getrlimit(r) {
            Ok((_, hard)) if hard == nix::sys::resource::RLIM_INFINITY => None,
            Ok((_, hard)) => Some(hard),
            // Unknown: assume the strictest podman would be happy with.
            Err(_) => Some(1024),
        };
        HardLimits {
            nofile: hard(Resource::RLIMIT_NOFILE),
            nproc: hard(Resource::RLIMIT_NPROC),
        }
    }

    /// Parses `/proc/PID/limits`. `None` when either line is missing.
    pub fn parse_proc(text: &str) -> Option<HardLimits> {
        let hard = |name: &str| -> Option<Option<u64>> {
            let rest = text.lines().find_map(|l| l.strip_prefix(name))?;
            let mut fields = rest.split_whitespace();
            let _soft = fields.next()?;
            match fields.next()? {
                "unlimited" => Some(None),
                n => n.parse().ok().map(Some),
            }
        };
        Some(HardLimits {
            nofile: hard("Max open files")?,
            nproc: hard("Max processes")?,
        })
    }

    /// The limits to give node containers: each hard limit capped at podman's ceiling, as
    /// soft = hard.
    pub fn ulimits(&self) -> Vec<ResourcesUlimits> {
        let cap = |hard: Option<u64>, max: u64| hard.map_or(max, |h| h.min(max));
        let limit = |name: &str, value: u64| {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            ResourcesUlimits {
                name: Some(name.into()),
                soft: Some(value),
                hard: Some(value),
            }
        };
        vec![
            limit("nofile", cap(self.nofile, MAX_NOFILE)),
            limit("nproc", cap(self.nproc, MAX_NPROC)),
        ]
    }
}

/// The hard limits of the podman service listening on `socket`, when it is a local process
/// other than pid 1 (a socket-activating systemd is not the service) and its limits are
/// readable.
pub fn service_limits(socket: &Path) -> Option<(u32, HardLimits)> {
    let stream = UnixStream::connect(socket).ok()?;
    let creds =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    let pid = u32::try_from(creds.pid()).ok().filter(|p| *p > 1)?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    Some((pid, HardLimits::parse_proc(&text)?))
}

/// The hard limits node containers must stay within, and where they were read: the service's
/// on a local `socket`, else this process's.
pub fn host_limits(socket: Option<&Path>) -> (HardLimits, LimitsSource) {
    match socket.and_then(service_limits) {
        Some((pid, limits)) => (limits, LimitsSource::Service(pid)),
        None => (HardLimits::own(), LimitsSource::Minik),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max processes             32768                32768                processes \n\
Max open files            20000                20000                files     \n\
Max locked memory         8388608              8388608              bytes     \n";

    fn values(v: &[ResourcesUlimits]) -> Vec<(String, i64, i64)> {
        v.iter()
            .map(|u| (u.name.clone().unwrap(), u.soft.unwrap(), u.hard.unwrap()))
            .collect()
    }

    #[test]
    fn parses_proc_limits() {
        let l = HardLimits::parse_proc(PROC).unwrap();
        assert_eq!(
            l,
            HardLimits {
                nofile: Some(20000),
                nproc: Some(32768)
            }
        );
        let unlimited = PROC.replace(
            "32768                32768",
            "unlimited            unlimited",
        );
        assert_eq!(HardLimits::parse_proc(&unlimited).unwrap().nproc, None);
        assert_eq!(HardLimits::parse_proc("Limit Soft Hard\n"), None);
    }

    #[test]
    fn caps_at_hard_limits_and_podman_ceilings() {
        let l = HardLimits {
            nofile: Some(20000),
            nproc: Some(96365),
        };
        assert_eq!(
            values(&l.ulimits()),
            [
                ("nofile".into(), 20000, 20000),
                ("nproc".into(), 32768, 32768)
            ]
        );
        let l = HardLimits {
            nofile: None,
            nproc: Some(4096),
        };
        assert_eq!(
            values(&l.ulimits()),
            [
                ("nofile".into(), 1_048_576, 1_048_576),
                ("nproc".into(), 4096, 4096)
            ]
        );
    }

    #[test]
    fn own_limits_are_readable() {
        let own = HardLimits::own();
        for u in own.ulimits() {
            assert!(u.hard.unwrap() > 0);
        }
        let (_, source) = host_limits(None);
        assert_eq!(source, LimitsSource::Minik);
    }
}
