//! The destination protocol loop, once for every native destination: records to the stream
//! they belong to, each STATE acknowledged only once everything before it is durable (held
//! until the end when it covers a stream being overwritten, whose new table or file replaces
//! the old only then), streams marked complete by the source's STREAM_STATUS, and the tally
//! of what each acknowledgement covers. A destination implements [`StreamWriter`].

use std::future::Future;
use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming, DestinationSyncMode};
use ferry_protocol::{
    AirbyteMessage, CopyFormat, CopyRows, PipeMessage, RecordMessage, StateMessage,
};
use ferry_protocol::{StreamDescriptor, TraceMessage};
use tokio::sync::mpsc;

use crate::ConnectorError;
use crate::connector::{BoxFuture, Destination, ResumeState};

/// A STATE the destination has made durable, with what it committed since the previous one;
/// at the end of a write, `None` for the records committed after the last STATE (a source
/// need not send any: many full-refresh sources do not).
#[derive(Debug, Clone)]
pub struct StateAck {
    pub state: Option<StateMessage>,
    pub records: u64,
    pub bytes: u64,
    /// The same, stream by stream.
    pub streams: Vec<StreamCount>,
    /// The source's latest ESTIMATEs of streams, passed on as they come (they cover
    /// nothing and need not wait for a state).
    pub estimates: Vec<StreamEstimate>,
}

impl StateAck {
    /// An acknowledgement of nothing, carrying a source's estimate of a stream.
    pub fn of_estimate(estimate: StreamEstimate) -> Self {
        Self {
            state: None,
            records: 0,
            bytes: 0,
            streams: Vec::new(),
            estimates: vec![estimate],
        }
    }
}

/// What a source's `ESTIMATE` trace says a stream holds (Airbyte's `row_estimate` and
/// `byte_estimate`), for the job's stats beside what was synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEstimate {
    pub stream: StreamDescriptor,
    pub records: Option<u64>,
    pub bytes: Option<u64>,
}

impl StreamEstimate {
    /// The estimate a trace carries: only a `STREAM` one (a `SYNC` estimate names no stream
    /// and is only logged).
    pub fn of_trace(trace: &TraceMessage) -> Option<Self> {
        if trace.trace_type != "ESTIMATE" {
            return None;
        }
        let estimate = trace.extra.get("estimate")?;
        if estimate["type"]
            .as_str()
            .is_some_and(|kind| kind != "STREAM")
        {
            return None;
        }
        Some(Self {
            stream: StreamDescriptor {
                name: estimate["name"].as_str()?.to_owned(),
                namespace: estimate["namespace"].as_str().map(str::to_owned),
            },
            records: estimate["row_estimate"].as_u64(),
            bytes: estimate["byte_estimate"].as_u64(),
        })
    }
}

/// Records and bytes of one stream (as the source names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCount {
    pub stream: StreamDescriptor,
    pub records: u64,
    pub bytes: u64,
}

/// What a destination took in since its last acknowledgement, per stream.
#[derive(Debug, Clone, Default)]
pub struct Tally(Vec<StreamCount>);

