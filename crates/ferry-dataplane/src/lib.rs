//! A data plane: it dials out to its control plane with its client credentials, announces
//! itself, heartbeats, claims jobs of its own region only, and runs them — records flow
//! source → destination here and never through the control plane; only state (cursor and
//! primary-key values) and counts go back.

mod attempt;
mod drain;
pub mod health;
pub mod metrics;
mod output;
mod secrets;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::{ClaimKind, ClaimResponse, DataplaneHeartbeatRequest};
use ferry_client::{ClientError, ControlPlaneClient};
use tokio::sync::{Mutex, Notify, Semaphore, watch};
use tokio::time::Instant;
use uuid::Uuid;

pub use attempt::Signal;

/// The guide's three buckets, as a data plane uses them: its own copy of an attempt's log
/// when the control plane cannot take it, large states, and each attempt's and task's
/// output (`workloadOutput`).
#[derive(Debug, Clone)]
pub struct StorageBuckets {
    pub log: Arc<dyn object_store::ObjectStore>,
    pub state: Arc<dyn object_store::ObjectStore>,
    pub workload_output: Arc<dyn object_store::ObjectStore>,
}

/// Settings of a data plane, each with a flag and an environment variable in `ferry dataplane`.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    pub control_plane_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Connector tasks (`check`, `discover`) run at once, beside the jobs: a task never
    /// takes a job's slot, nor a job a task's, so checks that hang (each until its deadline)
    /// delay no sync.
    pub task_concurrency: usize,
    pub heartbeat_interval: Duration,
    /// How long one claim request waits for a job (long poll).
    pub claim_wait: Duration,
    /// The local storage directory, used for the three buckets unless `buckets` is set.
    pub storage_dir: std::path::PathBuf,
    /// The guide's `log`, `state` and `workloadOutput` buckets, when not local.
    pub buckets: Option<StorageBuckets>,
    /// How the control plane is reached: a CA file trusted beside the system's roots.
    pub connection: ferry_client::ClientOptions,
    /// The secrets manager the control plane keeps connector secrets in (its references
    /// are resolved here); none: configurations come with their secrets.
    pub secrets_manager: Option<Arc<ferry_secrets::SecretsManager>>,
    /// Where `/health/liveness`, `/health/readiness` and `/metrics` are served, if anywhere.
    pub health_listen: Option<std::net::SocketAddr>,
    /// On shutdown, how long running attempts may go on before they are handed back.
    pub drain: Duration,
}

/// Tasks are short and mostly wait on the network; this bounds the external connector
/// processes they start at once.
const DEFAULT_TASK_CONCURRENCY: usize = 4;

/// Longest a heartbeat is held open waiting for a cancel (the control plane holds one at
/// most 30 s).
const MAX_HEARTBEAT_WAIT: Duration = Duration::from_secs(20);

