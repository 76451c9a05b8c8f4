//! An attempt at a job, fenced by its id: lease renewals and expiry, progress, state
//! commits and the attempt's end (retried, or the job's end); and the per-connection state
//! the attempts commit.

use ferry_api::{AttemptStatus, FailureOrigin, FailureType, JobStatus, StreamStats};
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::{Columns, to_json};
use crate::{
    Attempt, Job, LeaseRenewal, Result, RetryPolicy, Store, StoreError, StoredState, now_millis,
};

/// The job still wants its current attempt's work: running, or cancelled by the user with
/// the attempt not yet stopped (what it made durable meanwhile is still worth keeping).
fn live_attempt() -> String {
    format!(
        "(status = '{}' OR (status = '{}' AND cancel_requested = 1))",
        JobStatus::Running,
        JobStatus::Cancelled
    )
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt> {
    let columns = Columns::of("attempts", row);
    Ok(Attempt {
        id: columns.uuid("id")?,
        job_id: columns.get("job_id")?,
        attempt_number: columns.get("attempt_number")?,
        region_id: columns.uuid("region_id")?,
        dataplane_id: columns.uuid("dataplane_id")?,
        status: columns.name("status")?,
        failure_reason: columns.get("failure_reason")?,
        failure_origin: columns.optional_name("failure_origin")?,
        failure_type: columns.optional_name("failure_type")?,
        rows_synced: columns.get("rows_synced")?,
        bytes_synced: columns.get("bytes_synced")?,
        stream_stats: columns.json("stream_stats")?,
        created_at: columns.get("created_at")?,
        ended_at: columns.get("ended_at")?,
    })
}

fn fenced(job_id: i64, attempt_id: Uuid) -> StoreError {
    StoreError::Fenced(format!(
        "attempt {attempt_id} is no longer the running attempt of job {job_id}"
    ))
}

/// How an attempt ended, as its data plane reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    Cancelled,
}

/// Why an attempt failed, in Airbyte's words; all `None` for one that did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub reason: Option<String>,
    pub origin: Option<FailureOrigin>,
    /// A `config_error` (or a `manual_cancellation`) is not retried.
    pub failure_type: Option<FailureType>,
}

impl Failure {
    /// The reaper's: the data plane stopped heartbeating, so its lease ran out.
    fn lease_expired() -> Self {
        Self {
            reason: Some(
                "the data plane running this attempt stopped heartbeating (lease expired)"
                    .to_owned(),
            ),
            origin: Some(FailureOrigin::AirbytePlatform),
            failure_type: Some(FailureType::HeartbeatTimeout),
        }
    }

    /// Whether another attempt may succeed where this one failed.
    fn is_retryable(&self) -> bool {
        self.failure_type.is_none_or(FailureType::is_retryable)
    }
}

impl Store {
    pub async fn attempt(&self, id: Uuid) -> Result<Attempt> {
        let row = sqlx::query("SELECT * FROM attempts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("attempt", id))?;
        attempt_from_row(&row)
    }

    pub async fn attempts(&self, job_id: i64) -> Result<Vec<Attempt>> {
        sqlx::query("SELECT * FROM attempts WHERE job_id = $1 ORDER BY attempt_number")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_from_row)
            .collect()
    }

