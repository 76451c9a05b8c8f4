//! The chart's Deployment, run the way a kubelet would run its container, as a local
//! process against a test control plane: the rendered command and args, its env with each
//! `secretKeyRef` resolved from the guide's Secret manifest (holding the credentials step 2
//! issued), the ConfigMap mounted where the volumeMount says, the probes' ports and paths.
//! It becomes ready, shows healthy in the API, runs a job of its region, and on SIGTERM
//! drains: its running sync goes to another plane of the region with what it committed.

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deploy_support::{
    BINARY, chart, free_port, guide_secret, guide_values, manifests, only, render, terminate,
};
use ferry_testkit::{FerryOptions, FerryUp, StoreKind, text, wait_for};
use serde_json::{Value, json};

/// The container, made runnable here: paths of its volumes mapped into a temp dir, its
/// health port mapped to a free loopback port (as a container runtime maps ports).
struct Pod {
    child: Child,
    log: PathBuf,
    health_port: u16,
    liveness: String,
    readiness: String,
    _root: tempfile::TempDir,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pod {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn probe(&self, path: &str) -> Option<u16> {
        let response = reqwest::get(format!("http://127.0.0.1:{}{path}", self.health_port))
            .await
            .ok()?;
        Some(response.status().as_u16())
    }
}

/// Runs the Deployment's only container from the rendered manifests.
fn run_container(all: &BTreeMap<String, Value>, secret: &BTreeMap<String, String>) -> Pod {
    let deployment = only(all, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let root = tempfile::tempdir().unwrap();
    // Each volumeMount becomes a directory of its own; a ConfigMap's keys become its files.
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = text(&mount["name"]);
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|volume| volume["name"] == name.as_str())
            .unwrap();
        let local = root.path().join(&name);
        std::fs::create_dir_all(&local).unwrap();
        if let Some(config_map) = volume["configMap"]["name"].as_str() {
            let data = &all[&format!("ConfigMap/{config_map}")]["data"];
            for (file, content) in data.as_object().unwrap() {
                std::fs::write(local.join(file), content.as_str().unwrap()).unwrap();
            }
        } else {
            assert!(volume["emptyDir"].is_object(), "volume {volume}");
        }
        mounts.push((text(&mount["mountPath"]), local));
    }
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|port| port["name"] == "health")
        .unwrap()["containerPort"]
        .as_u64()
        .unwrap();
    let health_port = free_port();
    // A path under a mount (alone or as a `--flag=path`) moves to the mount's directory;
    // the health port moves to its mapped port.
    let localize = |value: &str| {
        let (flag, path) = match value.split_once('=') {
            Some((flag, path)) if flag.starts_with("--") => (format!("{flag}="), path),
            _ => (String::new(), value),
        };
        let mounted = mounts
            .iter()
            .filter(|(mount_path, _)| {
                path == mount_path.as_str() || path.starts_with(&format!("{mount_path}/"))
            })
            .max_by_key(|(mount_path, _)| mount_path.len());
        match mounted {
            Some((mount_path, local)) => {
                format!("{flag}{}{}", local.display(), &path[mount_path.len()..])
            }
            None => value.replace(&format!(":{port}"), &format!(":{health_port}")),
        }
    };
    let command = container["command"].as_array().unwrap();
    assert_eq!(command, &[json!("ferry")]);
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| localize(arg.as_str().unwrap()))
        .collect();
    let mut env: Vec<(String, String)> = Vec::new();
    for variable in container["env"].as_array().unwrap() {
        let name = text(&variable["name"]);
        let value = if let Some(value) = variable["value"].as_str() {
            localize(value)
        } else {
            let reference = &variable["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"], "airbyte-config-secrets", "{variable}");
            let key = text(&reference["key"]);
            secret
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: key {key} is not in the guide's Secret"))
                .clone()
        };
        env.push((name, value));
    }
    let probe_path = |probe: &str| {
        let http = &container[probe]["httpGet"];
        assert_eq!(http["port"], "health", "{probe} on the health port");
        text(&http["path"])
    };
    let log = root.path().join("container.log");
    let child = Command::new(BINARY)
        .args(&args)
        // A container starts with its image's environment and the Deployment's env alone.
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Pod {
        child,
        log,
        health_port,
        liveness: probe_path("livenessProbe"),
        readiness: probe_path("readinessProbe"),
        _root: root,
    }
}

