//! The file each stream of a local destination goes to (config-only, so that the control
//! plane can tell which streams would share a file).

use ferry_protocol::StreamDescriptor;
use ferry_protocol::catalog::DestinationNaming;
use serde_json::Value;

use super::LocalFileConfig;
use crate::config::{self, ConfigError};

/// `_airbyte_raw_<stream>.<extension>`, as Airbyte's local destinations name it: every
/// character other than letters, digits, `_` and `-` becomes `_` (so `a.b` and `a_b` share
/// a file).
pub fn file_name(stream: &str, extension: &str) -> String {
    let safe: String = stream
        .chars()
        .map(|character| {
            if character.is_alphanumeric() || character == '_' || character == '-' {
                character
            } else {
                '_'
            }
        })
        .collect();
    format!("_airbyte_raw_{safe}.{extension}")
}

/// The registry's `table_name` of `local-json`: the stream's file, under its destination
/// name (namespaces do not apply to files).
pub fn json_lines_file_name(
    configuration: &Value,
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
) -> Result<String, ConfigError> {
    in_directory(configuration, naming, stream, "jsonl")
}

/// The registry's `table_name` of `csv`.
pub fn csv_file_name(
    configuration: &Value,
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
) -> Result<String, ConfigError> {
    in_directory(configuration, naming, stream, "csv")
}

fn in_directory(
    configuration: &Value,
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
    extension: &str,
) -> Result<String, ConfigError> {
    let config: LocalFileConfig = config::parse(configuration)?;
    Ok(config
        .destination_path
        .join(file_name(&naming.name(&stream.name), extension))
        .display()
        .to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn streams_whose_names_differ_in_unsafe_characters_share_a_file() {
        let configuration = json!({"destination_path": "/local/out"});
        let stream = |name: &str, namespace: &str| StreamDescriptor {
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
        };
        let naming = DestinationNaming {
            prefix: Some("raw_".to_owned()),
            ..DestinationNaming::default()
        };
        let dotted = json_lines_file_name(&configuration, &naming, &stream("a.b", "x")).unwrap();
        assert_eq!(dotted, "/local/out/_airbyte_raw_raw_a_b.jsonl");
        assert_eq!(
            json_lines_file_name(&configuration, &naming, &stream("a_b", "y")).unwrap(),
            dotted
        );
        assert_eq!(
            csv_file_name(&configuration, &naming, &stream("a-b", "x")).unwrap(),
            "/local/out/_airbyte_raw_raw_a-b.csv"
        );
        assert_eq!(file_name("é t", "csv"), "_airbyte_raw_é_t.csv");
    }
}