    /// Renews the leases of the attempts a data plane says it runs, and says which of them
    /// it must stop: cancelled ones, and ones it no longer holds.
    pub async fn renew_leases(
        &self,
        dataplane_id: Uuid,
        attempt_ids: &[Uuid],
        lease_millis: i64,
    ) -> Result<LeaseRenewal> {
        let mut renewal = LeaseRenewal::default();
        let now = now_millis();
        for attempt_id in attempt_ids {
            let row = sqlx::query(
                "SELECT jobs.id AS job_id, jobs.status AS job_status, jobs.cancel_requested, jobs.current_attempt_id,
                        attempts.dataplane_id, attempts.status AS attempt_status
                 FROM attempts JOIN jobs ON jobs.id = attempts.job_id WHERE attempts.id = $1",
            )
            .bind(attempt_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                renewal.lost.push(*attempt_id);
                continue;
            };
            let columns = Columns::of("jobs", &row);
            let owner = columns.uuid("dataplane_id")?;
            let current = columns.optional_uuid("current_attempt_id")?;
            let job_status: JobStatus = columns.name("job_status")?;
            let attempt_status: AttemptStatus = columns.name("attempt_status")?;
            if owner != dataplane_id
                || current != Some(*attempt_id)
                || attempt_status != AttemptStatus::Running
            {
                renewal.lost.push(*attempt_id);
            } else if columns.flag("cancel_requested")? {
                renewal.cancel.push(*attempt_id);
            } else if job_status != JobStatus::Running {
                renewal.lost.push(*attempt_id);
            } else {
                let job_id: i64 = columns.get("job_id")?;
                sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND current_attempt_id = $3 AND status = $4",
                )
                .bind(now + lease_millis)
                .bind(job_id)
                .bind(attempt_id.to_string())
                .bind(JobStatus::Running.as_str())
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(renewal)
    }

    /// Which of the data plane's attempts are current and cancelled by the user: a read (a
    /// heartbeat waiting for a cancel asks it often), by primary keys.
    pub async fn cancelled_attempts(
        &self,
        dataplane_id: Uuid,
        attempt_ids: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        let mut cancelled = Vec::new();
        for attempt_id in attempt_ids {
            let row = sqlx::query(
                "SELECT attempts.id FROM attempts JOIN jobs ON jobs.id = attempts.job_id
                 WHERE attempts.id = $1 AND attempts.dataplane_id = $2 AND attempts.status = $3
                   AND jobs.current_attempt_id = attempts.id AND jobs.cancel_requested = 1",
            )
            .bind(attempt_id.to_string())
            .bind(dataplane_id.to_string())
            .bind(AttemptStatus::Running.as_str())
            .fetch_optional(&self.pool)
            .await?;
            if row.is_some() {
                cancelled.push(*attempt_id);
            }
        }
        Ok(cancelled)
    }

    /// Fails the attempts whose lease ran out and puts their jobs back in their region's
    /// lane (or fails them, after the last attempt). Returns the jobs it touched.
    pub async fn expire_leases(&self, policy: RetryPolicy) -> Result<Vec<(i64, Uuid)>> {
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT id, current_attempt_id FROM jobs WHERE status = $1 AND lease_expires_at < $2",
        )
        .bind(JobStatus::Running.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = Vec::new();
        let failure = Failure::lease_expired();
        for row in rows {
            let columns = Columns::of("jobs", &row);
            let job_id: i64 = columns.get("id")?;
            let Some(attempt_id) = columns.optional_uuid("current_attempt_id")? else {
                continue;
            };
            if self
                .end_attempt(job_id, attempt_id, AttemptOutcome::Failed, &failure, policy)
                .await
                .is_ok()
            {
                expired.push((job_id, attempt_id));
            }
        }
        Ok(expired)
    }

    /// Records the attempt's progress; refused once the attempt is not current.
    pub async fn record_progress(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        rows_synced: i64,
        bytes_synced: i64,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE attempts SET rows_synced = $1, bytes_synced = $2
             WHERE id = $3 AND job_id = $4 AND status = '{}'
               AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $4 AND jobs.current_attempt_id = $3 AND {})",
            AttemptStatus::Running,
            live_attempt()
        );
        let result = sqlx::query(&sql)
            .bind(rows_synced)
            .bind(bytes_synced)
            .bind(attempt_id.to_string())
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(fenced(job_id, attempt_id));
        }
        Ok(())
    }

    /// Commits state for the job's connection, atomically with the attempt's counts, only
    /// while the attempt is the job's current, running one.
    pub async fn commit_state(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        states: &[StoredState],
        rows_synced: i64,
        bytes_synced: i64,
        stream_stats: &[StreamStats],
    ) -> Result<()> {
        let now = now_millis();
        let stream_stats = to_json("attempts", "stream_stats", stream_stats)?;
        let states = states
            .iter()
            .map(|state| {
                Ok((
                    &state.stream,
                    to_json("connection_state", "state", &state.state)?,
                    state
                        .reference
                        .as_ref()
                        .map(|reference| to_json("connection_state", "state_reference", reference))
                        .transpose()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut transaction = self.begin_write().await?;
        let sql = format!(
            "UPDATE jobs SET updated_at = $1 WHERE id = $2 AND current_attempt_id = $3 AND {}
               AND EXISTS (SELECT 1 FROM attempts WHERE attempts.id = $3 AND attempts.status = '{}')
             RETURNING connection_id",
            live_attempt(),
            AttemptStatus::Running
        );
        let guard = sqlx::query(&sql)
            .bind(now)
            .bind(job_id)
            .bind(attempt_id.to_string())
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(guard) = guard else {
            return Err(fenced(job_id, attempt_id));
        };
        let connection_id: String = Columns::of("jobs", &guard).get("connection_id")?;
        for (stream, state, reference) in states {
            sqlx::query(
                "INSERT INTO connection_state (connection_id, stream, state, attempt_id, updated_at, state_reference)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (connection_id, stream)
                 DO UPDATE SET state = excluded.state, attempt_id = excluded.attempt_id, updated_at = excluded.updated_at,
                   state_reference = excluded.state_reference",
            )
            .bind(&connection_id)
            .bind(stream)
            .bind(state)
            .bind(attempt_id.to_string())
            .bind(now)
            .bind(reference)
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(
            "UPDATE attempts SET rows_synced = $1, bytes_synced = $2, stream_stats = $3 WHERE id = $4",
        )
        .bind(rows_synced)
        .bind(bytes_synced)
        .bind(stream_stats)
        .bind(attempt_id.to_string())
        .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Ends the attempt as its data plane reports; fenced like every attempt call. A failed
    /// attempt's job goes back to its lane (`incomplete`) while attempts remain, unless the
    /// failure is not worth retrying (a `config_error`): then the job fails at once.
    pub async fn finish_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        outcome: AttemptOutcome,
        failure: &Failure,
        counts: (i64, i64),
        policy: RetryPolicy,
    ) -> Result<Job> {
        sqlx::query(
            "UPDATE attempts SET rows_synced = $1, bytes_synced = $2 WHERE id = $3 AND status = $4",
        )
        .bind(counts.0)
        .bind(counts.1)
        .bind(attempt_id.to_string())
        .bind(AttemptStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        self.end_attempt(job_id, attempt_id, outcome, failure, policy)
            .await?;
        self.job(job_id).await
    }

    async fn end_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        outcome: AttemptOutcome,
        failure: &Failure,
        policy: RetryPolicy,
    ) -> Result<()> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT jobs.id, jobs.status, jobs.attempt_count, jobs.max_attempts, jobs.cancel_requested, jobs.job_type, jobs.connection_id
             FROM jobs JOIN attempts ON attempts.id = jobs.current_attempt_id
             WHERE jobs.id = $1 AND jobs.current_attempt_id = $2 AND attempts.status = $3",
        )
        .bind(job_id)
        .bind(attempt_id.to_string())
        .bind(AttemptStatus::Running.as_str())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| fenced(job_id, attempt_id))?;
        let columns = Columns::of("jobs", &row);
        let job_status: JobStatus = columns.name("status")?;
        let cancel_requested = columns.flag("cancel_requested")?;
        if job_status != JobStatus::Running && !cancel_requested {
            return Err(fenced(job_id, attempt_id));
        }
        let attempt_count: i64 = columns.get("attempt_count")?;
        let max_attempts: i64 = columns.get("max_attempts")?;
        let (attempt_status, job_status, retry_at) = match outcome {
            _ if cancel_requested => (AttemptStatus::Cancelled, JobStatus::Cancelled, None),
            AttemptOutcome::Succeeded => (AttemptStatus::Succeeded, JobStatus::Succeeded, None),
            AttemptOutcome::Cancelled => (AttemptStatus::Cancelled, JobStatus::Cancelled, None),
            AttemptOutcome::Failed if failure.is_retryable() && attempt_count < max_attempts => (
                AttemptStatus::Failed,
                JobStatus::Incomplete,
                Some(now + policy.delay_after(attempt_count)),
            ),
            AttemptOutcome::Failed => (AttemptStatus::Failed, JobStatus::Failed, None),
        };
        // A cancelled attempt says so, as Airbyte's do, unless its data plane said more.
        let attempt_failure_type = match attempt_status {
            AttemptStatus::Cancelled => failure
                .failure_type
                .or(Some(FailureType::ManualCancellation)),
            _ => failure.failure_type,
        };
        sqlx::query(
            "UPDATE attempts SET status = $1, failure_reason = $2, failure_origin = $3, failure_type = $4, ended_at = $5
             WHERE id = $6",
        )
        .bind(attempt_status.as_str())
        .bind(failure.reason.as_deref())
        .bind(failure.origin.map(FailureOrigin::as_str))
        .bind(attempt_failure_type.map(FailureType::as_str))
        .bind(now)
        .bind(attempt_id.to_string())
        .execute(&mut *transaction)
        .await?;
        let ended_at = retry_at.is_none().then_some(now);
        sqlx::query(
            "UPDATE jobs SET status = $1, failure_reason = $2, failure_origin = $3, failure_type = $4,
                 updated_at = $5, ended_at = COALESCE(ended_at, $6),
                 next_attempt_at = $7, lease_expires_at = NULL,
                 current_attempt_id = CASE WHEN $8 = 1 THEN NULL ELSE current_attempt_id END
             WHERE id = $9",
        )
        .bind(job_status.as_str())
        .bind(failure.reason.as_deref())
        .bind(failure.origin.map(FailureOrigin::as_str))
        .bind(failure.failure_type.map(FailureType::as_str))
        .bind(now)
        .bind(ended_at)
        .bind(retry_at.unwrap_or(now))
        .bind(i64::from(retry_at.is_some()))
        .bind(job_id)
        .execute(&mut *transaction)
        .await?;
        // A successful reset leaves the connection with no state.
        let job_type: ferry_api::JobType = columns.name("job_type")?;
        if job_status == JobStatus::Succeeded && job_type.clears_state() {
            let connection_id: String = columns.get("connection_id")?;
            sqlx::query("DELETE FROM connection_state WHERE connection_id = $1")
                .bind(connection_id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn connection_states(&self, connection_id: Uuid) -> Result<Vec<StoredState>> {
        sqlx::query(
            "SELECT stream, state, state_reference FROM connection_state WHERE connection_id = $1 ORDER BY stream",
        )
        .bind(connection_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let columns = Columns::of("connection_state", row);
            Ok(StoredState {
                stream: columns.get("stream")?,
                state: columns.json("state")?,
                reference: columns.optional_json("state_reference")?,
            })
        })
        .collect()
    }
}
