//! Which fields of a connector configuration are secret, and what a masked one sent back
//! means.
//!
//! The connector's SPEC says (`airbyte_secret: true`), native and external alike, at any
//! depth: in `properties`, every `oneOf`/`anyOf`/`allOf` branch (a key secret in any branch
//! is secret), array `items`, local `$ref`s. Below a secret, everything is secret. A key the
//! SPEC does not describe, and every key of a connector without a readable SPEC, is judged
//! by its name ([`looks_secret`]), conservatively.
//!
//! A masked value sent back in an update takes the stored value at the same place (in an
//! array: the stored element of the same identity, else of the same position), but only
//! while the fields that say where the secret goes ([`is_destination_field`]) are unchanged
//! at every level around it; otherwise the update is refused, naming the secret, so that an
//! editor who cannot read a secret cannot send it to a server of theirs either. A mask is
//! never stored.

use ferry_api::MASKED_SECRET;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Deepest nesting of schemas and `$ref`s followed (a SPEC that refers to itself ends
/// there).
const MAX_DEPTH: usize = 32;

/// What the rules say of one place in a configuration.
#[derive(Debug, Clone)]
enum Rule<'s> {
    /// Secret, and so is everything below.
    Secret,
    /// Not described by a SPEC: each key's name decides.
    Names,
    /// Described by these schemas (branches expanded), none of them secret.
    Schemas {
        root: &'s Value,
        nodes: Vec<&'s Value>,
    },
}

/// `node` with its local `$ref`s followed.
fn dereference<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..MAX_DEPTH {
        let Some(target) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer))
        else {
            break;
        };
        node = target;
    }
    node
}

/// `node` and every branch it may take, flattened.
fn expand<'s>(root: &'s Value, node: &'s Value, out: &mut Vec<&'s Value>, depth: usize) {
    let node = dereference(root, node);
    if depth > MAX_DEPTH || !node.is_object() {
        return;
    }
    out.push(node);
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            expand(root, branch, out, depth + 1);
        }
    }
}

/// A non-empty object: a schema that describes something.
fn describing(schema: &Value) -> Option<&Value> {
    schema
        .as_object()
        .filter(|fields| !fields.is_empty())
        .map(|_| schema)
}

impl<'s> Rule<'s> {
    /// The rule of a whole configuration under `spec` (a `connectionSpecification`).
    fn root(spec: Option<&'s Value>) -> Self {
        match spec {
            Some(spec) if spec.is_object() => Self::of(spec, vec![spec], None),
            _ => Self::Names,
        }
    }

    /// The rule of a place these schemas describe (none: its `name` decides).
    fn of(root: &'s Value, schemas: Vec<&'s Value>, name: Option<&str>) -> Self {
        let mut nodes = Vec::new();
        for schema in schemas {
            expand(root, schema, &mut nodes, 0);
        }
        if nodes.is_empty() {
            return match name {
                Some(name) if looks_secret(name) => Self::Secret,
                _ => Self::Names,
            };
        }
        if nodes
            .iter()
            .any(|node| node.get("airbyte_secret") == Some(&Value::Bool(true)))
        {
            return Self::Secret;
        }
        Self::Schemas { root, nodes }
    }

    fn child(&self, key: &str) -> Self {
        match self {
            Self::Secret => Self::Secret,
            Self::Names if looks_secret(key) => Self::Secret,
            Self::Names => Self::Names,
            Self::Schemas { root, nodes } => {
                let mut schemas = Vec::new();
                for node in nodes {
                    if let Some(property) = node.get("properties").and_then(|all| all.get(key)) {
                        schemas.push(property);
                        continue;
                    }
                    if let Some(Value::Object(patterns)) = node.get("patternProperties") {
                        schemas.extend(patterns.values().filter_map(describing));
                    }
                    if let Some(extra) = node.get("additionalProperties").and_then(describing) {
                        schemas.push(extra);
                    }
                }
                Self::of(root, schemas, Some(key))
            }
        }
    }

    fn item(&self, index: usize) -> Self {
        match self {
            Self::Secret => Self::Secret,
            Self::Names => Self::Names,
            Self::Schemas { root, nodes } => {
                let mut schemas = Vec::new();
                for node in nodes {
                    match node.get("items") {
                        Some(Value::Array(tuple)) => schemas.extend(
                            tuple
                                .get(index)
                                .or_else(|| node.get("additionalItems").and_then(describing)),
                        ),
                        Some(items) => schemas.extend(describing(items)),
                        None => {}
                    }
                }
                Self::of(root, schemas, None)
            }
        }
    }

    fn is_secret(&self) -> bool {
        matches!(self, Self::Secret)
    }
}

/// A key in snake case: `apiKey` → `api_key`, `api-key` → `api_key`.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for character in name.chars() {
        if character.is_uppercase() && previous_lower {
            snake.push('_');
        }
        previous_lower = character.is_lowercase() || character.is_ascii_digit();
        match character {
            '-' | ' ' | '.' => snake.push('_'),
            other => snake.extend(other.to_lowercase()),
        }
    }
    snake
}

