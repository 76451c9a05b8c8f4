//! Where the guide's three buckets keep what Ferry puts there, and the data-plane API's
//! storage types. The keys start with their kind (`logs/`, `state/`, `workload-output/`),
//! so that one bucket may serve as all three, as in the guide's example.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an attempt's whole log is kept in the `log` bucket (the control plane's, once the
/// attempt ended; a data plane's own when it could not stream it).
pub fn attempt_log_path(job_id: i64, attempt_number: i64) -> String {
    format!("logs/job-{job_id}/attempt-{attempt_number}.log")
}

/// Where the parts of a log streamed while its attempt runs are kept, one object each.
pub fn attempt_log_parts_prefix(job_id: i64, attempt_number: i64) -> String {
    format!("logs/job-{job_id}/attempt-{attempt_number}/")
}

/// The part that starts at byte `offset` of the log: zero-padded, so that the keys sort as
/// the offsets do.
pub fn attempt_log_part_path(job_id: i64, attempt_number: i64, offset: u64) -> String {
    format!(
        "{}{offset:020}.part",
        attempt_log_parts_prefix(job_id, attempt_number)
    )
}

/// The byte offset a part's key names, if it is one.
pub fn attempt_log_part_offset(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.strip_suffix(".part")?.parse().ok()
}

/// An attempt's summary (streams, counts, timings, failure) in the `workloadOutput` bucket.
pub fn attempt_output_path(job_id: i64, attempt_number: i64) -> String {
    format!("workload-output/job-{job_id}/attempt-{attempt_number}.json")
}

/// A connector task's (check, discover, spec) answer in the `workloadOutput` bucket.
pub fn task_output_path(task_id: Uuid) -> String {
    format!("workload-output/tasks/{task_id}.json")
}

/// A large state in the `state` bucket: content-addressed under its connection and stream
/// (the stream key hashed, since it may hold any character).
pub fn state_object_path(connection_id: Uuid, stream_hash: &str, sha256: &str) -> String {
    format!("state/connection-{connection_id}/{stream_hash}/{sha256}.json")
}

/// A state kept in the `state` bucket instead of the control plane's database: the control
/// plane holds only this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReference {
    /// The object's key in the state bucket.
    pub key: String,
    /// SHA-256 of the object's bytes, lowercase hex: checked when it is read back.
    pub sha256: String,
    pub bytes: u64,
}

/// The answer to `POST /api/v1/jobs/{jobId}/attempts/{attemptId}/logs?offset=N`: how many
/// bytes of the log the control plane holds, so that a data plane resends from there.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LogAppendResponse {
    pub received: u64,
}
