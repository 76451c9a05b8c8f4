//! `secretsManager`: connector secrets kept in AWS Secrets Manager (moto's server, its
//! signature checks on) or Vault's KV v2 (OpenBao's dev server), both started here on
//! loopback. The control plane stores references only, the configuration a data plane
//! fetches holds no secret, the data plane reads the secrets from the manager itself, and
//! the PostgreSQL connectors reach a server that takes only the right password (SCRAM).

#![allow(clippy::unwrap_used)]

#[path = "secrets_manager/servers.rs"]
mod servers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::{
    DataplaneProcess, FerryOptions, FerryUp, StoreKind, TestDatabase, TlsPostgres, text,
};
use serde_json::{Value, json};
use servers::{Bao, Manager, Moto};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const SYNC: Duration = Duration::from_secs(120);

/// A TLS-only PostgreSQL server with `shop.customers` (250 rows) and an empty `warehouse`.
async fn databases() -> TlsPostgres {
    let server = TlsPostgres::start().await;
    server.create_database("shop").await;
    server.create_database("warehouse").await;
    server
        .execute(
            "shop",
            "CREATE TABLE customers (id int PRIMARY KEY, name text);
             INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 250) i;",
        )
        .await;
    server
}

fn source_configuration(server: &TlsPostgres) -> Value {
    let mut source = server.connector_configuration("127.0.0.1", "shop", server.verify_full());
    source["sourceType"] = json!("postgres");
    source["schemas"] = json!(["public"]);
    source
}

fn destination_configuration(server: &TlsPostgres) -> Value {
    let mut destination =
        server.connector_configuration("127.0.0.1", "warehouse", server.verify_full());
    destination["destinationType"] = json!("postgres");
    destination["schema"] = json!("raw");
    destination
}

fn options(store: StoreKind, manager: &dyn Manager) -> FerryOptions {
    let mut options = FerryOptions::new(store)
        .control_plane_only()
        // The attempt this test takes over and fails is retried at once.
        .env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0");
    for (key, value) in manager.env() {
        options = options.env(&key, &value);
    }
    options
}

/// Everything the control plane's store holds, as text: its SQLite files (WAL included) or a
/// `pg_dump` of its PostgreSQL database.
fn store_dump(ferry: &FerryUp, database: Option<&TestDatabase>) -> String {
    match database {
        Some(database) => {
            let output = Command::new("pg_dump")
                .arg(database.url())
                .output()
                .expect("pg_dump (PostgreSQL's client tools) is needed to read the store");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        None => std::fs::read_dir(&ferry.process.data_dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("ferry.db")
            })
            .map(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned())
            .collect(),
    }
}

/// How a reference looks in the store's JSON text.
const STORED_REFERENCE: &str = r#"{"_secret":"airbyte_workspace_"#;

/// The coordinates of the references in a configuration.
fn references(configuration: &Value) -> Vec<String> {
    match configuration {
        Value::Object(fields) => match fields.get("_secret") {
            Some(coordinate) => vec![text(coordinate)],
            None => fields.values().flat_map(references).collect(),
        },
        Value::Array(items) => items.iter().flat_map(references).collect(),
        _ => Vec::new(),
    }
}

/// The one secret of `secrets` whose name is not in `others`.
fn only_new(secrets: &[String], others: &[String]) -> String {
    let new: Vec<&String> = secrets
        .iter()
        .filter(|name| !others.contains(name))
        .collect();
    assert_eq!(new.len(), 1, "{secrets:?} beside {others:?}");
    new[0].clone()
}

