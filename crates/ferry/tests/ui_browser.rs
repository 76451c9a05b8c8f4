//! The web UI in a real browser (headless Chromium over WebDriver) against a real `ferry
//! up`: the guide's steps as a user clicks them — sign in; Workspace settings → General →
//! Region → Save changes, seen by the API; the organization page's workspaces and regions;
//! a region and a data plane made in the UI and started with the credentials it showed,
//! healthy on the Regions page; a PostgreSQL source and destination from the forms the
//! SPECs generate, a connection, Sync now, and the job page with its rows, the region and
//! data plane that ran it, and its log; a reader sees no admin action and is refused one.
//! Screenshots of each page at 1280×800 and 390×844 go to `target/tmp/ui-screenshots/`.

#![allow(clippy::unwrap_used)]

mod ui_support;

use std::time::Duration;

use ferry_testkit::{
    DEFAULT_ORGANIZATION_ID, DataplaneProcess, FerryOptions, FerryUp, StoreKind, TestDatabase, text,
};
use serde_json::{Value, json};
use ui_support::Browser;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

async fn region_id(ferry: &FerryUp, name: &str) -> String {
    let regions = ferry
        .admin
        .get(&format!(
            "/api/public/v1/regions?organizationId={DEFAULT_ORGANIZATION_ID}"
        ))
        .await;
    let region = regions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|region| region["name"] == name)
        .unwrap_or_else(|| panic!("no region {name}: {}", regions.body))
        .clone();
    text(&region["regionId"])
}

/// Fills a PostgreSQL connector's generated form with the test database.
async fn fill_postgres(browser: &Browser, database: &TestDatabase, name: &str) {
    browser.fill("#actor-name", name).await;
    browser.fill("configuration.host", "127.0.0.1").await;
    browser.fill("configuration.port", "5432").await;
    browser
        .fill("configuration.database", database.name())
        .await;
    browser.fill("configuration.username", "postgres").await;
    browser
        .fill("configuration.password", "unused-with-trust-auth")
        .await;
    browser
        .select("select[name='configuration.ssl_mode.__option']", "disable")
        .await;
}

