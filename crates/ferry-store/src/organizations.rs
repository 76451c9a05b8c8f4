use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::Columns;
use crate::{Organization, Result, Store, StoreError, now_millis};

fn organization_from_row(row: &AnyRow) -> Result<Organization> {
    let columns = Columns::of("organizations", row);
    Ok(Organization {
        id: columns.uuid("id")?,
        name: columns.get("name")?,
        email: columns.get("email")?,
        default_region_id: columns.optional_uuid("default_region_id")?,
        created_at: columns.get("created_at")?,
    })
}

impl Store {
    /// Creates the organization unless it exists; returns it either way.
    pub async fn ensure_organization(
        &self,
        id: Uuid,
        name: &str,
        email: &str,
    ) -> Result<Organization> {
        sqlx::query(
            "INSERT INTO organizations (id, name, email, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(email)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        self.organization(id).await
    }

    pub async fn organization(&self, id: Uuid) -> Result<Organization> {
        let row = sqlx::query("SELECT * FROM organizations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("organization", id))?;
        organization_from_row(&row)
    }

    pub async fn organizations(&self) -> Result<Vec<Organization>> {
        sqlx::query("SELECT * FROM organizations ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(organization_from_row)
            .collect()
    }

    pub async fn set_default_region(&self, organization_id: Uuid, region_id: Uuid) -> Result<()> {
        let result = sqlx::query("UPDATE organizations SET default_region_id = $1 WHERE id = $2")
            .bind(region_id.to_string())
            .bind(organization_id.to_string())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("organization", organization_id));
        }
        Ok(())
    }
}
