//! The `ferry` binary: `up` (everything on embedded storage), `server` (the control plane
//! for production, on PostgreSQL).

mod connector;
mod connector_exec;
mod credentials;
mod dataplane_config;
mod edge;
mod logging;
mod secrets_manager;
mod storage_settings;
mod supervisor;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ferry_control::bootstrap::{BootstrapOptions, bootstrap};
use ferry_control::{AppState, ControlConfig};
use ferry_store::Store;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Ferry: move data between systems, region by region"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Ferry on this machine: the control plane on an embedded SQLite file and local
    /// storage under the data dir, with the default organization, region and workspace.
    Up(UpArgs),
    /// Run the control plane alone, on the database given (PostgreSQL in production).
    Server(ServerArgs),
    /// Run a data plane: claim and run the jobs of its region from a control plane.
    Dataplane(DataplaneArgs),
    /// Run a native connector as an Airbyte-protocol program (spec, check, discover, read,
    /// write), e.g. `ferry connector source-postgres read --config c.json --catalog k.json`.
    Connector(connector::ConnectorArgs),
    /// What a data plane starts each external connector through: the connector then dies
    /// with the data plane (internal).
    #[command(hide = true)]
    ExecConnector(connector_exec::ExecConnectorArgs),
}

#[derive(Args)]
struct ControlArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Where Ferry keeps its SQLite file, local storage and credentials.json.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = ".ferry")]
    data_dir: PathBuf,
    /// Lifetime of API access tokens, in seconds.
    #[arg(long, env = "FERRY_TOKEN_TTL_SECONDS", default_value_t = 900)]
    token_ttl_seconds: u64,
    /// Lifetime of data-plane access tokens, in seconds.
    #[arg(long, env = "FERRY_DATAPLANE_TOKEN_TTL_SECONDS", default_value_t = 300)]
    dataplane_token_ttl_seconds: u64,
    /// How long a data plane's old secret keeps working after a rotation, in seconds.
    #[arg(long, env = "FERRY_SECRET_ROTATION_GRACE_SECONDS", default_value_t = 0)]
    secret_rotation_grace_seconds: u64,
    /// Base URL clients use to reach this server (for pagination links).
    #[arg(long, env = "FERRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// How long a claimed job stays leased without a heartbeat, in seconds.
    #[arg(long, env = "FERRY_JOB_LEASE_SECONDS", default_value_t = 60)]
    job_lease_seconds: u64,
    /// Attempts a job gets before it fails.
    #[arg(long, env = "FERRY_JOB_MAX_ATTEMPTS", default_value_t = 3)]
    job_max_attempts: i64,
    /// Delay before a job's second attempt, in seconds; doubled for each later one.
    #[arg(long, env = "FERRY_JOB_RETRY_BACKOFF_SECONDS", default_value_t = 10)]
    job_retry_backoff_seconds: u64,
    /// Seconds without a heartbeat after which a data plane shows `degraded`.
    #[arg(
        long,
        env = "FERRY_DATAPLANE_DEGRADED_AFTER_SECONDS",
        default_value_t = 60
    )]
    dataplane_degraded_after_seconds: u64,
    /// Seconds without a heartbeat after which a data plane shows `unhealthy`.
    #[arg(
        long,
        env = "FERRY_DATAPLANE_UNHEALTHY_AFTER_SECONDS",
        default_value_t = 300
    )]
    dataplane_unhealthy_after_seconds: u64,
    /// Storage (the guide's `storage.*`): the control plane keeps attempts' logs in its
    /// `log` bucket (`<data-dir>/storage` unless given).
    #[command(flatten)]
    storage: storage_settings::StorageArgs,
    /// Heartbeat interval of `ferry up`'s own data plane, in seconds.
    #[arg(long, env = "FERRY_HEARTBEAT_INTERVAL_SECONDS", default_value_t = 10)]
    heartbeat_interval_seconds: u64,
    /// Logs on stderr as `text` or as JSON lines (`json`).
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Also serve `/metrics` (Prometheus text) alone on this address, e.g. `0.0.0.0:9102`;
    /// it is always served on the API port too.
    #[arg(long, env = "FERRY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    edge: edge::ServerEdgeArgs,
    #[command(flatten)]
    secrets_manager: secrets_manager::SecretsManagerArgs,
}

