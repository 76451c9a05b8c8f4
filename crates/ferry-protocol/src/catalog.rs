//! From a discovered catalog and a connection's stream configurations to the configured
//! catalog a `read` and a `write` are given, typed as the protocol defines them; fields Ferry
//! does not interpret are kept and written back unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{AirbyteMessage, RecordMessage, StreamDescriptor, TraceMessage};

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

/// Why stream configurations were refused: the key at fault, as the public API names it
/// (`configurations.streams[0].cursorField`), and why (naming the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigureError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for ConfigureError {}

/// The configured catalog: the streams the connection names (all, when it names none), each
/// with its sync modes, cursor and primary key — or, where not given, the source's defaults:
/// incremental append where the source defines a cursor, full refresh overwrite elsewhere.
/// A named stream must exist (in the namespace named, if one is) and be named once; a cursor
/// or primary key given must be fields of the stream's schema, and a cursor one whose values
/// can be ordered.
pub fn configure(
    discovered: &AirbyteCatalog,
    configurations: &Value,
) -> Result<ConfiguredCatalog, ConfigureError> {
    let wanted = configurations["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut configured: Vec<ConfiguredStream> = Vec::new();
    if wanted.is_empty() {
        for stream in &discovered.streams {
            let field = |_: &str| "configurations.streams".to_owned();
            configured.push(configure_stream(stream, &Value::Null, &field)?);
        }
    } else {
        for (index, configuration) in wanted.iter().enumerate() {
            let field = |key: &str| format!("configurations.streams[{index}]{key}");
            let stream = find_stream(discovered, configuration, &field)?;
            if let Some(earlier) = configured.iter().position(|chosen| {
                chosen.stream.name == stream.name && chosen.stream.namespace == stream.namespace
            }) {
                return Err(ConfigureError {
                    field: field(""),
                    message: format!(
                        "stream {} is already configured at configurations.streams[{earlier}]",
                        label(stream)
                    ),
                });
            }
            configured.push(configure_stream(stream, configuration, &field)?);
        }
    }
    Ok(ConfiguredCatalog {
        streams: configured,
        extra: Map::new(),
    })
}

/// `'name'`, or `'name' (namespace 'ns')`.
fn label(stream: &AirbyteStream) -> String {
    match &stream.namespace {
        Some(namespace) => format!("'{}' (namespace '{namespace}')", stream.name),
        None => format!("'{}'", stream.name),
    }
}

/// The discovered stream a configuration names: by name, and by namespace when it names
/// one.
fn find_stream<'a>(
    discovered: &'a AirbyteCatalog,
    configuration: &Value,
    field: &dyn Fn(&str) -> String,
) -> Result<&'a AirbyteStream, ConfigureError> {
    let name = configuration["name"].as_str().unwrap_or_default();
    let namespace = configuration.get("namespace").and_then(Value::as_str);
    let named: Vec<&AirbyteStream> = discovered
        .streams
        .iter()
        .filter(|stream| stream.name == name)
        .collect();
    if let Some(stream) = named.iter().find(|stream| {
        namespace.is_none_or(|namespace| stream.namespace.as_deref() == Some(namespace))
    }) {
        return Ok(stream);
    }
    let Some(namespace) = namespace.filter(|_| !named.is_empty()) else {
        return Err(ConfigureError {
            field: field(".name"),
            message: format!("the source has no stream '{name}'"),
        });
    };
    let offered: Vec<String> = named
        .iter()
        .filter_map(|stream| stream.namespace.as_deref())
        .map(|namespace| format!("'{namespace}'"))
        .collect();
    let offered = match offered.len() {
        0 => "without a namespace".to_owned(),
        1 => format!("in namespace {}", offered[0]),
        _ => format!("in namespaces {}", offered.join(", ")),
    };
    Err(ConfigureError {
        field: field(".namespace"),
        message: format!(
            "the source has no stream '{name}' in namespace '{namespace}'; it has '{name}' {offered}"
        ),
    })
}

