//! Why something failed, in Airbyte's words: where the failure came from (`FailureOrigin`
//! of Airbyte's API) and what kind it is (`failureType`; the protocol's ERROR traces carry
//! the first three). A `config_error` is the user's to fix: retrying it cannot succeed, so
//! the control plane does not (Airbyte's rule).

use serde::{Deserialize, Serialize};

/// Where a failure originated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureOrigin {
    Source,
    Destination,
    /// Between the two: the pipe, the catalog, the state.
    Replication,
    /// The control plane's store.
    Persistence,
    AirbytePlatform,
    #[serde(other)]
    Unknown,
}

/// What kind of failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    /// The configuration is wrong (bad password, missing database or column): not retried.
    ConfigError,
    SystemError,
    /// A network blip, a refused connection, a timeout: retried.
    TransientError,
    ManualCancellation,
    HeartbeatTimeout,
    DestinationTimeout,
    RefreshSchema,
    #[serde(other)]
    Unknown,
}

impl FailureOrigin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
            Self::Replication => "replication",
            Self::Persistence => "persistence",
            Self::AirbytePlatform => "airbyte_platform",
            Self::Unknown => "unknown",
        }
    }

    /// The origin named by `text` (as stored); anything else is `Unknown`.
    pub fn parse(text: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).unwrap_or(Self::Unknown)
    }
}

impl FailureType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfigError => "config_error",
            Self::SystemError => "system_error",
            Self::TransientError => "transient_error",
            Self::ManualCancellation => "manual_cancellation",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::DestinationTimeout => "destination_timeout",
            Self::RefreshSchema => "refresh_schema",
            Self::Unknown => "unknown",
        }
    }

    /// The type named by `text` (as stored or in a connector's trace); anything else is
    /// `Unknown`.
    pub fn parse(text: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).unwrap_or(Self::Unknown)
    }

    /// Whether another attempt may succeed where this one failed.
    pub const fn is_retryable(self) -> bool {
        !matches!(self, Self::ConfigError | Self::ManualCancellation)
    }
}

impl std::fmt::Display for FailureOrigin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::fmt::Display for FailureType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_unknown() {
        for kind in [
            FailureType::ConfigError,
            FailureType::SystemError,
            FailureType::TransientError,
            FailureType::ManualCancellation,
            FailureType::HeartbeatTimeout,
            FailureType::DestinationTimeout,
            FailureType::RefreshSchema,
        ] {
            assert_eq!(FailureType::parse(kind.as_str()), kind);
        }
        for origin in [
            FailureOrigin::Source,
            FailureOrigin::Destination,
            FailureOrigin::Replication,
            FailureOrigin::Persistence,
            FailureOrigin::AirbytePlatform,
        ] {
            assert_eq!(FailureOrigin::parse(origin.as_str()), origin);
        }
        assert_eq!(FailureType::parse("nope"), FailureType::Unknown);
        assert_eq!(FailureOrigin::parse(""), FailureOrigin::Unknown);
        assert!(!FailureType::ConfigError.is_retryable());
        assert!(FailureType::TransientError.is_retryable());
    }
}
