//! How an external connector's process is started, and what it leaves behind.
//!
//! * Each run's configuration, catalog and state files lie in a private directory (0700;
//!   `tempfile` would make it 0777 less the umask), `ferry-connector-<pid>-*` under the
//!   temporary directory, named after the data plane's process so that the directories of
//!   one killed before it could remove them are swept at the next start
//!   ([`sweep_stale_run_dirs`]) without touching those of a data plane still running.
//! * The connector runs in a process group of its own (a terminal's Ctrl-C reaches the data
//!   plane, which stops it in order), and the whole group is killed when a run is dropped
//!   before the connector ended (cancel, timeout, failure of the other side).
//! * Through the [`Launcher`] a data plane sets at start, the connector is started by a
//!   wrapper (`ferry exec-connector`) that asks Linux to SIGKILL it when the data plane dies
//!   (`PR_SET_PDEATHSIG`, kept across `exec`), then becomes the connector; and without the
//!   data plane's own credentials in its environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::{Child, Command};

use crate::ConnectorError;

/// The prefix of every run directory.
const RUN_DIR_PREFIX: &str = "ferry-connector-";

/// How this process starts connector programs; set once, by the data plane, at start.
#[derive(Debug, Clone, Default)]
pub struct Launcher {
    /// A program and arguments the connector's command line is appended to (it must end up
    /// executing that command line), e.g. `[/proc/self/exe, exec-connector, --parent-pid,
    /// N, --]`; empty: the connector is started directly.
    pub wrapper: Vec<OsString>,
    /// Environment variables connectors must not inherit (the data plane's secret).
    pub hidden_env: Vec<String>,
}

static LAUNCHER: OnceLock<Launcher> = OnceLock::new();

/// Sets how connectors are started, for the rest of the process; false if it was set
/// already (the first setting stays).
pub fn set_launcher(launcher: Launcher) -> bool {
    LAUNCHER.set(launcher).is_ok()
}

/// The command that runs `program args…` as a connector, in its own process group.
pub(super) fn command(program: &Path, args: &[String]) -> Command {
    let launcher = LAUNCHER.get();
    let mut command = match launcher.and_then(|launcher| launcher.wrapper.split_first()) {
        Some((wrapper, wrapper_args)) => {
            let mut command = Command::new(wrapper);
            command.args(wrapper_args).arg(program);
            command
        }
        None => Command::new(program),
    };
    command.args(args);
    for name in launcher.iter().flat_map(|launcher| &launcher.hidden_env) {
        command.env_remove(name);
    }
    #[cfg(unix)]
    command.process_group(0);
    command
}

/// A connector's process; its whole process group is killed if this is dropped while the
/// connector still runs.
pub(super) struct ConnectorProcess {
    child: Child,
}

impl ConnectorProcess {
    pub(super) fn new(child: Child) -> Self {
        Self { child }
    }
}

impl std::ops::Deref for ConnectorProcess {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for ConnectorProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ConnectorProcess {
    fn drop(&mut self) {
        // Only while the connector is unreaped is its group id surely still its own.
        #[cfg(target_os = "linux")]
        if let Ok(None) = self.child.try_wait()
            && let Some(pid) = self
                .child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        // Elsewhere `kill_on_drop` stops the connector itself.
    }
}

/// Files handed to one run; the directory and its files go when this is dropped.
pub(super) struct RunFiles {
    directory: tempfile::TempDir,
}

impl RunFiles {
    pub(super) fn new() -> Result<Self, ConnectorError> {
        let mut builder = tempfile::Builder::new();
        let prefix = format!("{RUN_DIR_PREFIX}{}-", std::process::id());
        builder.prefix(&prefix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        let directory = builder.tempdir().map_err(|error| {
            ConnectorError::Failed(format!("creating a private directory: {error}"))
        })?;
        Ok(Self { directory })
    }

    pub(super) fn write(
        &self,
        name: &str,
        value: &impl serde::Serialize,
    ) -> Result<PathBuf, ConnectorError> {
        use std::io::Write;
        let path = self.directory.path().join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&path)
            .map_err(|error| ConnectorError::Failed(format!("writing {name}: {error}")))?;
        let text = serde_json::to_vec(value)
            .map_err(|error| ConnectorError::Failed(format!("writing {name}: {error}")))?;
        file.write_all(&text)
            .map_err(|error| ConnectorError::Failed(format!("writing {name}: {error}")))?;
        Ok(path)
    }
}

/// The process id a run directory's name gives, if it is one of ours.
fn run_dir_owner(name: &str) -> Option<u32> {
    let (pid, rest) = name.strip_prefix(RUN_DIR_PREFIX)?.split_once('-')?;
    (!rest.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Removes the run directories (configurations with secrets) that data planes killed
/// before they could clean up left in `temp_dir`: those named after a process that is gone.
/// Returns how many were removed.
pub fn sweep_stale_run_dirs_in(temp_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(run_dir_owner) else {
            continue;
        };
        // A symbolic link is not ours to follow; a live owner's directory is in use.
        let is_directory = entry.file_type().is_ok_and(|file_type| file_type.is_dir());
        if !is_directory || process_exists(owner) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(path = %entry.path().display(), %error, "could not remove a stale connector directory");
            }
        }
    }
    removed
}

/// [`sweep_stale_run_dirs_in`] the temporary directory run directories are made in.
pub fn sweep_stale_run_dirs() -> usize {
    sweep_stale_run_dirs_in(&std::env::temp_dir())
}

fn process_exists(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Without /proc, nothing is known to be stale.
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn run_directories_are_private_and_named_after_this_process() {
        let files = RunFiles::new().unwrap();
        let name = files
            .directory
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(run_dir_owner(name), Some(std::process::id()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(files.directory.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn only_directories_of_processes_that_are_gone_are_swept() {
        let temp = tempfile::tempdir().unwrap();
        // No process has an id this large (Linux's limit is 2^22).
        let stale = temp.path().join("ferry-connector-99999999-abc123");
        let live = temp
            .path()
            .join(format!("ferry-connector-{}-abc123", std::process::id()));
        let foreign = temp.path().join("ferry-connector-abc123");
        for directory in [&stale, &live, &foreign] {
            std::fs::create_dir(directory).unwrap();
            std::fs::write(directory.join("config.json"), "{}").unwrap();
        }
        let removed = sweep_stale_run_dirs_in(temp.path());
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 1);
            assert!(!stale.exists());
        }
        assert!(live.exists() && foreign.exists());
    }
}
