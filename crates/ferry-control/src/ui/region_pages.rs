//! The Regions page (instance admins): each region with its data planes — status as the API
//! computes it, version, last heartbeat, a pulse of the last minutes, running attempts —
//! and the actions the API allows: create a region or a data plane (its credentials shown
//! once, with the `ferry dataplane` command and the Helm values), enable, disable, rotate
//! the secret, delete (a refusal's reason in words). The status part refreshes itself.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ferry_api::{
    DEFAULT_ORGANIZATION_ID, DataplaneCreateRequest, DataplaneCreateResponse, DataplaneHealth,
    DataplanePatchRequest, DataplaneResponse, RegionCreateRequest, RegionPatchRequest,
};
use maud::{Markup, html};
use uuid::Uuid;

use super::form::Form;
use super::pages::{FieldErrors, badge, csrf, error_page, html_response, page, when};
use super::session::{Ui, secure};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_uuid;
use crate::services::{heartbeat_pulse, regions};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/organization/regions",
            get(regions_page).post(create_region),
        )
        .route(
            "/organization/regions/{regionId}/dataplanes",
            get(planes_fragment).post(create_dataplane),
        )
        .route(
            "/organization/regions/{regionId}/{action}",
            post(region_action),
        )
        .route(
            "/organization/dataplanes/{dataplaneId}/{action}",
            post(dataplane_action),
        )
}

const PULSE_SLOTS: usize = 20;

pub fn health_word(health: DataplaneHealth) -> &'static str {
    match health {
        DataplaneHealth::Healthy => "healthy",
        DataplaneHealth::Degraded => "degraded",
        DataplaneHealth::Unhealthy => "unhealthy",
        DataplaneHealth::Unknown => "unknown",
    }
}

fn pulse(dataplane_id: Uuid) -> Markup {
    let beats = heartbeat_pulse::pulse(dataplane_id, PULSE_SLOTS);
    let count = beats.iter().filter(|beat| **beat).count();
    html! {
        div.pulse role="img" aria-label={ "heartbeats in " (count) " of the last " (PULSE_SLOTS) " half-minutes" } {
            @for beat in beats { span class=(if beat { "beat" } else { "" }) {} }
        }
    }
}

/// The data planes of a region with their live figures; refreshed every 3 s by htmx.
async fn planes_table(state: &AppState, ui: &Ui, region_id: Uuid) -> ApiResult<Markup> {
    let planes = regions::list_dataplanes(state, &ui.caller, &[region_id]).await?;
    let running = state.store.running_attempts_per_dataplane().await?;
    Ok(html! {
        div id={ "planes-" (region_id) } hx-get={ "/organization/regions/" (region_id) "/dataplanes" }
            hx-trigger="every 3s" hx-swap="outerHTML" {
            @if planes.is_empty() {
                p.muted { "No data plane in this region yet: its jobs wait until one runs." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Data plane" } th scope="col" { "Status" } th scope="col" { "Version" }
                            th scope="col" { "Last heartbeat" } th scope="col" { "Heartbeats, last 10 min" }
                            th scope="col" { "Running attempts" } th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for plane in &planes { (plane_row(ui, plane, running.get(&plane.dataplane_id).copied().unwrap_or(0))) }
                        }
                    }
                }
            }
        }
    })
}

fn plane_row(ui: &Ui, plane: &DataplaneResponse, running: i64) -> Markup {
    let base = format!("/organization/dataplanes/{}", plane.dataplane_id);
    html! {
        tr data-dataplane=(plane.name) {
            td { strong { (plane.name) } br; code.muted { (plane.dataplane_id) }
                @if !plane.enabled { br; (badge("disabled")) } }
            td.status { (badge(health_word(plane.status))) }
            td { (plane.version.as_deref().unwrap_or("—")) }
            td { (plane.last_heartbeat_at.as_deref().map(when).unwrap_or_else(|| "never".to_owned())) }
            td { (pulse(plane.dataplane_id)) }
            td { (running) }
            td { div.actions {
                form method="post" action={ (base) (if plane.enabled { "/disable" } else { "/enable" }) } {
                    (csrf(ui))
                    button.secondary type="submit" { (if plane.enabled { "Disable" } else { "Enable" }) }
                }
                form method="post" action={ (base) "/rotate" } data-confirm={ "Rotate the secret of " (plane.name) "? Its current secret stops working." } {
                    (csrf(ui)) button.secondary type="submit" { "Rotate secret" }
                }
                form method="post" action={ (base) "/delete" } data-confirm={ "Delete data plane " (plane.name) "?" } {
                    (csrf(ui)) button.danger type="submit" { "Delete" }
                }
            } }
        }
    }
}

