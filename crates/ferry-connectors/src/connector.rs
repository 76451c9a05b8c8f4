//! What a native connector is to the data plane: a source it reads, or a destination it
//! writes, behind one object-safe trait each, made by its registry row's `build`.

use std::future::Future;
use std::pin::Pin;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{AirbyteMessage, StreamDescriptor};
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

pub trait Source: Send {
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

    /// Reads the streams the configured catalog selects, from the committed state.
    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        state: &'a [ResumeState],
        output: mpsc::Sender<AirbyteMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;
}

pub trait Destination: Send {
    /// Checks that the destination can be written with this configuration.
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>>;

    /// Whether it takes rows as PostgreSQL COPY rows ([`AirbyteMessage::CopyRows`]).
    fn accepts_copy_rows(&self) -> bool {
        false
    }

    /// Writes the streams of `catalog` (named as the source names them) where `naming`
    /// places them, acknowledging each STATE once everything before it is durable.
    fn write<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
        input: mpsc::Receiver<AirbyteMessage>,
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
        None => source(connector_type, configuration),
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
