//! The destination against the PostgreSQL every dev and CI machine runs on 127.0.0.1:5432:
//! what a hostile state or a second attempt still running could make of an overwrite's
//! ranges, and the deduplicating merge on a real table.

#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredCatalog, ConfiguredStream, DestinationNaming};
use ferry_protocol::{
    AirbyteMessage, CopyFormat, CopyRows, PipeMessage, RangeMark, StreamDescriptor, TraceMessage,
};
use serde_json::json;
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;

use super::super::{connect, quote_identifier, run_sql};
use super::PostgresDestination;
use super::table::StreamTable;
use crate::ConnectorError;
use crate::driver::{WriterFactory, drive};

/// A destination into a schema of its own, recording ranges for connection `c`, job 7.
async fn destination() -> (PostgresDestination, String) {
    let schema = format!("ferry_ranges_{}", uuid::Uuid::new_v4().simple());
    (destination_in(&schema), schema)
}

fn destination_in(schema: &str) -> PostgresDestination {
    let configuration = json!({
        "host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres",
        "password": "unused-with-trust-auth", "ssl_mode": {"mode": "disable"}, "schema": schema,
    });
    let Ok(mut destination) = PostgresDestination::new(&configuration) else {
        panic!("configuration refused");
    };
    WriterFactory::record_checkpoints_as(&mut destination, "c", 7);
    destination
}

fn catalog() -> ConfiguredCatalog {
    serde_json::from_value(json!({"streams": [{
        "stream": {"name": "t", "json_schema": {"properties": {"id": {"type": "integer"}}}},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
    }]}))
    .unwrap()
}

fn rows(lane: u16, data: &[u8], mark: Option<RangeMark>) -> PipeMessage {
    stream_rows("t", lane, data, mark)
}

fn stream_rows(stream: &str, lane: u16, data: &[u8], mark: Option<RangeMark>) -> PipeMessage {
    PipeMessage::CopyRows(CopyRows {
        stream: StreamDescriptor::new(stream),
        columns: Arc::from(vec!["id".to_owned()]),
        format: CopyFormat::Text,
        count: data.iter().filter(|byte| **byte == b'\n').count() as u64,
        data: data.to_vec(),
        lane,
        mark,
    })
}

/// Opens a write of `catalog()` and drives `messages` through it.
async fn write(
    destination: PostgresDestination,
    messages: Vec<PipeMessage>,
) -> Result<(), ConnectorError> {
    write_catalog(destination, catalog(), messages).await
}

async fn write_catalog(
    destination: PostgresDestination,
    catalog: ConfiguredCatalog,
    messages: Vec<PipeMessage>,
) -> Result<(), ConnectorError> {
    let writer = destination
        .open(&catalog, &DestinationNaming::default())
        .await?;
    let (sender, input) = mpsc::channel(16);
    let (acks, _received) = mpsc::channel(16);
    for message in messages {
        sender.send(message).await.unwrap();
    }
    drop(sender);
    drive(writer, &catalog, input, acks).await
}

/// The source's word that `stream` was read to its end.
fn complete(stream: &str) -> PipeMessage {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "stream_status".to_owned(),
        json!({"stream_descriptor": {"name": stream}, "status": "COMPLETE"}),
    );
    PipeMessage::Message(AirbyteMessage::Trace {
        trace: TraceMessage {
            trace_type: "STREAM_STATUS".to_owned(),
            emitted_at: 0.0,
            error: None,
            extra,
        },
    })
}

async fn database() -> PgConnection {
    let (destination, _) = destination().await;
    connect(&destination.options).await.unwrap()
}

