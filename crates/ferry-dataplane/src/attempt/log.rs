//! An attempt's log: collected while it runs and streamed to the control plane, which keeps
//! it in its log bucket, so that the API shows it during the attempt and after, wherever
//! this data plane runs. Lines are sent in parts (at most a second old, or as soon as
//! `PART_BYTES` wait); a part the control plane did not take is sent again from the offset
//! it says it holds, so a reconnect loses nothing the log still holds. The log is bounded
//! (`MAX_LOG_BYTES`); past it lines are counted, not kept.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ferry_client::{ClientError, ControlPlaneClient};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::Ending;
use super::mask::Masker;

/// The most an attempt's log keeps; past it, lines are counted, not kept.
const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

/// How long a line waits before it is sent: the API shows it about this late.
const SEND_INTERVAL: Duration = Duration::from_secs(1);

/// Sent at once when this much is waiting; also the most one request carries.
const PART_BYTES: usize = 256 * 1024;

/// Longest pause between tries while the control plane cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long the attempt's end waits for its last lines to reach the control plane.
const FINAL_SEND_WAIT: Duration = Duration::from_secs(30);

/// The log as it ended: its text, and whether the control plane holds all of it.
pub(super) struct CollectedLog {
    pub(super) text: String,
    pub(super) streamed: bool,
}

/// Where the log goes while the attempt runs.
#[derive(Clone, Copy)]
pub(super) struct LogTarget<'a> {
    pub(super) client: &'a ControlPlaneClient,
    pub(super) job_id: i64,
    pub(super) attempt_id: Uuid,
}

struct Sender<'a> {
    target: LogTarget<'a>,
    /// Bytes of the log the control plane holds.
    acknowledged: usize,
    failures: u32,
    next_try: Instant,
    /// The control plane refused the attempt's log as not this data plane's: stop trying.
    refused: bool,
}

/// A part on its way: it runs beside the collection of new lines, so a slow or unreachable
/// control plane never holds lines back in the channel.
type InFlight<'a> = Pin<Box<dyn Future<Output = Result<u64, ClientError>> + Send + 'a>>;

impl<'a> Sender<'a> {
    /// The request sending what the control plane does not hold yet (a part of at most
    /// `PART_BYTES`), if anything.
    fn request(&self, text: &str) -> Option<InFlight<'a>> {
        let start = self.acknowledged.min(text.len());
        let mut end = (start + PART_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let part = text
            .get(start..end)
            .filter(|part| !part.is_empty())?
            .as_bytes()
            .to_vec();
        let LogTarget {
            client,
            job_id,
            attempt_id,
        } = self.target;
        Some(Box::pin(async move {
            client
                .append_log(job_id, attempt_id, start as u64, &part)
                .await
        }))
    }

    fn settle(&mut self, result: Result<u64, ClientError>, text: &str) {
        let target = &self.target;
        match result {
            Ok(received) => {
                // The control plane may hold less than was acknowledged before (never
                // more): send again from what it holds.
                self.acknowledged = usize::try_from(received)
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                self.failures = 0;
                self.next_try = Instant::now();
            }
            Err(error) if matches!(error.status(), Some(403 | 404)) => {
                tracing::warn!(job_id = target.job_id, attempt_id = %target.attempt_id, %error, "the control plane refuses this attempt's log");
                self.refused = true;
            }
            Err(error) => {
                self.failures += 1;
                let backoff = (Duration::from_millis(500) * 2u32.saturating_pow(self.failures))
                    .min(MAX_BACKOFF);
                if self.failures == 1 {
                    tracing::warn!(job_id = target.job_id, %error, "could not send the attempt's log; retrying");
                }
                self.next_try = Instant::now() + backoff;
            }
        }
    }

    fn waiting(&self, text: &str) -> usize {
        text.len().saturating_sub(self.acknowledged)
    }
}

async fn finished(in_flight: &mut Option<InFlight<'_>>) -> Result<u64, ClientError> {
    match in_flight {
        Some(request) => request.await,
        None => std::future::pending().await,
    }
}

