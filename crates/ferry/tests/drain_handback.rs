//! A data plane stopped the way Kubernetes stops a pod (SIGTERM) against one killed outright:
//! SIGTERM stops claiming, lets running syncs finish within `--drain-seconds`, then hands the
//! unfinished ones back with their committed state, so that another plane of the region
//! resumes them at once (bounded here at 5 s, below the 8 s lease a killed plane's job waits
//! out). Also: a plane booted before its control plane answers stays up, not ready, and
//! becomes ready when it does.

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::time::{Duration, Instant};

use deploy_support::{BINARY, Forwarder, authority, free_port, terminate};
use ferry_testkit::{
    DataplaneProcess, FerryOptions, FerryUp, Plane, StoreKind, Workspace, text, wait_for,
};
use serde_json::{Value, json};

/// The lease a killed plane's job must wait out: longer than the 5 s a handed-back job may
/// take to resume, so that the bound below cannot be met by the lease.
const LEASE_SECONDS: &str = "8";

async fn control_plane() -> FerryUp {
    control_plane_on(StoreKind::Sqlite).await
}

async fn control_plane_on(store: StoreKind) -> FerryUp {
    FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(store)
            .control_plane_only()
            .env("FERRY_JOB_LEASE_SECONDS", LEASE_SECONDS)
            .env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0")
            .env("FERRY_DATAPLANE_DEGRADED_AFTER_SECONDS", "3")
            .env("FERRY_JOB_MAX_ATTEMPTS", "3"),
    )
    .await
}

fn faker_total(configuration: &Value) -> i64 {
    let (users, products, purchases) = ferry_connectors::faker::FakerSource::new(configuration)
        .unwrap()
        .record_counts();
    i64::try_from(users + products + purchases).unwrap()
}

/// A faker → dev-null connection in `workspace`; its id.
async fn connection(workspace: &Workspace, faker: &Value) -> String {
    let mut source = json!({"sourceType": "faker"});
    for (key, value) in faker.as_object().unwrap() {
        source[key] = value.clone();
    }
    workspace
        .connect(source, json!({"destinationType": "dev-null"}), json!({}))
        .await
}