/// A list of field paths (`["a"]` or `[["a"], ["b", "c"]]`) from a configuration.
fn paths<T: serde::de::DeserializeOwned>(
    value: Option<&Value>,
    what: &str,
) -> Result<Option<T>, String> {
    match value.filter(|value| !value.is_null()) {
        None => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| format!("{what} must be a list of field names")),
    }
}

/// The schema of the field at `path` (nested through `properties`), if the stream has one.
fn field_schema<'a>(stream: &'a AirbyteStream, path: &[String]) -> Option<&'a Value> {
    let mut schema = &stream.json_schema;
    for key in path {
        schema = schema.get("properties")?.get(key)?;
    }
    Some(schema)
}

/// Whether the stream's schema lists its fields: a schema without `properties` (an untyped
/// stream) has nothing to check a field against.
fn lists_fields(stream: &AirbyteStream) -> bool {
    stream
        .json_schema
        .get("properties")
        .is_some_and(Value::is_object)
}

/// The stream's top-level fields, for an error message (the first 20).
fn field_list(stream: &AirbyteStream) -> String {
    let names: Vec<&str> = stream.properties().map(|(name, _)| name.as_str()).collect();
    if names.is_empty() {
        return "it has none".to_owned();
    }
    let shown = names
        .iter()
        .take(20)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 20 {
        format!("its fields: {shown}, … ({} in all)", names.len())
    } else {
        format!("its fields: {shown}")
    }
}

/// The type of a cursor field's schema when its values can be ordered (numbers, strings,
/// dates and times, booleans); otherwise what it is: objects, arrays, untyped JSON (as a
/// PostgreSQL json/jsonb column is described) and unions of several types have no order a
/// source and a destination agree on.
pub fn orderable_type(schema: &Value) -> Result<String, String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return match name {
            "Integer"
            | "Number"
            | "Boolean"
            | "String"
            | "BinaryData"
            | "Date"
            | "TimeWithoutTimezone"
            | "TimeWithTimezone"
            | "TimestampWithoutTimezone"
            | "TimestampWithTimezone" => Ok(name.to_owned()),
            _ => Err(format!("of type {name}")),
        };
    }
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|kind| *kind != "null")
            .collect(),
        _ => Vec::new(),
    };
    match kinds.as_slice() {
        [] => Err("untyped (any JSON value, such as a json or jsonb column)".to_owned()),
        [kind @ ("integer" | "number" | "boolean")] => Ok((*kind).to_owned()),
        ["string"] => Ok(match schema.get("format").and_then(Value::as_str) {
            Some(format) => format!("string ({format})"),
            None => "string".to_owned(),
        }),
        [kind] => Err(format!("of type {kind}")),
        several => Err(format!("of several types ({})", several.join(", "))),
    }
}

