//! Incremental reads by a cursor column, as Airbyte's source-postgres does them: a row that
//! arrives with the last synced cursor value is read on the next sync (the state counts the
//! rows at that value), a deduplicated stream shows no row twice, and a cursor column that
//! holds NULLs is refused with the table, the column and the count.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase, text};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn ferry() -> FerryUp {
    FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0"),
    )
    .await
}

async fn events_connection(ferry: &FerryUp, database: &TestDatabase, mode: &str) -> Value {
    ferry
        .connection(
            database.source_configuration(),
            database.destination_configuration("copy"),
            json!([{"name": "events", "syncMode": mode, "cursorField": ["updated_at"], "primaryKey": [["id"]]}]),
        )
        .await
}

#[tokio::test]
async fn a_row_at_the_last_cursor_value_arrives_on_the_next_sync() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, updated_at integer NOT NULL);
             INSERT INTO events SELECT i, i / 100 FROM generate_series(1, 5100) i",
        )
        .await;
    let deduplicated = events_connection(&ferry, &database, "incremental_deduped_history").await;
    let job = ferry
        .admin
        .sync(&deduplicated, Duration::from_secs(60))
        .await;
    assert_eq!(job["rowsSynced"], 5100, "{job}");
    let state = ferry
        .admin
        .stream_state(&text(&deduplicated), "public.events")
        .await;
    assert_eq!(state["state"]["stream_state"]["cursor"], "51", "{state}");
    // 5100 / 100 = 51: a single row carries the last value.
    assert_eq!(
        state["state"]["stream_state"]["cursor_record_count"], 1,
        "{state}"
    );

    // Another row at the last synced value, as a clock with coarse ticks would give it.
    database
        .execute("INSERT INTO events VALUES (5101, 51)")
        .await;
    let job = ferry
        .admin
        .sync(&deduplicated, Duration::from_secs(60))
        .await;
    assert_eq!(
        job["rowsSynced"], 2,
        "the rows at value 51, read again: {job}"
    );
    assert_eq!(
        database
            .count("SELECT count(*)::text FROM copy.events")
            .await,
        5101
    );
    assert_eq!(
        database
            .count("SELECT count(DISTINCT id)::text FROM copy.events")
            .await,
        5101
    );
    // Nothing new: the table holds as many rows at 51 as were read, so none is read again.
    let job = ferry
        .admin
        .sync(&deduplicated, Duration::from_secs(60))
        .await;
    assert_eq!(job["rowsSynced"], 0, "{job}");
}

#[tokio::test]
async fn appends_read_a_late_row_at_the_last_value_once_it_is_there() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, updated_at integer NOT NULL);
             INSERT INTO events VALUES (1, 1), (2, 2), (3, 2)",
        )
        .await;
    let appended = events_connection(&ferry, &database, "incremental_append").await;
    ferry.admin.sync(&appended, Duration::from_secs(60)).await;
    database.execute("INSERT INTO events VALUES (4, 2)").await;
    ferry.admin.sync(&appended, Duration::from_secs(60)).await;
    assert_eq!(
        database
            .count("SELECT count(*)::text FROM copy.events WHERE id = 4")
            .await,
        1,
        "the row that came with the last value"
    );
    let before = database
        .count("SELECT count(*)::text FROM copy.events")
        .await;
    let job = ferry.admin.sync(&appended, Duration::from_secs(60)).await;
    assert_eq!(job["rowsSynced"], 0, "{job}");
    assert_eq!(
        database
            .count("SELECT count(*)::text FROM copy.events")
            .await,
        before
    );
}

#[tokio::test]
async fn a_cursor_column_holding_nulls_fails_the_sync_naming_it() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, updated_at integer);
             INSERT INTO events SELECT i, CASE WHEN i % 50 = 0 THEN NULL ELSE i END FROM generate_series(1, 500) i",
        )
        .await;
    let connection = events_connection(&ferry, &database, "incremental_append").await;
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(60))
        .await;
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert_eq!(job["attempts"].as_array().map(Vec::len), Some(1), "{job}");
    let reason = text(&job["failureReason"]);
    for expected in ["'updated_at'", "public.events", "10 rows"] {
        assert!(reason.contains(expected), "{expected} in {reason}");
    }
    // Nothing was written: no row was skipped in silence.
    assert_eq!(
        database
            .count("SELECT count(*)::text FROM copy.events")
            .await,
        0
    );
}

