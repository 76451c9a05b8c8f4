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

#[tokio::test]
async fn an_empty_table_of_other_column_types_takes_the_streams_and_its_rows() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    // Every column of a type whose binary form is its destination column's: the first load
    // comes as COPY binary, which only columns of those types read.
    source
        .execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL,
                                 amount numeric, label text);
             INSERT INTO items SELECT i, timestamptz '2024-01-01' + i * interval '1 minute',
                                      i / 4.0, 'item ' || i FROM generate_series(1, 3000) i;",
        )
        .await;
    // An empty table made earlier, for a catalog that typed these columns otherwise.
    destination
        .execute(
            "CREATE SCHEMA typed;
             CREATE TABLE typed.items (\"_airbyte_raw_id\" varchar(36) NOT NULL,
               \"_airbyte_extracted_at\" timestamptz NOT NULL, \"_airbyte_meta\" jsonb NOT NULL,
               \"_airbyte_generation_id\" bigint, id text, updated_at text, amount bigint, label jsonb);",
        )
        .await;
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let items = json!({"name": "items", "cursorField": ["updated_at"]});
    let (connection, job) = connect_and_sync(&ferry, &source, &destination, "typed", items).await;
    assert_eq!(job["rowsSynced"], 3000, "{job}");
    let fingerprint = "SELECT count(*)::text || ' ' || sum(amount)::text || ' ' || \
                       max(updated_at)::text || ' ' || min(label::text) FROM ";
    assert_eq!(
        destination
            .texts(&format!("{fingerprint}typed.items"))
            .await,
        source.texts(&format!("{fingerprint}items")).await
    );
    let types = destination
        .texts(
            "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) \
             FROM pg_attribute WHERE attrelid = 'typed.items'::regclass AND attname IN ('id', 'updated_at', 'amount', 'label')",
        )
        .await;
    assert_eq!(
        types,
        [Some(
            "bigint,timestamp with time zone,numeric,character varying".to_owned()
        )]
    );
    // The cursor took over at the maximum: the next sync reads only what is later.
    source
        .execute("UPDATE items SET updated_at = now(), label = 'changed' WHERE id = 7")
        .await;
    let job = sync(&ferry, &connection).await;
    assert_eq!(job["rowsSynced"], 1, "{job}");
    assert_eq!(
        destination
            .count("SELECT count(*) FROM typed.items WHERE label = 'changed'")
            .await,
        1
    );
}
