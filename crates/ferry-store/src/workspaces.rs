use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::{Columns, to_json};
use crate::{
    NewWorkspace, Result, Store, StoreError, Visibility, Workspace, WorkspaceChanges,
    WorkspaceQuery, now_millis, placeholders,
};

fn workspace_from_row(row: &AnyRow) -> Result<Workspace> {
    let columns = Columns::of("workspaces", row);
    Ok(Workspace {
        id: columns.uuid("id")?,
        organization_id: columns.uuid("organization_id")?,
        name: columns.get("name")?,
        region_id: columns.uuid("region_id")?,
        notifications: columns.json("notifications")?,
        tombstone: columns.flag("tombstone")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
    })
}

impl Store {
    pub async fn create_workspace(&self, workspace: &NewWorkspace) -> Result<Workspace> {
        let now = now_millis();
        let notifications = to_json("workspaces", "notifications", &workspace.notifications)?;
        sqlx::query(
            "INSERT INTO workspaces (id, organization_id, name, region_id, notifications, tombstone, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(workspace.id.to_string())
        .bind(workspace.organization_id.to_string())
        .bind(&workspace.name)
        .bind(workspace.region_id.to_string())
        .bind(notifications)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.workspace(workspace.id).await
    }

    /// The workspace, even if deleted.
    pub async fn workspace(&self, id: Uuid) -> Result<Workspace> {
        let row = sqlx::query("SELECT * FROM workspaces WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("workspace", id))?;
        workspace_from_row(&row)
    }

    pub async fn live_workspace(&self, id: Uuid) -> Result<Workspace> {
        let workspace = self.workspace(id).await?;
        if workspace.tombstone {
            return Err(StoreError::not_found("workspace", id));
        }
        Ok(workspace)
    }

    /// One page of workspaces, oldest first.
    pub async fn workspaces(&self, query: &WorkspaceQuery) -> Result<Vec<Workspace>> {
        let mut conditions = Vec::new();
        let mut values: Vec<String> = Vec::new();
        if !query.include_deleted {
            conditions.push("tombstone = 0".to_owned());
        }
        if let Some(ids) = &query.ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            conditions.push(format!(
                "id IN ({})",
                placeholders(values.len() + 1, ids.len())
            ));
            values.extend(ids.iter().map(Uuid::to_string));
        }
        if let Visibility::Scoped {
            organization_ids,
            workspace_ids,
        } = &query.visibility
        {
            if organization_ids.is_empty() && workspace_ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut alternatives = Vec::new();
            if !organization_ids.is_empty() {
                alternatives.push(format!(
                    "organization_id IN ({})",
                    placeholders(values.len() + 1, organization_ids.len())
                ));
                values.extend(organization_ids.iter().map(Uuid::to_string));
            }
            if !workspace_ids.is_empty() {
                alternatives.push(format!(
                    "id IN ({})",
                    placeholders(values.len() + 1, workspace_ids.len())
                ));
                values.extend(workspace_ids.iter().map(Uuid::to_string));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT * FROM workspaces {where_clause} ORDER BY created_at, id LIMIT ${} OFFSET ${}",
            values.len() + 1,
            values.len() + 2
        );
        self.fetch_bound(&sql, values, &[query.limit, query.offset])
            .await?
            .iter()
            .map(workspace_from_row)
            .collect()
    }

    pub async fn update_workspace(
        &self,
        id: Uuid,
        changes: &WorkspaceChanges,
    ) -> Result<Workspace> {
        let current = self.live_workspace(id).await?;
        sqlx::query(
            "UPDATE workspaces SET name = $1, region_id = $2, notifications = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(changes.name.as_deref().unwrap_or(&current.name))
        .bind(changes.region_id.unwrap_or(current.region_id).to_string())
        .bind(to_json(
            "workspaces",
            "notifications",
            changes
                .notifications
                .as_ref()
                .unwrap_or(&current.notifications),
        )?)
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        self.workspace(id).await
    }

    /// Soft-deletes the workspace; its permissions go with it.
    pub async fn delete_workspace(&self, id: Uuid) -> Result<()> {
        let mut transaction = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE workspaces SET tombstone = 1, updated_at = $1 WHERE id = $2 AND tombstone = 0",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("workspace", id));
        }
        sqlx::query("DELETE FROM permissions WHERE workspace_id = $1")
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}
