//! Airbyte's file connectors on local paths: `source-file` (CSV, JSON Lines, JSON) and the
//! local destinations `local-json` (JSON Lines) and `csv`, which write Airbyte's raw shape
//! (`_airbyte_ab_id`, `_airbyte_emitted_at`, `_airbyte_data`) to `_airbyte_raw_<stream>.*`.

use std::path::{Path, PathBuf};

use ferry_protocol::catalog::DestinationNaming;
use ferry_protocol::configs::{FileFormat, FileSourceConfig, LocalFileConfig};
use ferry_protocol::{AirbyteMessage, RecordMessage};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use crate::{
    ConnectorError, Incoming, StateAck, Tally, completed_stream, emit, now_millis, waits_for_swap,
};

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
    pub fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let config = FileSourceConfig::parse(configuration)?;
        Ok(Self {
            dataset_name: config.dataset_name,
            format: config.format,
            path: config.path,
            delimiter: config.delimiter,
        })
    }

    pub async fn check(&self) -> Result<(), ConnectorError> {
        tokio::fs::metadata(&self.path)
            .await
            .map(drop)
            .map_err(|error| {
                ConnectorError::invalid("url", format!("{}: {error}", self.path.display()))
            })
    }

    /// One stream named `dataset_name`, its columns typed from the first rows.
    pub async fn discover(&self) -> Result<Value, ConnectorError> {
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
    pub async fn read(self, output: mpsc::Sender<AirbyteMessage>) -> Result<(), ConnectorError> {
        let emitted_at = now_millis();
        let record = move |name: &str, data: Box<RawValue>| AirbyteMessage::Record {
            record: RecordMessage {
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
                    emit(&output, record(&self.dataset_name, data)).await?;
                }
                Ok(())
            }
            FileFormat::Json => {
                for object in self.all_objects()? {
                    let data = serde_json::value::to_raw_value(&object)
                        .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                    emit(&output, record(&self.dataset_name, data)).await?;
                }
                Ok(())
            }
            FileFormat::Csv => {
                let kinds = self.discover().await?;
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
                            .blocking_send(record(&self.dataset_name, data))
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
enum CellKind {
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

    fn widen(self, cell: &str) -> Self {
        match (self, Self::of(cell)) {
            (kind, Self::Unknown) | (Self::Unknown, kind) => kind,
            (a, b) if a == b => a,
            (Self::Integer, Self::Number) | (Self::Number, Self::Integer) => Self::Number,
            _ => Self::Text,
        }
    }

    /// Airbyte's source-file calls every numeric column `number`.
    fn json_type(self) -> &'static str {
        match self {
            Self::Integer | Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Unknown | Self::Text => "string",
        }
    }
}

fn typed_cell(cell: &str, kind: &str) -> Value {
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

/// `local-json` (JSON Lines) or `csv`, under `destination_path`.
pub struct LocalFileDestination {
    directory: PathBuf,
    csv: bool,
}

struct OpenFile {
    stream: String,
    /// Where rows go now; for an overwrite, a temporary file renamed over `path` once the
    /// stream completed.
    writing: PathBuf,
    path: PathBuf,
    overwrite: bool,
    complete: bool,
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

impl LocalFileDestination {
    pub fn new(configuration: &Value, csv: bool) -> Result<Self, ConnectorError> {
        Ok(Self {
            directory: LocalFileConfig::parse(configuration)?.destination_path,
            csv,
        })
    }

    pub async fn check(&self) -> Result<(), ConnectorError> {
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
        format!(
            "_airbyte_raw_{safe}.{}",
            if self.csv { "csv" } else { "jsonl" }
        )
    }

    /// Writes each stream to the file its destination name (`naming`) gives; namespaces do
    /// not apply to files.
    pub async fn write(
        self,
        catalog: &Value,
        naming: &DestinationNaming,
        input: mpsc::Receiver<AirbyteMessage>,
        acks: mpsc::Sender<StateAck>,
    ) -> Result<(), ConnectorError> {
        self.check().await?;
        let mut files = Vec::new();
        for configured in catalog["streams"].as_array().into_iter().flatten() {
            let stream = configured["stream"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let overwrite = match configured["destination_sync_mode"].as_str() {
                Some("overwrite") => true,
                Some("append") | None => false,
                Some(other) => {
                    return Err(ConnectorError::Failed(format!(
                        "stream '{stream}': destination sync mode '{other}' is not supported by local files (overwrite, append)"
                    )));
                }
            };
            let file_name = self.file_name(&naming.name(&stream));
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
            if self.csv && empty {
                writer
                    .write_all(b"_airbyte_ab_id,_airbyte_emitted_at,_airbyte_data\n")
                    .await
                    .map_err(|error| io_error(&writing, error))?;
            }
            files.push(OpenFile {
                stream,
                writing,
                path,
                overwrite,
                complete: false,
                writer,
            });
        }
        let mut tally = Tally::default();
        let mut held = Vec::new();
        let mut line = Vec::with_capacity(1 << 12);
        let mut input = Incoming::new(input);
        while let Some(message) = input.recv().await {
            match message {
                AirbyteMessage::Record { record } => {
                    let Some(file) = files.iter_mut().find(|file| file.stream == record.stream)
                    else {
                        return Err(ConnectorError::Failed(format!(
                            "a record of stream '{}' which the catalog does not configure",
                            record.stream
                        )));
                    };
                    line.clear();
                    let id = uuid::Uuid::new_v4();
                    if self.csv {
                        line.extend_from_slice(format!("{id},{},\"", record.emitted_at).as_bytes());
                        line.extend_from_slice(record.data.get().replace('"', "\"\"").as_bytes());
                        line.extend_from_slice(b"\"\n");
                    } else {
                        serde_json::to_writer(
                            &mut line,
                            &json!({"_airbyte_ab_id": id, "_airbyte_emitted_at": record.emitted_at, "_airbyte_data": record.data}),
                        )
                        .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                        line.push(b'\n');
                    }
                    file.writer
                        .write_all(&line)
                        .await
                        .map_err(|error| io_error(&file.writing, error))?;
                    tally.add(
                        &record.stream,
                        record.namespace.as_deref(),
                        1,
                        record.data.get().len() as u64,
                    );
                }
                AirbyteMessage::State { state } => {
                    // Durable before acknowledged: flushed and synced to disk.
                    for file in &mut files {
                        file.make_durable().await?;
                    }
                    let ack = tally.ack(Some(state));
                    let overwritten = files
                        .iter()
                        .filter(|file| file.overwrite)
                        .map(|file| file.stream.as_str());
                    if waits_for_swap(&ack, overwritten) {
                        held.push(ack);
                    } else {
                        acks.send(ack)
                            .await
                            .map_err(|_| ConnectorError::PipeClosed)?;
                    }
                }
                AirbyteMessage::Trace { trace } => {
                    if let Some(name) = completed_stream(&trace) {
                        for file in files.iter_mut().filter(|file| file.stream == name) {
                            file.complete = true;
                        }
                    }
                }
                AirbyteMessage::CopyRows { .. } => {
                    return Err(ConnectorError::Failed(
                        "COPY rows reached a file destination".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        for file in &mut files {
            file.make_durable().await?;
            if file.overwrite && file.complete {
                tokio::fs::rename(&file.writing, &file.path)
                    .await
                    .map_err(|error| io_error(&file.path, error))?;
            }
        }
        if !tally.is_empty() {
            held.push(tally.ack(None));
        }
        for ack in held {
            acks.send(ack)
                .await
                .map_err(|_| ConnectorError::PipeClosed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_columns_are_typed_from_their_cells() {
        let kind = |cells: &[&str]| {
            cells
                .iter()
                .fold(CellKind::Unknown, |kind, cell| kind.widen(cell))
                .json_type()
        };
        assert_eq!(kind(&["1", "2", ""]), "number");
        assert_eq!(kind(&["1", "2.5"]), "number");
        assert_eq!(kind(&["true", "False"]), "boolean");
        assert_eq!(kind(&["1", "x"]), "string");
        assert_eq!(typed_cell("34", "number"), json!(34));
        assert_eq!(typed_cell("9.5", "number"), json!(9.5));
        assert_eq!(typed_cell("", "string"), Value::Null);
    }
}
