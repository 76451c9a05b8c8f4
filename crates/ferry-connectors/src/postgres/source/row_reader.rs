use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{AirbyteMessage, CopyFormat, PipeMessage, RangeMark, RecordMessage};
use futures_util::TryStreamExt;
use serde_json::value::RawValue;
use sqlx::postgres::PgConnection;

use super::super::{copy_binary, copy_text, database_error, idle_bounded};
use super::read_plan::{ReadPlan, Resume};
use crate::ConnectorError;
use crate::emitter::{Emitter, now_millis};

/// COPY rows go to the destination in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// A checkpoint is due after this many rows (at the next change of cursor value) or this long.
const CHECKPOINT_ROWS: u64 = 100_000;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

impl ReadPlan<'_> {
    pub(super) async fn run(
        &self,
        connection: &mut PgConnection,
        output: &Emitter,
        copy_rows: bool,
    ) -> Result<(), ConnectorError> {
        let query = self.query(copy_rows);
        let cursor = self
            .copy_out(connection, &query, output, copy_rows, 0, None)
            .await?;
        let end = match (&self.cursor, cursor.text()) {
            (Some(_), Some(cursor_text)) => Some(self.state(&cursor_text, cursor.count())),
            (Some(_), None) => None,
            (None, _) => Some(self.state("", None)),
        };
        if let Some(state) = end {
            output.send(state).await?;
        }
        Ok(())
    }

    /// Sends the rows of one COPY out (`query`) down the pipe, as records or as COPY rows of
    /// `lane`, with the checkpoints an incremental read finds on the way, and `end_mark` with
    /// the last of them (COPY rows only); returns the cursor of the last row.
    pub(super) async fn copy_out(
        &self,
        connection: &mut PgConnection,
        query: &str,
        output: &Emitter,
        copy_rows: bool,
        lane: u16,
        end_mark: Option<RangeMark>,
    ) -> Result<LastCursor, ConnectorError> {
        let key = self.descriptor.key();
        let mut rows = connection
            .copy_out_raw(query)
            .await
            .map_err(|error| database_error(&format!("reading {key}"), error))?;
        let mut reader = RowReader {
            plan: self,
            output,
            pending: Vec::new(),
            cursor: LastCursor::resumed(self.resume.as_ref()),
            since_checkpoint: 0,
            checkpoint_at: Instant::now() + CHECKPOINT_INTERVAL,
            emitted_at: 0,
            binary: (copy_rows && self.binary_types.is_some()).then(BinaryFraming::default),
            scratch: Vec::new(),
            escaped: Vec::new(),
            copy: copy_rows.then(|| CopyBatch {
                shape: self.copy_shape(),
                cursor_index: self.ordered_by().and_then(|cursor| {
                    self.columns
                        .iter()
                        .position(|column| column.name == cursor.name)
                }),
                data: Vec::with_capacity(BATCH_BYTES + 4096),
                rows: 0,
                seeking: false,
                lane,
            }),
        };
        while let Some(chunk) = idle_bounded(rows.try_next())
            .await
            .map_err(|error| database_error(&format!("reading {key}"), error))?
        {
            reader.emitted_at = now_millis();
            reader.take(&chunk).await?;
        }
        drop(rows);
        reader.send_marked_batch(end_mark).await?;
        if !reader.pending.is_empty() || reader.binary.is_some_and(|framing| !framing.ended) {
            return Err(ConnectorError::Failed(format!(
                "reading {key}: the last row was cut short"
            )));
        }
        Ok(reader.cursor)
    }
}

/// Turns COPY output (chunks that split rows anywhere) into records and checkpoints.
struct RowReader<'p, 'a> {
    plan: &'p ReadPlan<'a>,
    output: &'p Emitter,
    pending: Vec<u8>,
    /// The cursor value of the last row read, and how many rows carried it.
    cursor: LastCursor,
    since_checkpoint: u64,
    checkpoint_at: Instant,
    emitted_at: i64,
    /// Set when rows go as COPY rows.
    copy: Option<CopyBatch>,
    /// Set when they come (and go) as COPY binary.
    binary: Option<BinaryFraming>,
    /// A binary row without its cursor field, and that field as COPY text: kept between
    /// rows so that no row costs an allocation.
    scratch: Vec<u8>,
    escaped: Vec<u8>,
}

/// Where COPY binary output has got to.
#[derive(Default, Clone, Copy)]
struct BinaryFraming {
    header_read: bool,
    ended: bool,
}

struct CopyBatch {
    /// Columns and format.
    shape: (Arc<[String]>, CopyFormat),
    /// Where the cursor is among the columns, for incremental streams.
    cursor_index: Option<usize>,
    data: Vec<u8>,
    rows: u64,
    /// A checkpoint is due: looking for the first change of cursor value.
    seeking: bool,
    lane: u16,
}

