//! Connector tasks: a `check`, `discover` or `spec` an API call waits for.

use std::time::Duration;

use ferry_api::{ClaimedTask, TaskKind, TaskResult};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{ConnectorError, ExternalConnector, destination_for, source_for};
use ferry_protocol::ConnectorRole;

use crate::attempt::mask::Masker;
use serde_json::{Value, json};

/// Longest a `check` runs here: it opens a connection and looks (the PostgreSQL
/// connectors give up connecting after 30 s). The control plane's waiter waits as long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a `discover` runs here: listing a large schema can take minutes.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Longest a `spec` runs here: a program printing what it reads, reaching nothing.
const SPEC_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a connector task, within its deadline, and reports its answer; the answer is also
/// the task's workload output.
pub async fn run_task(
    client: &ControlPlaneClient,
    task: ClaimedTask,
    storage: &crate::StorageBuckets,
) {
    let started_at = crate::output::now_text();
    let started = std::time::Instant::now();
    let own = match task.kind {
        TaskKind::Check => CHECK_TIMEOUT,
        TaskKind::Discover => DISCOVER_TIMEOUT,
        TaskKind::Spec => SPEC_TIMEOUT,
    };
    // The waiting API call gives up at the task's deadline: answer before it.
    let limit = task
        .timeout_ms
        .map_or(own, |left| own.min(Duration::from_millis(left)));
    let answer = match tokio::time::timeout(limit, answer_task(&task)).await {
        Ok(Ok(result)) => TaskResult {
            result: Some(result),
            error: None,
        },
        Ok(Err(error)) => TaskResult {
            result: None,
            error: Some(error.to_string()),
        },
        // The connector is dropped (an external one's process killed).
        Err(_) => TaskResult {
            result: None,
            error: Some(format!(
                "`{}` did not finish within {} s; the {} may be unreachable or too slow to answer",
                task.kind,
                limit.as_secs(),
                task.role
            )),
        },
    };
    let output = json!({
        "version": crate::output::OUTPUT_VERSION,
        "taskId": task.task_id,
        "kind": task.kind,
        "role": task.role,
        "connectorType": task.connector_type,
        "startedAt": started_at,
        "endedAt": crate::output::now_text(),
        "durationMs": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "result": answer.result,
        "error": answer.error,
    });
    crate::output::write(
        storage.workload_output.as_ref(),
        ferry_api::task_output_path(task.task_id),
        &output,
    )
    .await;
    if let Err(error) = client.task_result(task.task_id, &answer).await {
        tracing::warn!(task_id = %task.task_id, %error, "could not report the task's answer");
    }
}

/// A check's outcome is an answer either way (Airbyte's CONNECTION_STATUS); only a
/// connector that cannot be made or a discover that fails is an error. Task output is not
/// kept in a job log; it goes to the process log only, masked.
async fn answer_task(task: &ClaimedTask) -> Result<Value, ConnectorError> {
    let command = task.command.as_deref();
    // What the connector prints goes to the process log with its configuration's secrets
    // masked (by its SPEC, as an attempt's log): a check's connector may echo what it read.
    let (log, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let masker = Masker::default();
    if task.kind != TaskKind::Spec {
        masker
            .learn(
                task.role,
                &task.connector_type,
                command,
                &task.configuration,
            )
            .await;
    }
    tokio::spawn(print_masked(lines, masker, task.task_id));
    let log = Some(&log);
    let status = |outcome: Result<(), ConnectorError>| match outcome {
        Ok(()) => json!({"status": "SUCCEEDED"}),
        Err(error) => json!({"status": "FAILED", "message": error.to_string()}),
    };
    match (task.role, task.kind) {
        (ConnectorRole::Source, TaskKind::Discover) => {
            source_for(&task.connector_type, command, &task.configuration, log)?
                .discover()
                .await
        }
        (ConnectorRole::Source, TaskKind::Check) => {
            let source = source_for(&task.connector_type, command, &task.configuration, log);
            Ok(status(match source {
                Ok(source) => source.check().await,
                Err(error) => Err(error),
            }))
        }
        (ConnectorRole::Destination, TaskKind::Check) => {
            let destination =
                destination_for(&task.connector_type, command, &task.configuration, log);
            Ok(status(match destination {
                Ok(destination) => destination.check().await,
                Err(error) => Err(error),
            }))
        }
        // A custom definition's program, which prints the SPEC its definition keeps.
        (_, TaskKind::Spec) => match command {
            Some(command) => ExternalConnector::new(command)?.spec().await,
            None => Err(ConnectorError::Failed(format!(
                "a native {} connector's SPEC is in the registry",
                task.role
            ))),
        },
        (role, kind) => Err(ConnectorError::Failed(format!("cannot {kind} a {role}"))),
    }
}

/// The task's connector output, masked, into the process log; ends with the connector.
async fn print_masked(
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    masker: Masker,
    task_id: uuid::Uuid,
) {
    while let Some(line) = lines.recv().await {
        tracing::info!(%task_id, "{}", masker.mask(&line));
    }
}
