use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneCreateRequest {
    pub region_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataplanePatchRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Liveness of a data plane as the control plane sees it (Ferry extension).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneHealth {
    Healthy,
    Degraded,
    Unhealthy,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneResponse {
    pub dataplane_id: Uuid,
    pub name: String,
    pub region_id: Uuid,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Ferry extension.
    pub status: DataplaneHealth,
    /// Ferry extension: RFC 3339 time of the last heartbeat, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<String>,
    /// Ferry extension: version the data plane reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The only reply that carries the data plane's secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneCreateResponse {
    pub dataplane_id: Uuid,
    pub region_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataplanesResponse {
    pub data: Vec<DataplaneResponse>,
}

/// Body of `POST /api/v1/dataplanes/initialize` and `/heartbeat` (Airbyte's internal API,
/// snake_case). Ferry reads the optional fields from its own data planes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DataplaneHeartbeatRequest {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Attempts this data plane is running; their leases are renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_attempts: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_slots: Option<u32>,
    /// How long the control plane may hold the heartbeat open (long poll) until one of
    /// `running_attempts` is cancelled; the reply then names it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Who the data plane is, as the control plane sees it (Airbyte's `DataplaneInitResponse`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataplaneIdentityResponse {
    pub dataplane_name: String,
    pub dataplane_id: Uuid,
    /// False when the data plane or its region is disabled: it must claim nothing.
    pub dataplane_enabled: bool,
    pub dataplane_group_name: String,
    pub dataplane_group_id: Uuid,
    pub organization_id: Uuid,
    /// Ferry extension, on heartbeats: what to do with the running attempts.
    #[serde(default)]
    pub directives: crate::AttemptDirectives,
}

/// Airbyte's data-plane `AccessToken`; `token_type` and `expires_in` are Ferry's additions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataplaneTokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}