fn configure_stream(
    stream: &AirbyteStream,
    configuration: &Value,
    field: &dyn Fn(&str) -> String,
) -> Result<ConfiguredStream, ConfigureError> {
    let name = &stream.name;
    let refuse = |key: &str, message: String| ConfigureError {
        field: field(key),
        message,
    };
    let source_cursor = stream.source_defined_cursor.unwrap_or(false);
    let supports = |mode: SyncMode| stream.supported_sync_modes.contains(&mode);
    let (sync_mode, destination_sync_mode) =
        match configuration.get("syncMode").and_then(Value::as_str) {
            Some(mode) => split_sync_mode(mode).ok_or_else(|| {
                refuse(
                    ".syncMode",
                    format!("stream '{name}': unknown sync mode '{mode}'"),
                )
            })?,
            None if source_cursor && supports(SyncMode::Incremental) => {
                (SyncMode::Incremental, DestinationSyncMode::Append)
            }
            None => (SyncMode::FullRefresh, DestinationSyncMode::Overwrite),
        };
    if !supports(sync_mode) {
        return Err(refuse(
            ".syncMode",
            format!(
                "stream '{name}' does not support {} sync",
                sync_mode.as_str()
            ),
        ));
    }
    let given_cursor: Option<Vec<String>> = paths(configuration.get("cursorField"), "cursorField")
        .map_err(|message| refuse(".cursorField", message))?
        .filter(|cursor: &Vec<String>| !cursor.is_empty());
    let given_key: Option<Vec<Vec<String>>> = paths(configuration.get("primaryKey"), "primaryKey")
        .map_err(|message| refuse(".primaryKey", message))?;
    if let Some(cursor) = &given_cursor
        && lists_fields(stream)
    {
        let shown = cursor.join(".");
        let schema = field_schema(stream, cursor).ok_or_else(|| {
            refuse(
                ".cursorField",
                format!(
                    "stream '{name}': cursor field '{shown}' is not a field of the stream ({})",
                    field_list(stream)
                ),
            )
        })?;
        orderable_type(schema).map_err(|kind| {
            refuse(
                ".cursorField",
                format!(
                    "stream '{name}': cursor field '{shown}' is {kind}, whose values cannot be ordered; a cursor must be a number, string, date, time or boolean field"
                ),
            )
        })?;
    }
    if let Some(key) = &given_key {
        for path in key {
            let Some(top) = path.first() else {
                return Err(refuse(
                    ".primaryKey",
                    format!("stream '{name}': a primary key path must name a field"),
                ));
            };
            if lists_fields(stream) && field_schema(stream, std::slice::from_ref(top)).is_none() {
                return Err(refuse(
                    ".primaryKey",
                    format!(
                        "stream '{name}': primary key field '{top}' is not a field of the stream ({})",
                        field_list(stream)
                    ),
                ));
            }
        }
    }
    let cursor_field = given_cursor.unwrap_or_else(|| stream.default_cursor_field.clone());
    let primary_key = given_key.unwrap_or_else(|| stream.source_defined_primary_key.clone());
    if sync_mode == SyncMode::Incremental && !source_cursor && cursor_field.is_empty() {
        return Err(refuse(
            ".cursorField",
            format!("stream '{name}' is incremental but has no cursor field"),
        ));
    }
    if destination_sync_mode.is_dedup() && primary_key.is_empty() {
        return Err(refuse(
            ".primaryKey",
            format!("stream '{name}' is deduplicated but has no primary key"),
        ));
    }
    Ok(ConfiguredStream {
        stream: stream.clone(),
        sync_mode,
        destination_sync_mode,
        cursor_field,
        primary_key,
        generation_id: None,
        minimum_generation_id: None,
        sync_id: None,
        extra: Map::new(),
    })
}

/// Where a connection puts each stream in the destination (Airbyte's `namespaceDefinition`,
/// `namespaceFormat` and `prefix`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationNaming {
    /// `destination` (the destination's default), `source` (the source's namespace) or
    /// `custom_format` (`namespaceFormat`, with `${SOURCE_NAMESPACE}` replaced).
    #[serde(default = "default_namespace_definition")]
    pub namespace_definition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

fn default_namespace_definition() -> String {
    "destination".to_owned()
}

impl Default for DestinationNaming {
    fn default() -> Self {
        Self {
            namespace_definition: default_namespace_definition(),
            namespace_format: None,
            prefix: None,
        }
    }
}

