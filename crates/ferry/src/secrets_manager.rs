//! `secretsManager`: where both planes keep connector secrets, from flags, the environment
//! (Airbyte's and the providers' variable names) or the data plane's YAML (the guide's
//! block). Credentials are never flags: they come from the environment, under the names
//! the guide's `…SecretKey` keys give (the Helm chart puts those keys of its secret into
//! the environment) or the provider's usual ones.

use anyhow::{Context, bail};
use clap::Args;
use ferry_secrets::SecretsManager;
use ferry_secrets::aws::{AwsSecretsManager, AwsSettings};
use ferry_secrets::vault::{DEFAULT_MOUNT, VaultKv, VaultSettings};
use serde::Deserialize;

#[derive(Args, Debug, Clone, Default)]
pub struct SecretsManagerArgs {
    /// Where connector secrets are kept: `AWS_SECRET_MANAGER`, or `VAULT` (HashiCorp Vault
    /// or OpenBao, KV v2); without one, encrypted in the control plane's store. The control
    /// plane and its data planes must name the same one.
    #[arg(long, env = "FERRY_SECRETS_MANAGER")]
    pub secrets_manager: Option<String>,
    /// AWS Secrets Manager's region (else `AWS_REGION`).
    #[arg(long, env = "AWS_SECRET_MANAGER_REGION")]
    pub aws_secret_manager_region: Option<String>,
    /// Tags put on the secrets Ferry creates in AWS: `key=value,key=value`.
    #[arg(long, env = "AWS_SECRET_MANAGER_SECRET_TAGS")]
    pub aws_secret_manager_tags: Option<String>,
    /// The KMS key (id or ARN) AWS encrypts the secrets with.
    #[arg(long, env = "AWS_KMS_KEY_ARN")]
    pub aws_secret_manager_kms: Option<String>,
    /// Vault's address, `https://vault.example.com:8200` (the token: `VAULT_TOKEN`).
    #[arg(long, env = "VAULT_ADDR")]
    pub vault_address: Option<String>,
    /// Put before every secret's path in Vault, e.g. `ferry/`.
    #[arg(long, env = "VAULT_PREFIX")]
    pub vault_prefix: Option<String>,
    /// Where Vault's KV v2 engine is mounted (default `secret`).
    #[arg(long, env = "VAULT_MOUNT")]
    pub vault_mount: Option<String>,
}

