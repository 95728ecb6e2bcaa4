//! The per-profile network: a bridge named after the profile with a /24 that minik picks, so
//! that node `i` always gets `x.y.z.(2+i)`.

use crate::engine::{ContainerEngine, message_of, status_of};
use crate::labels_match;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use minik_driver_api::{DriverError, labels};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// First candidate subnet, as minikube.
const FIRST_SUBNET: [u8; 4] = [192, 168, 49, 0];
/// Distance between candidate subnets' third octets, as minikube.
const SUBNET_STEP: u8 = 9;

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (IPv6 and malformed input give `None`).
    pub fn parse(cidr: &str) -> Option<Subnet> {
        let (addr, prefix) = cidr.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        (prefix <= 32).then(|| Subnet::new(addr, prefix))
    }

    fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Whether two networks share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The gateway address minik gives the bridge (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The static address of node `index`: network + 2 + index, if it fits below the broadcast
    /// address.
    pub fn node_ip(&self, index: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        let offset = 2 + u64::from(index);
        (offset < size - 1).then(|| Ipv4Addr::from(u32::from(self.addr) + offset as u32))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Candidate /24s in minikube's order: 192.168.49.0, .58, .67, ... up to .247.
pub fn candidate_subnets() -> impl Iterator<Item = Subnet> {
    (0u8..)
        .map_while(|k| {
            k.checked_mul(SUBNET_STEP)
                .and_then(|d| FIRST_SUBNET[2].checked_add(d))
        })
        .map(|third| Subnet {
            addr: Ipv4Addr::new(FIRST_SUBNET[0], FIRST_SUBNET[1], third, 0),
            prefix: 24,
        })
}

/// The first candidate that overlaps none of `used`.
pub fn pick_subnet(used: &[Subnet], skip: &[Subnet]) -> Option<Subnet> {
    candidate_subnets().find(|c| !skip.contains(c) && !used.iter().any(|u| u.overlaps(c)))
}

/// IPv4 routes of this machine (from `/proc/net/route`), so a picked subnet does not shadow a
/// LAN or VPN the host reaches. Default routes are left out. Empty where unreadable.
fn host_routes() -> Vec<Subnet> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // The kernel prints the raw network-order word as a native integer.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then(|| Subnet::new(dest, prefix))
        })
        .collect()
}

/// The profile network's name: the profile itself.
pub fn network_name(profile: &str) -> &str {
    profile
}

/// Makes sure network `<profile>` exists with minik's labels for `profile` and returns its
/// subnet. Reuses an existing one; refuses a same-named network that is not minik's for this
/// profile.
pub async fn ensure_network(
    engine: &ContainerEngine,
    profile: &str,
) -> Result<Subnet, DriverError> {
    ensure_network_in(engine, profile, None).await
}

