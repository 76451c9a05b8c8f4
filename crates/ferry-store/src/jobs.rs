//! The job queue: one lane per region, claimed under a lease, every later call fenced by the
//! attempt id; and the per-connection state the attempts commit.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::{
    Attempt, Backend, Job, JobQuery, LeaseRenewal, NewJob, Result, RetryPolicy, Store, StoreError,
    StoredState, flag_column, now_millis, optional_uuid_column, placeholders, uuid_column,
};

/// The job still wants its current attempt's work: running, or cancelled by the user with
/// the attempt not yet stopped (what it made durable meanwhile is still worth keeping).
const LIVE_ATTEMPT: &str =
    "(status = 'running' OR (status = 'cancelled' AND cancel_requested = 1))";

/// Statuses from which a job can be claimed.
const CLAIMABLE: &str = "('pending', 'incomplete')";

fn job_from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        connection_id: uuid_column(row, "connection_id")?,
        workspace_id: uuid_column(row, "workspace_id")?,
        region_id: uuid_column(row, "region_id")?,
        job_type: row.try_get("job_type")?,
        status: row.try_get("status")?,
        attempt_count: row.try_get("attempt_count")?,
        max_attempts: row.try_get("max_attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        current_attempt_id: optional_uuid_column(row, "current_attempt_id")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        cancel_requested: flag_column(row, "cancel_requested")?,
        failure_reason: row.try_get("failure_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt> {
    Ok(Attempt {
        id: uuid_column(row, "id")?,
        job_id: row.try_get("job_id")?,
        attempt_number: row.try_get("attempt_number")?,
        region_id: uuid_column(row, "region_id")?,
        dataplane_id: uuid_column(row, "dataplane_id")?,
        status: row.try_get("status")?,
        failure_reason: row.try_get("failure_reason")?,
        rows_synced: row.try_get("rows_synced")?,
        bytes_synced: row.try_get("bytes_synced")?,
        stream_stats: row.try_get("stream_stats")?,
        created_at: row.try_get("created_at")?,
        ended_at: row.try_get("ended_at")?,
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

impl Store {
    pub async fn create_job(&self, job: &NewJob) -> Result<Job> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let id: i64 = sqlx::query(
            "UPDATE id_counters SET value = value + 1 WHERE name = 'job' RETURNING value",
        )
        .fetch_one(&mut *transaction)
        .await?
        .try_get("value")?;
        sqlx::query(
            "INSERT INTO jobs (id, connection_id, workspace_id, region_id, job_type, status, attempt_count, max_attempts, next_attempt_at, cancel_requested, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, 0, $7, $7)",
        )
        .bind(id)
        .bind(job.connection_id.to_string())
        .bind(job.workspace_id.to_string())
        .bind(job.region_id.to_string())
        .bind(&job.job_type)
        .bind(job.max_attempts)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a job is already under way for connection {}",
                job.connection_id
            )),
            other => other,
        })?;
        transaction.commit().await?;
        self.job(id).await
    }

    pub async fn job(&self, id: i64) -> Result<Job> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("job", id))?;
        job_from_row(&row)
    }

    pub async fn jobs(&self, query: &JobQuery) -> Result<Vec<Job>> {
        let mut conditions = vec!["1 = 1".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        let mut numbers: Vec<(usize, i64)> = Vec::new();
        let mut next = 1usize;
        if let Some(workspace_ids) = &query.workspace_ids {
            if workspace_ids.is_empty() {
                return Ok(Vec::new());
            }
            conditions.push(format!(
                "workspace_id IN ({})",
                placeholders(next, workspace_ids.len())
            ));
            next += workspace_ids.len();
            texts.extend(workspace_ids.iter().map(Uuid::to_string));
        }
        for (column, value) in [
            (
                "connection_id",
                query.connection_id.map(|id| id.to_string()),
            ),
            ("job_type", query.job_type.clone()),
            ("status", query.status.clone()),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = ${next}"));
                next += 1;
                texts.push(value);
            }
        }
        // Numbers are bound after all texts; their placeholders are numbered accordingly.
        let mut number_conditions = Vec::new();
        for (column, operator, value) in [
            ("created_at", ">=", query.created_at_start),
            ("created_at", "<=", query.created_at_end),
            ("updated_at", ">=", query.updated_at_start),
            ("updated_at", "<=", query.updated_at_end),
        ] {
            if let Some(value) = value {
                number_conditions.push((column, operator, value));
            }
        }
        for (column, operator, value) in number_conditions {
            conditions.push(format!("{column} {operator} ${next}"));
            numbers.push((next, value));
            next += 1;
        }
        let direction = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT * FROM jobs WHERE {} ORDER BY {} {direction}, id {direction} LIMIT ${} OFFSET ${}",
            conditions.join(" AND "),
            query.order_by,
            next,
            next + 1
        );
        let mut bound: Vec<i64> = numbers.into_iter().map(|(_, number)| number).collect();
        bound.extend([query.limit, query.offset]);
        self.fetch_bound(&sql, texts, &bound)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
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

    /// Whether the region has a live, enabled data plane to run its jobs.
    pub async fn region_has_enabled_dataplane(&self, region_id: Uuid) -> Result<bool> {
        let row = sqlx::query(
            "SELECT id FROM dataplanes WHERE region_id = $1 AND enabled = 1 AND tombstone = 0 LIMIT 1",
        )
        .bind(region_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Whether the region has a job or a connector task to claim now: a read, so that idle
    /// data planes waiting for work cost no write transactions.
    pub async fn region_has_claimable_work(&self, region_id: Uuid) -> Result<bool> {
        let sql = format!(
            "SELECT 1 AS found FROM jobs WHERE region_id = $1 AND status IN {CLAIMABLE} AND next_attempt_at <= $2
             UNION ALL
             SELECT 1 AS found FROM connector_tasks WHERE region_id = $1 AND status = 'pending'
             LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(region_id.to_string())
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Whether an enabled data plane of the region has heartbeated since `since` (epoch ms).
    pub async fn region_has_live_dataplane(&self, region_id: Uuid, since: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT id FROM dataplanes WHERE region_id = $1 AND enabled = 1 AND tombstone = 0
               AND last_heartbeat_at >= $2 LIMIT 1",
        )
        .bind(region_id.to_string())
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Claims the oldest claimable job of the region — or `only_job`, if it is claimable and
    /// in the region — for the data plane, under a lease of `lease_millis`.
    pub async fn claim_job(
        &self,
        region_id: Uuid,
        dataplane_id: Uuid,
        lease_millis: i64,
        only_job: Option<i64>,
    ) -> Result<Option<(Job, Attempt)>> {
        let now = now_millis();
        let attempt_id = Uuid::new_v4();
        let only = if only_job.is_some() {
            "AND id = $5"
        } else {
            ""
        };
        // PostgreSQL: concurrent claimers skip each other's rows; SQLite has one writer.
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempt_count = attempt_count + 1,
                 current_attempt_id = $1, lease_expires_at = $2, updated_at = $3
             WHERE status IN {CLAIMABLE} AND id = (
                 SELECT id FROM jobs
                 WHERE region_id = $4 AND status IN {CLAIMABLE} AND next_attempt_at <= $3 {only}
                 ORDER BY id LIMIT 1 {lock})
             RETURNING id, attempt_count"
        );
        let mut transaction = self.begin_write().await?;
        let mut statement = sqlx::query(&sql)
            .bind(attempt_id.to_string())
            .bind(now + lease_millis)
            .bind(now)
            .bind(region_id.to_string());
        if let Some(job_id) = only_job {
            statement = statement.bind(job_id);
        }
        let Some(row) = statement.fetch_optional(&mut *transaction).await? else {
            transaction.commit().await?;
            return Ok(None);
        };
        let job_id: i64 = row.try_get("id")?;
        let attempt_number: i64 = row.try_get("attempt_count")?;
        sqlx::query(
            "INSERT INTO attempts (id, job_id, attempt_number, region_id, dataplane_id, status, rows_synced, bytes_synced, created_at)
             VALUES ($1, $2, $3, $4, $5, 'running', 0, 0, $6)",
        )
        .bind(attempt_id.to_string())
        .bind(job_id)
        .bind(attempt_number)
        .bind(region_id.to_string())
        .bind(dataplane_id.to_string())
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let job = self.job(job_id).await?;
        let attempt = self.attempt(attempt_id).await?;
        Ok(Some((job, attempt)))
    }

    pub async fn attempt(&self, id: Uuid) -> Result<Attempt> {
        let row = sqlx::query("SELECT * FROM attempts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("attempt", id))?;
        attempt_from_row(&row)
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
            let owner = uuid_column(&row, "dataplane_id")?;
            let current = optional_uuid_column(&row, "current_attempt_id")?;
            let job_status: String = row.try_get("job_status")?;
            let attempt_status: String = row.try_get("attempt_status")?;
            if owner != dataplane_id || current != Some(*attempt_id) || attempt_status != "running"
            {
                renewal.lost.push(*attempt_id);
            } else if flag_column(&row, "cancel_requested")? {
                renewal.cancel.push(*attempt_id);
            } else if job_status != "running" {
                renewal.lost.push(*attempt_id);
            } else {
                let job_id: i64 = row.try_get("job_id")?;
                sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND current_attempt_id = $3 AND status = 'running'",
                )
                .bind(now + lease_millis)
                .bind(job_id)
                .bind(attempt_id.to_string())
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(renewal)
    }

    /// Fails the attempts whose lease ran out and puts their jobs back in their region's
    /// lane (or fails them, after the last attempt). Returns the jobs it touched.
    pub async fn expire_leases(&self, policy: RetryPolicy) -> Result<Vec<(i64, Uuid)>> {
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT id, current_attempt_id FROM jobs WHERE status = 'running' AND lease_expires_at < $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = Vec::new();
        for row in rows {
            let job_id: i64 = row.try_get("id")?;
            let Some(attempt_id) = optional_uuid_column(&row, "current_attempt_id")? else {
                continue;
            };
            let reason = "the data plane running this attempt stopped heartbeating (lease expired)";
            if self
                .end_attempt(
                    job_id,
                    attempt_id,
                    AttemptOutcome::Failed,
                    Some(reason),
                    policy,
                )
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
             WHERE id = $3 AND job_id = $4 AND status = 'running'
               AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $4 AND jobs.current_attempt_id = $3 AND {LIVE_ATTEMPT})"
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
        stream_stats: &str,
    ) -> Result<()> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let sql = format!(
            "UPDATE jobs SET updated_at = $1 WHERE id = $2 AND current_attempt_id = $3 AND {LIVE_ATTEMPT}
               AND EXISTS (SELECT 1 FROM attempts WHERE attempts.id = $3 AND attempts.status = 'running')
             RETURNING connection_id"
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
        let connection_id: String = guard.try_get("connection_id")?;
        for state in states {
            sqlx::query(
                "INSERT INTO connection_state (connection_id, stream, state, attempt_id, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (connection_id, stream)
                 DO UPDATE SET state = excluded.state, attempt_id = excluded.attempt_id, updated_at = excluded.updated_at",
            )
            .bind(&connection_id)
            .bind(&state.stream)
            .bind(&state.state)
            .bind(attempt_id.to_string())
            .bind(now)
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

    /// Ends the attempt as its data plane reports; fenced like every attempt call.
    pub async fn finish_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        outcome: AttemptOutcome,
        failure_reason: Option<&str>,
        counts: (i64, i64),
        policy: RetryPolicy,
    ) -> Result<Job> {
        sqlx::query("UPDATE attempts SET rows_synced = $1, bytes_synced = $2 WHERE id = $3 AND status = 'running'")
            .bind(counts.0)
            .bind(counts.1)
            .bind(attempt_id.to_string())
            .execute(&self.pool)
            .await?;
        self.end_attempt(job_id, attempt_id, outcome, failure_reason, policy)
            .await?;
        self.job(job_id).await
    }

    async fn end_attempt(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        outcome: AttemptOutcome,
        failure_reason: Option<&str>,
        policy: RetryPolicy,
    ) -> Result<()> {
        let now = now_millis();
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT jobs.status, jobs.attempt_count, jobs.max_attempts, jobs.cancel_requested, jobs.job_type, jobs.connection_id
             FROM jobs JOIN attempts ON attempts.id = jobs.current_attempt_id
             WHERE jobs.id = $1 AND jobs.current_attempt_id = $2 AND attempts.status = 'running'",
        )
        .bind(job_id)
        .bind(attempt_id.to_string())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| fenced(job_id, attempt_id))?;
        let job_status: String = row.try_get("status")?;
        let cancel_requested = flag_column(&row, "cancel_requested")?;
        if job_status != "running" && !cancel_requested {
            return Err(fenced(job_id, attempt_id));
        }
        let attempt_count: i64 = row.try_get("attempt_count")?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        let (attempt_status, job_status, retry_at) = match outcome {
            _ if cancel_requested => ("cancelled", "cancelled", None),
            AttemptOutcome::Succeeded => ("succeeded", "succeeded", None),
            AttemptOutcome::Cancelled => ("cancelled", "cancelled", None),
            AttemptOutcome::Failed if attempt_count < max_attempts => (
                "failed",
                "incomplete",
                Some(now + policy.delay_after(attempt_count)),
            ),
            AttemptOutcome::Failed => ("failed", "failed", None),
        };
        sqlx::query(
            "UPDATE attempts SET status = $1, failure_reason = $2, ended_at = $3 WHERE id = $4",
        )
        .bind(attempt_status)
        .bind(failure_reason)
        .bind(now)
        .bind(attempt_id.to_string())
        .execute(&mut *transaction)
        .await?;
        let ended_at = retry_at.is_none().then_some(now);
        sqlx::query(
            "UPDATE jobs SET status = $1, failure_reason = $2, updated_at = $3, ended_at = COALESCE(ended_at, $4),
                 next_attempt_at = $5, lease_expires_at = NULL,
                 current_attempt_id = CASE WHEN $6 = 1 THEN NULL ELSE current_attempt_id END
             WHERE id = $7",
        )
        .bind(job_status)
        .bind(failure_reason)
        .bind(now)
        .bind(ended_at)
        .bind(retry_at.unwrap_or(now))
        .bind(i64::from(retry_at.is_some()))
        .bind(job_id)
        .execute(&mut *transaction)
        .await?;
        // A successful reset leaves the connection with no state.
        let job_type: String = row.try_get("job_type")?;
        if job_status == "succeeded" && (job_type == "reset" || job_type == "clear") {
            let connection_id: String = row.try_get("connection_id")?;
            sqlx::query("DELETE FROM connection_state WHERE connection_id = $1")
                .bind(connection_id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Cancels the job: at once when it waits in the lane; when it runs, its data plane
    /// learns it from its next heartbeat and reports the attempt cancelled.
    pub async fn cancel_job(&self, job_id: i64) -> Result<Job> {
        let now = now_millis();
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', updated_at = $1, ended_at = $1,
                 cancel_requested = CASE WHEN status = 'running' THEN 1 ELSE cancel_requested END
             WHERE id = $2 AND status IN ('pending', 'incomplete', 'running')",
        )
        .bind(now)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        self.job(job_id).await
    }

    pub async fn connection_states(&self, connection_id: Uuid) -> Result<Vec<StoredState>> {
        sqlx::query(
            "SELECT stream, state FROM connection_state WHERE connection_id = $1 ORDER BY stream",
        )
        .bind(connection_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredState {
                stream: row.try_get("stream")?,
                state: row.try_get("state")?,
            })
        })
        .collect()
    }
}
