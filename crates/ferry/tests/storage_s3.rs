//! `storage.type: s3` as the guide configures it, against a real S3 API on loopback (PyPI's
//! moto server, with IAM authentication on: a request signed with a wrong key or secret is
//! refused, as AWS would). Logs, workload output and a large state land in the three
//! buckets (read back with an S3 client), the control plane serves the log from its bucket,
//! and a wrong bucket or credential stops either plane at start with one line.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_testkit::{DataplaneProcess, FerryOptions, FerryUp, StoreKind, text, wait_for};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};
use sha2::Digest;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const LOG_BUCKET: &str = "ferry-logs";
const STATE_BUCKET: &str = "ferry-state";
const OUTPUT_BUCKET: &str = "ferry-output";
/// Over the 1 MiB past which a state goes to the state bucket.
const STATE_BYTES: usize = 1_500_000;

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/storage_source.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A moto server with IAM authentication on, an IAM user allowed `s3:*`, and the three
/// buckets, made with that user's key.
struct S3Server {
    child: Child,
    endpoint: String,
    key_id: String,
    secret: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exactly the actions the setup makes before it holds a key: moto authenticates every
/// request after them.
const SETUP: &str = r#"
import json, sys, boto3
endpoint = sys.argv[1]
def client(service, key_id="bootstrap", secret="bootstrap"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
iam = client("iam")
iam.create_user(UserName="ferry")
iam.put_user_policy(UserName="ferry", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]}))
key = iam.create_access_key(UserName="ferry")["AccessKey"]
s3 = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
for bucket in sys.argv[2:]:
    s3.create_bucket(Bucket=bucket)
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;
const UNAUTHENTICATED_SETUP_ACTIONS: &str = "3";

async fn s3_server() -> S3Server {
    let moto = std::env::var("FERRY_MOTO_SERVER").unwrap_or_else(|_| {
        panic!("FERRY_MOTO_SERVER is not set: run `. scripts/setup/moto.sh` (it installs moto's server)")
    });
    let python = std::path::Path::new(&moto).with_file_name("python");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env(
            "INITIAL_NO_AUTH_ACTION_COUNT",
            UNAUTHENTICATED_SETUP_ACTIONS,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    // Only a TCP connect: an HTTP request would count as one of the unauthenticated actions.
    wait_for("the S3 server", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(drop)
    })
    .await;
    let setup = Command::new(python)
        .args([
            "-c",
            SETUP,
            &endpoint,
            LOG_BUCKET,
            STATE_BUCKET,
            OUTPUT_BUCKET,
        ])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let key: Value = serde_json::from_slice(&setup.stdout).unwrap();
    S3Server {
        child,
        endpoint,
        key_id: text(&key["id"]),
        secret: text(&key["secret"]),
    }
}

impl S3Server {
    /// An S3 client of `bucket` with the right credentials.
    fn bucket(&self, bucket: &str) -> Arc<dyn object_store::ObjectStore> {
        Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(bucket)
                .with_access_key_id(&self.key_id)
                .with_secret_access_key(&self.secret)
                .build()
                .unwrap(),
        )
    }

    /// The control plane's storage settings, in its environment (AWS's usual variables).
    fn control_plane_env(
        &self,
        options: FerryOptions,
        log_bucket: &str,
        secret: &str,
    ) -> FerryOptions {
        options
            .env("FERRY_STORAGE_TYPE", "s3")
            .env("FERRY_STORAGE_BUCKET_LOG", log_bucket)
            .env("FERRY_STORAGE_BUCKET_STATE", STATE_BUCKET)
            .env("FERRY_STORAGE_BUCKET_WORKLOAD_OUTPUT", OUTPUT_BUCKET)
            .env("FERRY_STORAGE_S3_ENDPOINT", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
    }

    /// The guide's values.yaml `storage:` block (plus the endpoint, for a store that is not
    /// AWS), its keys read from the variables the chart would fill from its secret.
    fn dataplane_yaml(&self, log_bucket: &str) -> String {
        format!(
            "version: 1\nstorage:\n  secretName: airbyte-config-secrets\n  type: \"s3\"\n  bucket:\n    log: {log_bucket}\n    state: {STATE_BUCKET}\n    workloadOutput: {OUTPUT_BUCKET}\n  s3:\n    region: \"us-east-1\"\n    authenticationType: credentials\n    accessKeyIdSecretKey: S3_ACCESS_KEY_ID\n    secretAccessKeySecretKey: S3_SECRET_ACCESS_KEY\n    endpoint: {}\n",
            self.endpoint
        )
    }
}

