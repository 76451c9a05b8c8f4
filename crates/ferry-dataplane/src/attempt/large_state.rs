//! Large states in the guide's `state` bucket: a state whose JSON passes
//! `INLINE_STATE_LIMIT` (or that would make a commit too large for the control plane to
//! take) is written there by the data plane, and the control plane keeps only its key,
//! SHA-256 and size. The next attempt reads it back and checks the digest, so a changed or
//! truncated object is refused, never resumed from.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_api::{StateReference, StreamState};
use ferry_protocol::failure::{FailureOrigin, FailureType};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::failure::Failure;

/// States larger than this go to the state bucket.
pub(super) const INLINE_STATE_LIMIT: usize = 1024 * 1024;

/// The most a commit's states may weigh inline: the control plane takes bodies up to 1 MiB.
const INLINE_COMMIT_BUDGET: usize = 768 * 1024;

/// The state bucket and what this attempt keeps there.
pub(super) struct StateBucket {
    pub(super) bucket: Arc<dyn ObjectStore>,
    pub(super) connection_id: Uuid,
    /// The object each stream's committed state is in, to remove once replaced.
    pub(super) held: BTreeMap<String, String>,
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

impl StateBucket {
    /// The attempt's state bucket, its committed states read back from it (each checked
    /// against its digest) in place of their references.
    pub(super) async fn for_attempt(
        storage: &crate::StorageBuckets,
        config: &mut ferry_api::AttemptConfig,
    ) -> Result<Self, Failure> {
        let held = config
            .state
            .iter()
            .filter_map(|state| Some((state.stream.clone(), state.reference.as_ref()?.key.clone())))
            .collect();
        resolve(storage.state.as_ref(), &mut config.state).await?;
        Ok(Self {
            bucket: storage.state.clone(),
            connection_id: config.connection_id,
            held,
        })
    }

    /// Moves the states too large to send into the bucket, largest first, leaving their
    /// references in their place.
    pub(super) async fn offload(&self, states: &mut [StreamState]) -> Result<(), Failure> {
        let mut sizes: Vec<(usize, usize)> = Vec::with_capacity(states.len());
        for (index, state) in states.iter().enumerate() {
            sizes.push((
                index,
                serde_json::to_vec(&state.state).map_or(0, |bytes| bytes.len()),
            ));
        }
        sizes.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let mut total: usize = sizes.iter().map(|(_, size)| size).sum();
        for (index, size) in sizes {
            if size <= INLINE_STATE_LIMIT && total <= INLINE_COMMIT_BUDGET {
                break;
            }
            let Some(state) = states.get_mut(index) else {
                continue;
            };
            let bytes = serde_json::to_vec(&state.state).map_err(|error| {
                Failure::new(
                    FailureOrigin::Persistence,
                    FailureType::SystemError,
                    format!("encoding a state: {error}"),
                )
            })?;
            let sha256 = hex_sha256(&bytes);
            let key = ferry_api::state_object_path(
                self.connection_id,
                &hex_sha256(state.stream.as_bytes())[..16],
                &sha256,
            );
            self.bucket
                .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
                .await
                .map_err(|error| {
                    Failure::new(
                        FailureOrigin::Persistence,
                        FailureType::TransientError,
                        format!("could not write a large state to the state bucket: {error}"),
                    )
                })?;
            state.reference = Some(StateReference {
                key,
                sha256,
                bytes: size as u64,
            });
            state.state = serde_json::Value::Null;
            total -= size;
        }
        Ok(())
    }

    /// After a commit: the objects of states now replaced are removed.
    pub(super) async fn committed(&mut self, states: &[StreamState]) {
        for state in states {
            let now = state
                .reference
                .as_ref()
                .map(|reference| reference.key.clone());
            let before = match &now {
                Some(key) => self.held.insert(state.stream.clone(), key.clone()),
                None => self.held.remove(&state.stream),
            };
            if let Some(old) = before.filter(|old| Some(old) != now.as_ref())
                && let Err(error) = self.bucket.delete(&ObjectPath::from(old.as_str())).await
            {
                tracing::warn!(key = %old, %error, "could not remove a replaced state from the state bucket");
            }
        }
    }
}

/// Replaces each referenced state by the object it names, checked against its digest.
async fn resolve(bucket: &dyn ObjectStore, states: &mut [StreamState]) -> Result<(), Failure> {
    for state in states.iter_mut() {
        let Some(reference) = &state.reference else {
            continue;
        };
        let missing = |reason: String| {
            Failure::new(
                FailureOrigin::Persistence,
                FailureType::SystemError,
                format!(
                    "the committed state of stream {} ({}) cannot be read from this data plane's state bucket: {reason}; the data planes of a region must share their state bucket",
                    state.stream, reference.key
                ),
            )
        };
        let bytes = match bucket.get(&ObjectPath::from(reference.key.as_str())).await {
            Ok(object) => object
                .bytes()
                .await
                .map_err(|error| missing(error.to_string()))?,
            Err(error) => return Err(missing(error.to_string())),
        };
        let digest = hex_sha256(&bytes);
        if digest != reference.sha256 {
            return Err(missing(format!(
                "its SHA-256 is {digest}, the control plane recorded {}",
                reference.sha256
            )));
        }
        state.state = serde_json::from_slice(&bytes).map_err(|error| missing(error.to_string()))?;
    }
    Ok(())
}
