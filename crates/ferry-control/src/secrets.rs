//! Connector secrets: configurations are encrypted at rest (AES-256-GCM) and secret fields
//! are masked in every API reply. The key comes from `FERRY_SECRETS_KEY` or the data dir's
//! `secrets.key`; data planes receive configurations decrypted, over their authenticated
//! channel, and never store them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_api::MASKED_SECRET;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Prefix of an encrypted configuration, with the format's version.
const ENCRYPTED_PREFIX: &str = "enc:v1:";

#[derive(Clone)]
pub struct SecretCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretCipher(..)")
    }
}

impl SecretCipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Parses a key given as base64 (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "the secrets key is not base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the secrets key must be 32 bytes".to_owned())?;
        Ok(Self::new(&key))
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> ApiResult<String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|error| ApiError::Internal(format!("no randomness available: {error}")))?;
        Ok(STANDARD.encode(key))
    }

    pub fn encrypt(&self, configuration: &Value) -> ApiResult<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|error| ApiError::Internal(format!("no randomness available: {error}")))?;
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                configuration.to_string().as_bytes(),
            )
            .map_err(|_| ApiError::Internal("encrypting a configuration failed".to_owned()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        Ok(format!("{ENCRYPTED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    pub fn decrypt(&self, stored: &str) -> ApiResult<Value> {
        let Some(encoded) = stored.strip_prefix(ENCRYPTED_PREFIX) else {
            return Err(ApiError::Internal(
                "a stored configuration is not encrypted".to_owned(),
            ));
        };
        let sealed = STANDARD
            .decode(encoded)
            .map_err(|_| ApiError::Internal("a stored configuration is corrupt".to_owned()))?;
        if sealed.len() < 12 {
            return Err(ApiError::Internal(
                "a stored configuration is corrupt".to_owned(),
            ));
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                ApiError::Internal(
                    "a stored configuration cannot be decrypted: is FERRY_SECRETS_KEY the key it was written with?"
                        .to_owned(),
                )
            })?;
        serde_json::from_slice(&plain)
            .map_err(|_| ApiError::Internal("a stored configuration is corrupt".to_owned()))
    }
}

/// Whether a configuration key holds a secret. Airbyte marks these `airbyte_secret` in each
/// connector's spec; these are the names its connectors use for them.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "ssh_key",
        "credentials_json",
        "access_key",
    ]
    .iter()
    .any(|marker| key.contains(marker))
}

/// The configuration with every secret value replaced by `**********`, at any depth.
pub fn mask(configuration: &Value) -> Value {
    match configuration {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| {
                    let masked = if is_secret_key(key) && !value.is_object() && !value.is_null() {
                        Value::String(MASKED_SECRET.to_owned())
                    } else {
                        mask(value)
                    };
                    (key.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn encrypted_configurations_round_trip_and_hide_their_content() {
        let cipher = SecretCipher::from_base64(&SecretCipher::generate_key().unwrap()).unwrap();
        // Values long enough that random base64 cannot contain them by chance (a two-letter
        // host did, now and then).
        let configuration = json!({"host": "database.internal", "password": "hunter2"});
        let stored = cipher.encrypt(&configuration).unwrap();
        assert!(stored.starts_with("enc:v1:"));
        assert!(!stored.contains("hunter2") && !stored.contains("database.internal"));
        assert_eq!(cipher.decrypt(&stored).unwrap(), configuration);
        let other = SecretCipher::from_base64(&SecretCipher::generate_key().unwrap()).unwrap();
        assert!(other.decrypt(&stored).is_err());
        assert!(SecretCipher::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let masked = mask(&json!({
            "host": "db",
            "password": "hunter2",
            "tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "ssh_key": "-----BEGIN"},
            "credentials": {"auth_type": "Client", "client_secret": "s", "refresh_token": "r"},
            "count": 5,
        }));
        assert_eq!(masked["host"], "db");
        assert_eq!(masked["password"], MASKED_SECRET);
        assert_eq!(masked["tunnel_method"]["ssh_key"], MASKED_SECRET);
        assert_eq!(masked["tunnel_method"]["tunnel_method"], "SSH_KEY_AUTH");
        assert_eq!(masked["credentials"]["client_secret"], MASKED_SECRET);
        assert_eq!(masked["credentials"]["refresh_token"], MASKED_SECRET);
        assert_eq!(masked["count"], 5);
    }
}

/// In a configuration sent back for an update, every secret still `**********` takes the
/// stored value at the same place: clients echo what they read.
pub fn keep_masked_secrets(new: &mut Value, stored: &Value) {
    let Value::Object(fields) = new else {
        return;
    };
    for (key, value) in fields.iter_mut() {
        let previous = &stored[key.as_str()];
        if value.as_str() == Some(MASKED_SECRET) && is_secret_key(key) && !previous.is_null() {
            *value = previous.clone();
        } else if value.is_object() {
            keep_masked_secrets(value, previous);
        }
    }
}

#[cfg(test)]
mod keep_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masked_secrets_keep_their_stored_values() {
        let stored = json!({"password": "old", "nested": {"api_key": "k"}, "host": "a"});
        let mut sent =
            json!({"password": MASKED_SECRET, "nested": {"api_key": MASKED_SECRET}, "host": "b"});
        keep_masked_secrets(&mut sent, &stored);
        assert_eq!(
            sent,
            json!({"password": "old", "nested": {"api_key": "k"}, "host": "b"})
        );
        let mut changed = json!({"password": "new"});
        keep_masked_secrets(&mut changed, &stored);
        assert_eq!(changed["password"], "new");
    }
}
