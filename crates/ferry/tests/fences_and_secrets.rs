//! Local files stay under the data plane's local root (`<data-dir>/local` for `ferry up`,
//! Airbyte's `/local` mount), whatever the path or symlink, so nothing of the planes' own
//! files is reachable through a connector; connector secrets are the fields the connector's
//! SPEC marks, native or external, and a masked secret sent back is kept only for the same
//! destination.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase, text, wait_for};
use reqwest::Method;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const MASK: &str = "**********";

async fn up() -> FerryUp {
    FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await
}

fn people_csv() -> String {
    format!("{}/tests/fixtures/people.csv", env!("CARGO_MANIFEST_DIR"))
}

fn file_source(url: &str, format: &str) -> Value {
    json!({"sourceType": "file", "dataset_name": "people", "format": format, "url": url,
           "provider": {"storage": "local"}})
}

/// `POST /sources/{id}/check` or `/destinations/{id}/check`: the reply's body.
async fn check(ferry: &FerryUp, kind: &str, id: &Value) -> Value {
    let reply = ferry
        .admin
        .post(
            &format!("/api/public/v1/{kind}/{}/check", text(id)),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn symlink(target: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[tokio::test]
async fn local_files_are_read_and_written_only_under_the_local_root() {
    let ferry = up().await;
    let workspace = ferry.default_workspace();
    let root = ferry.process.local_root();
    let data_dir = ferry.process.data_dir.canonicalize().unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::copy(people_csv(), root.join("data/people.csv")).unwrap();
    let secrets_key = std::fs::read_to_string(data_dir.join("secrets.key")).unwrap();
    let (_, admin_secret) = ferry.process.admin_credentials();

    // Outside the root, lexically: refused at creation, naming the field.
    for outside in [
        "/etc/passwd",
        "../x",
        "/local/../x",
        "data/../../secrets.key",
        &data_dir.join("secrets.key").display().to_string(),
    ] {
        workspace
            .post_source("out", file_source(outside, "csv"))
            .await
            .assert_problem(400)
            .assert_names_field("configuration.url");
        workspace
            .post_destination(
                "out",
                json!({"destinationType": "local-json", "destination_path": outside}),
            )
            .await
            .assert_problem(400)
            .assert_names_field("configuration.destination_path");
    }

    // Inside it, relative or under /local: a sync goes through. The source's file is a
    // symlink inside the root, to a file inside the root.
    symlink(&root.join("data/people.csv"), &root.join("swap.csv"));
    let connection = ferry
        .connection(
            file_source("/local/swap.csv", "csv"),
            json!({"destinationType": "local-json", "destination_path": "out"}),
            json!([{"name": "people", "syncMode": "full_refresh_overwrite"}]),
        )
        .await;
    let job = ferry.admin.sync(&connection, Duration::from_secs(60)).await;
    assert!(job["rowsSynced"].as_i64().unwrap() > 0, "{job}");
    let written = root.join("out/_airbyte_raw_people.jsonl");
    assert!(std::fs::read_to_string(&written).unwrap().contains("Alice"));

    // The same symlink, now to the data dir's secrets.key: the data plane refuses it at
    // sync, check and discover, and the key shows nowhere.
    symlink(&data_dir.join("secrets.key"), &root.join("swap.csv"));
    let job = ferry
        .admin
        .failed_sync(&connection, Duration::from_secs(60))
        .await;
    assert_eq!(job["failureType"], "config_error", "{job}");
    assert!(
        text(&job["failureReason"]).contains("outside the local root"),
        "{job}"
    );
    assert!(
        !std::fs::read_to_string(&written)
            .unwrap()
            .contains(secrets_key.trim())
    );
    let key_source = workspace
        .post_source("key", file_source("swap.csv", "csv"))
        .await;
    assert_eq!(key_source.status, 200, "{}", key_source.body);
    let streams = ferry
        .admin
        .get(&format!(
            "/api/public/v1/streams?sourceId={}",
            text(&key_source.body["sourceId"])
        ))
        .await;
    assert_ne!(streams.status, 200, "{}", streams.body);
    assert!(!streams.body.to_string().contains(secrets_key.trim()));
    let checked = check(&ferry, "sources", &key_source.body["sourceId"]).await;
    assert_eq!(checked["status"], "failed", "{checked}");
    assert!(
        text(&checked["message"]).contains("outside the local root"),
        "{checked}"
    );

    // credentials.json through a JSON source: by a symlinked file, or a symlinked directory.
    symlink(&data_dir.join("credentials.json"), &root.join("creds.json"));
    symlink(&data_dir, &root.join("up"));
    for url in ["creds.json", "/local/up/credentials.json"] {
        let source = workspace
            .post_source("credentials", file_source(url, "json"))
            .await;
        assert_eq!(source.status, 200, "{}", source.body);
        let streams = ferry
            .admin
            .get(&format!(
                "/api/public/v1/streams?sourceId={}",
                text(&source.body["sourceId"])
            ))
            .await;
        assert_ne!(streams.status, 200, "{url}: {}", streams.body);
        assert!(!streams.body.to_string().contains(&admin_secret), "{url}");
    }

    // A destination directory that leads into the data dir: refused by the data plane, and
    // nothing is written there.
    let into_data_dir = workspace
        .post_destination(
            "into data dir",
            json!({"destinationType": "csv", "destination_path": "up/storage"}),
        )
        .await;
    assert_eq!(into_data_dir.status, 200, "{}", into_data_dir.body);
    let checked = check(&ferry, "destinations", &into_data_dir.body["destinationId"]).await;
    assert_eq!(checked["status"], "failed", "{checked}");
    assert!(
        text(&checked["message"]).contains("outside the local root"),
        "{checked}"
    );
    // A PATCH is checked as a creation is.
    ferry
        .admin
        .patch(
            &format!(
                "/api/public/v1/sources/{}",
                text(&key_source.body["sourceId"])
            ),
            json!({"configuration": file_source("/etc/shadow", "csv")}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configuration.url");
}

#[tokio::test]
async fn a_masked_password_is_kept_only_for_the_same_host() {
    let database = TestDatabase::create().await;
    let ferry = up().await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let mut configuration = database.source_configuration();
    configuration["jdbc_url_params"] = json!("password=also-secret");
    let source = workspace.post_source("pg", configuration).await;
    assert_eq!(source.status, 200, "{}", source.body);
    let path = format!("/api/public/v1/sources/{}", text(&source.body["sourceId"]));
    let shown = source.body["configuration"].clone();
    assert_eq!(shown["password"], MASK);
    assert_eq!(shown["jdbc_url_params"], MASK, "the SPEC marks it");
    assert_eq!(shown["host"], "127.0.0.1");

    // Sent back as read, with the same host (the port as text): kept, and the check works.
    let mut same = shown.clone();
    same["port"] = json!("5432");
    let kept = admin.patch(&path, json!({"configuration": same})).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.body["configuration"]["password"], MASK);
    let checked = check(&ferry, "sources", &source.body["sourceId"]).await;
    assert_eq!(checked["status"], "succeeded", "{checked}");
    let put = admin
        .send(
            Method::PUT,
            &path,
            json!({"name": "pg", "configuration": shown}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);

    // Pointed elsewhere: the mask keeps nothing; the secret must be given again.
    for (field, value) in [
        ("host", json!("localhost")),
        ("username", json!("someone_else")),
        ("database", json!("other")),
    ] {
        let mut moved = shown.clone();
        moved[field] = value;
        let reply = admin.patch(&path, json!({"configuration": moved})).await;
        reply.assert_problem(400);
        let detail = text(&reply.body["detail"]);
        assert!(
            detail.contains(&format!("configuration.{field} changed")),
            "{detail}"
        );
        assert!(
            reply.body.to_string().contains("configuration.password")
                || reply
                    .body
                    .to_string()
                    .contains("configuration.jdbc_url_params"),
            "{}",
            reply.body
        );
    }
    let mut moved = shown.clone();
    moved["host"] = json!("localhost");
    moved["jdbc_url_params"] = json!("");
    admin
        .patch(&path, json!({"configuration": moved.clone()}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.password");
    moved["password"] = json!("given-again");
    let given = admin.patch(&path, json!({"configuration": moved})).await;
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!(given.body["configuration"]["host"], "localhost");
    assert_eq!(given.body["configuration"]["password"], MASK);
}

#[tokio::test]
async fn an_external_connectors_spec_says_which_fields_are_secret() {
    let ferry = up().await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    // Its data plane runs the program's `spec` when the first source is made.
    wait_for("the data plane", Duration::from_secs(30), || async {
        let planes = admin.get("/api/public/v1/dataplanes").await.body;
        (planes["data"][0]["status"] == "healthy").then_some(())
    })
    .await;
    let fixture = format!(
        "{}/tests/fixtures/secret_connector.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let definition = workspace
        .post_source_definition(json!({"name": "secretive", "command": ["python3", fixture]}))
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let configuration = json!({
        "host": "api.example.com", "api-key": "K-1", "passphrase": "open sesame",
        "favourite_colour": "teal", "password_hint": "the cat",
        "auth": {"kind": "key", "client_key": "CK-1"},
        "endpoints": [{"url": "https://a", "sesame": "S-a"}, {"url": "https://b", "sesame": "S-b"}],
        "expect": ["S-a", "S-b"],
    });
    let source = admin
        .post(
            "/api/public/v1/sources",
            json!({"name": "secretive", "workspaceId": workspace.id,
                   "definitionId": definition.body["id"], "configuration": configuration}),
        )
        .await;
    assert_eq!(source.status, 200, "{}", source.body);
    let source_id = source.body["sourceId"].clone();
    let path = format!("/api/public/v1/sources/{}", text(&source_id));
    let expected = json!({
        "host": "api.example.com", "api-key": MASK, "passphrase": MASK,
        "favourite_colour": MASK, "password_hint": "the cat",
        "auth": {"kind": "key", "client_key": MASK},
        "endpoints": [{"url": "https://a", "sesame": MASK}, {"url": "https://b", "sesame": MASK}],
        "expect": ["S-a", "S-b"],
    });
    assert_eq!(source.body["configuration"], expected);
    let read = admin.get(&path).await;
    assert_eq!(read.body["configuration"], expected);
    let listed = admin.get("/api/public/v1/sources").await.body;
    for secret in ["K-1", "open sesame", "teal", "CK-1", "S-a\"}", "S-b\"}"] {
        assert!(!listed.to_string().contains(secret), "{secret}: {listed}");
    }
    let checked = check(&ferry, "sources", &source_id).await;
    assert_eq!(checked["status"], "succeeded", "{checked}");

    // The endpoints reordered, their secrets sent back masked: each keeps its own, as the
    // connector's check (which compares them with `expect`) proves.
    let mut reordered = expected.clone();
    reordered["endpoints"] =
        json!([{"url": "https://b", "sesame": MASK}, {"url": "https://a", "sesame": MASK}]);
    reordered["expect"] = json!(["S-b", "S-a"]);
    let patched = admin
        .patch(&path, json!({"configuration": reordered}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["configuration"]["endpoints"][0]["sesame"],
        MASK
    );
    let checked = check(&ferry, "sources", &source_id).await;
    assert_eq!(checked["status"], "succeeded", "{checked}");

    // An endpoint pointed elsewhere, or the host changed: the masks keep nothing.
    let mut elsewhere = expected.clone();
    elsewhere["endpoints"][0]["url"] = json!("https://evil.example");
    admin
        .patch(&path, json!({"configuration": elsewhere}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.endpoints[0].sesame");
    let mut moved = expected.clone();
    moved["host"] = json!("evil.example");
    admin
        .patch(&path, json!({"configuration": moved}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.api-key");
    // A new element with a mask has no stored secret to keep.
    let mut longer = expected.clone();
    longer["endpoints"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": "https://c", "sesame": MASK}));
    admin
        .patch(&path, json!({"configuration": longer}))
        .await
        .assert_problem(400)
        .assert_names_field("configuration.endpoints[2].sesame");
}
