//! The file destinations' own record of the states they made durable: per connection, a
//! small JSON file beside the data (`_ferry_checkpoints_<connection>.json`) with, per stream,
//! the last state and the length its file had then. It is replaced (written aside, synced,
//! renamed) only after the data files are synced, so it never covers bytes that are not on
//! disk; bytes after the recorded length were never covered by a state and are cut before
//! a resumed write, which re-reads them from the recorded state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_protocol::StreamState;
use ferry_protocol::catalog::{ConfiguredCatalog, DestinationSyncMode, SyncMode};
use serde::{Deserialize, Serialize};

use crate::ConnectorError;
use crate::connector::ResumeState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub(super) state: StreamState,
    /// The stream's file, by name, and its length when the state was made durable.
    pub(super) file: String,
    pub(super) length: u64,
}

/// A connection's checkpoints in one directory, by stream key.
#[derive(Debug)]
pub(super) struct Checkpoints {
    path: PathBuf,
    pub(super) streams: BTreeMap<String, Checkpoint>,
}

/// Whether a stream resumes from its state: read incrementally and appended.
pub(super) fn is_recorded(sync_mode: SyncMode, mode: DestinationSyncMode) -> bool {
    sync_mode == SyncMode::Incremental && mode == DestinationSyncMode::Append
}

fn io_error(path: &Path, error: std::io::Error) -> ConnectorError {
    ConnectorError::Failed(format!("{}: {error}", path.display()))
}

impl Checkpoints {
    /// The connection's checkpoints in `directory` (none yet when there is no file). A
    /// connection id is a UUID; anything else is kept to safe characters for the name.
    pub(super) async fn load(directory: &Path, connection: &str) -> Result<Self, ConnectorError> {
        let safe: String = connection
            .chars()
            .filter(|character| character.is_ascii_alphanumeric() || *character == '-')
            .collect();
        let path = directory.join(format!("_ferry_checkpoints_{safe}.json"));
        crate::local_root::check_file("destination_path", &path)?;
        crate::local_root::check_file("destination_path", &path.with_extension("json.tmp"))?;
        let streams = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                ConnectorError::Failed(format!(
                    "{} is not a checkpoint file: {error}",
                    path.display()
                ))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(io_error(&path, error)),
        };
        Ok(Self { path, streams })
    }

    /// The recorded states of the catalog's appended incremental streams.
    pub(super) fn states(&self, catalog: &ConfiguredCatalog) -> Vec<ResumeState> {
        self.streams
            .values()
            .filter_map(|checkpoint| {
                let descriptor = &checkpoint.state.stream_descriptor;
                let configured =
                    catalog.stream_of(&descriptor.name, descriptor.namespace.as_deref())?;
                if !is_recorded(configured.sync_mode, configured.destination_sync_mode) {
                    return None;
                }
                Some(ResumeState {
                    stream: descriptor.clone(),
                    state: checkpoint.state.stream_state.clone()?,
                })
            })
            .collect()
    }

    /// Writes the record aside, syncs it and renames it into place, so that it is either
    /// the old one or the new one whole.
    pub(super) async fn save(&self) -> Result<(), ConnectorError> {
        let text = serde_json::to_vec(&self.streams)
            .map_err(|error| ConnectorError::Failed(format!("recording checkpoints: {error}")))?;
        let aside = self.path.with_extension("json.tmp");
        let write = async {
            let mut file = tokio::fs::File::create(&aside).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &text).await?;
            file.sync_all().await?;
            tokio::fs::rename(&aside, &self.path).await?;
            if let Some(directory) = self.path.parent() {
                tokio::fs::File::open(directory).await?.sync_all().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        write.await.map_err(|error| io_error(&self.path, error))
    }
}
