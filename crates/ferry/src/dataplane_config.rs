//! `ferry dataplane --config file.yaml`: the data plane's settings as a versioned file.
//! Unknown keys are tolerated (a newer file must not stop an older data plane), and
//! Airbyte's Helm value names are accepted beside Ferry's: the guide's `values.yaml` (step 5)
//! works as it is. Its `airbyteUrl` is the control plane; `dataPlane.clientId`/`clientSecret`
//! the credentials, or `dataPlane.clientIdSecretKey`/`clientSecretSecretKey` name the
//! environment variables holding them (in a pod, the chart maps the Secret's keys there);
//! `edition` and `enterprise.*` are accepted and ignored (Ferry has no editions or licence).

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneFile {
    /// Format version; 1 is the only one so far.
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default, alias = "airbyteUrl")]
    pub control_plane_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret (`--client-secret-file`).
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// CA certificates trusted besides the system's (`--ca-cert`).
    #[serde(default)]
    pub ca_cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<u64>,
    #[serde(default)]
    pub storage_dir: Option<std::path::PathBuf>,
    /// Where the local-file connectors may read and write (`--local-root`).
    #[serde(default)]
    pub local_root: Option<std::path::PathBuf>,
    /// Where the probes and metrics are served (`--health-listen`).
    #[serde(default)]
    pub health_listen: Option<std::net::SocketAddr>,
    /// The grace running attempts get on SIGTERM (`--drain-seconds`).
    #[serde(default)]
    pub drain_seconds: Option<u64>,
    /// Airbyte's `dataPlane` block (the guide's step 5).
    #[serde(default)]
    pub data_plane: DataPlaneBlock,
    /// The guide's `storage` block: `type`, `bucket.{log,state,workloadOutput}`, and the
    /// provider's (`s3`, `gcs`, `azure`) credentials.
    #[serde(default)]
    pub storage: Option<crate::storage_settings::StorageBlock>,
    /// The guide's `secretsManager` block: the control plane's secrets manager.
    #[serde(default)]
    pub secrets_manager: Option<crate::secrets_manager::SecretsManagerBlock>,
    /// Airbyte's `edition` and `enterprise` (licence key): accepted, ignored.
    #[serde(default)]
    pub edition: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub enterprise: Option<serde_yaml_ng::Value>,
}

/// The guide's `dataPlane` keys Ferry reads. Airbyte's others (`controlPlaneAuthEndpoint`,
/// `serviceAccount*`) are tolerated and unused: the credentials are the only identity.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlaneBlock {
    /// The plane's name in the guide (`"preview-data-plane"`); only logged, the identity is
    /// the credentials'.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The Secret's key holding the client id, e.g. `DATA_PLANE_CLIENT_ID`, or the guide's
    /// lower-case `data_plane_client_id`: also read as an environment variable's name.
    #[serde(default)]
    pub client_id_secret_key: Option<String>,
    #[serde(default)]
    pub client_secret_secret_key: Option<String>,
}

/// Where the client id may come from, in order: the guide's Secret key, Airbyte's chart's,
/// their lower-case spellings (the guide's `kubectl create secret` example), then the one
/// `dataPlane.clientIdSecretKey` names.
const CLIENT_ID_VARIABLES: &[&str] = &[
    "DATA_PLANE_CLIENT_ID",
    "DATAPLANE_CLIENT_ID",
    "data_plane_client_id",
    "dataplane_client_id",
];
const CLIENT_SECRET_VARIABLES: &[&str] = &[
    "DATA_PLANE_CLIENT_SECRET",
    "DATAPLANE_CLIENT_SECRET",
    "data_plane_client_secret",
    "dataplane_client_secret",
];

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn first_set(env: Lookup, names: &[&str], named_by_file: Option<&str>) -> Option<String> {
    names
        .iter()
        .copied()
        .chain(named_by_file)
        .find_map(|name| env(name).filter(|value| !value.is_empty()))
}

impl DataplaneFile {
    /// The client id from the environment (see `CLIENT_ID_VARIABLES`), else the file's.
    pub fn client_id(&self) -> Option<String> {
        self.client_id_in(&process_env)
    }

    fn client_id_in(&self, env: Lookup) -> Option<String> {
        first_set(
            env,
            CLIENT_ID_VARIABLES,
            self.data_plane.client_id_secret_key.as_deref(),
        )
        .or_else(|| self.client_id.clone())
        .or_else(|| self.data_plane.client_id.clone())
    }

    /// The client secret from the environment, else `None` (the file's is
    /// `client_secret_in_file`); never logged.
    pub fn client_secret_from_env(&self) -> Option<String> {
        self.client_secret_in(&process_env)
    }

    fn client_secret_in(&self, env: Lookup) -> Option<String> {
        first_set(
            env,
            CLIENT_SECRET_VARIABLES,
            self.data_plane.client_secret_secret_key.as_deref(),
        )
    }

