//! What the destination acknowledged, and its commit to the control plane.

use std::collections::BTreeMap;

use ferry_api::{StateCommit, StreamState, StreamStats};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{StateAck, Tally};
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
        if let Some(stream) = ack.state.as_ref().and_then(|state| state.stream.as_ref()) {
            let key = stream.stream_descriptor.key();
            let state = serde_json::to_value(stream).unwrap_or_default();
            self.states
                .insert(key.clone(), StreamState { stream: key, state });
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