#[derive(Args)]
struct DataplaneArgs {
    /// A YAML file with these settings (flags and environment variables override it).
    #[arg(long, env = "FERRY_DATAPLANE_CONFIG")]
    config: Option<PathBuf>,
    /// The control plane's base URL (Airbyte's `airbyteUrl`).
    #[arg(long, env = "FERRY_CONTROL_PLANE_URL")]
    control_plane_url: Option<String>,
    /// Client id from `POST /dataplanes`; also read from `DATA_PLANE_CLIENT_ID` (the guide's
    /// secret) or `DATAPLANE_CLIENT_ID` (Airbyte's chart).
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret; also `DATA_PLANE_CLIENT_SECRET` or `DATAPLANE_CLIENT_SECRET`.
    #[arg(long)]
    client_secret: Option<String>,
    #[command(flatten)]
    connection: edge::ConnectionArgs,
    /// Jobs run at once (default 2).
    #[arg(long, env = "FERRY_DATAPLANE_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Seconds between heartbeats (default 10).
    #[arg(long, env = "FERRY_HEARTBEAT_INTERVAL_SECONDS")]
    heartbeat_interval_seconds: Option<u64>,
    /// Storage (the guide's `storage.*`, also the YAML's `storage:` block): the `state`
    /// and `workloadOutput` buckets, and the `log` bucket for a log the control plane
    /// could not take (`.ferry-dataplane/storage` unless given).
    #[command(flatten)]
    storage: storage_settings::StorageArgs,
    /// The one directory the local-file connectors (`file`, `local-json`, `csv`) may read
    /// and write (Airbyte's `/local` mount); without it they are refused.
    #[arg(long, env = "FERRY_LOCAL_ROOT")]
    local_root: Option<PathBuf>,
    #[command(flatten)]
    secrets_manager: secrets_manager::SecretsManagerArgs,
    /// Serve `/health/liveness`, `/health/readiness` and `/metrics` here, e.g. `0.0.0.0:8085`
    /// (the chart's); not served unless given.
    #[arg(long, env = "FERRY_HEALTH_LISTEN")]
    health_listen: Option<SocketAddr>,
    /// On SIGTERM, seconds running attempts may go on before they are handed back (with
    /// their committed state) for another plane of the region (default 30).
    #[arg(long, env = "FERRY_DRAIN_SECONDS")]
    drain_seconds: Option<u64>,
    /// Logs on stderr as `text` or as JSON lines (`json`, the chart's).
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// Database to use instead of `<data-dir>/ferry.db`.
    #[arg(long, env = "FERRY_DATABASE_URL")]
    database_url: Option<String>,
    /// The one directory the local-file connectors may read and write (Airbyte's `/local`
    /// mount): `<data-dir>/local` unless given. It must not hold the data dir.
    #[arg(long, env = "FERRY_LOCAL_ROOT")]
    local_root: Option<PathBuf>,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// The control plane's database: `postgres://user@host:5432/db` (or `sqlite:///path`).
    #[arg(long, env = "FERRY_DATABASE_URL")]
    database_url: String,
}

/// Records pass through as many small allocations (a stream name, a record's text); glibc's
/// allocator was a tenth of the data plane's time with an external connector.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            let rendered = error.render().to_string();
            let first_line = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "ferry: {} (see ferry --help)",
                first_line.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    logging::init(match &cli.command {
        Command::Up(args) => args.control.log_format,
        Command::Server(args) => args.control.log_format,
        Command::Dataplane(args) => args.log_format,
        _ => logging::LogFormat::Text,
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferry: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferry: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            let data_dir = prepare_data_dir(&args.control.data_dir)?;
            let database_url = match args.database_url {
                Some(url) => url,
                None => format!("sqlite://{}", data_dir.join("ferry.db").display()),
            };
            std::fs::create_dir_all(data_dir.join("storage"))
                .context("creating the local storage directory")?;
            let local_root = args
                .local_root
                .clone()
                .unwrap_or_else(|| data_dir.join("local"));
            run_control_plane(&args.control, &data_dir, &database_url, Some(&local_root)).await
        }
        Command::Server(args) => {
            let data_dir = prepare_data_dir(&args.control.data_dir)?;
            run_control_plane(&args.control, &data_dir, &args.database_url, None).await
        }
        Command::Dataplane(args) => run_dataplane(args).await,
        Command::Connector(args) => connector::run(args).await,
        Command::ExecConnector(args) => connector_exec::run(args),
    }
}

