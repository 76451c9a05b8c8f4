//! A PostgreSQL server of the test's own that takes TLS connections only: a throwaway CA
//! and server certificate (for `localhost` and 127.0.0.1) made with `openssl`, a cluster
//! made with `initdb` in a temporary directory, `hostssl` lines only in `pg_hba.conf` (a
//! plain connection is refused), a random loopback port. Stopped when dropped.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection};

/// The role authenticated by its client certificate (`cert` in `pg_hba.conf`): the
/// certificate's CN.
pub const CERTIFICATE_USER: &str = "ferry_cert";

/// How long the server may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running TLS-only PostgreSQL server; its superuser is `postgres` (SCRAM password).
pub struct TlsPostgres {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl TlsPostgres {
    /// Makes the certificates and the cluster, starts the server and waits (bounded) until
    /// it accepts a verified TLS connection. As root, `initdb` and `postgres` (which refuse
    /// to run as root) run as the `postgres` user, who then owns the directory.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ferry-tls-postgres-")
            .tempdir()
            .unwrap();
        let path = dir.path();
        make_certificates(path);
        let owner = server_user();
        if let Some((uid, gid)) = owner {
            chown_all(path, uid, gid);
        }
        let password = uuid::Uuid::new_v4().simple().to_string();
        fs::write(path.join("password"), &password).unwrap();
        chown_if(owner, &path.join("password"));
        let data = path.join("data");
        let output = as_owner(Command::new(bin("initdb")), owner, path)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", path.join("password").display()))
            .output()
            .unwrap_or_else(|error| panic!("initdb ({}) could not run: {error}", bin("initdb")));
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             ssl_ca_file = '{dir}/ca.crt'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 40\nshared_buffers = 16MB\n",
            dir = path.display()
        );
        std::io::Write::write_all(&mut conf, settings.as_bytes()).unwrap();
        // TLS only: no `host` (plain or TLS) or `local` line.
        fs::write(
            data.join("pg_hba.conf"),
            format!(
                "hostssl all {CERTIFICATE_USER} 127.0.0.1/32 cert\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n"
            ),
        )
        .unwrap();
        chown_if(owner, &data.join("pg_hba.conf"));
        let log = fs::File::create(path.join("postgres.log")).unwrap();
        let child = as_owner(Command::new(bin("postgres")), owner, path)
            .arg("-D")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("postgres ({}) could not start: {error}", bin("postgres"))
            });
        let mut server = Self {
            child,
            dir,
            port,
            password,
        };
        server.wait_until_ready().await;
        server
            .execute("postgres", &format!("CREATE ROLE {CERTIFICATE_USER} LOGIN"))
            .await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("postgres exited ({status}): {}", self.log());
            }
            match self.options("postgres").connect().await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    return;
                }
                Err(error) if Instant::now() > deadline => panic!(
                    "the TLS PostgreSQL did not accept a connection within {START_TIMEOUT:?}: \
                     {error}; log: {}",
                    self.log()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's (`postgres`) password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The PEM certificate of the CA that signed the server's certificate.
    pub fn ca_certificate(&self) -> String {
        self.read("ca.crt")
    }

    /// The file of [`Self::ca_certificate`] (for `sslrootcert`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The PEM certificate of a CA that signed nothing this server has.
    pub fn other_ca_certificate(&self) -> String {
        self.read("other-ca.crt")
    }

    /// A client certificate (CN [`CERTIFICATE_USER`]) signed by the CA, and its key.
    pub fn client_certificate(&self) -> (String, String) {
        (self.read("client.crt"), self.read("client.key"))
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// Options of a verified (verify-full) connection to `database` as `postgres`.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .password(&self.password)
            .database(database)
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert(self.ca_file())
    }

    /// A `postgres://` URL of `database`, verified with the CA file (`sslmode=verify-full`,
    /// `sslrootcert`), as `--database-url` takes it.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.password,
            self.port,
            self.ca_file().display()
        )
    }

    pub async fn connect(&self, database: &str) -> PgConnection {
        self.options(database).connect().await.unwrap()
    }

    /// Creates a database named `name`.
    pub async fn create_database(&self, name: &str) {
        self.execute("postgres", &format!("CREATE DATABASE {name}"))
            .await;
    }

    /// Runs `sql` (any number of statements) in `database`.
    pub async fn execute(&self, database: &str, sql: &str) {
        let mut connection = self.connect(database).await;
        sqlx::raw_sql(sql)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// One text per row of `select` (a query of one text column) in `database`.
    pub async fn texts(&self, database: &str, select: &str) -> Vec<Option<String>> {
        let mut connection = self.connect(database).await;
        sqlx::query_scalar(select)
            .fetch_all(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{select}: {error}"))
    }

    /// What both PostgreSQL connectors take to reach `database` on this server as
    /// `postgres` at `host` (`127.0.0.1` or `localhost`, both in the certificate), with
    /// this `ssl_mode`.
    pub fn connector_configuration(&self, host: &str, database: &str, ssl_mode: Value) -> Value {
        json!({
            "host": host, "port": self.port, "database": database,
            "username": "postgres", "password": self.password,
            "ssl_mode": ssl_mode,
        })
    }

    /// `{"mode": "verify-full", "ca_certificate": <the CA>}`.
    pub fn verify_full(&self) -> Value {
        json!({"mode": "verify-full", "ca_certificate": self.ca_certificate()})
    }
}

impl Drop for TlsPostgres {
    /// A fast shutdown (SIGINT to the postmaster this value started), then SIGKILL if it
    /// has not ended within 10 s.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL program `name`: from `FERRY_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else the `PATH`.
fn bin(name: &str) -> String {
    if let Ok(dir) = std::env::var("FERRY_TEST_PG_BIN") {
        return format!("{dir}/{name}");
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let program = entry.path().join("bin").join(name);
            program.exists().then_some((version, program))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, program)) => program.display().to_string(),
        None => name.to_owned(),
    }
}

