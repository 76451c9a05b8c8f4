//! Attempts' logs in the control plane's log bucket. A data plane streams each attempt's
//! log here while it runs, wherever it is: each request carries the bytes from an offset
//! on, kept as one part object; the attempt's row records how many bytes are held, so a data
//! plane that lost a reply resends from there and nothing is kept twice. Once the attempt
//! ended, its parts are joined into one object (the form a data plane sharing the bucket
//! may also write directly). A reader gets whichever exists.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Most bytes one request may append (a data plane sends far less at a time).
pub const MAX_PART_BYTES: usize = 1024 * 1024;

/// The longest log kept: a data plane keeps at most 16 MiB of an attempt's log.
const MAX_LOG_BYTES: u64 = 32 * 1024 * 1024;

/// Parts read at once when a log is read or joined.
const PARALLEL_READS: usize = 16;

/// Appends `bytes`, which start at byte `offset` of the attempt's log, and answers how many
/// bytes of it are now held. Bytes already held are skipped: the data plane's log only
/// grows, so a resent part holds the same bytes at the same offsets.
pub async fn append(
    state: &AppState,
    job_id: i64,
    attempt_id: Uuid,
    offset: u64,
    bytes: &[u8],
) -> ApiResult<u64> {
    let end = offset.saturating_add(bytes.len() as u64);
    if end > MAX_LOG_BYTES {
        return Err(ApiError::field(
            "offset",
            format!("the log would pass {MAX_LOG_BYTES} bytes, the most an attempt's log holds"),
        ));
    }
    let attempt = state.store.attempt(attempt_id).await?;
    let storage = state.config.log_storage.as_ref();
    // A few turns: another request for the same attempt (a data plane's retry racing its
    // first try) may move the length between the read and the write.
    for _ in 0..4 {
        let held = u64::try_from(state.store.attempt_log_bytes(attempt_id).await?).unwrap_or(0);
        if end <= held || bytes.is_empty() {
            return Ok(held);
        }
        // A gap (bytes the data plane had to drop while it could not reach us) is left as
        // one: what follows is kept at its own offset.
        let start = offset.max(held);
        let skip = usize::try_from(start - offset).unwrap_or(usize::MAX);
        let Some(fresh) = bytes.get(skip..) else {
            return Ok(held);
        };
        let path = ObjectPath::from(ferry_api::attempt_log_part_path(
            job_id,
            attempt.attempt_number,
            start,
        ));
        storage
            .put(&path, PutPayload::from(fresh.to_vec()))
            .await
            .map_err(|error| unavailable("writing a log part", &error))?;
        let (from, to) = (
            i64::try_from(held).unwrap_or(i64::MAX),
            i64::try_from(end).unwrap_or(i64::MAX),
        );
        if state
            .store
            .advance_attempt_log(attempt_id, from, to)
            .await?
        {
            return Ok(end);
        }
    }
    Err(ApiError::Conflict(
        "the attempt's log is being written by another request; retry".to_owned(),
    ))
}

fn unavailable(what: &str, error: &object_store::Error) -> ApiError {
    tracing::warn!(%error, "log bucket: {what}");
    ApiError::Unavailable(format!("the log bucket failed {what}: {error}"))
}

/// The attempt's log: the whole object once the attempt ended, its parts while it runs;
/// `None` when there is none (yet).
pub async fn read(
    state: &AppState,
    job_id: i64,
    attempt_number: i64,
) -> ApiResult<Option<Vec<u8>>> {
    let storage = state.config.log_storage.as_ref();
    let whole_key = ferry_api::attempt_log_path(job_id, attempt_number);
    let whole = || async {
        get(storage, &whole_key)
            .await
            .map_err(|error| unavailable("reading a log", &error))
    };
    if let Some(whole) = whole().await? {
        return Ok(Some(whole));
    }
    let parts = match read_parts(storage, job_id, attempt_number).await {
        Ok(parts) => parts,
        // Removed while read: they were joined meanwhile.
        Err(object_store::Error::NotFound { .. }) => None,
        Err(error) => return Err(unavailable("reading a log", &error)),
    };
    // The parts are joined into the whole before any is removed: if the listing missed
    // some, the whole is there now.
    if let Some(whole) = whole().await? {
        return Ok(Some(whole));
    }
    Ok(parts)
}

