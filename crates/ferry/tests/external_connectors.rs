//! Custom connectors — programs speaking the Airbyte protocol — registered through the API
//! and run by a real `ferry up` data plane: records flow, state is committed and resumed
//! from, and a connector's TRACE ERROR becomes the job's failure reason.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{Api, FerryOptions, FerryUp, StoreKind, TestDatabase, text};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

fn fixture() -> String {
    format!(
        "{}/../ferry-connectors/tests/fixtures/protocol_connector.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A `ferry up` whose jobs fail with their first failed attempt.
async fn up_without_retries() -> FerryUp {
    FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await
}

/// The job once it has ended.
async fn finished(admin: &Api, job_id: i64) -> Value {
    admin.finished_job(job_id, Duration::from_secs(60)).await
}

#[tokio::test]
async fn custom_connectors_sync_resume_and_report_their_errors() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .env("FERRY_JOB_MAX_ATTEMPTS", "1")
            .env("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
    )
    .await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let command = json!(["python3", fixture()]);
    let source_definition = workspace
        .post_source_definition(
            json!({"name": "numbers", "dockerRepository": "ferry/numbers", "dockerImageTag": "dev", "command": command}),
        )
        .await;
    assert_eq!(source_definition.status, 200, "{}", source_definition.body);
    let destination_definition = workspace
        .post_destination_definition(json!({"name": "echo", "command": command}))
        .await;
    assert_eq!(
        destination_definition.status, 200,
        "{}",
        destination_definition.body
    );
    let listed = admin
        .get(&format!(
            "/api/public/v1/workspaces/{}/definitions/sources",
            workspace.id
        ))
        .await;
    assert_eq!(listed.body["data"][0]["name"], "numbers");

    let source = |configuration: Value| {
        let admin = admin.clone();
        let definition_id = source_definition.body["id"].clone();
        let workspace = workspace.id.clone();
        async move {
            let reply = admin
                .post("/api/public/v1/sources", json!({"name": "numbers", "workspaceId": workspace, "definitionId": definition_id, "configuration": configuration}))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body
        }
    };
    let destination = admin
        .post(
            "/api/public/v1/destinations",
            json!({"name": "echo", "workspaceId": workspace.id, "definitionId": destination_definition.body["id"], "configuration": {"echo_every": 2}}),
        )
        .await;
    assert_eq!(destination.status, 200, "{}", destination.body);
    let connect = |source: Value| {
        let admin = admin.clone();
        let destination_id = destination.body["destinationId"].clone();
        async move {
            let reply = admin
                .post(
                    "/api/public/v1/connections",
                    json!({"sourceId": source["sourceId"], "destinationId": destination_id,
                           "configurations": {"streams": [{"name": "numbers", "syncMode": "incremental_append"}]}}),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            text(&reply.body["connectionId"])
        }
    };
    let sync =
        |connection: String| async move { admin.start_job(&json!(connection), "sync").await };

    // External source → external destination: every record, state committed at the end.
    let numbers = source(json!({"count": 95})).await;
    assert_eq!(numbers["sourceType"], "custom");
    assert_eq!(numbers["definitionId"], source_definition.body["id"]);
    let connection = connect(numbers).await;
    let job = finished(admin, sync(connection.clone()).await).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowsSynced"], 95);
    let state = admin
        .get(&format!("/api/public/v1/connections/{connection}"))
        .await
        .body;
    assert_eq!(state["state"][0]["state"]["stream_state"]["offset"], 95);

    // The next sync passes that state to the source: nothing new to move.
    let job = finished(admin, sync(connection.clone()).await).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowsSynced"], 0);

    // A connector's TRACE ERROR is the job's failure reason.
    let failing = source(json!({"count": 50, "fail_at": 31})).await;
    let connection = connect(failing).await;
    let job = finished(admin, sync(connection.clone()).await).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        text(&job["failureReason"]).contains("simulated failure at record 31"),
        "{job}"
    );
    // What the destination made durable before the failure stays committed: the 30 records
    // before the source's last state (the destination acknowledges it when its input ends).
    assert_eq!(job["rowsSynced"], 30, "{job}");
    let state = admin
        .get(&format!("/api/public/v1/connections/{connection}"))
        .await
        .body;
    assert_eq!(state["state"][0]["state"]["stream_state"]["offset"], 30);

    // Only instance admins may register programs to run on data planes.
    let bad = workspace.post_source_definition(json!({"name": "x"})).await;
    bad.assert_problem(422).assert_names_field("command");
    workspace
        .post_source_definition(json!({"name": "x", "command": []}))
        .await
        .assert_problem(400)
        .assert_names_field("command");
    admin
        .post(
            &format!(
                "/api/public/v1/workspaces/{}/definitions/widgets",
                workspace.id
            ),
            json!({"name": "x", "command": ["a"]}),
        )
        .await
        .assert_problem(404);
}

/// A real Airbyte connector from PyPI (`airbyte-source-faker`, in a venv this test makes),
/// registered as a custom source and run by the data plane through the protocol runtime.
#[tokio::test]
async fn a_real_pypi_connector_syncs_through_the_runtime() {
    let venv = ferry_testkit::python_venv(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        "venv-airbyte-source-faker",
        "airbyte-source-faker",
        "source_faker",
    );
    let ferry = up_without_retries().await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let definition = workspace
        .post_source_definition(
            json!({"name": "faker (PyPI)", "command": [venv.join("bin/source-faker")]}),
        )
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let source = admin
        .post(
            "/api/public/v1/sources",
            json!({"name": "faker", "workspaceId": workspace.id, "definitionId": definition.body["id"],
                   "configuration": {"count": 120, "seed": 42, "records_per_slice": 50, "parallelism": 1, "always_updated": false}}),
        )
        .await;
    assert_eq!(source.status, 200, "{}", source.body);
    // Into Ferry's native destination-postgres.
    let database = TestDatabase::create().await;
    let database_name = database.name();
    let destination = admin
        .post("/api/public/v1/destinations", json!({"name": "warehouse", "workspaceId": workspace.id, "configuration": {
            "destinationType": "postgres", "host": "127.0.0.1", "port": 5432, "database": database_name,
            "username": "postgres", "schema": "faker"}}))
        .await;
    assert_eq!(destination.status, 200, "{}", destination.body);
    let connection = admin
        .post(
            "/api/public/v1/connections",
            json!({"sourceId": source.body["sourceId"], "destinationId": destination.body["destinationId"],
                   "configurations": {"streams": [{"name": "users", "syncMode": "incremental_deduped_history"}, {"name": "products"}]}}),
        )
        .await;
    assert_eq!(connection.status, 200, "{}", connection.body);
    let connection_id = text(&connection.body["connectionId"]);
    let job = admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection_id, "jobType": "sync"}),
        )
        .await;
    let job = finished(admin, job.body["jobId"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // 120 users, and faker's products (its fixed list, capped by count).
    assert!(job["rowsSynced"].as_i64().unwrap() >= 120 + 100, "{job}");
    let users = admin.stream_state(&connection_id, "users").await;
    assert_eq!(users["state"]["stream_state"]["seed"], 42, "{users}");
    // Typed tables in the configured schema: faker's users, deduplicated by id.
    let mut warehouse = database.connect().await;
    let (users, distinct, named): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE name IS NOT NULL AND created_at IS NOT NULL) FROM faker.users",
    )
    .fetch_one(&mut warehouse)
    .await
    .unwrap();
    assert_eq!((users, distinct, named), (120, 120, 120));
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM faker.products")
        .fetch_one(&mut warehouse)
        .await
        .unwrap();
    assert!(products > 0);
}

