//! One conformance suite, run against both stores: the embedded SQLite file and a real
//! PostgreSQL database. Anything the control plane relies on is asserted here.

#![allow(clippy::unwrap_used)]

#[path = "conformance/tasks.rs"]
mod tasks;

use ferry_store::{
    AccessToken, DataplaneChanges, NewApplication, NewDataplane, NewPermission, NewRegion,
    NewWorkspace, PrincipalKind, RegionChanges, Store, StoreError, Visibility, WorkspaceChanges,
    WorkspaceQuery, now_millis,
};
use ferry_testkit::TestDatabase;
use uuid::Uuid;

const ORG: Uuid = Uuid::nil();

async fn conformance(url: &str) {
    let store = Store::connect(url).await.unwrap();
    // Migrations are idempotent: a second start on the same database is a no-op.
    let again = Store::connect(url).await.unwrap();
    again.close().await;

    settings(&store).await;
    store
        .ensure_organization(ORG, "Default", "a@b.co")
        .await
        .unwrap();
    let again = store
        .ensure_organization(ORG, "Other name", "x@y.co")
        .await
        .unwrap();
    assert_eq!(
        again.name, "Default",
        "ensure_organization must not overwrite"
    );

    regions(&store).await;
    dataplanes(&store).await;
    workspaces(&store).await;
    identity(&store).await;
    jobs(&store, url).await;
    tasks::tasks(&store).await;
    store.close().await;
}

async fn settings(store: &Store) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert_eq!(
        store.setting_or_insert("k", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.setting_or_insert("k", "second").await.unwrap(),
        "first"
    );
    // Compare-and-set: only from the value expected.
    assert!(!store.replace_setting("k", "second", "third").await.unwrap());
    assert!(store.replace_setting("k", "first", "third").await.unwrap());
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("third"));
    store.set_setting("k", "fourth").await.unwrap();
    store.set_setting("new", "value").await.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("fourth"));
    assert_eq!(
        store.setting("new").await.unwrap().as_deref(),
        Some("value")
    );
}

fn new_region(name: &str) -> NewRegion {
    NewRegion {
        id: Uuid::new_v4(),
        organization_id: ORG,
        name: name.to_owned(),
        enabled: true,
    }
}

