//! Connector secrets: configurations are encrypted at rest (AES-256-GCM) and secret fields
//! are masked in every API reply. The key comes from `FERRY_SECRETS_KEY` or the data dir's
//! `secrets.key`; data planes receive configurations decrypted, over their authenticated
//! channel, and never store them. Which fields are secret, and what a mask sent back means:
//! [`fields`].

pub mod fields;
pub mod managed;

pub use fields::{keep_masked_secrets, mask};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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

/// Text sealed with the same key and format, for secrets of the instance itself (the token
/// signing key).
impl SecretCipher {
    /// Whether a stored value is sealed (`enc:v1:`), rather than text from before encryption.
    pub fn is_encrypted(stored: &str) -> bool {
        stored.starts_with(ENCRYPTED_PREFIX)
    }

    pub fn encrypt_text(&self, text: &str) -> ApiResult<String> {
        self.encrypt(&Value::String(text.to_owned()))
    }

    pub fn decrypt_text(&self, stored: &str) -> ApiResult<String> {
        match self.decrypt(stored)? {
            Value::String(text) => Ok(text),
            _ => Err(ApiError::Internal("a sealed value is not text".to_owned())),
        }
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
}
