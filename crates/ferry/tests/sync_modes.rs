//! What a sync reads, by sync mode: a full refresh everything, every time; an incremental
//! sync only what came after the state the last one committed. Through `ferry up`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferry_testkit::{FerryOptions, FerryUp, StoreKind};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

#[tokio::test]
async fn a_full_refresh_reads_everything_every_time_and_an_incremental_sync_resumes() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let admin = &ferry.admin;
    // The faker commits a state per slice, as a resumable source does.
    for (mode, second_run) in [("full_refresh_append", 500), ("incremental_append", 0)] {
        let connection = ferry
            .connection(
                json!({"sourceType": "faker", "count": 500, "records_per_slice": 100, "seed": 3}),
                json!({"destinationType": "dev-null"}),
                json!([{"name": "users", "syncMode": mode}]),
            )
            .await;
        for expected in [500, second_run] {
            let job_id = admin.start_job(&connection, "sync").await;
            let job = admin.finished_job(job_id, Duration::from_secs(60)).await;
            assert_eq!(job["status"], "succeeded", "{mode}: {job}");
            assert_eq!(job["rowsSynced"], expected, "{mode}: {job}");
        }
    }
}
