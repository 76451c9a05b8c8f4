//! Sign-in with email and password (`services::passwords`), and sign-out.

use axum::extract::{Query, State};
use axum::http::Extensions;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::form::Form;
use super::pages::{html_response, page};
use super::session::{self, SIGN_IN_COOKIE, Ui, cookie, same_token, set_cookie, with_cookie};
use crate::AppState;
use crate::auth::random_token;
use crate::error::ApiError;
use crate::services::passwords;

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of this site: never `//elsewhere` or `https://…` (an open redirect), nor
/// anything but visible ASCII (browsers drop tabs and newlines, making `/\t/elsewhere`
/// `//elsewhere`; and a `Location` header holds visible ASCII only).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.bytes().all(|byte| byte.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn sign_in_page(
    token: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    html_response(
        status,
        page(
            None,
            None,
            "Sign in",
            html! {
                div.card.sign-in {
                    @if let Some(error) = error { div.alert.error role="alert" { p { (error) } } }
                    form method="post" action="/sign-in" {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="next" value=(next);
                        label for="email" { "Email" }
                        input type="email" id="email" name="email" value=(email) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input type="password" id="password" name="password" autocomplete="current-password" required;
                        div.actions { button type="submit" { "Sign in" } }
                    }
                    p.hint { "The instance admin's first password is printed by the first start and kept in credentials.json." }
                }
            },
        ),
    )
}

pub async fn form(
    State(state): State<AppState>,
    extensions: Extensions,
    Query(next): Query<Next>,
) -> Response {
    let Ok(token) = random_token(24) else {
        return super::pages::error_page(None, &ApiError::Internal("no randomness".to_owned()));
    };
    let secure = session::secure(&state, &extensions);
    let next = local_path(next.next.as_deref());
    with_cookie(
        sign_in_page(&token, &next, "", None, StatusCode::OK),
        set_cookie(SIGN_IN_COOKIE, &token, 3600, secure),
    )
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Form,
) -> Response {
    let secure = session::secure(&state, &extensions);
    let next = local_path(form.get("next"));
    let email = form.get("email").unwrap_or_default().trim().to_owned();
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    let token = random_token(24).unwrap_or_default();
    let again = |message: &str, status: StatusCode| {
        with_cookie(
            sign_in_page(&token, &next, &email, Some(message), status),
            set_cookie(SIGN_IN_COOKIE, &token, 3600, secure),
        )
    };
    if expected.is_empty() || !same_token(form.get("csrf").unwrap_or_default(), &expected) {
        return again(
            "The sign-in form was out of date; please sign in again.",
            StatusCode::FORBIDDEN,
        );
    }
    let password = form.get("password").unwrap_or_default();
    match passwords::sign_in(&state, &email, password).await {
        Ok(Some(user)) => match session::start(&state, user.id, secure).await {
            Ok(cookie) => {
                let response = with_cookie(Redirect::to(&next).into_response(), cookie);
                with_cookie(response, set_cookie(SIGN_IN_COOKIE, "", 0, secure))
            }
            Err(error) => super::pages::error_page(None, &error),
        },
        Ok(None) => again(
            "The email or the password is wrong.",
            StatusCode::UNAUTHORIZED,
        ),
        Err(error @ (ApiError::BadRequest { .. } | ApiError::RetryLater { .. })) => {
            again(&error.problem().detail, error.status())
        }
        Err(error) => super::pages::error_page(None, &error),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    ui: Ui,
    headers: HeaderMap,
    extensions: Extensions,
    form: Form,
) -> Response {
    if let Err(error) = ui.check_csrf(&form) {
        return super::pages::error_page(Some(&ui), &error);
    }
    let secure = session::secure(&state, &extensions);
    match session::end(&state, &headers, secure).await {
        Ok(cookie) => with_cookie(Redirect::to("/sign-in").into_response(), cookie),
        Err(error) => super::pages::error_page(Some(&ui), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            local_path(Some("/workspaces/x/settings")),
            "/workspaces/x/settings"
        );
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("/\t/evil.example")), "/");
        assert_eq!(local_path(Some("/caf\u{e9}")), "/");
        assert_eq!(local_path(Some("/a b")), "/");
        assert_eq!(local_path(None), "/");
    }
}
