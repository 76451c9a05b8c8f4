//! The state of a full refresh read in ranges and cut short, between the native source and
//! destination only: the destination commits each range's rows with its mark
//! (`RangeMark::Ends`) and, at the next attempt of the same job, gives back the ranges it
//! holds in this state, which the source resumes from (reading only the others). Airbyte's
//! resumable full refresh does the same with one `ctid` position; ranges read at once end
//! in any order, so here each is named.

use serde_json::{Value, json};

pub(super) const STATE_TYPE: &str = "ctid_ranges";

/// How a table's heap was cut: its file, the pages in a range and how many ranges (the
/// last open-ended). An attempt that finds the same file cuts it the same way, whatever the
/// table's size now; one that finds another file (the table was rewritten) starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Split {
    pub(super) filenode: i64,
    pub(super) range_pages: u32,
    pub(super) count: u32,
}

impl Split {
    pub(super) fn name(&self) -> String {
        format!("{}:{}:{}", self.filenode, self.range_pages, self.count)
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split(':');
        let split = Self {
            filenode: parts.next()?.parse().ok()?,
            range_pages: parts.next()?.parse().ok().filter(|pages| *pages > 0)?,
            count: parts.next()?.parse().ok().filter(|count| *count > 0)?,
        };
        parts.next().is_none().then_some(split)
    }
}

/// The stream state naming the ranges of `split` (its name) already loaded.
pub(super) fn state(split: &str, loaded: &[u32]) -> Value {
    json!({"state_type": STATE_TYPE, "version": 2, "split": split, "ranges_loaded": loaded})
}

/// The split and loaded ranges of such a state; `None` for any other state, or one that
/// does not parse (the read then starts over).
pub(super) fn parse(state: &Value) -> Option<(Split, Vec<u32>)> {
    if state["state_type"] != STATE_TYPE {
        return None;
    }
    let split = Split::parse(state["split"].as_str()?)?;
    let loaded = state["ranges_loaded"]
        .as_array()?
        .iter()
        .map(|index| {
            index
                .as_u64()
                .and_then(|index| u32::try_from(index).ok())
                .filter(|index| *index < split.count)
        })
        .collect::<Option<Vec<u32>>>()?;
    Some((split, loaded))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_state_names_its_split_and_ranges_and_nothing_else_parses_as_one() {
        let split = Split {
            filenode: 16_384,
            range_pages: 4096,
            count: 11,
        };
        let written = state(&split.name(), &[0, 3, 10]);
        assert_eq!(parse(&written), Some((split, vec![0, 3, 10])));
        // Another kind of state, a range past the split, a split of no ranges or of
        // anything but three numbers: none is a resumable state.
        for bad in [
            json!({"state_type": "full_refresh"}),
            state(&split.name(), &[11]),
            state("16384:4096:0", &[]),
            state("16384:0:3", &[]),
            state("16384:4096", &[]),
            state("16384:4096:3:1", &[]),
            state("x:4096:3", &[]),
            json!({"state_type": STATE_TYPE, "split": split.name(), "ranges_loaded": [-1]}),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
