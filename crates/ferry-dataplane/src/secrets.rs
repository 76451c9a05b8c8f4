//! Secrets the control plane left in a secrets manager: the configurations of an attempt or
//! a connector task come with references (`{"_secret": "<coordinate>"}`), resolved here
//! from the manager this data plane was given, so that no secret crosses the channel from
//! the control plane. Without references, nothing is read.

use ferry_api::{AttemptConfig, ClaimedTask, TaskResult};
use ferry_client::ControlPlaneClient;
use ferry_protocol::failure::FailureType;
use ferry_secrets::{SecretsError, SecretsManager, references};

/// Resolves the source's and the destination's references.
pub(crate) async fn resolve_attempt(
    config: &mut AttemptConfig,
    manager: Option<&SecretsManager>,
) -> Result<(), SecretsError> {
    references::resolve(&mut config.source_configuration, manager).await?;
    references::resolve(&mut config.destination_configuration, manager).await
}

/// A missing secret or manager is the deployment's to fix (a retry cannot help); an
/// unreachable manager may come back.
pub(crate) fn failure_type(error: &SecretsError) -> FailureType {
    match error {
        SecretsError::Unreachable { .. } => FailureType::TransientError,
        _ => FailureType::ConfigError,
    }
}

/// The task with its references resolved; when they cannot be, its answer is that error,
/// reported here, and there is nothing left to run.
pub(crate) async fn resolve_task(
    client: &ControlPlaneClient,
    mut task: ClaimedTask,
    manager: Option<&SecretsManager>,
) -> Option<ClaimedTask> {
    match references::resolve(&mut task.configuration, manager).await {
        Ok(()) => Some(task),
        Err(error) => {
            tracing::warn!(task_id = %task.task_id, %error, "could not read the task's secrets");
            let answer = TaskResult {
                result: None,
                error: Some(format!(
                    "could not read the {}'s secrets from the secrets manager: {error}",
                    task.role
                )),
            };
            if let Err(error) = client.task_result(task.task_id, &answer).await {
                tracing::warn!(task_id = %task.task_id, %error, "could not report the task's answer");
            }
            None
        }
    }
}
