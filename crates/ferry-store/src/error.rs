#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// A uniqueness rule was broken (e.g. a region name already used in the organization).
    #[error("{0}")]
    Conflict(String),
    /// The row is still referenced and cannot be deleted; the message names the referrers.
    #[error("{0}")]
    InUse(String),
    /// The caller's attempt is no longer the job's current one (its lease was lost, or the
    /// job ended): it may not report or commit anything.
    #[error("{0}")]
    Fenced(String),
    #[error("unsupported database url {0}: expected sqlite:// or postgres://")]
    InvalidUrl(String),
    /// A stored value cannot be read back as what it must be (JSON of the wrong shape, an
    /// unknown status name, a malformed id): the row needs repair; nothing is guessed.
    #[error("stored data is corrupt: {table}.{column} of row {id}: {reason}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        /// The row's id (or key), `?` when the row has none to show.
        id: String,
        reason: String,
    },
    /// A value could not be written as JSON (a bug: every stored type serializes).
    #[error("{table}.{column} could not be encoded: {reason}")]
    Encode {
        table: &'static str,
        column: &'static str,
        reason: String,
    },
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database_error) if database_error.is_unique_violation() => {
                Self::Conflict(database_error.message().to_owned())
            }
            _ => Self::Database(error),
        }
    }
}
