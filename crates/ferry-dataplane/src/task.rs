//! Connector tasks: a `check` or `discover` an API call waits for.

use ferry_api::{ClaimedTask, TaskKind, TaskResult};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{ConnectorError, destination_for, source_for};
use ferry_protocol::ConnectorRole;
use serde_json::{Value, json};

/// Runs a connector task and reports its answer.
pub async fn run_task(client: &ControlPlaneClient, task: ClaimedTask) {
    let answer = match answer_task(&task).await {
        Ok(result) => TaskResult {
            result: Some(result),
            error: None,
        },
        Err(error) => TaskResult {
            result: None,
            error: Some(error.to_string()),
        },
    };
    if let Err(error) = client.task_result(task.task_id, &answer).await {
        tracing::warn!(task_id = %task.task_id, %error, "could not report the task's answer");
    }
}

/// A check's outcome is an answer either way (Airbyte's CONNECTION_STATUS); only a
/// connector that cannot be made or a discover that fails is an error. Task output is not
/// kept in a job log; it goes to the process log only.
async fn answer_task(task: &ClaimedTask) -> Result<Value, ConnectorError> {
    let command = task.command.as_deref();
    let status = |outcome: Result<(), ConnectorError>| match outcome {
        Ok(()) => json!({"status": "SUCCEEDED"}),
        Err(error) => json!({"status": "FAILED", "message": error.to_string()}),
    };
    match (task.role, task.kind) {
        (ConnectorRole::Source, TaskKind::Discover) => {
            source_for(&task.connector_type, command, &task.configuration, None)?
                .discover()
                .await
        }
        (ConnectorRole::Source, TaskKind::Check) => {
            let source = source_for(&task.connector_type, command, &task.configuration, None);
            Ok(status(match source {
                Ok(source) => source.check().await,
                Err(error) => Err(error),
            }))
        }
        (ConnectorRole::Destination, TaskKind::Check) => {
            let destination =
                destination_for(&task.connector_type, command, &task.configuration, None);
            Ok(status(match destination {
                Ok(destination) => destination.check().await,
                Err(error) => Err(error),
            }))
        }
        (role, kind) => Err(ConnectorError::Failed(format!("cannot {kind} a {role}"))),
    }
}
