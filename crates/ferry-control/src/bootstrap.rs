//! First-start set-up, repeated harmlessly on every later start: the default organization,
//! its default region, data plane and workspace, and an instance admin with API credentials.

use ferry_api::{DEFAULT_ORGANIZATION_ID, NotificationsConfig, PermissionType};
use ferry_store::{
    NewApplication, NewDataplane, NewPermission, NewRegion, NewWorkspace, Store, StoreError,
};
use uuid::Uuid;

use crate::auth::{Credentials, hash_secret, new_credentials, verify_secret};
use crate::error::{ApiError, ApiResult};

/// The default region's name. Airbyte calls its default data-plane group `AUTO`, and a
/// workspace in it reports `dataResidency: "auto"`, as the guide's replies show.
pub const DEFAULT_REGION_NAME: &str = "AUTO";
pub const DEFAULT_DATAPLANE_NAME: &str = "default";
pub const DEFAULT_WORKSPACE_NAME: &str = "Default Workspace";
/// The instance admin's email (and sign-in name) unless `FERRY_ADMIN_EMAIL` names another.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@example.com";

const DEFAULT_DATAPLANE_SETTING: &str = "default_dataplane_id";
const DEFAULT_WORKSPACE_SETTING: &str = "default_workspace_id";
const ADMIN_USER_SETTING: &str = "admin_user_id";
const ADMIN_APPLICATION_SETTING: &str = "admin_application_id";

#[derive(Debug, Clone, Default)]
pub struct BootstrapOptions {
    /// Admin credentials to use instead of generated ones (`FERRY_ADMIN_CLIENT_ID` /
    /// `FERRY_ADMIN_CLIENT_SECRET`).
    pub admin_credentials: Option<(String, String)>,
    /// The instance admin's email, when first made (`FERRY_ADMIN_EMAIL`); default
    /// [`DEFAULT_ADMIN_EMAIL`].
    pub admin_email: Option<String>,
}

/// What the bootstrap created. Secrets appear only when they were made in this run: they
/// are not recoverable later.
pub struct BootstrapReport {
    pub organization_id: Uuid,
    pub default_region_id: Uuid,
    pub default_dataplane_id: Uuid,
    pub default_workspace_id: Uuid,
    pub admin_user_id: Uuid,
    pub new_admin_credentials: Option<Credentials>,
    pub new_dataplane_credentials: Option<Credentials>,
    /// The instance admin's email, which signs in to the web UI.
    pub admin_email: String,
    /// The admin's web-UI password, when this run made it (first start, or an instance from
    /// before passwords): printed once, only its hash is kept.
    pub new_admin_password: Option<String>,
}

fn setting_uuid(value: Option<String>) -> ApiResult<Option<Uuid>> {
    value
        .map(|text| {
            Uuid::parse_str(&text)
                .map_err(|_| ApiError::Internal(format!("stored setting is not a uuid: {text}")))
        })
        .transpose()
}

pub async fn bootstrap(store: &Store, options: &BootstrapOptions) -> ApiResult<BootstrapReport> {
    let admin_email = options
        .admin_email
        .as_deref()
        .map(str::trim)
        .filter(|email| !email.is_empty())
        .unwrap_or(DEFAULT_ADMIN_EMAIL)
        .to_owned();
    if !admin_email.contains('@') || admin_email.chars().any(char::is_whitespace) {
        return Err(ApiError::field(
            "FERRY_ADMIN_EMAIL",
            format!("'{admin_email}' is not an email address"),
        ));
    }
    let organization = store
        .ensure_organization(
            DEFAULT_ORGANIZATION_ID,
            "Default Organization",
            &admin_email,
        )
        .await?;
    let default_region_id = match organization.default_region_id {
        Some(id) => id,
        None => {
            let region = match store
                .region_by_name(organization.id, DEFAULT_REGION_NAME)
                .await?
            {
                Some(region) => region,
                None => {
                    store
                        .create_region(&NewRegion {
                            id: Uuid::new_v4(),
                            organization_id: organization.id,
                            name: DEFAULT_REGION_NAME.to_owned(),
                            enabled: true,
                        })
                        .await?
                }
            };
            store.set_default_region(organization.id, region.id).await?;
            region.id
        }
    };

    let mut new_dataplane_credentials = None;
    let default_dataplane_id = match setting_uuid(store.setting(DEFAULT_DATAPLANE_SETTING).await?)?
    {
        Some(id) => id,
        None => {
            let (id, credentials) = create_default_dataplane(store, default_region_id).await?;
            store
                .setting_or_insert(DEFAULT_DATAPLANE_SETTING, &id.to_string())
                .await?;
            new_dataplane_credentials = Some(credentials);
            id
        }
    };

    let default_workspace_id = match setting_uuid(store.setting(DEFAULT_WORKSPACE_SETTING).await?)?
    {
        Some(id) => id,
        None => {
            let notifications = NotificationsConfig::airbyte_default();
            let workspace = store
                .create_workspace(&NewWorkspace {
                    id: Uuid::new_v4(),
                    organization_id: organization.id,
                    name: DEFAULT_WORKSPACE_NAME.to_owned(),
                    region_id: default_region_id,
                    notifications,
                })
                .await?;
            store
                .setting_or_insert(DEFAULT_WORKSPACE_SETTING, &workspace.id.to_string())
                .await?;
            workspace.id
        }
    };

    let admin_user_id = match setting_uuid(store.setting(ADMIN_USER_SETTING).await?)? {
        Some(id) => id,
        None => {
            let user = match store.user_by_email(&admin_email).await? {
                Some(user) => user,
                None => {
                    store
                        .create_user(Uuid::new_v4(), "admin", &admin_email)
                        .await?
                }
            };
            store
                .create_permission(&NewPermission {
                    id: Uuid::new_v4(),
                    user_id: user.id,
                    permission_type: PermissionType::InstanceAdmin.as_str().to_owned(),
                    workspace_id: None,
                    organization_id: None,
                })
                .await?;
            store
                .setting_or_insert(ADMIN_USER_SETTING, &user.id.to_string())
                .await?;
            user.id
        }
    };

    let new_admin_credentials = ensure_admin_application(store, admin_user_id, options).await?;
    let new_admin_password =
        crate::services::passwords::ensure_password(store, admin_user_id).await?;
    let admin_email = store.user(admin_user_id).await?.email;

    Ok(BootstrapReport {
        organization_id: organization.id,
        default_region_id,
        default_dataplane_id,
        default_workspace_id,
        admin_user_id,
        new_admin_credentials,
        new_dataplane_credentials,
        admin_email,
        new_admin_password,
    })
}

