//! Airbyte's sample-data source (`source-faker`): deterministic users, products and
//! purchases.

mod config;
#[cfg(feature = "runtime")]
mod source;
#[cfg(all(test, feature = "runtime"))]
mod tests;

pub use config::FakerConfig;
#[cfg(feature = "runtime")]
pub use source::FakerSource;
