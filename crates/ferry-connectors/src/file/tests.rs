#![allow(clippy::unwrap_used)]
use serde_json::{Value, json};

use super::source::{CellKind, typed_cell};

#[test]
fn csv_columns_are_typed_from_their_cells() {
    let kind = |cells: &[&str]| {
        cells
            .iter()
            .fold(CellKind::Unknown, |kind, cell| kind.widen(cell))
            .json_type()
    };
    assert_eq!(kind(&["1", "2", ""]), "number");
    assert_eq!(kind(&["1", "2.5"]), "number");
    assert_eq!(kind(&["true", "False"]), "boolean");
    assert_eq!(kind(&["1", "x"]), "string");
    assert_eq!(typed_cell("34", "number"), json!(34));
    assert_eq!(typed_cell("9.5", "number"), json!(9.5));
    assert_eq!(typed_cell("", "string"), Value::Null);
}
