//! `ferry dataplane --config values.yaml` with the guide's values.yaml as it is (step 5):
//! the credentials come from the environment under any of the names the guide and Airbyte's
//! chart use (the guide's `kubectl create secret` spells them in lower case), and without
//! them it stops with one line saying what is missing.

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::process::Command;
use std::time::Duration;

use deploy_support::{BINARY, free_port, guide_values};
use ferry_testkit::{DataplaneProcess, FerryOptions, FerryUp, StoreKind, wait_for};

/// What the chart gives the pod from the guide's Secret besides the credentials: the
/// storage and secrets-manager keys its values.yaml names.
const GUIDE_SECRET_ENV: [(&str, &str); 4] = [
    ("S3_ACCESS_KEY_ID", "your-s3-access-key"),
    ("S3_SECRET_ACCESS_KEY", "your-s3-secret-key"),
    (
        "AWS_SECRET_MANAGER_ACCESS_KEY_ID",
        "your-aws-secret-manager-access-key",
    ),
    (
        "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY",
        "your-aws-secret-manager-secret-key",
    ),
];

#[tokio::test]
async fn the_guides_values_file_runs_a_plane_with_credentials_from_the_environment() {
    let cluster = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let region = cluster.region("eu").await;
    // The guide's file minus its `storage` and `secretsManager` blocks: those name an S3
    // bucket and AWS Secrets Manager this machine cannot reach (the data plane checks its
    // bucket at start); their own tests cover them. Every other key is the guide's.
    let mut guide: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(guide_values()).unwrap()).unwrap();
    let blocks = guide.as_object_mut().unwrap();
    assert!(blocks.remove("storage").is_some() && blocks.remove("secretsManager").is_some());
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, serde_yaml_ng::to_string(&guide).unwrap()).unwrap();
    for (index, (id_name, secret_name)) in [
        ("data_plane_client_id", "data_plane_client_secret"),
        ("DATAPLANE_CLIENT_ID", "DATAPLANE_CLIENT_SECRET"),
    ]
    .into_iter()
    .enumerate()
    {
        let plane = cluster.plane(&region, &format!("plane-{index}")).await;
        let health = free_port();
        let health_listen = format!("127.0.0.1:{health}");
        let mut env: Vec<(&str, &str)> = Vec::new();
        env.extend([
            (id_name, plane.client_id.as_str()),
            (secret_name, plane.client_secret.as_str()),
            ("FERRY_HEALTH_LISTEN", health_listen.as_str()),
            ("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ]);
        // The guide's airbyteUrl is its example's; the flag points at this control plane.
        let mut process = DataplaneProcess::spawn(
            BINARY.as_ref(),
            &[
                "--config",
                values.to_str().unwrap(),
                "--control-plane-url",
                cluster.base_url(),
            ],
            &env,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("http://{health_listen}/health/readiness"))
                .await
                .is_ok_and(|response| response.status() == 200);
            if ready {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline && process.is_running(),
                "{id_name}: not ready:\n{}",
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        let log = process.log();
        assert!(log.contains("accepted and ignored"), "{log}");
        assert!(!log.contains(&plane.client_secret), "secret logged: {log}");
    }
}

#[test]
fn without_credentials_the_guides_values_file_stops_with_one_line() {
    let values = guide_values();
    let output = Command::new(BINARY)
        .args(["dataplane", "--config"])
        .arg(&values)
        .env_clear()
        .envs(GUIDE_SECRET_ENV)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("ferry: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("no client id"), "{stderr}");
}
