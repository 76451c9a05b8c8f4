//! Credentials and bearer tokens.
//!
//! Client secrets are stored as Argon2id hashes; access tokens are HS256 JWTs whose SHA-256
//! is stored, so a token is valid only while its row exists — deleting an application or data
//! plane, or rotating its secret, revokes its tokens at once. The signing key is stored
//! sealed with the secrets key. Secret checks are bounded (`guard`): a few Argon2 permits,
//! a back-off per client id after failures, a dummy hash for unknown ids.

mod guard;

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_api::{PermissionType, TokenRequest};
use ferry_store::{
    AccessToken, Dataplane, Permission, PrincipalKind, Store, StoreError, User, Visibility,
    Workspace, now_millis,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::secrets::SecretCipher;
use guard::LoginGuard;

const SIGNING_KEY_SETTING: &str = "token_signing_key";

/// A new client id and secret; the secret is shown once and only its hash is kept.
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

pub fn random_token(bytes: usize) -> ApiResult<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|error| ApiError::Internal(format!("no randomness available: {error}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

pub fn new_credentials() -> ApiResult<Credentials> {
    Ok(Credentials {
        client_id: Uuid::new_v4().to_string(),
        client_secret: random_token(32)?,
    })
}

/// The client id and secret of a token request (applications' and data planes'), or a 400 naming what is missing.
pub fn credentials_of(request: &TokenRequest) -> ApiResult<(String, String)> {
    if let Some(grant) = &request.grant_type
        && grant != "client_credentials"
    {
        return Err(ApiError::field(
            "grant_type",
            format!("must be client_credentials, got '{grant}'"),
        ));
    }
    let client_id = request
        .client_id
        .clone()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::field("client_id", "is required"))?;
    let client_secret = request
        .client_secret
        .clone()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::field("client_secret", "is required"))?;
    Ok((client_id, client_secret))
}

/// Argon2id, on a blocking thread: it is slow by design, and holds one of the few Argon2
/// permits while it runs.
pub async fn hash_secret(secret: String) -> ApiResult<String> {
    let permit = guard::argon2_permit().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes)
            .map_err(|error| ApiError::Internal(format!("no randomness available: {error}")))?;
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|error| ApiError::Internal(format!("salt: {error}")))?;
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| ApiError::Internal(format!("hashing: {error}")))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("hashing task: {error}")))?
}

/// Whether the secret matches the hash (waiting as long as it takes for an Argon2 permit:
/// for the instance's own checks; token requests go through [`TokenIssuer::check_secret`]).
pub async fn verify_secret(secret: String, hash: String) -> bool {
    match guard::argon2_permit().await {
        Ok(permit) => verify_any(permit, secret, vec![hash]).await,
        Err(_) => false,
    }
}

/// Whether the secret matches any of the hashes, on a blocking thread that keeps the permit
/// until the computation ends (even if the request is dropped meanwhile).
async fn verify_any(
    permit: tokio::sync::SemaphorePermit<'static>,
    secret: String,
    hashes: Vec<String>,
) -> bool {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // Every hash is checked, so the answer takes as long whichever matched.
        hashes.iter().fold(false, |matched, hash| {
            let this = PasswordHash::new(hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            });
            matched | this
        })
    })
    .await
    .unwrap_or(false)
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    /// `application` or `dataplane`.
    kind: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Issues and checks tokens with the instance's signing key, and checks client secrets.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    logins: Arc<LoginGuard>,
    /// Checked for unknown client ids, so that they take as long as a wrong secret.
    dummy_hash: Arc<str>,
}

/// The token signing key (base64), stored sealed with the secrets key and made on first
/// start; a key an earlier version stored in clear is sealed in place (compare-and-set, so
/// replicas starting together agree).
async fn signing_key(store: &Store, secrets: &SecretCipher) -> ApiResult<String> {
    let fresh = secrets.encrypt_text(&random_token(32)?)?;
    let stored = store.setting_or_insert(SIGNING_KEY_SETTING, &fresh).await?;
    if !SecretCipher::is_encrypted(&stored) {
        let sealed = secrets.encrypt_text(&stored)?;
        if store
            .replace_setting(SIGNING_KEY_SETTING, &stored, &sealed)
            .await?
        {
            tracing::info!("the token signing key is now stored encrypted");
        }
        return Ok(stored);
    }
    secrets.decrypt_text(&stored).map_err(|_| {
        ApiError::Internal(
            "the token signing key cannot be decrypted: is FERRY_SECRETS_KEY (or secrets.key) the key it was written with?"
                .to_owned(),
        )
    })
}

