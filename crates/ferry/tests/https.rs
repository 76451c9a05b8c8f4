//! The control plane over HTTPS (`--tls-cert`/`--tls-key`, rustls): data planes that trust
//! its CA sync through it and those that do not say so in one line, Airbyte's Python SDK
//! talks to it with a CA bundle, a renewed certificate is served without a restart, and the
//! HTTP edge closes stalled requests and caps open connections.
//!
//! Certificates come from a throwaway CA made with the `openssl` command.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_testkit::{
    DataplaneProcess, FerryOptions, FerryProcess, FerryUp, StoreKind, TestDatabase, TlsFiles,
    wait_for,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// The control plane's limits (crates/ferry-control/src/server.rs), with room to spare: the
/// tests assert a bound, never a precise time.
const HEADER_TIMEOUT_BOUND: Duration = Duration::from_secs(30);
const BODY_TIMEOUT_BOUND: Duration = Duration::from_secs(60);

/// A CA and the server certificates it signs, in a temporary directory.
struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    fn new() -> Self {
        let ca = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        ca.openssl(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
             -out ca.pem -days 2 -subj /CN=Ferry-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        );
        std::fs::write(
            ca.path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        ca
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `openssl` with these arguments (split at white space) in the CA's directory.
    fn openssl(&self, args: &str) {
        let output = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|error| panic!("openssl could not run: {error}"));
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A certificate for 127.0.0.1 and localhost with this CN: `<name>.pem` (leaf, then the
    /// CA: the chain a server presents), `<name>.key`, and the leaf alone in `<name>.der`.
    fn issue(&self, name: &str) -> TlsFiles {
        let (key, leaf) = (format!("{name}.key"), format!("{name}.leaf"));
        self.openssl(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {key} \
             -out {name}.csr -subj /CN={name}"
        ));
        self.openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out {leaf}"
        ));
        self.openssl(&format!("x509 -in {leaf} -outform der -out {name}.der"));
        let chain = [
            std::fs::read(self.path(&leaf)).unwrap(),
            std::fs::read(self.path("ca.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(self.path(&format!("{name}.pem")), chain).unwrap();
        TlsFiles {
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&key),
            ca: self.path("ca.pem"),
        }
    }

    fn leaf_der(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("{name}.der"))).unwrap()
    }
}

/// `ferry server` (SQLite) serving HTTPS with a fresh certificate named `ferry-a`.
async fn https_server(ca: &TestCa) -> FerryUp {
    let options = FerryOptions::new(StoreKind::Sqlite)
        .control_plane_only()
        .tls(ca.issue("ferry-a"));
    FerryUp::start(BINARY.as_ref(), options).await
}

