//! The secrets managers the tests start on loopback, each on a port of its own, and read
//! with their own tools (boto3, the `bao` CLI), never with Ferry's client: AWS Secrets
//! Manager from moto's server with its IAM checks on (every request's SigV4 signature and
//! access key verified), and Vault's API from OpenBao's dev server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_testkit::wait_for;
use serde_json::Value;

/// The tool an environment variable names, or a failure naming the setup script to run.
fn tool(variable: &str, script: &str) -> PathBuf {
    match std::env::var(variable) {
        Ok(path) if std::path::Path::new(&path).exists() => PathBuf::from(path),
        _ => panic!(
            "{variable} is not set to an installed program: run `. scripts/setup/{script}` (scripts/test.sh does)"
        ),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn answers(url: &str, client: reqwest::Client) {
    wait_for(&format!("{url} to answer"), Duration::from_secs(30), || {
        let client = client.clone();
        async move { client.get(url).send().await.ok().map(drop) }
    })
    .await;
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A secrets manager under test: what Ferry is given to use it, and what it holds.
pub trait Manager {
    /// The environment `ferry server`/`ferry up`/`ferry dataplane` read it from.
    fn env(&self) -> Vec<(String, String)>;
    /// Every secret it holds, by name (coordinate), read with the manager's own tool.
    fn secrets(&self) -> BTreeMap<String, String>;
}

/// moto's server; `access_key_id`/`secret_access_key` are an IAM user's, made through the
/// few requests moto lets through before it starts checking.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    python: PathBuf,
}

const MAKE_USER: &str = r#"
import boto3, json, os
iam = boto3.client("iam", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="ferry")
key = iam.create_access_key(UserName="ferry")["AccessKey"]
iam.put_user_policy(UserName="ferry", PolicyName="secrets", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}))
print(json.dumps([key["AccessKeyId"], key["SecretAccessKey"]]))
"#;

const LIST_SECRETS: &str = r#"
import boto3, json, os
client = boto3.client("secretsmanager", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=os.environ["KEY_ID"], aws_secret_access_key=os.environ["SECRET"])
names = [s["Name"] for page in client.get_paginator("list_secrets").paginate() for s in page["SecretList"]]
print(json.dumps({name: client.get_secret_value(SecretId=name)["SecretString"] for name in names}))
"#;

