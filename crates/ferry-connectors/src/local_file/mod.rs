//! Airbyte's local destinations `local-json` (JSON Lines) and `csv`: Airbyte's raw shape
//! (`_airbyte_ab_id`, `_airbyte_emitted_at`, `_airbyte_data`) in `_airbyte_raw_<stream>.*`.

#[cfg(feature = "runtime")]
mod checkpoints;
mod config;
#[cfg(feature = "runtime")]
mod destination;
mod naming;

pub use config::LocalFileConfig;
#[cfg(feature = "runtime")]
pub use destination::{FileFormat, LocalFileDestination};
pub use naming::{csv_file_name, file_name, json_lines_file_name};
