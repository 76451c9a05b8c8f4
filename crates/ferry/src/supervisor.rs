//! `ferry up`'s default data plane as a child process (`ferry dataplane`), kept running:
//!
//! * before each start its credentials are made good through the store
//!   ([`credentials::ensure_default_dataplane`]): a new secret if they were rotated, a new
//!   default data plane if it was deleted, `credentials.json` (0600) rewritten;
//! * while it runs, its row is watched every second: a rotated secret or a deletion (which
//!   revoke its tokens, so it can only fail with 401 from then on) restarts it at once with
//!   credentials made good;
//! * a child that exits is restarted after a back-off (1 s, doubled up to a minute, back to
//!   1 s after a run of a minute), not in a tight loop.
//!
//! The secret reaches the child in its environment (`DATA_PLANE_CLIENT_SECRET`), never on
//! its command line, which every user of the machine can read.

use std::path::PathBuf;
use std::time::Duration;

use ferry_store::Store;
use tokio::time::Instant;

use crate::credentials::{self, DataplaneCredentials, DefaultDataplane};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A child that ran this long was healthy: the back-off starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the default data plane until the task is aborted; `command` makes the child's
/// command line for the credentials it is to use (in its environment).
pub async fn supervise(
    store: Store,
    credentials_path: PathBuf,
    command: impl Fn(&DataplaneCredentials) -> tokio::process::Command,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let pause = match credentials::ensure_default_dataplane(&credentials_path, &store).await {
            Ok(plane) => run_once(&store, &plane, command(&plane.credentials)).await,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot make the default data plane's credentials good"
                );
                Pause::Backoff
            }
        };
        match pause {
            Pause::None => backoff = FIRST_BACKOFF,
            Pause::Backoff => {
                tracing::info!(?backoff, "restarting the default data plane after a pause");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Pause::Short => {
                backoff = FIRST_BACKOFF;
                tokio::time::sleep(FIRST_BACKOFF).await;
            }
        }
    }
}

enum Pause {
    /// Its credentials changed: restart at once.
    None,
    /// It ran long enough to have been healthy.
    Short,
    /// It failed soon, or could not start.
    Backoff,
}

async fn run_once(
    store: &Store,
    plane: &DefaultDataplane,
    mut command: tokio::process::Command,
) -> Pause {
    let started = Instant::now();
    let mut child = match command.kill_on_drop(true).spawn() {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(%error, "starting the default data plane");
            return Pause::Backoff;
        }
    };
    tokio::select! {
        status = child.wait() => {
            match status {
                Ok(status) => tracing::warn!(%status, "default data plane exited"),
                Err(error) => tracing::error!(%error, "waiting for the default data plane"),
            }
            if started.elapsed() >= HEALTHY_RUN { Pause::Short } else { Pause::Backoff }
        }
        reason = credentials_revoked(store, plane) => {
            tracing::warn!(dataplane_id = %plane.dataplane.id, "the default data plane's credentials stopped working ({reason}); restarting it with new ones");
            let _ = child.start_kill();
            let _ = child.wait().await;
            Pause::None
        }
    }
}

/// Resolves once the data plane's credentials stopped working: what happened.
async fn credentials_revoked(store: &Store, plane: &DefaultDataplane) -> &'static str {
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        match store.dataplane(plane.dataplane.id).await {
            Ok(row) if row.tombstone => return "it was deleted",
            Ok(row) if row.secret_hash != plane.dataplane.secret_hash => {
                return "its secret was rotated";
            }
            Ok(_) => {}
            Err(ferry_store::StoreError::NotFound { .. }) => return "it is gone",
            Err(error) => tracing::debug!(%error, "reading the default data plane"),
        }
    }
}
