//! Airbyte protocol messages (`shared/reference/airbyte_protocol.yaml`). Fields Ferry does
//! not interpret are kept in `extra` maps and written back unchanged; a record's `data` is
//! kept as raw JSON text, so a record passes through without being parsed into a tree.

pub mod catalog;
pub mod failure;
mod pipe;

pub use pipe::{CopyFormat, CopyRows, PipeMessage, RangeMark};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One line of a connector's output.
#[derive(Debug, Clone)]
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
}

/// The key holding each kind of message's body on the wire.
const fn body_key(kind: &str) -> &'static str {
    match kind.as_bytes() {
        b"SPEC" => "spec",
        b"CATALOG" => "catalog",
        b"CONNECTION_STATUS" => "connectionStatus",
        _ => "control",
    }
}

/// Written as Airbyte writes it: `type` first, then the body under its key. By hand rather
/// than through a wire struct, because every record passes through here: a struct with a
/// slot for each kind of body is 600 bytes to build and move per record, and serde's `into`
/// would clone the record first.
impl Serialize for AirbyteMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Self::Record { record } = self {
            return RecordLine(record).serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(2))?;
        match self {
            Self::Record { .. } => {}
            Self::State { state } => {
                map.serialize_entry("type", "STATE")?;
                map.serialize_entry("state", state)?;
            }
            Self::Log { log } => {
                map.serialize_entry("type", "LOG")?;
                map.serialize_entry("log", log)?;
            }
            Self::Trace { trace } => {
                map.serialize_entry("type", "TRACE")?;
                map.serialize_entry("trace", trace)?;
            }
            Self::Other { kind, body } => {
                map.serialize_entry("type", kind)?;
                map.serialize_entry(body_key(kind), body)?;
            }
        }
        map.end()
    }
}

/// One record of a batch, written as the RECORD message it would be on its own.
pub struct RecordLine<'a>(pub &'a RecordMessage);

impl Serialize for RecordLine<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", "RECORD")?;
        map.serialize_entry("record", self.0)?;
        map.end()
    }
}

/// The keys of a message on the wire; any other is skipped.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum MessageKey {
    #[serde(rename = "type")]
    Type,
    #[serde(rename = "record")]
    Record,
    #[serde(rename = "state")]
    State,
    #[serde(rename = "log")]
    Log,
    #[serde(rename = "trace")]
    Trace,
    #[serde(rename = "spec")]
    Spec,
    #[serde(rename = "catalog")]
    Catalog,
    #[serde(rename = "connectionStatus")]
    ConnectionStatus,
    #[serde(rename = "control")]
    Control,
    #[serde(other)]
    Unknown,
}

/// Read by hand for the same reason it is written by hand; the keys may come in any order,
/// `type` included.
impl<'de> Deserialize<'de> for AirbyteMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> serde::de::Visitor<'de> for MessageVisitor {
    type Value = AirbyteMessage;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an Airbyte message (a JSON object with a `type`)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut kind: Option<MessageKind> = None;
        let mut record: Option<RecordMessage> = None;
        let mut state: Option<StateMessage> = None;
        let mut log: Option<LogMessage> = None;
        let mut trace: Option<TraceMessage> = None;
        // The bodies of the other kinds, by key.
        let mut bodies: Vec<(MessageKey, Value)> = Vec::new();
        while let Some(key) = map.next_key::<MessageKey>()? {
            match key {
                MessageKey::Type => kind = Some(map.next_value()?),
                MessageKey::Record => record = Some(map.next_value()?),
                MessageKey::State => state = Some(map.next_value()?),
                MessageKey::Log => log = Some(map.next_value()?),
                MessageKey::Trace => trace = Some(map.next_value()?),
                MessageKey::Spec
                | MessageKey::Catalog
                | MessageKey::ConnectionStatus
                | MessageKey::Control => bodies.push((key, map.next_value()?)),
                MessageKey::Unknown => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
        let missing =
            |field: &str| A::Error::custom(format!("{kind} message without its `{field}`"));
        Ok(match kind {
            MessageKind::Record => AirbyteMessage::Record {
                record: record.ok_or_else(|| missing("record"))?,
            },
            MessageKind::State => AirbyteMessage::State {
                state: state.ok_or_else(|| missing("state"))?,
            },
            MessageKind::Log => AirbyteMessage::Log {
                log: log.ok_or_else(|| missing("log"))?,
            },
            MessageKind::Trace => AirbyteMessage::Trace {
                trace: trace.ok_or_else(|| missing("trace"))?,
            },
            MessageKind::Other(kind) => {
                let wanted = body_key(&kind);
                let body = bodies
                    .into_iter()
                    .find(|(key, _)| key.name() == wanted)
                    .map(|(_, body)| body)
                    .ok_or_else(|| {
                        A::Error::custom(format!("{kind} message without its `{wanted}`"))
                    })?;
                AirbyteMessage::Other { kind, body }
            }
            MessageKind::Unknown(other) => {
                return Err(A::Error::custom(format!("unknown message type {other}")));
            }
        })
    }
}