/// The uid and gid the server runs as when the tests run as root (PostgreSQL refuses
/// root): the `postgres` user's. `None` otherwise: the current user runs it.
fn server_user() -> Option<(u32, u32)> {
    if fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|line| line.starts_with("postgres:"))
        .expect("tests run as root need a `postgres` user to run PostgreSQL as");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// `command`, to run as `owner` (when given) in `dir`.
fn as_owner(mut command: Command, owner: Option<(u32, u32)>, dir: &Path) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command.current_dir(dir).env_remove("PGDATA");
    command
}

fn chown_if(owner: Option<(u32, u32)>, path: &Path) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn chown_all(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
    }
}

/// A port nobody listens on now (the server binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ca.crt`/`ca.key`, `other-ca.crt`, `server.crt`/`server.key` (localhost, 127.0.0.1) and
/// `client.crt`/`client.key` (CN [`CERTIFICATE_USER`]) in `dir`: P-256 keys, unencrypted
/// PKCS#8, valid for three days.
fn make_certificates(dir: &Path) {
    let config = "[req]\ndistinguished_name = dn\n[dn]\n";
    fs::write(dir.join("openssl.cnf"), config).unwrap();
    let new_key = "-config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (name, subject) in [
        ("ca", "/CN=Ferry test CA"),
        ("other-ca", "/CN=Ferry other CA"),
    ] {
        openssl(
            dir,
            &format!(
                "req -x509 {new_key} -days 3 -keyout {name}.key -out {name}.crt \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
            subject,
        );
    }
    let server = "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n";
    let client = "extendedKeyUsage = clientAuth\n";
    for (name, subject, extensions) in [
        ("server", "/CN=localhost", server),
        ("client", &format!("/CN={CERTIFICATE_USER}"), client),
    ] {
        let extensions = format!(
            "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n{extensions}"
        );
        fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
        openssl(
            dir,
            &format!("req -new {new_key} -keyout {name}.key -out {name}.csr"),
            subject,
        );
        openssl(
            dir,
            &format!(
                "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
                 -extfile {name}.ext -out {name}.crt"
            ),
            subject,
        );
    }
    for key in ["ca.key", "other-ca.key", "server.key", "client.key"] {
        fs::set_permissions(dir.join(key), fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Runs `openssl` with the space-separated `args` (`-subj subject` added to a `req`).
fn openssl(dir: &Path, args: &str, subject: &str) {
    let mut command = Command::new("openssl");
    command.args(args.split_whitespace()).current_dir(dir);
    if args.starts_with("req") {
        command.args(["-subj", subject]);
    }
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("openssl could not run: {error}"));
    assert!(
        output.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