async fn drop_schema(connection: &mut PgConnection, schema: &str) {
    run_sql(connection, &format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

async fn count(connection: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(connection).await.unwrap()
}

#[tokio::test]
async fn a_read_that_skips_ranges_this_table_does_not_hold_is_refused() {
    let (destination, schema) = destination().await;
    let split: Arc<str> = Arc::from("16384:128:4");
    // A state not of this destination says ranges 0 and 2 are in: they are not.
    let begins = RangeMark::Begins {
        split: split.clone(),
        skipped: vec![0, 2],
    };
    let refused = write(destination, vec![rows(0, b"", Some(begins))])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("past range 0") && refused.contains("does not hold"),
        "{refused}"
    );
    drop_schema(&mut database().await, &schema).await;
}

#[tokio::test]
async fn a_range_two_attempts_load_is_in_once() {
    let (destination, schema) = destination().await;
    let split: Arc<str> = Arc::from("16384:128:4");
    let ends = |index| {
        Some(RangeMark::Ends {
            split: split.clone(),
            index,
        })
    };
    let begins = RangeMark::Begins {
        split: split.clone(),
        skipped: Vec::new(),
    };
    // Lanes 0 and 1 both load range 1 (as an attempt whose plane was thought dead and one
    // that took over would); range 2 once. The write ends before the stream completes: the
    // fresh table stays, with what its ranges committed.
    write(
        destination,
        vec![
            rows(0, b"", Some(begins)),
            rows(0, b"1\n2\n", ends(1)),
            rows(1, b"1\n2\n", ends(1)),
            rows(1, b"3\n", ends(2)),
            // Rows after a lane's last mark: a range whose end never came.
            rows(1, b"4\n", None),
        ],
    )
    .await
    .unwrap();
    let mut connection = database().await;
    let fresh = format!("\"{schema}\".\"t_ferry_tmp\"");
    assert_eq!(
        count(&mut connection, &format!("SELECT count(*) FROM {fresh}")).await,
        3
    );
    let ranges = format!("SELECT count(*) FROM \"{schema}\".\"_ferry_ranges\" WHERE job_id = 7");
    assert_eq!(count(&mut connection, &ranges).await, 2);
    drop_schema(&mut connection, &schema).await;
}

/// The MERGE and the upsert (servers before PostgreSQL 15) leave the same rows: the latest
/// of each staged key, a final row newer than its staged one kept, new keys added.
#[tokio::test]
async fn merge_and_upsert_keep_the_same_rows() {
    let mut contents = Vec::new();
    for server_merges in [true, false] {
        let mut connection = database().await;
        let schema = format!("ferry_merge_{}", uuid::Uuid::new_v4().simple());
        let configured: ConfiguredStream = serde_json::from_value(json!({
            "stream": {"name": "t", "json_schema": {"properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "updated": {"type": "integer"}}}},
            "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
            "cursor_field": ["updated"], "primary_key": [["id"]],
        }))
        .unwrap();
        let mut table =
            StreamTable::new(&configured, &DestinationNaming::default(), &schema, 0).unwrap();
        // A first sync makes the table; the next finds its rows, stages and merges.
        table.prepare(&mut connection).await.unwrap();
        let final_table = table.final_table();
        let columns =
            "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_meta\", id, name, updated";
        run_sql(
            &mut connection,
            &format!(
                "INSERT INTO {final_table} ({columns}) \
                 SELECT 'old' || i, now(), '{{}}', i, 'old', 10 FROM generate_series(1, 5) i"
            ),
        )
        .await
        .unwrap();
        table.prepare(&mut connection).await.unwrap();
        assert!(table.unique_key && !table.first_load);
        table.server_merges = server_merges;
        let stage = quote_identifier(&table.stage);
        run_sql(
            &mut connection,
            &format!(
                "INSERT INTO {stage} ({columns}) VALUES
                   ('newer', now(), '{{}}', 2, 'newer', 20), ('older', now(), '{{}}', 3, 'older', 5),
                   ('equal', now(), '{{}}', 4, 'equal', 10), ('added', now(), '{{}}', 6, 'added', 1),
                   ('first', now() - interval '1 s', '{{}}', 7, 'first', 3), ('latest', now(), '{{}}', 7, 'latest', 4);"
            ),
        )
        .await
        .unwrap();
        table.staged = true;
        run_sql(&mut connection, "BEGIN").await.unwrap();
        table.merge(&mut connection).await.unwrap();
        run_sql(&mut connection, "COMMIT").await.unwrap();
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT id, name, updated FROM {final_table} ORDER BY id"
        ))
        .fetch_all(&mut connection)
        .await
        .unwrap();
        contents.push(rows);
        drop_schema(&mut connection, &schema).await;
    }
    let expected: Vec<(i64, String, i64)> = [
        (1, "old", 10),
        (2, "newer", 20),
        (3, "old", 10),
        (4, "equal", 10),
        (5, "old", 10),
        (6, "added", 1),
        (7, "latest", 4),
    ]
    .into_iter()
    .map(|(id, name, updated)| (id, name.to_owned(), updated))
    .collect();
    assert_eq!(contents[0], expected, "MERGE");
    assert_eq!(contents[1], expected, "upsert");
}

/// A dashboard's query open on the tables of a deduplicated and an appended stream: the
/// next sync of each goes on beside it (no ALTER TABLE of a table that has its columns, no
/// defaults set on the appended table), instead of waiting for it to end and making every
/// later query of the tables wait behind.
#[tokio::test]
async fn syncs_go_on_while_their_tables_are_read() {
    // A column whose name PostgreSQL cuts to 63 bytes is found in place too.
    let long = format!("{}é", "c".repeat(62));
    let catalog = |sync_id: i64| -> ConfiguredCatalog {
        serde_json::from_value(json!({"streams": [
            {"stream": {"name": "d", "json_schema": {"properties": {"id": {"type": "integer"}, long.clone(): {"type": "string"}}}},
             "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
             "cursor_field": ["id"], "primary_key": [["id"]], "sync_id": sync_id, "generation_id": 3},
            {"stream": {"name": "a", "json_schema": {"properties": {"id": {"type": "integer"}}}},
             "sync_mode": "incremental", "destination_sync_mode": "append",
             "cursor_field": ["id"], "sync_id": sync_id, "generation_id": 3},
        ]}))
        .unwrap()
    };
    let (destination, schema) = destination().await;
    let first = vec![
        stream_rows("d", 0, b"1\n2\n", None),
        stream_rows("a", 0, b"1\n", None),
    ];
    write_catalog(destination, catalog(1), first).await.unwrap();
    let mut reader = database().await;
    let table = |name: &str| format!("\"{schema}\".\"{name}\"");
    run_sql(
        &mut reader,
        &format!(
            "BEGIN; SELECT count(*) FROM {}; SELECT count(*) FROM {}",
            table("d"),
            table("a")
        ),
    )
    .await
    .unwrap();
    let next = vec![
        stream_rows("d", 0, b"2\n3\n", None),
        stream_rows("a", 0, b"2\n", None),
    ];
    let synced = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        write_catalog(destination_in(&schema), catalog(2), next),
    )
    .await;
    assert!(
        matches!(synced, Ok(Ok(()))),
        "the sync waited for the reader: {synced:?}"
    );
    run_sql(&mut reader, "COMMIT").await.unwrap();
    let deduplicated = format!(
        "SELECT count(DISTINCT id) * 10 + count(*) FROM {}",
        table("d")
    );
    assert_eq!(count(&mut reader, &deduplicated).await, 33);
    // The appended rows carry their sync's Airbyte columns.
    let appended: Vec<(i64, String, i64, bool)> = sqlx::query_as(&format!(
        "SELECT id, \"_airbyte_meta\"::text, \"_airbyte_generation_id\", \
         \"_airbyte_extracted_at\" > now() - interval '1 hour' FROM {} ORDER BY id",
        table("a")
    ))
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert_eq!(
        appended,
        vec![
            (1, r#"{"changes": [], "sync_id": 1}"#.to_owned(), 3, true),
            (2, r#"{"changes": [], "sync_id": 2}"#.to_owned(), 3, true),
        ]
    );
    drop_schema(&mut reader, &schema).await;
}

/// An overwrite read whole loads its fresh table frozen: the first query after the sync
/// finds every row visible without checking (and rewriting) a page; a read in ranges, whose
/// lanes share the table, loads it as before.
#[tokio::test]
async fn a_whole_overwrite_is_loaded_frozen() {
    let dirtied_by_first_scan = |schema: &str| {
        let table = format!("\"{schema}\".\"t\"");
        async move {
            let mut connection = database().await;
            // Written out first: a page the load left dirty in memory takes its hint bits
            // without counting as dirtied.
            run_sql(&mut connection, "CHECKPOINT").await.unwrap();
            let plan: serde_json::Value = sqlx::query_scalar(&format!(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM {table}"
            ))
            .fetch_one(&mut connection)
            .await
            .unwrap();
            plan[0]["Plan"]["Shared Dirtied Blocks"].as_i64().unwrap()
        }
    };
    let rows_of = |from: u32, to: u32| {
        (from..to)
            .map(|id| format!("{id}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let (whole_read, whole) = destination().await;
    write(
        whole_read,
        vec![rows(0, &rows_of(0, 5000), None), complete("t")],
    )
    .await
    .unwrap();
    assert_eq!(dirtied_by_first_scan(&whole).await, 0);

    let (ranged_read, ranged) = destination().await;
    let split: Arc<str> = Arc::from("16384:128:2");
    let begins = RangeMark::Begins {
        split: split.clone(),
        skipped: Vec::new(),
    };
    let ends = |index| {
        Some(RangeMark::Ends {
            split: split.clone(),
            index,
        })
    };
    write(
        ranged_read,
        vec![
            rows(0, b"", Some(begins)),
            rows(0, &rows_of(0, 2500), ends(0)),
            rows(1, &rows_of(2500, 5000), ends(1)),
            complete("t"),
        ],
    )
    .await
    .unwrap();
    let mut connection = database().await;
    let loaded = format!("SELECT count(*) FROM \"{ranged}\".\"t\"");
    assert_eq!(count(&mut connection, &loaded).await, 5000);
    drop_schema(&mut connection, &whole).await;
    drop_schema(&mut connection, &ranged).await;
}

/// A long query open on an overwritten table: the swap waits for it to end, and queries
/// that come meanwhile are not stalled behind the swap (each would be, for as long as the
/// long one runs, were the swap's wait one long wait in the table's lock queue).
#[tokio::test]
async fn a_swap_waits_for_a_reader_without_stalling_other_readers() {
    let (first_read, schema) = destination().await;
    write(first_read, vec![rows(0, b"1\n", None), complete("t")])
        .await
        .unwrap();
    let table = format!("\"{schema}\".\"t\"");
    let mut long_query = database().await;
    run_sql(
        &mut long_query,
        &format!("BEGIN; SELECT count(*) FROM {table}"),
    )
    .await
    .unwrap();
    let swap = tokio::spawn(write(
        destination_in(&schema),
        vec![rows(0, b"1\n2\n", None), complete("t")],
    ));
    // Queries of the table while the swap waits: none waits long for a lock.
    let mut other = database().await;
    run_sql(&mut other, "SET lock_timeout = '2s'")
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(
            count(&mut other, &format!("SELECT count(*) FROM {table}")).await,
            1
        );
    }
    assert!(!swap.is_finished(), "the swap did not wait for the reader");
    run_sql(&mut long_query, "COMMIT").await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), swap)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        count(&mut other, &format!("SELECT count(*) FROM {table}")).await,
        2
    );
    drop_schema(&mut other, &schema).await;
}

/// The connection the checkpoints were read on, which the write takes over, closed by the
/// server meanwhile (an idle timeout, a restart): the write opens another.
#[tokio::test]
async fn a_write_replaces_the_kept_connection_the_server_closed() {
    let (destination, schema) = destination().await;
    let catalog = catalog();
    WriterFactory::committed_states(&destination, &catalog, &DestinationNaming::default())
        .await
        .unwrap();
    let mut kept = destination.kept.lock().unwrap().take().unwrap();
    let mut other = database().await;
    super::super::terminate_from_the_server(&mut kept, &mut other).await;
    *destination.kept.lock().unwrap() = Some(kept);

    write(destination, vec![rows(0, b"1\n2\n", None), complete("t")])
        .await
        .unwrap();
    let loaded = count(&mut other, &format!("SELECT count(*) FROM \"{schema}\".t")).await;
    assert_eq!(loaded, 2);
    drop_schema(&mut other, &schema).await;
}
