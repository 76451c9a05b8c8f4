//! Users' web-UI passwords: set by an instance admin (API and UI alike), checked at
//! sign-in within the same bounds as client secrets (`auth::TokenIssuer::check_secret`: a
//! few Argon2 permits, a back-off per email after wrong passwords, a dummy hash for unknown
//! emails, so that which emails exist does not show).

use ferry_store::{PrincipalKind, Store, StoreError, User};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, hash_secret, random_token};
use crate::error::{ApiError, ApiResult};

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Whether the password may be set: long enough to resist guessing, bounded so that hashing
/// stays cheap, no control characters. Errors name `password`.
pub fn valid_password(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::field(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::field(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ApiError::field(
            "password",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Gives the user a generated password if it has none (the instance admin at first start,
/// or on an instance from before passwords); the password when one was made.
pub async fn ensure_password(store: &Store, user_id: Uuid) -> ApiResult<Option<String>> {
    if store.user_password_hash(user_id).await?.is_some() {
        return Ok(None);
    }
    let password = random_token(18)?;
    store
        .set_user_password(user_id, &hash_secret(password.clone()).await?)
        .await?;
    Ok(Some(password))
}

/// Sets the user's password (instance admins only); the user's sessions end.
pub async fn set_password(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    password: &str,
) -> ApiResult<User> {
    caller.require_instance_admin("users' passwords")?;
    valid_password(password)?;
    let user = state
        .store
        .user(user_id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => ApiError::NotFound(format!("user {user_id} not found")),
            other => other.into(),
        })?;
    let hash = hash_secret(password.to_owned()).await?;
    state.store.set_user_password(user.id, &hash).await?;
    Ok(user)
}

/// The user whose email and password these are; `None` when they do not match (whichever
/// of the two is wrong). 429 while the email backs off after wrong passwords.
pub async fn sign_in(state: &AppState, email: &str, password: &str) -> ApiResult<Option<User>> {
    let email = email.trim();
    if email.is_empty() {
        return Err(ApiError::field("email", "is required"));
    }
    if password.is_empty() {
        return Err(ApiError::field("password", "is required"));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Ok(None);
    }
    let user = state.store.user_by_email(email).await?;
    let hashes = match &user {
        Some(user) => state
            .store
            .user_password_hash(user.id)
            .await?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    let key = format!("password:{}", email.to_lowercase());
    let matched = state
        .tokens
        .check_secret(
            PrincipalKind::Application,
            &key,
            password.to_owned(),
            hashes,
        )
        .await?;
    Ok(if matched { user } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_bounded_and_errors_name_the_field() {
        for bad in ["short", "\u{7}bell-in-the-middle", &"x".repeat(300)] {
            match valid_password(bad) {
                Err(ApiError::BadRequest { errors, .. }) => assert_eq!(errors[0].field, "password"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(valid_password("correct horse battery").is_ok());
    }
}
