//! Loading rows: COPY runs of rows already in COPY form, and the buffered rows made from
//! records, each with a fresh `_airbyte_raw_id`.

use ferry_protocol::{CopyFormat, RangeMark};
use sqlx::postgres::PgConnection;

use super::super::{copy_binary, database_error, idle_bounded, quote_identifier, run_sql};
use super::lanes::{LaneCopy, Lanes};
use super::record_row::ExtractedAt;
use super::table::{Mode, StreamTable};
use crate::ConnectorError;
use crate::driver::CopyRun;
use crate::emitter::now_millis;

impl StreamTable {
    /// The COPY column list of rows made from records: the Airbyte columns, the stream's, and
    /// `_airbyte_meta` last (it records what went wrong with the others).
    pub(super) fn copy_statement(&self) -> String {
        let mut columns = String::from(
            "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_generation_id\"",
        );
        for column in &self.columns {
            columns.push_str(", ");
            columns.push_str(&quote_identifier(&column.name));
        }
        columns.push_str(", \"_airbyte_meta\"");
        format!("COPY {} ({columns}) FROM STDIN", self.load_table())
    }

    /// Takes rows that are already COPY text or binary of the stream's columns: the whole
    /// run into one COPY statement, so that PostgreSQL parses one batch while the next is on
    /// its way. Each row gains its
    /// `_airbyte_raw_id` here (the other Airbyte columns take their defaults):
    /// `gen_random_uuid()` as a default would cost the database 3 µs a row, more than the rest.
    pub(super) async fn copy_rows(
        &mut self,
        index: usize,
        run: &mut CopyRun<'_>,
        ids: &mut RawIds,
        connection: &mut PgConnection,
        lanes: &mut Lanes,
    ) -> Result<(), ConnectorError> {
        let columns = run.columns().clone();
        let format = run.format().clone();
        let binary = match &format {
            CopyFormat::Binary { types } => {
                self.check_binary_rows(&columns, types)?;
                true
            }
            CopyFormat::Text => false,
        };
        let names: Vec<String> = columns.iter().map(|name| quote_identifier(name)).collect();
        // An appended table is the final one, read while it is written: its other Airbyte
        // columns come with each row (text only: appends take no binary rows), not from
        // defaults set for the sync, which would take a lock that every reader waits for.
        let (airbyte_columns, after_id) = match self.mode {
            Mode::Append => (
                "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_generation_id\", \"_airbyte_meta\"",
                format!(
                    "{}\t{}\t{{\"changes\": [], \"sync_id\": {}}}\t",
                    ExtractedAt::default().text(now_millis()),
                    self.generation_id,
                    self.sync_id
                ),
            ),
            Mode::Overwrite | Mode::AppendDedup => ("\"_airbyte_raw_id\"", String::new()),
        };
        let statement = format!(
            "COPY {} ({airbyte_columns}, {}) FROM STDIN",
            self.load_table(),
            names.join(", "),
        );
        let context = format!("loading {}", self.final_table());
        // An overwrite's fresh table takes each lane of rows through a connection of its
        // own: committed before the swap, which alone makes them visible.
        if self.mode == Mode::Overwrite {
            while let Some(mut batch) = run.next_batch().await {
                if let Some(RangeMark::Begins { split, skipped }) = &batch.mark {
                    if self.freezing {
                        return Err(ConnectorError::Failed(format!(
                            "stream '{}': a read in ranges began after rows of a whole one",
                            self.source_name
                        )));
                    }
                    self.ranged = true;
                    self.begin_split(split, skipped, lanes).await?;
                    batch.mark = None;
                    if batch.count == 0 {
                        continue;
                    }
                }
                // A whole read into a table no earlier attempt left rows in is its one lane's
                // alone: loaded frozen (below), in the transaction that empties it.
                let freeze = !self.ranged && self.resumed_split.is_none() && batch.lane == 0;
                let mut opened = false;
                let copy = || {
                    opened = true;
                    LaneCopy {
                        statement: statement.clone(),
                        binary,
                        context: context.clone(),
                        marks: self.lane_marks.clone(),
                        freeze_into: freeze.then(|| self.load_table()),
                    }
                };
                lanes.send(index, copy, batch).await?;
                self.freezing |= opened && freeze;
            }
            return Ok(());
        }
        let statement = format!("{statement}{}", copy_options(binary, false));
        let malformed = || ConnectorError::Failed(format!("{context}: malformed COPY binary rows"));
        let mut copy = connection
            .copy_in_raw(&statement)
            .await
            .map_err(|error| database_error(&context, error))?;
        self.buffer.clear();
        if binary {
            self.buffer.extend_from_slice(copy_binary::HEADER);
        }
        while let Some(batch) = run.next_batch().await {
            let rows = RowsOut {
                data: &batch.data,
                binary,
                after_id: after_id.as_bytes(),
            };
            if encode_rows(&mut self.buffer, rows, ids).is_err() {
                let _ = copy.abort("ferry: malformed rows").await;
                return Err(malformed());
            }
            if let Err(error) = idle_bounded(copy.send(self.buffer.as_slice())).await {
                let _ = copy.abort("ferry: send failed").await;
                return Err(database_error(&context, error));
            }
            self.buffer.clear();
        }
        if binary && let Err(error) = idle_bounded(copy.send(copy_binary::TRAILER)).await {
            let _ = copy.abort("ferry: send failed").await;
            return Err(database_error(&context, error));
        }
        copy.finish()
            .await
            .map_err(|error| database_error(&context, error))?;
        self.staged |= self.mode == Mode::AppendDedup && !self.first_load;
        Ok(())
    }

