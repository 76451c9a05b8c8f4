//! Connector tasks: check and discover, claimed by a data plane of the task's region.

use ferry_api::{ConnectorRole, TaskKind, TaskStatus};
use serde_json::Value;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::{Columns, to_json};
use crate::{Backend, ConnectorTask, Result, Store, StoreError, now_millis};

fn task_from_row(row: &AnyRow) -> Result<ConnectorTask> {
    let columns = Columns::of("connector_tasks", row);
    Ok(ConnectorTask {
        id: columns.uuid("id")?,
        region_id: columns.uuid("region_id")?,
        kind: columns.name("kind")?,
        actor_kind: columns.name("actor_kind")?,
        actor_id: columns.uuid("actor_id")?,
        status: columns.name("status")?,
        dataplane_id: columns.optional_uuid("dataplane_id")?,
        result: columns.optional_json("result")?,
        error: columns.get("error")?,
        created_at: columns.get("created_at")?,
        expires_at: columns.get("expires_at")?,
    })
}

impl Store {
    /// Queues a task that must be answered by `expires_at` (epoch ms): a data plane may
    /// claim it only before, so one whose waiter gave up is never run.
    pub async fn create_task(
        &self,
        region_id: Uuid,
        kind: TaskKind,
        actor_kind: ConnectorRole,
        actor_id: Uuid,
        expires_at: i64,
    ) -> Result<ConnectorTask> {
        let id = Uuid::new_v4();
        let now = now_millis();
        sqlx::query(
            "INSERT INTO connector_tasks (id, region_id, kind, actor_kind, actor_id, status, created_at, updated_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(id.to_string())
        .bind(region_id.to_string())
        .bind(kind.as_str())
        .bind(actor_kind.as_str())
        .bind(actor_id.to_string())
        .bind(TaskStatus::Pending.as_str())
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        self.task(id).await
    }

    pub async fn task(&self, id: Uuid) -> Result<ConnectorTask> {
        let row = sqlx::query("SELECT * FROM connector_tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("connector task", id))?;
        task_from_row(&row)
    }

    /// Claims the region's oldest pending task for the data plane, of those still awaited
    /// (not past `expires_at`).
    pub async fn claim_task(
        &self,
        region_id: Uuid,
        dataplane_id: Uuid,
    ) -> Result<Option<ConnectorTask>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE connector_tasks SET status = $1, dataplane_id = $2, updated_at = $3
             WHERE status = $4 AND expires_at > $3 AND id = (
                 SELECT id FROM connector_tasks
                 WHERE region_id = $5 AND status = $4 AND expires_at > $3
                 ORDER BY created_at LIMIT 1 {lock})
             RETURNING id"
        );
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(&sql)
            .bind(TaskStatus::Running.as_str())
            .bind(dataplane_id.to_string())
            .bind(now_millis())
            .bind(TaskStatus::Pending.as_str())
            .bind(region_id.to_string())
            .fetch_optional(&mut *transaction)
            .await?;
        transaction.commit().await?;
        match row {
            Some(row) => {
                let id = Columns::of("connector_tasks", &row).uuid("id")?;
                Ok(Some(self.task(id).await?))
            }
            None => Ok(None),
        }
    }

    /// Records the answer of the data plane that holds the task.
    pub async fn complete_task(
        &self,
        id: Uuid,
        dataplane_id: Uuid,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<()> {
        let status = if error.is_some() {
            TaskStatus::Failed
        } else {
            TaskStatus::Succeeded
        };
        let result = result
            .map(|result| to_json("connector_tasks", "result", result))
            .transpose()?;
        let updated = sqlx::query(
            "UPDATE connector_tasks SET status = $1, result = $2, error = $3, updated_at = $4
             WHERE id = $5 AND dataplane_id = $6 AND status = $7",
        )
        .bind(status.as_str())
        .bind(result)
        .bind(error)
        .bind(now_millis())
        .bind(id.to_string())
        .bind(dataplane_id.to_string())
        .bind(TaskStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Fenced(format!(
                "task {id} is not running on this data plane"
            )));
        }
        Ok(())
    }
}
