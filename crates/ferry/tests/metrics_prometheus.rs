//! `/metrics` of both planes, read by the Prometheus project's own parser: the control
//! plane's (on its API port and on `--metrics-listen`) and a data plane's (on
//! `--health-listen`), before and after a job runs — queue depth and age while it waits,
//! jobs by status and region, claim latency, rows and bytes moved, heartbeat age, token and
//! HTTP request counts once it ran.

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::collections::BTreeMap;
use std::time::Duration;

use deploy_support::{BINARY, free_port, parse_metrics, sample};
use ferry_testkit::{FerryOptions, FerryUp, StoreKind, wait_for};
use serde_json::json;

async fn scrape(url: &str) -> BTreeMap<String, f64> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_metrics(&response.text().await.unwrap())
}

#[tokio::test]
async fn both_planes_metrics_parse_and_move_when_a_job_runs() {
    metrics_move_when_a_job_runs(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn the_store_figures_read_the_same_on_postgres() {
    metrics_move_when_a_job_runs(StoreKind::Postgres).await;
}

async fn metrics_move_when_a_job_runs(store: StoreKind) {
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let cluster = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(store)
            .control_plane_only()
            .env("FERRY_METRICS_LISTEN", &metrics_listen),
    )
    .await;
    let control_metrics = format!("http://{metrics_listen}/metrics");
    let eu = cluster.region("eu").await;
    let plane = cluster.plane(&eu, "eu-1").await;
    let workspace = cluster.workspace_in(&eu, "ws-eu").await;
    let faker = json!({"sourceType": "faker", "count": 300, "records_per_slice": 100, "seed": 2});
    let connection = workspace
        .connect(faker, json!({"destinationType": "dev-null"}), json!({}))
        .await;
    let job = cluster
        .admin
        .create(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await;
    let job_id = job["jobId"].as_i64().unwrap();

    // Queued, no plane running: the lane shows it, and how long it has waited.
    let queued = wait_for(
        "the queued job's age to show",
        Duration::from_secs(10),
        || async {
            let samples = scrape(&control_metrics).await;
            (sample(&samples, r#"ferry_queue_oldest_age_seconds{region="eu"}"#) > 0.0)
                .then_some(samples)
        },
    )
    .await;
    assert_eq!(sample(&queued, r#"ferry_queue_depth{region="eu"}"#), 1.0);
    assert_eq!(
        sample(&queued, r#"ferry_jobs{region="eu",status="pending"}"#),
        1.0
    );
    assert_eq!(
        sample(&queued, r#"ferry_attempts_running{region="eu"}"#),
        0.0
    );
    assert_eq!(
        sample(&queued, "ferry_job_claim_latency_seconds_count{}"),
        0.0
    );
    assert_eq!(sample(&queued, "ferry_rows_moved_total{}"), 0.0);

    let health = free_port();
    let health_listen = format!("127.0.0.1:{health}");
    let _process = plane.start(&[
        ("FERRY_HEALTH_LISTEN", health_listen.as_str()),
        ("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
    ]);
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(60))
        .await;
    let rows = job["rowsSynced"].as_f64().unwrap();
    let bytes = job["bytesSynced"].as_f64().unwrap();
    assert!(rows > 0.0 && bytes > 0.0, "{job}");

    let after = scrape(&control_metrics).await;
    assert_eq!(
        sample(&after, r#"ferry_jobs{region="eu",status="succeeded"}"#),
        1.0
    );
    assert_eq!(
        sample(&after, r#"ferry_jobs{region="eu",status="pending"}"#),
        0.0
    );
    assert_eq!(sample(&after, r#"ferry_queue_depth{region="eu"}"#), 0.0);
    assert_eq!(
        sample(&after, "ferry_job_claim_latency_seconds_count{}"),
        1.0
    );
    assert!(sample(&after, "ferry_job_claim_latency_seconds_sum{}") > 0.0);
    assert_eq!(sample(&after, "ferry_rows_moved_total{}"), rows);
    assert_eq!(sample(&after, "ferry_bytes_moved_total{}"), bytes);
    assert_eq!(
        sample(&after, r#"ferry_attempts_ended_total{status="succeeded"}"#),
        1.0
    );
    assert!(
        sample(
            &after,
            r#"ferry_token_requests_total{kind="dataplane",status="200"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            r#"ferry_token_requests_total{kind="application",status="200"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            r#"ferry_token_request_duration_seconds_count{kind="dataplane"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            r#"ferry_http_requests_total{method="POST",route="/api/v1/jobs/claim",status="200"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            r#"ferry_http_request_duration_seconds_count{method="POST",route="/api/v1/jobs/{jobId}/attempts/{attemptId}/finish"}"#
        ) >= 1.0,
        "routes by their template, not their ids"
    );
    let heartbeat_key = format!(
        r#"ferry_dataplane_heartbeat_age_seconds{{dataplane="eu-1",dataplane_id="{}",region="eu"}}"#,
        plane.id
    );
    let age = after.get(&heartbeat_key).copied();
    assert!(
        age.is_some_and(|age| (0.0..30.0).contains(&age)),
        "{heartbeat_key}: {age:?}"
    );
    // The same picture on the API port.
    let on_api = scrape(&format!("{}/metrics", cluster.base_url())).await;
    assert_eq!(
        sample(&on_api, r#"ferry_jobs{region="eu",status="succeeded"}"#),
        1.0
    );
    // The metrics listener serves metrics alone.
    let api_on_metrics_port = reqwest::get(format!("http://{metrics_listen}/api/public/v1/health"))
        .await
        .unwrap();
    assert_eq!(api_on_metrics_port.status(), 404);

    let plane_metrics = scrape(&format!("http://{health_listen}/metrics")).await;
    assert_eq!(
        sample(&plane_metrics, "ferry_dataplane_rows_moved_total{}"),
        rows
    );
    assert_eq!(
        sample(&plane_metrics, "ferry_dataplane_bytes_moved_total{}"),
        bytes
    );
    assert_eq!(
        sample(
            &plane_metrics,
            r#"ferry_dataplane_attempts_ended_total{status="succeeded"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&plane_metrics, "ferry_dataplane_attempts_running{}"),
        0.0
    );
    assert_eq!(
        sample(
            &plane_metrics,
            r#"ferry_dataplane_claims_total{result="job"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &plane_metrics,
            "ferry_dataplane_claim_duration_seconds_count{}"
        ),
        1.0
    );
    // A job can end before the plane's first heartbeat, whose round also counts the tokens
    // fetched: both come within the heartbeat interval.
    let plane_metrics = wait_for("a heartbeat counted", Duration::from_secs(30), || async {
        let metrics = scrape(&format!("http://{health_listen}/metrics")).await;
        (metrics
            .get(r#"ferry_dataplane_heartbeats_total{result="ok"}"#)
            .is_some_and(|count| *count >= 1.0))
        .then_some(metrics)
    })
    .await;
    assert!(sample(&plane_metrics, "ferry_dataplane_tokens_fetched_total{}") >= 1.0);
    let plane_age = sample(&plane_metrics, "ferry_dataplane_heartbeat_age_seconds{}");
    assert!((0.0..30.0).contains(&plane_age), "{plane_age}");
}

/// `/metrics` is read without a token, and anyone reaching the API port can send requests:
/// what they choose (a made-up method, a path of ids) must not become a series each, or
/// a loop of requests grows the process's memory and every scrape without bound.
#[tokio::test]
async fn made_up_methods_and_paths_do_not_become_series_of_their_own() {
    let cluster = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let client = reqwest::Client::new();
    for index in 0..40 {
        let method = reqwest::Method::from_bytes(format!("PROBE{index}").as_bytes()).unwrap();
        let url = format!(
            "{}/api/public/v1/jobs/{index}?x={index}",
            cluster.base_url()
        );
        let status = client.request(method, &url).send().await.unwrap().status();
        assert!(status.is_client_error(), "{status}");
        let status = client
            .get(format!("{}/no/such/path/{index}", cluster.base_url()))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{status}");
    }
    let text = reqwest::get(format!("{}/metrics", cluster.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_metrics(&text);
    let series: Vec<&String> = samples
        .keys()
        .filter(|key| key.starts_with("ferry_http_request"))
        .collect();
    assert!(
        !series
            .iter()
            .any(|key| key.contains("PROBE") || key.contains("/no/such")),
        "{series:#?}"
    );
    // A handful of (method, route, status) counters: the fixture's requests and these.
    let counters = series
        .iter()
        .filter(|key| key.starts_with("ferry_http_requests_total{"))
        .count();
    assert!(counters <= 8, "{counters} counters: {series:#?}");
    // The made-up methods are counted, together.
    assert!(
        series.iter().any(|key| key.contains(r#"method="other""#)),
        "{series:#?}"
    );
}
