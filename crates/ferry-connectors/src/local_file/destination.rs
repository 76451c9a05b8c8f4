use std::path::{Path, PathBuf};

use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming, DestinationSyncMode};
use ferry_protocol::{RecordMessage, StateMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::LocalFileConfig;
use super::checkpoints::{self, Checkpoint, Checkpoints};
use crate::connector::{Destination, ResumeState};
use crate::driver::{StreamWriter, WriterFactory};
use crate::{ConnectorError, config, local_root};

/// How the records of a stream are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `local-json`: one JSON object a line.
    JsonLines,
    /// `csv`: a header and one row a record, the record's data as one JSON field.
    Csv,
}

/// `local-json` or `csv`, under `destination_path`.
pub struct LocalFileDestination {
    directory: PathBuf,
    format: FileFormat,
    /// The connection checkpoints are recorded for.
    connection: Option<String>,
}

fn io_error(context: &Path, error: std::io::Error) -> ConnectorError {
    ConnectorError::Failed(format!("{}: {error}", context.display()))
}

impl LocalFileDestination {
    fn build(
        configuration: &Value,
        format: FileFormat,
    ) -> Result<Box<dyn Destination>, ConnectorError> {
        let config: LocalFileConfig = config::parse(configuration)?;
        let directory = local_root::resolve(
            "destination_path",
            &config.destination_path.to_string_lossy(),
        )?;
        Ok(Box::new(Self {
            directory,
            format,
            connection: None,
        }))
    }

    pub fn build_json_lines(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        Self::build(configuration, FileFormat::JsonLines)
    }

    pub fn build_csv(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        Self::build(configuration, FileFormat::Csv)
    }

    /// Makes the directory, and checks that it is still under the local root once made (a
    /// symlink planted since the configuration was resolved).
    async fn make_directory(&self) -> Result<(), ConnectorError> {
        tokio::fs::create_dir_all(&self.directory)
            .await
            .map_err(|error| {
                ConnectorError::invalid(
                    "destination_path",
                    format!("{}: {error}", self.directory.display()),
                )
            })?;
        Ok(local_root::check_file("destination_path", &self.directory)?)
    }

    fn file_name(&self, stream: &str) -> String {
        let extension = match self.format {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        };
        super::file_name(stream, extension)
    }
}

impl WriterFactory for LocalFileDestination {
    type Writer = FileWriter;

    async fn check_settings(&self) -> Result<(), ConnectorError> {
        self.make_directory().await
    }

    fn record_checkpoints_as(&mut self, connection: &str, _job: i64) {
        self.connection = Some(connection.to_owned());
    }

    async fn committed_states(
        &self,
        catalog: &ConfiguredCatalog,
        _naming: &DestinationNaming,
    ) -> Result<Vec<ResumeState>, ConnectorError> {
        match &self.connection {
            Some(connection) => Ok(Checkpoints::load(&self.directory, connection)
                .await?
                .states(catalog)),
            None => Ok(Vec::new()),
        }
    }

