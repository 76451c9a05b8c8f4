//! Ferry's native connectors, one folder each with the same roles (`config.rs`: the
//! documented configuration the SPEC is generated from; `source.rs` / `destination.rs`;
//! `tests.rs`), listed in one [registry], and the runtime that runs them and external
//! connectors in a data plane.
//!
//! Without the `runtime` feature only the configurations, SPECs and the registry are built,
//! so that the control plane can name, describe and check every connector without linking
//! connector code (no sqlx, no tokio).

pub mod config;
mod error;
pub mod local_root;
pub mod registry;

pub mod dev_null;
pub mod faker;
pub mod file;
pub mod local_file;
pub mod postgres;

#[cfg(feature = "runtime")]
pub mod connector;
#[cfg(feature = "runtime")]
pub mod driver;
#[cfg(feature = "runtime")]
mod emitter;
#[cfg(feature = "runtime")]
pub mod external;
#[cfg(feature = "runtime")]
pub mod process;

pub use config::ConfigError;
pub use error::ConnectorError;
pub use registry::{CONNECTORS, Registration};

#[cfg(feature = "runtime")]
pub use connector::{Destination, ResumeState, Source, SourceState, destination_for, source_for};
#[cfg(feature = "runtime")]
pub use driver::{StateAck, StreamCount, StreamEstimate, Tally};
#[cfg(feature = "runtime")]
pub use process::{CheckResult, ExternalConnector, LogSink};
