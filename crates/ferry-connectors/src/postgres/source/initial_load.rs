//! An incremental stream's first read, as Airbyte's source-postgres makes it: the table in
//! page (`ctid`) order, range by range, under one snapshot, with a `ctid` state after each
//! range; then the cursor takes over from its maximum as of the read's start. Page order
//! needs no sort and no cursor index, and its rows can go as COPY binary: a first load runs
//! at a full refresh's speed, and a crash resumes it at the range it had reached.

use sqlx::postgres::PgConnection;

use super::super::{database_error, run_sql};
use super::read_plan::{InitialLoad, PageRange, ReadPlan};
use crate::ConnectorError;
use crate::emitter::Emitter;

/// Pages read between two checkpoints: 8 MiB of heap, about 50 k rows of 160 bytes (a
/// range's COPY and the destination's commit after it cost a few milliseconds).
const RANGE_PAGES: u32 = 1024;

/// Reads the first load of `plan` (an incremental stream with no cursor yet committed, or a
/// first load cut short), then sends the state the cursor starts from.
pub(super) async fn read(
    plan: &ReadPlan<'_>,
    initial: &InitialLoad,
    connection: &mut PgConnection,
    output: &Emitter,
    copy_rows: bool,
    log: Option<&crate::LogSink>,
) -> Result<(), ConnectorError> {
    let key = plan.descriptor.key();
    let context = format!("reading {key}");
    let failed = |error| database_error(&context, error);
    run_sql(
        connection,
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    )
    .await
    .map_err(failed)?;
    let layout = plan.layout(connection).await?;
    let (filenode, pages) = layout.map_or((None, 0), |layout| (layout.filenode, layout.pages));
    let by_pages = layout.is_some_and(|layout| layout.by_pages);
    // A first load resumes where it was only in the same file of the table: one rewritten
    // since has its rows in other pages.
    let resumed = by_pages && filenode.is_some() && initial.filenode == filenode;
    let (from_page, target) = match resumed {
        true => (initial.from_page, initial.target.clone()),
        false => (0, None),
    };
    let target = match target {
        Some(target) => target,
        None => match maximum(plan, connection).await? {
            Some(target) => target,
            None => {
                // No row holds a cursor value: nothing to read, nothing to resume from.
                run_sql(connection, "COMMIT").await.map_err(failed)?;
                return Ok(());
            }
        },
    };
    let pages = u32::try_from(pages).unwrap_or(u32::MAX);
    let said = format!(
        "source: first read of {key} in page order{}, from page {from_page} of {pages}, up to {} {}",
        if plan.binary_types.is_some() {
            " as COPY binary"
        } else {
            ""
        },
        plan.cursor.map_or("", |cursor| cursor.name.as_str()),
        target.0
    );
    super::say(log, said);
    match filenode {
        Some(filenode) if by_pages => {
            let mut start = from_page;
            loop {
                let end = start.checked_add(RANGE_PAGES).filter(|end| *end < pages);
                let range = PageRange { start, end };
                let query = plan.initial_query(copy_rows, Some(range), &target.0);
                plan.copy_out(connection, &query, output, copy_rows, 0, None)
                    .await?;
                let Some(end) = end else { break };
                output
                    .send(plan.initial_state(end, filenode, &target))
                    .await?;
                start = end;
            }
        }
        _ => {
            let query = plan.initial_query(copy_rows, None, &target.0);
            plan.copy_out(connection, &query, output, copy_rows, 0, None)
                .await?;
        }
    }
    run_sql(connection, "COMMIT").await.map_err(failed)?;
    output.send(plan.state(&target.0, Some(target.1))).await
}

/// The cursor's maximum in the open snapshot, as text, and how many rows hold it.
async fn maximum(
    plan: &ReadPlan<'_>,
    connection: &mut PgConnection,
) -> Result<Option<(String, u64)>, ConnectorError> {
    let Some(cursor) = plan.cursor else {
        return Ok(None);
    };
    let context = format!("reading the cursor of {}", plan.descriptor.key());
    let name = super::super::quote_identifier(&cursor.name);
    let from = plan.from();
    // ORDER BY rather than max(): every orderable type has an order, not every one a max
    // (bool, uuid). By the column, qualified: a bare name would order by the text.
    let maximum: Option<String> = sqlx::query_scalar(&format!(
        "SELECT t.{name}::text AS value FROM {from} t WHERE t.{name} IS NOT NULL \
         ORDER BY t.{name} DESC LIMIT 1"
    ))
    .fetch_optional(&mut *connection)
    .await
    .map_err(|error| database_error(&context, error))?;
    let Some(maximum) = maximum else {
        return Ok(None);
    };
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {from} WHERE {name} = $1::text::{}",
        cursor.sql_type
    ))
    .bind(&maximum)
    .fetch_one(&mut *connection)
    .await
    .map_err(|error| database_error(&context, error))?;
    Ok(Some((maximum, u64::try_from(count).unwrap_or(0))))
}
