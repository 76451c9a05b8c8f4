//! External connectors die with their data plane. A data plane starts each connector
//! program through `ferry exec-connector --parent-pid N -- program args…` (hidden), which
//! asks Linux to SIGKILL it when its parent, the data plane, dies (`PR_SET_PDEATHSIG`, kept
//! across `exec`), checks that the parent is still the one that started it (it may have died
//! in between), and then becomes the connector with `exec`: same process id, same process
//! group. The setting is a process's own, made on itself, so no `unsafe` code runs between
//! `fork` and `exec` in the data plane.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args)]
pub struct ExecConnectorArgs {
    /// The data plane's process id.
    #[arg(long)]
    parent_pid: u32,
    /// The connector's command line, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// Environment variables a connector must not see: the secrets of Ferry itself.
const HIDDEN_ENV: &[&str] = &[
    "DATA_PLANE_CLIENT_SECRET",
    "DATAPLANE_CLIENT_SECRET",
    "FERRY_ADMIN_CLIENT_SECRET",
    "FERRY_SECRETS_KEY",
];

/// Becomes the connector; returns only if that failed, after telling the data plane why
/// as the connector would (an ERROR trace).
pub fn run(args: ExecConnectorArgs) -> anyhow::Result<()> {
    let outcome = become_connector(&args);
    if let Err(error) = &outcome {
        let trace = serde_json::json!({"type": "TRACE", "trace": {
            "type": "ERROR",
            "emitted_at": ferry_store::now_millis(),
            "error": {"message": format!("{error:#}"), "failure_type": "system_error"},
        }});
        println!("{trace}");
    }
    outcome
}

fn become_connector(args: &ExecConnectorArgs) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .context("asking to die with the data plane")?;
    #[cfg(unix)]
    if std::os::unix::process::parent_id() != args.parent_pid {
        bail!("the data plane that started this connector is gone");
    }
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no connector command line");
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = std::process::Command::new(program).args(rest).exec();
        Err(error).with_context(|| format!("cannot start {}", program.to_string_lossy()))
    }
    #[cfg(not(unix))]
    {
        let status = std::process::Command::new(program)
            .args(rest)
            .status()
            .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// For a data plane at start: removes the run directories of connectors that data planes
/// killed before left behind, and has every connector started from now on through
/// `exec-connector` (on Linux), without Ferry's secrets in its environment.
pub fn prepare_dataplane() {
    let removed = ferry_connectors::process::sweep_stale_run_dirs();
    if removed > 0 {
        tracing::info!(
            removed,
            "removed connector directories left by data planes that were killed"
        );
    }
    let mut wrapper = Vec::new();
    if cfg!(target_os = "linux") {
        // The running image itself, even if its file was replaced since it started.
        let executable = ["/proc/self/exe"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .or_else(|| std::env::current_exe().ok());
        if let Some(executable) = executable {
            wrapper = vec![
                executable.into_os_string(),
                "exec-connector".into(),
                "--parent-pid".into(),
                std::process::id().to_string().into(),
                "--".into(),
            ];
        }
    }
    ferry_connectors::process::set_launcher(ferry_connectors::process::Launcher {
        wrapper,
        hidden_env: HIDDEN_ENV.iter().map(|name| (*name).to_owned()).collect(),
    });
}
