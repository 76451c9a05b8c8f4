//! How a failed sync is reported and retried: the cause is the failing side's own error,
//! with its origin and Airbyte's failure type; a configuration error ends the job after one
//! attempt, a refused connection is tried again. Through `ferry up`, on PostgreSQL.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase, text};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn ferry() -> FerryUp {
    FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0")
            .env("FERRY_JOB_MAX_ATTEMPTS", "3"),
    )
    .await
}

fn faker() -> Value {
    json!({"sourceType": "faker", "count": 50, "seed": 1})
}

#[tokio::test]
async fn a_missing_database_fails_once_as_a_config_error_in_the_destinations_words() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    let mut destination = database.destination_configuration("public");
    destination["database"] = json!(format!("{}_missing", database.name()));
    let connection = ferry
        .connection(
            faker(),
            destination,
            json!([{"name": "users", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(60))
        .await;
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert_eq!(job["failureOrigin"], "destination", "{job}");
    let reason = text(&job["failureReason"]);
    assert!(
        reason.contains("does not exist"),
        "the database's own words: {reason}"
    );
    assert!(!reason.contains("pipe closed"), "{reason}");
    let attempts = job["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 1, "a config error is not retried: {job}");
    assert_eq!(attempts[0]["failureType"], "config_error", "{job}");
}

#[tokio::test]
async fn a_schema_the_database_refuses_fails_once_naming_it() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric); INSERT INTO orders VALUES (1, 2.5), (2, 3)")
        .await;
    // PostgreSQL reserves schema names that start with pg_.
    let connection = ferry
        .connection(
            database.source_configuration(),
            database.destination_configuration("pg_ferry"),
            json!([{"name": "orders", "syncMode": "incremental_deduped_history", "cursorField": ["id"]}]),
        )
        .await;
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(60))
        .await;
    assert_eq!(job["failureOrigin"], "destination", "{job}");
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert_eq!(job["attempts"].as_array().map(Vec::len), Some(1), "{job}");
    let reason = text(&job["failureReason"]);
    assert!(reason.contains("pg_ferry"), "names the schema: {reason}");
    // The attempt's log holds the destination's words and what ran.
    let log = ferry.admin.first_attempt_log(&job).await;
    assert!(log.contains("destination failed (config_error)"), "{log}");
    assert!(
        log.contains("stream public.orders: incremental / append_dedup"),
        "{log}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_as_a_transient_error() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    // A port nothing listens on.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut destination = database.destination_configuration("public");
    destination["port"] = json!(closed_port);
    let connection = ferry
        .connection(
            faker(),
            destination,
            json!([{"name": "users", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(90))
        .await;
    let attempts = job["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 3, "every attempt was tried: {job}");
    for attempt in &attempts {
        assert_eq!(attempt["failureType"], "transient_error", "{job}");
        assert_eq!(attempt["failureOrigin"], "destination", "{job}");
        let reason = text(&attempt["failureReason"]);
        assert!(
            reason.contains("could not connect to PostgreSQL"),
            "{reason}"
        );
    }
}

/// An external destination that refuses the data says why in a TRACE error: that message,
/// not the source's view of a closed pipe, is the job's failure reason and is in the
/// attempt's log; a config error is not retried.
#[tokio::test]
async fn an_external_destinations_trace_error_is_the_reason_once() {
    let ferry = ferry().await;
    let workspace = ferry.default_workspace();
    let fixture = format!(
        "{}/../ferry-connectors/tests/fixtures/protocol_connector.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let definition = workspace
        .post_destination_definition(json!({"name": "refuses", "command": ["python3", fixture]}))
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let destination = ferry
        .admin
        .create(
            "/api/public/v1/destinations",
            json!({"name": "refuses", "workspaceId": workspace.id,
                   "definitionId": definition.body["id"], "configuration": {"fail_write": true}}),
        )
        .await;
    let source = ferry
        .admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "faker", "workspaceId": workspace.id, "configuration": faker()}),
        )
        .await;
    let connection = ferry
        .admin
        .create(
            "/api/public/v1/connections",
            json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"],
                   "configurations": {"streams": [{"name": "users", "syncMode": "full_refresh_append"}]}}),
        )
        .await;
    let job = ferry
        .admin
        .failed_sync(&connection["connectionId"], Duration::from_secs(60))
        .await;
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert_eq!(job["failureOrigin"], "destination", "{job}");
    let reason = text(&job["failureReason"]);
    assert!(
        reason.contains("the destination refused the data"),
        "{reason}"
    );
    let attempts = job["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 1, "a config error is not retried: {job}");
    let log = ferry.admin.first_attempt_log(&job).await;
    assert!(log.contains("the destination refused the data"), "{log}");
}