    /// Opens each stream's file where its destination name (`naming`) puts it; namespaces
    /// do not apply to files.
    async fn open(
        self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> Result<FileWriter, ConnectorError> {
        self.make_directory().await?;
        let checkpoints = match &self.connection {
            Some(connection) => Some(Checkpoints::load(&self.directory, connection).await?),
            None => None,
        };
        let mut files = Vec::new();
        for configured in &catalog.streams {
            let stream = &configured.stream.name;
            let overwrite = match configured.destination_sync_mode {
                DestinationSyncMode::Overwrite => true,
                DestinationSyncMode::Append => false,
                other => {
                    return Err(ConnectorError::Config(format!(
                        "stream '{stream}': destination sync mode '{}' is not supported by local files (overwrite, append)",
                        other.as_str()
                    )));
                }
            };
            let file_name = self.file_name(&naming.name(stream));
            let path = self.directory.join(&file_name);
            let writing = if overwrite {
                self.directory.join(format!("{file_name}.ferry_tmp"))
            } else {
                path.clone()
            };
            local_root::check_file("destination_path", &path)?;
            local_root::check_file("destination_path", &writing)?;
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(!overwrite)
                .write(true)
                .truncate(overwrite)
                .open(&writing)
                .await
                .map_err(|error| io_error(&writing, error))?;
            let key = configured.stream.descriptor().key();
            let recorded = checkpoints.as_ref().is_some_and(|_| {
                checkpoints::is_recorded(configured.sync_mode, configured.destination_sync_mode)
            });
            let mut length = file
                .metadata()
                .await
                .map_err(|error| io_error(&writing, error))?
                .len();
            // Bytes past the last recorded checkpoint were never covered by a state: the
            // resumed read brings them again.
            let checkpoint = checkpoints.as_ref().and_then(|all| all.streams.get(&key));
            if let Some(checkpoint) = checkpoint.filter(|checkpoint| {
                recorded && checkpoint.file == file_name && checkpoint.length < length
            }) {
                file.set_len(checkpoint.length)
                    .await
                    .map_err(|error| io_error(&writing, error))?;
                length = checkpoint.length;
            }
            let empty = length == 0;
            let mut writer = BufWriter::with_capacity(1 << 16, file);
            const CSV_HEADER: &[u8] = b"_airbyte_ab_id,_airbyte_emitted_at,_airbyte_data\n";
            if self.format == FileFormat::Csv && empty {
                writer
                    .write_all(CSV_HEADER)
                    .await
                    .map_err(|error| io_error(&writing, error))?;
                length = CSV_HEADER.len() as u64;
            }
            files.push(OpenFile {
                writing,
                path,
                overwrite,
                writer,
                name: file_name,
                key,
                recorded,
                length,
            });
        }
        Ok(FileWriter {
            format: self.format,
            files,
            line: Vec::with_capacity(1 << 12),
            checkpoints,
        })
    }
}

struct OpenFile {
    /// Where rows go now; for an overwrite, a temporary file renamed over `path` once the
    /// stream completed.
    writing: PathBuf,
    path: PathBuf,
    overwrite: bool,
    writer: BufWriter<tokio::fs::File>,
    /// The file's name, the stream's key, whether its checkpoints are recorded, and the
    /// bytes it holds (written or not yet flushed).
    name: String,
    key: String,
    recorded: bool,
    length: u64,
}

impl OpenFile {
    async fn make_durable(&mut self) -> Result<(), ConnectorError> {
        self.writer
            .flush()
            .await
            .map_err(|error| io_error(&self.writing, error))?;
        self.writer
            .get_ref()
            .sync_data()
            .await
            .map_err(|error| io_error(&self.writing, error))
    }
}

/// The open files of a write, one per configured stream.
pub struct FileWriter {
    format: FileFormat,
    files: Vec<OpenFile>,
    line: Vec<u8>,
    checkpoints: Option<Checkpoints>,
}

impl StreamWriter for FileWriter {
    async fn write_record(
        &mut self,
        stream: usize,
        record: &RecordMessage,
    ) -> Result<(), ConnectorError> {
        let Some(file) = self.files.get_mut(stream) else {
            return Err(ConnectorError::Failed(format!(
                "no file for stream '{}'",
                record.stream
            )));
        };
        let line = &mut self.line;
        line.clear();
        let id = uuid::Uuid::new_v4();
        match self.format {
            FileFormat::Csv => {
                line.extend_from_slice(format!("{id},{},\"", record.emitted_at).as_bytes());
                line.extend_from_slice(record.data.get().replace('"', "\"\"").as_bytes());
                line.extend_from_slice(b"\"\n");
            }
            FileFormat::JsonLines => {
                serde_json::to_writer(
                    &mut *line,
                    &json!({"_airbyte_ab_id": id, "_airbyte_emitted_at": record.emitted_at, "_airbyte_data": record.data}),
                )
                .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                line.push(b'\n');
            }
        }
        file.length += line.len() as u64;
        file.writer
            .write_all(line)
            .await
            .map_err(|error| io_error(&file.writing, error))
    }

    /// Durable before acknowledged: flushed and synced to disk, then the states recorded.
    async fn make_durable(&mut self, states: &[StateMessage]) -> Result<(), ConnectorError> {
        for file in &mut self.files {
            file.make_durable().await?;
        }
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let mut recorded = false;
        for stream in states.iter().filter_map(|state| state.stream.as_ref()) {
            let key = stream.stream_descriptor.key();
            let Some(file) = self
                .files
                .iter()
                .find(|file| file.recorded && file.key == key)
            else {
                continue;
            };
            checkpoints.streams.insert(
                key,
                Checkpoint {
                    state: stream.as_ref().clone(),
                    file: file.name.clone(),
                    length: file.length,
                },
            );
            recorded = true;
        }
        if recorded {
            checkpoints.save().await?;
        }
        Ok(())
    }

    async fn finish(&mut self, complete: &[bool]) -> Result<(), ConnectorError> {
        for (index, file) in self.files.iter_mut().enumerate() {
            file.make_durable().await?;
            if file.overwrite && complete.get(index).copied().unwrap_or(false) {
                tokio::fs::rename(&file.writing, &file.path)
                    .await
                    .map_err(|error| io_error(&file.path, error))?;
                // The file starts over: no state of the old one applies to it.
                if let Some(checkpoints) = &mut self.checkpoints
                    && checkpoints.streams.remove(&file.key).is_some()
                {
                    checkpoints.save().await?;
                }
            }
        }
        Ok(())
    }
}
