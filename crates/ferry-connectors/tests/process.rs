//! The external-connector runtime against a real process speaking the Airbyte protocol.

#![allow(clippy::unwrap_used)]

use ferry_connectors::{ExternalConnector, StateAck};
use ferry_protocol::{AirbyteMessage, PipeMessage};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn connector() -> ExternalConnector {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/protocol_connector.py"
    );
    ExternalConnector::new(&["python3".to_owned(), script.to_owned()]).unwrap()
}

fn catalog() -> ferry_protocol::catalog::ConfiguredCatalog {
    serde_json::from_value(
        json!({"streams": [{"stream": {"name": "numbers", "json_schema": {}, "supported_sync_modes": ["incremental"]},
                            "sync_mode": "incremental", "destination_sync_mode": "append"}]}),
    )
    .expect("a configured catalog")
}

async fn read_all(
    config: Value,
    state: Option<Value>,
) -> (Vec<AirbyteMessage>, Result<(), String>) {
    let (sender, mut receiver) = mpsc::channel(8);
    let reader = tokio::spawn(async move {
        connector()
            .read(&config, &catalog(), state.as_ref(), sender)
            .await
            .map_err(|error| error.to_string())
    });
    // As a destination sees them: batches of records taken apart, in order.
    let mut messages = Vec::new();
    while let Some(message) = receiver.recv().await {
        match message {
            PipeMessage::Records(records) => {
                assert!(records.len() > 1, "a batch holds records");
                messages.extend(
                    records
                        .into_iter()
                        .map(|record| AirbyteMessage::Record { record }),
                );
            }
            PipeMessage::Message(message) => messages.push(message),
            PipeMessage::CopyRows(_) => panic!("COPY rows from an external source"),
        }
    }
    (messages, reader.await.unwrap())
}

