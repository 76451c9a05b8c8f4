//! Versioned migrations, embedded in the binary and applied at every start by sqlx's
//! migrator (checksummed, locked on PostgreSQL). The same list serves both backends.

use std::borrow::Cow;

use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::{Result, Store};

/// (version, description, SQL). Every migration so far is the same text on both stores;
/// one that must differ would become a per-`Backend` entry here.
const SOURCES: &[(i64, &str, &str)] = &[
    (
        1,
        "control plane",
        include_str!("../migrations/0001_control_plane.sql"),
    ),
    (
        2,
        "connections and jobs",
        include_str!("../migrations/0002_jobs.sql"),
    ),
    (
        3,
        "custom connector definitions",
        include_str!("../migrations/0003_definitions.sql"),
    ),
    (
        4,
        "connector tasks",
        include_str!("../migrations/0004_connector_tasks.sql"),
    ),
    (
        5,
        "schedules",
        include_str!("../migrations/0005_schedules.sql"),
    ),
    (
        6,
        "one live job per connection",
        include_str!("../migrations/0006_one_live_job.sql"),
    ),
    (
        7,
        "connection naming",
        include_str!("../migrations/0007_connection_naming.sql"),
    ),
    (
        8,
        "stream stats",
        include_str!("../migrations/0008_stream_stats.sql"),
    ),
    (
        9,
        "failure origins and types",
        include_str!("../migrations/0009_failure_types.sql"),
    ),
    (
        10,
        "connector task deadlines",
        include_str!("../migrations/0010_task_deadlines.sql"),
    ),
    (
        11,
        "custom definitions' SPECs",
        include_str!("../migrations/0011_definition_specs.sql"),
    ),
    (
        12,
        "web UI passwords and sessions",
        include_str!("../migrations/0012_ui_sign_in.sql"),
    ),
    (
        13,
        "attempt log lengths and state references",
        include_str!("../migrations/0013_storage.sql"),
    ),
];

/// The embedded list, handed to sqlx's migrator through its public source trait.
#[derive(Debug)]
struct Embedded(Vec<Migration>);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<Migration>, BoxDynError>> + Send + 's>>
    {
        Box::pin(async move { Ok(self.0) })
    }
}

pub(crate) async fn run(store: &Store) -> Result<()> {
    let migrations = SOURCES
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    let migrator = Migrator::new(Embedded(migrations)).await?;
    migrator.run(&store.pool).await?;
    Ok(())
}
