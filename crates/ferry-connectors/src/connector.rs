//! What a native connector is to the data plane: a source it reads, or a destination it
//! writes, behind one object-safe trait each, made by its registry row's `build`.

use std::future::Future;
use std::pin::Pin;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{PipeMessage, StreamDescriptor};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{ConnectorError, StateAck};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Committed state of one stream, handed to a source to resume from.
#[derive(Debug, Clone)]
pub struct ResumeState {
    pub stream: StreamDescriptor,
    pub state: Value,
}

/// Everything a source resumes from: its streams' states, or the one GLOBAL state of a
/// source that keeps one (every Airbyte CDC source), or a LEGACY state's `data`, each as the
/// source emitted it.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    pub streams: Vec<ResumeState>,
    /// The GLOBAL state message, whole (`{"type": "GLOBAL", "global": {...}}`).
    pub global: Option<Value>,
    /// A LEGACY state's `data`.
    pub legacy: Option<Value>,
}

impl SourceState {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.global.is_none() && self.legacy.is_none()
    }
}

pub trait Source: Send + Sync {
    /// Checks that the source can be read with this configuration.
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>>;

    /// The catalog the source offers.
    fn discover(&self) -> BoxFuture<'_, Result<Value, ConnectorError>>;

    /// Sends rows as PostgreSQL COPY rows rather than JSON records, where the source can;
    /// only for a destination that [accepts them](Destination::accepts_copy_rows). Returns
    /// whether it will.
    fn emit_copy_rows(&mut self) -> bool {
        false
    }

    /// Where a native source writes what the attempt's log should say of its read (an
    /// external one's stderr goes there already).
    fn log_to(&mut self, sink: crate::LogSink) {
        let _ = sink;
    }

    /// Reads the streams the configured catalog selects, from the committed state.
    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        state: &'a SourceState,
        output: mpsc::Sender<PipeMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;
}

pub trait Destination: Send + Sync {
    /// Checks that the destination can be written with this configuration.
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>>;

    /// Whether it takes rows as PostgreSQL COPY rows ([`AirbyteMessage::CopyRows`]).
    fn accepts_copy_rows(&self) -> bool {
        false
    }

    /// Keeps its own record of the states it made durable, keyed by `connection`, in the
    /// same transaction (or the same fsync order) as the rows they cover; see
    /// [`Destination::committed_states`]. `job` scopes what holds only within one job (a
    /// full refresh cut short resumes at the next attempt, never at the next job).
    /// Destinations that cannot ignore it.
    fn record_checkpoints_as(&mut self, connection: &str, job: i64) {
        let _ = (connection, job);
    }

    /// The states this destination recorded as durable for the connection it records
    /// checkpoints as, one per stream of `catalog` it holds one for: each at least as new as
    /// what the control plane committed (a state is acknowledged only after it was
    /// recorded), so an attempt resumed from them writes no row twice, even when the data
    /// plane died between the destination's commit and the control plane's.
    fn committed_states<'a>(
        &'a self,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
    ) -> BoxFuture<'a, Result<Vec<ResumeState>, ConnectorError>> {
        let _ = (catalog, naming);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Writes the streams of `catalog` (named as the source names them) where `naming`
    /// places them, acknowledging each STATE once everything before it is durable.
    fn write<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
        input: mpsc::Receiver<PipeMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;
}

/// How a registry row makes its connector from a configuration (validated, nothing
/// contacted).
#[derive(Clone, Copy)]
pub enum Build {
    Source(fn(&Value) -> Result<Box<dyn Source>, ConnectorError>),
    Destination(fn(&Value) -> Result<Box<dyn Destination>, ConnectorError>),
}

/// The native source of type `connector_type`.
pub fn source(
    connector_type: &str,
    configuration: &Value,
) -> Result<Box<dyn Source>, ConnectorError> {
    match crate::registry::native(ferry_protocol::ConnectorRole::Source, connector_type)
        .map(|registration| registration.build)
    {
        Some(Build::Source(build)) => build(configuration),
        _ => Err(ConnectorError::UnknownConnector {
            role: ferry_protocol::ConnectorRole::Source,
            connector_type: connector_type.to_owned(),
        }),
    }
}

/// The native destination of type `connector_type`.
pub fn destination(
    connector_type: &str,
    configuration: &Value,
) -> Result<Box<dyn Destination>, ConnectorError> {
    match crate::registry::native(ferry_protocol::ConnectorRole::Destination, connector_type)
        .map(|registration| registration.build)
    {
        Some(Build::Destination(build)) => build(configuration),
        _ => Err(ConnectorError::UnknownConnector {
            role: ferry_protocol::ConnectorRole::Destination,
            connector_type: connector_type.to_owned(),
        }),
    }
}

/// The source a job names: the external program `command` when there is one (a custom
/// definition), else the native connector of type `connector_type`.
pub fn source_for(
    connector_type: &str,
    command: Option<&[String]>,
    configuration: &Value,
    log: Option<&crate::LogSink>,
) -> Result<Box<dyn Source>, ConnectorError> {
    match command {
        Some(command) => Ok(Box::new(crate::external::ExternalSource {
            connector: external(command, log)?,
            configuration: configuration.clone(),
        })),
        None => {
            let mut native = source(connector_type, configuration)?;
            if let Some(log) = log {
                native.log_to(log.clone());
            }
            Ok(native)
        }
    }
}

/// The destination a job names, as [`source_for`] the source.
pub fn destination_for(
    connector_type: &str,
    command: Option<&[String]>,
    configuration: &Value,
    log: Option<&crate::LogSink>,
) -> Result<Box<dyn Destination>, ConnectorError> {
    match command {
        Some(command) => Ok(Box::new(crate::external::ExternalDestination {
            connector: external(command, log)?,
            configuration: configuration.clone(),
        })),
        None => destination(connector_type, configuration),
    }
}

fn external(
    command: &[String],
    log: Option<&crate::LogSink>,
) -> Result<crate::ExternalConnector, ConnectorError> {
    let connector = crate::ExternalConnector::new(command)?;
    Ok(match log {
        Some(log) => connector.with_log(log.clone()),
        None => connector,
    })
}
