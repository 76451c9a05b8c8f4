//! What a connection is checked for when it is created and changed, through the public API
//! of a real `ferry up` over real PostgreSQL: stream configurations against the source's
//! discovered catalog (cursor, primary key, namespace, duplicates), the PostgreSQL
//! connectors' Airbyte options Ferry does not support, and streams that would share a
//! destination table; and long names, which PostgreSQL would cut at 63 bytes, synced into
//! tables of their own.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_connectors::postgres::naming::identifier;
use ferry_testkit::{FerryOptions, FerryUp, Reply, StoreKind, TestDatabase, text};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn up() -> FerryUp {
    FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await
}

/// A new actor (`sources` or `destinations`) in the default workspace; its id.
async fn actor(ferry: &FerryUp, kind: &str, configuration: Value) -> String {
    let created = ferry
        .admin
        .create(
            &format!("/api/public/v1/{kind}"),
            json!({"name": kind, "workspaceId": ferry.workspace, "configuration": configuration}),
        )
        .await;
    let id = if kind == "sources" {
        "sourceId"
    } else {
        "destinationId"
    };
    text(&created[id])
}

/// POSTs a connection from `source` to `destination` with `extra` request fields.
async fn post_connection(ferry: &FerryUp, source: &str, destination: &str, extra: Value) -> Reply {
    let mut request = json!({"sourceId": source, "destinationId": destination});
    for (key, value) in extra.as_object().unwrap() {
        request[key] = value.clone();
    }
    ferry
        .admin
        .post("/api/public/v1/connections", request)
        .await
}

fn streams(streams: Value) -> Value {
    json!({"configurations": {"streams": streams}})
}

/// The problem's detail, which must be there.
fn detail(reply: &Reply) -> String {
    text(&reply.body["detail"])
}

