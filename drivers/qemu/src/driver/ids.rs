//! Ports, MAC addresses, UUIDs and multicast segments for new VMs.

use super::SEGMENT_SUBNET;
use crate::layout::{Layout, ProfileSettings, Segment};
use minik_driver_api::DriverError;
use std::net::{Ipv4Addr, TcpListener};

/// Whether 127.0.0.1:`port` can be bound.
pub(super) fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// `n` distinct free TCP ports on 127.0.0.1 (all listeners held until all are picked).
pub(super) fn free_ports(n: usize) -> Result<Vec<u16>, DriverError> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| DriverError::io("pick a free host port", e))?;
        ports.push(
            l.local_addr()
                .map_err(|e| DriverError::io("pick a free host port", e))?
                .port(),
        );
        listeners.push(l);
    }
    Ok(ports)
}

/// `n` random bytes (from the OS).
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok();
    if !filled {
        // No /dev/urandom: derive from the clock and the process (uniqueness, not secrecy).
        use std::hash::{BuildHasher, Hasher};
        for (i, b) in buf.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            *b = h.finish() as u8;
        }
    }
    buf
}

/// A random locally administered MAC in qemu's 52:54:00 range.
pub(super) fn random_mac() -> String {
    let [a, b, c] = random_bytes::<3>();
    format!("52:54:00:{a:02x}:{b:02x}:{c:02x}")
}

/// A random (version 4) UUID.
pub(super) fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A multicast group and port no other profile in `layout` uses.
pub(super) fn pick_segment(layout: &Layout) -> Result<Segment, DriverError> {
    let used: Vec<Segment> = layout
        .profiles_with_vms()?
        .iter()
        .filter_map(|p| {
            ProfileSettings::load(&layout.profile(p).settings())
                .ok()
                .flatten()
        })
        .map(|s| s.segment)
        .collect();
    loop {
        let [a, b, c, p1, p2] = random_bytes::<5>();
        let segment = Segment {
            group: Ipv4Addr::new(239, a, b, c.max(1)),
            port: 20000 + (u16::from_le_bytes([p1, p2]) % 40000),
            subnet: SEGMENT_SUBNET,
        };
        if !used
            .iter()
            .any(|u| u.group == segment.group || u.port == segment.port)
        {
            return Ok(segment);
        }
    }
}
