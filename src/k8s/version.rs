//! Kubernetes versions: parsing, ordering, the default and the supported range, and the
//! version-dependent choices made elsewhere (kubeadm config API, cgroup v1, containerd).
//!
//! Only release versions (`v1.37.1`) and upstream pre-releases (`v1.38.0-rc.0`) are accepted:
//! the string ends up in download URLs, cache paths and image tags, so it is validated strictly.

use super::{InputError, InputKind};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The version `minik start` and `minik node-image build` use when none is given.
///
/// Why 1.37.2 (as of late 2026): 1.37 is the newest released minor. The k8s-openapi 0.29 crate
/// this binary is built with already knows it (its `latest` feature is `v1_37`), and 1.37.2 is
/// its newest patch release, the one whose sources the Go module proxy serves, so it is the
/// version minik's own real-cluster tests build from source (hack/build-kubernetes.sh) and run. Consequences of the choice, handled elsewhere:
/// kubeadm config `v1beta4`, kubelet refuses cgroup v1 hosts unless told otherwise
/// ([`KubernetesVersion::fails_on_cgroup_v1_by_default`]), and containerd 2.x is required
/// ([`KubernetesVersion::requires_containerd_2`]).
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.37.2";

/// The oldest minor minik provisions: 1.33.
///
/// The host-side client (wait, status) is compiled against k8s-openapi's `v1_33` API, which
/// is that crate's oldest; older API servers are also past their upstream end of life
/// (1.32 ended in February 2026).
pub const MIN_SUPPORTED_MINOR: (u32, u32) = (1, 33);

/// The newest minor minik has been written against; newer versions are allowed (with a
/// warning from the caller), since kubeadm's v1beta4 config is expected to stay valid.
pub const NEWEST_KNOWN_MINOR: (u32, u32) = (1, 37);

/// A pre-release tag as Kubernetes uses them: `alpha.N`, `beta.N`, `rc.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreRelease {
    /// `-alpha.N`
    Alpha(u32),
    /// `-beta.N`
    Beta(u32),
    /// `-rc.N`
    Rc(u32),
}

/// A Kubernetes version such as `v1.37.1` or `v1.38.0-rc.0`.
///
/// Ordering follows semver: a pre-release sorts before its release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubernetesVersion {
    /// Major version (always 1 in practice).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Pre-release tag, if any.
    pub pre: Option<PreRelease>,
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Kubernetes version {input:?}: {why} (expected e.g. {DEFAULT_KUBERNETES_VERSION})")]
pub struct VersionError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The kubeadm configuration API a version takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    /// `kubeadm.k8s.io/v1beta3` (Kubernetes 1.23–1.35): extraArgs are string maps.
    V1Beta3,
    /// `kubeadm.k8s.io/v1beta4` (from 1.36 in minik): extraArgs are `{name, value}` lists.
    V1Beta4,
}

impl KubeadmApi {
    /// The `apiVersion` of every kubeadm document.
    pub fn api_version(self) -> &'static str {
        match self {
            KubeadmApi::V1Beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1Beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

impl KubernetesVersion {
    /// A release version `vMAJOR.MINOR.PATCH`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KubernetesVersion {
            major,
            minor,
            patch,
            pre: None,
        }
    }

    /// [`DEFAULT_KUBERNETES_VERSION`], parsed.
    pub fn default_version() -> Self {
        // The constant is covered by a unit test, so this cannot fail at run time.
        DEFAULT_KUBERNETES_VERSION
            .parse()
            .unwrap_or(KubernetesVersion::new(1, 37, 1))
    }

    /// Turns what the user typed (`--kubernetes-version`) into a supported version.
    ///
    /// Accepts `v1.37.1`, `1.37.1`, pre-releases, and the aliases `stable` / `default`
    /// (both meaning [`DEFAULT_KUBERNETES_VERSION`]; there is no network lookup). A bare minor
    /// (`1.37`) is refused with advice, because resolving it needs the release index.
    /// Errors carry the `MK_USAGE` reason.
    pub fn resolve(input: &str) -> anyhow::Result<KubernetesVersion> {
        let trimmed = input.trim();
        if trimmed.eq_ignore_ascii_case("stable") || trimmed.eq_ignore_ascii_case("default") {
            return Ok(Self::default_version());
        }
        let version: KubernetesVersion = trimmed.parse().map_err(|e: VersionError| {
            let advice = if e.why == MISSING_PATCH {
                format!(
                    "Give the full version, e.g. v{}.0 (see https://kubernetes.io/releases/).",
                    trimmed.trim_start_matches('v')
                )
            } else {
                format!("Use a released version such as {DEFAULT_KUBERNETES_VERSION}.")
            };
            InputError::new(InputKind::Invalid, e.to_string()).with_advice(advice)
        })?;
        version.check_supported()?;
        Ok(version)
    }

