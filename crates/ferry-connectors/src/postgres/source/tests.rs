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
fn only_a_full_refresh_into_a_new_table_of_matching_types_reads_binary() {
    let matching = ["int8", "numeric", "text", "timestamptz", "jsonb", "bpchar"];
    assert!(reads_binary(&matching, "full_refresh", "overwrite"));
    assert!(!reads_binary(&matching, "full_refresh", "append"));
    assert!(!reads_binary(&matching, "incremental", "append_dedup"));
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
