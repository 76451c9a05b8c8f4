use std::path::{Path, PathBuf};

use ferry_protocol::RecordMessage;
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationNaming, DestinationSyncMode};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::LocalFileConfig;
use crate::connector::Destination;
use crate::driver::{StreamWriter, WriterFactory};
use crate::{ConnectorError, config};

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
        Ok(Box::new(Self {
            directory: config.destination_path,
            format,
        }))
    }

    pub fn build_json_lines(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        Self::build(configuration, FileFormat::JsonLines)
    }

    pub fn build_csv(configuration: &Value) -> Result<Box<dyn Destination>, ConnectorError> {
        Self::build(configuration, FileFormat::Csv)
    }

    async fn make_directory(&self) -> Result<(), ConnectorError> {
        tokio::fs::create_dir_all(&self.directory)
            .await
            .map_err(|error| {
                ConnectorError::invalid(
                    "destination_path",
                    format!("{}: {error}", self.directory.display()),
                )
            })
    }

    fn file_name(&self, stream: &str) -> String {
        let safe: String = stream
            .chars()
            .map(|character| {
                if character.is_alphanumeric() || character == '_' || character == '-' {
                    character
                } else {
                    '_'
                }
            })
            .collect();
        let extension = match self.format {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        };
        format!("_airbyte_raw_{safe}.{extension}")
    }
}

impl WriterFactory for LocalFileDestination {
    type Writer = FileWriter;

    async fn check_settings(&self) -> Result<(), ConnectorError> {
        self.make_directory().await
    }

    /// Opens each stream's file where its destination name (`naming`) puts it; namespaces
    /// do not apply to files.
    async fn open(
        self,
        catalog: &ConfiguredCatalog,
        naming: &DestinationNaming,
    ) -> Result<FileWriter, ConnectorError> {
        self.make_directory().await?;
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
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(!overwrite)
                .write(true)
                .truncate(overwrite)
                .open(&writing)
                .await
                .map_err(|error| io_error(&writing, error))?;
            let empty = file
                .metadata()
                .await
                .map(|meta| meta.len() == 0)
                .unwrap_or(true);
            let mut writer = BufWriter::with_capacity(1 << 16, file);
            if self.format == FileFormat::Csv && empty {
                writer
                    .write_all(b"_airbyte_ab_id,_airbyte_emitted_at,_airbyte_data\n")
                    .await
                    .map_err(|error| io_error(&writing, error))?;
            }
            files.push(OpenFile {
                writing,
                path,
                overwrite,
                writer,
            });
        }
        Ok(FileWriter {
            format: self.format,
            files,
            line: Vec::with_capacity(1 << 12),
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
        file.writer
            .write_all(line)
            .await
            .map_err(|error| io_error(&file.writing, error))
    }

    /// Durable before acknowledged: flushed and synced to disk.
    async fn make_durable(&mut self) -> Result<(), ConnectorError> {
        for file in &mut self.files {
            file.make_durable().await?;
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
            }
        }
        Ok(())
    }
}
