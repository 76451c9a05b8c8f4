//! `check` and `discover`: connector commands that run on a data plane of the workspace's
//! region — never in the control plane, which would see the source's data otherwise — while
//! the API call that asked waits for the answer.

use std::time::Duration;

use ferry_api::{ClaimedTask, TaskKind, TaskResult, TaskStatus};
use ferry_store::{Actor, ConnectorTask, now_millis};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::AppState;
use crate::auth::DataplaneCaller;
use crate::error::{ApiError, ApiResult};
use crate::services::{access, definitions, jobs};

/// How long a data plane has to answer a task, from when it is queued: its API call waits
/// that long (and `ANSWER_GRACE`), and a data plane may claim it only before (a task whose
/// waiter gave up is never run). A `check` opens a connection and looks (the PostgreSQL
/// connectors give up connecting after 30 s); a `discover` may list a large schema. The data
/// plane runs each under the time left, so that its answer, a timeout included, comes first.
const fn answer_within(kind: TaskKind) -> Duration {
    match kind {
        TaskKind::Check => Duration::from_secs(60),
        TaskKind::Discover => Duration::from_secs(5 * 60),
        // Printing a SPEC reaches nothing; a source or destination's creation waits for it.
        TaskKind::Spec => Duration::from_secs(30),
    }
}

/// How long a waiting call still looks after the deadline: for an answer posted at the
/// deadline to arrive.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// How often a waiting call looks again even without a wake-up (answers posted to another
/// control-plane replica do not wake this one).
const TASK_POLL: Duration = Duration::from_millis(250);

/// Runs `kind` for the actor on a data plane of its workspace's region and waits for it:
/// the connector's answer, or the error it failed with.
async fn run(state: &AppState, actor: &Actor, kind: TaskKind) -> ApiResult<Result<Value, String>> {
    let workspace = state.store.workspace(actor.workspace_id).await?;
    let region = jobs::runnable_region(state, &workspace, &format!("`{kind}`")).await?;
    let within = answer_within(kind);
    let expires_at = now_millis() + i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
    let task = state
        .store
        .create_task(region.id, kind, actor.kind, actor.id, expires_at)
        .await?;
    state.job_created.notify_waiters();
    let deadline = Instant::now() + within + ANSWER_GRACE;
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
                within.as_secs()
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

/// The SPEC (`{"connectionSpecification": …}`) the program of the actor's custom
/// definition prints, run on a data plane of its region: the error when it could not.
pub async fn spec(state: &AppState, actor: &Actor) -> ApiResult<Result<Value, String>> {
    run(state, actor, TaskKind::Spec).await
}

/// The claimed task as its data plane needs it: the connector and its configuration (none
/// for `spec`, which reads none).
pub async fn claimed(state: &AppState, task: ConnectorTask) -> ApiResult<ClaimedTask> {
    let actor = state.store.actor(task.actor_kind, task.actor_id).await?;
    let configuration = match task.kind {
        TaskKind::Spec => json!({}),
        TaskKind::Check | TaskKind::Discover => {
            crate::secrets::managed::for_dataplane(state, &actor)?
        }
    };
    Ok(ClaimedTask {
        task_id: task.id,
        kind: task.kind,
        role: task.actor_kind,
        command: definitions::custom_command(state, &actor).await?,
        connector_type: actor.connector_type.clone(),
        configuration,
        timeout_ms: Some(u64::try_from(task.expires_at - now_millis()).unwrap_or(0)),
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