    /// Keys of Airbyte's that this file sets and Ferry ignores, to say so once at start.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        [
            ("edition", self.edition.is_some()),
            ("enterprise", self.enterprise.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }

    pub fn client_secret_in_file(&self) -> Option<String> {
        self.client_secret
            .clone()
            .or_else(|| self.data_plane.client_secret.clone())
    }
}

pub fn load(path: &Path) -> anyhow::Result<DataplaneFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading data-plane config {}", path.display()))?;
    parse(&text).with_context(|| format!("in data-plane config {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<DataplaneFile> {
    let file: DataplaneFile =
        serde_yaml_ng::from_str(text).map_err(|error| anyhow::anyhow!("{error}"))?;
    if let Some(version) = file.version
        && version != 1
    {
        bail!("version {version} is not supported (expected 1)");
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_ferry_and_helm_names_and_ignores_unknown_keys() {
        let file = parse(
            "version: 1\nairbyteUrl: https://cp.example.com\nclientId: abc\nclientSecret: s3\nconcurrency: 4\nedition: enterprise\n",
        )
        .unwrap();
        assert_eq!(
            file.control_plane_url.as_deref(),
            Some("https://cp.example.com")
        );
        assert_eq!(file.client_id.as_deref(), Some("abc"));
        assert_eq!(file.concurrency, Some(4));
    }

    #[test]
    fn reads_secret_file_and_ca_cert() {
        let file = parse("clientSecretFile: /run/secrets/s\ncaCert: /etc/ferry/ca.pem\n").unwrap();
        assert_eq!(
            file.client_secret_file.as_deref(),
            Some(Path::new("/run/secrets/s"))
        );
        assert_eq!(
            file.ca_cert.as_deref(),
            Some(Path::new("/etc/ferry/ca.pem"))
        );
    }

    /// The guide's step-5 values.yaml, as the tests' fixture restores it.
    const GUIDE_VALUES: &str = include_str!("../tests/fixtures/guide/values.yaml");

    #[test]
    fn reads_the_guides_values_file() {
        let file = parse(GUIDE_VALUES).unwrap();
        assert_eq!(
            file.control_plane_url.as_deref(),
            Some("https://airbyte.example.com")
        );
        assert_eq!(file.data_plane.id.as_deref(), Some("preview-data-plane"));
        assert_eq!(file.ignored_keys(), ["edition", "enterprise"]);
        // No credentials in the file: they come from the Secret, through the environment.
        let none = |_: &str| None;
        assert_eq!(file.client_id_in(&none), None);
        let env = |name: &str| (name == "DATA_PLANE_CLIENT_ID").then(|| "from-secret".to_owned());
        assert_eq!(file.client_id_in(&env).as_deref(), Some("from-secret"));
    }

    #[test]
    fn finds_credentials_under_each_spelling_and_the_key_the_file_names() {
        let file =
            parse("dataPlane:\n  clientIdSecretKey: MY_ID\n  clientSecretSecretKey: MY_SECRET\n")
                .unwrap();
        for name in ["DATAPLANE_CLIENT_ID", "data_plane_client_id", "MY_ID"] {
            let env = |asked: &str| (asked == name).then(|| format!("id-{name}"));
            assert_eq!(
                file.client_id_in(&env),
                Some(format!("id-{name}")),
                "{name}"
            );
        }
        let env = |asked: &str| (asked == "MY_SECRET").then(|| "s".to_owned());
        assert_eq!(file.client_secret_in(&env).as_deref(), Some("s"));
        // An empty variable is as good as none: the next spelling is tried.
        let env = |asked: &str| match asked {
            "DATA_PLANE_CLIENT_ID" => Some(String::new()),
            "dataplane_client_id" => Some("lower".to_owned()),
            _ => None,
        };
        assert_eq!(file.client_id_in(&env).as_deref(), Some("lower"));
        let inline = parse("dataPlane:\n  clientId: inline\n  clientSecret: s3cret\n").unwrap();
        assert_eq!(
            inline.client_id_in(&|_: &str| None).as_deref(),
            Some("inline")
        );
        assert_eq!(inline.client_secret_in_file().as_deref(), Some("s3cret"));
    }

    #[test]
    fn refuses_wrong_types_in_the_guides_blocks() {
        let error = parse("dataPlane:\n  id: [a, b]\n").unwrap_err();
        assert!(format!("{error:#}").contains("dataPlane"), "{error:#}");
        let error = parse("drainSeconds: soon\n").unwrap_err();
        assert!(format!("{error:#}").contains("drainSeconds"), "{error:#}");
    }

    #[test]
    fn refuses_other_versions_and_bad_types() {
        assert!(parse("version: 2\n").is_err());
        let error = parse("concurrency: lots\n").unwrap_err();
        assert!(format!("{error:#}").contains("concurrency"), "{error:#}");
    }
}
