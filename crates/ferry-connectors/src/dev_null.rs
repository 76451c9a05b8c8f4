use ferry_protocol::AirbyteMessage;
use tokio::sync::mpsc;

use crate::{ConnectorError, StateAck};

/// Accepts everything and keeps nothing (Airbyte's E2E-testing destination, silent mode):
/// a record is "durable" as soon as it is read, so every STATE is acknowledged at once.
pub struct DevNullDestination;

impl DevNullDestination {
    pub async fn write(
        self,
        mut input: mpsc::Receiver<AirbyteMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> Result<(), ConnectorError> {
        let mut records = 0u64;
        let mut bytes = 0u64;
        while let Some(message) = input.recv().await {
            match message {
                AirbyteMessage::Record { record } => {
                    records += 1;
                    bytes += record.data.get().len() as u64;
                }
                AirbyteMessage::State { state } => {
                    acks.send(StateAck {
                        state: Some(state),
                        records,
                        bytes,
                    })
                    .await
                    .map_err(|_| ConnectorError::PipeClosed)?;
                    records = 0;
                    bytes = 0;
                }
                AirbyteMessage::CopyRows { rows } => {
                    records += rows.count;
                    bytes += rows.data.len() as u64;
                }
                AirbyteMessage::Log { .. }
                | AirbyteMessage::Trace { .. }
                | AirbyteMessage::Other { .. } => {}
            }
        }
        if records > 0 {
            acks.send(StateAck {
                state: None,
                records,
                bytes,
            })
            .await
            .map_err(|_| ConnectorError::PipeClosed)?;
        }
        Ok(())
    }
}
