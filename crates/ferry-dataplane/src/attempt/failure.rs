//! Why an attempt failed: the first real error of whichever side failed first, with where
//! it came from and its kind. When one side fails, the other usually sees only the pipe
//! close; that echo is never the cause.

use ferry_connectors::ConnectorError;
use ferry_protocol::failure::{FailureOrigin, FailureType};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) origin: FailureOrigin,
    pub(super) failure_type: FailureType,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(
        origin: FailureOrigin,
        failure_type: FailureType,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin,
            failure_type,
            message: message.into(),
        }
    }

    /// A connector's error, as `"<origin>: <message>"`.
    pub(super) fn of(origin: FailureOrigin, error: &ConnectorError) -> Self {
        Self::new(origin, error.failure_type(), format!("{origin}: {error}"))
    }

    /// Ferry's own side failed (the control plane unreachable, a thread not started).
    pub(super) fn platform(message: impl Into<String>) -> Self {
        Self::new(
            FailureOrigin::AirbytePlatform,
            FailureType::SystemError,
            message,
        )
    }
}

/// How one side of the pipe ended: its error, with when it happened.
pub(super) type SideOutcome = Result<(), (Instant, ConnectorError)>;

/// The cause of a pipe's failure, if it failed.
pub(super) fn cause(source: &SideOutcome, destination: &SideOutcome) -> Option<Failure> {
    let real = |outcome: &SideOutcome, origin| match outcome {
        Err((at, error)) if !error.is_pipe_closed() => Some((*at, Failure::of(origin, error))),
        _ => None,
    };
    let from_source = real(source, FailureOrigin::Source);
    let from_destination = real(destination, FailureOrigin::Destination);
    match (from_source, from_destination) {
        (Some((source_at, source)), Some((destination_at, destination))) => {
            Some(if destination_at < source_at {
                destination
            } else {
                source
            })
        }
        (Some((_, failure)), None) | (None, Some((_, failure))) => Some(failure),
        // Only echoes: one side hung up without saying why.
        (None, None) => match (source, destination) {
            (Ok(()), Ok(())) => None,
            (Err(_), _) => Some(Failure::new(
                FailureOrigin::Destination,
                FailureType::SystemError,
                "destination: it stopped reading before the source was done",
            )),
            (Ok(()), Err(_)) => Some(Failure::new(
                FailureOrigin::Source,
                FailureType::SystemError,
                "source: it stopped before the destination was done",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn failed(after_ms: u64, error: ConnectorError) -> SideOutcome {
        Err((
            Instant::now() + std::time::Duration::from_millis(after_ms),
            error,
        ))
    }

    #[test]
    fn the_cause_is_the_real_error_not_the_closed_pipe() {
        let column = || ConnectorError::Config("column \"idd\" does not exist".to_owned());
        let failure = cause(&failed(5, ConnectorError::PipeClosed), &failed(0, column())).unwrap();
        assert_eq!(failure.origin, FailureOrigin::Destination);
        assert_eq!(failure.failure_type, FailureType::ConfigError);
        assert_eq!(
            failure.message,
            "destination: column \"idd\" does not exist"
        );

        let refused = ConnectorError::Transient("connection refused".to_owned());
        let failure = cause(&failed(0, refused), &Ok(())).unwrap();
        assert_eq!(failure.origin, FailureOrigin::Source);
        assert_eq!(failure.failure_type, FailureType::TransientError);

        // Both failed for real: the first one.
        let failure = cause(
            &failed(9, ConnectorError::Failed("late".to_owned())),
            &failed(1, ConnectorError::Failed("early".to_owned())),
        )
        .unwrap();
        assert_eq!(failure.message, "destination: early");

        assert_eq!(cause(&Ok(()), &Ok(())), None);
        let hung_up = cause(&failed(0, ConnectorError::PipeClosed), &Ok(())).unwrap();
        assert_eq!(hung_up.origin, FailureOrigin::Destination);
    }
}
