//! Airbyte's `ssl_mode` object of `source-postgres` and `destination-postgres`: libpq's six
//! modes, the verifying ones with the CA (and optionally a client certificate) as PEM text.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{ConfigError, require_text};

/// How the connection is encrypted, as Airbyte's `ssl_mode` object
/// (`{"mode": "verify-full", "ca_certificate": "-----BEGIN CERTIFICATE-----…"}`); a bare
/// mode name (`"prefer"`) is taken too. The modes are libpq's `sslmode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum SslMode {
    /// Disables encryption of communication between Ferry and the database.
    #[schemars(title = "disable")]
    Disable,
    /// Enables encryption only when required by the database: a plain connection first, TLS
    /// (without certificate checks) if the server refuses it.
    #[schemars(title = "allow")]
    Allow,
    /// Allows an unencrypted connection only if the database does not support encryption:
    /// TLS (without certificate checks) first, a plain connection if the server does not
    /// offer TLS or refuses the TLS connection. Ferry's default when `ssl_mode` is absent,
    /// as libpq's.
    #[schemars(title = "prefer")]
    Prefer,
    /// Always requires encryption; the connection fails if the server does not support it.
    /// The server's certificate is not checked.
    #[schemars(title = "require")]
    Require,
    /// Always requires encryption and verifies that the server's certificate is signed by
    /// the CA certificate given (its host name is not checked).
    #[schemars(title = "verify-ca")]
    VerifyCa(SslCertificates),
    /// The most secure mode: always requires encryption, verifies the server's certificate
    /// against the CA certificate given and that it names the host connected to.
    #[schemars(title = "verify-full")]
    VerifyFull(SslCertificates),
}

/// The PEM texts of a verifying mode (Airbyte's keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SslCertificates {
    /// The certificate (PEM, `-----BEGIN CERTIFICATE-----`) of the CA that signed the
    /// server's certificate, or several concatenated. Ferry also trusts the public CAs of
    /// Mozilla's root store.
    #[schemars(
        title = "CA Certificate",
        extend("airbyte_secret" = true, "multiline" = true, "order" = 1)
    )]
    pub ca_certificate: String,
    /// The client certificate (PEM) presented to the server, for certificate
    /// authentication; given with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        title = "Client Certificate",
        extend("airbyte_secret" = true, "multiline" = true, "order" = 2)
    )]
    pub client_certificate: Option<String>,
    /// The client certificate's private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1);
    /// given with `client_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        title = "Client Key",
        extend("airbyte_secret" = true, "multiline" = true, "order" = 3)
    )]
    pub client_key: Option<String>,
    /// Airbyte's password of the Java key store it builds from the client key. Ferry needs
    /// no key store and reads only unencrypted keys: with an unencrypted `client_key` this
    /// is not used; an encrypted key is refused (decrypt it first:
    /// `openssl pkcs8 -topk8 -nocrypt -in client.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        title = "Client key password",
        extend("airbyte_secret" = true, "order" = 4)
    )]
    pub client_key_password: Option<String>,
}

/// The `mode` names, as Airbyte spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ModeName {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The object's keys as read; which of them a mode takes is decided after.
#[derive(Deserialize)]
struct Fields {
    mode: ModeName,
    #[serde(default)]
    ca_certificate: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    client_key_password: Option<String>,
}

impl Fields {
    fn bare(mode: ModeName) -> Self {
        Self {
            mode,
            ca_certificate: None,
            client_certificate: None,
            client_key: None,
            client_key_password: None,
        }
    }

    /// The mode; a verifying one without its CA gets an empty one, refused by
    /// [`SslMode::check`] naming `ssl_mode.ca_certificate` (a missing-field error raised
    /// here would lose its path under `#[serde(flatten)]`). Certificates given to a mode
    /// that checks none are ignored, as Airbyte's connectors do.
    fn into_mode(self) -> SslMode {
        let certificates = || SslCertificates {
            ca_certificate: self.ca_certificate.clone().unwrap_or_default(),
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            client_key_password: self.client_key_password.clone(),
        };
        match self.mode {
            ModeName::Disable => SslMode::Disable,
            ModeName::Allow => SslMode::Allow,
            ModeName::Prefer => SslMode::Prefer,
            ModeName::Require => SslMode::Require,
            ModeName::VerifyCa => SslMode::VerifyCa(certificates()),
            ModeName::VerifyFull => SslMode::VerifyFull(certificates()),
        }
    }
}

