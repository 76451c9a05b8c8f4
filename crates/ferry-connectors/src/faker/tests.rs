#![allow(clippy::unwrap_used)]
use ferry_protocol::{AirbyteMessage, PipeMessage, StreamDescriptor};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::FakerSource;
use crate::connector::ResumeState;

async fn read_all(configuration: Value, state: Vec<ResumeState>) -> Vec<AirbyteMessage> {
    let (sender, mut receiver) = mpsc::channel(16);
    let source = FakerSource::new(&configuration).unwrap();
    let reader = tokio::spawn(async move { source.read_streams(&["users"], &state, sender).await });
    let mut messages = Vec::new();
    while let Some(message) = receiver.recv().await {
        messages.push(message_of(message));
    }
    reader.await.unwrap().unwrap();
    messages
}

/// The faker sends protocol messages only.
fn message_of(message: PipeMessage) -> AirbyteMessage {
    match message {
        PipeMessage::Message(message) => message,
        other => panic!("{other:?}"),
    }
}

fn ids(messages: &[AirbyteMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|message| match message {
            AirbyteMessage::Record { record } => {
                serde_json::from_str::<Value>(record.data.get()).unwrap()["id"].as_u64()
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn slices_end_with_state_and_resume_exactly() {
    let configuration = json!({"count": 25, "seed": 42, "records_per_slice": 10});
    let all = read_all(configuration.clone(), Vec::new()).await;
    assert_eq!(ids(&all), (1..=25).collect::<Vec<_>>());
    let states: Vec<u64> = all
        .iter()
        .filter_map(|message| match message {
            AirbyteMessage::State { state } => state
                .stream
                .as_ref()
                .unwrap()
                .stream_state
                .as_ref()
                .unwrap()["loop_offset"]
                .as_u64(),
            _ => None,
        })
        .collect();
    assert_eq!(states, [10, 20, 25]);
    let resumed = read_all(
        configuration,
        vec![ResumeState {
            stream: StreamDescriptor::new("users"),
            state: json!({"loop_offset": 20}),
        }],
    )
    .await;
    assert_eq!(ids(&resumed), (21..=25).collect::<Vec<_>>());
}

#[tokio::test]
async fn all_three_streams_resume_exactly() {
    let configuration = json!({"count": 30, "seed": 5, "records_per_slice": 10});
    let source = FakerSource::new(&configuration).unwrap();
    let (users, products, purchases) = source.record_counts();
    let (sender, mut receiver) = mpsc::channel(1024);
    source
        .read_streams(&["users", "products", "purchases"], &[], sender)
        .await
        .unwrap();
    let mut per_stream = std::collections::HashMap::<String, u64>::new();
    while let Ok(message) = receiver.try_recv() {
        if let AirbyteMessage::Record { record } = message_of(message) {
            *per_stream.entry(record.stream).or_default() += 1;
        }
    }
    assert_eq!(per_stream["users"], users);
    assert_eq!(per_stream["products"], products);
    assert_eq!(per_stream.get("purchases").copied().unwrap_or(0), purchases);
    assert!(purchases > 0);

    // Resumed after the second slice, with products done: only what is left.
    let resume = |name: &str, state: Value| ResumeState {
        stream: StreamDescriptor::new(name),
        state,
    };
    let state = vec![
        resume("products", json!({"seed": 5})),
        resume("users", json!({"loop_offset": 20})),
        resume("purchases", json!({"loop_offset": 20})),
    ];
    let source = FakerSource::new(&configuration).unwrap();
    let (sender, mut receiver) = mpsc::channel(1024);
    source
        .read_streams(&["users", "products", "purchases"], &state, sender)
        .await
        .unwrap();
    let mut streams = Vec::new();
    while let Ok(message) = receiver.try_recv() {
        if let AirbyteMessage::Record { record } = message_of(message) {
            streams.push(record.stream);
        }
    }
    assert_eq!(
        streams.iter().filter(|stream| *stream == "users").count(),
        10
    );
    assert!(!streams.iter().any(|stream| stream == "products"));
}

#[test]
fn same_seed_same_records() {
    let a = FakerSource::new(&json!({"seed": 7})).unwrap();
    let b = FakerSource::new(&json!({"seed": 7})).unwrap();
    let c = FakerSource::new(&json!({"seed": 8})).unwrap();
    let mut text = String::new();
    let user = a.user(3, "t", &mut text);
    assert_eq!(user.get(), b.user(3, "t", &mut text).get());
    assert_ne!(user.get(), c.user(3, "t", &mut text).get());
    // Valid JSON with every field the catalog names.
    let user: Value = serde_json::from_str(user.get()).unwrap();
    for field in FakerSource::catalog()["streams"][0]["json_schema"]["properties"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(!user[field].is_null(), "{field} missing in {user}");
    }
    assert_eq!(user["id"], 3);
}

#[test]
fn bad_configuration_names_the_field() {
    let error = FakerSource::new(&json!({"count": "many"})).err().unwrap();
    assert!(error.to_string().contains("count"), "{error}");
}
