//! Where a connection puts each stream in the destination.

use serde_json::json;

use super::ConfiguredCatalog;
use crate::{AirbyteMessage, RecordMessage};

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
