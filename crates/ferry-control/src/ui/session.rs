//! Signing in to the web UI: an HttpOnly, SameSite=Lax session cookie (Secure when served
//! over TLS, or behind a `https://` public URL) whose SHA-256 is stored, as access tokens
//! are; a CSRF token per session that every form sends back; sign-in itself guarded by a
//! double-submit token. The signed-in user becomes the same [`Caller`] the API builds from
//! a bearer token, so every role check is the API's own.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_store::{StoreError, UiSession, now_millis};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Caller, random_token};
use crate::error::{ApiError, ApiResult};
use crate::server::ServedOverTls;

pub const SESSION_COOKIE: &str = "ferry_session";
/// The double-submit token of the sign-in form (there is no session to tie it to yet).
pub const SIGN_IN_COOKIE: &str = "ferry_sign_in";
const SESSION_LIFETIME_MILLIS: i64 = 12 * 60 * 60 * 1000;

/// A signed-in browser: the caller the API would see, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Ui {
    pub caller: Caller,
    pub csrf: String,
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether cookies must be `Secure`: the request came over TLS, or clients reach this
/// server at an `https://` URL (a proxy terminating TLS).
pub fn secure(state: &AppState, parts_extensions: &axum::http::Extensions) -> bool {
    parts_extensions
        .get::<ServedOverTls>()
        .is_some_and(|tls| tls.0)
        || state
            .config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
}

pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A fresh session for the user: the cookie to set.
pub async fn start(state: &AppState, user_id: uuid::Uuid, secure: bool) -> ApiResult<HeaderValue> {
    let token = random_token(32)?;
    state
        .store
        .insert_ui_session(&UiSession {
            token_hash: sha256_hex(&token),
            user_id,
            csrf_token: random_token(32)?,
            expires_at: now_millis() + SESSION_LIFETIME_MILLIS,
        })
        .await?;
    Ok(set_cookie(
        SESSION_COOKIE,
        &token,
        SESSION_LIFETIME_MILLIS / 1000,
        secure,
    ))
}

/// Ends the session the request carries (if any): the cookie that clears it.
pub async fn end(state: &AppState, headers: &HeaderMap, secure: bool) -> ApiResult<HeaderValue> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        state.store.delete_ui_session(&sha256_hex(&token)).await?;
    }
    Ok(set_cookie(SESSION_COOKIE, "", 0, secure))
}

/// Where a browser without a session goes: the sign-in page, then back here.
pub fn to_sign_in(path_and_query: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/sign-in?next={next}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

impl FromRequestParts<AppState> for Ui {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        // A page's own refresh (htmx) whose session ended: the whole page goes to sign in,
        // not just the part being refreshed.
        let from_htmx = parts.headers.contains_key("hx-request");
        // Back to the page after signing in, not to the part of it being refreshed.
        let here = match parts
            .headers
            .get("hx-current-url")
            .and_then(|value| value.to_str().ok())
            .and_then(|url| url.split_once("://"))
            .and_then(|(_, rest)| rest.find('/').map(|slash| rest[slash..].to_owned()))
        {
            Some(page) if from_htmx => page,
            _ => here,
        };
        let to_sign_in = |here: &str| {
            let response = to_sign_in(here);
            if !from_htmx {
                return response;
            }
            let location = response.headers().get(LOCATION).cloned();
            let mut redirect = StatusCode::OK.into_response();
            if let Some(location) = location {
                redirect.headers_mut().insert("hx-redirect", location);
            }
            redirect
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_sign_in(&here));
        };
        let failed = |error: ApiError| super::pages::error_page(None, &error);
        let session = match state.store.live_ui_session(&sha256_hex(&token)).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_sign_in(&here)),
            Err(error) => return Err(failed(error.into())),
        };
        let user = match state.store.user(session.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => return Err(to_sign_in(&here)),
            Err(error) => return Err(failed(error.into())),
        };
        let permissions = state
            .store
            .permissions(Some(user.id), None)
            .await
            .map_err(|error| failed(error.into()))?;
        Ok(Self {
            caller: Caller { user, permissions },
            csrf: session.csrf_token,
        })
    }
}

impl Ui {
    /// Refuses a form whose CSRF token is not this session's (403).
    pub fn check_csrf(&self, form: &super::form::Form) -> ApiResult<()> {
        match form.get("csrf") {
            Some(given) if same_token(given, &self.csrf) => Ok(()),
            _ => Err(ApiError::Forbidden(
                "the form is out of date or came from another site; reload the page and try again"
                    .to_owned(),
            )),
        }
    }
}

pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_tokens_compare_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; ferry_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_only_over_tls() {
        let plain = set_cookie(SESSION_COOKIE, "t", 60, false);
        let plain = plain.to_str().unwrap_or_default();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(!plain.contains("Secure"));
        let tls = set_cookie(SESSION_COOKIE, "t", 60, true);
        assert!(tls.to_str().unwrap_or_default().ends_with("; Secure"));
    }
}
