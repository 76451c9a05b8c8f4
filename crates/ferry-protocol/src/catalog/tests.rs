#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;
use crate::StreamDescriptor;

fn discovered() -> AirbyteCatalog {
    serde_json::from_value(json!({"streams": [
        {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
         "source_defined_cursor": true, "default_cursor_field": ["updated_at"], "source_defined_primary_key": [["id"]],
         "is_resumable": true},
        {"name": "logs", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
    ]}))
    .unwrap()
}

fn descriptor(name: &str, namespace: Option<&str>) -> StreamDescriptor {
    StreamDescriptor {
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

#[test]
fn naming_places_streams_as_airbyte_does() {
    let source =
        |naming: &DestinationNaming| (naming.namespace(Some("public")), naming.name("users"));
    assert_eq!(
        source(&DestinationNaming::default()),
        (None, "users".to_owned())
    );
    let by_source = DestinationNaming {
        namespace_definition: "source".to_owned(),
        namespace_format: None,
        prefix: Some("raw_".to_owned()),
    };
    assert_eq!(
        source(&by_source),
        (Some("public".to_owned()), "raw_users".to_owned())
    );
    let custom = DestinationNaming {
        namespace_definition: "custom_format".to_owned(),
        namespace_format: Some("${SOURCE_NAMESPACE}_copy".to_owned()),
        prefix: None,
    };
    assert_eq!(source(&custom).0.as_deref(), Some("public_copy"));
    let mut catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
    catalog.streams[0].stream.namespace = Some("public".to_owned());
    let renamed = by_source.apply(&catalog);
    assert_eq!(renamed.streams[0].stream.name, "raw_users");
    assert_eq!(
        renamed.streams[0].stream.namespace.as_deref(),
        Some("public")
    );
    assert_eq!(
        DestinationNaming::default().apply(&catalog).streams[0]
            .stream
            .namespace,
        None
    );
}

#[test]
fn only_incremental_streams_resume_from_state() {
    let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
    assert!(catalog.reads_incrementally(&descriptor("users", None)));
    assert!(!catalog.reads_incrementally(&descriptor("logs", None)));
    // The discovered streams have no namespace: a state that names one still matches.
    assert!(catalog.reads_incrementally(&descriptor("users", Some("x"))));
    assert!(!catalog.reads_incrementally(&descriptor("gone", None)));
    let mut namespaced = catalog.clone();
    namespaced.streams[0].stream.namespace = Some("public".to_owned());
    assert!(namespaced.reads_incrementally(&descriptor("users", Some("public"))));
    assert!(namespaced.reads_incrementally(&descriptor("users", None)));
    assert!(!namespaced.reads_incrementally(&descriptor("users", Some("other"))));
    let full = configure(
        &discovered(),
        &json!({"streams": [{"name": "users", "syncMode": "full_refresh_append"}]}),
    )
    .unwrap();
    assert!(!full.reads_incrementally(&descriptor("users", None)));
}

#[test]
fn all_streams_with_default_modes_when_none_are_named() {
    let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
    assert_eq!(catalog.streams.len(), 2);
    assert_eq!(catalog.streams[0].sync_mode, SyncMode::Incremental);
    assert_eq!(
        catalog.streams[0].destination_sync_mode,
        DestinationSyncMode::Append
    );
    assert_eq!(catalog.streams[0].cursor_field, ["updated_at"]);
    assert_eq!(catalog.streams[1].sync_mode, SyncMode::FullRefresh);
    assert_eq!(
        catalog.streams[1].destination_sync_mode,
        DestinationSyncMode::Overwrite
    );
}

#[test]
fn the_wire_form_keeps_unknown_fields() {
    let catalog = configure(&discovered(), &json!({"streams": []})).unwrap();
    let wire = serde_json::to_value(&catalog).unwrap();
    assert_eq!(wire["streams"][0]["stream"]["is_resumable"], true);
    assert_eq!(wire["streams"][0]["sync_mode"], "incremental");
    assert_eq!(wire["streams"][0]["primary_key"], json!([["id"]]));
    let back: ConfiguredCatalog = serde_json::from_value(wire.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), wire);
}

#[test]
fn named_streams_take_their_modes_and_bad_ones_are_refused() {
    let catalog = configure(
        &discovered(),
        &json!({"streams": [{"name": "users", "syncMode": "incremental_deduped_history"}]}),
    )
    .unwrap();
    assert_eq!(catalog.streams.len(), 1);
    assert_eq!(
        catalog.streams[0].destination_sync_mode,
        DestinationSyncMode::AppendDedup
    );
    assert_eq!(catalog.streams[0].primary_key, [["id"]]);
    for bad in [
        json!({"streams": [{"name": "nope"}]}),
        json!({"streams": [{"name": "logs", "syncMode": "incremental_append"}]}),
        json!({"streams": [{"name": "users", "syncMode": "sideways"}]}),
        json!({"streams": [{"name": "users", "cursorField": "updated_at"}]}),
    ] {
        assert!(configure(&discovered(), &bad).is_err(), "{bad}");
    }
}

/// Two namespaces of `orders`, as a PostgreSQL source describes its columns.
fn typed() -> AirbyteCatalog {
    let schema = json!({"type": "object", "properties": {
        "id": {"type": "integer"},
        "amount": {"type": "number"},
        "paid": {"type": "boolean"},
        "note": {"type": "string"},
        "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "day": {"$ref": "WellKnownTypes.json#/definitions/Date"},
        "payload": {},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "geo": {"type": "object"}}},
        "either": {"type": ["null", "string", "integer"]},
    }});
    let stream = |namespace: &str| {
        json!({"name": "orders", "namespace": namespace, "json_schema": schema.clone(),
               "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": false,
               "source_defined_primary_key": [["id"]]})
    };
    serde_json::from_value(json!({"streams": [stream("public"), stream("archive")]})).unwrap()
}

