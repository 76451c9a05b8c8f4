//! Sources and destinations: lists, and the create and edit forms generated from the
//! connector's SPEC (`spec_form`), saved through `services::actors` as the API saves them;
//! **Test** runs the connector's check on a data plane of the workspace's region
//! (`services::connector_tasks`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ferry_api::{ActorPatchRequest, ConnectorRole};
use ferry_connectors::registry;
use ferry_store::{Actor, ScopedQuery};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::form::Form;
use super::pages::{FieldErrors, csrf, error_page, html_response, page, when};
use super::session::Ui;
use super::spec_form;
use super::workspace_pages::{place, workspace_id};
use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_uuid;
use crate::services::{access, actors, connector_tasks, definitions};
use crate::time_format::rfc3339;

/// `sources` / `destinations` in paths, and the words for them.
#[derive(Debug, Clone, Copy)]
struct Role(ConnectorRole);

impl Role {
    fn segment(self) -> &'static str {
        match self.0 {
            ConnectorRole::Source => "sources",
            ConnectorRole::Destination => "destinations",
        }
    }
    fn noun(self) -> &'static str {
        match self.0 {
            ConnectorRole::Source => "source",
            ConnectorRole::Destination => "destination",
        }
    }
    fn plural_title(self) -> &'static str {
        match self.0 {
            ConnectorRole::Source => "Sources",
            ConnectorRole::Destination => "Destinations",
        }
    }
}

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for role in [
        Role(ConnectorRole::Source),
        Role(ConnectorRole::Destination),
    ] {
        let segment = role.segment();
        router = router
            .route(
                &format!("/workspaces/{{workspaceId}}/{segment}"),
                get(move |state: State<AppState>, ui: Ui, path: Path<String>| {
                    list(role, state, ui, path)
                }),
            )
            .route(
                &format!("/workspaces/{{workspaceId}}/{segment}/new"),
                get(
                    move |state: State<AppState>,
                          ui: Ui,
                          path: Path<String>,
                          query: Query<TypeQuery>| {
                        new_form(role, state, ui, path, query)
                    },
                )
                .post(
                    move |state: State<AppState>, ui: Ui, path: Path<String>, form: Form| {
                        create(role, state, ui, path, form)
                    },
                ),
            )
            .route(
                &format!("/{segment}/{{actorId}}"),
                get(
                    move |state: State<AppState>,
                          ui: Ui,
                          path: Path<String>,
                          query: Query<Created>| {
                        edit_form(role, state, ui, path, query)
                    },
                )
                .post(
                    move |state: State<AppState>, ui: Ui, path: Path<String>, form: Form| {
                        save(role, state, ui, path, form)
                    },
                ),
            )
            .route(
                &format!("/{segment}/{{actorId}}/test"),
                post(
                    move |state: State<AppState>, ui: Ui, path: Path<String>, form: Form| {
                        test(role, state, ui, path, form)
                    },
                ),
            );
    }
    router
}

#[derive(Debug, Deserialize)]
pub struct TypeQuery {
    #[serde(rename = "type")]
    connector_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Created {
    created: Option<String>,
}

fn respond(ui: &Ui, rendered: ApiResult<Markup>) -> Response {
    match rendered {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(ui), &error),
    }
}

async fn list(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    let rendered = async {
        let id = workspace_id(&id)?;
        let place = place(&state, &ui, id).await?;
        let workspace = access::workspace(&state, &ui.caller, id, Access::Read).await?;
        let can_edit = ui
            .caller
            .require_workspace_access(&workspace, Access::Edit)
            .is_ok();
        let workspace_ids = access::visible_workspace_ids(&state, &ui.caller, &[id]).await?;
        let rows = state
            .store
            .actors(
                role.0,
                &ScopedQuery {
                    workspace_ids,
                    include_deleted: false,
                    limit: 1000,
                    offset: 0,
                },
            )
            .await?;
        Ok(page(
            Some(&ui),
            Some(&place),
            role.plural_title(),
            html! {
                @if can_edit {
                    div.actions { a.button href={ "/workspaces/" (id) "/" (role.segment()) "/new" } { "New " (role.noun()) } }
                }
                @if rows.is_empty() { p.muted { "No " (role.noun()) " yet." } } @else {
                    div.table-wrap { table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Connector" } th scope="col" { "Created" } } }
                        tbody { @for actor in &rows { tr {
                            td { a href={ "/" (role.segment()) "/" (actor.id) } { (actor.name) } }
                            td { (display_name(role, &actor.connector_type)) }
                            td { (when(&rfc3339(actor.created_at))) }
                        } } }
                    } }
                }
            },
        ))
    };
    respond(&ui, rendered.await)
}

fn display_name(role: Role, connector_type: &str) -> String {
    registry::native(role.0, connector_type).map_or_else(
        || connector_type.to_owned(),
        |native| native.display_name.to_owned(),
    )
}

/// The form of a connector: name, its SPEC's fields, the buttons.
/// Where the form posts, the name shown, and (for a new one) the connector type.
type FormTarget<'a> = (&'a str, &'a str, Option<&'a str>);

