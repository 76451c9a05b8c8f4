//! The names destination-postgres gives what it makes (schemas, tables, the overwrite's
//! temporary table, index names), within PostgreSQL's 63-byte identifier limit. Config-only,
//! so that the control plane can tell at connection creation which table each stream lands
//! in.
//!
//! PostgreSQL cuts a longer identifier silently, so that names differing only past the 63rd
//! byte would meet in one table. As Airbyte's destinations do, a name that is too long is
//! shortened deterministically instead: a prefix cut at a character boundary, `_`, and the
//! first 8 hex digits of the SHA-256 of the whole name. Distinct long names stay distinct
//! (up to a 32-bit hash collision), and the same name is always shortened the same way.

use ferry_protocol::StreamDescriptor;
use ferry_protocol::catalog::DestinationNaming;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::PostgresDestinationConfig;
use crate::config::{self, ConfigError};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Hex digits of the hash a shortened name ends with.
const HASH_DIGITS: usize = 8;

/// Suffix of the table an overwrite loads before it replaces the final table.
pub const TEMPORARY_SUFFIX: &str = "_ferry_tmp";

/// `name` as an identifier PostgreSQL keeps whole: itself when it fits in 63 bytes;
/// otherwise its longest prefix (at a character boundary) that leaves room for `_` and 8 hex
/// digits of its SHA-256, so that the result is at most 63 bytes and ends with 8 hex digits.
pub fn identifier(name: &str) -> String {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name.to_owned();
    }
    shortened(name, "")
}

/// The identifier of something derived from the object named `base` (an identifier of at
/// most 63 bytes): `base` + `suffix` when that fits, otherwise `base` shortened (with the
/// hash of `base` + `suffix`) so that `suffix` is kept whole at the end. It never equals
/// `base`: it is longer, or ends with `suffix` after a hash while `base` does not (a name
/// that is its own hash followed by `suffix` is hashed once more).
pub fn derived_identifier(base: &str, suffix: &str) -> String {
    let joined = format!("{base}{suffix}");
    if joined.len() <= MAX_IDENTIFIER_BYTES {
        return joined;
    }
    let derived = shortened(&joined, suffix);
    if derived == base {
        return shortened(&format!("{joined}{suffix}"), suffix);
    }
    derived
}