#[tokio::test]
async fn discover_and_check_run_on_a_data_plane_of_the_region() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let definition = workspace
        .post_source_definition(json!({"name": "numbers", "command": ["python3", fixture()]}))
        .await;
    let custom = |configuration: Value| {
        let admin = admin.clone();
        let body = json!({"name": "numbers", "workspaceId": workspace.id, "definitionId": definition.body["id"], "configuration": configuration});
        async move { admin.post("/api/public/v1/sources", body).await.body }
    };
    let numbers = custom(json!({"count": 5})).await;
    let streams = admin
        .get(&format!(
            "/api/public/v1/streams?sourceId={}&ignoreCache=false",
            text(&numbers["sourceId"])
        ))
        .await;
    assert_eq!(streams.status, 200, "{}", streams.body);
    assert_eq!(streams.body[0]["streamName"], "numbers");
    assert_eq!(streams.body[0]["sourceDefinedCursorField"], true);
    assert_eq!(streams.body[0]["sourceDefinedPrimaryKey"], json!([["id"]]));
    assert!(
        streams.body[0]["syncModes"]
            .as_array()
            .unwrap()
            .contains(&json!("incremental_append"))
    );

    let checked = admin.check_source(&numbers["sourceId"]).await;
    assert_eq!(checked.body["status"], "succeeded", "{}", checked.body);
    let refused = custom(json!({"fail_check": true})).await;
    let checked = admin.check_source(&refused["sourceId"]).await;
    assert_eq!(checked.body["status"], "failed");
    assert_eq!(checked.body["message"], "bad credentials");

    // Built-in connectors are discovered the same way, on the data plane.
    let faker = workspace
        .post_source("f", json!({"sourceType": "faker"}))
        .await;
    let streams = admin
        .get(&format!(
            "/api/public/v1/streams?sourceId={}",
            text(&faker.body["sourceId"])
        ))
        .await;
    assert_eq!(streams.body[0]["streamName"], "users", "{}", streams.body);
    assert!(
        streams.body[0]["propertyFields"]
            .as_array()
            .unwrap()
            .contains(&json!(["email"]))
    );

    // A region no data plane serves cannot run them: 409 at once.
    let region = ferry.region("nowhere").await;
    let lonely = ferry.workspace_in(&region, "lonely").await;
    let stranded = lonely
        .post_source("f", json!({"sourceType": "faker"}))
        .await;
    admin
        .get(&format!(
            "/api/public/v1/streams?sourceId={}",
            text(&stranded.body["sourceId"])
        ))
        .await
        .assert_problem(409);
    admin
        .get("/api/public/v1/streams")
        .await
        .assert_problem(400)
        .assert_names_field("sourceId");
}

