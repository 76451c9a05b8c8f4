//! Workload output: each attempt's summary and each connector task's answer, as JSON in the
//! guide's `workloadOutput` bucket (keyed by job and attempt, or by task). Written by the
//! data plane that ran them, so they stay in its region's storage; a failed write is
//! logged, never an attempt's failure.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;

/// Format version of the documents written here.
pub(crate) const OUTPUT_VERSION: u32 = 1;

pub(crate) async fn write(bucket: &dyn ObjectStore, key: String, document: &Value) {
    let bytes = match serde_json::to_vec_pretty(document) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%key, %error, "could not encode workload output");
            return;
        }
    };
    if let Err(error) = bucket
        .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
        .await
    {
        tracing::warn!(%key, %error, "could not write workload output");
    }
}

/// Now, as RFC 3339 text.
pub(crate) fn now_text() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