async fn start_sync(cluster: &FerryUp, connection: &str) -> i64 {
    let job = cluster
        .admin
        .create(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await;
    job["jobId"].as_i64().unwrap()
}

async fn wait_healthy(cluster: &FerryUp, plane: &Plane) {
    wait_for(
        "the plane to show healthy",
        Duration::from_secs(30),
        || async {
            let reply = cluster
                .admin
                .get(&format!("/api/public/v1/dataplanes/{}", plane.id))
                .await;
            (reply.body["status"] == "healthy").then_some(())
        },
    )
    .await;
}

async fn attempts(cluster: &FerryUp, job_id: i64) -> Vec<Value> {
    cluster.admin.job(job_id).await["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

enum Stop {
    Terminate,
    Kill,
}

/// eu-1 runs a long sync; once it committed some, it is stopped; how long until eu-2 runs the
/// job's next attempt, and the job once it succeeded.
async fn stop_mid_sync(
    store: StoreKind,
    stop: Stop,
    resume_bound: Duration,
) -> (Duration, Value, i64, String) {
    let cluster = control_plane_on(store).await;
    let eu = cluster.region("eu").await;
    let eu_1 = cluster.plane(&eu, "eu-1").await;
    let eu_2 = cluster.plane(&eu, "eu-2").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let faker = json!({"count": 6000, "records_per_slice": 100, "slice_delay_ms": 60, "seed": 3});
    let total = faker_total(&faker);
    let connection = connection(&workspace, &faker).await;
    let plane_env = [
        ("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ("FERRY_DRAIN_SECONDS", "0"),
    ];
    let mut first = eu_1.start(&plane_env);
    let job_id = start_sync(&cluster, &connection).await;
    wait_for(
        "eu-1 to commit progress",
        Duration::from_secs(30),
        || async {
            let job = cluster.admin.job(job_id).await;
            (job["rowsSynced"].as_i64().unwrap_or(0) >= 300).then_some(())
        },
    )
    .await;
    let second = eu_2.start(&plane_env);
    wait_healthy(&cluster, &eu_2).await;
    assert_eq!(attempts(&cluster, job_id).await.len(), 1);

    let stopped = Instant::now();
    match stop {
        Stop::Terminate => terminate(first.pid()),
        Stop::Kill => first.kill(),
    }
    wait_for("the job to resume on eu-2", resume_bound, || async {
        let attempts = attempts(&cluster, job_id).await;
        (attempts.len() == 2 && text(&attempts[1]["dataplaneId"]) == eu_2.id).then_some(())
    })
    .await;
    let resumed_after = stopped.elapsed();
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(90))
        .await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(text(&attempts[0]["dataplaneId"]), eu_1.id);
    assert_eq!(attempts[0]["status"], "failed", "{job}");
    assert_eq!(attempts[1]["status"], "succeeded", "{job}");
    // Resumed from the committed state: every record once over both attempts.
    let committed = attempts[0]["rowsSynced"].as_i64().unwrap();
    assert!(committed >= 300, "{job}");
    assert_eq!(
        committed + attempts[1]["rowsSynced"].as_i64().unwrap(),
        total,
        "{job}"
    );
    let users = cluster.admin.stream_state(&connection, "users").await;
    assert_eq!(users["state"]["stream_state"]["loop_offset"], 6000);
    assert_eq!(second.claimed_jobs(), [job_id]);
    wait_for("eu-1 to exit", Duration::from_secs(20), || {
        let running = first.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    (resumed_after, job.clone(), committed, first.log())
}

async fn sigterm_hands_the_sync_back(store: StoreKind) {
    let (resumed_after, job, committed, log) =
        stop_mid_sync(store, Stop::Terminate, Duration::from_secs(5)).await;
    eprintln!(
        "figure: SIGTERM -> resumed on the region's other plane in {:.2} s ({committed} rows committed before, {store:?})",
        resumed_after.as_secs_f64()
    );
    let first = &job["attempts"][0];
    assert!(
        text(&first["failureReason"]).contains("handed back"),
        "{job}"
    );
    assert!(log.contains("attempt handed back"), "{log}");
    assert!(log.contains("drained"), "{log}");
}

#[tokio::test]
async fn sigterm_hands_the_sync_back_and_a_region_peer_resumes_it_within_5_seconds() {
    sigterm_hands_the_sync_back(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn sigterm_hands_the_sync_back_on_postgres_too() {
    sigterm_hands_the_sync_back(StoreKind::Postgres).await;
}

#[tokio::test]
async fn a_killed_plane_s_sync_resumes_only_once_its_lease_lapses() {
    let (resumed_after, job, _, _) =
        stop_mid_sync(StoreKind::Sqlite, Stop::Kill, Duration::from_secs(60)).await;
    eprintln!(
        "figure: kill -9 -> resumed on the region's other plane in {:.2} s (lease {LEASE_SECONDS} s)",
        resumed_after.as_secs_f64()
    );
    let first = &job["attempts"][0];
    assert!(text(&first["failureReason"]).contains("heartbeat"), "{job}");
    assert_eq!(first["failureType"], "heartbeat_timeout", "{job}");
}

#[tokio::test]
async fn sigterm_lets_a_running_sync_finish_within_the_grace_and_claims_nothing_more() {
    let cluster = control_plane().await;
    let eu = cluster.region("eu").await;
    let eu_1 = cluster.plane(&eu, "eu-1").await;
    let eu_2 = cluster.plane(&eu, "eu-2").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let short = json!({"count": 1500, "records_per_slice": 100, "slice_delay_ms": 100, "seed": 5});
    let short_connection = connection(&workspace, &short).await;
    let later = json!({"count": 100, "seed": 6});
    let later_connection = connection(&workspace, &later).await;
    let mut first = eu_1.start(&[
        ("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ("FERRY_DRAIN_SECONDS", "60"),
    ]);
    let job_id = start_sync(&cluster, &short_connection).await;
    wait_for(
        "eu-1 to commit progress",
        Duration::from_secs(30),
        || async {
            let job = cluster.admin.job(job_id).await;
            (job["rowsSynced"].as_i64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
    terminate(first.pid());
    // Queued while eu-1 drains: it must not take it.
    let later_job = start_sync(&cluster, &later_connection).await;
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(60))
        .await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "finished where it ran: {job}");
    assert_eq!(text(&attempts[0]["dataplaneId"]), eu_1.id);
    assert_eq!(job["rowsSynced"].as_i64().unwrap(), faker_total(&short));
    wait_for("eu-1 to exit", Duration::from_secs(20), || {
        let running = first.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    assert_eq!(first.claimed_jobs(), [job_id], "{}", first.log());
    assert_eq!(cluster.admin.job(later_job).await["status"], "pending");
    let _second = eu_2.start(&[("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")]);
    cluster
        .admin
        .wait_for_job_status(later_job, "succeeded", Duration::from_secs(60))
        .await;
}

async fn probe(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test]
async fn a_plane_booted_before_its_control_plane_stays_up_unready_then_becomes_ready() {
    let cluster = control_plane().await;
    let eu = cluster.region("eu").await;
    let plane = cluster.plane(&eu, "eu-1").await;
    // The address the plane dials answers nothing yet.
    let port = free_port();
    let health = free_port();
    let health_listen = format!("127.0.0.1:{health}");
    let mut process = DataplaneProcess::start(
        BINARY.as_ref(),
        &format!("http://127.0.0.1:{port}"),
        &plane.client_id,
        &plane.client_secret,
        &[
            ("FERRY_HEALTH_LISTEN", health_listen.as_str()),
            ("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ],
    );
    wait_for(
        "the plane to retry a few times",
        Duration::from_secs(30),
        || {
            let retries = process
                .log()
                .matches("control plane not reachable yet")
                .count();
            async move { (retries >= 4).then_some(()) }
        },
    )
    .await;
    assert!(process.is_running(), "{}", process.log());
    assert_eq!(
        probe(health, "/health/liveness").await.unwrap().0,
        200,
        "alive while waiting"
    );
    let (status, reason) = probe(health, "/health/readiness").await.unwrap();
    assert_eq!(status, 503);
    assert!(reason.contains("not yet authenticated"), "{reason}");

    // The control plane becomes reachable at that address.
    let forwarder = Forwarder::start(port, authority(cluster.base_url())).await;
    wait_for("the plane to be ready", Duration::from_secs(30), || async {
        probe(health, "/health/readiness")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    wait_healthy(&cluster, &plane).await;
    // The control plane gone again (new connections refused; pooled ones idle out in 5 s):
    // unready, still alive.
    drop(forwarder);
    let (_, reason) = wait_for(
        "the plane to turn unready",
        Duration::from_secs(30),
        || async {
            probe(health, "/health/readiness")
                .await
                .filter(|(status, _)| *status == 503)
        },
    )
    .await;
    assert!(reason.contains("does not answer"), "{reason}");
    assert_eq!(probe(health, "/health/liveness").await.unwrap().0, 200);
    assert!(process.is_running());
    terminate(process.pid());
    wait_for("the plane to exit", Duration::from_secs(20), || {
        let running = process.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    assert!(process.log().contains("drained"), "{}", process.log());
}

/// The hand-back endpoint checks, as every attempt call does, that the caller's region is
/// the job's and that the caller holds the attempt; it names a bad body's field; and an
/// attempt handed back is fenced like any ended one.
#[tokio::test]
async fn only_the_plane_holding_an_attempt_may_hand_it_back() {
    let cluster = control_plane().await;
    let eu = cluster.region("eu").await;
    let us = cluster.region("us").await;
    let holder = cluster.plane(&eu, "eu-1").await;
    let peer = cluster.plane(&eu, "eu-2").await;
    let foreign = cluster.plane(&us, "us-1").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let connection = connection(&workspace, &json!({"count": 10, "seed": 1})).await;
    let job_id = start_sync(&cluster, &connection).await;
    let holder_api = holder.api().await;
    let claim = holder_api
        .create(
            "/api/v1/jobs/claim",
            json!({"wait_ms": 5000, "only": "jobs"}),
        )
        .await;
    assert_eq!(claim["job"]["job_id"], job_id, "{claim}");
    let attempt_id = text(&claim["job"]["attempt_id"]);
    let path = format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/hand-back");
    let counts = json!({"rows_synced": 0, "bytes_synced": 0});

    foreign
        .api()
        .await
        .post(&path, counts.clone())
        .await
        .assert_problem(403);
    peer.api()
        .await
        .post(&path, counts.clone())
        .await
        .assert_problem(403);
    holder_api
        .post(&path, json!({"rows_synced": "many", "bytes_synced": 0}))
        .await
        .assert_problem(400)
        .assert_names_field("rows_synced");
    let other_attempt = format!(
        "/api/v1/jobs/{job_id}/attempts/{}/hand-back",
        uuid::Uuid::new_v4()
    );
    let unknown = holder_api.post(&other_attempt, counts.clone()).await;
    assert!(matches!(unknown.status, 403 | 404), "{}", unknown.body);

    let handed = holder_api.post(&path, counts.clone()).await;
    assert_eq!(handed.status, 200, "{}", handed.body);
    assert_eq!(handed.body["job_status"], "incomplete");
    // Claimable at once, by a peer of the region, and not one of the job's attempts lost.
    let again = peer
        .api()
        .await
        .create(
            "/api/v1/jobs/claim",
            json!({"wait_ms": 5000, "only": "jobs"}),
        )
        .await;
    assert_eq!(again["job"]["job_id"], job_id, "{again}");
    assert_eq!(again["job"]["attempt_number"], 2);
    // The handed-back attempt is over: a second hand-back, a state commit, a finish, fenced.
    holder_api
        .post(&path, counts.clone())
        .await
        .assert_problem(409);
    holder_api
        .post(
            &format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/progress"),
            counts,
        )
        .await
        .assert_problem(409);
    let job = cluster.admin.job(job_id).await;
    assert_eq!(job["attempts"][0]["status"], "failed", "{job}");
    assert_eq!(
        job["attempts"][0]["failureType"], "transient_error",
        "{job}"
    );
}

/// Claims the region's next job as `plane` and hands it back at once; the hand-back's answer.
async fn claim_and_hand_back(plane: &Plane, job_id: i64) -> ferry_testkit::Reply {
    let api = plane.api().await;
    let claim = api
        .create(
            "/api/v1/jobs/claim",
            json!({"wait_ms": 5000, "only": "jobs"}),
        )
        .await;
    assert_eq!(claim["job"]["job_id"], job_id, "{claim}");
    let attempt_id = text(&claim["job"]["attempt_id"]);
    api.post(
        &format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/hand-back"),
        json!({"rows_synced": 0, "bytes_synced": 0}),
    )
    .await
}

/// A job cancelled while its draining plane stops the attempt: the hand-back that follows
/// ends the attempt cancelled, rather than being refused and leaving it "running" for good
/// (a cancelled job's lease is never swept).
#[tokio::test]
async fn a_hand_back_after_a_cancel_ends_the_attempt_cancelled() {
    hand_back_after_a_cancel(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_hand_back_after_a_cancel_ends_the_attempt_cancelled_on_postgres_too() {
    hand_back_after_a_cancel(StoreKind::Postgres).await;
}

async fn hand_back_after_a_cancel(store: StoreKind) {
    let cluster = control_plane_on(store).await;
    let eu = cluster.region("eu").await;
    let holder = cluster.plane(&eu, "eu-1").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let connection = connection(&workspace, &json!({"count": 10, "seed": 1})).await;
    let job_id = start_sync(&cluster, &connection).await;
    let api = holder.api().await;
    let claim = api
        .create(
            "/api/v1/jobs/claim",
            json!({"wait_ms": 5000, "only": "jobs"}),
        )
        .await;
    let attempt_id = text(&claim["job"]["attempt_id"]);
    let cancelled = cluster
        .admin
        .delete(&format!("/api/public/v1/jobs/{job_id}"))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let path = format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/hand-back");
    let handed = api
        .post(&path, json!({"rows_synced": 4, "bytes_synced": 40}))
        .await;
    assert_eq!(handed.status, 200, "{}", handed.body);
    assert_eq!(handed.body["job_status"], "cancelled", "{}", handed.body);
    let job = cluster.admin.job(job_id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["attempts"][0]["status"], "cancelled", "{job}");
    // Once ended, fenced like any ended attempt, and the answer says so.
    let again = api
        .post(&path, json!({"rows_synced": 4, "bytes_synced": 40}))
        .await;
    again.assert_problem(409);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("no longer the running attempt"),
        "{}",
        again.body
    );
}

/// A plane stopped again and again while it runs one job (a liveness probe failing under
/// the sync, a crash-looping pod) hands it back each time: a few hand-backs are free, then
/// they count as the attempts they are, and the job fails instead of circling for ever.
#[tokio::test]
async fn hand_backs_cannot_keep_a_job_circling_for_ever() {
    hand_backs_end(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn hand_backs_cannot_keep_a_job_circling_for_ever_on_postgres_too() {
    hand_backs_end(StoreKind::Postgres).await;
}

async fn hand_backs_end(store: StoreKind) {
    let cluster = control_plane_on(store).await;
    let eu = cluster.region("eu").await;
    let plane = cluster.plane(&eu, "eu-1").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let connection = connection(&workspace, &json!({"count": 10, "seed": 1})).await;
    let job_id = start_sync(&cluster, &connection).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let handed = claim_and_hand_back(&plane, job_id).await;
        assert_eq!(handed.status, 200, "{}", handed.body);
        let status = text(&handed.body["job_status"]);
        statuses.push(status.clone());
        if status != "incomplete" {
            break;
        }
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("failed"),
        "{statuses:?}"
    );
    // The free hand-backs, then the job's 3 attempts.
    assert!(statuses.len() <= 3 + 5, "{statuses:?}");
    let job = cluster.admin.job(job_id).await;
    assert_eq!(job["status"], "failed", "{job}");
    let failure = job["attempts"][statuses.len() - 1]["failureReason"].to_string();
    assert!(failure.contains("handed back"), "{job}");
}
