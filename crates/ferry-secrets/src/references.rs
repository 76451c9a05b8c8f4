//! References to secrets in a stored configuration, in Airbyte's shape: the secret's value is
//! replaced by `{"_secret": "<coordinate>"}`, the coordinate naming it in the manager
//! (`airbyte_workspace_<workspace>_secret_<uuid>_v1`). A value that is not a string (a
//! numeric secret) is kept as its JSON text and marked `"_secret_format": "json"`, so it
//! comes back as the number it was.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Result, SecretsError, SecretsManager};

/// The key of a reference object.
pub const SECRET_KEY: &str = "_secret";
const FORMAT_KEY: &str = "_secret_format";
const JSON_FORMAT: &str = "json";

/// A new coordinate for a secret of a workspace's connector, unique to this write.
pub fn new_coordinate(workspace_id: Uuid) -> String {
    format!(
        "airbyte_workspace_{workspace_id}_secret_{}_v1",
        Uuid::new_v4()
    )
}

/// The workspace of a coordinate in the shape Ferry writes
/// (`airbyte_workspace_<uuid>_secret_<uuid>_v<n>`); `None` for any other text.
pub fn coordinate_workspace(coordinate: &str) -> Option<Uuid> {
    let rest = coordinate.strip_prefix("airbyte_workspace_")?;
    let (workspace, rest) = rest.split_once("_secret_")?;
    let (secret, version) = rest.rsplit_once("_v")?;
    // Hyphenated ids only: `Uuid::parse_str` also takes braces and `urn:uuid:`.
    let hyphenated = |id: &str| id.len() == 36 && Uuid::parse_str(id).is_ok();
    if !hyphenated(workspace)
        || !hyphenated(secret)
        || version.is_empty()
        || !version.bytes().all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    Uuid::parse_str(workspace).ok()
}

/// Whether a coordinate is one Ferry could have written. It becomes part of a manager's path
/// or name, so nothing else is followed: not `../sys`, and not the name of a secret Ferry
/// never wrote that the manager's credentials happen to reach (another application's
/// `prod-db-password` in the same AWS account).
pub fn is_valid_coordinate(coordinate: &str) -> bool {
    coordinate_workspace(coordinate).is_some()
}

/// The reference that stands for `value` once it is written under `coordinate`, and the
/// text the manager keeps.
pub fn reference(coordinate: &str, value: &Value) -> (Value, String) {
    let mut object = Map::new();
    object.insert(SECRET_KEY.to_owned(), Value::String(coordinate.to_owned()));
    let text = match value {
        Value::String(text) => text.clone(),
        other => {
            object.insert(FORMAT_KEY.to_owned(), Value::String(JSON_FORMAT.to_owned()));
            other.to_string()
        }
    };
    (Value::Object(object), text)
}

/// The coordinate of a reference object (`None` for any other value).
pub fn as_reference(value: &Value) -> Option<&str> {
    value.as_object()?.get(SECRET_KEY)?.as_str()
}

/// Whether the value is an object with a `_secret` key (well-formed or not).
pub fn is_reference(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|object| object.contains_key(SECRET_KEY))
}

/// The field (`configuration.a.b[0]`) of the first reference object in a configuration, if
/// any: a configuration a user sends may not hold one (it could name another workspace's
/// secret).
pub fn first_reference(configuration: &Value) -> Option<String> {
    fn walk(value: &Value, path: &str) -> Option<String> {
        if is_reference(value) {
            return Some(path.to_owned());
        }
        match value {
            Value::Object(fields) => fields
                .iter()
                .find_map(|(key, value)| walk(value, &format!("{path}.{key}"))),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, &format!("{path}[{index}]"))),
            _ => None,
        }
    }
    walk(configuration, "configuration")
}

/// Every coordinate a configuration refers to.
pub fn coordinates(configuration: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        if let Some(coordinate) = as_reference(value) {
            out.push(coordinate.to_owned());
            return;
        }
        match value {
            Value::Object(fields) => fields.values().for_each(|value| walk(value, out)),
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(configuration, &mut out);
    out
}

/// Replaces every reference by `replacement` (a reply's mask).
pub fn replace_references(configuration: &mut Value, replacement: &Value) {
    if is_reference(configuration) {
        *configuration = replacement.clone();
        return;
    }
    match configuration {
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|value| replace_references(value, replacement)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_references(item, replacement)),
        _ => {}
    }
}

