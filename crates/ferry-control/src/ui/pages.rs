//! The page shell every UI page shares (navigation, sign-out, assets), the error and 404
//! pages, and small renderers (status badges, times, byte counts).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_api::{FieldError, Problem};
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use super::session::Ui;
use crate::error::ApiError;

pub const HTMX: &str = "/assets/htmx-2.0.11.min.js";

/// The workspace a page belongs to, for the navigation.
#[derive(Debug, Clone)]
pub struct Place {
    pub workspace_id: Uuid,
    pub workspace_name: String,
}

pub fn page(ui: Option<&Ui>, place: Option<&Place>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ferry" }
                link rel="icon" type="image/svg+xml" href="/favicon.svg";
                link rel="stylesheet" href="/assets/ferry.css";
                script src=(HTMX) defer {}
                script src="/assets/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" aria-label="Ferry home" {
                        img src="/favicon.svg" alt="" width="24" height="24";
                        span { "Ferry" }
                    }
                    @if let Some(ui) = ui {
                        nav aria-label="Main" {
                            ul {
                                @if let Some(place) = place {
                                    li.workspace { span.muted { "Workspace " } strong { (place.workspace_name) } }
                                    li { a href={ "/workspaces/" (place.workspace_id) "/connections" } { "Connections" } }
                                    li { a href={ "/workspaces/" (place.workspace_id) "/sources" } { "Sources" } }
                                    li { a href={ "/workspaces/" (place.workspace_id) "/destinations" } { "Destinations" } }
                                    li { a href={ "/workspaces/" (place.workspace_id) "/settings" } { "Workspace settings" } }
                                }
                                li { a href="/organization" { "Organization settings" } }
                                @if ui.caller.is_instance_admin() {
                                    li { a href="/organization/regions" { "Regions" } }
                                    li { a href="/users" { "Users" } }
                                }
                            }
                        }
                        form.signout method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(ui.csrf);
                            span.muted { (ui.caller.user.email) }
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// What every page is sent with: never cached (pages hold what only this user may see, and
/// once a data plane's secret), never framed by another site, scripts only from here.
const PAGE_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
];

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, PAGE_HEADERS, Html(markup.into_string())).into_response()
}

/// An error as a page, in words: the problem's detail and any fields it names.
pub fn error_page(ui: Option<&Ui>, error: &ApiError) -> Response {
    if matches!(error, ApiError::Unauthorized(_)) {
        return Redirect::to("/sign-in").into_response();
    }
    let problem = error.problem();
    let status = error.status();
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Cannot do that now",
        status if status.is_server_error() => "Something went wrong",
        _ => "Please check what you entered",
    };
    html_response(
        status,
        page(
            ui,
            None,
            title,
            html! {
                (problem_box(&problem))
                p { a href="/" { "Go to the start page" } }
            },
        ),
    )
}

/// The problem's detail and the fields it names, for the top of a form.
pub fn problem_box(problem: &Problem) -> Markup {
    html! {
        div.alert.error role="alert" {
            p { (problem.detail) }
            @if !problem.errors.is_empty() {
                ul { @for error in &problem.errors { li { code { (error.field) } ": " (error.message) } } }
            }
        }
    }
}

/// The errors of a submitted form, by field (`name`, `configuration.host`).
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub detail: Option<String>,
    pub fields: Vec<FieldError>,
}

impl FieldErrors {
    pub fn from_error(error: &ApiError) -> Self {
        let problem = error.problem();
        Self {
            detail: Some(problem.detail),
            fields: problem.errors,
        }
    }

    pub fn of(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|error| error.field == field)
            .map(|error| error.message.as_str())
    }

    /// The form's summary at its top (when any error is there).
    pub fn summary(&self) -> Markup {
        html! {
            @if let Some(detail) = &self.detail {
                div.alert.error role="alert" { p { (detail) } }
            }
        }
    }

    /// The error next to a field, referenced by the field's `aria-describedby`.
    pub fn next_to(&self, field: &str) -> Markup {
        html! {
            @if let Some(message) = self.of(field) {
                p.field-error id={ "error-" (field) } { (message) }
            }
        }
    }
}

pub fn not_found_page(ui: Option<&Ui>) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        page(
            ui,
            None,
            "Page not found",
            html! {
                p { "There is no page at this address. It may have been deleted, or the link is mistyped." }
                p { a href="/" { "Go to the start page" } }
            },
        ),
    )
}

/// A status as a badge whose words say it (colour only repeats them).
pub fn badge(status: &str) -> Markup {
    let tone = match status {
        "succeeded" | "healthy" | "active" | "enabled" => "ok",
        "failed" | "unhealthy" | "cancelled" | "disabled" => "bad",
        "running" | "pending" | "incomplete" | "degraded" => "busy",
        _ => "neutral",
    };
    html! { span class={ "badge " (tone) } { (status) } }
}

/// `2026-12-02T05:10:00Z` → `2026-12-02 05:10:00 UTC`.
pub fn when(rfc3339: &str) -> String {
    rfc3339.replacen('T', " ", 1).replace('Z', " UTC")
}

pub fn bytes(count: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `PT1H2M3S` → `1h 2m 3s`.
pub fn duration(iso: &str) -> String {
    let text = iso.trim_start_matches("PT");
    let mut out = String::new();
    let mut number = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            number.push(character);
        } else {
            out.push_str(&number);
            out.push(character.to_ascii_lowercase());
            out.push(' ');
            number.clear();
        }
    }
    out.trim_end().to_owned()
}

/// A form's hidden CSRF field.
pub fn csrf(ui: &Ui) -> Markup {
    html! { input type="hidden" name="csrf" value=(ui.csrf); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_words() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(duration("PT1H2M3S"), "1h 2m 3s");
        assert_eq!(duration("PT0S"), "0s");
        assert_eq!(when("2026-12-02T05:10:00Z"), "2026-12-02 05:10:00 UTC");
    }
}
