//! The three providers' buckets, from the guide's keys or the provider's environment.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use object_store::{ObjectStore, RetryConfig};

use super::{AzureBlock, GcsBlock, S3Block, StorageArgs, first_env, one_line, secret_env};

/// Retries bounded well below object_store's default (minutes), so that a start against a
/// wrong endpoint fails in seconds and an attempt's end is never held long.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

pub(super) fn s3(
    bucket: &str,
    args: &StorageArgs,
    block: &S3Block,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry());
    let region = args
        .storage_s3_region
        .clone()
        .or(block.region.clone())
        .or_else(|| first_env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
        .unwrap_or_else(|| "us-east-1".to_owned());
    builder = builder.with_region(region);
    if let Some(endpoint) = args.storage_s3_endpoint.clone().or(block.endpoint.clone()) {
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    let instance_profile = block
        .authentication_type
        .as_deref()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("instanceProfile"));
    if !instance_profile {
        let key_id = match (&block.access_key_id, &block.access_key_id_secret_key) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(name)) => Some(secret_env("storage.s3.accessKeyIdSecretKey", name)?),
            (None, None) => None,
        };
        let secret = match (
            &block.secret_access_key,
            &block.secret_access_key_secret_key,
        ) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(name)) => Some(secret_env("storage.s3.secretAccessKeySecretKey", name)?),
            (None, None) => None,
        };
        match (key_id, secret) {
            (Some(key_id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(key_id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {}
            _ => bail!(
                "storage: storage.s3 gives an access key id without its secret access key, or the reverse"
            ),
        }
    }
    Ok(Arc::new(builder.build().map_err(|error| {
        anyhow::anyhow!("storage: s3 bucket '{bucket}': {}", one_line(&error))
    })?))
}

pub(super) fn gcs(bucket: &str, block: &GcsBlock) -> anyhow::Result<Arc<dyn ObjectStore>> {
    use base64::Engine;
    let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry());
    if let Some(encoded) = &block.credentials_json {
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .context("storage: storage.gcs.credentialsJson is not base64 of a JSON key")?;
        builder = builder.with_service_account_key(json);
    } else if let Some(path) = &block.credentials_json_path {
        builder = builder.with_service_account_path(path.display().to_string());
    } else if let Some(path) = first_env(&["GOOGLE_APPLICATION_CREDENTIALS"]) {
        builder = builder.with_application_credentials(path);
    }
    Ok(Arc::new(builder.build().map_err(|error| {
        anyhow::anyhow!("storage: gcs bucket '{bucket}': {}", one_line(&error))
    })?))
}

pub(super) fn azure(container: &str, block: &AzureBlock) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_retry(retry());
    let connection_string = match (
        &block.connection_string,
        &block.connection_string_secret_key,
    ) {
        (Some(value), _) => Some(value.clone()),
        (None, Some(name)) => Some(secret_env("storage.azure.connectionStringSecretKey", name)?),
        (None, None) => first_env(&["AZURE_STORAGE_CONNECTION_STRING"]),
    };
    if let Some(connection_string) = connection_string {
        for part in connection_string.split(';') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            match key.trim() {
                "AccountName" => builder = builder.with_account(value),
                "AccountKey" => builder = builder.with_access_key(value),
                "BlobEndpoint" => {
                    if value.starts_with("http://") {
                        builder = builder.with_allow_http(true);
                    }
                    builder = builder.with_endpoint(value.to_owned());
                }
                "SharedAccessSignature" => {
                    let pairs = url::form_urlencoded::parse(value.as_bytes())
                        .map(|(key, value)| (key.into_owned(), value.into_owned()))
                        .collect::<Vec<_>>();
                    builder = builder.with_sas_authorization(pairs);
                }
                _ => {}
            }
        }
    }
    Ok(Arc::new(builder.build().map_err(|error| {
        anyhow::anyhow!(
            "storage: azure container '{container}': {}",
            one_line(&error)
        )
    })?))
}
