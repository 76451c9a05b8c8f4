use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Airbyte's problem body (RFC 9457 field names), plus Ferry's `errors` naming the fields at
/// fault.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub const PROBLEM_TYPE_BASE: &str = "https://reference.airbyte.com/reference/errors";

impl Problem {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let title = match status {
            400 => "bad-request",
            401 => "invalid-api-key",
            403 => "forbidden",
            404 => "resource-not-found",
            405 => "method-not-allowed",
            409 => "conflict",
            413 => "payload-too-large",
            415 => "unsupported-media-type",
            422 => "unprocessable-entity",
            429 => "too-many-requests",
            503 => "service-unavailable",
            _ => "internal-server-error",
        };
        Self {
            problem_type: format!("{PROBLEM_TYPE_BASE}#{title}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }
}
