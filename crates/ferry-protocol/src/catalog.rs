//! From a discovered catalog and a connection's stream configurations to the configured
//! catalog a `read` and a `write` are given.

use serde_json::{Map, Value, json};

use crate::{AirbyteMessage, RecordMessage, TraceMessage};

/// Airbyte's `ConnectionSyncModeEnum`, as the protocol's (sync_mode, destination_sync_mode).
pub fn split_sync_mode(mode: &str) -> Option<(&'static str, &'static str)> {
    Some(match mode {
        "full_refresh_overwrite" => ("full_refresh", "overwrite"),
        "full_refresh_overwrite_deduped" => ("full_refresh", "overwrite_dedup"),
        "full_refresh_append" => ("full_refresh", "append"),
        "full_refresh_update" => ("full_refresh", "update"),
        "full_refresh_soft_delete" => ("full_refresh", "soft_delete"),
        "incremental_append" => ("incremental", "append"),
        "incremental_deduped_history" => ("incremental", "append_dedup"),
        "incremental_update" => ("incremental", "update"),
        "incremental_soft_delete" => ("incremental", "soft_delete"),
        _ => return None,
    })
}

fn supports(stream: &Value, mode: &str) -> bool {
    stream["supported_sync_modes"]
        .as_array()
        .is_some_and(|modes| modes.iter().any(|supported| supported == mode))
}

