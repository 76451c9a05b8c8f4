use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ConfigError, ConnectorConfig, require_text};
use crate::local_root;

/// `source-file` on a local path, with Airbyte's keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileSourceConfig {
    /// The name of the one stream the file becomes.
    #[schemars(title = "Dataset Name", extend("order" = 0))]
    pub dataset_name: String,
    /// The file's format.
    #[serde(default)]
    #[schemars(title = "File Format", extend("order" = 1))]
    pub format: FileFormat,
    /// Options for the reader, as JSON text; Ferry reads `sep` (or `delimiter`).
    #[serde(default)]
    #[schemars(title = "Reader Options", extend("order" = 2))]
    pub reader_options: Option<String>,
    /// A path under the data plane's local root, relative to it (`data/people.csv`) or as
    /// Airbyte's `/local` mount gives it (`/local/data/people.csv`); a `file://` URL of
    /// such a path is taken too. Paths outside the root are refused.
    #[schemars(title = "URL", extend("order" = 3))]
    pub url: String,
    /// Where the file is kept: Ferry reads local files.
    #[serde(default)]
    #[schemars(title = "Storage Provider", extend("order" = 4))]
    pub provider: FileProvider,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Csv,
    #[serde(rename = "jsonl")]
    JsonLines,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileProvider {
    /// `local`: a path on the data plane's machine.
    #[serde(default = "local")]
    pub storage: String,
}

impl Default for FileProvider {
    fn default() -> Self {
        Self { storage: local() }
    }
}

fn local() -> String {
    "local".to_owned()
}

impl FileSourceConfig {
    /// The CSV field separator.
    pub fn delimiter(&self) -> Result<u8, ConfigError> {
        let options: Value = match self.reader_options.as_deref().map(str::trim) {
            None | Some("") => return Ok(b','),
            Some(text) => serde_json::from_str(text).map_err(|error| {
                ConfigError::new("reader_options", format!("is not JSON: {error}"))
            })?,
        };
        match options.get("sep").or_else(|| options.get("delimiter")) {
            None => Ok(b','),
            Some(Value::String(separator)) if separator.len() == 1 => Ok(separator.as_bytes()[0]),
            Some(_) => Err(ConfigError::new(
                "reader_options",
                "sep must be a single character",
            )),
        }
    }
}

impl ConnectorConfig for FileSourceConfig {
    const TITLE: &'static str = "File Source Spec";

    fn check(&self) -> Result<(), ConfigError> {
        require_text("dataset_name", &self.dataset_name)?;
        require_text("url", &self.url)?;
        local_root::relative("url", &self.url)?;
        if !self.provider.storage.eq_ignore_ascii_case("local") {
            return Err(ConfigError::new(
                "provider.storage",
                format!(
                    "'{}' is not supported: Ferry reads local files",
                    self.provider.storage
                ),
            ));
        }
        self.delimiter().map(drop)
    }
}
