//! Ferry's "cluster sandbox" for tests: a fresh PostgreSQL database per test, and the real
//! `ferry` binary started on a random loopback port with `wait_for_*` helpers.
//!
//! PostgreSQL is required, never optional: a test that needs it fails loudly when it is
//! not reachable (the test command starts or installs it first).

#![allow(clippy::unwrap_used)]

mod api;
mod fixtures;
mod postgres;
mod processes;
mod tls_postgres;

use std::time::{Duration, Instant};

pub use api::{Api, Reply, text, token, token_with};
pub use fixtures::{DEFAULT_ORGANIZATION_ID, FerryUp, Plane, Region, Workspace};
pub use postgres::{TestDatabase, postgres_admin_url};
pub use processes::{
    DataplaneProcess, FerryOptions, FerryProcess, StoreKind, TlsFiles, pid_of, python_venv,
};
pub use tls_postgres::{CERTIFICATE_USER, TlsPostgres};

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
