//! The control plane's services: what handlers and the scheduler call, one concern each.
//! A handler parses its request, calls services, and answers; route files never call each
//! other, and nothing here knows a route.
//!
//! * `access`: what a caller may see or touch (user callers through their roles, data
//!   planes through their region and the attempt they hold).
//! * `jobs`: job admission (a job starts only where it can run) and the data planes' side
//!   of the queue (claims, attempt ends).
//! * `connector_tasks`: `check` and `discover` queued for a data plane of the region, and
//!   the wait for the answer.
//! * `connection_checks`: a connection's streams against the source's discovered catalog
//!   and the destination's naming rules.
//! * `definitions`: custom connector definitions, the command lines data planes run.
//! * `dataplane_health`: a data plane's status from its heartbeats.
//! * `heartbeat_pulse`: the heartbeats of the last minutes, per data plane (this replica's).
//! * `admins`: the instance keeps an instance admin who can sign in.
//! * `workspaces`, `regions` (and their data planes): what the API and the web UI do to
//!   them, with the same checks.
//! * `actors`: sources and destinations, their configurations checked, sealed and masked.
//! * `connections`: connections created with the roles' and the catalog's checks.
//! * `job_views`: jobs as users see them, started and cancelled with the roles' checks.
//! * `passwords`: users' web-UI passwords (set by instance admins) and sign-in.
//! * `attempt_logs`: attempts' logs, streamed by data planes into the log bucket.

pub(crate) mod access;
pub(crate) mod actors;
pub(crate) mod admins;
pub(crate) mod attempt_logs;
pub(crate) mod connection_checks;
pub(crate) mod connections;
pub(crate) mod connector_tasks;
pub(crate) mod dataplane_health;
pub(crate) mod definitions;
pub(crate) mod heartbeat_pulse;
pub(crate) mod job_views;
pub(crate) mod jobs;
pub(crate) mod passwords;
pub(crate) mod regions;
pub(crate) mod workspaces;