#[tokio::test]
async fn stream_configurations_are_checked_against_the_source_and_destination() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            r#"CREATE TABLE orders (id int PRIMARY KEY, payload jsonb, doc json, tags text[],
                                    note text, updated_at timestamptz);
               INSERT INTO orders VALUES (1, '{}', '{}', '{}', 'x', now());
               CREATE SCHEMA sales;
               CREATE TABLE sales.orders (id int PRIMARY KEY);
               CREATE TABLE "a.b" (id int);
               CREATE TABLE "a_b" (id int);"#,
        )
        .await;
    let ferry = up().await;
    let source_id = actor(&ferry, "sources", source.source_configuration()).await;
    let destination_id = actor(
        &ferry,
        "destinations",
        destination.destination_configuration("warehouse"),
    )
    .await;
    let refused = |extra: Value| {
        let (ferry, source_id, destination_id) = (&ferry, &source_id, &destination_id);
        async move { post_connection(ferry, source_id, destination_id, extra).await }
    };
    let incremental = |cursor: &str| {
        streams(
            json!([{"name": "orders", "syncMode": "incremental_append", "cursorField": [cursor]}]),
        )
    };

    // A cursor that is not a field of the stream.
    let reply = refused(incremental("updatedd")).await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[0].cursorField");
    assert!(
        detail(&reply).contains("'updatedd' is not a field")
            && detail(&reply).contains("updated_at"),
        "{}",
        reply.body
    );
    // Cursors whose values have no order: jsonb, json and arrays.
    for (cursor, kind) in [
        ("payload", "untyped"),
        ("doc", "untyped"),
        ("tags", "of type array"),
    ] {
        let reply = refused(incremental(cursor)).await;
        reply
            .assert_problem(400)
            .assert_names_field("configurations.streams[0].cursorField");
        let detail = detail(&reply);
        assert!(
            detail.contains("stream 'orders'") && detail.contains(&format!("'{cursor}' is {kind}")),
            "{detail}"
        );
    }
    // A primary key that is not a field.
    let reply = refused(streams(
        json!([{"name": "orders", "syncMode": "incremental_deduped_history",
                                        "cursorField": ["updated_at"], "primaryKey": [["idd"]]}]),
    ))
    .await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[0].primaryKey");
    assert!(detail(&reply).contains("'idd'"), "{}", reply.body);
    // The same stream twice.
    let reply = refused(streams(json!([
        {"name": "orders", "namespace": "public", "syncMode": "full_refresh_overwrite"},
        {"name": "orders", "namespace": "public", "syncMode": "full_refresh_append"},
    ])))
    .await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[1]");
    assert!(
        detail(&reply).contains("configurations.streams[0]"),
        "{}",
        reply.body
    );
    // A namespace the source does not offer the stream in (it reads `public` only).
    let reply = refused(streams(json!([{"name": "orders", "namespace": "sales"}]))).await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[0].namespace");
    assert!(
        detail(&reply).contains("namespace 'sales'")
            && detail(&reply).contains("in namespace 'public'"),
        "{}",
        reply.body
    );

    // Accepted, then changed: a bad change is refused and nothing is changed.
    let good = incremental("updated_at");
    let created = refused(good.clone()).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let connection = text(&created.body["connectionId"]);
    let path = format!("/api/public/v1/connections/{connection}");
    let reply = ferry.admin.patch(&path, incremental("payload")).await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[0].cursorField");
    let reply = ferry
        .admin
        .patch(
            &path,
            streams(json!([{"name": "orders"}, {"name": "orders"}])),
        )
        .await;
    reply
        .assert_problem(400)
        .assert_names_field("configurations.streams[1]");
    let shown = ferry.admin.get(&path).await.body;
    assert_eq!(shown["configurations"], good["configurations"], "{shown}");

    // Two source namespaces into the destination's one schema would share a table.
    let both_schemas = {
        let mut configuration = source.source_configuration();
        configuration["schemas"] = json!(["public", "sales"]);
        actor(&ferry, "sources", configuration).await
    };
    let two_orders = streams(json!([
        {"name": "orders", "namespace": "public", "syncMode": "full_refresh_overwrite"},
        {"name": "orders", "namespace": "sales", "syncMode": "full_refresh_overwrite"},
    ]));
    let reply = post_connection(&ferry, &both_schemas, &destination_id, two_orders.clone()).await;
    reply.assert_problem(409);
    assert!(
        detail(&reply).contains("'orders' (namespace 'public') and 'orders' (namespace 'sales')")
            && detail(&reply).contains("\"warehouse\".\"orders\""),
        "{}",
        reply.body
    );
    // Kept in their own schemas they are apart; placed back into one, refused again.
    let mut by_source = two_orders.clone();
    by_source["namespaceDefinition"] = json!("source");
    let apart = post_connection(&ferry, &both_schemas, &destination_id, by_source).await;
    assert_eq!(apart.status, 200, "{}", apart.body);
    ferry
        .admin
        .patch(
            &format!(
                "/api/public/v1/connections/{}",
                text(&apart.body["connectionId"])
            ),
            json!({"namespaceDefinition": "destination"}),
        )
        .await
        .assert_problem(409);

    // Files: `a.b` and `a_b` both become `_airbyte_raw_a_b.jsonl`.
    let files = actor(
        &ferry,
        "destinations",
        json!({"destinationType": "local-json", "destination_path": "/local/out"}),
    )
    .await;
    let reply = post_connection(
        &ferry,
        &source_id,
        &files,
        streams(json!([{"name": "a.b"}, {"name": "orders"}, {"name": "a_b"}])),
    )
    .await;
    reply.assert_problem(409);
    assert!(
        detail(&reply).contains("'a.b' (namespace 'public') and 'a_b' (namespace 'public')")
            && detail(&reply).contains("_airbyte_raw_a_b.jsonl"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn postgres_options_ferry_does_not_support_are_refused_by_name() {
    let database = TestDatabase::create().await;
    let ferry = up().await;
    let workspace = ferry.default_workspace();
    let with = |extra: Value| {
        let mut configuration = database.source_configuration();
        for (key, value) in extra.as_object().unwrap() {
            configuration[key] = value.clone();
        }
        configuration
    };
    let reply = workspace
        .post_source(
            "cdc",
            with(
                json!({"replication_method": {"method": "CDC", "replication_slot": "slot",
                                                "publication": "pub", "plugin": "pgoutput"}}),
            ),
        )
        .await;
    reply
        .assert_problem(400)
        .assert_names_field("configuration.replication_method.method");
    assert!(
        detail(&reply).contains(
            "CDC is not supported by Ferry's native source-postgres; use Standard (cursor-based) replication"
        ),
        "{}",
        reply.body
    );
    let reply = workspace
        .post_source(
            "tunnel",
            with(json!({"tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "tunnel_host": "bastion",
                                          "tunnel_port": 22, "tunnel_user": "me", "ssh_key": "-----BEGIN"}})),
        )
        .await;
    reply
        .assert_problem(400)
        .assert_names_field("configuration.tunnel_method.tunnel_method");
    let mut destination = database.destination_configuration("public");
    destination["tunnel_method"] = json!({"tunnel_method": "SSH_PASSWORD_AUTH", "tunnel_host": "bastion",
                                          "tunnel_port": 22, "tunnel_user": "me", "tunnel_user_password": "pw"});
    workspace
        .post_destination("tunnel", destination)
        .await
        .assert_problem(400)
        .assert_names_field("configuration.tunnel_method.tunnel_method");
    // Airbyte's shapes of what Ferry does: accepted.
    let reply = workspace
        .post_source(
            "standard",
            with(json!({"replication_method": {"method": "Standard"},
                        "tunnel_method": {"tunnel_method": "NO_TUNNEL"}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let check = ferry.admin.check_source(&reply.body["sourceId"]).await;
    assert_eq!(check.body["status"], "succeeded", "{}", check.body);
}

/// `(table, rows)` of each table of `schema` whose name starts with `prefix`, by name.
async fn tables(database: &TestDatabase, schema: &str, prefix: &str) -> Vec<(String, usize)> {
    let names = database
        .texts(&format!(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = '{schema}' AND starts_with(table_name, '{prefix}')
             ORDER BY table_name"
        ))
        .await;
    let mut counted = Vec::new();
    for name in names.into_iter().flatten() {
        let rows = database
            .texts(&format!(
                "SELECT count(*)::text FROM \"{schema}\".\"{name}\""
            ))
            .await;
        let rows = rows[0].as_deref().unwrap().parse().unwrap();
        counted.push((name, rows));
    }
    counted
}

#[tokio::test]
async fn long_names_land_in_tables_of_their_own() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    let long_stream = "s".repeat(63);
    source
        .execute(&format!(
            "CREATE TABLE customers (id int PRIMARY KEY);
             INSERT INTO customers SELECT generate_series(1, 3);
             CREATE TABLE orders (id int PRIMARY KEY);
             INSERT INTO orders SELECT generate_series(1, 5);
             CREATE TABLE items (id int PRIMARY KEY);
             INSERT INTO items SELECT generate_series(1, 7);
             CREATE TABLE {long_stream} (id int PRIMARY KEY);
             INSERT INTO {long_stream} SELECT generate_series(1, 4);"
        ))
        .await;
    let ferry = up().await;
    let workspace = ferry.default_workspace();

    // A 70-character prefix: PostgreSQL alone would cut all three names to the same 63 bytes.
    let prefix = "p".repeat(70);
    let connection = workspace
        .connect(
            source.source_configuration(),
            destination.destination_configuration("warehouse"),
            json!({"prefix": prefix, "configurations": {"streams": [
                {"name": "customers", "syncMode": "full_refresh_overwrite"},
                {"name": "orders", "syncMode": "incremental_append", "cursorField": ["id"]},
                {"name": "items", "syncMode": "incremental_deduped_history", "cursorField": ["id"]},
            ]}}),
        )
        .await;
    let expected = |counts: [usize; 3]| {
        let mut expected: Vec<(String, usize)> = ["customers", "orders", "items"]
            .iter()
            .zip(counts)
            .map(|(stream, rows)| (identifier(&format!("{prefix}{stream}")), rows))
            .collect();
        expected.sort();
        expected
    };
    let job = ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(120))
        .await;
    assert_eq!(job["rowsSynced"], 3 + 5 + 7, "{job}");
    assert_eq!(
        tables(&destination, "warehouse", "ppp").await,
        expected([3, 5, 7])
    );
    source
        .execute("INSERT INTO orders VALUES (6); INSERT INTO items VALUES (8);")
        .await;
    ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(120))
        .await;
    assert_eq!(
        tables(&destination, "warehouse", "ppp").await,
        expected([3, 6, 8])
    );

    // A 63-byte name in overwrite mode: its temporary table is another, twice over.
    let overwrite = workspace
        .connect(
            source.source_configuration(),
            destination.destination_configuration("long"),
            json!({"configurations": {"streams": [
                {"name": long_stream, "syncMode": "full_refresh_overwrite"},
            ]}}),
        )
        .await;
    for (sync, rows) in [(1, 4), (2, 6)] {
        if sync == 2 {
            source
                .execute(&format!("INSERT INTO {long_stream} VALUES (5), (6);"))
                .await;
        }
        let job = ferry
            .admin
            .sync(&json!(overwrite), Duration::from_secs(120))
            .await;
        assert_eq!(job["rowsSynced"], rows, "sync {sync}: {job}");
        assert_eq!(
            tables(&destination, "long", "sss").await,
            vec![(long_stream.clone(), rows)],
            "sync {sync}"
        );
    }
}
