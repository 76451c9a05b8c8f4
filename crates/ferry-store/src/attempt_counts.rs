//! How busy data planes are: the attempts each is running now.

use std::collections::HashMap;

use sqlx::Row;
use uuid::Uuid;

use crate::{Result, Store, StoreError};

impl Store {
    /// The number of running attempts per data plane (planes running none are absent).
    pub async fn running_attempts_per_dataplane(&self) -> Result<HashMap<Uuid, i64>> {
        let rows = sqlx::query(
            "SELECT dataplane_id, COUNT(*) AS running FROM attempts
             WHERE status = 'running' GROUP BY dataplane_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("dataplane_id")?;
            let running: i64 = row.try_get("running")?;
            let id = Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt {
                table: "attempts",
                column: "dataplane_id",
                id: id.clone(),
                reason: "not a UUID".to_owned(),
            })?;
            counts.insert(id, running);
        }
        Ok(counts)
    }
}
