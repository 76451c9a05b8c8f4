//! Sources, destinations (one table, as Airbyte's `actor`) and connections.

use sqlx::any::AnyRow;
use uuid::Uuid;

use ferry_api::ConnectorRole;

use crate::decode::{Columns, to_json};
use crate::{
    Actor, Connection, ConnectionChanges, CustomDefinition, NewActor, NewConnection, Result,
    ScopedQuery, Store, StoreError, now_millis, placeholders,
};

fn definition_from_row(row: &AnyRow) -> Result<CustomDefinition> {
    let columns = Columns::of("connector_definitions", row);
    Ok(CustomDefinition {
        id: columns.uuid("id")?,
        workspace_id: columns.uuid("workspace_id")?,
        kind: columns.name("kind")?,
        name: columns.get("name")?,
        docker_repository: columns.get("docker_repository")?,
        docker_image_tag: columns.get("docker_image_tag")?,
        documentation_url: columns.get("documentation_url")?,
        command: columns.json("command")?,
        created_at: columns.get("created_at")?,
    })
}

fn actor_from_row(row: &AnyRow) -> Result<Actor> {
    let columns = Columns::of("actors", row);
    Ok(Actor {
        id: columns.uuid("id")?,
        kind: columns.name("kind")?,
        workspace_id: columns.uuid("workspace_id")?,
        name: columns.get("name")?,
        connector_type: columns.get("connector_type")?,
        definition_id: columns.uuid("definition_id")?,
        configuration: columns.get("configuration")?,
        tombstone: columns.flag("tombstone")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
    })
}

fn connection_from_row(row: &AnyRow) -> Result<Connection> {
    let columns = Columns::of("connections", row);
    Ok(Connection {
        id: columns.uuid("id")?,
        workspace_id: columns.uuid("workspace_id")?,
        source_id: columns.uuid("source_id")?,
        destination_id: columns.uuid("destination_id")?,
        name: columns.get("name")?,
        status: columns.get("status")?,
        schedule: columns.json("schedule")?,
        configurations: columns.json("configurations")?,
        naming: columns.json("naming")?,
        tombstone: columns.flag("tombstone")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
    })
}

/// `WHERE` conditions and values for a workspace-scoped page; values start at `$first`.
pub(crate) fn scoped_conditions(
    query: &ScopedQuery,
    conditions: &mut Vec<String>,
    values: &mut Vec<String>,
) {
    if !query.include_deleted {
        conditions.push("tombstone = 0".to_owned());
    }
    if let Some(workspace_ids) = &query.workspace_ids {
        if workspace_ids.is_empty() {
            conditions.push("1 = 0".to_owned());
        } else {
            conditions.push(format!(
                "workspace_id IN ({})",
                placeholders(values.len() + 1, workspace_ids.len())
            ));
            values.extend(workspace_ids.iter().map(Uuid::to_string));
        }
    }
}

impl Store {
    pub async fn create_definition(
        &self,
        definition: &CustomDefinition,
    ) -> Result<CustomDefinition> {
        let command = to_json("connector_definitions", "command", &definition.command)?;
        sqlx::query(
            "INSERT INTO connector_definitions (id, workspace_id, kind, name, docker_repository, docker_image_tag, documentation_url, command, tombstone, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)",
        )
        .bind(definition.id.to_string())
        .bind(definition.workspace_id.to_string())
        .bind(definition.kind.as_str())
        .bind(&definition.name)
        .bind(&definition.docker_repository)
        .bind(&definition.docker_image_tag)
        .bind(definition.documentation_url.as_deref())
        .bind(command)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        self.definition(definition.kind, definition.id).await
    }

    /// The live custom definition of that kind.
    pub async fn definition(&self, kind: ConnectorRole, id: Uuid) -> Result<CustomDefinition> {
        let row = sqlx::query(
            "SELECT * FROM connector_definitions WHERE id = $1 AND kind = $2 AND tombstone = 0",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("connector definition", id))?;
        definition_from_row(&row)
    }

