//! External connectors' GLOBAL and LEGACY states (every Airbyte CDC source keeps a GLOBAL
//! one) are committed and handed back exactly as the connector gave them, so a sync resumes
//! where the last one ended instead of reading everything again.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, text};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

fn fixture() -> String {
    format!(
        "{}/../ferry-connectors/tests/fixtures/protocol_connector.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test]
async fn global_and_legacy_states_resume_as_given() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_JOB_MAX_ATTEMPTS", "1"),
    )
    .await;
    let admin = &ferry.admin;
    let workspace = ferry.default_workspace();
    let definition = workspace
        .post_source_definition(json!({"name": "numbers", "command": ["python3", fixture()]}))
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    for (state_type, key) in [("GLOBAL", "__global"), ("LEGACY", "__legacy")] {
        let source = admin
            .create(
                "/api/public/v1/sources",
                json!({"name": state_type, "workspaceId": workspace.id, "definitionId": definition.body["id"],
                       "configuration": {"count": 45, "state_type": state_type}}),
            )
            .await;
        let destination = admin
            .create(
                "/api/public/v1/destinations",
                json!({"name": "nothing", "workspaceId": workspace.id, "configuration": {"destinationType": "dev-null"}}),
            )
            .await;
        let connection = admin
            .create(
                "/api/public/v1/connections",
                json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"],
                       "configurations": {"streams": [{"name": "numbers", "syncMode": "incremental_append"}]}}),
            )
            .await;
        let connection_id = connection["connectionId"].clone();
        let job = admin.sync(&connection_id, Duration::from_secs(60)).await;
        assert_eq!(job["rowsSynced"], 45, "{state_type}: {job}");
        // The source's ESTIMATE trace shows in the stream's stats beside what was synced.
        let numbers = &job["streamStats"][0];
        assert_eq!(numbers["streamName"], "numbers", "{job}");
        assert_eq!(numbers["recordsCommitted"], 45, "{job}");
        assert_eq!(numbers["estimatedRecords"], 45, "{job}");
        assert_eq!(numbers["estimatedBytes"], 45 * 25, "{job}");
        let stored = admin
            .get(&format!(
                "/api/public/v1/connections/{}",
                text(&connection_id)
            ))
            .await
            .body;
        let state = stored["state"]
            .as_array()
            .unwrap()
            .iter()
            .find(|state| state["stream"] == key)
            .unwrap_or_else(|| panic!("{state_type}: no {key} state: {stored}"))
            .clone();
        assert_eq!(state["state"]["type"], state_type, "{state}");
        if state_type == "GLOBAL" {
            assert_eq!(
                state["state"]["global"]["shared_state"]["lsn"], 4500,
                "{state}"
            );
        } else {
            assert_eq!(state["state"]["data"]["offset"], 45, "{state}");
        }

        // More rows at the source: only those are read, from the state given back.
        let patched = admin
            .patch(
                &format!("/api/public/v1/sources/{}", text(&source["sourceId"])),
                json!({"configuration": {"count": 60, "state_type": state_type}}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        let job = admin.sync(&connection_id, Duration::from_secs(60)).await;
        assert_eq!(job["rowsSynced"], 15, "{state_type} resumed: {job}");
    }
}
