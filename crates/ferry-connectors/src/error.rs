use ferry_protocol::ConnectorRole;
use ferry_protocol::failure::FailureType;

use crate::config::ConfigError;

/// How a connector failed. Each kind says whether another attempt may do better
/// ([`ConnectorError::failure_type`]): a wrong password or a missing column will not.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(#[from] ConfigError),
    #[error("no native {role} connector of type '{connector_type}'")]
    UnknownConnector {
        role: ConnectorRole,
        connector_type: String,
    },
    /// The other end of the pipe went away (cancellation, or the other side failed): a
    /// consequence, never the cause of a failure.
    #[error("the pipe closed")]
    PipeClosed,
    /// What the connector was pointed at is wrong (database, schema, table, column,
    /// credentials, a file that is not there): the user's to fix.
    #[error("{0}")]
    Config(String),
    /// The network or the other system failed for now (refused, reset, timed out).
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Failed(String),
    /// An external connector's ERROR trace, with the type it gave.
    #[error("{message}")]
    Traced {
        message: String,
        failure_type: FailureType,
    },
}

impl ConnectorError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidConfiguration(ConfigError::new(field, message))
    }

    pub fn failure_type(&self) -> FailureType {
        match self {
            Self::InvalidConfiguration(_) | Self::UnknownConnector { .. } | Self::Config(_) => {
                FailureType::ConfigError
            }
            Self::Transient(_) => FailureType::TransientError,
            Self::PipeClosed | Self::Failed(_) => FailureType::SystemError,
            Self::Traced { failure_type, .. } => *failure_type,
        }
    }

    /// Whether this is only the echo of the other side's failure.
    pub fn is_pipe_closed(&self) -> bool {
        matches!(self, Self::PipeClosed)
    }
}
