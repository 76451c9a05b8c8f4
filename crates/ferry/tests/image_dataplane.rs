//! The container image (the repository's Dockerfile), built by a real docker daemon
//! (scripts/setup/docker.sh) from the binary under test, on the `debian:bookworm-slim` the
//! setup script made with debootstrap; `ferry dataplane` run from it against a control plane
//! on the host: ready, healthy in the API, runs a job of its region, and stops cleanly on
//! `docker stop` (SIGTERM).

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deploy_support::{BINARY, free_port, repository_root, succeed, tool};
use ferry_testkit::{FerryOptions, FerryUp, StoreKind, text, wait_for};
use serde_json::{Value, json};

fn docker() -> Command {
    let mut command = Command::new(tool("FERRY_DOCKER", "docker.sh"));
    command.env("DOCKER_BUILDKIT", "0");
    command
}

/// The image and container this test made, removed when it ends (a failure too).
struct Made {
    image: String,
    container: String,
}

impl Drop for Made {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", &self.container]).output();
        let _ = docker().args(["rmi", "-f", &self.image]).output();
    }
}

/// A build context holding the Dockerfile, .dockerignore and the binary under test (its
/// debug sections dropped: the daemon copies it into a layer).
fn context() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = repository_root();
    for file in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(root.join(file), dir.path().join(file)).unwrap();
    }
    let binary = dir.path().join("ferry");
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(BINARY)
        .arg(&binary)
        .status()
        .is_ok_and(|status| status.success());
    if !stripped {
        std::fs::copy(BINARY, &binary).unwrap();
    }
    let path = dir.path().to_owned();
    (dir, path)
}

fn inspect(what: &str, name: &str, format: &str) -> String {
    succeed(docker().args([what, "inspect", "--format", format, name]))
        .trim()
        .to_owned()
}

async fn probe(port: u16, path: &str) -> Option<u16> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    Some(response.status().as_u16())
}

#[tokio::test]
async fn the_image_runs_a_data_plane_against_a_control_plane_on_the_host() {
    let unique = format!("{}-{}", std::process::id(), free_port());
    let made = Made {
        image: format!("ferry-test:{unique}"),
        container: format!("ferry-dataplane-{unique}"),
    };
    let (_dir, context) = context();
    // The base has no package lists; the build fetches CA certificates once (cached in a
    // layer after that), on the host's network.
    succeed(docker().args([
        "build",
        "--network",
        "host",
        "--build-arg",
        "FERRY_BINARY=ferry",
        "-t",
        &made.image,
        context.to_str().unwrap(),
    ]));
    assert_eq!(
        inspect("image", &made.image, "{{.Config.User}}"),
        "10001:10001"
    );
    assert_eq!(
        inspect("image", &made.image, "{{json .Config.Entrypoint}}"),
        r#"["/usr/local/bin/ferry"]"#
    );
    let version = succeed(docker().args(["run", "--rm", &made.image, "--version"]));
    assert!(version.starts_with("ferry "), "{version}");
    let certificates = succeed(docker().args([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &made.image,
        "-c",
        "test -s /etc/ssl/certs/ca-certificates.crt && echo present",
    ]));
    assert_eq!(certificates.trim(), "present");

    let cluster = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let region = cluster.region("eu").await;
    let plane = cluster.plane(&region, "eu-image").await;
    let workspace = cluster.workspace_in(&region, "ws-eu").await;
    let health = free_port();
    // The credentials in the environment, never on the command line.
    succeed(
        docker()
            .args([
                "run",
                "-d",
                "--name",
                &made.container,
                "--network",
                "host",
                "-e",
                "DATA_PLANE_CLIENT_ID",
                "-e",
                "DATA_PLANE_CLIENT_SECRET",
                "-e",
                "FERRY_HEARTBEAT_INTERVAL_SECONDS=1",
                &made.image,
                "dataplane",
                "--control-plane-url",
                cluster.base_url(),
                "--health-listen",
                &format!("127.0.0.1:{health}"),
                "--drain-seconds",
                "5",
                "--log-format",
                "json",
            ])
            .env("DATA_PLANE_CLIENT_ID", &plane.client_id)
            .env("DATA_PLANE_CLIENT_SECRET", &plane.client_secret),
    );
    let logs = || {
        let output = docker().args(["logs", &made.container]).output().unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while probe(health, "/health/readiness").await != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "the container did not become ready:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    let connection = workspace
        .connect(
            json!({"sourceType": "faker", "count": 500, "seed": 9}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job = cluster
        .admin
        .create(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await;
    let job: Value = cluster
        .admin
        .wait_for_job_status(
            job["jobId"].as_i64().unwrap(),
            "succeeded",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(text(&job["attempts"][0]["dataplaneId"]), plane.id);
    assert!(job["rowsSynced"].as_i64().unwrap() > 0, "{job}");

    succeed(docker().args(["stop", "--time", "30", &made.container]));
    assert_eq!(
        inspect("container", &made.container, "{{.State.ExitCode}}"),
        "0"
    );
    let logs = logs();
    assert!(logs.contains("\"drained\""), "{logs}");
    assert!(
        !logs.contains(&plane.client_secret),
        "the secret was logged"
    );
    assert!(Path::new(&context).join("ferry").exists());
}
