//! Storage as Airbyte's guide configures it: `storage.type` (`local`, `s3`, `gcs`, `azure`)
//! and three buckets, `log`, `state` and `workloadOutput`, with the provider's credentials
//! from the guide's keys or the provider's usual environment. The same settings serve both
//! planes: flags and environment variables for each, and the data plane's YAML `storage:`
//! block. Every bucket a plane uses is tried (a small write and delete) before it starts,
//! so a wrong bucket or credential stops it with one line, not at the first attempt's end.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;

mod providers;
use providers::{azure, gcs, s3};

/// The storage flags of `ferry up`, `ferry server` and `ferry dataplane`. Airbyte's own
/// variables (`STORAGE_TYPE`, `STORAGE_BUCKET_LOG`, …) are read when Ferry's are unset.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// `local` (a directory, `--storage-dir`), `s3`, `gcs` or `azure` (Airbyte's
    /// `storage.type`; also `STORAGE_TYPE`).
    #[arg(long, env = "FERRY_STORAGE_TYPE")]
    pub storage_type: Option<String>,
    /// Bucket (or container) for attempt logs (`storage.bucket.log`; `STORAGE_BUCKET_LOG`).
    #[arg(long, env = "FERRY_STORAGE_BUCKET_LOG")]
    pub storage_bucket_log: Option<String>,
    /// Bucket for large connection states (`storage.bucket.state`; `STORAGE_BUCKET_STATE`).
    #[arg(long, env = "FERRY_STORAGE_BUCKET_STATE")]
    pub storage_bucket_state: Option<String>,
    /// Bucket for attempts' and connector tasks' output (`storage.bucket.workloadOutput`;
    /// `STORAGE_BUCKET_WORKLOAD_OUTPUT`).
    #[arg(long, env = "FERRY_STORAGE_BUCKET_WORKLOAD_OUTPUT")]
    pub storage_bucket_workload_output: Option<String>,
    /// S3 region (`storage.s3.region`; else `AWS_REGION`, `AWS_DEFAULT_REGION`, us-east-1).
    #[arg(long, env = "FERRY_STORAGE_S3_REGION")]
    pub storage_s3_region: Option<String>,
    /// An S3-compatible endpoint such as MinIO's (`storage.s3.endpoint`; else
    /// `AWS_ENDPOINT_URL`); plain `http://` is allowed when named here.
    #[arg(long, env = "FERRY_STORAGE_S3_ENDPOINT")]
    pub storage_s3_endpoint: Option<String>,
    /// The directory of `storage.type: local` (all three buckets live under it).
    #[arg(long, env = "FERRY_STORAGE_DIR")]
    pub storage_dir: Option<PathBuf>,
    /// Shorthand for one bucket holding all three: `s3://bucket/prefix`, `gs://bucket/prefix`
    /// or `az://container/prefix`.
    #[arg(long, env = "FERRY_STORAGE_URL")]
    pub storage_url: Option<String>,
}

/// The guide's `storage:` block of the data plane's values.yaml. `secretName` (a Kubernetes
/// secret) is tolerated and ignored: a `…SecretKey` key names the environment variable the
/// chart fills from that secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageBlock {
    #[serde(default, rename = "type")]
    pub storage_type: Option<String>,
    #[serde(default)]
    pub bucket: BucketNames,
    #[serde(default)]
    pub s3: S3Block,
    /// Airbyte's chart's default (`type: minio`): S3's API at `minio.endpoint` (or
    /// `MINIO_ENDPOINT`), with `minio.accessKeyId` / `secretAccessKey`.
    #[serde(default)]
    pub minio: S3Block,
    #[serde(default)]
    pub gcs: GcsBlock,
    #[serde(default)]
    pub azure: AzureBlock,
    /// The directory of `type: local`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketNames {
    #[serde(default)]
    pub log: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub workload_output: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Block {
    #[serde(default)]
    pub region: Option<String>,
    /// `credentials` (keys) or `instanceProfile` (the machine's role).
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// The environment variable holding the access key id (the guide's `S3_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id_secret_key: Option<String>,
    #[serde(default)]
    pub secret_access_key_secret_key: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// `projectId` is tolerated: the bucket's name is enough.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcsBlock {
    /// The service account's JSON key, base64-encoded (as the chart takes it).
    #[serde(default)]
    pub credentials_json: Option<String>,
    #[serde(default)]
    pub credentials_json_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureBlock {
    #[serde(default)]
    pub connection_string: Option<String>,
    /// The environment variable holding the connection string.
    #[serde(default)]
    pub connection_string_secret_key: Option<String>,
}

/// One opened bucket and how to name it in messages (never with credentials).
#[derive(Clone)]
pub struct Bucket {
    pub store: Arc<dyn ObjectStore>,
    pub describe: String,
}

/// The three buckets, opened.
#[derive(Clone)]
pub struct Buckets {
    pub log: Bucket,
    pub state: Bucket,
    pub workload_output: Bucket,
    /// The local directory when `storage.type` is `local`.
    pub local_dir: Option<PathBuf>,
}

impl Buckets {
    pub fn for_dataplane(&self) -> ferry_dataplane::StorageBuckets {
        ferry_dataplane::StorageBuckets {
            log: self.log.store.clone(),
            state: self.state.store.clone(),
            workload_output: self.workload_output.store.clone(),
        }
    }
}

impl StorageArgs {
    /// The flags given, again, for a child data plane (`ferry up`'s): environment variables
    /// reach it anyway.
    pub fn child_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<OsString>| {
            if let Some(value) = value {
                args.push(OsString::from(flag));
                args.push(value);
            }
        };
        push("--storage-type", self.storage_type.clone().map(Into::into));
        push(
            "--storage-bucket-log",
            self.storage_bucket_log.clone().map(Into::into),
        );
        push(
            "--storage-bucket-state",
            self.storage_bucket_state.clone().map(Into::into),
        );
        push(
            "--storage-bucket-workload-output",
            self.storage_bucket_workload_output.clone().map(Into::into),
        );
        push(
            "--storage-s3-region",
            self.storage_s3_region.clone().map(Into::into),
        );
        push(
            "--storage-s3-endpoint",
            self.storage_s3_endpoint.clone().map(Into::into),
        );
        push("--storage-url", self.storage_url.clone().map(Into::into));
        args
    }
}

fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

/// The value a `…SecretKey` key points at: that environment variable's.
fn secret_env(key: &str, name: &str) -> anyhow::Result<String> {
    first_env(&[name]).with_context(|| {
        format!("storage: {key} names the environment variable {name}, which is not set")
    })
}

/// Opens the buckets the settings name: flags and environment first, then the YAML block,
/// then `local` under `default_dir`.
pub fn open(
    args: &StorageArgs,
    block: Option<&StorageBlock>,
    default_dir: &Path,
) -> anyhow::Result<Buckets> {
    let block = block.cloned().unwrap_or_default();
    if let Some(url) = &args.storage_url {
        return open_url(url, args, &block);
    }
    let storage_type = args
        .storage_type
        .clone()
        .or_else(|| first_env(&["STORAGE_TYPE"]))
        .or(block.storage_type.clone())
        .unwrap_or_else(|| "local".to_owned())
        .to_ascii_lowercase();
    let names = [
        (
            "log",
            args.storage_bucket_log
                .clone()
                .or_else(|| first_env(&["STORAGE_BUCKET_LOG"]))
                .or(block.bucket.log.clone()),
        ),
        (
            "state",
            args.storage_bucket_state
                .clone()
                .or_else(|| first_env(&["STORAGE_BUCKET_STATE"]))
                .or(block.bucket.state.clone()),
        ),
        (
            "workloadOutput",
            args.storage_bucket_workload_output
                .clone()
                .or_else(|| first_env(&["STORAGE_BUCKET_WORKLOAD_OUTPUT"]))
                .or(block.bucket.workload_output.clone()),
        ),
    ];
    if storage_type == "local" {
        let dir = args
            .storage_dir
            .clone()
            .or(block.dir.clone())
            .unwrap_or_else(|| default_dir.to_owned());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the storage dir {}", dir.display()))?;
        let store: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .with_context(|| format!("opening the storage dir {}", dir.display()))?,
        );
        let bucket = Bucket {
            store,
            describe: format!("local {}", dir.display()),
        };
        return Ok(Buckets {
            log: bucket.clone(),
            state: bucket.clone(),
            workload_output: bucket,
            local_dir: Some(dir),
        });
    }
    // One bucket named serves for the others (the guide's example names one for all three).
    let any = names
        .iter()
        .find_map(|(_, name)| name.clone())
        .with_context(|| {
            format!(
                "storage: storage.type {storage_type} needs storage.bucket.log (or --storage-bucket-log)"
            )
        })?;
    let mut opened = Vec::with_capacity(3);
    for (which, name) in names {
        let name = name.unwrap_or_else(|| any.clone());
        let (bucket, prefix) = match name.split_once('/') {
            Some((bucket, prefix)) => (bucket.to_owned(), prefix.trim_matches('/').to_owned()),
            None => (name.clone(), String::new()),
        };
        let store = match storage_type.as_str() {
            "s3" => s3(&bucket, args, &block.s3)?,
            "minio" => s3(&bucket, args, &minio(&block.minio)?)?,
            "gcs" => gcs(&bucket, &block.gcs)?,
            "azure" => azure(&bucket, &block.azure)?,
            other => {
                bail!("storage: storage.type '{other}' is not one of local, s3, gcs, azure, minio")
            }
        };
        opened.push(Bucket {
            store: with_prefix(store, &prefix),
            describe: format!("{storage_type} bucket '{name}' ({which})"),
        });
    }
    let mut opened = opened.into_iter();
    let (Some(log), Some(state), Some(workload_output)) =
        (opened.next(), opened.next(), opened.next())
    else {
        bail!("storage: three buckets expected");
    };
    Ok(Buckets {
        log,
        state,
        workload_output,
        local_dir: None,
    })
}

