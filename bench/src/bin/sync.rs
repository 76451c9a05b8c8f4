//! Sync benchmark: PostgreSQL → PostgreSQL through Ferry against the raw COPY pipe between
//! the same databases, incremental dedup against full refresh, the data plane's peak memory,
//! faker → dev-null, and an external connector through the runner against `| wc -l`.
//! See bench/README.md.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ferry_bench::raw_pipe::RawPipe;
use ferry_bench::{
    Figures, argument, children_of, cpu_ticks, ferry_binary, flag, machine_busy_ticks, median,
    peak_rss_mb, settle, shell_output, sling_binary, timed_shell,
};
use ferry_testkit::{FerryOptions, FerryUp, StoreKind, TestDatabase};
use serde_json::{Value, json};

/// Runs a sync to its end; its time in seconds and the job.
async fn timed_sync(ferry: &mut FerryUp, connection: &Value) -> (f64, Value) {
    // A fresh admin token for each sync (and the calls after it): one lasts 15 min, less
    // than the 20 M-row run.
    ferry.admin = ferry.process.admin_api().await;
    let started = Instant::now();
    let job = ferry
        .admin
        .sync(connection, Duration::from_secs(3600))
        .await;
    // Timed by the job's own clock, from its creation (the POST) to its end, to the
    // millisecond: the poll that noticed the end is not in the figure, and polls are few
    // (every 100 ms), so answering them costs the machine nothing worth counting.
    let time = |field: &str| {
        let text = job[field].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let seconds = (time("lastUpdatedAt") - time("startTime")).as_seconds_f64();
    assert!(
        seconds <= started.elapsed().as_secs_f64(),
        "the job's own time is within the client's"
    );
    (seconds, job)
}

fn dataplane_pid(ferry: &FerryUp) -> u32 {
    *children_of(ferry_testkit::pid_of(&ferry.process))
        .first()
        .expect("ferry up runs its data plane as a child process")
}

const EVENTS: &str = "
CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint, event_type text, amount numeric(12,2),
                     payload jsonb, created_at timestamptz, updated_at timestamptz, note text);
INSERT INTO events
SELECT i, i % 100000,
       (ARRAY['view','click','cart','buy','signup','login','logout','share','like','search'])[1 + i % 10],
       (i % 100000) / 100.0,
       jsonb_build_object('session', substr(md5(i::text), 1, 24), 'page', i % 500, 'ok', i % 3 = 0),
       timestamptz '2024-01-01' + i * interval '1 second',
       timestamptz '2024-01-01' + i * interval '1 second',
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'note ' || substr(md5((i * 7)::text), 1, 15) END
FROM generate_series(1, {rows}) i;
CREATE INDEX events_updated_at ON events (updated_at);";

/// How many times each side of the external-connector comparison runs.
const EXTERNAL_RUNS: usize = 5;

