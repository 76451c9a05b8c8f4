//! From a discovered catalog and a connection's stream configurations to the configured
//! catalog a `read` and a `write` are given, typed as the protocol defines them; fields Ferry
//! does not interpret are kept and written back unchanged.

mod configure;
mod naming;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{AirbyteMessage, StreamDescriptor, TraceMessage};
pub use configure::{ConfigureError, configure, orderable_type};
pub use naming::DestinationNaming;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    Append,
    Overwrite,
    AppendDedup,
    OverwriteDedup,
    Update,
    SoftDelete,
}

impl SyncMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FullRefresh => "full_refresh",
            Self::Incremental => "incremental",
        }
    }
}

impl DestinationSyncMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Overwrite => "overwrite",
            Self::AppendDedup => "append_dedup",
            Self::OverwriteDedup => "overwrite_dedup",
            Self::Update => "update",
            Self::SoftDelete => "soft_delete",
        }
    }

    pub const fn is_dedup(self) -> bool {
        matches!(self, Self::AppendDedup | Self::OverwriteDedup)
    }
}

/// A stream as a source describes it (`AirbyteStream`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AirbyteStream {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub json_schema: Value,
    #[serde(default)]
    pub supported_sync_modes: Vec<SyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_cursor: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_cursor_field: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_defined_primary_key: Vec<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AirbyteStream {
    pub fn descriptor(&self) -> StreamDescriptor {
        StreamDescriptor {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// The stream's top-level JSON-schema properties.
    pub fn properties(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.json_schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
    }
}

/// What a source offers (`AirbyteCatalog`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AirbyteCatalog {
    #[serde(default)]
    pub streams: Vec<AirbyteStream>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One stream of a configured catalog (`ConfiguredAirbyteStream`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfiguredStream {
    pub stream: AirbyteStream,
    pub sync_mode: SyncMode,
    pub destination_sync_mode: DestinationSyncMode,
    #[serde(default)]
    pub cursor_field: Vec<String>,
    #[serde(default)]
    pub primary_key: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfiguredStream {
    /// The top-level cursor column, if the cursor is one.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor_field.first().map(String::as_str)
    }

    /// The primary key's top-level columns.
    pub fn primary_key_columns(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .filter_map(|path| path.first().map(String::as_str))
            .collect()
    }

    /// Whether messages of the source's stream `name` in `namespace` are this stream's (a
    /// namespace missing on either side matches any, as destinations match records).
    pub fn takes(&self, name: &str, namespace: Option<&str>) -> bool {
        name == self.stream.name
            && (namespace.is_none()
                || self.stream.namespace.is_none()
                || namespace == self.stream.namespace.as_deref())
    }
}

/// What a `read` and a `write` are given (`ConfiguredAirbyteCatalog`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfiguredCatalog {
    #[serde(default)]
    pub streams: Vec<ConfiguredStream>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfiguredCatalog {
    /// The configured stream a message of `name` in `namespace` belongs to.
    pub fn stream_of(&self, name: &str, namespace: Option<&str>) -> Option<&ConfiguredStream> {
        self.streams
            .iter()
            .find(|configured| configured.takes(name, namespace))
    }

    /// Whether the catalog reads `descriptor` incrementally. Only such a stream resumes from
    /// a committed state: a full refresh reads everything on every sync (and on every
    /// attempt, since an overwrite's new table is started over too). A namespace missing on
    /// either side matches any: a connector that leaves it out of its states still resumes.
    pub fn reads_incrementally(&self, descriptor: &StreamDescriptor) -> bool {
        self.stream_of(&descriptor.name, descriptor.namespace.as_deref())
            .is_some_and(|configured| configured.sync_mode == SyncMode::Incremental)
    }

    /// The catalog a reset gives the destination: every stream overwritten (with nothing).
    pub fn for_reset(&self) -> Self {
        let mut catalog = self.clone();
        for stream in &mut catalog.streams {
            stream.destination_sync_mode = DestinationSyncMode::Overwrite;
        }
        catalog
    }

    /// A `STREAM_STATUS` trace saying each stream of the catalog was read to its end.
    pub fn streams_complete(&self) -> Vec<AirbyteMessage> {
        let emitted_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
            .unwrap_or_default();
        self.streams
            .iter()
            .map(|configured| {
                let mut extra = Map::new();
                extra.insert(
                    "stream_status".to_owned(),
                    json!({"stream_descriptor": configured.stream.descriptor(), "status": "COMPLETE"}),
                );
                AirbyteMessage::Trace {
                    trace: TraceMessage {
                        trace_type: "STREAM_STATUS".to_owned(),
                        emitted_at,
                        error: None,
                        extra,
                    },
                }
            })
            .collect()
    }
}

/// Airbyte's `ConnectionSyncModeEnum`, as the protocol's (sync_mode, destination_sync_mode).
pub fn split_sync_mode(mode: &str) -> Option<(SyncMode, DestinationSyncMode)> {
    use DestinationSyncMode as Destination;
    use SyncMode::{FullRefresh, Incremental};
    Some(match mode {
        "full_refresh_overwrite" => (FullRefresh, Destination::Overwrite),
        "full_refresh_overwrite_deduped" => (FullRefresh, Destination::OverwriteDedup),
        "full_refresh_append" => (FullRefresh, Destination::Append),
        "full_refresh_update" => (FullRefresh, Destination::Update),
        "full_refresh_soft_delete" => (FullRefresh, Destination::SoftDelete),
        "incremental_append" => (Incremental, Destination::Append),
        "incremental_deduped_history" => (Incremental, Destination::AppendDedup),
        "incremental_update" => (Incremental, Destination::Update),
        "incremental_soft_delete" => (Incremental, Destination::SoftDelete),
        _ => return None,
    })
}
