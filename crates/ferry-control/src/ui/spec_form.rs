//! A connector's configuration form, generated from its SPEC (`connectionSpecification`,
//! JSON Schema): strings, numbers, booleans, enums, `oneOf` as a choice, arrays, nested
//! objects; and the submitted form read back into the configuration the API takes.
//!
//! `airbyte_secret` fields are password inputs that are never filled: the page never holds
//! a stored secret. Left blank on an edit, the field is sent as the API's mask, which the
//! API (`secrets::keep_masked_secrets`) replaces with the stored value under its own rules.
//! Field errors are keyed by the API's field paths (`configuration.ssl_mode.ca_certificate`)
//! and shown next to their field.

use ferry_api::MASKED_SECRET;
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::form::Form;
use super::pages::FieldErrors;
use crate::error::{ApiError, ApiResult};

const MAX_DEPTH: usize = 8;

/// One property of a schema, where it sits in the configuration and in the form.
struct Field<'a> {
    key: &'a str,
    schema: &'a Value,
    required: bool,
    /// The API's path: `configuration.ssl_mode.mode`.
    path: String,
    /// The form input's name: `configuration.ssl_mode.__4.ca_certificate` (a `oneOf`
    /// option's fields carry its index, so that options never share an input).
    name: String,
}

/// The properties of an object schema in the SPEC's `order` (then by key).
fn properties<'a>(schema: &'a Value, path: &str, name: &str) -> Vec<Field<'a>> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields: Vec<Field<'a>> = schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(key, schema)| Field {
                    key,
                    schema,
                    required: required.contains(&key.as_str()),
                    path: format!("{path}.{key}"),
                    name: format!("{name}.{key}"),
                })
                .collect()
        })
        .unwrap_or_default();
    fields.sort_by_key(|field| {
        (
            field.schema["order"].as_i64().unwrap_or(i64::MAX),
            field.key,
        )
    });
    fields
}

/// A property's fixed value within a `oneOf` option (its discriminator: `"const"`, or an
/// `enum` of one).
fn fixed_value(schema: &Value) -> Option<&Value> {
    schema
        .get("const")
        .or_else(|| match schema["enum"].as_array() {
            Some(values) if values.len() == 1 => values.first(),
            _ => None,
        })
}

fn options(schema: &Value) -> Option<&Vec<Value>> {
    schema["oneOf"]
        .as_array()
        .or_else(|| schema["anyOf"].as_array())
        .filter(|options| options.iter().all(Value::is_object) && !options.is_empty())
}

/// Which option the stored value is (its discriminators match), else the default's, else
/// the first.
fn chosen_option(options: &[Value], existing: Option<&Value>, default: Option<&Value>) -> usize {
    let matches = |option: &Value, value: &Value| {
        let fixed: Vec<(&String, &Value)> = option["properties"]
            .as_object()
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|(key, schema)| fixed_value(schema).map(|fixed| (key, fixed)))
                    .collect()
            })
            .unwrap_or_default();
        !fixed.is_empty()
            && fixed
                .iter()
                .all(|(key, fixed)| value.get(key.as_str()) == Some(*fixed))
    };
    [existing, default]
        .into_iter()
        .flatten()
        .find_map(|value| options.iter().position(|option| matches(option, value)))
        .unwrap_or(0)
}

fn dom_id(name: &str) -> String {
    name.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character
            } else {
                '-'
            }
        })
        .collect()
}

fn title<'a>(field: &'a Field<'_>) -> &'a str {
    field.schema["title"].as_str().unwrap_or(field.key)
}