#[tokio::main]
async fn main() {
    let rows = argument("--rows", 2_000_000);
    let faker_records = argument("--faker", 2_000_000);
    let external_records = argument("--external", 2_000_000);
    let repeat = argument("--repeat", 3).max(1);
    let binary = ferry_binary();
    let mut figures = Figures::default();
    let mut ferry = FerryUp::start(&binary, FerryOptions::new(StoreKind::Sqlite)).await;

    if !flag("--skip-postgres") {
        let source = TestDatabase::create().await;
        let destination = TestDatabase::create().await;
        println!("creating events: {rows} rows");
        source
            .execute(&EVENTS.replace("{rows}", &rows.to_string()))
            .await;
        source.execute("VACUUM ANALYZE events").await;
        let megabytes = shell_output(&format!(
            "psql -X -q '{}' -c '\\copy events to stdout' | wc -c",
            source.url()
        ))
        .trim()
        .parse::<f64>()
        .unwrap()
            / 1e6;
        println!("events as COPY text: {megabytes:.0} MB");
        destination
            .execute(
            "CREATE TABLE events_copy (id bigint, user_id bigint, event_type text, amount numeric(12,2),
                                      payload jsonb, created_at timestamptz, updated_at timestamptz, note text);
             -- The table Ferry writes (Destinations V2: four Airbyte columns more, ~60 % more
             -- bytes a row), filled by the same pipe: the raw id a constant default, since a
             -- uuid made by the server would cost it more than the rest.
             CREATE TABLE events_v2 (\"_airbyte_raw_id\" varchar(36) NOT NULL DEFAULT '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
                                     \"_airbyte_extracted_at\" timestamptz NOT NULL DEFAULT now(),
                                     \"_airbyte_meta\" jsonb NOT NULL DEFAULT '{\"changes\": [], \"sync_id\": 0}',
                                     \"_airbyte_generation_id\" bigint DEFAULT 0, LIKE events_copy);",
        )
        .await;
        let pipe = RawPipe::new(source.url(), destination.url());
        let raw = |format: &str| pipe.copy_into("events_copy", format);
        // The pipe into the V2 table in two lanes: what two lanes can gain on this machine.
        let pages = source
            .count("SELECT relpages FROM pg_class WHERE relname = 'events'")
            .await;
        let v2_lanes = pipe.copy_into_two_lanes("events_v2", pages);
        settle();
        let raw_text = timed_shell(&raw(""));
        figures.add("raw COPY pipe (text)", rows as f64 / raw_text, "rows/s");
        figures.add("raw COPY pipe (text)", megabytes / raw_text, "MB/s");

        // The figures that are ratios of each other run in rounds, one of each in turn, and
        // count by their medians: on a shared 2-core machine one run of a few seconds moves
        // by 10-25 % (a checkpoint, the kernel's write-back, a neighbour).
        let mut full_connections = Vec::new();
        for readers in [None, Some(1), Some(2), Some(4)] {
            let mut configuration = source.source_configuration();
            let schema = match readers {
                Some(readers) => {
                    configuration["parallel_readers"] = json!(readers);
                    format!("ferry_full_{readers}")
                }
                None => "ferry_full".to_owned(),
            };
            let connection = ferry
                .connection(
                    configuration,
                    destination.destination_configuration(&schema),
                    json!([{"name": "events", "syncMode": "full_refresh_overwrite"}]),
                )
                .await;
            full_connections.push((readers, schema, connection));
        }
        let mut raw_binary_runs = Vec::new();
        let mut raw_v2_runs = Vec::new();
        let mut raw_v2_lane_runs = Vec::new();
        // The first query of each loaded table (the V2 pipe's, Ferry's default full refresh's).
        let mut first_scan_runs = (Vec::new(), Vec::new());
        let mut full_runs = vec![Vec::new(); full_connections.len()];
        let mut dedup_runs = Vec::new();
        let mut full_cpu_runs = Vec::new();
        let mut dedup = Value::Null;
        // At 20 M rows every table is emptied once measured: the loads of a round would
        // otherwise hold some 40 GB (a host with 29 GB free filled up). Not at 2 M, so that
        // each load still replaces a full table, as a daily refresh does.
        let trim = rows > 5_000_000;
        // Each round starts the loads one place further on, so that no figure always takes
        // the same place: the default full refresh, always right after the V2 pipe and its
        // first query, came out slower than "1 reader" (the same setting) in most rounds
        // of earlier runs, and one COPY of the same rows took 3.8 s in one place and 5.6 s
        // in another of one run (statement log).
        let mut loads = vec![Load::RawBinary, Load::RawV2, Load::RawV2Lanes];
        loads.extend((0..full_connections.len()).map(Load::Full));
        for round in 0..repeat {
            for load in loads
                .iter()
                .cycle()
                .skip(round as usize % loads.len())
                .take(loads.len())
            {
                settle();
                match *load {
                    Load::RawBinary => {
                        raw_binary_runs.push(timed_shell(&raw("with (format binary)")));
                        if trim {
                            destination.execute("TRUNCATE events_copy").await;
                        }
                    }
                    Load::RawV2 => {
                        raw_v2_runs.push(timed_shell(
                            &pipe.copy_into("events_v2", "with (format binary)"),
                        ));
                        settle();
                        first_scan_runs
                            .0
                            .push(first_scan(&destination, "events_v2").await);
                        if trim {
                            destination.execute("TRUNCATE events_v2").await;
                        }
                    }
                    Load::RawV2Lanes => {
                        raw_v2_lane_runs.push(timed_shell(&v2_lanes));
                        if trim {
                            destination.execute("TRUNCATE events_v2").await;
                        }
                    }
                    Load::Full(index) => {
                        let (_, schema, connection) = &full_connections[index];
                        let (plane, machine) =
                            (cpu_ticks(dataplane_pid(&ferry)), machine_busy_ticks());
                        let (seconds, job) = timed_sync(&mut ferry, connection).await;
                        assert_eq!(job["rowsSynced"].as_u64(), Some(rows), "{job}");
                        full_runs[index].push(seconds);
                        if index == 0 {
                            // Where a full refresh's CPU goes: the data plane's share of the
                            // machine's.
                            full_cpu_runs.push((
                                (cpu_ticks(dataplane_pid(&ferry)) - plane) as f64 / 100.0,
                                (machine_busy_ticks() - machine) as f64 / 100.0,
                            ));
                            settle();
                            first_scan_runs
                                .1
                                .push(first_scan(&destination, &format!("{schema}.events")).await);
                        }
                        if trim {
                            destination
                                .execute(&format!("TRUNCATE {schema}.events"))
                                .await;
                        }
                    }
                }
            }
            // Each round's first load into a schema of its own: a new, empty table.
            dedup = ferry
                .connection(
                    source.source_configuration(),
                    destination.destination_configuration(&format!("ferry_dedup_{round}")),
                    json!([{"name": "events", "syncMode": "incremental_deduped_history", "cursorField": ["updated_at"]}]),
                )
                .await;
            settle();
            let (seconds, job) = timed_sync(&mut ferry, &dedup).await;
            assert_eq!(job["rowsSynced"].as_u64(), Some(rows), "{job}");
            dedup_runs.push(seconds);
            // Only the last round's deduplicated table is synced again.
            if round + 1 < repeat {
                destination
                    .execute(&format!("DROP TABLE ferry_dedup_{round}.events"))
                    .await;
            }
        }
        println!(
            "runs (s): raw binary pipe {raw_binary_runs:.2?}, into the Destinations V2 table {raw_v2_runs:.2?}, the same in two lanes {raw_v2_lane_runs:.2?}; full refresh (default, 1, 2, 4 readers) {full_runs:.2?}; dedup first load {dedup_runs:.2?}"
        );
        println!("full refresh CPU seconds (data plane, whole machine): {full_cpu_runs:.2?}");
        figures.add(
            "full refresh: data plane CPU / machine CPU",
            median(
                full_cpu_runs
                    .iter()
                    .map(|(plane, machine)| plane / machine)
                    .collect(),
            ),
            "ratio",
        );
        let raw_binary = median(raw_binary_runs);
        figures.add("raw COPY pipe (binary)", rows as f64 / raw_binary, "rows/s");
        let full_seconds = median(full_runs[0].clone());
        figures.add(
            "ferry full refresh PG -> PG",
            rows as f64 / full_seconds,
            "rows/s",
        );
        figures.add(
            "ferry full refresh PG -> PG",
            megabytes / full_seconds,
            "MB/s",
        );
        figures.add(
            "ferry full refresh / raw text pipe",
            raw_text / full_seconds,
            "ratio (target >= 0.8)",
        );
        figures.add(
            "ferry full refresh / raw binary pipe",
            raw_binary / full_seconds,
            "ratio (target >= 1.0)",
        );
        let raw_v2 = median(raw_v2_runs);
        figures.add(
            "raw COPY pipe (binary) into the Destinations V2 table",
            rows as f64 / raw_v2,
            "rows/s",
        );
        figures.add(
            "raw COPY pipe (binary) into the Destinations V2 table / raw binary pipe",
            raw_binary / raw_v2,
            "ratio (what the V2 table's wider rows cost the same pipe)",
        );
        let raw_v2_lanes = median(raw_v2_lane_runs);
        figures.add(
            "raw COPY pipe (binary) into the Destinations V2 table, two lanes / raw binary pipe",
            raw_binary / raw_v2_lanes,
            "ratio (the most two lanes of the V2 table's bytes reach here)",
        );
        figures.add(
            "ferry full refresh / raw binary pipe into the Destinations V2 table",
            raw_v2 / full_seconds,
            "ratio (Ferry's own cost: the same bytes written)",
        );
        println!(
            "first scan after the load (s): the V2 pipe's table, Ferry's: {first_scan_runs:.3?}"
        );
        figures.add(
            "first query after the load: the V2 pipe's table / Ferry's full refresh's",
            median(first_scan_runs.0) / median(first_scan_runs.1),
            "ratio (Ferry loads frozen: no page rewritten by the first reader)",
        );
        // The same full refresh with each count of parallel readers (and as many writing
        // connections): one table, ranges of its pages under one snapshot.
        for ((readers, _, _), runs) in full_connections.iter().zip(&full_runs).skip(1) {
            let seconds = median(runs.clone());
            let name = format!(
                "ferry full refresh, {} parallel readers",
                readers.unwrap_or(1)
            );
            figures.add(&name, rows as f64 / seconds, "rows/s");
            figures.add(
                &format!("{name} / raw binary pipe"),
                raw_binary / seconds,
                "ratio",
            );
        }
        let initial_seconds = median(dedup_runs);
        figures.add(
            "ferry incremental dedup, initial load",
            rows as f64 / initial_seconds,
            "rows/s",
        );
        // An empty table loads as a full refresh does, its key index built once at the end.
        figures.add(
            "dedup initial load / full refresh",
            full_seconds / initial_seconds,
            "ratio (target >= 0.9)",
        );

        // Sling on the same table, where installed (its full refresh loads a temporary table
        // and swaps it in, as Ferry's overwrite does).
        if let Some(sling) = sling_binary() {
            let url = |database: &TestDatabase| {
                format!(
                    "postgresql://postgres@127.0.0.1:5432/{}?sslmode=disable",
                    database.name()
                )
            };
            settle();
            let sling_seconds = timed_shell(&format!(
                "SLING_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 '{}' run --src-conn '{}' \
                 --src-stream public.events --tgt-conn '{}' --tgt-object sling.events \
                 --mode full-refresh 2>/dev/null",
                sling.display(),
                url(&source),
                url(&destination)
            ));
            figures.add("sling full refresh", rows as f64 / sling_seconds, "rows/s");
            figures.add(
                "ferry full refresh / sling full refresh",
                sling_seconds / full_seconds,
                "ratio",
            );
        } else {
            println!("sling: not installed (see bench/README.md)");
        }

        let dedup_schema = format!("ferry_dedup_{}", repeat - 1);
        // The 1 % incremental sync and its floor, in rounds too: each round changes the same
        // rows at the source again (and the floor, after the sync, changes them at the
        // destination, which the next sync puts back).
        let (mut source_update_runs, mut changed_runs, mut unchanged_runs, mut floor_runs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let checksum = "SELECT count(*)::text || ' ' || count(DISTINCT id)::text || ' ' || sum(amount)::text FROM ";
        for _ in 0..repeat {
            // The database's own cost of changing those rows in place, for scale: each
            // changed row dirties a page, and the first change of a page after a checkpoint
            // writes the whole page to the WAL; the destination pays that again when it
            // merges them.
            settle();
            let updated = Instant::now();
            source
                .execute(
                    "UPDATE events SET amount = amount + 1, updated_at = now() WHERE id % 100 = 0",
                )
                .await;
            source_update_runs.push(updated.elapsed().as_secs_f64());
            settle();
            let (seconds, job) = timed_sync(&mut ferry, &dedup).await;
            assert_eq!(job["rowsSynced"].as_u64(), Some(rows / 100), "{job}");
            changed_runs.push(seconds);
            // What any sync costs whatever it moves (the claim, the source's discover, the
            // tables' DDL, the commits), for scale beside the floor below.
            let (seconds, job) = timed_sync(&mut ferry, &dedup).await;
            assert_eq!(job["rowsSynced"].as_u64().unwrap_or(0), 0, "{job}");
            unchanged_runs.push(seconds);
            assert_eq!(
                destination
                    .texts(&format!("{checksum} {dedup_schema}.events"))
                    .await,
                source.texts(&format!("{checksum} events")).await,
                "the deduplicated copy equals the source"
            );
            // The floor for any incremental sync into a table kept deduplicated in place:
            // the destination database changing the same rows itself, found by key, as a
            // plain UPDATE (HOT, like the merge). 20x the full refresh needs the whole sync
            // — read, stage, merge, commit — in less than a twentieth of the full refresh's
            // time.
            settle();
            let floor = Instant::now();
            destination
                .execute(&format!(
                    "UPDATE {dedup_schema}.events SET amount = amount + 1 \
                     WHERE id = ANY(ARRAY(SELECT generate_series(100, {rows}, 100)::bigint))"
                ))
                .await;
            floor_runs.push(floor.elapsed().as_secs_f64());
        }
        println!(
            "runs (s): source UPDATE {source_update_runs:.2?}; 1 % incremental {changed_runs:.2?}; \
             nothing changed {unchanged_runs:.2?}; floor {floor_runs:.2?}"
        );
        let ratios: Vec<f64> = changed_runs
            .iter()
            .zip(&floor_runs)
            .map(|(changed, floor)| changed / floor)
            .collect();
        let changed_seconds = median(changed_runs);
        let floor_seconds = median(floor_runs);
        figures.add(
            "source's own UPDATE of the 1 %",
            median(source_update_runs),
            "s",
        );
        figures.add("ferry incremental dedup, 1 % changed", changed_seconds, "s");
        figures.add(
            "full refresh time / 1 % incremental time",
            full_seconds / changed_seconds,
            "ratio (target >= 20)",
        );
        figures.add(
            "ferry incremental dedup, nothing changed",
            median(unchanged_runs),
            "s",
        );
        figures.add(
            "destination's own UPDATE of the 1 % by key (floor)",
            floor_seconds,
            "s",
        );
        figures.add(
            "full refresh time / that floor",
            full_seconds / floor_seconds,
            "ratio (the most an in-place incremental sync could reach)",
        );
        figures.add(
            "1 % incremental time / that floor",
            median(ratios),
            "ratio, median of the rounds' (target <= 1.3)",
        );
        figures.add(
            "data plane peak RSS (PG -> PG)",
            peak_rss_mb(dataplane_pid(&ferry)),
            "MB (target <= 150)",
        );
    }

    if flag("--skip-connectors") {
        return figures.write("bench-sync.json", rows);
    }
    if !flag("--skip-postgres") {
        // The loads above leave the database and the kernel writing back gigabytes of dirty
        // pages; the connector figures below measure CPU on a machine where that is over.
        settle();
    }
    // faker → dev-null through the data plane.
    let faker = ferry
        .connection(
            json!({"sourceType": "faker", "count": faker_records, "seed": 1, "records_per_slice": 10000}),
            json!({"destinationType": "dev-null"}),
            json!([{"name": "users", "syncMode": "incremental_append"}]),
        )
        .await;
    let (faker_seconds, job) = timed_sync(&mut ferry, &faker).await;
    assert_eq!(job["rowsSynced"].as_u64(), Some(faker_records), "{job}");
    figures.add(
        "ferry faker -> dev-null",
        faker_records as f64 / faker_seconds,
        "records/s (target >= 1,000,000)",
    );

    // An external connector (Ferry's faker as a protocol program) through the runner, against
    // the same program into `wc -l`.
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("config.json");
    let catalog = directory.path().join("catalog.json");
    let faker_config = json!({"count": external_records, "seed": 2, "records_per_slice": 10000});
    std::fs::write(&config, faker_config.to_string()).unwrap();
    std::fs::write(
        &catalog,
        json!({"streams": [{"stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                            "sync_mode": "incremental", "destination_sync_mode": "append"}]})
        .to_string(),
    )
    .unwrap();
    // Each side several times, alternately, and its median: a single run of a second or so
    // varies by up to 10 % on a shared 2-core machine.
    let piped = format!(
        "{} connector source-faker read --config {} --catalog {} | wc -l",
        binary.display(),
        config.display(),
        catalog.display()
    );
    let workspace = ferry.workspace.as_str().unwrap().to_owned();
    let definition = ferry
        .admin
        .create(
            &format!("/api/public/v1/workspaces/{workspace}/definitions/sources"),
            json!({"name": "faker (protocol)", "command": [binary, "connector", "source-faker"]}),
        )
        .await;
    let source = ferry
        .admin
        .create(
            "/api/public/v1/sources",
            json!({"name": "external", "workspaceId": workspace, "definitionId": definition["id"], "configuration": faker_config}),
        )
        .await;
    let destination = ferry
        .admin
        .create(
            "/api/public/v1/destinations",
            json!({"name": "null", "workspaceId": workspace, "configuration": {"destinationType": "dev-null"}}),
        )
        .await;
    let external = ferry
        .admin
        .create(
            "/api/public/v1/connections",
            json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"],
                   "configurations": {"streams": [{"name": "users", "syncMode": "full_refresh_append"}]}}),
        )
        .await;
    let (mut piped_runs, mut runner_runs) = (Vec::new(), Vec::new());
    for _ in 0..EXTERNAL_RUNS {
        piped_runs.push(timed_shell(&piped));
        let (seconds, job) = timed_sync(&mut ferry, &external["connectionId"]).await;
        assert_eq!(job["rowsSynced"].as_u64(), Some(external_records), "{job}");
        runner_runs.push(seconds);
    }
    println!(
        "external connector runs (s), | wc -l: {piped_runs:.2?}; through the runner: {runner_runs:.2?}"
    );
    let (piped_seconds, runner_seconds) = (median(piped_runs), median(runner_runs));
    figures.add(
        "external connector | wc -l",
        external_records as f64 / piped_seconds,
        "records/s",
    );
    figures.add(
        "external connector through the runner",
        external_records as f64 / runner_seconds,
        "records/s",
    );
    figures.add(
        "runner / wc -l",
        piped_seconds / runner_seconds,
        "ratio (target >= 0.95)",
    );
    figures.add(
        "data plane peak RSS (whole run)",
        peak_rss_mb(dataplane_pid(&ferry)),
        "MB (target <= 150)",
    );

    figures.write("bench-sync.json", rows);
}

/// The time of the first `count(*)` of a table just loaded (and written out by a
/// checkpoint): rows not loaded frozen make it check each row's transaction and rewrite every
/// page to record the answer.
/// One load of a round: a raw pipe, or one of the full-refresh connections.
enum Load {
    RawBinary,
    RawV2,
    RawV2Lanes,
    Full(usize),
}

async fn first_scan(database: &TestDatabase, table: &str) -> f64 {
    let started = Instant::now();
    database
        .execute(&format!("SELECT count(*) FROM {table}"))
        .await;
    started.elapsed().as_secs_f64()
}
