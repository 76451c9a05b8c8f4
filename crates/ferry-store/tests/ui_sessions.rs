//! Users' passwords and web-UI sessions, on both stores: a session holds until it expires
//! or is ended, a new password ends every session of its user (and no other's), and
//! passwords belong to users that exist.

#![allow(clippy::unwrap_used)]

use ferry_store::{Store, StoreError, UiSession, now_millis};
use ferry_testkit::TestDatabase;
use uuid::Uuid;

fn session(user_id: Uuid, token_hash: &str, expires_at: i64) -> UiSession {
    UiSession {
        token_hash: token_hash.to_owned(),
        user_id,
        csrf_token: format!("csrf-of-{token_hash}"),
        expires_at,
    }
}

async fn sessions(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let ada = store
        .create_user(Uuid::new_v4(), "Ada", "ada@example.com")
        .await
        .unwrap();
    let grace = store
        .create_user(Uuid::new_v4(), "Grace", "grace@example.com")
        .await
        .unwrap();
    assert_eq!(store.user_password_hash(ada.id).await.unwrap(), None);
    store
        .set_user_password(ada.id, "$argon2id$one")
        .await
        .unwrap();
    store
        .set_user_password(ada.id, "$argon2id$two")
        .await
        .unwrap();
    assert_eq!(
        store.user_password_hash(ada.id).await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    let missing = store
        .set_user_password(Uuid::new_v4(), "$argon2id$x")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );

    let later = now_millis() + 60_000;
    store
        .insert_ui_session(&session(ada.id, "a1", later))
        .await
        .unwrap();
    store
        .insert_ui_session(&session(ada.id, "a2", later))
        .await
        .unwrap();
    store
        .insert_ui_session(&session(grace.id, "g1", later))
        .await
        .unwrap();
    store
        .insert_ui_session(&session(grace.id, "old", now_millis() - 1))
        .await
        .unwrap();
    let live = store.live_ui_session("a1").await.unwrap().unwrap();
    assert_eq!(live, session(ada.id, "a1", later));
    assert_eq!(store.live_ui_session("old").await.unwrap(), None);
    assert_eq!(store.live_ui_session("unknown").await.unwrap(), None);
    assert_eq!(store.purge_expired_ui_sessions().await.unwrap(), 1);

    store.delete_ui_session("a2").await.unwrap();
    store.delete_ui_session("a2").await.unwrap();
    assert_eq!(store.live_ui_session("a2").await.unwrap(), None);

    // A new password signs its user out everywhere, and nobody else.
    store
        .set_user_password(ada.id, "$argon2id$three")
        .await
        .unwrap();
    assert_eq!(store.live_ui_session("a1").await.unwrap(), None);
    assert!(store.live_ui_session("g1").await.unwrap().is_some());

    assert!(
        store
            .running_attempts_per_dataplane()
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_sessions() {
    let directory = tempfile::tempdir().unwrap();
    sessions(&format!(
        "sqlite://{}",
        directory.path().join("ferry.db").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_sessions() {
    let database = TestDatabase::create().await;
    sessions(&database.url()).await;
}