/// A deduplicated stream of columns with a binary form is read in COPY binary after its first
/// load too, the cursor's text beside each row: the states name the cursor as PostgreSQL
/// writes it (a timestamp, or text with a tab and a backslash in it), count the rows at it
/// when a checkpoint falls among rows of one value, and the next sync resumes exactly there.
#[tokio::test]
async fn a_deduplicated_read_in_copy_binary_keeps_exact_cursor_states() {
    let ferry = ferry().await;
    let database = TestDatabase::create().await;
    // 1,000 rows share each cursor value: a checkpoint (every 100,000 rows) falls among them.
    database
        .execute(
            "CREATE TABLE stamped (id bigint PRIMARY KEY, note text, updated_at timestamptz NOT NULL);
             INSERT INTO stamped SELECT i, 'n' || i, timestamptz '2024-01-01' + (i / 1000) * interval '1 s'
               FROM generate_series(1, 250000) i;
             CREATE INDEX ON stamped (updated_at);
             CREATE TABLE tagged (id bigint PRIMARY KEY, tag text NOT NULL);
             INSERT INTO tagged SELECT i, E'a\\tb\\\\c' || lpad((i / 10)::text, 6, '0') FROM generate_series(1, 2000) i;",
        )
        .await;
    let connection = ferry
        .connection(
            database.source_configuration(),
            database.destination_configuration("copy"),
            json!([
                {"name": "stamped", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"], "primaryKey": [["id"]]},
                {"name": "tagged", "syncMode": "incremental_deduped_history", "cursorField": ["tag"], "primaryKey": [["id"]]},
            ]),
        )
        .await;
    let sync = || async {
        ferry
            .admin
            .sync(&connection, Duration::from_secs(120))
            .await
    };
    sync().await;
    // 150,000 rows change, in groups of 1,000 per value; tagged rows gain later tags.
    database
        .execute(
            "UPDATE stamped SET note = 'changed', updated_at = timestamptz '2025-06-01 12:00:00.5+02' + (id / 1000) * interval '1 ms'
               WHERE id <= 150000;
             UPDATE tagged SET tag = E'b\\tc\\\\d' || lpad((id / 10)::text, 6, '0') WHERE id > 1000;",
        )
        .await;
    let job = sync().await;
    assert_eq!(job["rowsSynced"], 151_000, "{job}");
    let id = text(&connection);
    for (stream, cursor) in [("stamped", "updated_at"), ("tagged", "tag")] {
        let state = ferry
            .admin
            .stream_state(&id, &format!("public.{stream}"))
            .await;
        let stream_state = &state["state"]["stream_state"];
        let expected = database
            .texts(&format!(
                "SELECT max({cursor})::text || '|' || count(*) FILTER (WHERE {cursor} = (SELECT max({cursor}) FROM {stream}))::text FROM {stream}"
            ))
            .await;
        assert_eq!(
            Some(format!(
                "{}|{}",
                stream_state["cursor"].as_str().unwrap(),
                stream_state["cursor_record_count"]
            )),
            expected[0],
            "{state}"
        );
        let checksum = format!(
            "SELECT count(*)::text || ' ' || count(DISTINCT id)::text || ' ' || md5(string_agg({cursor}::text, ',' ORDER BY id)) FROM "
        );
        assert_eq!(
            database.texts(&format!("{checksum} copy.{stream}")).await,
            database.texts(&format!("{checksum} public.{stream}")).await,
            "{stream}"
        );
    }
    // Resumed exactly at the committed values: nothing is read again.
    let job = sync().await;
    assert_eq!(job["rowsSynced"], 0, "{job}");
}