    /// Fails (`MK_USAGE`) when the version is older than [`MIN_SUPPORTED_MINOR`] or not 1.x.
    pub fn check_supported(&self) -> anyhow::Result<()> {
        let (min_major, min_minor) = MIN_SUPPORTED_MINOR;
        if self.major != min_major || self.minor < min_minor {
            return Err(InputError::new(
                InputKind::Invalid,
                format!(
                    "Kubernetes {self} is not supported: minik provisions v{min_major}.{min_minor} and newer"
                ),
            )
            .with_advice(format!(
                "Choose a newer version, e.g. --kubernetes-version {DEFAULT_KUBERNETES_VERSION}."
            ))
            .into());
        }
        Ok(())
    }

    /// True when the minor is newer than [`NEWEST_KNOWN_MINOR`]: the caller should warn that
    /// the version is untested.
    pub fn is_newer_than_known(&self) -> bool {
        (self.major, self.minor) > NEWEST_KNOWN_MINOR
    }

    /// `(major, minor)`.
    pub fn minor_version(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// True when this version is at least `major.minor` (any patch, pre-releases included:
    /// `v1.36.0-rc.0` counts as 1.36 for feature decisions, as kubeadm itself does).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The kubeadm configuration API: v1beta3 up to 1.35, v1beta4 from 1.36 (kind's rule).
    pub fn kubeadm_api(&self) -> KubeadmApi {
        if self.at_least(1, 36) {
            KubeadmApi::V1Beta4
        } else {
            KubeadmApi::V1Beta3
        }
    }

    /// From 1.35 the kubelet's `failCgroupV1` defaults to true: it refuses to start on a
    /// cgroup v1 host unless its configuration sets `failCgroupV1: false`.
    pub fn fails_on_cgroup_v1_by_default(&self) -> bool {
        self.at_least(1, 35)
    }

    /// 1.35 was announced as the last release to support containerd 1.x; from 1.36 the node
    /// needs containerd 2.x (Debian trixie's 1.7 is too old, the upstream build is needed).
    pub fn requires_containerd_2(&self) -> bool {
        self.at_least(1, 36)
    }
}

const MISSING_PATCH: &str = "the patch number is missing";

impl FromStr for KubernetesVersion {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why| VersionError {
            input: input.to_string(),
            why,
        };
        let s = input.strip_prefix('v').unwrap_or(input);
        let (core, pre) = match s.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut number = |what| -> Result<u32, VersionError> {
            let part = parts.next().ok_or(err(what))?;
            parse_number(part).ok_or(err("each of major, minor and patch must be a number"))
        };
        let major = number("the minor number is missing")?;
        let minor = number("the minor number is missing")?;
        let patch = number(MISSING_PATCH)?;
        if parts.next().is_some() {
            return Err(err("too many dot-separated numbers"));
        }
        let pre = match pre {
            None => None,
            Some(pre) => {
                let (kind, n) = pre
                    .split_once('.')
                    .ok_or(err("a pre-release must look like rc.0"))?;
                let n = parse_number(n).ok_or(err("a pre-release must look like rc.0"))?;
                Some(match kind {
                    "alpha" => PreRelease::Alpha(n),
                    "beta" => PreRelease::Beta(n),
                    "rc" => PreRelease::Rc(n),
                    _ => return Err(err("only alpha, beta and rc pre-releases exist")),
                })
            }
        };
        Ok(KubernetesVersion {
            major,
            minor,
            patch,
            pre,
        })
    }
}

/// A decimal number without sign or leading zeros (so `v1.033.0` is not a second spelling of
/// `v1.33.0` in cache paths).
fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        match self.pre {
            None => Ok(()),
            Some(PreRelease::Alpha(n)) => write!(f, "-alpha.{n}"),
            Some(PreRelease::Beta(n)) => write!(f, "-beta.{n}"),
            Some(PreRelease::Rc(n)) => write!(f, "-rc.{n}"),
        }
    }
}

