//! An attempt handed back by its data plane as it drains (SIGTERM): the job goes back to its
//! region's lane at once, claimable by any plane of the region, without waiting for the lease
//! to lapse. What the attempt committed (state, counts) stays: the next attempt resumes there.

use ferry_api::{AttemptStatus, FailureOrigin, FailureType, JobStatus};
use uuid::Uuid;

use crate::{Job, Result, Store, StoreError, now_millis};

/// Recorded on the handed-back attempt, so its history says why it ended.
pub const HANDED_BACK_REASON: &str =
    "handed back by its data plane, which was shutting down (drain); resumed by another";

impl Store {
    /// Ends the job's current attempt as handed back and puts the job back in its lane,
    /// claimable now. A hand-back does not use up one of the job's attempts (the plane's
    /// stop is no fault of the job's), so `max_attempts` grows by one with it. Fenced like
    /// every attempt call: refused unless `attempt_id` is the job's current, running attempt
    /// and the job still runs (a job cancelled meanwhile ends through `finish_attempt`).
    pub async fn hand_back_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        counts: (i64, i64),
    ) -> Result<Job> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let requeued = sqlx::query(
            "UPDATE jobs SET status = $1, current_attempt_id = NULL, lease_expires_at = NULL,
                 next_attempt_at = $2, updated_at = $2, max_attempts = max_attempts + 1
             WHERE id = $3 AND current_attempt_id = $4 AND status = $5 AND cancel_requested = 0
               AND EXISTS (SELECT 1 FROM attempts WHERE attempts.id = $4 AND attempts.status = $6)",
        )
        .bind(JobStatus::Incomplete.as_str())
        .bind(now)
        .bind(job_id)
        .bind(attempt_id.to_string())
        .bind(JobStatus::Running.as_str())
        .bind(AttemptStatus::Running.as_str())
        .execute(&mut *transaction)
        .await?;
        if requeued.rows_affected() == 0 {
            return Err(StoreError::Fenced(format!(
                "attempt {attempt_id} is no longer the running attempt of job {job_id}"
            )));
        }
        sqlx::query(
            "UPDATE attempts SET status = $1, failure_reason = $2, failure_origin = $3, failure_type = $4,
                 rows_synced = $5, bytes_synced = $6, ended_at = $7
             WHERE id = $8",
        )
        .bind(AttemptStatus::Failed.as_str())
        .bind(HANDED_BACK_REASON)
        .bind(FailureOrigin::AirbytePlatform.as_str())
        .bind(FailureType::TransientError.as_str())
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
