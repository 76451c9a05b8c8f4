//! Real `ferry` and `ferry dataplane` processes on loopback, and Python venvs for the
//! programs tests run beside them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TestDatabase;
use crate::api::{Api, token_with};

/// Which store a control plane under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// A running `ferry up`/`ferry server` process, killed on drop.
pub struct FerryProcess {
    child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    _temp_dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
    /// Lines the process printed to stdout before it was ready.
    pub stdout_lines: Vec<String>,
    /// The CA its HTTPS certificate comes from, when it serves HTTPS.
    pub ca_cert: Option<PathBuf>,
}

/// `--tls-cert` and `--tls-key` of a control plane, and the CA that signed the certificate.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

pub struct FerryOptions {
    pub store: StoreKind,
    /// `ferry server` (control plane only) instead of `ferry up` for SQLite.
    pub control_plane_only: bool,
    pub env: Vec<(String, String)>,
    /// Reuse this data dir (for restart tests) instead of a fresh one.
    pub data_dir: Option<PathBuf>,
    /// With [`StoreKind::Postgres`]: `ferry server --database-url` this URL instead of a
    /// fresh [`TestDatabase`].
    pub database_url: Option<String>,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
}

impl FerryOptions {
    pub fn new(store: StoreKind) -> Self {
        Self {
            store,
            control_plane_only: false,
            env: Vec::new(),
            data_dir: None,
            database_url: None,
            tls: None,
        }
    }

    /// Serve HTTPS only, with this certificate; test clients trust `files.ca`.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// A control plane on the PostgreSQL store at `url` (which must exist).
    pub fn database_url(mut self, url: &str) -> Self {
        self.store = StoreKind::Postgres;
        self.database_url = Some(url.to_owned());
        self
    }