/// The whole life of a PostgreSQL → PostgreSQL connection with `manager`, on `store`.
/// `dataplane` starts the region's data plane given its credentials and its control
/// plane's URL.
async fn round_trip(
    manager: &dyn Manager,
    store: StoreKind,
    dataplane: impl FnOnce(&ferry_testkit::Plane, &str) -> DataplaneProcess,
) {
    let server = databases().await;
    let password = server.password().to_owned();
    let mut ferry = FerryUp::start(BINARY.as_ref(), options(store, manager)).await;
    let database = ferry.process.take_database();
    let region = ferry.region("eu").await;
    let plane = ferry.plane(&region, "eu-1").await;
    let workspace = ferry.workspace_in(&region, "eu-shop").await;
    let connection = workspace
        .connect(
            source_configuration(&server),
            destination_configuration(&server),
            json!({}),
        )
        .await;
    let connection_body = ferry
        .admin
        .get(&format!("/api/public/v1/connections/{connection}"))
        .await
        .body;
    let source_id = text(&connection_body["sourceId"]);

    // The manager holds both passwords (and the CA certificates, which the SPEC marks
    // secret too), under the workspace's coordinates.
    let secrets = manager.secrets();
    let passwords = secrets.values().filter(|value| **value == password).count();
    assert_eq!(passwords, 2, "{secrets:?}");
    for name in secrets.keys() {
        assert!(
            name.starts_with(&format!("airbyte_workspace_{}_secret_", workspace.id)),
            "{name}"
        );
    }
    // The store holds the configurations (their database names show) and no password.
    let dump = store_dump(&ferry, database.as_ref());
    assert!(dump.contains(r#""database":"warehouse""#) && dump.contains(STORED_REFERENCE));
    assert!(!dump.contains(&password), "the store holds the password");

    // The attempt's configuration, fetched as its data plane fetches it: references only.
    let job_id = ferry.admin.start_job(&json!(connection), "sync").await;
    let plane_api = plane.api().await;
    let claim = plane_api
        .post(
            "/api/v1/jobs/claim",
            json!({"wait_ms": 10_000, "only": "jobs"}),
        )
        .await;
    assert_eq!(claim.status, 200, "{}", claim.body);
    assert_eq!(claim.body["job"]["job_id"], job_id, "{}", claim.body);
    let attempt = format!(
        "/api/v1/jobs/{job_id}/attempts/{}",
        text(&claim.body["job"]["attempt_id"])
    );
    let config = plane_api.get(&format!("{attempt}/config")).await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert!(
        !config.body.to_string().contains(&password),
        "{}",
        config.body
    );
    let source_secret = text(&config.body["source_configuration"]["password"]["_secret"]);
    let destination_secret = text(&config.body["destination_configuration"]["password"]["_secret"]);
    assert_eq!(secrets[&source_secret], password);
    assert_eq!(secrets[&destination_secret], password);
    let mut destination_secrets = references(&config.body["destination_configuration"]);
    let mut all = references(&config.body["source_configuration"]);
    all.extend(destination_secrets.clone());
    all.sort();
    assert_eq!(all, secrets.keys().cloned().collect::<Vec<_>>());
    // This attempt fails; the real data plane runs the retry.
    let finished = plane_api
        .post(
            &format!("{attempt}/finish"),
            json!({"status": "failed", "failure_reason": "looked at by the test",
                   "failure_type": "transient_error", "rows_synced": 0, "bytes_synced": 0}),
        )
        .await;
    assert_eq!(finished.status, 200, "{}", finished.body);

    let mut running = dataplane(&plane, ferry.base_url());
    let job = ferry.admin.finished_job(job_id, SYNC).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", running.log());
    assert_eq!(job["rowsSynced"], 250, "{job}");
    let rows = |database: &'static str, table: &'static str| {
        let server = &server;
        async move {
            server
                .texts(
                    database,
                    &format!("SELECT ROW(id, name)::text FROM {table} ORDER BY id"),
                )
                .await
        }
    };
    assert_eq!(
        rows("warehouse", "raw.customers").await,
        rows("shop", "customers").await
    );

    // A check runs on the data plane too, with the secret read there.
    let check = ferry.admin.check_source(&json!(source_id)).await;
    assert_eq!(check.body["status"], "succeeded", "{}", check.body);

    // A mask sent back keeps the stored secret; a new password replaces it in the manager.
    let source_path = format!("/api/public/v1/sources/{source_id}");
    let shown = ferry.admin.get(&source_path).await.body;
    assert_eq!(shown["configuration"]["password"], "**********");
    let kept = ferry
        .admin
        .patch(
            &source_path,
            json!({"name": "renamed", "configuration": shown["configuration"]}),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(manager.secrets(), secrets);
    let mut wrong = shown["configuration"].clone();
    wrong["password"] = json!("not-the-password");
    let changed = ferry
        .admin
        .patch(&source_path, json!({"configuration": wrong}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let after: Vec<String> = manager.secrets().into_keys().collect();
    assert!(
        !after.contains(&source_secret),
        "the old secret stays: {after:?}"
    );
    let before: Vec<String> = secrets.keys().cloned().collect();
    let new_secret = only_new(&after, &before);
    assert_eq!(manager.secrets()[&new_secret], "not-the-password");
    assert_eq!(after.len(), before.len());
    let check = ferry.admin.check_source(&json!(source_id)).await;
    assert_eq!(check.body["status"], "failed", "{}", check.body);

    // A reference sent in a configuration (here: the destination's secret) is refused.
    let mut borrowing = source_configuration(&server);
    borrowing["password"] = json!({"_secret": destination_secret});
    workspace
        .post_source("borrower", borrowing)
        .await
        .assert_problem(400)
        .assert_names_field("configuration.password");
    let mut patched = shown["configuration"].clone();
    patched["password"] = json!({"_secret": destination_secret});
    ferry
        .admin
        .patch(&source_path, json!({"configuration": patched}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.password");

    // Deleting the source deletes its secret, and only its.
    assert_eq!(ferry.admin.delete(&source_path).await.status, 204);
    let left: Vec<String> = manager.secrets().into_keys().collect();
    destination_secrets.sort();
    assert_eq!(left, destination_secrets);
    assert!(
        !running.log().contains(&password),
        "the data plane logged the password"
    );
    running.kill();
}

#[tokio::test]
async fn aws_secrets_manager_keeps_the_passwords_and_the_data_plane_reads_them_from_values_yaml() {
    let moto = Moto::start().await;
    let directory = tempfile::tempdir().unwrap();
    // The guide's block; the keys' names say which variables hold the credentials.
    let values = directory.path().join("values.yaml");
    std::fs::write(
        &values,
        "secretsManager:\n  secretName: airbyte-config-secrets\n  type: AWS_SECRET_MANAGER\n  awsSecretManager:\n    region: us-east-1\n    authenticationType: credentials\n    accessKeyIdSecretKey: SM_KEY_ID\n    secretAccessKeySecretKey: SM_SECRET\n",
    )
    .unwrap();
    let endpoint = moto.endpoint.clone();
    let (key, secret) = (moto.access_key_id.clone(), moto.secret_access_key.clone());
    round_trip(&moto, StoreKind::Sqlite, |plane, url| {
        DataplaneProcess::spawn(
            BINARY.as_ref(),
            &[
                "--control-plane-url",
                url,
                "--config",
                &values.to_string_lossy(),
            ],
            &[
                ("DATA_PLANE_CLIENT_ID", &plane.client_id),
                ("DATA_PLANE_CLIENT_SECRET", &plane.client_secret),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint),
                ("SM_KEY_ID", &key),
                ("SM_SECRET", &secret),
            ],
        )
    })
    .await;
    let tags = moto.tags();
    assert!(!tags.is_empty());
    for (name, tags) in tags {
        assert_eq!(tags["team"], "data", "{name}");
        assert_eq!(tags["owner"], "ferry-tests", "{name}");
    }
}

#[tokio::test]
async fn vault_keeps_the_passwords_on_a_postgresql_store() {
    let bao = Bao::start().await;
    let env = bao.env();
    round_trip(&bao, StoreKind::Postgres, |plane, _| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        plane.start(&env)
    })
    .await;
}

/// Runs `ferry` with `args` and `env` (nothing else of the test's manager), which must exit
/// within 30 s; its exit code and the `ferry: error:` lines it printed.
fn refused(args: &[&str], env: &[(String, String)]) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_remove("FERRY_SECRETS_MANAGER")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env("FERRY_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines = stderr
        .lines()
        .filter(|line| line.starts_with("ferry: error:"))
        .map(str::to_owned)
        .collect();
    (status.code(), lines)
}

fn with(env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k != key).collect();
    env.push((key.to_owned(), value.to_owned()));
    env
}

#[tokio::test]
async fn a_wrong_manager_credential_is_refused_at_start_in_one_line() {
    let (moto, bao) = tokio::join!(Moto::start(), Bao::start());
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let database = format!("sqlite://{}/ferry.db", directory.path().display());
    let server = [
        "server",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--data-dir",
    ];
    let server: Vec<&str> = server
        .iter()
        .copied()
        .chain([data_dir.to_str().unwrap()])
        .collect();
    let wrong_secret = "wrong-secret-key-for-this-test";
    let (code, lines) = refused(
        &server,
        &with(
            moto.env(),
            "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY",
            wrong_secret,
        ),
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("AWS Secrets Manager refused the credentials"),
        "{lines:?}"
    );
    assert!(lines[0].contains("SignatureDoesNotMatch"), "{lines:?}");
    assert!(!lines[0].contains(wrong_secret));
    // An access key moto never issued.
    let (code, lines) = refused(
        &server,
        &with(
            moto.env(),
            "AWS_SECRET_MANAGER_ACCESS_KEY_ID",
            "AKIANOSUCHKEY0000000",
        ),
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(lines[0].contains("InvalidClientTokenId"), "{lines:?}");
    // A data plane with a wrong Vault token stops before it dials its control plane.
    let plane = [
        "dataplane",
        "--control-plane-url",
        "http://127.0.0.1:9",
        "--client-id",
        "x",
    ];
    let plane_env = with(
        with(bao.env(), "VAULT_TOKEN", "not-a-token"),
        "DATA_PLANE_CLIENT_SECRET",
        "y",
    );
    let (code, lines) = refused(&plane, &plane_env);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("Vault refused the credentials: permission denied"),
        "{lines:?}"
    );
    // Vault's certificate from a CA the data plane was not told to trust.
    let untrusting: Vec<(String, String)> = plane_env
        .iter()
        .filter(|(key, _)| key != "VAULT_CACERT")
        .cloned()
        .collect();
    let (code, lines) = refused(&plane, &untrusting);
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(lines[0].contains("cannot be reached"), "{lines:?}");
    assert!(lines[0].to_lowercase().contains("certificate"), "{lines:?}");
    // A manager that does not answer, and one Ferry does not know.
    let (code, lines) = refused(
        &plane,
        &with(plane_env.clone(), "VAULT_ADDR", "http://127.0.0.1:9"),
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines[0].contains("cannot be reached at http://127.0.0.1:9"),
        "{lines:?}"
    );
    let (code, lines) = refused(
        &server,
        &[(
            "FERRY_SECRETS_MANAGER".to_owned(),
            "GOOGLE_SECRET_MANAGER".to_owned(),
        )],
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines[0].contains("use AWS_SECRET_MANAGER or VAULT"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn existing_configurations_move_into_the_manager_on_the_first_start_with_one() {
    let (bao, server) = tokio::join!(Bao::start(), databases());
    let password = server.password().to_owned();
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let start = |env: Vec<(String, String)>| {
        let mut options = FerryOptions::new(StoreKind::Sqlite);
        options.data_dir = Some(data_dir.clone());
        options.env = env;
        FerryUp::start(BINARY.as_ref(), options)
    };
    // Before: no manager; the source's configuration is stored encrypted.
    let ferry = start(Vec::new()).await;
    let created = ferry
        .default_workspace()
        .post_source("shop", source_configuration(&server))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let source_id = created.body["sourceId"].clone();
    assert!(!store_dump(&ferry, None).contains(STORED_REFERENCE));
    drop(ferry);

    let ferry = start(bao.env()).await;
    let secrets = bao.secrets();
    assert!(
        secrets.values().any(|value| *value == password),
        "{secrets:?}"
    );
    let dump = store_dump(&ferry, None);
    assert!(dump.contains(STORED_REFERENCE) && dump.contains(r#""database":"shop""#));
    assert!(!dump.contains(&password));
    // `ferry up`'s own data plane reads the secret from Vault too.
    let check = ferry.admin.check_source(&source_id).await;
    assert_eq!(check.body["status"], "succeeded", "{}", check.body);
    drop(ferry);
    // A second start moves nothing more; a start without the manager is refused.
    let ferry = start(bao.env()).await;
    assert_eq!(bao.secrets(), secrets);
    drop(ferry);
    let (code, lines) = refused(
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert!(
        lines[0].contains("keeps its secrets in a secrets manager"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_data_plane_without_the_manager_says_so_and_fails_the_job_at_once() {
    let bao = Bao::start().await;
    let (source, destination) = (TestDatabase::create().await, TestDatabase::create().await);
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        options(StoreKind::Sqlite, &bao).env("FERRY_JOB_MAX_ATTEMPTS", "3"),
    )
    .await;
    let region = ferry.region("eu").await;
    let plane = ferry.plane(&region, "eu-1").await;
    let workspace = ferry.workspace_in(&region, "eu-shop").await;
    source
        .execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);")
        .await;
    let connection = workspace
        .connect(
            source.source_configuration(),
            destination.destination_configuration("raw"),
            json!({}),
        )
        .await;
    // Started as the guide warns against: without the control plane's secretsManager.
    let running = plane.start(&[]);
    let source_id = text(
        &ferry
            .admin
            .get(&format!("/api/public/v1/connections/{connection}"))
            .await
            .body["sourceId"],
    );
    let check = ferry.admin.check_source(&json!(source_id)).await;
    assert_eq!(check.body["status"], "failed", "{}", check.body);
    assert!(
        text(&check.body["message"]).contains("none is configured here"),
        "{}",
        check.body
    );
    let job_id = ferry.admin.start_job(&json!(connection), "sync").await;
    let job = ferry.admin.finished_job(job_id, SYNC).await;
    assert_eq!(job["status"], "failed", "{job}\n{}", running.log());
    // The deployment's to fix: no retry.
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert_eq!(job["attempts"].as_array().map(Vec::len), Some(1), "{job}");
    assert!(
        text(&job["failureReason"]).contains("secrets manager"),
        "{job}"
    );
}

/// Replaces `from` by `to` in every stored configuration of the SQLite store at `data_dir`
/// (Ferry stopped): a reference planted as one stored before references were refused.
fn plant(data_dir: &std::path::Path, from: &str, to: &str) {
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        changed = db.execute('UPDATE actors SET configuration = replace(configuration, ?, ?)', (sys.argv[2], sys.argv[3])).rowcount\n\
        db.commit()\n\
        assert changed == 1, changed\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(data_dir.join("ferry.db"))
        .args([from, to])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A reference in a stored configuration that is not to a secret Ferry wrote for its
/// workspace (another application's secret under the same prefix, another workspace's)
/// is not followed: the data plane is sent no such reference, so a check fails rather than
/// read it; and deleting the source leaves that secret where it is.
#[tokio::test]
async fn a_planted_reference_reaches_no_secret_the_source_does_not_own() {
    let (bao, server) = tokio::join!(Bao::start(), databases());
    let password = server.password().to_owned();
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let start = || {
        let mut options = FerryOptions::new(StoreKind::Sqlite);
        options.data_dir = Some(data_dir.clone());
        options.env = bao.env();
        FerryUp::start(BINARY.as_ref(), options)
    };
    let ferry = start().await;
    let created = ferry
        .default_workspace()
        .post_source("shop", source_configuration(&server))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let source_id = created.body["sourceId"].clone();
    drop(ferry);
    let mut stored = bao
        .secrets()
        .into_iter()
        .find(|(_, value)| *value == password)
        .unwrap()
        .0;
    let other_workspace = format!(
        "airbyte_workspace_{}_secret_{}_v1",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    for planted in ["prod-db-password", other_workspace.as_str()] {
        // The right password, so that a check reading it would succeed.
        bao.put(planted, &password);
        plant(&data_dir, &stored, planted);
        stored = planted.to_owned();
        let ferry = start().await;
        let check = ferry.admin.check_source(&source_id).await;
        assert_eq!(check.body["status"], "failed", "{planted}: {}", check.body);
        drop(ferry);
    }
    let ferry = start().await;
    let deleted = ferry
        .admin
        .delete(&format!("/api/public/v1/sources/{}", text(&source_id)))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let left = bao.secrets();
    assert_eq!(left.get("prod-db-password"), Some(&password), "{left:?}");
    assert_eq!(left.get(&other_workspace), Some(&password), "{left:?}");
}
