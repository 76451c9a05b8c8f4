//! PostgreSQL → PostgreSQL through the public API of a real `ferry up`: the three sync modes
//! over two syncs, every common column type, and a data plane killed mid-sync.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase, text, wait_for};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn up(options: FerryOptions) -> FerryUp {
    FerryUp::start(BINARY.as_ref(), options).await
}

/// A connection from `source`'s `public` schema into `destination`'s `schema`, whose request
/// has `extra` fields; the source's password is shown masked.
async fn connection_with(
    ferry: &FerryUp,
    source: &TestDatabase,
    destination: &TestDatabase,
    schema: &str,
    extra: Value,
) -> String {
    let connection = ferry
        .default_workspace()
        .connect(
            source.source_configuration(),
            destination.destination_configuration(schema),
            extra,
        )
        .await;
    let source_id = ferry
        .admin
        .get(&format!("/api/public/v1/connections/{connection}"))
        .await
        .body["sourceId"]
        .clone();
    let shown = ferry
        .admin
        .get(&format!("/api/public/v1/sources/{}", text(&source_id)))
        .await;
    assert_eq!(shown.body["configuration"]["password"], "**********");
    connection
}

/// Runs a sync of `connection`, which must succeed; the job.
async fn sync(ferry: &FerryUp, connection: &str) -> Value {
    ferry
        .admin
        .sync(&json!(connection), Duration::from_secs(120))
        .await
}

/// The rows of a table as text, in id order, over the given columns.
async fn rows(database: &TestDatabase, table: &str, columns: &str) -> Vec<Option<String>> {
    database
        .texts(&format!(
            "SELECT ROW({columns})::text FROM {table} ORDER BY id"
        ))
        .await
}

