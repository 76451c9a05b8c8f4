use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::Columns;
use crate::{
    Dataplane, DataplaneChanges, NewDataplane, PrincipalKind, Result, Store, StoreError, flag,
    now_millis, placeholders,
};

fn dataplane_from_row(row: &AnyRow) -> Result<Dataplane> {
    let columns = Columns::of("dataplanes", row);
    Ok(Dataplane {
        id: columns.uuid("id")?,
        region_id: columns.uuid("region_id")?,
        name: columns.get("name")?,
        enabled: columns.flag("enabled")?,
        tombstone: columns.flag("tombstone")?,
        client_id: columns.get("client_id")?,
        secret_hash: columns.get("secret_hash")?,
        previous_secret_hash: columns.get("previous_secret_hash")?,
        previous_secret_valid_until: columns.get("previous_secret_valid_until")?,
        last_heartbeat_at: columns.get("last_heartbeat_at")?,
        version: columns.get("version")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
    })
}

impl Store {
    pub async fn create_dataplane(&self, dataplane: &NewDataplane) -> Result<Dataplane> {
        // Checked in the same statement's transaction so a region deleted meanwhile is not
        // given a data plane.
        let mut transaction = self.begin_write().await?;
        let region = sqlx::query("SELECT id FROM regions WHERE id = $1 AND tombstone = 0")
            .bind(dataplane.region_id.to_string())
            .fetch_optional(&mut *transaction)
            .await?;
        if region.is_none() {
            return Err(StoreError::not_found("region", dataplane.region_id));
        }
        let now = now_millis();
        sqlx::query(
            "INSERT INTO dataplanes (id, region_id, name, enabled, tombstone, client_id, secret_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $7)",
        )
        .bind(dataplane.id.to_string())
        .bind(dataplane.region_id.to_string())
        .bind(&dataplane.name)
        .bind(flag(dataplane.enabled))
        .bind(&dataplane.client_id)
        .bind(&dataplane.secret_hash)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.dataplane(dataplane.id).await
    }

    /// The data plane, even if deleted.
    pub async fn dataplane(&self, id: Uuid) -> Result<Dataplane> {
        let row = sqlx::query("SELECT * FROM dataplanes WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("dataplane", id))?;
        dataplane_from_row(&row)
    }

    pub async fn live_dataplane(&self, id: Uuid) -> Result<Dataplane> {
        let dataplane = self.dataplane(id).await?;
        if dataplane.tombstone {
            return Err(StoreError::not_found("dataplane", id));
        }
        Ok(dataplane)
    }

    pub async fn dataplane_by_client_id(&self, client_id: &str) -> Result<Option<Dataplane>> {
        let row = sqlx::query("SELECT * FROM dataplanes WHERE client_id = $1 AND tombstone = 0")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dataplane_from_row).transpose()
    }

    /// Live data planes, of the given regions when any are named.
    pub async fn dataplanes(&self, region_ids: &[Uuid]) -> Result<Vec<Dataplane>> {
        let sql = if region_ids.is_empty() {
            "SELECT * FROM dataplanes WHERE tombstone = 0 ORDER BY created_at, id".to_owned()
        } else {
            format!(
                "SELECT * FROM dataplanes WHERE tombstone = 0 AND region_id IN ({}) ORDER BY created_at, id",
                placeholders(1, region_ids.len())
            )
        };
        let values = region_ids.iter().map(Uuid::to_string).collect();
        self.fetch_bound(&sql, values, &[])
            .await?
            .iter()
            .map(dataplane_from_row)
            .collect()
    }

    pub async fn update_dataplane(
        &self,
        id: Uuid,
        changes: &DataplaneChanges,
    ) -> Result<Dataplane> {
        let current = self.live_dataplane(id).await?;
        sqlx::query("UPDATE dataplanes SET name = $1, enabled = $2, updated_at = $3 WHERE id = $4")
            .bind(changes.name.as_deref().unwrap_or(&current.name))
            .bind(flag(changes.enabled.unwrap_or(current.enabled)))
            .bind(now_millis())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        self.dataplane(id).await
    }

    /// Soft-deletes the data plane and revokes its tokens at once.
    pub async fn delete_dataplane(&self, id: Uuid) -> Result<Dataplane> {
        let mut transaction = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE dataplanes SET tombstone = 1, updated_at = $1 WHERE id = $2 AND tombstone = 0",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("dataplane", id));
        }
        sqlx::query("DELETE FROM access_tokens WHERE principal_kind = $1 AND principal_id = $2")
            .bind(PrincipalKind::Dataplane.as_str())
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        self.dataplane(id).await
    }

    /// Replaces the secret; the old one keeps working until `previous_valid_until` (epoch
    /// ms), and tokens issued under it are revoked now.
    pub async fn rotate_dataplane_secret(
        &self,
        id: Uuid,
        new_secret_hash: &str,
        previous_valid_until: i64,
    ) -> Result<Dataplane> {
        let mut transaction = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE dataplanes SET previous_secret_hash = secret_hash, previous_secret_valid_until = $1,
                 secret_hash = $2, updated_at = $3
             WHERE id = $4 AND tombstone = 0",
        )
        .bind(previous_valid_until)
        .bind(new_secret_hash)
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("dataplane", id));
        }
        sqlx::query("DELETE FROM access_tokens WHERE principal_kind = $1 AND principal_id = $2")
            .bind(PrincipalKind::Dataplane.as_str())
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        self.dataplane(id).await
    }

    /// Records a heartbeat (or an initialize) from the data plane.
    pub async fn record_dataplane_heartbeat(&self, id: Uuid, version: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE dataplanes SET last_heartbeat_at = $1, version = COALESCE($2, version) WHERE id = $3",
        )
        .bind(now_millis())
        .bind(version)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
