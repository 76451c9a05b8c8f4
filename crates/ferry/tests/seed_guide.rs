//! Every curl command of Airbyte's "Multiple region deployments" guide
//! (`shared/reference/000_81cdafa473835b48.txt`), run with the real curl against a real
//! `ferry` process, changing only the host (and the ids the guide leaves for the reader to
//! fill in), on both stores.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use ferry_testkit::{Api, FerryOptions, FerryProcess, StoreKind};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

// The commands as the guide prints them.
const CREATE_REGION: &str = r#"curl --request POST \
--url https://example.com/api/public/v1/regions \
--header "Authorization: Bearer $TOKEN" \
--header "Content-Type: application/json" \
--data '{
"name": "aws-us-east-1",
"organizationId": "00000000-0000-0000-0000-000000000000"
}'"#;

const CREATE_DATAPLANE: &str = r#"curl -X POST https://example.com/api/public/v1/dataplanes \
--header "Authorization: Bearer $TOKEN" \
--header "Content-Type: application/json" \
-d '{
"name": "My Data Plane",
"regionId": "780d5bd9-a8a0-43cf-8b35-cc2061ad8319"
}'"#;

const CREATE_WORKSPACE: &str = r#"curl -X POST "https://example.com/api/public/v1/workspaces" \
--header "Authorization: Bearer $TOKEN" \
--header "Content-Type: application/json" \
-d '{
"name": "My New Workspace",
"dataResidency": "auto"
}'"#;

const UPDATE_WORKSPACE: &str = r#"curl -X PATCH "https://example.com/api/public/v1/workspaces/{workspaceId}" \
--header "Authorization: Bearer $TOKEN" \
--header "Content-Type: application/json" \
-d '{
"name": "Updated Workspace Name",
"dataResidency": "us-west"
}'"#;

const CHECK_WORKSPACE: &str = r#"curl -X GET "https://example.com/api/public/v1/workspaces/{workspaceId}" \
-H "Authorization: Bearer YOUR_ACCESS_TOKEN" \
-H "Content-Type: application/json""#;

/// Runs a guide command through bash and curl; returns the HTTP status and the JSON body.
fn run_curl(command: &str, base_url: &str, token: &str) -> (u16, Value) {
    let command = command
        .replace("https://example.com", base_url)
        .replace("YOUR_ACCESS_TOKEN", token)
        .replacen(
            "curl ",
            "curl --silent --show-error --write-out '\\n%{http_code}' ",
            1,
        );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .env("TOKEN", token)
        .output()
        .expect("curl must be installed to run the guide's commands");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (body, status) = stdout.trim_end().rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap())
}

