//! CLI tests: argument handling, output and exit codes, against the in-file fake engine
//! (hidden `--driver fake`). Each test gets its own MINIK_HOME, so they run in parallel.

use crate::common::{Env, Out};

const START: &[&str] = &["start", "--driver", "fake", "--no-kubernetes"];

fn start_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    START.iter().copied().chain(extra.iter().copied()).collect()
}

#[test]
fn help_and_version() {
    let env = Env::new();
    let out = env.minik(&["--help"]);
    out.expect(0);
    for verb in [
        "start",
        "status",
        "stop",
        "pause",
        "unpause",
        "delete",
        "profile",
        "ssh",
        "logs",
        "node-image",
    ] {
        assert!(out.stdout.contains(verb), "--help lacks {verb}");
    }
    assert!(
        env.minik(&["version"])
            .expect(0)
            .stdout
            .contains("minik version v")
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.minik(&["version", "-o", "json"]).stdout).unwrap();
    assert!(v["version"].is_string());
    assert!(
        env.minik(&["completion", "bash"])
            .expect(0)
            .stdout
            .contains("minik")
    );
}

#[test]
fn bad_input_is_rejected_with_reason_and_nothing_created() {
    let env = Env::new();
    for name in ["../x", "A B", "Upper", "-x", "x_y"] {
        let mut args = vec!["-p", name];
        args.extend(START);
        env.minik(&args).expect(14).reason("MK_USAGE");
    }
    env.minik(&start_args(&["--nodes", "0"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&start_args(&["--nodes", "21"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&start_args(&["--memory", "lots"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&start_args(&["--memory", "10m"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&start_args(&["--cpus", "0"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&start_args(&["--cpus", "9999"]))
        .expect(14)
        .reason("MK_USAGE");
    env.minik(&["start", "--bogus-flag"]).expect(14);
    let out = env.minik(&["start", "--driver", "virtualbox", "--no-kubernetes"]);
    out.expect(51).reason("DRV_UNKNOWN");
    assert!(out.stderr.contains("virtualbox"));
    assert!(
        !env.home().join("profiles").exists(),
        "bad input created a profile"
    );
    assert!(env.engine().node_names().is_empty());
}

#[test]
fn unreachable_engine_is_reported_and_nothing_created() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(START)
        .env("MINIK_FAKE_UNREACHABLE", "1")
        .output()
        .unwrap();
    Out::from(out).expect(63).reason("PROVIDER_NOT_RUNNING");
    assert!(!env.profile_dir("minik").exists());
}

#[test]
fn missing_profile_has_its_own_exit_code() {
    let env = Env::new();
    env.minik(&["status"]).expect(85).reason("GUEST_NOT_FOUND");
    env.minik(&["-p", "nope", "stop"])
        .expect(85)
        .reason("GUEST_NOT_FOUND");
    env.minik(&["-p", "nope", "ssh", "--", "true"]).expect(85);
    // Deleting what does not exist is not an error (scripts call it unconditionally).
    env.minik(&["-p", "nope", "delete"]).expect(0);
}

#[test]
fn full_lifecycle_on_three_nodes() {
    let env = Env::new();
    let out = env.minik(&start_args(&["-p", "tri", "--nodes", "3"]));
    out.expect(0);
    assert!(
        out.stderr.contains("✓ Creating 3 nodes"),
        "plain progress lines expected:\n{}",
        out.stderr
    );
    assert_eq!(env.engine().node_names(), vec!["tri", "tri-m02", "tri-m03"]);

    let status = env.minik(&["-p", "tri", "status"]);
    status.expect(0);
    assert!(
        status
            .stdout
            .contains("tri-m03\ntype: Worker\nhost: Running"),
        "{}",
        status.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.minik(&["-p", "tri", "status", "-o", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["Host"], "Running");
    assert_eq!(json[0]["Role"], "control-plane");

    env.minik(&["-p", "tri", "pause"]).expect(0);
    let paused = env.minik(&["-p", "tri", "status"]);
    paused.expect(1);
    assert!(paused.stdout.contains("host: Paused"));
    env.minik(&["-p", "tri", "ssh", "--", "true"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");
    env.minik(&["-p", "tri", "unpause"]).expect(0);

    env.minik(&["-p", "tri", "stop"]).expect(0);
    env.minik(&["-p", "tri", "status"]).expect(1);
    env.minik(&["-p", "tri", "pause"])
        .expect(86)
        .reason("GUEST_NOT_RUNNING");
    // Restart keeps the nodes (no re-create) and warns about flags it cannot apply.
    let restart = env.minik(&start_args(&["-p", "tri", "--nodes", "5"]));
    restart.expect(0);
    assert!(
        restart.stderr.contains("ignoring --nodes"),
        "{}",
        restart.stderr
    );
    assert_eq!(env.engine().node_names().len(), 3);
    env.minik(&["-p", "tri", "status"]).expect(0);
    // A plain `start` of an existing profile repeats none of its flags and warns about none.
    env.minik(&["-p", "tri", "stop"]).expect(0);
    let plain = env.minik(&["-p", "tri", "start"]);
    plain.expect(0);
    assert!(!plain.stderr.contains("ignoring"), "{}", plain.stderr);

    let list: serde_json::Value =
        serde_json::from_str(&env.minik(&["profile", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(list["profiles"][0]["name"], "tri");
    assert_eq!(list["profiles"][0]["status"], "Running");
    assert_eq!(list["profiles"][0]["nodes"], 3);
    assert_eq!(list["profiles"][0]["driver"], "fake");

    env.minik(&["-p", "tri", "delete"]).expect(0);
    assert!(env.engine().node_names().is_empty());
    assert!(!env.profile_dir("tri").exists());
    env.minik(&["-p", "tri", "status"]).expect(85);
}

#[test]
fn ssh_runs_the_command_on_the_chosen_node() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "s", "--nodes", "2"]))
        .expect(0);
    env.minik(&["-p", "s", "ssh", "-n", "m02", "--", "echo", "hi there"])
        .expect(0);
    let log = env.engine().log();
    let last = log.last().unwrap();
    assert_eq!(last.node, "s-m02");
    assert_eq!(last.argv, vec!["echo", "hi there"]);
    env.minik(&["-p", "s", "ssh", "-n", "m07", "--", "true"])
        .expect(87)
        .reason("GUEST_NODE_NOT_FOUND");
    env.minik(&["-p", "s", "logs", "-n", "s-m02", "-u", "containerd"])
        .expect(0);
    let last = env.engine().log().last().unwrap().clone();
    assert_eq!(last.argv[0], "journalctl");
    assert!(last.argv.contains(&"containerd".to_string()));
}

#[test]
fn failed_start_cleans_up_unless_asked_to_keep() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(start_args(&["-p", "f", "--nodes", "3"]))
        .env("MINIK_FAKE_FAIL", "create_node:f-m02")
        .output()
        .unwrap();
    let out = Out::from(out);
    out.expect(52).reason("DRV_ENGINE_ERROR");
    assert!(out.stderr.contains("creating node f-m02"), "{}", out.stderr);
    assert!(
        env.engine().node_names().is_empty(),
        "nodes leaked: {:?}",
        env.engine().node_names()
    );
    assert!(!env.profile_dir("f").exists());
    // Nothing labelled with the profile is left (the injected failure left a volume).
    let list: serde_json::Value =
        serde_json::from_str(&env.minik(&["profile", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(list["profiles"].as_array().unwrap().len(), 0, "{list}");

    let out = env
        .cmd()
        .args(start_args(&[
            "-p",
            "f",
            "--nodes",
            "2",
            "--keep-on-failure",
            "--wait-timeout",
            "1s",
        ]))
        .env("MINIK_FAKE_FAIL", "exec:f-m02:systemctl")
        .output()
        .unwrap();
    let out = Out::from(out);
    out.expect(81).reason("GUEST_TIMEOUT");
    assert!(
        out.stderr.contains("node f-m02 did not boot"),
        "{}",
        out.stderr
    );
    assert_eq!(env.engine().node_names(), vec!["f", "f-m02"]);
    assert!(env.profile_dir("f").exists());
    env.minik(&["-p", "f", "delete"]).expect(0);
    assert!(env.engine().node_names().is_empty());
}

#[test]
fn corrupt_profile_is_reported_and_delete_still_cleans_up() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "c"])).expect(0);
    std::fs::write(
        env.profile_dir("c").join("profile.json"),
        "{ this is not json",
    )
    .unwrap();
    env.minik(&["-p", "c", "status"])
        .expect(83)
        .reason("GUEST_PROFILE_CORRUPT");
    env.minik(&start_args(&["-p", "c"])).expect(83);
    let list = env.minik(&["profile", "list"]);
    assert!(list.stdout.contains("Corrupt"), "{}", list.stdout);
    env.minik(&["-p", "c", "delete"]).expect(0);
    assert!(env.engine().node_names().is_empty());
    assert!(!env.profile_dir("c").exists());
}

#[test]
fn orphaned_resources_block_start_until_deleted() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "o"])).expect(0);
    std::fs::remove_dir_all(env.profile_dir("o")).unwrap();
    env.minik(&start_args(&["-p", "o"]))
        .expect(84)
        .reason("GUEST_PROFILE_ORPHANED");
    assert!(env.minik(&["profile", "list"]).stdout.contains("Orphaned"));
    env.minik(&["delete", "--all"]).expect(0);
    assert!(env.engine().node_names().is_empty());
}

#[test]
fn a_profile_directory_without_its_file_lists_as_orphaned() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "o"])).expect(0);
    // The directory stays (a qemu profile keeps its VMs there); only the file is gone.
    std::fs::remove_file(env.profile_dir("o").join("profile.json")).unwrap();
    let list = env.minik(&["profile", "list", "-o", "json"]);
    list.expect(0);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let row = rows["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "o")
        .unwrap_or_else(|| panic!("profile o not listed: {}", list.stdout));
    assert_eq!(row["status"], "Orphaned");
    env.minik(&["delete", "-p", "o"]).expect(0);
    assert!(env.engine().node_names().is_empty());
}

#[test]
fn busy_profile_fails_at_once() {
    let env = Env::new();
    let lock_path = env.home().join("locks").join("minik.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&lock_path).unwrap();
    held.lock().unwrap();
    let started = std::time::Instant::now();
    env.minik(START).expect(82).reason("GUEST_PROFILE_BUSY");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Another profile is not blocked.
    env.minik(&start_args(&["-p", "other"])).expect(0);
    drop(held);
    env.minik(START).expect(0);
}

#[test]
fn json_output_is_one_event_per_line() {
    let env = Env::new();
    let out = env.minik(&start_args(&["-p", "j", "--nodes", "2", "-o", "json"]));
    out.expect(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "step" && e["id"] == "create-nodes" && e["status"] == "done")
    );
    let result = events.last().unwrap();
    assert_eq!(result["type"], "result");
    assert_eq!(result["nodes"].as_array().unwrap().len(), 2);
    let err = env.minik(&["-p", "missing", "status", "-o", "json"]);
    err.expect(85);
    let e: serde_json::Value = serde_json::from_str(err.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(e["reason"], "GUEST_NOT_FOUND");
    assert_eq!(e["exit_code"], 85);
}

#[test]
fn stop_all_and_delete_all() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "a1"])).expect(0);
    env.minik(&start_args(&["-p", "a2", "--nodes", "2"]))
        .expect(0);
    env.minik(&["stop", "--all"]).expect(0);
    env.minik(&["-p", "a1", "status"]).expect(1);
    env.minik(&["-p", "a2", "status"]).expect(1);
    env.minik(&["delete", "--all"]).expect(0);
    assert!(env.engine().node_names().is_empty());
    assert!(
        env.minik(&["profile", "list"])
            .stdout
            .contains("No profiles")
    );
}

