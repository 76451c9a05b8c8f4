//! Airbyte's file connectors, native: `source-file` (a real sample CSV from Airbyte's
//! connector, and JSON Lines) into the local destinations and into PostgreSQL, through the
//! public API of a real `ferry up`, under its local root (`<data-dir>/local`, Airbyte's
//! `/local` mount; `fences_and_secrets.rs` proves nothing outside it is reached).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// The sample Airbyte's own `source-file` reads in the reference samples (copied here so
/// that the test needs nothing outside the repository).
fn people_csv() -> String {
    format!("{}/tests/fixtures/people.csv", env!("CARGO_MANIFEST_DIR"))
}

async fn up() -> FerryUp {
    FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await
}

/// Runs a sync of `connection`, which must succeed; the job.
async fn sync(ferry: &FerryUp, connection: &Value) -> Value {
    ferry.admin.sync(connection, Duration::from_secs(60)).await
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn files_sync_to_local_files_and_postgres() {
    let ferry = up().await;
    let root = ferry.process.local_root();
    std::fs::copy(people_csv(), root.join("people.csv")).unwrap();
    let output = root.join("out");

    // The CSV Airbyte's own source-file sample reads, discovered as Airbyte types it.
    let csv_source = json!({"sourceType": "file", "dataset_name": "people", "format": "csv",
                            "url": "/local/people.csv", "provider": {"storage": "local"}, "reader_options": "{}"});
    let source = ferry
        .admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "people", "workspaceId": ferry.workspace, "configuration": csv_source}),
        )
        .await;
    let streams = ferry
        .admin
        .get(&format!(
            "/api/public/v1/streams?sourceId={}",
            source["sourceId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(streams.status, 200, "{}", streams.body);
    assert_eq!(streams.body[0]["streamName"], "people", "{}", streams.body);

    let to_json = ferry
        .connection(
            csv_source.clone(),
            json!({"destinationType": "local-json", "destination_path": "out"}),
            json!([{"name": "people", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = sync(&ferry, &to_json).await;
    let written = lines(&output.join("_airbyte_raw_people.jsonl"));
    assert_eq!(job["rowsSynced"], written.len(), "{job}");
    let first: Value = serde_json::from_str(&written[0]).unwrap();
    assert_eq!(
        first["_airbyte_data"],
        json!({"id": 1, "name": "Alice", "age": 34, "signup_date": "2024-01-05", "score": 9.5})
    );
    assert!(first["_airbyte_ab_id"].is_string() && first["_airbyte_emitted_at"].is_i64());
    // Overwrite: a second sync replaces the file, it does not grow it.
    sync(&ferry, &to_json).await;
    assert_eq!(
        lines(&output.join("_airbyte_raw_people.jsonl")).len(),
        written.len()
    );

    // JSON Lines → CSV, appended.
    let events = root.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"id\": 1, \"kind\": \"a \\\"quoted\\\" one\"}\n{\"id\": 2, \"kind\": \"b\", \"extra\": [1, 2]}\n",
    )
    .unwrap();
    let to_csv = ferry
        .connection(
            json!({"sourceType": "file", "dataset_name": "events", "format": "jsonl", "url": "file:///local/events.jsonl",
                   "provider": {"storage": "local"}}),
            json!({"destinationType": "csv", "destination_path": "/local/out"}),
            json!([{"name": "events", "syncMode": "full_refresh_append"}]),
        )
        .await;
    sync(&ferry, &to_csv).await;
    sync(&ferry, &to_csv).await;
    let csv = std::fs::read(output.join("_airbyte_raw_events.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"]
    );
    let data: Vec<Value> = reader
        .records()
        .map(|row| serde_json::from_str(&row.unwrap()[2]).unwrap())
        .collect();
    assert_eq!(data.len(), 4, "two syncs appended");
    assert_eq!(data[0], json!({"id": 1, "kind": "a \"quoted\" one"}));

    // CSV → PostgreSQL: typed columns.
    let database = TestDatabase::create().await;
    let name = database.name();
    let to_postgres = ferry
        .connection(
            csv_source,
            json!({"destinationType": "postgres", "host": "127.0.0.1", "port": 5432, "database": name,
                   "username": "postgres", "schema": "files"}),
            json!([{"name": "people", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    sync(&ferry, &to_postgres).await;
    let mut connection = database.connect().await;
    let alice: (String, String) =
        sqlx::query_as("SELECT age::text, score::text FROM files.people WHERE name = 'Alice'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(alice, ("34".to_owned(), "9.5".to_owned()));

    // Bad configurations: refused at once, naming the field.
    for (configuration, field) in [
        (
            json!({"sourceType": "file", "dataset_name": "x", "format": "parquet", "url": "x"}),
            "configuration.format",
        ),
        (
            json!({"sourceType": "file", "dataset_name": "x", "url": "s3://b/k", "provider": {"storage": "S3"}}),
            "configuration.provider.storage",
        ),
        (
            json!({"sourceType": "file", "format": "csv", "url": "x"}),
            "configuration.dataset_name",
        ),
    ] {
        ferry
            .default_workspace()
            .post_source("bad", configuration)
            .await
            .assert_problem(400)
            .assert_names_field(field);
    }
    ferry
        .default_workspace()
        .post_destination("bad", json!({"destinationType": "local-json"}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.destination_path");
}
