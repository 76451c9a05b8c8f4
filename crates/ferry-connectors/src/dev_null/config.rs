use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ConnectorConfig;

/// Airbyte's E2E-testing destination in its silent mode takes no settings; whatever is
/// given is accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DevNullConfig {}

impl ConnectorConfig for DevNullConfig {
    const TITLE: &'static str = "E2E Test Destination Spec";
}
