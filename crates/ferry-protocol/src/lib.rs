//! Airbyte protocol messages (`shared/reference/airbyte_protocol.yaml`). Fields Ferry does
//! not interpret are kept in `extra` maps and written back unchanged; a record's `data` is
//! kept as raw JSON text, so a record passes through without being parsed into a tree.

pub mod catalog;
pub mod configs;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One line of a connector's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Envelope", into = "Envelope")]
pub enum AirbyteMessage {
    Record {
        record: RecordMessage,
    },
    State {
        state: StateMessage,
    },
    Log {
        log: LogMessage,
    },
    Trace {
        trace: TraceMessage,
    },
    /// SPEC, CATALOG, CONNECTION_STATUS, CONTROL: the type and its body, as sent.
    Other {
        kind: String,
        body: Value,
    },
    /// Ferry's in-process extension, never written to a connector: rows already in
    /// PostgreSQL's COPY text format, from a native PostgreSQL source to a native PostgreSQL
    /// destination, so that they never become JSON on the way.
    CopyRows {
        rows: CopyRows,
    },
}

/// Whole rows of one stream in COPY text format (one per line), with the columns they hold.
#[derive(Debug, Clone)]
pub struct CopyRows {
    pub stream: StreamDescriptor,
    pub columns: std::sync::Arc<[String]>,
    pub count: u64,
    pub data: Vec<u8>,
}

/// The wire shape. A plain struct (no internal tagging, no flattening) so that serde does
/// not buffer the message, which a record's raw `data` cannot survive.
#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<RecordMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<StateMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<LogMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace: Option<TraceMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catalog: Option<Value>,
    #[serde(
        default,
        rename = "connectionStatus",
        skip_serializing_if = "Option::is_none"
    )]
    connection_status: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    control: Option<Value>,
}

impl Envelope {
    fn of(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            record: None,
            state: None,
            log: None,
            trace: None,
            spec: None,
            catalog: None,
            connection_status: None,
            control: None,
        }
    }
}

impl TryFrom<Envelope> for AirbyteMessage {
    type Error = String;

    fn try_from(envelope: Envelope) -> Result<Self, Self::Error> {
        let missing = |field: &str| format!("{} message without its `{field}`", envelope.kind);
        Ok(match envelope.kind.as_str() {
            "RECORD" => Self::Record {
                record: envelope.record.ok_or_else(|| missing("record"))?,
            },
            "STATE" => Self::State {
                state: envelope.state.ok_or_else(|| missing("state"))?,
            },
            "LOG" => Self::Log {
                log: envelope.log.ok_or_else(|| missing("log"))?,
            },
            "TRACE" => Self::Trace {
                trace: envelope.trace.ok_or_else(|| missing("trace"))?,
            },
            "SPEC" | "CATALOG" | "CONNECTION_STATUS" | "CONTROL" => {
                let body = envelope
                    .spec
                    .or(envelope.catalog)
                    .or(envelope.connection_status)
                    .or(envelope.control)
                    .ok_or_else(|| missing("body"))?;
                Self::Other {
                    kind: envelope.kind,
                    body,
                }
            }
            other => return Err(format!("unknown message type {other}")),
        })
    }
}

impl From<AirbyteMessage> for Envelope {
    fn from(message: AirbyteMessage) -> Self {
        match message {
            AirbyteMessage::Record { record } => Self {
                record: Some(record),
                ..Self::of("RECORD")
            },
            AirbyteMessage::State { state } => Self {
                state: Some(state),
                ..Self::of("STATE")
            },
            AirbyteMessage::Log { log } => Self {
                log: Some(log),
                ..Self::of("LOG")
            },
            AirbyteMessage::Trace { trace } => Self {
                trace: Some(trace),
                ..Self::of("TRACE")
            },
            // Never meant for the wire; shown as a CONTROL-like summary if ever logged.
            AirbyteMessage::CopyRows { rows } => Self {
                control: Some(serde_json::json!({
                    "ferry_copy_rows": {"stream": rows.stream, "count": rows.count}
                })),
                ..Self::of("FERRY_COPY_ROWS")
            },
            AirbyteMessage::Other { kind, body } => {
                let mut envelope = Self::of(&kind);
                match kind.as_str() {
                    "SPEC" => envelope.spec = Some(body),
                    "CATALOG" => envelope.catalog = Some(body),
                    "CONNECTION_STATUS" => envelope.connection_status = Some(body),
                    _ => envelope.control = Some(body),
                }
                envelope
            }
        }
    }
}

/// A record. Its `data` stays raw JSON text; `meta` and `file` (newer protocol fields) are
/// kept as they came.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordMessage {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub data: Box<RawValue>,
    pub emitted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl StreamDescriptor {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: None,
        }
    }

    /// `namespace.name`, or `name` without a namespace: the key state is stored under.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub stream_descriptor: StreamDescriptor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_state: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMessage {
    /// `STREAM`, `GLOBAL` or `LEGACY`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub state_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamState>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StateMessage {
    pub fn for_stream(descriptor: StreamDescriptor, state: Value) -> Self {
        Self {
            state_type: Some("STREAM".to_owned()),
            stream: Some(StreamState {
                stream_descriptor: descriptor,
                stream_state: Some(state),
            }),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogMessage {
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceMessage {
    #[serde(rename = "type")]
    pub trace_type: String,
    pub emitted_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorTrace>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorTrace {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_keep_raw_data_and_unknown_fields() {
        let line = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"name":"a"},"emitted_at":5,"meta":{"x":1}}}"#;
        let message: AirbyteMessage = serde_json::from_str(line).unwrap();
        let AirbyteMessage::Record { record } = &message else {
            panic!("not a record")
        };
        assert_eq!(record.data.get(), r#"{"id":1,"name":"a"}"#);
        assert_eq!(record.meta, Some(serde_json::json!({"x": 1})));
        let back: Value = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(line).unwrap());
    }

    #[test]
    fn stream_states_round_trip() {
        let line = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"public"},"stream_state":{"id":10}}}}"#;
        let message: AirbyteMessage = serde_json::from_str(line).unwrap();
        let AirbyteMessage::State { state } = message else {
            panic!("not a state")
        };
        let stream = state.stream.unwrap();
        assert_eq!(stream.stream_descriptor.key(), "public.users");
        assert_eq!(stream.stream_state, Some(serde_json::json!({"id": 10})));
    }
}
