//! An attempt handed back by its data plane as it drains (SIGTERM): the job goes back to its
//! region's lane at once, claimable by any plane of the region, without waiting for the lease
//! to lapse. What the attempt committed (state, counts) stays: the next attempt resumes there.

use ferry_api::{AttemptStatus, FailureOrigin, FailureType, JobStatus};
use uuid::Uuid;

use crate::decode::Columns;
use crate::{Job, Result, Store, StoreError, now_millis};

/// Recorded on the handed-back attempt, so its history says why it ended.
pub const HANDED_BACK_REASON: &str =
    "handed back by its data plane, which was shutting down (drain); resumed by another";

/// Recorded on the job (and its last attempt) when hand-backs used up its attempts.
const HANDED_BACK_TOO_OFTEN: &str = "handed back by its data planes, which kept shutting down while they ran it (drain), until no attempt was left";

/// Hand-backs of one job that cost it no attempt. Past them a hand-back counts as the
/// attempt it is: a job under which planes keep stopping (a liveness probe failing during
/// the sync, a crash-looping pod) then ends failed instead of circling for ever.
pub const FREE_HAND_BACKS: i64 = 5;

fn fenced(job_id: i64, attempt_id: Uuid) -> StoreError {
    StoreError::Fenced(format!(
        "attempt {attempt_id} is no longer the running attempt of job {job_id}"
    ))
}

impl Store {
    /// Ends the job's current attempt as handed back and puts the job back in its lane,
    /// claimable now. The first [`FREE_HAND_BACKS`] hand-backs of a job do not use up one of
    /// its attempts (the plane's stop is no fault of the job's), so `max_attempts` grows by
    /// one with each; later ones do, and the one that uses up the last attempt fails the job.
    /// A job cancelled meanwhile keeps its cancel: the attempt ends cancelled (its plane,
    /// stopping, had no chance to hear of it). Fenced like every attempt call: refused unless
    /// `attempt_id` is the job's current, running attempt.
    pub async fn hand_back_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        counts: (i64, i64),
    ) -> Result<Job> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT jobs.status, jobs.cancel_requested, jobs.attempt_count, jobs.max_attempts,
                    (SELECT COUNT(*) FROM attempts AS earlier
                     WHERE earlier.job_id = jobs.id AND earlier.failure_reason = $3) AS handed_back
             FROM jobs JOIN attempts ON attempts.id = jobs.current_attempt_id
             WHERE jobs.id = $1 AND jobs.current_attempt_id = $2 AND attempts.status = $4",
        )
        .bind(job_id)
        .bind(attempt_id.to_string())
        .bind(HANDED_BACK_REASON)
        .bind(AttemptStatus::Running.as_str())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| fenced(job_id, attempt_id))?;
        let columns = Columns::of("jobs", &row);
        let job_status: JobStatus = columns.name("status")?;
        let cancel_requested = columns.flag("cancel_requested")?;
        let attempt_count: i64 = columns.get("attempt_count")?;
        let max_attempts: i64 = columns.get("max_attempts")?;
        let handed_back: i64 = columns.get("handed_back")?;

        // Each branch's UPDATE repeats the conditions read above, so that an attempt call
        // racing this one (a finish, a lease sweep) leaves one of the two fenced.
        let (attempt_status, updated, reason, failure_type) = if cancel_requested {
            let sql = "UPDATE jobs SET lease_expires_at = NULL, updated_at = $1
                 WHERE id = $2 AND current_attempt_id = $3 AND cancel_requested = 1";
            let result = sqlx::query(sql)
                .bind(now)
                .bind(job_id)
                .bind(attempt_id.to_string())
                .execute(&mut *transaction)
                .await?;
            (
                AttemptStatus::Cancelled,
                result.rows_affected(),
                None,
                FailureType::ManualCancellation,
            )
        } else if job_status != JobStatus::Running {
            return Err(fenced(job_id, attempt_id));
        } else if handed_back < FREE_HAND_BACKS || attempt_count < max_attempts {
            let free = i64::from(handed_back < FREE_HAND_BACKS);
            let result = sqlx::query(
                "UPDATE jobs SET status = $1, current_attempt_id = NULL, lease_expires_at = NULL,
                     next_attempt_at = $2, updated_at = $2, max_attempts = max_attempts + $3
                 WHERE id = $4 AND current_attempt_id = $5 AND status = $6 AND cancel_requested = 0",
            )
            .bind(JobStatus::Incomplete.as_str())
            .bind(now)
            .bind(free)
            .bind(job_id)
            .bind(attempt_id.to_string())
            .bind(JobStatus::Running.as_str())
            .execute(&mut *transaction)
            .await?;
            (
                AttemptStatus::Failed,
                result.rows_affected(),
                Some(HANDED_BACK_REASON),
                FailureType::TransientError,
            )
        } else {
            let result = sqlx::query(
                "UPDATE jobs SET status = $1, failure_reason = $2, failure_origin = $3, failure_type = $4,
                     updated_at = $5, ended_at = COALESCE(ended_at, $5), lease_expires_at = NULL
                 WHERE id = $6 AND current_attempt_id = $7 AND status = $8 AND cancel_requested = 0",
            )
            .bind(JobStatus::Failed.as_str())
            .bind(HANDED_BACK_TOO_OFTEN)
            .bind(FailureOrigin::AirbytePlatform.as_str())
            .bind(FailureType::TransientError.as_str())
            .bind(now)
            .bind(job_id)
            .bind(attempt_id.to_string())
            .bind(JobStatus::Running.as_str())
            .execute(&mut *transaction)
            .await?;
            (
                AttemptStatus::Failed,
                result.rows_affected(),
                Some(HANDED_BACK_TOO_OFTEN),
                FailureType::TransientError,
            )
        };
        if updated == 0 {
            return Err(fenced(job_id, attempt_id));
        }
        sqlx::query(
            "UPDATE attempts SET status = $1, failure_reason = $2, failure_origin = $3, failure_type = $4,
                 rows_synced = $5, bytes_synced = $6, ended_at = $7
             WHERE id = $8",
        )
        .bind(attempt_status.as_str())
        .bind(reason)
        .bind(reason.map(|_| FailureOrigin::AirbytePlatform.as_str()))
        .bind(failure_type.as_str())
        .bind(counts.0)
        .bind(counts.1)
        .bind(now)
        .bind(attempt_id.to_string())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.job(job_id).await
    }
}
