use std::path::{Path, PathBuf};

use ferry_protocol::catalog::ConfiguredCatalog;
use ferry_protocol::{AirbyteMessage, PipeMessage};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::{FileFormat, FileSourceConfig};
use crate::connector::{BoxFuture, Source, SourceState};
use crate::emitter::Emitter;
use crate::{ConnectorError, config, local_root};

/// Rows a CSV's column types are inferred from.
const SAMPLE_ROWS: usize = 1000;

pub struct FileSource {
    dataset_name: String,
    format: FileFormat,
    path: PathBuf,
    delimiter: u8,
}

fn io_error(context: &Path, error: std::io::Error) -> ConnectorError {
    ConnectorError::Failed(format!("{}: {error}", context.display()))
}

impl FileSource {
    pub fn build(configuration: &Value) -> Result<Box<dyn Source>, ConnectorError> {
        let config: FileSourceConfig = config::parse(configuration)?;
        Ok(Box::new(Self {
            dataset_name: config.dataset_name.clone(),
            format: config.format,
            path: local_root::resolve("url", &config.url)?,
            delimiter: config.delimiter()?,
        }))
    }

    async fn check_file(&self) -> Result<(), ConnectorError> {
        tokio::fs::metadata(&self.path)
            .await
            .map(drop)
            .map_err(|error| {
                ConnectorError::invalid("url", format!("{}: {error}", self.path.display()))
            })
    }

