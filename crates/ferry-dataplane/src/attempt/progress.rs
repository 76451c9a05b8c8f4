//! What the destination acknowledged, and its commit to the control plane.

use std::collections::BTreeMap;

use ferry_api::{StateCommit, StreamState, StreamStats};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{ResumeState, SourceState, StateAck, Tally};
use ferry_protocol::StateMessage;
use ferry_protocol::catalog::{ConfiguredCatalog, SyncMode};
use ferry_protocol::failure::{FailureOrigin, FailureType};

use super::Ending;
use super::failure::Failure;

/// What the destination has acknowledged in this attempt, and whether some of it is not yet
/// committed to the control plane.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) rows: i64,
    pub(super) bytes: i64,
    /// Per stream, all of this attempt.
    pub(super) streams: Tally,
    /// The latest acknowledged state per stream, not yet committed.
    states: BTreeMap<String, StreamState>,
    pub(super) pending: bool,
}

impl Progress {
    pub(super) fn take(&mut self, ack: StateAck) {
        self.rows += i64::try_from(ack.records).unwrap_or(i64::MAX);
        self.bytes += i64::try_from(ack.bytes).unwrap_or(i64::MAX);
        for count in &ack.streams {
            self.streams.add(
                &count.stream.name,
                count.stream.namespace.as_deref(),
                count.records,
                count.bytes,
            );
        }
        if let Some(stored) = ack.state.as_ref().and_then(stored_state) {
            self.states.insert(stored.stream.clone(), stored);
        }
        self.pending = true;
    }

    /// Commits what is pending: the latest state per stream and the counts so far.
    pub(super) async fn commit(
        &mut self,
        client: &ControlPlaneClient,
        job_id: i64,
        attempt_id: uuid::Uuid,
    ) -> Result<(), Ending> {
        if !self.pending {
            return Ok(());
        }
        let commit = StateCommit {
            states: std::mem::take(&mut self.states).into_values().collect(),
            rows_synced: self.rows,
            bytes_synced: self.bytes,
            streams: self
                .streams
                .counts()
                .iter()
                .map(|count| StreamStats {
                    stream_name: count.stream.name.clone(),
                    stream_namespace: count.stream.namespace.clone(),
                    records_committed: i64::try_from(count.records).unwrap_or(i64::MAX),
                    bytes_committed: i64::try_from(count.bytes).unwrap_or(i64::MAX),
                })
                .collect(),
        };
        self.pending = false;
        match client.commit_state(job_id, attempt_id, &commit).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_fenced() => Err(Ending::Abandoned),
            Err(error) => Err(Ending::failed(
                Failure::new(
                    FailureOrigin::Persistence,
                    FailureType::TransientError,
                    format!("could not commit state: {error}"),
                ),
                self.rows,
                self.bytes,
            )),
        }
    }
}

/// Where the control plane keeps a GLOBAL state and a LEGACY one, beside the streams'
/// (`namespace.name` keys, which cannot start with `__`: no namespace or name is empty).
pub(super) const GLOBAL_KEY: &str = "__global";
pub(super) const LEGACY_KEY: &str = "__legacy";

/// A state as the control plane keeps it: a stream's `{stream_descriptor, stream_state}`
/// under its key, a GLOBAL or LEGACY state message whole under its own.
fn stored_state(state: &StateMessage) -> Option<StreamState> {
    if let Some(stream) = &state.stream {
        let key = stream.stream_descriptor.key();
        return Some(StreamState {
            stream: key,
            state: serde_json::to_value(stream).ok()?,
        });
    }
    let key = match state.state_type.as_deref() {
        Some("GLOBAL") => GLOBAL_KEY,
        Some("LEGACY") | None if state.extra.contains_key("data") => LEGACY_KEY,
        _ => return None,
    };
    Some(StreamState {
        stream: key.to_owned(),
        state: serde_json::to_value(state).ok()?,
    })
}

/// The committed state an attempt resumes from: only what streams read incrementally
/// resume from (a full refresh reads everything again).
pub(super) fn committed_state(stored: &[StreamState], catalog: &ConfiguredCatalog) -> SourceState {
    let incremental = catalog
        .streams
        .iter()
        .any(|configured| configured.sync_mode == SyncMode::Incremental);
    let mut state = SourceState::default();
    for row in stored {
        match row.stream.as_str() {
            GLOBAL_KEY if incremental => state.global = Some(row.state.clone()),
            LEGACY_KEY if incremental => state.legacy = row.state.get("data").cloned(),
            GLOBAL_KEY | LEGACY_KEY => {}
            _ => {
                let Ok(stream) =
                    serde_json::from_value::<ferry_protocol::StreamState>(row.state.clone())
                else {
                    continue;
                };
                let Some(value) = stream.stream_state else {
                    continue;
                };
                if catalog.reads_incrementally(&stream.stream_descriptor) {
                    state.streams.push(ResumeState {
                        stream: stream.stream_descriptor,
                        state: value,
                    });
                }
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn catalog(sync_mode: &str) -> ConfiguredCatalog {
        serde_json::from_value(json!({"streams": [{"stream": {"name": "numbers"}, "sync_mode": sync_mode, "destination_sync_mode": "append"}]})).unwrap()
    }

    #[test]
    fn global_and_legacy_states_are_kept_whole_and_resumed_as_given() {
        let global: StateMessage = serde_json::from_value(json!({"type": "GLOBAL", "global": {
            "shared_state": {"lsn": 42},
            "stream_states": [{"stream_descriptor": {"name": "numbers"}, "stream_state": {"offset": 7}}]}}))
        .unwrap();
        let stored = stored_state(&global).unwrap();
        assert_eq!(stored.stream, GLOBAL_KEY);
        assert_eq!(stored.state["global"]["shared_state"]["lsn"], 42);
        let legacy: StateMessage =
            serde_json::from_value(json!({"type": "LEGACY", "data": {"cursor": "x"}})).unwrap();
        let legacy = stored_state(&legacy).unwrap();
        assert_eq!(legacy.stream, LEGACY_KEY);
        let untyped: StateMessage =
            serde_json::from_value(json!({"data": {"cursor": "y"}})).unwrap();
        assert_eq!(stored_state(&untyped).unwrap().stream, LEGACY_KEY);

        let resumed = committed_state(&[stored.clone(), legacy.clone()], &catalog("incremental"));
        assert_eq!(resumed.global.unwrap()["type"], "GLOBAL");
        assert_eq!(resumed.legacy, Some(json!({"cursor": "x"})));
        // A full refresh resumes from nothing.
        assert!(committed_state(&[stored, legacy], &catalog("full_refresh")).is_empty());
    }
}
