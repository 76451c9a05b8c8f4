//! Users (instance admins): each user of the organization, and a form giving one a web-UI
//! password (`services::passwords`, as `PUT /users/{userId}/password` does).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ferry_api::DEFAULT_ORGANIZATION_ID;
use maud::{Markup, html};

use super::form::Form;
use super::pages::{FieldErrors, csrf, error_page, html_response, page};
use super::session::Ui;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_uuid;
use crate::services::passwords;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(users))
        .route("/users/{userId}/password", post(set_password))
}

async fn users_page(
    state: &AppState,
    ui: &Ui,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> ApiResult<Markup> {
    ui.caller.require_instance_admin("users")?;
    let users = state
        .store
        .users_of_organization(DEFAULT_ORGANIZATION_ID, &[], &[])
        .await?;
    Ok(page(
        Some(ui),
        None,
        "Users",
        html! {
            p.muted { "Give a user a password to sign in here. Passwords have at least " (passwords::MIN_PASSWORD_CHARS) " characters; setting one signs the user out everywhere." }
            @if let Some(notice) = notice { div.alert.ok role="status" { p { (notice) } } }
            (errors.summary())
            div.table-wrap { table {
                thead { tr { th scope="col" { "User" } th scope="col" { "Email" } th scope="col" { "New password" } } }
                tbody { @for user in &users { tr {
                    td { (user.name) }
                    td { (user.email) }
                    td { form method="post" action={ "/users/" (user.id) "/password" } {
                        (csrf(ui))
                        label for={ "password-" (user.id) } { "New password for " (user.email) }
                        input type="password" id={ "password-" (user.id) } name="password" autocomplete="new-password" required;
                        div.actions { button type="submit" { "Set password" } }
                    } }
                } } }
            } }
        },
    ))
}

async fn users(State(state): State<AppState>, ui: Ui) -> Response {
    match users_page(&state, &ui, None, &FieldErrors::default()).await {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}

async fn set_password(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let outcome = async {
        ui.check_csrf(&form)?;
        let user_id = parse_uuid("userId", &id)?;
        passwords::set_password(
            &state,
            &ui.caller,
            user_id,
            form.get("password").unwrap_or_default(),
        )
        .await
    };
    let (notice, errors, status) = match outcome.await {
        Ok(user) => (
            Some(format!("{} has a new password.", user.email)),
            FieldErrors::default(),
            StatusCode::OK,
        ),
        Err(error @ ApiError::BadRequest { .. }) => {
            (None, FieldErrors::from_error(&error), error.status())
        }
        Err(error) => return error_page(Some(&ui), &error),
    };
    match users_page(&state, &ui, notice.as_deref(), &errors).await {
        Ok(markup) => html_response(status, markup),
        Err(error) => error_page(Some(&ui), &error),
    }
}
