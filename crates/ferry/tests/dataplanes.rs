//! Data planes as their own processes: residency (each job runs only in its workspace's
//! region), failover within a region after kill -9, fencing, cross-region refusals,
//! cancellation and the control plane's refusals — on both stores.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ferry_testkit::{
    DataplaneProcess, FerryOptions, FerryUp, Plane, StoreKind, Workspace, text, wait_for,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// Records a faker source with this configuration yields over all its streams.
fn faker_total(configuration: Value) -> i64 {
    let (users, products, purchases) = ferry_connectors::faker::FakerSource::new(&configuration)
        .unwrap()
        .record_counts();
    i64::try_from(users + products + purchases).unwrap()
}
/// Fast clocks so that the tests see leases expire and health change in seconds.
const FAST: [(&str, &str); 5] = [
    ("FERRY_JOB_LEASE_SECONDS", "3"),
    ("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0"),
    ("FERRY_DATAPLANE_DEGRADED_AFTER_SECONDS", "2"),
    ("FERRY_DATAPLANE_UNHEALTHY_AFTER_SECONDS", "4"),
    ("FERRY_JOB_MAX_ATTEMPTS", "3"),
];
const PLANE_ENV: [(&str, &str); 1] = [("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")];

/// Regions `eu` (planes eu-1, eu-2) and `us` (plane us-1), as the acceptance tests use them.
struct Regions {
    eu: String,
    us: String,
    eu_1: Plane,
    eu_2: Plane,
    us_1: Plane,
}

/// A control plane alone (no data plane of its own) on fast clocks.
async fn start(store: StoreKind) -> FerryUp {
    let mut options = FerryOptions::new(store).control_plane_only();
    for (key, value) in FAST {
        options = options.env(key, value);
    }
    FerryUp::start(BINARY.as_ref(), options).await
}

async fn eu_and_us(cluster: &FerryUp) -> Regions {
    let eu = cluster.region("eu").await;
    let us = cluster.region("us").await;
    Regions {
        eu_1: cluster.plane(&eu, "eu-1").await,
        eu_2: cluster.plane(&eu, "eu-2").await,
        us_1: cluster.plane(&us, "us-1").await,
        eu: eu.id,
        us: us.id,
    }
}

/// A workspace resident in the region named `residency`.
async fn resident_in(cluster: &FerryUp, residency: &str) -> Workspace {
    cluster
        .resident_workspace(&format!("ws-{residency}"), residency)
        .await
}

