//! Connector secrets kept in an external secrets manager that the control plane and the data
//! planes share (Airbyte's `secretsManager`): AWS Secrets Manager ([`aws`]) or HashiCorp
//! Vault / OpenBao's KV v2 engine ([`vault`]).
//!
//! The control plane writes each secret value of a configuration to the manager under a
//! coordinate and stores a reference in its place (`{"_secret": "<coordinate>"}`, Airbyte's
//! shape, [`references`]); a data plane resolves the references itself, so a secret never
//! crosses the channel between the planes. This crate knows neither plane: only the
//! managers and the references.

pub mod aws;
pub mod references;
mod tls;
pub mod vault;

use std::time::Duration;

/// Longest a call to a manager takes, connecting included: every wait has a bound.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The manager's settings are incomplete or wrong (before any call).
    #[error("{0}")]
    Config(String),
    /// The manager refused the credentials (or their permissions).
    #[error("{manager} refused the credentials: {message}")]
    Unauthorized {
        manager: &'static str,
        message: String,
    },
    #[error("{manager} cannot be reached at {endpoint}: {message}")]
    Unreachable {
        manager: &'static str,
        endpoint: String,
        message: String,
    },
    #[error("{manager} holds no secret '{coordinate}'")]
    NotFound {
        manager: &'static str,
        coordinate: String,
    },
    /// Any other refusal, with the manager's own words.
    #[error("{manager} answered {status}: {message}")]
    Refused {
        manager: &'static str,
        status: u16,
        message: String,
    },
    /// A configuration holds references to secrets but no manager is configured to read them.
    #[error(
        "the configuration refers to secrets in a secrets manager ({coordinate}), but none is configured here: give this process the control plane's secretsManager settings"
    )]
    NoManager { coordinate: String },
    #[error("a secret reference is malformed at {0}")]
    BadReference(String),
}

pub type Result<T> = std::result::Result<T, SecretsError>;

/// One configured secrets manager.
#[derive(Debug, Clone)]
pub enum SecretsManager {
    Aws(aws::AwsSecretsManager),
    Vault(vault::VaultKv),
}

impl SecretsManager {
    /// Its name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Aws(_) => aws::NAME,
            Self::Vault(_) => vault::NAME,
        }
    }

    /// Checks, once at start, that the manager answers and takes the credentials, so that a
    /// wrong one stops the process at once rather than failing every sync later.
    pub async fn verify(&self) -> Result<()> {
        match self {
            Self::Aws(manager) => manager.verify().await,
            Self::Vault(manager) => manager.verify().await,
        }
    }

    /// Writes `value` under `coordinate`, replacing what was there.
    pub async fn write(&self, coordinate: &str, value: &str) -> Result<()> {
        ours(coordinate)?;
        match self {
            Self::Aws(manager) => manager.write(coordinate, value).await,
            Self::Vault(manager) => manager.write(coordinate, value).await,
        }
    }

    pub async fn read(&self, coordinate: &str) -> Result<String> {
        ours(coordinate)?;
        match self {
            Self::Aws(manager) => manager.read(coordinate).await,
            Self::Vault(manager) => manager.read(coordinate).await,
        }
    }

    /// Deletes the secret for good (every version); a secret already gone is no error.
    pub async fn delete(&self, coordinate: &str) -> Result<()> {
        ours(coordinate)?;
        match self {
            Self::Aws(manager) => manager.delete(coordinate).await,
            Self::Vault(manager) => manager.delete(coordinate).await,
        }
    }
}

/// Only secrets in the shape Ferry writes are read, written or deleted: a reference planted
/// in a stored configuration must not reach (or, on the source's deletion, delete) a secret
/// of another application that the manager's credentials happen to reach.
fn ours(coordinate: &str) -> Result<()> {
    if references::is_valid_coordinate(coordinate) {
        Ok(())
    } else {
        Err(SecretsError::BadReference(coordinate.to_owned()))
    }
}

/// A transport error in one line: its source chain (refused, DNS, TLS), not reqwest's
/// wrapper alone.
fn transport(manager: &'static str, endpoint: &str, error: &reqwest::Error) -> SecretsError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    SecretsError::Unreachable {
        manager,
        endpoint: endpoint.to_owned(),
        message,
    }
}
