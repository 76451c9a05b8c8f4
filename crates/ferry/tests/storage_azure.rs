//! `storage.type: azure` against a real Azure Blob Storage API on loopback (npm's Azurite,
//! which checks SharedKey signatures): the control plane keeps the log in its container and
//! serves it, the data plane (configured by the guide's YAML block, with a connection string
//! from the environment) writes its workload output there, and a wrong container or key is
//! refused at start with one line.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_testkit::{DataplaneProcess, FerryOptions, FerryUp, StoreKind, wait_for};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const CONTAINER: &str = "ferry";
/// Azurite's well-known development account.
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite {
    child: Child,
    endpoint: String,
    _workspace: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// `PUT …/{container}?restype=container`, signed with the account key (SharedKey).
async fn create_container(endpoint: &str, container: &str) {
    use base64::Engine;
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace("+0000", "GMT");
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    );
    let engine = base64::engine::general_purpose::STANDARD;
    let signature = engine.encode(hmac_sha256(
        &engine.decode(KEY).unwrap(),
        to_sign.as_bytes(),
    ));
    let reply = reqwest::Client::new()
        .put(format!("{endpoint}/{container}?restype=container"))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"))
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201, "{}", reply.text().await.unwrap());
}

async fn azurite() -> Azurite {
    let program = std::env::var("FERRY_AZURITE").unwrap_or_else(|_| {
        panic!("FERRY_AZURITE is not set: run `. scripts/setup/azurite.sh` (it installs Azurite)")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let workspace = tempfile::tempdir().unwrap();
    let child = Command::new(program)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
        // Its debug files and the like go here, not into the test's directory.
        .current_dir(workspace.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("Azurite", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(drop)
    })
    .await;
    let endpoint = format!("http://127.0.0.1:{port}/{ACCOUNT}");
    create_container(&endpoint, CONTAINER).await;
    Azurite {
        child,
        endpoint,
        _workspace: workspace,
    }
}

impl Azurite {
    fn connection_string(&self, key: &str) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={};",
            self.endpoint
        )
    }

    fn container(&self) -> Arc<dyn object_store::ObjectStore> {
        Arc::new(
            object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(ACCOUNT)
                .with_access_key(KEY)
                .with_endpoint(self.endpoint.clone())
                .with_allow_http(true)
                .with_container_name(CONTAINER)
                .build()
                .unwrap(),
        )
    }
}

async fn object(container: &dyn object_store::ObjectStore, key: &str) -> Option<Vec<u8>> {
    match container.get(&ObjectPath::from(key)).await {
        Ok(found) => Some(found.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(error) => panic!("reading {key}: {error}"),
    }
}

#[tokio::test]
async fn logs_and_output_land_in_the_azure_container() {
    let azure = azurite().await;
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_STORAGE_TYPE", "azure")
            .env("FERRY_STORAGE_BUCKET_LOG", CONTAINER)
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                &azure.connection_string(KEY),
            ),
    )
    .await;
    let region = ferry.region("azure-region").await;
    let plane = ferry.plane(&region, "azure plane").await;
    let settings = tempfile::tempdir().unwrap();
    let yaml = settings.path().join("values.yaml");
    std::fs::write(
        &yaml,
        format!(
            "storage:\n  type: azure\n  bucket:\n    log: {CONTAINER}\n    state: {CONTAINER}\n    workloadOutput: {CONTAINER}/output\n  azure:\n    connectionStringSecretKey: AZURE_CONNECTION\n"
        ),
    )
    .unwrap();
    let connection_string = azure.connection_string(KEY);
    let _dataplane = DataplaneProcess::spawn(
        BINARY.as_ref(),
        &[
            "--control-plane-url",
            ferry.base_url(),
            "--config",
            yaml.to_str().unwrap(),
        ],
        &[
            ("DATA_PLANE_CLIENT_ID", &plane.client_id),
            ("DATA_PLANE_CLIENT_SECRET", &plane.client_secret),
            ("AZURE_CONNECTION", &connection_string),
        ],
    );
    let workspace = ferry.workspace_in(&region, "azure workspace").await;
    let connection = workspace
        .connect(
            json!({"sourceType": "faker", "count": 25}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job = ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(90))
        .await;
    let job_id = job["jobId"].as_i64().unwrap();

    let container = azure.container();
    let log_key = format!("logs/job-{job_id}/attempt-1.log");
    let log = wait_for(
        "the joined log in the container",
        Duration::from_secs(30),
        || async { object(container.as_ref(), &log_key).await },
    )
    .await;
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("attempt ended: succeeded"), "{log}");
    assert!(log.contains("source: faker, native (ferry"), "{log}");
    let served = ferry
        .admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/1/logs"))
        .await;
    assert_eq!(served.body.as_str().unwrap(), log);
    // `bucket/prefix`: the output under its prefix in the same container.
    let summary: Value = serde_json::from_slice(
        &object(
            container.as_ref(),
            &format!("output/workload-output/job-{job_id}/attempt-1.json"),
        )
        .await
        .expect("the attempt's summary"),
    )
    .unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["connectors"][0]["type"], "faker", "{summary}");
}

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("FERRY_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry {args:?} did not stop within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[tokio::test]
async fn a_wrong_container_or_key_is_refused_at_start() {
    let azure = azurite().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let database = format!("sqlite://{data_dir}/ferry.db");
    let wrong_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"not the account key, not at all, 64 bytes long, really, truly!!",
    );
    for (container, key, reason) in [
        ("no-such-container", KEY, "ContainerNotFound"),
        (CONTAINER, wrong_key.as_str(), "AuthorizationFailure"),
    ] {
        let connection_string = azure.connection_string(key);
        let (status, stderr) = run_to_exit(
            &[
                "server",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir,
                "--database-url",
                &database,
            ],
            &[
                ("FERRY_STORAGE_TYPE", "azure"),
                ("FERRY_STORAGE_BUCKET_LOG", container),
                ("AZURE_STORAGE_CONNECTION_STRING", &connection_string),
            ],
        );
        assert!(!status.success(), "started anyway: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "not one line: {stderr}");
        assert!(lines[0].contains(reason), "'{reason}' not in: {stderr}");
        assert!(!stderr.contains(key), "the key in the message: {stderr}");
    }
}