#[tokio::test]
async fn each_attempt_leaves_a_log_the_api_serves() {
    let ferry = up_without_retries().await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let definition = workspace
        .post_source_definition(json!({"name": "numbers", "command": ["python3", fixture()]}))
        .await;
    let source = admin
        .post("/api/public/v1/sources", json!({"name": "n", "workspaceId": workspace.id, "definitionId": definition.body["id"], "configuration": {"count": 30, "fail_at": 25}}))
        .await;
    let destination = workspace
        .post_destination("null", json!({"destinationType": "dev-null"}))
        .await;
    let connection = admin
        .post("/api/public/v1/connections", json!({"sourceId": source.body["sourceId"], "destinationId": destination.body["destinationId"]}))
        .await;
    let job_id = admin
        .start_job(&connection.body["connectionId"], "sync")
        .await;
    let job = finished(admin, job_id).await;
    assert_eq!(job["status"], "failed");
    let log = admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/1/logs"))
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(
        log.content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = log.body.as_str().unwrap();
    for expected in [
        "attempt 1 of job",
        "a line on stderr",
        "hello from the connector, not a protocol message",
        "ERROR simulated failure at record 25",
        "attempt ended: failed",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the log:\n{text}"
        );
    }
    admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/2/logs"))
        .await
        .assert_problem(404);
    admin
        .get(&format!("/api/public/v1/jobs/{job_id}/attempts/x/logs"))
        .await
        .assert_problem(400);
}
