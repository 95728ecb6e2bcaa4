//! Errors a driver reports. The CLI maps each variant to a reason id and an exit code.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DriverError {
    /// The engine's client library, socket or binary is not there at all.
    #[error("{engine} is not installed or its socket {endpoint} does not exist")]
    EngineNotFound { engine: String, endpoint: String },

    /// The engine is installed but does not answer.
    #[error("cannot reach {engine} at {endpoint}: {detail}")]
    EngineUnreachable {
        engine: String,
        endpoint: String,
        detail: String,
    },

    /// The node image is not in the engine's store.
    #[error("node image {image} is not present in {engine}")]
    ImageNotFound { engine: String, image: String },

    /// A node name the engine does not know.
    #[error("node {node} does not exist")]
    NodeNotFound { node: String },

    /// An operation needs a running node.
    #[error("node {node} is {state}, not running")]
    NodeNotRunning { node: String, state: String },

    /// A resource with the name minik wants exists but does not belong to this profile.
    #[error("{kind} {name} already exists and was not created by minik for this profile")]
    NameConflict { kind: String, name: String },

    /// A command could not be executed in the node (not: the command failed).
    #[error("cannot run a command in node {node}: {detail}")]
    Exec { node: String, detail: String },

    /// Waiting for something took too long.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },

    /// Any other refusal by the engine, with the operation that failed.
    #[error("{op} failed: {detail}")]
    Engine { op: String, detail: String },

    /// Local I/O (files under MINIK_HOME, sockets, keys).
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

impl DriverError {
    /// Shorthand for [`DriverError::Engine`].
    pub fn engine(op: impl Into<String>, detail: impl ToString) -> Self {
        DriverError::Engine {
            op: op.into(),
            detail: detail.to_string(),
        }
    }

    /// Shorthand for [`DriverError::Io`].
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        DriverError::Io {
            op: op.into(),
            source,
        }
    }
}
