//! What goes down Ferry's in-process pipe between a source and a destination: the Airbyte
//! protocol's messages, and Ferry's own batch forms beside them, which never reach a
//! connector's stdin or stdout.

use crate::{AirbyteMessage, RecordMessage, StreamDescriptor};

#[derive(Debug, Clone)]
pub enum PipeMessage {
    /// A protocol message, as a connector would write it.
    Message(AirbyteMessage),
    /// Records that came in a row (from one read of an external source's output), passed
    /// down the pipe as one message rather than one each. Written out, each is a RECORD line
    /// of its own.
    Records(Vec<RecordMessage>),
    /// Rows already in PostgreSQL's COPY format, from a native PostgreSQL source to a native
    /// PostgreSQL destination, so that they never become JSON on the way.
    CopyRows(CopyRows),
}

impl From<AirbyteMessage> for PipeMessage {
    fn from(message: AirbyteMessage) -> Self {
        Self::Message(message)
    }
}

/// Whole rows of one stream in a COPY format, with the columns they hold.
#[derive(Debug, Clone)]
pub struct CopyRows {
    pub stream: StreamDescriptor,
    pub columns: std::sync::Arc<[String]>,
    pub format: CopyFormat,
    pub count: u64,
    pub data: Vec<u8>,
    /// Which of a parallel read's readers sent them (0 for a read by one): a destination
    /// may write each lane's rows through a connection of its own.
    pub lane: u16,
    /// Where a parallel read's split of the table begins or one of its ranges ends (after
    /// these rows, which may be none).
    pub mark: Option<RangeMark>,
}

/// A parallel read's checkpoints, which travel with its lanes' rows rather than as STATEs:
/// a range's rows and its mark are committed together, on the lane's connection, so a read
/// cut short resumes at the ranges not yet in (`split` names the way the table was cut, the
/// same for every attempt that can resume it; the source alone reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeMark {
    /// Before any row of the split: ranges of any other split are no longer wanted, and
    /// the ranges `skipped` (loaded by an earlier attempt, as the destination said) are
    /// not read again; a destination that does not hold them all must refuse the read.
    Begins {
        split: std::sync::Arc<str>,
        skipped: Vec<u32>,
    },
    /// The rows of range `index` of `split` have all been sent on this lane.
    Ends {
        split: std::sync::Arc<str>,
        index: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// COPY text: one row per line, tab-separated fields.
    Text,
    /// COPY binary tuples, without the format's header and trailer; each column's fields in
    /// the binary form of the destination SQL type beside it (`bigint`, `numeric`, …), which
    /// is only what a destination column of that type accepts.
    Binary { types: std::sync::Arc<[String]> },
}
