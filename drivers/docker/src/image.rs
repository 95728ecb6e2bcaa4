//! Image helpers the CLI needs besides the node lifecycle: does an image exist, build one,
//! export one (for loading it into nodes).

use crate::engine::{ContainerEngine, message_of, status_of};
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use minik_driver_api::DriverError;
use std::collections::HashMap;
use tokio::io::AsyncRead;

impl ContainerEngine {
    /// Whether the engine's store has image `name` (never pulls).
    pub async fn image_exists(&self, name: &str) -> Result<bool, DriverError> {
        let docker = self.ready().await?;
        match docker.inspect_image(name).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.error(format!("inspect image {name}"), e)),
        }
    }

    /// The id (`sha256:...`) of image `name`; [`DriverError::ImageNotFound`] if it is not there.
    pub async fn image_id(&self, name: &str) -> Result<String, DriverError> {
        let docker = self.ready().await?;
        let not_found = || DriverError::ImageNotFound { engine: self.flavor().name.to_string(), image: name.to_string() };
        match docker.inspect_image(name).await {
            Ok(image) => image.id.filter(|id| !id.is_empty()).ok_or_else(not_found),
            Err(e) if status_of(&e) == Some(404) => Err(not_found()),
            Err(e) => Err(self.error(format!("inspect image {name}"), e)),
        }
    }

    /// Builds `Dockerfile` of the build context `context_tar` (an uncompressed tar) with the
    /// classic builder and tags the result `tag`. Every line of build output is passed to
    /// `on_line` as it arrives. A failed build is a [`DriverError::Engine`] whose detail is the
    /// engine's error, plus the last output line when that says more.
    pub async fn build_image<F>(
        &self,
        context_tar: Vec<u8>,
        tag: &str,
        build_args: HashMap<String, String>,
        mut on_line: F,
    ) -> Result<(), DriverError>
    where
        F: FnMut(&str) + Send,
    {
        let docker = self.ready().await?;
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&build_args)
            .version(BuilderVersion::BuilderV1)
            .build();
        let op = format!("build image {tag}");
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context_tar.into())));
        let mut lines = LineSplitter::default();
        let mut last_line = String::new();
        let mut emit = |line: &str, last_line: &mut String| {
            if !line.trim().is_empty() {
                line.trim_end().clone_into(last_line);
            }
            on_line(line);
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for line in lines.push(&text) {
                            emit(&line, &mut last_line);
                        }
                    }
                    if let Some(status) = info.status {
                        emit(&status, &mut last_line);
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    if let Some(rest) = lines.finish() {
                        emit(&rest, &mut last_line);
                    }
                    let error = error.trim().to_string();
                    let detail = if last_line.is_empty() || error.contains(last_line.as_str()) {
                        error
                    } else {
                        format!("{error} (last output: {last_line})")
                    };
                    return Err(DriverError::engine(op, detail));
                }
                Err(e) if status_of(&e).is_some() => return Err(DriverError::engine(op, message_of(&e))),
                Err(e) => return Err(self.error(op, e)),
            }
        }
        if let Some(rest) = lines.finish() {
            emit(&rest, &mut last_line);
        }
        Ok(())
    }

    /// The image as a `docker save` tar stream, read as it is needed (not buffered whole).
    pub fn save_image(&self, name: &str) -> BoxStream<'static, Result<Bytes, DriverError>> {
        let docker = self.docker().clone();
        let name = name.to_string();
        let engine_name = self.flavor().name.to_string();
        let endpoint = self.endpoint().to_string();
        let stream = futures_util::stream::once(async move {
            // export_image's stream only reports a missing image once read; check first so the
            // caller gets a clear error before starting a consumer.
            let image_missing = match docker.inspect_image(&name).await {
                Ok(_) => false,
                Err(e) if status_of(&e) == Some(404) => true,
                Err(e) => return Err(DriverError::engine(format!("inspect image {name}"), message_of(&e))),
            };
            if image_missing {
                return Err(DriverError::ImageNotFound { engine: engine_name, image: name });
            }
            let op = format!("save image {name}");
            Ok(docker.export_image(&name).map_err(move |e| match e {
                BollardError::DockerResponseServerError { message, .. } => DriverError::engine(op.clone(), message),
                e => DriverError::EngineUnreachable {
                    engine: engine_name.clone(),
                    endpoint: endpoint.clone(),
                    detail: format!("{op}: {e}"),
                },
            }))
        })
        .try_flatten();
        stream.boxed()
    }

    /// [`Self::save_image`] as a reader, e.g. for [`minik_driver_api::StdinSource::Stream`].
    pub fn save_image_reader(&self, name: &str) -> impl AsyncRead + Send + Unpin + 'static + use<> {
        tokio_util::io::StreamReader::new(self.save_image(name).map_err(std::io::Error::other))
    }
}

/// Splits streamed text into whole lines, keeping a partial last line until it is completed.
#[derive(Default)]
struct LineSplitter {
    pending: String,
}

impl LineSplitter {
    /// Adds text; returns the lines it completed (without their newline).
    fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut lines = Vec::new();
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        lines
    }

    /// The unterminated rest, if any.
    fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_chunks() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push("Step 1/2 : FR"), Vec::<String>::new());
        assert_eq!(s.push("OM x\n ---> abc\r\npart"), vec!["Step 1/2 : FROM x", " ---> abc"]);
        assert_eq!(s.finish().as_deref(), Some("part"));
        assert_eq!(s.finish(), None);
    }
}
