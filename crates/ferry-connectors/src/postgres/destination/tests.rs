#![allow(clippy::unwrap_used)]
use ferry_protocol::catalog::{ConfiguredStream, DestinationNaming};
use serde::de::DeserializeSeed;
use serde_json::json;

use super::super::schema::ColumnType;
use super::load::RawIds;
use super::record_row::{ExtractedAt, RowFields, write_value};
use super::table::{Column, StreamTable};

#[test]
fn binary_rows_go_only_into_a_fresh_table_of_their_types() {
    let table = |mode: &str| table("full_refresh", mode, json!([]), json!([]));
    let names = |list: &[&str]| {
        list.iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>()
    };
    let overwrite = table("overwrite");
    assert!(
        overwrite
            .check_binary_rows(&names(&["id", "name"]), &names(&["bigint", "varchar"]))
            .is_ok()
    );
    assert!(
        overwrite
            .check_binary_rows(&names(&["name"]), &names(&["varchar"]))
            .is_ok()
    );
    for (columns, types) in [
        (&["id", "name"][..], &["numeric", "varchar"][..]),
        (&["id", "gone"][..], &["bigint", "varchar"][..]),
        (&["id", "name"][..], &["bigint"][..]),
    ] {
        let refused = overwrite.check_binary_rows(&names(columns), &names(types));
        assert!(refused.is_err(), "{columns:?} {types:?}");
    }
    let error = table("append")
        .check_binary_rows(&names(&["id"]), &names(&["bigint"]))
        .unwrap_err();
    assert!(error.to_string().contains("not made afresh"), "{error}");
    // A deduplicated stream's rows land in a stage made afresh, or in a first load's empty
    // table given their types.
    let dedup = self::table(
        "incremental",
        "append_dedup",
        json!(["updated"]),
        json!([["id"]]),
    );
    assert!(
        dedup
            .check_binary_rows(&names(&["id", "updated"]), &names(&["bigint", "bigint"]))
            .is_ok()
    );
    assert!(
        dedup
            .check_binary_rows(&names(&["id"]), &names(&["varchar"]))
            .is_err()
    );
}

fn column(name: &str, kind: ColumnType) -> Column {
    Column {
        name: name.to_owned(),
        kind,
    }
}

fn row(columns: &[Column], data: &str) -> (String, Vec<bool>) {
    let mut values = vec![None; columns.len()];
    let mut deserializer = serde_json::Deserializer::from_str(data);
    RowFields {
        columns,
        values: &mut values,
    }
    .deserialize(&mut deserializer)
    .unwrap();
    let mut out = Vec::new();
    let mut fits = Vec::new();
    for (column, value) in columns.iter().zip(&values) {
        if !out.is_empty() {
            out.push(b'\t');
        }
        fits.push(write_value(&mut out, column.kind, *value));
    }
    (String::from_utf8(out).unwrap(), fits)
}

