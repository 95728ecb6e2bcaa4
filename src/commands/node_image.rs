//! `minik node-image build`: build the node image from the embedded recipe through the
//! engine's build API, with Kubernetes binaries downloaded (checksum-verified) or taken from a
//! local directory.

use super::Context;
use crate::any_driver::AnyDriver;
use crate::cli::NodeImageBuildArgs;
use crate::errors::{USAGE, fail};
use crate::node_image;
use crate::node_image::build::{
    BuildPlan, build_plan, build_vm_disk, parse_version_arg, resolve_containerd, tag_for,
    vm_build_engine,
};
use minik_driver_api::Driver;

pub async fn build(ctx: &Context, args: NodeImageBuildArgs) -> anyhow::Result<u8> {
    let kubernetes = parse_version_arg(&args.kubernetes_version)?;
    if kubernetes.is_none() && args.kubernetes_from.is_some() {
        return Err(fail(
            &USAGE,
            "--kubernetes-from needs --kubernetes-version (a version, not `none`)",
        ));
    }
    let plan = BuildPlan {
        tag: args
            .tag
            .clone()
            .unwrap_or_else(|| tag_for(kubernetes.as_ref(), args.kubernetes_from.as_deref())),
        containerd_source: resolve_containerd(
            args.containerd_source,
            kubernetes.as_ref(),
            args.kubernetes_from.as_deref(),
        ),
        kubernetes,
        kubernetes_from: args.kubernetes_from.clone(),
        base_image: args.base_image.clone(),
    };
    if let Some(dir) = &args.dump_context {
        let tar = node_image::context_tar(&[])?;
        std::fs::create_dir_all(dir)?;
        tar::Archive::new(&tar[..]).unpack(dir)?;
    }
    // qemu hook: `--vm`, or `--driver qemu`, also builds the VM base disk, with a container
    // engine (the one named, else docker, else podman).
    let vm = args.vm || args.driver.as_deref() == Some("qemu");
    let (driver, _) = if vm {
        vm_build_engine(
            &ctx.session(),
            args.driver.as_deref().filter(|d| *d != "qemu"),
        )
        .await?
    } else {
        AnyDriver::choose(args.driver.as_deref(), &ctx.home).await?
    };
    let Some(docker) = driver.as_container_engine() else {
        return Err(fail(
            &USAGE,
            format!("the {} driver cannot build images", driver.name()),
        ));
    };
    if !args.force && docker.image_exists(&plan.tag).await? {
        ctx.reporter.info(&format!(
            "Node image {} is already present (use --force to rebuild)",
            plan.tag
        ));
    } else {
        build_plan(&ctx.session(), docker, &plan).await?;
    }
    if vm {
        let qemu = crate::any_driver::qemu_driver(&ctx.home)?;
        let disk = qemu.base_disk(&plan.tag);
        let current = disk.is_complete()
            && minik_driver_qemu::disk::DiskSource::load(&disk)
                .is_some_and(|s| s.vm_recipe == minik_driver_qemu::disk::recipe_hash());
        if !args.force && current {
            ctx.reporter.info(&format!(
                "VM disk for {} is already present in {} (use --force to rebuild)",
                plan.tag,
                disk.dir().display()
            ));
        } else {
            build_vm_disk(&ctx.session(), &qemu, docker, &plan.tag, args.force).await?;
        }
    }
    print_result(ctx, &plan.tag);
    Ok(0)
}

fn print_result(ctx: &Context, tag: &str) {
    if ctx.json() {
        ctx.reporter
            .event(serde_json::json!({"type": "result", "image": tag}));
    } else {
        crate::outln!("{tag}");
    }
}