#[tokio::test]
async fn a_data_plane_given_the_ca_syncs_over_https() {
    let ca = TestCa::new();
    let cluster = https_server(&ca).await;
    assert!(cluster.base_url().starts_with("https://127.0.0.1:"));
    let plane = cluster
        .plane(&cluster.default_region().await, "tls-plane")
        .await;
    let secret_file = ca.path("client-secret");
    std::fs::write(&secret_file, format!("{}\n", plane.client_secret)).unwrap();
    let ca_path = ca.path("ca.pem");
    let dataplane = DataplaneProcess::spawn(
        BINARY.as_ref(),
        &[
            "--control-plane-url",
            cluster.base_url(),
            "--ca-cert",
            ca_path.to_str().unwrap(),
            "--client-id",
            &plane.client_id,
            "--client-secret-file",
            secret_file.to_str().unwrap(),
        ],
        &[],
    );
    // A PostgreSQL sync, every call of the plane over HTTPS.
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);
             INSERT INTO orders SELECT i, i * 1.5 FROM generate_series(1, 500) i",
        )
        .await;
    let connection = cluster
        .connection(
            database.source_configuration(),
            database.destination_configuration("copy"),
            json!([{"name": "orders", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = cluster
        .admin
        .sync(&connection, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowsSynced"], 500, "{job}");
    assert_eq!(
        database
            .texts("SELECT count(*)::text FROM copy.orders")
            .await,
        [Some("500".to_owned())]
    );
    assert!(
        dataplane.log().contains("data plane initialized"),
        "{}",
        dataplane.log()
    );
}

#[tokio::test]
async fn a_data_plane_without_the_ca_says_the_certificate_is_not_trusted() {
    let ca = TestCa::new();
    let cluster = https_server(&ca).await;
    let plane = cluster
        .plane(&cluster.default_region().await, "untrusting")
        .await;
    // SSL_CERT_FILE replaces the system's roots, so the test does not depend on them.
    let empty_roots = ca.path("no-roots.pem");
    std::fs::write(&empty_roots, "").unwrap();
    let dataplane = plane.start(&[("SSL_CERT_FILE", empty_roots.to_str().unwrap())]);
    let line = wait_for(
        "the data plane to log why it cannot connect",
        Duration::from_secs(30),
        || async {
            dataplane
                .log()
                .lines()
                .find(|line| line.contains("certificate not trusted"))
                .map(str::to_owned)
        },
    )
    .await;
    assert!(line.contains(cluster.base_url()), "{line}");
    assert!(line.contains("--ca-cert"), "{line}");
    assert!(!dataplane.log().contains("data plane initialized"));
}

#[tokio::test]
async fn airbytes_python_sdk_works_over_https() {
    let python = ferry_testkit::python_venv(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "venv-airbyte-api-1.0.1",
        "airbyte-api==1.0.1",
        "airbyte_api",
    )
    .join("bin/python");
    let ca = TestCa::new();
    // `ferry up`: its own data plane (which the walkthrough's sync needs) trusts the
    // certificate file, whose chain holds the CA, with nothing more said.
    let files = ca.issue("ferry-up");
    let ferry = FerryProcess::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).tls(files.clone()),
    )
    .await;
    assert!(ferry.base_url.starts_with("https://"), "{}", ferry.base_url);
    let (client_id, client_secret) = ferry.admin_credentials();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/sdk_walkthrough.py");
    let base_url = ferry.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([&base_url, &client_id, &client_secret])
            .env("REQUESTS_CA_BUNDLE", &files.ca)
            .env("SSL_CERT_FILE", &files.ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK walkthrough over HTTPS failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("sdk walkthrough: ok"), "{stdout}");
}

/// The leaf certificate a new connection to `base_url` is shown.
async fn served_certificate(base_url: &str, ca: &Path) -> Vec<u8> {
    let pem = std::fs::read(ca).unwrap();
    // A client of its own: a new connection, hence a new handshake.
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .tls_info(true)
        .build()
        .unwrap();
    let response = client
        .get(format!("{base_url}/api/public/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info = response.extensions().get::<reqwest::tls::TlsInfo>();
    info.and_then(|info| info.peer_certificate())
        .expect("no peer certificate")
        .to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let ca = TestCa::new();
    let cluster = https_server(&ca).await;
    let served = cluster.process.ca_cert.clone().unwrap();
    assert_eq!(
        served_certificate(cluster.base_url(), &served).await,
        ca.leaf_der("ferry-a")
    );
    // As an operator would: the new files copied over the old ones, one after the other.
    let renewed = ca.issue("ferry-b");
    std::fs::copy(&renewed.cert, ca.path("ferry-a.pem")).unwrap();
    std::fs::copy(&renewed.key, ca.path("ferry-a.key")).unwrap();
    let expected = ca.leaf_der("ferry-b");
    wait_for(
        "new connections to see the renewed certificate",
        Duration::from_secs(30),
        || async {
            (served_certificate(cluster.base_url(), &served).await == expected).then_some(())
        },
    )
    .await;
}

/// Reads until the server closes the connection (or `bound` passes: then panics); what it
/// sent and how long that took.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {bound:?}"
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_stalled_request_head_or_handshake_is_closed_within_the_timeout() {
    let plain = FerryProcess::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let ca = TestCa::new();
    let tls = https_server(&ca).await;
    let half_head = async {
        let address = plain.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /api/public/v1/health HTTP/1.1\r\nHost: ferry\r\n")
            .await
            .unwrap();
        read_until_closed(&mut stream, HEADER_TIMEOUT_BOUND).await
    };
    let no_handshake = async {
        let address = tls.base_url().trim_start_matches("https://");
        let mut stream = TcpStream::connect(address).await.unwrap();
        read_until_closed(&mut stream, HEADER_TIMEOUT_BOUND).await
    };
    let ((head_reply, head_after), (_, handshake_after)) = tokio::join!(half_head, no_handshake);
    assert!(head_reply.is_empty(), "{head_reply}");
    // Closed by the timeout, not at once for some other reason.
    assert!(head_after >= Duration::from_secs(3), "{head_after:?}");
    assert!(
        handshake_after >= Duration::from_secs(3),
        "{handshake_after:?}"
    );
}

#[tokio::test]
async fn a_stalled_request_body_fails_within_the_timeout() {
    let plain = FerryProcess::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let address = plain.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /api/public/v1/applications/token HTTP/1.1\r\nHost: ferry\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"client_id\":",
        )
        .await
        .unwrap();
    let (reply, after) = read_until_closed(&mut stream, BODY_TIMEOUT_BOUND).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(after >= Duration::from_secs(5), "{after:?}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let ferry = FerryProcess::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_MAX_CONNECTIONS", "2"),
    )
    .await;
    let address = ferry.base_url.trim_start_matches("http://").to_owned();
    let first = TcpStream::connect(&address).await.unwrap();
    let _second = TcpStream::connect(&address).await.unwrap();
    let mut third = TcpStream::connect(&address).await.unwrap();
    third
        .write_all(
            b"GET /api/public/v1/health HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buffer)).await;
    assert!(early.is_err(), "answered past the cap: {early:?}");
    drop(first);
    let (reply, _) = read_until_closed(&mut third, HEADER_TIMEOUT_BOUND).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}
