//! A full refresh of a large table read by several connections at once (ranges of its pages,
//! one snapshot) and, into PostgreSQL, written by as many: every row exactly once, as of one
//! moment, while another session keeps rewriting rows into other pages.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// Rows of each table: about 1,200 pages of ~470-byte rows, past the size that is split.
const ROWS: i64 = 20_000;

/// Rows the concurrent session rewrites, all in one transaction each time.
const REWRITTEN: i64 = 1_000;

const TABLES: &str = "
CREATE TABLE wide (id bigint PRIMARY KEY, version bigint NOT NULL, amount numeric(12,2), pad text);
INSERT INTO wide SELECT i, 0, i / 100.0, repeat(md5(i::text), 14) FROM generate_series(1, {rows}) i;
-- int4 has no binary form of its destination column (bigint): its rows go as COPY text.
CREATE TABLE narrow_typed (id int4 PRIMARY KEY, version bigint NOT NULL, pad text);
INSERT INTO narrow_typed SELECT i, 0, repeat(md5(i::text), 14) FROM generate_series(1, {rows}) i;
CREATE TABLE appended (id bigint PRIMARY KEY);
INSERT INTO appended SELECT generate_series(1, 100);
ANALYZE wide; ANALYZE narrow_typed;";

fn source_configuration(source: &TestDatabase, readers: u16) -> Value {
    let mut configuration = source.source_configuration();
    configuration["parallel_readers"] = json!(readers);
    configuration["parallel_tables"] = json!(2);
    configuration
}

/// A new connection from `source` (so configured) into `schema` of `destination`, and its
/// first sync, which must succeed; the job.
async fn connect_and_sync(
    ferry: &FerryUp,
    source: Value,
    destination: &TestDatabase,
    schema: &str,
    streams: Value,
) -> Value {
    let connection = ferry
        .default_workspace()
        .connect(
            source,
            destination.destination_configuration(schema),
            streams,
        )
        .await;
    ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(120))
        .await
}

/// Checks `schema.table` holds every source row once, each as of one moment.
async fn assert_copied(source: &TestDatabase, destination: &TestDatabase, table: &str) {
    let fingerprint = "SELECT count(*)::text || ' ' || count(DISTINCT id)::text || ' ' || \
                       md5(string_agg(id::text || ':' || pad, ',' ORDER BY id)) FROM ";
    let expected = source
        .texts(&format!(
            "{fingerprint}{}",
            table.rsplit('.').next().unwrap()
        ))
        .await;
    let got = destination.texts(&format!("{fingerprint}{table}")).await;
    // The source moved on since: only the rows nobody rewrote can be compared as they are.
    let unchanged =
        format!("SELECT count(*)::text FROM {table} WHERE id > {REWRITTEN} AND version = 0");
    assert_eq!(
        destination.texts(&unchanged).await,
        [Some((ROWS - REWRITTEN).to_string())],
        "{table}"
    );
    assert_eq!(
        got[0]
            .as_ref()
            .unwrap()
            .split(' ')
            .take(2)
            .collect::<Vec<_>>(),
        [ROWS.to_string(), ROWS.to_string()]
    );
    // The rewritten rows came as of one transaction: one version among them.
    let versions = destination
        .count(&format!(
            "SELECT count(DISTINCT version) FROM {table} WHERE id <= {REWRITTEN}"
        ))
        .await;
    assert_eq!(
        versions, 1,
        "{table}: rows read under more than one snapshot"
    );
    let raw_ids = destination
        .count(&format!(
            "SELECT count(DISTINCT _airbyte_raw_id) FROM {table}"
        ))
        .await;
    assert_eq!(raw_ids, ROWS, "{table}");
    // The pads never change: the whole table's fingerprint is the source's.
    assert_eq!(got, expected, "{table}");
}