/// Whether a key's name says it holds a secret: the fallback where no SPEC describes it.
/// The names Airbyte's connectors give secrets, spelled any way (`api-key`, `apiKey`).
pub fn looks_secret(name: &str) -> bool {
    const MARKERS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "api_key",
        "private_key",
        "client_key",
        "ssh_key",
        "access_key",
        "session_key",
        "signing_key",
        "encryption_key",
        "auth_header",
        "authorization",
        "cookie",
        "credentials_json",
        "service_account_info",
        // Airbyte's JDBC connectors take `password=…` there too.
        "jdbc_url_params",
    ];
    /// Keys named `…_key` that name a column or an object, not a secret.
    const NOT_SECRET_KEYS: &[&str] = &[
        "primary_key",
        "partition_key",
        "sort_key",
        "cursor_key",
        "distribution_key",
        "object_key",
    ];
    let snake = snake_case(name);
    let flat = snake.replace('_', "");
    MARKERS
        .iter()
        .any(|marker| snake.contains(marker) || flat.contains(&marker.replace('_', "")))
        || snake == "pass"
        || ((snake == "key" || snake.ends_with("_key"))
            && !NOT_SECRET_KEYS.contains(&snake.as_str()))
}

/// Whether a field says where a secret beside it (or below it) goes, or whose it is: which
/// server (host, port, URL, endpoint, domain), which database, bucket, region or account on
/// it, and which user. A stored secret is kept for a masked value only while these stay as
/// they were; with a new destination, a secret must be given again, or anyone who may edit
/// but not read it could send it to a server of theirs. Which table or schema is read does
/// not change who receives the secret, so those are not listed.
pub fn is_destination_field(name: &str) -> bool {
    const FIELDS: &[&str] = &[
        // where
        "host",
        "hostname",
        "hosts",
        "server",
        "address",
        "port",
        "url",
        "uri",
        "endpoint",
        "domain",
        "dsn",
        "connection_string",
        "database",
        "db",
        "dbname",
        "bucket",
        "region",
        "account",
        "account_id",
        "cluster",
        "tenant",
        "tenant_id",
        "organization",
        "project",
        "project_id",
        "workspace",
        // whose
        "username",
        "user",
        "login",
        "email",
        "client_id",
    ];
    /// `tunnel_host`, `base_url`, `s3_bucket_name`, `account_id`, `tunnel_user`, …
    const SUFFIXES: &[&str] = &[
        "_host",
        "_hostname",
        "_port",
        "_url",
        "_uri",
        "_endpoint",
        "_domain",
        "_bucket",
        "_bucket_name",
        "_region",
        "_account",
        "_account_id",
        "_tenant_id",
        "_user",
        "_username",
    ];
    let snake = snake_case(name);
    FIELDS.contains(&snake.as_str()) || SUFFIXES.iter().any(|suffix| snake.ends_with(suffix))
}

/// Keys that tell one element of an array from another, beside its destination fields.
fn is_identity_field(name: &str) -> bool {
    matches!(snake_case(name).as_str(), "name" | "id" | "label")
}

/// The configuration with every secret value replaced by `**********`.
pub fn mask(configuration: &Value, spec: Option<&Value>) -> Value {
    masked(configuration, &Rule::root(spec))
}

fn masked(value: &Value, rule: &Rule<'_>) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), masked(value, &rule.child(key))))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| masked(item, &rule.item(index)))
                .collect(),
        ),
        Value::String(_) | Value::Number(_) if rule.is_secret() => {
            Value::String(MASKED_SECRET.to_owned())
        }
        other => other.clone(),
    }
}

