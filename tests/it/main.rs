//! The one integration-test binary (`cargo test --test it`). One harness (`common`), the CLI
//! tests against the hidden fake engine and the snapshot tests (always built), and the
//! real-engine suites behind `--features e2e` (the real-cluster part of `e2e_kubernetes`
//! behind `--features e2e-kubernetes`).
//!
//! Test names are `<module>::...`: the per-driver suites are `e2e::docker::...`,
//! `e2e_image::qemu::...`, so `qemu::` selects every qemu test and `--skip qemu::` leaves them
//! out; the real-cluster tests are `e2e_kubernetes::real_cluster_*`.

mod common;

mod cli;
mod cli_addons;
mod cli_kubernetes;
mod cli_snapshots;

#[cfg(feature = "e2e")]
mod e2e;
#[cfg(feature = "e2e")]
mod e2e_image;
#[cfg(feature = "e2e")]
mod e2e_kubernetes;
