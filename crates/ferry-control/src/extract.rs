//! Request extractors whose every rejection is a problem body naming what is wrong, in place
//! of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use ferry_api::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Past the limit, this much more is read and dropped so that the client, still sending,
/// receives the 413 instead of a reset connection.
const MAX_DRAIN_BYTES: usize = 16 * 1024 * 1024;

async fn body_bytes(request: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = request.into_body();
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(format!("request body could not be read: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_BODY_BYTES {
            collected.extend_from_slice(&data);
        } else if seen > MAX_BODY_BYTES + MAX_DRAIN_BYTES {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "request body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(Bytes::from(collected))
}

fn content_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Parses JSON, reporting the path of the offending field (`regionId`, `notifications.failure`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is required (a JSON object)",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::bad_request(format!("malformed JSON: {error}")))?;
    Ok(value)
}

fn json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON: {error}"))
        }
        Category::Data => {
            let message = strip_position(&error.to_string());
            // serde reports a missing field at its parent's path; name the field itself.
            if let Some(missing) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                let field = if path == "." {
                    missing.to_owned()
                } else {
                    format!("{path}.{missing}")
                };
                return ApiError::field(field, "is required");
            }
            if path == "." {
                return ApiError::bad_request(format!("request body: {message}"));
            }
            ApiError::field(path, message)
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// A JSON body of `T`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = content_type(&request)
            && kind != "application/json"
            && !kind.ends_with("+json")
        {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected Content-Type application/json, got {kind}"
            )));
        }
        let bytes = body_bytes(request).await?;
        parse_json(&bytes).map(Self)
    }
}

/// A body sent either as JSON or as `application/x-www-form-urlencoded` (token endpoints).
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_form =
            content_type(&request).as_deref() == Some("application/x-www-form-urlencoded");
        let bytes = body_bytes(request).await?;
        if is_form {
            serde_urlencoded::from_bytes(&bytes)
                .map(Self)
                .map_err(|error| ApiError::bad_request(format!("malformed form body: {error}")))
        } else {
            parse_json(&bytes).map(Self)
        }
    }
}

/// The query string as pairs, read with Airbyte's conventions: arrays as repeated keys or
/// comma lists, booleans as `true`/`false`, pages bounded.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        ))
    }
}

impl QueryParams {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            // `workspaceIds[]=…` is what some clients send for arrays.
            .filter(move |(key, _)| key == name || key.strip_suffix("[]") == Some(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.values(name).next().map(str::to_owned)
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.string(name)
            .map(|value| parse_uuid(name, &value))
            .transpose()
    }

    pub fn required_uuid(&self, name: &str) -> Result<Uuid, ApiError> {
        self.uuid(name)?
            .ok_or_else(|| ApiError::field(name, "query parameter is required"))
    }

    /// Every value of an array parameter, in either the exploded or the comma form.
    pub fn uuids(&self, name: &str) -> Result<Vec<Uuid>, ApiError> {
        self.strings(name)
            .iter()
            .map(|value| parse_uuid(name, value))
            .collect()
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values(name)
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.string(name).as_deref() {
            None => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(ApiError::field(
                name,
                format!("must be true or false, got '{value}'"),
            )),
        }
    }

    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(value) = self.string(name) else {
            return Ok(default);
        };
        let number: i64 = value
            .parse()
            .map_err(|_| ApiError::field(name, format!("must be an integer, got '{value}'")))?;
        if number < min || number > max {
            return Err(ApiError::field(
                name,
                format!("must be between {min} and {max}, got {number}"),
            ));
        }
        Ok(number)
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: self.int("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)?,
            offset: self.int("offset", 0, 0, i64::from(i32::MAX))?,
        })
    }

    /// The pairs other than the page bounds, kept for the `next`/`previous` links.
    pub fn filters(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(key, _)| key != "limit" && key != "offset")
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// A name a user gave: trimmed, not empty, not absurdly long.
pub fn valid_name(field: &str, name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if trimmed.chars().count() > 256 {
        return Err(ApiError::field(field, "must be at most 256 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn parse_uuid(field: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value.trim())
        .map_err(|_| ApiError::field(field, format!("must be a UUID, got '{value}'")))
}