impl TokenIssuer {
    /// Loads the instance's signing key, creating it on first start.
    pub async fn load(store: &Store, secrets: &SecretCipher) -> ApiResult<Self> {
        let key = signing_key(store, secrets).await?;
        let key_bytes = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| StoreError::Corrupt {
                table: "instance_settings",
                column: "value",
                id: SIGNING_KEY_SETTING.to_owned(),
                reason: "the token signing key is not base64".to_owned(),
            })?;
        Ok(Self {
            encoding: EncodingKey::from_secret(&key_bytes),
            decoding: DecodingKey::from_secret(&key_bytes),
            logins: Arc::new(LoginGuard::default()),
            dummy_hash: hash_secret(random_token(32)?).await?.into(),
        })
    }

    /// Whether `secret` matches one of `hashes` (those of the client id's principal; none
    /// when the id is unknown), within the bounds of [`guard`]: 429 while the client id
    /// backs off after wrong secrets, 503 when no Argon2 permit frees up in time.
    pub async fn check_secret(
        &self,
        kind: PrincipalKind,
        client_id: &str,
        secret: String,
        mut hashes: Vec<String>,
    ) -> ApiResult<bool> {
        let key = format!("{}:{client_id}", kind.as_str());
        self.logins.admit(&key)?;
        let permit = guard::argon2_permit_within(guard::PERMIT_WAIT).await?;
        // Others may have failed while this one waited.
        self.logins.admit(&key)?;
        let known = !hashes.is_empty();
        if !known {
            hashes.push(self.dummy_hash.to_string());
        }
        let matched = verify_any(permit, secret, hashes).await && known;
        if matched {
            self.logins.succeeded(&key);
        } else {
            self.logins.failed(&key);
        }
        Ok(matched)
    }

    /// A new token for the principal, recorded (hashed) in the store.
    pub async fn issue(
        &self,
        store: &Store,
        kind: PrincipalKind,
        principal_id: Uuid,
        lifetime: Duration,
    ) -> ApiResult<String> {
        let now_seconds = now_millis() / 1000;
        let lifetime_seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            iss: "ferry".to_owned(),
            sub: principal_id.to_string(),
            kind: kind.as_str().to_owned(),
            iat: now_seconds,
            exp: now_seconds + lifetime_seconds,
            jti: Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| ApiError::Internal(format!("signing token: {error}")))?;
        store
            .insert_access_token(&AccessToken {
                token_hash: token_hash(&token),
                principal_kind: kind,
                principal_id,
                expires_at: now_millis() + lifetime_seconds * 1000,
            })
            .await?;
        Ok(token)
    }

    /// The principal a bearer token speaks for, or 401.
    async fn authenticate(&self, store: &Store, parts: &Parts) -> ApiResult<(PrincipalKind, Uuid)> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer token".to_owned())
        })?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header".to_owned()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("Authorization header must be 'Bearer <token>'".to_owned())
            })?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&["ferry"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::Unauthorized("token has expired".to_owned())
                }
                _ => ApiError::Unauthorized("invalid token".to_owned()),
            }
        })?;
        let record = store
            .live_access_token(&token_hash(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("token has expired or was revoked".to_owned()))?;
        Ok((record.principal_kind, record.principal_id))
    }
}

/// A user calling the public API through one of its applications.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub permissions: Vec<Permission>,
}

/// How much a permission allows, within its scope.
fn rank(permission_type: PermissionType) -> u8 {
    use PermissionType::*;
    match permission_type {
        InstanceAdmin => 5,
        OrganizationAdmin | WorkspaceOwner | WorkspaceAdmin => 4,
        OrganizationEditor | WorkspaceEditor => 3,
        OrganizationRunner | WorkspaceRunner => 2,
        OrganizationReader | WorkspaceReader => 1,
        OrganizationMember => 0,
    }
}

/// Ranks needed for the actions of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read = 1,
    Run = 2,
    Edit = 3,
    Admin = 4,
}

impl Caller {
    fn typed_permissions(&self) -> impl Iterator<Item = (PermissionType, &Permission)> {
        self.permissions.iter().filter_map(|permission| {
            PermissionType::parse(&permission.permission_type).map(|kind| (kind, permission))
        })
    }

    pub fn is_instance_admin(&self) -> bool {
        self.typed_permissions()
            .any(|(kind, _)| kind == PermissionType::InstanceAdmin)
    }

