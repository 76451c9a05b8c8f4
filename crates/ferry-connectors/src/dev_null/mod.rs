//! Airbyte's E2E-testing destination, silent mode: keeps nothing.

mod config;
#[cfg(feature = "runtime")]
mod destination;
#[cfg(all(test, feature = "runtime"))]
mod tests;

pub use config::DevNullConfig;
#[cfg(feature = "runtime")]
pub use destination::DevNullWriter;
