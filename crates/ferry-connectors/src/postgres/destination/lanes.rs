//! An overwrite's COPY rows written through connections of their own, one a lane of the
//! source's read (a parallel read sends each reader's rows as a lane: `source/parallel.rs`),
//! so that PostgreSQL loads them with as many backends as the source reads them with. The
//! rows go into the overwrite's fresh table, which the swap at the end of the write puts in
//! place: a read that fails leaves the old table as it was. A lane's rows are one COPY,
//! committed when the write ends; a parallel read's instead commit range by range, each
//! with its mark (`ranges.rs`), so that the next attempt of the job reads only the ranges
//! not yet in.

use std::sync::Arc;

use ferry_protocol::{CopyFormat, CopyRows, RangeMark};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::super::{connect, copy_binary, database_error, idle_bounded, run_sql};
use super::load::{RawIds, RowsOut, copy_options, encode_rows};
use super::ranges::{LaneMarks, RangeMarks};
use crate::ConnectorError;

/// Batches on their way to one lane's connection: enough to keep its COPY busy while the
/// others take theirs, few enough to keep memory flat (a batch is about 1 MiB).
const LANE_BATCHES: usize = 2;

/// What a lane's task is sent: rows, or the end (a lane whose sender is dropped without
/// one aborts its COPY, so a write that failed commits nothing through it).
enum LaneInput {
    Rows(CopyRows),
    End,
}

/// How a lane's COPY is made, as the stream's first run of COPY rows shaped it.
pub(super) struct LaneCopy {
    pub(super) statement: String,
    pub(super) binary: bool,
    pub(super) context: String,
    /// Where the lane records each range it commits; none, and ranges are not committed
    /// apart.
    pub(super) marks: Option<LaneMarks>,
    /// The table the lane alone loads, emptied in the transaction of its one COPY and loaded
    /// frozen (`load::copy_options`).
    pub(super) freeze_into: Option<String>,
}

struct Lane {
    stream: usize,
    lane: u16,
    columns: Arc<[String]>,
    format: CopyFormat,
    input: mpsc::Sender<LaneInput>,
    task: JoinHandle<Result<(), ConnectorError>>,
}

/// The open lanes of a write.
pub(super) struct Lanes {
    options: PgConnectOptions,
    open: Vec<Lane>,
}

impl Lanes {
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            open: Vec::new(),
        }
    }

    /// Sends a batch of `stream`'s rows to its lane, which is opened (a connection and a
    /// COPY made by `copy`) on its first batch.
    pub(super) async fn send(
        &mut self,
        stream: usize,
        copy: impl FnOnce() -> LaneCopy,
        batch: CopyRows,
    ) -> Result<(), ConnectorError> {
        let found = self
            .open
            .iter()
            .position(|lane| lane.stream == stream && lane.lane == batch.lane);
        let index = match found {
            Some(index) => index,
            None => {
                let (input, receiver) = mpsc::channel(LANE_BATCHES);
                let task = tokio::spawn(write_lane(self.options.clone(), copy(), receiver));
                self.open.push(Lane {
                    stream,
                    lane: batch.lane,
                    columns: batch.columns.clone(),
                    format: batch.format.clone(),
                    input,
                    task,
                });
                self.open.len() - 1
            }
        };
        let lane = &mut self.open[index];
        if lane.columns != batch.columns || lane.format != batch.format {
            return Err(ConnectorError::Failed(format!(
                "stream {stream}: lane {} changed its columns or format mid-write",
                batch.lane
            )));
        }
        if lane.input.send(LaneInput::Rows(batch)).await.is_err() {
            // The lane's task ended early: its error is the reason.
            let lane = self.open.swap_remove(index);
            return Err(outcome(lane.task.await).err().unwrap_or_else(|| {
                ConnectorError::Failed("a lane of the write ended before its rows".to_owned())
            }));
        }
        Ok(())
    }

    /// A connection to the lanes' database.
    pub(super) async fn connect(&self) -> Result<PgConnection, ConnectorError> {
        connect(&self.options).await
    }

    /// Ends every lane: each COPY finished (committed), or the first failure.
    pub(super) async fn finish(&mut self) -> Result<(), ConnectorError> {
        let lanes = std::mem::take(&mut self.open);
        for lane in &lanes {
            // A lane that already failed has dropped its receiver: its task says why.
            let _ = lane.input.send(LaneInput::End).await;
        }
        let mut first = Ok(());
        for lane in lanes {
            let ended = outcome(lane.task.await);
            if first.is_ok() {
                first = ended;
            }
        }
        first
    }
}

fn outcome(
    joined: Result<Result<(), ConnectorError>, tokio::task::JoinError>,
) -> Result<(), ConnectorError> {
    joined.unwrap_or_else(|error| Err(ConnectorError::Failed(format!("a lane failed: {error}"))))
}

/// How one COPY of a lane ended.
enum Ended {
    /// With the last rows of a range, to be committed with its mark.
    Range { split: Arc<str>, index: u32 },
    /// With the write.
    Write,
}

