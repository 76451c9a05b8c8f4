//! The closed sets of names that the public API, the data-plane API and the store share:
//! job status and type, attempt status, connector task kind and status (the connector role
//! is `ferry_protocol::ConnectorRole`, re-exported by this crate). Each is one enum whose wire and
//! stored form is its lowercase name (`as_str`, serde and `FromStr` agree), so no other file
//! compares these names as string literals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A name that is not one of its enum's: what was given and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}' (expected one of {})", expected.join(", "))]
pub struct UnknownName {
    /// What kind of name it should have been, e.g. `job status`.
    pub what: &'static str,
    pub name: String,
    pub expected: &'static [&'static str],
}

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name on the wire and in the store.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, UnknownName> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownName {
                        what: $what,
                        name: text.to_owned(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// Where a job is in its life. Airbyte's public API calls `pending` `queued` in filters.
    JobStatus, "job status" {
        /// In its region's lane, never claimed yet.
        Pending = "pending",
        /// An attempt holds it under a lease.
        Running = "running",
        /// An attempt failed; back in the lane for another (after a backoff).
        Incomplete = "incomplete",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobStatus {
    /// Ended for good: no attempt will run again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// A data plane may claim it (once its backoff ran out).
    pub const CLAIMABLE: &'static [Self] = &[Self::Pending, Self::Incomplete];
}

named_enum! {
    /// What a job does.
    JobType, "job type" {
        Sync = "sync",
        Reset = "reset",
        /// Airbyte's; refused by Ferry's public API.
        Refresh = "refresh",
        Clear = "clear",
    }
}

impl JobType {
    /// Whether the job starts from no state and, once it succeeded, leaves none.
    pub const fn clears_state(self) -> bool {
        matches!(self, Self::Reset | Self::Clear)
    }
}

named_enum! {
    /// How an attempt at a job stands or ended.
    AttemptStatus, "attempt status" {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

named_enum! {
    /// A short connector command run on a data plane while an API call waits.
    TaskKind, "connector task kind" {
        Check = "check",
        Discover = "discover",
        /// A custom definition's program prints its SPEC (which fields are secret).
        Spec = "spec",
    }
}

named_enum! {
    /// How a connector task stands.
    TaskStatus, "connector task status" {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

named_enum! {
    /// What a data plane's claim may take: it claims jobs for its sync slots and connector
    /// tasks for its own, smaller set (so a hanging `check` never takes a sync's slot).
    ClaimKind, "claim kind" {
        Jobs = "jobs",
        Tasks = "tasks",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn agree<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + Serialize,
        T: for<'de> Deserialize<'de>,
        <T as FromStr>::Err: fmt::Debug,
    {
        for value in all {
            let name = value.to_string();
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::Value::String(name.clone())
            );
            assert_eq!(
                serde_json::from_value::<T>(serde_json::Value::String(name.clone())).unwrap(),
                *value
            );
            assert_eq!(name.parse::<T>().unwrap(), *value);
        }
    }

    #[test]
    fn names_agree_on_the_wire_in_the_store_and_in_parsing() {
        agree(JobStatus::ALL);
        agree(JobType::ALL);
        agree(AttemptStatus::ALL);
        agree(TaskKind::ALL);
        agree(TaskStatus::ALL);
        agree(ClaimKind::ALL);
        assert_eq!(
            JobStatus::NAMES,
            [
                "pending",
                "running",
                "incomplete",
                "succeeded",
                "failed",
                "cancelled"
            ]
        );
        assert_eq!(JobType::NAMES, ["sync", "reset", "refresh", "clear"]);
    }

    #[test]
    fn unknown_names_are_refused_with_what_is_allowed() {
        let error = "queued".parse::<JobStatus>().unwrap_err();
        assert_eq!(error.what, "job status");
        assert_eq!(
            error.to_string(),
            "unknown job status 'queued' (expected one of pending, running, incomplete, succeeded, failed, cancelled)"
        );
        assert!("Sync".parse::<JobType>().is_err());
        assert!(serde_json::from_str::<TaskKind>("\"read\"").is_err());
    }
}
