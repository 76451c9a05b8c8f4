//! The destination's own record of the states it made durable, one row per connection and
//! stream in `<default schema>._ferry_checkpoints`, written in the transaction that commits
//! the rows a state covers. The control plane commits a state only after the destination
//! acknowledged it, so this record is never older than the control plane's; a data plane
//! killed between the two would otherwise make the retry write the rows in between again.

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationSyncMode, SyncMode};
use ferry_protocol::{StateMessage, StreamState};
use sqlx::postgres::PgConnection;

use super::super::{database_error, quote_identifier, run_sql};
use crate::ConnectorError;
use crate::connector::ResumeState;

const TABLE: &str = "_ferry_checkpoints";

/// Where and for whom a write records its checkpoints.
#[derive(Debug, Clone)]
pub(super) struct Checkpoints {
    schema: String,
    table: String,
    connection_id: String,
}

/// Whether a stream resumes from a state, and so needs its checkpoints recorded: read
/// incrementally into a table that is kept (an overwritten one starts over every time).
pub(super) fn is_recorded(sync_mode: SyncMode, mode: DestinationSyncMode) -> bool {
    sync_mode == SyncMode::Incremental
        && matches!(
            mode,
            DestinationSyncMode::Append | DestinationSyncMode::AppendDedup
        )
}

impl Checkpoints {
    pub(super) fn new(schema: &str, connection_id: &str) -> Self {
        Self {
            schema: quote_identifier(schema),
            table: format!("{}.{}", quote_identifier(schema), quote_identifier(TABLE)),
            connection_id: connection_id.to_owned(),
        }
    }

    pub(super) async fn prepare(
        &self,
        connection: &mut PgConnection,
    ) -> Result<(), ConnectorError> {
        // The default schema may hold no stream's table (every stream has a namespace).
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (connection_id text NOT NULL, stream text NOT NULL, \
             state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (connection_id, stream))",
            self.schema, self.table
        );
        run_sql(connection, &sql)
            .await
            .map_err(|error| database_error(&format!("preparing {}", self.table), error))
    }

    /// Records `state` (a stream's) in the open transaction.
    pub(super) async fn record(
        &self,
        connection: &mut PgConnection,
        state: &StateMessage,
    ) -> Result<(), ConnectorError> {
        let Some(stream) = &state.stream else {
            return Ok(());
        };
        let text = serde_json::to_string(stream)
            .map_err(|error| ConnectorError::Failed(format!("recording a state: {error}")))?;
        sqlx::query(&format!(
            "INSERT INTO {} (connection_id, stream, state) VALUES ($1, $2, $3::jsonb) \
             ON CONFLICT (connection_id, stream) DO UPDATE SET state = excluded.state, updated_at = now()",
            self.table
        ))
        .bind(&self.connection_id)
        .bind(stream.stream_descriptor.key())
        .bind(text)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(|error| database_error(&format!("recording a checkpoint in {}", self.table), error))
    }

    /// Forgets a stream's checkpoint (its table was replaced), in the open transaction.
    pub(super) async fn forget(
        &self,
        connection: &mut PgConnection,
        stream_key: &str,
    ) -> Result<(), ConnectorError> {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE connection_id = $1 AND stream = $2",
            self.table
        ))
        .bind(&self.connection_id)
        .bind(stream_key)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(|error| {
            database_error(&format!("forgetting a checkpoint in {}", self.table), error)
        })
    }

    /// The recorded states of the catalog's incrementally kept streams.
    pub(super) async fn read(
        &self,
        connection: &mut PgConnection,
        catalog: &ConfiguredCatalog,
    ) -> Result<Vec<ResumeState>, ConnectorError> {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&self.table)
            .fetch_one(&mut *connection)
            .await
            .map_err(|error| database_error("looking for checkpoints", error))?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT state::text FROM {} WHERE connection_id = $1",
            self.table
        ))
        .bind(&self.connection_id)
        .fetch_all(&mut *connection)
        .await
        .map_err(|error| database_error(&format!("reading {}", self.table), error))?;
        Ok(rows
            .iter()
            .filter_map(|text| serde_json::from_str::<StreamState>(text).ok())
            .filter_map(|stream| {
                let descriptor = stream.stream_descriptor;
                let kept = catalog
                    .stream_of(&descriptor.name, descriptor.namespace.as_deref())
                    .is_some_and(|configured| {
                        is_recorded(configured.sync_mode, configured.destination_sync_mode)
                    });
                Some(ResumeState {
                    stream: descriptor,
                    state: stream.stream_state?,
                })
                .filter(|_| kept)
            })
            .collect())
    }
}
