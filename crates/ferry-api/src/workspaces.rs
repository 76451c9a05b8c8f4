use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceCreateRequest {
    pub name: String,
    #[serde(default)]
    pub organization_id: Option<Uuid>,
    #[serde(default)]
    pub notifications: Option<NotificationsConfig>,
    #[serde(default)]
    pub region_id: Option<Uuid>,
    /// The guide's field: a region name (case-insensitive), a region id, or `auto`.
    #[serde(default)]
    pub data_residency: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUpdateRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub notifications: Option<NotificationsConfig>,
    #[serde(default)]
    pub region_id: Option<Uuid>,
    #[serde(default)]
    pub data_residency: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResponse {
    pub workspace_id: Uuid,
    pub name: String,
    /// The region's name, lower-cased (as Airbyte's `WorkspaceResponseMapper`).
    pub data_residency: String,
    pub notifications: NotificationsConfig,
    /// Ferry extension.
    pub region_id: Uuid,
    /// Ferry extension.
    pub organization_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspacesResponse {
    pub data: Vec<WorkspaceResponse>,
    pub next: String,
    pub previous: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<NotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<NotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_update: Option<NotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_update_action_required: Option<NotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_disabled: Option<NotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_disabled_warning: Option<NotificationConfig>,
}

impl NotificationsConfig {
    /// What a workspace created without notifications shows, as in the guide's replies.
    pub fn airbyte_default() -> Self {
        Self {
            failure: Some(NotificationConfig::default()),
            success: Some(NotificationConfig::default()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailNotificationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookNotificationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmailNotificationConfig {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookNotificationConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
