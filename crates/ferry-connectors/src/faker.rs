use std::time::Duration;

use ferry_protocol::{AirbyteMessage, RecordMessage, StateMessage, StreamDescriptor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::{ConnectorError, ResumeState};

/// Airbyte's sample-data source: deterministic `users` records for a seed, in slices, with
/// a STATE (`seed`, `updated_at`, `loop_offset`, as Airbyte's faker writes it) after each.
pub struct FakerSource {
    count: u64,
    seed: u64,
    records_per_slice: u64,
    /// Ferry extension: a pause after each slice, to throttle a source.
    slice_delay: Duration,
}

const FIRST_NAMES: [&str; 8] = [
    "Conception",
    "Ada",
    "Grace",
    "Linus",
    "Ken",
    "Barbara",
    "Edsger",
    "Frances",
];
const TITLES: [&str; 4] = ["Dr.", "Mr.", "Ms.", "Mx."];
const LANGUAGES: [&str; 6] = ["Croatian", "English", "French", "Hindi", "Swahili", "Tamil"];
const GENDERS: [&str; 3] = ["Female", "Male", "Other"];
const CITIES: [&str; 5] = ["Savage", "Lyon", "Pune", "Mombasa", "Quito"];

/// SplitMix64: a stateless hash from (seed, index) to well-mixed bits, so any record can be
/// produced on its own and a resumed read yields exactly the records a full read would.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a>(words: &[&'a str], bits: u64) -> &'a str {
    words[(bits % words.len() as u64) as usize]
}

fn integer(
    configuration: &Value,
    key: &str,
    default: i64,
    minimum: i64,
) -> Result<i64, ConnectorError> {
    match configuration.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_i64()
            .filter(|number| *number >= minimum)
            .ok_or_else(|| {
                ConnectorError::invalid(key, format!("must be an integer of at least {minimum}"))
            }),
    }
}