const LIST_TAGS: &str = r#"
import boto3, json, os
client = boto3.client("secretsmanager", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=os.environ["KEY_ID"], aws_secret_access_key=os.environ["SECRET"])
secrets = [s for page in client.get_paginator("list_secrets").paginate() for s in page["SecretList"]]
print(json.dumps({s["Name"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in secrets}))
"#;

impl Moto {
    /// The tags of every secret, by name.
    pub fn tags(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        serde_json::from_str(&run(Command::new(&self.python)
            .args(["-c", LIST_TAGS])
            .env("ENDPOINT", &self.endpoint)
            .env("KEY_ID", &self.access_key_id)
            .env("SECRET", &self.secret_access_key)))
        .unwrap()
    }

    pub async fn start() -> Self {
        let server = tool("FERRY_MOTO_SERVER", "moto.sh");
        let python = server.with_file_name("python");
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Three unchecked requests make the IAM user; every later one is checked.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        answers(&format!("{endpoint}/moto-api/"), reqwest::Client::new()).await;
        let keys: Value = serde_json::from_str(&run(Command::new(&python)
            .args(["-c", MAKE_USER])
            .env("ENDPOINT", &endpoint)))
        .unwrap();
        Self {
            child,
            endpoint,
            access_key_id: keys[0].as_str().unwrap().to_owned(),
            secret_access_key: keys[1].as_str().unwrap().to_owned(),
            python,
        }
    }
}

impl Manager for Moto {
    fn env(&self) -> Vec<(String, String)> {
        [
            ("FERRY_SECRETS_MANAGER", "AWS_SECRET_MANAGER"),
            ("AWS_SECRET_MANAGER_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &self.endpoint),
            ("AWS_SECRET_MANAGER_ACCESS_KEY_ID", &self.access_key_id),
            (
                "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY",
                &self.secret_access_key,
            ),
            // Put on every secret the control plane creates.
            (
                "AWS_SECRET_MANAGER_SECRET_TAGS",
                "team=data,owner=ferry-tests",
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    fn secrets(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&run(Command::new(&self.python)
            .args(["-c", LIST_SECRETS])
            .env("ENDPOINT", &self.endpoint)
            .env("KEY_ID", &self.access_key_id)
            .env("SECRET", &self.secret_access_key)))
        .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenBao's dev server (in memory, KV v2 at `secret/`) over HTTPS, with a certificate
/// from a CA of its own making and a root token of its own; Ferry keeps its secrets under
/// [`Bao::PREFIX`].
pub struct Bao {
    child: Child,
    bao: PathBuf,
    pub address: String,
    pub token: String,
    /// The CA of its certificate (`VAULT_CACERT`).
    pub ca_cert: PathBuf,
    _files: tempfile::TempDir,
}

impl Bao {
    pub const PREFIX: &str = "ferry/";

    pub async fn start() -> Self {
        let bao = tool("FERRY_BAO", "openbao.sh");
        let port = free_port();
        let token = uuid::Uuid::new_v4().to_string();
        let files = tempfile::tempdir().unwrap();
        let child = Command::new(&bao)
            .args(["server", "-dev", "-dev-no-store-token", "-dev-tls"])
            .arg(format!("-dev-tls-cert-dir={}", files.path().display()))
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", files.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ca_cert = files.path().join("vault-ca.pem");
        wait_for("bao to write its CA", Duration::from_secs(30), || {
            let ca_cert = ca_cert.clone();
            async move { std::fs::read(&ca_cert).ok().filter(|pem| !pem.is_empty()) }
        })
        .await;
        let pem = std::fs::read(&ca_cert).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
            .build()
            .unwrap();
        let address = format!("https://127.0.0.1:{port}");
        answers(&format!("{address}/v1/sys/health"), client).await;
        Self {
            child,
            bao,
            address,
            token,
            ca_cert,
            _files: files,
        }
    }

    /// Writes `value` at `name` under Ferry's prefix, as another application (or another
    /// workspace's source) would have.
    pub fn put(&self, name: &str, value: &str) {
        run(self.cli().args([
            "kv",
            "put",
            "-mount=secret",
            &format!("{}{name}", Self::PREFIX),
            &format!("value={value}"),
        ]));
    }

    fn cli(&self) -> Command {
        let mut command = Command::new(&self.bao);
        command
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.token)
            .env("VAULT_ADDR", &self.address)
            .env("VAULT_TOKEN", &self.token)
            .env("BAO_CACERT", &self.ca_cert)
            .env("VAULT_CACERT", &self.ca_cert);
        command
    }
}

impl Manager for Bao {
    fn env(&self) -> Vec<(String, String)> {
        [
            ("FERRY_SECRETS_MANAGER", "VAULT"),
            ("VAULT_ADDR", &self.address),
            ("VAULT_TOKEN", &self.token),
            ("VAULT_PREFIX", Self::PREFIX),
            ("VAULT_CACERT", &self.ca_cert.to_string_lossy()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    fn secrets(&self) -> BTreeMap<String, String> {
        let listed = self
            .cli()
            .args(["kv", "list", "-mount=secret", "-format=json", Self::PREFIX])
            .output()
            .unwrap();
        // Nothing under the prefix: "No value found", exit 2.
        let names: Vec<String> = if listed.status.success() {
            serde_json::from_slice(&listed.stdout).unwrap()
        } else {
            Vec::new()
        };
        names
            .into_iter()
            .map(|name| {
                let value = run(self.cli().args([
                    "kv",
                    "get",
                    "-mount=secret",
                    "-field=value",
                    &format!("{}{name}", Self::PREFIX),
                ]));
                (name, value)
            })
            .collect()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
