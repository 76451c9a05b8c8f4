//! A whole-table read by several connections at once, as PeerDB and ClickHouse's Postgres
//! ClickPipe read a snapshot: the table's heap is split into ranges of pages (by `ctid`),
//! each read by a COPY of its own, every connection under the snapshot the first one
//! exports, so that together they read exactly the rows one COPY would have.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::try_join_all;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::super::{connect, database_error, quote_literal, run_sql};
use super::read_plan::{PageRange, ReadPlan};
use crate::ConnectorError;
use crate::emitter::Emitter;

/// Tables of fewer pages (8 MiB of PostgreSQL's 8 KiB pages) are read by one COPY: they take
/// less time to read than more connections take to open.
const PARALLEL_MIN_PAGES: u32 = 1024;

/// Pages in a range: about four a reader, so that readers done early take more and all end
/// together however the rows are spread; from 1 MiB to 32 MiB of heap.
const RANGE_PAGES: std::ops::RangeInclusive<u32> = 128..=4096;

/// The ranges a table of `pages` pages is read in by `readers` connections, or `None` when
/// one COPY reads it: one reader, or a small table. The last range is open-ended, so rows in
/// pages added since the table was measured are read too.
pub(super) fn split(pages: u64, readers: u16) -> Option<Vec<PageRange>> {
    let pages = u32::try_from(pages).ok()?;
    if readers < 2 || pages < PARALLEL_MIN_PAGES {
        return None;
    }
    let size = pages
        .div_ceil(u32::from(readers) * 4)
        .clamp(*RANGE_PAGES.start(), *RANGE_PAGES.end());
    let count = pages.div_ceil(size);
    Some(
        (0..count)
            .map(|index| PageRange {
                start: index * size,
                end: (index + 1 < count).then(|| (index + 1) * size),
            })
            .collect(),
    )
}

/// Reads the stream of `plan` (a read without a cursor) with up to `readers` connections,
/// `connection` the first of them, and ends it with its state. Returns false, having read
/// nothing, where the table is better read by one COPY: small, not a plain table (a view
/// has no `ctid`), or on a server without TID range scans.
pub(super) async fn read(
    plan: &ReadPlan<'_>,
    options: &PgConnectOptions,
    connection: &mut PgConnection,
    output: &Emitter,
    copy_rows: bool,
    readers: u16,
    log: Option<&crate::LogSink>,
) -> Result<bool, ConnectorError> {
    if plan.cursor.is_some() || readers < 2 {
        return Ok(false);
    }
    let key = plan.descriptor.key();
    let context = format!("reading {key}");
    let Some(layout) = plan
        .layout(connection)
        .await?
        .filter(|layout| layout.by_pages)
    else {
        return Ok(false);
    };
    let pages = layout.pages;
    let Some(ranges) = split(pages, readers) else {
        return Ok(false);
    };
    let readers = usize::from(readers).min(ranges.len());
    run_sql(
        connection,
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    )
    .await
    .map_err(|error| database_error(&context, error))?;
    // A server that cannot share its snapshot, or has no connection to spare, is read by one
    // COPY, as it would be with one reader: slower, never failed for it.
    let exported: Result<String, sqlx::Error> = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *connection)
        .await;
    let snapshot = match exported {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::info!(stream = %key, %error, "no exported snapshot: one reader");
            run_sql(connection, "ROLLBACK")
                .await
                .map_err(|error| database_error(&context, error))?;
            return Ok(false);
        }
    };
    let mut others = Vec::with_capacity(readers - 1);
    for _ in 1..readers {
        match share_snapshot(options, &snapshot).await {
            Ok(other) => others.push(other),
            Err(error) => {
                tracing::info!(stream = %key, %error, "no other reader: one reader");
                for other in others {
                    let _ = sqlx::Connection::close(other).await;
                }
                run_sql(connection, "ROLLBACK")
                    .await
                    .map_err(|error| database_error(&context, error))?;
                return Ok(false);
            }
        }
    }
    let said = format!(
        "source: reading {key} with {readers} connections under one snapshot ({} ranges of its {pages} pages)",
        ranges.len()
    );
    super::say(log, said);
    let next = AtomicUsize::new(0);
    let workers = std::iter::once(&mut *connection)
        .chain(others.iter_mut())
        .enumerate()
        .map(|(lane, reader)| {
            let (next, ranges) = (&next, &ranges);
            async move {
                let lane = u16::try_from(lane).unwrap_or(u16::MAX);
                while let Some(range) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let query = plan.query_of_pages(copy_rows, Some(*range));
                    plan.copy_out(reader, &query, output, copy_rows, lane)
                        .await?;
                }
                Ok::<(), ConnectorError>(())
            }
        });
    try_join_all(workers).await?;
    for other in others {
        // Read only: ending the connection ends its transaction.
        let _ = sqlx::Connection::close(other).await;
    }
    run_sql(connection, "COMMIT")
        .await
        .map_err(|error| database_error(&context, error))?;
    output.send(plan.state("", None)).await?;
    Ok(true)
}

/// Another connection, in a transaction under `snapshot`.
async fn share_snapshot(
    options: &PgConnectOptions,
    snapshot: &str,
) -> Result<PgConnection, ConnectorError> {
    let mut other = connect(options).await?;
    run_sql(
        &mut other,
        &format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(snapshot)
        ),
    )
    .await
    .map_err(|error| database_error("sharing the snapshot", error))?;
    Ok(other)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_large_table_is_split_into_ranges_that_cover_every_page_once() {
        assert_eq!(split(1_000_000, 1), None);
        assert_eq!(split(u64::from(PARALLEL_MIN_PAGES) - 1, 4), None);
        for (pages, readers, count) in [(42_553, 2, 11), (42_553, 4, 16), (1024, 2, 8)] {
            let ranges = split(pages, readers).unwrap();
            assert_eq!(ranges.len(), count, "{pages} pages, {readers} readers");
            assert_eq!(ranges[0].start, 0);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, Some(pair[1].start));
            }
            assert_eq!(ranges.last().unwrap().end, None);
        }
        // PostgreSQL numbers pages in 32 bits: a larger figure is not a table's.
        assert_eq!(split(u64::MAX, 4), None);
        let last = split(u64::from(u32::MAX), 4).unwrap();
        assert!(last.last().unwrap().start > u32::MAX - 4096);
    }
}
