//! End-to-end tests of `minik image load|ls|rm` on the real drivers (docker, podman and qemu),
//! one suite per driver (`image_suite!`, with the node count) as in e2e.rs. Compiled only
//! with `--features e2e`; fails (never skips) when an engine or the test image
//! `localhost/minik-test/hello:1` (tests/make-test-image.sh) is missing, or for qemu the VM
//! disk (see e2e.rs).
//!
//! A small image is built on the spot from the hello image plus a file unique to the run (so
//! every run imports for real), in the driver's engine (docker for qemu, whose `image load`
//! reads docker's store), loaded into a `--no-kubernetes` profile (3 containers, or 2 VMs under
//! qemu), and run with
//! `ctr -n k8s.io run` in every node. Loading it again must copy nothing; a new tag of it must
//! only be tagged; a missing image or a bad archive must be refused with its reason; an import
//! that fails in one node must leave no node changed.

use crate::common::backend::{Backend, HELLO_IMAGE};
use crate::common::{Out, minik_command, run};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

struct Suite {
    driver: &'static str,
    backend: Backend,
    /// Nodes of the profile: 3 on container engines, 2 VMs on qemu.
    node_count: usize,
    home: tempfile::TempDir,
    tag: String,
    profiles: Vec<String>,
    images: Vec<String>,
}

impl Suite {
    fn new(driver: &'static str, backend: Backend, node_count: usize, test: &str) -> Suite {
        let home = tempfile::tempdir().unwrap();
        // Fails (never skips) without the engine and its test image; for qemu also links the
        // shared VM disk into this MINIK_HOME. Images come from `backend.image_cli()`.
        backend.check(driver, home.path());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Suite {
            driver,
            backend,
            node_count,
            home,
            tag: format!("{test}-{}-{}", std::process::id() % 100000, nanos % 10000),
            profiles: Vec::new(),
            images: Vec::new(),
        }
    }

    fn minik(&self, args: &[&str]) -> Out {
        run(minik_command(self.home.path()).args(args))
    }

    /// The engine CLI that holds the test images (docker for qemu).
    fn engine(&self, args: &[&str]) -> Out {
        run(Command::new(self.backend.image_cli())
            .args(args)
            .stdin(Stdio::null()))
    }

    /// A sandbox profile of `node_count` nodes.
    fn profile(&mut self) -> String {
        let p = format!("e2ei-{}-{}", self.driver, self.tag);
        self.profiles.push(p.clone());
        self.minik(&[
            "start",
            "-p",
            &p,
            "--driver",
            self.driver,
            "--no-kubernetes",
            "--nodes",
            &self.node_count.to_string(),
            "--wait-timeout",
            "120s",
        ])
        .ok();
        p
    }

    /// Builds `localhost/minik-e2e/NAME:1` from the hello image plus a file holding `stamp`;
    /// its command prints the stamp.
    fn build(&mut self, name: &str, stamp: &str) -> String {
        let image = format!("localhost/minik-e2e/{name}-{}:1", self.tag);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stamp"), stamp).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!("FROM {HELLO_IMAGE}\nCOPY stamp /stamp\nCMD [\"/bin/busybox\", \"cat\", \"/stamp\"]\n"),
        )
        .unwrap();
        self.engine(&["build", "-q", "-t", &image, dir.path().to_str().unwrap()])
            .ok();
        self.images.push(image.clone());
        image
    }

    /// The profile's node names: `p`, `p-m02`, ...
    fn nodes(&self, p: &str) -> Vec<String> {
        (1..=self.node_count)
            .map(|i| {
                if i == 1 {
                    p.to_string()
                } else {
                    format!("{p}-m{i:02}")
                }
            })
            .collect()
    }

    /// The profile's last node.
    fn last_node(&self, p: &str) -> String {
        self.nodes(p).pop().unwrap()
    }

    fn ssh(&self, p: &str, node: &str, cmd: &[&str]) -> Out {
        let mut args = vec!["ssh", "-p", p, "-n", node, "--"];
        args.extend_from_slice(cmd);
        self.minik(&args)
    }

    /// Names of the k8s.io images of one node.
    fn node_images(&self, p: &str, node: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .ssh(p, node, &["ctr", "-n", "k8s.io", "images", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        for p in &self.profiles {
            let _ = self.minik(&["delete", "-p", p]);
        }
        for i in &self.images {
            let _ = self.engine(&["rmi", "-f", i]);
        }
    }
}

fn write_truncated(from: &Path, to: &Path, keep: usize) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::write(to, &bytes[..keep.min(bytes.len() / 2)]).unwrap();
}

