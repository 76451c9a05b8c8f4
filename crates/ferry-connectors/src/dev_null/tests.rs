#![allow(clippy::unwrap_used)]
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{AirbyteMessage, PipeMessage, RecordMessage, StateMessage, StreamDescriptor};
use serde_json::json;
use tokio::sync::mpsc;

use super::DevNullWriter;

#[tokio::test]
async fn every_state_is_acknowledged_at_once_with_what_came_before_it() {
    let destination =
        DevNullWriter::build(&json!({"destinationType": "dev-null", "anything": 1})).unwrap();
    destination.check().await.unwrap();
    let catalog: ConfiguredCatalog = serde_json::from_value(json!({"streams": [
        {"stream": {"name": "users"}, "sync_mode": "incremental", "destination_sync_mode": "append"}
    ]}))
    .unwrap();
    let (sender, input) = mpsc::channel(16);
    let (acks_sender, mut acks) = mpsc::channel(16);
    let record = |id: u32| RecordMessage {
        stream: "users".to_owned(),
        namespace: None,
        data: serde_json::value::to_raw_value(&json!({"id": id})).unwrap(),
        emitted_at: 0,
        meta: None,
        file: None,
    };
    sender
        .send(PipeMessage::Records(vec![record(1), record(2)]))
        .await
        .unwrap();
    sender
        .send(
            AirbyteMessage::State {
                state: StateMessage::for_stream(StreamDescriptor::new("users"), json!({"at": 2})),
            }
            .into(),
        )
        .await
        .unwrap();
    sender
        .send(AirbyteMessage::Record { record: record(3) }.into())
        .await
        .unwrap();
    drop(sender);
    destination
        .write(&catalog, &DestinationNaming::default(), input, acks_sender)
        .await
        .unwrap();
    let first = acks.recv().await.unwrap();
    assert_eq!((first.records, first.state.is_some()), (2, true));
    let rest = acks.recv().await.unwrap();
    assert_eq!((rest.records, rest.state.is_some()), (1, false));
    assert!(acks.recv().await.is_none());
}