async fn seed_guide(store: StoreKind) {
    let ferry = FerryProcess::start(BINARY.as_ref(), FerryOptions::new(store)).await;
    let token = ferry.admin_token().await;
    let base = ferry.base_url.as_str();

    // Step 1: create a region.
    let (status, region) = run_curl(CREATE_REGION, base, &token);
    assert_eq!(status, 200, "{region}");
    assert_eq!(region["name"], "aws-us-east-1");
    assert_eq!(
        region["organizationId"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(region["enabled"], true);
    for field in ["regionId", "createdAt", "updatedAt"] {
        assert!(
            region[field]
                .as_str()
                .is_some_and(|value| !value.is_empty()),
            "{field}: {region}"
        );
    }
    assert!(region["createdAt"].as_str().unwrap().ends_with('Z'));
    let region_id = region["regionId"].as_str().unwrap();

    // Step 2: create a data plane in it (the guide's sample region id replaced by ours).
    let (status, dataplane) = run_curl(
        &CREATE_DATAPLANE.replace("780d5bd9-a8a0-43cf-8b35-cc2061ad8319", region_id),
        base,
        &token,
    );
    assert_eq!(status, 200, "{dataplane}");
    assert_eq!(dataplane["regionId"], region_id);
    for field in ["dataplaneId", "clientId", "clientSecret"] {
        assert!(
            dataplane[field]
                .as_str()
                .is_some_and(|value| !value.is_empty()),
            "{field}"
        );
    }
    // The credentials it returned are the ones a data plane authenticates with.
    let dataplane_token = Api::new(base, None)
        .post(
            "/api/v1/dataplanes/token",
            json!({"client_id": dataplane["clientId"], "client_secret": dataplane["clientSecret"]}),
        )
        .await;
    assert_eq!(dataplane_token.status, 200, "{}", dataplane_token.body);
    let identity = Api::new(
        base,
        Some(
            dataplane_token.body["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    )
    .post(
        "/api/v1/dataplanes/initialize",
        json!({"client_id": dataplane["clientId"]}),
    )
    .await;
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert_eq!(identity.body["dataplane_id"], dataplane["dataplaneId"]);
    assert_eq!(identity.body["dataplane_group_id"], region_id);
    assert_eq!(identity.body["dataplane_group_name"], "aws-us-east-1");
    assert_eq!(identity.body["dataplane_enabled"], true);

    // Step 3, create: a workspace in the default region.
    let (status, workspace) = run_curl(CREATE_WORKSPACE, base, &token);
    assert_eq!(status, 200, "{workspace}");
    assert_eq!(workspace["name"], "My New Workspace");
    assert_eq!(workspace["dataResidency"], "auto");
    assert_eq!(
        workspace["notifications"],
        json!({"failure": {}, "success": {}})
    );
    let workspace_id = workspace["workspaceId"].as_str().unwrap();

    // Step 3, update: the guide moves it to a region named "us-west", which must exist.
    let (status, us_west) = run_curl(
        &CREATE_REGION.replace("aws-us-east-1", "us-west"),
        base,
        &token,
    );
    assert_eq!(status, 200, "{us_west}");
    let (status, updated) = run_curl(
        &UPDATE_WORKSPACE.replace("{workspaceId}", workspace_id),
        base,
        &token,
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["workspaceId"], workspace_id);
    assert_eq!(updated["name"], "Updated Workspace Name");
    assert_eq!(updated["dataResidency"], "us-west");
    assert_eq!(
        updated["notifications"],
        json!({"failure": {}, "success": {}})
    );

    // "Check which region your workspaces use".
    let (status, checked) = run_curl(
        &CHECK_WORKSPACE.replace("{workspaceId}", workspace_id),
        base,
        &token,
    );
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["workspaceId"], workspace_id);
    assert_eq!(checked["dataResidency"], "us-west");
    assert_eq!(checked["regionId"], us_west["regionId"]);

    // The same update naming the region by its id (the guide: "a region identifier you
    // received in step 1"), and by the spec's regionId.
    let by_id = Api::new(base, Some(token.clone()))
        .patch(
            &format!("/api/public/v1/workspaces/{workspace_id}"),
            json!({"dataResidency": region_id}),
        )
        .await;
    assert_eq!(by_id.status, 200, "{}", by_id.body);
    assert_eq!(by_id.body["dataResidency"], "aws-us-east-1");
    let by_region_id = Api::new(base, Some(token.clone()))
        .patch(
            &format!("/v1/workspaces/{workspace_id}"),
            json!({"regionId": us_west["regionId"]}),
        )
        .await;
    assert_eq!(by_region_id.body["dataResidency"], "us-west");

    // The default workspace, created at first start, uses the default region ("auto").
    let api = Api::new(base, Some(token));
    let listed = api
        .get("/api/public/v1/workspaces?includeDeleted=false&limit=20&offset=0")
        .await;
    assert_eq!(listed.status, 200);
    let residencies: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|workspace| workspace["dataResidency"].as_str().unwrap())
        .collect();
    assert_eq!(residencies, ["auto", "us-west"]);
}

#[tokio::test]
async fn seed_guide_on_sqlite() {
    seed_guide(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn seed_guide_on_postgres() {
    seed_guide(StoreKind::Postgres).await;
}
