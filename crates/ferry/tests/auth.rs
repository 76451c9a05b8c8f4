//! Authentication and authorization against a real `ferry` process: tokens, roles, data-plane
//! credentials, rotation and revocation.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{Api, DEFAULT_ORGANIZATION_ID, FerryOptions, FerryUp, StoreKind, text, token};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const ORG: &str = DEFAULT_ORGANIZATION_ID;

async fn start(store: StoreKind) -> FerryUp {
    FerryUp::start(BINARY.as_ref(), FerryOptions::new(store)).await
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let ferry = start(StoreKind::Sqlite).await;
    let admin = &ferry.admin;
    let anonymous = ferry.anonymous();
    for path in [
        "/api/public/v1/workspaces",
        "/v1/regions?organizationId=".to_owned().as_str(),
        "/api/public/v1/organizations",
    ] {
        let reply = anonymous.get(path).await;
        reply.assert_problem(401);
        assert_eq!(reply.body["title"], "invalid-api-key");
    }
    let garbage = Api::new(ferry.base_url(), Some("not-a-token".to_owned()));
    garbage
        .get("/api/public/v1/workspaces")
        .await
        .assert_problem(401);

    // A tampered token (its signature broken) is refused too.
    let forged = admin.token.clone().unwrap().replace('.', "x.");
    Api::new(ferry.base_url(), Some(forged))
        .get("/api/public/v1/workspaces")
        .await
        .assert_problem(401);

    // Health needs no token.
    assert_eq!(anonymous.get("/api/public/v1/health").await.status, 200);
    assert_eq!(anonymous.get("/health").await.status, 200);
}

#[tokio::test]
async fn token_endpoint_takes_json_and_form_at_every_path_and_rejects_wrong_secrets() {
    let ferry = start(StoreKind::Sqlite).await;
    let (client_id, client_secret) = ferry.process.admin_credentials();
    let client = reqwest::Client::new();
    for path in [
        "/api/public/v1/applications/token",
        "/api/v1/applications/token",
        "/applications/token",
        "/v1/applications/token",
    ] {
        // What Airbyte's Python SDK sends, on the wire.
        let form = client
            .post(ferry.process.url(path))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &client_secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200, "{path}");
        let body: Value = form.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(
            body["access_token"].as_str().unwrap().split('.').count() == 3,
            "a JWT"
        );
    }
    let api = ferry.anonymous();
    // The spec's hyphenated spelling, and no grant at all, are both accepted.
    let hyphen = api
        .post("/api/public/v1/applications/token", json!({"client_id": client_id, "client_secret": client_secret, "grant-type": "client_credentials"}))
        .await;
    assert_eq!(hyphen.status, 200);
    let wrong = api
        .post(
            "/api/public/v1/applications/token",
            json!({"client_id": client_id, "client_secret": "wrong"}),
        )
        .await;
    wrong.assert_problem(401);
    let unknown = api
        .post(
            "/api/public/v1/applications/token",
            json!({"client_id": "nobody", "client_secret": "x"}),
        )
        .await;
    unknown.assert_problem(401);
    api.post(
        "/api/public/v1/applications/token",
        json!({"client_id": client_id, "client_secret": client_secret, "grant_type": "password"}),
    )
    .await
    .assert_problem(400)
    .assert_names_field("grant_type");
    api.post(
        "/api/public/v1/applications/token",
        json!({"client_secret": "x"}),
    )
    .await
    .assert_problem(400)
    .assert_names_field("client_id");
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_TOKEN_TTL_SECONDS", "1"),
    )
    .await;
    let api = ferry.process.admin_api().await;
    assert_eq!(api.get("/api/public/v1/workspaces").await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = api.get("/api/public/v1/workspaces").await;
    reply.assert_problem(401);
    assert!(
        reply.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        reply.body
    );
}

/// An instance admin makes a user with one workspace role and an application for it.
async fn reader_of_default_workspace(ferry: &FerryUp) -> (Api, String) {
    let admin = &ferry.admin;
    let default_workspace = ferry.default_workspace().id;
    let user = admin
        .post(
            "/api/public/v1/users",
            json!({"name": "Rita Reader", "email": "rita@example.com"}),
        )
        .await;
    assert_eq!(user.status, 200, "{}", user.body);
    let permission = admin
        .post(
            "/api/public/v1/permissions",
            json!({"permissionType": "workspace_reader", "userId": user.body["id"], "workspaceId": default_workspace}),
        )
        .await;
    assert_eq!(permission.status, 200, "{}", permission.body);
    assert_eq!(permission.body["permissionType"], "workspace_reader");
    let application = admin
        .post(
            "/api/public/v1/applications",
            json!({"name": "rita-app", "userId": user.body["id"]}),
        )
        .await;
    assert_eq!(application.status, 200, "{}", application.body);
    let reader_token = token(
        ferry.base_url(),
        &text(&application.body["clientId"]),
        &text(&application.body["clientSecret"]),
    )
    .await;
    (
        Api::new(ferry.base_url(), Some(reader_token)),
        default_workspace,
    )
}