    /// The SPEC (`connectionSpecification`) the live custom definition's program printed,
    /// if a data plane ran `spec` for it yet.
    pub async fn definition_spec(
        &self,
        kind: ConnectorRole,
        id: Uuid,
    ) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query(
            "SELECT id, spec FROM connector_definitions WHERE id = $1 AND kind = $2 AND tombstone = 0",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("connector definition", id))?;
        Columns::of("connector_definitions", &row).optional_json("spec")
    }

    /// Keeps the SPEC the definition's program printed (its command never changes, so
    /// neither does the SPEC).
    pub async fn set_definition_spec(
        &self,
        kind: ConnectorRole,
        id: Uuid,
        spec: &serde_json::Value,
    ) -> Result<()> {
        let spec = to_json("connector_definitions", "spec", spec)?;
        sqlx::query("UPDATE connector_definitions SET spec = $1 WHERE id = $2 AND kind = $3")
            .bind(spec)
            .bind(id.to_string())
            .bind(kind.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn definitions(
        &self,
        kind: ConnectorRole,
        workspace_id: Uuid,
    ) -> Result<Vec<CustomDefinition>> {
        sqlx::query(
            "SELECT * FROM connector_definitions WHERE workspace_id = $1 AND kind = $2 AND tombstone = 0 ORDER BY created_at, id",
        )
        .bind(workspace_id.to_string())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(definition_from_row)
        .collect()
    }

    pub async fn delete_definition(&self, kind: ConnectorRole, id: Uuid) -> Result<()> {
        let result = sqlx::query(
            "UPDATE connector_definitions SET tombstone = 1 WHERE id = $1 AND kind = $2 AND tombstone = 0",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("connector definition", id));
        }
        Ok(())
    }

    pub async fn create_actor(&self, actor: &NewActor) -> Result<Actor> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO actors (id, kind, workspace_id, name, connector_type, definition_id, configuration, tombstone, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
        )
        .bind(actor.id.to_string())
        .bind(actor.kind.as_str())
        .bind(actor.workspace_id.to_string())
        .bind(&actor.name)
        .bind(&actor.connector_type)
        .bind(actor.definition_id.to_string())
        .bind(&actor.configuration)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.actor(actor.kind, actor.id).await
    }

    /// The live source or destination.
    pub async fn actor(&self, kind: ConnectorRole, id: Uuid) -> Result<Actor> {
        let row = sqlx::query("SELECT * FROM actors WHERE id = $1 AND kind = $2 AND tombstone = 0")
            .bind(id.to_string())
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(kind.as_str(), id))?;
        actor_from_row(&row)
    }

    pub async fn actors(&self, kind: ConnectorRole, query: &ScopedQuery) -> Result<Vec<Actor>> {
        let mut conditions = vec!["kind = $1".to_owned()];
        let mut values = vec![kind.as_str().to_owned()];
        scoped_conditions(query, &mut conditions, &mut values);
        let sql = format!(
            "SELECT * FROM actors WHERE {} ORDER BY created_at, id LIMIT ${} OFFSET ${}",
            conditions.join(" AND "),
            values.len() + 1,
            values.len() + 2
        );
        self.fetch_bound(&sql, values, &[query.limit, query.offset])
            .await?
            .iter()
            .map(actor_from_row)
            .collect()
    }

    /// Renames the actor and/or replaces its configuration.
    pub async fn update_actor(
        &self,
        kind: ConnectorRole,
        id: Uuid,
        name: Option<&str>,
        configuration: Option<&str>,
    ) -> Result<Actor> {
        let current = self.actor(kind, id).await?;
        sqlx::query(
            "UPDATE actors SET name = $1, configuration = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name.unwrap_or(&current.name))
        .bind(configuration.unwrap_or(&current.configuration))
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        self.actor(kind, id).await
    }

    /// Soft-deletes the actor and, as Airbyte does, the connections that use it.
    pub async fn delete_actor(&self, kind: ConnectorRole, id: Uuid) -> Result<()> {
        let mut transaction = self.begin_write().await?;
        let now = now_millis();
        let deleted = sqlx::query(
            "UPDATE actors SET tombstone = 1, updated_at = $1 WHERE id = $2 AND kind = $3 AND tombstone = 0",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(kind.as_str())
        .execute(&mut *transaction)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found(kind.as_str(), id));
        }
        sqlx::query(
            "UPDATE connections SET tombstone = 1, updated_at = $1 WHERE (source_id = $2 OR destination_id = $2) AND tombstone = 0",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn update_connection(
        &self,
        id: Uuid,
        changes: &ConnectionChanges,
    ) -> Result<Connection> {
        let current = self.connection(id).await?;
        let schedule = changes.schedule.as_ref().unwrap_or(&current.schedule);
        let configurations = changes
            .configurations
            .as_ref()
            .unwrap_or(&current.configurations);
        let naming = changes.naming.as_ref().unwrap_or(&current.naming);
        sqlx::query(
            "UPDATE connections SET name = $1, status = $2, schedule = $3, configurations = $4, naming = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(changes.name.as_deref().unwrap_or(&current.name))
        .bind(changes.status.as_deref().unwrap_or(&current.status))
        .bind(to_json("connections", "schedule", schedule)?)
        .bind(to_json("connections", "configurations", configurations)?)
        .bind(to_json("connections", "naming", naming)?)
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        self.connection(id).await
    }

    /// Sets (or, with `None`, clears) when the connection next runs on its schedule.
    pub async fn set_next_run(&self, id: Uuid, next_run_at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE connections SET next_run_at = $1 WHERE id = $2")
            .bind(next_run_at)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live, active connections whose next scheduled run is due: their ids, with that run's
    /// time. Ids only, so that one connection that cannot be read delays no other.
    pub async fn due_connections(&self, now: i64) -> Result<Vec<(Uuid, i64)>> {
        sqlx::query(
            "SELECT id, next_run_at FROM connections WHERE tombstone = 0 AND status = 'active' AND next_run_at <= $1 ORDER BY next_run_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let columns = Columns::of("connections", row);
            Ok((columns.uuid("id")?, columns.get("next_run_at")?))
        })
        .collect()
    }

    /// Moves the connection's next run from `due` to `next`; false when another control-plane
    /// replica already did (so each run is started once).
    pub async fn advance_next_run(&self, id: Uuid, due: i64, next: Option<i64>) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE connections SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3",
        )
        .bind(next)
        .bind(id.to_string())
        .bind(due)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    pub async fn delete_connection(&self, id: Uuid) -> Result<()> {
        let deleted = sqlx::query(
            "UPDATE connections SET tombstone = 1, updated_at = $1 WHERE id = $2 AND tombstone = 0",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found("connection", id));
        }
        Ok(())
    }

    pub async fn create_connection(&self, connection: &NewConnection) -> Result<Connection> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO connections (id, workspace_id, source_id, destination_id, name, status, schedule, configurations, naming, tombstone, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
        )
        .bind(connection.id.to_string())
        .bind(connection.workspace_id.to_string())
        .bind(connection.source_id.to_string())
        .bind(connection.destination_id.to_string())
        .bind(&connection.name)
        .bind(&connection.status)
        .bind(to_json("connections", "schedule", &connection.schedule)?)
        .bind(to_json(
            "connections",
            "configurations",
            &connection.configurations,
        )?)
        .bind(to_json("connections", "naming", &connection.naming)?)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.connection(connection.id).await
    }

    pub async fn connection(&self, id: Uuid) -> Result<Connection> {
        let row = sqlx::query("SELECT * FROM connections WHERE id = $1 AND tombstone = 0")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("connection", id))?;
        connection_from_row(&row)
    }

    pub async fn connections(&self, query: &ScopedQuery) -> Result<Vec<Connection>> {
        let mut conditions = vec!["1 = 1".to_owned()];
        let mut values = Vec::new();
        scoped_conditions(query, &mut conditions, &mut values);
        let sql = format!(
            "SELECT * FROM connections WHERE {} ORDER BY created_at, id LIMIT ${} OFFSET ${}",
            conditions.join(" AND "),
            values.len() + 1,
            values.len() + 2
        );
        self.fetch_bound(&sql, values, &[query.limit, query.offset])
            .await?
            .iter()
            .map(connection_from_row)
            .collect()
    }
}
