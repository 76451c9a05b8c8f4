use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /applications/token` and `POST /api/v1/dataplanes/token` (snake_case, JSON or form).
/// Every field is optional here so that a missing one is reported by name, not by serde.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Airbyte's spec spells it both `grant_type` and `grant-type`; if present it must be
    /// `client_credentials`.
    #[serde(alias = "grant-type")]
    pub grant_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCreateRequest {
    pub name: String,
    /// Ferry extension: an instance admin may create the application for another user.
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

/// `clientSecret` is the real secret only in the reply to the create; Ferry stores it hashed,
/// so later reads carry [`MASKED_SECRET`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRead {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    /// Epoch milliseconds, as Airbyte's example shows.
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplicationReadList {
    pub applications: Vec<ApplicationRead>,
}

/// What a secret looks like in any reply after the one that created it.
pub const MASKED_SECRET: &str = "**********";
