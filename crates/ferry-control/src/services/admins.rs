//! The instance keeps an admin who can sign in: deleting the last application of the last
//! instance admin, or the `instance_admin` permission of the last admin with an
//! application, is refused (409), since nobody could then manage regions, data planes or
//! users through the API again. (Checked before the deletion, not in its transaction: two
//! admins deleting each other's last access at the same instant could both pass.)

use std::collections::BTreeSet;

use ferry_api::PermissionType;
use ferry_store::{Application, Permission, Store};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// What a deletion would remove.
#[derive(Clone, Copy)]
enum Removed {
    Nothing,
    Application(Uuid),
    Permission(Uuid),
}

/// Whether some instance admin keeps an application once `removed` is gone.
async fn an_admin_can_sign_in(store: &Store, removed: Removed) -> ApiResult<bool> {
    let admins: BTreeSet<Uuid> = store
        .permissions(None, None)
        .await?
        .into_iter()
        .filter(|permission| {
            permission.permission_type == PermissionType::InstanceAdmin.as_str()
                && !matches!(removed, Removed::Permission(id) if id == permission.id)
        })
        .map(|permission| permission.user_id)
        .collect();
    for user_id in admins {
        let applications = store.applications_of_user(user_id).await?;
        if applications
            .iter()
            .any(|application| !matches!(removed, Removed::Application(id) if id == application.id))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// 409 when `removed` is the instance's last way in for an admin.
async fn refuse_the_last(store: &Store, removed: Removed, what: String) -> ApiResult<()> {
    if an_admin_can_sign_in(store, removed).await?
        || !an_admin_can_sign_in(store, Removed::Nothing).await?
    {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "{what}: without it no instance admin could sign in to manage the instance; give another user the instance_admin permission and an application first"
    )))
}

pub(crate) async fn check_application_removal(
    store: &Store,
    application: &Application,
) -> ApiResult<()> {
    refuse_the_last(
        store,
        Removed::Application(application.id),
        format!(
            "application {} is the last application of the last instance admin",
            application.id
        ),
    )
    .await
}

pub(crate) async fn check_permission_removal(
    store: &Store,
    permission: &Permission,
) -> ApiResult<()> {
    if permission.permission_type != PermissionType::InstanceAdmin.as_str() {
        return Ok(());
    }
    refuse_the_last(
        store,
        Removed::Permission(permission.id),
        format!(
            "permission {} is the instance_admin permission of the last instance admin with an application",
            permission.id
        ),
    )
    .await
}
