//! The first sync of an incremental-deduplicated stream loads its empty table as a full
//! refresh does (straight in, the key index built once at the end); rows the source repeats
//! a key in are reduced to each key's latest; later syncs merge.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// A new incremental-deduplicated connection of `stream` (with `extra` stream settings) into
/// `schema`, and its first sync, which must succeed.
async fn connect_and_sync(
    ferry: &FerryUp,
    source: &TestDatabase,
    destination: &TestDatabase,
    schema: &str,
    stream: serde_json::Value,
) -> (String, serde_json::Value) {
    let mut stream = stream;
    stream["syncMode"] = json!("incremental_deduped_history");
    let connection = ferry
        .default_workspace()
        .connect(
            source.source_configuration(),
            destination.destination_configuration(schema),
            json!({"configurations": {"streams": [stream]}}),
        )
        .await;
    let job = sync(ferry, &connection).await;
    (connection, job)
}

async fn sync(ferry: &FerryUp, connection: &str) -> serde_json::Value {
    ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(120))
        .await
}

#[tokio::test]
async fn a_first_load_keeps_each_keys_latest_row_and_later_syncs_merge() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    // No primary key in the source: ids 1..=100 come twice, the second time later.
    source
        .execute(
            "CREATE TABLE people (id bigint NOT NULL, updated_at bigint NOT NULL, name text);
             INSERT INTO people SELECT i, 10, 'first ' || i FROM generate_series(1, 1000) i;
             INSERT INTO people SELECT i, 20, 'second ' || i FROM generate_series(1, 100) i;",
        )
        .await;
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let (connection, job) = connect_and_sync(
        &ferry,
        &source,
        &destination,
        "loaded",
        json!({"name": "people", "cursorField": ["updated_at"], "primaryKey": [["id"]]}),
    )
    .await;
    assert_eq!(job["rowsSynced"], 1100, "{job}");
    assert_eq!(
        destination
            .count("SELECT count(*) FROM loaded.people")
            .await,
        1000
    );
    assert_eq!(
        destination
            .count("SELECT count(*) FROM loaded.people WHERE name LIKE 'second %'")
            .await,
        100
    );
    let second_five: Vec<Option<String>> = destination
        .texts("SELECT name FROM loaded.people WHERE id = 5")
        .await;
    assert_eq!(second_five, [Some("second 5".to_owned())]);
    // The key index the merge needs was built at the end of the load.
    assert_eq!(
        destination.count("SELECT count(*) FROM pg_indexes WHERE schemaname = 'loaded' AND tablename = 'people' \
             AND indexdef LIKE 'CREATE UNIQUE INDEX%'"
        )
        .await,
        1
    );

    // The next sync merges: a changed row replaces its key's, a new one is added.
    source
        .execute(
            "INSERT INTO people VALUES (5, 30, 'third 5'), (1001, 30, 'first 1001');
             INSERT INTO people VALUES (7, 5, 'older 7');",
        )
        .await;
    let job = sync(&ferry, &connection).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        destination
            .count("SELECT count(*) FROM loaded.people")
            .await,
        1001
    );
    let names: Vec<Option<String>> = destination
        .texts("SELECT name FROM loaded.people WHERE id IN (5, 7, 1001) ORDER BY id")
        .await;
    assert_eq!(
        names,
        [
            Some("third 5".to_owned()),
            Some("second 7".to_owned()),
            Some("first 1001".to_owned())
        ]
    );
}

#[tokio::test]
async fn an_emptied_table_loads_afresh_with_its_one_index() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, updated_at bigint NOT NULL, label text);
             INSERT INTO items SELECT i, 1, 'item ' || i FROM generate_series(1, 500) i;",
        )
        .await;
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let items = json!({"name": "items", "cursorField": ["updated_at"]});
    let (_, job) = connect_and_sync(&ferry, &source, &destination, "kept", items.clone()).await;
    assert_eq!(job["rowsSynced"], 500, "{job}");
    // Someone empties the table, keeping its index, and a new connection (no state) loads
    // it again: afresh, with one row per key and the one unique index.
    destination.execute("TRUNCATE kept.items").await;
    source
        .execute("UPDATE items SET updated_at = 2, label = 'new ' || id WHERE id <= 10")
        .await;
    let (_, job) = connect_and_sync(&ferry, &source, &destination, "kept", items).await;
    assert_eq!(job["rowsSynced"], 500, "{job}");
    assert_eq!(
        destination.count("SELECT count(*) FROM kept.items").await,
        500
    );
    assert_eq!(
        destination
            .count("SELECT count(*) FROM kept.items WHERE label LIKE 'new %'")
            .await,
        10
    );
    assert_eq!(
        destination
            .count(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'kept' AND tablename = 'items'"
            )
            .await,
        1
    );
}
