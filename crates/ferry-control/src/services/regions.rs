//! Regions and their data planes: instance admins' business, for the public API and the
//! web UI alike.

use ferry_api::{
    DataplaneCreateRequest, DataplaneCreateResponse, DataplanePatchRequest, DataplaneResponse,
    RegionCreateRequest, RegionPatchRequest, RegionResponse,
};
use ferry_store::{
    Dataplane, DataplaneChanges, NewDataplane, NewRegion, Region, RegionChanges, StoreError,
    now_millis,
};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, hash_secret, new_credentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::valid_name;
use crate::services::dataplane_health;
use crate::time_format::rfc3339;

const REGIONS: &str = "regions";
const DATAPLANES: &str = "data planes";

pub fn region_response(region: Region) -> RegionResponse {
    RegionResponse {
        region_id: region.id,
        name: region.name,
        organization_id: region.organization_id,
        enabled: region.enabled,
        created_at: rfc3339(region.created_at),
        updated_at: rfc3339(region.updated_at),
    }
}

pub fn dataplane_response(state: &AppState, dataplane: Dataplane) -> DataplaneResponse {
    DataplaneResponse {
        status: dataplane_health::status(&state.config, &dataplane),
        dataplane_id: dataplane.id,
        name: dataplane.name,
        region_id: dataplane.region_id,
        enabled: dataplane.enabled,
        created_at: rfc3339(dataplane.created_at),
        updated_at: rfc3339(dataplane.updated_at),
        last_heartbeat_at: dataplane.last_heartbeat_at.map(rfc3339),
        version: dataplane.version,
    }
}

pub async fn list_regions(
    state: &AppState,
    caller: &Caller,
    organization_id: Uuid,
) -> ApiResult<Vec<RegionResponse>> {
    caller.require_instance_admin(REGIONS)?;
    state.store.organization(organization_id).await?;
    Ok(state
        .store
        .regions(organization_id)
        .await?
        .into_iter()
        .map(region_response)
        .collect())
}

pub async fn create_region(
    state: &AppState,
    caller: &Caller,
    request: RegionCreateRequest,
) -> ApiResult<RegionResponse> {
    caller.require_instance_admin(REGIONS)?;
    let name = valid_name("name", &request.name)?;
    state
        .store
        .organization(request.organization_id)
        .await
        .map_err(|_| {
            ApiError::field(
                "organizationId",
                format!("organization {} does not exist", request.organization_id),
            )
        })?;
    let region = state
        .store
        .create_region(&NewRegion {
            id: Uuid::new_v4(),
            organization_id: request.organization_id,
            name,
            enabled: request.enabled.unwrap_or(true),
        })
        .await?;
    Ok(region_response(region))
}

pub async fn read_region(
    state: &AppState,
    caller: &Caller,
    region_id: Uuid,
) -> ApiResult<RegionResponse> {
    caller.require_instance_admin(REGIONS)?;
    Ok(region_response(state.store.live_region(region_id).await?))
}

pub async fn update_region(
    state: &AppState,
    caller: &Caller,
    region_id: Uuid,
    request: RegionPatchRequest,
) -> ApiResult<RegionResponse> {
    caller.require_instance_admin(REGIONS)?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let region = state
        .store
        .update_region(
            region_id,
            &RegionChanges {
                name,
                enabled: request.enabled,
            },
        )
        .await?;
    Ok(region_response(region))
}

/// Deletes the region; 409 (with the reason in words) while workspaces or data planes use it.
pub async fn delete_region(
    state: &AppState,
    caller: &Caller,
    region_id: Uuid,
) -> ApiResult<RegionResponse> {
    caller.require_instance_admin(REGIONS)?;
    Ok(region_response(state.store.delete_region(region_id).await?))
}

pub async fn list_dataplanes(
    state: &AppState,
    caller: &Caller,
    region_ids: &[Uuid],
) -> ApiResult<Vec<DataplaneResponse>> {
    caller.require_instance_admin(DATAPLANES)?;
    for region_id in region_ids {
        state.store.live_region(*region_id).await?;
    }
    Ok(state
        .store
        .dataplanes(region_ids)
        .await?
        .into_iter()
        .map(|dataplane| dataplane_response(state, dataplane))
        .collect())
}

/// A new data plane; its secret is in the answer only.
pub async fn create_dataplane(
    state: &AppState,
    caller: &Caller,
    request: DataplaneCreateRequest,
) -> ApiResult<DataplaneCreateResponse> {
    caller.require_instance_admin(DATAPLANES)?;
    let name = valid_name("name", &request.name)?;
    let credentials = new_credentials()?;
    let dataplane = state
        .store
        .create_dataplane(&NewDataplane {
            id: Uuid::new_v4(),
            region_id: request.region_id,
            name,
            enabled: request.enabled.unwrap_or(true),
            client_id: credentials.client_id.clone(),
            secret_hash: hash_secret(credentials.client_secret.clone()).await?,
        })
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => {
                ApiError::NotFound(format!("regionId: region {} not found", request.region_id))
            }
            other => other.into(),
        })?;
    Ok(DataplaneCreateResponse {
        dataplane_id: dataplane.id,
        region_id: dataplane.region_id,
        client_id: credentials.client_id,
        client_secret: credentials.client_secret,
    })
}

pub async fn read_dataplane(
    state: &AppState,
    caller: &Caller,
    dataplane_id: Uuid,
) -> ApiResult<DataplaneResponse> {
    caller.require_instance_admin(DATAPLANES)?;
    Ok(dataplane_response(
        state,
        state.store.live_dataplane(dataplane_id).await?,
    ))
}

pub async fn update_dataplane(
    state: &AppState,
    caller: &Caller,
    dataplane_id: Uuid,
    request: DataplanePatchRequest,
) -> ApiResult<DataplaneResponse> {
    caller.require_instance_admin(DATAPLANES)?;
    let name = request
        .name
        .as_deref()
        .map(|name| valid_name("name", name))
        .transpose()?;
    let dataplane = state
        .store
        .update_dataplane(
            dataplane_id,
            &DataplaneChanges {
                name,
                enabled: request.enabled,
            },
        )
        .await?;
    Ok(dataplane_response(state, dataplane))
}

pub async fn delete_dataplane(
    state: &AppState,
    caller: &Caller,
    dataplane_id: Uuid,
) -> ApiResult<DataplaneResponse> {
    caller.require_instance_admin(DATAPLANES)?;
    Ok(dataplane_response(
        state,
        state.store.delete_dataplane(dataplane_id).await?,
    ))
}

/// A new secret; the old one and its tokens stop working (after the configured grace
/// period, zero by default).
pub async fn rotate_dataplane_secret(
    state: &AppState,
    caller: &Caller,
    dataplane_id: Uuid,
) -> ApiResult<DataplaneCreateResponse> {
    caller.require_instance_admin(DATAPLANES)?;
    let client_secret = new_credentials()?.client_secret;
    let grace_millis = i64::try_from(state.config.secret_rotation_grace.as_millis()).unwrap_or(0);
    let dataplane = state
        .store
        .rotate_dataplane_secret(
            dataplane_id,
            &hash_secret(client_secret.clone()).await?,
            now_millis() + grace_millis,
        )
        .await?;
    Ok(DataplaneCreateResponse {
        dataplane_id: dataplane.id,
        region_id: dataplane.region_id,
        client_id: dataplane.client_id,
        client_secret,
    })
}