fn actor_form(
    ui: &Ui,
    role: Role,
    (action, name, connector_type): FormTarget<'_>,
    spec: &Value,
    existing: Option<&Value>,
    errors: &FieldErrors,
) -> Markup {
    html! {
        (errors.summary())
        form.card method="post" action=(action) novalidate {
            (csrf(ui))
            @if let Some(kind) = connector_type { input type="hidden" name="type" value=(kind); }
            label for="actor-name" { "Name" }
            input type="text" id="actor-name" name="name" value=(name) required aria-describedby=[errors.of("name").map(|_| "error-name")];
            (errors.next_to("name"))
            (spec_form::fields(spec, existing, errors))
            div.actions { button type="submit" { "Save " (role.noun()) } }
        }
    }
}

async fn new_form(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(query): Query<TypeQuery>,
) -> Response {
    let rendered = async {
        let id = workspace_id(&id)?;
        let place = place(&state, &ui, id).await?;
        let Some(connector_type) = query.connector_type else {
            let types = registry::type_names(role.0);
            return Ok(page(
                Some(&ui),
                Some(&place),
                &format!("New {}", role.noun()),
                html! {
                    p { "Choose a connector:" }
                    ul { @for kind in types { li {
                        a href={ "/workspaces/" (id) "/" (role.segment()) "/new?type=" (kind) } { (display_name(role, kind)) }
                    } } }
                },
            ));
        };
        let native = registry::native(role.0, &connector_type).ok_or_else(|| {
            ApiError::field(
                "type",
                format!("no {} connector '{connector_type}'", role.noun()),
            )
        })?;
        let action = format!("/workspaces/{id}/{}/new", role.segment());
        Ok(page(
            Some(&ui),
            Some(&place),
            &format!("New {} {}", native.display_name, role.noun()),
            actor_form(
                &ui,
                role,
                (&action, "", Some(&connector_type)),
                &(native.spec)(),
                None,
                &FieldErrors::default(),
            ),
        ))
    };
    respond(&ui, rendered.await)
}

async fn create(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    // The connector type comes back in a hidden field.
    let connector_type = form.text("type");
    let outcome = async {
        ui.check_csrf(&form)?;
        let workspace_id = workspace_id(&id)?;
        let kind = connector_type
            .clone()
            .ok_or_else(|| ApiError::field("type", "is required"))?;
        let native = registry::native(role.0, &kind).ok_or_else(|| {
            ApiError::field("type", format!("no {} connector '{kind}'", role.noun()))
        })?;
        let spec = (native.spec)();
        let mut configuration = spec_form::read(&spec, &form, None)?;
        if let Value::Object(fields) = &mut configuration {
            fields.insert(
                actors::type_field(role.0).to_owned(),
                Value::String(kind.clone()),
            );
        }
        let name = form.get("name").unwrap_or_default().to_owned();
        let actor = actors::create(
            &state,
            &ui.caller,
            role.0,
            (name, workspace_id, configuration, None),
        )
        .await?;
        Ok::<Uuid, ApiError>(actor.id)
    };
    match outcome.await {
        Ok(actor_id) => {
            Redirect::to(&format!("/{}/{actor_id}?created=1", role.segment())).into_response()
        }
        Err(error @ (ApiError::BadRequest { .. } | ApiError::Unprocessable { .. })) => {
            let rerendered = async {
                let workspace_id = workspace_id(&id)?;
                let place = place(&state, &ui, workspace_id).await?;
                let kind = connector_type.clone().unwrap_or_default();
                let native = registry::native(role.0, &kind).ok_or_else(|| {
                    ApiError::field("type", format!("no {} connector '{kind}'", role.noun()))
                })?;
                let spec = (native.spec)();
                let submitted = spec_form::read(&spec, &form, None).ok();
                let action = format!("/workspaces/{workspace_id}/{}/new", role.segment());
                Ok::<Markup, ApiError>(page(
                    Some(&ui),
                    Some(&place),
                    &format!("New {} {}", native.display_name, role.noun()),
                    actor_form(
                        &ui,
                        role,
                        (&action, form.get("name").unwrap_or_default(), Some(&kind)),
                        &spec,
                        submitted
                            .as_ref()
                            .map(|value| without_secrets(value, &spec))
                            .as_ref(),
                        &FieldErrors::from_error(&error),
                    ),
                ))
            };
            match rerendered.await {
                Ok(markup) => html_response(error.status(), markup),
                Err(other) => error_page(Some(&ui), &other),
            }
        }
        Err(error) => error_page(Some(&ui), &error),
    }
}

/// A submitted configuration shown again after an error: every secret dropped, so that the
/// page never carries one back to the browser.
fn without_secrets(configuration: &Value, spec: &Value) -> Value {
    fn drop_masks(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                fields.retain(|_, inner| inner.as_str() != Some(ferry_api::MASKED_SECRET));
                fields.values_mut().for_each(drop_masks);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_masks),
            _ => {}
        }
    }
    let mut shown = crate::secrets::mask(configuration, Some(spec));
    drop_masks(&mut shown);
    shown
}

