//! External connectors: any program that speaks the Airbyte protocol on stdin/stdout (a
//! PyPI connector's entry point, a binary, a script), run as a child process with
//! `spec`, `check`, `discover`, `read` and `write`.
//!
//! Configuration, catalog and state go in files in a private temporary directory (0700,
//! files 0600), removed when the run ends (or swept at the next start of a data plane that
//! was killed). stderr lines are logged; stdout lines that are not protocol messages are
//! logged, not fatal; a TRACE ERROR's message becomes the failure reason; a non-zero exit
//! fails the run; dropping a run kills the process's group. How a connector is started (its
//! own process group; dying with the data plane): `launch`.

mod launch;

pub use launch::{Launcher, set_launcher, sweep_stale_run_dirs, sweep_stale_run_dirs_in};

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::failure::FailureType;
use ferry_protocol::{AirbyteMessage, PipeMessage, StateMessage};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::mpsc;

use crate::driver::Incoming;
use crate::{ConnectorError, StateAck, StreamEstimate, Tally};
use launch::{ConnectorProcess, RunFiles};

/// How long `spec`, `check` and `discover` may take.
const SHORT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The result of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub succeeded: bool,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExternalConnector {
    program: PathBuf,
    args: Vec<String>,
    /// Shown in logs.
    name: String,
    /// Where the connector's own words (stderr, LOG messages, stray stdout) go besides the
    /// process log: the attempt's log.
    log: Option<LogSink>,
}

/// Lines for an attempt's log.
pub type LogSink = mpsc::UnboundedSender<String>;

fn to_log(sink: &Option<LogSink>, name: &str, line: impl std::fmt::Display) {
    if let Some(sink) = sink {
        let _ = sink.send(format!("[{name}] {line}"));
    }
}

/// A pipe of 1 MiB instead of Linux's 64 KiB: the connector and Ferry each run on a core of
/// their own, and with a small pipe each would block on the other every few hundred records,
/// paying a context switch apiece (measured with the faker as a protocol program: both
/// processes at 87 % of a core, waiting on each other; at 94 % with the wider pipe). Best
/// effort: where the system allows less, the pipe stays as it is.
pub fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::pipe::fcntl_setpipe_size(pipe, 1 << 20) {
        tracing::debug!(%error, "could not widen a connector pipe");
    }
}

/// What a connector said besides its protocol output, kept for the failure reason.
#[derive(Default)]
struct Diagnostics {
    /// The first ERROR trace: its message and the failure type it gave (system_error when
    /// it gave none, as Airbyte's platform reads it).
    trace_error: Option<(String, FailureType)>,
}

impl Diagnostics {
    fn failure(&self, status: std::process::ExitStatus) -> ConnectorError {
        match self.traced() {
            Some(error) => error,
            None => ConnectorError::Failed(format!("the connector exited with {status}")),
        }
    }

    fn traced(&self) -> Option<ConnectorError> {
        self.trace_error
            .as_ref()
            .map(|(message, failure_type)| ConnectorError::Traced {
                message: message.clone(),
                failure_type: *failure_type,
            })
    }
}

/// Protocol messages from a connector's stdout; other lines are logged, LOG and TRACE
/// messages noted, on the way.
struct MessageReader {
    reader: BufReader<ChildStdout>,
    /// A line that spans two reads of the pipe, put together. Every other line is parsed
    /// where it lies in the read buffer, never copied.
    partial: Vec<u8>,
    said: Said,
    diagnostics: Diagnostics,
}

/// Who is speaking, and where its words go.
struct Said {
    name: String,
    log: Option<LogSink>,
}

impl MessageReader {
    fn new(stdout: ChildStdout, connector: &ExternalConnector) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 16, stdout),
            partial: Vec::new(),
            said: Said {
                name: connector.name.clone(),
                log: connector.log.clone(),
            },
            diagnostics: Diagnostics::default(),
        }
    }

    /// Whether a whole line is already read, so that `next` will not wait for the connector.
    fn has_line(&self) -> bool {
        memchr::memchr(b'\n', self.reader.buffer()).is_some()
    }

    async fn next(&mut self) -> Result<Option<AirbyteMessage>, ConnectorError> {
        loop {
            let buffer = self.reader.fill_buf().await.map_err(|error| {
                ConnectorError::Failed(format!("reading the connector's output: {error}"))
            })?;
            if buffer.is_empty() {
                // The end, perhaps after a last line without its newline.
                if self.partial.is_empty() {
                    return Ok(None);
                }
                let message = self.said.interpret(&self.partial, &mut self.diagnostics);
                self.partial.clear();
                match message {
                    Some(message) => return Ok(Some(message)),
                    None => continue,
                }
            }
            let (message, used) = match memchr::memchr(b'\n', buffer) {
                Some(end) if self.partial.is_empty() => (
                    self.said.interpret(&buffer[..end], &mut self.diagnostics),
                    end + 1,
                ),
                Some(end) => {
                    self.partial.extend_from_slice(&buffer[..end]);
                    let message = self.said.interpret(&self.partial, &mut self.diagnostics);
                    self.partial.clear();
                    (message, end + 1)
                }
                None => {
                    self.partial.extend_from_slice(buffer);
                    (None, buffer.len())
                }
            };
            self.reader.consume(used);
            if let Some(message) = message {
                return Ok(Some(message));
            }
        }
    }
}

