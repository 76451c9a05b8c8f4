//! The Helm charts under a real Helm engine (scripts/setup/helm.sh): strict lint, the guide's
//! values.yaml (step 5) rendered as it is into manifests Kubernetes' schemas accept
//! (kubernetes-validate --strict), every secret reference found in the guide's Secret
//! (step 4), wrong types refused by values.schema.json, Airbyte's key names honoured, the
//! control plane's chart, and a chart repository that `helm repo add` takes (step 6).

#![allow(clippy::unwrap_used)]

mod deploy_support;

use std::path::Path;
use std::process::Command;

use deploy_support::{
    chart, guide_secret, guide_values, helm, kubernetes_validate, manifests, only, render, succeed,
};
use serde_json::{Value, json};

/// kubernetes-validate --strict over the manifests; each resource must pass.
fn validate(rendered: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, rendered).unwrap();
    let output = Command::new(kubernetes_validate())
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kubernetes-validate refused:\n{report}"
    );
    let kinds = manifests(rendered).len();
    assert_eq!(
        report.matches(" passed for resource ").count(),
        kinds,
        "{report}"
    );
}

fn lint(chart_dir: &Path, values: &[&Path], sets: &[&str]) {
    let mut command = Command::new(helm());
    command.args(["lint", "--strict"]).arg(chart_dir);
    for file in values {
        command.arg("--values").arg(file);
    }
    for set in sets {
        command.args(["--set", set]);
    }
    let out = succeed(&mut command);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn env_ref<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|env| env["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {}", container["env"]))
}

#[test]
fn the_guides_values_render_into_manifests_kubernetes_accepts() {
    let values = guide_values();
    let chart_dir = chart("ferry-data-plane");
    lint(&chart_dir, &[&values], &[]);
    let rendered = render(&chart_dir, "airbyte-enterprise", &[&values], &[]);
    validate(&rendered);
    let manifests = manifests(&rendered);
    // The credentials are the guide's Secret's; the chart renders none of its own.
    assert!(
        !manifests.keys().any(|key| key.starts_with("Secret/")),
        "{:?}",
        manifests.keys()
    );
    let deployment = only(&manifests, "Deployment");
    let container = container(deployment);
    assert_eq!(container["command"], json!(["ferry"]));
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "dataplane");
    assert!(args.contains(&"--health-listen=0.0.0.0:8085"), "{args:?}");
    assert!(args.contains(&"--log-format=json"), "{args:?}");
    for (variable, key) in [
        ("DATA_PLANE_CLIENT_ID", "DATA_PLANE_CLIENT_ID"),
        ("DATA_PLANE_CLIENT_SECRET", "DATA_PLANE_CLIENT_SECRET"),
        // storage.s3 and secretsManager.awsSecretManager's keys, passed on by name.
        ("S3_ACCESS_KEY_ID", "S3_ACCESS_KEY_ID"),
        ("S3_SECRET_ACCESS_KEY", "S3_SECRET_ACCESS_KEY"),
        (
            "AWS_SECRET_MANAGER_ACCESS_KEY_ID",
            "AWS_SECRET_MANAGER_ACCESS_KEY_ID",
        ),
        (
            "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY",
            "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY",
        ),
    ] {
        let reference = &env_ref(container, variable)["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "airbyte-config-secrets", "{variable}");
        assert_eq!(reference["key"], key, "{variable}");
    }
    // Every key the pod asks of a Secret is in the guide's Secret: none would stop the pod
    // with CreateContainerConfigError.
    let secret = guide_secret("id", "secret");
    for env in container["env"].as_array().unwrap() {
        if let Some(key) = env["valueFrom"]["secretKeyRef"]["key"].as_str() {
            assert!(
                secret.contains_key(key),
                "{} asks for key {key}, not in the guide's Secret",
                env["name"]
            );
        }
    }
    // Probes on the health port, at the data plane's paths.
    let port = &container["ports"][0];
    assert_eq!(port["name"], "health");
    assert_eq!(port["containerPort"], 8085);
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        "/health/liveness"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "health");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/health/readiness"
    );
    // The pod's grace covers the drain and the hand-back after it.
    let drain: u64 = args
        .iter()
        .find_map(|arg| arg.strip_prefix("--drain-seconds="))
        .unwrap()
        .parse()
        .unwrap();
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace > drain, "grace {grace} s, drain {drain} s");
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["ferry.dev/data-plane-id"],
        "preview-data-plane"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    let account = only(&manifests, "ServiceAccount");
    assert_eq!(
        pod["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    // The data plane's settings file carries the guide's keys through as they are.
    let config_map = only(&manifests, "ConfigMap");
    let file: Value =
        serde_yaml_ng::from_str(config_map["data"]["dataplane.yaml"].as_str().unwrap()).unwrap();
    let guide: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&values).unwrap()).unwrap();
    assert_eq!(file["airbyteUrl"], guide["airbyteUrl"]);
    assert_eq!(file["storage"], guide["storage"]);
    assert_eq!(file["secretsManager"], guide["secretsManager"]);
    assert_eq!(file["dataPlane"]["id"], "preview-data-plane");
}

