//! `ferry dataplane --config file.yaml`: the data plane's settings as a versioned file.
//! Unknown keys are tolerated (a newer file must not stop an older data plane), and
//! Airbyte's Helm value names are accepted beside Ferry's.

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

    #[test]
    fn refuses_other_versions_and_bad_types() {
        assert!(parse("version: 2\n").is_err());
        let error = parse("concurrency: lots\n").unwrap_err();
        assert!(format!("{error:#}").contains("concurrency"), "{error:#}");
    }
}