async fn regions(store: &Store) {
    let region = store.create_region(&new_region("eu-west")).await.unwrap();
    assert!(region.enabled && !region.tombstone);
    assert_eq!(region.created_at, region.updated_at);

    // Names are unique per organization, case-insensitively.
    let duplicate = store.create_region(&new_region("EU-West")).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    let found = store.region_by_name(ORG, "EU-WEST").await.unwrap().unwrap();
    assert_eq!(found.id, region.id);

    // Lists go in creation order (to the millisecond; ties by id): a distinct creation time
    // makes it observable.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let other = store.create_region(&new_region("us-east")).await.unwrap();
    let rename_clash = store
        .update_region(
            other.id,
            &RegionChanges {
                name: Some("eu-west".to_owned()),
                enabled: None,
            },
        )
        .await;
    assert!(matches!(rename_clash, Err(StoreError::Conflict(_))));
    let disabled = store
        .update_region(
            other.id,
            &RegionChanges {
                name: None,
                enabled: Some(false),
            },
        )
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.name, "us-east");

    let names: Vec<String> = store
        .regions(ORG)
        .await
        .unwrap()
        .into_iter()
        .map(|region| region.name)
        .collect();
    assert_eq!(names, ["eu-west", "us-east"]);

    // A deleted region frees its name and disappears from lists, but stays readable by id.
    store.delete_region(other.id).await.unwrap();
    assert!(store.region(other.id).await.unwrap().tombstone);
    assert!(matches!(
        store.live_region(other.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.regions(ORG).await.unwrap().len(), 1);
    store.create_region(&new_region("us-east")).await.unwrap();
    assert!(matches!(
        store.delete_region(other.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.region(Uuid::new_v4()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn dataplanes(store: &Store) {
    let region = store.create_region(&new_region("dp-region")).await.unwrap();
    let dataplane = store
        .create_dataplane(&NewDataplane {
            id: Uuid::new_v4(),
            region_id: region.id,
            name: "dp-1".to_owned(),
            enabled: true,
            client_id: "client-dp-1".to_owned(),
            secret_hash: "hash-1".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(dataplane.last_heartbeat_at, None);
    let missing_region = store
        .create_dataplane(&NewDataplane {
            id: Uuid::new_v4(),
            region_id: Uuid::new_v4(),
            name: "orphan".to_owned(),
            enabled: true,
            client_id: "client-orphan".to_owned(),
            secret_hash: "h".to_owned(),
        })
        .await;
    assert!(matches!(missing_region, Err(StoreError::NotFound { .. })));

    // A region with a data plane cannot be deleted, and the refusal names it.
    match store.delete_region(region.id).await {
        Err(StoreError::InUse(message)) => assert!(message.contains("dp-1"), "{message}"),
        other => panic!("expected InUse, got {other:?}"),
    }

    let by_client = store
        .dataplane_by_client_id("client-dp-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_client.id, dataplane.id);
    assert_eq!(store.dataplanes(&[region.id]).await.unwrap().len(), 1);
    assert!(
        store
            .dataplanes(&[Uuid::new_v4()])
            .await
            .unwrap()
            .is_empty()
    );

    let renamed = store
        .update_dataplane(
            dataplane.id,
            &DataplaneChanges {
                name: Some("dp-one".to_owned()),
                enabled: Some(false),
            },
        )
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.enabled), ("dp-one", false));

    store
        .record_dataplane_heartbeat(dataplane.id, Some("1.2.3"))
        .await
        .unwrap();
    store
        .record_dataplane_heartbeat(dataplane.id, None)
        .await
        .unwrap();
    let beaten = store.dataplane(dataplane.id).await.unwrap();
    assert!(beaten.last_heartbeat_at.is_some());
    assert_eq!(beaten.version.as_deref(), Some("1.2.3"));

    // Rotation keeps the old hash for the grace period and revokes tokens.
    let token = AccessToken {
        token_hash: "dp-token".to_owned(),
        principal_kind: PrincipalKind::Dataplane,
        principal_id: dataplane.id,
        expires_at: now_millis() + 60_000,
    };
    store.insert_access_token(&token).await.unwrap();
    assert_eq!(
        store.live_access_token("dp-token").await.unwrap(),
        Some(token)
    );
    let rotated = store
        .rotate_dataplane_secret(dataplane.id, "hash-2", 42)
        .await
        .unwrap();
    assert_eq!(rotated.secret_hash, "hash-2");
    assert_eq!(rotated.previous_secret_hash.as_deref(), Some("hash-1"));
    assert_eq!(rotated.previous_secret_valid_until, Some(42));
    assert_eq!(store.live_access_token("dp-token").await.unwrap(), None);

    // Deletion hides it from lookups by client id and lets the region go.
    store.delete_dataplane(dataplane.id).await.unwrap();
    assert!(
        store
            .dataplane_by_client_id("client-dp-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.dataplanes(&[region.id]).await.unwrap().is_empty());
    store.delete_region(region.id).await.unwrap();
}

async fn workspaces(store: &Store) {
    let region = store.create_region(&new_region("ws-region")).await.unwrap();
    let other_region = store
        .create_region(&new_region("ws-region-2"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for index in 0..5 {
        let workspace = store
            .create_workspace(&NewWorkspace {
                id: Uuid::new_v4(),
                organization_id: ORG,
                name: format!("ws-{index}"),
                region_id: region.id,
                notifications: Default::default(),
            })
            .await
            .unwrap();
        ids.push(workspace.id);
        // Distinct creation times make the page order observable.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let page = |limit, offset| WorkspaceQuery {
        ids: None,
        include_deleted: false,
        visibility: Visibility::All,
        limit,
        offset,
    };
    let first = store.workspaces(&page(2, 0)).await.unwrap();
    let second = store.workspaces(&page(2, 2)).await.unwrap();
    let third = store.workspaces(&page(2, 4)).await.unwrap();
    let seen: Vec<Uuid> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|workspace| workspace.id)
        .collect();
    assert_eq!(seen, ids);

    let updated = store
        .update_workspace(
            ids[0],
            &WorkspaceChanges {
                name: Some("renamed".to_owned()),
                region_id: Some(other_region.id),
                notifications: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.region_id, other_region.id);
    assert_eq!(updated.notifications, Default::default());

    match store.delete_region(region.id).await {
        Err(StoreError::InUse(message)) => assert!(message.contains("ws-1"), "{message}"),
        other => panic!("expected InUse, got {other:?}"),
    }

    store.delete_workspace(ids[1]).await.unwrap();
    assert!(matches!(
        store.delete_workspace(ids[1]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.live_workspace(ids[1]).await,
        Err(StoreError::NotFound { .. })
    ));
    let only = |visibility, include_deleted| WorkspaceQuery {
        ids: Some(vec![ids[1], ids[2]]),
        include_deleted,
        visibility,
        limit: 100,
        offset: 0,
    };
    assert_eq!(
        store
            .workspaces(&only(Visibility::All, false))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .workspaces(&only(Visibility::All, true))
            .await
            .unwrap()
            .len(),
        2
    );
    let scoped = Visibility::Scoped {
        organization_ids: Vec::new(),
        workspace_ids: vec![ids[2]],
    };
    let visible = store.workspaces(&only(scoped, true)).await.unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].id, ids[2]);
    let nothing = Visibility::Scoped {
        organization_ids: Vec::new(),
        workspace_ids: Vec::new(),
    };
    assert!(
        store
            .workspaces(&only(nothing, true))
            .await
            .unwrap()
            .is_empty()
    );
    let by_organization = Visibility::Scoped {
        organization_ids: vec![ORG],
        workspace_ids: Vec::new(),
    };
    assert_eq!(
        store
            .workspaces(&only(by_organization, true))
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn identity(store: &Store) {
    let user = store
        .create_user(Uuid::new_v4(), "Ada", "Ada@Example.com")
        .await
        .unwrap();
    let clash = store
        .create_user(Uuid::new_v4(), "Other", "ada@example.COM")
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))));
    assert_eq!(
        store
            .user_by_email("ADA@example.com")
            .await
            .unwrap()
            .map(|found| found.id),
        Some(user.id)
    );

    let workspace = store
        .create_workspace(&NewWorkspace {
            id: Uuid::new_v4(),
            organization_id: ORG,
            name: "perm-ws".to_owned(),
            region_id: store
                .region_by_name(ORG, "ws-region")
                .await
                .unwrap()
                .unwrap()
                .id,
            notifications: Default::default(),
        })
        .await
        .unwrap();
    let permission = store
        .create_permission(&NewPermission {
            id: Uuid::new_v4(),
            user_id: user.id,
            permission_type: "workspace_reader".to_owned(),
            workspace_id: Some(workspace.id),
            organization_id: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.permissions(Some(user.id), None).await.unwrap(),
        std::slice::from_ref(&permission)
    );
    assert_eq!(store.permissions(None, Some(ORG)).await.unwrap().len(), 1);
    assert_eq!(
        store.users_of_organization(ORG, &[], &[]).await.unwrap()[0].id,
        user.id
    );
    assert!(
        store
            .users_of_organization(ORG, &[], &["nobody@x.io".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    let updated = store
        .update_permission(permission.id, "workspace_editor")
        .await
        .unwrap();
    assert_eq!(updated.permission_type, "workspace_editor");

    let application = store
        .create_application(&NewApplication {
            id: Uuid::new_v4(),
            user_id: user.id,
            name: "app".to_owned(),
            client_id: "client-app".to_owned(),
            secret_hash: "secret-hash".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.application_by_client_id("client-app").await.unwrap(),
        Some(application.clone())
    );
    assert_eq!(store.applications_of_user(user.id).await.unwrap().len(), 1);

    let live = AccessToken {
        token_hash: "live".to_owned(),
        principal_kind: PrincipalKind::Application,
        principal_id: application.id,
        expires_at: now_millis() + 60_000,
    };
    let expired = AccessToken {
        token_hash: "expired".to_owned(),
        expires_at: now_millis() - 1,
        ..live.clone()
    };
    store.insert_access_token(&live).await.unwrap();
    store.insert_access_token(&expired).await.unwrap();
    assert_eq!(store.live_access_token("live").await.unwrap(), Some(live));
    assert_eq!(store.live_access_token("expired").await.unwrap(), None);
    assert_eq!(store.purge_expired_access_tokens().await.unwrap(), 1);

    // Deleting the application revokes its tokens.
    store.delete_application(application.id).await.unwrap();
    assert_eq!(store.live_access_token("live").await.unwrap(), None);

    // Deleting the workspace removes permissions on it.
    store.delete_workspace(workspace.id).await.unwrap();
    assert!(
        store
            .permissions(Some(user.id), None)
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_permission(permission.id).await.unwrap_err();
}

async fn jobs(store: &Store, url: &str) {
    use ferry_api::{
        AttemptStatus, ConnectionSchedule, ConnectorRole, FailureOrigin, FailureType, JobStatus,
        JobType, StreamStats,
    };
    use ferry_store::{AttemptOutcome, Failure, NewActor, NewConnection, NewJob, RetryPolicy};
    let region = store
        .create_region(&new_region("jobs-region"))
        .await
        .unwrap();
    let workspace = store
        .create_workspace(&NewWorkspace {
            id: Uuid::new_v4(),
            organization_id: ORG,
            name: "jobs".to_owned(),
            region_id: region.id,
            notifications: Default::default(),
        })
        .await
        .unwrap();
    let actor = |kind| NewActor {
        id: Uuid::new_v4(),
        kind,
        workspace_id: workspace.id,
        name: "a".to_owned(),
        connector_type: "faker".to_owned(),
        definition_id: Uuid::new_v4(),
        configuration: "enc".to_owned(),
    };
    let source = store
        .create_actor(&actor(ConnectorRole::Source))
        .await
        .unwrap();
    let destination = store
        .create_actor(&actor(ConnectorRole::Destination))
        .await
        .unwrap();
    let new_connection = || NewConnection {
        id: Uuid::new_v4(),
        workspace_id: workspace.id,
        source_id: source.id,
        destination_id: destination.id,
        name: "c".to_owned(),
        status: "active".to_owned(),
        schedule: ConnectionSchedule {
            schedule_type: "cron".to_owned(),
            cron_expression: Some("0 0 * * * ?".to_owned()),
            basic_timing: None,
        },
        configurations: Default::default(),
        naming: Default::default(),
    };
    let connection = store.create_connection(&new_connection()).await.unwrap();
    assert_eq!(connection.schedule, new_connection().schedule);
    let new_job = NewJob {
        connection_id: connection.id,
        workspace_id: workspace.id,
        region_id: region.id,
        job_type: JobType::Sync,
        max_attempts: 2,
    };
    let job = store.create_job(&new_job).await.unwrap();
    assert_eq!(
        (job.status, job.job_type),
        (JobStatus::Pending, JobType::Sync)
    );
    // One job under way per connection, however the calls race.
    assert!(matches!(
        store.create_job(&new_job).await,
        Err(StoreError::Conflict(_))
    ));
    let other_region = store
        .create_region(&new_region("jobs-elsewhere"))
        .await
        .unwrap();
    let plane = Uuid::new_v4();
    assert!(
        store
            .claim_job(other_region.id, plane, 60_000, None)
            .await
            .unwrap()
            .is_none()
    );
    let (claimed, attempt) = store
        .claim_job(region.id, plane, 60_000, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.status, attempt.attempt_number),
        (job.id, JobStatus::Running, 1)
    );
    assert!(
        store
            .claim_job(region.id, plane, 60_000, None)
            .await
            .unwrap()
            .is_none()
    );
    let policy = RetryPolicy {
        backoff_base_millis: 0,
        backoff_max_millis: 0,
    };
    // A transient failure is retried: the job goes back to its lane.
    let transient = Failure {
        reason: Some("boom".to_owned()),
        origin: Some(FailureOrigin::Source),
        failure_type: Some(FailureType::TransientError),
    };
    let failed = store
        .finish_attempt(
            job.id,
            attempt.id,
            AttemptOutcome::Failed,
            &transient,
            (0, 0),
            policy,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Incomplete);
    assert_eq!(
        (failed.failure_origin, failed.failure_type),
        (
            Some(FailureOrigin::Source),
            Some(FailureType::TransientError)
        )
    );
    let ended = store.attempt(attempt.id).await.unwrap();
    assert_eq!(
        (
            ended.status,
            ended.failure_reason.as_deref(),
            ended.failure_origin,
            ended.failure_type
        ),
        (
            AttemptStatus::Failed,
            Some("boom"),
            Some(FailureOrigin::Source),
            Some(FailureType::TransientError)
        )
    );
    // The old attempt is fenced off; the retry is claimable.
    assert!(matches!(
        store.commit_state(job.id, attempt.id, &[], 0, 0, &[]).await,
        Err(StoreError::Fenced(_))
    ));
    let (_, retry) = store
        .claim_job(region.id, plane, 60_000, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.attempt_number, 2);
    let stats = vec![StreamStats {
        stream_name: "users".to_owned(),
        stream_namespace: Some("public".to_owned()),
        records_committed: 5,
        bytes_committed: 50,
        estimated_records: Some(5_000),
        estimated_bytes: None,
    }];
    let state = ferry_store::StoredState {
        stream: "public.users".to_owned(),
        state: serde_json::json!({"cursor": 10}),
        reference: None,
    };
    store
        .commit_state(
            job.id,
            retry.id,
            std::slice::from_ref(&state),
            5,
            50,
            &stats,
        )
        .await
        .unwrap();
    assert_eq!(
        store.connection_states(connection.id).await.unwrap(),
        std::slice::from_ref(&state)
    );
    // A large state is kept as a reference (its key and digest) in the state's place.
    let referenced = ferry_store::StoredState {
        stream: "public.big".to_owned(),
        state: serde_json::Value::Null,
        reference: Some(ferry_api::StateReference {
            key: "state/connection-x/ab/cd.json".to_owned(),
            sha256: "cd".to_owned(),
            bytes: 2_000_000,
        }),
    };
    store
        .commit_state(
            job.id,
            retry.id,
            std::slice::from_ref(&referenced),
            5,
            50,
            &stats,
        )
        .await
        .unwrap();
    assert_eq!(
        store.connection_states(connection.id).await.unwrap(),
        [referenced, state]
    );
    // An attempt's log length moves only from what it is (two requests racing: one wins).
    assert_eq!(store.attempt_log_bytes(retry.id).await.unwrap(), 0);
    assert!(store.advance_attempt_log(retry.id, 0, 100).await.unwrap());
    assert!(!store.advance_attempt_log(retry.id, 0, 150).await.unwrap());
    assert_eq!(store.attempt_log_bytes(retry.id).await.unwrap(), 100);
    let done = store
        .finish_attempt(
            job.id,
            retry.id,
            AttemptOutcome::Succeeded,
            &Failure::default(),
            (5, 50),
            policy,
        )
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!((done.failure_origin, done.failure_type), (None, None));
    assert_eq!(store.attempt(retry.id).await.unwrap().stream_stats, stats);
    // Once it ended, the connection may have a new job.
    let next = store.create_job(&new_job).await.unwrap();

    // A config error is the user's to fix: the job fails after one attempt, however many
    // remain.
    let (_, attempt) = store
        .claim_job(region.id, plane, 60_000, Some(next.id))
        .await
        .unwrap()
        .unwrap();
    let config_error = Failure {
        reason: Some("password authentication failed".to_owned()),
        origin: Some(FailureOrigin::Source),
        failure_type: Some(FailureType::ConfigError),
    };
    let failed = store
        .finish_attempt(
            next.id,
            attempt.id,
            AttemptOutcome::Failed,
            &config_error,
            (0, 0),
            policy,
        )
        .await
        .unwrap();
    assert_eq!(
        (failed.status, failed.attempt_count, failed.max_attempts),
        (JobStatus::Failed, 1, 2)
    );
    assert_eq!(failed.failure_type, Some(FailureType::ConfigError));
    assert!(failed.ended_at.is_some());
    assert_eq!(
        store.attempt(attempt.id).await.unwrap().failure_type,
        Some(FailureType::ConfigError)
    );

    // A data plane that stops heartbeating: the reaper records a heartbeat timeout of the
    // platform, and the job is retried.
    let lapsing = store.create_job(&new_job).await.unwrap();
    let (_, attempt) = store
        .claim_job(region.id, plane, -1, Some(lapsing.id))
        .await
        .unwrap()
        .unwrap();
    let expired = store.expire_leases(policy).await.unwrap();
    assert!(expired.contains(&(lapsing.id, attempt.id)), "{expired:?}");
    let requeued = store.job(lapsing.id).await.unwrap();
    assert_eq!(
        (
            requeued.status,
            requeued.failure_origin,
            requeued.failure_type
        ),
        (
            JobStatus::Incomplete,
            Some(FailureOrigin::AirbytePlatform),
            Some(FailureType::HeartbeatTimeout)
        )
    );
    let cancelled = store.cancel_job(lapsing.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);

    corrupt_rows(store, url, &connection, workspace.id).await;
}

/// Stored JSON and names that do not decode are `Corrupt`, naming table, column and row,
/// never read as a default.
async fn corrupt_rows(
    store: &Store,
    url: &str,
    connection: &ferry_store::Connection,
    workspace_id: Uuid,
) {
    use ferry_api::ConnectorRole;
    use ferry_store::CustomDefinition;
    let definition = store
        .create_definition(&CustomDefinition {
            id: Uuid::new_v4(),
            workspace_id,
            kind: ConnectorRole::Source,
            name: "custom".to_owned(),
            docker_repository: String::new(),
            docker_image_tag: String::new(),
            documentation_url: None,
            command: vec!["python3".to_owned(), "source.py".to_owned()],
            created_at: 0,
        })
        .await
        .unwrap();
    assert_eq!(definition.command, ["python3", "source.py"]);

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    let write = |sql: &'static str, id: String| {
        let raw = raw.clone();
        async move {
            sqlx::query(sql).bind(id).execute(&raw).await.unwrap();
        }
    };
    write(
        "UPDATE connections SET schedule = 'manual' WHERE id = $1",
        connection.id.to_string(),
    )
    .await;
    let error = store.connection(connection.id).await.unwrap_err();
    assert!(
        matches!(
            &error,
            StoreError::Corrupt { table: "connections", column: "schedule", id, .. }
                if *id == connection.id.to_string()
        ),
        "{error:?}"
    );
    write(
        "UPDATE connector_definitions SET command = '{\"not\": \"a list\"}' WHERE id = $1",
        definition.id.to_string(),
    )
    .await;
    let error = store
        .definition(ConnectorRole::Source, definition.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Corrupt {
                table: "connector_definitions",
                column: "command",
                ..
            }
        ),
        "{error:?}"
    );
    write(
        "UPDATE jobs SET status = 'exploded' WHERE connection_id = $1",
        connection.id.to_string(),
    )
    .await;
    let error = store
        .jobs(&ferry_store::JobQuery {
            workspace_ids: None,
            connection_id: Some(connection.id),
            job_type: None,
            status: None,
            created_at_start: None,
            created_at_end: None,
            updated_at_start: None,
            updated_at_end: None,
            order_by: "created_at",
            descending: false,
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Corrupt {
                table: "jobs",
                column: "status",
                ..
            }
        ),
        "{error:?}"
    );
    raw.close().await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("ferry.db").display());
    conformance(&url).await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let database = TestDatabase::create().await;
    conformance(&database.url()).await;
}

#[tokio::test]
async fn unknown_database_urls_are_refused() {
    let error = Store::connect("mysql://root@127.0.0.1/test")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InvalidUrl(_)), "{error:?}");
}
