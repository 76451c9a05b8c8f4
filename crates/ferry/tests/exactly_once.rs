//! Appends resumed after kill -9 of the data plane write every row exactly once: the
//! destination records each state in the transaction (PostgreSQL) or after the fsync
//! (files) of the rows it covers, and the retry resumes from that record, which is newer
//! than the control plane's when the plane died between the two commits.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase, wait_for};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const FAST: [(&str, &str); 3] = [
    ("FERRY_JOB_LEASE_SECONDS", "3"),
    ("FERRY_JOB_RETRY_BACKOFF_SECONDS", "0"),
    ("FERRY_JOB_MAX_ATTEMPTS", "3"),
];
const PLANE_ENV: [(&str, &str); 1] = [("FERRY_HEARTBEAT_INTERVAL_SECONDS", "1")];
const USERS: u64 = 20_000;

/// A faker appending `USERS` users, a slice of 100 every 10 ms (a state each), into
/// `destination`; its plane killed -9 once some rows are committed, the job finished by a
/// second plane of the region. The job, which must have succeeded in two attempts.
async fn append_killed_midway(destination: Value) -> Value {
    killed_midway(
        json!({"sourceType": "faker", "count": USERS, "records_per_slice": 100, "slice_delay_ms": 10, "seed": 4}),
        destination,
        json!([{"name": "users", "syncMode": "incremental_append"}]),
        Ready::Rows(2_000),
        None,
    )
    .await
    .0
}

/// The moment to kill a plane at: the destination has committed (and recorded) a state
/// that the control plane has not committed yet, as happens between the destination's
/// commit and the data plane's next state commit (at most once a second).
struct Ahead<'a> {
    database: &'a TestDatabase,
    /// The stream state the destination recorded, as JSON text.
    recorded: &'a str,
    /// The stream's key in the control plane's state.
    stream: &'a str,
}

/// How far a stream state has got: the page of a first read's `ctid` state, else the cursor
/// (an integer here).
fn progress(state: &Value) -> Option<i64> {
    match state["ctid"].as_str() {
        Some(ctid) => ctid.trim_start_matches('(').split(',').next()?.parse().ok(),
        None => state["cursor"].as_str()?.parse().ok(),
    }
    .map(|value: i64| match state["state_type"] == "ctid" {
        // Any cursor state is past every first-read state.
        true => value,
        false => i64::MAX / 2 + value,
    })
}

impl Ahead<'_> {
    async fn wait(&self, admin: &ferry_testkit::Api, connection: &Value) {
        let connection = ferry_testkit::text(connection);
        wait_for(
            "the destination to be ahead of the control plane",
            Duration::from_secs(60),
            || async {
                let recorded: Value = serde_json::from_str(
                    self.database
                        .texts(self.recorded)
                        .await
                        .first()?
                        .as_deref()?,
                )
                .ok()?;
                let held = admin
                    .get(&format!("/api/public/v1/connections/{connection}"))
                    .await
                    .body;
                let committed = held["state"]
                    .as_array()?
                    .iter()
                    .find(|state| state["stream"] == self.stream)
                    .map_or(Some(-1), |state| progress(&state["state"]["stream_state"]))?;
                (progress(&recorded)? > committed).then_some(())
            },
        )
        .await;
    }
}

/// When a plane is killed.
enum Ready<'a> {
    /// Once the job counts this many rows committed.
    Rows(i64),
    /// Once `database` holds this many ranges of an overwrite's parallel read (whose rows
    /// the job counts only at its end), and then runs `then` there before the retry.
    Ranges {
        database: &'a TestDatabase,
        count: i64,
        then: &'a str,
    },
}

