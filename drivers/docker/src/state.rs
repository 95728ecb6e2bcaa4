//! What a node container's engine state means for minik: the node's [`HostState`], its
//! published ports and its [`NodeInfo`] (a leaf: the driver and the runner both read it).

use crate::labels_match;
use crate::network::network_name;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use minik_driver_api::{API_SERVER_PORT, HostState, NodeInfo, Role, labels};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn container_labels(c: &ContainerInspectResponse) -> Option<&HashMap<String, String>> {
    c.config.as_ref()?.labels.as_ref()
}

pub(crate) fn is_minik_container(c: &ContainerInspectResponse) -> bool {
    container_labels(c)
        .is_some_and(|l| l.get(labels::CREATED_BY).map(String::as_str) == Some("true"))
}

pub(crate) fn state_of(c: &ContainerInspectResponse) -> Option<ContainerStateStatusEnum> {
    c.state.as_ref()?.status
}

pub(crate) fn is_paused(c: &ContainerInspectResponse) -> bool {
    state_of(c) == Some(ContainerStateStatusEnum::PAUSED)
        || c.state.as_ref().and_then(|s| s.paused) == Some(true)
}

/// What `list_nodes` reports for one inspected container (`None` if it is not a node of
/// `profile`).
pub(crate) fn node_info(c: &ContainerInspectResponse, profile: &str) -> Option<NodeInfo> {
    let labels = container_labels(c)?;
    if !labels_match(Some(labels), profile) {
        return None;
    }
    let name = labels.get(labels::NODE).cloned().or_else(|| {
        c.name
            .as_ref()
            .map(|n| n.trim_start_matches('/').to_string())
    })?;
    let role = labels
        .get(labels::ROLE)
        .and_then(|r| Role::parse(r))
        .unwrap_or(Role::Worker);
    let index = labels
        .get(labels::INDEX)
        .and_then(|i| i.parse().ok())
        .unwrap_or(u32::MAX);
    let (host_state, detail) = state_and_detail(c);
    let ip = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.get(network_name(profile)))
        .and_then(|e| e.ip_address.clone())
        .filter(|ip| !ip.is_empty());
    Some(NodeInfo {
        name,
        role,
        index,
        state: host_state,
        ip,
        api_port: published_ports(c).get(&API_SERVER_PORT).copied(),
        ports: published_ports(c),
        detail,
    })
}

/// The node state of a container, as [`HostState`], with engine detail for humans.
pub(crate) fn state_and_detail(c: &ContainerInspectResponse) -> (HostState, Option<String>) {
    let state = c.state.as_ref();
    let exit_code = state.and_then(|s| s.exit_code).unwrap_or(0);
    let error = state
        .and_then(|s| s.error.clone())
        .filter(|e| !e.is_empty());
    let (host_state, detail) = match state_of(c) {
        _ if is_paused(c) => (HostState::Paused, None),
        Some(ContainerStateStatusEnum::RUNNING) => (HostState::Running, None),
        Some(ContainerStateStatusEnum::CREATED) => {
            (HostState::Stopped, Some("created".to_string()))
        }
        Some(ContainerStateStatusEnum::EXITED) => {
            (HostState::Stopped, Some(format!("exited ({exit_code})")))
        }
        Some(ContainerStateStatusEnum::STOPPING) => {
            (HostState::Stopped, Some("stopping".to_string()))
        }
        Some(ContainerStateStatusEnum::RESTARTING) => (
            HostState::Error,
            Some(format!("restarting (last exit {exit_code})")),
        ),
        Some(ContainerStateStatusEnum::DEAD) => (HostState::Error, Some("dead".to_string())),
        Some(ContainerStateStatusEnum::REMOVING) => {
            (HostState::Error, Some("being removed".to_string()))
        }
        _ => (HostState::Error, Some("unknown state".to_string())),
    };
    let detail = match (detail, error) {
        (Some(d), Some(e)) => Some(format!("{d}: {e}")),
        (d, e) => d.or(e),
    };
    (host_state, detail)
}

/// The node state of a container.
pub(crate) fn host_state_of(c: &ContainerInspectResponse) -> HostState {
    state_and_detail(c).0
}

/// The published TCP ports (node port → host port): from the recorded bindings (known while
/// stopped), else from the live port map.
pub(crate) fn published_ports(c: &ContainerInspectResponse) -> BTreeMap<u16, u16> {
    let from = |map: Option<&bollard::models::PortMap>| -> BTreeMap<u16, u16> {
        let Some(map) = map else {
            return BTreeMap::new();
        };
        map.iter()
            .filter_map(|(key, bindings)| {
                let node_port = key.strip_suffix("/tcp")?.parse::<u16>().ok()?;
                let host_port = bindings.as_ref()?.iter().find_map(|b| {
                    b.host_port
                        .as_deref()?
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                })?;
                Some((node_port, host_port))
            })
            .collect()
    };
    let recorded = from(
        c.host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref()),
    );
    if recorded.is_empty() {
        from(c.network_settings.as_ref().and_then(|n| n.ports.as_ref()))
    } else {
        recorded
    }
}
