//! The start page, Workspace settings → General (name and Region, "Save changes"), and the
//! organization settings page: every workspace the user can see, with its region.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use ferry_api::{DEFAULT_ORGANIZATION_ID, WorkspaceCreateRequest, WorkspaceUpdateRequest};
use ferry_store::Region;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::form::Form;
use super::pages::{FieldErrors, Place, csrf, error_page, html_response, page};
use super::session::Ui;
use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Page, parse_uuid};
use crate::services::{access, workspaces};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workspaces/{workspaceId}", get(workspace_home))
        .route(
            "/workspaces/{workspaceId}/settings",
            get(settings).post(save_settings),
        )
        .route("/organization", get(organization).post(create_workspace))
}

const ALL: Page = Page {
    limit: 1000,
    offset: 0,
};

/// The workspace (which the user must be able to see) for a page's navigation.
pub async fn place(state: &AppState, ui: &Ui, workspace_id: Uuid) -> ApiResult<Place> {
    let workspace = access::workspace(state, &ui.caller, workspace_id, Access::Read).await?;
    Ok(Place {
        workspace_id: workspace.id,
        workspace_name: workspace.name,
    })
}

pub fn workspace_id(text: &str) -> ApiResult<Uuid> {
    parse_uuid("workspaceId", text)
}