async fn run_dataplane(args: DataplaneArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => dataplane_config::load(path)?,
        None => dataplane_config::DataplaneFile::default(),
    };
    let control_plane_url = args
        .control_plane_url
        .or(file.control_plane_url.clone())
        .context("no control plane: pass --control-plane-url or set FERRY_CONTROL_PLANE_URL")?;
    let client_id = args
        .client_id
        .or_else(|| file.client_id())
        .context("no client id: pass --client-id or set DATA_PLANE_CLIENT_ID")?;
    let secret_file = args.connection.client_secret_file.as_deref();
    let client_secret = match args
        .client_secret
        .or(secret_file.map(edge::read_secret).transpose()?)
    {
        Some(secret) => Some(secret),
        None => file
            .client_secret_from_env()
            .or_else(|| file.client_secret_in_file())
            .map(Ok)
            .or_else(|| file.client_secret_file.as_deref().map(edge::read_secret))
            .transpose()?,
    }
    .context("no client secret: pass --client-secret(-file) or set DATA_PLANE_CLIENT_SECRET")?;
    let mut config =
        ferry_dataplane::DataplaneConfig::new(&control_plane_url, &client_id, &client_secret);
    if let Some(concurrency) = args.concurrency.or(file.concurrency) {
        config.concurrency = concurrency;
    }
    if let Some(seconds) = args
        .heartbeat_interval_seconds
        .or(file.heartbeat_interval_seconds)
    {
        config.heartbeat_interval = Duration::from_secs(seconds.max(1));
    }
    config.health_listen = args.health_listen.or(file.health_listen);
    if let Some(seconds) = args.drain_seconds.or(file.drain_seconds) {
        config.drain = Duration::from_secs(seconds);
    }
    let ignored = file.ignored_keys();
    if !ignored.is_empty() {
        tracing::info!(keys = ?ignored, "accepted and ignored: Ferry has no editions and needs no licence key");
    }
    if let Some(name) = &file.data_plane.id {
        tracing::info!(data_plane = %name, "dataPlane.id from the config (informational: the credentials decide which plane this is)");
    }
    let default_storage_dir = file
        .storage_dir
        .clone()
        .unwrap_or_else(|| config.storage_dir.clone());
    let buckets =
        storage_settings::open(&args.storage, file.storage.as_ref(), &default_storage_dir)?;
    if let Some(dir) = &buckets.local_dir {
        config.storage_dir = dir.clone();
    } else {
        storage_settings::probe(&[&buckets.log, &buckets.state, &buckets.workload_output]).await?;
    }
    config.buckets = Some(buckets.for_dataplane());
    if let Some(root) = args.local_root.clone().or(file.local_root.clone()) {
        // Set once, before any connector is built. The plane's own files (its storage, its
        // settings and secret files) stay out of it.
        let own: Vec<&Path> = [Some(config.storage_dir.as_path())]
            .into_iter()
            .chain([
                args.config.as_deref(),
                args.connection.client_secret_file.as_deref(),
                file.client_secret_file.as_deref(),
            ])
            .flatten()
            .collect();
        let root = ferry_connectors::local_root::set(&root, &own).map_err(anyhow::Error::msg)?;
        tracing::info!(root = %root.display(), "local files under this root");
    }
    config.connection = ferry_client::ClientOptions {
        ca_cert: args.connection.ca_cert.or(file.ca_cert),
        connect_to: args.connection.connect_to,
    };
    config.secrets_manager =
        secrets_manager::start(&args.secrets_manager, file.secrets_manager.as_ref())
            .await?
            .map(std::sync::Arc::new);
    connector_exec::prepare_dataplane();
    let parent_gone = supervisor::watch_parent(std::env::var(supervisor::PARENT_PID_VARIABLE).ok());
    let stop = async {
        tokio::select! {
            () = shutdown_signal() => {}
            () = parent_gone => tracing::warn!("the ferry up process that started this data plane is gone"),
        }
    };
    ferry_dataplane::run(config, stop)
        .await
        .context("data plane stopped")
}

fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("resolving data dir {}", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting data dir {}", data_dir.display()))?;
    }
    Ok(data_dir)
}

fn admin_credentials_from_env() -> anyhow::Result<Option<(String, String)>> {
    let client_id = std::env::var("FERRY_ADMIN_CLIENT_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let client_secret = std::env::var("FERRY_ADMIN_CLIENT_SECRET")
        .ok()
        .filter(|v| !v.is_empty());
    match (client_id, client_secret) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (None, None) => Ok(None),
        _ => bail!("set both FERRY_ADMIN_CLIENT_ID and FERRY_ADMIN_CLIENT_SECRET, or neither"),
    }
}

