//! minik's docker driver: each node is a container on a Docker-API engine, reached with bollard.
//!
//! - [`DockerDriver`] implements [`minik_driver_api::Driver`] (node lifecycle, listing, delete by
//!   label) plus image helpers the CLI needs ([`DockerDriver::image_exists`],
//!   [`DockerDriver::build_image`], [`DockerDriver::save_image`], ...).
//! - [`DockerRunner`] implements [`minik_driver_api::Runner`] over the exec and archive APIs.
//! - [`ContainerEngine`] + [`Flavor`] hold the client and the engine's quirks, so a driver for
//!   another engine with a Docker-compatible API (podman) reuses all of the above:
//!   `DockerDriver::with_engine(client, endpoint, podman_flavor)`.
//!
//! Environment: `DOCKER_HOST` (`unix://` or `tcp://`, default `/var/run/docker.sock`) and
//! `MINIK_DOCKER_SECURITY` (`privileged`, `capabilities` or `auto`; see [`SecurityMode`]).

#![warn(missing_docs)]

pub mod context;
mod driver;
mod engine;
mod image;
pub mod network;
mod runner;
mod security;
mod state;

pub use driver::DockerDriver;
pub use engine::{
    CONNECT_TIMEOUT, ContainerEngine, DEFAULT_DOCKER_HOST, Flavor, REQUEST_TIMEOUT, connect_host,
    connect_host_at, docker_host, docker_host_from,
};
pub use runner::DockerRunner;
pub use security::SecurityMode;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use minik_driver_api::{DriverError, labels};
use std::collections::HashMap;
use tokio::io::AsyncRead;

impl DockerDriver {
    /// Whether the engine has image `name` locally (never pulls).
    pub async fn image_exists(&self, name: &str) -> Result<bool, DriverError> {
        self.engine().image_exists(name).await
    }

    /// The id (`sha256:...`) of local image `name`; [`DriverError::ImageNotFound`] if absent.
    pub async fn image_id(&self, name: &str) -> Result<String, DriverError> {
        self.engine().image_id(name).await
    }

    /// Builds the `Dockerfile` in `context_tar` (classic builder) as `tag`, passing each output
    /// line to `on_line`. See [`ContainerEngine::build_image`].
    pub async fn build_image<F>(
        &self,
        context_tar: Vec<u8>,
        tag: &str,
        build_args: HashMap<String, String>,
        on_line: F,
    ) -> Result<(), DriverError>
    where
        F: FnMut(&str) + Send,
    {
        self.engine()
            .build_image(context_tar, tag, build_args, on_line)
            .await
    }

    /// Image `name` as a `docker save` tar stream ([`DriverError::ImageNotFound`] first if absent).
    pub fn save_image(&self, name: &str) -> BoxStream<'static, Result<Bytes, DriverError>> {
        self.engine().save_image(name)
    }

    /// [`Self::save_image`] as an [`AsyncRead`], ready for a command's stdin.
    pub fn save_image_reader(&self, name: &str) -> impl AsyncRead + Send + Unpin + 'static + use<> {
        self.engine().save_image_reader(name)
    }
}

/// Whether `labels` mark a resource as minik's and of `profile`.
pub(crate) fn labels_match(labels: Option<&HashMap<String, String>>, profile: &str) -> bool {
    labels.is_some_and(|l| {
        l.get(labels::CREATED_BY).map(String::as_str) == Some("true")
            && l.get(labels::PROFILE).map(String::as_str) == Some(profile)
    })
}

/// An engine list filter for minik's resources (of one profile, or of all).
pub(crate) fn profile_filter(profile: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut wanted = vec![format!("{}=true", labels::CREATED_BY)];
    if let Some(p) = profile {
        wanted.push(format!("{}={p}", labels::PROFILE));
    }
    HashMap::from([("label".to_string(), wanted)])
}