impl Ord for KubernetesVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for KubernetesVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::classify;

    fn v(s: &str) -> KubernetesVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_canonically() {
        assert_eq!(v("v1.35.0"), KubernetesVersion::new(1, 35, 0));
        assert_eq!(v("1.35.2").to_string(), "v1.35.2");
        assert_eq!(v("v1.36.0-rc.1").pre, Some(PreRelease::Rc(1)));
        assert_eq!(v("v1.36.0-alpha.0").to_string(), "v1.36.0-alpha.0");
        assert_eq!(v("v1.36.0-beta.2").to_string(), "v1.36.0-beta.2");
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in [
            "",
            "v",
            "1",
            "v1.35",
            "v1.35.",
            "v1..0",
            "v1.35.0.1",
            "v1.35.x",
            "v1.35.0-",
            "v1.35.0-rc",
            "v1.35.0-rc.x",
            "v1.35.0-gamma.1",
            "v1.35.0+abc",
            "V1.35.0",
            " v1.35.0",
            "v1.035.0",
            "v-1.35.0",
            "v1.35.0/../x",
            "v99999999999.0.0",
        ] {
            assert!(bad.parse::<KubernetesVersion>().is_err(), "{bad:?} parsed");
        }
        let e = "v1.35".parse::<KubernetesVersion>().unwrap_err();
        assert_eq!(e.why, MISSING_PATCH);
        assert!(e.to_string().contains("\"v1.35\""), "{e}");
    }

    #[test]
    fn orders_like_semver() {
        let mut list = [
            v("v1.36.0"),
            v("v1.36.0-rc.0"),
            v("v1.35.10"),
            v("v1.35.9"),
            v("v1.36.0-alpha.3"),
            v("v1.36.0-beta.0"),
            v("v1.36.0-rc.1"),
            v("v1.36.1"),
        ];
        list.sort();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "v1.35.9",
                "v1.35.10",
                "v1.36.0-alpha.3",
                "v1.36.0-beta.0",
                "v1.36.0-rc.0",
                "v1.36.0-rc.1",
                "v1.36.0",
                "v1.36.1"
            ]
        );
        assert!(v("v1.35.0") < v("v1.36.0-alpha.0"));
    }

    #[test]
    fn default_is_valid_supported_and_known() {
        let d = KubernetesVersion::default_version();
        assert_eq!(d.to_string(), DEFAULT_KUBERNETES_VERSION);
        d.check_supported().unwrap();
        assert!(!d.is_newer_than_known());
        assert_eq!(
            d.minor_version(),
            NEWEST_KNOWN_MINOR,
            "the default is the newest known minor"
        );
        assert!(d.pre.is_none());
    }

    #[test]
    fn kubeadm_api_switches_at_1_36() {
        assert_eq!(v("v1.33.4").kubeadm_api(), KubeadmApi::V1Beta3);
        assert_eq!(v("v1.35.99").kubeadm_api(), KubeadmApi::V1Beta3);
        assert_eq!(v("v1.36.0-alpha.1").kubeadm_api(), KubeadmApi::V1Beta4);
        assert_eq!(v("v1.36.0").kubeadm_api(), KubeadmApi::V1Beta4);
        assert_eq!(
            v("v1.40.0").kubeadm_api().api_version(),
            "kubeadm.k8s.io/v1beta4"
        );
        assert_eq!(KubeadmApi::V1Beta3.api_version(), "kubeadm.k8s.io/v1beta3");
    }

    #[test]
    fn version_dependent_facts() {
        assert!(!v("v1.34.3").fails_on_cgroup_v1_by_default());
        assert!(v("v1.35.0").fails_on_cgroup_v1_by_default());
        assert!(!v("v1.35.0").requires_containerd_2());
        assert!(v("v1.36.0").requires_containerd_2());
        assert!(v("v1.38.0").is_newer_than_known());
    }

    #[test]
    fn resolve_accepts_aliases_and_rejects_unsupported_with_usage_reason() {
        assert_eq!(
            KubernetesVersion::resolve("stable").unwrap().to_string(),
            DEFAULT_KUBERNETES_VERSION
        );
        assert_eq!(
            KubernetesVersion::resolve(" Default ").unwrap().to_string(),
            DEFAULT_KUBERNETES_VERSION
        );
        assert_eq!(KubernetesVersion::resolve("1.34.2").unwrap(), v("v1.34.2"));
        KubernetesVersion::resolve("v1.33.0").unwrap();

        let err = KubernetesVersion::resolve("v1.32.9").unwrap_err();
        let (reason, advice) = classify(&err);
        assert_eq!(reason.id, "MK_USAGE");
        assert!(
            err.to_string().contains("v1.32.9 is not supported"),
            "{err}"
        );
        assert!(advice.unwrap().contains(DEFAULT_KUBERNETES_VERSION));

        let err = KubernetesVersion::resolve("v2.0.0").unwrap_err();
        assert_eq!(classify(&err).0.id, "MK_USAGE");

        let err = KubernetesVersion::resolve("1.36").unwrap_err();
        let (reason, advice) = classify(&err);
        assert_eq!(reason.id, "MK_USAGE");
        assert!(
            advice.unwrap().contains("v1.36.0"),
            "advice names a full version"
        );

        let err = KubernetesVersion::resolve("latest-ish").unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid Kubernetes version \"latest-ish\""),
            "{err}"
        );
    }
}