impl<'de> Deserialize<'de> for SslMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SslModeVisitor;
        impl<'de> serde::de::Visitor<'de> for SslModeVisitor {
            type Value = SslMode;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object with a `mode`, or a mode's name")
            }

            fn visit_str<E: serde::de::Error>(self, mode: &str) -> Result<SslMode, E> {
                let mode = ModeName::deserialize(serde::de::value::StrDeserializer::new(mode))?;
                Ok(Fields::bare(mode).into_mode())
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SslMode, A::Error> {
                let fields =
                    Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(fields.into_mode())
            }
        }
        deserializer.deserialize_any(SslModeVisitor)
    }
}

const CERTIFICATE_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

impl SslMode {
    /// The certificates of a verifying mode.
    pub fn certificates(&self) -> Option<&SslCertificates> {
        match self {
            Self::VerifyCa(certificates) | Self::VerifyFull(certificates) => Some(certificates),
            _ => None,
        }
    }

    /// What serde cannot check: a verifying mode has its CA, the PEM texts are of the kind
    /// their key names, a client certificate comes with its key, and the key is one rustls
    /// reads (unencrypted).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let Some(certificates) = self.certificates() else {
            return Ok(());
        };
        let mode = match self {
            Self::VerifyCa(_) => "verify-ca",
            _ => "verify-full",
        };
        if certificates.ca_certificate.trim().is_empty() {
            return Err(ConfigError::new(
                "ssl_mode.ca_certificate",
                format!(
                    "is required for {mode}: the PEM certificate of the CA that signed the server's certificate"
                ),
            ));
        }
        pem_certificate("ssl_mode.ca_certificate", &certificates.ca_certificate)?;
        match (&certificates.client_certificate, &certificates.client_key) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(ConfigError::new(
                "ssl_mode.client_key",
                "is required with client_certificate: the certificate's private key (PEM)",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "ssl_mode.client_certificate",
                "is required with client_key: the certificate (PEM) of that key",
            )),
            (Some(certificate), Some(key)) => {
                pem_certificate("ssl_mode.client_certificate", certificate)?;
                pem_private_key(key, certificates.client_key_password.is_some())
            }
        }
    }
}

fn pem_certificate(field: &str, text: &str) -> Result<(), ConfigError> {
    require_text(field, text)?;
    if !text.contains(CERTIFICATE_BEGIN) {
        return Err(ConfigError::new(
            field,
            format!("must be a PEM certificate ({CERTIFICATE_BEGIN} …), not a file name"),
        ));
    }
    Ok(())
}