/// [`ensure_network`], creating a missing network with subnet `recorded` when given (a
/// profile's network removed while its nodes stayed: their addresses are in that subnet).
pub async fn ensure_network_in(
    engine: &ContainerEngine,
    profile: &str,
    recorded: Option<Subnet>,
) -> Result<Subnet, DriverError> {
    let docker = engine.ready().await?;
    let name = network_name(profile);
    let mut tried = Vec::new();
    loop {
        if let Some(subnet) = existing_network(engine, profile).await? {
            return Ok(subnet);
        }
        let networks = docker
            .list_networks(None)
            .await
            .map_err(|e| engine.error("list networks", e))?;
        let mut used: Vec<Subnet> = networks
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| Subnet::parse(c.subnet.as_deref()?))
            .collect();
        if engine.is_local() {
            used.extend(host_routes());
        }
        if let Some(want) = recorded
            && (!tried.is_empty() || used.iter().any(|u| u.overlaps(&want)))
        {
            return Err(DriverError::engine(
                format!("create network {name}"),
                format!(
                    "the profile's nodes have addresses in {want}, which another network or route now uses"
                ),
            ));
        }
        let Some(subnet) = recorded.or_else(|| pick_subnet(&used, &tried)) else {
            return Err(DriverError::engine(
                format!("create network {name}"),
                "no free subnet among 192.168.49.0/24, 192.168.58.0/24, ... 192.168.247.0/24",
            ));
        };
        let mut options = HashMap::new();
        if engine.flavor().bridge_options {
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".to_string(),
                "true".to_string(),
            );
            options.insert(
                "com.docker.network.bridge.enable_icc".to_string(),
                "true".to_string(),
            );
            if let Some(mtu) = default_bridge_mtu(&networks) {
                options.insert("com.docker.network.driver.mtu".to_string(), mtu);
            }
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(subnet.gateway().to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            options: Some(options),
            labels: Some(HashMap::from([
                (labels::CREATED_BY.to_string(), "true".to_string()),
                (labels::PROFILE.to_string(), profile.to_string()),
            ])),
            ..Default::default()
        };
        let client = docker.clone();
        let created = engine
            .shielded(async move { client.create_network(request).await })
            .await;
        match created {
            Ok(_) => {
                tracing::debug!(network = name, %subnet, "created profile network");
                // An engine that does not refuse duplicate names (Docker before 25) may now
                // hold two: one from an interrupted start whose create finished late. Keep the
                // same one every racer keeps, and use its subnet.
                dedupe_networks(engine, profile).await?;
                if let Some(kept) = existing_network(engine, profile).await? {
                    return Ok(kept);
                }
                return Ok(subnet);
            }
            // The name exists already (an engine that checks): look again.
            Err(e) if status_of(&e) == Some(409) => tried.push(subnet),
            // Another process took the subnet (or created this very network) since we listed:
            // look again. Docker says "overlaps"; podman says "is already used on the host or by
            // another config".
            Err(e) if is_subnet_taken(&message_of(&e)) => tried.push(subnet),
            Err(e) => return Err(engine.error(format!("create network {name} ({subnet})"), e)),
        }
    }
}

/// Removes all but one of several networks named `<profile>` that are all minik's for
/// `profile`: the oldest is kept (ties by ID), so concurrent callers keep the same one. A
/// same-named network that is not minik's for `profile` is a [`DriverError::NameConflict`].
pub async fn dedupe_networks(engine: &ContainerEngine, profile: &str) -> Result<(), DriverError> {
    let docker = engine.ready().await?;
    let name = network_name(profile);
    let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut same: Vec<_> = docker
        .list_networks(Some(options))
        .await
        .map_err(|e| engine.error("list networks", e))?
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .collect();
    if same.len() <= 1 {
        return Ok(());
    }
    if same
        .iter()
        .any(|n| !labels_match(n.labels.as_ref(), profile))
    {
        return Err(DriverError::NameConflict {
            kind: "network".into(),
            name: name.to_string(),
        });
    }
    same.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    for extra in &same[1..] {
        let Some(id) = extra.id.as_deref() else {
            continue;
        };
        tracing::debug!(network = name, id, "removing a duplicate profile network");
        if let Err(e) = docker.remove_network(id).await
            && status_of(&e) != Some(404)
        {
            return Err(engine.error(format!("remove duplicate network {name} ({id})"), e));
        }
    }
    Ok(())
}

/// The subnet of network `<profile>` if it exists and is minik's for `profile`.
pub async fn existing_network(
    engine: &ContainerEngine,
    profile: &str,
) -> Result<Option<Subnet>, DriverError> {
    let docker = engine.ready().await?;
    let name = network_name(profile);
    let network = match docker.inspect_network(name, None).await {
        Ok(n) => n,
        Err(e) if status_of(&e) == Some(404) => return Ok(None),
        // Two networks of that name (see `dedupe_networks`): keep one, then look again.
        Err(e) if message_of(&e).contains("ambiguous") => {
            dedupe_networks(engine, profile).await?;
            match docker.inspect_network(name, None).await {
                Ok(n) => n,
                Err(e) => return Err(engine.error(format!("inspect network {name}"), e)),
            }
        }
        Err(e) => return Err(engine.error(format!("inspect network {name}"), e)),
    };
    if network.name.as_deref() != Some(name) || !labels_match(network.labels.as_ref(), profile) {
        return Err(DriverError::NameConflict {
            kind: "network".into(),
            name: name.to_string(),
        });
    }
    network
        .ipam
        .and_then(|i| i.config)
        .into_iter()
        .flatten()
        .find_map(|c| Subnet::parse(c.subnet.as_deref()?))
        .map(Some)
        .ok_or_else(|| {
            DriverError::engine(
                format!("inspect network {name}"),
                "the network has no IPv4 subnet",
            )
        })
}

