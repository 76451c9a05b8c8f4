//! An overwrite's ranges against the PostgreSQL every dev and CI machine runs on
//! 127.0.0.1:5432: what a hostile state or a second attempt still running could make of
//! them.

#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{CopyFormat, CopyRows, PipeMessage, RangeMark, StreamDescriptor};
use serde_json::json;
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;

use super::super::{connect, run_sql};
use super::PostgresDestination;
use crate::ConnectorError;
use crate::driver::{WriterFactory, drive};

/// A destination into a schema of its own, recording ranges for connection `c`, job 7.
async fn destination() -> (PostgresDestination, String) {
    let schema = format!("ferry_ranges_{}", uuid::Uuid::new_v4().simple());
    let configuration = json!({
        "host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres",
        "password": "unused-with-trust-auth", "ssl_mode": {"mode": "disable"}, "schema": schema,
    });
    let Ok(mut destination) = PostgresDestination::new(&configuration) else {
        panic!("configuration refused");
    };
    WriterFactory::record_checkpoints_as(&mut destination, "c", 7);
    (destination, schema)
}

fn catalog() -> ConfiguredCatalog {
    serde_json::from_value(json!({"streams": [{
        "stream": {"name": "t", "json_schema": {"properties": {"id": {"type": "integer"}}}},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
    }]}))
    .unwrap()
}

fn rows(lane: u16, data: &[u8], mark: Option<RangeMark>) -> PipeMessage {
    PipeMessage::CopyRows(CopyRows {
        stream: StreamDescriptor::new("t"),
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
    let catalog = catalog();
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

async fn database() -> PgConnection {
    let (destination, _) = destination().await;
    connect(&destination.options).await.unwrap()
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
    let mut connection = database().await;
    run_sql(
        &mut connection,
        &format!("DROP SCHEMA \"{schema}\" CASCADE"),
    )
    .await
    .unwrap();
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
    run_sql(
        &mut connection,
        &format!("DROP SCHEMA \"{schema}\" CASCADE"),
    )
    .await
    .unwrap();
}