async fn start_sync(cluster: &FerryUp, connection: &str) -> i64 {
    cluster
        .admin
        .create(
            "/api/public/v1/jobs",
            json!({"connectionId": connection, "jobType": "sync"}),
        )
        .await["jobId"]
        .as_i64()
        .unwrap()
}

fn overrides(dir: &Path, control_plane_url: &str) -> PathBuf {
    // The user's own URL; the guide's S3 bucket and AWS Secrets Manager are not reachable
    // from the test machine, so this run keeps logs and secrets local (the render test uses
    // the guide's values unchanged, those blocks included). A short drain keeps it brief.
    let path = dir.join("overrides.yaml");
    std::fs::write(
        &path,
        format!(
            "airbyteUrl: {control_plane_url}\nstorage: null\nsecretsManager: null\nferry:\n  drainSeconds: 1\n  heartbeatIntervalSeconds: 1\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn the_rendered_deployment_runs_a_job_of_its_region_and_drains_on_sigterm() {
    let cluster = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .env("FERRY_JOB_LEASE_SECONDS", "30")
            .env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0"),
    )
    .await;
    // Steps 1-3 of the guide: a region, a data plane in it, a workspace there.
    let region = cluster.region("aws-us-east-1").await;
    let plane = cluster.plane(&region, "preview-data-plane").await;
    let peer = cluster.plane(&region, "peer").await;
    let workspace = cluster.workspace_in(&region, "ws-us-east").await;
    // Step 4: the guide's Secret with those credentials; step 5: its values.yaml.
    let secret = guide_secret(&plane.client_id, &plane.client_secret);
    let values = guide_values();
    let dir = tempfile::tempdir().unwrap();
    let overrides = overrides(dir.path(), cluster.base_url());
    let rendered = render(
        &chart("ferry-data-plane"),
        "airbyte-enterprise",
        &[&values, &overrides],
        &[],
    );
    let all = manifests(&rendered);
    let mut pod = run_container(&all, &secret);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pod.probe(&pod.readiness).await != Some(200) {
        assert!(
            std::time::Instant::now() < deadline && pod.is_running(),
            "the pod did not become ready within 30 s:\n{}",
            pod.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pod.probe(&pod.liveness).await, Some(200));
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
    // JSON log lines, as the chart asks.
    let first_line = pod.log().lines().next().unwrap_or_default().to_owned();
    let parsed: Value = serde_json::from_str(&first_line).unwrap();
    assert!(parsed["message"].is_string(), "{first_line}");
    assert!(!pod.log().contains(&plane.client_secret), "secret logged");

    // A job of its region.
    let quick = workspace
        .connect(
            json!({"sourceType": "faker", "count": 100, "seed": 1}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job_id = start_sync(&cluster, &quick).await;
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(60))
        .await;
    assert_eq!(text(&job["attempts"][0]["dataplaneId"]), plane.id);

    // SIGTERM mid-sync: past the 1 s drain, the sync goes to the region's other plane.
    let long = workspace
        .connect(
            json!({"sourceType": "faker", "count": 4000, "records_per_slice": 100, "slice_delay_ms": 80, "seed": 2}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job_id = start_sync(&cluster, &long).await;
    wait_for(
        "the pod to commit progress",
        Duration::from_secs(30),
        || async {
            let job = cluster.admin.job(job_id).await;
            (job["rowsSynced"].as_i64().unwrap_or(0) >= 200).then_some(())
        },
    )
    .await;
    let _peer_process = peer.start(&[("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")]);
    terminate(pod.child.id());
    wait_for(
        "readiness to drop while draining",
        Duration::from_secs(5),
        || async {
            match pod.probe(&pod.readiness).await {
                Some(200) => None,
                _ => Some(()),
            }
        },
    )
    .await;
    let job = cluster
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(90))
        .await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(text(&attempts[0]["dataplaneId"]), plane.id);
    assert!(
        text(&attempts[0]["failureReason"]).contains("handed back"),
        "{job}"
    );
    assert_eq!(text(&attempts[1]["dataplaneId"]), peer.id);
    wait_for("the pod to exit", Duration::from_secs(20), || {
        let running = pod.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    assert!(pod.child.wait().unwrap().success(), "{}", pod.log());
}
