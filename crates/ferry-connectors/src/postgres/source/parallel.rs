//! A whole-table read by several connections at once, as PeerDB and ClickHouse's Postgres
//! ClickPipe read a snapshot: the table's heap is split into ranges of pages (by `ctid`),
//! each read by a COPY of its own, every connection under the snapshot the first one
//! exports, so that together they read exactly the rows one COPY would have.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_protocol::RangeMark;
use futures_util::future::try_join_all;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::super::range_state::Split;
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

/// How a table of `pages` pages is cut for `readers` connections, or `None` when one COPY
/// reads it: one reader, or a small table.
pub(super) fn split(filenode: i64, pages: u64, readers: u16) -> Option<Split> {
    let pages = u32::try_from(pages).ok()?;
    if readers < 2 || pages < PARALLEL_MIN_PAGES {
        return None;
    }
    let range_pages = pages
        .div_ceil(u32::from(readers) * 4)
        .clamp(*RANGE_PAGES.start(), *RANGE_PAGES.end());
    Some(Split {
        filenode,
        range_pages,
        count: pages.div_ceil(range_pages),
    })
}

/// Range `index` of `split`. The last is open-ended, so rows in pages added since the
/// table was measured are read too.
pub(super) fn range(split: &Split, index: u32) -> PageRange {
    PageRange {
        start: index.saturating_mul(split.range_pages),
        end: (index + 1 < split.count).then(|| (index + 1).saturating_mul(split.range_pages)),
    }
}

/// Reads the stream of `plan` (a read without a cursor) with up to `readers` connections,
/// `connection` the first of them, and ends it with its state. Returns false, having read
/// nothing, where the table is better read by one COPY: small, not a plain table (a view
/// has no `ctid`), or on a server without TID range scans.
///
/// Into a native destination, each range's rows end with its mark, committed with them: a
/// read cut short and resumed (the plan's `ranges_loaded`) reads only the ranges the
/// destination does not hold yet, whatever `readers` is now, as long as the table is the
/// one that was cut (a table rewritten since is read anew).
pub(super) async fn read(
    plan: &ReadPlan<'_>,
    options: &PgConnectOptions,
    connection: &mut PgConnection,
    output: &Emitter,
    copy_rows: bool,
    readers: u16,
    log: Option<&crate::LogSink>,
) -> Result<bool, ConnectorError> {
    let resumed = plan.ranges_loaded.as_ref().filter(|_| copy_rows);
    if plan.cursor.is_some() || (readers < 2 && resumed.is_none()) {
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
    let filenode = layout.filenode.unwrap_or(0);
    let resumed = resumed.filter(|(split, _)| split.filenode == filenode);
    let Some(split) = resumed
        .map(|(split, _)| *split)
        .or_else(|| self::split(filenode, pages, readers))
    else {
        return Ok(false);
    };
    let mut loaded: Vec<u32> = resumed.map_or_else(Vec::new, |(_, loaded)| loaded.clone());
    loaded.sort_unstable();
    loaded.dedup();
    let ranges: Vec<(u32, PageRange)> = (0..split.count)
        .filter(|index| loaded.binary_search(index).is_err())
        .map(|index| (index, range(&split, index)))
        .collect();
    let readers = usize::from(readers).clamp(1, ranges.len().max(1));
    run_sql(
        connection,
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    )
    .await
    .map_err(|error| database_error(&context, error))?;
    let mut others = Vec::with_capacity(readers - 1);
    if readers > 1 {
        // A server that cannot share its snapshot, or has no connection to spare, is read by
        // one COPY (or, resumed, one connection), as it would be with one reader: slower,
        // never failed for it.
        let exported: Result<String, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut *connection)
                .await;
        let snapshot = match exported {
            Ok(snapshot) => Some(snapshot),
            Err(error) => {
                tracing::info!(stream = %key, %error, "no exported snapshot: one reader");
                None
            }
        };
        for _ in 1..readers {
            let Some(snapshot) = &snapshot else { break };
            match share_snapshot(options, snapshot).await {
                Ok(other) => others.push(other),
                Err(error) => {
                    tracing::info!(stream = %key, %error, "no other reader: fewer readers");
                    break;
                }
            }
        }
        if others.is_empty() && resumed.is_none() {
            run_sql(connection, "ROLLBACK")
                .await
                .map_err(|error| database_error(&context, error))?;
            return Ok(false);
        }
    }
    let readers = others.len() + 1;
    let mut said = format!(
        "source: reading {key} with {readers} connections under one snapshot ({} ranges of its {pages} pages)",
        ranges.len()
    );
    if !loaded.is_empty() {
        said.push_str(&format!(
            "; resumed: {} of its {} ranges were loaded by an earlier attempt",
            loaded.len(),
            split.count
        ));
    }
    super::say(log, said);
    let name: Arc<str> = Arc::from(split.name());
    if copy_rows {
        // Before any row: the destination drops the ranges of any other cut of the table.
        let begins = RangeMark::Begins {
            split: name.clone(),
            skipped: loaded.clone(),
        };
        output.send_pipe(plan.mark(0, begins)).await?;
    }
    let next = AtomicUsize::new(0);
    let workers = std::iter::once(&mut *connection)
        .chain(others.iter_mut())
        .enumerate()
        .map(|(lane, reader)| {
            let (next, ranges, name) = (&next, &ranges, &name);
            async move {
                let lane = u16::try_from(lane).unwrap_or(u16::MAX);
                while let Some((index, range)) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let query = plan.query_of_pages(copy_rows, Some(*range));
                    let ends = RangeMark::Ends {
                        split: name.clone(),
                        index: *index,
                    };
                    plan.copy_out(reader, &query, output, copy_rows, lane, Some(ends))
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
        assert_eq!(split(7, 1_000_000, 1), None);
        assert_eq!(split(7, u64::from(PARALLEL_MIN_PAGES) - 1, 4), None);
        for (pages, readers, count) in [(42_553, 2, 11), (42_553, 4, 16), (1024, 2, 8)] {
            let split = split(7, pages, readers).unwrap();
            assert_eq!(split.count, count, "{pages} pages, {readers} readers");
            let ranges: Vec<PageRange> =
                (0..split.count).map(|index| range(&split, index)).collect();
            assert_eq!(ranges[0].start, 0);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, Some(pair[1].start));
            }
            assert_eq!(ranges.last().unwrap().end, None);
            assert!(u64::from(ranges.last().unwrap().start) < pages);
        }
        // PostgreSQL numbers pages in 32 bits: a larger figure is not a table's.
        assert_eq!(split(7, u64::MAX, 4), None);
        let largest = split(7, u64::from(u32::MAX), 4).unwrap();
        assert!(range(&largest, largest.count - 1).start > u32::MAX - 4096);
    }
}
