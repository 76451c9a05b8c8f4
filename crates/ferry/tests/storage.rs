//! `ferry up` with one S3-compatible bucket for all its storage (`--storage-url s3://…`,
//! handed to its own data plane too): the attempt's log is kept there and served from
//! there. The S3 endpoint is a real S3-speaking server from PyPI (moto, installed by
//! `scripts/setup/moto.sh`), run by the test on a loopback port; `storage_s3.rs` tests the
//! guide's `storage.type: s3` with three buckets and signature checks.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, wait_for};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn s3_server() -> S3Server {
    let moto = std::env::var("FERRY_MOTO_SERVER").unwrap_or_else(|_| {
        panic!("FERRY_MOTO_SERVER is not set: run `. scripts/setup/moto.sh` (it installs moto's server)")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    wait_for("the S3 server", Duration::from_secs(30), || async {
        client.get(&server.endpoint).send().await.ok().map(drop)
    })
    .await;
    server
}

#[tokio::test]
async fn attempt_logs_are_kept_in_s3_compatible_storage() {
    let s3 = s3_server().await;
    let client = reqwest::Client::new();
    let created = client
        .put(format!("{}/ferry-logs", s3.endpoint))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.status());

    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .env("FERRY_STORAGE_URL", "s3://ferry-logs/ferry")
            .env("AWS_ENDPOINT", &s3.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1"),
    )
    .await;
    let admin = &ferry.admin;
    let connection = admin
        .connect(
            &ferry.workspace,
            json!({"sourceType": "faker", "count": 50}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job = admin.sync(&connection, Duration::from_secs(60)).await;
    let job_id = job["jobId"].as_i64().unwrap();

    // The API serves the attempt's log, read back from the bucket …
    let log = admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/1/logs"))
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let text = log.body.as_str().unwrap();
    assert!(text.contains("attempt ended: succeeded"), "{text}");
    // … where the data plane put it (the local storage directory stays empty).
    assert!(
        !std::fs::read_dir(ferry.process.data_dir.join("storage"))
            .map(|entries| entries.count() > 0)
            .unwrap_or(false),
        "nothing written to the local storage directory"
    );
}
