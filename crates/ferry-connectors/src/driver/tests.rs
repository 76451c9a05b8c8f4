#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use ferry_protocol::catalog::ConfiguredCatalog;
use ferry_protocol::{
    AirbyteMessage, CopyFormat, CopyRows, PipeMessage, RecordMessage, StateMessage,
};
use ferry_protocol::{StreamDescriptor, TraceMessage};
use serde_json::json;
use tokio::sync::mpsc;

use super::{CopyRun, Incoming, StateAck, StreamWriter, drive};
use crate::ConnectorError;

/// Writes nothing; notes what it was asked to do.
#[derive(Default)]
struct Notes {
    calls: Vec<String>,
}

impl StreamWriter for Notes {
    async fn write_record(
        &mut self,
        stream: usize,
        record: &RecordMessage,
    ) -> Result<(), ConnectorError> {
        self.calls
            .push(format!("record {stream} {}", record.data.get()));
        Ok(())
    }

    async fn write_copy_rows(
        &mut self,
        stream: usize,
        run: &mut CopyRun<'_>,
    ) -> Result<(), ConnectorError> {
        let mut batches = 0;
        while run.next_batch().await.is_some() {
            batches += 1;
        }
        self.calls.push(format!("copy {stream} x{batches}"));
        Ok(())
    }

    async fn make_durable(&mut self, _: &[StateMessage]) -> Result<(), ConnectorError> {
        self.calls.push("durable".to_owned());
        Ok(())
    }

    async fn finish(&mut self, complete: &[bool]) -> Result<(), ConnectorError> {
        self.calls.push(format!("finish {complete:?}"));
        Ok(())
    }
}

fn catalog() -> ConfiguredCatalog {
    serde_json::from_value(json!({"streams": [
        {"stream": {"name": "kept", "namespace": "public"}, "sync_mode": "incremental", "destination_sync_mode": "append"},
        {"stream": {"name": "replaced"}, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"},
    ]}))
    .unwrap()
}

fn record(stream: &str, namespace: Option<&str>, id: u32) -> RecordMessage {
    RecordMessage {
        stream: stream.to_owned(),
        namespace: namespace.map(str::to_owned),
        data: serde_json::value::to_raw_value(&id).unwrap(),
        emitted_at: 0,
        meta: None,
        file: None,
    }
}

fn state(stream: &str) -> AirbyteMessage {
    AirbyteMessage::State {
        state: StateMessage::for_stream(StreamDescriptor::new(stream), json!({"at": stream})),
    }
}

fn complete(stream: &str) -> AirbyteMessage {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "stream_status".to_owned(),
        json!({"stream_descriptor": {"name": stream}, "status": "COMPLETE"}),
    );
    AirbyteMessage::Trace {
        trace: TraceMessage {
            trace_type: "STREAM_STATUS".to_owned(),
            emitted_at: 0.0,
            error: None,
            extra,
        },
    }
}

fn copy_rows(stream: &str, count: u64) -> PipeMessage {
    PipeMessage::CopyRows(CopyRows {
        stream: StreamDescriptor::new(stream),
        columns: Arc::from(vec!["id".to_owned()]),
        format: CopyFormat::Text,
        count,
        data: b"1\n".repeat(usize::try_from(count).unwrap()),
        lane: 0,
        mark: None,
    })
}

async fn run(messages: Vec<PipeMessage>) -> (Result<(), ConnectorError>, Vec<StateAck>) {
    let (sender, input) = mpsc::channel(64);
    let (acks_sender, mut acks) = mpsc::channel(64);
    for message in messages {
        sender.send(message).await.unwrap();
    }
    drop(sender);
    let catalog = catalog();
    let outcome = drive(Notes::default(), &catalog, input, acks_sender).await;
    let mut received = Vec::new();
    while let Ok(ack) = acks.try_recv() {
        received.push(ack);
    }
    (outcome, received)
}

#[tokio::test]
async fn states_are_acknowledged_after_what_came_before_them() {
    let (outcome, acks) = run(vec![
        PipeMessage::Records(vec![
            record("kept", None, 1),
            record("kept", Some("public"), 2),
        ]),
        state("kept").into(),
        PipeMessage::from(AirbyteMessage::Record {
            record: record("kept", None, 3),
        }),
    ])
    .await;
    outcome.unwrap();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].records, 2);
    assert!(acks[0].state.is_some());
    assert_eq!(
        acks[0].streams[0].stream.namespace.as_deref(),
        Some("public")
    );
    // What came after the last state is acknowledged at the end, without one.
    assert_eq!(acks[1].records, 1);
    assert!(acks[1].state.is_none());
}