impl FakerSource {
    pub fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let seed = integer(configuration, "seed", -1, i64::MIN)?;
        Ok(Self {
            count: integer(configuration, "count", 1000, 0)? as u64,
            // Airbyte: -1 means a random seed; Ferry keeps runs reproducible with a fixed one.
            seed: if seed < 0 { 0x5EED } else { seed as u64 },
            records_per_slice: integer(configuration, "records_per_slice", 1000, 1)? as u64,
            slice_delay: Duration::from_millis(
                integer(configuration, "slice_delay_ms", 0, 0)? as u64
            ),
        })
    }

    /// The streams it offers (only `users` so far), shaped as Airbyte's faker describes them.
    pub fn catalog() -> Value {
        json!({"streams": [{
            "name": "users",
            "json_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                    "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                    "name": {"type": "string"}, "title": {"type": "string"}, "age": {"type": "integer"},
                    "email": {"type": "string"}, "telephone": {"type": "string"}, "gender": {"type": "string"},
                    "language": {"type": "string"}, "height": {"type": "string"}, "weight": {"type": "integer"},
                    "address": {"type": "object"}
                }
            },
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": true,
            "default_cursor_field": ["updated_at"],
            "source_defined_primary_key": [["id"]],
            "is_resumable": true
        }]})
    }

    fn user(&self, id: u64, updated_at: &str) -> String {
        let bits = mix(self.seed, id);
        let year = 1990 + bits % 30;
        let month = 1 + (bits >> 8) % 12;
        let day = 1 + (bits >> 12) % 28;
        json!({
            "id": id,
            "created_at": format!("{year}-{month:02}-{day:02}T04:29:23+00:00"),
            "updated_at": updated_at,
            "name": pick(&FIRST_NAMES, bits >> 16),
            "title": pick(&TITLES, bits >> 20),
            "age": 18 + (bits >> 24) % 60,
            "email": format!("user{id}@example.com"),
            "telephone": format!("({:03}) {:03}-{:04}", 200 + (bits >> 28) % 800, (bits >> 32) % 1000, (bits >> 40) % 10000),
            "gender": pick(&GENDERS, bits >> 44),
            "language": pick(&LANGUAGES, bits >> 46),
            "height": format!("1.{:02}", 50 + (bits >> 48) % 50),
            "weight": 45 + (bits >> 52) % 60,
            "address": {"city": pick(&CITIES, bits >> 56), "postal_code": format!("{:05}", (bits >> 20) % 100_000)},
        })
        .to_string()
    }

    pub async fn read(
        self,
        state: &[ResumeState],
        output: mpsc::Sender<AirbyteMessage>,
    ) -> Result<(), ConnectorError> {
        let stream = StreamDescriptor::new("users");
        let mut offset = state
            .iter()
            .find(|resume| resume.stream == stream)
            .and_then(|resume| resume.state.get("loop_offset"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(self.count);
        let updated_at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|now| now.format(&Rfc3339).ok())
            .unwrap_or_default();
        while offset < self.count {
            let end = (offset + self.records_per_slice).min(self.count);
            for id in offset + 1..=end {
                let data = RawValue::from_string(self.user(id, &updated_at))
                    .map_err(|error| ConnectorError::Failed(error.to_string()))?;
                let record = RecordMessage {
                    stream: stream.name.clone(),
                    namespace: None,
                    data,
                    emitted_at: OffsetDateTime::now_utc().unix_timestamp() * 1000,
                    meta: None,
                    file: None,
                };
                output
                    .send(AirbyteMessage::Record { record })
                    .await
                    .map_err(|_| ConnectorError::PipeClosed)?;
            }
            offset = end;
            let state = StateMessage::for_stream(
                stream.clone(),
                json!({"seed": self.seed, "updated_at": updated_at, "loop_offset": offset}),
            );
            output
                .send(AirbyteMessage::State { state })
                .await
                .map_err(|_| ConnectorError::PipeClosed)?;
            if !self.slice_delay.is_zero() && offset < self.count {
                tokio::time::sleep(self.slice_delay).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn read_all(configuration: Value, state: Vec<ResumeState>) -> Vec<AirbyteMessage> {
        let (sender, mut receiver) = mpsc::channel(16);
        let source = FakerSource::new(&configuration).unwrap();
        let reader = tokio::spawn(async move { source.read(&state, sender).await });
        let mut messages = Vec::new();
        while let Some(message) = receiver.recv().await {
            messages.push(message);
        }
        reader.await.unwrap().unwrap();
        messages
    }

    fn ids(messages: &[AirbyteMessage]) -> Vec<u64> {
        messages
            .iter()
            .filter_map(|message| match message {
                AirbyteMessage::Record { record } => {
                    serde_json::from_str::<Value>(record.data.get()).unwrap()["id"].as_u64()
                }
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn slices_end_with_state_and_resume_exactly() {
        let configuration = json!({"count": 25, "seed": 42, "records_per_slice": 10});
        let all = read_all(configuration.clone(), Vec::new()).await;
        assert_eq!(ids(&all), (1..=25).collect::<Vec<_>>());
        let states: Vec<u64> = all
            .iter()
            .filter_map(|message| match message {
                AirbyteMessage::State { state } => state
                    .stream
                    .as_ref()
                    .unwrap()
                    .stream_state
                    .as_ref()
                    .unwrap()["loop_offset"]
                    .as_u64(),
                _ => None,
            })
            .collect();
        assert_eq!(states, [10, 20, 25]);
        let resumed = read_all(
            configuration,
            vec![ResumeState {
                stream: StreamDescriptor::new("users"),
                state: json!({"loop_offset": 20}),
            }],
        )
        .await;
        assert_eq!(ids(&resumed), (21..=25).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_records() {
        let a = FakerSource::new(&json!({"seed": 7})).unwrap();
        let b = FakerSource::new(&json!({"seed": 7})).unwrap();
        let c = FakerSource::new(&json!({"seed": 8})).unwrap();
        assert_eq!(a.user(3, "t"), b.user(3, "t"));
        assert_ne!(a.user(3, "t"), c.user(3, "t"));
    }

    #[test]
    fn bad_configuration_names_the_field() {
        let error = FakerSource::new(&json!({"count": "many"})).err().unwrap();
        assert!(error.to_string().contains("count"), "{error}");
    }
}
