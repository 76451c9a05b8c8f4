//! What the control plane records of the guide's buckets: how much of each attempt's log
//! its log bucket holds (the state bucket's references live with the states, `attempts.rs`).

use uuid::Uuid;

use crate::decode::Columns;
use crate::{Result, Store, StoreError};

impl Store {
    /// How many bytes of the attempt's log the log bucket holds.
    pub async fn attempt_log_bytes(&self, attempt_id: Uuid) -> Result<i64> {
        let row = sqlx::query("SELECT log_bytes FROM attempts WHERE id = $1")
            .bind(attempt_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("attempt", attempt_id))?;
        Columns::of("attempts", &row).get("log_bytes")
    }

    /// Moves the attempt's log length from `from` to `to`, only if it is still `from`:
    /// `false` when another request moved it first.
    pub async fn advance_attempt_log(&self, attempt_id: Uuid, from: i64, to: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE attempts SET log_bytes = $1 WHERE id = $2 AND log_bytes = $3")
                .bind(to)
                .bind(attempt_id.to_string())
                .bind(from)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
