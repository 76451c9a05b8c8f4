//! Types across the JSON boundary: a PostgreSQL column's JSON schema (as Airbyte's source
//! describes it), and a JSON schema's PostgreSQL column type (as Airbyte's Destinations V2
//! type their final tables).

use serde_json::{Value, json};

/// The JSON schema of a column of type `type_name` (`pg_type.typname`); `element` is the
/// element type of an array.
pub fn json_schema_of(type_name: &str, element: Option<&str>) -> Value {
    if let Some(element) = element {
        return json!({"type": "array", "items": json_schema_of(element, None)});
    }
    match type_name {
        "int2" | "int4" | "int8" | "oid" => json!({"type": "integer"}),
        "float4" | "float8" | "numeric" => json!({"type": "number"}),
        "bool" => json!({"type": "boolean"}),
        "date" => json!({"type": "string", "format": "date"}),
        "time" => {
            json!({"type": "string", "format": "time", "airbyte_type": "time_without_timezone"})
        }
        "timetz" => {
            json!({"type": "string", "format": "time", "airbyte_type": "time_with_timezone"})
        }
        "timestamp" => json!({
            "type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"
        }),
        "timestamptz" => json!({
            "type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"
        }),
        "bytea" => json!({"type": "string", "contentEncoding": "base64"}),
        // Any JSON value: Destinations V2 keep it as jsonb.
        "json" | "jsonb" => json!({}),
        _ => json!({"type": "string"}),
    }
}

/// The destination column type whose COPY binary form is the same as that of a source
/// column of type `type_name`, for the types where one is: a field of such a column passes
/// from one database to the other as it is. The others (`int4` into `bigint`, `float8` into
/// `numeric`, `json` into `jsonb`, `uuid` into `varchar`, …) differ in binary and go as text.
pub fn binary_column_type(type_name: &str) -> Option<ColumnType> {
    Some(match type_name {
        "int8" => ColumnType::Integer,
        "numeric" => ColumnType::Number,
        "bool" => ColumnType::Boolean,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time,
        "timetz" => ColumnType::TimeTz,
        "timestamp" => ColumnType::Timestamp,
        "timestamptz" => ColumnType::TimestampTz,
        // The characters themselves, blank padding included, as `::text` would give them.
        "text" | "varchar" | "bpchar" => ColumnType::Text,
        "jsonb" => ColumnType::Json,
        _ => return None,
    })
}

/// What a destination column holds, and so how a JSON value is written into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    Number,
    Boolean,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Json,
}

impl ColumnType {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Text => "varchar",
            Self::Integer => "bigint",
            Self::Number => "numeric",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Time => "time",
            Self::TimeTz => "timetz",
            Self::Timestamp => "timestamp",
            Self::TimestampTz => "timestamptz",
            Self::Json => "jsonb",
        }
    }

    /// Destinations V2's typing of a property's schema.
    pub fn of(schema: &Value) -> Self {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return match reference.rsplit('/').next().unwrap_or_default() {
                "Integer" => Self::Integer,
                "Number" => Self::Number,
                "Boolean" => Self::Boolean,
                "Date" => Self::Date,
                "TimeWithoutTimezone" => Self::Time,
                "TimeWithTimezone" => Self::TimeTz,
                "TimestampWithoutTimezone" => Self::Timestamp,
                "TimestampWithTimezone" => Self::TimestampTz,
                "String" | "BinaryData" => Self::Text,
                _ => Self::Json,
            };
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(kind)) => vec![kind.as_str()],
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|kind| *kind != "null")
                .collect(),
            _ => Vec::new(),
        };
        let [kind] = types.as_slice() else {
            // No type, or a union of several: kept as JSON.
            return Self::Json;
        };
        let airbyte_type = schema.get("airbyte_type").and_then(Value::as_str);
        match *kind {
            "integer" => Self::Integer,
            "number" if airbyte_type == Some("integer") => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date") => Self::Date,
                Some("time") if airbyte_type == Some("time_with_timezone") => Self::TimeTz,
                Some("time") => Self::Time,
                Some("date-time") if airbyte_type == Some("timestamp_without_timezone") => {
                    Self::Timestamp
                }
                Some("date-time") => Self::TimestampTz,
                _ => Self::Text,
            },
            _ => Self::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_passthrough_lands_in_the_column_the_schema_makes() {
        for pg in [
            "int8",
            "numeric",
            "bool",
            "date",
            "time",
            "timetz",
            "timestamp",
            "timestamptz",
            "text",
            "varchar",
            "bpchar",
            "jsonb",
        ] {
            let column = binary_column_type(pg).unwrap_or_else(|| panic!("{pg}"));
            assert_eq!(ColumnType::of(&json_schema_of(pg, None)), column, "{pg}");
        }
        for pg in [
            "int2", "int4", "float4", "float8", "json", "uuid", "bytea", "_int4",
        ] {
            assert_eq!(binary_column_type(pg), None, "{pg}");
        }
    }

    #[test]
    fn source_schemas_type_back_to_matching_columns() {
        for (pg, column) in [
            ("int4", ColumnType::Integer),
            ("numeric", ColumnType::Number),
            ("bool", ColumnType::Boolean),
            ("text", ColumnType::Text),
            ("uuid", ColumnType::Text),
            ("bytea", ColumnType::Text),
            ("jsonb", ColumnType::Json),
            ("date", ColumnType::Date),
            ("time", ColumnType::Time),
            ("timetz", ColumnType::TimeTz),
            ("timestamp", ColumnType::Timestamp),
            ("timestamptz", ColumnType::TimestampTz),
        ] {
            assert_eq!(ColumnType::of(&json_schema_of(pg, None)), column, "{pg}");
        }
        assert_eq!(
            ColumnType::of(&json_schema_of("_int4", Some("int4"))),
            ColumnType::Json
        );
        assert_eq!(
            ColumnType::of(&json!({"type": ["null", "integer"]})),
            ColumnType::Integer
        );
        assert_eq!(
            ColumnType::of(&json!({"type": ["string", "integer"]})),
            ColumnType::Json
        );
        assert_eq!(
            ColumnType::of(&json!({"$ref": "WellKnownTypes.json#/definitions/Date"})),
            ColumnType::Date
        );
    }
}
