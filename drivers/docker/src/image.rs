//! Image helpers the CLI needs besides the node lifecycle: does an image exist, build one,
//! export one (for loading it into nodes).

use crate::engine::{ContainerEngine, message_of, status_of};
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use minik_driver_api::DriverError;
use std::collections::{HashMap, VecDeque};
use tokio::io::AsyncRead;

/// How many lines of build output are kept to explain a failure.
const RECENT_LINES: usize = 8;

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
        let not_found = || DriverError::ImageNotFound {
            engine: self.flavor().name.to_string(),
            image: name.to_string(),
        };
        match docker.inspect_image(name).await {
            Ok(image) => image.id.filter(|id| !id.is_empty()).ok_or_else(not_found),
            Err(e) if status_of(&e) == Some(404) => Err(not_found()),
            Err(e) => Err(self.error(format!("inspect image {name}"), e)),
        }
    }

    /// Builds `Dockerfile` of the build context `context_tar` (an uncompressed tar) with the
    /// classic builder and tags the result `tag`. Every line of build output is passed to
    /// `on_line` as it arrives (terminal colours removed). A failed build is a
    /// [`DriverError::Engine`] whose detail is the engine's error plus the last output line that
    /// says more than the error itself.
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
        let mut stream =
            docker.build_image(options, None, Some(bollard::body_full(context_tar.into())));
        let mut lines = LineSplitter::default();
        // The last few lines of the build's own output: the one that explains a failure is
        // usually among them (stdout and stderr of a step interleave in any order).
        let mut recent: VecDeque<String> = VecDeque::with_capacity(RECENT_LINES);
        let mut emit = |line: &str, recent: &mut VecDeque<String>| {
            let line = strip_ansi(line);
            if !line.trim().is_empty() && !is_builder_chatter(&line) {
                if recent.len() == RECENT_LINES {
                    recent.pop_front();
                }
                recent.push_back(line.trim().to_string());
            }
            on_line(&line);
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for line in lines.push(&text) {
                            emit(&line, &mut recent);
                        }
                    }
                    if let Some(status) = info.status {
                        emit(&status, &mut recent);
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    if let Some(rest) = lines.finish() {
                        emit(&rest, &mut recent);
                    }
                    let error = error.trim().to_string();
                    // The step's command is part of the error; a line that only echoes it adds nothing.
                    let detail = match recent.iter().rev().find(|l| !error.contains(l.as_str())) {
                        Some(line) => format!("{error} (last output: {line})"),
                        None => error,
                    };
                    return Err(DriverError::engine(op, detail));
                }
                Err(e) if status_of(&e).is_some() => {
                    return Err(DriverError::engine(op, message_of(&e)));
                }
                Err(e) => return Err(self.error(op, e)),
            }
        }
        if let Some(rest) = lines.finish() {
            emit(&rest, &mut recent);
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
                Err(e) => {
                    return Err(DriverError::engine(
                        format!("inspect image {name}"),
                        message_of(&e),
                    ));
                }
            };
            if image_missing {
                return Err(DriverError::ImageNotFound {
                    engine: engine_name,
                    image: name,
                });
            }
            let op = format!("save image {name}");
            Ok(docker.export_image(&name).map_err(move |e| match e {
                BollardError::DockerResponseServerError { message, .. } => {
                    DriverError::engine(op.clone(), message)
                }
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

/// Lines the classic builder adds around a step's own output.
fn is_builder_chatter(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("---> ")
        || line.starts_with("Step ")
        || line.starts_with("Removing intermediate container")
        || line.starts_with("Successfully ")
}

/// `line` without terminal escape sequences (the classic builder colours a step's stderr).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
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
        assert_eq!(
            s.push("OM x\n ---> abc\r\npart"),
            vec!["Step 1/2 : FROM x", " ---> abc"]
        );
        assert_eq!(s.finish().as_deref(), Some("part"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn strips_colours_and_spots_chatter() {
        assert_eq!(strip_ansi("\u{1b}[91mE: broken\u{1b}[0m"), "E: broken");
        assert_eq!(strip_ansi("plain"), "plain");
        assert!(is_builder_chatter(" ---> Running in 123"));
        assert!(is_builder_chatter("Removing intermediate container 123"));
        assert!(!is_builder_chatter("E: Unable to locate package x"));
    }
}
