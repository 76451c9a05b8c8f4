#![allow(clippy::unwrap_used)]
use ferry_protocol::catalog::ConfiguredStream;
use serde_json::{Value, json};

use super::super::schema::json_schema_of;
use super::read_plan::ReadPlan;
use super::{Column, Table};

fn table(types: &[&str]) -> Table {
    Table {
        schema: "public".to_owned(),
        name: "t".to_owned(),
        columns: types
            .iter()
            .enumerate()
            .map(|(index, type_name)| Column {
                name: format!("c{index}"),
                type_name: (*type_name).to_owned(),
                sql_type: (*type_name).to_owned(),
                element: None,
                not_null: true,
            })
            .collect(),
        primary_key: Vec::new(),
    }
}

/// The configured stream, with each column's schema as discover describes it.
fn configured(table: &Table, sync_mode: &str, destination_sync_mode: &str) -> ConfiguredStream {
    let properties: serde_json::Map<String, Value> = table
        .columns
        .iter()
        .map(|column| (column.name.clone(), json_schema_of(&column.type_name, None)))
        .collect();
    serde_json::from_value(json!({
        "stream": {"name": "t", "json_schema": {"type": "object", "properties": properties}},
        "sync_mode": sync_mode, "cursor_field": ["c0"],
        "destination_sync_mode": destination_sync_mode,
    }))
    .unwrap()
}

fn reads_binary(types: &[&str], sync_mode: &str, destination_sync_mode: &str) -> bool {
    let table = table(types);
    let configured = configured(&table, sync_mode, destination_sync_mode);
    let plan = ReadPlan::new(&table, &configured, &[]).unwrap();
    let query = plan.query(true);
    assert_eq!(
        query.ends_with("(FORMAT binary)"),
        plan.binary_types.is_some()
    );
    assert!(!plan.query(false).contains("binary"));
    plan.binary_types.is_some()
}

#[test]
fn only_rows_bound_for_a_table_of_their_types_read_binary() {
    let matching = ["int8", "numeric", "text", "timestamptz", "jsonb", "bpchar"];
    assert!(reads_binary(&matching, "full_refresh", "overwrite"));
    assert!(!reads_binary(&matching, "full_refresh", "append"));
    // A deduplicated stream's first read (no state yet) goes in page order, binary; an
    // append's may meet a table of other types.
    assert!(reads_binary(&matching, "incremental", "append_dedup"));
    assert!(!reads_binary(&matching, "incremental", "append"));
    assert!(!reads_binary(
        &["int8", "int4"],
        "full_refresh",
        "overwrite"
    ));
    assert!(!reads_binary(
        &["int8", "json"],
        "full_refresh",
        "overwrite"
    ));

    // A catalog that types a column otherwise than discover did gets text.
    let table = table(&["int8", "text"]);
    let mut configured = configured(&table, "full_refresh", "overwrite");
    configured.stream.json_schema["properties"]["c1"] = json!({"type": "integer"});
    let plan = ReadPlan::new(&table, &configured, &[]).unwrap();
    assert!(plan.binary_types.is_none());
}

#[test]
fn a_cursor_without_an_order_is_refused() {
    let mut table = table(&["int8", "jsonb"]);
    table.columns[1].not_null = false;
    let mut stream = configured(&table, "incremental", "append");
    stream.cursor_field = vec!["c1".to_owned()];
    let error = ReadPlan::new(&table, &stream, &[]).err().unwrap();
    assert!(matches!(error, crate::ConnectorError::Config(_)), "{error}");
    assert!(
        error.to_string().contains("'c1' is of type jsonb"),
        "{error}"
    );
}

#[test]
fn a_resumed_read_takes_the_committed_value_again_only_when_rows_of_it_may_be_missing() {
    let table = table(&["int8", "text"]);
    let stream = configured(&table, "incremental", "append");
    let state = |count: Option<u64>| {
        let mut state = json!({"cursor_field": ["c0"], "cursor": "41"});
        if let Some(count) = count {
            state["cursor_record_count"] = json!(count);
        }
        vec![crate::connector::ResumeState {
            stream: ferry_protocol::StreamDescriptor::new("t"),
            state,
        }]
    };
    let plan = ReadPlan::new(&table, &stream, &state(Some(2))).unwrap();
    let resume = plan.resume.clone().unwrap();
    assert_eq!((resume.value.as_str(), resume.count), ("41", Some(2)));
    // Until the table is counted, the read goes past the value, as before.
    assert!(
        plan.query(true).contains("\"c0\" > '41'::int8"),
        "{}",
        plan.query(true)
    );
    let mut inclusive = plan;
    if let Some(resume) = &mut inclusive.resume {
        resume.inclusive = true;
    }
    assert!(inclusive.query(true).contains("\"c0\" >= '41'::int8"));
    assert!(inclusive.query(false).contains("\"c0\" >= '41'::int8"));
    // A state for another cursor column is not resumed from.
    let mut other = state(Some(2));
    other[0].state["cursor_field"] = json!(["c1"]);
    assert!(
        ReadPlan::new(&table, &stream, &other)
            .unwrap()
            .resume
            .is_none()
    );
}

