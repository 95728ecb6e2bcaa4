//! [`SshRunner`]: commands in a node VM over SSH.

use super::host::node_state;
use crate::layout::{Layout, NodeConfig};
use crate::ssh::{self, SshTarget};
use minik_driver_api::{DriverError, ExecRequest, HostState, Runner, copy_by_exec, read_by_exec};
use tokio::io::AsyncWrite;

/// Runs commands in one node VM over SSH (see [`crate::ssh`]). Commands need the VM running:
/// a stopped, killed or paused VM gives [`DriverError::NodeNotRunning`] at once (checked
/// through QMP, so a paused VM never leaves ssh waiting); a missing one
/// [`DriverError::NodeNotFound`].
#[derive(Debug, Clone)]
pub struct SshRunner {
    pub(super) layout: Layout,
    pub(super) node: String,
}

impl SshRunner {
    async fn target(&self) -> Result<SshTarget, DriverError> {
        let not_found = || DriverError::NodeNotFound {
            node: self.node.clone(),
        };
        let (profile, nf) = self.layout.find_node(&self.node)?.ok_or_else(not_found)?;
        let config = NodeConfig::load(&nf.config())?.ok_or_else(not_found)?;
        let (state, _) = node_state(&nf).await;
        if state != HostState::Running {
            return Err(DriverError::NodeNotRunning {
                node: self.node.clone(),
                state: state.to_string(),
            });
        }
        Ok(SshTarget {
            node: self.node.clone(),
            port: config.ssh_port,
            key: self.layout.profile(&profile).key(),
            known_hosts: nf.known_hosts(),
        })
    }

    async fn exec_inner(
        &self,
        request: ExecRequest,
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<i64, DriverError> {
        let remote = ssh::remote_command(&request).map_err(|detail| DriverError::Exec {
            node: self.node.clone(),
            detail,
        })?;
        let target = self.target().await?;
        let log = tempfile::Builder::new()
            .prefix("minik-ssh-")
            .tempfile()
            .map_err(|e| DriverError::io("create the ssh log file", e))?;
        let args = ssh::ssh_args(&target, request.tty, log.path());
        ssh::run(
            &self.node,
            args,
            log.path(),
            remote,
            request.stdin,
            stdout,
            stderr,
        )
        .await
    }
}

impl Runner for SshRunner {
    fn node(&self) -> &str {
        &self.node
    }

    fn exec_streaming<'a>(
        &'a self,
        request: ExecRequest,
        stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
        stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> impl std::future::Future<Output = Result<i64, DriverError>> + Send + 'a {
        self.exec_inner(request, stdout, stderr)
    }

    /// Writes the file with `sh` over SSH ([`copy_by_exec`]): never half a file.
    async fn copy_to(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), DriverError> {
        copy_by_exec(self, path, contents, mode).await
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        read_by_exec(self, path).await
    }
}
