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
//! * when `ferry up` stops, the child is asked to stop (SIGTERM: it hands its attempts back
//!   while the control plane still answers) and given [`STOP_GRACE`] before it is killed.
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
/// How long the child may take to stop once asked (it drains nothing: `--drain-seconds 0`).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs the default data plane until `stop` says so (then stops it) or the task is
/// aborted; `command` makes the child's command line for the credentials it is to use (in
/// its environment).
pub async fn supervise(
    store: Store,
    credentials_path: PathBuf,
    command: impl Fn(&DataplaneCredentials) -> tokio::process::Command,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        let pause = match credentials::ensure_default_dataplane(&credentials_path, &store).await {
            Ok(plane) => run_once(&store, &plane, command(&plane.credentials), &mut stop).await,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot make the default data plane's credentials good"
                );
                Pause::Backoff
            }
        };
        match pause {
            Pause::Stopped => return,
            Pause::None => backoff = FIRST_BACKOFF,
            Pause::Backoff => {
                tracing::info!(?backoff, "restarting the default data plane after a pause");
                if paused_until_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Pause::Short => {
                backoff = FIRST_BACKOFF;
                if paused_until_stop(FIRST_BACKOFF, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Waits `pause`; whether `ferry up` stopped meanwhile.
async fn paused_until_stop(pause: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::time::timeout(pause, stopped(stop)).await.is_ok()
}

/// Resolves once `ferry up` is stopping (or can no longer say: it is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
}

enum Pause {
    /// Its credentials changed: restart at once.
    None,
    /// It ran long enough to have been healthy.
    Short,
    /// It failed soon, or could not start.
    Backoff,
    /// It was stopped, with `ferry up`.
    Stopped,
}

async fn run_once(
    store: &Store,
    plane: &DefaultDataplane,
    mut command: tokio::process::Command,
    stop: &mut tokio::sync::watch::Receiver<bool>,
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
        () = stopped(stop) => {
            stop_child(&mut child).await;
            Pause::Stopped
        }
        reason = credentials_revoked(store, plane) => {
            tracing::warn!(dataplane_id = %plane.dataplane.id, "the default data plane's credentials stopped working ({reason}); restarting it with new ones");
            let _ = child.start_kill();
            let _ = child.wait().await;
            Pause::None
        }
    }
}

/// Asks the child to stop (SIGTERM) and waits for it, killing it after [`STOP_GRACE`].
async fn stop_child(child: &mut tokio::process::Child) {
    let asked = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?))
        .map(|pid| rustix::process::kill_process(pid, rustix::process::Signal::TERM));
    if matches!(asked, Some(Ok(())))
        && let Ok(status) = tokio::time::timeout(STOP_GRACE, child.wait()).await
    {
        tracing::info!(status = ?status.ok(), "default data plane stopped");
        return;
    }
    tracing::warn!("the default data plane did not stop in time; killing it");
    let _ = child.start_kill();
    let _ = child.wait().await;
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

/// Set by `ferry up` for its data plane, which stops when that process is gone (even if it
/// was killed too abruptly to stop its child).
pub const PARENT_PID_VARIABLE: &str = "FERRY_DATAPLANE_PARENT_PID";

/// Resolves once the process that started this one (`expected`) is gone.
pub async fn watch_parent(expected: Option<String>) {
    let Some(expected) = expected.and_then(|pid| pid.parse::<u32>().ok()) else {
        return std::future::pending().await;
    };
    loop {
        #[cfg(unix)]
        if std::os::unix::process::parent_id() != expected {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `ferry up`'s default data plane as its own process (the same code as
/// `ferry dataplane`, talking HTTP to this control plane), restarting it if it dies and
/// renewing its credentials if they stop working ([`supervise`]).
pub async fn run_default_dataplane(
    connection_args: Vec<std::ffi::OsString>,
    (storage_dir, storage_args, local_root): (PathBuf, Vec<std::ffi::OsString>, PathBuf),
    (store, credentials_path): (Store, PathBuf),
    heartbeat_interval_seconds: u64,
    secrets_manager_environment: Vec<(&'static str, String)>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(executable) = std::env::current_exe() else {
        tracing::error!("cannot find the ferry executable to start the default data plane");
        return;
    };
    let command = |credentials: &DataplaneCredentials| {
        let mut command = tokio::process::Command::new(&executable);
        command
            .arg("dataplane")
            .args(&connection_args)
            .args(&storage_args)
            .arg("--heartbeat-interval-seconds")
            .arg(heartbeat_interval_seconds.to_string())
            // `ferry up` stopping stops its control plane too: hand back at once.
            .arg("--drain-seconds")
            .arg("0")
            .arg("--storage-dir")
            .arg(&storage_dir)
            .arg("--local-root")
            .arg(&local_root)
            // In the environment, never on the command line (`ps` shows that to everyone).
            .env("DATA_PLANE_CLIENT_ID", &credentials.client_id)
            .env("DATA_PLANE_CLIENT_SECRET", &credentials.client_secret)
            .env(PARENT_PID_VARIABLE, std::process::id().to_string())
            .envs(secrets_manager_environment.iter().cloned())
            .stdin(std::process::Stdio::null());
        command
    };
    supervise(store, credentials_path, command, stop).await;
}