async fn create_default_dataplane(
    store: &Store,
    region_id: Uuid,
) -> ApiResult<(Uuid, Credentials)> {
    let credentials = new_credentials()?;
    let dataplane = store
        .create_dataplane(&NewDataplane {
            id: Uuid::new_v4(),
            region_id,
            name: DEFAULT_DATAPLANE_NAME.to_owned(),
            enabled: true,
            client_id: credentials.client_id.clone(),
            secret_hash: hash_secret(credentials.client_secret.clone()).await?,
        })
        .await?;
    Ok((dataplane.id, credentials))
}

/// The id of the default data plane (`ferry up`'s own), once bootstrap made it.
pub async fn default_dataplane_id(store: &Store) -> ApiResult<Option<Uuid>> {
    setting_uuid(store.setting(DEFAULT_DATAPLANE_SETTING).await?)
}

/// A new default data plane in the default organization's default region, replacing one
/// that was deleted (`ferry up` keeps its own data plane running); its id and credentials.
pub async fn recreate_default_dataplane(store: &Store) -> ApiResult<(Uuid, Credentials)> {
    let organization = store.organization(DEFAULT_ORGANIZATION_ID).await?;
    let region_id = organization.default_region_id.ok_or_else(|| {
        ApiError::Internal("the default organization has no default region".to_owned())
    })?;
    let (id, credentials) = create_default_dataplane(store, region_id).await?;
    store
        .set_setting(DEFAULT_DATAPLANE_SETTING, &id.to_string())
        .await?;
    Ok((id, credentials))
}

async fn ensure_admin_application(
    store: &Store,
    admin_user_id: Uuid,
    options: &BootstrapOptions,
) -> ApiResult<Option<Credentials>> {
    if let Some((client_id, client_secret)) = &options.admin_credentials {
        // Credentials from the environment: make sure exactly these work.
        match store.application_by_client_id(client_id).await? {
            Some(application) if application.user_id != admin_user_id => {
                return Err(ApiError::Internal(format!(
                    "client id {client_id} belongs to another user"
                )));
            }
            Some(application) => {
                if !verify_secret(client_secret.clone(), application.secret_hash.clone()).await {
                    store.delete_application(application.id).await?;
                    create_admin_application(store, admin_user_id, client_id, client_secret)
                        .await?;
                }
            }
            None => {
                create_admin_application(store, admin_user_id, client_id, client_secret).await?;
            }
        }
        return Ok(None);
    }
    if let Some(id) = setting_uuid(store.setting(ADMIN_APPLICATION_SETTING).await?)? {
        match store.application(id).await {
            Ok(_) => return Ok(None),
            // Deleted through the API: a restart must not silently mint a new one.
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    let credentials = new_credentials()?;
    create_admin_application(
        store,
        admin_user_id,
        &credentials.client_id,
        &credentials.client_secret,
    )
    .await?;
    Ok(Some(credentials))
}

async fn create_admin_application(
    store: &Store,
    admin_user_id: Uuid,
    client_id: &str,
    client_secret: &str,
) -> ApiResult<()> {
    let application = store
        .create_application(&NewApplication {
            id: Uuid::new_v4(),
            user_id: admin_user_id,
            name: "ferry-admin".to_owned(),
            client_id: client_id.to_owned(),
            secret_hash: hash_secret(client_secret.to_owned()).await?,
        })
        .await?;
    store
        .setting_or_insert(ADMIN_APPLICATION_SETTING, &application.id.to_string())
        .await?;
    Ok(())
}
