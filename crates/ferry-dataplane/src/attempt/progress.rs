//! What the destination acknowledged, and its commit to the control plane; and where each
//! stream resumes: the control plane's committed state, or the destination's own record where
//! it is newer.

use std::collections::BTreeMap;

use ferry_api::{StateCommit, StreamState, StreamStats};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{
    Destination, LogSink, ResumeState, SourceState, StateAck, StreamEstimate, Tally,
};
use ferry_protocol::StateMessage;
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming, SyncMode};
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
    /// The source's latest estimate per stream.
    estimates: Vec<StreamEstimate>,
    /// The latest acknowledged state per stream, not yet committed.
    states: BTreeMap<String, StreamState>,
    pub(super) pending: bool,
    /// Where states too large to send go (the guide's `state` bucket).
    pub(super) state_bucket: Option<super::large_state::StateBucket>,
    /// The attempt's log, told of each checkpoint committed.
    pub(super) log: Option<ferry_connectors::LogSink>,
}

impl Progress {
    /// Progress that keeps large states in `state_bucket` and tells `log` of checkpoints.
    pub(super) fn new(
        state_bucket: super::large_state::StateBucket,
        log: ferry_connectors::LogSink,
    ) -> Self {
        Self {
            state_bucket: Some(state_bucket),
            log: Some(log),
            ..Self::default()
        }
    }

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
        for estimate in ack.estimates {
            match self
                .estimates
                .iter_mut()
                .find(|known| known.stream == estimate.stream)
            {
                Some(known) => *known = estimate,
                None => self.estimates.push(estimate),
            }
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
        let mut states: Vec<StreamState> = std::mem::take(&mut self.states).into_values().collect();
        if let Some(bucket) = &self.state_bucket
            && let Err(failure) = bucket.offload(&mut states).await
        {
            return Err(Ending::failed(failure, self.rows, self.bytes));
        }
        let commit = StateCommit {
            states,
            rows_synced: self.rows,
            bytes_synced: self.bytes,
            streams: self.stream_stats(),
        };
        self.pending = false;
        match client.commit_state(job_id, attempt_id, &commit).await {
            Ok(()) => {
                if let Some(bucket) = &mut self.state_bucket {
                    bucket.committed(&commit.states).await;
                }
                if let Some(log) = &self.log
                    && !commit.states.is_empty()
                {
                    let streams: Vec<String> = commit
                        .states
                        .iter()
                        .map(|state| match &state.reference {
                            Some(reference) => format!(
                                "{} ({} bytes, in the state bucket as {})",
                                state.stream, reference.bytes, reference.key
                            ),
                            None => state.stream.clone(),
                        })
                        .collect();
                    let _ = log.send(format!(
                        "checkpoint committed: state of {}; {} rows and {} bytes committed so far",
                        streams.join(", "),
                        self.rows,
                        self.bytes
                    ));
                }
                Ok(())
            }
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

    /// Each stream's counts, with the source's estimate where it gave one (a stream
    /// estimated but not yet written shows with nothing committed).
    fn stream_stats(&self) -> Vec<StreamStats> {
        let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let mut stats: Vec<StreamStats> = self
            .streams
            .counts()
            .iter()
            .map(|count| StreamStats {
                stream_name: count.stream.name.clone(),
                stream_namespace: count.stream.namespace.clone(),
                records_committed: as_i64(count.records),
                bytes_committed: as_i64(count.bytes),
                ..StreamStats::default()
            })
            .collect();
        for estimate in &self.estimates {
            let index = match stats.iter().position(|stream| {
                stream.stream_name == estimate.stream.name
                    && stream.stream_namespace == estimate.stream.namespace
            }) {
                Some(index) => index,
                None => {
                    stats.push(StreamStats {
                        stream_name: estimate.stream.name.clone(),
                        stream_namespace: estimate.stream.namespace.clone(),
                        ..StreamStats::default()
                    });
                    stats.len() - 1
                }
            };
            stats[index].estimated_records = estimate.records.map(as_i64);
            stats[index].estimated_bytes = estimate.bytes.map(as_i64);
        }
        stats
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
            reference: None,
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
        reference: None,
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

/// Where the destination recorded a state with the rows it covers, the stream resumes from
/// it: never older than the control plane's (the control plane commits only acknowledged
/// states), and newer when the data plane died after the destination's commit and before
/// the control plane's, which would otherwise bring those rows twice.
pub(super) async fn prefer_destination_checkpoints(
    resume: &mut Vec<ResumeState>,
    destination: &dyn Destination,
    catalog: &ConfiguredCatalog,
    naming: &DestinationNaming,
    log: &LogSink,
) -> Result<(), Failure> {
    let recorded = destination
        .committed_states(catalog, naming)
        .await
        .map_err(|error| Failure::of(FailureOrigin::Destination, &error))?;
    for checkpoint in recorded {
        let stream = &checkpoint.stream;
        let held = resume.iter_mut().find(|resume| resume.stream == *stream);
        match held {
            Some(held) if held.state == checkpoint.state => {}
            Some(held) => {
                let _ = log.send(format!(
                    "stream {}: resuming from the destination's checkpoint, newer than the control plane's state",
                    stream.key()
                ));
                held.state = checkpoint.state;
            }
            None => {
                let _ = log.send(format!(
                    "stream {}: resuming from the destination's checkpoint (the control plane has no state)",
                    stream.key()
                ));
                resume.push(checkpoint);
            }
        }
    }
    Ok(())
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