impl DataplaneConfig {
    pub fn new(control_plane_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            control_plane_url: control_plane_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            concurrency: 2,
            task_concurrency: DEFAULT_TASK_CONCURRENCY,
            heartbeat_interval: Duration::from_secs(10),
            claim_wait: Duration::from_secs(20),
            storage_dir: std::path::PathBuf::from(".ferry-dataplane/storage"),
            buckets: None,
            connection: ferry_client::ClientOptions::default(),
            secrets_manager: None,
            health_listen: None,
            drain: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("cannot authenticate with the control plane: {0}")]
    Unauthorized(#[source] ClientError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("invalid data-plane settings: {0}")]
    Config(String),
}

type Running = Arc<Mutex<HashMap<Uuid, watch::Sender<Signal>>>>;

/// Runs the data plane until `shutdown` resolves; then it drains (see `drain`): no more
/// claims, running attempts get `config.drain` to finish, the rest are handed back with
/// their committed state, so their jobs go back to the region's lane at once.
pub async fn run(
    config: DataplaneConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DataplaneError> {
    if config.concurrency == 0 || config.task_concurrency == 0 {
        return Err(DataplaneError::Config(
            "concurrency must be at least 1".to_owned(),
        ));
    }
    let client = Arc::new(ControlPlaneClient::with_options(
        &config.control_plane_url,
        &config.client_id,
        &config.client_secret,
        &config.connection,
    )?);
    let observers = health::Observers::default();
    if let Some(address) = config.health_listen {
        let (bound, _server) =
            health::spawn(address, observers.health.clone(), observers.metrics.clone()).await?;
        tracing::info!(address = %bound, "health and metrics served");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    // Not ready, but up, until the control plane answers: a control plane down at boot
    // must not make its data planes crash-loop.
    let identity = tokio::select! {
        identity = initialize(&client) => identity?,
        () = &mut shutdown => {
            tracing::info!("data plane stopping before the control plane answered");
            return Ok(());
        }
    };
    observers.health.authenticated();
    tracing::info!(
        dataplane_id = %identity.dataplane_id,
        dataplane_name = %identity.dataplane_name,
        region_id = %identity.dataplane_group_id,
        region = %identity.dataplane_group_name,
        enabled = identity.dataplane_enabled,
        "data plane initialized"
    );
    let storage: StorageBuckets = match &config.buckets {
        Some(buckets) => buckets.clone(),
        None => {
            std::fs::create_dir_all(&config.storage_dir).map_err(|error| {
                DataplaneError::Config(format!(
                    "storage dir {}: {error}",
                    config.storage_dir.display()
                ))
            })?;
            let local: Arc<dyn object_store::ObjectStore> = Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&config.storage_dir)
                    .map_err(|error| DataplaneError::Config(format!("storage dir: {error}")))?,
            );
            StorageBuckets {
                log: local.clone(),
                state: local.clone(),
                workload_output: local,
            }
        }
    };

    let running: Running = Arc::new(Mutex::new(HashMap::new()));
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let task_slots = Arc::new(Semaphore::new(config.task_concurrency));
    let task_slots_left = task_slots.clone();
    let started = Arc::new(Notify::new());
    let (enabled_sender, enabled) = watch::channel(identity.dataplane_enabled);
    let heartbeat = tokio::spawn(heartbeat_loop(
        client.clone(),
        config.clone(),
        running.clone(),
        slots.clone(),
        enabled_sender,
        started.clone(),
        observers.clone(),
    ));
    let claimer = Claimer {
        client: client.clone(),
        config: config.clone(),
        running: running.clone(),
        storage,
        started,
        observers: observers.clone(),
    };
    // Jobs and connector tasks are claimed apart, each when a slot of its own is free.
    let claims = async {
        tokio::try_join!(
            claimer.claim_loop(ClaimKind::Jobs, slots.clone(), enabled.clone()),
            claimer.claim_loop(ClaimKind::Tasks, task_slots.clone(), enabled),
        )
        .map(drop)
    };
    tokio::select! {
        () = &mut shutdown => tracing::info!("data plane stopping"),
        result = claims => {
            heartbeat.abort();
            return result;
        }
    }
    // The claim loops are dropped (their long polls with them); heartbeats go on renewing
    // the leases of the attempts still running.
    observers.health.start_draining();
    drain::drain(
        &running,
        (&slots, config.concurrency),
        (&task_slots_left, config.task_concurrency),
        config.drain,
    )
    .await;
    heartbeat.abort();
    Ok(())
}

async fn initialize(
    client: &ControlPlaneClient,
) -> Result<ferry_api::DataplaneIdentityResponse, DataplaneError> {
    let mut delay = Duration::from_millis(200);
    loop {
        match client.initialize().await {
            Ok(identity) => return Ok(identity),
            // A 429 (this client id backing off after wrong secrets) passes; others are final.
            Err(
                error @ ClientError::Status {
                    status: 400..=428 | 430..=499,
                    ..
                },
            ) => {
                return Err(DataplaneError::Unauthorized(error));
            }
            Err(error) => {
                tracing::warn!(%error, "control plane not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Heartbeats: renews the leases of the running attempts and hears which to stop.
///
/// While attempts run, each heartbeat is held open by the control plane for the interval
/// and answered at once when one of them is cancelled (see `jobs::await_cancel` in the
/// control plane), so a cancel reaches its attempt within a fraction of a second at the
/// cost of one open request, not of heartbeats every second. A new attempt restarts the
/// held heartbeat, so that its own cancel is heard too.
async fn heartbeat_loop(
    client: Arc<ControlPlaneClient>,
    config: DataplaneConfig,
    running: Running,
    slots: Arc<Semaphore>,
    enabled: watch::Sender<bool>,
    started: Arc<Notify>,
    observers: health::Observers,
) {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .ok();
    loop {
        let began = Instant::now();
        // An attempt already told to stop needs no lease (its job has ended) nor another
        // directive.
        let attempts: Vec<Uuid> = running
            .lock()
            .await
            .iter()
            .filter(|(_, signal)| *signal.borrow() == Signal::Run)
            .map(|(attempt_id, _)| *attempt_id)
            .collect();
        let wait =
            (!attempts.is_empty()).then(|| config.heartbeat_interval.min(MAX_HEARTBEAT_WAIT));
        let request = DataplaneHeartbeatRequest {
            client_id: client.client_id().to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            hostname: hostname.clone(),
            running_attempts: Some(attempts),
            free_slots: Some(u32::try_from(slots.available_permits()).unwrap_or(u32::MAX)),
            wait_ms: wait.map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        };
        let reply = tokio::select! {
            reply = client.heartbeat(&request) => reply,
            // An attempt started: heartbeat again at once, naming it.
            () = started.notified() => continue,
        };
        let mut paced = false;
        observers.heartbeat(reply.is_ok(), client.tokens_fetched());
        match reply {
            Ok(reply) => {
                let _ = enabled.send(reply.dataplane_enabled);
                let directives = &reply.directives;
                // A held heartbeat paces itself: the next follows at once when it ran its
                // course or answered a directive (the other attempts still need watching).
                paced = wait.is_some_and(|wait| {
                    began.elapsed() >= wait
                        || !directives.cancel.is_empty()
                        || !directives.lost.is_empty()
                });
                let signals = running.lock().await;
                for attempt_id in &directives.cancel {
                    if let Some(signal) = signals.get(attempt_id) {
                        tracing::info!(%attempt_id, "attempt cancelled by the control plane");
                        let _ = signal.send(Signal::Cancel);
                    }
                }
                for attempt_id in &directives.lost {
                    if let Some(signal) = signals.get(attempt_id) {
                        tracing::warn!(%attempt_id, "attempt no longer ours (lease lost); stopping it");
                        let _ = signal.send(Signal::Lost);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
        let next = if paced {
            Instant::now()
        } else {
            began + config.heartbeat_interval
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = started.notified() => {}
        }
    }
}

/// What the claim loops share.
struct Claimer {
    client: Arc<ControlPlaneClient>,
    config: DataplaneConfig,
    running: Running,
    storage: StorageBuckets,
    /// Told when an attempt starts, for the heartbeat to name it at once.
    started: Arc<Notify>,
    observers: health::Observers,
}

impl Claimer {
    /// Claims work of one `kind` whenever one of its `slots` is free, and runs it.
    async fn claim_loop(
        &self,
        kind: ClaimKind,
        slots: Arc<Semaphore>,
        mut enabled: watch::Receiver<bool>,
    ) -> Result<(), DataplaneError> {
        let Self {
            client,
            config,
            running,
            storage,
            started,
            observers,
        } = self;
        let mut failures = 0u32;
        loop {
            if !*enabled.borrow() {
                // A disabled data plane (or region) claims nothing until re-enabled.
                let _ = tokio::time::timeout(config.heartbeat_interval, enabled.changed()).await;
                continue;
            }
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let asked = Instant::now();
            let claimed = client.claim(config.claim_wait, Some(kind)).await;
            observers.claimed(&claimed, asked.elapsed());
            match claimed {
                Ok(ClaimResponse {
                    task: Some(task), ..
                }) => {
                    failures = 0;
                    tracing::info!(task_id = %task.task_id, kind = %task.kind, role = %task.role, "claimed connector task");
                    let client = client.clone();
                    let storage = storage.clone();
                    let secrets = config.secrets_manager.clone();
                    tokio::spawn(async move {
                        if let Some(task) =
                            secrets::resolve_task(&client, task, secrets.as_deref()).await
                        {
                            task::run_task(&client, task, &storage).await;
                        }
                        drop(permit);
                    });
                }
                Ok(ClaimResponse {
                    job: Some(claimed), ..
                }) => {
                    failures = 0;
                    tracing::info!(
                        job_id = claimed.job_id,
                        attempt_id = %claimed.attempt_id,
                        attempt_number = claimed.attempt_number,
                        job_type = %claimed.job_type,
                        "claimed job"
                    );
                    let (signal_sender, signal) = watch::channel(Signal::Run);
                    running
                        .lock()
                        .await
                        .insert(claimed.attempt_id, signal_sender);
                    started.notify_one();
                    let client = client.clone();
                    let running = running.clone();
                    let storage = storage.clone();
                    let observers = observers.clone();
                    let secrets = config.secrets_manager.clone();
                    tokio::spawn(async move {
                        let attempt_id = claimed.attempt_id;
                        observers.metrics.attempts_running.inc();
                        let ended =
                            attempt::run(&client, claimed, signal, &storage, secrets.as_deref())
                                .await;
                        observers.attempt_ended(&ended);
                        running.lock().await.remove(&attempt_id);
                        drop(permit);
                    });
                }
                Ok(_) => {}
                Err(error @ ClientError::Status { status: 401, .. }) => {
                    return Err(DataplaneError::Unauthorized(error));
                }
                Err(error) => {
                    failures += 1;
                    let delay = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tracing::warn!(%error, ?delay, "claim failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