/// A faker → dev-null connection in the workspace.
async fn faker_connection(workspace: &Workspace, faker: Value) -> String {
    let mut configuration = json!({"sourceType": "faker"});
    for (key, value) in faker.as_object().unwrap() {
        configuration[key] = value.clone();
    }
    workspace
        .connect(
            configuration,
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await
}

/// Starts a sync, which must be queued; the job's id.
async fn sync(cluster: &FerryUp, connection_id: &str) -> i64 {
    let job = cluster
        .admin
        .create(
            "/api/public/v1/jobs",
            json!({"connectionId": connection_id, "jobType": "sync"}),
        )
        .await;
    assert_eq!(job["status"], "pending");
    job["jobId"].as_i64().unwrap()
}

async fn jobs_run_only_in_their_region(store: StoreKind) {
    let cluster = start(store).await;
    let Regions {
        eu,
        us,
        eu_1,
        eu_2,
        us_1,
    } = eu_and_us(&cluster).await;
    let eu_workspace = resident_in(&cluster, "eu").await;
    let us_workspace = resident_in(&cluster, "us").await;

    // 50 jobs: 40 slow ones in eu (a backlog for its two planes), 10 quick ones in us.
    let mut expected_region = HashMap::new();
    let mut expected_rows = HashMap::new();
    let mut jobs = Vec::new();
    for index in 0..50 {
        let (workspace, region, faker) = if index % 5 == 4 {
            (
                &us_workspace,
                &us,
                json!({"count": 100, "records_per_slice": 50, "seed": index}),
            )
        } else {
            (
                &eu_workspace,
                &eu,
                json!({"count": 200, "records_per_slice": 50, "slice_delay_ms": 150, "seed": index}),
            )
        };
        let total = faker_total(faker.clone());
        let connection = faker_connection(workspace, faker).await;
        let job_id = sync(&cluster, &connection).await;
        expected_region.insert(job_id, region.clone());
        expected_rows.insert(job_id, total);
        jobs.push(job_id);
    }
    let mut planes = vec![
        (eu_1.start(&PLANE_ENV), eu.clone(), eu_1.id.clone()),
        (eu_2.start(&PLANE_ENV), eu.clone(), eu_2.id.clone()),
        (us_1.start(&PLANE_ENV), us.clone(), us_1.id.clone()),
    ];

    // The us plane finishes its own jobs while eu still has a backlog, and takes none of it.
    for job_id in jobs.iter().filter(|job_id| expected_region[*job_id] == us) {
        cluster
            .admin
            .wait_for_job_status(*job_id, "succeeded", Duration::from_secs(60))
            .await;
    }
    let mut eu_waiting = 0;
    for job_id in jobs.iter().filter(|job_id| expected_region[*job_id] == eu) {
        if cluster.admin.job(*job_id).await["status"] == "pending" {
            eu_waiting += 1;
        }
    }
    assert!(
        eu_waiting > 0,
        "eu should still be backlogged when us is done"
    );

    for job_id in &jobs {
        let job = cluster
            .admin
            .wait_for_job_status(*job_id, "succeeded", Duration::from_secs(120))
            .await;
        let region = &expected_region[job_id];
        assert_eq!(&text(&job["regionId"]), region, "job {job_id}");
        let attempts = job["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "job {job_id}: {job}");
        assert_eq!(&text(&attempts[0]["regionId"]), region);
        let ran_on = text(&attempts[0]["dataplaneId"]);
        let plane_region = &planes.iter().find(|(_, _, id)| *id == ran_on).unwrap().1;
        assert_eq!(
            plane_region, region,
            "job {job_id} ran on a plane of another region"
        );
        assert_eq!(job["rowsSynced"], expected_rows[job_id], "job {job_id}");
    }

    // Each data plane's own log agrees: it claimed jobs of its region only.
    let mut claimed_anywhere = HashSet::new();
    for (process, region, _) in &mut planes {
        let claimed = process.claimed_jobs();
        assert!(!claimed.is_empty(), "a plane of {region} claimed nothing");
        for job_id in claimed {
            assert_eq!(
                &expected_region[&job_id], region,
                "job {job_id} in the log of a plane of {region}"
            );
            assert!(
                claimed_anywhere.insert(job_id),
                "job {job_id} claimed twice"
            );
        }
    }
    assert_eq!(claimed_anywhere.len(), 50);
    let listed = cluster.admin.get("/api/public/v1/dataplanes").await;
    for plane in listed.body["data"].as_array().unwrap() {
        if plane["name"] != "default" {
            assert_eq!(plane["status"], "healthy", "{plane}");
            assert!(plane["lastHeartbeatAt"].is_string());
        }
    }
}

#[tokio::test]
async fn jobs_run_only_in_their_region_on_sqlite() {
    jobs_run_only_in_their_region(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn jobs_run_only_in_their_region_on_postgres() {
    jobs_run_only_in_their_region(StoreKind::Postgres).await;
}

async fn a_killed_plane_s_job_finishes_on_its_region_peer(store: StoreKind) {
    let cluster = start(store).await;
    let Regions {
        eu_1, eu_2, us_1, ..
    } = eu_and_us(&cluster).await;
    let eu_workspace = resident_in(&cluster, "eu").await;
    let faker = json!({"count": 6000, "records_per_slice": 100, "slice_delay_ms": 50, "seed": 1});
    let total = faker_total(faker.clone());
    let connection = faker_connection(&eu_workspace, faker).await;
    let mut us_process = us_1.start(&PLANE_ENV);
    let mut eu_1_process = eu_1.start(&PLANE_ENV);
    let job_id = sync(&cluster, &connection).await;

    // Let eu-1 commit some state, then kill it without warning.
    wait_for(
        "eu-1 to commit progress",
        Duration::from_secs(30),
        || async {
            let job = cluster.admin.job(job_id).await;
            (job["rowsSynced"].as_i64().unwrap_or(0) >= 500).then_some(())
        },
    )
    .await;
    eu_1_process.kill();
    let eu_2_process = eu_2.start(&PLANE_ENV);

    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(90))
        .await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(text(&attempts[0]["dataplaneId"]), eu_1.id);
    assert!(
        text(&attempts[0]["failureReason"]).contains("heartbeat"),
        "{job}"
    );
    assert_eq!(attempts[1]["status"], "succeeded");
    assert_eq!(text(&attempts[1]["dataplaneId"]), eu_2.id);
    // Resumed from the last committed state: every row once, none lost, none twice.
    let first = attempts[0]["rowsSynced"].as_i64().unwrap();
    let second = attempts[1]["rowsSynced"].as_i64().unwrap();
    assert!(first >= 500);
    assert_eq!(first + second, total, "{job}");
    assert_eq!(job["rowsSynced"], total);
    assert_eq!(eu_2_process.claimed_jobs(), [job_id]);
    assert!(
        us_process.claimed_jobs().is_empty(),
        "the us plane touched an eu job"
    );
    assert!(us_process.is_running());
    let users = cluster.admin.stream_state(&connection, "users").await;
    assert_eq!(users["state"]["stream_state"]["loop_offset"], 6000);

    // The dead plane is reported unhealthy once its heartbeats have been missing long enough.
    wait_for(
        "eu-1 to show unhealthy",
        Duration::from_secs(20),
        || async {
            let plane = cluster
                .admin
                .get(&format!("/api/public/v1/dataplanes/{}", eu_1.id))
                .await;
            (plane.body["status"] == "unhealthy").then_some(())
        },
    )
    .await;
    let live = cluster
        .admin
        .get(&format!("/api/public/v1/dataplanes/{}", eu_2.id))
        .await;
    assert_eq!(live.body["status"], "healthy");
}

#[tokio::test]
async fn a_killed_plane_s_job_finishes_on_its_region_peer_on_sqlite() {
    a_killed_plane_s_job_finishes_on_its_region_peer(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_killed_plane_s_job_finishes_on_its_region_peer_on_postgres() {
    a_killed_plane_s_job_finishes_on_its_region_peer(StoreKind::Postgres).await;
}

async fn other_regions_and_stale_attempts_are_refused(store: StoreKind) {
    let cluster = start(store).await;
    let Regions {
        eu_1, eu_2, us_1, ..
    } = eu_and_us(&cluster).await;
    let eu_workspace = resident_in(&cluster, "eu").await;
    let connection = faker_connection(&eu_workspace, json!({"count": 10})).await;
    let job_id = sync(&cluster, &connection).await;
    let as_eu_1 = eu_1.api().await;
    let as_eu_2 = eu_2.api().await;
    let as_us = us_1.api().await;

    // us cannot claim the eu job by its id; eu-1 can.
    as_us
        .post("/api/v1/jobs/claim", json!({"job_id": job_id}))
        .await
        .assert_problem(403);
    let nothing = as_us
        .post("/api/v1/jobs/claim", json!({"wait_ms": 300}))
        .await;
    assert_eq!(nothing.body["job"], Value::Null);
    let claimed = as_eu_1
        .post("/api/v1/jobs/claim", json!({"job_id": job_id}))
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.body);
    let attempt_id = text(&claimed.body["job"]["attempt_id"]);
    let base = format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}");
    let state = json!({"states": [{"stream": "users", "state": {"stream_descriptor": {"name": "users"}, "stream_state": {"loop_offset": 5}}}], "rows_synced": 5, "bytes_synced": 50});
    let progress = json!({"rows_synced": 5, "bytes_synced": 50});
    let finish = json!({"status": "succeeded", "rows_synced": 10, "bytes_synced": 100});

    // Every endpoint refuses the us plane: the job is not of its region.
    as_us
        .get(&format!("{base}/config"))
        .await
        .assert_problem(403);
    as_us
        .post(&format!("{base}/progress"), progress.clone())
        .await
        .assert_problem(403);
    as_us
        .post(&format!("{base}/state"), state.clone())
        .await
        .assert_problem(403);
    as_us
        .post(&format!("{base}/finish"), finish.clone())
        .await
        .assert_problem(403);
    // Another plane of the region cannot act for eu-1's attempt either.
    as_eu_2
        .post(&format!("{base}/state"), state.clone())
        .await
        .assert_problem(403);

    let config = as_eu_1.get(&format!("{base}/config")).await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.body["source_type"], "faker");
    assert_eq!(
        as_eu_1
            .post(&format!("{base}/progress"), progress.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        as_eu_1
            .post(&format!("{base}/state"), state.clone())
            .await
            .status,
        200
    );

    // Without heartbeats the lease runs out: the attempt fails and its plane is fenced off.
    wait_for("the lease to expire", Duration::from_secs(15), || async {
        let job = cluster.admin.job(job_id).await;
        (job["attempts"][0]["status"] == "failed").then_some(())
    })
    .await;
    as_eu_1
        .post(&format!("{base}/state"), state.clone())
        .await
        .assert_problem(409);
    as_eu_1
        .post(&format!("{base}/finish"), finish.clone())
        .await
        .assert_problem(409);
    let job = cluster.admin.job(job_id).await;
    assert_eq!(job["status"], "incomplete");
    assert_eq!(job["rowsSynced"], 5, "only committed rows count");

    // The retry is claimable by the region's other plane and resumes from the commit.
    let retried = as_eu_2
        .post("/api/v1/jobs/claim", json!({"wait_ms": 2000}))
        .await;
    let retry_attempt = text(&retried.body["job"]["attempt_id"]);
    assert_eq!(retried.body["job"]["attempt_number"], 2);
    let config = as_eu_2
        .get(&format!(
            "/api/v1/jobs/{job_id}/attempts/{retry_attempt}/config"
        ))
        .await;
    assert_eq!(
        config.body["state"][0]["state"]["stream_state"]["loop_offset"],
        5
    );
}

#[tokio::test]
async fn other_regions_and_stale_attempts_are_refused_on_sqlite() {
    other_regions_and_stale_attempts_are_refused(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn other_regions_and_stale_attempts_are_refused_on_postgres() {
    other_regions_and_stale_attempts_are_refused(StoreKind::Postgres).await;
}

#[tokio::test]
async fn jobs_for_regions_that_cannot_run_them_are_refused_and_cancel_reaches_the_plane() {
    let cluster = start(StoreKind::Sqlite).await;
    let eu = cluster.region("eu").await;
    cluster.region("empty").await;
    let eu_1 = cluster.plane(&eu, "eu-1").await;
    let eu_workspace = resident_in(&cluster, "eu").await;
    let empty_workspace = resident_in(&cluster, "empty").await;

    // A region without a data plane: 409 at once, not a job left pending.
    let nowhere = faker_connection(&empty_workspace, json!({"count": 10})).await;
    let refused = cluster
        .admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": nowhere, "jobType": "sync"}),
        )
        .await;
    refused.assert_problem(409);
    assert!(
        text(&refused.body["detail"]).contains("no enabled data plane"),
        "{}",
        refused.body
    );

    // A disabled region: 409 too.
    let connection = faker_connection(
        &eu_workspace,
        json!({"count": 100000, "records_per_slice": 100, "slice_delay_ms": 100}),
    )
    .await;
    cluster
        .admin
        .patch(
            &format!("/api/public/v1/regions/{}", eu.id),
            json!({"enabled": false}),
        )
        .await;
    let refused = cluster
        .admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await;
    refused.assert_problem(409);
    assert!(
        text(&refused.body["detail"]).contains("disabled"),
        "{}",
        refused.body
    );
    cluster
        .admin
        .patch(
            &format!("/api/public/v1/regions/{}", eu.id),
            json!({"enabled": true}),
        )
        .await;
    cluster
        .admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "refresh"}),
        )
        .await
        .assert_problem(422);

    // Cancelling a running job reaches its data plane within a heartbeat or two.
    let plane = eu_1.start(&PLANE_ENV);
    let job_id = sync(&cluster, &connection).await;
    cluster
        .admin
        .wait_for_job_status(job_id, "running", Duration::from_secs(20))
        .await;
    let second = cluster
        .admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await;
    second.assert_problem(409);
    let cancelled = cluster
        .admin
        .delete(&format!("/api/public/v1/jobs/{job_id}"))
        .await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.body["status"], "cancelled");
    // Heartbeats come every second here; allow two, plus the plane's report.
    let job = wait_for(
        "the plane to stop the attempt",
        Duration::from_secs(3),
        || async {
            let job = cluster.admin.job(job_id).await;
            (job["attempts"][0]["status"] == "cancelled").then_some(job)
        },
    )
    .await;
    assert_eq!(job["status"], "cancelled");
    assert!(job["rowsSynced"].as_i64().unwrap() < 100000);
    assert!(
        plane
            .log()
            .contains("attempt cancelled by the control plane"),
        "{}",
        plane.log()
    );
    assert!(job["duration"].as_str().unwrap().starts_with("PT"));

    // Jobs are listed with Airbyte's filters and order.
    let listed = cluster
        .admin
        .get(&format!(
            "/api/public/v1/jobs?connectionId={connection}&orderBy=createdAt|DESC"
        ))
        .await;
    assert_eq!(listed.body["data"][0]["jobId"], job_id);
    cluster
        .admin
        .get("/api/public/v1/jobs?orderBy=sideways")
        .await
        .assert_problem(400);
    cluster
        .admin
        .get("/api/public/v1/jobs?status=exploded")
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn ferry_up_runs_a_sync_on_its_own_default_data_plane() {
    let cluster = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let default_workspace = cluster.default_workspace();
    let faker = json!({"count": 5000, "seed": 3});
    let total = faker_total(faker.clone());
    let connection = faker_connection(&default_workspace, faker).await;
    let job_id = sync(&cluster, &connection).await;
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(60))
        .await;
    assert_eq!(job["rowsSynced"], total);
    assert_eq!(job["attempts"][0]["dataplaneName"], "default");
    let planes = cluster.admin.get("/api/public/v1/dataplanes").await;
    assert_eq!(planes.body["data"][0]["status"], "healthy");
}