/// Output to a closed pipe ends minik as SIGPIPE ends any Unix tool (no panic, no 101, no
/// HOST_FILES); a full disk behind stdout is HOST_STDOUT (33).
#[test]
fn closed_pipes_and_full_disks_behind_stdout() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let env = Env::new();
    env.minik(&start_args(&["-p", "pipe"])).expect(0);
    for args in [
        &["profile", "list"][..],
        &["status", "-p", "pipe"],
        &["completion", "bash"],
    ] {
        let mut child = env
            .std_cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before minik writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env.std_cmd().arg("version").stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(33), "{stderr}");
    assert!(stderr.contains("HOST_STDOUT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Small refusals of issue 11: a bad image name is a usage error (not an engine error telling
/// to delete the profile); `--memory` beyond the host's memory is refused like `--cpus`.
#[test]
fn bad_image_names_and_too_much_memory_are_usage_errors() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "img"])).expect(0);
    for name in ["", "a/Bad Name", "App:1"] {
        let out = env.minik(&["-p", "img", "image", "load", name]);
        out.expect(14).reason("MK_USAGE");
        assert!(
            out.stderr.contains("is not an image reference"),
            "{}",
            out.stderr
        );
    }
    let out = env.minik(&start_args(&["-p", "mem", "--memory", "99999999999g"]));
    out.expect(14).reason("MK_USAGE");
    assert!(
        out.stderr.contains("MiB of memory of this host"),
        "{}",
        out.stderr
    );
    assert!(!env.profile_dir("mem").exists());
}