/// `local_root`: run the default data plane (`ferry up`), its local files fenced there.
async fn run_control_plane(
    args: &ControlArgs,
    data_dir: &Path,
    database_url: &str,
    local_root: Option<&Path>,
) -> anyhow::Result<()> {
    let admin_credentials = admin_credentials_from_env()?;
    let buckets = storage_settings::open(&args.storage, None, &data_dir.join("storage"))?;
    if buckets.local_dir.is_none() {
        storage_settings::probe(&[&buckets.log]).await?;
    }
    let storage_dir = buckets
        .local_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("storage"));
    std::fs::create_dir_all(&storage_dir)
        .with_context(|| format!("creating the storage dir {}", storage_dir.display()))?;
    // Made before anything listens. Nothing of this process's own (the data dir: secrets.key,
    // credentials.json, the database; storage) may lie under the root the data plane's
    // connectors reach.
    let local_root = local_root
        .map(|root| ferry_connectors::local_root::prepare(root, &[data_dir, &storage_dir]))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let log_storage = buckets.log.store.clone();
    let store = Store::connect(database_url)
        .await
        .context("opening the control-plane store")?;
    let admin_email = std::env::var("FERRY_ADMIN_EMAIL").ok();
    let report = bootstrap(
        &store,
        &BootstrapOptions {
            admin_credentials,
            admin_email,
        },
    )
    .await
    .context("bootstrapping the default organization")?;
    let credentials_path = data_dir.join("credentials.json");
    credentials::record(&credentials_path, &report)?;
    if let Some(admin) = &report.new_admin_credentials {
        // Printed once: only the hash is stored.
        println!("admin client id:     {}", admin.client_id);
        println!("admin client secret: {}", admin.client_secret);
        println!("(also written to {})", credentials_path.display());
    }
    if let Some(password) = &report.new_admin_password {
        // Printed once: only the hash is stored.
        println!("admin sign-in:       {} / {password}", report.admin_email);
        println!("(also written to {})", credentials_path.display());
    }
    let config = ControlConfig {
        token_lifetime: Duration::from_secs(args.token_ttl_seconds),
        dataplane_token_lifetime: Duration::from_secs(args.dataplane_token_ttl_seconds),
        secret_rotation_grace: Duration::from_secs(args.secret_rotation_grace_seconds),
        public_url: args.public_url.clone(),
        job_lease: Duration::from_secs(args.job_lease_seconds.max(1)),
        max_attempts: args.job_max_attempts.max(1),
        retry_backoff: Duration::from_secs(args.job_retry_backoff_seconds),
        dataplane_degraded_after: Duration::from_secs(args.dataplane_degraded_after_seconds),
        dataplane_unhealthy_after: Duration::from_secs(args.dataplane_unhealthy_after_seconds),
        log_storage,
    };
    let secrets = credentials::secrets_cipher(data_dir)?;
    let manager = secrets_manager::start(&args.secrets_manager, None).await?;
    let state = AppState::new(store.clone(), config, secrets)
        .await
        .context("loading the token signing key")?
        .with_secrets_manager(manager);
    // Before anything is served: no configuration keeps a secret inline once a manager is
    // configured, and none refers to a manager that is not.
    let moved = ferry_control::secrets::managed::migrate(&state)
        .await
        .map_err(|error| {
            anyhow::anyhow!("moving connector secrets to the secrets manager: {error}")
        })?;
    if moved > 0 {
        tracing::info!(
            configurations = moved,
            "connector secrets moved into the secrets manager"
        );
    }
    let serve_options = args.edge.serve_options()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!(
        "ferry control plane listening on {}://{address}",
        args.edge.scheme()
    );
    if serve_options.tls.is_none() && !address.ip().is_loopback() {
        tracing::warn!(%address, "serving plain HTTP beyond loopback: pass --tls-cert and --tls-key unless a proxy terminates TLS");
    }
    tracing::info!(%address, database = ?store.backend(), "control plane started");
    if let Some(metrics_address) = args.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_address)
            .await
            .with_context(|| format!("--metrics-listen {metrics_address}"))?;
        println!(
            "ferry metrics on http://{}/metrics",
            metrics_listener
                .local_addr()
                .context("reading the bound address")?
        );
        tokio::spawn(ferry_control::metrics::serve(
            metrics_listener,
            state.clone(),
            shutdown_signal(),
        ));
    }
    let reaper = ferry_control::spawn_lease_reaper(state.clone());
    let scheduler = ferry_control::schedule::spawn_scheduler(state.clone());
    let (stop_dataplane, dataplane_stop) = tokio::sync::watch::channel(false);
    let dataplane = local_root.map(|local_root| {
        tokio::spawn(supervisor::run_default_dataplane(
            args.edge
                .default_dataplane_args(address, args.public_url.as_deref()),
            (storage_dir.clone(), args.storage.child_args(), local_root),
            (store.clone(), credentials_path.clone()),
            args.heartbeat_interval_seconds,
            secrets_manager::child_environment(&args.secrets_manager),
            dataplane_stop,
        ))
    });
    // The default data plane stops first, handing its attempts back while the control
    // plane still answers; then the control plane.
    let (dataplane_stopped, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_dataplane.send(true);
        let bound = supervisor::STOP_GRACE + Duration::from_secs(2);
        let _ = tokio::time::timeout(bound, stopped).await;
    };
    let supervised = dataplane.map(|dataplane| {
        tokio::spawn(async move {
            let _ = dataplane.await;
            let _ = dataplane_stopped.send(());
        })
    });
    ferry_control::serve(listener, state, serve_options, shutdown)
        .await
        .context("serving HTTP")?;
    reaper.abort();
    scheduler.abort();
    if let Some(supervised) = supervised {
        supervised.abort();
    }
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