/// Whether a refused network creation means the subnet was taken meanwhile (worth another
/// candidate), as Docker and podman word it.
fn is_subnet_taken(message: &str) -> bool {
    message.contains("overlaps") || message.contains("already used")
}

fn default_bridge_mtu(networks: &[bollard::models::Network]) -> Option<String> {
    networks
        .iter()
        .find(|n| n.name.as_deref() == Some("bridge"))?
        .options
        .as_ref()?
        .get("com.docker.network.driver.mtu")
        .filter(|v| !v.is_empty())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: &str) -> Subnet {
        Subnet::parse(c).unwrap()
    }

    #[test]
    fn candidates_follow_minikube() {
        let c: Vec<String> = candidate_subnets().take(4).map(|s| s.to_string()).collect();
        assert_eq!(
            c,
            [
                "192.168.49.0/24",
                "192.168.58.0/24",
                "192.168.67.0/24",
                "192.168.76.0/24"
            ]
        );
        assert_eq!(
            candidate_subnets().last().map(|s| s.to_string()).as_deref(),
            Some("192.168.247.0/24")
        );
    }

    #[test]
    fn picks_first_free_and_respects_overlap() {
        assert_eq!(pick_subnet(&[], &[]), Some(s("192.168.49.0/24")));
        assert_eq!(
            pick_subnet(&[s("192.168.49.0/24")], &[]),
            Some(s("192.168.58.0/24"))
        );
        // A /16 covering all candidates leaves nothing.
        assert_eq!(pick_subnet(&[s("192.168.0.0/16")], &[]), None);
        // A /20 at 192.168.48.0 covers .48-.63: skips .49 and .58.
        assert_eq!(
            pick_subnet(&[s("192.168.48.0/20")], &[]),
            Some(s("192.168.67.0/24"))
        );
        assert_eq!(
            pick_subnet(&[], &[s("192.168.49.0/24")]),
            Some(s("192.168.58.0/24"))
        );
        assert_eq!(
            pick_subnet(&[s("172.17.0.0/16"), s("10.0.0.0/8")], &[]),
            Some(s("192.168.49.0/24"))
        );
    }

    #[test]
    fn recognizes_taken_subnets() {
        assert!(is_subnet_taken(
            "Pool overlaps with other one on this address space"
        ));
        assert!(is_subnet_taken(
            "subnet 192.168.58.0/24 is already used on the host or by another config"
        ));
        assert!(!is_subnet_taken("network with name p already exists"));
    }

    #[test]
    fn node_addresses() {
        let net = s("192.168.58.0/24");
        assert_eq!(net.gateway(), Ipv4Addr::new(192, 168, 58, 1));
        assert_eq!(net.node_ip(0), Some(Ipv4Addr::new(192, 168, 58, 2)));
        assert_eq!(net.node_ip(3), Some(Ipv4Addr::new(192, 168, 58, 5)));
        assert_eq!(net.node_ip(252), Some(Ipv4Addr::new(192, 168, 58, 254)));
        assert_eq!(net.node_ip(253), None);
        assert_eq!(s("192.168.58.77/24"), net, "host bits are cleared");
        assert!(Subnet::parse("fd00::/64").is_none());
    }

    #[test]
    fn reads_host_routes() {
        // Only checks that parsing does not produce nonsense on this machine.
        for r in host_routes() {
            assert!(r.prefix > 0 && r.prefix <= 32, "{r}");
        }
    }
}
