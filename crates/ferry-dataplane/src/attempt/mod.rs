//! One attempt of a job: fetch its configuration, pipe source → destination, commit each
//! state the destination acknowledges, and report how it ended (with the real cause).

mod failure;
mod large_state;
mod log;
pub(crate) mod mask;
mod pipe;
mod progress;
mod record;

use ferry_api::{AttemptConfig, AttemptStatus, ClaimedJob, FinishReport};
use ferry_client::ControlPlaneClient;
use ferry_connectors::{Destination, LogSink, Source, SourceState, StateAck};
use ferry_connectors::{destination_for, source_for};
use ferry_protocol::catalog::{self, AirbyteCatalog, ConfiguredCatalog, DestinationNaming};
use ferry_protocol::failure::{FailureOrigin, FailureType};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use failure::{Failure, SideOutcome};
use mask::Masker;
use pipe::PipeThread;
use progress::Progress;
use record::Record;

/// What the data plane asks of a running attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Run,
    /// The user cancelled the job: stop, report `cancelled`.
    Cancel,
    /// The lease is gone: stop, report and commit nothing.
    Lost,
    /// The data plane is draining and its grace ran out: stop, commit what the destination
    /// acknowledged, and hand the job back for another plane of the region to resume.
    Stop,
}

/// How often acknowledged states are committed to the control plane, at most (Airbyte's
/// platform persists them every 10 s). States arrive far more often from a fast source (one
/// per slice); committing each would cost a control-plane write apiece. A crash loses
/// nothing: the next attempt resumes from the last committed state, and re-reads at most
/// this much.
const STATE_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Messages in flight between source and destination; bounds memory whatever the table size:
/// records are small, COPY row batches are up to a MiB each.
const PIPE_CAPACITY: usize = 4096;
const COPY_ROWS_PIPE_CAPACITY: usize = 16;

/// How long a cancelled or stopped attempt waits for its connectors to be dropped before it
/// reports anyway: they stop at their next await, within milliseconds unless one blocks its
/// thread.
const PIPE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) enum Ending {
    Finished(FinishReport),
    /// Fenced: the attempt is not ours any more; report nothing.
    Abandoned,
    /// Stopped by a draining data plane after committing what it could: the job goes back
    /// to its lane at once.
    HandedBack {
        rows: i64,
        bytes: i64,
    },
}

/// How an attempt ended, for the data plane's metrics.
pub(crate) struct Ended {
    /// `succeeded`, `failed`, `cancelled`, `handed_back` or `abandoned`.
    pub(crate) how: &'static str,
    pub(crate) rows: i64,
    pub(crate) bytes: i64,
}

impl Ending {
    fn summary(&self) -> Ended {
        match self {
            Self::Finished(report) => Ended {
                how: report.status.as_str(),
                rows: report.rows_synced,
                bytes: report.bytes_synced,
            },
            Self::Abandoned => Ended {
                how: "abandoned",
                rows: 0,
                bytes: 0,
            },
            Self::HandedBack { rows, bytes } => Ended {
                how: "handed_back",
                rows: *rows,
                bytes: *bytes,
            },
        }
    }
}

impl Ending {
    fn ended(status: AttemptStatus, rows: i64, bytes: i64) -> Self {
        Self::Finished(FinishReport {
            status,
            failure_reason: None,
            failure_origin: None,
            failure_type: None,
            rows_synced: rows,
            bytes_synced: bytes,
        })
    }

    fn failed(failure: Failure, rows: i64, bytes: i64) -> Self {
        Self::Finished(FinishReport {
            status: AttemptStatus::Failed,
            failure_reason: Some(failure.message),
            failure_origin: Some(failure.origin),
            failure_type: Some(failure.failure_type),
            rows_synced: rows,
            bytes_synced: bytes,
        })
    }
}

