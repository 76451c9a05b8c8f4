//! A submitted HTML form (`application/x-www-form-urlencoded`, bounded like every body) as
//! its pairs, in order: repeated names (checkbox lists) keep every value.

use axum::extract::{FromRequest, Request};
use axum::response::Response;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;

#[derive(Debug, Clone, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value, trimmed; `None` when missing or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                super::pages::error_page(
                    None,
                    &ApiError::PayloadTooLarge(format!(
                        "the form is larger than {MAX_BODY_BYTES} bytes"
                    )),
                )
            })?;
        Ok(Self {
            pairs: form_urlencoded::parse(&bytes)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        })
    }
}