/// The configured catalog: the streams the connection names (all, when it names none), each
/// with its sync modes, cursor and primary key — or, where not given, the source's defaults:
/// incremental append where the source defines a cursor, full refresh overwrite elsewhere.
pub fn configure(discovered: &Value, configurations: &Value) -> Result<Value, String> {
    let streams = discovered["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let wanted = configurations["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut configured = Vec::new();
    if wanted.is_empty() {
        for stream in &streams {
            configured.push(configure_stream(stream, &Value::Null)?);
        }
    } else {
        for configuration in &wanted {
            let name = configuration["name"].as_str().unwrap_or_default();
            let namespace = configuration.get("namespace").and_then(Value::as_str);
            let stream = streams
                .iter()
                .find(|stream| {
                    stream["name"] == name
                        && namespace.is_none_or(|namespace| stream["namespace"] == namespace)
                })
                .ok_or_else(|| format!("the source has no stream '{name}'"))?;
            configured.push(configure_stream(stream, configuration)?);
        }
    }
    Ok(json!({"streams": configured}))
}

fn configure_stream(stream: &Value, configuration: &Value) -> Result<Value, String> {
    let name = stream["name"].as_str().unwrap_or_default();
    let source_cursor = stream["source_defined_cursor"].as_bool().unwrap_or(false);
    let (sync_mode, destination_sync_mode) =
        match configuration.get("syncMode").and_then(Value::as_str) {
            Some(mode) => split_sync_mode(mode)
                .ok_or_else(|| format!("stream '{name}': unknown sync mode '{mode}'"))?,
            None if source_cursor && supports(stream, "incremental") => ("incremental", "append"),
            None => ("full_refresh", "overwrite"),
        };
    if !supports(stream, sync_mode) {
        return Err(format!("stream '{name}' does not support {sync_mode} sync"));
    }
    let cursor_field = configuration
        .get("cursorField")
        .filter(|value| !value.is_null())
        .cloned()
        .or_else(|| stream.get("default_cursor_field").cloned())
        .unwrap_or_else(|| json!([]));
    let primary_key = configuration
        .get("primaryKey")
        .filter(|value| !value.is_null())
        .cloned()
        .or_else(|| stream.get("source_defined_primary_key").cloned())
        .unwrap_or_else(|| json!([]));
    if sync_mode == "incremental"
        && !source_cursor
        && cursor_field.as_array().is_none_or(Vec::is_empty)
    {
        return Err(format!(
            "stream '{name}' is incremental but has no cursor field"
        ));
    }
    if destination_sync_mode.ends_with("dedup") && primary_key.as_array().is_none_or(Vec::is_empty)
    {
        return Err(format!(
            "stream '{name}' is deduplicated but has no primary key"
        ));
    }
    Ok(json!({
        "stream": stream,
        "sync_mode": sync_mode,
        "destination_sync_mode": destination_sync_mode,
        "cursor_field": cursor_field,
        "primary_key": primary_key,
    }))
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
    pub fn apply(&self, catalog: &Value) -> Value {
        let mut catalog = catalog.clone();
        for configured in catalog["streams"].as_array_mut().into_iter().flatten() {
            let stream = &mut configured["stream"];
            let namespace = self.namespace(stream["namespace"].as_str());
            stream["name"] = json!(self.name(stream["name"].as_str().unwrap_or_default()));
            match namespace {
                Some(namespace) => stream["namespace"] = json!(namespace),
                None => {
                    if let Some(fields) = stream.as_object_mut() {
                        fields.remove("namespace");
                    }
                }
            }
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

/// The catalog a reset gives the destination: every stream overwritten (with nothing).
pub fn for_reset(catalog: &Value) -> Value {
    let mut catalog = catalog.clone();
    if let Some(streams) = catalog["streams"].as_array_mut() {
        for stream in streams {
            stream["destination_sync_mode"] = json!("overwrite");
        }
    }
    catalog
}

/// Whether the catalog reads `descriptor` (`{name, namespace}`) incrementally. Only such a
/// stream resumes from a committed state: a full refresh reads everything on every sync (and
/// on every attempt, since an overwrite's new table is started over too). A namespace missing
/// on either side matches any, as destinations match records to streams: a connector that
/// leaves it out of its states still resumes.
pub fn reads_incrementally(catalog: &Value, descriptor: &Value) -> bool {
    let namespace_of = |value: &Value| {
        value
            .get("namespace")
            .filter(|name| !name.is_null())
            .cloned()
    };
    let wanted = namespace_of(descriptor);
    catalog["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|configured| {
            let stream = &configured["stream"];
            let namespace = namespace_of(stream);
            configured["sync_mode"] == "incremental"
                && stream["name"] == descriptor["name"]
                && (namespace.is_none() || wanted.is_none() || namespace == wanted)
        })
}

/// A `STREAM_STATUS` trace saying each stream of the catalog was read to its end.
pub fn streams_complete(catalog: &Value) -> Vec<AirbyteMessage> {
    let emitted_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
        .unwrap_or_default();
    catalog["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|configured| {
            let stream = &configured["stream"];
            let mut descriptor = json!({"name": stream["name"]});
            if let Some(namespace) = stream["namespace"].as_str() {
                descriptor["namespace"] = json!(namespace);
            }
            let mut extra = Map::new();
            extra.insert(
                "stream_status".to_owned(),
                json!({"stream_descriptor": descriptor, "status": "COMPLETE"}),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn discovered() -> Value {
        json!({"streams": [
            {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
             "source_defined_cursor": true, "default_cursor_field": ["updated_at"], "source_defined_primary_key": [["id"]]},
            {"name": "logs", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        ]})
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
        let catalog = json!({"streams": [{"stream": {"name": "users", "namespace": "public"}}]});
        assert_eq!(
            by_source.apply(&catalog)["streams"][0]["stream"],
            json!({"name": "raw_users", "namespace": "public"})
        );
        assert_eq!(
            DestinationNaming::default().apply(&catalog)["streams"][0]["stream"],
            json!({"name": "users"})
        );
    }

    #[test]
    fn only_incremental_streams_resume_from_state() {
        let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        assert!(reads_incrementally(&catalog, &json!({"name": "users"})));
        assert!(!reads_incrementally(&catalog, &json!({"name": "logs"})));
        // The discovered streams have no namespace: a state that names one still matches.
        assert!(reads_incrementally(
            &catalog,
            &json!({"name": "users", "namespace": "x"})
        ));
        assert!(!reads_incrementally(&catalog, &json!({"name": "gone"})));
        let mut namespaced = catalog.clone();
        namespaced["streams"][0]["stream"]["namespace"] = json!("public");
        assert!(reads_incrementally(
            &namespaced,
            &json!({"name": "users", "namespace": "public"})
        ));
        assert!(reads_incrementally(&namespaced, &json!({"name": "users"})));
        assert!(reads_incrementally(
            &namespaced,
            &json!({"name": "users", "namespace": null})
        ));
        assert!(!reads_incrementally(
            &namespaced,
            &json!({"name": "users", "namespace": "other"})
        ));
        let full = configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "syncMode": "full_refresh_append"}]}),
        )
        .unwrap();
        assert!(!reads_incrementally(&full, &json!({"name": "users"})));
    }

    #[test]
    fn all_streams_with_default_modes_when_none_are_named() {
        let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
        let streams = catalog["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0]["sync_mode"], "incremental");
        assert_eq!(streams[0]["destination_sync_mode"], "append");
        assert_eq!(streams[0]["cursor_field"], json!(["updated_at"]));
        assert_eq!(streams[1]["sync_mode"], "full_refresh");
        assert_eq!(streams[1]["destination_sync_mode"], "overwrite");
    }

    #[test]
    fn named_streams_take_their_modes_and_bad_ones_are_refused() {
        let catalog = configure(
            &discovered(),
            &json!({"streams": [{"name": "users", "syncMode": "incremental_deduped_history"}]}),
        )
        .unwrap();
        assert_eq!(catalog["streams"].as_array().unwrap().len(), 1);
        assert_eq!(
            catalog["streams"][0]["destination_sync_mode"],
            "append_dedup"
        );
        assert_eq!(catalog["streams"][0]["primary_key"], json!([["id"]]));
        for bad in [
            json!({"streams": [{"name": "nope"}]}),
            json!({"streams": [{"name": "logs", "syncMode": "incremental_append"}]}),
            json!({"streams": [{"name": "users", "syncMode": "sideways"}]}),
        ] {
            assert!(configure(&discovered(), &bad).is_err(), "{bad}");
        }
    }
}
