//! The `ferry` binary: `up` (everything on embedded storage), `server` (the control plane
//! for production, on PostgreSQL).

mod credentials;

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
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// Database to use instead of `<data-dir>/ferry.db`.
    #[arg(long, env = "FERRY_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// The control plane's database: `postgres://user@host:5432/db` (or `sqlite:///path`).
    #[arg(long, env = "FERRY_DATABASE_URL")]
    database_url: String,
}

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
            run_control_plane(&args.control, &data_dir, &database_url).await
        }
        Command::Server(args) => {
            let data_dir = prepare_data_dir(&args.control.data_dir)?;
            run_control_plane(&args.control, &data_dir, &args.database_url).await
        }
    }
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

async fn run_control_plane(
    args: &ControlArgs,
    data_dir: &Path,
    database_url: &str,
) -> anyhow::Result<()> {
    let admin_credentials = admin_credentials_from_env()?;
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
    };
    let state = AppState::new(store.clone(), config)
        .await
        .context("loading the token signing key")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!("ferry control plane listening on http://{address}");
    tracing::info!(%address, database = ?store.backend(), "control plane started");
    ferry_control::serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
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