impl Tally {
    pub fn add(&mut self, name: &str, namespace: Option<&str>, records: u64, bytes: u64) {
        let found = self.0.iter_mut().find(|count| {
            count.stream.name == name && count.stream.namespace.as_deref() == namespace
        });
        match found {
            Some(count) => {
                count.records += records;
                count.bytes += bytes;
            }
            None => self.0.push(StreamCount {
                stream: StreamDescriptor {
                    name: name.to_owned(),
                    namespace: namespace.map(str::to_owned),
                },
                records,
                bytes,
            }),
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for count in other.0 {
            self.add(
                &count.stream.name,
                count.stream.namespace.as_deref(),
                count.records,
                count.bytes,
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|count| count.records == 0)
    }

    pub fn counts(&self) -> &[StreamCount] {
        &self.0
    }

    /// The acknowledgement of `state` with everything tallied, which starts a new tally.
    pub fn ack(&mut self, state: Option<StateMessage>) -> StateAck {
        let streams = std::mem::take(&mut self.0);
        StateAck {
            state,
            records: streams.iter().map(|count| count.records).sum(),
            bytes: streams.iter().map(|count| count.bytes).sum(),
            streams,
            estimates: Vec::new(),
        }
    }
}

/// The stream a `STREAM_STATUS` trace says is COMPLETE, as `(name, namespace)`.
pub(crate) fn completed_stream(trace: &TraceMessage) -> Option<(&str, Option<&str>)> {
    let status = trace.extra.get("stream_status")?;
    if trace.trace_type != "STREAM_STATUS" || status["status"] != "COMPLETE" {
        return None;
    }
    let descriptor = &status["stream_descriptor"];
    Some((
        descriptor["name"].as_str()?,
        descriptor["namespace"].as_str(),
    ))
}

/// A native destination's side of the loop. `stream` is always an index into the
/// configured catalog the writer was opened with.
pub(crate) trait StreamWriter: Send {
    fn write_record(
        &mut self,
        stream: usize,
        record: &RecordMessage,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;

    /// Takes a run of COPY rows of one stream, batch by batch from `run`.
    fn write_copy_rows(
        &mut self,
        stream: usize,
        run: &mut CopyRun<'_>,
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send {
        let _ = (stream, run);
        async {
            Err(ConnectorError::Failed(
                "COPY rows reached a destination that does not take them".to_owned(),
            ))
        }
    }

    /// Makes everything written so far durable, with `states` (the STATEs that follow it,
    /// one or more in a row) recorded beside it by a destination that keeps its own
    /// checkpoints.
    fn make_durable(
        &mut self,
        states: &[StateMessage],
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;

    /// The input ended: makes everything durable and replaces each overwritten stream that
    /// completed (`complete[stream]`) with what was written.
    fn finish(
        &mut self,
        complete: &[bool],
    ) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}

/// A native destination: how it checks its settings and opens a [`StreamWriter`] for a
/// write; [`drive`] does the rest, so that every native destination is a [`Destination`].
pub(crate) trait WriterFactory: Send + Sync + 'static {
    type Writer: StreamWriter;

    fn check_settings(&self) -> impl Future<Output = Result<(), ConnectorError>> + Send;

    /// Whether it takes rows as PostgreSQL COPY rows ([`PipeMessage::CopyRows`]).
    fn accepts_copy_rows(&self) -> bool {
        false
    }

    /// See [`Destination::record_checkpoints_as`].
    fn record_checkpoints_as(&mut self, connection: &str, job: i64) {
        let _ = (connection, job);
    }

    /// See [`Destination::committed_states`].
    fn committed_states(
        &self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> impl Future<Output = Result<Vec<ResumeState>, ConnectorError>> + Send {
        let _ = (catalog, naming);
        async { Ok(Vec::new()) }
    }

    /// Makes what the write needs (tables, files) and the writer that fills it.
    fn open(
        self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> impl Future<Output = Result<Self::Writer, ConnectorError>> + Send;
}

impl<T: WriterFactory> Destination for T {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(self.check_settings())
    }

    fn accepts_copy_rows(&self) -> bool {
        WriterFactory::accepts_copy_rows(self)
    }

    fn record_checkpoints_as(&mut self, connection: &str, job: i64) {
        WriterFactory::record_checkpoints_as(self, connection, job);
    }

    fn committed_states<'a>(
        &'a self,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
    ) -> BoxFuture<'a, Result<Vec<ResumeState>, ConnectorError>> {
        Box::pin(WriterFactory::committed_states(self, catalog, naming))
    }

    fn write<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
        input: mpsc::Receiver<PipeMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let writer = self.open(catalog, naming).await?;
            drive(writer, catalog, input, acks).await
        })
    }
}