/// MinIO as an S3 block: its endpoint is required.
fn minio(block: &S3Block) -> anyhow::Result<S3Block> {
    let endpoint = block
        .endpoint
        .clone()
        .or_else(|| first_env(&["MINIO_ENDPOINT"]))
        .context("storage: storage.type minio needs storage.minio.endpoint (or MINIO_ENDPOINT)")?;
    Ok(S3Block {
        endpoint: Some(endpoint),
        ..block.clone()
    })
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    }
}

/// `--storage-url`: one bucket (and prefix) for all three.
fn open_url(url: &str, args: &StorageArgs, block: &StorageBlock) -> anyhow::Result<Buckets> {
    let parsed = url::Url::parse(url).with_context(|| format!("storage URL '{url}'"))?;
    let bucket = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .with_context(|| format!("storage URL '{url}' names no bucket"))?
        .to_owned();
    let store = match parsed.scheme() {
        "s3" | "s3a" => s3(&bucket, args, &block.s3)?,
        "gs" => gcs(&bucket, &block.gcs)?,
        "az" | "azure" | "abfs" => azure(&bucket, &block.azure)?,
        _ => bail!(
            "storage URL '{url}': expected s3://, gs:// or az://bucket/prefix (or --storage-dir)"
        ),
    };
    let store = with_prefix(store, parsed.path().trim_matches('/'));
    let bucket = Bucket {
        store,
        describe: format!("bucket of {url}"),
    };
    Ok(Buckets {
        log: bucket.clone(),
        state: bucket.clone(),
        workload_output: bucket,
        local_dir: None,
    })
}

/// An object-store error in one line: the provider's error code and message when the reply
/// carries them (S3's `<Code>`/`<Message>`), else the error's own text, shortened.
pub fn one_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    if let Some(code) = tag("Code") {
        // Azure's message goes on with request-id and time lines: its first says it all.
        return match tag("Message")
            .as_deref()
            .and_then(|message| message.lines().map(str::trim).find(|line| !line.is_empty()))
        {
            Some(message) => format!("{code}: {message}"),
            None => code,
        };
    }
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let mut cut = 300;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// Longest a start-up check of one bucket may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes and deletes a small object in each bucket: proves the bucket exists and the
/// credentials may write there, before anything depends on it.
pub async fn probe(buckets: &[&Bucket]) -> anyhow::Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    for bucket in buckets {
        if seen.contains(&bucket.describe.as_str()) {
            continue;
        }
        seen.push(&bucket.describe);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let path =
            object_store::path::Path::from(format!("ferry-probe/{}-{nanos}", std::process::id()));
        let check = async {
            bucket
                .store
                .put(&path, PutPayload::from_static(b"ferry"))
                .await?;
            bucket.store.delete(&path).await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => bail!(
                "storage: {} cannot be written: {}",
                bucket.describe,
                one_line(&error)
            ),
            Err(_) => bail!(
                "storage: {} did not answer within {} s",
                bucket.describe,
                PROBE_TIMEOUT.as_secs()
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_guides_block() {
        let block: StorageBlock = serde_yaml_ng::from_str(
            "secretName: airbyte-config-secrets\ntype: \"s3\"\nbucket:\n  log: a\n  state: b\n  workloadOutput: c\ns3:\n  region: \"us-west-2\"\n  authenticationType: credentials\n  accessKeyIdSecretKey: S3_ACCESS_KEY_ID\n  secretAccessKeySecretKey: S3_SECRET_ACCESS_KEY\n",
        )
        .unwrap();
        assert_eq!(block.storage_type.as_deref(), Some("s3"));
        assert_eq!(block.bucket.workload_output.as_deref(), Some("c"));
        assert_eq!(
            block.s3.access_key_id_secret_key.as_deref(),
            Some("S3_ACCESS_KEY_ID")
        );
    }

    #[test]
    fn errors_come_in_one_line_with_the_providers_code() {
        let text = "Error performing PUT http://x in 3ms\n<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            one_line(&text),
            "NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(one_line(&"a\n  b"), "a b");
        let azure = "<Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:1\nTime:2</Message></Error>";
        assert_eq!(
            one_line(&azure),
            "ContainerNotFound: The specified container does not exist."
        );
    }

    #[test]
    fn an_unknown_type_or_a_missing_bucket_is_refused() {
        let args = StorageArgs {
            storage_type: Some("ftp".to_owned()),
            storage_bucket_log: Some("a".to_owned()),
            storage_bucket_state: Some("a".to_owned()),
            storage_bucket_workload_output: Some("a".to_owned()),
            ..StorageArgs::default()
        };
        let error = open(&args, None, Path::new("/nonexistent"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("'ftp'"), "{error}");
        let args = StorageArgs {
            storage_type: Some("s3".to_owned()),
            ..StorageArgs::default()
        };
        let error = open(&args, None, Path::new("/nonexistent"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("storage.bucket.log"), "{error}");
    }
}
