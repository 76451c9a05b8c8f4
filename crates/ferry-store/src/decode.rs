//! Reading rows back: every stored id, flag, name and JSON document is decoded here, and a
//! value that does not decode is a [`StoreError::Corrupt`] naming its table, column and row,
//! never a default standing in for it.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};
use uuid::Uuid;

use crate::{Result, StoreError};

/// The columns of one row of `table`.
pub(crate) struct Columns<'r> {
    table: &'static str,
    row: &'r AnyRow,
}

impl<'r> Columns<'r> {
    pub(crate) fn of(table: &'static str, row: &'r AnyRow) -> Self {
        Self { table, row }
    }

    /// The row's id for an error message: its `id` column (text or number), or `?`.
    fn row_id(&self) -> String {
        if let Ok(id) = self.row.try_get::<String, _>("id") {
            return id;
        }
        if let Ok(id) = self.row.try_get::<i64, _>("id") {
            return id.to_string();
        }
        "?".to_owned()
    }

    pub(crate) fn corrupt(&self, column: &'static str, reason: impl Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            column,
            id: self.row_id(),
            reason: reason.to_string(),
        }
    }

    /// A column read as it is stored (text, number, nullable).
    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T>
    where
        T: Decode<'r, Any> + Type<Any>,
    {
        Ok(self.row.try_get(column)?)
    }

    pub(crate) fn uuid(&self, column: &'static str) -> Result<Uuid> {
        let text: String = self.get(column)?;
        Uuid::parse_str(&text).map_err(|_| self.corrupt(column, format!("'{text}' is not a uuid")))
    }

    pub(crate) fn optional_uuid(&self, column: &'static str) -> Result<Option<Uuid>> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| {
            Uuid::parse_str(&text)
                .map_err(|_| self.corrupt(column, format!("'{text}' is not a uuid")))
        })
        .transpose()
    }

    /// A 0/1 flag.
    pub(crate) fn flag(&self, column: &'static str) -> Result<bool> {
        let value: i64 = self.get(column)?;
        Ok(value != 0)
    }

    /// A JSON document of type `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self, column: &'static str) -> Result<T> {
        let text: String = self.get(column)?;
        serde_json::from_str(&text).map_err(|error| self.corrupt(column, error))
    }

    pub(crate) fn optional_json<T: DeserializeOwned>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| serde_json::from_str(&text).map_err(|error| self.corrupt(column, error)))
            .transpose()
    }

    /// One of an enum's names (a status, a type, a role), exactly as `Display` writes it:
    /// a name the enum only tolerates (`unknown` standing for anything) is corrupt too.
    pub(crate) fn name<T: DeserializeOwned + Display>(&self, column: &'static str) -> Result<T> {
        let text: String = self.get(column)?;
        self.parse_name(column, text)
    }

    pub(crate) fn optional_name<T: DeserializeOwned + Display>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| self.parse_name(column, text)).transpose()
    }

    fn parse_name<T: DeserializeOwned + Display>(
        &self,
        column: &'static str,
        text: String,
    ) -> Result<T> {
        match serde_json::from_value::<T>(serde_json::Value::String(text.clone())) {
            Ok(value) if value.to_string() == text => Ok(value),
            _ => Err(self.corrupt(column, format!("unknown name '{text}'"))),
        }
    }
}

/// `value` as the JSON text stored in `table.column`.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    table: &'static str,
    column: &'static str,
    value: &T,
) -> Result<String> {
    serde_json::to_string(value).map_err(|error| StoreError::Encode {
        table,
        column,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferry_api::{FailureType, JobStatus};
    use sqlx::any::AnyPoolOptions;

    #[tokio::test]
    async fn names_and_json_decode_strictly() {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let row = sqlx::query(
            "SELECT 'j1' AS id, 'running' AS good, 'queued' AS bad, 'nope' AS failure, '[1, 2]' AS list, '{' AS broken",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let columns = Columns::of("jobs", &row);
        assert_eq!(
            columns.name::<JobStatus>("good").unwrap(),
            JobStatus::Running
        );
        // FailureType reads any unknown name as `Unknown`; the store does not.
        for column in ["bad", "failure"] {
            let error = columns.name::<FailureType>(column).unwrap_err();
            assert!(
                matches!(&error, StoreError::Corrupt { table: "jobs", id, .. } if id == "j1"),
                "{error:?}"
            );
        }
        assert_eq!(columns.json::<Vec<i64>>("list").unwrap(), [1, 2]);
        let error = columns.json::<Vec<i64>>("broken").unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Corrupt {
                    column: "broken",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
