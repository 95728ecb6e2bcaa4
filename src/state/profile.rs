use super::{Home, StateError, write_atomic};
use minik_driver_api::{NodeSpec, Role};
use serde::{Deserialize, Serialize};

/// Longest profile name: node names (`NAME-m02`) become hostnames, which must fit in 63 bytes,
/// and the name prefixes container, volume and network names.
pub const MAX_PROFILE_NAME: usize = 40;

fn corrupt_advice(name: &str) -> String {
    format!("Run `minik delete -p {name}` to remove the profile and everything it created.")
}

/// Checks a profile name: a lowercase letter, then lowercase letters, digits and single
/// dashes, not ending in a dash. It ends up in hostnames, container and file names.
pub fn validate_profile_name(name: &str) -> anyhow::Result<()> {
    let bad = |why: &str| {
        anyhow::Error::new(StateError::InvalidName {
            message: format!("invalid profile name {name:?}: {why}"),
            advice: "Use lowercase letters, digits and dashes, starting with a letter (e.g. `dev`, `ci-2`)."
                .into(),
        })
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_PROFILE_NAME {
        return Err(bad(&format!(
            "it is longer than {MAX_PROFILE_NAME} characters"
        )));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad("it must start with a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(bad(&format!("it contains {c:?}")));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(bad("dashes must separate letters or digits"));
    }
    Ok(())
}

/// One node as recorded in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub role: Role,
    pub index: u32,
}

impl From<&NodeRecord> for NodeSpec {
    fn from(n: &NodeRecord) -> NodeSpec {
        NodeSpec {
            name: n.name.clone(),
            role: n.role,
            index: n.index,
        }
    }
}

/// What Kubernetes the user asked for; absent on `--no-kubernetes` profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesSpec {
    /// e.g. `v1.35.0`.
    pub version: String,
}

/// The spec of a profile: what the user asked for. Written atomically; never holds live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version of this file.
    pub schema: u32,
    pub name: String,
    pub driver: String,
    pub image: String,
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    pub nodes: Vec<NodeRecord>,
    #[serde(default)]
    pub kubernetes: Option<KubernetesSpec>,
    /// Addons by name: `true` enabled (applied at start and after every restart), `false`
    /// disabled. An addon not listed is disabled (profiles made before addons existed have
    /// none). See src/addons.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub addons: std::collections::BTreeMap<String, bool>,
    /// Image replacements by addon (`addons enable --images/--registries`): image name →
    /// the reference used instead of the default, re-applied at every start.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub addon_images:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
}

/// The result of looking a profile up.
#[derive(Debug)]
// (One value per command, moved out at once: boxing would only add noise at every caller.)
#[allow(clippy::large_enum_variant)]
pub enum ProfileLoad {
    Found(Profile),
    Missing,
}

pub const PROFILE_SCHEMA: u32 = 1;

impl Profile {
    /// The name of the node with `index` in profile `profile`, as minikube names them: the
    /// first is the profile's name, then `NAME-m02`, `NAME-m03`, ...
    pub fn node_name(profile: &str, index: u32) -> String {
        if index == 0 {
            profile.to_string()
        } else {
            format!("{profile}-m{:02}", index + 1)
        }
    }

    /// The node names for a new profile: `NAME`, `NAME-m02`, `NAME-m03`, ... (minikube's
    /// scheme); the first is the control plane.
    pub fn node_records(name: &str, count: u32) -> Vec<NodeRecord> {
        (0..count)
            .map(|i| NodeRecord {
                name: Profile::node_name(name, i),
                role: if i == 0 {
                    Role::ControlPlane
                } else {
                    Role::Worker
                },
                index: i,
            })
            .collect()
    }

