//! A record's JSON as a COPY text row of its table: each column's value converted to the
//! column's type without building a tree, NULL (noted in `_airbyte_meta`) where it does
//! not fit.

use std::borrow::Cow;
use std::fmt;

use ferry_protocol::RecordMessage;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::super::copy_text;
use super::super::schema::ColumnType;
use super::load::RawIds;
use super::table::{Column, StreamTable};
use crate::ConnectorError;

impl StreamTable {
    /// Appends the record as a COPY row to the buffer.
    pub(super) fn push(
        &mut self,
        record: &RecordMessage,
        ids: &mut RawIds,
        extracted_at: &mut ExtractedAt,
    ) -> Result<(), ConnectorError> {
        let mut values: Vec<Option<&RawValue>> = vec![None; self.columns.len()];
        let mut deserializer = serde_json::Deserializer::from_str(record.data.get());
        RowFields {
            columns: &self.columns,
            values: &mut values,
        }
        .deserialize(&mut deserializer)
        .map_err(|error| {
            ConnectorError::Failed(format!(
                "a record of stream '{}' is not a JSON object: {error}",
                self.source_name
            ))
        })?;
        let buffer = &mut self.buffer;
        ids.write(buffer);
        buffer.push(b'\t');
        buffer.extend_from_slice(extracted_at.text(record.emitted_at).as_bytes());
        buffer.push(b'\t');
        buffer.extend_from_slice(self.generation_id.to_string().as_bytes());
        let mut nulled: Vec<&str> = Vec::new();
        for (column, value) in self.columns.iter().zip(&values) {
            buffer.push(b'\t');
            if !write_value(buffer, column.kind, *value) {
                nulled.push(&column.name);
            }
        }
        buffer.push(b'\t');
        let mut changes: Vec<Value> = record
            .meta
            .as_ref()
            .and_then(|meta| meta["changes"].as_array().cloned())
            .unwrap_or_default();
        changes.extend(nulled.iter().map(|field| {
            json!({"field": field, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"})
        }));
        let meta = json!({"changes": changes, "sync_id": self.sync_id}).to_string();
        copy_text::escape_into(buffer, meta.as_bytes());
        buffer.push(b'\n');
        Ok(())
    }
}

/// Writes a JSON value as the COPY text of a column of `kind`; `false` when it does not fit
/// the type and NULL was written instead (Destinations V2 record that in `_airbyte_meta`).
pub(super) fn write_value(out: &mut Vec<u8>, kind: ColumnType, value: Option<&RawValue>) -> bool {
    let Some(raw) = value.map(RawValue::get) else {
        out.extend_from_slice(copy_text::NULL);
        return true;
    };
    let first = raw.as_bytes().first().copied().unwrap_or(b'n');
    if first == b'n' {
        out.extend_from_slice(copy_text::NULL);
        return true;
    }
    let is_number = first == b'-' || first.is_ascii_digit();
    let string = if first == b'"' {
        json_string(raw)
    } else {
        None
    };
    let fits = match kind {
        ColumnType::Json => {
            copy_text::escape_into(out, raw.as_bytes());
            return true;
        }
        ColumnType::Text => {
            match &string {
                Some(text) => copy_text::escape_into(out, text.as_bytes()),
                None => copy_text::escape_into(out, raw.as_bytes()),
            }
            return true;
        }
        ColumnType::Integer if is_number => {
            if raw
                .bytes()
                .all(|byte| byte == b'-' || byte.is_ascii_digit())
            {
                out.extend_from_slice(raw.as_bytes());
                true
            } else {
                // 12.0 or 1.2e3: an integer only if it has no fraction.
                match raw.parse::<f64>() {
                    Ok(number) if number.fract() == 0.0 && number.abs() < 9.2e18 => {
                        out.extend_from_slice((number as i64).to_string().as_bytes());
                        true
                    }
                    _ => false,
                }
            }
        }
        ColumnType::Integer => match &string {
            Some(text) if text.trim().parse::<i64>().is_ok() => {
                out.extend_from_slice(text.trim().as_bytes());
                true
            }
            _ => false,
        },
        ColumnType::Number if is_number => {
            out.extend_from_slice(raw.as_bytes());
            true
        }
        ColumnType::Number => match &string {
            Some(text) if text.trim().parse::<f64>().is_ok() => {
                copy_text::escape_into(out, text.trim().as_bytes());
                true
            }
            _ => false,
        },
        ColumnType::Boolean => match (raw, string.as_deref()) {
            ("true", _) | (_, Some("true" | "t" | "TRUE" | "True")) => {
                out.push(b't');
                true
            }
            ("false", _) | (_, Some("false" | "f" | "FALSE" | "False")) => {
                out.push(b'f');
                true
            }
            _ => false,
        },
        ColumnType::Date
        | ColumnType::Time
        | ColumnType::TimeTz
        | ColumnType::Timestamp
        | ColumnType::TimestampTz => match &string {
            Some(text)
                if text.as_bytes().first().is_some_and(u8::is_ascii_digit)
                    || matches!(text.as_ref(), "infinity" | "-infinity") =>
            {
                copy_text::escape_into(out, text.as_bytes());
                true
            }
            _ => false,
        },
    };
    if !fits {
        out.extend_from_slice(copy_text::NULL);
    }
    fits
}

/// The text of a JSON string literal, borrowed when it has no escapes.
fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('\\') {
        return raw
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .map(Cow::Borrowed);
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// Fills one slot per column with the record's raw value for it, ignoring other fields,
/// without building a tree or copying values.
pub(super) struct RowFields<'s, 'de> {
    pub(super) columns: &'s [Column],
    pub(super) values: &'s mut [Option<&'de RawValue>],
}

impl<'de> DeserializeSeed<'de> for RowFields<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowFields<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Records usually list their fields in one order: try the next column first.
        let mut guess = 0;
        while let Some(key) = map.next_key::<FieldName<'de>>()? {
            let name = key.0.as_ref();
            let found = if self
                .columns
                .get(guess)
                .is_some_and(|column| column.name == name)
            {
                Some(guess)
            } else {
                self.columns.iter().position(|column| column.name == name)
            };
            match found {
                Some(index) => {
                    self.values[index] = Some(map.next_value::<&'de RawValue>()?);
                    guess = index + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A field name, borrowed from the input unless it had escapes.
struct FieldName<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// `emitted_at` (milliseconds) as timestamptz text, formatted once per distinct value.
#[derive(Default)]
pub(super) struct ExtractedAt {
    millis: Option<i64>,
    text: String,
}

impl ExtractedAt {
    pub(super) fn text(&mut self, millis: i64) -> &str {
        if self.millis != Some(millis) {
            let at =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            self.text = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond()
            );
            self.millis = Some(millis);
        }
        &self.text
    }
}
