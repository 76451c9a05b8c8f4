//! What the deployment tests (helm_*, image_*, metrics_*, drain_*) share: the real tools the
//! setup scripts install, the guide's values.yaml and Secret manifest, rendering the chart,
//! signals, and a loopback TCP forwarder standing in for a control plane that comes later.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// A tool a setup script installs and names in an environment variable; a test without it
/// fails, naming the script (it never skips).
pub fn tool(variable: &str, script: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from);
    match path {
        Some(path) if path.exists() => path,
        _ => panic!(
            "{variable} is not set to an installed tool: run `. scripts/setup/{script}` (as root) first"
        ),
    }
}

pub fn helm() -> PathBuf {
    tool("FERRY_HELM", "helm.sh")
}

pub fn kubernetes_validate() -> PathBuf {
    tool("FERRY_KUBERNETES_VALIDATE", "helm.sh")
}

pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn chart(name: &str) -> PathBuf {
    repository_root().join("deploy/helm").join(name)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/guide")
        .join(name)
}

/// The guide's step-5 `values.yaml` block as its stored text has it: taken from the guide
/// (Airbyte's multi-region guide) where it sits beside the checkout or `FERRY_GUIDE_TEXT`
/// names it, else the copy taken from it once (`values.guide-block.txt`, which a run with the
/// guide at hand checks is still the guide's).
fn guide_values_block() -> String {
    let copy = std::fs::read_to_string(fixture("values.guide-block.txt")).unwrap();
    let path = std::env::var_os("FERRY_GUIDE_TEXT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join("../shared/reference/000_81cdafa473835b48.txt"));
    let Ok(guide) = std::fs::read_to_string(&path) else {
        return copy;
    };
    let start = guide
        .find("```yaml title=\"values.yaml\"")
        .expect("the guide's values.yaml block");
    let block = &guide[start..];
    let block = &block[block.find('\n').unwrap() + 1..];
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(
        copy, block,
        "values.guide-block.txt is no longer the guide's block"
    );
    copy
}

/// The guide's step-5 `values.yaml`. The stored text of the guide lost its indentation, so
/// the fixture restores it; this proves the fixture is that block, line for line, and
/// nothing else: the same lines once leading spaces are dropped.
pub fn guide_values() -> PathBuf {
    let block = guide_values_block();
    let path = fixture("values.yaml");
    let ours = std::fs::read_to_string(&path).unwrap();
    let guide_lines: Vec<&str> = block.lines().map(str::trim_start).collect();
    let our_lines: Vec<&str> = ours.lines().map(str::trim_start).collect();
    assert_eq!(
        our_lines, guide_lines,
        "the values.yaml fixture must be the guide's, indentation aside"
    );
    path
}

/// The guide's Secret manifest (step 4, S3 tab) as a user applies it: the placeholders of
/// the data plane's credentials replaced by the ones `POST /dataplanes` issued, and each
/// value base64-encoded as a Secret's `data` must be (the guide shows them in clear).
/// Returns the Secret's keys and values.
pub fn guide_secret(client_id: &str, client_secret: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixture("airbyte-config-secrets.yaml")).unwrap();
    let manifest: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(manifest["kind"], "Secret");
    assert_eq!(manifest["metadata"]["name"], "airbyte-config-secrets");
    let engine = base64::engine::general_purpose::STANDARD;
    manifest["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let value = match key.as_str() {
                "DATA_PLANE_CLIENT_ID" => client_id.to_owned(),
                "DATA_PLANE_CLIENT_SECRET" => client_secret.to_owned(),
                _ => value.as_str().unwrap().to_owned(),
            };
            // Applied as kubectl would: encoded in the manifest, decoded into the pod.
            let encoded = engine.encode(value.as_bytes());
            let decoded = String::from_utf8(engine.decode(encoded).unwrap()).unwrap();
            (key.clone(), decoded)
        })
        .collect()
}

pub fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

pub fn succeed(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = run(command);
    assert!(
        output.status.success(),
        "{description} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `helm template` of a chart with these values files (and `--set`s); the manifests.
pub fn render(chart_dir: &Path, release: &str, values: &[&Path], sets: &[&str]) -> String {
    let mut command = Command::new(helm());
    command
        .args(["template", release])
        .arg(chart_dir)
        .args(["--namespace", "airbyte-dataplane"]);
    for file in values {
        command.arg("--values").arg(file);
    }
    for set in sets {
        command.args(["--set", set]);
    }
    succeed(&mut command)
}

/// The manifests of a rendered chart, by `Kind/name`.
pub fn manifests(rendered: &str) -> BTreeMap<String, Value> {
    serde_yaml_ng::Deserializer::from_str(rendered)
        .filter_map(|document| {
            let value: Value = serde::Deserialize::deserialize(document).ok()?;
            let kind = value["kind"].as_str()?.to_owned();
            let name = value["metadata"]["name"].as_str()?.to_owned();
            Some((format!("{kind}/{name}"), value))
        })
        .collect()
}

pub fn only<'a>(manifests: &'a BTreeMap<String, Value>, kind: &str) -> &'a Value {
    let found: Vec<&Value> = manifests
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{kind}/")))
        .map(|(_, value)| value)
        .collect();
    assert_eq!(found.len(), 1, "one {kind}: {:?}", manifests.keys());
    found[0]
}

/// A loopback port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGTERM, as Kubernetes stops a pod.
pub fn terminate(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// Forwards `127.0.0.1:port` to `target` once started: a control plane that becomes
/// reachable at that address only later. Dropped, it stops and cuts what it forwarded.
pub struct Forwarder {
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(port: u16, target: String) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            // Dropped with this task: every forwarded connection is cut with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { task }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `host:port` of an `http://host:port` URL.
pub fn authority(base_url: &str) -> String {
    base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Prometheus text parsed by the Prometheus project's own Python parser (OpenMetrics, which
/// is what both planes serve): every sample as `name{labels}` → value. A document the parser
/// refuses fails the test.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let venv = ferry_testkit::python_venv(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "venv-prometheus-client",
        "prometheus-client==0.21.1",
        "prometheus_client",
    );
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        samples[f"{sample.name}{{{labels}}}"] = sample.value
print(json.dumps(samples))
"#;
    let mut child = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    parsed
        .into_iter()
        .map(|(key, value)| (key, value.as_f64().unwrap_or(f64::NAN)))
        .collect()
}

/// The value of the sample `name{labels}` (labels sorted, as `parse_metrics` keys them), 0
/// when absent.
pub fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}
