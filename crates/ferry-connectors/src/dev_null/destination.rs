use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{RecordMessage, StateMessage};
use serde_json::Value;

use super::DevNullConfig;
use crate::connector::Destination;
use crate::driver::{StreamWriter, WriterFactory};
use crate::{ConnectorError, config};

/// Accepts everything and keeps nothing (Airbyte's E2E-testing destination, silent mode):
/// a record is "durable" as soon as it is read, so every STATE is acknowledged at once.
pub struct DevNullWriter;

impl DevNullWriter {
    pub fn build(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        config::parse::<DevNullConfig>(configuration)?;
        Ok(Box::new(Self))
    }
}

impl WriterFactory for DevNullWriter {
    type Writer = Self;

    async fn check_settings(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn open(
        self,
        _catalog: &ConfiguredCatalog,
        _naming: &DestinationNaming,
    ) -> Result<Self, ConnectorError> {
        Ok(self)
    }
}

impl StreamWriter for DevNullWriter {
    async fn write_record(&mut self, _: usize, _: &RecordMessage) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn make_durable(&mut self, _: &[StateMessage]) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn finish(&mut self, _: &[bool]) -> Result<(), ConnectorError> {
        Ok(())
    }
}
