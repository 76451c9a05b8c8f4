//! Stopping on SIGTERM (a pod deleted, a rollout): claim nothing more, let the running
//! attempts finish within the grace (`--drain-seconds`, which the chart's
//! `terminationGracePeriodSeconds` exceeds), then stop the rest, each handing its job back
//! with the state it committed so that another plane of the region resumes it at once rather
//! than after the lease runs out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::{Running, Signal};

/// Longest the stopped attempts get to commit what their destination acknowledged and hand
/// their jobs back (their connectors stop within `PIPE_STOP_WAIT`, 5 s, at worst).
const HAND_BACK_WAIT: Duration = Duration::from_secs(15);

fn all_of(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Called once the claim loops are gone; returns when every attempt and task ended or was
/// handed back, or the bounds ran out.
pub(crate) async fn drain(
    running: &Running,
    (slots, concurrency): (&Arc<Semaphore>, usize),
    (task_slots, task_concurrency): (&Arc<Semaphore>, usize),
    grace: Duration,
) {
    let began = Instant::now();
    let busy = running.lock().await.len();
    if busy > 0 {
        tracing::info!(
            attempts = busy,
            drain_seconds = grace.as_secs(),
            "draining: letting running attempts finish"
        );
    }
    let all = slots.acquire_many(all_of(concurrency));
    tokio::pin!(all);
    if tokio::time::timeout(grace, &mut all).await.is_err() {
        let signals = running.lock().await;
        tracing::info!(
            attempts = signals.len(),
            "drain grace over: handing the unfinished attempts back with their committed state"
        );
        for signal in signals.values() {
            let _ = signal.send(Signal::Stop);
        }
        drop(signals);
        if tokio::time::timeout(HAND_BACK_WAIT, &mut all)
            .await
            .is_err()
        {
            tracing::warn!("some attempts did not hand back in time; their leases will lapse");
        }
    }
    // Connector tasks are short and bounded by their own deadlines; what is left of the
    // grace is theirs.
    let left = grace.saturating_sub(began.elapsed());
    let _ = tokio::time::timeout(left, task_slots.acquire_many(all_of(task_concurrency))).await;
    tracing::info!(
        seconds = format!("{:.3}", began.elapsed().as_secs_f64()),
        "drained"
    );
}
