//! Control-plane persistence.
//!
//! One [`Store`] serves both backends: the embedded default (a SQLite file) and PostgreSQL
//! for production. Queries are written once in the dialect both accept (`$n` placeholders,
//! TEXT ids, BIGINT epoch-millisecond times and 0/1 flags) and run through sqlx's `Any`
//! driver; where the dialects must differ, [`Backend`] says which one is in use. This crate
//! knows nothing of HTTP, hashing or tokens: callers hand it hashes, never secrets.

mod decode;
mod error;
mod identity;
mod migrations;
mod models;
mod organizations;
mod regions;
mod workspaces;

mod actors;
mod attempt_counts;
mod attempts;
mod dataplanes;
mod handback;
mod jobs;
mod stats;
mod storage;
mod tasks;
mod ui_sessions;

pub use attempts::{AttemptOutcome, Failure};
pub use error::StoreError;
pub use handback::HANDED_BACK_REASON;
pub use models::*;
pub use stats::{HeartbeatAge, JobCount, QueueStats};
pub use ui_sessions::UiSession;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the store at `url`:
    /// `sqlite:///path/to/file.db` or `postgres://user@host:port/db`.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::InvalidUrl(redact_url(url)));
        };
        let url = match backend {
            // Create the file on first start; WAL lets readers run beside the single writer.
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|_| StoreError::InvalidUrl(redact_url(&url)))?;
        let pool_options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            });
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|connection, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *connection)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *connection)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let pool = pool_options.connect_with(options).await?;
        let store = Self { pool, backend };
        migrations::run(&store).await?;
        Ok(store)
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later fails with
    /// SQLITE_BUSY, without waiting, whenever another writer committed in between.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let transaction = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(transaction)
    }

    /// Runs a query whose placeholders are bound, in order, to `texts` and then `numbers`.
    async fn fetch_bound(
        &self,
        sql: &str,
        texts: Vec<String>,
        numbers: &[i64],
    ) -> Result<Vec<AnyRow>> {
        let mut statement = sqlx::query(sql);
        for text in texts {
            statement = statement.bind(text);
        }
        for number in numbers {
            statement = statement.bind(*number);
        }
        Ok(statement.fetch_all(&self.pool).await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Answers whether the database is reachable (for health checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM instance_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }

    /// Stores `value` under `key` unless a value is there already; returns the value that
    /// is stored afterwards, so concurrent first starts agree on one.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO instance_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(key).await?.ok_or_else(|| StoreError::Corrupt {
            table: "instance_settings",
            column: "value",
            id: key.to_owned(),
            reason: "vanished right after it was written".to_owned(),
        })
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO instance_settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces the value under `key` only while it is still `expected` (compare-and-set);
    /// whether it did.
    pub async fn replace_setting(&self, key: &str, expected: &str, value: &str) -> Result<bool> {
        let result =
            sqlx::query("UPDATE instance_settings SET value = $1 WHERE key = $2 AND value = $3")
                .bind(value)
                .bind(key)
                .bind(expected)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Milliseconds since the Unix epoch: the one time representation in the store.
pub fn now_millis() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn redact_url(url: &str) -> String {
    // Keep scheme and host for the message, never the password.
    match url.split_once('@') {
        Some((before, after)) => match before.split_once("://") {
            Some((scheme, _credentials)) => format!("{scheme}://***@{after}"),
            None => format!("***@{after}"),
        },
        None => url.to_owned(),
    }
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// `$start, $start+1, …` for `count` values: the placeholder list of an `IN (…)`.
fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_start() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://user:secret@db:5432/x"),
            "postgres://***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
