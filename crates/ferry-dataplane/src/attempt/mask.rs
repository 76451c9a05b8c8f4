//! Secrets kept out of an attempt's log: the values of the configuration fields the
//! connector's SPEC marks `airbyte_secret` (a native connector's from the registry), and of
//! fields named as secrets are (for a custom program, whose SPEC the control plane keeps),
//! are replaced wherever a line holds them, whoever printed it.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use ferry_protocol::ConnectorRole;
use serde_json::Value;

const MASK: &str = "**********";

/// Shorter values are not masked: they would blank out ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// Key names that hold a secret whatever the SPEC says (Airbyte's own list, lowercased).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "secret_key",
    "private_key",
    "client_key",
    "passphrase",
    "auth_header",
    "credentials_json",
    "jdbc_url_params",
    "connection_string",
];

#[derive(Clone, Default)]
pub(crate) struct Masker(Arc<RwLock<Vec<String>>>);

impl Masker {
    /// Learns the secrets of one connector's configuration: by its SPEC (the registry's
    /// for a native connector; a custom program's own, asked for here) and by names.
    pub(crate) async fn learn(
        &self,
        role: ConnectorRole,
        connector_type: &str,
        command: Option<&[String]>,
        configuration: &Value,
    ) {
        let mut secret_keys = BTreeSet::new();
        match command {
            None => {
                if let Some(registration) = ferry_connectors::registry::native(role, connector_type)
                {
                    collect_secret_keys(&(registration.spec)(), &mut secret_keys);
                }
            }
            Some(command) => {
                if let Some(spec) = program_spec(command).await {
                    collect_secret_keys(&spec, &mut secret_keys);
                }
            }
        }
        let mut found = Vec::new();
        collect_values(configuration, &secret_keys, false, &mut found);
        let Ok(mut secrets) = self.0.write() else {
            return;
        };
        secrets.extend(found);
        // Longest first, so that a secret holding another is masked whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
    }

    pub(crate) fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let Ok(secrets) = self.0.read() else {
            return Cow::Borrowed(line);
        };
        let mut line = Cow::Borrowed(line);
        for secret in secrets.iter() {
            if line.contains(secret.as_str()) {
                line = Cow::Owned(line.replace(secret.as_str(), MASK));
            }
        }
        line
    }
}

/// Longest a custom program may take to print its SPEC; past it, names alone decide.
const SPEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn program_spec(command: &[String]) -> Option<Value> {
    let program = ferry_connectors::ExternalConnector::new(command).ok()?;
    match tokio::time::timeout(SPEC_TIMEOUT, program.spec()).await {
        Ok(Ok(spec)) => Some(spec),
        Ok(Err(error)) => {
            tracing::warn!(%error, "a custom connector's SPEC could not be read; its secrets are masked by name only");
            None
        }
        Err(_) => None,
    }
}

/// The property names a SPEC marks `airbyte_secret`, at any depth (`oneOf` branches,
/// `items`, nested objects).
fn collect_secret_keys(schema: &Value, keys: &mut BTreeSet<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                for (name, property) in properties {
                    if property.get("airbyte_secret") == Some(&Value::Bool(true)) {
                        keys.insert(name.clone());
                    }
                }
            }
            for value in object.values() {
                collect_secret_keys(value, keys);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_secret_keys(item, keys)),
        _ => {}
    }
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|secret| name.contains(secret))
}

fn collect_values(value: &Value, keys: &BTreeSet<String>, secret: bool, found: &mut Vec<String>) {
    match value {
        Value::String(text) if secret => {
            if text.len() >= MIN_SECRET_LEN {
                found.push(text.clone());
            }
            // A multi-line secret (a PEM key) may be printed a line at a time.
            found.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| line.len() >= 16 && !line.starts_with("-----"))
                    .map(str::to_owned),
            );
        }
        Value::Object(object) => {
            for (name, value) in object {
                let secret = secret || keys.contains(name) || is_secret_name(name);
                collect_values(value, keys, secret, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_values(item, keys, secret, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn masks_spec_secrets_and_secret_names_at_any_depth() {
        let masker = Masker::default();
        masker
            .learn(
                ConnectorRole::Source,
                "postgres",
                None,
                &json!({"host": "db.example.com", "password": "hunter2-very-secret",
                        "tunnel": {"tunnel_user_password": "tunnelpass"}, "port": 5432}),
            )
            .await;
        let line = "connecting to db.example.com with hunter2-very-secret via tunnelpass";
        assert_eq!(
            masker.mask(line),
            "connecting to db.example.com with ********** via **********"
        );
        assert_eq!(masker.mask("nothing here"), "nothing here");
    }
}