async fn object(bucket: &dyn object_store::ObjectStore, key: &str) -> Option<Vec<u8>> {
    match bucket.get(&ObjectPath::from(key)).await {
        Ok(found) => Some(found.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(error) => panic!("reading {key}: {error}"),
    }
}

async fn keys(bucket: &dyn object_store::ObjectStore, prefix: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    bucket
        .list(Some(&ObjectPath::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_output_and_large_states_land_in_the_three_buckets() {
    let s3 = s3_server().await;
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        s3.control_plane_env(
            FerryOptions::new(StoreKind::Sqlite)
                .control_plane_only()
                .env("FERRY_JOB_MAX_ATTEMPTS", "1"),
            LOG_BUCKET,
            &s3.secret,
        ),
    )
    .await;
    let region = ferry.region("s3-region").await;
    let plane = ferry.plane(&region, "s3 plane").await;
    let settings = tempfile::tempdir().unwrap();
    let yaml = settings.path().join("values.yaml");
    std::fs::write(&yaml, s3.dataplane_yaml(LOG_BUCKET)).unwrap();
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
            ("S3_ACCESS_KEY_ID", &s3.key_id),
            ("S3_SECRET_ACCESS_KEY", &s3.secret),
        ],
    );
    let workspace = ferry.workspace_in(&region, "s3 workspace").await;
    let definition = workspace
        .post_source_definition(
            json!({"name": "storage source", "command": ["python3", fixture()]}),
        )
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let admin = &ferry.admin;
    let source = admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "big states", "workspaceId": workspace.id, "definitionId": definition.body["id"],
                   "configuration": {"records": 20, "state_bytes": STATE_BYTES}}),
        )
        .await;
    let destination = admin
        .create(
            "/api/public/v1/destinations",
            json!({"name": "nothing", "workspaceId": workspace.id, "configuration": {"destinationType": "dev-null"}}),
        )
        .await;
    let connection = admin
        .create(
            "/api/public/v1/connections",
            json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"],
                   "configurations": {"streams": [{"name": "ticks", "syncMode": "incremental_append"}]}}),
        )
        .await;
    let connection_id = text(&connection["connectionId"]);
    let first = admin
        .sync(&connection["connectionId"], Duration::from_secs(90))
        .await;
    let first_id = first["jobId"].as_i64().unwrap();
    assert_eq!(first["rowsSynced"], 20, "{first}");

    // The control plane holds only a reference and a digest …
    let stored = admin.stream_state(&connection_id, "ticks").await;
    assert!(stored["state"].is_null(), "{stored}");
    let reference = &stored["stateReference"];
    let key = text(&reference["key"]);
    assert!(
        reference["bytes"].as_u64().unwrap() > STATE_BYTES as u64,
        "{stored}"
    );
    // … of the object in the state bucket.
    let states = s3.bucket(STATE_BUCKET);
    let state = object(states.as_ref(), &key)
        .await
        .expect("the state object");
    assert_eq!(state.len() as u64, reference["bytes"].as_u64().unwrap());
    assert_eq!(
        format!("{:x}", sha2::Sha256::digest(&state)),
        text(&reference["sha256"])
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&state).unwrap()["stream_state"]["n"],
        20
    );

    // The log, in the control plane's log bucket (joined once the attempt ended), is what
    // the API serves.
    let logs = s3.bucket(LOG_BUCKET);
    let log_key = format!("logs/job-{first_id}/attempt-1.log");
    let log = wait_for(
        "the joined log in the bucket",
        Duration::from_secs(30),
        || async { object(logs.as_ref(), &log_key).await },
    )
    .await;
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("attempt ended: succeeded"), "{log}");
    assert!(
        log.contains("in the state bucket as state/connection-"),
        "{log}"
    );
    let served = admin
        .get(&format!("/api/public/v1/jobs/{first_id}/attempts/1/logs"))
        .await;
    assert_eq!(served.status, 200, "{:?}", served.body);
    assert_eq!(served.body.as_str().unwrap(), log);
    assert!(
        !ferry.process.data_dir.join("storage/logs").exists(),
        "the control plane kept a log on its own disk"
    );

    // The attempt's summary and the connector tasks' answers, in the output bucket.
    let outputs = s3.bucket(OUTPUT_BUCKET);
    let summary: Value = serde_json::from_slice(
        &object(
            outputs.as_ref(),
            &format!("workload-output/job-{first_id}/attempt-1.json"),
        )
        .await
        .expect("the attempt's summary"),
    )
    .unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(
        summary["streams"][0]["syncMode"], "incremental",
        "{summary}"
    );
    assert!(
        !keys(outputs.as_ref(), "workload-output/tasks")
            .await
            .is_empty(),
        "no task output"
    );

    // The next sync resumes from the state read back from the bucket (checked against its
    // digest), and the replaced object is removed.
    let second = admin
        .sync(&connection["connectionId"], Duration::from_secs(90))
        .await;
    let second_id = second["jobId"].as_i64().unwrap();
    assert_eq!(second["rowsSynced"], 20, "{second}");
    let log = admin
        .get(&format!("/api/public/v1/jobs/{second_id}/attempts/1/logs"))
        .await
        .body;
    assert!(
        text(&log).contains(&format!(
            "resumed from a state at n=20 holding {STATE_BYTES} padding bytes"
        )),
        "{log}"
    );
    let newer = admin.stream_state(&connection_id, "ticks").await;
    let newer_key = text(&newer["stateReference"]["key"]);
    assert_ne!(newer_key, key);
    assert_eq!(
        keys(states.as_ref(), "state").await,
        vec![newer_key],
        "the replaced state was removed"
    );
}

