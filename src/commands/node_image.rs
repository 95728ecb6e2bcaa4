//! `minik node-image build`: build the node image from the embedded recipe through the
//! engine's build API.

use super::Context;
use crate::cli::{ContainerdSource, NodeImageBuildArgs};
use crate::drivers::AnyDriver;
use crate::errors::{DRV_IMAGE, GUEST_UNSUPPORTED, USAGE, fail, fail_with};
use crate::node_image;
use crate::ui::Mode;
use minik_driver_api::Driver;
use minik_driver_docker::DockerDriver;
use std::collections::HashMap;

/// What to build.
pub struct BuildPlan {
    pub tag: String,
    pub kubernetes_version: String,
    pub base_image: String,
    pub containerd_source: ContainerdSource,
}

impl BuildPlan {
    pub fn build_args(&self) -> HashMap<String, String> {
        HashMap::from([
            (
                "KUBERNETES_VERSION".to_string(),
                self.kubernetes_version.clone(),
            ),
            (
                "CONTAINERD_SOURCE".to_string(),
                self.containerd_source.as_str().to_string(),
            ),
            ("BASE_IMAGE".to_string(), self.base_image.clone()),
        ])
    }
}

pub async fn build(ctx: &Context, args: NodeImageBuildArgs) -> anyhow::Result<u8> {
    let version = args.kubernetes_version.trim().to_string();
    if version != "none" {
        let valid = version.strip_prefix('v').is_some_and(|v| {
            let parts: Vec<&str> = v.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        });
        if !valid {
            return Err(fail(
                &USAGE,
                format!("--kubernetes-version {version:?} is neither `none` nor vX.Y.Z"),
            ));
        }
        return Err(fail_with(
            &GUEST_UNSUPPORTED,
            format!(
                "building a node image with Kubernetes {version} is not available in this build yet"
            ),
            "Build the container-runtime image with `minik node-image build --kubernetes-version none`.",
        ));
    }
    let plan = BuildPlan {
        tag: args
            .tag
            .clone()
            .unwrap_or_else(|| node_image::default_tag(&version)),
        kubernetes_version: version,
        base_image: args.base_image.clone(),
        containerd_source: args.containerd_source,
    };
    if let Some(dir) = &args.dump_context {
        let tar = node_image::context_tar(&[])?;
        std::fs::create_dir_all(dir)?;
        tar::Archive::new(&tar[..]).unpack(dir)?;
    }
    let driver = AnyDriver::connect(&args.driver, &ctx.home)?;
    driver.check().await?;
    let Some(docker) = driver.as_docker() else {
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
        print_result(ctx, &plan.tag);
        return Ok(0);
    }
    build_plan(ctx, docker, &plan).await?;
    print_result(ctx, &plan.tag);
    Ok(0)
}

fn print_result(ctx: &Context, tag: &str) {
    if ctx.json() {
        ctx.reporter
            .event(serde_json::json!({"type": "result", "image": tag}));
    } else {
        println!("{tag}");
    }
}

/// Builds minik's default image (no Kubernetes) under `tag`; used by `start` on first use.
pub async fn build_default(ctx: &Context, docker: &DockerDriver, tag: &str) -> anyhow::Result<()> {
    let plan = BuildPlan {
        tag: tag.to_string(),
        kubernetes_version: "none".into(),
        base_image: "debian:trixie-slim".into(),
        containerd_source: ContainerdSource::Debian,
    };
    build_plan(ctx, docker, &plan).await
}

async fn build_plan(ctx: &Context, docker: &DockerDriver, plan: &BuildPlan) -> anyhow::Result<()> {
    let context = node_image::context_tar(&[])?;
    let mut step = ctx
        .reporter
        .step("build-image", format!("Building node image {}", plan.tag));
    let plain = ctx.reporter.mode() == Mode::Plain;
    let mut last_lines: Vec<String> = Vec::new();
    let result = docker
        .build_image(context, &plan.tag, plan.build_args(), |line: &str| {
            let line = line.trim_end();
            if line.starts_with("Step ") {
                if plain {
                    ctx.reporter.info(&format!("  {line}"));
                }
                step.set_title(format!(
                    "Building node image {} ({})",
                    plan.tag,
                    line.split(" : ").next().unwrap_or(line)
                ));
            }
            ctx.reporter.detail(line);
            last_lines.push(line.to_string());
            if last_lines.len() > 20 {
                last_lines.remove(0);
            }
        })
        .await;
    match result {
        Ok(()) => {
            step.done();
            Ok(())
        }
        Err(e) => {
            step.fail(&e.to_string());
            let msg = e.to_string();
            let advice = if msg.contains(&plan.base_image)
                || msg.contains("pull access")
                || msg.contains("manifest")
            {
                format!(
                    "The base image {} could not be found or pulled. Without registry access, create it locally (see tests/make-base-image.sh).",
                    plan.base_image
                )
            } else {
                format!("The build's last output:\n{}", last_lines.join("\n"))
            };
            Err(fail_with(
                &DRV_IMAGE,
                format!("building node image {} failed: {msg}", plan.tag),
                advice,
            ))
        }
    }
}