fn refused(configurations: Value) -> ConfigureError {
    configure(&typed(), &configurations).unwrap_err()
}

#[test]
fn cursors_must_be_fields_whose_values_can_be_ordered() {
    let with_cursor = |cursor: Value| {
        json!({"streams": [{"name": "orders", "namespace": "public",
                            "syncMode": "incremental_append", "cursorField": cursor}]})
    };
    for cursor in [
        json!(["id"]),
        json!(["amount"]),
        json!(["paid"]),
        json!(["note"]),
        json!(["updated_at"]),
        json!(["day"]),
        json!(["address", "city"]),
    ] {
        let catalog = configure(&typed(), &with_cursor(cursor.clone()))
            .unwrap_or_else(|error| panic!("{cursor}: {error}"));
        assert_eq!(json!(catalog.streams[0].cursor_field), cursor);
    }
    let missing = refused(with_cursor(json!(["updatedd"])));
    assert_eq!(missing.field, "configurations.streams[0].cursorField");
    assert!(
        missing.message.contains("'orders'")
            && missing.message.contains("'updatedd' is not a field")
            && missing.message.contains("updated_at"),
        "{missing:?}"
    );
    for (cursor, kind) in [
        ("payload", "untyped"),
        ("tags", "of type array"),
        ("address", "of type object"),
        ("either", "of several types (string, integer)"),
    ] {
        let error = refused(with_cursor(json!([cursor])));
        assert_eq!(error.field, "configurations.streams[0].cursorField");
        assert!(
            error.message.contains(&format!("'{cursor}' is {kind}"))
                && error.message.contains("stream 'orders'"),
            "{error:?}"
        );
    }
    // A nested path is a field only where the schema describes it.
    let nested = refused(with_cursor(json!(["address", "zip"])));
    assert!(
        nested.message.contains("'address.zip' is not a field"),
        "{nested:?}"
    );
    let geo = refused(with_cursor(json!(["address", "geo"])));
    assert!(geo.message.contains("of type object"), "{geo:?}");
    // A stream whose schema lists no fields has nothing to check against.
    configure(
        &discovered(),
        &json!({"streams": [{"name": "users", "cursorField": ["anything"]}]}),
    )
    .unwrap();
}

#[test]
fn primary_keys_must_be_fields() {
    let with_key = |key: Value| {
        json!({"streams": [{"name": "orders", "syncMode": "incremental_deduped_history",
                            "cursorField": ["id"], "primaryKey": key}]})
    };
    configure(&typed(), &with_key(json!([["id"], ["address", "city"]]))).unwrap();
    let error = refused(with_key(json!([["idd"]])));
    assert_eq!(error.field, "configurations.streams[0].primaryKey");
    assert!(
        error.message.contains("'idd' is not a field") && error.message.contains("'orders'"),
        "{error:?}"
    );
    assert_eq!(
        refused(with_key(json!([[]]))).field,
        "configurations.streams[0].primaryKey"
    );
}

#[test]
fn a_stream_is_named_once_in_a_namespace_it_has() {
    let twice = refused(json!({"streams": [
        {"name": "orders", "namespace": "public"},
        {"name": "orders", "namespace": "archive"},
        {"name": "orders", "namespace": "public", "syncMode": "full_refresh_append"},
    ]}));
    assert_eq!(twice.field, "configurations.streams[2]");
    assert!(
        twice.message.contains("'orders' (namespace 'public')")
            && twice.message.contains("configurations.streams[0]"),
        "{twice:?}"
    );
    // Without a namespace the first stream of that name is meant: the same one.
    let again = refused(json!({"streams": [
        {"name": "orders"}, {"name": "orders", "namespace": "public"},
    ]}));
    assert_eq!(again.field, "configurations.streams[1]");

    let elsewhere = refused(json!({"streams": [{"name": "orders", "namespace": "sales"}]}));
    assert_eq!(elsewhere.field, "configurations.streams[0].namespace");
    assert_eq!(
        elsewhere.message,
        "the source has no stream 'orders' in namespace 'sales'; it has 'orders' in namespaces 'public', 'archive'"
    );
    let unnamespaced = configure(
        &discovered(),
        &json!({"streams": [{"name": "users", "namespace": "public"}]}),
    )
    .unwrap_err();
    assert!(
        unnamespaced
            .message
            .ends_with("it has 'users' without a namespace"),
        "{unnamespaced:?}"
    );
    let unknown = refused(json!({"streams": [{"name": "ordres"}]}));
    assert_eq!(
        (unknown.field.as_str(), unknown.message.as_str()),
        (
            "configurations.streams[0].name",
            "the source has no stream 'ordres'"
        )
    );
}