#[tokio::test]
async fn postgres_to_postgres_in_three_sync_modes_moves_only_what_changed() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            "CREATE TABLE customers (id int PRIMARY KEY, name text, city text);
             INSERT INTO customers SELECT i, 'customer ' || i, 'city ' || (i % 7) FROM generate_series(1, 300) i;
             CREATE TABLE events (id bigint PRIMARY KEY, kind text, amount numeric(12,2));
             INSERT INTO events SELECT i, 'kind ' || (i % 5), i * 1.25 FROM generate_series(1, 1000) i;
             CREATE TABLE accounts (id int PRIMARY KEY, balance numeric, updated_at timestamptz NOT NULL);
             INSERT INTO accounts SELECT i, i * 10, '2024-01-01'::timestamptz + i * interval '1 minute'
               FROM generate_series(1, 500) i;",
        )
        .await;
    let ferry = up(FerryOptions::new(StoreKind::Sqlite)).await;
    // Airbyte's default namespace definition: the destination's schema.
    let connection = connection_with(
        &ferry,
        &source,
        &destination,
        "warehouse",
        json!({"configurations": {"streams": [
            {"name": "customers", "syncMode": "full_refresh_overwrite"},
            {"name": "events", "syncMode": "incremental_append", "cursorField": ["id"]},
            {"name": "accounts", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"], "primaryKey": [["id"]]},
        ]}}),
    )
    .await;

    let first = sync(&ferry, &connection).await;
    assert_eq!(first["rowsSynced"], 300 + 1000 + 500, "{first}");
    let compare = || async {
        assert_eq!(
            rows(&destination, "warehouse.customers", "id, name, city").await,
            rows(&source, "customers", "id, name, city").await
        );
        assert_eq!(
            rows(&destination, "warehouse.events", "id, kind, amount").await,
            rows(&source, "events", "id, kind, amount").await
        );
        assert_eq!(
            rows(
                &destination,
                "warehouse.accounts",
                "id, balance, updated_at"
            )
            .await,
            rows(&source, "accounts", "id, balance, updated_at").await
        );
    };
    compare().await;
    // Destinations V2 columns, filled.
    let airbyte = destination
        .texts(
            "SELECT count(DISTINCT _airbyte_raw_id)::text || ' ' || bool_and(_airbyte_extracted_at > now() - interval '1 hour')::text
                    || ' ' || min(_airbyte_meta::text) || ' ' || min(_airbyte_generation_id)::text FROM warehouse.events",
        )
        .await;
    assert_eq!(
        airbyte[0].as_deref(),
        Some("1000 true {\"changes\": [], \"sync_id\": 0} 0")
    );

    // Inserts and updates at the source (no deletes).
    source
        .execute(
            "INSERT INTO customers VALUES (301, 'new customer', 'city 1');
             UPDATE customers SET city = 'moved' WHERE id IN (5, 6);
             INSERT INTO events SELECT i, 'late', i FROM generate_series(1001, 1040) i;
             UPDATE accounts SET balance = balance + 1, updated_at = '2030-01-01' WHERE id IN (10, 20, 30);
             INSERT INTO accounts VALUES (501, 0, '2030-01-02'), (502, 5, '2030-01-02');",
        )
        .await;
    let second = sync(&ferry, &connection).await;
    compare().await;
    // The full refresh stream again in whole; of the others only what changed.
    assert_eq!(second["rowsSynced"], 301 + 40 + 5, "{second}");
    let committed = |job: &Value, stream: &str| {
        job["streamStats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|stats| stats["streamName"] == stream)
            .unwrap_or_else(|| panic!("no stats for {stream}: {job}"))["recordsCommitted"]
            .clone()
    };
    assert_eq!(committed(&first, "customers"), 300);
    assert_eq!(committed(&first, "accounts"), 500);
    assert_eq!(committed(&second, "customers"), 301);
    assert_eq!(committed(&second, "events"), 40);
    assert_eq!(committed(&second, "accounts"), 5);
    assert_eq!(second["streamStats"][0]["streamNamespace"], "public");
    let duplicates = destination
        .texts("SELECT count(*)::text FROM (SELECT id FROM warehouse.accounts GROUP BY id HAVING count(*) > 1) d")
        .await;
    assert_eq!(duplicates[0].as_deref(), Some("0"));

    // The state the control plane keeps is cursor values only.
    let accounts_state = ferry
        .admin
        .stream_state(&connection, "public.accounts")
        .await;
    assert_eq!(
        accounts_state["state"]["stream_state"]["cursor"], "2030-01-02 00:00:00+00",
        "{accounts_state}"
    );

    // A reset empties the destination's tables and forgets the state.
    let reset = ferry.admin.start_job(&json!(connection), "reset").await;
    let reset = ferry
        .admin
        .finished_job(reset, Duration::from_secs(60))
        .await;
    assert_eq!(reset["status"], "succeeded", "{reset}");
    for table in ["customers", "events", "accounts"] {
        let count = destination
            .texts(&format!("SELECT count(*)::text FROM warehouse.{table}"))
            .await;
        assert_eq!(count[0].as_deref(), Some("0"), "{table}");
    }
    let third = sync(&ferry, &connection).await;
    assert_eq!(third["rowsSynced"], 301 + 1040 + 502, "{third}");
    compare().await;
}

#[tokio::test]
async fn every_common_column_type_round_trips() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            r#"CREATE TABLE types (
                 id int PRIMARY KEY, small int2, big int8, exact numeric(20,6), ratio float8, single float4,
                 flag bool, note text, code varchar(10), fixed char(3), key uuid, doc json, docb jsonb,
                 day date, at_time time, at_timetz timetz, at timestamp, at_tz timestamptz,
                 blob bytea, numbers int4[], words text[], "Mixed Case" text);
               INSERT INTO types VALUES
                 (1, -32768, 9223372036854775807, 12345678901234.123456, 0.1, 1.5,
                  true, 'ünïcödé ✓ "quoted" \back\slash	tab
newline', '', 'abc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, null], "b": "x\ny"}', '{"nested": {"k": true}}',
                  '2024-02-29', '23:59:59.999999', '12:00:00+05:30', '1999-12-31 23:59:59.5', '2024-06-01 12:00:00+02',
                  '\x00ff10', '{1,2,3}', '{"a b","c\"d"}', 'mixed'),
                 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                 (3, 0, 0, -0.5, -1e300, 0, false, '', '', '', '00000000-0000-0000-0000-000000000000', '[]', '"text"',
                  '0001-01-01', '00:00', '00:00+00', '2000-01-01', '1970-01-01 00:00:00+00',
                  '', '{}', '{}', '');"#,
        )
        .await;
    let ferry = up(FerryOptions::new(StoreKind::Sqlite)).await;
    let connection = connection_with(
        &ferry,
        &source,
        &destination,
        "public",
        json!({"configurations": {"streams": [{"name": "types", "syncMode": "full_refresh_overwrite"}]},
               "namespaceDefinition": "custom_format", "namespaceFormat": "${SOURCE_NAMESPACE}_copy",
               "prefix": "pg_"}),
    )
    .await;
    let shown = ferry
        .admin
        .get(&format!("/api/public/v1/connections/{connection}"))
        .await
        .body;
    assert_eq!(shown["namespaceDefinition"], "custom_format", "{shown}");
    assert_eq!(shown["prefix"], "pg_", "{shown}");
    let job = sync(&ferry, &connection).await;
    assert_eq!(job["rowsSynced"], 3, "{job}");

    // Each column compared as a value of its own type: JSON numbers carry numeric exactly,
    // binary comes as base64, arrays and JSON documents as jsonb (Destinations V2's types).
    let columns = [
        ("small", "small::numeric", "small::numeric"),
        ("big", "big::numeric", "big::numeric"),
        ("exact", "exact", "exact"),
        ("ratio", "ratio", "ratio::float8"),
        ("single", "single", "single::float4"),
        ("flag", "flag", "flag"),
        ("note", "note", "note"),
        ("code", "code", "code"),
        ("fixed", "to_jsonb(fixed) #>> '{}'", "fixed"),
        ("key", "key", "key::uuid"),
        ("doc", "doc::jsonb", "doc"),
        ("docb", "docb", "docb"),
        ("day", "day", "day"),
        ("at_time", "at_time", "at_time"),
        ("at_timetz", "at_timetz", "at_timetz"),
        ("at", "at", "at"),
        ("at_tz", "at_tz", "at_tz"),
        ("blob", "blob", "decode(blob, 'base64')"),
        ("numbers", "to_jsonb(numbers)", "numbers"),
        ("words", "to_jsonb(words)", "words"),
        ("Mixed Case", "\"Mixed Case\"", "\"Mixed Case\""),
    ];
    // Through the data plane, native to native: rows as COPY text. Through the protocol
    // programs in a pipe: rows as JSON records. Both must give the same values.
    let mut catalog = json!({"streams": []});
    let directory = tempfile::tempdir().unwrap();
    let discovered = run_connector(
        directory.path(),
        "source-postgres",
        "discover",
        &source.source_configuration(),
        None,
    );
    let mut stream = discovered["catalog"]["streams"][0].clone();
    // Without a namespace: the source reads its first schema, the destination writes its own.
    stream.as_object_mut().unwrap().remove("namespace");
    catalog["streams"] = json!([{"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]);
    let mut into_json_copy = destination.destination_configuration("public");
    into_json_copy["schema"] = json!("json_copy");
    pipe_connectors(
        directory.path(),
        &source.source_configuration(),
        &into_json_copy,
        &catalog,
    );
    for table in ["public_copy.pg_types", "json_copy.types"] {
        for (name, source_expression, destination_expression) in columns {
            let expected = source
                .texts(&format!(
                    "SELECT ({source_expression})::text FROM types ORDER BY id"
                ))
                .await;
            let got = destination
                .texts(&format!(
                    "SELECT ({destination_expression})::text FROM {table} ORDER BY id"
                ))
                .await;
            assert_eq!(got, expected, "{table}: column {name}");
        }
        let meta = destination
            .texts(&format!(
                "SELECT _airbyte_meta::text FROM {table} ORDER BY id"
            ))
            .await;
        assert!(
            meta.iter()
                .all(|meta| meta.as_deref() == Some("{\"changes\": [], \"sync_id\": 0}")),
            "{table}: {meta:?}"
        );
    }
}

/// A full refresh into a table made afresh, of columns whose binary forms are those of the
/// destination's column types, moves its rows as COPY binary, untouched: every value arrives
/// as it was, edge values included, across many batches. Appended (as COPY text), the same
/// table gives the same values.
#[tokio::test]
async fn a_full_refresh_of_matching_types_moves_rows_in_copy_binary() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            r#"CREATE TABLE exact (
                 id bigint PRIMARY KEY, amount numeric, money numeric(12,2), flag bool, note text,
                 code varchar(10), fixed char(3), doc jsonb, day date, at_time time,
                 at_timetz timetz, at timestamp, at_tz timestamptz);
               INSERT INTO exact VALUES
                 (1, 'NaN', -0.01, true, E'ünïcödé ✓ "q" \\back\tab\nnewline\r', 'x', 'ab',
                  '{"k": [1, 2.5, null, "t\tu"], "e": {}}', 'infinity', '24:00:00', '23:59:59.999999-12',
                  '-infinity', 'infinity'),
                 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                 (3, -123456789012345678901234567890.000000000000000000001, 9999999999.99, false, '',
                  '', '', 'null', '0001-01-01 BC', '00:00', '00:00+00', '2000-01-01 00:00:00.000001',
                  '1970-01-01 00:00:00+00');
               INSERT INTO exact (id, amount, note, doc, at_tz)
                 SELECT i, i / 7.0, repeat(md5(i::text), 3), jsonb_build_object('i', i),
                        timestamptz '2024-01-01' + i * interval '1 second'
                 FROM generate_series(4, 20000) i;
               CREATE TABLE nothing (id bigint PRIMARY KEY, label text);
               ANALYZE exact;"#,
        )
        .await;
    let ferry = up(FerryOptions::new(StoreKind::Sqlite)).await;
    for (schema, mode) in [
        ("replaced", "full_refresh_overwrite"),
        ("appended", "full_refresh_append"),
    ] {
        let connection = connection_with(
            &ferry,
            &source,
            &destination,
            schema,
            json!({"configurations": {"streams": [
                {"name": "exact", "syncMode": mode},
                {"name": "nothing", "syncMode": mode},
            ]}}),
        )
        .await;
        let job = sync(&ferry, &connection).await;
        assert_eq!(job["rowsSynced"], 20000, "{mode}: {job}");
        // The planner's estimate of the analysed table, beside what was synced; the table
        // never analysed has none.
        let stats = job["streamStats"].as_array().unwrap();
        let exact = stats.iter().find(|stream| stream["streamName"] == "exact");
        let exact = exact.unwrap_or_else(|| panic!("{job}"));
        assert_eq!(exact["estimatedRecords"], 20000, "{job}");
        assert!(exact["estimatedBytes"].as_i64().unwrap() > 0, "{job}");
        let nothing = stats
            .iter()
            .find(|stream| stream["streamName"] == "nothing");
        assert!(
            nothing.is_none_or(|stream| stream.get("estimatedRecords").is_none()),
            "{job}"
        );
    }
    for table in ["replaced.exact", "appended.exact"] {
        for column in [
            "id",
            "amount",
            "money",
            "flag",
            "note",
            "code",
            "fixed",
            "doc",
            "day",
            "at_time",
            "at_timetz",
            "at",
            "at_tz",
        ] {
            // char(n) keeps its blank padding in the destination's varchar, as it would in
            // Airbyte's records; a cast to text would drop it.
            let source_expression = match column {
                "fixed" => "to_jsonb(fixed) #>> '{}'".to_owned(),
                column => format!("{column}::text"),
            };
            let expected = source
                .texts(&format!(
                    "SELECT {source_expression} FROM exact ORDER BY id"
                ))
                .await;
            let got = destination
                .texts(&format!("SELECT {column}::text FROM {table} ORDER BY id"))
                .await;
            assert!(got == expected, "{table}: column {column} differs");
        }
        let distinct_ids = destination
            .texts(&format!(
                "SELECT count(DISTINCT _airbyte_raw_id)::text FROM {table}"
            ))
            .await;
        assert_eq!(distinct_ids, [Some("20000".to_owned())], "{table}");
    }
    // An empty table comes as a header and a trailer alone, and is replaced by an empty one.
    for schema in ["replaced", "appended"] {
        let count = destination
            .texts(&format!("SELECT count(*)::text FROM {schema}.nothing"))
            .await;
        assert_eq!(count, [Some("0".to_owned())], "{schema}.nothing");
    }
}