#[test]
fn a_first_read_goes_in_page_order_and_resumes_at_its_page() {
    use super::read_plan::{InitialLoad, PageRange};
    let table = table(&["int8", "text"]);
    let stream = configured(&table, "incremental", "append");
    let at = |state: serde_json::Value| {
        ReadPlan::new(
            &table,
            &stream,
            &[crate::connector::ResumeState {
                stream: ferry_protocol::StreamDescriptor::new("t"),
                state,
            }],
        )
        .unwrap()
    };
    // No state: a first read, from page 0, its target measured when it starts.
    let fresh = ReadPlan::new(&table, &stream, &[]).unwrap();
    let fresh_load = InitialLoad {
        from_page: 0,
        filenode: None,
        target: None,
    };
    assert_eq!(fresh.initial, Some(fresh_load.clone()));
    assert!(fresh.ordered_by().is_none() && fresh.resume.is_none());
    let query = fresh.initial_query(
        true,
        Some(PageRange {
            start: 2048,
            end: Some(4096),
        }),
        "41",
    );
    assert!(
        query.contains("t.ctid >= '(2048,0)'::tid AND t.ctid < '(4096,0)'::tid")
            && query.contains("t.\"c0\" IS NOT NULL AND t.\"c0\" <= '41'::int8")
            && !query.contains("ORDER BY"),
        "{query}"
    );
    // Its own ctid state (Airbyte's shape): resumed at the page, with the same target.
    let state = fresh.initial_state(4096, 16390, &("41".to_owned(), 3));
    let ferry_protocol::AirbyteMessage::State { state } = state else {
        panic!("a state")
    };
    let value = state.stream.unwrap().stream_state.unwrap();
    assert_eq!(value["state_type"], "ctid");
    assert_eq!(value["ctid"], "(4096,0)");
    assert_eq!(value["incremental_state"]["state_type"], "cursor_based");
    let resumed = at(value.clone());
    assert_eq!(
        resumed.initial,
        Some(InitialLoad {
            from_page: 4096,
            filenode: Some(16390),
            target: Some(("41".to_owned(), 3)),
        })
    );
    // A ctid state kept for another cursor column starts the first read over.
    let mut other = value;
    other["incremental_state"]["cursor_field"] = json!(["c1"]);
    assert_eq!(at(other).initial, Some(fresh_load));
    // A cursor state: the cursor has taken over, in its order.
    let cursor = at(json!({"cursor_field": ["c0"], "cursor": "41", "cursor_record_count": 1}));
    assert!(cursor.initial.is_none() && cursor.resume.is_some());
    assert!(cursor.query(true).contains("ORDER BY"));
}

/// The connection a discover kept for the read, closed by the server before the read (an
/// idle timeout, a restart): the read opens another and reads every row.
#[tokio::test]
async fn a_read_replaces_the_kept_connection_the_server_closed() {
    use crate::connector::{Source, SourceState};
    use ferry_protocol::{AirbyteMessage, PipeMessage};

    let schema = format!("ferry_kept_{}", uuid::Uuid::new_v4().simple());
    let configuration = json!({
        "host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres",
        "password": "unused-with-trust-auth", "ssl_mode": {"mode": "disable"},
        "schemas": [schema],
    });
    let Ok(source) = super::PostgresSource::new(&configuration) else {
        panic!("configuration refused");
    };
    let mut admin = super::super::connect(&source.options).await.unwrap();
    super::super::run_sql(
        &mut admin,
        &format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id bigint PRIMARY KEY); \
             INSERT INTO {schema}.t SELECT generate_series(1, 3)"
        ),
    )
    .await
    .unwrap();
    let discovered = source.discover().await.unwrap();
    assert_eq!(discovered["streams"][0]["name"], "t");
    let (mut kept, tables) = source.discovered.lock().unwrap().take().unwrap();
    super::super::terminate_from_the_server(&mut kept, &mut admin).await;
    *source.discovered.lock().unwrap() = Some((kept, tables));

    let catalog = serde_json::from_value(json!({"streams": [{
        "stream": {"name": "t", "namespace": schema,
                   "json_schema": {"properties": {"id": {"type": "integer"}}}},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
    }]}))
    .unwrap();
    let (output, mut received) = tokio::sync::mpsc::channel(64);
    let state = SourceState::default();
    let read = Box::new(source).read(&catalog, &state, output);
    let collect = async {
        let mut records = 0;
        while let Some(message) = received.recv().await {
            if let PipeMessage::Message(AirbyteMessage::Record { .. }) = message {
                records += 1;
            }
        }
        records
    };
    let (read, records) = tokio::join!(read, collect);
    read.unwrap();
    assert_eq!(records, 3);
    super::super::run_sql(&mut admin, &format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