    /// A parallel read's split of its table begins: the ranges of any other split that the
    /// fresh table holds go (it is emptied, on a connection of its own, before any lane
    /// writes into it). A read that skips ranges this table does not hold (resumed from a
    /// state that was not this destination's) is refused: their rows would be missing.
    async fn begin_split(
        &mut self,
        split: &str,
        skipped: &[u32],
        lanes: &Lanes,
    ) -> Result<(), ConnectorError> {
        let held = match &self.resumed_split {
            Some((resumed, held)) if resumed == split => held.as_slice(),
            _ => &[],
        };
        if let Some(missing) = skipped.iter().find(|index| !held.contains(index)) {
            return Err(ConnectorError::Failed(format!(
                "stream '{}': the source resumes its read past range {missing} of its table, \
                 which {} does not hold; the read must start over (reset the stream)",
                self.source_name,
                self.load_table()
            )));
        }
        let Some((resumed, _)) = &self.resumed_split else {
            return Ok(());
        };
        if resumed == split {
            return Ok(());
        }
        let context = format!("starting {} over", self.final_table());
        let mut connection = lanes.connect().await?;
        let truncate = format!("BEGIN; TRUNCATE {}", self.load_table());
        run_sql(&mut connection, &truncate)
            .await
            .map_err(|error| database_error(&context, error))?;
        if let Some(marks) = &self.lane_marks {
            marks.marks.forget(&mut connection, &marks.stream).await?;
        }
        run_sql(&mut connection, "COMMIT")
            .await
            .map_err(|error| database_error(&context, error))?;
        let _ = sqlx::Connection::close(connection).await;
        tracing::info!(table = %self.final_table(), "the source's table was cut otherwise: the fresh table starts over");
        self.resumed_split = None;
        Ok(())
    }

    pub(super) async fn flush(
        &mut self,
        connection: &mut PgConnection,
    ) -> Result<(), ConnectorError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let context = format!("loading {}", self.final_table());
        let mut copy = connection
            .copy_in_raw(&self.copy_statement())
            .await
            .map_err(|error| database_error(&context, error))?;
        let sent = idle_bounded(copy.send(self.buffer.as_slice()))
            .await
            .map(drop);
        if let Err(error) = sent {
            let _ = copy.abort("ferry: send failed").await;
            return Err(database_error(&context, error));
        }
        copy.finish()
            .await
            .map_err(|error| database_error(&context, error))?;
        self.buffer.clear();
        self.staged |= self.mode == Mode::AppendDedup && !self.first_load;
        Ok(())
    }
}

/// The options of a COPY of rows in COPY binary or text. Frozen rows (the table created or
/// emptied in the same transaction) are visible to every later transaction from the start:
/// the first query of the table then checks and rewrites none of its pages to say so (on
/// 2 M rows, the first `count(*)` takes 135 ms instead of 285), and no vacuum rewrites them
/// later to freeze them.
pub(super) fn copy_options(binary: bool, freeze: bool) -> &'static str {
    match (binary, freeze) {
        (true, true) => " (FORMAT binary, FREEZE)",
        (true, false) => " (FORMAT binary)",
        (false, true) => " (FREEZE)",
        (false, false) => "",
    }
}

/// A batch of rows to encode: COPY text lines, or whole COPY binary tuples.
pub(super) struct RowsOut<'a> {
    pub(super) data: &'a [u8],
    pub(super) binary: bool,
    /// COPY text fields (each ending in a tab) that follow the raw id of every text row.
    pub(super) after_id: &'a [u8],
}

/// Appends the rows of a batch, each with a new `_airbyte_raw_id` first.
pub(super) fn encode_rows(
    out: &mut Vec<u8>,
    rows: RowsOut<'_>,
    ids: &mut RawIds,
) -> Result<(), copy_binary::Malformed> {
    let RowsOut {
        data,
        binary,
        after_id,
    } = rows;
    if !binary {
        for row in data.split_inclusive(|byte| *byte == b'\n') {
            ids.write(out);
            out.push(b'\t');
            out.extend_from_slice(after_id);
            out.extend_from_slice(row);
        }
        return Ok(());
    }
    if !after_id.is_empty() {
        return Err(copy_binary::Malformed);
    }
    let mut id = Vec::with_capacity(36);
    let mut data = data;
    while !data.is_empty() {
        let copy_binary::Next::Tuple(length) = copy_binary::next(data)? else {
            return Err(copy_binary::Malformed);
        };
        id.clear();
        ids.write(&mut id);
        copy_binary::push_with_first_field(out, &data[..length], &id)?;
        data = &data[length..];
    }
    Ok(())
}

/// `_airbyte_raw_id`s: random (v4) UUIDs from a generator seeded once, since one system call
/// per record would cost more than the rest of the row.
pub(super) struct RawIds {
    state: u64,
    text: [u8; 36],
}

impl RawIds {
    pub(super) fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Self {
            state: u64::from_le_bytes(seed) ^ clock,
            text: [0; 36],
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn write(&mut self, out: &mut Vec<u8>) {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        out.extend_from_slice(id.hyphenated().encode_lower(&mut self.text).as_bytes());
    }
}