/// The guide's `secretsManager:` block of the data plane's values.yaml. Its `secretName`
/// (the Kubernetes secret holding the credentials) is not read: outside Kubernetes, the
/// keys it names are environment variables.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsManagerBlock {
    /// The chart's switch; absent means on when a type is given.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub aws_secret_manager: Option<AwsBlock>,
    #[serde(default)]
    pub vault: Option<VaultBlock>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsBlock {
    #[serde(default)]
    pub region: Option<String>,
    /// `credentials` (keys from the environment) or `instanceProfile`.
    #[serde(default)]
    pub authentication_type: Option<String>,
    /// The environment variable holding the access key id.
    #[serde(default)]
    pub access_key_id_secret_key: Option<String>,
    #[serde(default)]
    pub secret_access_key_secret_key: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub kms: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Tag {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultBlock {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// The environment variable holding the token.
    #[serde(default)]
    pub auth_token_secret_key: Option<String>,
    #[serde(default)]
    pub mount: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn first_env(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| env(name))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Aws,
    Vault,
}

/// `AWS_SECRET_MANAGER`, `awsSecretManager`, `aws-secret-manager`… and `VAULT`; `none`
/// (or empty) for the default store.
fn kind(name: &str) -> anyhow::Result<Option<Kind>> {
    let flat: String = name
        .chars()
        .filter(|character| character.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Ok(match flat.as_str() {
        "" | "none" | "default" | "database" => None,
        "awssecretmanager" | "awssecretsmanager" => Some(Kind::Aws),
        "vault" | "openbao" => Some(Kind::Vault),
        _ => bail!(
            "secretsManager.type '{name}' is not supported: use AWS_SECRET_MANAGER or VAULT (or none)"
        ),
    })
}

/// Tags as `key=value,key=value`.
fn parse_tags(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            _ => bail!("secrets manager tag '{pair}': write key=value"),
        })
        .collect()
}

/// The manager the settings name (none: the default encrypted store). Its credentials are
/// not tried here: [`start`] does.
pub fn configured(
    args: &SecretsManagerArgs,
    file: Option<&SecretsManagerBlock>,
) -> anyhow::Result<Option<SecretsManager>> {
    let file = file.filter(|block| block.enabled != Some(false));
    let named = args
        .secrets_manager
        .clone()
        .or_else(|| env("SECRET_PERSISTENCE"))
        .or_else(|| file.and_then(|block| block.kind.clone()));
    let Some(kind) = named.as_deref().map(kind).transpose()?.flatten() else {
        return Ok(None);
    };
    let ca_cert = env("FERRY_SECRETS_MANAGER_CA_CERT").map(Into::into);
    Ok(Some(match kind {
        Kind::Aws => {
            let block = file.and_then(|block| block.aws_secret_manager.as_ref());
            let instance_profile = block
                .and_then(|block| block.authentication_type.as_deref())
                .is_some_and(|kind| kind.eq_ignore_ascii_case("instanceProfile"));
            let key_name = block
                .and_then(|block| block.access_key_id_secret_key.clone())
                .unwrap_or_else(|| "AWS_SECRET_MANAGER_ACCESS_KEY_ID".to_owned());
            let secret_name = block
                .and_then(|block| block.secret_access_key_secret_key.clone())
                .unwrap_or_else(|| "AWS_SECRET_MANAGER_SECRET_ACCESS_KEY".to_owned());
            // An instance profile's credentials are the ones the platform put in the
            // environment; the guide's own keys win under `credentials`.
            let (access_key_id, secret_access_key, session_token) =
                match (instance_profile, env(&key_name), env(&secret_name)) {
                    (false, Some(id), Some(secret)) => (id, secret, None),
                    _ => (
                        env("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                        env("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
                        env("AWS_SESSION_TOKEN"),
                    ),
                };
            if instance_profile && access_key_id.is_empty() {
                bail!(
                    "secretsManager.awsSecretManager.authenticationType instanceProfile: no role credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (instance metadata is not read yet)"
                );
            }
            let tags = match (
                &args.aws_secret_manager_tags,
                block.and_then(|b| b.tags.as_ref()),
            ) {
                (Some(text), _) => parse_tags(text)?,
                (None, Some(tags)) => tags
                    .iter()
                    .filter_map(|tag| {
                        Some((tag.key.clone()?, tag.value.clone().unwrap_or_default()))
                    })
                    .collect(),
                (None, None) => Vec::new(),
            };
            SecretsManager::Aws(
                AwsSecretsManager::new(AwsSettings {
                    region: args
                        .aws_secret_manager_region
                        .clone()
                        .or_else(|| block.and_then(|block| block.region.clone()))
                        .or_else(|| first_env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
                        .unwrap_or_default(),
                    endpoint: first_env(&["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]),
                    access_key_id,
                    secret_access_key,
                    session_token,
                    tags,
                    kms_key_id: args
                        .aws_secret_manager_kms
                        .clone()
                        .or_else(|| block.and_then(|block| block.kms.clone())),
                    ca_cert,
                })
                .context("secrets manager")?,
            )
        }
        Kind::Vault => {
            let block = file.and_then(|block| block.vault.as_ref());
            let token_name = block.and_then(|block| block.auth_token_secret_key.clone());
            let token = token_name
                .as_deref()
                .and_then(env)
                .or_else(|| first_env(&["VAULT_TOKEN", "VAULT_AUTH_TOKEN"]))
                .unwrap_or_default();
            SecretsManager::Vault(
                VaultKv::new(VaultSettings {
                    address: args
                        .vault_address
                        .clone()
                        .or_else(|| block.and_then(|block| block.address.clone()))
                        .or_else(|| env("VAULT_ADDRESS"))
                        .context("secrets manager VAULT: no address: pass --vault-address or set VAULT_ADDR")?,
                    token,
                    mount: args
                        .vault_mount
                        .clone()
                        .or_else(|| block.and_then(|block| block.mount.clone()))
                        .unwrap_or_else(|| DEFAULT_MOUNT.to_owned()),
                    prefix: args
                        .vault_prefix
                        .clone()
                        .or_else(|| block.and_then(|block| block.prefix.clone()))
                        .unwrap_or_default(),
                    namespace: env("VAULT_NAMESPACE"),
                    ca_cert: ca_cert.or_else(|| env("VAULT_CACERT").map(Into::into)),
                })
                .context("secrets manager")?,
            )
        }
    }))
}

/// The configured manager, its credentials tried once: a wrong one stops the start here,
/// in one line, rather than failing every sync later.
pub async fn start(
    args: &SecretsManagerArgs,
    file: Option<&SecretsManagerBlock>,
) -> anyhow::Result<Option<SecretsManager>> {
    let Some(manager) = configured(args, file)? else {
        return Ok(None);
    };
    manager
        .verify()
        .await
        .with_context(|| format!("secrets manager ({})", manager.name()))?;
    tracing::info!(
        manager = manager.name(),
        "connector secrets kept in the secrets manager"
    );
    Ok(Some(manager))
}

/// What `ferry up` gives its data plane so that it reads the same manager (credentials
/// are inherited with the rest of the environment).
pub fn child_environment(args: &SecretsManagerArgs) -> Vec<(&'static str, String)> {
    [
        ("FERRY_SECRETS_MANAGER", &args.secrets_manager),
        ("AWS_SECRET_MANAGER_REGION", &args.aws_secret_manager_region),
        (
            "AWS_SECRET_MANAGER_SECRET_TAGS",
            &args.aws_secret_manager_tags,
        ),
        ("AWS_KMS_KEY_ARN", &args.aws_secret_manager_kms),
        ("VAULT_ADDR", &args.vault_address),
        ("VAULT_PREFIX", &args.vault_prefix),
        ("VAULT_MOUNT", &args.vault_mount),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_of_managers_and_tags() {
        assert_eq!(kind("AWS_SECRET_MANAGER").unwrap(), Some(Kind::Aws));
        assert_eq!(kind("awsSecretManager").unwrap(), Some(Kind::Aws));
        assert_eq!(kind("VAULT").unwrap(), Some(Kind::Vault));
        assert_eq!(kind("").unwrap(), None);
        let error = kind("GOOGLE_SECRET_MANAGER").unwrap_err().to_string();
        assert!(error.contains("AWS_SECRET_MANAGER or VAULT"), "{error}");
        assert_eq!(
            parse_tags("team=data, env=prod").unwrap(),
            vec![
                ("team".to_owned(), "data".to_owned()),
                ("env".to_owned(), "prod".to_owned())
            ]
        );
        assert!(parse_tags("nokey").is_err());
    }

    #[test]
    fn the_guides_block_reads() {
        let block: SecretsManagerBlock = serde_yaml_ng::from_str(
            "secretName: airbyte-config-secrets\ntype: AWS_SECRET_MANAGER\nawsSecretManager:\n  region: us-west-2\n  authenticationType: credentials\n  accessKeyIdSecretKey: AWS_SECRET_MANAGER_ACCESS_KEY_ID\n  secretAccessKeySecretKey: AWS_SECRET_MANAGER_SECRET_ACCESS_KEY\n  tags:\n    - key: team\n      value: data\n",
        )
        .unwrap();
        assert_eq!(block.kind.as_deref(), Some("AWS_SECRET_MANAGER"));
        let aws = block.aws_secret_manager.unwrap();
        assert_eq!(aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(aws.tags.unwrap().len(), 1);
        let disabled: SecretsManagerBlock =
            serde_yaml_ng::from_str("enabled: false\ntype: VAULT\n").unwrap();
        assert!(
            configured(&SecretsManagerArgs::default(), Some(&disabled))
                .unwrap()
                .is_none()
        );
    }
}