/// The most records sent down the pipe as one message.
const RECORDS_PER_BATCH: usize = 256;

/// The records gathered so far, as one message (one record stays a RECORD).
fn batch(records: &mut Vec<ferry_protocol::RecordMessage>) -> PipeMessage {
    if records.len() == 1
        && let Some(record) = records.pop()
    {
        return AirbyteMessage::Record { record }.into();
    }
    PipeMessage::Records(std::mem::replace(
        records,
        Vec::with_capacity(RECORDS_PER_BATCH),
    ))
}

impl Said {
    /// The protocol message a line holds, or `None` for a line that is not one (logged).
    fn interpret(&self, line: &[u8], diagnostics: &mut Diagnostics) -> Option<AirbyteMessage> {
        let text = line.trim_ascii();
        if text.is_empty() {
            return None;
        }
        // Checked as UTF-8 once, whole, so that the parser need not check each string and
        // each record's raw `data` again.
        let message = match std::str::from_utf8(text) {
            Ok(json) if json.starts_with('{') => serde_json::from_str::<AirbyteMessage>(json).ok(),
            _ => None,
        };
        let Some(message) = message else {
            let text = String::from_utf8_lossy(text);
            // With an attempt's log to take it, a line goes there only, where secrets are
            // masked: the process log would keep them in clear.
            if self.log.is_none() {
                tracing::info!(connector = %self.name, stream = "stdout", "{text}");
            }
            to_log(&self.log, &self.name, text);
            return None;
        };
        match &message {
            AirbyteMessage::Log { log } => {
                if self.log.is_none() {
                    tracing::info!(connector = %self.name, level = %log.level, "{}", log.message);
                }
                to_log(
                    &self.log,
                    &self.name,
                    format_args!("{} {}", log.level, log.message),
                );
            }
            AirbyteMessage::Trace { trace } => {
                if trace.trace_type == "ESTIMATE"
                    && let Some(estimate) = trace.extra.get("estimate")
                {
                    to_log(
                        &self.log,
                        &self.name,
                        format_args!(
                            "ESTIMATE stream {}: {} rows, {} bytes",
                            estimate["name"].as_str().unwrap_or("?"),
                            estimate["row_estimate"],
                            estimate["byte_estimate"]
                        ),
                    );
                }
                if let Some(error) = &trace.error {
                    if self.log.is_none() {
                        tracing::warn!(connector = %self.name, "connector reported an error: {}", error.message);
                    }
                    to_log(
                        &self.log,
                        &self.name,
                        format_args!("ERROR {}", error.message),
                    );
                    let failure_type = error
                        .failure_type
                        .as_deref()
                        .map_or(FailureType::SystemError, FailureType::parse);
                    diagnostics
                        .trace_error
                        .get_or_insert_with(|| (error.message.clone(), failure_type));
                }
            }
            _ => {}
        }
        Some(message)
    }
}

