//! Connector tasks: check and discover, claimed by a data plane of the task's region.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::{
    ActorKind, Backend, ConnectorTask, Result, Store, StoreError, now_millis, optional_uuid_column,
    uuid_column,
};

fn task_from_row(row: &AnyRow) -> Result<ConnectorTask> {
    let actor_kind: String = row.try_get("actor_kind")?;
    Ok(ConnectorTask {
        id: uuid_column(row, "id")?,
        region_id: uuid_column(row, "region_id")?,
        kind: row.try_get("kind")?,
        actor_kind: if actor_kind == "source" {
            ActorKind::Source
        } else {
            ActorKind::Destination
        },
        actor_id: uuid_column(row, "actor_id")?,
        status: row.try_get("status")?,
        dataplane_id: optional_uuid_column(row, "dataplane_id")?,
        result: row.try_get("result")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_task(
        &self,
        region_id: Uuid,
        kind: &str,
        actor_kind: ActorKind,
        actor_id: Uuid,
    ) -> Result<ConnectorTask> {
        let id = Uuid::new_v4();
        let now = now_millis();
        sqlx::query(
            "INSERT INTO connector_tasks (id, region_id, kind, actor_kind, actor_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(id.to_string())
        .bind(region_id.to_string())
        .bind(kind)
        .bind(actor_kind.as_str())
        .bind(actor_id.to_string())
        .bind(now)
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

    /// Claims the region's oldest pending task for the data plane.
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
            "UPDATE connector_tasks SET status = 'running', dataplane_id = $1, updated_at = $2
             WHERE status = 'pending' AND id = (
                 SELECT id FROM connector_tasks WHERE region_id = $3 AND status = 'pending'
                 ORDER BY created_at LIMIT 1 {lock})
             RETURNING id"
        );
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(&sql)
            .bind(dataplane_id.to_string())
            .bind(now_millis())
            .bind(region_id.to_string())
            .fetch_optional(&mut *transaction)
            .await?;
        transaction.commit().await?;
        match row {
            Some(row) => Ok(Some(self.task(uuid_column(&row, "id")?).await?)),
            None => Ok(None),
        }
    }

    /// Records the answer of the data plane that holds the task.
    pub async fn complete_task(
        &self,
        id: Uuid,
        dataplane_id: Uuid,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE connector_tasks SET status = $1, result = $2, error = $3, updated_at = $4
             WHERE id = $5 AND dataplane_id = $6 AND status = 'running'",
        )
        .bind(if error.is_some() {
            "failed"
        } else {
            "succeeded"
        })
        .bind(result)
        .bind(error)
        .bind(now_millis())
        .bind(id.to_string())
        .bind(dataplane_id.to_string())
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