/// Runs `ferry connector <name> <operation> --config …`; its one message of output.
fn run_connector(
    directory: &std::path::Path,
    name: &str,
    operation: &str,
    configuration: &Value,
    catalog: Option<&Value>,
) -> Value {
    let config = directory.join(format!("{name}-config.json"));
    std::fs::write(&config, configuration.to_string()).unwrap();
    let mut command = std::process::Command::new(BINARY);
    command
        .args(["connector", name, operation, "--config"])
        .arg(&config);
    if let Some(catalog) = catalog {
        let path = directory.join(format!("{name}-catalog.json"));
        std::fs::write(&path, catalog.to_string()).unwrap();
        command.arg("--catalog").arg(path);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `ferry connector source-postgres read | ferry connector destination-postgres write`; what
/// the destination printed (the states it acknowledged).
fn pipe_connectors(
    directory: &std::path::Path,
    source: &Value,
    destination: &Value,
    catalog: &Value,
) -> String {
    let write = |name: &str, value: &Value| {
        let path = directory.join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    };
    let (source, destination, catalog) = (
        write("pipe-source.json", source),
        write("pipe-destination.json", destination),
        write("pipe-catalog.json", catalog),
    );
    let piped = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {BINARY} connector source-postgres read --config {source} --catalog {catalog} | {BINARY} connector destination-postgres write --config {destination} --catalog {catalog}"
        ))
        .output()
        .unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    String::from_utf8(piped.stdout).unwrap()
}