#[tokio::test]
async fn a_large_table_read_by_several_connections_arrives_whole_as_of_one_moment() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(&TABLES.replace("{rows}", &ROWS.to_string()))
        .await;
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let streams = json!({"configurations": {"streams": [
        {"name": "wide", "syncMode": "full_refresh_overwrite"},
        {"name": "narrow_typed", "syncMode": "full_refresh_overwrite"},
        {"name": "appended", "syncMode": "incremental_append", "cursorField": ["id"]},
    ]}});

    // Another session rewrites the first rows over and over, all in one transaction each
    // time: their new versions land in other pages, ranges another reader may read first.
    let rewriting = Arc::new(AtomicBool::new(true));
    let rewriter = {
        let rewriting = rewriting.clone();
        let mut connection = source.connect().await;
        tokio::spawn(async move {
            let mut rounds = 0u64;
            while rewriting.load(Ordering::Relaxed) {
                for table in ["wide", "narrow_typed"] {
                    sqlx::query(&format!(
                        "UPDATE {table} SET version = version + 1 WHERE id <= {REWRITTEN}"
                    ))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rounds
        })
    };

    for readers in [4u16, 2] {
        let schema = format!("readers_{readers}");
        let configuration = source_configuration(&source, readers);
        let job = connect_and_sync(
            &ferry,
            configuration,
            &destination,
            &schema,
            streams.clone(),
        )
        .await;
        assert_eq!(job["rowsSynced"], 2 * ROWS + 100, "{job}");
        let log = ferry.admin.first_attempt_log(&job).await;
        // Both large tables at once, then the incremental stream on its own.
        assert!(log.contains("reading 2 whole tables, 2 at a time"), "{log}");
        assert_eq!(
            destination
                .count(&format!("SELECT count(DISTINCT id) FROM {schema}.appended"))
                .await,
            100
        );
        for table in ["wide", "narrow_typed"] {
            assert!(
                log.contains(&format!(
                    "reading public.{table} with {readers} connections under one snapshot"
                )),
                "{log}"
            );
            assert_copied(&source, &destination, &format!("{schema}.{table}")).await;
        }
    }
    rewriting.store(false, Ordering::Relaxed);
    let rounds = rewriter.await.unwrap();
    assert!(
        rounds > 2,
        "the rows were rewritten during the syncs ({rounds} rounds)"
    );

    // One reader: one query, no split.
    let configuration = source_configuration(&source, 1);
    let job = connect_and_sync(&ferry, configuration, &destination, "readers_1", streams).await;
    assert_eq!(job["rowsSynced"], 2 * ROWS + 100, "{job}");
    assert!(
        !ferry
            .admin
            .first_attempt_log(&job)
            .await
            .contains("under one snapshot")
    );

    // A count of readers out of bounds is refused, naming the field.
    for (field, readers) in [
        ("parallel_readers", json!(0)),
        ("parallel_readers", json!(17)),
        ("parallel_readers", json!("many")),
        ("parallel_tables", json!(0)),
    ] {
        let mut configuration = source.source_configuration();
        configuration[field] = readers.clone();
        let reply = ferry
            .admin
            .post(
                "/api/public/v1/sources",
                json!({"name": "bad", "workspaceId": ferry.workspace, "configuration": configuration}),
            )
            .await;
        assert_eq!(reply.status, 400, "{readers}: {}", reply.body);
        assert!(
            reply.body.to_string().contains(field),
            "{readers}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_role_with_few_connections_to_spare_is_read_with_fewer_and_not_failed() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(&TABLES.replace("{rows}", &ROWS.to_string()))
        .await;
    // Two connections at most: the tables' two readers take them, and no table can have
    // more readers of its own.
    let role = format!("limited_{}", source.name());
    source
        .execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 2;
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        ))
        .await;
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let mut configuration = source_configuration(&source, 4);
    configuration["username"] = json!(role);
    let streams = json!({"configurations": {"streams": [
        {"name": "wide", "syncMode": "full_refresh_overwrite"},
        {"name": "narrow_typed", "syncMode": "full_refresh_overwrite"},
    ]}});
    let job = connect_and_sync(&ferry, configuration, &destination, "limited", streams).await;
    assert_eq!(job["rowsSynced"], 2 * ROWS, "{job}");
    for table in ["limited.wide", "limited.narrow_typed"] {
        assert_eq!(
            destination
                .count(&format!("SELECT count(DISTINCT id) FROM {table}"))
                .await,
            ROWS,
            "{table}"
        );
    }
    let log = ferry.admin.first_attempt_log(&job).await;
    assert!(!log.contains("with 4 connections"), "{log}");
    source
        .execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await;
}
