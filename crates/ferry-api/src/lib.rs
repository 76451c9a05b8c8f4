//! Wire types of Ferry's APIs.
//!
//! Field names and shapes follow Airbyte's public OpenAPI document
//! (`shared/reference/airbyte-public-api.yaml`) exactly, so that Airbyte's own clients work
//! unchanged; Ferry's additions are marked as extensions and are always optional for clients.

pub mod applications;
pub mod connections;
pub mod dataplane_jobs;
pub mod dataplanes;
pub mod kinds;
pub mod organizations;
pub mod problem;
pub mod regions;
pub mod storage;
pub mod users;
pub mod workspaces;

pub use applications::*;
pub use connections::*;
pub use dataplane_jobs::*;
pub use dataplanes::*;
pub use kinds::*;
pub use organizations::*;
pub use problem::*;
pub use regions::*;
pub use storage::*;
pub use users::*;
pub use workspaces::*;

/// A source or a destination.
pub use ferry_protocol::ConnectorRole;
/// Where a connection puts streams in the destination (stored with the connection).
pub use ferry_protocol::catalog::DestinationNaming;
/// Why an attempt failed, as data planes report it and the API shows it.
pub use ferry_protocol::failure::{FailureOrigin, FailureType};

/// The organization every instance starts with; Airbyte's guide calls it the default org.
pub const DEFAULT_ORGANIZATION_ID: uuid::Uuid = uuid::Uuid::nil();

/// Page bounds shared by every paginated list (Airbyte: default 20, 1..=100).
pub const DEFAULT_PAGE_LIMIT: i64 = 20;
pub const MAX_PAGE_LIMIT: i64 = 100;
