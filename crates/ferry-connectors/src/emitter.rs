//! What every native source sends down the pipe, and how.

use ferry_protocol::{
    AirbyteMessage, PipeMessage, RecordMessage, StateMessage, StreamDescriptor, TraceMessage,
};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::ConnectorError;

/// Milliseconds since the epoch, as records' `emitted_at`.
pub(crate) fn now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// Sends a read's records and states down the pipe; the other end gone is
/// [`ConnectorError::PipeClosed`].
pub(crate) struct Emitter {
    output: mpsc::Sender<PipeMessage>,
    /// The read's start: every record of a read is stamped with it, as one extraction.
    emitted_at: i64,
}

impl Emitter {
    pub(crate) fn new(output: mpsc::Sender<PipeMessage>) -> Self {
        Self {
            output,
            emitted_at: now_millis(),
        }
    }

    pub(crate) fn emitted_at(&self) -> i64 {
        self.emitted_at
    }

    pub(crate) async fn send(&self, message: AirbyteMessage) -> Result<(), ConnectorError> {
        self.send_pipe(PipeMessage::Message(message)).await
    }

    /// Ferry's own batch forms (`Records`, `CopyRows`), for a destination that takes them.
    pub(crate) async fn send_pipe(&self, message: PipeMessage) -> Result<(), ConnectorError> {
        self.output
            .send(message)
            .await
            .map_err(|_| ConnectorError::PipeClosed)
    }

    pub(crate) async fn record(
        &self,
        stream: &str,
        namespace: Option<&str>,
        data: Box<RawValue>,
    ) -> Result<(), ConnectorError> {
        let record = RecordMessage {
            stream: stream.to_owned(),
            namespace: namespace.map(str::to_owned),
            data,
            emitted_at: self.emitted_at,
            meta: None,
            file: None,
        };
        self.send(AirbyteMessage::Record { record }).await
    }

    /// An `ESTIMATE` trace of what a stream will send, as Airbyte's sources emit before
    /// reading it: the job's stats show it beside what was synced.
    pub(crate) async fn estimate(
        &self,
        stream: &StreamDescriptor,
        rows: u64,
        bytes: u64,
    ) -> Result<(), ConnectorError> {
        let mut extra = serde_json::Map::new();
        extra.insert(
            "estimate".to_owned(),
            serde_json::json!({
                "name": stream.name,
                "namespace": stream.namespace,
                "type": "STREAM",
                "row_estimate": rows,
                "byte_estimate": bytes,
            }),
        );
        let trace = TraceMessage {
            trace_type: "ESTIMATE".to_owned(),
            emitted_at: now_millis() as f64,
            error: None,
            extra,
        };
        self.send(AirbyteMessage::Trace { trace }).await
    }

    pub(crate) async fn state(
        &self,
        stream: StreamDescriptor,
        value: Value,
    ) -> Result<(), ConnectorError> {
        let state = StateMessage::for_stream(stream, value);
        self.send(AirbyteMessage::State { state }).await
    }
}
