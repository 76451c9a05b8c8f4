//! Hardening against floods, lock-outs and leftovers, on real processes: token endpoints
//! stay small under a flood of wrong secrets; the last instance admin keeps a way in; `ferry
//! up` renews its data plane's credentials; connectors die with their data plane and their
//! directories are swept; the token signing key is stored encrypted.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_testkit::{FerryOptions, FerryProcess, FerryUp, StoreKind, pid_of, text, wait_for};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

/// A field of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every process's id and command line (arguments split), skipping those already gone.
fn processes() -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let arguments = bytes
            .split(|byte| *byte == 0)
            .filter(|argument| !argument.is_empty())
            .map(|argument| String::from_utf8_lossy(argument).into_owned())
            .collect();
        found.push((pid, arguments));
    }
    found
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("PPid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_stays_small_and_the_right_secret_still_works() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let pid = pid_of(&ferry.process);
    let (client_id, client_secret) = ferry.process.admin_credentials();
    let before = status_kb(pid, "VmRSS");
    let client = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    // 100 wrong secrets for the admin's client id, and 100 unknown data-plane ids, at once.
    for index in 0..200 {
        let (path, body) = if index % 2 == 0 {
            (
                "/api/public/v1/applications/token",
                json!({"client_id": client_id, "client_secret": format!("wrong-{index}")}),
            )
        } else {
            (
                "/api/v1/dataplanes/token",
                json!({"client_id": format!("nobody-{index}"), "client_secret": "x"}),
            )
        };
        let request = client.post(ferry.process.url(path)).json(&body);
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut peak_rss = before;
    while !requests.is_empty() {
        tokio::select! {
            Some(status) = requests.join_next() => *statuses.entry(status.unwrap()).or_default() += 1,
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                peak_rss = peak_rss.max(status_kb(pid, "VmRSS"));
            }
        }
    }
    let high_water = status_kb(pid, "VmHWM");
    eprintln!(
        "200 bad token requests in {:?}: statuses {statuses:?}; VmRSS {before} kB before, peak {peak_rss} kB; VmHWM {high_water} kB",
        started.elapsed()
    );
    assert!(
        high_water < 200 * 1024,
        "VmHWM {high_water} kB, over 200 MB"
    );
    assert!(
        statuses
            .keys()
            .all(|status| matches!(status, 401 | 429 | 503)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&429),
        "the admin's client id never backed off: {statuses:?}"
    );

    // The right secret works again once the back-off it asks for has passed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = client
            .post(ferry.process.url("/api/public/v1/applications/token"))
            .json(&json!({"client_id": client_id, "client_secret": client_secret}))
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        if status == 200 {
            break;
        }
        assert!(matches!(status, 429 | 503), "status {status}");
        let wait: u64 = reply
            .headers()
            .get("retry-after")
            .expect("a Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&wait), "Retry-After {wait}");
        assert!(
            Instant::now() < deadline,
            "the right secret never worked again"
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

#[tokio::test]
async fn the_last_instance_admin_keeps_its_application_and_its_permission() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let admin = &ferry.admin;
    let own_application =
        text(&admin.get("/api/public/v1/applications").await.body["applications"][0]["id"]);
    let own_permission = admin.get("/api/public/v1/permissions").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|permission| permission["permissionType"] == "instance_admin")
        .map(|permission| text(&permission["permissionId"]))
        .unwrap();
    let refuse_application = |id: String| async move {
        let reply = admin
            .delete(&format!("/api/public/v1/applications/{id}"))
            .await;
        reply.assert_problem(409);
        assert!(
            text(&reply.body["detail"]).contains("last instance admin"),
            "{}",
            reply.body
        );
    };
    let delete_permission = |id: String| async move {
        admin
            .delete(&format!("/api/public/v1/permissions/{id}"))
            .await
    };
    refuse_application(own_application.clone()).await;
    let refused = delete_permission(own_permission.clone()).await;
    refused.assert_problem(409);
    assert!(
        text(&refused.body["detail"]).contains("instance_admin"),
        "{}",
        refused.body
    );

    // A second admin with an application: either may then lose theirs, not both.
    let second = admin
        .create(
            "/api/public/v1/users",
            json!({"name": "second", "email": "second@example.com"}),
        )
        .await;
    let grant = || async {
        let permission = admin
            .create(
                "/api/public/v1/permissions",
                json!({"permissionType": "instance_admin", "userId": second["id"]}),
            )
            .await;
        text(&permission["permissionId"])
    };
    let second_permission = grant().await;
    let second_application = admin
        .create(
            "/api/public/v1/applications",
            json!({"name": "second-app", "userId": second["id"]}),
        )
        .await;
    let deleted = admin
        .delete(&format!(
            "/api/public/v1/applications/{}",
            text(&second_application["id"])
        ))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    // An admin without an application is no way in: the first one's is still the last.
    refuse_application(own_application.clone()).await;
    assert_eq!(delete_permission(second_permission).await.status, 204);

    grant().await;
    let second_application = admin
        .create(
            "/api/public/v1/applications",
            json!({"name": "second-app", "userId": second["id"]}),
        )
        .await;
    let deleted = admin
        .delete(&format!("/api/public/v1/applications/{own_application}"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let second_admin = ferry_testkit::Api::new(
        ferry.base_url(),
        Some(
            ferry_testkit::token(
                ferry.base_url(),
                &text(&second_application["clientId"]),
                &text(&second_application["clientSecret"]),
            )
            .await,
        ),
    );
    second_admin
        .delete(&format!(
            "/api/public/v1/applications/{}",
            text(&second_application["id"])
        ))
        .await
        .assert_problem(409);
}

/// An RFC 3339 time as the API writes it (`…:56Z`, `…:56.7Z`, `…:56.789Z`), comparable.
fn instant(text: &str) -> (String, u32) {
    let text = text.trim_end_matches('Z');
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let millis = format!("{fraction:0<3}")[..3].parse().unwrap();
    (seconds.to_owned(), millis)
}

/// The data plane named `default`, once it heartbeat after `since` and shows healthy.
async fn default_plane_heartbeating(ferry: &FerryUp, since: &str) -> Value {
    wait_for(
        "the default data plane to heartbeat again",
        Duration::from_secs(30),
        || async {
            let planes = ferry.admin.get("/api/public/v1/dataplanes").await.body;
            let plane = planes["data"]
                .as_array()?
                .iter()
                .find(|plane| plane["name"] == "default")?
                .clone();
            let heartbeat = plane["lastHeartbeatAt"].as_str()?;
            (plane["status"] == "healthy" && instant(heartbeat) > instant(since)).then_some(plane)
        },
    )
    .await
}

/// Syncs a small faker source into dev-null in the default workspace, which must succeed.
async fn faker_sync(ferry: &FerryUp) {
    let connection = ferry
        .admin
        .connect(
            &ferry.workspace,
            json!({"sourceType": "faker", "count": 50}),
            json!({"destinationType": "dev-null"}),
            json!({}),
        )
        .await;
    let job = ferry.admin.sync(&connection, Duration::from_secs(60)).await;
    assert_eq!(job["attempts"][0]["dataplaneName"], "default", "{job}");
}

#[tokio::test]
async fn ferry_up_renews_its_data_plane_s_credentials_after_a_rotation_or_a_deletion() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).env("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1"),
    )
    .await;
    let admin = &ferry.admin;
    let plane = default_plane_heartbeating(&ferry, "1970-01-01T00:00:00Z").await;
    let plane_id = text(&plane["dataplaneId"]);
    let rotated = admin
        .post(
            &format!("/api/public/v1/dataplanes/{plane_id}/rotate_secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let started = Instant::now();
    let rotated_at = text(
        &admin
            .get(&format!("/api/public/v1/dataplanes/{plane_id}"))
            .await
            .body["updatedAt"],
    );
    default_plane_heartbeating(&ferry, &rotated_at).await;
    eprintln!(
        "heartbeating again {:?} after the rotation",
        started.elapsed()
    );
    // Its new secret is in credentials.json (still private), and on no command line.
    let path = ferry.process.data_dir.join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let secret = text(&ferry.process.credentials()["defaultDataplane"]["clientSecret"]);
    assert_ne!(secret, text(&rotated.body["clientSecret"]));
    assert!(
        processes()
            .iter()
            .all(|(_, arguments)| !arguments.iter().any(|argument| argument.contains(&secret))),
        "the data plane's secret is on a command line"
    );
    faker_sync(&ferry).await;

    // Deleted: a new default data plane takes its place.
    let deleted = admin
        .delete(&format!("/api/public/v1/dataplanes/{plane_id}"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let started = Instant::now();
    let renewed = default_plane_heartbeating(&ferry, &text(&deleted.body["updatedAt"])).await;
    eprintln!(
        "a new default data plane {:?} after the deletion",
        started.elapsed()
    );
    assert_ne!(text(&renewed["dataplaneId"]), plane_id);
    faker_sync(&ferry).await;
}

fn fixture() -> String {
    format!(
        "{}/../ferry-connectors/tests/fixtures/protocol_connector.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The fixture's `read` processes `parent` started, with the run directory of each.
fn fixture_reads_of(parent: u32) -> Vec<(u32, PathBuf)> {
    processes()
        .into_iter()
        .filter(|(pid, arguments)| {
            arguments
                .iter()
                .any(|argument| argument.ends_with("protocol_connector.py"))
                && arguments.iter().any(|argument| argument == "read")
                && parent_of(*pid) == Some(parent)
        })
        .filter_map(|(pid, arguments)| {
            let config = arguments
                .iter()
                .position(|argument| argument == "--config")?;
            let directory = Path::new(arguments.get(config + 1)?).parent()?.to_owned();
            Some((pid, directory))
        })
        .collect()
}

fn runs_the_fixture(pid: u32) -> bool {
    processes().iter().any(|(other, arguments)| {
        *other == pid
            && arguments
                .iter()
                .any(|argument| argument.ends_with("protocol_connector.py"))
    })
}

#[tokio::test]
async fn a_killed_data_plane_takes_its_connectors_along_and_its_leftovers_are_swept() {
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite).control_plane_only(),
    )
    .await;
    let admin = &ferry.admin;
    let region = ferry.region("eu").await;
    let plane = ferry.plane(&region, "eu-1").await;
    let workspace = ferry.workspace_in(&region, "eu").await;
    // The data plane runs the definition's `spec` and the source's `discover` too.
    let mut dataplane = plane.start(&[("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")]);
    let dataplane_pid = dataplane.pid();
    let definition = workspace
        .post_source_definition(json!({"name": "numbers", "command": ["python3", fixture()]}))
        .await;
    assert_eq!(definition.status, 200, "{}", definition.body);
    let source = admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "slow", "workspaceId": workspace.id, "definitionId": definition.body["id"],
                   "configuration": {"count": 100, "sleep_each": 30}}),
        )
        .await;
    let destination = workspace
        .post_destination("null", json!({"destinationType": "dev-null"}))
        .await;
    let connection = admin
        .create(
            "/api/public/v1/connections",
            json!({"sourceId": source["sourceId"], "destinationId": destination.body["destinationId"],
                   "configurations": {"streams": [{"name": "numbers", "syncMode": "full_refresh_overwrite"}]}}),
        )
        .await;
    admin.start_job(&connection["connectionId"], "sync").await;
    let reads = wait_for(
        "the slow source to run",
        Duration::from_secs(60),
        || async { Some(fixture_reads_of(dataplane_pid)).filter(|reads| !reads.is_empty()) },
    )
    .await;
    let (connector_pid, run_directory) = reads[0].clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&run_directory)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{}", run_directory.display());
    }

    // It is slow: still running a while later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(runs_the_fixture(connector_pid), "{}", dataplane.log());
    let started = Instant::now();
    dataplane.kill();
    wait_for(
        "the connector to die with its data plane",
        Duration::from_secs(5),
        || async { (!runs_the_fixture(connector_pid)).then_some(()) },
    )
    .await;
    eprintln!(
        "the connector died {:?} after its data plane",
        started.elapsed()
    );
    // Killed, the data plane could not remove the connector's files: its next start does.
    assert!(run_directory.exists());
    let _next = plane.start(&[]);
    wait_for(
        "the stale connector directory to be swept",
        Duration::from_secs(20),
        || async { (!run_directory.exists()).then_some(()) },
    )
    .await;
}