pub async fn run(
    client: &ControlPlaneClient,
    claimed: ClaimedJob,
    signal: watch::Receiver<Signal>,
    storage: &crate::StorageBuckets,
    secrets: Option<&ferry_secrets::SecretsManager>,
) -> Ended {
    let (job_id, attempt_id) = (claimed.job_id, claimed.attempt_id);
    let (log, lines) = mpsc::unbounded_channel();
    let (log_done, log_ended) = oneshot::channel();
    let masker = Masker::default();
    let record = Record::new();
    // The log goes to the control plane while the attempt runs, beside it in this task.
    let collector = log::collect_log(
        lines,
        log_ended,
        masker.clone(),
        log::LogTarget {
            client,
            job_id,
            attempt_id,
        },
    );
    let work = async {
        let _ = log.send(format!(
            "attempt {} of job {job_id} ({}) started, attempt id {attempt_id}",
            claimed.attempt_number, claimed.job_type
        ));
        if claimed.attempt_number > 1 {
            let _ = log.send(format!(
                "a retry: {} earlier attempt(s) of this job did not succeed (their logs: attempts 1 to {})",
                claimed.attempt_number - 1,
                claimed.attempt_number - 1
            ));
        }
        let ending = execute(
            client,
            &claimed,
            signal,
            &log,
            (storage, secrets),
            (&masker, &record),
        )
        .await;
        log::log_ending(&ending, &log);
        drop(log);
        // Connectors' log senders may outlive them a little: what they queued is kept.
        let _ = log_done.send(());
        ending
    };
    let (ending, collected) = tokio::join!(work, collector);
    let summary = ending.summary();
    let report = match &ending {
        Ending::Finished(report) => Some(report),
        _ => None,
    };
    record
        .keep(storage, &claimed, collected, (summary.how, report))
        .await;
    match ending {
        Ending::Finished(report) => {
            tracing::info!(job_id, %attempt_id, status = %report.status, rows = report.rows_synced, "attempt ended");
            if let Err(error) = client.finish(job_id, attempt_id, &report).await {
                tracing::warn!(job_id, %attempt_id, %error, "could not report the attempt's end");
            }
        }
        Ending::Abandoned => {
            tracing::warn!(job_id, %attempt_id, "attempt abandoned: no longer ours")
        }
        Ending::HandedBack { rows, bytes } => {
            let counts = ferry_api::ProgressReport {
                rows_synced: rows,
                bytes_synced: bytes,
            };
            match client.hand_back(job_id, attempt_id, &counts).await {
                Ok(()) => tracing::info!(job_id, %attempt_id, rows, "attempt handed back"),
                Err(error) => {
                    tracing::warn!(job_id, %attempt_id, %error, "could not hand the attempt back; its lease will lapse")
                }
            }
        }
    }
    summary
}

/// Everything an attempt runs, made ready: nothing has moved yet.
struct Prepared {
    source: Box<dyn Source>,
    destination: Box<dyn Destination>,
    /// What the source reads.
    catalog: ConfiguredCatalog,
    /// What the destination writes (a reset overwrites every stream with nothing).
    destination_catalog: ConfiguredCatalog,
    resume: SourceState,
    naming: DestinationNaming,
    is_reset: bool,
    pipe_capacity: usize,
}

async fn execute(
    client: &ControlPlaneClient,
    claimed: &ClaimedJob,
    signal: watch::Receiver<Signal>,
    log: &LogSink,
    (storage, secrets): (
        &crate::StorageBuckets,
        Option<&ferry_secrets::SecretsManager>,
    ),
    (masker, record): (&Masker, &Record),
) -> Ending {
    let mut config = match client
        .attempt_config(claimed.job_id, claimed.attempt_id)
        .await
    {
        Ok(config) => config,
        Err(error) if error.is_fenced() => return Ending::Abandoned,
        Err(error) => {
            return Ending::failed(
                Failure::new(
                    FailureOrigin::AirbytePlatform,
                    FailureType::TransientError,
                    format!("could not read the job's configuration: {error}"),
                ),
                0,
                0,
            );
        }
    };
    // Before the masker learns them: the secrets it must hide are the resolved ones.
    if let Err(error) = crate::secrets::resolve_attempt(&mut config, secrets).await {
        let failure = Failure::new(
            FailureOrigin::AirbytePlatform,
            crate::secrets::failure_type(&error),
            format!("could not read the connectors' secrets from the secrets manager: {error}"),
        );
        let _ = log.send(format!("{}: {}", failure.failure_type, failure.message));
        return Ending::failed(failure, 0, 0);
    }
    masker
        .learn(
            ferry_protocol::ConnectorRole::Source,
            &config.source_type,
            config.source_command.as_deref(),
            &config.source_configuration,
        )
        .await;
    masker
        .learn(
            ferry_protocol::ConnectorRole::Destination,
            &config.destination_type,
            config.destination_command.as_deref(),
            &config.destination_configuration,
        )
        .await;
    record.connectors(&config, log);
    let state_bucket = match large_state::StateBucket::for_attempt(storage, &mut config).await {
        Ok(bucket) => bucket,
        Err(failure) => {
            let _ = log.send(format!("{}: {}", failure.failure_type, failure.message));
            return Ending::failed(failure, 0, 0);
        }
    };
    let prepared = match prepare(&config, log).await {
        Ok(prepared) => prepared,
        Err(failure) => {
            let _ = log.send(format!("{}: {}", failure.failure_type, failure.message));
            return Ending::failed(failure, 0, 0);
        }
    };
    describe(&prepared, log);
    record.streams(&prepared.destination_catalog, &prepared.naming);
    let (pipe, acks) = start(prepared, log);
    let progress = Progress::new(state_bucket, log.clone());
    follow(
        client,
        claimed,
        (pipe, acks, progress),
        signal,
        (log, record),
    )
    .await
}

