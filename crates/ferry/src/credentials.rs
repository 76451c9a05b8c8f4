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
    pub admin: Option<AdminCredentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_dataplane: Option<DataplaneCredentials>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// The instance admin's API credentials and web-UI sign-in, each part present once made
/// here (API credentials given by `FERRY_ADMIN_CLIENT_ID`/`_SECRET` are not written).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
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
    if report.new_admin_credentials.is_none()
        && report.new_dataplane_credentials.is_none()
        && report.new_admin_password.is_none()
    {
        return Ok(());
    }
    let mut file: CredentialsFile = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => CredentialsFile::default(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let admin = file.admin.get_or_insert_with(AdminCredentials::default);
    if let Some(credentials) = &report.new_admin_credentials {
        admin.client_id = Some(credentials.client_id.clone());
        admin.client_secret = Some(credentials.client_secret.clone());
    }
    if let Some(password) = &report.new_admin_password {
        admin.email = Some(report.admin_email.clone());
        admin.password = Some(password.clone());
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

/// The default data plane's credentials as they now work, and its row as they match it (a
/// change of its secret hash in the store means they no longer do).
pub struct DefaultDataplane {
    pub dataplane: ferry_store::Dataplane,
    pub credentials: DataplaneCredentials,
}

fn api_error(error: ferry_control::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// The default data plane's credentials, made good: from the file while they still work; a
/// new secret when they do not (rotated through the API, or the file lost); a new default
/// data plane when it was deleted. Recorded in the file (0600) whenever they change.
pub async fn ensure_default_dataplane(
    path: &Path,
    store: &ferry_store::Store,
) -> anyhow::Result<DefaultDataplane> {
    let mut file: CredentialsFile = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => CredentialsFile::default(),
    };
    let id = ferry_control::bootstrap::default_dataplane_id(store)
        .await
        .map_err(api_error)?
        .context("bootstrap made no default data plane")?;
    let (dataplane, secret) = match store.live_dataplane(id).await {
        Ok(dataplane) => {
            if let Some(known) = file.default_dataplane.clone()
                && known.dataplane_id == dataplane.id.to_string()
                && known.client_id == dataplane.client_id
                && ferry_control::auth::verify_secret(
                    known.client_secret.clone(),
                    dataplane.secret_hash.clone(),
                )
                .await
            {
                return Ok(DefaultDataplane {
                    dataplane,
                    credentials: known,
                });
            }
            let secret = ferry_control::auth::new_credentials()
                .map_err(api_error)?
                .client_secret;
            let hash = ferry_control::auth::hash_secret(secret.clone())
                .await
                .map_err(api_error)?;
            let dataplane = store
                .rotate_dataplane_secret(dataplane.id, &hash, ferry_store::now_millis())
                .await
                .context("renewing the default data plane's secret")?;
            tracing::info!(dataplane_id = %id, "gave the default data plane a new secret");
            (dataplane, secret)
        }
        Err(ferry_store::StoreError::NotFound { .. }) => {
            let (id, credentials) = ferry_control::bootstrap::recreate_default_dataplane(store)
                .await
                .map_err(api_error)
                .context("making a new default data plane")?;
            tracing::warn!(dataplane_id = %id, "the default data plane was deleted; made a new one");
            let dataplane = store.live_dataplane(id).await?;
            (dataplane, credentials.client_secret)
        }
        Err(error) => return Err(error).context("reading the default data plane"),
    };
    let credentials = DataplaneCredentials {
        dataplane_id: dataplane.id.to_string(),
        client_id: dataplane.client_id.clone(),
        client_secret: secret,
    };
    file.default_dataplane = Some(credentials.clone());
    let text = serde_json::to_vec_pretty(&file).context("encoding credentials")?;
    write_private(path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(DefaultDataplane {
        dataplane,
        credentials,
    })
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
