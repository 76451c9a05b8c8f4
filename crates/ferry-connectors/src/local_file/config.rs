use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConnectorConfig, require_text};

/// `local-json` and `csv`: where the files go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LocalFileConfig {
    /// A directory on the data plane's machine; each stream goes to
    /// `_airbyte_raw_<stream>.jsonl` (or `.csv`).
    #[schemars(title = "Destination Path")]
    pub destination_path: PathBuf,
}

impl ConnectorConfig for LocalFileConfig {
    const TITLE: &'static str = "Local File Destination Spec";

    fn check(&self) -> Result<(), ConfigError> {
        require_text("destination_path", &self.destination_path.to_string_lossy())
    }
}
