//! Test databases on the PostgreSQL server the tests use.

use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Where the test PostgreSQL server is (`FERRY_TEST_POSTGRES_URL`), as a URL of a database
/// that exists; per-test databases are created beside it.
pub fn postgres_admin_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped when the value is dropped.
pub struct TestDatabase {
    name: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = postgres_admin_url();
        let mut connection = PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is required for this test and is not reachable at {admin_url}: {error}. \
                 Run scripts/test.sh, which starts it."
            )
        });
        let name = format!("ferry_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self { name, admin_url }
    }

    /// The database's name (what a connector's `database` field takes).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url()).await.unwrap()
    }

    /// Runs `sql` (any number of statements) in the database.
    pub async fn execute(&self, sql: &str) {
        let mut connection = self.connect().await;
        sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
    }

    /// One text per row of `select` (a query of one text column).
    pub async fn texts(&self, select: &str) -> Vec<Option<String>> {
        let mut connection = self.connect().await;
        sqlx::query_scalar(select)
            .fetch_all(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{select}: {error}"))
    }

    /// The number a query of one value gives (`SELECT count(*) …`, as a number or as text).
    pub async fn count(&self, select: &str) -> i64 {
        let query = format!("SELECT ({select})::bigint");
        let mut connection = self.connect().await;
        sqlx::query_scalar(&query)
            .fetch_one(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{select}: {error}"))
    }

    /// A `source-postgres` configuration reading the `public` schema of this database.
    pub fn source_configuration(&self) -> Value {
        let mut configuration = self.connector_configuration();
        configuration["sourceType"] = json!("postgres");
        configuration["schemas"] = json!(["public"]);
        configuration
    }

    /// A `destination-postgres` configuration writing into `schema` of this database.
    pub fn destination_configuration(&self, schema: &str) -> Value {
        let mut configuration = self.connector_configuration();
        configuration["destinationType"] = json!("postgres");
        configuration["schema"] = json!(schema);
        configuration
    }

    /// What both connectors take: the server (trust auth: the password is never asked for)
    /// and this database.
    fn connector_configuration(&self) -> Value {
        json!({
            "host": "127.0.0.1", "port": 5432, "database": self.name(),
            "username": "postgres", "password": "unused-with-trust-auth",
            "ssl_mode": {"mode": "disable"},
        })
    }

    pub fn url(&self) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((server, _database)) => format!("{server}/{}", self.name),
            None => panic!("FERRY_TEST_POSTGRES_URL must name a database"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}
