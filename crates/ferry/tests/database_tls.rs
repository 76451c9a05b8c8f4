//! TLS to databases, against a PostgreSQL server the test starts itself that takes TLS
//! connections only (`hostssl` lines only): the connectors' `ssl_mode` and the control
//! plane's `--database-url ?sslmode=…&sslrootcert=…`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{
    Api, CERTIFICATE_USER, FerryOptions, FerryUp, Reply, StoreKind, TlsPostgres, text,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn up() -> FerryUp {
    FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await
}

/// Creates a source with `configuration` and runs its check; the check's reply.
async fn check_source(ferry: &FerryUp, name: &str, configuration: Value) -> Reply {
    let mut configuration = configuration;
    configuration["sourceType"] = json!("postgres");
    let created = ferry
        .default_workspace()
        .post_source(name, configuration)
        .await;
    assert_eq!(created.status, 200, "{name}: {}", created.body);
    let check = ferry.admin.check_source(&created.body["sourceId"]).await;
    assert_eq!(check.status, 200, "{name}: {}", check.body);
    check
}

fn message(check: &Reply) -> String {
    check.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn verify_full_source_and_destination_sync_through_a_tls_only_server() {
    let server = TlsPostgres::start().await;
    server.create_database("shop").await;
    server.create_database("warehouse").await;
    server
        .execute(
            "shop",
            "CREATE TABLE customers (id int PRIMARY KEY, name text);
             INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 250) i;",
        )
        .await;
    let ferry = up().await;
    // By address (the certificate's IP entry) and by name (its DNS entry).
    let mut source = server.connector_configuration("127.0.0.1", "shop", server.verify_full());
    source["sourceType"] = json!("postgres");
    source["schemas"] = json!(["public"]);
    let mut destination =
        server.connector_configuration("localhost", "warehouse", server.verify_full());
    destination["destinationType"] = json!("postgres");
    destination["schema"] = json!("raw");
    let connection = ferry
        .connection(
            source,
            destination,
            json!([{"name": "customers", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = ferry
        .admin
        .sync(&connection, Duration::from_secs(120))
        .await;
    assert_eq!(job["rowsSynced"], 250, "{job}");
    let rows = |database: &'static str, table: &'static str| {
        let server = &server;
        async move {
            server
                .texts(
                    database,
                    &format!("SELECT ROW(id, name)::text FROM {table} ORDER BY id"),
                )
                .await
        }
    };
    assert_eq!(
        rows("warehouse", "raw.customers").await,
        rows("shop", "customers").await
    );
    // The password stays masked; the mode is shown.
    let source_id = ferry
        .admin
        .get(&format!("/api/public/v1/connections/{}", text(&connection)))
        .await
        .body["sourceId"]
        .clone();
    let shown = ferry
        .admin
        .get(&format!("/api/public/v1/sources/{}", text(&source_id)))
        .await;
    assert_eq!(shown.body["configuration"]["password"], "**********");
    assert_eq!(
        shown.body["configuration"]["ssl_mode"]["mode"],
        "verify-full"
    );
}

#[tokio::test]
async fn each_ssl_mode_against_a_tls_only_server_connects_or_says_why() {
    let server = TlsPostgres::start().await;
    let ferry = up().await;
    let configuration =
        |ssl_mode: Value| server.connector_configuration("127.0.0.1", "postgres", ssl_mode);

    // A CA that did not sign the server's certificate: refused, naming the problem.
    let wrong = check_source(
        &ferry,
        "wrong-ca",
        configuration(
            json!({"mode": "verify-full", "ca_certificate": server.other_ca_certificate()}),
        ),
    )
    .await;
    assert_eq!(wrong.body["status"], "failed", "{}", wrong.body);
    let said = message(&wrong);
    assert!(
        said.contains("certificate") && said.contains("ssl_mode.ca_certificate"),
        "{said}"
    );
    let wrong_ca = check_source(
        &ferry,
        "wrong-ca-verify-ca",
        configuration(
            json!({"mode": "verify-ca", "ca_certificate": server.other_ca_certificate()}),
        ),
    )
    .await;
    assert_eq!(wrong_ca.body["status"], "failed", "{}", wrong_ca.body);

    // Plain text: the server has no line for it.
    let plain = check_source(&ferry, "disable", configuration(json!({"mode": "disable"}))).await;
    assert_eq!(plain.body["status"], "failed", "{}", plain.body);
    assert!(message(&plain).contains("no encryption"), "{}", plain.body);

    // Every mode that may use TLS gets through: prefer and require at once, allow after its
    // plain attempt is refused (as libpq), verify-ca with the right CA.
    for (name, ssl_mode) in [
        ("allow", json!({"mode": "allow"})),
        ("prefer", json!({"mode": "prefer"})),
        ("require", json!("require")),
        (
            "verify-ca",
            json!({"mode": "verify-ca", "ca_certificate": server.ca_certificate()}),
        ),
        ("absent (prefer)", Value::Null),
    ] {
        let mut configuration = configuration(ssl_mode);
        if configuration["ssl_mode"].is_null() {
            configuration.as_object_mut().unwrap().remove("ssl_mode");
        }
        let check = check_source(&ferry, name, configuration).await;
        assert_eq!(check.body["status"], "succeeded", "{name}: {}", check.body);
    }

    // A client certificate authenticates its CN (`cert` in pg_hba.conf); without it that
    // user gets nowhere.
    let (certificate, key) = server.client_certificate();
    let mut by_certificate = configuration(json!({
        "mode": "verify-full", "ca_certificate": server.ca_certificate(),
        "client_certificate": certificate, "client_key": key,
    }));
    by_certificate["username"] = json!(CERTIFICATE_USER);
    by_certificate.as_object_mut().unwrap().remove("password");
    let check = check_source(&ferry, "client-certificate", by_certificate.clone()).await;
    assert_eq!(check.body["status"], "succeeded", "{}", check.body);
    by_certificate["ssl_mode"] = server.verify_full();
    let check = check_source(&ferry, "no-client-certificate", by_certificate).await;
    assert_eq!(check.body["status"], "failed", "{}", check.body);

    // Shapes refused before anything is contacted, naming the key.
    let workspace = ferry.default_workspace();
    for (ssl_mode, field) in [
        (json!({"mode": "verify-ca"}), "ssl_mode.ca_certificate"),
        (
            json!({"mode": "verify-full", "ca_certificate": "/etc/ssl/ca.pem"}),
            "ssl_mode.ca_certificate",
        ),
        (
            json!({"mode": "verify-full", "ca_certificate": server.ca_certificate(),
                   "client_certificate": server.client_certificate().0, "client_key_password": "pw",
                   "client_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n"}),
            "ssl_mode.client_key_password",
        ),
        (json!({"mode": "sometimes"}), "ssl_mode.mode"),
    ] {
        let mut source = configuration(ssl_mode.clone());
        source["sourceType"] = json!("postgres");
        workspace
            .post_source("refused", source)
            .await
            .assert_problem(400)
            .assert_names_field(&format!("configuration.{field}"));
        let mut destination = configuration(ssl_mode);
        destination["destinationType"] = json!("postgres");
        workspace
            .post_destination("refused", destination)
            .await
            .assert_problem(400)
            .assert_names_field(&format!("configuration.{field}"));
    }
}

#[tokio::test]
async fn ferry_server_runs_on_a_store_reached_with_verify_full() {
    let server = TlsPostgres::start().await;
    server.create_database("ferry_store").await;
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Postgres).database_url(&server.url("ferry_store")),
    )
    .await;
    let anonymous = Api::new(ferry.base_url(), None);
    assert_eq!(anonymous.get("/health").await.status, 200);
    // The store is there, migrated, over TLS.
    let tables = server
        .texts(
            "ferry_store",
            "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .await;
    assert_ne!(tables, [Some("0".to_owned())]);
    let workspaces = ferry.admin.get("/api/public/v1/workspaces").await;
    assert_eq!(workspaces.status, 200, "{}", workspaces.body);
}
