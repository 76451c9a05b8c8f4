//! Ferry's "cluster sandbox" for tests: a fresh PostgreSQL database per test, and the real
//! `ferry` binary started on a random loopback port with `wait_for_*` helpers.
//!
//! PostgreSQL is required, never optional: a test that needs it fails loudly when it is
//! not reachable (the test command starts or installs it first).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Where the test PostgreSQL server is (`FERRY_TEST_POSTGRES_URL`), as a URL of a database
/// that exists; per-test databases are created beside it.
pub fn postgres_admin_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped when the value is dropped.
pub struct TestDatabase {
    name: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = postgres_admin_url();
        let mut connection = PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is required for this test and is not reachable at {admin_url}: {error}. \
                 Run scripts/test.sh, which starts it."
            )
        });
        let name = format!("ferry_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self { name, admin_url }
    }

    pub fn url(&self) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((server, _database)) => format!("{server}/{}", self.name),
            None => panic!("FERRY_TEST_POSTGRES_URL must name a database"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

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
}

pub struct FerryOptions {
    pub store: StoreKind,
    /// `ferry server` (control plane only) instead of `ferry up` for SQLite.
    pub control_plane_only: bool,
    pub env: Vec<(String, String)>,
    /// Reuse this data dir (for restart tests) instead of a fresh one.
    pub data_dir: Option<PathBuf>,
}

impl FerryOptions {
    pub fn new(store: StoreKind) -> Self {
        Self {
            store,
            control_plane_only: false,
            env: Vec::new(),
            data_dir: None,
        }
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
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
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

    /// A fresh admin access token.
    pub async fn admin_token(&self) -> String {
        let (client_id, client_secret) = self.admin_credentials();
        token(&self.base_url, &client_id, &client_secret).await
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

/// A `ferry up` with the instance admin's client and the default workspace: where a test or a
/// benchmark of syncs starts.
pub struct FerryUp {
    pub process: FerryProcess,
    pub admin: Api,
    pub workspace: Value,
}

impl FerryUp {
    pub async fn start(binary: &Path, options: FerryOptions) -> Self {
        let process = FerryProcess::start(binary, options).await;
        let admin = Api::new(&process.base_url, Some(process.admin_token().await));
        let workspace =
            admin.get("/api/public/v1/workspaces").await.body["data"][0]["workspaceId"].clone();
        Self {
            process,
            admin,
            workspace,
        }
    }

    /// A new source and destination in the default workspace, and a connection syncing
    /// `streams` (its `configurations.streams`) between them; the connection's id.
    pub async fn connection(&self, source: Value, destination: Value, streams: Value) -> Value {
        self.admin
            .connect(
                &self.workspace,
                source,
                destination,
                serde_json::json!({"configurations": {"streams": streams}}),
            )
            .await
    }
}

/// The process id of a running `ferry` (for CPU and memory figures).
pub fn pid_of(process: &FerryProcess) -> u32 {
    process.child.id()
}

/// Exchanges client credentials for an access token through the public API.
pub async fn token(base_url: &str, client_id: &str, client_secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/api/public/v1/applications/token"))
        .json(&serde_json::json!({
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "client_credentials",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "token request failed");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A status and a JSON body (or `Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: Option<String>,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Self {
            status,
            body,
            content_type,
        }
    }

    /// Asserts an Airbyte problem body with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status, "problem body: {}", self.body);
        assert!(self.body["type"].is_string(), "problem body: {}", self.body);
        assert!(
            self.body["title"].is_string(),
            "problem body: {}",
            self.body
        );
        assert!(
            self.body["detail"].is_string(),
            "problem body: {}",
            self.body
        );
        self
    }

    /// Asserts the problem names `field` among its field errors.
    pub fn assert_names_field(&self, field: &str) -> &Self {
        let named = self.body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|error| error["field"] == field));
        assert!(named, "expected field {field} to be named in {}", self.body);
        self
    }
}

/// A JSON API client with a bearer token.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        Self {
            base_url: base_url.to_owned(),
            token,
            client: reqwest::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::from(
            self.request(reqwest::Method::DELETE, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// POSTs what must succeed (200); the reply's body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.body);
        reply.body
    }

    /// A source and a destination in `workspace` (from their `configuration`s) and a
    /// connection between them, with `connection`'s extra fields; the connection's id.
    pub async fn connect(
        &self,
        workspace: &Value,
        source: Value,
        destination: Value,
        connection: Value,
    ) -> Value {
        let source = self
            .create(
                "/api/public/v1/sources",
                serde_json::json!({"name": "source", "workspaceId": workspace, "configuration": source}),
            )
            .await;
        let destination = self
            .create(
                "/api/public/v1/destinations",
                serde_json::json!({"name": "destination", "workspaceId": workspace, "configuration": destination}),
            )
            .await;
        let mut request = serde_json::json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"]});
        for (key, value) in connection.as_object().into_iter().flatten() {
            request[key] = value.clone();
        }
        self.create("/api/public/v1/connections", request).await["connectionId"].clone()
    }

    /// Starts a job (`sync` or `reset`) of the connection; its id.
    pub async fn start_job(&self, connection: &Value, job_type: &str) -> i64 {
        let job = self
            .create(
                "/api/public/v1/jobs",
                serde_json::json!({"connectionId": connection, "jobType": job_type}),
            )
            .await;
        job["jobId"].as_i64().unwrap()
    }

    /// The job once it has ended (succeeded, failed or cancelled).
    pub async fn finished_job(&self, job_id: i64, timeout: Duration) -> Value {
        wait_for(&format!("job {job_id} to end"), timeout, || async {
            let job = self
                .get(&format!("/api/public/v1/jobs/{job_id}"))
                .await
                .body;
            matches!(
                job["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(job)
        })
        .await
    }

    /// Starts a sync of `connection` and waits for it, which must succeed; the job.
    pub async fn sync(&self, connection: &Value, timeout: Duration) -> Value {
        let job_id = self.start_job(connection, "sync").await;
        let job = self.finished_job(job_id, timeout).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        job
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Reply {
        Reply::from(self.request(method, path).json(&body).send().await.unwrap()).await
    }

    /// Sends raw bytes as the body, with the given content type.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        Reply::from(
            self.request(method, path)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
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
}

impl Drop for DataplaneProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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