#[tokio::test]
async fn a_data_plane_reads_its_settings_from_a_yaml_file() {
    let cluster = start(StoreKind::Sqlite).await;
    let eu = cluster.region("eu").await;
    let plane = cluster.plane(&eu, "eu-yaml").await;
    let workspace = resident_in(&cluster, "eu").await;
    let connection = faker_connection(&workspace, json!({"count": 300})).await;
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("dataplane.yaml");
    // Airbyte's Helm name for the control plane's URL, plus a key this version ignores.
    std::fs::write(
        &config,
        format!(
            "version: 1\nairbyteUrl: {}\nclientId: {}\nclientSecret: {}\nconcurrency: 1\nheartbeatIntervalSeconds: 1\nedition: enterprise\n",
            cluster.base_url(), plane.client_id, plane.client_secret
        ),
    )
    .unwrap();
    let process = DataplaneProcess::spawn(
        BINARY.as_ref(),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let job_id = sync(&cluster, &connection).await;
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(job["attempts"][0]["dataplaneName"], "eu-yaml");
    assert_eq!(process.claimed_jobs(), [job_id]);

    // The chart's secret names work too, and a wrong secret stops the process with a reason.
    let mut refused = DataplaneProcess::spawn(
        BINARY.as_ref(),
        &["--control-plane-url", cluster.base_url()],
        &[
            ("DATAPLANE_CLIENT_ID", plane.client_id.as_str()),
            ("DATAPLANE_CLIENT_SECRET", "wrong"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while refused.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused data plane kept running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused.log().contains("cannot authenticate"),
        "{}",
        refused.log()
    );
}

#[tokio::test]
async fn cron_schedules_start_syncs_on_time() {
    let cluster = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let workspace = cluster.default_workspace();
    let connection = faker_connection(&workspace, json!({"count": 10})).await;
    let path = format!("/api/public/v1/connections/{connection}");
    // Quartz syntax, as Airbyte's: every second second.
    let scheduled = cluster
        .admin
        .patch(
            &path,
            json!({"schedule": {"scheduleType": "cron", "cronExpression": "*/2 * * * * ?"}}),
        )
        .await;
    assert_eq!(scheduled.status, 200, "{}", scheduled.body);
    assert_eq!(
        scheduled.body["schedule"]["cronExpression"],
        "*/2 * * * * ?"
    );
    let jobs = wait_for(
        "two scheduled syncs to succeed",
        Duration::from_secs(20),
        || async {
            let listed = cluster
                .admin
                .get(&format!("/api/public/v1/jobs?connectionId={connection}"))
                .await
                .body;
            let succeeded = listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|job| job["status"] == "succeeded")
                .count();
            (succeeded >= 2).then_some(listed)
        },
    )
    .await;
    assert!(
        jobs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|job| job["jobType"] == "sync")
    );

    // Back to manual: no more runs.
    cluster
        .admin
        .patch(&path, json!({"schedule": {"scheduleType": "manual"}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = |body: Value| body["data"].as_array().unwrap().len();
    let before = count(
        cluster
            .admin
            .get(&format!("/api/public/v1/jobs?connectionId={connection}"))
            .await
            .body,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = count(
        cluster
            .admin
            .get(&format!("/api/public/v1/jobs?connectionId={connection}"))
            .await
            .body,
    );
    assert_eq!(before, after, "a manual connection kept running");

    for (schedule, field) in [
        (
            json!({"scheduleType": "cron", "cronExpression": "every day at noon"}),
            "schedule.cronExpression",
        ),
        (json!({"scheduleType": "cron"}), "schedule.cronExpression"),
        (json!({"scheduleType": "hourly"}), "schedule.scheduleType"),
    ] {
        cluster
            .admin
            .patch(&path, json!({"schedule": schedule}))
            .await
            .assert_problem(400)
            .assert_names_field(field);
    }
}