async fn render_regions(state: &AppState, ui: &Ui, errors: &FieldErrors) -> ApiResult<Markup> {
    let list = regions::list_regions(state, &ui.caller, DEFAULT_ORGANIZATION_ID).await?;
    let mut sections = Vec::with_capacity(list.len());
    for region in &list {
        sections.push(planes_table(state, ui, region.region_id).await?);
    }
    Ok(page(
        Some(ui),
        None,
        "Regions",
        html! {
            p.muted { "Each workspace's syncs run on a data plane of its region. Status comes from the data planes' heartbeats." }
            (errors.summary())
            @for (region, planes) in list.iter().zip(sections) {
                section.card aria-labelledby={ "region-" (region.region_id) } data-region=(region.name) {
                    h2 id={ "region-" (region.region_id) } { (region.name) " " (badge(if region.enabled { "enabled" } else { "disabled" })) }
                    (planes)
                    h3 { "New data plane in " (region.name) }
                    form method="post" action={ "/organization/regions/" (region.region_id) "/dataplanes" } {
                        (csrf(ui))
                        label for={ "plane-name-" (region.region_id) } { "Data plane name" }
                        input type="text" id={ "plane-name-" (region.region_id) } name="name" required;
                        div.actions { button type="submit" { "Create data plane" } }
                    }
                    div.actions {
                        form method="post" action={ "/organization/regions/" (region.region_id) (if region.enabled { "/disable" } else { "/enable" }) } {
                            (csrf(ui))
                            button.secondary type="submit" { (if region.enabled { "Disable region" } else { "Enable region" }) }
                        }
                        form method="post" action={ "/organization/regions/" (region.region_id) "/delete" } data-confirm={ "Delete region " (region.name) "?" } {
                            (csrf(ui)) button.danger type="submit" { "Delete region" }
                        }
                    }
                }
            }
            h2 { "New region" }
            form.card method="post" action="/organization/regions" {
                (csrf(ui))
                label for="region-name" { "Region name" }
                input type="text" id="region-name" name="name" required aria-describedby=[errors.of("name").map(|_| "error-name")];
                (errors.next_to("name"))
                div.actions { button type="submit" { "Create region" } }
            }
        },
    ))
}

fn respond(ui: &Ui, rendered: ApiResult<Markup>, status: StatusCode) -> Response {
    match rendered {
        Ok(markup) => html_response(status, markup),
        Err(error) => error_page(Some(ui), &error),
    }
}

async fn regions_page(State(state): State<AppState>, ui: Ui) -> Response {
    let rendered = render_regions(&state, &ui, &FieldErrors::default()).await;
    respond(&ui, rendered, StatusCode::OK)
}

async fn planes_fragment(
    State(state): State<AppState>,
    ui: Ui,
    Path(region_id): Path<String>,
) -> Response {
    let rendered = async { planes_table(&state, &ui, parse_uuid("regionId", &region_id)?).await };
    respond(&ui, rendered.await, StatusCode::OK)
}

/// A refused action shown on the Regions page, its reason in words.
async fn refused(state: &AppState, ui: &Ui, error: ApiError) -> Response {
    if matches!(error, ApiError::Forbidden(_) | ApiError::NotFound(_)) {
        return error_page(Some(ui), &error);
    }
    let status = error.status();
    let rendered = render_regions(state, ui, &FieldErrors::from_error(&error)).await;
    respond(ui, rendered, status)
}

async fn create_region(State(state): State<AppState>, ui: Ui, form: Form) -> Response {
    let created = async {
        ui.check_csrf(&form)?;
        regions::create_region(
            &state,
            &ui.caller,
            RegionCreateRequest {
                name: form.get("name").unwrap_or_default().to_owned(),
                organization_id: DEFAULT_ORGANIZATION_ID,
                enabled: Some(true),
            },
        )
        .await
    };
    match created.await {
        Ok(_) => Redirect::to("/organization/regions").into_response(),
        Err(error) => refused(&state, &ui, error).await,
    }
}