impl DestinationNaming {
    pub const DEFINITIONS: [&'static str; 3] = ["destination", "source", "custom_format"];

    /// The destination namespace of a stream from `source_namespace`; `None` means the
    /// destination's own default.
    pub fn namespace(&self, source_namespace: Option<&str>) -> Option<String> {
        match self.namespace_definition.as_str() {
            "source" => source_namespace.map(str::to_owned),
            "custom_format" => self
                .namespace_format
                .as_deref()
                .map(|format| format.replace("${SOURCE_NAMESPACE}", source_namespace.unwrap_or("")))
                .filter(|namespace| !namespace.trim().is_empty()),
            _ => None,
        }
    }

    /// The destination name of stream `name`.
    pub fn name(&self, name: &str) -> String {
        match self.prefix.as_deref() {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_owned(),
        }
    }

    /// The catalog as the destination sees it: each stream under its destination name.
    pub fn apply(&self, catalog: &ConfiguredCatalog) -> ConfiguredCatalog {
        let mut catalog = catalog.clone();
        for configured in &mut catalog.streams {
            let stream = &mut configured.stream;
            stream.namespace = self.namespace(stream.namespace.as_deref());
            stream.name = self.name(&stream.name);
        }
        catalog
    }

    fn apply_to_record(&self, record: &mut RecordMessage) {
        record.namespace = self.namespace(record.namespace.as_deref());
        if self.prefix.is_some() {
            record.stream = self.name(&record.stream);
        }
    }

    /// A message as the destination sees it: records and stream statuses renamed.
    pub fn apply_to_message(&self, message: &mut AirbyteMessage) {
        match message {
            AirbyteMessage::Record { record } => self.apply_to_record(record),
            AirbyteMessage::Records { records } => {
                for record in records {
                    self.apply_to_record(record);
                }
            }
            AirbyteMessage::Trace { trace } => {
                if let Some(descriptor) = trace
                    .extra
                    .get_mut("stream_status")
                    .and_then(|status| status.get_mut("stream_descriptor"))
                {
                    let namespace = self.namespace(descriptor["namespace"].as_str());
                    descriptor["name"] =
                        json!(self.name(descriptor["name"].as_str().unwrap_or_default()));
                    match namespace {
                        Some(namespace) => descriptor["namespace"] = json!(namespace),
                        None => {
                            if let Some(fields) = descriptor.as_object_mut() {
                                fields.remove("namespace");
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn discovered() -> AirbyteCatalog {
        serde_json::from_value(json!({"streams": [
            {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
             "source_defined_cursor": true, "default_cursor_field": ["updated_at"], "source_defined_primary_key": [["id"]],
             "is_resumable": true},
            {"name": "logs", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        ]}))
        .unwrap()
    }

    fn descriptor(name: &str, namespace: Option<&str>) -> StreamDescriptor {
        StreamDescriptor {
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
        }
    }

    #[test]
    fn naming_places_streams_as_airbyte_does() {
        let source =
            |naming: &DestinationNaming| (naming.namespace(Some("public")), naming.name("users"));
        assert_eq!(
            source(&DestinationNaming::default()),
            (None, "users".to_owned())
        );
        let by_source = DestinationNaming {
            namespace_definition: "source".to_owned(),
            namespace_format: None,
            prefix: Some("raw_".to_owned()),
        };
        assert_eq!(
            source(&by_source),
            (Some("public".to_owned()), "raw_users".to_owned())
        );
        let custom = DestinationNaming {
            namespace_definition: "custom_format".to_owned(),
            namespace_format: Some("${SOURCE_NAMESPACE}_copy".to_owned()),
            prefix: None,
        };
        assert_eq!(source(&custom).0.as_deref(), Some("public_copy"));
        let mut catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        catalog.streams[0].stream.namespace = Some("public".to_owned());
        let renamed = by_source.apply(&catalog);
        assert_eq!(renamed.streams[0].stream.name, "raw_users");
        assert_eq!(
            renamed.streams[0].stream.namespace.as_deref(),
            Some("public")
        );
        assert_eq!(
            DestinationNaming::default().apply(&catalog).streams[0]
                .stream
                .namespace,
            None
        );
    }

    #[test]
    fn only_incremental_streams_resume_from_state() {
        let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        assert!(catalog.reads_incrementally(&descriptor("users", None)));
        assert!(!catalog.reads_incrementally(&descriptor("logs", None)));
        // The discovered streams have no namespace: a state that names one still matches.
        assert!(catalog.reads_incrementally(&descriptor("users", Some("x"))));
        assert!(!catalog.reads_incrementally(&descriptor("gone", None)));
        let mut namespaced = catalog.clone();
        namespaced.streams[0].stream.namespace = Some("public".to_owned());
        assert!(namespaced.reads_incrementally(&descriptor("users", Some("public"))));
        assert!(namespaced.reads_incrementally(&descriptor("users", None)));
        assert!(!namespaced.reads_incrementally(&descriptor("users", Some("other"))));
        let full = configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "syncMode": "full_refresh_append"}]}),
        )
        .unwrap();
        assert!(!full.reads_incrementally(&descriptor("users", None)));
    }

    #[test]
    fn all_streams_with_default_modes_when_none_are_named() {
        let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        assert_eq!(catalog.streams.len(), 2);
        assert_eq!(catalog.streams[0].sync_mode, SyncMode::Incremental);
        assert_eq!(
            catalog.streams[0].destination_sync_mode,
            DestinationSyncMode::Append
        );
        assert_eq!(catalog.streams[0].cursor_field, ["updated_at"]);
        assert_eq!(catalog.streams[1].sync_mode, SyncMode::FullRefresh);
        assert_eq!(
            catalog.streams[1].destination_sync_mode,
            DestinationSyncMode::Overwrite
        );
    }

    #[test]
    fn the_wire_form_keeps_unknown_fields() {
        let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        let wire = serde_json::to_value(&catalog).unwrap();
        assert_eq!(wire["streams"][0]["stream"]["is_resumable"], true);
        assert_eq!(wire["streams"][0]["sync_mode"], "incremental");
        assert_eq!(wire["streams"][0]["primary_key"], json!([["id"]]));
        let back: ConfiguredCatalog = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), wire);
    }

    #[test]
    fn named_streams_take_their_modes_and_bad_ones_are_refused() {
        let catalog = configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "syncMode": "incremental_deduped_history"}]}),
        )
        .unwrap();
        assert_eq!(catalog.streams.len(), 1);
        assert_eq!(
            catalog.streams[0].destination_sync_mode,
            DestinationSyncMode::AppendDedup
        );
        assert_eq!(catalog.streams[0].primary_key, [["id"]]);
        for bad in [
            json!({"streams": [{"name": "nope"}]}),
            json!({"streams": [{"name": "logs", "syncMode": "incremental_append"}]}),
            json!({"streams": [{"name": "users", "syncMode": "sideways"}]}),
            json!({"streams": [{"name": "users", "cursorField": "updated_at"}]}),
        ] {
            assert!(configure(&discovered(), &bad).is_err(), "{bad}");
        }
    }

    /// Two namespaces of `orders`, as a PostgreSQL source describes its columns.
    fn typed() -> AirbyteCatalog {
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "integer"},
            "amount": {"type": "number"},
            "paid": {"type": "boolean"},
            "note": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
            "day": {"$ref": "WellKnownTypes.json#/definitions/Date"},
            "payload": {},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}, "geo": {"type": "object"}}},
            "either": {"type": ["null", "string", "integer"]},
        }});
        let stream = |namespace: &str| {
            json!({"name": "orders", "namespace": namespace, "json_schema": schema.clone(),
                   "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": false,
                   "source_defined_primary_key": [["id"]]})
        };
        serde_json::from_value(json!({"streams": [stream("public"), stream("archive")]})).unwrap()
    }

    fn refused(configurations: Value) -> ConfigureError {
        configure(&typed(), &configurations).unwrap_err()
    }

    #[test]
    fn cursors_must_be_fields_whose_values_can_be_ordered() {
        let with_cursor = |cursor: Value| {
            json!({"streams": [{"name": "orders", "namespace": "public",
                                "syncMode": "incremental_append", "cursorField": cursor}]})
        };
        for cursor in [
            json!(["id"]),
            json!(["amount"]),
            json!(["paid"]),
            json!(["note"]),
            json!(["updated_at"]),
            json!(["day"]),
            json!(["address", "city"]),
        ] {
            let catalog = configure(&typed(), &with_cursor(cursor.clone()))
                .unwrap_or_else(|error| panic!("{cursor}: {error}"));
            assert_eq!(json!(catalog.streams[0].cursor_field), cursor);
        }
        let missing = refused(with_cursor(json!(["updatedd"])));
        assert_eq!(missing.field, "configurations.streams[0].cursorField");
        assert!(
            missing.message.contains("'orders'")
                && missing.message.contains("'updatedd' is not a field")
                && missing.message.contains("updated_at"),
            "{missing:?}"
        );
        for (cursor, kind) in [
            ("payload", "untyped"),
            ("tags", "of type array"),
            ("address", "of type object"),
            ("either", "of several types (string, integer)"),
        ] {
            let error = refused(with_cursor(json!([cursor])));
            assert_eq!(error.field, "configurations.streams[0].cursorField");
            assert!(
                error.message.contains(&format!("'{cursor}' is {kind}"))
                    && error.message.contains("stream 'orders'"),
                "{error:?}"
            );
        }
        // A nested path is a field only where the schema describes it.
        let nested = refused(with_cursor(json!(["address", "zip"])));
        assert!(
            nested.message.contains("'address.zip' is not a field"),
            "{nested:?}"
        );
        let geo = refused(with_cursor(json!(["address", "geo"])));
        assert!(geo.message.contains("of type object"), "{geo:?}");
        // A stream whose schema lists no fields has nothing to check against.
        configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "cursorField": ["anything"]}]}),
        )
        .unwrap();
    }

    #[test]
    fn primary_keys_must_be_fields() {
        let with_key = |key: Value| {
            json!({"streams": [{"name": "orders", "syncMode": "incremental_deduped_history",
                                "cursorField": ["id"], "primaryKey": key}]})
        };
        configure(&typed(), &with_key(json!([["id"], ["address", "city"]]))).unwrap();
        let error = refused(with_key(json!([["idd"]])));
        assert_eq!(error.field, "configurations.streams[0].primaryKey");
        assert!(
            error.message.contains("'idd' is not a field") && error.message.contains("'orders'"),
            "{error:?}"
        );
        assert_eq!(
            refused(with_key(json!([[]]))).field,
            "configurations.streams[0].primaryKey"
        );
    }

    #[test]
    fn a_stream_is_named_once_in_a_namespace_it_has() {
        let twice = refused(json!({"streams": [
            {"name": "orders", "namespace": "public"},
            {"name": "orders", "namespace": "archive"},
            {"name": "orders", "namespace": "public", "syncMode": "full_refresh_append"},
        ]}));
        assert_eq!(twice.field, "configurations.streams[2]");
        assert!(
            twice.message.contains("'orders' (namespace 'public')")
                && twice.message.contains("configurations.streams[0]"),
            "{twice:?}"
        );
        // Without a namespace the first stream of that name is meant: the same one.
        let again = refused(json!({"streams": [
            {"name": "orders"}, {"name": "orders", "namespace": "public"},
        ]}));
        assert_eq!(again.field, "configurations.streams[1]");

        let elsewhere = refused(json!({"streams": [{"name": "orders", "namespace": "sales"}]}));
        assert_eq!(elsewhere.field, "configurations.streams[0].namespace");
        assert_eq!(
            elsewhere.message,
            "the source has no stream 'orders' in namespace 'sales'; it has 'orders' in namespaces 'public', 'archive'"
        );
        let unnamespaced = configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "namespace": "public"}]}),
        )
        .unwrap_err();
        assert!(
            unnamespaced
                .message
                .ends_with("it has 'users' without a namespace"),
            "{unnamespaced:?}"
        );
        let unknown = refused(json!({"streams": [{"name": "ordres"}]}));
        assert_eq!(
            (unknown.field.as_str(), unknown.message.as_str()),
            (
                "configurations.streams[0].name",
                "the source has no stream 'ordres'"
            )
        );
    }
}