/// `whole` cut to leave room for `_`, the hash of `whole` and `suffix`.
fn shortened(whole: &str, suffix: &str) -> String {
    let digest = Sha256::digest(whole.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_DIGITS / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let kept = prefix_within(whole, MAX_IDENTIFIER_BYTES - 1 - HASH_DIGITS - suffix.len());
    format!("{kept}_{hash}{suffix}")
}

/// A name as PostgreSQL keeps it when it is given longer: cut to 63 bytes, at a character's
/// end (what a table's column of that name is called in its catalog).
pub fn as_stored(name: &str) -> &str {
    prefix_within(name, MAX_IDENTIFIER_BYTES)
}

/// The longest prefix of `text` within `bytes` bytes that ends at a character's end.
fn prefix_within(text: &str, bytes: usize) -> &str {
    let mut end = text.len().min(bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The schema and table a stream of the source (`stream`: its name and namespace there)
/// lands in: the connection's naming applied (namespace, prefix), the destination's
/// `default_schema` where it gives no namespace, both as identifiers.
pub fn destination_table(
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
    default_schema: &str,
) -> (String, String) {
    let schema = naming
        .namespace(stream.namespace.as_deref())
        .unwrap_or_else(|| default_schema.to_owned());
    (identifier(&schema), identifier(&naming.name(&stream.name)))
}

/// The registry's `table_name` of destination-postgres: `"schema"."table"` of a stream, as
/// SQL would name it (quoted, so that distinct tables give distinct texts).
pub fn qualified_table_name(
    configuration: &Value,
    naming: &DestinationNaming,
    stream: &StreamDescriptor,
) -> Result<String, ConfigError> {
    let config: PostgresDestinationConfig = config::parse(configuration)?;
    let (schema, table) = destination_table(naming, stream, &config.schema);
    Ok(format!("{}.{}", quoted(&schema), quoted(&table)))
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn is_hex(text: &str) -> bool {
        text.bytes().all(|byte| byte.is_ascii_hexdigit())
    }

    #[test]
    fn names_that_fit_are_kept_and_longer_ones_get_a_hash() {
        assert_eq!(identifier("orders"), "orders");
        let fits = "x".repeat(63);
        assert_eq!(identifier(&fits), fits);
        let long = "x".repeat(64);
        let short = identifier(&long);
        assert_eq!(short.len(), 63);
        assert!(short.starts_with(&"x".repeat(54)) && short.as_bytes()[54] == b'_');
        assert!(is_hex(&short[55..]), "{short}");
        // Deterministic, and distinct where the names differ only past the cut.
        assert_eq!(identifier(&long), short);
        let prefix = "p".repeat(70);
        let names: Vec<String> = ["customers", "orders", "order_items"]
            .iter()
            .map(|stream| identifier(&format!("{prefix}{stream}")))
            .collect();
        assert!(names.iter().all(|name| name.len() <= 63));
        assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
        // The SHA-256 of the whole name: a pinned value, so that tables keep their names
        // from one Ferry version to the next.
        assert_eq!(
            identifier(&long),
            format!("{}_{}", "x".repeat(54), &short[55..])
        );
        assert_eq!(&short[55..], "7ce10097");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let name = "é".repeat(40); // 80 bytes
        let short = identifier(&name);
        assert!(short.len() <= 63, "{short}");
        assert!(short.starts_with(&"é".repeat(27)), "{short}");
        let derived = derived_identifier(&short, TEMPORARY_SUFFIX);
        assert!(derived.len() <= 63 && derived.ends_with(TEMPORARY_SUFFIX));
    }

    #[test]
    fn names_are_stored_as_postgres_cuts_them() {
        assert_eq!(as_stored("id"), "id");
        assert_eq!(as_stored(&"c".repeat(70)), "c".repeat(63));
        // 62 bytes and a 2-byte character: the character goes whole.
        assert_eq!(as_stored(&format!("{}é", "c".repeat(62))), "c".repeat(62));
    }

    #[test]
    fn a_derived_name_never_equals_its_base() {
        for length in [1, 40, 53, 54, 62, 63] {
            let base = identifier(&"t".repeat(length));
            for suffix in [TEMPORARY_SUFFIX, "_ferry_key", "_ferry_pk"] {
                let derived = derived_identifier(&base, suffix);
                assert!(derived.len() <= 63, "{derived}");
                assert!(derived.ends_with(suffix), "{derived}");
                assert_ne!(derived, base);
            }
        }
        // A final table itself shortened keeps a distinct temporary table.
        let base = identifier(&"t".repeat(100));
        assert_ne!(derived_identifier(&base, TEMPORARY_SUFFIX), base);
        assert_eq!(
            derived_identifier("orders", TEMPORARY_SUFFIX),
            "orders_ferry_tmp"
        );
    }

    #[test]
    fn tables_are_named_as_the_destination_names_them() {
        let configuration = json!({"host": "h", "database": "d", "username": "u", "schema": "raw"});
        let stream = |name: &str, namespace: Option<&str>| StreamDescriptor {
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
        };
        let by_default = DestinationNaming::default();
        assert_eq!(
            qualified_table_name(
                &configuration,
                &by_default,
                &stream("orders", Some("public"))
            )
            .unwrap(),
            "\"raw\".\"orders\""
        );
        let by_source = DestinationNaming {
            namespace_definition: "source".to_owned(),
            namespace_format: None,
            prefix: Some("pg_".to_owned()),
        };
        assert_eq!(
            qualified_table_name(
                &configuration,
                &by_source,
                &stream("we\"ird", Some("public"))
            )
            .unwrap(),
            "\"public\".\"pg_we\"\"ird\""
        );
        assert_eq!(
            qualified_table_name(&configuration, &by_source, &stream("orders", None)).unwrap(),
            "\"raw\".\"pg_orders\""
        );
        assert_eq!(
            qualified_table_name(&json!({}), &by_default, &stream("orders", None))
                .unwrap_err()
                .field,
            "host"
        );
    }
}
