//! Connector tasks: claimed in their region only, oldest first, and never once their waiter
//! gave up (past `expires_at`).

use ferry_api::{ClaimKind, ConnectorRole, TaskKind, TaskStatus};
use ferry_store::{NewActor, NewRegion, NewWorkspace, Store, StoreError, now_millis};
use uuid::Uuid;

use super::ORG;

pub(super) async fn tasks(store: &Store) {
    let region = store
        .create_region(&NewRegion {
            id: Uuid::new_v4(),
            organization_id: ORG,
            name: "tasks-region".to_owned(),
            enabled: true,
        })
        .await
        .unwrap();
    let workspace = store
        .create_workspace(&NewWorkspace {
            id: Uuid::new_v4(),
            organization_id: ORG,
            name: "tasks".to_owned(),
            region_id: region.id,
            notifications: Default::default(),
        })
        .await
        .unwrap();
    let source = store
        .create_actor(&NewActor {
            id: Uuid::new_v4(),
            kind: ConnectorRole::Source,
            workspace_id: workspace.id,
            name: "s".to_owned(),
            connector_type: "postgres".to_owned(),
            definition_id: Uuid::new_v4(),
            configuration: "enc".to_owned(),
        })
        .await
        .unwrap();
    let plane = Uuid::new_v4();
    let queue = |expires_at| {
        store.create_task(
            region.id,
            TaskKind::Check,
            ConnectorRole::Source,
            source.id,
            expires_at,
        )
    };
    let has_tasks = || store.region_has_claimable_work(region.id, Some(ClaimKind::Tasks));

    // A task whose waiter gave up is not claimable, nor counted as work.
    let expired = queue(now_millis() - 1).await.unwrap();
    assert_eq!(expired.status, TaskStatus::Pending);
    assert!(!has_tasks().await.unwrap());
    assert!(
        !store
            .region_has_claimable_work(region.id, None)
            .await
            .unwrap()
    );
    assert!(store.claim_task(region.id, plane).await.unwrap().is_none());

    // One still awaited is, before the older expired one is ever looked at.
    let awaited = queue(now_millis() + 60_000).await.unwrap();
    assert!(has_tasks().await.unwrap());
    assert!(
        store
            .region_has_claimable_work(region.id, None)
            .await
            .unwrap()
    );
    // A claim for jobs only sees no work in a lane holding only tasks.
    let jobs_only = store
        .region_has_claimable_work(region.id, Some(ClaimKind::Jobs))
        .await
        .unwrap();
    assert!(!jobs_only);
    let claimed = store.claim_task(region.id, plane).await.unwrap().unwrap();
    assert_eq!(claimed.id, awaited.id);
    assert_eq!(claimed.status, TaskStatus::Running);
    assert_eq!(claimed.expires_at, awaited.expires_at);
    assert!(store.claim_task(region.id, plane).await.unwrap().is_none());

    // A task that expires while queued is not claimable afterwards.
    let soon = queue(now_millis() + 200).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(store.claim_task(region.id, plane).await.unwrap().is_none());
    assert_eq!(
        store.task(soon.id).await.unwrap().status,
        TaskStatus::Pending
    );
    // Nor can an answer be recorded for a task nobody claimed.
    let answered = store
        .complete_task(soon.id, plane, None, Some("late"))
        .await;
    assert!(
        matches!(answered, Err(StoreError::Fenced(_))),
        "{answered:?}"
    );
    assert_eq!(
        store.task(expired.id).await.unwrap().status,
        TaskStatus::Pending
    );
}
