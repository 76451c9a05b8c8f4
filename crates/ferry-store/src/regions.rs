use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::Columns;
use crate::{NewRegion, Region, RegionChanges, Result, Store, StoreError, flag, now_millis};

fn region_from_row(row: &AnyRow) -> Result<Region> {
    let columns = Columns::of("regions", row);
    Ok(Region {
        id: columns.uuid("id")?,
        organization_id: columns.uuid("organization_id")?,
        name: columns.get("name")?,
        enabled: columns.flag("enabled")?,
        tombstone: columns.flag("tombstone")?,
        created_at: columns.get("created_at")?,
        updated_at: columns.get("updated_at")?,
    })
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a region named '{name}' already exists in this organization"
    ))
}

impl Store {
    pub async fn create_region(&self, region: &NewRegion) -> Result<Region> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO regions (id, organization_id, name, name_key, enabled, tombstone, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(region.id.to_string())
        .bind(region.organization_id.to_string())
        .bind(&region.name)
        .bind(region.name.to_lowercase())
        .bind(flag(region.enabled))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => name_taken(&region.name),
            other => other,
        })?;
        self.region(region.id).await
    }

    /// The region, even if deleted: workspaces and jobs keep pointing at it.
    pub async fn region(&self, id: Uuid) -> Result<Region> {
        let row = sqlx::query("SELECT * FROM regions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("region", id))?;
        region_from_row(&row)
    }

    /// The live (not deleted) region of that name in the organization, case-insensitively.
    pub async fn region_by_name(
        &self,
        organization_id: Uuid,
        name: &str,
    ) -> Result<Option<Region>> {
        let row = sqlx::query(
            "SELECT * FROM regions WHERE organization_id = $1 AND name_key = $2 AND tombstone = 0",
        )
        .bind(organization_id.to_string())
        .bind(name.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(region_from_row).transpose()
    }

    pub async fn regions(&self, organization_id: Uuid) -> Result<Vec<Region>> {
        sqlx::query(
            "SELECT * FROM regions WHERE organization_id = $1 AND tombstone = 0 ORDER BY created_at, id",
        )
        .bind(organization_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(region_from_row)
        .collect()
    }

    pub async fn update_region(&self, id: Uuid, changes: &RegionChanges) -> Result<Region> {
        let current = self.live_region(id).await?;
        let name = changes.name.clone().unwrap_or(current.name);
        let enabled = changes.enabled.unwrap_or(current.enabled);
        sqlx::query(
            "UPDATE regions SET name = $1, name_key = $2, enabled = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(flag(enabled))
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => name_taken(&name),
            other => other,
        })?;
        self.region(id).await
    }

    /// Soft-deletes the region, refusing while live data planes or workspaces use it, or
    /// while it is its organization's default.
    pub async fn delete_region(&self, id: Uuid) -> Result<Region> {
        let mut transaction = self.begin_write().await?;
        let id_text = id.to_string();
        let exists = sqlx::query("SELECT id FROM regions WHERE id = $1 AND tombstone = 0")
            .bind(&id_text)
            .fetch_optional(&mut *transaction)
            .await?;
        if exists.is_none() {
            return Err(StoreError::not_found("region", id));
        }
        let dataplanes: Vec<String> = sqlx::query(
            "SELECT name FROM dataplanes WHERE region_id = $1 AND tombstone = 0 ORDER BY name",
        )
        .bind(&id_text)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| row.try_get("name"))
        .collect::<std::result::Result<_, _>>()?;
        let workspaces: Vec<String> = sqlx::query(
            "SELECT name FROM workspaces WHERE region_id = $1 AND tombstone = 0 ORDER BY name",
        )
        .bind(&id_text)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| row.try_get("name"))
        .collect::<std::result::Result<_, _>>()?;
        let is_default = sqlx::query("SELECT id FROM organizations WHERE default_region_id = $1")
            .bind(&id_text)
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
        let mut reasons = Vec::new();
        if !dataplanes.is_empty() {
            reasons.push(format!("data planes: {}", quote_list(&dataplanes)));
        }
        if !workspaces.is_empty() {
            reasons.push(format!("workspaces: {}", quote_list(&workspaces)));
        }
        if is_default {
            reasons.push("it is the organization's default region".to_owned());
        }
        if !reasons.is_empty() {
            return Err(StoreError::InUse(format!(
                "region is still in use ({})",
                reasons.join("; ")
            )));
        }
        sqlx::query("UPDATE regions SET tombstone = 1, updated_at = $1 WHERE id = $2")
            .bind(now_millis())
            .bind(&id_text)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        self.region(id).await
    }

    /// The region unless it is deleted (then: not found).
    pub async fn live_region(&self, id: Uuid) -> Result<Region> {
        let region = self.region(id).await?;
        if region.tombstone {
            return Err(StoreError::not_found("region", id));
        }
        Ok(region)
    }
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
