//! Access checks: each returns the row the caller asked for only if the caller may reach it,
//! so that no handler can forget the check. User callers reach workspaces (and what is in
//! them) through their roles; a data plane reaches only its region's jobs and tasks, and
//! only the attempts it holds.

use ferry_api::ConnectorRole;
use ferry_store::{Actor, Connection, ConnectorTask, Job, Visibility, Workspace, WorkspaceQuery};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Access, Caller, DataplaneCaller};
use crate::error::{ApiError, ApiResult};

/// The workspaces a list may show: those asked for (each must be visible), or all the caller
/// can see (`None`: no restriction, for instance admins).
pub async fn visible_workspace_ids(
    state: &AppState,
    caller: &Caller,
    requested: &[Uuid],
) -> ApiResult<Option<Vec<Uuid>>> {
    if !requested.is_empty() {
        for workspace_id in requested {
            let workspace = state.store.workspace(*workspace_id).await?;
            caller.require_workspace_access(&workspace, Access::Read)?;
        }
        return Ok(Some(requested.to_vec()));
    }
    let visibility = caller.workspace_visibility();
    if visibility == Visibility::All {
        return Ok(None);
    }
    let workspaces = state
        .store
        .workspaces(&WorkspaceQuery {
            ids: None,
            include_deleted: true,
            visibility,
            limit: i64::from(i32::MAX),
            offset: 0,
        })
        .await?;
    Ok(Some(
        workspaces
            .into_iter()
            .map(|workspace| workspace.id)
            .collect(),
    ))
}

/// The live workspace, if the caller has `access` to it.
pub async fn workspace(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    access: Access,
) -> ApiResult<Workspace> {
    let workspace = state.store.live_workspace(id).await?;
    caller.require_workspace_access(&workspace, access)?;
    Ok(workspace)
}

/// Requires `access` to the workspace (deleted or not) that `workspace_id` names.
pub async fn require_workspace(
    state: &AppState,
    caller: &Caller,
    workspace_id: Uuid,
    access: Access,
) -> ApiResult<Workspace> {
    let workspace = state.store.workspace(workspace_id).await?;
    caller.require_workspace_access(&workspace, access)?;
    Ok(workspace)
}

/// The source or destination, if the caller may see its workspace.
pub async fn visible_actor(
    state: &AppState,
    caller: &Caller,
    role: ConnectorRole,
    id: Uuid,
) -> ApiResult<Actor> {
    let actor = state.store.actor(role, id).await?;
    require_workspace(state, caller, actor.workspace_id, Access::Read).await?;
    Ok(actor)
}

/// The connection, if the caller may see its workspace.
pub async fn visible_connection(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<Connection> {
    let connection = state.store.connection(id).await?;
    require_workspace(state, caller, connection.workspace_id, Access::Read).await?;
    Ok(connection)
}

/// The connection, if the caller may edit its workspace.
pub async fn editable_connection(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<Connection> {
    let connection = visible_connection(state, caller, id).await?;
    require_workspace(state, caller, connection.workspace_id, Access::Edit).await?;
    Ok(connection)
}

/// The job, if the caller may see its workspace.
pub async fn visible_job(state: &AppState, caller: &Caller, id: i64) -> ApiResult<Job> {
    let job = state.store.job(id).await?;
    require_workspace(state, caller, job.workspace_id, Access::Read).await?;
    Ok(job)
}

/// The job, if it is in the calling data plane's region; 403 (and a warning in the log)
/// otherwise.
pub async fn region_job(state: &AppState, caller: &DataplaneCaller, job_id: i64) -> ApiResult<Job> {
    let job = state.store.job(job_id).await?;
    if job.region_id != caller.dataplane.region_id {
        tracing::warn!(
            dataplane_id = %caller.dataplane.id,
            dataplane_region = %caller.dataplane.region_id,
            job_id,
            job_region = %job.region_id,
            "data plane asked for a job of another region"
        );
        return Err(ApiError::Forbidden(format!(
            "job {job_id} does not belong to this data plane's region"
        )));
    }
    Ok(job)
}

/// The job and the attempt the calling data plane names, if the job is in its region and
/// the attempt is its own. Whether the attempt is still the job's current one is the
/// store's check, in the same statement as the write (409, fenced).
pub async fn held_attempt(
    state: &AppState,
    caller: &DataplaneCaller,
    job_id: i64,
    attempt_id: Uuid,
) -> ApiResult<Job> {
    let job = region_job(state, caller, job_id).await?;
    let attempt = state.store.attempt(attempt_id).await?;
    if attempt.job_id != job.id || attempt.dataplane_id != caller.dataplane.id {
        return Err(ApiError::Forbidden(format!(
            "attempt {attempt_id} of job {job_id} is not this data plane's"
        )));
    }
    Ok(job)
}

/// The connector task, if it is in the calling data plane's region.
pub async fn region_task(
    state: &AppState,
    caller: &DataplaneCaller,
    task_id: Uuid,
) -> ApiResult<ConnectorTask> {
    let task = state.store.task(task_id).await?;
    if task.region_id != caller.dataplane.region_id {
        tracing::warn!(dataplane_id = %caller.dataplane.id, %task_id, "data plane answered a task of another region");
        return Err(ApiError::Forbidden(format!(
            "task {task_id} does not belong to this data plane's region"
        )));
    }
    Ok(task)
}
