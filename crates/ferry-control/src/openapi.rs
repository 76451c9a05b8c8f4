//! The OpenAPI document of what this server serves, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry public API", description = "Airbyte-compatible public API of Ferry's control plane."),
    servers((url = "/api/public/v1")),
    paths(
        routes::applications::token,
        routes::applications::list,
        routes::applications::create,
        routes::applications::read,
        routes::applications::remove,
        routes::organizations::list,
        routes::regions::list,
        routes::regions::create,
        routes::regions::read,
        routes::regions::update,
        routes::regions::remove,
        routes::dataplanes::list,
        routes::dataplanes::create,
        routes::dataplanes::read,
        routes::dataplanes::update,
        routes::dataplanes::remove,
        routes::dataplanes::rotate_secret,
        routes::workspaces::list,
        routes::workspaces::create,
        routes::workspaces::read,
        routes::workspaces::update,
        routes::workspaces::remove,
        routes::permissions::create,
        routes::permissions::list,
        routes::permissions::read,
        routes::permissions::update,
        routes::permissions::remove,
        routes::permissions::list_users,
        routes::permissions::create_user,
        routes::user_passwords::set_password,
        routes::actors::create_source,
        routes::actors::list_sources,
        routes::actors::read_source,
        routes::actors::create_destination,
        routes::actors::list_destinations,
        routes::actors::read_destination,
        routes::connections::create,
        routes::connections::list,
        routes::connections::read,
        routes::connections::update,
        routes::connections::remove,
        routes::jobs::create,
        routes::jobs::list,
        routes::jobs::read,
        routes::jobs::cancel,
    )
)]
pub struct PublicApi;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(PublicApi::openapi())
}