impl MessageKey {
    fn name(&self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Catalog => "catalog",
            Self::ConnectionStatus => "connectionStatus",
            Self::Control => "control",
            Self::Type => "type",
            Self::Record => "record",
            Self::State => "state",
            Self::Log => "log",
            Self::Trace => "trace",
            Self::Unknown => "",
        }
    }
}

/// A message's `type`, read without allocating for the four kinds that come by the million.
enum MessageKind {
    Record,
    State,
    Log,
    Trace,
    /// SPEC, CATALOG, CONNECTION_STATUS, CONTROL.
    Other(String),
    Unknown(String),
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Record => "RECORD",
            Self::State => "STATE",
            Self::Log => "LOG",
            Self::Trace => "TRACE",
            Self::Other(kind) | Self::Unknown(kind) => kind,
        })
    }
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl serde::de::Visitor<'_> for KindVisitor {
            type Value = MessageKind;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a message type such as RECORD or STATE")
            }

            fn visit_str<E: serde::de::Error>(self, kind: &str) -> Result<MessageKind, E> {
                Ok(match kind {
                    "RECORD" => MessageKind::Record,
                    "STATE" => MessageKind::State,
                    "LOG" => MessageKind::Log,
                    "TRACE" => MessageKind::Trace,
                    "SPEC" | "CATALOG" | "CONNECTION_STATUS" | "CONTROL" => {
                        MessageKind::Other(kind.to_owned())
                    }
                    other => MessageKind::Unknown(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(KindVisitor)
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
    // Boxed, as are the rarer parts of states and traces below: every message is moved
    // several times on its way through the pipe, and these would double its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<Value>>,
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
    pub stream: Option<Box<StreamState>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StateMessage {
    pub fn for_stream(descriptor: StreamDescriptor, state: Value) -> Self {
        Self {
            state_type: Some("STREAM".to_owned()),
            stream: Some(Box::new(StreamState {
                stream_descriptor: descriptor,
                stream_state: Some(state),
            })),
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
    pub error: Option<Box<ErrorTrace>>,
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
        assert_eq!(record.meta, Some(Box::new(serde_json::json!({"x": 1}))));
        let back: Value = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(line).unwrap());
    }

    #[test]
    fn every_kind_round_trips_whatever_the_key_order() {
        for line in [
            r#"{"record":{"stream":"s","data":[1],"emitted_at":1},"type":"RECORD"}"#,
            r#"{"type":"LOG","log":{"level":"INFO","message":"hi"}}"#,
            r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1.5,"error":{"message":"no"}}}"#,
            r#"{"type":"SPEC","spec":{"connectionSpecification":{}}}"#,
            r#"{"catalog":{"streams":[]},"type":"CATALOG"}"#,
            r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#,
            r#"{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG"},"extra":[1,{"a":2}]}"#,
        ] {
            let message: AirbyteMessage = serde_json::from_str(line).unwrap();
            let mut expected: Value = serde_json::from_str(line).unwrap();
            expected.as_object_mut().unwrap().remove("extra");
            let back: Value = serde_json::to_value(&message).unwrap();
            assert_eq!(back, expected, "{line}");
        }
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        for (line, expected) in [
            (
                r#"{"type":"RECORD"}"#,
                "RECORD message without its `record`",
            ),
            (
                r#"{"type":"CATALOG","spec":{}}"#,
                "CATALOG message without its `catalog`",
            ),
            (
                r#"{"log":{"level":"INFO","message":"m"}}"#,
                "missing field `type`",
            ),
            (r#"{"type":"NOPE"}"#, "unknown message type NOPE"),
            (r#"{"type":7}"#, "invalid type"),
            (r#"[1]"#, "invalid type"),
        ] {
            let error = serde_json::from_str::<AirbyteMessage>(line).unwrap_err();
            assert!(error.to_string().contains(expected), "{line}: {error}");
        }
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

/// Which end of a sync a connector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorRole {
    Source,
    Destination,
}

impl ConnectorRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
        }
    }
}

impl std::fmt::Display for ConnectorRole {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}
