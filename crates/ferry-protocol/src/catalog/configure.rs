//! The configured catalog from what a source offers and what a connection asks, with each
//! wrong setting named (the field under `configurations.streams[i]`).

use serde_json::{Map, Value};

use super::{
    AirbyteCatalog, AirbyteStream, ConfiguredCatalog, ConfiguredStream, DestinationSyncMode,
    SyncMode, split_sync_mode,
};

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