/// Consecutive COPY batches of one stream and one shape, as they come down the pipe; the
/// first other message ends the run and goes back to the driver.
pub(crate) struct CopyRun<'a> {
    input: &'a mut mpsc::Receiver<PipeMessage>,
    first: Option<CopyRows>,
    stream: StreamDescriptor,
    columns: Arc<[String]>,
    format: CopyFormat,
    records: u64,
    bytes: u64,
    after: Option<PipeMessage>,
    ended: bool,
}

impl CopyRun<'_> {
    pub(crate) fn columns(&self) -> &Arc<[String]> {
        &self.columns
    }

    pub(crate) fn format(&self) -> &CopyFormat {
        &self.format
    }

    /// The next batch of the run, or `None` once it ended.
    pub(crate) async fn next_batch(&mut self) -> Option<CopyRows> {
        let batch = match self.first.take() {
            Some(first) => first,
            None if self.ended => return None,
            None => match self.input.recv().await {
                Some(PipeMessage::CopyRows(rows))
                    if rows.stream == self.stream
                        && rows.columns == self.columns
                        && rows.format == self.format =>
                {
                    rows
                }
                other => {
                    self.after = other;
                    self.ended = true;
                    return None;
                }
            },
        };
        self.records += batch.count;
        self.bytes += batch.data.len() as u64;
        Some(batch)
    }
}

/// Runs the protocol loop of a destination over `writer`.
pub(crate) async fn drive<W: StreamWriter>(
    mut writer: W,
    catalog: &ConfiguredCatalog,
    mut input: mpsc::Receiver<PipeMessage>,
    acks: mpsc::Sender<StateAck>,
) -> Result<(), ConnectorError> {
    let streams = &catalog.streams;
    let mut counts = vec![(0u64, 0u64); streams.len()];
    let mut complete = vec![false; streams.len()];
    let mut held: Vec<StateAck> = Vec::new();
    let mut next: Option<PipeMessage> = None;
    // Records come in long runs of one stream: the last match is tried first.
    let mut last = 0usize;
    let mut find = |name: &str, namespace: Option<&str>| -> Result<usize, ConnectorError> {
        if streams
            .get(last)
            .is_some_and(|stream| stream.takes(name, namespace))
        {
            return Ok(last);
        }
        let found = streams
            .iter()
            .position(|stream| stream.takes(name, namespace))
            .ok_or_else(|| {
                ConnectorError::Failed(format!(
                    "a record of stream '{name}' which the catalog does not configure"
                ))
            })?;
        last = found;
        Ok(found)
    };
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => match input.recv().await {
                Some(message) => message,
                None => break,
            },
        };
        let message = match message {
            PipeMessage::Message(message) => message,
            PipeMessage::Records(records) => {
                for record in &records {
                    let index = find(&record.stream, record.namespace.as_deref())?;
                    writer.write_record(index, record).await?;
                    counts[index].0 += 1;
                    counts[index].1 += record.data.get().len() as u64;
                }
                continue;
            }
            PipeMessage::CopyRows(rows) => {
                let index = find(&rows.stream.name, rows.stream.namespace.as_deref())?;
                let mut run = CopyRun {
                    input: &mut input,
                    stream: rows.stream.clone(),
                    columns: rows.columns.clone(),
                    format: rows.format.clone(),
                    first: Some(rows),
                    records: 0,
                    bytes: 0,
                    after: None,
                    ended: false,
                };
                writer.write_copy_rows(index, &mut run).await?;
                counts[index].0 += run.records;
                counts[index].1 += run.bytes;
                next = run.after.take();
                continue;
            }
        };
        match message {
            AirbyteMessage::Record { record } => {
                let index = find(&record.stream, record.namespace.as_deref())?;
                writer.write_record(index, &record).await?;
                counts[index].0 += 1;
                counts[index].1 += record.data.get().len() as u64;
            }
            AirbyteMessage::State { state } => {
                // States that come in a row (a source that keeps one per stream ends a slice
                // of several streams with one each) are made durable together: rows of the
                // second stream committed with the first state but not recorded with their
                // own would be read again after a crash in between.
                let mut states = vec![state];
                while let Ok(more) = input.try_recv() {
                    match more {
                        PipeMessage::Message(AirbyteMessage::State { state }) => states.push(state),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                writer.make_durable(&states).await?;
                for state in states {
                    let ack = acknowledgement(catalog, &mut counts, Some(state));
                    if waits_for_swap(catalog, &ack) {
                        held.push(ack);
                    } else {
                        acks.send(ack)
                            .await
                            .map_err(|_| ConnectorError::PipeClosed)?;
                    }
                }
            }
            AirbyteMessage::Trace { trace } => {
                if let Some(estimate) = StreamEstimate::of_trace(&trace) {
                    acks.send(StateAck::of_estimate(estimate))
                        .await
                        .map_err(|_| ConnectorError::PipeClosed)?;
                }
                if let Some((name, namespace)) = completed_stream(&trace) {
                    for (index, stream) in streams.iter().enumerate() {
                        complete[index] |= stream.takes(name, namespace);
                    }
                }
            }
            AirbyteMessage::Log { .. } | AirbyteMessage::Other { .. } => {}
        }
    }
    // The input ended: the rest made durable, and each overwritten stream that completed
    // swapped in (one that did not keeps its old table or file: a failed read must not
    // empty it).
    writer.finish(&complete).await?;
    if counts.iter().any(|(records, _)| *records > 0) {
        held.push(acknowledgement(catalog, &mut counts, None));
    }
    for ack in held {
        acks.send(ack)
            .await
            .map_err(|_| ConnectorError::PipeClosed)?;
    }
    Ok(())
}