/// Collects the attempt's lines until `lines` closes or `ended` fires (lines already queued
/// are kept), sending them as it goes.
pub(super) async fn collect_log<'a>(
    mut lines: mpsc::UnboundedReceiver<String>,
    mut ended: oneshot::Receiver<()>,
    masker: Masker,
    target: LogTarget<'a>,
) -> CollectedLog {
    let mut log = Log::default();
    let mut sender = Sender {
        target,
        acknowledged: 0,
        failures: 0,
        next_try: Instant::now(),
        refused: false,
    };
    let mut in_flight: Option<InFlight<'a>> = None;
    // When the oldest line not yet sent must go.
    let mut due: Option<Instant> = None;
    loop {
        let send_at = due
            .map(|due| due.max(sender.next_try))
            .filter(|_| in_flight.is_none() && !sender.refused);
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    log.push(&masker.mask(&line));
                    due.get_or_insert_with(|| Instant::now() + SEND_INTERVAL);
                }
                None => break,
            },
            _ = &mut ended => {
                while let Ok(line) = lines.try_recv() {
                    log.push(&masker.mask(&line));
                }
                break;
            }
            result = finished(&mut in_flight) => {
                in_flight = None;
                sender.settle(result, &log.text);
            }
            () = sleep_until(send_at) => in_flight = sender.request(&log.text),
        }
        let full = sender.waiting(&log.text) >= PART_BYTES && Instant::now() >= sender.next_try;
        if full && in_flight.is_none() && !sender.refused {
            in_flight = sender.request(&log.text);
        }
        due = (sender.waiting(&log.text) > 0 && !sender.refused)
            .then(|| due.unwrap_or_else(|| Instant::now() + SEND_INTERVAL));
    }
    log.finish();
    // The rest, within a bound: the attempt's end is not held for an unreachable control
    // plane (the log is then kept in this data plane's own log bucket).
    let give_up = Instant::now() + FINAL_SEND_WAIT;
    if let Some(request) = in_flight.take()
        && let Ok(result) = tokio::time::timeout_at(give_up, request).await
    {
        sender.settle(result, &log.text);
    }
    while sender.waiting(&log.text) > 0 && !sender.refused && Instant::now() < give_up {
        tokio::time::sleep_until(sender.next_try.min(give_up)).await;
        let Some(request) = sender.request(&log.text) else {
            break;
        };
        match tokio::time::timeout_at(give_up, request).await {
            Ok(result) => sender.settle(result, &log.text),
            Err(_) => break,
        }
    }
    CollectedLog {
        streamed: sender.waiting(&log.text) == 0,
        text: log.text,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[derive(Default)]
struct Log {
    text: String,
    dropped: u64,
}

impl Log {
    fn push(&mut self, line: &str) {
        if self.text.len() + line.len() + 40 > MAX_LOG_BYTES {
            self.dropped += 1;
            return;
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.text.push_str(&now);
        self.text.push(' ');
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn finish(&mut self) {
        if self.dropped > 0 {
            self.text.push_str(&format!(
                "... {} more lines not kept (log over {MAX_LOG_BYTES} bytes)\n",
                self.dropped
            ));
        }
    }
}

/// The attempt's last line: how it ended, with the failure and its origin.
pub(super) fn log_ending(ending: &Ending, log: &ferry_connectors::LogSink) {
    match ending {
        Ending::Finished(report) => {
            let cause = match (&report.failure_reason, report.failure_type) {
                (Some(reason), Some(kind)) => format!(
                    " ({kind} from {}: {reason})",
                    report
                        .failure_origin
                        .map_or_else(|| "unknown".to_owned(), |origin| origin.to_string())
                ),
                (Some(reason), None) => format!(" ({reason})"),
                _ => String::new(),
            };
            let _ = log.send(format!(
                "attempt ended: {}{cause}, {} rows and {} bytes committed",
                report.status, report.rows_synced, report.bytes_synced
            ));
        }
        Ending::Abandoned => {
            let _ = log.send("attempt abandoned: no longer this data plane's".to_owned());
        }
        Ending::HandedBack { rows, bytes } => {
            let _ = log.send(format!(
                "attempt handed back: this data plane is shutting down; {rows} rows and {bytes} bytes committed, another plane of the region resumes from there"
            ));
        }
    }
}
