//! `<data-dir>/credentials.json` (mode 0600): the secrets bootstrap generated, which exist
//! nowhere else in clear.

use std::path::Path;

use anyhow::Context;
use ferry_control::auth::Credentials;
use ferry_control::bootstrap::BootstrapReport;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<ClientCredentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_dataplane: Option<DataplaneCredentials>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneCredentials {
    pub dataplane_id: String,
    pub client_id: String,
    pub client_secret: String,
}

fn client(credentials: &Credentials) -> ClientCredentials {
    ClientCredentials {
        client_id: credentials.client_id.clone(),
        client_secret: credentials.client_secret.clone(),
    }
}

/// Merges the secrets this start created into the file, leaving older ones in place.
pub fn record(path: &Path, report: &BootstrapReport) -> anyhow::Result<()> {
    if report.new_admin_credentials.is_none() && report.new_dataplane_credentials.is_none() {
        return Ok(());
    }
    let mut file: CredentialsFile = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => CredentialsFile::default(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    if let Some(admin) = &report.new_admin_credentials {
        file.admin = Some(client(admin));
    }
    if let Some(dataplane) = &report.new_dataplane_credentials {
        let credentials = client(dataplane);
        file.default_dataplane = Some(DataplaneCredentials {
            dataplane_id: report.default_dataplane_id.to_string(),
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
        });
    }
    let text = serde_json::to_vec_pretty(&file).context("encoding credentials")?;
    write_private(path, &text).with_context(|| format!("writing {}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The default data plane's credentials: from the file, or — when the secret was lost —
/// a rotated one, recorded anew.
pub async fn default_dataplane(
    path: &Path,
    store: &ferry_store::Store,
    report: &BootstrapReport,
) -> anyhow::Result<DataplaneCredentials> {
    let file: CredentialsFile = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => CredentialsFile::default(),
    };
    let dataplane = store
        .live_dataplane(report.default_dataplane_id)
        .await
        .context("reading the default data plane")?;
    if let Some(known) = file.default_dataplane.clone()
        && known.client_id == dataplane.client_id
        && ferry_control::auth::verify_secret(
            known.client_secret.clone(),
            dataplane.secret_hash.clone(),
        )
        .await
    {
        return Ok(known);
    }
    let secret = ferry_control::auth::new_credentials()
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .client_secret;
    let hash = ferry_control::auth::hash_secret(secret.clone())
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    store
        .rotate_dataplane_secret(dataplane.id, &hash, ferry_store::now_millis())
        .await
        .context("renewing the default data plane's secret")?;
    let credentials = DataplaneCredentials {
        dataplane_id: dataplane.id.to_string(),
        client_id: dataplane.client_id,
        client_secret: secret,
    };
    let mut file = file;
    file.default_dataplane = Some(credentials.clone());
    let text = serde_json::to_vec_pretty(&file).context("encoding credentials")?;
    write_private(path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(credentials)
}

/// The key connector configurations are encrypted with: `FERRY_SECRETS_KEY` (base64, 32
/// bytes; every control-plane replica must share it), or `<data-dir>/secrets.key`, made on
/// first start.
pub fn secrets_cipher(data_dir: &Path) -> anyhow::Result<ferry_control::secrets::SecretCipher> {
    use ferry_control::secrets::SecretCipher;
    if let Ok(key) = std::env::var("FERRY_SECRETS_KEY") {
        return SecretCipher::from_base64(&key)
            .map_err(|error| anyhow::anyhow!("FERRY_SECRETS_KEY: {error}"));
    }
    let path = data_dir.join("secrets.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretCipher::generate_key().map_err(|error| anyhow::anyhow!("{error}"))?;
            write_private(&path, key.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            key
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    SecretCipher::from_base64(&key).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}