#[test]
fn json_values_become_copy_fields_of_their_column_type() {
    let columns = [
        column("id", ColumnType::Integer),
        column("name", ColumnType::Text),
        column("price", ColumnType::Number),
        column("ok", ColumnType::Boolean),
        column("doc", ColumnType::Json),
        column("day", ColumnType::Date),
    ];
    let (text, fits) = row(
        &columns,
        r#"{"extra": [1], "name": "a\tb \"q\" \\", "id": 7, "price": 12.50, "ok": false, "doc": {"k": "v\n"}, "day": "2024-02-29"}"#,
    );
    assert_eq!(
        text,
        "7\ta\\tb \"q\" \\\\\t12.50\tf\t{\"k\": \"v\\\\n\"}\t2024-02-29"
    );
    assert!(fits.iter().all(|fit| *fit));
    let (text, fits) = row(
        &columns,
        r#"{"id": "x", "name": null, "ok": 3, "day": "soon"}"#,
    );
    assert_eq!(text, "\\N\t\\N\t\\N\t\\N\t\\N\t\\N");
    assert_eq!(fits, [false, true, true, false, true, false]);
    let (text, _) = row(&columns, r#"{"id": 3.0, "price": "NaN"}"#);
    assert!(text.starts_with("3\t\\N\tNaN\t"), "{text}");
}

#[test]
fn raw_ids_are_distinct_v4_uuids() {
    let mut ids = RawIds::new();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    ids.write(&mut first);
    ids.write(&mut second);
    assert_ne!(first, second);
    let parsed = uuid::Uuid::parse_str(std::str::from_utf8(&first).unwrap()).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
}

#[test]
fn extraction_times_are_timestamptz_text() {
    assert_eq!(
        ExtractedAt::default().text(1_700_000_000_123),
        "2023-11-14 22:13:20.123+00"
    );
}

fn table(
    sync_mode: &str,
    destination_sync_mode: &str,
    cursor: serde_json::Value,
    primary_key: serde_json::Value,
) -> StreamTable {
    let configured: ConfiguredStream = serde_json::from_value(json!({
        "stream": {"name": "t", "json_schema": {"properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "updated": {"type": "integer"}}}},
        "sync_mode": sync_mode, "destination_sync_mode": destination_sync_mode,
        "cursor_field": cursor, "primary_key": primary_key,
    }))
    .unwrap();
    StreamTable::new(&configured, &DestinationNaming::default(), "public", 0).unwrap()
}

#[test]
fn a_merge_keeps_the_latest_row_of_each_key() {
    let mut dedup = table(
        "incremental",
        "append_dedup",
        json!(["updated"]),
        json!([["id"]]),
    );
    dedup.unique_key = true;
    let upsert = dedup.merge_statements();
    assert_eq!(upsert.len(), 4, "{upsert:#?}");
    assert_eq!(
        upsert[0],
        "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"
    );
    assert!(
        upsert[1].starts_with("INSERT INTO \"public\".\"t\" AS f"),
        "{}",
        upsert[1]
    );
    assert!(
        upsert[1].contains("SELECT DISTINCT ON (s.\"id\")"),
        "{}",
        upsert[1]
    );
    assert!(
        upsert[1].contains("ORDER BY s.\"id\", s.\"updated\" DESC NULLS LAST"),
        "{}",
        upsert[1]
    );
    assert!(
        upsert[1].contains("ON CONFLICT (\"id\") DO UPDATE SET"),
        "{}",
        upsert[1]
    );
    // A final row with a later cursor than the staged one stays.
    assert!(
        upsert[1].ends_with("WHERE f.\"updated\" IS NULL OR f.\"updated\" <= EXCLUDED.\"updated\""),
        "{}",
        upsert[1]
    );
    assert!(
        !upsert[1].contains("SET \"id\" ="),
        "the key is not updated: {}",
        upsert[1]
    );
    assert_eq!(upsert[3], "TRUNCATE \"ferry_stage_0\"");

    dedup.unique_key = false;
    let replace = dedup.merge_statements();
    assert!(
        replace
            .iter()
            .any(|sql| sql.starts_with("DELETE FROM \"public\".\"t\" f USING")),
        "{replace:#?}"
    );
    let insert = replace
        .iter()
        .find(|sql| sql.starts_with("INSERT"))
        .unwrap();
    assert!(
        insert.contains(
            "WHERE NOT EXISTS (SELECT 1 FROM \"public\".\"t\" f WHERE f.\"id\" = s.\"id\")"
        ),
        "{insert}"
    );
    assert!(replace.contains(&"SET LOCAL enable_seqscan = off".to_owned()));

    // PostgreSQL 15 and later merge instead: the same rows win.
    dedup.unique_key = true;
    dedup.server_merges = true;
    let merged = dedup.merge_statements();
    assert_eq!(merged.len(), 4, "{merged:#?}");
    let merge = &merged[1];
    for part in [
        "MERGE INTO \"public\".\"t\" AS f",
        "SELECT DISTINCT ON (s.\"id\")",
        "ORDER BY s.\"id\", s.\"updated\" DESC NULLS LAST",
        "ON f.\"id\" = s.\"id\"",
        "WHEN MATCHED AND (f.\"updated\" IS NULL OR f.\"updated\" <= s.\"updated\") THEN UPDATE SET",
        "WHEN NOT MATCHED THEN INSERT",
    ] {
        assert!(merge.contains(part), "{part}: {merge}");
    }
    assert!(
        !merge.contains("SET \"id\" ="),
        "the key is not updated: {merge}"
    );

    // Without a cursor the latest extraction wins, and nothing compares cursors.
    let mut no_cursor = table("full_refresh", "append_dedup", json!([]), json!([["id"]]));
    no_cursor.unique_key = true;
    let upsert = &no_cursor.merge_statements()[1];
    assert!(!upsert.contains("<= EXCLUDED"), "{upsert}");
    assert!(
        upsert.contains("s.\"_airbyte_extracted_at\" DESC"),
        "{upsert}"
    );
}
