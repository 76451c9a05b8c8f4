//! The job queue: one lane per region, each job claimed under a lease by a data plane of
//! its region. What the claimed attempt then does (fenced by its id) is in `attempts.rs`.

use ferry_api::{AttemptStatus, ClaimKind, JobStatus, TaskStatus};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::Columns;
use crate::{
    Attempt, Backend, Job, JobQuery, NewJob, Result, Store, StoreError, now_millis, placeholders,
};

/// `('pending', 'incomplete')`: the SQL list of the statuses from which a job can be claimed.
fn claimable() -> String {
    status_list(JobStatus::CLAIMABLE)
}

fn status_list(statuses: &[JobStatus]) -> String {
    let quoted: Vec<String> = statuses
        .iter()
        .map(|status| format!("'{status}'"))
        .collect();
    format!("({})", quoted.join(", "))
}

fn job_from_row(row: &AnyRow) -> Result<Job> {
    let columns = Columns::of("jobs", row);
    Ok(Job {
        id: columns.get("id")?,
        connection_id: columns.uuid("connection_id")?,
        workspace_id: columns.uuid("workspace_id")?,
        region_id: columns.uuid("region_id")?,
        job_type: columns.name("job_type")?,
        status: columns.name("status")?,
        attempt_count: columns.get("attempt_count")?,
        max_attempts: columns.get("max_attempts")?,
        next_attempt_at: columns.get("next_attempt_at")?,
        current_attempt_id: columns.optional_uuid("current_attempt_id")?,
        lease_expires_at: columns.get("lease_expires_at")?,
        cancel_requested: columns.flag("cancel_requested")?,
        failure_reason: columns.get("failure_reason")?,
        failure_origin: columns.optional_name("failure_origin")?,
        failure_type: columns.optional_name("failure_type")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
        ended_at: columns.get("ended_at")?,
    })
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
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, 0, $8, $8)",
        )
        .bind(id)
        .bind(job.connection_id.to_string())
        .bind(job.workspace_id.to_string())
        .bind(job.region_id.to_string())
        .bind(job.job_type.as_str())
        .bind(JobStatus::Pending.as_str())
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
            (
                "job_type",
                query.job_type.map(|job_type| job_type.to_string()),
            ),
            ("status", query.status.map(|status| status.to_string())),
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

    /// Whether the region has a job or a connector task (or only one of them, as `only`
    /// says) to claim now: a read, so that idle data planes waiting for work cost no write
    /// transactions. A task past its `expires_at` is not claimable: its waiter gave up.
    pub async fn region_has_claimable_work(
        &self,
        region_id: Uuid,
        only: Option<ClaimKind>,
    ) -> Result<bool> {
        let jobs = format!(
            "SELECT 1 AS found FROM jobs WHERE region_id = $1 AND status IN {} AND next_attempt_at <= $2",
            claimable()
        );
        let tasks = "SELECT 1 AS found FROM connector_tasks
             WHERE region_id = $1 AND status = $3 AND expires_at > $2";
        let sql = match only {
            Some(ClaimKind::Jobs) => format!("{jobs} LIMIT 1"),
            Some(ClaimKind::Tasks) => format!("{tasks} LIMIT 1"),
            None => format!("{jobs} UNION ALL {tasks} LIMIT 1"),
        };
        let mut query = sqlx::query(&sql)
            .bind(region_id.to_string())
            .bind(now_millis());
        if only != Some(ClaimKind::Jobs) {
            query = query.bind(TaskStatus::Pending.as_str());
        }
        let row = query.fetch_optional(&self.pool).await?;
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
        let claimable = claimable();
        let sql = format!(
            "UPDATE jobs SET status = '{}', attempt_count = attempt_count + 1,
                 current_attempt_id = $1, lease_expires_at = $2, updated_at = $3
             WHERE status IN {claimable} AND id = (
                 SELECT id FROM jobs
                 WHERE region_id = $4 AND status IN {claimable} AND next_attempt_at <= $3 {only}
                 ORDER BY id LIMIT 1 {lock})
             RETURNING id, attempt_count",
            JobStatus::Running
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
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7)",
        )
        .bind(attempt_id.to_string())
        .bind(job_id)
        .bind(attempt_number)
        .bind(region_id.to_string())
        .bind(dataplane_id.to_string())
        .bind(AttemptStatus::Running.as_str())
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let job = self.job(job_id).await?;
        let attempt = self.attempt(attempt_id).await?;
        Ok(Some((job, attempt)))
    }

    /// Cancels the job: at once when it waits in the lane; when it runs, its data plane
    /// learns it from the heartbeat it holds open (or its next one) and reports the attempt
    /// cancelled.
    pub async fn cancel_job(&self, job_id: i64) -> Result<Job> {
        let now = now_millis();
        let sql = format!(
            "UPDATE jobs SET status = '{}', updated_at = $1, ended_at = $1,
                 cancel_requested = CASE WHEN status = '{}' THEN 1 ELSE cancel_requested END
             WHERE id = $2 AND status IN {}",
            JobStatus::Cancelled,
            JobStatus::Running,
            status_list(&[
                JobStatus::Pending,
                JobStatus::Incomplete,
                JobStatus::Running
            ])
        );
        sqlx::query(&sql)
            .bind(now)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        self.job(job_id).await
    }
}