fn is_secret(schema: &Value) -> bool {
    schema["airbyte_secret"].as_bool() == Some(true)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The form fields of a SPEC, filled from `existing` (the configuration as the API shows
/// it, secrets masked) and with `errors` next to their fields.
pub fn fields(spec: &Value, existing: Option<&Value>, errors: &FieldErrors) -> Markup {
    html! {
        @for field in properties(spec, "configuration", "configuration") {
            (render(&field, existing.and_then(|value| value.get(field.key)), errors, 0))
        }
    }
}

fn render(
    field: &Field<'_>,
    existing: Option<&Value>,
    errors: &FieldErrors,
    depth: usize,
) -> Markup {
    let id = dom_id(&field.name);
    let hint_id = format!("hint-{id}");
    let error_id = format!("error-{}", field.path);
    let description = field.schema["description"].as_str();
    let described_by = match (description.is_some(), errors.of(&field.path).is_some()) {
        (true, true) => format!("{hint_id} {error_id}"),
        (true, false) => hint_id.clone(),
        (false, true) => error_id.clone(),
        (false, false) => String::new(),
    };
    let label = html! {
        label for=(id) {
            (title(field))
            @if field.required { span.muted { " (required)" } }
        }
        @if let Some(description) = description { p.hint id=(hint_id) { (description) } }
    };
    let schema = field.schema;
    let kind = schema["type"].as_str().unwrap_or("");
    if depth >= MAX_DEPTH {
        return html! {};
    }
    if let Some(options) = options(schema) {
        let chosen = chosen_option(options, existing, schema.get("default"));
        let select_name = format!("{}.__option", field.name);
        return html! {
            fieldset {
                legend { (title(field)) }
                @if let Some(description) = description { p.hint { (description) } }
                label for=(id) { "Choose one" }
                select id=(id) name=(select_name) data-choice-select {
                    @for (index, option) in options.iter().enumerate() {
                        option value=(index) selected[index == chosen] {
                            (option["title"].as_str().unwrap_or("option"))
                        }
                    }
                }
                (errors.next_to(&field.path))
                @for (index, option) in options.iter().enumerate() {
                    div data-choice-of=(select_name) data-choice=(index) {
                        @for inner in properties(option, &field.path, &format!("{}.__{index}", field.name)) {
                            @if fixed_value(inner.schema).is_none() {
                                (render(&inner, existing.filter(|_| index == chosen).and_then(|value| value.get(inner.key)), errors, depth + 1))
                            }
                        }
                    }
                }
            }
        };
    }
    if kind == "object" && schema["properties"].is_object() {
        return html! {
            fieldset {
                legend { (title(field)) }
                @if let Some(description) = description { p.hint { (description) } }
                @for inner in properties(schema, &field.path, &field.name) {
                    (render(&inner, existing.and_then(|value| value.get(inner.key)), errors, depth + 1))
                }
                (errors.next_to(&field.path))
            }
        };
    }
    let current = existing.or_else(|| schema.get("default"));
    let input = if let Some(values) = schema["enum"].as_array() {
        let current = current.map(scalar_text).unwrap_or_default();
        html! {
            select id=(id) name=(field.name) aria-describedby=(described_by) {
                @if !field.required { option value="" { "—" } }
                @for value in values {
                    @let text = scalar_text(value);
                    option value=(text) selected[text == current] { (text) }
                }
            }
        }
    } else {
        match kind {
            "boolean" => {
                let checked = current.and_then(Value::as_bool).unwrap_or(false);
                return html! {
                    input type="hidden" name=(field.name) value="false";
                    label.inline for=(id) {
                        input type="checkbox" id=(id) name=(field.name) value="true" checked[checked] aria-describedby=(described_by);
                        (title(field))
                    }
                    @if let Some(description) = description { p.hint id=(hint_id) { (description) } }
                    (errors.next_to(&field.path))
                };
            }
            "integer" | "number" => {
                let value = current.map(scalar_text).unwrap_or_default();
                let step = if kind == "integer" { "1" } else { "any" };
                html! {
                    input type="number" id=(id) name=(field.name) value=(value) step=(step)
                        min=[schema["minimum"].as_f64()] max=[schema["maximum"].as_f64()]
                        required[field.required] aria-describedby=(described_by);
                }
            }
            "string" if is_secret(schema) => {
                let stored = existing.and_then(Value::as_str) == Some(MASKED_SECRET);
                html! {
                    input type="password" id=(id) name=(field.name) value="" autocomplete="new-password"
                        placeholder=(if stored { "•••••• saved — leave blank to keep" } else { "" })
                        aria-describedby=(described_by);
                }
            }
            "string" if schema["multiline"].as_bool() == Some(true) => html! {
                textarea id=(id) name=(field.name) aria-describedby=(described_by) {
                    (current.map(scalar_text).unwrap_or_default())
                }
            },
            "string" => html! {
                input type="text" id=(id) name=(field.name) value=(current.map(scalar_text).unwrap_or_default())
                    required[field.required] aria-describedby=(described_by);
            },
            "array"
                if matches!(
                    schema["items"]["type"].as_str(),
                    Some("string" | "integer" | "number")
                ) =>
            {
                let lines: Vec<String> = current
                    .and_then(Value::as_array)
                    .map(|items| items.iter().map(scalar_text).collect())
                    .unwrap_or_default();
                html! {
                    p.hint { "One per line." }
                    textarea id=(id) name=(field.name) aria-describedby=(described_by) { (lines.join("\n")) }
                }
            }
            _ => html! {
                p.hint { "As JSON." }
                textarea id=(id) name=(field.name) aria-describedby=(described_by) {
                    (current.map(|value| value.to_string()).unwrap_or_default())
                }
            },
        }
    };
    html! {
        (label)
        (input)
        (errors.next_to(&field.path))
    }
}

/// The configuration the form describes, or a 400 naming the field that cannot be read
/// (a number that is not one, JSON that does not parse). `existing` is the configuration as
/// shown (masked): a secret left blank is sent as the mask where one is stored.
pub fn read(spec: &Value, form: &Form, existing: Option<&Value>) -> ApiResult<Value> {
    read_object(spec, form, "configuration", "configuration", existing, 0).map(Value::Object)
}

fn read_object(
    schema: &Value,
    form: &Form,
    path: &str,
    name: &str,
    existing: Option<&Value>,
    depth: usize,
) -> ApiResult<Map<String, Value>> {
    let mut object = Map::new();
    if depth >= MAX_DEPTH {
        return Ok(object);
    }
    for field in properties(schema, path, name) {
        let inner = existing.and_then(|value| value.get(field.key));
        if let Some(value) = read_field(&field, form, inner, depth)? {
            object.insert(field.key.to_owned(), value);
        }
    }
    Ok(object)
}

fn read_field(
    field: &Field<'_>,
    form: &Form,
    existing: Option<&Value>,
    depth: usize,
) -> ApiResult<Option<Value>> {
    let schema = field.schema;
    if let Some(options) = options(schema) {
        let Some(choice) = form.get(&format!("{}.__option", field.name)) else {
            return Ok(None);
        };
        let index: usize = choice
            .parse()
            .ok()
            .filter(|index| *index < options.len())
            .ok_or_else(|| ApiError::field(field.path.clone(), "choose one of the options"))?;
        let option = &options[index];
        let option_name = format!("{}.__{index}", field.name);
        let mut object = Map::new();
        for inner in properties(option, &field.path, &option_name) {
            if let Some(fixed) = fixed_value(inner.schema) {
                object.insert(inner.key.to_owned(), fixed.clone());
            } else if let Some(value) = read_field(
                &inner,
                form,
                existing.and_then(|value| value.get(inner.key)),
                depth + 1,
            )? {
                object.insert(inner.key.to_owned(), value);
            }
        }
        return Ok(Some(Value::Object(object)));
    }
    let kind = schema["type"].as_str().unwrap_or("");
    if kind == "object" && schema["properties"].is_object() {
        let object = read_object(schema, form, &field.path, &field.name, existing, depth + 1)?;
        return Ok((!object.is_empty() || field.required).then_some(Value::Object(object)));
    }
    let values = form.all(&field.name);
    if kind == "boolean" && schema.get("enum").is_none() {
        return Ok(match values.is_empty() {
            true => None,
            false => Some(Value::Bool(values.contains(&"true"))),
        });
    }
    let Some(text) = values.last().map(|text| text.trim()) else {
        return Ok(None);
    };
    if text.is_empty() {
        let stored_secret =
            is_secret(schema) && existing.and_then(Value::as_str) == Some(MASKED_SECRET);
        return Ok(stored_secret.then(|| Value::String(MASKED_SECRET.to_owned())));
    }
    let number = |kind: &str, text: &str| -> ApiResult<Value> {
        let value = if kind == "integer" {
            text.parse::<i64>().ok().map(Value::from)
        } else {
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
        };
        value.ok_or_else(|| {
            ApiError::field(
                field.path.clone(),
                if kind == "integer" {
                    "must be a whole number"
                } else {
                    "must be a number"
                },
            )
        })
    };
    let value = match kind {
        "integer" | "number" => number(kind, text)?,
        "string" => Value::String(if is_secret(schema) {
            values.last().copied().unwrap_or_default().to_owned()
        } else {
            text.to_owned()
        }),
        "array" => match schema["items"]["type"].as_str() {
            Some(item_kind @ ("string" | "integer" | "number")) => Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(|line| match item_kind {
                        "string" => Ok(Value::String(line.to_owned())),
                        other => number(other, line),
                    })
                    .collect::<ApiResult<Vec<Value>>>()?,
            ),
            _ => json_value(field, text)?,
        },
        _ if schema.get("enum").is_some() => Value::String(text.to_owned()),
        _ => json_value(field, text)?,
    };
    Ok(Some(value))
}

fn json_value(field: &Field<'_>, text: &str) -> ApiResult<Value> {
    serde_json::from_str(text)
        .map_err(|error| ApiError::field(field.path.clone(), format!("is not valid JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "type": "object",
            "required": ["host", "port"],
            "properties": {
                "host": {"type": "string", "title": "Host", "order": 0},
                "port": {"type": "integer", "title": "Port", "order": 1, "default": 5432},
                "password": {"type": "string", "airbyte_secret": true, "order": 2},
                "schemas": {"type": "array", "items": {"type": "string"}, "order": 3},
                "debug": {"type": "boolean", "order": 4},
                "flavour": {"type": "string", "enum": ["a", "b"], "order": 5},
                "ssl_mode": {"order": 6, "oneOf": [
                    {"title": "disable", "type": "object", "properties": {"mode": {"type": "string", "const": "disable"}}},
                    {"title": "verify-full", "type": "object", "properties": {
                        "mode": {"type": "string", "const": "verify-full"},
                        "ca_certificate": {"type": "string", "airbyte_secret": true, "multiline": true}
                    }}
                ]}
            }
        })
    }

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_submitted_form_reads_back_as_the_configuration() {
        let submitted = form(&[
            ("configuration.host", " db.example "),
            ("configuration.port", "6543"),
            ("configuration.password", "s3cret"),
            ("configuration.schemas", "public\n\n sales \n"),
            ("configuration.debug", "false"),
            ("configuration.debug", "true"),
            ("configuration.flavour", "b"),
            ("configuration.ssl_mode.__option", "1"),
            ("configuration.ssl_mode.__0.mode", "ignored"),
            ("configuration.ssl_mode.__1.ca_certificate", "PEM"),
        ]);
        let configuration = read(&spec(), &submitted, None).expect("reads");
        assert_eq!(
            configuration,
            json!({
                "host": "db.example", "port": 6543, "password": "s3cret",
                "schemas": ["public", "sales"], "debug": true, "flavour": "b",
                "ssl_mode": {"mode": "verify-full", "ca_certificate": "PEM"}
            })
        );
    }

    #[test]
    fn a_blank_secret_keeps_the_stored_one_and_bad_numbers_name_their_field() {
        let existing = json!({"host": "h", "port": 1, "password": MASKED_SECRET});
        let submitted = form(&[
            ("configuration.host", "h"),
            ("configuration.port", "1"),
            ("configuration.password", ""),
        ]);
        let configuration = read(&spec(), &submitted, Some(&existing)).expect("reads");
        assert_eq!(configuration["password"], MASKED_SECRET);
        let without_stored = read(&spec(), &submitted, None).expect("reads");
        assert!(without_stored.get("password").is_none());
        match read(&spec(), &form(&[("configuration.port", "five")]), None) {
            Err(ApiError::BadRequest { errors, .. }) => {
                assert_eq!(errors[0].field, "configuration.port")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_form_never_holds_a_secret_and_shows_errors_next_to_fields() {
        let existing = json!({"host": "h", "password": MASKED_SECRET, "ssl_mode": {"mode": "verify-full", "ca_certificate": MASKED_SECRET}});
        let errors = FieldErrors {
            detail: Some("bad".to_owned()),
            fields: vec![ferry_api::FieldError {
                field: "configuration.host".to_owned(),
                message: "cannot resolve".to_owned(),
            }],
        };
        let page = fields(&spec(), Some(&existing), &errors).into_string();
        assert!(!page.contains(MASKED_SECRET), "{page}");
        assert!(page.contains("cannot resolve"));
        assert!(page.contains(r#"value="1" selected"#), "{page}");
        assert!(page.contains(r#"type="password""#));
    }
}