/// Makes the connectors and the configured catalog: from what the source offers
/// (discovered here, in the region) and what the connection asks for.
async fn prepare(config: &AttemptConfig, log: &LogSink) -> Result<Prepared, Failure> {
    let mut source = source_for(
        &config.source_type,
        config.source_command.as_deref(),
        &config.source_configuration,
        Some(log),
    )
    .map_err(|error| Failure::of(FailureOrigin::Source, &error))?;
    let mut destination = destination_for(
        &config.destination_type,
        config.destination_command.as_deref(),
        &config.destination_configuration,
        Some(log),
    )
    .map_err(|error| Failure::of(FailureOrigin::Destination, &error))?;
    destination.record_checkpoints_as(&config.connection_id.to_string(), config.job_id);
    // Between two native PostgreSQL connectors rows stay in COPY form: no JSON on the way.
    let pipe_capacity = if destination.accepts_copy_rows() && source.emit_copy_rows() {
        COPY_ROWS_PIPE_CAPACITY
    } else {
        PIPE_CAPACITY
    };
    let discovered = source.discover().await.map_err(|error| {
        let mut failure = Failure::of(FailureOrigin::Source, &error);
        failure.message = format!("source: discover failed: {error}");
        failure
    })?;
    let discovered: AirbyteCatalog = serde_json::from_value(discovered).map_err(|error| {
        Failure::new(
            FailureOrigin::Source,
            FailureType::SystemError,
            format!("source: discover gave a catalog Ferry cannot read: {error}"),
        )
    })?;
    let catalog =
        catalog::configure(&discovered, &config.stream_configurations).map_err(|error| {
            Failure::new(
                FailureOrigin::Replication,
                FailureType::ConfigError,
                format!("catalog: {error}"),
            )
        })?;
    let is_reset = config.job_type != ferry_api::JobType::Sync;
    let mut resume = progress::committed_state(&config.state, &catalog);
    if !is_reset {
        progress::prefer_destination_checkpoints(
            &mut resume.streams,
            &*destination,
            &catalog,
            &config.naming,
            log,
        )
        .await?;
    }
    let destination_catalog = if is_reset {
        catalog.for_reset()
    } else {
        catalog.clone()
    };
    Ok(Prepared {
        source,
        destination,
        catalog,
        destination_catalog,
        resume,
        naming: config.naming.clone(),
        is_reset,
        pipe_capacity,
    })
}

/// What the attempt runs, in its log: each stream's modes and where it lands.
fn describe(prepared: &Prepared, log: &LogSink) {
    for configured in &prepared.destination_catalog.streams {
        let stream = &configured.stream;
        let target = record::target(&prepared.naming, &stream.descriptor());
        let resumes = prepared.resume.streams.iter().any(|resume| {
            configured.takes(&resume.stream.name, resume.stream.namespace.as_deref())
        });
        let _ = log.send(format!(
            "stream {}: {} / {}, cursor {:?}, primary key {:?} -> {target}{}",
            stream.descriptor().key(),
            configured.sync_mode.as_str(),
            configured.destination_sync_mode.as_str(),
            configured.cursor_field,
            configured.primary_key,
            if resumes {
                ", resuming from its committed state"
            } else {
                ""
            },
        ));
    }
}

type PipeOutcome = (SideOutcome, SideOutcome);

/// Starts source and destination on the pipe's thread. They take turns in one task: a
/// message passes between them without waking another thread (cross-thread wake-ups cost
/// more than a record's whole handling), and each runs until the pipe is full or empty. The
/// connectors' own work is in other processes (databases, external connectors) or small.
fn start(prepared: Prepared, log: &LogSink) -> (PipeThread<PipeOutcome>, mpsc::Receiver<StateAck>) {
    let Prepared {
        source,
        destination,
        catalog,
        destination_catalog,
        resume,
        naming,
        is_reset,
        pipe_capacity,
    } = prepared;
    let (records_sender, records) = mpsc::channel(pipe_capacity);
    let (acks_sender, acks) = mpsc::channel::<StateAck>(64);
    let (source_log, destination_log) = (log.clone(), log.clone());
    let source_run = async move {
        let read = async {
            // A reset reads nothing: every stream is overwritten with nothing.
            if !is_reset {
                source
                    .read(&catalog, &resume, records_sender.clone())
                    .await?;
            }
            // Only a source that read everything marks its streams complete: the
            // destination replaces an overwritten table only then, so a failed read never
            // empties one.
            for message in catalog.streams_complete() {
                records_sender
                    .send(message.into())
                    .await
                    .map_err(|_| ferry_connectors::ConnectorError::PipeClosed)?;
            }
            Ok(())
        };
        let outcome: Result<(), ferry_connectors::ConnectorError> = read.await;
        outcome.map_err(|error| {
            if !error.is_pipe_closed() {
                let _ =
                    source_log.send(format!("source failed ({}): {error}", error.failure_type()));
            }
            (Instant::now(), error)
        })
    };
    let destination_run = async move {
        destination
            .write(&destination_catalog, &naming, records, acks_sender)
            .await
            .map_err(|error| {
                if !error.is_pipe_closed() {
                    let _ = destination_log.send(format!(
                        "destination failed ({}): {error}",
                        error.failure_type()
                    ));
                }
                (Instant::now(), error)
            })
    };
    let pipe = PipeThread::spawn(async move { tokio::join!(source_run, destination_run) });
    (pipe, acks)
}