/// The JSON pointers of the values [`mask`] would mask (a secrets manager's reference in
/// place of one is skipped: it is no secret).
pub fn secret_pointers(configuration: &Value, spec: Option<&Value>) -> Vec<String> {
    fn walk(value: &Value, rule: &Rule<'_>, path: &mut Vec<Step>, found: &mut Vec<String>) {
        match value {
            _ if ferry_secrets::references::is_reference(value) => {}
            Value::Object(fields) => {
                for (key, value) in fields {
                    path.push(Step::Key(key.clone()));
                    walk(value, &rule.child(key), path, found);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(Step::Index(index));
                    walk(item, &rule.item(index), path, found);
                    path.pop();
                }
            }
            Value::String(_) | Value::Number(_) if rule.is_secret() => found.push(pointer(path)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(
        configuration,
        &Rule::root(spec),
        &mut Vec::new(),
        &mut found,
    );
    found
}

/// One step of a path into a configuration.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `configuration.a.b[0].c`, as the API names fields.
fn field_name(path: &[Step]) -> String {
    let mut name = "configuration".to_owned();
    for step in path {
        match step {
            Step::Key(key) => {
                name.push('.');
                name.push_str(key);
            }
            Step::Index(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

/// The JSON pointer of `path`.
fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Step::Index(index) => format!("/{index}"),
        })
        .collect()
}

/// Whether two values are the same for a destination field (a port may come as a number or
/// as its digits; absent is null).
fn same(new: Option<&Value>, stored: Option<&Value>) -> bool {
    let new = new.filter(|value| !value.is_null());
    let stored = stored.filter(|value| !value.is_null());
    match (new, stored) {
        (Some(Value::Number(number)), Some(Value::String(text)))
        | (Some(Value::String(text)), Some(Value::Number(number))) => {
            number.to_string() == text.trim()
        }
        (new, stored) => new == stored,
    }
}

/// The stored element a new array element stands for: the one element with the same
/// identity (destination and identity fields), else the one at the same position.
fn counterpart<'a>(item: &Value, index: usize, stored: Option<&'a Value>) -> Option<&'a Value> {
    let stored = stored?.as_array()?;
    if let Value::Object(fields) = item {
        let identity: Vec<(&String, &Value)> = fields
            .iter()
            .filter(|(key, value)| {
                (is_destination_field(key) || is_identity_field(key))
                    && (value.is_string() || value.is_number())
                    && value.as_str() != Some(MASKED_SECRET)
            })
            .collect();
        if !identity.is_empty() {
            let matching: Vec<&Value> = stored
                .iter()
                .filter(|candidate| {
                    identity
                        .iter()
                        .all(|(key, value)| same(Some(value), candidate.get(key.as_str())))
                })
                .collect();
            if let [only] = matching.as_slice() {
                return Some(only);
            }
        }
    }
    stored.get(index)
}

/// An enclosing object of a masked value, new and stored, and its path's length.
type Level<'a> = (&'a Value, Option<&'a Value>, usize);

/// In a configuration sent for an update, each `**********` at a secret place (by the SPEC,
/// or by a name that looks secret, as a reply masked before the SPEC was known) takes the
/// stored value it stands for, provided where the secret goes did not change; otherwise a
/// 400 names the secret to give again. A mask anywhere else is refused too: it is never
/// stored.
pub fn keep_masked_secrets(new: &mut Value, stored: &Value, spec: Option<&Value>) -> ApiResult<()> {
    let mut kept = Vec::new();
    collect(
        new,
        Some(stored),
        &Rule::root(spec),
        &mut Vec::new(),
        &mut Vec::new(),
        &mut kept,
    )?;
    for (pointer, value) in kept {
        if let Some(slot) = new.pointer_mut(&pointer) {
            *slot = value;
        }
    }
    Ok(())
}

fn collect<'a>(
    new: &'a Value,
    stored: Option<&'a Value>,
    rule: &Rule<'_>,
    path: &mut Vec<Step>,
    levels: &mut Vec<Level<'a>>,
    kept: &mut Vec<(String, Value)>,
) -> ApiResult<()> {
    match new {
        Value::Object(fields) => {
            levels.push((new, stored.filter(|value| value.is_object()), path.len()));
            for (key, value) in fields {
                path.push(Step::Key(key.clone()));
                let below = stored.and_then(|stored| stored.get(key.as_str()));
                collect(value, below, &rule.child(key), path, levels, kept)?;
                path.pop();
            }
            levels.pop();
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                let below = counterpart(item, index, stored);
                collect(item, below, &rule.item(index), path, levels, kept)?;
                path.pop();
            }
        }
        Value::String(text) if text == MASKED_SECRET => {
            let field = field_name(path);
            // A reply masked by names before the SPEC was known may come back too.
            let named = path
                .iter()
                .any(|step| matches!(step, Step::Key(key) if looks_secret(key)));
            if !rule.is_secret() && !named {
                return Err(ApiError::field(
                    field,
                    "is the mask of a secret, and this field is not secret: give its value",
                ));
            }
            let Some(value) = stored.filter(|value| !value.is_null()) else {
                return Err(ApiError::field(
                    field,
                    "no secret is stored here for this mask to keep: give the secret",
                ));
            };
            for (new_level, stored_level, depth) in levels.iter() {
                let Some(stored_level) = stored_level else {
                    return Err(ApiError::field(
                        field,
                        "no secret is stored here for this mask to keep: give the secret",
                    ));
                };
                let keys = new_level
                    .as_object()
                    .into_iter()
                    .chain(stored_level.as_object())
                    .flat_map(|fields| fields.keys());
                for key in keys.filter(|key| is_destination_field(key)) {
                    let given = new_level.get(key.as_str());
                    if given.and_then(Value::as_str) == Some(MASKED_SECRET) {
                        continue;
                    }
                    if !same(given, stored_level.get(key.as_str())) {
                        let mut changed = path[..*depth].to_vec();
                        changed.push(Step::Key(key.clone()));
                        return Err(ApiError::field(
                            field,
                            format!(
                                "{} changed: give this secret again (a stored secret is kept only while where it goes stays the same)",
                                field_name(&changed)
                            ),
                        ));
                    }
                }
            }
            kept.push((pointer(path), value.clone()));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