macro_rules! image_suite {
    ($driver:ident, $backend:expr, $nodes:literal) => {
        mod $driver {
            use super::*;

            /// Load into every node, run in each, reload copies nothing, a new tag is only tagged,
            /// ls and rm; an archive loads the same way.
            #[test]
            fn load_run_reload_tag_ls_rm() {
                let mut s = Suite::new(stringify!($driver), $backend, $nodes, "load");
                let stamp = format!("stamp {}", s.tag);
                let image = s.build("app", &stamp);
                let p = s.profile();

                let first = s.minik(&["image", "load", "-p", &p, &image, "-o", "json"]).ok().result();
                assert_eq!(first["imports"], $nodes, "{first}");
                assert!(first["bytes_streamed"].as_u64().unwrap() > 1_000_000, "{first}");
                for node in s.nodes(&p) {
                    let run = s.ssh(&p, &node, &["ctr", "-n", "k8s.io", "run", "--rm", &image, "t1"]).ok();
                    assert_eq!(run.stdout.trim(), stamp, "{node}: {run:?}");
                }

                // Again: nothing is streamed and no import runs (its duration is printed).
                let started = Instant::now();
                let again = s.minik(&["image", "load", "-p", &p, &image, "-o", "json"]).ok().result();
                let took = started.elapsed();
                assert_eq!(again["imports"], 0, "{again}");
                assert_eq!(again["bytes_streamed"], 0, "{again}");
                for node in s.nodes(&p) {
                    assert_eq!(again["images"][&image][&node], "present", "{again}");
                }
                // A figure, not an assertion (machines differ): docs/images.md has the numbers.
                eprintln!("second load of {image} into {} nodes: {:.3}s", $nodes, took.as_secs_f64());

                // The same image under a new name: only a tag.
                let retag = image.replace(":1", ":2");
                s.engine(&["tag", &image, &retag]).ok();
                s.images.push(retag.clone());
                let tagged = s.minik(&["image", "load", "-p", &p, &retag, "-o", "json"]).ok().result();
                assert_eq!(tagged["imports"], 0, "{tagged}");
                assert_eq!(tagged["images"][&retag][&s.last_node(&p)], "tagged");
                let run = s.ssh(&p, &format!("{p}-m02"), &["ctr", "-n", "k8s.io", "run", "--rm", &retag, "t2"]).ok();
                assert_eq!(run.stdout.trim(), stamp);

                let ls = s.minik(&["image", "ls", "-p", &p, "-o", "json"]).ok();
                let v: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
                let row = v["images"].as_array().unwrap().iter().find(|r| r["name"] == image.as_str()).unwrap();
                assert_eq!(row["nodes"].as_array().unwrap().len(), $nodes);

                s.minik(&["image", "rm", "-p", &p, &image, &retag]).ok();
                for node in s.nodes(&p) {
                    let names = s.node_images(&p, &node);
                    assert!(!names.iter().any(|n| n.contains("minik-e2e")), "{node}: {names:?}");
                }

                // From an archive.
                let dir = tempfile::tempdir().unwrap();
                let tar = dir.path().join("app.tar");
                s.engine(&["save", "-o", tar.to_str().unwrap(), &image]).ok();
                let from_file = s.minik(&["image", "load", "-p", &p, "--archive", tar.to_str().unwrap(), "-o", "json"]).ok().result();
                assert_eq!(from_file["imports"], $nodes, "{from_file}");
                let run = s.ssh(&p, &s.last_node(&p), &["ctr", "-n", "k8s.io", "run", "--rm", &image, "t3"]).ok();
                assert_eq!(run.stdout.trim(), stamp);
            }

            /// A missing image, a bad or truncated archive are refused with their reason and
            /// leave the nodes as they were; an import that fails in one node is undone in all.
            #[test]
            fn bad_input_and_failed_imports_leave_nothing_behind() {
                let mut s = Suite::new(stringify!($driver), $backend, $nodes, "bad");
                let p = s.profile();
                let before: Vec<Vec<String>> = s.nodes(&p).iter().map(|n| s.node_images(&p, n)).collect();

                let missing = s.minik(&["image", "load", "-p", &p, "localhost/minik-e2e/no-such-image:1"]).code(89);
                assert!(missing.stderr.contains("GUEST_IMAGE_NOT_FOUND") && missing.stderr.contains("no-such-image"), "{missing:?}");

                let dir = tempfile::tempdir().unwrap();
                let garbage = dir.path().join("garbage.tar");
                std::fs::write(&garbage, vec![7u8; 10_000]).unwrap();
                let bad = s.minik(&["image", "load", "-p", &p, "--archive", garbage.to_str().unwrap()]).code(90);
                assert!(bad.stderr.contains("GUEST_IMAGE_LOAD"), "{bad:?}");

                let stamp = format!("never {}", s.tag);
                let image = s.build("broken", &stamp);
                let full = dir.path().join("full.tar");
                s.engine(&["save", "-o", full.to_str().unwrap(), &image]).ok();
                let cut = dir.path().join("cut.tar");
                write_truncated(&full, &cut, 200_000);
                let truncated = s.minik(&["image", "load", "-p", &p, "--archive", cut.to_str().unwrap()]).code(90);
                assert!(truncated.stderr.contains("not a usable image archive"), "{truncated:?}");

                // Make the import fail in the second node only (after reading all its input):
                // the others import, then everything is undone.
                let m02 = format!("{p}-m02");
                s.ssh(&p, &m02, &["sh", "-c", "mv /usr/bin/ctr /usr/bin/ctr.real && printf '#!/bin/sh\\ncase \"$*\" in *\" import \"*) cat >/dev/null; echo injected import failure >&2; exit 1;; esac\\nexec /usr/bin/ctr.real \"$@\"\\n' > /usr/bin/ctr && chmod 755 /usr/bin/ctr"]).ok();
                let failed = s.minik(&["image", "load", "-p", &p, &image]).code(90);
                assert!(failed.stderr.contains("injected import failure"), "{failed:?}");
                assert!(failed.stderr.contains("put back as it was"), "{failed:?}");
                s.ssh(&p, &m02, &["mv", "/usr/bin/ctr.real", "/usr/bin/ctr"]).ok();

                let after: Vec<Vec<String>> = s.nodes(&p).iter().map(|n| s.node_images(&p, n)).collect();
                assert_eq!(before, after, "the nodes' images changed");
            }
        }
    };
}

image_suite!(docker, super::Backend::Engine("docker"), 3);
image_suite!(podman, super::Backend::Engine("podman"), 3);
// VMs under TCG: two nodes; the images are built in docker and loaded from its store.
image_suite!(qemu, super::Backend::Qemu, 2);
