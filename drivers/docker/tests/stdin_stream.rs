//! A large stdin stream goes through the docker runner chunk by chunk: the right byte count
//! arrives, followed by EOF, and this process does not hold the stream in memory. Its own test
//! binary, so the peak memory it measures is this test's alone. (The rest of the runner's
//! stdin promises are the `Runner` contract's, in runner.rs.)

mod common;

use common::*;
use minik_driver_api::contract::Generated;
use minik_driver_api::{Driver, ExecRequest, NullObserver, Role, Runner, StdinSource};
use std::time::Instant;

/// Peak resident memory of this process in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn hundred_megabytes_of_stdin_are_streamed() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("stream");
    let _guard = ProfileGuard::new(&profile);
    let spec = node(&profile, 0, Role::Worker);
    driver
        .create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
        .unwrap();
    let runner = driver.runner(&spec.name);
    runner.run(&["true"]).await.unwrap();

    let size: u64 = 100 << 20;
    let before = peak_rss_kib();
    let started = Instant::now();
    let mut request = ExecRequest::new(["sh", "-c", "cat | wc -c"]);
    request.stdin = StdinSource::Stream(Box::new(Generated { left: size }));
    let out = runner.exec(request).await.unwrap();
    let elapsed = started.elapsed();
    let after = peak_rss_kib();
    assert_eq!(out.stdout_str().trim(), size.to_string(), "{out:?}");
    eprintln!(
        "100 MiB through stdin in {elapsed:?} ({:.0} MiB/s); peak RSS {before} -> {after} KiB",
        100.0 / elapsed.as_secs_f64()
    );
    assert!(
        after.saturating_sub(before) < 32 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
    driver.delete_profile(&profile).await.unwrap();
}