/// `streams` from `source` into `destination`, the plane killed -9 once `ready`, the job
/// finished by a second plane of the region; the job, which must have succeeded in two
/// attempts, and its second attempt's log.
async fn killed_midway(
    source: Value,
    destination: Value,
    streams: Value,
    ready: Ready<'_>,
    ahead: Option<Ahead<'_>>,
) -> (Value, String) {
    let mut options = FerryOptions::new(StoreKind::Sqlite).control_plane_only();
    for (key, value) in FAST {
        options = options.env(key, value);
    }
    let ferry = FerryUp::start(BINARY.as_ref(), options).await;
    // A files destination's directory is the planes' local root (they write only there).
    let mut destination = destination;
    let local_root = destination["destination_path"].as_str().map(str::to_owned);
    if local_root.is_some() {
        destination["destination_path"] = json!("/local");
    }
    let plane_env: Vec<(&str, &str)> = PLANE_ENV
        .into_iter()
        .chain(local_root.as_deref().map(|root| ("FERRY_LOCAL_ROOT", root)))
        .collect();
    let region = ferry.default_region().await;
    let first = ferry.plane(&region, "first").await;
    let second = ferry.plane(&region, "second").await;
    // Connections are checked against the source's catalog, discovered in the region.
    let mut first_process = first.start(&plane_env);
    let connection = ferry.connection(source, destination, streams).await;
    let job_id = ferry.admin.start_job(&connection, "sync").await;
    wait_for("rows to be committed", Duration::from_secs(60), || async {
        match &ready {
            Ready::Rows(committed) => {
                let job = ferry.admin.job(job_id).await;
                (job["rowsSynced"].as_i64().unwrap_or(0) >= *committed).then_some(())
            }
            Ready::Ranges {
                database, count, ..
            } => {
                let exists = "SELECT count(*) FROM pg_class WHERE relname = '_ferry_ranges'";
                let held = "SELECT count(*) FROM copy._ferry_ranges";
                (database.count(exists).await > 0 && database.count(held).await >= *count)
                    .then_some(())
            }
        }
    })
    .await;
    if let Some(ahead) = ahead {
        ahead.wait(&ferry.admin, &connection).await;
    }
    first_process.kill();
    if let Ready::Ranges { database, then, .. } = &ready {
        database.execute(then).await;
    }
    let _second_process = second.start(&plane_env);
    let job = ferry
        .admin
        .wait_for_job_status(job_id, "succeeded", Duration::from_secs(120))
        .await;
    assert_eq!(job["attempts"].as_array().map(Vec::len), Some(2), "{job}");
    let retry_log = ferry.admin.attempt_log(&job, 2).await;
    (job, retry_log)
}

#[tokio::test]
async fn a_killed_append_into_postgres_leaves_every_id_once() {
    let database = TestDatabase::create().await;
    let job = append_killed_midway(database.destination_configuration("public")).await;
    let counts = database
        .texts("SELECT count(*)::text || ' ' || count(DISTINCT id)::text FROM public.users")
        .await;
    assert_eq!(
        counts[0].as_deref(),
        Some(format!("{USERS} {USERS}").as_str()),
        "rows and distinct ids after the retry: {job}"
    );
    // The destination's record of what it committed, in its own schema.
    let recorded = database
        .texts("SELECT (state->'stream_state'->>'loop_offset') FROM public._ferry_checkpoints")
        .await;
    assert_eq!(recorded, [Some(USERS.to_string())]);
}

#[tokio::test]
async fn a_killed_append_into_files_leaves_every_id_once() {
    let directory = tempfile::tempdir().unwrap();
    let job = append_killed_midway(json!({
        "destinationType": "local-json",
        "destination_path": directory.path().to_str().unwrap(),
    }))
    .await;
    let text = std::fs::read_to_string(directory.path().join("_airbyte_raw_users.jsonl")).unwrap();
    let ids: Vec<i64> = text
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["_airbyte_data"]["id"].as_i64().unwrap()
        })
        .collect();
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), distinct.len(), "an id written twice: {job}");
    assert_eq!(ids.len() as u64, USERS, "{job}");
}