async fn signing_key_setting(data_dir: &Path) -> String {
    let url = format!("sqlite://{}", data_dir.join("ferry.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let value: String =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = 'token_signing_key'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    value
}

async fn up_on(data_dir: &Path) -> FerryProcess {
    let mut options = FerryOptions::new(StoreKind::Sqlite).control_plane_only();
    options.data_dir = Some(data_dir.to_owned());
    FerryProcess::start(BINARY.as_ref(), options).await
}

#[tokio::test]
async fn the_token_signing_key_is_stored_encrypted_and_a_plaintext_one_is_sealed_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut ferry = up_on(&data_dir).await;
    ferry.admin_token().await;
    ferry.kill();
    let stored = signing_key_setting(&data_dir).await;
    assert!(stored.starts_with("enc:v1:"), "{stored}");

    // A key an earlier version stored in clear (base64url, 32 bytes) is sealed in place and
    // kept: a token it signed still works after the next start.
    let plaintext = format!("{}A", "k".repeat(42));
    let url = format!("sqlite://{}", data_dir.join("ferry.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE instance_settings SET value = $1 WHERE key = 'token_signing_key'")
        .bind(&plaintext)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut ferry = up_on(&data_dir).await;
    let token = ferry.admin_token().await;
    ferry.kill();
    let sealed = signing_key_setting(&data_dir).await;
    assert!(sealed.starts_with("enc:v1:"), "{sealed}");
    assert!(!sealed.contains(&plaintext));
    let ferry = up_on(&data_dir).await;
    let reply = ferry_testkit::Api::new(&ferry.base_url, Some(token))
        .get("/api/public/v1/workspaces")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Whether a process has ended (gone, or a zombie its parent has yet to reap).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |status| {
        status
            .lines()
            .any(|line| line.starts_with("State:") && line.contains('Z'))
    })
}

/// `ferry up` asked to stop (SIGTERM) stops its data plane first, which hands its running
/// sync back while the control plane still answers, then stops itself at once: not after
/// the data plane's long-polling claim or its held heartbeat (it took 15–20 s), and without
/// the sync waiting out its lease on the next start.
#[tokio::test]
async fn ferry_up_stopped_mid_sync_stops_promptly_and_hands_the_sync_back() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let options = || {
        let mut options = FerryOptions::new(StoreKind::Sqlite);
        options.data_dir = Some(data_dir.clone());
        options
    };
    let mut ferry = FerryUp::start(BINARY.as_ref(), options()).await;
    let connection = ferry
        .connection(
            json!({"sourceType": "faker", "count": 500_000_000u64, "seed": 1}),
            json!({"destinationType": "dev-null"}),
            json!([{"name": "users", "syncMode": "full_refresh_append"}]),
        )
        .await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    ferry
        .admin
        .wait_for_job_status(job_id, "running", Duration::from_secs(30))
        .await;
    let pid = pid_of(&ferry.process);
    let plane_pid = processes()
        .into_iter()
        .find(|(child, arguments)| {
            parent_of(*child) == Some(pid)
                && arguments.iter().any(|argument| argument == "dataplane")
        })
        .map(|(child, _)| child)
        .expect("ferry up's data plane");
    let asked = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    wait_for("ferry up to stop", Duration::from_secs(14), || async {
        (ended(pid) && ended(plane_pid)).then_some(())
    })
    .await;
    eprintln!(
        "figure: ferry up stopped mid-sync in {:.2} s",
        asked.elapsed().as_secs_f64()
    );
    ferry.process.kill();

    // Started again: the handed-back sync is claimed at once, not after its lease.
    let again = FerryUp::start(BINARY.as_ref(), options()).await;
    let job = again
        .admin
        .wait_for_job_status(job_id, "running", Duration::from_secs(15))
        .await;
    let first = &job["attempts"][0];
    assert!(
        text(&first["failureReason"]).contains("handed back"),
        "the first attempt was handed back: {job}"
    );
    let cancelled = again
        .admin
        .delete(&format!("/api/public/v1/jobs/{job_id}"))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
}