impl RowReader<'_, '_> {
    async fn take(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        if self.binary.is_some() {
            return self.take_binary(chunk).await;
        }
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..end]);
            self.row(&line).await?;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.row(&rest[..end]).await?;
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// COPY binary output: whole tuples into the batch as they are. PostgreSQL sends a tuple
    /// a chunk; one cut across chunks is put together.
    async fn take_binary(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        let plan = self.plan;
        let malformed = || {
            ConnectorError::Failed(format!(
                "reading {}: PostgreSQL sent malformed COPY binary data",
                plan.descriptor.key()
            ))
        };
        let joined;
        let mut data = chunk;
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.pending);
            data = &joined;
        }
        let mut framing = self.binary.unwrap_or_default();
        if !framing.header_read {
            match copy_binary::header_len(data).map_err(|_| malformed())? {
                Some(length) => {
                    data = &data[length..];
                    framing.header_read = true;
                }
                None => {
                    self.pending.extend_from_slice(data);
                    return Ok(());
                }
            }
        }
        while !framing.ended {
            match copy_binary::next(data).map_err(|_| malformed())? {
                copy_binary::Next::Tuple(length) => {
                    let tuple = &data[..length];
                    data = &data[length..];
                    if plan.ordered_by().is_some() {
                        // A read by cursor has the cursor's text first (`ReadPlan::copy_query`):
                        // taken off the row, and checked before the row joins the batch.
                        let mut row = std::mem::take(&mut self.scratch);
                        row.clear();
                        let cursor = copy_binary::take_first_field(&mut row, tuple)
                            .map_err(|_| malformed())?;
                        let mut escaped = std::mem::take(&mut self.escaped);
                        escaped.clear();
                        match cursor {
                            Some(text) => copy_text::escape_into(&mut escaped, text),
                            None => escaped.extend_from_slice(copy_text::NULL),
                        }
                        self.cursor_field(&escaped).await?;
                        if let Some(batch) = &mut self.copy {
                            batch.data.extend_from_slice(&row);
                        }
                        (self.scratch, self.escaped) = (row, escaped);
                    } else if let Some(batch) = &mut self.copy {
                        batch.data.extend_from_slice(tuple);
                    }
                    self.copied_row().await?;
                }
                copy_binary::Next::End => {
                    framing.ended = true;
                    data = &[];
                }
                copy_binary::Next::Incomplete => break,
            }
        }
        self.binary = Some(framing);
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// A row as COPY text: into the batch, with checkpoints found between cursor values.
    /// The cursor field is compared as it comes (escaped), without unescaping every row's.
    async fn copy_row(&mut self, line: &[u8]) -> Result<(), ConnectorError> {
        let Some(batch) = &self.copy else {
            return Ok(());
        };
        if let Some(index) = batch.cursor_index {
            let field = copy_text::fields(line)
                .nth(index)
                .unwrap_or(copy_text::NULL);
            self.cursor_field(field).await?;
        }
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        batch.data.extend_from_slice(line);
        batch.data.push(b'\n');
        self.copied_row().await
    }

    /// The cursor of the next row, as COPY text: where a checkpoint is due and the value
    /// changes, the rows before it go with their state first.
    async fn cursor_field(&mut self, field: &[u8]) -> Result<(), ConnectorError> {
        let seeking = self.copy.as_ref().is_some_and(|batch| batch.seeking);
        if self.cursor.same(field) {
            return Ok(());
        }
        if seeking && self.cursor.is_set() {
            self.send_batch().await?;
            if let Some(previous) = self.cursor.text() {
                let state = self.plan.state(&previous, self.cursor.count());
                self.output.send(state).await?;
            }
            self.since_checkpoint = 0;
            self.checkpoint_at = Instant::now() + CHECKPOINT_INTERVAL;
            if let Some(batch) = &mut self.copy {
                batch.seeking = false;
            }
        }
        self.cursor.set_raw(field);
        Ok(())
    }

    /// Counts the row just put in the batch: once a checkpoint is due, the next change of
    /// cursor value is sought; a full batch goes.
    async fn copied_row(&mut self) -> Result<(), ConnectorError> {
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        batch.rows += 1;
        self.since_checkpoint += 1;
        if batch.cursor_index.is_some()
            && !batch.seeking
            && (self.since_checkpoint >= CHECKPOINT_ROWS
                || (self.since_checkpoint.is_multiple_of(4096)
                    && Instant::now() >= self.checkpoint_at))
        {
            batch.seeking = true;
        }
        if batch.data.len() >= BATCH_BYTES {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Sends the batch of COPY rows, noting the cursor of its last row (the state to end on).
    async fn send_batch(&mut self) -> Result<(), ConnectorError> {
        self.send_marked_batch(None).await
    }

    /// Sends the batch of COPY rows with `mark`, which goes even without a row.
    async fn send_marked_batch(&mut self, mark: Option<RangeMark>) -> Result<(), ConnectorError> {
        let Some(batch) = &mut self.copy else {
            return Ok(());
        };
        if batch.rows == 0 && mark.is_none() {
            return Ok(());
        }
        let rows = ferry_protocol::CopyRows {
            stream: self.plan.descriptor.clone(),
            columns: batch.shape.0.clone(),
            format: batch.shape.1.clone(),
            count: batch.rows,
            data: std::mem::replace(&mut batch.data, Vec::with_capacity(BATCH_BYTES + 4096)),
            lane: batch.lane,
            mark,
        };
        batch.rows = 0;
        self.output.send_pipe(PipeMessage::CopyRows(rows)).await
    }

    async fn row(&mut self, line: &[u8]) -> Result<(), ConnectorError> {
        if self.copy.is_some() {
            return self.copy_row(line).await;
        }
        let malformed = || ConnectorError::Failed("PostgreSQL sent a malformed row".to_owned());
        let data = if self.plan.ordered_by().is_some() {
            let tab = memchr::memchr(b'\t', line).ok_or_else(malformed)?;
            let raw = &line[..tab];
            if !self.cursor.same(raw) {
                self.checkpoint_if_due().await?;
                self.cursor.set_raw(raw);
            }
            &line[tab + 1..]
        } else {
            line
        };
        let json = copy_text::unescape(data)
            .ok_or_else(malformed)?
            .into_owned();
        let json = String::from_utf8(json).map_err(|_| malformed())?;
        let data = RawValue::from_string(json).map_err(|_| malformed())?;
        self.since_checkpoint += 1;
        let record = RecordMessage {
            stream: self.plan.descriptor.name.clone(),
            namespace: self.plan.descriptor.namespace.clone(),
            data,
            emitted_at: self.emitted_at,
            meta: None,
            file: None,
        };
        self.output.send(AirbyteMessage::Record { record }).await
    }

    /// Called between two cursor values, where a checkpoint loses nothing on resume.
    async fn checkpoint_if_due(&mut self) -> Result<(), ConnectorError> {
        let Some(cursor) = self.cursor.text() else {
            return Ok(());
        };
        if self.since_checkpoint == 0 {
            return Ok(());
        }
        let due = self.since_checkpoint >= CHECKPOINT_ROWS || Instant::now() >= self.checkpoint_at;
        if !due {
            return Ok(());
        }
        self.output
            .send(self.plan.state(&cursor, self.cursor.count()))
            .await?;
        self.since_checkpoint = 0;
        self.checkpoint_at = Instant::now() + CHECKPOINT_INTERVAL;
        Ok(())
    }
}

/// The cursor value of the last row read, as COPY text (escaped), and how many rows in a
/// row carried it: the `cursor_record_count` of the state that ends on it.
pub(super) struct LastCursor {
    raw: Option<Vec<u8>>,
    count: u64,
    /// False while on a resumed value whose count the committed state did not give.
    counted: bool,
}

impl LastCursor {
    /// Before any row: the committed value when the read resumes after it (its count
    /// stands until a row of another value comes), nothing when it reads that value again.
    fn resumed(resume: Option<&Resume>) -> Self {
        match resume {
            Some(resume) if !resume.inclusive => {
                let mut raw = Vec::new();
                copy_text::escape_into(&mut raw, resume.value.as_bytes());
                Self {
                    raw: Some(raw),
                    count: resume.count.unwrap_or(0),
                    counted: resume.count.is_some(),
                }
            }
            _ => Self {
                raw: None,
                count: 0,
                counted: true,
            },
        }
    }

    fn is_set(&self) -> bool {
        self.raw.is_some()
    }

    /// Counts a row of this raw value when it is the last one's.
    fn same(&mut self, raw: &[u8]) -> bool {
        let same = self.raw.as_deref() == Some(raw);
        if same {
            self.count += 1;
        }
        same
    }

    /// A row of a new value.
    fn set_raw(&mut self, raw: &[u8]) {
        let kept = self.raw.get_or_insert_with(Vec::new);
        kept.clear();
        kept.extend_from_slice(raw);
        self.count = 1;
        self.counted = true;
    }

    /// The count, where it is known.
    fn count(&self) -> Option<u64> {
        self.counted.then_some(self.count)
    }

    fn text(&self) -> Option<String> {
        let raw = self.raw.as_deref()?;
        let text = copy_text::unescape(raw)?;
        Some(String::from_utf8_lossy(&text).into_owned())
    }
}
