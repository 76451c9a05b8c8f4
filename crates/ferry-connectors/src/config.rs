//! What every native connector's configuration shares: parsing with the failing key named,
//! and the SPEC generated from the configuration struct, so the two cannot drift.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A configuration key at fault (a dotted path below `configuration`), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// A native connector's configuration: a documented serde struct (each field's doc comment
/// is the user's reference and the SPEC's description) and the checks serde cannot express.
pub trait ConnectorConfig: DeserializeOwned + JsonSchema {
    /// The SPEC's title, as Airbyte's connector of the same name has it.
    const TITLE: &'static str;

    /// Checks beyond the shape (non-empty names, values that must agree).
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The error of a part read with `#[serde(flatten)]`, whose keys serde reads without
    /// their path: the part is parsed alone to name the key at fault.
    fn flattened_error(configuration: &Value) -> Option<ConfigError> {
        let _ = configuration;
        None
    }
}

/// Parses `configuration` into `T`, naming the key at fault. Keys `T` does not know are
/// left alone (the API's `sourceType`, Airbyte keys Ferry does not read).
pub fn parse<T: ConnectorConfig>(configuration: &Value) -> Result<T, ConfigError> {
    if !configuration.is_object() {
        return Err(ConfigError::new("", "must be an object"));
    }
    let parsed: T =
        shaped(configuration).map_err(|error| match T::flattened_error(configuration) {
            Some(flattened) if error.field.is_empty() => flattened,
            _ => error,
        })?;
    parsed.check()?;
    Ok(parsed)
}

/// `configuration` read as `T`, the key at fault named; no checks beyond serde's.
pub fn shaped<T: DeserializeOwned>(configuration: &Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(configuration).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // serde names a missing key in the message, at its parent's path.
        match missing_field(&message) {
            Some(name) => ConfigError::new(&join(&path, name), "is required"),
            None => ConfigError::new(if path == "." { "" } else { &path }, message),
        }
    })
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The `connectionSpecification` of `T`: JSON Schema draft 07, every subschema inline (as
/// Airbyte's UI and connectors expect), optional keys without a `null` type, unknown keys
/// allowed.
pub fn specification<T: ConnectorConfig>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.inline_subschemas = true;
        })
        .into_generator();
    let mut spec = generator.into_root_schema_for::<T>().to_value();
    without_null_types(&mut spec);
    if let Some(fields) = spec.as_object_mut() {
        fields.insert("title".to_owned(), Value::String(T::TITLE.to_owned()));
        fields.remove("description");
        fields
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        fields.insert("additionalProperties".to_owned(), Value::Bool(true));
        if !fields.contains_key("properties") {
            fields.insert("properties".to_owned(), Value::Object(Map::new()));
        }
    }
    spec
}

/// An optional key is simply not required in Airbyte's SPECs: `"type": ["string", "null"]`
/// becomes `"type": "string"`, and `anyOf: [schema, {"type": "null"}]` the schema.
fn without_null_types(schema: &mut Value) {
    let Some(fields) = schema.as_object_mut() else {
        return;
    };
    if fields.get("default").is_some_and(Value::is_null) {
        fields.remove("default");
    }
    if let Some(Value::Array(types)) = fields.get("type") {
        let kept: Vec<Value> = types
            .iter()
            .filter(|kind| *kind != "null")
            .cloned()
            .collect();
        if kept.len() == 1 {
            fields.insert("type".to_owned(), kept[0].clone());
        }
    }
    if let Some(Value::Array(choices)) = fields.get("anyOf") {
        let kept: Vec<Value> = choices
            .iter()
            .filter(|choice| choice.get("type").is_none_or(|kind| kind != "null"))
            .cloned()
            .collect();
        if kept.len() == 1 && choices.len() == 2 {
            fields.remove("anyOf");
            if let Value::Object(inner) = &kept[0] {
                for (key, value) in inner {
                    fields.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
    }
    for value in fields.values_mut() {
        match value {
            Value::Object(_) => without_null_types(value),
            Value::Array(items) => items.iter_mut().for_each(without_null_types),
            _ => {}
        }
    }
}

/// A string that must hold something (serde accepts `""`).
pub(crate) fn require_text(field: &str, text: &str) -> Result<(), ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    Ok(())
}

/// The property names a SPEC lists, at its top level.
pub fn spec_properties(spec: &Value) -> Vec<String> {
    spec["properties"]
        .as_object()
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}