#[test]
fn the_schema_refuses_wrong_types_naming_the_key() {
    let values = guide_values();
    let chart_dir = chart("ferry-data-plane");
    for (set, key) in [
        ("replicaCount=two", "replicaCount"),
        ("airbyteUrl=airbyte.example.com", "airbyteUrl"),
        ("ferry.drainSeconds=-1", "ferry.drainSeconds"),
        ("logging.format=xml", "logging.format"),
        (
            "dataPlane.clientIdSecretKey=",
            "dataPlane.clientIdSecretKey",
        ),
        ("nodeSelector=eu", "nodeSelector"),
        ("ferry.concurency=4", "ferry"),
    ] {
        let output = Command::new(helm())
            .args(["template", "t"])
            .arg(&chart_dir)
            .arg("--values")
            .arg(&values)
            .args(["--set", set])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--set {set} was accepted");
        assert!(stderr.contains(key), "--set {set}: {stderr}");
    }
    let output = Command::new(helm())
        .args(["template", "t"])
        .arg(&chart_dir)
        .args(["--set-json", r#"tolerations={"key":"eu"}"#])
        .args(["--set", "airbyteUrl=https://cp.example.com"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("tolerations"));
    // Without airbyteUrl there is nothing to dial: refused, saying so.
    let output = Command::new(helm())
        .args(["template", "t"])
        .arg(&chart_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("airbyteUrl"));
}

#[test]
fn airbytes_key_names_and_the_charts_options_render_as_asked() {
    let values = guide_values();
    let chart_dir = chart("ferry-data-plane");
    let extra = tempfile::tempdir().unwrap();
    let options = extra.path().join("options.yaml");
    std::fs::write(
        &options,
        r#"
dataPlane:
  # The guide's `kubectl create secret` example spells the keys in lower case.
  clientIdSecretName: plane-credentials
  clientIdSecretKey: data_plane_client_id
  clientSecretSecretName: plane-credentials
  clientSecretSecretKey: data_plane_client_secret
workloadLauncher:
  replicaCount: 3
  nodeSelector: {topology.kubernetes.io/region: eu-west-1}
  tolerations: [{key: dedicated, operator: Equal, value: ferry, effect: NoSchedule}]
  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}
ferry:
  drainSeconds: 120
  caCert: {secretName: control-plane-ca}
metrics:
  podAnnotations: false
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
"#,
    )
    .unwrap();
    lint(&chart_dir, &[&values, &options], &[]);
    let rendered = render(&chart_dir, "eu", &[&values, &options], &[]);
    let all = manifests(&rendered);
    let deployment = only(&all, "Deployment");
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        spec["nodeSelector"]["topology.kubernetes.io/region"],
        "eu-west-1"
    );
    assert_eq!(spec["tolerations"][0]["value"], "ferry");
    assert_eq!(spec["terminationGracePeriodSeconds"], 150);
    let container = container(deployment);
    assert_eq!(container["resources"]["requests"]["cpu"], "500m");
    let id = &env_ref(container, "DATA_PLANE_CLIENT_ID")["valueFrom"]["secretKeyRef"];
    assert_eq!(id["name"], "plane-credentials");
    assert_eq!(id["key"], "data_plane_client_id");
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"].is_null()
    );
    let config_map = only(&all, "ConfigMap");
    assert!(
        config_map["data"]["dataplane.yaml"]
            .as_str()
            .unwrap()
            .contains("caCert: /etc/ferry-ca/ca.crt")
    );
    let monitor = only(&all, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // kubernetes-validate knows no ServiceMonitor (a CRD): the rest must pass.
    let core: String = rendered
        .split("\n---")
        .filter(|document| !document.contains("kind: ServiceMonitor"))
        .collect::<Vec<_>>()
        .join("\n---");
    validate(&core);

    // Inline credentials become a Secret of the chart's, base64-encoded.
    let rendered = render(
        &chart_dir,
        "inline",
        &[],
        &[
            "airbyteUrl=https://cp.example.com",
            "dataPlane.clientId=plane-id",
            "dataPlane.clientSecret=plane-secret",
        ],
    );
    validate(&rendered);
    let all = manifests(&rendered);
    let secret = only(&all, "Secret");
    assert_eq!(secret["data"]["DATA_PLANE_CLIENT_ID"], "cGxhbmUtaWQ=");
    let reference =
        &env_ref(container_of(&all), "DATA_PLANE_CLIENT_SECRET")["valueFrom"]["secretKeyRef"];
    assert_eq!(reference["name"], secret["metadata"]["name"]);
    assert!(!rendered.contains("plane-secret"), "the secret in clear");
}

fn container_of(all: &std::collections::BTreeMap<String, Value>) -> &Value {
    container(only(all, "Deployment"))
}

#[test]
fn the_control_plane_chart_renders_postgres_tls_service_and_ingress() {
    let chart_dir = chart("ferry");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        r#"
database: {secretName: ferry-database}
tls: {secretName: ferry-tls}
secretsKey: {secretName: ferry-secrets-key}
publicUrl: https://ferry.example.com
replicaCount: 2
ingress:
  enabled: true
  className: nginx
  tls: [{hosts: [ferry.example.com], secretName: ferry-tls}]
"#,
    )
    .unwrap();
    lint(&chart_dir, &[&values], &[]);
    let rendered = render(&chart_dir, "ferry", &[&values], &[]);
    validate(&rendered);
    let all = manifests(&rendered);
    let container = container_of(&all);
    let args = container["args"].to_string();
    assert!(args.contains("\"server\""), "{args}");
    assert!(args.contains("--tls-cert=/etc/ferry-tls/tls.crt"), "{args}");
    assert!(args.contains("--metrics-listen=0.0.0.0:9102"), "{args}");
    let database = &env_ref(container, "FERRY_DATABASE_URL")["valueFrom"]["secretKeyRef"];
    assert_eq!(database["name"], "ferry-database");
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let ingress = only(&all, "Ingress");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        only(&all, "Service")["metadata"]["name"]
    );
    // No database, no control plane: refused, naming the key.
    let output = Command::new(helm())
        .args(["template", "t"])
        .arg(&chart_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("database.secretName"));
}