    /// One stream named `dataset_name`, its columns typed from the first rows.
    async fn discover_file(&self) -> Result<Value, ConnectorError> {
        let source = self.clone_settings();
        let properties = tokio::task::spawn_blocking(move || source.sample_schema())
            .await
            .map_err(|error| ConnectorError::Failed(error.to_string()))??;
        Ok(json!({"streams": [{
            "name": self.dataset_name,
            "json_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": properties
            },
            "supported_sync_modes": ["full_refresh"]
        }]}))
    }

    fn clone_settings(&self) -> Self {
        Self {
            dataset_name: self.dataset_name.clone(),
            format: self.format,
            path: self.path.clone(),
            delimiter: self.delimiter,
        }
    }

    fn csv_reader(&self) -> Result<csv::Reader<std::fs::File>, ConnectorError> {
        let file = std::fs::File::open(&self.path).map_err(|error| io_error(&self.path, error))?;
        Ok(csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_reader(file))
    }

    fn sample_schema(&self) -> Result<Map<String, Value>, ConnectorError> {
        let mut properties = Map::new();
        match self.format {
            FileFormat::Csv => {
                let mut reader = self.csv_reader()?;
                let headers = reader
                    .headers()
                    .map_err(|error| {
                        ConnectorError::Failed(format!("{}: {error}", self.path.display()))
                    })?
                    .clone();
                let mut kinds = vec![CellKind::Unknown; headers.len()];
                for row in reader.records().take(SAMPLE_ROWS) {
                    let row = row.map_err(|error| {
                        ConnectorError::Failed(format!("{}: {error}", self.path.display()))
                    })?;
                    for (kind, cell) in kinds.iter_mut().zip(row.iter()) {
                        *kind = kind.widen(cell);
                    }
                }
                for (name, kind) in headers.iter().zip(kinds) {
                    properties.insert(name.to_owned(), json!({"type": [kind.json_type(), "null"]}));
                }
            }
            FileFormat::JsonLines | FileFormat::Json => {
                for object in self.sample_objects()? {
                    for (name, value) in object {
                        let kind = match value {
                            Value::Bool(_) => "boolean",
                            Value::Number(number) if number.is_i64() => "integer",
                            Value::Number(_) => "number",
                            Value::Object(_) => "object",
                            Value::Array(_) => "array",
                            _ => "string",
                        };
                        let entry = properties
                            .entry(name)
                            .or_insert_with(|| json!({"type": [kind, "null"]}));
                        if entry["type"][0] != kind {
                            let widened = match (entry["type"][0].as_str(), kind) {
                                (Some("integer"), "number") | (Some("number"), "integer") => {
                                    "number"
                                }
                                _ => "string",
                            };
                            *entry = json!({"type": [widened, "null"]});
                        }
                    }
                }
            }
        }
        Ok(properties)
    }

    fn sample_objects(&self) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|error| io_error(&self.path, error))?;
        let parse_error = |error: serde_json::Error| {
            ConnectorError::Failed(format!("{}: {error}", self.path.display()))
        };
        let values: Vec<Value> = match self.format {
            FileFormat::Json => match serde_json::from_str(&text).map_err(parse_error)? {
                Value::Array(values) => values,
                value => vec![value],
            },
            _ => text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(SAMPLE_ROWS)
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .map_err(parse_error)?,
        };
        Ok(values
            .into_iter()
            .take(SAMPLE_ROWS)
            .filter_map(|value| match value {
                Value::Object(object) => Some(object),
                _ => None,
            })
            .collect())
    }

    /// The whole file as records of stream `dataset_name`, streamed.
    async fn read_file(self, output: mpsc::Sender<PipeMessage>) -> Result<(), ConnectorError> {
        let emitter = Emitter::new(output.clone());
        let emitted_at = emitter.emitted_at();
        let record = move |name: &str, data: Box<RawValue>| AirbyteMessage::Record {
            record: ferry_protocol::RecordMessage {
                stream: name.to_owned(),
                namespace: None,
                data,
                emitted_at,
                meta: None,
                file: None,
            },
        };
        match self.format {
            FileFormat::JsonLines => {
                let file = tokio::fs::File::open(&self.path)
                    .await
                    .map_err(|error| io_error(&self.path, error))?;
                let mut lines = BufReader::with_capacity(1 << 16, file).lines();
                let mut number = 0u64;
                while let Some(line) = lines
                    .next_line()
                    .await
                    .map_err(|error| io_error(&self.path, error))?
                {
                    number += 1;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let data = RawValue::from_string(line).map_err(|error| {
                        ConnectorError::Failed(format!(
                            "{} line {number}: {error}",
                            self.path.display()
                        ))
                    })?;
                    emitter.send(record(&self.dataset_name, data)).await?;
                }
                Ok(())
            }
            FileFormat::Json => {
                for object in self.all_objects()? {
                    let data = serde_json::value::to_raw_value(&object)
                        .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                    emitter.send(record(&self.dataset_name, data)).await?;
                }
                Ok(())
            }
            FileFormat::Csv => {
                let kinds = self.discover_file().await?;
                let columns: Vec<(String, String)> =
                    kinds["streams"][0]["json_schema"]["properties"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, schema)| {
                            (
                                name.clone(),
                                schema["type"][0].as_str().unwrap_or("string").to_owned(),
                            )
                        })
                        .collect();
                tokio::task::spawn_blocking(move || {
                    let mut reader = self.csv_reader()?;
                    let headers = reader
                        .headers()
                        .map_err(|error| ConnectorError::Failed(error.to_string()))?
                        .clone();
                    let kind_of = |name: &str| {
                        columns
                            .iter()
                            .find(|(column, _)| column == name)
                            .map_or("string", |(_, kind)| kind.as_str())
                            .to_owned()
                    };
                    let kinds: Vec<String> = headers.iter().map(kind_of).collect();
                    for (index, row) in reader.records().enumerate() {
                        let row = row.map_err(|error| {
                            ConnectorError::Failed(format!(
                                "{} row {}: {error}",
                                self.path.display(),
                                index + 2
                            ))
                        })?;
                        let mut object = Map::new();
                        for ((name, kind), cell) in headers.iter().zip(&kinds).zip(row.iter()) {
                            object.insert(name.to_owned(), typed_cell(cell, kind));
                        }
                        let data = serde_json::value::to_raw_value(&object)
                            .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                        output
                            .blocking_send(record(&self.dataset_name, data).into())
                            .map_err(|_| ConnectorError::PipeClosed)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|error| ConnectorError::Failed(error.to_string()))?
            }
        }
    }

    fn all_objects(&self) -> Result<Vec<Value>, ConnectorError> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|error| io_error(&self.path, error))?;
        match serde_json::from_str(&text)
            .map_err(|error| ConnectorError::Failed(format!("{}: {error}", self.path.display())))?
        {
            Value::Array(values) => Ok(values),
            value => Ok(vec![value]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellKind {
    Unknown,
    Integer,
    Number,
    Boolean,
    Text,
}

impl CellKind {
    fn of(cell: &str) -> Self {
        if cell.is_empty() {
            Self::Unknown
        } else if cell.parse::<i64>().is_ok() {
            Self::Integer
        } else if cell.parse::<f64>().is_ok_and(f64::is_finite) {
            Self::Number
        } else if matches!(cell, "true" | "false" | "True" | "False") {
            Self::Boolean
        } else {
            Self::Text
        }
    }

    pub(super) fn widen(self, cell: &str) -> Self {
        match (self, Self::of(cell)) {
            (kind, Self::Unknown) | (Self::Unknown, kind) => kind,
            (a, b) if a == b => a,
            (Self::Integer, Self::Number) | (Self::Number, Self::Integer) => Self::Number,
            _ => Self::Text,
        }
    }

    /// Airbyte's source-file calls every numeric column `number`.
    pub(super) fn json_type(self) -> &'static str {
        match self {
            Self::Integer | Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Unknown | Self::Text => "string",
        }
    }
}

pub(super) fn typed_cell(cell: &str, kind: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    match kind {
        "number" => cell
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                cell.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::String(cell.to_owned())),
        "boolean" => Value::Bool(cell.eq_ignore_ascii_case("true")),
        _ => Value::String(cell.to_owned()),
    }
}

impl Source for FileSource {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(self.check_file())
    }

    fn discover(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(self.discover_file())
    }

    /// One stream, always read whole (full refresh).
    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        _state: &'a SourceState,
        output: mpsc::Sender<PipeMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            if catalog.streams.is_empty() {
                return Ok(());
            }
            self.read_file(output).await
        })
    }
}
