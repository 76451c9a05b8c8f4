use std::time::Duration;

use ferry_protocol::catalog::ConfiguredCatalog;
use ferry_protocol::{PipeMessage, StreamDescriptor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use super::FakerConfig;
use crate::connector::{BoxFuture, ResumeState, Source, SourceState};
use crate::emitter::Emitter;
use crate::{ConnectorError, config};

/// Airbyte's sample-data source: deterministic `users`, `products` and `purchases` records
/// for a seed, in slices, with STATEs shaped as Airbyte's faker writes them (`seed`,
/// `updated_at`, and `loop_offset` for the sliced streams).
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
const MAKES: [&str; 6] = ["Mazda", "Ford", "Volvo", "Toyota", "Fiat", "Kia"];
const MODELS: [&str; 5] = ["MX", "F", "XC", "RAV", "Ceed"];
/// Airbyte's faker always has this many products, whatever `count` is.
const PRODUCTS: u64 = 100;

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

impl FakerSource {
    pub fn new(configuration: &Value) -> Result<Self, ConnectorError> {
        let config: FakerConfig = config::parse(configuration)?;
        Ok(Self {
            count: config.count,
            seed: config.effective_seed(),
            records_per_slice: config.records_per_slice,
            slice_delay: Duration::from_millis(config.slice_delay_ms),
        })
    }

    pub fn build(configuration: &Value) -> Result<Box<dyn Source>, ConnectorError> {
        Ok(Box::new(Self::new(configuration)?))
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
        }, {
            "name": "products",
            "json_schema": {"type": "object", "properties": {
                "id": {"type": "integer"}, "make": {"type": "string"}, "model": {"type": "string"},
                "year": {"type": "integer"}, "price": {"type": "number"},
                "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}
            }},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": true,
            "default_cursor_field": ["updated_at"],
            "source_defined_primary_key": [["id"]],
            "is_resumable": true
        }, {
            "name": "purchases",
            "json_schema": {"type": "object", "properties": {
                "id": {"type": "integer"}, "user_id": {"type": "integer"}, "product_id": {"type": "integer"},
                "added_to_cart_at": {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                "purchased_at": {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                "returned_at": {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
                "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}
            }},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": true,
            "default_cursor_field": ["updated_at"],
            "source_defined_primary_key": [["id"]],
            "is_resumable": true
        }]})
    }

    /// A user's JSON, written straight as text: every string in it is plain ASCII without
    /// quotes or backslashes, so nothing needs escaping. (Through serde, building the record
    /// was most of the faker's time: serialization, growing buffers, number formatting.)
    pub(super) fn user(&self, id: u64, updated_at: &str, text: &mut String) -> Box<RawValue> {
        let bits = mix(self.seed, id);
        let mut number = itoa::Buffer::new();
        text.clear();
        text.push_str("{\"id\":");
        text.push_str(number.format(id));
        text.push_str(",\"created_at\":\"");
        push_padded(text, 1990 + bits % 30, 4);
        text.push('-');
        push_padded(text, 1 + (bits >> 8) % 12, 2);
        text.push('-');
        push_padded(text, 1 + (bits >> 12) % 28, 2);
        text.push_str("T04:29:23+00:00\",\"updated_at\":\"");
        text.push_str(updated_at);
        text.push_str("\",\"name\":\"");
        text.push_str(pick(&FIRST_NAMES, bits >> 16));
        text.push_str("\",\"title\":\"");
        text.push_str(pick(&TITLES, bits >> 20));
        text.push_str("\",\"age\":");
        text.push_str(number.format(18 + (bits >> 24) % 60));
        text.push_str(",\"email\":\"user");
        text.push_str(number.format(id));
        text.push_str("@example.com\",\"telephone\":\"(");
        push_padded(text, 200 + (bits >> 28) % 800, 3);
        text.push_str(") ");
        push_padded(text, (bits >> 32) % 1000, 3);
        text.push('-');
        push_padded(text, (bits >> 40) % 10000, 4);
        text.push_str("\",\"gender\":\"");
        text.push_str(pick(&GENDERS, bits >> 44));
        text.push_str("\",\"language\":\"");
        text.push_str(pick(&LANGUAGES, bits >> 46));
        text.push_str("\",\"height\":\"1.");
        push_padded(text, 50 + (bits >> 48) % 50, 2);
        text.push_str("\",\"weight\":");
        text.push_str(number.format(45 + (bits >> 52) % 60));
        text.push_str(",\"address\":{\"city\":\"");
        text.push_str(pick(&CITIES, bits >> 56));
        text.push_str("\",\"postal_code\":\"");
        push_padded(text, (bits >> 20) % 100_000, 5);
        text.push_str("\"}}");
        // Validated once more on the way in; `null` stands in if it ever were not JSON.
        RawValue::from_string(String::from(text.as_str()))
            .unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    /// How many records a full read of all streams yields: users, products, purchases.
    pub fn record_counts(&self) -> (u64, u64, u64) {
        let purchases = (1..=self.count)
            .map(|user_id| mix(self.seed ^ 0x0050_5552, user_id) % 3)
            .sum();
        (self.count, PRODUCTS, purchases)
    }

    fn product(&self, id: u64, updated_at: &str) -> Box<RawValue> {
        let bits = mix(self.seed ^ 0x0050_5244, id);
        raw(&json!({
            "id": id,
            "make": pick(&MAKES, bits),
            "model": format!("{}-{}", pick(&MODELS, bits >> 8), 100 + (bits >> 16) % 900),
            "year": 1990 + (bits >> 28) % 35,
            "price": ((bits >> 36) % 9_000_000) as f64 / 100.0 + 1000.0,
            "created_at": format!("{}-01-01T00:00:00+00:00", 2000 + (bits >> 40) % 20),
            "updated_at": updated_at,
        }))
    }

    /// The purchases of one user (zero to two), with ids unique across users.
    fn purchases(&self, user_id: u64, updated_at: &str) -> Vec<Box<RawValue>> {
        let bits = mix(self.seed ^ 0x0050_5552, user_id);
        (0..bits % 3)
            .map(|index| {
                let day = 1 + (bits >> (8 + index * 8)) % 28;
                let returned = (bits >> (24 + index)).is_multiple_of(5);
                raw(&json!({
                    "id": (user_id - 1) * 2 + index + 1,
                    "user_id": user_id,
                    "product_id": 1 + (bits >> (32 + index * 8)) % PRODUCTS,
                    "added_to_cart_at": format!("2024-03-{day:02}T10:00:00+00:00"),
                    "purchased_at": format!("2024-03-{day:02}T10:05:00+00:00"),
                    "returned_at": if returned { Value::String(format!("2024-04-{day:02}T09:00:00+00:00")) } else { Value::Null },
                    "created_at": format!("2024-03-{day:02}T10:00:00+00:00"),
                    "updated_at": updated_at,
                }))
            })
            .collect()
    }

    /// Reads the `selected` streams: all of `products` first (once: its state marks it done),
    /// then `users` and `purchases` in slices, each slice closed by a STATE per stream.
    pub async fn read_streams(
        self,
        selected: &[&str],
        state: &[ResumeState],
        output: mpsc::Sender<PipeMessage>,
    ) -> Result<(), ConnectorError> {
        let resumed = |name: &str| {
            state
                .iter()
                .find(|resume| resume.stream == StreamDescriptor::new(name))
                .map(|resume| resume.state.clone())
        };
        let updated_at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|now| now.format(&Rfc3339).ok())
            .unwrap_or_default();
        let emitter = Emitter::new(output);
        if selected.contains(&"products") && resumed("products").is_none() {
            for id in 1..=PRODUCTS {
                emitter
                    .record("products", None, self.product(id, &updated_at))
                    .await?;
            }
            emitter
                .state(
                    StreamDescriptor::new("products"),
                    json!({"seed": self.seed, "updated_at": updated_at}),
                )
                .await?;
        }
        let offset_of = |name: &str| {
            resumed(name)
                .and_then(|state| state.get("loop_offset").and_then(Value::as_u64))
                .unwrap_or(0)
                .min(self.count)
        };
        let users = selected.contains(&"users");
        let purchases = selected.contains(&"purchases");
        let users_offset = if users {
            offset_of("users")
        } else {
            self.count
        };
        let purchases_offset = if purchases {
            offset_of("purchases")
        } else {
            self.count
        };
        let mut offset = users_offset.min(purchases_offset);
        let mut text = String::with_capacity(512);
        while offset < self.count {
            let end = (offset + self.records_per_slice).min(self.count);
            for id in offset + 1..=end {
                if id > users_offset {
                    emitter
                        .record("users", None, self.user(id, &updated_at, &mut text))
                        .await?;
                }
                if id > purchases_offset {
                    for purchase in self.purchases(id, &updated_at) {
                        emitter.record("purchases", None, purchase).await?;
                    }
                }
            }
            offset = end;
            let slice_state =
                json!({"seed": self.seed, "updated_at": updated_at, "loop_offset": offset});
            if users && offset > users_offset {
                emitter
                    .state(StreamDescriptor::new("users"), slice_state.clone())
                    .await?;
            }
            if purchases && offset > purchases_offset {
                emitter
                    .state(StreamDescriptor::new("purchases"), slice_state)
                    .await?;
            }
            if !self.slice_delay.is_zero() && offset < self.count {
                tokio::time::sleep(self.slice_delay).await;
            }
        }
        Ok(())
    }
}

/// `value` in decimal, zero-padded to `width` digits.
fn push_padded(text: &mut String, value: u64, width: usize) {
    let mut number = itoa::Buffer::new();
    let digits = number.format(value);
    for _ in digits.len()..width {
        text.push('0');
    }
    text.push_str(digits);
}

/// A record's JSON, serialized once (no tree, no re-parse).
fn raw<T: serde::Serialize>(record: &T) -> Box<RawValue> {
    // Serializing these plain structs cannot fail; `null` stands in if it ever did.
    serde_json::value::to_raw_value(record).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl Source for FakerSource {
    fn check(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(async { Ok(()) })
    }

    fn discover(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(async { Ok(Self::catalog()) })
    }

    fn read<'a>(
        self: Box<Self>,
        catalog: &'a ConfiguredCatalog,
        state: &'a SourceState,
        output: mpsc::Sender<PipeMessage>,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let selected: Vec<&str> = catalog
                .streams
                .iter()
                .map(|configured| configured.stream.name.as_str())
                .collect();
            self.read_streams(&selected, &state.streams, output).await
        })
    }
}