/// Commits what the destination acknowledges while the pipe runs, answers the data plane's
/// signals, and tells how the attempt ended.
async fn follow(
    client: &ControlPlaneClient,
    claimed: &ClaimedJob,
    (mut pipe, mut acks, mut progress): (
        PipeThread<PipeOutcome>,
        mpsc::Receiver<StateAck>,
        Progress,
    ),
    mut signal: watch::Receiver<Signal>,
    (log, record): (&LogSink, &Record),
) -> Ending {
    let (job_id, attempt_id) = (claimed.job_id, claimed.attempt_id);
    // The first acknowledged state is committed at once; later ones at most once a period.
    let mut last_commit = Instant::now() - STATE_COMMIT_INTERVAL;
    loop {
        let due = last_commit + STATE_COMMIT_INTERVAL;
        tokio::select! {
            ack = acks.recv() => {
                let Some(ack) = ack else { break };
                progress.take(ack);
                // Acknowledgements that came together (states in a row) are committed
                // together: a state whose rows were counted in another's commit must not
                // be left behind.
                while let Ok(more) = acks.try_recv() {
                    progress.take(more);
                }
                if Instant::now() < due {
                    continue;
                }
            }
            () = tokio::time::sleep_until(due), if progress.pending => {}
            changed = signal.changed() => {
                let now = if changed.is_ok() { *signal.borrow() } else { Signal::Stop };
                if now == Signal::Run {
                    continue;
                }
                pipe.abort();
                if now == Signal::Lost {
                    return Ending::Abandoned;
                }
                // Rows stop moving once the connectors are dropped, at the pipe's next turn:
                // wait for that, so that what is reported is all that moved.
                if tokio::time::timeout(PIPE_STOP_WAIT, pipe.finished()).await.is_err() {
                    let _ = log.send(format!(
                        "the connectors did not stop within {} s of the {}",
                        PIPE_STOP_WAIT.as_secs(),
                        if now == Signal::Cancel { "cancel" } else { "stop" }
                    ));
                }
                // What the destination acknowledged before it stopped is durable there: it is
                // committed, so the counts are what landed and the next attempt resumes there.
                // Nothing moves after: the connectors are gone.
                while let Ok(ack) = acks.try_recv() {
                    progress.take(ack);
                }
                if let Err(ending) = progress.commit(client, job_id, attempt_id).await {
                    return ending;
                }
                let (rows, bytes) = (progress.rows, progress.bytes);
                return match now {
                    Signal::Cancel => Ending::ended(AttemptStatus::Cancelled, rows, bytes),
                    _ => Ending::HandedBack { rows, bytes },
                };
            }
        }
        if let Err(ending) = progress.commit(client, job_id, attempt_id).await {
            pipe.abort();
            return ending;
        }
        last_commit = Instant::now();
    }
    if let Err(ending) = progress.commit(client, job_id, attempt_id).await {
        pipe.abort();
        return ending;
    }
    record.counts(progress.streams.counts());
    for count in progress.streams.counts() {
        let _ = log.send(format!(
            "stream {}: {} rows, {} bytes committed",
            count.stream.key(),
            count.records,
            count.bytes
        ));
    }
    let (rows, bytes) = (progress.rows, progress.bytes);
    match pipe.finished().await {
        Some((source, destination)) => match failure::cause(&source, &destination) {
            None => Ending::ended(AttemptStatus::Succeeded, rows, bytes),
            Some(failure) => Ending::failed(failure, rows, bytes),
        },
        None => Ending::failed(
            Failure::platform("the connectors' thread ended without an outcome"),
            rows,
            bytes,
        ),
    }
}
