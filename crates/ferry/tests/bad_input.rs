//! Bad input on every endpoint gets a 4xx problem body naming what is wrong — never a 5xx,
//! never a panic — and Ferry's stricter rules (API.md) hold.

#![allow(clippy::unwrap_used)]

use ferry_testkit::{
    DEFAULT_ORGANIZATION_ID, FerryOptions, FerryUp, Reply, StoreKind, Workspace, text,
};
use reqwest::Method;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const ORG: &str = DEFAULT_ORGANIZATION_ID;
const UNKNOWN: &str = "6f1c2d3e-0000-4000-8000-000000000001";

fn assert_client_error(reply: &Reply, context: &str) {
    assert!(
        (400..500).contains(&reply.status),
        "{context}: expected a 4xx, got {} {}",
        reply.status,
        reply.body
    );
    assert_eq!(
        reply.body["status"], reply.status,
        "{context}: problem body {}",
        reply.body
    );
    assert!(
        reply.body["title"].is_string() && reply.body["detail"].is_string(),
        "{context}: {}",
        reply.body
    );
    assert!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|kind| kind.starts_with("application/json")),
        "{context}: content type {:?}",
        reply.content_type
    );
}

/// Region `eu` with data plane `eu-1` (never started) and workspace `w`, a reader of `w`, and
/// an application.
struct Fixture {
    ferry: FerryUp,
    region_id: String,
    dataplane_id: String,
    workspace: Workspace,
    permission_id: String,
    application_id: String,
}

async fn fixture(store: StoreKind) -> Fixture {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(store)).await;
    let admin = &ferry.admin;
    let region = ferry.region("eu").await;
    let dataplane = ferry.plane(&region, "eu-1").await;
    let workspace = ferry.workspace_in(&region, "w").await;
    let user = admin
        .post(
            "/api/public/v1/users",
            json!({"name": "U", "email": "u@example.com"}),
        )
        .await;
    let permission = admin
        .post(
            "/api/public/v1/permissions",
            json!({"permissionType": "workspace_reader", "userId": user.body["id"], "workspaceId": workspace.id}),
        )
        .await;
    let application = admin
        .post("/api/public/v1/applications", json!({"name": "a"}))
        .await;
    Fixture {
        dataplane_id: dataplane.id,
        workspace,
        permission_id: text(&permission.body["permissionId"]),
        application_id: text(&application.body["id"]),
        region_id: region.id,
        ferry,
    }
}

/// Every route that takes a JSON body.
fn body_routes(fixture: &Fixture) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/public/v1/applications".to_owned()),
        (Method::POST, "/api/public/v1/regions".to_owned()),
        (
            Method::PATCH,
            format!("/api/public/v1/regions/{}", fixture.region_id),
        ),
        (Method::POST, "/api/public/v1/dataplanes".to_owned()),
        (
            Method::PATCH,
            format!("/api/public/v1/dataplanes/{}", fixture.dataplane_id),
        ),
        (Method::POST, "/api/public/v1/workspaces".to_owned()),
        (
            Method::PATCH,
            format!("/api/public/v1/workspaces/{}", fixture.workspace.id),
        ),
        (Method::POST, "/api/public/v1/permissions".to_owned()),
        (
            Method::PATCH,
            format!("/api/public/v1/permissions/{}", fixture.permission_id),
        ),
        (Method::POST, "/api/public/v1/users".to_owned()),
        (Method::POST, "/api/public/v1/applications/token".to_owned()),
        (Method::POST, "/api/v1/dataplanes/token".to_owned()),
    ]
}

async fn every_body_route_rejects_malformed_and_oversized_bodies(store: StoreKind) {
    let fixture = fixture(store).await;
    let admin = &fixture.ferry.admin;
    for (method, path) in body_routes(&fixture) {
        for (label, content_type, body) in [
            (
                "malformed JSON",
                "application/json",
                b"{\"name\": ".to_vec(),
            ),
            ("not an object", "application/json", b"[1, 2, 3]".to_vec()),
            ("empty body", "application/json", Vec::new()),
            ("trailing garbage", "application/json", b"{} {}".to_vec()),
            ("oversized body", "application/json", {
                let mut big = b"{\"name\": \"".to_vec();
                big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
                big.extend(b"\"}");
                big
            }),
        ] {
            let reply = admin
                .send_raw(method.clone(), &path, content_type, body)
                .await;
            assert_client_error(&reply, &format!("{label} to {method} {path}"));
            if label == "oversized body" {
                assert_eq!(reply.status, 413, "{method} {path}");
            }
        }
        if !path.ends_with("/token") {
            let reply = admin
                .send_raw(method.clone(), &path, "text/plain", b"{}".to_vec())
                .await;
            assert_client_error(&reply, &format!("text/plain to {method} {path}"));
            assert_eq!(reply.status, 415);
        }
    }
}

