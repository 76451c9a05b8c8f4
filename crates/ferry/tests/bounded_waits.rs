//! Every wait has a bound: a PostgreSQL host that accepts TCP and never answers fails its
//! `check` within the connect timeout, and such checks take no sync's slot meanwhile; a
//! cancel stops a running sync's rows within a second. (That a connector task whose waiter
//! gave up is never claimed is the store's conformance suite.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, text, wait_for};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// A TCP listener on loopback that accepts connections and never answers on them; how many
/// it accepted.
async fn silent_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, accepted)
}

/// A faker → dev-null connection in the default workspace.
async fn faker_to_dev_null(ferry: &FerryUp, faker: Value) -> Value {
    let mut source = json!({"sourceType": "faker"});
    for (key, value) in faker.as_object().unwrap() {
        source[key] = value.clone();
    }
    ferry
        .admin
        .connect(
            &ferry.workspace,
            source,
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await
}

#[tokio::test]
async fn checks_of_a_silent_host_fail_in_time_and_take_no_sync_slot() {
    // `ferry up`: its own data plane, with the default two sync slots.
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let (port, accepted) = silent_listener().await;
    let connection = faker_to_dev_null(&ferry, json!({"count": 2000, "seed": 1})).await;
    let silent = ferry
        .default_workspace()
        .post_source(
            "silent",
            json!({"sourceType": "postgres", "host": "127.0.0.1", "port": port, "database": "d", "username": "u"}),
        )
        .await;
    assert_eq!(silent.status, 200, "{}", silent.body);
    let source_id = silent.body["sourceId"].clone();

    // Two checks, as many as the sync slots, both hanging on the silent host.
    let started = Instant::now();
    let checks: Vec<_> = (0..2)
        .map(|_| {
            let (admin, source_id) = (ferry.admin.clone(), source_id.clone());
            tokio::spawn(async move { admin.check_source(&source_id).await })
        })
        .collect();
    wait_for(
        "both checks to reach the silent host",
        Duration::from_secs(20),
        || async { (accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;

    // Meanwhile a sync of another connection runs and succeeds promptly.
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    let job = ferry
        .admin
        .finished_job(job_id, Duration::from_secs(15))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the sync waited for the checks: {:?}",
        started.elapsed()
    );

    // Each check fails within the connect timeout, saying why.
    for check in checks {
        let check = check.await.unwrap();
        assert_eq!(check.status, 200, "{}", check.body);
        assert_eq!(check.body["status"], "failed", "{}", check.body);
        let message = text(&check.body["message"]);
        assert!(
            message.contains(&format!("127.0.0.1:{port} within 30 s")),
            "{message}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the checks took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_cancelled_sync_stops_moving_rows_within_a_second() {
    // `ferry up`'s data plane heartbeats every 10 s, as by default.
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let connection = faker_to_dev_null(&ferry, json!({"count": 100_000_000u64, "seed": 2})).await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    wait_for(
        "the sync to commit rows",
        Duration::from_secs(30),
        || async {
            let job = ferry.admin.job(job_id).await;
            (job["rowsSynced"].as_i64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;

    let cancelled = ferry
        .admin
        .delete(&format!("/api/public/v1/jobs/{job_id}"))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let soon = ferry.admin.job(job_id).await;
    assert_eq!(soon["status"], "cancelled", "{soon}");
    assert_eq!(
        soon["attempts"][0]["status"], "cancelled",
        "the attempt still ran a second after the cancel: {soon}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = ferry.admin.job(job_id).await;
    assert_eq!(
        later["rowsSynced"], soon["rowsSynced"],
        "rows were committed more than a second after the cancel"
    );
    assert!(later["rowsSynced"].as_i64().unwrap() > 0, "{later}");
}
