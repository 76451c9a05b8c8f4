//! The control plane's one error type, mapped once to Airbyte's problem responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_api::{FieldError, Problem};
use ferry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Nobody could answer in time (no data plane took a task).
    #[error("{0}")]
    Unavailable(String),
    /// Refused for now, to be retried after `Retry-After`: 429 (a client backing off) or 503
    /// (the server at capacity).
    #[error("{detail}")]
    RetryLater {
        status: StatusCode,
        detail: String,
        retry_after_seconds: u64,
    },
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::BadRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    /// A 422 naming the field at fault: well-formed, but not acceptable in this state.
    pub fn unprocessable_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::Unprocessable {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RetryLater { status, .. } => *status,
            Self::Store(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Store(StoreError::Conflict(_) | StoreError::InUse(_) | StoreError::Fenced(_)) => {
                StatusCode::CONFLICT
            }
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            // Internal details stay in the log; the client learns only that it was ours.
            Self::Store(
                StoreError::NotFound { .. }
                | StoreError::Conflict(_)
                | StoreError::InUse(_)
                | StoreError::Fenced(_),
            ) => self.to_string(),
            // Where, but not what: the row needs an operator's repair; the reason is logged.
            Self::Store(StoreError::Corrupt {
                table, column, id, ..
            }) => format!(
                "Stored data is corrupt ({table}.{column} of {id}) and cannot be read; it has been logged."
            ),
            Self::Store(_) | Self::Internal(_) => {
                "An internal error occurred; it has been logged.".to_owned()
            }
            _ => self.to_string(),
        };
        let mut problem = Problem::new(status.as_u16(), detail);
        if let Self::BadRequest { errors, .. } | Self::Unprocessable { errors, .. } = self {
            problem.errors = errors.clone();
        }
        problem
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::RetryLater {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        };
        if status.is_server_error() && retry_after.is_none() {
            tracing::error!(error = %self, "request failed");
        } else if status == StatusCode::FORBIDDEN {
            tracing::warn!(reason = %self, "request forbidden");
        }
        let mut response = (status, Json(self.problem())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_rows_are_internal_errors_that_name_the_row_not_its_content() {
        let error = ApiError::from(StoreError::Corrupt {
            table: "connections",
            column: "schedule",
            id: "c1".to_owned(),
            reason: "expected value at line 1 column 1".to_owned(),
        });
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let detail = error.problem().detail;
        assert!(detail.contains("connections.schedule of c1"), "{detail}");
        assert!(!detail.contains("expected value"), "{detail}");
    }
}
