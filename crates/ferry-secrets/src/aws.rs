//! AWS Secrets Manager over its JSON API (`X-Amz-Target: secretsmanager.<Action>`), each
//! request signed with SigV4 by `aws-sigv4`, the AWS SDK's own signer.
//!
//! Why not `aws-sdk-secretsmanager`: Ferry needs four calls (create, get, delete and one to
//! check the credentials). The SDK, with `aws-config` to find credentials, brings its own
//! HTTP stack, runtime and dozens of crates into both planes; signed JSON over the reqwest
//! (rustls) both planes already link is a page of code, and the signing itself, the part
//! that is easy to get wrong, stays the SDK's.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};
use url::Url;

use crate::{Result, SecretsError, transport};

pub const NAME: &str = "AWS Secrets Manager";

/// Looked up at start to check the credentials: a name no one writes, so the expected
/// answer is "not found" (the credentials were accepted), or the secret itself.
const PROBE_SECRET: &str = "ferry-credentials-check";

#[derive(Clone)]
pub struct AwsSettings {
    pub region: String,
    /// Another endpoint than `https://secretsmanager.<region>.amazonaws.com` (an
    /// S3-compatible test server, a VPC endpoint): `AWS_ENDPOINT_URL_SECRETS_MANAGER` or
    /// `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Tags put on every secret Ferry creates (the guide's `tags`).
    pub tags: Vec<(String, String)>,
    /// The KMS key secrets are encrypted with (the guide's `kms`); AWS's default without.
    pub kms_key_id: Option<String>,
    /// A CA file trusted besides the system's roots.
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct AwsSecretsManager {
    endpoint: Url,
    region: String,
    credentials: Credentials,
    tags: Vec<(String, String)>,
    kms_key_id: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AwsSecretsManager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsSecretsManager")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Errors that mean the credentials (or their rights) are wrong.
const AUTH_ERRORS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "AccessDeniedException",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
];

impl AwsSecretsManager {
    pub fn new(settings: AwsSettings) -> Result<Self> {
        let region = settings.region.trim().to_owned();
        if region.is_empty() {
            return Err(SecretsError::Config(
                "no AWS region for Secrets Manager: set secretsManager.awsSecretManager.region or AWS_REGION".to_owned(),
            ));
        }
        // The region names the default endpoint's host, where the signed requests go: a
        // typo must not turn it into another host (`us-east-1.example.com/`).
        if !region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        {
            return Err(SecretsError::Config(format!(
                "AWS region '{region}' for Secrets Manager: lower-case letters, digits and '-' only (e.g. us-east-1)"
            )));
        }
        if settings.access_key_id.trim().is_empty() || settings.secret_access_key.is_empty() {
            return Err(SecretsError::Config(
                "no AWS credentials for Secrets Manager: set AWS_SECRET_MANAGER_ACCESS_KEY_ID and AWS_SECRET_MANAGER_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".to_owned(),
            ));
        }
        let endpoint = settings
            .endpoint
            .clone()
            .filter(|endpoint| !endpoint.trim().is_empty())
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let endpoint = Url::parse(endpoint.trim()).map_err(|error| {
            SecretsError::Config(format!("Secrets Manager endpoint '{endpoint}': {error}"))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(SecretsError::Config(format!(
                "Secrets Manager endpoint '{endpoint}': use http(s)://host[:port]"
            )));
        }
        Ok(Self {
            endpoint,
            region,
            credentials: Credentials::new(
                settings.access_key_id.trim(),
                settings.secret_access_key,
                settings.session_token.filter(|token| !token.is_empty()),
                None,
                "ferry",
            ),
            tags: settings.tags,
            kms_key_id: settings.kms_key_id.filter(|key| !key.is_empty()),
            http: crate::tls::http_client(settings.ca_cert.as_deref())?,
        })
    }

    /// One signed call of `action`; its JSON answer, or the error AWS named.
    async fn call(&self, action: &str, subject: &str, body: &Value) -> Result<Value> {
        let body = body.to_string();
        let target = format!("secretsmanager.{action}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| SecretsError::Config(format!("signing a request: {error}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|error| SecretsError::Config(format!("signing a request: {error}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| SecretsError::Config(format!("signing a request: {error}")))?
            .into_parts();
        let mut request = self.http.post(self.endpoint.clone()).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport(NAME, self.endpoint.as_str(), &error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport(NAME, self.endpoint.as_str(), &error))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            // Authentication errors may come as the query protocol's XML.
            xml_error(&String::from_utf8_lossy(&bytes))
        });
        if status.is_success() {
            return Ok(answer);
        }
        // `__type` may be qualified: `com.amazonaws.secretsmanager#ResourceNotFoundException`.
        let kind = answer
            .get("__type")
            .and_then(Value::as_str)
            .map(|kind| kind.rsplit('#').next().unwrap_or(kind).to_owned())
            .unwrap_or_default();
        let message = answer
            .get("message")
            .or_else(|| answer.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given"));
        let message = if kind.is_empty() {
            message.to_owned()
        } else {
            format!("{kind}: {message}")
        };
        Err(
            if AUTH_ERRORS.contains(&kind.as_str())
                || status == reqwest::StatusCode::FORBIDDEN
                || status == reqwest::StatusCode::UNAUTHORIZED
            {
                SecretsError::Unauthorized {
                    manager: NAME,
                    message,
                }
            } else if kind == "ResourceNotFoundException" {
                SecretsError::NotFound {
                    manager: NAME,
                    coordinate: subject.to_owned(),
                }
            } else {
                SecretsError::Refused {
                    manager: NAME,
                    status: status.as_u16(),
                    message,
                }
            },
        )
    }

    pub async fn verify(&self) -> Result<()> {
        match self
            .call(
                "GetSecretValue",
                PROBE_SECRET,
                &json!({"SecretId": PROBE_SECRET}),
            )
            .await
        {
            Ok(_) | Err(SecretsError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub async fn write(&self, coordinate: &str, value: &str) -> Result<()> {
        let mut create = json!({"Name": coordinate, "SecretString": value});
        if !self.tags.is_empty() {
            create["Tags"] = self
                .tags
                .iter()
                .map(|(key, value)| json!({"Key": key, "Value": value}))
                .collect();
        }
        if let Some(key) = &self.kms_key_id {
            create["KmsKeyId"] = Value::String(key.clone());
        }
        match self.call("CreateSecret", coordinate, &create).await {
            Ok(_) => Ok(()),
            // Written before (a retried call): its value is replaced.
            Err(SecretsError::Refused { message, .. })
                if message.starts_with("ResourceExistsException") =>
            {
                self.call(
                    "PutSecretValue",
                    coordinate,
                    &json!({"SecretId": coordinate, "SecretString": value}),
                )
                .await
                .map(drop)
            }
            Err(error) => Err(error),
        }
    }

    pub async fn read(&self, coordinate: &str) -> Result<String> {
        let answer = self
            .call(
                "GetSecretValue",
                coordinate,
                &json!({"SecretId": coordinate}),
            )
            .await?;
        answer
            .get("SecretString")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SecretsError::NotFound {
                manager: NAME,
                coordinate: coordinate.to_owned(),
            })
    }

    /// Deleted at once, without AWS's recovery window: the source it belonged to is gone.
    pub async fn delete(&self, coordinate: &str) -> Result<()> {
        match self
            .call(
                "DeleteSecret",
                coordinate,
                &json!({"SecretId": coordinate, "ForceDeleteWithoutRecovery": true}),
            )
            .await
        {
            Ok(_) | Err(SecretsError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// `<Code>…</Code>` and `<Message>…</Message>` of an XML error, as the JSON API names them.
fn xml_error(text: &str) -> Value {
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_owned())
    };
    match (element("Code"), element("Message")) {
        (None, None) => Value::Null,
        (code, message) => json!({"__type": code, "message": message}),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(region: &str) -> AwsSettings {
        AwsSettings {
            region: region.to_owned(),
            endpoint: None,
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "secret".to_owned(),
            session_token: None,
            tags: Vec::new(),
            kms_key_id: None,
            ca_cert: None,
        }
    }

    #[test]
    fn a_region_cannot_send_the_signed_requests_to_another_host() {
        let manager = AwsSecretsManager::new(settings("eu-west-3")).unwrap();
        assert_eq!(
            manager.endpoint.as_str(),
            "https://secretsmanager.eu-west-3.amazonaws.com/"
        );
        for region in [
            "attacker.example/",
            "eu-west-3.attacker.example#",
            "EU WEST",
        ] {
            let error = AwsSecretsManager::new(settings(region)).unwrap_err();
            assert!(
                matches!(&error, SecretsError::Config(message) if message.contains("AWS region")),
                "{region}: {error}"
            );
        }
    }
}
