//! A data plane anywhere — here with its own local storage and no bucket shared with the
//! control plane — streams each attempt's log to the control plane, which keeps it in its
//! own log bucket: `GET /jobs/{id}/attempts/{n}/logs` shows it while the attempt runs and
//! after it ended, secrets masked, saying what ran. The attempt's summary and the connector
//! tasks' answers land in the data plane's own `workloadOutput` storage.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, Workspace, text, wait_for};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const SECRET: &str = "pw-Very-Secret-42";
/// A secret only the source's SPEC names as one (`sesame`).
const SESAME: &str = "open-Sesame-1001";

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/storage_source.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A connection from the storage source waiting for `gate`; its id.
async fn gated_connection(ferry: &FerryUp, workspace: &Workspace, gate: &Path) -> Value {
    storage_source_connection(
        ferry,
        workspace,
        json!({"gate": gate.display().to_string()}),
    )
    .await
}

/// A connection from the storage source (20 records, secrets set, `extra` configuration
/// added) into dev-null; its id.
async fn storage_source_connection(ferry: &FerryUp, workspace: &Workspace, extra: Value) -> Value {
    let mut configuration = json!({"password": SECRET, "sesame": SESAME, "records": 20});
    for (key, value) in extra.as_object().unwrap() {
        configuration[key] = value.clone();
    }
    let definition = workspace
        .post_source_definition(
            json!({"name": "storage source", "command": ["python3", fixture()]}),
        )
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let source = ferry
        .admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "gated", "workspaceId": workspace.id, "definitionId": definition.body["id"],
                   "configuration": configuration}),
        )
        .await;
    let destination = ferry
        .admin
        .create(
            "/api/public/v1/destinations",
            json!({"name": "nothing", "workspaceId": workspace.id, "configuration": {"destinationType": "dev-null"}}),
        )
        .await;
    let connection = ferry
        .admin
        .create(
            "/api/public/v1/connections",
            json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"],
                   "configurations": {"streams": [{"name": "ticks", "syncMode": "full_refresh_overwrite"}]}}),
        )
        .await;
    connection["connectionId"].clone()
}

async fn attempt_log(ferry: &FerryUp, job_id: i64) -> (u16, String) {
    let reply = ferry
        .admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/1/logs"))
        .await;
    (
        reply.status,
        reply.body.as_str().unwrap_or_default().to_owned(),
    )
}

/// The log, once it holds `needle`.
async fn log_holding(ferry: &FerryUp, job_id: i64, needle: &str) -> String {
    wait_for(
        &format!("the attempt's log to show '{needle}'"),
        Duration::from_secs(60),
        || async {
            let (status, text) = attempt_log(ferry, job_id).await;
            (status == 200 && text.contains(needle)).then_some(text)
        },
    )
    .await
}

fn own_storage(log_path: &Path) -> PathBuf {
    log_path.parent().unwrap().join("storage")
}