/// Replaces every reference by the secret it names, read from `manager`: what a data plane
/// does before it starts a connector. Without a manager, a configuration holding references
/// is an error that says so.
pub async fn resolve(configuration: &mut Value, manager: Option<&SecretsManager>) -> Result<()> {
    let mut places = Vec::new();
    collect_places(configuration, &mut String::new(), &mut places);
    for pointer in places {
        let Some(slot) = configuration.pointer_mut(&pointer) else {
            continue;
        };
        let (coordinate, json) = match slot.as_object() {
            Some(object) => (
                object.get(SECRET_KEY).and_then(Value::as_str),
                object.get(FORMAT_KEY).and_then(Value::as_str) == Some(JSON_FORMAT),
            ),
            None => (None, false),
        };
        let Some(coordinate) = coordinate.filter(|coordinate| is_valid_coordinate(coordinate))
        else {
            return Err(SecretsError::BadReference(pointer));
        };
        let Some(manager) = manager else {
            return Err(SecretsError::NoManager {
                coordinate: coordinate.to_owned(),
            });
        };
        let text = manager.read(coordinate).await?;
        *slot = if json {
            serde_json::from_str(&text).map_err(|_| SecretsError::BadReference(pointer.clone()))?
        } else {
            Value::String(text)
        };
    }
    Ok(())
}

fn collect_places(value: &Value, path: &mut String, out: &mut Vec<String>) {
    if is_reference(value) {
        out.push(path.clone());
        return;
    }
    let length = path.len();
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect_places(value, path, out);
                path.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push_str(&format!("/{index}"));
                collect_places(item, path, out);
                path.truncate(length);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn references_are_found_masked_and_refused_where_users_send_them() {
        let workspace = Uuid::new_v4();
        let coordinate = new_coordinate(workspace);
        assert!(coordinate.starts_with(&format!("airbyte_workspace_{workspace}_secret_")));
        assert!(is_valid_coordinate(&coordinate));
        assert!(!is_valid_coordinate("../sys/mounts"));
        assert_eq!(coordinate_workspace(&coordinate), Some(workspace));
        let secret = Uuid::new_v4();
        for foreign in [
            "prod-db-password".to_owned(),
            format!("airbyte_workspace_{workspace}_secret_../../sys_v1"),
            format!("airbyte_workspace_{workspace}_secret_{secret}_v"),
            format!(
                "airbyte_workspace_{}_secret_{secret}_v1",
                workspace.simple()
            ),
            format!("airbyte_workspace_{{{workspace}}}_secret_{secret}_v1"),
            format!("airbyte_workspace_{workspace}_secret_{secret}_v1/../x"),
        ] {
            assert!(!is_valid_coordinate(&foreign), "{foreign}");
        }
        let (text_reference, text) = reference(&coordinate, &json!("hunter2"));
        assert_eq!(text, "hunter2");
        assert_eq!(text_reference, json!({"_secret": coordinate}));
        let (number_reference, number) = reference("c2", &json!(5432));
        assert_eq!(number, "5432");
        let mut configuration = json!({
            "host": "db",
            "password": text_reference,
            "tunnel": [{"port": number_reference}],
        });
        assert_eq!(
            coordinates(&configuration),
            vec![coordinate.clone(), "c2".to_owned()]
        );
        assert_eq!(
            first_reference(&configuration).as_deref(),
            Some("configuration.password")
        );
        assert_eq!(first_reference(&json!({"a": [1, {"b": 2}]})), None);
        replace_references(&mut configuration, &json!("**********"));
        assert_eq!(
            configuration,
            json!({"host": "db", "password": "**********", "tunnel": [{"port": "**********"}]})
        );
    }

    #[tokio::test]
    async fn resolving_without_a_manager_says_which_secret_it_cannot_read() {
        let mut configuration = json!({"password": {"_secret": new_coordinate(Uuid::new_v4())}});
        let error = resolve(&mut configuration, None).await.unwrap_err();
        assert!(matches!(error, SecretsError::NoManager { .. }), "{error}");
        for foreign in ["../../sys", "prod-db-password"] {
            let mut bad = json!({"password": {"_secret": foreign}});
            assert!(matches!(
                resolve(&mut bad, None).await.unwrap_err(),
                SecretsError::BadReference(_)
            ));
        }
        let mut plain = json!({"password": "inline", "port": 5432});
        resolve(&mut plain, None).await.unwrap();
        assert_eq!(plain, json!({"password": "inline", "port": 5432}));
    }
}
