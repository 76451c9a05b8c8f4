//! Users' passwords and web-UI sessions. Callers hand in hashes (an Argon2id hash of the
//! password, the SHA-256 of the session cookie), never the secrets themselves.

use uuid::Uuid;

use crate::decode::Columns;
use crate::{Result, Store, StoreError, now_millis};

/// A signed-in browser: whose session, its CSRF token (sent back with every form), and
/// until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    pub token_hash: String,
    pub user_id: Uuid,
    pub csrf_token: String,
    pub expires_at: i64,
}

impl Store {
    /// Sets (or replaces) the user's password hash; every session of the user ends, so a
    /// changed password signs out whoever knew the old one.
    pub async fn set_user_password(&self, user_id: Uuid, password_hash: &str) -> Result<()> {
        self.user(user_id).await?;
        let mut transaction = self.pool.begin().await?;
        sqlx::query("DELETE FROM user_passwords WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO user_passwords (user_id, password_hash, updated_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id.to_string())
        .bind(password_hash)
        .bind(now_millis())
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM ui_sessions WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The user's password hash, if one was set.
    pub async fn user_password_hash(&self, user_id: Uuid) -> Result<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM user_passwords WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|row| Columns::of("user_passwords", row).get("password_hash"))
            .transpose()
    }

    pub async fn insert_ui_session(&self, session: &UiSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO ui_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(session.user_id.to_string())
        .bind(&session.csrf_token)
        .bind(now_millis())
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with that hash, if it exists and has not expired.
    pub async fn live_ui_session(&self, token_hash: &str) -> Result<Option<UiSession>> {
        let row =
            sqlx::query("SELECT * FROM ui_sessions WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now_millis())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let columns = Columns::of("ui_sessions", &row);
        Ok(Some(UiSession {
            token_hash: columns.get("token_hash")?,
            user_id: columns.uuid("user_id")?,
            csrf_token: columns.get("csrf_token")?,
            expires_at: columns.get("expires_at")?,
        }))
    }

    /// Ends the session (sign-out); ending one that is gone is no error.
    pub async fn delete_ui_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops expired sessions; returns how many.
    pub async fn purge_expired_ui_sessions(&self) -> Result<u64> {
        let result = sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(result.rows_affected())
    }
}
