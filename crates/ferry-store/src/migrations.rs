//! Versioned migrations, embedded in the binary and applied at every start by sqlx's
//! migrator (checksummed, locked on PostgreSQL). The same list serves both backends; a
//! migration that must differ per dialect gets one entry per backend with the same version.

use std::borrow::Cow;

use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::{Backend, Result, Store};

struct Source {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const SOURCES: &[Source] = &[
    Source {
        version: 1,
        description: "control plane",
        sqlite: include_str!("../migrations/0001_control_plane.sql"),
        postgres: include_str!("../migrations/0001_control_plane.sql"),
    },
    Source {
        version: 2,
        description: "connections and jobs",
        sqlite: include_str!("../migrations/0002_jobs.sql"),
        postgres: include_str!("../migrations/0002_jobs.sql"),
    },
    Source {
        version: 3,
        description: "custom connector definitions",
        sqlite: include_str!("../migrations/0003_definitions.sql"),
        postgres: include_str!("../migrations/0003_definitions.sql"),
    },
    Source {
        version: 4,
        description: "connector tasks",
        sqlite: include_str!("../migrations/0004_connector_tasks.sql"),
        postgres: include_str!("../migrations/0004_connector_tasks.sql"),
    },
    Source {
        version: 5,
        description: "schedules",
        sqlite: include_str!("../migrations/0005_schedules.sql"),
        postgres: include_str!("../migrations/0005_schedules.sql"),
    },
    Source {
        version: 6,
        description: "one live job per connection",
        sqlite: include_str!("../migrations/0006_one_live_job.sql"),
        postgres: include_str!("../migrations/0006_one_live_job.sql"),
    },
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
        .map(|source| {
            let sql = match store.backend {
                Backend::Sqlite => source.sqlite,
                Backend::Postgres => source.postgres,
            };
            Migration::new(
                source.version,
                Cow::Borrowed(source.description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    let migrator = Migrator::new(Embedded(migrations)).await?;
    migrator.run(&store.pool).await?;
    Ok(())
}