/// The acknowledgement of `state` with the counts since the last one, which start over.
fn acknowledgement(
    catalog: &ConfiguredCatalog,
    counts: &mut [(u64, u64)],
    state: Option<StateMessage>,
) -> StateAck {
    let mut tally = Tally::default();
    for (configured, (records, bytes)) in catalog.streams.iter().zip(counts.iter_mut()) {
        if *records > 0 {
            tally.add(
                &configured.stream.name,
                configured.stream.namespace.as_deref(),
                *records,
                *bytes,
            );
        }
        (*records, *bytes) = (0, 0);
    }
    tally.ack(state)
}

/// Whether an acknowledgement must wait for the end of the write: it covers a stream being
/// overwritten, whose new table or file replaces the old only then.
fn waits_for_swap(catalog: &ConfiguredCatalog, ack: &StateAck) -> bool {
    let mut overwritten = catalog
        .streams
        .iter()
        .filter(|stream| stream.destination_sync_mode == DestinationSyncMode::Overwrite);
    match ack.state.as_ref().and_then(|state| state.stream.as_ref()) {
        Some(stream) => overwritten.any(|configured| {
            configured.takes(
                &stream.stream_descriptor.name,
                stream.stream_descriptor.namespace.as_deref(),
            )
        }),
        None => overwritten.next().is_some(),
    }
}

/// A destination's input a protocol message at a time, for writers that send messages on
/// (external connectors): a batch of records is taken apart into its RECORDs; COPY rows,
/// only ever meant for a native PostgreSQL destination, are an error.
pub(crate) struct Incoming {
    input: mpsc::Receiver<PipeMessage>,
    batch: std::vec::IntoIter<RecordMessage>,
}

impl Incoming {
    pub(crate) fn new(input: mpsc::Receiver<PipeMessage>) -> Self {
        Self {
            input,
            batch: Vec::new().into_iter(),
        }
    }

    pub(crate) async fn recv(&mut self) -> Result<Option<AirbyteMessage>, ConnectorError> {
        loop {
            if let Some(record) = self.batch.next() {
                return Ok(Some(AirbyteMessage::Record { record }));
            }
            match self.input.recv().await {
                None => return Ok(None),
                Some(PipeMessage::Message(message)) => return Ok(Some(message)),
                Some(PipeMessage::Records(records)) => self.batch = records.into_iter(),
                Some(PipeMessage::CopyRows(_)) => {
                    return Err(ConnectorError::Failed(
                        "COPY rows reached a destination that does not take them".to_owned(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