    pub fn require_instance_admin(&self, what: &str) -> ApiResult<()> {
        if self.is_instance_admin() {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{what} are managed by instance admins only"
        )))
    }

    fn organization_rank(&self, organization_id: Uuid) -> u8 {
        self.typed_permissions()
            .filter(|(kind, permission)| {
                *kind == PermissionType::InstanceAdmin
                    || permission.organization_id == Some(organization_id)
            })
            .map(|(kind, _)| rank(kind))
            .max()
            .unwrap_or(0)
    }

    pub fn has_organization_access(&self, organization_id: Uuid, access: Access) -> bool {
        self.organization_rank(organization_id) >= access as u8
    }

    pub fn require_organization_access(
        &self,
        organization_id: Uuid,
        access: Access,
    ) -> ApiResult<()> {
        if self.has_organization_access(organization_id, access) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this needs {access:?} access to organization {organization_id}"
        )))
    }

    fn workspace_rank(&self, workspace: &Workspace) -> u8 {
        let direct = self
            .typed_permissions()
            .filter(|(_, permission)| permission.workspace_id == Some(workspace.id))
            .map(|(kind, _)| rank(kind))
            .max()
            .unwrap_or(0);
        direct.max(self.organization_rank(workspace.organization_id))
    }

    /// Whether the caller may see the workspace at all (404 rather than 403 otherwise, so
    /// that ids of others' workspaces are not confirmed).
    pub fn can_see_workspace(&self, workspace: &Workspace) -> bool {
        self.workspace_rank(workspace) >= Access::Read as u8
    }

    pub fn require_workspace_access(&self, workspace: &Workspace, access: Access) -> ApiResult<()> {
        if !self.can_see_workspace(workspace) {
            return Err(ApiError::NotFound(format!(
                "workspace {} not found",
                workspace.id
            )));
        }
        if self.workspace_rank(workspace) >= access as u8 {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this needs {access:?} access to workspace {}",
            workspace.id
        )))
    }

    pub fn workspace_visibility(&self) -> Visibility {
        if self.is_instance_admin() {
            return Visibility::All;
        }
        let mut organization_ids = Vec::new();
        let mut workspace_ids = Vec::new();
        for (kind, permission) in self.typed_permissions() {
            if rank(kind) < Access::Read as u8 {
                continue;
            }
            if let Some(organization_id) = permission.organization_id {
                organization_ids.push(organization_id);
            }
            if let Some(workspace_id) = permission.workspace_id {
                workspace_ids.push(workspace_id);
            }
        }
        Visibility::Scoped {
            organization_ids,
            workspace_ids,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (kind, principal_id) = state.tokens.authenticate(&state.store, parts).await?;
        if kind != PrincipalKind::Application {
            return Err(ApiError::Forbidden(
                "data-plane credentials cannot call the public API".to_owned(),
            ));
        }
        let application = match state.store.application(principal_id).await {
            Ok(application) => application,
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::Unauthorized(
                    "the application was deleted".to_owned(),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let user = state.store.user(application.user_id).await?;
        let permissions = state.store.permissions(Some(user.id), None).await?;
        Ok(Self { user, permissions })
    }
}

/// A data plane calling the data-plane API with its own token.
#[derive(Debug, Clone)]
pub struct DataplaneCaller {
    pub dataplane: Dataplane,
}

impl FromRequestParts<AppState> for DataplaneCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (kind, principal_id) = state.tokens.authenticate(&state.store, parts).await?;
        if kind != PrincipalKind::Dataplane {
            return Err(ApiError::Forbidden(
                "only data-plane credentials may call the data-plane API".to_owned(),
            ));
        }
        match state.store.live_dataplane(principal_id).await {
            Ok(dataplane) => Ok(Self { dataplane }),
            Err(StoreError::NotFound { .. }) => Err(ApiError::Unauthorized(
                "the data plane was deleted".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_verify_only_against_their_own_hash() {
        let hash = hash_secret("correct horse".to_owned()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret("correct horse".to_owned(), hash.clone()).await);
        assert!(!verify_secret("wrong horse".to_owned(), hash).await);
        assert!(!verify_secret("x".to_owned(), "not a hash".to_owned()).await);
    }

    #[tokio::test]
    async fn unknown_client_ids_are_checked_against_a_dummy_hash_and_take_as_long() {
        let issuer = TokenIssuer {
            encoding: EncodingKey::from_secret(b"key"),
            decoding: DecodingKey::from_secret(b"key"),
            logins: Arc::new(LoginGuard::default()),
            dummy_hash: hash_secret("dummy".to_owned()).await.expect("hash").into(),
        };
        let hash = hash_secret("right".to_owned()).await.expect("hash");
        let check = |id: &'static str, secret: &'static str, hashes: Vec<String>| {
            let issuer = issuer.clone();
            async move {
                let started = std::time::Instant::now();
                let matched = issuer
                    .check_secret(PrincipalKind::Application, id, secret.to_owned(), hashes)
                    .await
                    .expect("checked");
                (matched, started.elapsed())
            }
        };
        let (matched, known) = check("known", "wrong", vec![hash.clone()]).await;
        assert!(!matched);
        // Not even the dummy's own secret passes for an unknown id.
        let (matched, unknown) = check("unknown", "dummy", Vec::new()).await;
        assert!(!matched);
        assert!(unknown * 3 > known, "unknown {unknown:?}, known {known:?}");
        assert!(check("known", "right", vec![hash]).await.0);
    }

    #[test]
    fn token_hashes_are_hex_sha256() {
        let hash = token_hash("abc");
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ranks_order_roles() {
        assert!(rank(PermissionType::WorkspaceEditor) > rank(PermissionType::WorkspaceReader));
        assert!(rank(PermissionType::InstanceAdmin) > rank(PermissionType::OrganizationAdmin));
        assert_eq!(rank(PermissionType::OrganizationMember), 0);
    }
}
