use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ConnectorConfig;

/// `source-faker`'s configuration, with its keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FakerConfig {
    /// How many users to generate (and purchases for each).
    #[serde(default = "default_count")]
    #[schemars(title = "Count", range(min = 0), extend("order" = 0))]
    pub count: u64,
    /// The seed of the generator; the same seed gives the same records. -1 (Airbyte: a
    /// random seed) is a fixed seed in Ferry, so that runs are reproducible.
    #[serde(default = "default_seed")]
    #[schemars(title = "Seed", extend("order" = 1))]
    pub seed: i64,
    /// Records per slice: each slice of users and purchases ends with a STATE.
    #[serde(default = "default_records_per_slice")]
    #[schemars(title = "Records Per Stream Slice", range(min = 1), extend("order" = 2))]
    pub records_per_slice: u64,
    /// Ferry's own: a pause after each slice, in milliseconds, to throttle the source.
    #[serde(default)]
    #[schemars(title = "Pause after each slice (ms, Ferry)", extend("order" = 3))]
    pub slice_delay_ms: u64,
}

fn default_count() -> u64 {
    1000
}

fn default_seed() -> i64 {
    -1
}

fn default_records_per_slice() -> u64 {
    1000
}

impl FakerConfig {
    /// The seed records are made from.
    pub fn effective_seed(&self) -> u64 {
        if self.seed < 0 {
            0x5EED
        } else {
            self.seed.unsigned_abs()
        }
    }
}

impl ConnectorConfig for FakerConfig {
    const TITLE: &'static str = "Faker Source Spec";

    fn check(&self) -> Result<(), crate::ConfigError> {
        if self.records_per_slice == 0 {
            return Err(crate::ConfigError::new(
                "records_per_slice",
                "must be an integer of at least 1",
            ));
        }
        Ok(())
    }
}