fn ids(messages: &[AirbyteMessage]) -> Vec<i64> {
    messages
        .iter()
        .filter_map(|message| match message {
            AirbyteMessage::Record { record } => {
                serde_json::from_str::<Value>(record.data.get()).unwrap()["id"].as_i64()
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn spec_check_and_discover_answer() {
    let spec = connector().spec().await.unwrap();
    assert!(spec["connectionSpecification"].is_object());
    let ok = connector().check(&json!({"count": 1})).await.unwrap();
    assert!(ok.succeeded);
    let refused = connector()
        .check(&json!({"fail_check": true}))
        .await
        .unwrap();
    assert!(!refused.succeeded);
    assert_eq!(refused.message.as_deref(), Some("bad credentials"));
    let catalog = connector().discover(&json!({})).await.unwrap();
    assert_eq!(catalog["streams"][0]["name"], "numbers");
}

#[tokio::test]
async fn read_streams_records_and_states_and_resumes_from_state() {
    let (messages, result) = read_all(json!({"count": 25}), None).await;
    result.unwrap();
    assert_eq!(ids(&messages), (1..=25).collect::<Vec<_>>());
    let states = messages
        .iter()
        .filter(|message| matches!(message, AirbyteMessage::State { .. }))
        .count();
    assert_eq!(states, 3);
    // The source's stream status goes on to the destination, before its records.
    let AirbyteMessage::Trace { trace } = &messages[0] else {
        panic!("first is the stream status: {:?}", messages[0])
    };
    assert_eq!(trace.trace_type, "STREAM_STATUS");
    // And its estimate of what is to come.
    let AirbyteMessage::Trace { trace } = &messages[1] else {
        panic!("then the estimate: {:?}", messages[1])
    };
    assert_eq!(trace.trace_type, "ESTIMATE");
    // The record's data passes through as the connector wrote it.
    let AirbyteMessage::Record { record } = &messages[2] else {
        panic!("then a record")
    };
    assert_eq!(record.data.get(), r#"{"id": 1, "square": 1}"#);

    let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "numbers"}, "stream_state": {"offset": 20}}}]);
    let (resumed, result) = read_all(json!({"count": 25}), Some(state)).await;
    result.unwrap();
    assert_eq!(ids(&resumed), (21..=25).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_trace_error_becomes_the_failure_reason() {
    let (messages, result) = read_all(json!({"count": 25, "fail_at": 13}), None).await;
    assert_eq!(result.unwrap_err(), "simulated failure at record 13");
    assert_eq!(ids(&messages).len(), 12);
}

#[tokio::test]
async fn a_missing_program_is_a_clear_error() {
    let missing = ExternalConnector::new(&["/nonexistent/connector".to_owned()]).unwrap();
    let error = missing.spec().await.unwrap_err().to_string();
    assert!(
        error.contains("cannot start /nonexistent/connector"),
        "{error}"
    );
    assert!(ExternalConnector::new(&[]).is_err());
}

async fn write_all(config: Value, source_config: Value) -> (Vec<StateAck>, Result<(), String>) {
    let (records_sender, records) = mpsc::channel(8);
    let (acks_sender, mut acks) = mpsc::channel(8);
    let source = tokio::spawn(async move {
        connector()
            .read(&source_config, &catalog(), None, records_sender)
            .await
    });
    let writer = tokio::spawn(async move {
        connector()
            .write(
                &config,
                &catalog(),
                &Default::default(),
                records,
                acks_sender,
            )
            .await
            .map_err(|error| error.to_string())
    });
    let mut received = Vec::new();
    let mut estimated = false;
    while let Some(ack) = acks.recv().await {
        // The source's ESTIMATE reaches the data plane as an acknowledgement of nothing.
        if ack.estimates.is_empty() {
            received.push(ack);
        } else {
            assert!(ack.state.is_none() && ack.records == 0, "{ack:?}");
            assert_eq!(ack.estimates[0].records, Some(25), "{ack:?}");
            estimated = true;
        }
    }
    let _ = source.await.unwrap();
    let written = writer.await.unwrap();
    assert!(
        estimated || written.is_err(),
        "the source's estimate was not passed on"
    );
    (received, written)
}

#[tokio::test]
async fn write_acknowledges_states_the_destination_echoes_with_their_records() {
    let (acks, result) = write_all(json!({}), json!({"count": 25})).await;
    result.unwrap();
    assert_eq!(
        acks.iter().map(|ack| ack.records).collect::<Vec<_>>(),
        [10, 10, 5]
    );
    // A destination that echoes only some states acknowledges everything before them.
    let (acks, result) = write_all(json!({"echo_every": 2}), json!({"count": 25})).await;
    result.unwrap();
    assert_eq!(
        acks.iter().map(|ack| ack.records).collect::<Vec<_>>(),
        [20, 5]
    );
    assert!(acks.iter().all(|ack| ack.bytes > 0));
}

#[tokio::test]
async fn a_failing_destination_reports_its_trace_error() {
    let (acks, result) = write_all(json!({"fail_write": true}), json!({"count": 25})).await;
    assert!(acks.is_empty());
    assert_eq!(result.unwrap_err(), "the destination refused the data");
}

#[tokio::test]
async fn config_files_are_private_and_removed_after_the_run() {
    // The fixture fails the run unless its files are 0600, and reports where they were.
    let (messages, result) = read_all(json!({"count": 1, "report_paths": true}), None).await;
    result.unwrap();
    let Some(AirbyteMessage::Record { record }) = messages
        .iter()
        .find(|message| matches!(message, AirbyteMessage::Record { .. }))
    else {
        panic!("first is the paths record")
    };
    let paths: Value = serde_json::from_str(record.data.get()).unwrap();
    let config = std::path::PathBuf::from(paths["--config"].as_str().unwrap());
    let catalog = std::path::PathBuf::from(paths["--catalog"].as_str().unwrap());
    assert_eq!(config.parent(), catalog.parent());
    let directory = config.parent().unwrap();
    assert!(
        directory
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ferry-connector-")
    );
    assert!(!config.exists() && !catalog.exists(), "files left behind");
    assert!(!directory.exists(), "{} left behind", directory.display());
}