#[tokio::test]
async fn an_overwritten_streams_state_waits_for_the_swap() {
    let (outcome, acks) = run(vec![
        copy_rows("replaced", 2),
        copy_rows("replaced", 3),
        state("replaced").into(),
        PipeMessage::from(AirbyteMessage::Record {
            record: record("kept", None, 1),
        }),
        state("kept").into(),
        complete("replaced").into(),
    ])
    .await;
    outcome.unwrap();
    // The appended stream's state first; the overwritten one's only after the end.
    assert_eq!(acks.len(), 2);
    let stream_of = |ack: &StateAck| {
        ack.state
            .as_ref()
            .unwrap()
            .stream
            .as_ref()
            .unwrap()
            .stream_descriptor
            .name
            .clone()
    };
    assert_eq!(stream_of(&acks[0]), "kept");
    assert_eq!(stream_of(&acks[1]), "replaced");
    assert_eq!(acks[1].records, 5, "the COPY run's rows are counted");
}

#[tokio::test]
async fn records_of_streams_the_catalog_does_not_configure_fail_the_write() {
    let (outcome, _) = run(vec![PipeMessage::from(AirbyteMessage::Record {
        record: record("other", None, 1),
    })])
    .await;
    let error = outcome.unwrap_err();
    assert!(error.to_string().contains("'other'"), "{error}");
    let (outcome, _) = run(vec![
        AirbyteMessage::Record {
            record: record("kept", Some("elsewhere"), 1),
        }
        .into(),
    ])
    .await;
    assert!(outcome.is_err(), "another namespace is another stream");
}

#[tokio::test]
async fn a_copy_run_ends_at_the_first_other_message() {
    let catalog = catalog();
    let (sender, input) = mpsc::channel(64);
    let (acks_sender, _acks) = mpsc::channel(64);
    for message in [
        copy_rows("replaced", 1),
        copy_rows("replaced", 1),
        PipeMessage::from(AirbyteMessage::Record {
            record: record("kept", None, 9),
        }),
        copy_rows("replaced", 1),
        complete("replaced").into(),
    ] {
        sender.send(message).await.unwrap();
    }
    drop(sender);
    let mut notes = Notes::default();
    let writer = NotesRef(&mut notes);
    drive(writer, &catalog, input, acks_sender).await.unwrap();
    assert_eq!(
        notes.calls,
        [
            "copy 1 x2",
            "record 0 9",
            "copy 1 x1",
            "finish [false, true]"
        ]
    );
}

/// A writer that leaves its notes with the test.
struct NotesRef<'a>(&'a mut Notes);

impl StreamWriter for NotesRef<'_> {
    async fn write_record(
        &mut self,
        stream: usize,
        record: &RecordMessage,
    ) -> Result<(), ConnectorError> {
        self.0.write_record(stream, record).await
    }
    async fn write_copy_rows(
        &mut self,
        stream: usize,
        run: &mut CopyRun<'_>,
    ) -> Result<(), ConnectorError> {
        self.0.write_copy_rows(stream, run).await
    }
    async fn make_durable(&mut self, states: &[StateMessage]) -> Result<(), ConnectorError> {
        self.0.make_durable(states).await
    }
    async fn finish(&mut self, complete: &[bool]) -> Result<(), ConnectorError> {
        self.0.finish(complete).await
    }
}

#[tokio::test]
async fn incoming_takes_batches_apart_in_order() {
    let (sender, receiver) = mpsc::channel(8);
    sender
        .send(PipeMessage::Records(vec![
            record("s", None, 1),
            record("s", None, 2),
        ]))
        .await
        .unwrap();
    sender
        .send(PipeMessage::from(AirbyteMessage::Record {
            record: record("s", None, 3),
        }))
        .await
        .unwrap();
    sender.send(PipeMessage::Records(vec![])).await.unwrap();
    sender.send(state("s").into()).await.unwrap();
    drop(sender);
    let mut incoming = Incoming::new(receiver);
    let mut seen = Vec::new();
    while let Some(message) = incoming.recv().await.unwrap() {
        seen.push(match message {
            AirbyteMessage::Record { record } => record.data.get().to_owned(),
            AirbyteMessage::State { .. } => "state".to_owned(),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(seen, ["1", "2", "3", "state"]);
}