/// A static file server on loopback (Python's), stopped when dropped.
struct StaticServer(std::process::Child);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_chart_repository_is_added_and_installed_from_as_the_guide_does() {
    let repo = tempfile::tempdir().unwrap();
    let port = deploy_support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = succeed(
        Command::new(deploy_support::repository_root().join("deploy/helm/build-repo.sh"))
            .arg(repo.path())
            .arg(&url)
            .env("HELM", helm()),
    );
    assert!(out.contains("chart repository"), "{out}");
    let _server = StaticServer(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(repo.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    ferry_testkit::wait_for(
        "the chart repository to be served",
        std::time::Duration::from_secs(20),
        || async {
            reqwest::get(format!("{url}/index.yaml"))
                .await
                .ok()
                .filter(|response| response.status().is_success())
                .map(drop)
        },
    )
    .await;
    let homes = tempfile::tempdir().unwrap();
    let helm_in = |args: &[&str]| {
        let mut command = Command::new(helm());
        command
            .args(args)
            .env("HELM_CONFIG_HOME", homes.path().join("config"))
            .env("HELM_CACHE_HOME", homes.path().join("cache"))
            .env("HELM_DATA_HOME", homes.path().join("data"));
        command
    };
    succeed(&mut helm_in(&["repo", "add", "ferry", &url]));
    succeed(&mut helm_in(&["repo", "update"]));
    let found = succeed(&mut helm_in(&["search", "repo", "ferry", "--versions"]));
    assert!(found.contains("ferry/ferry-data-plane\t0.1.0"), "{found}");
    assert!(
        found
            .lines()
            .any(|line| line.starts_with("ferry/ferry ") && line.contains("0.1.0")),
        "{found}"
    );
    // The guide's step 6 with this repository's chart. Without a cluster, `upgrade
    // --install` cannot run; `template` resolves the same chart reference and version from
    // the repository and renders what it would install.
    let values = guide_values();
    let rendered = succeed(
        helm_in(&[
            "template",
            "airbyte-enterprise",
            "ferry/ferry-data-plane",
            "--version",
            "0.1.0",
            "-n",
            "airbyte-dataplane",
            "--values",
        ])
        .arg(&values),
    );
    validate(&rendered);
    let local = render(
        &chart("ferry-data-plane"),
        "airbyte-enterprise",
        &[&values],
        &[],
    );
    assert_eq!(
        rendered, local,
        "the packaged chart is the chart in the tree"
    );
    // A version the repository does not have is refused.
    let output = helm_in(&[
        "template",
        "x",
        "ferry/ferry-data-plane",
        "--version",
        "9.9.9",
        "--set",
        "airbyteUrl=https://cp.example.com",
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
}
