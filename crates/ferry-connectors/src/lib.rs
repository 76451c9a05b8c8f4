//! Connectors that run inside the data plane. A source writes Airbyte messages into a bounded
//! channel; a destination reads them and acknowledges each STATE once everything before it
//! is durable — only then may the data plane commit that state.

mod dev_null;
mod faker;
mod files;
pub mod postgres;
pub mod process;

pub use dev_null::DevNullDestination;
pub use faker::FakerSource;
pub use files::{FileSource, LocalFileDestination};
pub use postgres::{PostgresDestination, PostgresSource};
pub use process::{CheckResult, ExternalConnector, LogSink};

use ferry_protocol::catalog::DestinationNaming;
use ferry_protocol::{AirbyteMessage, StateMessage, StreamDescriptor};
use serde_json::Value;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("invalid configuration: {field}: {message}")]
    InvalidConfiguration { field: String, message: String },
    #[error("no native {role} connector of type '{connector_type}'")]
    UnknownConnector {
        role: &'static str,
        connector_type: String,
    },
    /// The other end of the pipe went away (cancellation, or the destination failed).
    #[error("the pipe closed")]
    PipeClosed,
    #[error("{0}")]
    Failed(String),
}

impl From<ferry_protocol::configs::ConfigError> for ConnectorError {
    fn from(error: ferry_protocol::configs::ConfigError) -> Self {
        Self::InvalidConfiguration {
            field: error.field,
            message: error.message,
        }
    }
}

impl ConnectorError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidConfiguration {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

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
        }
    }
}

/// A destination's input, a message at a time: a batch of records (`Records`) is taken
/// apart into its RECORDs, for destinations that handle records one by one.
pub(crate) struct Incoming {
    input: mpsc::Receiver<AirbyteMessage>,
    batch: std::vec::IntoIter<ferry_protocol::RecordMessage>,
}

impl Incoming {
    pub(crate) fn new(input: mpsc::Receiver<AirbyteMessage>) -> Self {
        Self {
            input,
            batch: Vec::new().into_iter(),
        }
    }

    pub(crate) async fn recv(&mut self) -> Option<AirbyteMessage> {
        loop {
            if let Some(record) = self.batch.next() {
                return Some(AirbyteMessage::Record { record });
            }
            match self.input.recv().await? {
                AirbyteMessage::Records { records } => self.batch = records.into_iter(),
                message => return Some(message),
            }
        }
    }
}

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

/// Sends a message down the pipe; the other end gone is [`ConnectorError::PipeClosed`].
pub(crate) async fn emit(
    output: &mpsc::Sender<AirbyteMessage>,
    message: AirbyteMessage,
) -> Result<(), ConnectorError> {
    output
        .send(message)
        .await
        .map_err(|_| ConnectorError::PipeClosed)
}

/// The stream a `STREAM_STATUS` trace says is COMPLETE.
pub(crate) fn completed_stream(trace: &ferry_protocol::TraceMessage) -> Option<&str> {
    let status = trace.extra.get("stream_status")?;
    (trace.trace_type == "STREAM_STATUS" && status["status"] == "COMPLETE")
        .then(|| status["stream_descriptor"]["name"].as_str())
        .flatten()
}

/// Whether an acknowledgement must wait for the end of the write: it covers a stream being
/// overwritten, whose new table or file replaces the old only then.
pub(crate) fn waits_for_swap<'a>(
    ack: &StateAck,
    mut overwritten: impl Iterator<Item = &'a str>,
) -> bool {
    match ack.state.as_ref().and_then(|state| state.stream.as_ref()) {
        Some(stream) => overwritten.any(|name| name == stream.stream_descriptor.name),
        None => overwritten.next().is_some(),
    }
}

/// Committed state of one stream, handed to a source to resume from.
#[derive(Debug, Clone)]
pub struct ResumeState {
    pub stream: StreamDescriptor,
    pub state: Value,
}

pub enum NativeSource {
    Faker(FakerSource),
    File(FileSource),
    Postgres(Box<PostgresSource>),
}

impl NativeSource {
    /// Validates the configuration (shape only: nothing is contacted).
    pub fn new(connector_type: &str, configuration: &Value) -> Result<Self, ConnectorError> {
        match connector_type {
            "faker" => Ok(Self::Faker(FakerSource::new(configuration)?)),
            "file" => Ok(Self::File(FileSource::new(configuration)?)),
            "postgres" => Ok(Self::Postgres(Box::new(PostgresSource::new(
                configuration,
            )?))),
            other => Err(ConnectorError::UnknownConnector {
                role: "source",
                connector_type: other.to_owned(),
            }),
        }
    }

    /// Sends rows as PostgreSQL COPY text rather than JSON records, where the source can;
    /// only for a destination that [accepts them](NativeDestination::accepts_copy_rows).
    /// Returns whether it will.
    pub fn emit_copy_rows(&mut self) -> bool {
        match self {
            Self::Postgres(source) => {
                source.emit_copy_rows();
                true
            }
            Self::Faker(_) | Self::File(_) => false,
        }
    }