async fn non_admins_cannot_manage_regions_or_dataplanes(store: StoreKind) {
    let ferry = start(store).await;
    let admin = &ferry.admin;
    let (reader, default_workspace) = reader_of_default_workspace(&ferry).await;
    let region = ferry.region("eu").await;
    let region_id = region.id.as_str();
    let dataplane_id = ferry.plane(&region, "eu-1").await.id;

    reader
        .get(&format!("/api/public/v1/regions?organizationId={ORG}"))
        .await
        .assert_problem(403);
    reader
        .post(
            "/api/public/v1/regions",
            json!({"name": "x", "organizationId": ORG}),
        )
        .await
        .assert_problem(403);
    reader
        .get(&format!("/api/public/v1/regions/{region_id}"))
        .await
        .assert_problem(403);
    reader
        .patch(
            &format!("/api/public/v1/regions/{region_id}"),
            json!({"enabled": false}),
        )
        .await
        .assert_problem(403);
    reader
        .delete(&format!("/api/public/v1/regions/{region_id}"))
        .await
        .assert_problem(403);
    reader
        .get("/api/public/v1/dataplanes")
        .await
        .assert_problem(403);
    reader
        .post(
            "/api/public/v1/dataplanes",
            json!({"name": "x", "regionId": region_id}),
        )
        .await
        .assert_problem(403);
    reader
        .get(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await
        .assert_problem(403);
    reader
        .patch(
            &format!("/api/public/v1/dataplanes/{dataplane_id}"),
            json!({"enabled": false}),
        )
        .await
        .assert_problem(403);
    reader
        .delete(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await
        .assert_problem(403);
    reader
        .post(
            &format!("/api/public/v1/dataplanes/{dataplane_id}/rotate_secret"),
            json!({}),
        )
        .await
        .assert_problem(403);

    // A reader sees its workspace and nothing else, and cannot change it.
    let other = admin
        .post("/api/public/v1/workspaces", json!({"name": "Hidden"}))
        .await;
    let listed = reader.get("/api/public/v1/workspaces").await;
    assert_eq!(listed.status, 200);
    let ids: Vec<String> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| text(&w["workspaceId"]))
        .collect();
    assert_eq!(ids, std::slice::from_ref(&default_workspace));
    assert_eq!(
        reader
            .get(&format!("/api/public/v1/workspaces/{default_workspace}"))
            .await
            .status,
        200
    );
    reader
        .get(&format!(
            "/api/public/v1/workspaces/{}",
            text(&other.body["workspaceId"])
        ))
        .await
        .assert_problem(404);
    reader
        .patch(
            &format!("/api/public/v1/workspaces/{default_workspace}"),
            json!({"name": "mine now"}),
        )
        .await
        .assert_problem(403);
    reader
        .delete(&format!("/api/public/v1/workspaces/{default_workspace}"))
        .await
        .assert_problem(403);
    reader
        .post("/api/public/v1/workspaces", json!({"name": "mine"}))
        .await
        .assert_problem(403);
    reader
        .post(
            "/api/public/v1/users",
            json!({"name": "x", "email": "x@y.io"}),
        )
        .await
        .assert_problem(403);

    // Nor can it grant itself more.
    let me = reader.get("/api/public/v1/permissions").await;
    assert_eq!(me.status, 200);
    let my_user = text(&me.body["data"][0]["userId"]);
    reader
        .post(
            "/api/public/v1/permissions",
            json!({"permissionType": "instance_admin", "userId": my_user}),
        )
        .await
        .assert_problem(403);
    let own = text(&me.body["data"][0]["permissionId"]);
    reader
        .patch(
            &format!("/api/public/v1/permissions/{own}"),
            json!({"permissionType": "workspace_admin"}),
        )
        .await
        .assert_problem(403);

    // Promoted to organization admin, the same user may manage workspaces, still not regions.
    admin
        .post("/api/public/v1/permissions", json!({"permissionType": "organization_admin", "userId": my_user, "organizationId": ORG}))
        .await;
    assert_eq!(
        reader
            .post("/api/public/v1/workspaces", json!({"name": "mine"}))
            .await
            .status,
        200
    );
    reader
        .get(&format!("/api/public/v1/regions?organizationId={ORG}"))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn non_admins_cannot_manage_regions_or_dataplanes_on_sqlite() {
    non_admins_cannot_manage_regions_or_dataplanes(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn non_admins_cannot_manage_regions_or_dataplanes_on_postgres() {
    non_admins_cannot_manage_regions_or_dataplanes(StoreKind::Postgres).await;
}

#[tokio::test]
async fn applications_show_their_secret_once_and_deleting_one_revokes_its_tokens() {
    let ferry = start(StoreKind::Sqlite).await;
    let admin = &ferry.admin;
    let created = admin
        .post("/api/public/v1/applications", json!({"name": "ci"}))
        .await;
    assert_eq!(created.status, 200);
    let application_id = text(&created.body["id"]);
    let secret = text(&created.body["clientSecret"]);
    assert!(secret.len() >= 40);
    assert!(created.body["createdAt"].is_i64());
    let read = admin
        .get(&format!("/api/public/v1/applications/{application_id}"))
        .await;
    assert_eq!(read.body["clientSecret"], "**********");
    let listed = admin.get("/api/public/v1/applications").await;
    assert_eq!(listed.body["applications"].as_array().unwrap().len(), 2);

    let app_token = token(ferry.base_url(), &text(&created.body["clientId"]), &secret).await;
    let as_app = Api::new(ferry.base_url(), Some(app_token));
    assert_eq!(as_app.get("/api/public/v1/workspaces").await.status, 200);
    let deleted = admin
        .delete(&format!("/api/public/v1/applications/{application_id}"))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["id"], application_id.as_str());
    as_app
        .get("/api/public/v1/workspaces")
        .await
        .assert_problem(401);
    ferry
        .anonymous()
        .post(
            "/api/public/v1/applications/token",
            json!({"client_id": created.body["clientId"], "client_secret": secret}),
        )
        .await
        .assert_problem(401);
    admin
        .get(&format!("/api/public/v1/applications/{application_id}"))
        .await
        .assert_problem(404);
}

async fn dataplane_credentials(store: StoreKind) {
    let ferry = start(store).await;
    let admin = &ferry.admin;
    let region = ferry.region("eu").await;
    let created = ferry.plane(&region, "eu-1").await;
    let dataplane_id = created.id;
    let client_id = created.client_id;
    let secret = created.client_secret;
    let anonymous = ferry.anonymous();
    let dataplane_token = |id: String, secret: String| {
        let anonymous = anonymous.clone();
        async move {
            anonymous
                .post(
                    "/api/v1/dataplanes/token",
                    json!({"client_id": id, "client_secret": secret}),
                )
                .await
        }
    };

    // Credentials are never shown again.
    let read = admin
        .get(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await;
    assert!(read.body.get("clientSecret").is_none() && read.body.get("clientId").is_none());
    assert_eq!(read.body["status"], "unknown");

    let issued = dataplane_token(client_id.clone(), secret.clone()).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.body["expires_in"], 300);
    let as_dataplane = Api::new(ferry.base_url(), Some(text(&issued.body["access_token"])));
    let heartbeat = as_dataplane
        .post(
            "/api/v1/dataplanes/heartbeat",
            json!({"client_id": client_id, "version": "0.1.0"}),
        )
        .await;
    assert_eq!(heartbeat.status, 200, "{}", heartbeat.body);
    let read = admin
        .get(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await;
    assert_eq!(read.body["status"], "healthy");
    assert_eq!(read.body["version"], "0.1.0");

    // Each kind of token stays on its side.
    as_dataplane
        .get("/api/public/v1/workspaces")
        .await
        .assert_problem(403);
    admin
        .post(
            "/api/v1/dataplanes/heartbeat",
            json!({"client_id": client_id}),
        )
        .await
        .assert_problem(403);
    as_dataplane
        .post(
            "/api/v1/dataplanes/heartbeat",
            json!({"client_id": "someone-else"}),
        )
        .await
        .assert_problem(403);
    dataplane_token(client_id.clone(), "wrong".to_owned())
        .await
        .assert_problem(401);

    // Disabling shows in the identity a data plane reads.
    admin
        .patch(
            &format!("/api/public/v1/dataplanes/{dataplane_id}"),
            json!({"enabled": false}),
        )
        .await;
    let disabled = as_dataplane
        .post(
            "/api/v1/dataplanes/initialize",
            json!({"client_id": client_id}),
        )
        .await;
    assert_eq!(disabled.body["dataplane_enabled"], false);
    admin
        .patch(
            &format!("/api/public/v1/dataplanes/{dataplane_id}"),
            json!({"enabled": true}),
        )
        .await;

    // Rotation: the old secret and the old token are refused at once, the new secret works.
    let rotated = admin
        .post(
            &format!("/api/public/v1/dataplanes/{dataplane_id}/rotate_secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.body["clientId"], client_id.as_str());
    let new_secret = text(&rotated.body["clientSecret"]);
    assert_ne!(new_secret, secret);
    dataplane_token(client_id.clone(), secret.clone())
        .await
        .assert_problem(401);
    as_dataplane
        .post(
            "/api/v1/dataplanes/heartbeat",
            json!({"client_id": client_id}),
        )
        .await
        .assert_problem(401);
    let renewed = dataplane_token(client_id.clone(), new_secret.clone()).await;
    assert_eq!(renewed.status, 200);
    let as_renewed = Api::new(ferry.base_url(), Some(text(&renewed.body["access_token"])));

    // Deletion: its secret and its token are refused at once.
    let deleted = admin
        .delete(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["dataplaneId"], dataplane_id.as_str());
    dataplane_token(client_id.clone(), new_secret)
        .await
        .assert_problem(401);
    as_renewed
        .post(
            "/api/v1/dataplanes/heartbeat",
            json!({"client_id": client_id}),
        )
        .await
        .assert_problem(401);
    admin
        .get(&format!("/api/public/v1/dataplanes/{dataplane_id}"))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn dataplane_credentials_rotate_and_revoke_on_sqlite() {
    dataplane_credentials(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn dataplane_credentials_rotate_and_revoke_on_postgres() {
    dataplane_credentials(StoreKind::Postgres).await;
}

#[tokio::test]
async fn connector_secrets_are_encrypted_at_rest_and_masked_in_replies() {
    let ferry = start(StoreKind::Sqlite).await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let secret = "s3cr3t-never-stored-in-clear";
    let source = workspace
        .post_source(
            "f",
            json!({"sourceType": "faker", "count": 3, "api_key": secret, "nested": {"password": secret}}),
        )
        .await;
    assert_eq!(source.status, 200, "{}", source.body);
    assert_eq!(source.body["configuration"]["api_key"], "**********");
    assert_eq!(
        source.body["configuration"]["nested"]["password"],
        "**********"
    );
    assert_eq!(source.body["configuration"]["count"], 3);
    let read = admin
        .get(&format!(
            "/api/public/v1/sources/{}",
            text(&source.body["sourceId"])
        ))
        .await;
    assert!(!read.body.to_string().contains(secret));
    let listed = admin.get("/api/public/v1/sources").await;
    assert!(!listed.body.to_string().contains(secret));

    // Nothing on disk holds it in clear: not the database, not its write-ahead log.
    for entry in std::fs::read_dir(&ferry.process.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes());
            assert!(!found, "{} holds the secret in clear", path.display());
        }
    }

    // The data plane that runs a job of the connection receives it decrypted.
    let destination = workspace
        .post_destination("n", json!({"destinationType": "dev-null"}))
        .await;
    let connection = admin
        .post("/api/public/v1/connections", json!({"sourceId": source.body["sourceId"], "destinationId": destination.body["destinationId"]}))
        .await;
    let job = admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection.body["connectionId"], "jobType": "sync"}),
        )
        .await;
    let job_id = job.body["jobId"].as_i64().unwrap();
    let attempt_id = ferry_testkit::wait_for(
        "the default data plane to take the job",
        Duration::from_secs(20),
        || async {
            let job = admin
                .get(&format!("/api/public/v1/jobs/{job_id}"))
                .await
                .body;
            job["attempts"][0]["attemptId"].as_str().map(str::to_owned)
        },
    )
    .await;
    let credentials = ferry.process.credentials();
    let token = ferry.anonymous()
        .post(
            "/api/v1/dataplanes/token",
            json!({"client_id": credentials["defaultDataplane"]["clientId"], "client_secret": credentials["defaultDataplane"]["clientSecret"]}),
        )
        .await;
    let as_plane = Api::new(ferry.base_url(), Some(text(&token.body["access_token"])));
    let config = as_plane
        .get(&format!(
            "/api/v1/jobs/{job_id}/attempts/{attempt_id}/config"
        ))
        .await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.body["source_configuration"]["api_key"], secret);
}
