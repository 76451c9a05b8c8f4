//! The `ferry` binary: `up` (everything on embedded storage), `server` (the control plane
//! for production, on PostgreSQL).

mod connector;
mod connector_exec;
mod credentials;
mod dataplane_config;
mod edge;
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
    /// Where attempt logs are read from (and, for `ferry up`, written to).
    #[arg(long, env = "FERRY_STORAGE_DIR")]
    storage_dir: Option<PathBuf>,
    /// Object storage for attempt logs instead of the directory: `s3://bucket/prefix`
    /// (credentials, region and endpoint from `AWS_*`, as the AWS tools read them).
    #[arg(long, env = "FERRY_STORAGE_URL")]
    storage_url: Option<String>,
    /// Heartbeat interval of `ferry up`'s own data plane, in seconds.
    #[arg(long, env = "FERRY_HEARTBEAT_INTERVAL_SECONDS", default_value_t = 10)]
    heartbeat_interval_seconds: u64,
    #[command(flatten)]
    edge: edge::ServerEdgeArgs,
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
    /// Directory for attempt logs (the storage the control plane reads them from).
    #[arg(long, env = "FERRY_STORAGE_DIR")]
    storage_dir: Option<PathBuf>,
    /// Object storage for attempt logs instead: `s3://bucket/prefix` (`AWS_*` settings).
    #[arg(long, env = "FERRY_STORAGE_URL")]
    storage_url: Option<String>,
    /// The one directory the local-file connectors (`file`, `local-json`, `csv`) may read
    /// and write (Airbyte's `/local` mount); without it they are refused.
    #[arg(long, env = "FERRY_LOCAL_ROOT")]
    local_root: Option<PathBuf>,
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .init();
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

/// Object storage named by a URL: `s3://bucket/prefix`, with credentials, region and endpoint
/// from the `AWS_*` environment variables as the AWS tools read them.
fn object_storage(url: &str) -> anyhow::Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    let parsed = url::Url::parse(url).with_context(|| format!("storage URL '{url}'"))?;
    if parsed.scheme() != "s3" {
        bail!("storage URL '{url}': only s3://bucket/prefix is supported (or --storage-dir)");
    }
    let bucket = object_store::aws::AmazonS3Builder::from_env()
        .with_url(url)
        .build()
        .with_context(|| format!("storage URL '{url}'"))?;
    let prefix = parsed.path().trim_matches('/');
    Ok(if prefix.is_empty() {
        std::sync::Arc::new(bucket)
    } else {
        std::sync::Arc::new(object_store::prefix::PrefixStore::new(bucket, prefix))
    })
}

/// The first of these environment variables that is set.
fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

async fn run_dataplane(args: DataplaneArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => dataplane_config::load(path)?,
        None => dataplane_config::DataplaneFile::default(),
    };
    let control_plane_url = args
        .control_plane_url
        .or(file.control_plane_url)
        .context("no control plane: pass --control-plane-url or set FERRY_CONTROL_PLANE_URL")?;
    let client_id = args
        .client_id
        .or_else(|| first_env(&["DATA_PLANE_CLIENT_ID", "DATAPLANE_CLIENT_ID"]))
        .or(file.client_id)
        .context("no client id: pass --client-id or set DATA_PLANE_CLIENT_ID")?;
    let secret_file = args.connection.client_secret_file.as_deref();
    let client_secret = match args
        .client_secret
        .or(secret_file.map(edge::read_secret).transpose()?)
    {
        Some(secret) => Some(secret),
        None => first_env(&["DATA_PLANE_CLIENT_SECRET", "DATAPLANE_CLIENT_SECRET"])
            .or(file.client_secret)
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
    if let Some(storage_dir) = args.storage_dir.or(file.storage_dir) {
        config.storage_dir = storage_dir;
    }
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
    config.object_storage = args
        .storage_url
        .as_deref()
        .map(object_storage)
        .transpose()?;
    config.connection = ferry_client::ClientOptions {
        ca_cert: args.connection.ca_cert.or(file.ca_cert),
        connect_to: args.connection.connect_to,
    };
    connector_exec::prepare_dataplane();
    let parent_gone = watch_parent(std::env::var(PARENT_PID_VARIABLE).ok());
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
    let object_storage = args
        .storage_url
        .as_deref()
        .map(object_storage)
        .transpose()?;
    let storage_dir = args
        .storage_dir
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
    let log_storage: std::sync::Arc<dyn object_store::ObjectStore> = match object_storage {
        Some(storage) => storage,
        None => std::sync::Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(&storage_dir)
                .with_context(|| format!("opening the storage dir {}", storage_dir.display()))?,
        ),
    };
    let store = Store::connect(database_url)
        .await
        .context("opening the control-plane store")?;
    let report = bootstrap(&store, &BootstrapOptions { admin_credentials })
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
    let state = AppState::new(store.clone(), config, secrets)
        .await
        .context("loading the token signing key")?;
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
    let reaper = ferry_control::spawn_lease_reaper(state.clone());
    let scheduler = ferry_control::schedule::spawn_scheduler(state.clone());
    let dataplane = local_root.map(|local_root| {
        tokio::spawn(supervise_default_dataplane(
            args.edge
                .default_dataplane_args(address, args.public_url.as_deref()),
            (storage_dir.clone(), args.storage_url.clone(), local_root),
            (store.clone(), credentials_path.clone()),
            args.heartbeat_interval_seconds,
        ))
    });
    ferry_control::serve(listener, state, serve_options, shutdown_signal())
        .await
        .context("serving HTTP")?;
    reaper.abort();
    scheduler.abort();
    if let Some(dataplane) = dataplane {
        dataplane.abort();
    }
    store.close().await;
    Ok(())
}

/// Set by `ferry up` for its data plane, which stops when that process is gone (even if it
/// was killed too abruptly to stop its child).
const PARENT_PID_VARIABLE: &str = "FERRY_DATAPLANE_PARENT_PID";

async fn watch_parent(expected: Option<String>) {
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
/// renewing its credentials if they stop working (`supervisor`).
async fn supervise_default_dataplane(
    connection_args: Vec<std::ffi::OsString>,
    (storage_dir, storage_url, local_root): (PathBuf, Option<String>, PathBuf),
    (store, credentials_path): (Store, PathBuf),
    heartbeat_interval_seconds: u64,
) {
    let Ok(executable) = std::env::current_exe() else {
        tracing::error!("cannot find the ferry executable to start the default data plane");
        return;
    };
    let command = |credentials: &credentials::DataplaneCredentials| {
        let mut command = tokio::process::Command::new(&executable);
        if let Some(url) = &storage_url {
            command.env("FERRY_STORAGE_URL", url);
        }
        command
            .arg("dataplane")
            .args(&connection_args)
            .arg("--heartbeat-interval-seconds")
            .arg(heartbeat_interval_seconds.to_string())
            .arg("--storage-dir")
            .arg(&storage_dir)
            .arg("--local-root")
            .arg(&local_root)
            // In the environment, never on the command line (`ps` shows that to everyone).
            .env("DATA_PLANE_CLIENT_ID", &credentials.client_id)
            .env("DATA_PLANE_CLIENT_SECRET", &credentials.client_secret)
            .env(PARENT_PID_VARIABLE, std::process::id().to_string())
            .stdin(std::process::Stdio::null());
        command
    };
    supervisor::supervise(store, credentials_path, command).await;
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
