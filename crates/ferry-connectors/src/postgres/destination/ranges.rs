//! The ranges of an overwrite's fresh table that a parallel read has loaded, one row each in
//! `<default schema>._ferry_ranges`, written by the lane that loaded the range in the
//! transaction that commits its rows (`lanes.rs`): the next attempt of the same job keeps
//! the fresh table and reads only the other ranges (`range_state.rs`). A row names the
//! table and the columns it was made with, so that a table dropped or made otherwise since
//! is never resumed.

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming, DestinationSyncMode};
use sqlx::postgres::PgConnection;

use super::super::range_state;
use super::super::{database_error, quote_identifier, run_sql};
use super::table::StreamTable;
use crate::ConnectorError;
use crate::connector::ResumeState;

const TABLE: &str = "_ferry_ranges";

/// Where and for which connection and job the loaded ranges are recorded.
#[derive(Debug, Clone)]
pub(super) struct RangeMarks {
    schema: String,
    table: String,
    connection_id: String,
    job_id: i64,
}

/// What a lane records with each range it commits.
#[derive(Debug, Clone)]
pub(super) struct LaneMarks {
    pub(super) marks: RangeMarks,
    pub(super) stream: String,
    pub(super) load_table: String,
    pub(super) columns: String,
}

impl RangeMarks {
    pub(super) fn new(schema: &str, connection_id: &str, job_id: i64) -> Self {
        Self {
            schema: quote_identifier(schema),
            table: format!("{}.{}", quote_identifier(schema), quote_identifier(TABLE)),
            connection_id: connection_id.to_owned(),
            job_id,
        }
    }

    pub(super) async fn prepare(
        &self,
        connection: &mut PgConnection,
    ) -> Result<(), ConnectorError> {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (connection_id text NOT NULL, \
             stream text NOT NULL, job_id bigint NOT NULL, split text NOT NULL, range_index bigint NOT NULL, \
             load_table text NOT NULL, columns text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (connection_id, stream, split, range_index))",
            self.schema, self.table
        );
        run_sql(connection, &sql)
            .await
            .map_err(|error| database_error(&format!("preparing {}", self.table), error))
    }

    pub(super) fn for_lane(&self, stream: &str, table: &StreamTable) -> LaneMarks {
        LaneMarks {
            marks: self.clone(),
            stream: stream.to_owned(),
            load_table: table.load_table(),
            columns: table.column_definitions(),
        }
    }

    /// The split and the ranges of it that the fresh table of `lane` (an overwrite's) holds
    /// from an earlier attempt of this job, if it is still the table they went into, with
    /// the same columns.
    pub(super) async fn held(
        &self,
        connection: &mut PgConnection,
        lane: &LaneMarks,
    ) -> Result<Option<(String, Vec<u32>)>, ConnectorError> {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&self.table)
            .fetch_one(&mut *connection)
            .await
            .map_err(|error| database_error("looking for loaded ranges", error))?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT split, range_index FROM {} WHERE connection_id = $1 AND stream = $2 \
             AND job_id = $3 AND load_table = $4 AND columns = $5 AND to_regclass(load_table) IS NOT NULL \
             ORDER BY committed_at DESC, range_index",
            self.table
        ))
        .bind(&self.connection_id)
        .bind(&lane.stream)
        .bind(self.job_id)
        .bind(&lane.load_table)
        .bind(&lane.columns)
        .fetch_all(&mut *connection)
        .await
        .map_err(|error| database_error(&format!("reading {}", self.table), error))?;
        // One split at a time: a new one drops the others (`forget`).
        let Some(split) = rows.first().map(|(split, _)| split.clone()) else {
            return Ok(None);
        };
        let mut loaded: Vec<u32> = rows
            .iter()
            .filter(|(of, _)| *of == split)
            .filter_map(|(_, index)| u32::try_from(*index).ok())
            .collect();
        loaded.sort_unstable();
        Ok(Some((split, loaded)))
    }

    /// The resumable state of each overwritten stream of `catalog` whose fresh table holds
    /// ranges of an earlier attempt of this job.
    pub(super) async fn states(
        &self,
        connection: &mut PgConnection,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
        default_schema: &str,
    ) -> Result<Vec<ResumeState>, ConnectorError> {
        let mut states = Vec::new();
        for (index, configured) in catalog.streams.iter().enumerate() {
            if configured.destination_sync_mode != DestinationSyncMode::Overwrite {
                continue;
            }
            let table = StreamTable::new(configured, naming, default_schema, index)?;
            let stream = configured.stream.descriptor();
            let lane = self.for_lane(&stream.key(), &table);
            if let Some((split, loaded)) = self.held(connection, &lane).await? {
                states.push(ResumeState {
                    state: range_state::state(&split, &loaded),
                    stream,
                });
            }
        }
        Ok(states)
    }

    /// Records range `index` of `split` loaded, in the lane's open transaction; false when
    /// it was already (by another attempt still running: its rows are in once already, and
    /// the lane's must not be).
    pub(super) async fn record(
        connection: &mut PgConnection,
        lane: &LaneMarks,
        split: &str,
        index: u32,
    ) -> Result<bool, ConnectorError> {
        let marks = &lane.marks;
        sqlx::query(&format!(
            "INSERT INTO {} (connection_id, stream, job_id, split, range_index, load_table, columns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            marks.table
        ))
        .bind(&marks.connection_id)
        .bind(&lane.stream)
        .bind(marks.job_id)
        .bind(split)
        .bind(i64::from(index))
        .bind(&lane.load_table)
        .bind(&lane.columns)
        .execute(&mut *connection)
        .await
        .map(|done| done.rows_affected() == 1)
        .map_err(|error| database_error(&format!("recording a range in {}", marks.table), error))
    }

    /// Forgets every range recorded for `stream` (its fresh table is made anew, or in place).
    pub(super) async fn forget(
        &self,
        connection: &mut PgConnection,
        stream: &str,
    ) -> Result<(), ConnectorError> {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE connection_id = $1 AND stream = $2",
            self.table
        ))
        .bind(&self.connection_id)
        .bind(stream)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(|error| database_error(&format!("forgetting ranges in {}", self.table), error))
    }
}