#[tokio::test]
async fn a_remote_planes_log_is_served_while_its_attempt_runs_and_after() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await;
    let region = ferry.region("far-away").await;
    let plane = ferry.plane(&region, "far plane").await;
    let dataplane = plane.start(&[]);
    let workspace = ferry.workspace_in(&region, "far").await;
    let gates = tempfile::tempdir().unwrap();
    let gate = gates.path().join("gate");
    let connection = gated_connection(&ferry, &workspace, &gate).await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;

    // While the attempt runs (the source waits for the gate): its log so far.
    let running = log_holding(&ferry, job_id, "waiting for the gate").await;
    assert_eq!(ferry.admin.job(job_id).await["status"], "running");
    assert!(running.contains("attempt 1 of job"), "{running}");
    assert!(
        running.contains("source: storage source") || running.contains("custom program"),
        "the connectors that run: {running}"
    );
    assert!(
        running.contains("stream ticks: full_refresh / overwrite"),
        "{running}"
    );
    assert!(!running.contains("attempt ended"), "{running}");

    std::fs::write(&gate, b"open").unwrap();
    let job = ferry
        .admin
        .finished_job(job_id, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let ended = log_holding(&ferry, job_id, "attempt ended: succeeded").await;
    // What ran, how much, and what was checkpointed; the earlier lines kept, once each.
    for needle in [
        "storage source done",
        "checkpoint committed: state of ticks",
        "stream ticks: 20 rows",
        "20 rows and",
    ] {
        assert!(ended.contains(needle), "'{needle}' missing: {ended}");
    }
    assert!(ended.starts_with(&running), "the log grew by appending");
    assert_eq!(ended.matches("waiting for the gate").count(), 1, "{ended}");
    // The source printed its secrets in a LOG message and on stderr: masked in both, the
    // one only its SPEC marks as one too.
    assert!(!ended.contains(SECRET), "a secret in the log: {ended}");
    assert!(!ended.contains(SESAME), "a SPEC secret in the log: {ended}");
    assert!(ended.matches("**********").count() >= 3, "{ended}");
    // Nor are they in the data plane's own log: the connectors' lines go to the attempt's.
    // A check's connector output goes to the data plane's own log, masked the same way.
    let source_id = ferry
        .admin
        .get(&format!("/api/public/v1/connections/{}", text(&connection)))
        .await
        .body["sourceId"]
        .clone();
    let check = ferry.admin.check_source(&source_id).await;
    assert_eq!(check.body["status"], "succeeded", "{}", check.body);
    let process_log = wait_for("the check's lines", Duration::from_secs(10), || async {
        let log = dataplane.log();
        log.contains("checking with password").then_some(log)
    })
    .await;
    assert!(process_log.contains("claimed job"), "{process_log}");
    assert!(
        !process_log.contains(SECRET) && !process_log.contains(SESAME),
        "a secret in the data plane's log: {process_log}"
    );

    // The control plane keeps the log in its own bucket (joined into one object once the
    // attempt ended); the data plane, which shares nothing with it, kept none.
    let kept = ferry
        .process
        .data_dir
        .join(format!("storage/logs/job-{job_id}/attempt-1.log"));
    wait_for("the joined log", Duration::from_secs(20), || async {
        kept.exists().then_some(())
    })
    .await;
    assert_eq!(attempt_log(&ferry, job_id).await.1, ended);
    let storage = own_storage(&dataplane.log_path);
    assert!(!storage.join("logs").exists(), "the data plane kept a log");

    // Its workload output, in its own storage: the attempt's summary and the tasks' answers.
    let summary: Value = serde_json::from_slice(
        &std::fs::read(storage.join(format!("workload-output/job-{job_id}/attempt-1.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["rowsSynced"], 20, "{summary}");
    assert_eq!(summary["streams"][0]["name"], "ticks", "{summary}");
    assert_eq!(summary["streams"][0]["destinationSyncMode"], "overwrite");
    assert_eq!(summary["streamCounts"][0]["recordsCommitted"], 20);
    assert!(summary["durationMs"].as_u64().is_some(), "{summary}");
    let tasks: Vec<Value> = std::fs::read_dir(storage.join("workload-output/tasks"))
        .unwrap()
        .map(|entry| {
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    assert!(
        tasks
            .iter()
            .any(|task| task["kind"] == "spec" && task["result"].is_object()),
        "the custom source's SPEC task: {tasks:?}"
    );
}

#[tokio::test]
async fn the_log_endpoint_takes_only_the_holders_parts() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await;
    let region = ferry.region("far-away").await;
    let plane = ferry.plane(&region, "far plane").await;
    let _dataplane = plane.start(&[]);
    let elsewhere = ferry.region("elsewhere").await;
    let stranger = ferry.plane(&elsewhere, "stranger").await;
    let workspace = ferry.workspace_in(&region, "far").await;
    let gates = tempfile::tempdir().unwrap();
    let gate = gates.path().join("gate");
    let connection = gated_connection(&ferry, &workspace, &gate).await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    let before = log_holding(&ferry, job_id, "waiting for the gate").await;
    let attempt_id = text(&ferry.admin.job(job_id).await["attempts"][0]["attemptId"]);
    let path = |query: &str| format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/logs{query}");
    let post = |api: ferry_testkit::Api, path: String, body: &'static [u8]| async move {
        api.send_raw(reqwest::Method::POST, &path, "text/plain", body.to_vec())
            .await
    };

    // Another region's plane may not write this attempt's log.
    let refused = post(stranger.api().await, path("?offset=0"), b"forged line\n").await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    // The holder's bad offsets are refused naming the field.
    let holder = plane.api().await;
    post(holder.clone(), path(""), b"x\n")
        .await
        .assert_problem(400)
        .assert_names_field("offset");
    post(holder.clone(), path("?offset=-3"), b"x\n")
        .await
        .assert_problem(400)
        .assert_names_field("offset");
    // Nor may it make the log longer than any log is kept.
    post(holder.clone(), path("?offset=18446744073709551615"), b"x\n")
        .await
        .assert_problem(400)
        .assert_names_field("offset");
    // A part resent from offset 0 holds nothing new: the log is unchanged.
    let resent = post(holder.clone(), path("?offset=0"), b"forged line\n").await;
    assert_eq!(resent.status, 200, "{:?}", resent.body);
    assert!(
        resent.body["received"].as_u64().unwrap() >= before.len() as u64,
        "{:?}",
        resent.body
    );

    std::fs::write(&gate, b"open").unwrap();
    let job = ferry
        .admin
        .finished_job(job_id, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let ended = log_holding(&ferry, job_id, "attempt ended: succeeded").await;
    assert!(!ended.contains("forged line"), "{ended}");
    assert!(ended.starts_with(&before), "{ended}");
}

/// A TCP proxy between a data plane and its control plane that can be cut (every open
/// connection dropped, new ones refused) and restored: a network outage.
struct Outage {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Outage {
    async fn between(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let accepting = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cuts = cuts.clone();
                // Only a cut after this connection opened ends it.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { port, open, cut }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, up: bool) {
        self.open.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}

fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| {
            line.split("still waiting, tick ")
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test]
async fn lines_logged_while_the_control_plane_is_unreachable_arrive_after() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await;
    let region = ferry.region("far-away").await;
    let plane = ferry.plane(&region, "far plane").await;
    let target: std::net::SocketAddr = ferry
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let outage = Outage::between(target).await;
    let dataplane = ferry_testkit::DataplaneProcess::start(
        BINARY.as_ref(),
        &outage.url(),
        &plane.client_id,
        &plane.client_secret,
        &[("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")],
    );
    let workspace = ferry.workspace_in(&region, "far").await;
    let gates = tempfile::tempdir().unwrap();
    let gate = gates.path().join("gate");
    let connection = gated_connection(&ferry, &workspace, &gate).await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    let before = log_holding(&ferry, job_id, "still waiting, tick 2").await;

    // The data plane cannot reach its control plane for a while; its source goes on logging.
    outage.set(false);
    wait_for(
        "the data plane to notice",
        Duration::from_secs(30),
        || async {
            dataplane
                .log()
                .contains("could not send the attempt's log")
                .then_some(())
        },
    )
    .await;
    let cut_at = ticks(&attempt_log(&ferry, job_id).await.1)
        .last()
        .copied()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ticks(&attempt_log(&ferry, job_id).await.1)
            .last()
            .copied()
            .unwrap_or(0),
        cut_at,
        "lines arrived through a cut network"
    );
    outage.set(true);
    // Back: what was logged meanwhile arrives, each line once, in order.
    let resumed = wait_for(
        "the lines logged meanwhile",
        Duration::from_secs(30),
        || async {
            let log = attempt_log(&ferry, job_id).await.1;
            (ticks(&log).last().copied().unwrap_or(0) >= cut_at + 8).then_some(log)
        },
    )
    .await;
    assert!(resumed.starts_with(&before), "{resumed}");
    std::fs::write(&gate, b"open").unwrap();
    let job = ferry
        .admin
        .finished_job(job_id, Duration::from_secs(60))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let ended = log_holding(&ferry, job_id, "attempt ended: succeeded").await;
    let seen = ticks(&ended);
    let expected: Vec<u64> = (1..=*seen.last().unwrap()).collect();
    assert_eq!(seen, expected, "ticks lost or repeated: {ended}");
    assert!(ended.starts_with(&resumed), "{ended}");
}

#[tokio::test]
async fn a_failed_attempts_log_and_summary_name_the_failure_and_its_origin() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await;
    let region = ferry.region("far-away").await;
    let plane = ferry.plane(&region, "far plane").await;
    let dataplane = plane.start(&[]);
    let workspace = ferry.workspace_in(&region, "far").await;
    let connection = storage_source_connection(&ferry, &workspace, json!({"fail": true})).await;
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(60))
        .await;
    let job_id = job["jobId"].as_i64().unwrap();
    let log = log_holding(&ferry, job_id, "attempt ended: failed").await;
    assert!(
        log.contains("attempt ended: failed (config_error from source: "),
        "{log}"
    );
    assert!(log.contains("the storage source was told to fail"), "{log}");
    let summary: Value = serde_json::from_slice(
        &std::fs::read(
            own_storage(&dataplane.log_path)
                .join(format!("workload-output/job-{job_id}/attempt-1.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["status"], "failed", "{summary}");
    assert_eq!(summary["failure"]["origin"], "source", "{summary}");
    assert_eq!(summary["failure"]["type"], "config_error", "{summary}");
}
