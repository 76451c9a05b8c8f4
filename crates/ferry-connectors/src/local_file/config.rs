use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConnectorConfig, require_text};
use crate::local_root;

/// `local-json` and `csv`: where the files go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LocalFileConfig {
    /// A directory under the data plane's local root, relative to it (`out`) or under
    /// Airbyte's `/local` mount (`/local/out`); made if missing. Each stream goes to
    /// `_airbyte_raw_<stream>.jsonl` (or `.csv`). Paths outside the root are refused.
    #[schemars(title = "Destination Path")]
    pub destination_path: PathBuf,
}

impl ConnectorConfig for LocalFileConfig {
    const TITLE: &'static str = "Local File Destination Spec";

    fn check(&self) -> Result<(), ConfigError> {
        let path = self.destination_path.to_string_lossy();
        require_text("destination_path", &path)?;
        local_root::relative("destination_path", &path).map(drop)
    }
}
