//! `ferry connector <name> <operation>`: each native connector as a program speaking the
//! Airbyte protocol on stdin/stdout, so the same binary serves as a connector image for
//! Ferry's runner, Airbyte's, or a shell pipe.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferry_connectors::registry::{self, Registration};
use ferry_connectors::{ConnectorError, ResumeState, SourceState, StateAck, connector};
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming};
use ferry_protocol::{
    AirbyteMessage, ConnectorRole, ErrorTrace, PipeMessage, RecordLine, TraceMessage,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

#[derive(Args)]
pub struct ConnectorArgs {
    /// `source-<type>` or `destination-<type>`, for any native connector: see
    /// `ferry connector list`.
    name: String,
    #[command(subcommand)]
    operation: Operation,
}

#[derive(Subcommand)]
enum Operation {
    /// Print the connector's SPEC.
    Spec,
    /// List the native connectors (the name is ignored: `ferry connector all list`).
    List,
    /// Check a configuration: print a CONNECTION_STATUS.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the source's CATALOG.
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read the configured catalog's streams: RECORD and STATE messages.
    Read {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Write the messages on stdin; print each STATE once what came before it is durable.
    Write {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
    },
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Protocol messages to stdout, buffered; flushed after each STATE and at the end.
///
/// Written by the thread that makes them, blocking while the pipe is full: writing stdout is
/// this program's whole job, and a full pipe is the reader asking it to wait. Tokio's
/// `Stdout` would hand every buffer to a thread of its blocking pool instead, a third busy
/// thread that, on a 2-core machine, waits for a core while the reader holds one (the
/// connector stalled ~14 % of the time through the runner that way). Written to the file
/// descriptor itself: `std::io::Stdout` would split each buffer at its last newline into two
/// writes.
struct Output {
    writer: std::io::BufWriter<std::fs::File>,
    line: Vec<u8>,
}

impl Output {
    fn new() -> anyhow::Result<Self> {
        let stdout = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("opening stdout")?;
        // Into a pipe, as wide a one as Ferry's runner makes, whoever reads it: records are
        // made while the reader takes the last ones, rather than in turns.
        ferry_connectors::process::widen_pipe(&stdout);
        Ok(Self {
            writer: std::io::BufWriter::with_capacity(1 << 16, std::fs::File::from(stdout)),
            line: Vec::with_capacity(1 << 12),
        })
    }

    fn send(&mut self, message: &AirbyteMessage) -> anyhow::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, message)?;
        self.line.push(b'\n');
        self.writer.write_all(&self.line)?;
        if matches!(message, AirbyteMessage::State { .. }) {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// What a source sent down the pipe: a batch of records is written as what it holds, a
    /// RECORD line each.
    fn send_piped(&mut self, message: &PipeMessage) -> anyhow::Result<()> {
        match message {
            PipeMessage::Message(message) => self.send(message),
            PipeMessage::Records(records) => {
                self.line.clear();
                for record in records {
                    serde_json::to_writer(&mut self.line, &RecordLine(record))?;
                    self.line.push(b'\n');
                }
                self.writer.write_all(&self.line)?;
                Ok(())
            }
            PipeMessage::CopyRows(_) => {
                anyhow::bail!("COPY rows are only for a native PostgreSQL destination")
            }
        }
    }

    fn other(&mut self, kind: &str, body: Value) -> anyhow::Result<()> {
        self.send(&AirbyteMessage::Other {
            kind: kind.to_owned(),
            body,
        })
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.writer.flush()?;
        Ok(())
    }
}

fn error_trace(error: &ConnectorError) -> AirbyteMessage {
    let failure_type = error.failure_type().as_str();
    AirbyteMessage::Trace {
        trace: TraceMessage {
            trace_type: "ERROR".to_owned(),
            emitted_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
                .unwrap_or_default(),
            error: Some(Box::new(ErrorTrace {
                message: error.to_string(),
                internal_message: None,
                failure_type: Some(failure_type.to_owned()),
                extra: Map::new(),
            })),
            extra: Map::new(),
        },
    }
}

/// The committed state as Airbyte passes it: an array of STATE messages (or one). Native
/// sources keep per-stream states; a GLOBAL one gives them its streams' states.
fn resume_states(state: &Value) -> SourceState {
    let messages = match state {
        Value::Array(messages) => messages.clone(),
        other => vec![other.clone()],
    };
    let stream_states = messages.iter().flat_map(|message| {
        let streams: Vec<Value> = match message.get("stream") {
            Some(stream) => vec![stream.clone()],
            None => message
                .pointer("/global/stream_states")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        streams
    });
    SourceState {
        streams: stream_states
            .filter_map(|stream| {
                let stream: ferry_protocol::StreamState = serde_json::from_value(stream).ok()?;
                Some(ResumeState {
                    stream: stream.stream_descriptor,
                    state: stream.stream_state?,
                })
            })
            .collect(),
        ..SourceState::default()
    }
}

/// Every native connector's program name, from the registry.
fn names() -> Vec<String> {
    registry::CONNECTORS
        .iter()
        .map(|registration| format!("{}-{}", registration.role, registration.connector_type))
        .collect()
}

pub async fn run(args: ConnectorArgs) -> anyhow::Result<()> {
    if matches!(args.operation, Operation::List) {
        for name in names() {
            println!("{name}");
        }
        return Ok(());
    }
    let registration = args
        .name
        .split_once('-')
        .and_then(|(role, connector_type)| {
            let role = match role {
                "source" => ConnectorRole::Source,
                "destination" => ConnectorRole::Destination,
                _ => return None,
            };
            registry::native(role, connector_type)
        });
    let Some(registration) = registration else {
        bail!("unknown connector '{}' ({})", args.name, names().join(", "));
    };
    // The local-file connectors read and write only under `FERRY_LOCAL_ROOT` (Airbyte's
    // `/local` mount); without it they refuse every path.
    if let Some(root) =
        std::env::var_os(ferry_connectors::local_root::ENV).filter(|root| !root.is_empty())
    {
        ferry_connectors::local_root::set(Path::new(&root), &[]).map_err(anyhow::Error::msg)?;
    }
    let mut output = Output::new()?;
    let outcome = operate(registration, args.operation, &mut output).await;
    if let Err(error) = &outcome {
        output.send(&error_trace(error))?;
    }
    output.finish()?;
    outcome.map_err(|error| anyhow::anyhow!("{error}"))
}

async fn operate(
    registration: &Registration,
    operation: Operation,
    output: &mut Output,
) -> Result<(), ConnectorError> {
    let (role, connector_type) = (registration.role, registration.connector_type);
    let source = |config: &Value| connector::source(connector_type, config);
    let destination = |config: &Value| connector::destination(connector_type, config);
    let json =
        |path: &Path| read_json(path).map_err(|error| ConnectorError::Failed(format!("{error:#}")));
    let pipe_failed = |error: anyhow::Error| ConnectorError::Failed(format!("stdout: {error}"));
    match operation {
        Operation::Spec => output
            .other(
                "SPEC",
                json!({"connectionSpecification": (registration.spec)()}),
            )
            .map_err(pipe_failed),
        Operation::List => Ok(()),
        Operation::Check { config } => {
            let config = json(&config)?;
            let checked = match role {
                ConnectorRole::Source => match source(&config) {
                    Ok(source) => source.check().await,
                    Err(error) => Err(error),
                },
                ConnectorRole::Destination => match destination(&config) {
                    Ok(destination) => destination.check().await,
                    Err(error) => Err(error),
                },
            };
            let status = match checked {
                Ok(()) => json!({"status": "SUCCEEDED"}),
                Err(error) => json!({"status": "FAILED", "message": error.to_string()}),
            };
            output
                .other("CONNECTION_STATUS", status)
                .map_err(pipe_failed)
        }
        Operation::Discover { config } if role == ConnectorRole::Source => {
            let catalog = source(&json(&config)?)?.discover().await?;
            output.other("CATALOG", catalog).map_err(pipe_failed)
        }
        Operation::Read {
            config,
            catalog,
            state,
        } if role == ConnectorRole::Source => {
            let source = source(&json(&config)?)?;
            let catalog = configured_catalog(json(&catalog)?)?;
            let resume = match state {
                Some(path) => resume_states(&json(&path)?),
                None => SourceState::default(),
            };
            let (sender, mut messages) = mpsc::channel(4096);
            // As Airbyte's CDK sources do: each stream marked complete once read in whole.
            let reading = async {
                source.read(&catalog, &resume, sender.clone()).await?;
                for complete in catalog.streams_complete() {
                    sender
                        .send(complete.into())
                        .await
                        .map_err(|_| ConnectorError::PipeClosed)?;
                }
                drop(sender);
                Ok(())
            };
            let writing = async {
                while let Some(message) = messages.recv().await {
                    output.send_piped(&message).map_err(pipe_failed)?;
                }
                Ok(())
            };
            let (read, written) = tokio::join!(reading, writing);
            read.and(written)
        }
        Operation::Write { config, catalog } if role == ConnectorRole::Destination => {
            let destination = destination(&json(&config)?)?;
            let catalog = configured_catalog(json(&catalog)?)?;
            let (sender, input) = mpsc::channel(4096);
            let (acks_sender, mut acks) = mpsc::channel::<StateAck>(64);
            let feeding = async move {
                let mut lines = BufReader::with_capacity(1 << 16, tokio::io::stdin()).lines();
                while let Some(line) = lines
                    .next_line()
                    .await
                    .map_err(|error| ConnectorError::Failed(format!("stdin: {error}")))?
                {
                    // Anything that is not a protocol message is not for the destination.
                    let Ok(message) = serde_json::from_str::<AirbyteMessage>(&line) else {
                        continue;
                    };
                    if sender.send(message.into()).await.is_err() {
                        break;
                    }
                }
                Ok::<(), ConnectorError>(())
            };
            // The catalog already names streams where they go.
            let identity = DestinationNaming {
                namespace_definition: "source".to_owned(),
                ..DestinationNaming::default()
            };
            let writing = destination.write(&catalog, &identity, input, acks_sender);
            let echoing = async {
                while let Some(ack) = acks.recv().await {
                    if let Some(state) = ack.state {
                        output
                            .send(&AirbyteMessage::State { state })
                            .map_err(pipe_failed)?;
                    }
                }
                Ok(())
            };
            let (fed, written, echoed) = tokio::join!(feeding, writing, echoing);
            fed.and(written).and(echoed)
        }
        _ => Err(ConnectorError::Failed(format!(
            "a {role} does not support that operation"
        ))),
    }
}

fn configured_catalog(catalog: Value) -> Result<ConfiguredCatalog, ConnectorError> {
    serde_json::from_value(catalog).map_err(|error| {
        ConnectorError::Config(format!("the catalog is not a configured catalog: {error}"))
    })
}
