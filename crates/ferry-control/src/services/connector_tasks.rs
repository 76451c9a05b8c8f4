//! `check` and `discover`: connector commands that run on a data plane of the workspace's
//! region — never in the control plane, which would see the source's data otherwise — while
//! the API call that asked waits for the answer.

use std::time::Duration;

use ferry_api::{ClaimedTask, TaskKind, TaskResult, TaskStatus};
use ferry_store::{Actor, ConnectorTask};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::AppState;
use crate::auth::DataplaneCaller;
use crate::error::{ApiError, ApiResult};
use crate::services::{access, definitions, jobs};

/// Longest an API call waits for a data plane's answer.
const TASK_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting call looks again even without a wake-up (answers posted to another
/// control-plane replica do not wake this one).
const TASK_POLL: Duration = Duration::from_millis(250);

/// Runs `kind` for the actor on a data plane of its workspace's region and waits for it:
/// the connector's answer, or the error it failed with.
async fn run(state: &AppState, actor: &Actor, kind: TaskKind) -> ApiResult<Result<Value, String>> {
    let workspace = state.store.workspace(actor.workspace_id).await?;
    let region = jobs::runnable_region(state, &workspace, &format!("`{kind}`")).await?;
    let task = state
        .store
        .create_task(region.id, kind, actor.kind, actor.id)
        .await?;
    state.job_created.notify_waiters();
    let deadline = Instant::now() + TASK_WAIT;
    loop {
        let woken = state.task_done.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let current = state.store.task(task.id).await?;
        match current.status {
            TaskStatus::Succeeded => return Ok(Ok(current.result.unwrap_or(Value::Null))),
            TaskStatus::Failed => return Ok(Err(current.error.unwrap_or_default())),
            TaskStatus::Pending | TaskStatus::Running => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::Unavailable(format!(
                "no data plane of region '{}' answered `{kind}` within {} s",
                region.name,
                TASK_WAIT.as_secs()
            )));
        }
        let _ = tokio::time::timeout((deadline - now).min(TASK_POLL), woken).await;
    }
}

/// The source's catalog, discovered on a data plane of its region; 422 naming `sourceId`
/// when the discover failed.
pub async fn discover(state: &AppState, source: &Actor) -> ApiResult<Value> {
    run(state, source, TaskKind::Discover)
        .await?
        .map_err(|error| {
            ApiError::unprocessable_field("sourceId", format!("discover failed: {error}"))
        })
}

/// The connector's `check` answer (`{"status": "SUCCEEDED" | "FAILED", "message": …}`); a
/// check that could not run at all reads as a failed one.
pub async fn check(state: &AppState, actor: &Actor) -> ApiResult<Value> {
    Ok(match run(state, actor, TaskKind::Check).await? {
        Ok(status) => status,
        Err(error) => json!({"status": "FAILED", "message": error}),
    })
}

/// The claimed task as its data plane needs it: the connector and its configuration.
pub async fn claimed(state: &AppState, task: ConnectorTask) -> ApiResult<ClaimedTask> {
    let actor = state.store.actor(task.actor_kind, task.actor_id).await?;
    Ok(ClaimedTask {
        task_id: task.id,
        kind: task.kind,
        role: task.actor_kind,
        command: definitions::custom_command(state, &actor).await?,
        connector_type: actor.connector_type.clone(),
        configuration: state.secrets.decrypt(&actor.configuration)?,
    })
}

/// Records the answer of the data plane that claimed the task, and wakes the waiting call.
pub async fn answer(
    state: &AppState,
    caller: &DataplaneCaller,
    task_id: uuid::Uuid,
    answer: &TaskResult,
) -> ApiResult<()> {
    access::region_task(state, caller, task_id).await?;
    state
        .store
        .complete_task(
            task_id,
            caller.dataplane.id,
            answer.result.as_ref(),
            answer.error.as_deref(),
        )
        .await?;
    state.task_done.notify_waiters();
    Ok(())
}