    /// Checks that the source can be read with this configuration.
    pub async fn check(&self) -> Result<(), ConnectorError> {
        match self {
            Self::Faker(_) => Ok(()),
            Self::File(source) => source.check().await,
            Self::Postgres(source) => source.check().await,
        }
    }

    /// The catalog the source offers.
    pub async fn discover(&self) -> Result<Value, ConnectorError> {
        match self {
            Self::Faker(_) => Ok(FakerSource::catalog()),
            Self::File(source) => source.discover().await,
            Self::Postgres(source) => source.discover().await,
        }
    }

    /// Reads the streams the configured catalog selects, from the committed state.
    pub async fn read(
        self,
        catalog: &Value,
        state: &[ResumeState],
        output: mpsc::Sender<AirbyteMessage>,
    ) -> Result<(), ConnectorError> {
        let selected: Vec<&str> = catalog["streams"]
            .as_array()
            .map(|streams| {
                streams
                    .iter()
                    .filter_map(|configured| configured["stream"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        match self {
            Self::Faker(source) => source.read(&selected, state, output).await,
            // One stream, always read whole (full refresh).
            Self::File(source) => source.read(output).await,
            Self::Postgres(source) => source.read(catalog, state, output).await,
        }
    }
}

pub enum NativeDestination {
    DevNull(DevNullDestination),
    LocalFile(LocalFileDestination),
    Postgres(Box<PostgresDestination>),
}

impl NativeDestination {
    /// Validates the configuration (shape only: nothing is contacted).
    pub fn new(connector_type: &str, configuration: &Value) -> Result<Self, ConnectorError> {
        match connector_type {
            "dev-null" => Ok(Self::DevNull(DevNullDestination)),
            "local-json" => Ok(Self::LocalFile(LocalFileDestination::new(
                configuration,
                false,
            )?)),
            "csv" => Ok(Self::LocalFile(LocalFileDestination::new(
                configuration,
                true,
            )?)),
            "postgres" => Ok(Self::Postgres(Box::new(PostgresDestination::new(
                configuration,
            )?))),
            other => Err(ConnectorError::UnknownConnector {
                role: "destination",
                connector_type: other.to_owned(),
            }),
        }
    }

    /// Whether it takes rows as PostgreSQL COPY text ([`AirbyteMessage::CopyRows`]).
    pub fn accepts_copy_rows(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Checks that the destination can be written with this configuration.
    pub async fn check(&self) -> Result<(), ConnectorError> {
        match self {
            Self::DevNull(_) => Ok(()),
            Self::LocalFile(destination) => destination.check().await,
            Self::Postgres(destination) => destination.check().await,
        }
    }

    /// Writes the streams of `catalog` (named as the source names them) where `naming`
    /// places them.
    pub async fn write(
        self,
        catalog: &Value,
        naming: &DestinationNaming,
        input: mpsc::Receiver<AirbyteMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> Result<(), ConnectorError> {
        match self {
            Self::DevNull(destination) => destination.write(input, acks).await,
            Self::LocalFile(destination) => destination.write(catalog, naming, input, acks).await,
            Self::Postgres(destination) => destination.write(catalog, naming, input, acks).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    async fn count(catalog: Value) -> usize {
        let source = NativeSource::new("faker", &json!({"count": 7})).unwrap();
        let (sender, mut receiver) = mpsc::channel(64);
        source.read(&catalog, &[], sender).await.unwrap();
        let mut records = 0;
        while let Ok(message) = receiver.try_recv() {
            records += match message {
                AirbyteMessage::Record { .. } => 1,
                AirbyteMessage::Records { records } => records.len(),
                _ => 0,
            };
        }
        records
    }

    #[tokio::test]
    async fn incoming_takes_batches_apart_in_order() {
        let record = |id: u32| ferry_protocol::RecordMessage {
            stream: "s".to_owned(),
            namespace: None,
            data: serde_json::value::to_raw_value(&id).unwrap(),
            emitted_at: 0,
            meta: None,
            file: None,
        };
        let (sender, receiver) = mpsc::channel(8);
        sender
            .send(AirbyteMessage::Records {
                records: vec![record(1), record(2)],
            })
            .await
            .unwrap();
        sender
            .send(AirbyteMessage::Record { record: record(3) })
            .await
            .unwrap();
        sender
            .send(AirbyteMessage::Records { records: vec![] })
            .await
            .unwrap();
        sender
            .send(AirbyteMessage::State {
                state: StateMessage::for_stream(StreamDescriptor::new("s"), json!({})),
            })
            .await
            .unwrap();
        drop(sender);
        let mut incoming = Incoming::new(receiver);
        let mut seen = Vec::new();
        while let Some(message) = incoming.recv().await {
            seen.push(match message {
                AirbyteMessage::Record { record } => record.data.get().to_owned(),
                AirbyteMessage::State { .. } => "state".to_owned(),
                other => panic!("{other:?}"),
            });
        }
        assert_eq!(seen, ["1", "2", "3", "state"]);
    }

    #[tokio::test]
    async fn native_sources_read_only_the_selected_streams() {
        let users = json!({"streams": [{"stream": {"name": "users"}, "sync_mode": "incremental"}]});
        assert_eq!(count(users).await, 7);
        assert_eq!(count(json!({"streams": []})).await, 0);
    }
}
