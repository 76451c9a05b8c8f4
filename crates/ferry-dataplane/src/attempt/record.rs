//! What an attempt ran and how it went, gathered as it runs: the connectors, the streams
//! (sync modes, target tables, counts), timings and the failure. Written at its end to the
//! `workloadOutput` bucket as the attempt's summary.

use std::sync::Mutex;

use ferry_api::{AttemptConfig, ClaimedJob, FinishReport};
use ferry_connectors::StreamCount;
use ferry_protocol::ConnectorRole;
use ferry_protocol::StreamDescriptor;
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use crate::output;

#[derive(Default)]
struct Gathered {
    connectors: Vec<Value>,
    streams: Vec<Value>,
    counts: Vec<Value>,
}

pub(super) struct Record {
    started_at: String,
    started: std::time::Instant,
    gathered: Mutex<Gathered>,
}

/// Where a stream lands in the destination, as the log and the summary name it.
pub(super) fn target(naming: &DestinationNaming, stream: &StreamDescriptor) -> String {
    match naming.namespace(stream.namespace.as_deref()) {
        Some(namespace) => format!("{namespace}.{}", naming.name(&stream.name)),
        None => format!("(default).{}", naming.name(&stream.name)),
    }
}

/// One connector, as the log names it: its type and what runs it (a native connector is
/// this Ferry build's own code; a custom one the program its definition names).
pub(super) fn connector_line(
    role: ConnectorRole,
    connector_type: &str,
    command: Option<&[String]>,
) -> (String, Value) {
    match command {
        Some(command) => (
            format!(
                "{role}: {connector_type}, custom program {}",
                command.join(" ")
            ),
            json!({"role": role, "type": connector_type, "command": command}),
        ),
        None => {
            let version = env!("CARGO_PKG_VERSION");
            (
                format!("{role}: {connector_type}, native (ferry {version})"),
                json!({"role": role, "type": connector_type, "native": true, "version": version}),
            )
        }
    }
}

impl Record {
    pub(super) fn new() -> Self {
        Self {
            started_at: output::now_text(),
            started: std::time::Instant::now(),
            gathered: Mutex::new(Gathered::default()),
        }
    }

    fn with(&self, change: impl FnOnce(&mut Gathered)) {
        if let Ok(mut gathered) = self.gathered.lock() {
            change(&mut gathered);
        }
    }

    /// The connectors, logged and kept.
    pub(super) fn connectors(&self, config: &AttemptConfig, log: &ferry_connectors::LogSink) {
        let sides = [
            (
                ConnectorRole::Source,
                &config.source_type,
                config.source_command.as_deref(),
            ),
            (
                ConnectorRole::Destination,
                &config.destination_type,
                config.destination_command.as_deref(),
            ),
        ];
        for (role, connector_type, command) in sides {
            let (line, value) = connector_line(role, connector_type, command);
            let _ = log.send(line);
            self.with(|gathered| gathered.connectors.push(value));
        }
    }

    pub(super) fn streams(&self, catalog: &ConfiguredCatalog, naming: &DestinationNaming) {
        let streams = catalog
            .streams
            .iter()
            .map(|configured| {
                let stream = configured.stream.descriptor();
                json!({
                    "name": stream.name,
                    "namespace": stream.namespace,
                    "syncMode": configured.sync_mode.as_str(),
                    "destinationSyncMode": configured.destination_sync_mode.as_str(),
                    "cursorField": configured.cursor_field,
                    "primaryKey": configured.primary_key,
                    "target": target(naming, &stream),
                })
            })
            .collect();
        self.with(|gathered| gathered.streams = streams);
    }

    pub(super) fn counts(&self, counts: &[StreamCount]) {
        let counts = counts
            .iter()
            .map(|count| {
                json!({
                    "name": count.stream.name,
                    "namespace": count.stream.namespace,
                    "recordsCommitted": count.records,
                    "bytesCommitted": count.bytes,
                })
            })
            .collect();
        self.with(|gathered| gathered.counts = counts);
    }

    /// Keeps what the attempt leaves in this data plane's buckets once it ended: its summary
    /// (workload output), and its log when the control plane could not take it whole (in
    /// the plane's own log bucket, which the control plane reads too when they share it).
    pub(super) async fn keep(
        &self,
        storage: &crate::StorageBuckets,
        claimed: &ClaimedJob,
        log: super::log::CollectedLog,
        (how, report): (&str, Option<&FinishReport>),
    ) {
        if !log.streamed {
            let path = ObjectPath::from(ferry_api::attempt_log_path(
                claimed.job_id,
                claimed.attempt_number,
            ));
            if let Err(error) = storage
                .log
                .put(&path, PutPayload::from(log.text.into_bytes()))
                .await
            {
                tracing::warn!(job_id = claimed.job_id, %error, "could not store the attempt's log");
            }
        }
        output::write(
            storage.workload_output.as_ref(),
            ferry_api::attempt_output_path(claimed.job_id, claimed.attempt_number),
            &self.summary(claimed, how, report),
        )
        .await;
    }

    /// The summary, once the attempt ended (`report` absent when it was abandoned or
    /// handed back: `how` says which).
    fn summary(&self, claimed: &ClaimedJob, how: &str, report: Option<&FinishReport>) -> Value {
        let gathered = self
            .gathered
            .lock()
            .map(|gathered| {
                (
                    gathered.connectors.clone(),
                    gathered.streams.clone(),
                    gathered.counts.clone(),
                )
            })
            .unwrap_or_default();
        let (connectors, streams, counts) = gathered;
        json!({
            "version": output::OUTPUT_VERSION,
            "jobId": claimed.job_id,
            "attemptNumber": claimed.attempt_number,
            "attemptId": claimed.attempt_id,
            "jobType": claimed.job_type,
            "connectionId": claimed.connection_id,
            "status": how,
            "startedAt": self.started_at,
            "endedAt": output::now_text(),
            "durationMs": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "rowsSynced": report.map(|report| report.rows_synced),
            "bytesSynced": report.map(|report| report.bytes_synced),
            "connectors": connectors,
            "streams": streams,
            "streamCounts": counts,
            "failure": report.and_then(|report| report.failure_reason.as_ref().map(|reason| json!({
                "reason": reason,
                "origin": report.failure_origin,
                "type": report.failure_type,
            }))),
        })
    }
}
