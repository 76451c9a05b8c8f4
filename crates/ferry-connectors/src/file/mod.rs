//! Airbyte's `source-file` on local paths: CSV, JSON Lines or JSON, one stream.

mod config;
#[cfg(feature = "runtime")]
mod source;
#[cfg(all(test, feature = "runtime"))]
mod tests;

pub use config::{FileFormat, FileProvider, FileSourceConfig};
#[cfg(feature = "runtime")]
pub use source::FileSource;