/// One lane: its own connection, and one COPY of every batch it is sent, or, where ranges
/// are marked, one transaction of each range's rows and its mark.
async fn write_lane(
    options: PgConnectOptions,
    copy: LaneCopy,
    mut input: mpsc::Receiver<LaneInput>,
) -> Result<(), ConnectorError> {
    let mut connection: PgConnection = connect(&options).await?;
    let mut ids = RawIds::new();
    let mut buffer = Vec::new();
    let context = &copy.context;
    let mut marked = false;
    let mut freeze_into = copy.freeze_into.as_deref();
    loop {
        // The next COPY opens with its first batch: a lane whose last range is in commits
        // nothing more.
        let first = match input.recv().await {
            Some(LaneInput::Rows(batch)) => batch,
            Some(LaneInput::End) => break,
            None => return Err(ConnectorError::PipeClosed),
        };
        let freeze = freeze_into.take();
        let begin = match freeze {
            Some(table) => format!("BEGIN; TRUNCATE {table}"),
            None => "BEGIN".to_owned(),
        };
        let in_transaction = copy.marks.is_some() || freeze.is_some();
        if in_transaction {
            run_sql(&mut connection, &begin)
                .await
                .map_err(|error| database_error(context, error))?;
        }
        let statement = format!(
            "{}{}",
            copy.statement,
            copy_options(copy.binary, freeze.is_some())
        );
        let ended = copy_until_mark(
            &mut connection,
            (&copy, &statement),
            first,
            &mut input,
            &mut ids,
            &mut buffer,
        )
        .await?;
        match (ended, &copy.marks) {
            (Ended::Range { split, index }, Some(marks)) => {
                let recorded = RangeMarks::record(&mut connection, marks, &split, index).await?;
                if !recorded {
                    tracing::warn!(%split, index, "a range another attempt loaded already: its rows are not loaded twice");
                }
                let end = if recorded { "COMMIT" } else { "ROLLBACK" };
                run_sql(&mut connection, end)
                    .await
                    .map_err(|error| database_error(context, error))?;
                marked = true;
            }
            (Ended::Range { .. }, None) => {}
            (Ended::Write, Some(_)) => {
                // Rows after a lane's last mark are of a range whose end never came (none
                // when the read completed): they go, as its mark never came.
                let end = if marked { "ROLLBACK" } else { "COMMIT" };
                run_sql(&mut connection, end)
                    .await
                    .map_err(|error| database_error(context, error))?;
                break;
            }
            (Ended::Write, None) => {
                if in_transaction {
                    run_sql(&mut connection, "COMMIT")
                        .await
                        .map_err(|error| database_error(context, error))?;
                }
                break;
            }
        }
    }
    let _ = sqlx::Connection::close(connection).await;
    Ok(())
}

/// One COPY of `first` and the batches after it, up to the end of a range (where ranges are
/// marked) or of the write.
async fn copy_until_mark(
    connection: &mut PgConnection,
    (copy, statement): (&LaneCopy, &str),
    first: CopyRows,
    input: &mut mpsc::Receiver<LaneInput>,
    ids: &mut RawIds,
    buffer: &mut Vec<u8>,
) -> Result<Ended, ConnectorError> {
    let context = &copy.context;
    let mut stream = connection
        .copy_in_raw(statement)
        .await
        .map_err(|error| database_error(context, error))?;
    buffer.clear();
    if copy.binary {
        buffer.extend_from_slice(copy_binary::HEADER);
    }
    let mut batch = first;
    let ended = loop {
        let rows = RowsOut {
            data: &batch.data,
            binary: copy.binary,
            after_id: &[],
        };
        if encode_rows(buffer, rows, ids).is_err() {
            let _ = stream.abort("ferry: malformed rows").await;
            return Err(ConnectorError::Failed(format!(
                "{context}: malformed COPY binary rows"
            )));
        }
        if !buffer.is_empty()
            && let Err(error) = idle_bounded(stream.send(buffer.as_slice())).await
        {
            let _ = stream.abort("ferry: send failed").await;
            return Err(database_error(context, error));
        }
        buffer.clear();
        if let (Some(RangeMark::Ends { split, index }), Some(_)) = (batch.mark, &copy.marks) {
            break Ended::Range { split, index };
        }
        batch = match input.recv().await {
            Some(LaneInput::Rows(batch)) => batch,
            Some(LaneInput::End) => break Ended::Write,
            None => {
                let _ = stream.abort("ferry: the write was abandoned").await;
                return Err(ConnectorError::PipeClosed);
            }
        };
    };
    if copy.binary
        && let Err(error) = idle_bounded(stream.send(copy_binary::TRAILER)).await
    {
        let _ = stream.abort("ferry: send failed").await;
        return Err(database_error(context, error));
    }
    stream
        .finish()
        .await
        .map_err(|error| database_error(context, error))?;
    Ok(ended)
}
