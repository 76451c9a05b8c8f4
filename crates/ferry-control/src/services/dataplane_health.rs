//! A data plane's health, from the age of its last heartbeat.

use std::time::Duration;

use ferry_api::DataplaneHealth;
use ferry_store::{Dataplane, now_millis};

use crate::ControlConfig;

/// Health from the heartbeat's age: healthy up to `degraded_after`, degraded up to
/// `unhealthy_after`, unhealthy past it; unknown before the first heartbeat.
pub fn health(
    last_heartbeat_at: Option<i64>,
    now: i64,
    degraded_after: Duration,
    unhealthy_after: Duration,
) -> DataplaneHealth {
    let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    match last_heartbeat_at {
        None => DataplaneHealth::Unknown,
        Some(at) if now - at <= millis(degraded_after) => DataplaneHealth::Healthy,
        Some(at) if now - at <= millis(unhealthy_after) => DataplaneHealth::Degraded,
        Some(_) => DataplaneHealth::Unhealthy,
    }
}

/// The data plane's health now, with the thresholds of `config`.
pub fn status(config: &ControlConfig, dataplane: &Dataplane) -> DataplaneHealth {
    health(
        dataplane.last_heartbeat_at,
        now_millis(),
        config.dataplane_degraded_after,
        config.dataplane_unhealthy_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_heartbeat_age() {
        let now = 10_000_000;
        let at = |age: Option<i64>| {
            health(
                age.map(|age| now - age),
                now,
                Duration::from_secs(60),
                Duration::from_secs(300),
            )
        };
        assert_eq!(at(None), DataplaneHealth::Unknown);
        assert_eq!(at(Some(60_000)), DataplaneHealth::Healthy);
        assert_eq!(at(Some(60_001)), DataplaneHealth::Degraded);
        assert_eq!(at(Some(300_000)), DataplaneHealth::Degraded);
        assert_eq!(at(Some(300_001)), DataplaneHealth::Unhealthy);
    }
}