#[tokio::test]
async fn every_body_route_rejects_malformed_and_oversized_bodies_on_sqlite() {
    every_body_route_rejects_malformed_and_oversized_bodies(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn missing_fields_and_wrong_types_are_named() {
    let fixture = fixture(StoreKind::Sqlite).await;
    let admin = &fixture.ferry.admin;
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"organizationId": ORG}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": "x"}),
            "organizationId",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": 7, "organizationId": ORG}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": "x", "organizationId": "nope"}),
            "organizationId",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": "x", "organizationId": ORG, "enabled": "yes"}),
            "enabled",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": "  ", "organizationId": ORG}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/regions".into(),
            json!({"name": "x", "organizationId": UNKNOWN}),
            "organizationId",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/regions/{}", fixture.region_id),
            json!({"name": ""}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/regions/{}", fixture.region_id),
            json!({"enabled": 1}),
            "enabled",
        ),
        (
            Method::POST,
            "/api/public/v1/dataplanes".into(),
            json!({"name": "x"}),
            "regionId",
        ),
        (
            Method::POST,
            "/api/public/v1/dataplanes".into(),
            json!({"regionId": fixture.region_id}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/dataplanes".into(),
            json!({"name": "x", "regionId": 12}),
            "regionId",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/dataplanes/{}", fixture.dataplane_id),
            json!({"name": ["a"]}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "regionId": "abc"}),
            "regionId",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "regionId": UNKNOWN}),
            "regionId",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "dataResidency": "atlantis"}),
            "dataResidency",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "dataResidency": ""}),
            "dataResidency",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "organizationId": UNKNOWN}),
            "organizationId",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "notifications": {"failure": {"email": {"enabled": "no"}}}}),
            "notifications.failure.email.enabled",
        ),
        (
            Method::POST,
            "/api/public/v1/workspaces".into(),
            json!({"name": "x", "notifications": {"paging": {}}}),
            "notifications.paging",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/workspaces/{}", fixture.workspace.id),
            json!({"name": ""}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/workspaces/{}", fixture.workspace.id),
            json!({"regionId": UNKNOWN}),
            "regionId",
        ),
        (
            Method::POST,
            "/api/public/v1/permissions".into(),
            json!({"userId": UNKNOWN}),
            "permissionType",
        ),
        (
            Method::POST,
            "/api/public/v1/permissions".into(),
            json!({"permissionType": "workspace_god", "userId": UNKNOWN}),
            "permissionType",
        ),
        (
            Method::POST,
            "/api/public/v1/permissions".into(),
            json!({"permissionType": "workspace_reader"}),
            "userId",
        ),
        (
            Method::POST,
            "/api/public/v1/permissions".into(),
            json!({"permissionType": "workspace_reader", "userId": UNKNOWN, "workspaceId": fixture.workspace.id}),
            "userId",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/permissions/{}", fixture.permission_id),
            json!({}),
            "permissionType",
        ),
        (
            Method::PATCH,
            format!("/api/public/v1/permissions/{}", fixture.permission_id),
            json!({"permissionType": "organization_admin"}),
            "permissionType",
        ),
        (
            Method::POST,
            "/api/public/v1/users".into(),
            json!({"name": "x", "email": "not-an-email"}),
            "email",
        ),
        (
            Method::POST,
            "/api/public/v1/users".into(),
            json!({"email": "a@b.io"}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/applications".into(),
            json!({}),
            "name",
        ),
        (
            Method::POST,
            "/api/public/v1/applications".into(),
            json!({"name": "x", "userId": UNKNOWN}),
            "userId",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = admin.send(method.clone(), &path, body.clone()).await;
        assert_client_error(&reply, &format!("{method} {path} {body}"));
        assert_eq!(reply.status, 400, "{method} {path} {body}: {}", reply.body);
        reply.assert_names_field(field);
    }
    // A workspace permission for a user that does exist, but without its workspace.
    let user = admin
        .post(
            "/api/public/v1/users",
            json!({"name": "V", "email": "v@example.com"}),
        )
        .await;
    admin
        .post(
            "/api/public/v1/permissions",
            json!({"permissionType": "workspace_reader", "userId": user.body["id"]}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("workspaceId");
    admin
        .post(
            "/api/public/v1/permissions",
            json!({"permissionType": "organization_reader", "userId": user.body["id"]}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("organizationId");
}

#[tokio::test]
async fn unknown_ids_queries_and_routes_are_4xx() {
    let fixture = fixture(StoreKind::Sqlite).await;
    let admin = &fixture.ferry.admin;
    for path in [
        format!("/api/public/v1/regions/{UNKNOWN}"),
        format!("/api/public/v1/dataplanes/{UNKNOWN}"),
        format!("/api/public/v1/workspaces/{UNKNOWN}"),
        format!("/api/public/v1/permissions/{UNKNOWN}"),
        format!("/api/public/v1/applications/{UNKNOWN}"),
    ] {
        admin.get(&path).await.assert_problem(404);
        admin.delete(&path).await.assert_problem(404);
    }
    admin
        .patch(
            &format!("/api/public/v1/regions/{UNKNOWN}"),
            json!({"enabled": true}),
        )
        .await
        .assert_problem(404);
    admin
        .patch(
            &format!("/api/public/v1/dataplanes/{UNKNOWN}"),
            json!({"enabled": true}),
        )
        .await
        .assert_problem(404);
    admin
        .patch(
            &format!("/api/public/v1/workspaces/{UNKNOWN}"),
            json!({"name": "x"}),
        )
        .await
        .assert_problem(404);
    admin
        .post(
            &format!("/api/public/v1/dataplanes/{UNKNOWN}/rotate_secret"),
            json!({}),
        )
        .await
        .assert_problem(404);
    admin
        .post(
            "/api/public/v1/dataplanes",
            json!({"name": "x", "regionId": UNKNOWN}),
        )
        .await
        .assert_problem(404);
    for resource in [
        "regions",
        "dataplanes",
        "workspaces",
        "permissions",
        "applications",
    ] {
        let reply = admin
            .get(&format!("/api/public/v1/{resource}/not-a-uuid"))
            .await;
        assert_client_error(&reply, resource);
        if resource != "applications" {
            assert_eq!(reply.status, 400, "{resource}");
        }
    }
    for query in [
        "/api/public/v1/regions",
        "/api/public/v1/regions?organizationId=xyz",
        "/api/public/v1/workspaces?limit=0",
        "/api/public/v1/workspaces?limit=101",
        "/api/public/v1/workspaces?limit=ten",
        "/api/public/v1/workspaces?offset=-1",
        "/api/public/v1/workspaces?includeDeleted=maybe",
        "/api/public/v1/workspaces?workspaceIds=nope",
        "/api/public/v1/dataplanes?regionIds=nope",
        "/api/public/v1/users",
        "/api/public/v1/permissions?userId=nope",
    ] {
        let reply = admin.get(query).await;
        assert_client_error(&reply, query);
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
    }
    admin
        .get(&format!("/api/public/v1/regions?organizationId={UNKNOWN}"))
        .await
        .assert_problem(404);
    admin
        .get(&format!("/api/public/v1/dataplanes?regionIds={UNKNOWN}"))
        .await
        .assert_problem(404);
    admin
        .get("/api/public/v1/no-such-thing")
        .await
        .assert_problem(404);
    admin.get("/nowhere").await.assert_problem(404);
    admin
        .send(Method::PUT, "/api/public/v1/regions", json!({}))
        .await
        .assert_problem(405);
}

async fn ferry_rules(store: StoreKind) {
    let fixture = fixture(store).await;
    let admin = &fixture.ferry.admin;
    // Region names are unique per organization, case-insensitively.
    let duplicate = admin
        .post(
            "/api/public/v1/regions",
            json!({"name": "EU", "organizationId": ORG}),
        )
        .await;
    duplicate.assert_problem(409);
    let other = admin
        .post(
            "/api/public/v1/regions",
            json!({"name": "us", "organizationId": ORG}),
        )
        .await;
    admin
        .patch(
            &format!("/api/public/v1/regions/{}", text(&other.body["regionId"])),
            json!({"name": "eu"}),
        )
        .await
        .assert_problem(409);

    // A region in use cannot be deleted, and the refusal names what uses it.
    let refused = admin
        .delete(&format!("/api/public/v1/regions/{}", fixture.region_id))
        .await;
    refused.assert_problem(409);
    let detail = text(&refused.body["detail"]);
    assert!(
        detail.contains("eu-1") && detail.contains("'w'"),
        "{detail}"
    );
    // Neither can the default region.
    let regions = admin
        .get(&format!("/api/public/v1/regions?organizationId={ORG}"))
        .await;
    let default_region = regions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "AUTO")
        .unwrap();
    admin
        .delete(&format!(
            "/api/public/v1/regions/{}",
            text(&default_region["regionId"])
        ))
        .await
        .assert_problem(409);

    // A disabled region cannot be given to a workspace.
    let other_id = text(&other.body["regionId"]);
    admin
        .patch(
            &format!("/api/public/v1/regions/{other_id}"),
            json!({"enabled": false}),
        )
        .await;
    admin
        .post(
            "/api/public/v1/workspaces",
            json!({"name": "x", "regionId": other_id}),
        )
        .await
        .assert_problem(422)
        .assert_names_field("regionId");
    admin
        .patch(
            &format!("/api/public/v1/workspaces/{}", fixture.workspace.id),
            json!({"dataResidency": "us"}),
        )
        .await
        .assert_problem(422)
        .assert_names_field("dataResidency");
    // regionId and dataResidency that disagree.
    admin
        .post(
            "/api/public/v1/workspaces",
            json!({"name": "x", "regionId": fixture.region_id, "dataResidency": "auto"}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("dataResidency");
    // An unused region can go; then it is gone from reads and lists.
    let deleted = admin
        .delete(&format!("/api/public/v1/regions/{other_id}"))
        .await;
    assert_eq!(deleted.status, 200);
    admin
        .get(&format!("/api/public/v1/regions/{other_id}"))
        .await
        .assert_problem(404);

    // Deleted workspaces: 204 with no body, then 404, and listed only with includeDeleted.
    let deleted = admin
        .delete(&format!(
            "/api/public/v1/workspaces/{}",
            fixture.workspace.id
        ))
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    admin
        .get(&format!(
            "/api/public/v1/workspaces/{}",
            fixture.workspace.id
        ))
        .await
        .assert_problem(404);
    let without = admin.get("/api/public/v1/workspaces").await;
    let with = admin
        .get("/api/public/v1/workspaces?includeDeleted=true")
        .await;
    assert_eq!(
        without.body["data"].as_array().unwrap().len() + 1,
        with.body["data"].as_array().unwrap().len()
    );

    // Permissions: 204 on delete.
    let deleted = admin
        .delete(&format!(
            "/api/public/v1/permissions/{}",
            fixture.permission_id
        ))
        .await;
    assert!(
        deleted.status == 204 || deleted.status == 404,
        "{}",
        deleted.status
    );
    let _ = &fixture.application_id;
}

#[tokio::test]
async fn ferry_rules_on_sqlite() {
    ferry_rules(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn ferry_rules_on_postgres() {
    ferry_rules(StoreKind::Postgres).await;
}

#[tokio::test]
async fn workspace_pages_follow_airbytes_links() {
    let fixture = fixture(StoreKind::Sqlite).await;
    let admin = &fixture.ferry.admin;
    for index in 0..4 {
        admin
            .post(
                "/api/public/v1/workspaces",
                json!({"name": format!("page-{index}")}),
            )
            .await;
    }
    // 6 workspaces in all (default, "w", 4 more): pages of 4, then 2, then an empty one.
    let first = admin
        .get("/api/public/v1/workspaces?limit=4&includeDeleted=false")
        .await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 4);
    assert_eq!(first.body["previous"], "");
    let next = text(&first.body["next"]);
    assert!(next.starts_with(&admin.base_url), "{next}");
    assert!(
        next.contains("includeDeleted=false")
            && next.contains("limit=4")
            && next.contains("offset=4"),
        "{next}"
    );
    let second = admin.get(next.strip_prefix(&admin.base_url).unwrap()).await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 2);
    assert!(text(&second.body["previous"]).contains("offset=0"));
    let third = admin
        .get(
            text(&second.body["next"])
                .strip_prefix(&admin.base_url)
                .unwrap(),
        )
        .await;
    assert_eq!(third.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(third.body["next"], "");
    // Both array forms of workspaceIds.
    let ids: Vec<String> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|w| text(&w["workspaceId"]))
        .collect();
    let exploded = admin
        .get(&format!(
            "/api/public/v1/workspaces?workspaceIds={}&workspaceIds={}",
            ids[0], ids[1]
        ))
        .await;
    let comma = admin
        .get(&format!(
            "/v1/workspaces/?workspaceIds={},{}",
            ids[0], ids[1]
        ))
        .await;
    assert_eq!(exploded.body["data"], comma.body["data"]);
    assert_eq!(exploded.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn sources_destinations_connections_and_jobs_reject_bad_input() {
    let fixture = fixture(StoreKind::Sqlite).await;
    let admin = &fixture.ferry.admin;
    let workspace = fixture.workspace.id.as_str();
    let source = fixture
        .workspace
        .post_source("f", json!({"sourceType": "faker", "count": 5}))
        .await;
    assert_eq!(source.status, 200, "{}", source.body);
    assert_eq!(
        source.body["definitionId"],
        "dfd88b22-b603-4c3d-aad7-3701784586b1"
    );
    let destination = fixture
        .workspace
        .post_destination("n", json!({"destinationType": "dev-null"}))
        .await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/api/public/v1/sources",
            json!({"workspaceId": workspace, "configuration": {"sourceType": "faker"}}),
            "name",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "configuration": {"sourceType": "faker"}}),
            "workspaceId",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace}),
            "configuration",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": []}),
            "configuration",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {}}),
            "configuration.sourceType",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {"sourceType": "oracle-9i"}}),
            "configuration.sourceType",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {"sourceType": 3}}),
            "configuration.sourceType",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {"sourceType": "faker", "count": "many"}}),
            "configuration.count",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {"sourceType": "faker", "records_per_slice": 0}}),
            "configuration.records_per_slice",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": UNKNOWN, "configuration": {"sourceType": "faker"}}),
            "workspaceId",
        ),
        (
            "/api/public/v1/sources",
            json!({"name": "x", "workspaceId": workspace, "configuration": {}, "definitionId": UNKNOWN}),
            "definitionId",
        ),
        (
            "/api/public/v1/destinations",
            json!({"name": "x", "workspaceId": workspace, "configuration": {"destinationType": "faker"}}),
            "configuration.destinationType",
        ),
        (
            "/api/public/v1/connections",
            json!({"destinationId": destination.body["destinationId"]}),
            "sourceId",
        ),
        (
            "/api/public/v1/connections",
            json!({"sourceId": UNKNOWN, "destinationId": destination.body["destinationId"]}),
            "sourceId",
        ),
        (
            "/api/public/v1/connections",
            json!({"sourceId": source.body["sourceId"], "destinationId": source.body["sourceId"]}),
            "destinationId",
        ),
        (
            "/api/public/v1/connections",
            json!({"sourceId": source.body["sourceId"], "destinationId": destination.body["destinationId"], "status": "sleepy"}),
            "status",
        ),
        (
            "/api/public/v1/jobs",
            json!({"jobType": "sync"}),
            "connectionId",
        ),
        (
            "/api/public/v1/jobs",
            json!({"connectionId": UNKNOWN, "jobType": "sync"}),
            "connectionId",
        ),
        (
            "/api/public/v1/jobs",
            json!({"connectionId": UNKNOWN, "jobType": "explode"}),
            "jobType",
        ),
    ];
    for (path, body, field) in cases {
        let reply = admin.post(path, body.clone()).await;
        assert_client_error(&reply, &format!("{path} {body}"));
        assert_eq!(reply.status, 400, "{path} {body}: {}", reply.body);
        reply.assert_names_field(field);
    }
    for path in [
        format!("/api/public/v1/sources/{UNKNOWN}"),
        format!("/api/public/v1/destinations/{UNKNOWN}"),
        format!("/api/public/v1/connections/{UNKNOWN}"),
        "/api/public/v1/jobs/987654".to_owned(),
    ] {
        admin.get(&path).await.assert_problem(404);
    }
    admin
        .get("/api/public/v1/jobs/not-a-number")
        .await
        .assert_problem(400);
    admin
        .delete("/api/public/v1/jobs/987654")
        .await
        .assert_problem(404);
    admin
        .get("/api/public/v1/jobs?createdAtStart=yesterday")
        .await
        .assert_problem(400);
    admin
        .get("/api/public/v1/sources?limit=1000")
        .await
        .assert_problem(400);
    let openapi = admin.get("/api/public/v1/openapi.json").await;
    for path in [
        "/regions",
        "/dataplanes",
        "/workspaces",
        "/sources",
        "/connections",
        "/jobs/{jobId}",
    ] {
        assert!(
            openapi.body["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn sources_destinations_and_connections_update_and_delete_as_airbyte_does() {
    let fixture = fixture(StoreKind::Sqlite).await;
    let admin = &fixture.ferry.admin;
    // The default workspace: its region's data plane runs, for the discover a connection needs.
    let workspace = fixture.ferry.default_workspace();
    let source = workspace
        .post_source(
            "f",
            json!({"sourceType": "faker", "count": 5, "api_key": "k1"}),
        )
        .await;
    let source_id = text(&source.body["sourceId"]);
    let destination = workspace
        .post_destination("n", json!({"destinationType": "dev-null"}))
        .await;
    let destination_id = text(&destination.body["destinationId"]);

    // PATCH with the masked secret read back keeps it; the other fields change.
    let read = admin
        .get(&format!("/api/public/v1/sources/{source_id}"))
        .await
        .body;
    let mut configuration = read["configuration"].clone();
    configuration["count"] = json!(9);
    let patched = admin
        .patch(
            &format!("/api/public/v1/sources/{source_id}"),
            json!({"name": "renamed", "configuration": configuration}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "renamed");
    assert_eq!(patched.body["configuration"]["count"], 9);
    assert_eq!(patched.body["configuration"]["api_key"], "**********");
    let put = admin
        .send(
            Method::PUT,
            &format!("/api/public/v1/sources/{source_id}"),
            json!({"name": "put", "configuration": {"sourceType": "faker", "count": 3}}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        put.body["configuration"],
        json!({"sourceType": "faker", "count": 3})
    );
    admin
        .patch(
            &format!("/api/public/v1/sources/{source_id}"),
            json!({"configuration": {"sourceType": "dev-null"}}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configuration.sourceType");
    admin
        .patch(
            &format!("/api/public/v1/sources/{source_id}"),
            json!({"configuration": {"count": -4}}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configuration.count");
    admin
        .send(
            Method::PUT,
            &format!("/api/public/v1/sources/{source_id}"),
            json!({"name": "x"}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configuration");
    let renamed = admin
        .patch(
            &format!("/api/public/v1/destinations/{destination_id}"),
            json!({"name": "null 2"}),
        )
        .await;
    assert_eq!(renamed.body["name"], "null 2");

    let connection = admin
        .post(
            "/api/public/v1/connections",
            json!({"sourceId": source_id, "destinationId": destination_id}),
        )
        .await;
    let connection_id = text(&connection.body["connectionId"]);
    let patched = admin
        .patch(
            &format!("/api/public/v1/connections/{connection_id}"),
            json!({"name": "nightly", "status": "inactive", "configurations": {"streams": [{"name": "users", "syncMode": "full_refresh_overwrite"}]}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["status"], "inactive");
    assert_eq!(
        patched.body["configurations"]["streams"][0]["syncMode"],
        "full_refresh_overwrite"
    );
    admin
        .patch(
            &format!("/api/public/v1/connections/{connection_id}"),
            json!({"configurations": {"streams": [{"name": "users", "syncMode": "sometimes"}]}}),
        )
        .await
        .assert_problem(400)
        .assert_names_field("configurations.streams[0].syncMode");
    // An inactive connection runs no job.
    admin
        .post(
            "/api/public/v1/jobs",
            json!({"connectionId": connection_id, "jobType": "sync"}),
        )
        .await
        .assert_problem(409);

    // Deletes are 204 with no body; deleting a source takes its connections with it.
    let deleted = admin
        .delete(&format!("/api/public/v1/sources/{source_id}"))
        .await;
    assert_eq!((deleted.status, deleted.body.clone()), (204, Value::Null));
    admin
        .get(&format!("/api/public/v1/sources/{source_id}"))
        .await
        .assert_problem(404);
    admin
        .get(&format!("/api/public/v1/connections/{connection_id}"))
        .await
        .assert_problem(404);
    admin
        .delete(&format!("/api/public/v1/connections/{connection_id}"))
        .await
        .assert_problem(404);
    assert_eq!(
        admin
            .delete(&format!("/api/public/v1/destinations/{destination_id}"))
            .await
            .status,
        204
    );
}