#[tokio::test]
async fn bad_postgres_configurations_are_refused_naming_the_field() {
    let ferry = up(FerryOptions::new(StoreKind::Sqlite)).await;
    let workspace = ferry.default_workspace();
    for (configuration, field) in [
        (
            json!({"sourceType": "postgres", "port": 5432, "database": "d", "username": "u"}),
            "configuration.host",
        ),
        (
            json!({"sourceType": "postgres", "host": "h", "port": "eighty", "database": "d", "username": "u"}),
            "configuration.port",
        ),
        (
            json!({"sourceType": "postgres", "host": "h", "database": "d", "username": "u", "schemas": "public"}),
            "configuration.schemas",
        ),
        (
            json!({"sourceType": "postgres", "host": "h", "database": "d", "username": "u", "ssl_mode": {"mode": "sometimes"}}),
            "configuration.ssl_mode.mode",
        ),
    ] {
        workspace
            .post_source("bad", configuration)
            .await
            .assert_problem(400)
            .assert_names_field(field);
    }
    workspace
        .post_destination(
            "bad",
            json!({"destinationType": "postgres", "host": "h", "database": "d"}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configuration.username");

    // Connection settings Airbyte defines are checked too.
    let source = workspace
        .post_source("faker", json!({"sourceType": "faker", "count": 1}))
        .await;
    let destination = workspace
        .post_destination("null", json!({"destinationType": "dev-null"}))
        .await;
    let base = json!({"sourceId": source.body["sourceId"], "destinationId": destination.body["destinationId"]});
    for (extra, field) in [
        (
            json!({"namespaceDefinition": "elsewhere"}),
            "namespaceDefinition",
        ),
        (
            json!({"schedule": {"scheduleType": "basic"}}),
            "schedule.basicTiming",
        ),
        (
            json!({"schedule": {"scheduleType": "basic", "basicTiming": "Every 0 hours"}}),
            "schedule.basicTiming",
        ),
        (
            json!({"schedule": {"scheduleType": "sometimes"}}),
            "schedule.scheduleType",
        ),
    ] {
        let mut request = base.clone();
        for (key, value) in extra.as_object().unwrap() {
            request[key] = value.clone();
        }
        ferry
            .admin
            .post("/api/public/v1/connections", request)
            .await
            .assert_problem(400)
            .assert_names_field(field);
    }
    let mut daily = base.clone();
    daily["schedule"] = json!({"scheduleType": "basic", "basicTiming": "Every 24 hours"});
    let daily = ferry.admin.post("/api/public/v1/connections", daily).await;
    assert_eq!(daily.status, 200, "{}", daily.body);
    assert_eq!(daily.body["schedule"]["basicTiming"], "Every 24 hours");
    assert_eq!(daily.body["namespaceDefinition"], "destination");

    // A well-formed configuration that cannot connect fails its check, with the reason.
    let unreachable = workspace
        .post_source(
            "nowhere",
            json!({"sourceType": "postgres", "host": "127.0.0.1", "port": 1, "database": "d", "username": "u"}),
        )
        .await;
    assert_eq!(unreachable.status, 200, "{}", unreachable.body);
    let check = ferry
        .admin
        .check_source(&unreachable.body["sourceId"])
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(check.body["status"], "failed", "{}", check.body);
    assert!(
        check.body["message"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{}",
        check.body
    );
}

/// The destination is slowed by the database itself (a trigger sleeping every 500th row of
/// its deduplicated table), so that the data plane can be killed while the sync is surely
/// between two checkpoints.
#[tokio::test]
async fn a_data_plane_killed_mid_sync_loses_no_rows_and_dedup_stays_unique() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric, note text);
             INSERT INTO accounts SELECT i, i, md5(i::text) FROM generate_series(1, 240000) i;
             CREATE TABLE events (id bigint PRIMARY KEY, kind text);
             INSERT INTO events SELECT i, 'e' FROM generate_series(1, 3000) i;",
        )
        .await;
    destination
        .execute(
            "CREATE TABLE accounts (_airbyte_raw_id varchar(36) NOT NULL, _airbyte_extracted_at timestamptz NOT NULL,
                 _airbyte_meta jsonb NOT NULL, _airbyte_generation_id bigint, balance numeric, id bigint, note varchar);
             CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW.id % 500 = 0 THEN PERFORM pg_sleep(0.02); END IF; RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION slow_down();",
        )
        .await;
    let ferry = up(FerryOptions::new(StoreKind::Sqlite)
        .control_plane_only()
        .env("FERRY_JOB_LEASE_SECONDS", "3")
        .env("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0")
        .env("FERRY_JOB_MAX_ATTEMPTS", "3"))
    .await;
    let region = ferry.default_region().await;
    let plane = ferry.plane(&region, "killable").await;
    let run_plane = || plane.start(&[("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")]);
    let mut first_plane = run_plane();
    let connection = connection_with(
        &ferry,
        &source,
        &destination,
        "elsewhere",
        json!({"namespaceDefinition": "source", "configurations": {"streams": [
            {"name": "accounts", "syncMode": "incremental_deduped_history", "cursorField": ["id"]},
            {"name": "events", "syncMode": "incremental_append", "cursorField": ["id"]},
        ]}}),
    )
    .await;
    let job_id = ferry.admin.start_job(&json!(connection), "sync").await;
    wait_for("a first checkpoint", Duration::from_secs(60), || async {
        let job = ferry.admin.job(job_id).await;
        assert!(
            job["status"] == "pending" || job["status"] == "running",
            "{job}"
        );
        (job["rowsSynced"].as_i64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    first_plane.kill();
    let _second_plane = run_plane();
    let job = ferry
        .admin
        .finished_job(job_id, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["attempts"].as_array().unwrap().len() >= 2, "{job}");
    assert_eq!(
        rows(&destination, "accounts", "id, balance, note").await,
        rows(&source, "accounts", "id, balance, note").await,
        "every row, once"
    );
    let events = destination
        .texts("SELECT count(DISTINCT id)::text FROM events")
        .await;
    assert_eq!(events[0].as_deref(), Some("3000"));
}

/// The native connectors as protocol programs: `ferry connector source-postgres read |
/// ferry connector destination-postgres write`, a plain shell pipe.
#[tokio::test]
async fn native_connectors_run_as_protocol_programs_in_a_pipe() {
    let source = TestDatabase::create().await;
    let destination = TestDatabase::create().await;
    source
        .execute(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 250) i;",
        )
        .await;
    let directory = tempfile::tempdir().unwrap();
    let catalog = run_connector(
        directory.path(),
        "source-postgres",
        "discover",
        &source.source_configuration(),
        None,
    );
    assert_eq!(catalog["type"], "CATALOG");
    let stream = catalog["catalog"]["streams"][0].clone();
    assert_eq!(stream["source_defined_primary_key"], json!([["id"]]));
    let configured = json!({"streams": [{"stream": stream, "sync_mode": "incremental", "cursor_field": ["id"],
                                          "destination_sync_mode": "append_dedup", "primary_key": [["id"]]}]});
    let echoed = pipe_connectors(
        directory.path(),
        &source.source_configuration(),
        &destination.destination_configuration("public"),
        &configured,
    );
    assert!(echoed.contains(r#""cursor":"250""#), "{echoed}");
    assert_eq!(
        rows(&destination, "public.items", "id, label").await,
        rows(&source, "items", "id, label").await
    );
    // A bad configuration: a TRACE ERROR naming the field, and exit 1.
    let bad = directory.path().join("bad.json");
    std::fs::write(&bad, json!({"host": "127.0.0.1"}).to_string()).unwrap();
    let catalog_path = directory.path().join("configured.json");
    std::fs::write(&catalog_path, configured.to_string()).unwrap();
    let failed = std::process::Command::new(BINARY)
        .args(["connector", "source-postgres", "read", "--config"])
        .arg(&bad)
        .arg("--catalog")
        .arg(&catalog_path)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let trace: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(trace["trace"]["error"]["failure_type"], "config_error");
    assert!(
        trace["trace"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{trace}"
    );
}