async fn region_action(
    State(state): State<AppState>,
    ui: Ui,
    Path((region_id, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    let done = async {
        ui.check_csrf(&form)?;
        let region_id = parse_uuid("regionId", &region_id)?;
        let enable = |enabled| RegionPatchRequest {
            name: None,
            enabled: Some(enabled),
        };
        match action.as_str() {
            "enable" => regions::update_region(&state, &ui.caller, region_id, enable(true))
                .await
                .map(drop),
            "disable" => regions::update_region(&state, &ui.caller, region_id, enable(false))
                .await
                .map(drop),
            "delete" => regions::delete_region(&state, &ui.caller, region_id)
                .await
                .map(drop),
            _ => Err(ApiError::NotFound(format!("no region action '{action}'"))),
        }
    };
    match done.await {
        Ok(()) => Redirect::to("/organization/regions").into_response(),
        Err(error) => refused(&state, &ui, error).await,
    }
}

/// The URL data planes reach this control plane at: the configured public URL, else the
/// address this browser used.
fn control_plane_url(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost:8000");
    let scheme = if secure(state, extensions) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// The one time a data plane's secret is shown: the credentials, the command that starts
/// it, and the Helm values for Kubernetes.
fn credentials_page(ui: &Ui, title: &str, created: &DataplaneCreateResponse, url: &str) -> Markup {
    let command = format!(
        "DATA_PLANE_CLIENT_ID='{}' \\\nDATA_PLANE_CLIENT_SECRET='{}' \\\nferry dataplane --control-plane-url {url}",
        created.client_id, created.client_secret
    );
    let helm = format!(
        "kubectl create secret generic ferry-data-plane-credentials \\\n  --from-literal=DATA_PLANE_CLIENT_ID='{}' \\\n  --from-literal=DATA_PLANE_CLIENT_SECRET='{}'\n\n# values.yaml\nairbyteUrl: {url}\ndataPlane:\n  secretName: ferry-data-plane-credentials\n  clientIdSecretKey: DATA_PLANE_CLIENT_ID\n  clientSecretSecretKey: DATA_PLANE_CLIENT_SECRET",
        created.client_id, created.client_secret
    );
    page(
        Some(ui),
        None,
        title,
        html! {
            div.alert.ok role="status" { p { "Copy the secret now: it is shown only once, and only its hash is kept." } }
            dl.facts {
                dt { "Data plane id" } dd { code { (created.dataplane_id) } }
                dt { "Client id" } dd { code #client-id { (created.client_id) } }
                dt { "Client secret" } dd { code #client-secret { (created.client_secret) } }
            }
            h2 { "Start it" }
            pre.credentials #dataplane-command { (command) }
            div.actions { button.secondary type="button" data-copy="dataplane-command" hidden { "Copy command" } }
            h2 { "Or on Kubernetes, with the Helm chart" }
            pre.credentials #helm-values { (helm) }
            div.actions { button.secondary type="button" data-copy="helm-values" hidden { "Copy" } }
            p { a href="/organization/regions" { "Back to Regions" } }
        },
    )
}

async fn create_dataplane(
    State(state): State<AppState>,
    ui: Ui,
    headers: HeaderMap,
    extensions: Extensions,
    Path(region_id): Path<String>,
    form: Form,
) -> Response {
    let created = async {
        ui.check_csrf(&form)?;
        let region_id = parse_uuid("regionId", &region_id)?;
        regions::create_dataplane(
            &state,
            &ui.caller,
            DataplaneCreateRequest {
                region_id,
                name: form.get("name").unwrap_or_default().to_owned(),
                enabled: Some(true),
            },
        )
        .await
    };
    match created.await {
        Ok(created) => {
            let url = control_plane_url(&state, &headers, &extensions);
            html_response(
                StatusCode::OK,
                credentials_page(&ui, "Data plane created", &created, &url),
            )
        }
        Err(error) => refused(&state, &ui, error).await,
    }
}

async fn dataplane_action(
    State(state): State<AppState>,
    ui: Ui,
    headers: HeaderMap,
    extensions: Extensions,
    Path((dataplane_id, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    let done = async {
        ui.check_csrf(&form)?;
        let id = parse_uuid("dataplaneId", &dataplane_id)?;
        let enable = |enabled| DataplanePatchRequest {
            name: None,
            enabled: Some(enabled),
        };
        match action.as_str() {
            "enable" => regions::update_dataplane(&state, &ui.caller, id, enable(true))
                .await
                .map(|_| None),
            "disable" => regions::update_dataplane(&state, &ui.caller, id, enable(false))
                .await
                .map(|_| None),
            "delete" => regions::delete_dataplane(&state, &ui.caller, id)
                .await
                .map(|_| None),
            "rotate" => regions::rotate_dataplane_secret(&state, &ui.caller, id)
                .await
                .map(Some),
            _ => Err(ApiError::NotFound(format!(
                "no data-plane action '{action}'"
            ))),
        }
    };
    match done.await {
        Ok(None) => Redirect::to("/organization/regions").into_response(),
        Ok(Some(rotated)) => {
            let url = control_plane_url(&state, &headers, &extensions);
            html_response(
                StatusCode::OK,
                credentials_page(&ui, "New data-plane secret", &rotated, &url),
            )
        }
        Err(error) => refused(&state, &ui, error).await,
    }
}