impl ExternalConnector {
    /// A connector run as `command[0] command[1..] <verb> …`.
    pub fn new(command: &[String]) -> Result<Self, ConnectorError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| ConnectorError::invalid("command", "must name a program"))?;
        Ok(Self {
            program: PathBuf::from(program),
            args: args.to_vec(),
            name: Path::new(program)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| program.clone()),
            log: None,
        })
    }

    /// Also copies what the connector says into `sink`.
    pub fn with_log(mut self, sink: LogSink) -> Self {
        self.log = Some(sink);
        self
    }

    /// Starts the connector with a verb and its arguments; its stderr goes to the log, its
    /// stdout is returned beside the child.
    fn spawn(
        &self,
        verb_and_args: &[std::ffi::OsString],
        stdin: bool,
    ) -> Result<(ConnectorProcess, ChildStdout), ConnectorError> {
        let mut command = launch::command(&self.program, &self.args);
        command
            .args(verb_and_args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = ConnectorProcess::new(command.spawn().map_err(|error| {
            ConnectorError::Failed(format!("cannot start {}: {error}", self.program.display()))
        })?);
        if let Some(stderr) = child.stderr.take() {
            let name = self.name.clone();
            let sink = self.log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if sink.is_none() {
                        tracing::info!(connector = %name, stream = "stderr", "{line}");
                    }
                    to_log(&sink, &name, &line);
                }
            });
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ConnectorError::Failed("no stdout".to_owned()))?;
        widen_pipe(&stdout);
        if let Some(stdin) = &child.stdin {
            widen_pipe(stdin);
        }
        Ok((child, stdout))
    }

    /// Runs a verb that answers with one message of `kind` (SPEC, CONNECTION_STATUS, CATALOG).
    async fn single_answer(
        &self,
        verb: &str,
        config: Option<&Value>,
        kind: &str,
    ) -> Result<Value, ConnectorError> {
        let files = RunFiles::new()?;
        let mut arguments: Vec<std::ffi::OsString> = vec![verb.into()];
        if let Some(config) = config {
            arguments.push("--config".into());
            arguments.push(files.write("config.json", config)?.into_os_string());
        }
        let (mut child, stdout) = self.spawn(&arguments, false)?;
        let mut messages = MessageReader::new(stdout, self);
        let mut answer = None;
        let run = async {
            while let Some(message) = messages.next().await? {
                if let AirbyteMessage::Other {
                    kind: message_kind,
                    body,
                } = message
                    && message_kind == kind
                    && answer.is_none()
                {
                    answer = Some(body);
                }
            }
            child.wait().await.map_err(|error| {
                ConnectorError::Failed(format!("waiting for the connector: {error}"))
            })
        };
        let status = tokio::time::timeout(SHORT_COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| {
                ConnectorError::Failed(format!(
                    "`{verb}` did not finish within {SHORT_COMMAND_TIMEOUT:?}"
                ))
            })??;
        if !status.success() {
            return Err(messages.diagnostics.failure(status));
        }
        answer.ok_or_else(|| ConnectorError::Failed(format!("`{verb}` gave no {kind} message")))
    }

    pub async fn spec(&self) -> Result<Value, ConnectorError> {
        self.single_answer("spec", None, "SPEC").await
    }

    pub async fn check(&self, config: &Value) -> Result<CheckResult, ConnectorError> {
        let status = self
            .single_answer("check", Some(config), "CONNECTION_STATUS")
            .await?;
        Ok(CheckResult {
            succeeded: status.get("status").and_then(Value::as_str) == Some("SUCCEEDED"),
            message: status
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    pub async fn discover(&self, config: &Value) -> Result<Value, ConnectorError> {
        self.single_answer("discover", Some(config), "CATALOG")
            .await
    }

    /// `read`: every RECORD and STATE goes to `output`, in order.
    pub async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        state: Option<&Value>,
        output: mpsc::Sender<PipeMessage>,
    ) -> Result<(), ConnectorError> {
        let files = RunFiles::new()?;
        let mut arguments: Vec<std::ffi::OsString> = vec![
            "read".into(),
            "--config".into(),
            files.write("config.json", config)?.into_os_string(),
            "--catalog".into(),
            files.write("catalog.json", catalog)?.into_os_string(),
        ];
        if let Some(state) = state {
            arguments.push("--state".into());
            arguments.push(files.write("state.json", state)?.into_os_string());
        }
        let (mut child, stdout) = self.spawn(&arguments, false)?;
        let mut messages = MessageReader::new(stdout, self);
        // Records go down the pipe in batches: those that one read of the connector's output
        // brought, up to RECORDS_PER_BATCH; a batch never waits for the connector.
        let mut records = Vec::new();
        let send = |message: PipeMessage| async {
            output
                .send(message)
                .await
                .map_err(|_| ConnectorError::PipeClosed)
        };
        while let Some(message) = messages.next().await? {
            match message {
                AirbyteMessage::Record { record } => records.push(record),
                // States, and the stream statuses and estimates a destination may act on,
                // go on in order; an ERROR trace is the run's failure reason instead.
                AirbyteMessage::State { .. } => {
                    if !records.is_empty() {
                        send(batch(&mut records)).await?;
                    }
                    send(message.into()).await?;
                }
                AirbyteMessage::Trace { ref trace }
                    if matches!(trace.trace_type.as_str(), "STREAM_STATUS" | "ESTIMATE") =>
                {
                    if !records.is_empty() {
                        send(batch(&mut records)).await?;
                    }
                    send(message.into()).await?;
                }
                _ => {}
            }
            if !records.is_empty() && (records.len() >= RECORDS_PER_BATCH || !messages.has_line()) {
                send(batch(&mut records)).await?;
            }
        }
        if !records.is_empty() {
            send(batch(&mut records)).await?;
        }
        let status = child.wait().await.map_err(|error| {
            ConnectorError::Failed(format!("waiting for the connector: {error}"))
        })?;
        if !status.success() {
            return Err(messages.diagnostics.failure(status));
        }
        if let Some(error) = messages.diagnostics.traced() {
            return Err(error);
        }
        Ok(())
    }

    /// `write`: feeds `input` to the destination; each STATE it echoes back acknowledges
    /// that state and every one sent before it, with the records sent before it.
    pub async fn write(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
        input: mpsc::Receiver<PipeMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> Result<(), ConnectorError> {
        let mut input = Incoming::new(input);
        // The connector sees streams where the connection places them.
        let catalog = &naming.apply(catalog);
        let naming = naming.clone();
        let files = RunFiles::new()?;
        let arguments: Vec<std::ffi::OsString> = vec![
            "write".into(),
            "--config".into(),
            files.write("config.json", config)?.into_os_string(),
            "--catalog".into(),
            files.write("catalog.json", catalog)?.into_os_string(),
        ];
        let (mut child, stdout) = self.spawn(&arguments, true)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| ConnectorError::Failed("no stdin".to_owned()))?;
        // States sent and not yet echoed, each with what was sent before it.
        let (sent_sender, mut sent) = mpsc::unbounded_channel::<(StateMessage, Tally)>();
        let estimates = acks.clone();
        let feeder = async move {
            let mut tally = Tally::default();
            let mut line = Vec::with_capacity(1 << 12);
            while let Some(mut message) = input.recv().await? {
                match &message {
                    // Counted under the source's names, before the connection renames them.
                    AirbyteMessage::Record { record } => tally.add(
                        &record.stream,
                        record.namespace.as_deref(),
                        1,
                        record.data.get().len() as u64,
                    ),
                    AirbyteMessage::State { state } => {
                        let _ = sent_sender.send((state.clone(), std::mem::take(&mut tally)));
                    }
                    AirbyteMessage::Trace { trace } => {
                        if let Some(estimate) = StreamEstimate::of_trace(trace) {
                            let _ = estimates.send(StateAck::of_estimate(estimate)).await;
                        }
                    }
                    _ => {}
                }
                naming.apply_to_message(&mut message);
                line.clear();
                serde_json::to_writer(&mut line, &message).map_err(|error| {
                    ConnectorError::Failed(format!("encoding a message: {error}"))
                })?;
                line.push(b'\n');
                if stdin.write_all(&line).await.is_err() {
                    // The destination stopped reading: its exit status tells why.
                    break;
                }
            }
            drop(stdin);
            // What was sent after the last state.
            Ok::<Tally, ConnectorError>(tally)
        };
        let mut messages = MessageReader::new(stdout, self);
        let name = self.name.clone();
        let echoes = async {
            let mut pending: VecDeque<(StateMessage, Tally)> = VecDeque::new();
            while let Some(message) = messages.next().await? {
                let AirbyteMessage::State { state: echoed } = message else {
                    continue;
                };
                while let Ok(entry) = sent.try_recv() {
                    pending.push_back(entry);
                }
                let echoed_json = serde_json::to_value(&echoed).unwrap_or(Value::Null);
                let Some(position) = pending.iter().position(|(state, _)| {
                    serde_json::to_value(state).unwrap_or(Value::Null) == echoed_json
                }) else {
                    tracing::warn!(connector = %name, "destination emitted a state it was never sent; ignored");
                    continue;
                };
                // An echoed state acknowledges it and every state sent before it.
                let mut acknowledged = Tally::default();
                for (_, tally) in pending.drain(..=position) {
                    acknowledged.merge(tally);
                }
                acks.send(acknowledged.ack(Some(echoed)))
                    .await
                    .map_err(|_| ConnectorError::PipeClosed)?;
            }
            Ok::<VecDeque<(StateMessage, Tally)>, ConnectorError>(pending)
        };
        let (fed, echoed) = tokio::join!(feeder, echoes);
        let mut rest = fed?;
        let mut unechoed = echoed?;
        let status = child.wait().await.map_err(|error| {
            ConnectorError::Failed(format!("waiting for the connector: {error}"))
        })?;
        if !status.success() {
            return Err(messages.diagnostics.failure(status));
        }
        // A destination that exits 0 has made everything durable: the records after its last
        // echo count, though states it did not echo are not committed.
        while let Ok(entry) = sent.try_recv() {
            unechoed.push_back(entry);
        }
        for (_, tally) in unechoed {
            rest.merge(tally);
        }
        if !rest.is_empty() {
            acks.send(rest.ack(None))
                .await
                .map_err(|_| ConnectorError::PipeClosed)?;
        }
        Ok(())
    }
}
