//! Cron schedules (Quartz syntax, as Airbyte's: `0 0 * * * ?`, seconds first, `?` allowed)
//! and the scheduler that starts their syncs.

use std::str::FromStr;
use std::time::Duration;

use ferry_store::now_millis;

use crate::AppState;

/// When a cron expression next fires after `after` (epoch ms, UTC).
pub fn next_run(expression: &str, after: i64) -> Result<Option<i64>, String> {
    let schedule =
        cron::Schedule::from_str(expression.trim()).map_err(|error| error.to_string())?;
    let after = chrono::DateTime::from_timestamp_millis(after).ok_or("time out of range")?;
    Ok(schedule
        .after(&after)
        .next()
        .map(|next| next.timestamp_millis()))
}

/// Every second: starts the sync of each active connection whose cron run is due, and moves
/// its next run on (compare-and-set, so with several replicas each run starts once).
pub fn spawn_scheduler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = run_due(&state).await {
                tracing::error!(%error, "scheduling due syncs failed");
            }
        }
    })
}

async fn run_due(state: &AppState) -> Result<(), ferry_store::StoreError> {
    let now = now_millis();
    for (connection, due) in state.store.due_connections(now).await? {
        let schedule: serde_json::Value =
            serde_json::from_str(&connection.schedule).unwrap_or_default();
        let next = schedule["cronExpression"]
            .as_str()
            .and_then(|expression| next_run(expression, now).ok().flatten());
        if !state
            .store
            .advance_next_run(connection.id, due, next)
            .await?
        {
            continue;
        }
        match crate::routes::jobs::start_job(state, &connection, "sync").await {
            Ok(job) => {
                tracing::info!(connection_id = %connection.id, job_id = job.id, "scheduled sync started")
            }
            Err(error) => {
                tracing::warn!(connection_id = %connection.id, %error, "scheduled sync not started")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quartz_expressions_fire_when_expected() {
        // 2026-05-01T12:34:56Z
        let start = 1_777_638_896_000;
        let hourly = next_run("0 0 * * * ?", start).unwrap().unwrap();
        assert_eq!(hourly, 1_777_640_400_000); // 13:00:00
        let every_ten_seconds = next_run("*/10 * * * * ?", start).unwrap().unwrap();
        assert_eq!(every_ten_seconds, start + 4_000);
        assert!(next_run("every day", start).is_err());
    }
}
