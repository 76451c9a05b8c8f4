//! A data plane: it dials out to its control plane with its client credentials, announces
//! itself, heartbeats, claims jobs of its own region only, and runs them — records flow
//! source → destination here and never through the control plane; only state (cursor and
//! primary-key values) and counts go back.

mod attempt;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::{ClaimResponse, DataplaneHeartbeatRequest};
use ferry_client::{ClientError, ControlPlaneClient};
use tokio::sync::{Mutex, Semaphore, watch};
use uuid::Uuid;

pub use attempt::Signal;

/// Settings of a data plane, each with a flag and an environment variable in `ferry dataplane`.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    pub control_plane_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Jobs run at once.
    pub concurrency: usize,
    pub heartbeat_interval: Duration,
    /// How long one claim request waits for a job (long poll).
    pub claim_wait: Duration,
    /// The storage attempt logs go to (Airbyte's `log` bucket): a local directory, or
    /// `object_storage` (S3) when set.
    pub storage_dir: std::path::PathBuf,
    pub object_storage: Option<Arc<dyn object_store::ObjectStore>>,
}

impl DataplaneConfig {
    pub fn new(control_plane_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            control_plane_url: control_plane_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            concurrency: 2,
            heartbeat_interval: Duration::from_secs(10),
            claim_wait: Duration::from_secs(20),
            storage_dir: std::path::PathBuf::from(".ferry-dataplane/storage"),
            object_storage: None,
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

/// Runs the data plane until `shutdown` resolves; attempts still running then are stopped
/// and reported failed, so their jobs go back to the region's lane at once.
pub async fn run(
    config: DataplaneConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DataplaneError> {
    if config.concurrency == 0 {
        return Err(DataplaneError::Config(
            "concurrency must be at least 1".to_owned(),
        ));
    }
    let client = Arc::new(ControlPlaneClient::new(
        &config.control_plane_url,
        &config.client_id,
        &config.client_secret,
    )?);
    let identity = initialize(&client).await?;
    tracing::info!(
        dataplane_id = %identity.dataplane_id,
        dataplane_name = %identity.dataplane_name,
        region_id = %identity.dataplane_group_id,
        region = %identity.dataplane_group_name,
        enabled = identity.dataplane_enabled,
        "data plane initialized"
    );
    let storage: Arc<dyn object_store::ObjectStore> = match &config.object_storage {
        Some(storage) => storage.clone(),
        None => {
            std::fs::create_dir_all(&config.storage_dir).map_err(|error| {
                DataplaneError::Config(format!(
                    "storage dir {}: {error}",
                    config.storage_dir.display()
                ))
            })?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&config.storage_dir)
                    .map_err(|error| DataplaneError::Config(format!("storage dir: {error}")))?,
            )
        }
    };

    let running: Running = Arc::new(Mutex::new(HashMap::new()));
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let (enabled_sender, enabled) = watch::channel(identity.dataplane_enabled);
    let heartbeat = tokio::spawn(heartbeat_loop(
        client.clone(),
        config.clone(),
        running.clone(),
        slots.clone(),
        enabled_sender,
    ));
    let claims = claim_loop(
        client.clone(),
        config.clone(),
        running.clone(),
        slots.clone(),
        enabled,
        storage,
    );
    tokio::select! {
        () = shutdown => tracing::info!("data plane stopping"),
        result = claims => {
            heartbeat.abort();
            return result;
        }
    }
    heartbeat.abort();
    for signal in running.lock().await.values() {
        let _ = signal.send(Signal::Stop);
    }
    // Let stopped attempts report before the process ends.
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        slots.acquire_many(u32::try_from(config.concurrency).unwrap_or(u32::MAX)),
    )
    .await;
    Ok(())
}

async fn initialize(
    client: &ControlPlaneClient,
) -> Result<ferry_api::DataplaneIdentityResponse, DataplaneError> {
    let mut delay = Duration::from_millis(200);
    loop {
        match client.initialize().await {
            Ok(identity) => return Ok(identity),
            Err(
                error @ ClientError::Status {
                    status: 400..=499, ..
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

async fn heartbeat_loop(
    client: Arc<ControlPlaneClient>,
    config: DataplaneConfig,
    running: Running,
    slots: Arc<Semaphore>,
    enabled: watch::Sender<bool>,
) {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .ok();
    let mut interval = tokio::time::interval(config.heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let attempts: Vec<Uuid> = running.lock().await.keys().copied().collect();
        let request = DataplaneHeartbeatRequest {
            client_id: client.client_id().to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            hostname: hostname.clone(),
            running_attempts: Some(attempts),
            free_slots: Some(u32::try_from(slots.available_permits()).unwrap_or(u32::MAX)),
        };
        match client.heartbeat(&request).await {
            Ok(reply) => {
                let _ = enabled.send(reply.dataplane_enabled);
                let signals = running.lock().await;
                for attempt_id in &reply.directives.cancel {
                    if let Some(signal) = signals.get(attempt_id) {
                        tracing::info!(%attempt_id, "attempt cancelled by the control plane");
                        let _ = signal.send(Signal::Cancel);
                    }
                }
                for attempt_id in &reply.directives.lost {
                    if let Some(signal) = signals.get(attempt_id) {
                        tracing::warn!(%attempt_id, "attempt no longer ours (lease lost); stopping it");
                        let _ = signal.send(Signal::Lost);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
    }
}

async fn claim_loop(
    client: Arc<ControlPlaneClient>,
    config: DataplaneConfig,
    running: Running,
    slots: Arc<Semaphore>,
    mut enabled: watch::Receiver<bool>,
    storage: Arc<dyn object_store::ObjectStore>,
) -> Result<(), DataplaneError> {
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
        match client.claim(config.claim_wait).await {
            Ok(ClaimResponse {
                task: Some(task), ..
            }) => {
                failures = 0;
                tracing::info!(task_id = %task.task_id, kind = %task.kind, role = %task.role, "claimed connector task");
                let client = client.clone();
                tokio::spawn(async move {
                    task::run_task(&client, task).await;
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
                let client = client.clone();
                let running = running.clone();
                let storage = storage.clone();
                tokio::spawn(async move {
                    let attempt_id = claimed.attempt_id;
                    attempt::run(&client, claimed, signal, storage.as_ref()).await;
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