/// The actor as its form shows it: SPEC (the connector's, or a custom definition's learnt
/// one) and the configuration with its secrets masked.
async fn shown(
    state: &AppState,
    ui: &Ui,
    role: Role,
    id: &str,
) -> ApiResult<(Actor, Value, Value)> {
    let id = parse_uuid("actorId", id)?;
    let actor = access::visible_actor(state, &ui.caller, role.0, id).await?;
    let spec = definitions::secret_spec(state, &actor)
        .await?
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    let configuration = actors::shown_configuration(state, &actor).await?;
    Ok((actor, spec, configuration))
}

enum Notice {
    None,
    Created,
    Saved,
    Checked(bool, String),
}

async fn edit_page(
    state: &AppState,
    ui: &Ui,
    role: Role,
    id: &str,
    errors: &FieldErrors,
    notice: Notice,
) -> ApiResult<Markup> {
    let (actor, spec, configuration) = shown(state, ui, role, id).await?;
    let place = place(state, ui, actor.workspace_id).await?;
    let workspace = access::workspace(state, &ui.caller, actor.workspace_id, Access::Read).await?;
    let can_edit = ui
        .caller
        .require_workspace_access(&workspace, Access::Edit)
        .is_ok();
    let base = format!("/{}/{}", role.segment(), actor.id);
    Ok(page(
        Some(ui),
        Some(&place),
        &actor.name,
        html! {
            p.muted { (display_name(role, &actor.connector_type)) " " (role.noun()) " · " code { (actor.id) } }
            @match &notice {
                Notice::Created => div.alert.ok role="status" { p { "Saved. Test it to check that a data plane of this workspace's region can reach it." } },
                Notice::Saved => div.alert.ok role="status" { p { "Changes saved." } },
                Notice::Checked(true, _) => div.alert.ok role="status" data-check="succeeded" { p { "Test succeeded: a data plane of this workspace's region reached it." } },
                Notice::Checked(false, message) => div.alert.error role="alert" data-check="failed" { p { "Test failed: " (message) } },
                Notice::None => {},
            }
            form method="post" action={ (base) "/test" } {
                (csrf(ui))
                div.actions { button.secondary type="submit" { "Test" } span.muted { "Runs the connector's check in the workspace's region (up to a minute)." } }
            }
            @if can_edit {
                (actor_form(ui, role, (&base, &actor.name, None), &spec, Some(&configuration), errors))
            } @else {
                p.muted { "Changing it needs the editor role in this workspace." }
            }
        },
    ))
}

async fn edit_form(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(created): Query<Created>,
) -> Response {
    let notice = if created.created.is_some() {
        Notice::Created
    } else {
        Notice::None
    };
    respond(
        &ui,
        edit_page(&state, &ui, role, &id, &FieldErrors::default(), notice).await,
    )
}

async fn save(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let outcome = async {
        ui.check_csrf(&form)?;
        let (actor, spec, configuration) = shown(&state, &ui, role, &id).await?;
        let mut configuration = spec_form::read(&spec, &form, Some(&configuration))?;
        if let Value::Object(fields) = &mut configuration {
            fields.insert(
                actors::type_field(role.0).to_owned(),
                Value::String(actor.connector_type.clone()),
            );
        }
        let request = ActorPatchRequest {
            name: form.get("name").map(str::to_owned),
            workspace_id: None,
            configuration: Some(configuration),
        };
        actors::update(&state, &ui.caller, role.0, actor.id, request).await?;
        Ok::<(), ApiError>(())
    };
    let (errors, notice, status) = match outcome.await {
        Ok(()) => (FieldErrors::default(), Notice::Saved, StatusCode::OK),
        Err(error @ (ApiError::BadRequest { .. } | ApiError::Unprocessable { .. })) => (
            FieldErrors::from_error(&error),
            Notice::None,
            error.status(),
        ),
        Err(error) => return error_page(Some(&ui), &error),
    };
    match edit_page(&state, &ui, role, &id, &errors, notice).await {
        Ok(markup) => html_response(status, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn test(
    role: Role,
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let outcome = async {
        ui.check_csrf(&form)?;
        let actor_id = parse_uuid("actorId", &id)?;
        let actor = access::visible_actor(&state, &ui.caller, role.0, actor_id).await?;
        let answer = connector_tasks::check(&state, &actor).await?;
        let succeeded = answer["status"] == "SUCCEEDED";
        let message = answer["message"]
            .as_str()
            .unwrap_or("no message")
            .to_owned();
        Ok::<Notice, ApiError>(Notice::Checked(succeeded, message))
    };
    let notice = match outcome.await {
        Ok(notice) => notice,
        // No data plane answered in time: said in words, on the same page.
        Err(error @ ApiError::Unavailable(_)) => Notice::Checked(false, error.to_string()),
        Err(error) => return error_page(Some(&ui), &error),
    };
    respond(
        &ui,
        edit_page(&state, &ui, role, &id, &FieldErrors::default(), notice).await,
    )
}