/// An unencrypted PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or
/// SEC1 (`EC PRIVATE KEY`). rustls cannot decrypt keys, so an encrypted one (PKCS#8's
/// `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header) is refused
/// rather than failing at the first connection.
fn pem_private_key(text: &str, with_password: bool) -> Result<(), ConfigError> {
    let field = "ssl_mode.client_key";
    require_text(field, text)?;
    let encrypted =
        text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("4,ENCRYPTED");
    if encrypted {
        let (field, why) = if with_password {
            (
                "ssl_mode.client_key_password",
                "cannot be used: Ferry cannot decrypt an encrypted client_key (rustls reads unencrypted keys only)",
            )
        } else {
            (
                field,
                "is an encrypted private key, which Ferry cannot decrypt",
            )
        };
        return Err(ConfigError::new(
            field,
            format!(
                "{why}; give client_key unencrypted (`openssl pkcs8 -topk8 -nocrypt -in client.key`)"
            ),
        ));
    }
    let is_key = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]
        .iter()
        .any(|label| text.contains(&format!("-----BEGIN {label}-----")));
    if !is_key {
        return Err(ConfigError::new(
            field,
            "must be a PEM private key (-----BEGIN PRIVATE KEY----- …), not a file name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::config::shaped;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    fn checked(value: Value) -> Result<SslMode, ConfigError> {
        let mode: SslMode = shaped(&value)?;
        mode.check().map(|()| mode)
    }

    fn refused(value: Value) -> ConfigError {
        checked(value.clone()).expect_err(&value.to_string())
    }

    #[test]
    fn each_mode_is_read_from_an_object_or_its_name() {
        for (name, expected) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
        ] {
            assert_eq!(checked(json!({"mode": name})).unwrap(), expected);
            assert_eq!(checked(json!(name)).unwrap(), expected);
            // Certificates are ignored where the mode checks none.
            assert_eq!(
                checked(json!({"mode": name, "ca_certificate": CA})).unwrap(),
                expected
            );
            assert_eq!(
                serde_json::to_value(&expected).unwrap(),
                json!({"mode": name})
            );
        }
        let certificates = SslCertificates {
            ca_certificate: CA.to_owned(),
            client_certificate: None,
            client_key: None,
            client_key_password: None,
        };
        assert_eq!(
            checked(json!({"mode": "verify-ca", "ca_certificate": CA})).unwrap(),
            SslMode::VerifyCa(certificates.clone())
        );
        let full = checked(json!({"mode": "verify-full", "ca_certificate": CA,
                                 "client_certificate": CA, "client_key": KEY,
                                 "client_key_password": "keystore"}))
        .unwrap();
        let SslMode::VerifyFull(read) = &full else {
            panic!("{full:?}")
        };
        assert_eq!(read.client_key.as_deref(), Some(KEY));
        assert_eq!(read.client_key_password.as_deref(), Some("keystore"));
        // What is written back reads the same.
        let written = serde_json::to_value(&full).unwrap();
        assert_eq!(written["mode"], "verify-full");
        assert_eq!(checked(written).unwrap(), full);
    }

    #[test]
    fn unknown_modes_and_missing_or_malformed_certificates_name_the_field() {
        assert_eq!(refused(json!({"mode": "sometimes"})).field, "mode");
        assert_eq!(refused(json!({})).field, "mode");
        for mode in ["verify-ca", "verify-full"] {
            let error = refused(json!({"mode": mode}));
            assert_eq!(error.field, "ssl_mode.ca_certificate", "{error}");
            assert!(error.message.contains(mode), "{error}");
            assert_eq!(refused(json!(mode)).field, "ssl_mode.ca_certificate");
            assert_eq!(
                refused(json!({"mode": mode, "ca_certificate": " "})).field,
                "ssl_mode.ca_certificate"
            );
        }
        for (bad, field) in [
            (
                json!({"ca_certificate": "/etc/ssl/ca.pem"}),
                "ssl_mode.ca_certificate",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": CA}),
                "ssl_mode.client_key",
            ),
            (
                json!({"ca_certificate": CA, "client_key": KEY}),
                "ssl_mode.client_certificate",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": "client.crt", "client_key": KEY}),
                "ssl_mode.client_certificate",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": CA, "client_key": CA}),
                "ssl_mode.client_key",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": CA,
                       "client_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----"}),
                "ssl_mode.client_key",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": CA, "client_key_password": "pw",
                       "client_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----"}),
                "ssl_mode.client_key_password",
            ),
            (
                json!({"ca_certificate": CA, "client_certificate": CA, "client_key_password": "pw",
                       "client_key": "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIE\n-----END RSA PRIVATE KEY-----"}),
                "ssl_mode.client_key_password",
            ),
        ] {
            let mut value = bad.clone();
            value["mode"] = json!("verify-full");
            let error = refused(value);
            assert_eq!(error.field, field, "{bad}: {error}");
        }
        let error = refused(
            json!({"mode": "verify-ca", "ca_certificate": CA, "client_certificate": CA,
                                   "client_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----"}),
        );
        assert!(error.message.contains("cannot decrypt"), "{error}");
        // Unencrypted PKCS#1 and SEC1 keys are taken.
        for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            let key = format!("-----BEGIN {label}-----\nMHcC\n-----END {label}-----");
            checked(json!({"mode": "verify-ca", "ca_certificate": CA,
                           "client_certificate": CA, "client_key": key}))
            .unwrap();
        }
    }

    #[test]
    fn the_schema_is_airbytes_one_of_keyed_by_mode_with_secrets_marked() {
        let spec = crate::config::specification::<crate::postgres::PostgresSourceConfig>();
        let choices = spec["properties"]["ssl_mode"]["oneOf"].as_array().unwrap();
        let modes: Vec<&str> = choices
            .iter()
            .map(|choice| choice["properties"]["mode"]["const"].as_str().unwrap())
            .collect();
        assert_eq!(
            modes,
            [
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full"
            ]
        );
        for choice in choices {
            let mode = choice["properties"]["mode"]["const"].as_str().unwrap();
            assert_eq!(choice["title"], mode);
            assert!(choice["description"].is_string(), "{choice}");
            let required = choice["required"].as_array().unwrap();
            assert!(required.contains(&json!("mode")), "{choice}");
            if mode.starts_with("verify") {
                assert!(required.contains(&json!("ca_certificate")), "{choice}");
                for key in [
                    "ca_certificate",
                    "client_certificate",
                    "client_key",
                    "client_key_password",
                ] {
                    let property = &choice["properties"][key];
                    assert_eq!(property["type"], "string", "{mode} {key}: {property}");
                    assert_eq!(property["airbyte_secret"], true, "{mode} {key}");
                    assert!(property["title"].is_string(), "{mode} {key}");
                }
                assert_eq!(choice["properties"]["ca_certificate"]["multiline"], true);
            } else {
                assert_eq!(
                    choice["properties"].as_object().unwrap().len(),
                    1,
                    "{choice}"
                );
            }
        }
        let destination =
            crate::config::specification::<crate::postgres::PostgresDestinationConfig>();
        assert_eq!(
            destination["properties"]["ssl_mode"],
            spec["properties"]["ssl_mode"]
        );
    }
}
