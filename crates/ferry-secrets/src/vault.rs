//! HashiCorp Vault or OpenBao, KV version 2 engine, over its HTTP API (plain JSON: no client
//! library needed). A secret is kept at `<mount>/data/<prefix><coordinate>` as
//! `{"value": "<secret>"}`, as Airbyte keeps it; deleting removes its metadata, so every
//! version goes.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::{Result, SecretsError, transport};

pub const NAME: &str = "Vault";

/// Where the KV v2 engine is mounted unless told otherwise (Vault's and OpenBao's default).
pub const DEFAULT_MOUNT: &str = "secret";

#[derive(Clone)]
pub struct VaultSettings {
    /// `https://vault.example.com:8200` (`VAULT_ADDR`).
    pub address: String,
    /// `VAULT_TOKEN`.
    pub token: String,
    /// The KV v2 engine's mount path.
    pub mount: String,
    /// Put before each coordinate (Airbyte's `VAULT_PREFIX`), e.g. `airbyte/`.
    pub prefix: String,
    /// An Enterprise namespace (`VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// A CA file trusted besides the system's roots (`VAULT_CACERT`).
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VaultSettings")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct VaultKv {
    base: Url,
    token: String,
    mount: String,
    prefix: String,
    namespace: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for VaultKv {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VaultKv")
            .field("address", &self.base.as_str())
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

/// A path of `/`-separated segments that cannot climb out of where it is put.
fn valid_path(text: &str) -> bool {
    text.split('/').all(|segment| {
        segment != ".."
            && segment != "."
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"_-.".contains(&byte))
    })
}

impl VaultKv {
    pub fn new(settings: VaultSettings) -> Result<Self> {
        let mut base = Url::parse(settings.address.trim()).map_err(|error| {
            SecretsError::Config(format!(
                "Vault address '{}': {error}",
                settings.address.trim()
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SecretsError::Config(format!(
                "Vault address '{base}': use http:// or https://"
            )));
        }
        // Behind a proxy Vault may live under a path (`https://host/vault`), which the
        // API's `v1/…` goes below, as Vault's own client does: joined to a base without a
        // trailing `/`, the last segment would be replaced.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if settings.token.trim().is_empty() {
            return Err(SecretsError::Config(
                "no Vault token: set VAULT_TOKEN".to_owned(),
            ));
        }
        let mount = settings.mount.trim_matches('/').to_owned();
        if mount.is_empty() || !valid_path(&mount) {
            return Err(SecretsError::Config(format!(
                "Vault mount '{}': letters, digits, '_', '-', '.' and '/' only",
                settings.mount
            )));
        }
        let prefix = settings.prefix.trim_start_matches('/').to_owned();
        if !valid_path(&prefix) {
            return Err(SecretsError::Config(format!(
                "Vault prefix '{}': letters, digits, '_', '-', '.' and '/' only",
                settings.prefix
            )));
        }
        Ok(Self {
            base,
            token: settings.token.trim().to_owned(),
            mount,
            prefix,
            namespace: settings.namespace.filter(|namespace| !namespace.is_empty()),
            http: crate::tls::http_client(settings.ca_cert.as_deref())?,
        })
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(&format!("v1/{path}"))
            .map_err(|error| SecretsError::Config(format!("Vault path '{path}': {error}")))
    }

    fn secret_path(&self, kind: &str, coordinate: &str) -> Result<String> {
        if !crate::references::is_valid_coordinate(coordinate) {
            return Err(SecretsError::BadReference(coordinate.to_owned()));
        }
        Ok(format!("{}/{kind}/{}{coordinate}", self.mount, self.prefix))
    }

    /// One call; the status and the JSON body (empty for a 204).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = self.url(path)?;
        let mut request = self
            .http
            .request(method, url)
            .header("X-Vault-Token", &self.token)
            .header("X-Vault-Request", "true");
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport(NAME, self.base.as_str(), &error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport(NAME, self.base.as_str(), &error))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    fn refusal(&self, status: StatusCode, body: &Value) -> SecretsError {
        let message = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|message| !message.is_empty())
            .unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_owned()
            });
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SecretsError::Unauthorized {
                manager: NAME,
                message,
            },
            _ => SecretsError::Refused {
                manager: NAME,
                status: status.as_u16(),
                message,
            },
        }
    }

    /// The token is looked up (it is valid) and the engine's settings read (the mount is a
    /// KV v2 engine this token reaches).
    pub async fn verify(&self) -> Result<()> {
        let (status, body) = self
            .call(Method::GET, "auth/token/lookup-self", None)
            .await?;
        if !status.is_success() {
            return Err(self.refusal(status, &body));
        }
        let (status, body) = self
            .call(Method::GET, &format!("{}/config", self.mount), None)
            .await?;
        match status {
            status if status.is_success() => Ok(()),
            // A token may lack the right to read the engine's settings and still write
            // secrets: only an absent engine is refused here.
            StatusCode::FORBIDDEN => Ok(()),
            StatusCode::NOT_FOUND => Err(SecretsError::Config(format!(
                "Vault has no KV version 2 engine mounted at '{}/' (enable one: `vault secrets enable -path={} kv-v2`)",
                self.mount, self.mount
            ))),
            status => Err(self.refusal(status, &body)),
        }
    }

    pub async fn write(&self, coordinate: &str, value: &str) -> Result<()> {
        let path = self.secret_path("data", coordinate)?;
        let (status, body) = self
            .call(Method::POST, &path, Some(json!({"data": {"value": value}})))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(self.refusal(status, &body))
        }
    }

    pub async fn read(&self, coordinate: &str) -> Result<String> {
        let path = self.secret_path("data", coordinate)?;
        let (status, body) = self.call(Method::GET, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(SecretsError::NotFound {
                manager: NAME,
                coordinate: coordinate.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(self.refusal(status, &body));
        }
        body.pointer("/data/data/value")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SecretsError::NotFound {
                manager: NAME,
                coordinate: coordinate.to_owned(),
            })
    }

    pub async fn delete(&self, coordinate: &str) -> Result<()> {
        let path = self.secret_path("metadata", coordinate)?;
        let (status, body) = self.call(Method::DELETE, &path, None).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refusal(status, &body))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vault(address: &str) -> VaultKv {
        VaultKv::new(VaultSettings {
            address: address.to_owned(),
            token: "token".to_owned(),
            mount: DEFAULT_MOUNT.to_owned(),
            prefix: "ferry/".to_owned(),
            namespace: None,
            ca_cert: None,
        })
        .unwrap()
    }

    #[test]
    fn an_address_under_a_path_keeps_it() {
        let coordinate = crate::references::new_coordinate(uuid::Uuid::new_v4());
        let path = vault("http://127.0.0.1:8200")
            .secret_path("data", &coordinate)
            .unwrap();
        assert_eq!(path, format!("secret/data/ferry/{coordinate}"));
        for (address, expected) in [
            ("http://127.0.0.1:8200", "http://127.0.0.1:8200/v1/"),
            ("http://127.0.0.1:8200/", "http://127.0.0.1:8200/v1/"),
            (
                "https://proxy.example/vault",
                "https://proxy.example/vault/v1/",
            ),
            (
                "https://proxy.example/vault/",
                "https://proxy.example/vault/v1/",
            ),
        ] {
            assert_eq!(
                vault(address).url(&path).unwrap().as_str(),
                format!("{expected}{path}"),
                "{address}"
            );
        }
        assert!(
            vault("http://h")
                .secret_path("data", "../sys/mounts")
                .is_err()
        );
    }
}