#[tokio::test]
async fn the_guides_steps_in_a_browser() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let credentials = ferry.process.credentials();
    let email = credentials["admin"]["email"].as_str().unwrap().to_owned();
    let password = credentials["admin"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(email, "admin@example.com");
    let workspace_id = text(&ferry.workspace);
    // A second workspace, in the default region, for the organization page's list.
    let other = ferry
        .admin
        .create(
            "/api/public/v1/workspaces",
            json!({"name": "Analytics", "organizationId": DEFAULT_ORGANIZATION_ID}),
        )
        .await;

    let browser = Browser::start(ferry.base_url(), "guide").await;

    // Sign in.
    browser.open("/").await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.screenshots("sign-in").await;
    browser.sign_in(&email, "wrong password entirely").await;
    assert!(
        browser
            .body()
            .await
            .contains("The email or the password is wrong.")
    );
    browser.sign_in(&email, &password).await;
    assert_eq!(
        browser.path().await,
        format!("/workspaces/{workspace_id}/connections")
    );

    // A region, made on the Regions page.
    browser.open("/organization/regions").await;
    browser.fill("#region-name", "eu-ui").await;
    browser.press("Create region").await;
    assert!(browser.exists("section[data-region='eu-ui']").await);
    let eu = region_id(&ferry, "eu-ui").await;

    // Workspace settings → General → Region → Save changes: the API sees it.
    browser
        .open(&format!("/workspaces/{workspace_id}/settings"))
        .await;
    assert!(browser.body().await.contains("General"));
    browser.select("select#region", "eu-ui").await;
    browser.screenshots("workspace-settings").await;
    browser.press("Save changes").await;
    assert!(browser.body().await.contains("Changes saved."));
    let shown = ferry
        .admin
        .get(&format!("/api/public/v1/workspaces/{workspace_id}"))
        .await;
    assert_eq!(shown.body["dataResidency"], "eu-ui", "{}", shown.body);
    assert_eq!(text(&shown.body["regionId"]), eu);

    // The organization page lists every workspace with its region.
    browser.open("/organization").await;
    let rows = browser.all("tbody tr").await;
    let mut listed = Vec::new();
    for row in rows {
        listed.push(row.text().await.unwrap());
    }
    let workspaces = ferry.admin.get("/api/public/v1/workspaces").await;
    let workspaces = workspaces.body["data"].as_array().unwrap().clone();
    assert_eq!(workspaces.len(), 2);
    for workspace in &workspaces {
        let name = workspace["name"].as_str().unwrap();
        let residency = workspace["dataResidency"].as_str().unwrap();
        assert!(
            listed
                .iter()
                .any(|row| row.contains(name) && row.to_lowercase().contains(residency)),
            "{name} ({residency}) not listed: {listed:?}"
        );
    }
    assert!(
        listed
            .iter()
            .any(|row| row.contains("Analytics") && row.contains("AUTO"))
    );
    assert_eq!(other["dataResidency"], "auto");
    browser.screenshots("organization").await;

    // A data plane in eu-ui, made in the UI and started with the credentials it showed.
    browser.open("/organization/regions").await;
    browser
        .css(&format!("#plane-name-{eu}"))
        .await
        .send_keys("eu-plane-1")
        .await
        .unwrap();
    let create = browser
        .css(&format!(
            "form[action='/organization/regions/{eu}/dataplanes'] button"
        ))
        .await;
    browser.submit_with(create).await;
    let client_id = browser.text("#client-id").await;
    let client_secret = browser.text("#client-secret").await;
    let command = browser.text("#dataplane-command").await;
    assert!(command.contains(&client_secret) && command.contains("ferry dataplane"));
    assert!(browser.text("#helm-values").await.contains("airbyteUrl:"));
    browser.screenshots("dataplane-created").await;
    let _plane = DataplaneProcess::start(
        BINARY.as_ref(),
        ferry.base_url(),
        &client_id,
        &client_secret,
        &[],
    );
    browser.open("/organization/regions").await;
    // The status cell refreshes itself (htmx): no reload here.
    browser
        .wait_for_text(
            "tr[data-dataplane='eu-plane-1'] td.status",
            "healthy",
            Duration::from_secs(15),
        )
        .await;
    browser.screenshots("regions").await;
    // Deleting a region still in use is refused, the reasons in words.
    let delete = browser
        .css(&format!(
            "form[action='/organization/regions/{eu}/delete'] button"
        ))
        .await;
    browser.submit_with(delete).await;
    let refusal = browser.text(".alert.error").await;
    assert!(refusal.contains("region is still in use"), "{refusal}");
    assert!(browser.exists("section[data-region='eu-ui']").await);
    browser.screenshots("region-in-use").await;

    // A PostgreSQL source and destination from their generated forms.
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE public.people (id integer PRIMARY KEY, name text);
             INSERT INTO public.people VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger');",
        )
        .await;
    browser
        .open(&format!(
            "/workspaces/{workspace_id}/sources/new?type=postgres"
        ))
        .await;
    fill_postgres(&browser, &database, "people-db").await;
    browser.fill("configuration.schemas", "public").await;
    browser.screenshots("source-form").await;
    // The API's field error, next to its field; the typed secret is not sent back.
    browser.fill("configuration.port", "70000").await;
    browser.press("Save source").await;
    let error = browser.text("[id='error-configuration.port']").await;
    assert!(error.contains("port"), "{error}");
    assert!(
        !browser
            .client
            .source()
            .await
            .unwrap()
            .contains("unused-with-trust-auth")
    );
    browser.screenshots("source-field-error").await;
    fill_postgres(&browser, &database, "people-db").await;
    browser.press("Save source").await;
    assert!(browser.path().await.starts_with("/sources/"));
    let source_path = browser.path().await;
    // Never sent back: the password field is empty, the page has no trace of the secret.
    assert!(
        !browser
            .client
            .source()
            .await
            .unwrap()
            .contains("unused-with-trust-auth")
    );
    browser.press("Test").await;
    browser
        .wait_for_text("[data-check]", "Test succeeded", Duration::from_secs(60))
        .await;
    browser.screenshots("source-tested").await;

    browser
        .open(&format!(
            "/workspaces/{workspace_id}/destinations/new?type=postgres"
        ))
        .await;
    fill_postgres(&browser, &database, "warehouse").await;
    browser.fill("configuration.schema", "ui_dest").await;
    browser.press("Save destination").await;
    assert!(browser.path().await.starts_with("/destinations/"));

    // A connection of the discovered stream, and Sync now.
    browser
        .open(&format!("/workspaces/{workspace_id}/connections/new"))
        .await;
    browser.select("select#source", "people-db").await;
    browser.select("select#destination", "warehouse").await;
    browser.press("Next: choose streams").await;
    browser
        .wait_for_text("table", "people", Duration::from_secs(5))
        .await;
    browser.screenshots("streams").await;
    browser.press("Create connection").await;
    assert!(browser.path().await.starts_with("/connections/"));
    let connection_path = browser.path().await;
    browser.press("Sync now").await;
    assert!(browser.path().await.starts_with("/jobs/"));
    browser
        .wait_for_text("#job-status", "succeeded", Duration::from_secs(90))
        .await;
    assert_eq!(browser.text("#job-rows").await, "3");
    let region = browser.text("tr[data-attempt='1'] td.region").await;
    let plane = browser.text("tr[data-attempt='1'] td.dataplane").await;
    assert!(region.contains("eu-ui"), "{region}");
    assert!(plane.contains("eu-plane-1"), "{plane}");
    let log = browser
        .wait_for_text("pre.log", "people", Duration::from_secs(10))
        .await;
    assert!(!log.trim().is_empty());
    browser.screenshots("job").await;
    // Search the log: htmx swaps the matching lines in, the page stays.
    browser.fill("#search-1", "people").await;
    browser
        .client
        .find(fantoccini::Locator::XPath(
            "//button[normalize-space(.)='Find']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("#log-body-1", "matching lines", Duration::from_secs(10))
        .await;
    let job_path = browser.path().await;
    let synced = database
        .texts("SELECT name FROM ui_dest.people ORDER BY name")
        .await;
    assert_eq!(synced.len(), 3);
    browser.open(&connection_path).await;
    assert!(browser.body().await.contains("succeeded"));
    browser.screenshots("connection").await;

    // Editing the source without retyping its password keeps the stored one.
    browser.open(&source_path).await;
    browser.fill("#actor-name", "people-db (renamed)").await;
    browser.press("Save source").await;
    assert!(browser.body().await.contains("Changes saved."));
    let source_id = source_path.trim_start_matches("/sources/");
    let stored = ferry
        .admin
        .get(&format!("/api/public/v1/sources/{source_id}"))
        .await;
    assert_eq!(stored.body["name"], "people-db (renamed)");
    assert_eq!(stored.body["configuration"]["password"], "**********");
    assert_eq!(stored.body["configuration"]["port"], 5432);

    // A reader of the workspace sees no admin action, and the server refuses them anyway.
    let reader = ferry
        .admin
        .create(
            "/api/public/v1/users",
            json!({"name": "Reader", "email": "reader@example.com"}),
        )
        .await;
    let reader_id = text(&reader["id"]);
    ferry
        .admin
        .create(
            "/api/public/v1/permissions",
            json!({"permissionType": "workspace_reader", "userId": reader_id, "workspaceId": workspace_id}),
        )
        .await;
    // The admin gives the reader a password on the Users page.
    browser.open("/users").await;
    browser
        .fill(&format!("#password-{reader_id}"), "reader-password-1")
        .await;
    let set = browser
        .css(&format!(
            "form[action='/users/{reader_id}/password'] button"
        ))
        .await;
    browser.submit_with(set).await;
    assert!(
        browser
            .body()
            .await
            .contains("reader@example.com has a new password.")
    );
    browser.sign_out().await;
    browser
        .sign_in("reader@example.com", "reader-password-1")
        .await;
    browser.open(&connection_path).await;
    assert!(!browser.has_button("Sync now").await);
    let nav = browser.text("header").await;
    assert!(!nav.contains("Regions") && !nav.contains("Users"), "{nav}");
    browser
        .open(&format!("/workspaces/{workspace_id}/settings"))
        .await;
    assert!(!browser.has_button("Save changes").await);
    browser.screenshots("reader-settings").await;
    browser.open("/organization/regions").await;
    assert!(browser.body().await.contains("Not allowed"));
    assert!(!browser.has_button("Create region").await);

    // The reader's own session and CSRF token, posting what the page did not offer.
    let cookie = browser.session_cookie().await;
    let csrf = browser
        .css("form.signout input[name='csrf']")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forged = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", ferry.base_url()))
            .header("Cookie", format!("ferry_session={cookie}"))
            .form(&form)
            .send()
    };
    // The reader may read the log, and download it whole.
    let download = http
        .get(format!("{}{job_path}/attempts/1/log.txt", ferry.base_url()))
        .header("Cookie", format!("ferry_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(download.text().await.unwrap().contains("public.people"));
    let sync = forged(
        &format!("{connection_path}/sync"),
        vec![("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(sync.status(), 403);
    let region = forged(
        "/organization/regions",
        vec![("csrf", csrf.clone()), ("name", "reader-region".to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(region.status(), 403);
    let move_workspace = forged(
        &format!("/workspaces/{workspace_id}/settings"),
        vec![
            ("csrf", csrf),
            ("name", "Renamed".to_owned()),
            ("regionId", eu.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(move_workspace.status(), 403);
    let after = ferry
        .admin
        .get(&format!("/api/public/v1/workspaces/{workspace_id}"))
        .await;
    assert_ne!(after.body["name"], "Renamed");
    let jobs = ferry.admin.get("/api/public/v1/jobs").await;
    assert_eq!(jobs.body["data"].as_array().unwrap().len(), 1);
    let regions: Vec<Value> = ferry
        .admin
        .get(&format!(
            "/api/public/v1/regions?organizationId={DEFAULT_ORGANIZATION_ID}"
        ))
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        regions
            .iter()
            .all(|region| region["name"] != "reader-region")
    );
    browser.stop().await;
}