/// Under `umask 000` MINIK_HOME stays private, and commands on a name that has no profile
/// leave no lock file behind.
#[test]
fn private_modes_and_no_lock_pile_up() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let mut cmd = env.std_cmd();
    cmd.args([
        "start",
        "--driver",
        "fake",
        "--no-kubernetes",
        "-p",
        "modes",
    ]);
    // SAFETY: umask(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    assert!(cmd.output().unwrap().status.success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in ["profiles", "profiles/modes", "locks"] {
        let m = mode(&env.home().join(dir));
        assert_eq!(m & 0o022, 0, "{dir} is {m:o}");
    }
    let lock = env.home().join("locks/modes.lock");
    assert_eq!(mode(&lock) & 0o077, 0, "lock file {:o}", mode(&lock));
    for typo in ["typo1", "typo2"] {
        env.minik(&["stop", "-p", typo]).expect(85);
        env.minik(&["delete", "-p", typo]);
    }
    env.minik(&["delete", "-p", "modes"]).expect(0);
    let left: Vec<_> = std::fs::read_dir(env.home().join("locks"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "lock files left: {left:?}");
}

/// A profile whose file is gone while the engine still holds its nodes: `status` and `stop`
/// say it is orphaned and advise `delete` (which works), not a `start` that would refuse.
#[test]
fn orphaned_profiles_advise_delete_everywhere() {
    let env = Env::new();
    env.minik(&start_args(&["-p", "orph"])).expect(0);
    std::fs::remove_file(env.profile_dir("orph").join("profile.json")).unwrap();
    for verb in ["status", "stop"] {
        let out = env.minik(&[verb, "-p", "orph"]);
        out.expect(84).reason("GUEST_PROFILE_ORPHANED");
        assert!(
            out.stderr.contains("minik delete -p orph"),
            "{}",
            out.stderr
        );
    }
    env.minik(&start_args(&["-p", "orph"])).expect(84);
    env.minik(&["delete", "-p", "orph"]).expect(0);
    env.minik(&["status", "-p", "orph"]).expect(85);
}
