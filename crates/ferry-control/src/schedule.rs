//! Cron schedules (Quartz syntax, as Airbyte's: `0 0 * * * ?`, seconds first, `?` allowed)
//! and the scheduler that starts their syncs.

use std::str::FromStr;
use std::time::Duration;

use ferry_api::JobType;
use ferry_store::now_millis;

use crate::AppState;
use crate::services::jobs;

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

/// A schedule that cannot run, with the request field at fault.
#[derive(Debug)]
pub struct ScheduleError {
    pub field: &'static str,
    pub message: String,
}

/// How long a `basic` schedule waits between runs: Airbyte's `basicTiming` text, such as
/// `Every 24 hours` (minutes, hours, days, weeks or months of 30 days).
pub fn basic_interval(timing: &str) -> Result<i64, String> {
    let words: Vec<String> = timing.split_whitespace().map(str::to_lowercase).collect();
    let words: Vec<&str> = match words.first().map(String::as_str) {
        Some("every") => words[1..].iter().map(String::as_str).collect(),
        _ => words.iter().map(String::as_str).collect(),
    };
    let [count, unit] = words.as_slice() else {
        return Err(format!("'{timing}' is not like 'Every 24 hours'"));
    };
    let count: i64 = count
        .parse()
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| format!("'{count}' is not a positive whole number"))?;
    let unit_ms: i64 = match unit.trim_end_matches('s') {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => 7 * 86_400_000,
        "month" => 30 * 86_400_000,
        other => {
            return Err(format!(
                "unknown unit '{other}' (minutes, hours, days, weeks or months)"
            ));
        }
    };
    count
        .checked_mul(unit_ms)
        .ok_or_else(|| "the interval is too long".to_owned())
}

/// When a schedule next runs after `after` (epoch ms): `None` for a manual one.
pub fn next_after(
    schedule: &ferry_api::ConnectionSchedule,
    after: i64,
) -> Result<Option<i64>, ScheduleError> {
    match schedule.schedule_type.as_str() {
        "manual" => Ok(None),
        "cron" => {
            let expression = schedule.cron_expression.as_deref().ok_or(ScheduleError {
                field: "schedule.cronExpression",
                message: "is required for a cron schedule".to_owned(),
            })?;
            next_run(expression, after).map_err(|error| ScheduleError {
                field: "schedule.cronExpression",
                message: format!("'{expression}': {error}"),
            })
        }
        "basic" => {
            let timing = schedule.basic_timing.as_deref().ok_or(ScheduleError {
                field: "schedule.basicTiming",
                message: "is required for a basic schedule (e.g. 'Every 24 hours')".to_owned(),
            })?;
            let interval = basic_interval(timing).map_err(|message| ScheduleError {
                field: "schedule.basicTiming",
                message,
            })?;
            Ok(after.checked_add(interval))
        }
        other => Err(ScheduleError {
            field: "schedule.scheduleType",
            message: format!("must be manual, cron or basic, got '{other}'"),
        }),
    }
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
    for (connection_id, due) in state.store.due_connections(now).await? {
        let connection = match state.store.connection(connection_id).await {
            Ok(connection) => connection,
            Err(error @ ferry_store::StoreError::Corrupt { .. }) => {
                // It cannot run until repaired: its schedule stops (logged once, here), the
                // other connections' go on.
                tracing::error!(%connection_id, %error, "scheduled sync not started; schedule suspended");
                state
                    .store
                    .advance_next_run(connection_id, due, None)
                    .await?;
                continue;
            }
            Err(error) => return Err(error),
        };
        let next = next_after(&connection.schedule, now).ok().flatten();
        if !state
            .store
            .advance_next_run(connection.id, due, next)
            .await?
        {
            continue;
        }
        match jobs::start_job(state, &connection, JobType::Sync).await {
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
        assert_eq!(basic_interval("Every 24 hours").unwrap(), 86_400_000);
        assert_eq!(basic_interval("every 1 MINUTE").unwrap(), 60_000);
        assert_eq!(basic_interval("2 weeks").unwrap(), 14 * 86_400_000);
        assert!(basic_interval("Every 0 hours").is_err());
        assert!(basic_interval("Every 3 fortnights").is_err());
        assert!(basic_interval("hourly").is_err());
    }
}