#[tokio::test]
async fn a_killed_postgres_to_postgres_append_leaves_every_id_once() {
    let database = TestDatabase::create().await;
    // The source's first read checkpoints every 1,024 pages (~190,000 of these rows): the
    // plane dies after one of them.
    database
        .execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, note text);
             INSERT INTO events SELECT i, 'row ' || i FROM generate_series(1, 1000000) i",
        )
        .await;
    let job = killed_midway(
        database.source_configuration(),
        database.destination_configuration("copy"),
        json!([{"name": "events", "syncMode": "incremental_append", "cursorField": ["id"]}]),
        Ready::Rows(100_000),
        Some(Ahead {
            database: &database,
            recorded: "SELECT (state->'stream_state')::text FROM copy._ferry_checkpoints",
            stream: "public.events",
        }),
    )
    .await
    .0;
    let counts = database
        .texts("SELECT count(*)::text || ' ' || count(DISTINCT id)::text FROM copy.events")
        .await;
    assert_eq!(
        counts[0].as_deref(),
        Some("1000000 1000000"),
        "rows and distinct ids after the retry: {job}"
    );
}

/// A full refresh into PostgreSQL read by 2 connections, its plane killed -9 once some of
/// its ranges are in and `then` run on the database: every row once in the end. The second
/// attempt's log.
async fn overwrite_killed_midway(database: &TestDatabase, then: &str) -> String {
    database
        .execute(&format!(
            "CREATE TABLE wide (id bigint PRIMARY KEY, pad text);
             INSERT INTO wide SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, {WIDE_ROWS}) i;
             ANALYZE wide;"
        ))
        .await;
    let mut source = database.source_configuration();
    source["parallel_readers"] = json!(2);
    let (job, retry_log) = killed_midway(
        source,
        database.destination_configuration("copy"),
        json!([{"name": "wide", "syncMode": "full_refresh_overwrite"}]),
        Ready::Ranges {
            database,
            count: 2,
            then,
        },
        None,
    )
    .await;
    let counts = database
        .texts("SELECT count(*)::text || ' ' || count(DISTINCT id)::text FROM copy.wide")
        .await;
    assert_eq!(
        counts[0].as_deref(),
        Some(format!("{WIDE_ROWS} {WIDE_ROWS}").as_str()),
        "rows and distinct ids after the retry: {job}\n{retry_log}"
    );
    // The table is in place: nothing is left to resume, no fresh table lingers.
    assert_eq!(
        database
            .count("SELECT count(*) FROM copy._ferry_ranges")
            .await,
        0
    );
    let fresh = "SELECT count(*) FROM pg_class WHERE relname = 'wide_ferry_tmp'";
    assert_eq!(database.count(fresh).await, 0);
    retry_log
}

/// Rows of the overwritten table: ~19,000 pages, cut into 8 ranges for 2 readers.
const WIDE_ROWS: i64 = 1_000_000;

#[tokio::test]
async fn a_killed_parallel_full_refresh_resumes_at_the_ranges_not_yet_in() {
    let database = TestDatabase::create().await;
    let log = overwrite_killed_midway(&database, "SELECT 1").await;
    let resumed = log
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("resumed: ")?;
            rest.split(' ').next()?.parse::<u32>().ok()
        })
        .unwrap_or_else(|| panic!("the retry did not resume: {log}"));
    assert!(
        (2..8).contains(&resumed),
        "ranges loaded before the kill: {resumed}\n{log}"
    );
    assert!(
        log.contains(&format!("({} ranges of its", 8 - resumed)),
        "{log}"
    );
}

#[tokio::test]
async fn a_killed_parallel_full_refresh_of_a_table_rewritten_since_starts_over() {
    let database = TestDatabase::create().await;
    // VACUUM FULL gives the table another file: its pages are not those the ranges were of,
    // and the retry reads every one.
    let log = overwrite_killed_midway(&database, "VACUUM FULL wide").await;
    assert!(!log.contains("resumed: "), "{log}");
    assert!(log.contains("(8 ranges of its"), "{log}");
}
