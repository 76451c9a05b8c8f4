//! Data-plane benchmark: claim latency and heartbeat load. See bench/README.md.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ferry_bench::{argument, cpu_ticks, ferry_binary};
use ferry_testkit::{FerryOptions, FerryUp, StoreKind};
use serde_json::{Value, json};

fn millis_of(text: &Value) -> i64 {
    // RFC 3339 with optional milliseconds, always UTC ("Z").
    let text = text.as_str().unwrap();
    let (seconds_part, fraction) = match text.trim_end_matches('Z').split_once('.') {
        // "…:56.9Z" is 900 ms: the fraction is a decimal, trailing zeros dropped.
        Some((seconds, fraction)) => {
            let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
            (seconds.to_owned(), millis.parse::<i64>().unwrap_or(0))
        }
        None => (text.trim_end_matches('Z').to_owned(), 0),
    };
    let (_, clock) = seconds_part.split_once('T').unwrap();
    let parts: Vec<i64> = clock.split(':').map(|part| part.parse().unwrap()).collect();
    (parts[0] * 3600 + parts[1] * 60 + parts[2]) * 1000 + fraction
}

fn percentile(sorted: &[i64], fraction: f64) -> i64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() {
    let jobs = argument("--jobs", 200);
    let planes = argument("--planes", 1000);
    let seconds = argument("--seconds", 30);
    let binary = ferry_binary();
    let store = if ferry_bench::flag("--postgres") {
        StoreKind::Postgres
    } else {
        StoreKind::Sqlite
    };
    println!("control-plane store: {store:?}");
    let ferry = FerryUp::start(&binary, FerryOptions::new(store).control_plane_only()).await;
    let admin = &ferry.admin;
    let region = ferry.region("bench").await;
    let plane = ferry.plane(&region, "bench-1").await;
    let workspace = ferry.workspace_in(&region, "bench").await;
    let connection_id = json!(
        workspace
            .connect(
                json!({"sourceType": "faker", "count": 1}),
                json!({"destinationType": "dev-null"}),
                json!({}),
            )
            .await
    );
    let _dataplane = plane.start(&[]);

    // Claim latency: one job at a time, each to an idle, long-polling data plane.
    let mut latencies = Vec::new();
    for _ in 0..jobs {
        let job_id = admin.start_job(&connection_id, "sync").await;
        let job = admin
            .wait_for_job_status(job_id, "succeeded", Duration::from_secs(30))
            .await;
        latencies.push(millis_of(&job["attempts"][0]["startedAt"]) - millis_of(&job["startTime"]));
    }
    let slow: Vec<(usize, i64)> = latencies
        .iter()
        .enumerate()
        .filter(|(_, latency)| **latency > 100)
        .map(|(index, latency)| (index, *latency))
        .collect();
    println!("claims over 100 ms (job index, ms): {slow:?}");
    latencies.sort_unstable();
    let claim = json!({
        "jobs": jobs,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": latencies.last(),
    });
    println!("claim latency p50: {} ms", claim["p50_ms"]);
    println!("claim latency p99: {} ms (target <= 100)", claim["p99_ms"]);
    println!("claim latency max: {} ms", claim["max_ms"]);

    // Heartbeat load: M data planes with real credentials, each beating every 10 s.
    let mut tokens = Vec::new();
    for index in 0..planes {
        let plane = ferry.plane(&region, &format!("sim-{index}")).await;
        let token = plane.api().await.token.unwrap();
        tokens.push((plane.client_id, token));
    }
    let pid = ferry_testkit::pid_of(&ferry.process);
    let ticks_per_second = 100.0;
    let before = cpu_ticks(pid);
    let started = Instant::now();
    let window = Duration::from_secs(seconds);
    let interval = Duration::from_secs(10).as_secs_f64() / planes as f64;
    let client = reqwest::Client::new();
    let mut sent = 0u64;
    let mut failures = 0u64;
    let mut in_flight = tokio::task::JoinSet::new();
    while started.elapsed() < window {
        let (client_id, token) = tokens[(sent % planes) as usize].clone();
        let request = client
            .post(format!("{}/api/v1/dataplanes/heartbeat", ferry.base_url()))
            .bearer_auth(token)
            .json(&json!({"client_id": client_id, "running_attempts": []}));
        in_flight.spawn(async move {
            request
                .send()
                .await
                .map(|response| response.status().is_success())
                .unwrap_or(false)
        });
        sent += 1;
        let due = Duration::from_secs_f64(interval * sent as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        while let Some(done) = in_flight.try_join_next() {
            failures += u64::from(!done.unwrap_or(false));
        }
    }
    while let Some(done) = in_flight.join_next().await {
        failures += u64::from(!done.unwrap_or(false));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_ticks(pid) - before) as f64 / ticks_per_second;
    let heartbeat = json!({
        "planes": planes,
        "heartbeats": sent,
        "failed": failures,
        "per_second": sent as f64 / elapsed,
        "control_plane_cpu_percent_of_core": 100.0 * cpu_seconds / elapsed,
    });
    println!(
        "heartbeats: {sent} in {elapsed:.1} s ({:.1}/s), {failures} failed",
        sent as f64 / elapsed
    );
    println!(
        "control plane CPU under {planes} planes: {:.1} % of a core (target <= 20)",
        heartbeat["control_plane_cpu_percent_of_core"]
            .as_f64()
            .unwrap()
    );
    let report = json!({"claim_latency": claim, "heartbeat_load": heartbeat});
    std::fs::write(
        "bench-dataplane.json",
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("written: bench-dataplane.json");
}