    /// Loads `profiles/NAME/profile.json`. A file that does not parse is GUEST_PROFILE_CORRUPT.
    pub fn load(home: &Home, name: &str) -> anyhow::Result<ProfileLoad> {
        let path = home.profile_file(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileLoad::Missing),
            Err(e) => {
                return Err(StateError::file("cannot read", &path, e).into());
            }
        };
        let profile: Profile = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            message: format!("profile file {} is corrupt: {e}", path.display()),
            advice: corrupt_advice(name),
        })?;
        if profile.name != name || profile.schema != PROFILE_SCHEMA || profile.nodes.is_empty() {
            return Err(StateError::Corrupt {
                message: format!(
                    "profile file {} does not describe profile {name:?} (schema {})",
                    path.display(),
                    profile.schema
                ),
                advice: corrupt_advice(name),
            }
            .into());
        }
        Ok(ProfileLoad::Found(profile))
    }

    /// Writes the profile file atomically.
    pub fn save(&self, home: &Home) -> anyhow::Result<()> {
        let path = home.profile_file(&self.name);
        let json = serde_json::to_vec_pretty(self).expect("profile serializes");
        write_atomic(&path, &json, 0o644)
            .map_err(|e| StateError::file("cannot write", &path, e).into())
    }

    /// Removes the profile's directory (profile file and per-profile files).
    pub fn remove_dir(home: &Home, name: &str) -> anyhow::Result<bool> {
        let dir = home.profile_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StateError::file("cannot remove", &dir, e).into()),
        }
    }

    /// Names of the profiles that have a directory under MINIK_HOME, sorted.
    pub fn list_names(home: &Home) -> anyhow::Result<Vec<String>> {
        let dir = home.profiles_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StateError::file("cannot read", &dir, e).into());
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_profile_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn control_plane(&self) -> &NodeRecord {
        self.nodes
            .iter()
            .find(|n| n.role == Role::ControlPlane)
            .unwrap_or(&self.nodes[0])
    }

    /// Finds a node by full name or by its suffix (`m02` for `NAME-m02`).
    pub fn find_node(&self, wanted: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.name == wanted).or_else(|| {
            self.nodes
                .iter()
                .find(|n| n.name == format!("{}-{wanted}", self.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::classify;

    #[test]
    fn profile_names() {
        for ok in ["minik", "dev", "ci-2", "a", "a1-b2"] {
            validate_profile_name(ok).unwrap();
        }
        for bad in [
            "",
            "../x",
            "A B",
            "Dev",
            "1abc",
            "a_b",
            "a-",
            "a--b",
            "x/y",
            ".",
            &"a".repeat(41),
        ] {
            let err = validate_profile_name(bad).unwrap_err();
            assert_eq!(classify(&err).0.id, "MK_USAGE", "{bad:?}");
        }
    }

    #[test]
    fn node_names_follow_minikube() {
        let nodes = Profile::node_records("p", 3);
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["p", "p-m02", "p-m03"]);
        assert_eq!(nodes[0].role, Role::ControlPlane);
        assert_eq!(nodes[2].role, Role::Worker);
    }

    #[test]
    fn save_load_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert!(matches!(
            Profile::load(&home, "p").unwrap(),
            ProfileLoad::Missing
        ));
        let p = Profile {
            schema: PROFILE_SCHEMA,
            name: "p".into(),
            driver: "fake".into(),
            image: "img".into(),
            cpus: Some(2.0),
            memory_mib: None,
            nodes: Profile::node_records("p", 2),
            kubernetes: None,
            addons: Default::default(),
            addon_images: Default::default(),
            created_unix: 1,
        };
        p.save(&home).unwrap();
        match Profile::load(&home, "p").unwrap() {
            ProfileLoad::Found(q) => assert_eq!(p, q),
            ProfileLoad::Missing => panic!("missing"),
        }
        assert_eq!(p.find_node("m02").unwrap().name, "p-m02");
        std::fs::write(home.profile_file("p"), b"{not json").unwrap();
        let err = Profile::load(&home, "p").unwrap_err();
        assert_eq!(classify(&err).0.id, "GUEST_PROFILE_CORRUPT");
        assert_eq!(Profile::list_names(&home).unwrap(), vec!["p".to_string()]);
    }
}
