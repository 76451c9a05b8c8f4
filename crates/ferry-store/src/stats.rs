//! Aggregates read at each metrics scrape: jobs per status and region, each region's queue
//! (depth and oldest claimable job), and each data plane's last heartbeat. One grouped query
//! each, over the indexes the lanes already use.

use ferry_api::JobStatus;

use crate::decode::Columns;
use crate::{Result, Store, now_millis};

/// Jobs of one status in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    pub region: String,
    pub status: String,
    pub jobs: i64,
}

/// A region's lane: jobs claimable now, and how long the oldest of them has waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub region: String,
    pub depth: i64,
    pub oldest_age_millis: i64,
}

/// A live data plane and how long ago it last heartbeated (`None`: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAge {
    pub dataplane_id: String,
    pub dataplane: String,
    pub region: String,
    pub age_millis: Option<i64>,
}

impl Store {
    pub async fn job_counts(&self) -> Result<Vec<JobCount>> {
        let rows = sqlx::query(
            "SELECT regions.name AS region, jobs.status, COUNT(*) AS jobs
             FROM jobs JOIN regions ON regions.id = jobs.region_id
             GROUP BY regions.name, jobs.status ORDER BY regions.name, jobs.status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let columns = Columns::of("jobs", row);
                Ok(JobCount {
                    region: columns.get("region")?,
                    status: columns.get("status")?,
                    jobs: columns.get("jobs")?,
                })
            })
            .collect()
    }

    /// Every live region, with an empty lane as depth 0.
    pub async fn queue_stats(&self) -> Result<Vec<QueueStats>> {
        let now = now_millis();
        let claimable: Vec<String> = JobStatus::CLAIMABLE
            .iter()
            .map(|status| format!("'{status}'"))
            .collect();
        let sql = format!(
            "SELECT regions.name AS region, COUNT(jobs.id) AS depth,
                    COALESCE(MIN(jobs.next_attempt_at), $1) AS oldest
             FROM regions LEFT JOIN jobs ON jobs.region_id = regions.id
                 AND jobs.status IN ({}) AND jobs.next_attempt_at <= $1
             WHERE regions.tombstone = 0
             GROUP BY regions.name ORDER BY regions.name",
            claimable.join(", ")
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let columns = Columns::of("jobs", row);
                let oldest: i64 = columns.get("oldest")?;
                Ok(QueueStats {
                    region: columns.get("region")?,
                    depth: columns.get("depth")?,
                    oldest_age_millis: (now - oldest).max(0),
                })
            })
            .collect()
    }

    pub async fn heartbeat_ages(&self) -> Result<Vec<HeartbeatAge>> {
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT dataplanes.id, dataplanes.name, regions.name AS region, dataplanes.last_heartbeat_at
             FROM dataplanes JOIN regions ON regions.id = dataplanes.region_id
             WHERE dataplanes.tombstone = 0 ORDER BY regions.name, dataplanes.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let columns = Columns::of("dataplanes", row);
                let last: Option<i64> = columns.get("last_heartbeat_at")?;
                Ok(HeartbeatAge {
                    dataplane_id: columns.get("id")?,
                    dataplane: columns.get("name")?,
                    region: columns.get("region")?,
                    age_millis: last.map(|last| (now - last).max(0)),
                })
            })
            .collect()
    }
}
