use ferry_protocol::AirbyteMessage;
use tokio::sync::mpsc;

use crate::{ConnectorError, StateAck, Tally};

/// Accepts everything and keeps nothing (Airbyte's E2E-testing destination, silent mode):
/// a record is "durable" as soon as it is read, so every STATE is acknowledged at once.
pub struct DevNullDestination;

impl DevNullDestination {
    pub async fn write(
        self,
        mut input: mpsc::Receiver<AirbyteMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> Result<(), ConnectorError> {
        let mut tally = Tally::default();
        while let Some(message) = input.recv().await {
            match message {
                AirbyteMessage::Record { record } => tally.add(
                    &record.stream,
                    record.namespace.as_deref(),
                    1,
                    record.data.get().len() as u64,
                ),
                AirbyteMessage::Records { records } => {
                    for record in &records {
                        tally.add(
                            &record.stream,
                            record.namespace.as_deref(),
                            1,
                            record.data.get().len() as u64,
                        );
                    }
                }
                AirbyteMessage::CopyRows { rows } => tally.add(
                    &rows.stream.name,
                    rows.stream.namespace.as_deref(),
                    rows.count,
                    rows.data.len() as u64,
                ),
                AirbyteMessage::State { state } => acks
                    .send(tally.ack(Some(state)))
                    .await
                    .map_err(|_| ConnectorError::PipeClosed)?,
                AirbyteMessage::Log { .. }
                | AirbyteMessage::Trace { .. }
                | AirbyteMessage::Other { .. } => {}
            }
        }
        if !tally.is_empty() {
            acks.send(tally.ack(None))
                .await
                .map_err(|_| ConnectorError::PipeClosed)?;
        }
        Ok(())
    }
}
