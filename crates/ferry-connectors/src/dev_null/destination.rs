use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{AirbyteMessage, RecordMessage};
use serde_json::Value;
use tokio::sync::mpsc;

use super::DevNullConfig;
use crate::connector::{BoxFuture, Destination};
use crate::driver::{StreamWriter, drive};
use crate::{ConnectorError, StateAck, config};

/// Accepts everything and keeps nothing (Airbyte's E2E-testing destination, silent mode):
/// a record is "durable" as soon as it is read, so every STATE is acknowledged at once.
pub struct DevNullWriter;

impl DevNullWriter {
    pub fn build(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        config::parse::<DevNullConfig>(configuration)?;
        Ok(Box::new(Self))
    }
}

impl Destination for DevNullWriter {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(async { Ok(()) })
    }

    fn write<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        _naming: &'a DestinationNaming,
        input: mpsc::Receiver<AirbyteMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(drive(*self, catalog, input, acks))
    }
}

impl StreamWriter for DevNullWriter {
    async fn write_record(&mut self, _: usize, _: &RecordMessage) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn make_durable(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn finish(&mut self, _: &[bool]) -> Result<(), ConnectorError> {
        Ok(())
    }
}