pub async fn home(State(state): State<AppState>, ui: Ui) -> Response {
    match workspaces::list(
        &state,
        &ui.caller,
        Vec::new(),
        false,
        Page {
            limit: 1,
            offset: 0,
        },
    )
    .await
    {
        Ok(list) => match list.first() {
            Some(workspace) => Redirect::to(&format!(
                "/workspaces/{}/connections",
                workspace.workspace_id
            ))
            .into_response(),
            None => Redirect::to("/organization").into_response(),
        },
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn workspace_home(ui: Ui, Path(id): Path<String>) -> Response {
    match workspace_id(&id) {
        Ok(id) => Redirect::to(&format!("/workspaces/{id}/connections")).into_response(),
        Err(error) => error_page(Some(&ui), &error),
    }
}

#[derive(Debug, Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

async fn settings(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> Response {
    let rendered = async {
        let id = workspace_id(&id)?;
        settings_page(
            &state,
            &ui,
            id,
            None,
            &FieldErrors::default(),
            saved.saved.is_some(),
        )
        .await
    };
    match rendered.await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn settings_page(
    state: &AppState,
    ui: &Ui,
    id: Uuid,
    submitted: Option<&Form>,
    errors: &FieldErrors,
    saved: bool,
) -> ApiResult<Markup> {
    let workspace = access::workspace(state, &ui.caller, id, Access::Read).await?;
    let shown = workspaces::read(state, &ui.caller, id).await?;
    let can_edit = ui
        .caller
        .require_workspace_access(&workspace, Access::Edit)
        .is_ok();
    let regions = workspaces::region_choices(state, workspace.organization_id).await?;
    let name = submitted
        .and_then(|form| form.get("name"))
        .unwrap_or(&shown.name)
        .to_owned();
    let chosen = submitted
        .and_then(|form| form.get("regionId"))
        .map(str::to_owned)
        .unwrap_or_else(|| shown.region_id.to_string());
    let place = Place {
        workspace_id: workspace.id,
        workspace_name: workspace.name.clone(),
    };
    Ok(page(
        Some(ui),
        Some(&place),
        "Workspace settings",
        html! {
            h2 { "General" }
            @if saved { div.alert.ok role="status" { p { "Changes saved." } } }
            (errors.summary())
            @if !can_edit {
                p.muted { "You can see these settings; changing them needs the editor role in this workspace." }
            }
            form.card method="post" action={ "/workspaces/" (id) "/settings" } {
                (csrf(ui))
                label for="name" { "Workspace name" }
                input type="text" id="name" name="name" value=(name) required disabled[!can_edit]
                    aria-describedby=[errors.of("name").map(|_| "error-name")];
                (errors.next_to("name"))
                label for="region" { "Region" }
                p.hint id="region-hint" { "Where this workspace's syncs run: a data plane of this region runs them. A change applies to later jobs." }
                select id="region" name="regionId" disabled[!can_edit] aria-describedby="region-hint" {
                    @for region in &regions {
                        option value=(region.id) selected[region.id.to_string() == chosen] { (region.name) }
                    }
                }
                (errors.next_to("regionId"))
                (errors.next_to("dataResidency"))
                @if can_edit { div.actions { button type="submit" { "Save changes" } } }
            }
            dl.facts {
                dt { "Workspace id" } dd { code { (shown.workspace_id) } }
                dt { "Data residency" } dd { (shown.data_residency) }
            }
        },
    ))
}

async fn save_settings(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let saved = async {
        ui.check_csrf(&form)?;
        let id = workspace_id(&id)?;
        let region_id = form
            .text("regionId")
            .map(|text| parse_uuid("regionId", &text))
            .transpose()?;
        let request = WorkspaceUpdateRequest {
            name: form.get("name").map(str::to_owned),
            notifications: None,
            region_id,
            data_residency: None,
        };
        workspaces::update(&state, &ui.caller, id, request).await?;
        Ok::<Uuid, ApiError>(id)
    };
    match saved.await {
        Ok(id) => Redirect::to(&format!("/workspaces/{id}/settings?saved=1")).into_response(),
        Err(error @ (ApiError::BadRequest { .. } | ApiError::Unprocessable { .. })) => {
            let Ok(id) = workspace_id(&id) else {
                return error_page(Some(&ui), &error);
            };
            let errors = FieldErrors::from_error(&error);
            match settings_page(&state, &ui, id, Some(&form), &errors, false).await {
                Ok(markup) => html_response(error.status(), markup),
                Err(error) => error_page(Some(&ui), &error),
            }
        }
        Err(error) => error_page(Some(&ui), &error),
    }
}

fn region_name(regions: &[Region], id: Uuid) -> String {
    regions
        .iter()
        .find(|region| region.id == id)
        .map_or_else(|| id.to_string(), |region| region.name.clone())
}

async fn organization_page(state: &AppState, ui: &Ui, errors: &FieldErrors) -> ApiResult<Markup> {
    let list = workspaces::list(state, &ui.caller, Vec::new(), false, ALL).await?;
    let regions = workspaces::region_choices(state, DEFAULT_ORGANIZATION_ID).await?;
    let all_regions = state.store.regions(DEFAULT_ORGANIZATION_ID).await?;
    let can_create = ui
        .caller
        .has_organization_access(DEFAULT_ORGANIZATION_ID, Access::Edit);
    Ok(page(
        Some(ui),
        None,
        "Organization settings",
        html! {
            h2 { "Workspaces and their regions" }
            p.muted { "Each workspace's syncs run in its region. Change a workspace's region in its settings." }
            div.table-wrap {
                table {
                    caption.muted { "Workspaces" }
                    thead { tr { th scope="col" { "Workspace" } th scope="col" { "Region" } th scope="col" { "Data residency" } th scope="col" { "Settings" } } }
                    tbody {
                        @for workspace in &list {
                            tr {
                                td { a href={ "/workspaces/" (workspace.workspace_id) "/connections" } { (workspace.name) } }
                                td { (region_name(&all_regions, workspace.region_id)) }
                                td { code { (workspace.data_residency) } }
                                td { a href={ "/workspaces/" (workspace.workspace_id) "/settings" } { "Workspace settings" } }
                            }
                        }
                    }
                }
            }
            @if ui.caller.is_instance_admin() {
                p { a href="/organization/regions" { "Regions and data planes" } }
            }
            @if can_create {
                h2 { "New workspace" }
                (errors.summary())
                form.card method="post" action="/organization" {
                    (csrf(ui))
                    label for="new-name" { "Workspace name" }
                    input type="text" id="new-name" name="name" required;
                    (errors.next_to("name"))
                    label for="new-region" { "Region" }
                    select id="new-region" name="regionId" {
                        @for region in &regions { option value=(region.id) { (region.name) } }
                    }
                    (errors.next_to("regionId"))
                    div.actions { button type="submit" { "Create workspace" } }
                }
            }
        },
    ))
}

async fn organization(State(state): State<AppState>, ui: Ui) -> Response {
    match organization_page(&state, &ui, &FieldErrors::default()).await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn create_workspace(State(state): State<AppState>, ui: Ui, form: Form) -> Response {
    let created = async {
        ui.check_csrf(&form)?;
        let region_id = form
            .text("regionId")
            .map(|text| parse_uuid("regionId", &text))
            .transpose()?;
        workspaces::create(
            &state,
            &ui.caller,
            WorkspaceCreateRequest {
                name: form.get("name").unwrap_or_default().to_owned(),
                organization_id: Some(DEFAULT_ORGANIZATION_ID),
                region_id,
                data_residency: None,
                notifications: None,
            },
        )
        .await
    };
    match created.await {
        Ok(workspace) => Redirect::to(&format!("/workspaces/{}/settings", workspace.workspace_id))
            .into_response(),
        Err(error @ (ApiError::BadRequest { .. } | ApiError::Unprocessable { .. })) => {
            match organization_page(&state, &ui, &FieldErrors::from_error(&error)).await {
                Ok(markup) => html_response(error.status(), markup),
                Err(error) => error_page(Some(&ui), &error),
            }
        }
        Err(error) => error_page(Some(&ui), &error),
    }
}