    pub fn control_plane_only(mut self) -> Self {
        self.control_plane_only = true;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

impl FerryProcess {
    /// Starts the binary at `binary` (`env!("CARGO_BIN_EXE_ferry")`) and waits until it
    /// listens.
    pub async fn start(binary: &Path, options: FerryOptions) -> Self {
        let temp_dir = match options.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| temp_dir.as_ref().unwrap().path().join("data"));
        let mut command = Command::new(binary);
        let database = match options.store {
            StoreKind::Sqlite if options.control_plane_only => {
                let url = format!("sqlite://{}", data_dir.join("ferry.db").display());
                std::fs::create_dir_all(&data_dir).unwrap();
                command.arg("server").arg("--database-url").arg(url);
                None
            }
            StoreKind::Sqlite => {
                command.arg("up");
                None
            }
            StoreKind::Postgres if options.database_url.is_some() => {
                let url = options.database_url.as_deref().unwrap_or_default();
                command.arg("server").arg("--database-url").arg(url);
                None
            }
            StoreKind::Postgres => {
                let database = TestDatabase::create().await;
                command
                    .arg("server")
                    .arg("--database-url")
                    .arg(database.url());
                Some(database)
            }
        };
        command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .env("FERRY_LOG", "info,ferry_control=debug")
            .envs(options.env.iter().map(|(key, value)| (key, value)))
            .args(options.tls.iter().flat_map(|tls| {
                [
                    "--tls-cert".as_ref(),
                    tls.cert.as_os_str(),
                    "--tls-key".as_ref(),
                    tls.key.as_os_str(),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stdout_lines = Vec::new();
        let base_url = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = receiver.recv_timeout(remaining).unwrap_or_else(|_| {
                let status = child.try_wait().ok().flatten();
                panic!("ferry did not start listening within 60 s (exit: {status:?}); stdout: {stdout_lines:?}")
            });
            if let Some(address) = line.strip_prefix("ferry control plane listening on ") {
                break address.trim().to_owned();
            }
            stdout_lines.push(line);
        };
        Self {
            child,
            base_url,
            data_dir,
            _temp_dir: temp_dir,
            _database: database,
            stdout_lines,
            ca_cert: options.tls.map(|tls| tls.ca),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `ferry up`'s local root (`<data-dir>/local`, Airbyte's `/local` mount): the one
    /// directory its local-file connectors read and write. Made if missing.
    pub fn local_root(&self) -> PathBuf {
        let root = self.data_dir.join("local");
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// The secrets bootstrap wrote to `<data-dir>/credentials.json`.
    pub fn credentials(&self) -> Value {
        let bytes = std::fs::read(self.data_dir.join("credentials.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    pub fn admin_credentials(&self) -> (String, String) {
        let credentials = self.credentials();
        (
            credentials["admin"]["clientId"]
                .as_str()
                .unwrap()
                .to_owned(),
            credentials["admin"]["clientSecret"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// A client with a fresh admin access token.
    pub async fn admin_api(&self) -> Api {
        Api::with_client(
            &self.base_url,
            Some(self.admin_token().await),
            self.client(),
        )
    }

    /// A fresh admin access token.
    pub async fn admin_token(&self) -> String {
        let (client_id, client_secret) = self.admin_credentials();
        token_with(&self.client(), &self.base_url, &client_id, &client_secret).await
    }

    /// An HTTP client for this process: one trusting only its CA when it serves HTTPS.
    pub fn client(&self) -> reqwest::Client {
        let Some(ca) = &self.ca_cert else {
            return reqwest::Client::new();
        };
        let pem = std::fs::read(ca).unwrap();
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Takes the database out so it outlives this process (restart tests).
    pub fn take_database(&mut self) -> Option<TestDatabase> {
        self._database.take()
    }
}

impl Drop for FerryProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The process id of a running `ferry` (for CPU and memory figures).
pub fn pid_of(process: &FerryProcess) -> u32 {
    process.child.id()
}

/// A `ferry dataplane` process whose log (stderr) goes to a file, killed on drop.
pub struct DataplaneProcess {
    child: Child,
    pub log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl DataplaneProcess {
    /// Starts a data plane with the credentials `POST /dataplanes` returned, passed the way
    /// the guide's Kubernetes secret does (`DATA_PLANE_CLIENT_ID`/`_SECRET`).
    pub fn start(
        binary: &Path,
        control_plane_url: &str,
        client_id: &str,
        client_secret: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut all_env = vec![
            ("DATA_PLANE_CLIENT_ID", client_id),
            ("DATA_PLANE_CLIENT_SECRET", client_secret),
        ];
        all_env.extend_from_slice(env);
        Self::spawn(
            binary,
            &["--control-plane-url", control_plane_url],
            &all_env,
        )
    }

    /// Starts `ferry dataplane` with exactly these arguments and environment additions.
    pub fn spawn(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log_path = log_dir.path().join("dataplane.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // Attempt logs go to this process's own temporary storage, never the source tree.
        let storage = log_dir.path().join("storage");
        let child = Command::new(binary)
            .arg("dataplane")
            .arg("--storage-dir")
            .arg(&storage)
            .args(args)
            .env("FERRY_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            log_path,
            _log_dir: log_dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Job ids this data plane logged as claimed.
    pub fn claimed_jobs(&self) -> Vec<i64> {
        self.log()
            .lines()
            .filter(|line| line.contains("claimed job"))
            .filter_map(|line| {
                let rest = &line[line.find("job_id=")? + "job_id=".len()..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// SIGKILL: the process dies mid-work, as a crashed machine would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id (to find the connector processes it started).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DataplaneProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Python venv under `parent` with `package` installed from PyPI (made once, reused while
/// `check_import` still works in it). Returns the venv's directory.
pub fn python_venv(parent: &Path, name: &str, package: &str, check_import: &str) -> PathBuf {
    let venv = parent.join(name);
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", &format!("import {check_import}")])
            .status()
            .is_ok_and(|status| status.success())
    };
    if python.exists() && ready() {
        return venv;
    }
    // Tests in other processes may want the same venv: one makes it, the others wait.
    let _lock = VenvLock::acquire(&parent.join(format!("{name}.lock")));
    if python.exists() && ready() {
        return venv;
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(created.success(), "python3 -m venv failed");
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", package])
        .status()
        .unwrap();
    assert!(
        installed.success(),
        "pip install {package} failed (PyPI must be reachable)"
    );
    assert!(
        ready(),
        "{package} installed but `import {check_import}` fails"
    );
    venv
}

/// A directory made while one process makes a venv; removed when dropped (a panic too).
struct VenvLock(PathBuf);

impl VenvLock {
    /// A lock older than this was left by a process that died: taken over.
    const STALE: Duration = Duration::from_secs(15 * 60);

    fn acquire(path: &Path) -> Self {
        let deadline = Instant::now() + Self::STALE + Duration::from_secs(60);
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => return Self(path.to_owned()),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(path)
                        .and_then(|metadata| metadata.modified())
                        .is_ok_and(|made| made.elapsed().is_ok_and(|age| age > Self::STALE));
                    if stale {
                        let _ = std::fs::remove_dir(path);
                    }
                }
                Err(error) => panic!("cannot lock {}: {error}", path.display()),
            }
            assert!(
                Instant::now() < deadline,
                "{} is still locked",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for VenvLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
