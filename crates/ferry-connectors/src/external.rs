//! An external connector (a program speaking the protocol) as a [`Source`] or
//! [`Destination`], so that the data plane runs every connector the same way.

use ferry_protocol::PipeMessage;
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::connector::{BoxFuture, Destination, Source, SourceState};
use crate::{ConnectorError, ExternalConnector, StateAck};

pub struct ExternalSource {
    pub connector: ExternalConnector,
    pub configuration: Value,
}

pub struct ExternalDestination {
    pub connector: ExternalConnector,
    pub configuration: Value,
}

/// A `check` the connector answered with FAILED is the configuration's fault.
async fn check(connector: &ExternalConnector, configuration: &Value) -> Result<(), ConnectorError> {
    let checked = connector.check(configuration).await?;
    if checked.succeeded {
        return Ok(());
    }
    Err(ConnectorError::Config(checked.message.unwrap_or_else(
        || "the connector's check failed".to_owned(),
    )))
}

impl Source for ExternalSource {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(check(&self.connector, &self.configuration))
    }

    fn discover(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(self.connector.discover(&self.configuration))
    }

    /// The committed state goes to the connector as the protocol passes it.
    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        state: &'a SourceState,
        output: mpsc::Sender<PipeMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let state = state_file(state);
            self.connector
                .read(&self.configuration, catalog, state.as_ref(), output)
                .await
        })
    }
}

impl Destination for ExternalDestination {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(check(&self.connector, &self.configuration))
    }

    fn write<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        naming: &'a DestinationNaming,
        input: mpsc::Receiver<PipeMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            self.connector
                .write(&self.configuration, catalog, naming, input, acks)
                .await
        })
    }
}

/// The `--state` file's content, as Airbyte's platform writes it: the GLOBAL state message
/// in a list, or a LEGACY state's `data` alone, or the list of STREAM states.
fn state_file(state: &SourceState) -> Option<Value> {
    if let Some(global) = &state.global {
        return Some(Value::Array(vec![global.clone()]));
    }
    if let Some(legacy) = &state.legacy {
        return Some(legacy.clone());
    }
    (!state.streams.is_empty()).then(|| {
        Value::Array(
            state
                .streams
                .iter()
                .map(|resume| {
                    json!({"type": "STREAM", "stream": {
                        "stream_descriptor": resume.stream,
                        "stream_state": resume.state,
                    }})
                })
                .collect(),
        )
    })
}