/// Runs `ferry` with these arguments until it exits (bounded); its exit status and stderr.
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

fn assert_one_line_refusal(status: std::process::ExitStatus, stderr: &str, reason: &str) {
    assert!(!status.success(), "started anyway: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].contains(reason), "'{reason}' not in: {stderr}");
}

#[tokio::test]
async fn a_wrong_bucket_or_credential_is_refused_at_start() {
    let s3 = s3_server().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let server = |log_bucket: &str, key_id: &str, secret: &str| {
        let database = format!("sqlite://{data_dir}/ferry.db");
        let env = [
            ("FERRY_STORAGE_TYPE", "s3".to_owned()),
            ("FERRY_STORAGE_BUCKET_LOG", log_bucket.to_owned()),
            ("FERRY_STORAGE_S3_ENDPOINT", s3.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", key_id.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ];
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        run_to_exit(
            &[
                "server",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir,
                "--database-url",
                &database,
            ],
            &env,
        )
    };
    // The control plane: a bucket that does not exist, a secret that does not sign, a key
    // id nobody issued.
    let (status, stderr) = server("no-such-bucket", &s3.key_id, &s3.secret);
    assert_one_line_refusal(status, &stderr, "NoSuchBucket");
    assert!(stderr.contains("no-such-bucket"), "{stderr}");
    let (status, stderr) = server(LOG_BUCKET, &s3.key_id, "not-the-secret");
    assert_one_line_refusal(status, &stderr, "SignatureDoesNotMatch");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret in the message: {stderr}"
    );
    let (status, stderr) = server(LOG_BUCKET, "AKIANOBODYISSUED", &s3.secret);
    assert_one_line_refusal(status, &stderr, "InvalidAccessKeyId");

    // The data plane, from the guide's YAML block: the same, before it dials out.
    let settings = tempfile::tempdir().unwrap();
    let dataplane = |yaml: String, secret: &str| {
        let path = settings.path().join("values.yaml");
        std::fs::write(&path, yaml).unwrap();
        run_to_exit(
            &[
                "dataplane",
                "--control-plane-url",
                "http://127.0.0.1:9",
                "--config",
                path.to_str().unwrap(),
            ],
            &[
                ("DATA_PLANE_CLIENT_ID", "id"),
                ("DATA_PLANE_CLIENT_SECRET", "secret"),
                ("S3_ACCESS_KEY_ID", &s3.key_id),
                ("S3_SECRET_ACCESS_KEY", secret),
            ],
        )
    };
    let (status, stderr) = dataplane(s3.dataplane_yaml("no-such-bucket"), &s3.secret);
    assert_one_line_refusal(status, &stderr, "NoSuchBucket");
    let (status, stderr) = dataplane(s3.dataplane_yaml(LOG_BUCKET), "not-the-secret");
    assert_one_line_refusal(status, &stderr, "SignatureDoesNotMatch");
    // A `…SecretKey` naming a variable that is not set.
    let (status, stderr) = run_to_exit(
        &[
            "dataplane",
            "--control-plane-url",
            "http://127.0.0.1:9",
            "--config",
            settings.path().join("values.yaml").to_str().unwrap(),
        ],
        &[
            ("DATA_PLANE_CLIENT_ID", "id"),
            ("DATA_PLANE_CLIENT_SECRET", "secret"),
        ],
    );
    assert_one_line_refusal(status, &stderr, "S3_ACCESS_KEY_ID");
    // Airbyte's chart's default, `type: minio`, is S3's API at MinIO's endpoint.
    let minio = format!(
        "storage:\n  type: minio\n  bucket:\n    log: no-such-bucket\n  minio:\n    endpoint: {}\n    accessKeyId: {}\n    secretAccessKey: {}\n",
        s3.endpoint, s3.key_id, s3.secret
    );
    let (status, stderr) = dataplane(minio, &s3.secret);
    assert_one_line_refusal(status, &stderr, "NoSuchBucket");
}