async fn get(storage: &dyn ObjectStore, key: &str) -> object_store::Result<Option<Vec<u8>>> {
    match storage.get(&ObjectPath::from(key)).await {
        Ok(object) => Ok(Some(object.bytes().await?.to_vec())),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The parts in offset order, each from where the previous ended (parts overlap when a
/// retried request raced its first try; the bytes at an offset are the same in both).
async fn read_parts(
    storage: &dyn ObjectStore,
    job_id: i64,
    attempt_number: i64,
) -> object_store::Result<Option<Vec<u8>>> {
    use futures_util::{StreamExt, TryStreamExt};
    let prefix = ObjectPath::from(ferry_api::attempt_log_parts_prefix(job_id, attempt_number));
    let mut parts: Vec<(u64, ObjectPath)> = storage
        .list(Some(&prefix))
        .try_filter_map(|meta| async move {
            Ok(ferry_api::attempt_log_part_offset(meta.location.as_ref())
                .map(|offset| (offset, meta.location)))
        })
        .try_collect()
        .await?;
    if parts.is_empty() {
        return Ok(None);
    }
    parts.sort_by_key(|(offset, _)| *offset);
    let mut read = futures_util::stream::iter(parts)
        .map(|(offset, path)| async move {
            let bytes = storage.get(&path).await?.bytes().await?;
            Ok::<_, object_store::Error>((offset, bytes))
        })
        .buffered(PARALLEL_READS);
    let mut log = Vec::new();
    // `held` counts the log's own bytes, not the markers of gaps put in between.
    let mut held = 0u64;
    while let Some((offset, bytes)) = read.try_next().await? {
        if offset > held {
            log.extend_from_slice(
                format!(
                    "... {} bytes of this log were lost on the way\n",
                    offset - held
                )
                .as_bytes(),
            );
            held = offset;
        }
        let skip = usize::try_from(held - offset).unwrap_or(usize::MAX);
        if let Some(fresh) = bytes.get(skip..) {
            log.extend_from_slice(fresh);
            held += fresh.len() as u64;
        }
    }
    Ok(Some(log))
}

/// Joins an ended attempt's parts into one object and removes them, in the background: a
/// reader meanwhile gets the parts. A whole log already there (written by a data plane that
/// shares the bucket) is kept.
pub fn join_when_ended(state: &AppState, job_id: i64, attempt_id: Uuid) {
    let state = state.clone();
    tokio::spawn(async move {
        let Ok(attempt) = state.store.attempt(attempt_id).await else {
            return;
        };
        if let Err(error) = join(&state, job_id, attempt.attempt_number).await {
            tracing::warn!(job_id, %attempt_id, %error, "could not join the attempt's log parts");
        }
    });
}

async fn join(state: &AppState, job_id: i64, attempt_number: i64) -> object_store::Result<()> {
    use futures_util::TryStreamExt;
    let storage = state.config.log_storage.as_ref();
    let whole = ObjectPath::from(ferry_api::attempt_log_path(job_id, attempt_number));
    let exists = match storage.head(&whole).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(error) => return Err(error),
    };
    if !exists {
        let Some(log) = read_parts(storage, job_id, attempt_number).await? else {
            return Ok(());
        };
        storage.put(&whole, PutPayload::from(log)).await?;
    }
    let prefix = ObjectPath::from(ferry_api::attempt_log_parts_prefix(job_id, attempt_number));
    let parts: Vec<ObjectPath> = storage
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    for part in parts {
        storage.delete(&part).await?;
    }
    Ok(())
}
