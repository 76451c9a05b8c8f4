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
//! * `admins`: the instance keeps an instance admin who can sign in.

pub(crate) mod access;
pub(crate) mod admins;
pub(crate) mod connection_checks;
pub(crate) mod connector_tasks;
pub(crate) mod dataplane_health;
pub(crate) mod definitions;
pub(crate) mod jobs;
