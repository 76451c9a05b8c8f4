//! Bounds on secret checks. One Argon2id computation holds ~19 MiB for tens of milliseconds,
//! so a flood of token requests with wrong secrets once took the control plane from 52 MB
//! to 2 GB. Now:
//!
//! * every hash and verification takes one of a few permits, process-wide (as many as the
//!   cores, 2 to 4); a token request waits [`PERMIT_WAIT`] at most for one, else 503 with
//!   `Retry-After`;
//! * a client id whose secret was wrong [`FREE_FAILURES`] times in a row backs off: 1 s, then
//!   twice as long after each further failure, up to [`BACKOFF_MAX`], answered 429 with
//!   `Retry-After` without hashing anything (in memory, per replica; a success clears it);
//! * an unknown client id is verified against a dummy hash, so that its answer takes as long
//!   as a wrong secret's and does not tell which ids exist.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{ApiError, ApiResult};

/// Longest a token request waits for an Argon2 permit.
pub const PERMIT_WAIT: Duration = Duration::from_secs(2);
/// Wrong secrets in a row a client id may send before it backs off.
pub const FREE_FAILURES: u32 = 3;
/// The first back-off; doubled with each failure after it.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A client id not heard of for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Client ids tracked at most, so that random ids cannot grow the table without bound.
const MAX_TRACKED: usize = 10_000;

static ARGON2: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Semaphore::new(cores.clamp(2, 4))
});

/// A permit to run one Argon2 computation, however long that takes to get.
pub async fn argon2_permit() -> ApiResult<SemaphorePermit<'static>> {
    ARGON2
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("the Argon2 permits are closed".to_owned()))
}

/// A permit within `wait`, else 503 with `Retry-After`.
pub async fn argon2_permit_within(wait: Duration) -> ApiResult<SemaphorePermit<'static>> {
    match tokio::time::timeout(wait, argon2_permit()).await {
        Ok(permit) => permit,
        Err(_) => Err(ApiError::RetryLater {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            detail: "too many credential checks at once; retry shortly".to_owned(),
            retry_after_seconds: 1,
        }),
    }
}

struct Failures {
    /// Wrong secrets in a row.
    count: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// Failed token requests per client id, and the back-off they earned.
#[derive(Default)]
pub struct LoginGuard {
    failures: Mutex<HashMap<String, Failures>>,
}

/// How long a client id backs off after its `count`-th wrong secret in a row.
fn backoff(count: u32) -> Option<Duration> {
    let over = count.checked_sub(FREE_FAILURES)?;
    let factor = 1u32.checked_shl(over.min(16)).unwrap_or(u32::MAX);
    Some(BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX))
}

impl LoginGuard {
    /// 429 with `Retry-After` while the client id backs off.
    pub fn admit(&self, key: &str) -> ApiResult<()> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: &str, now: Instant) -> ApiResult<()> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(until) = failures.get(key).and_then(|entry| entry.blocked_until) else {
            return Ok(());
        };
        if until <= now {
            return Ok(());
        }
        let wait = until - now;
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(ApiError::RetryLater {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            detail: format!("too many failed attempts for this client_id; retry in {seconds} s"),
            retry_after_seconds: seconds,
        })
    }

    pub fn failed(&self, key: &str) {
        self.failed_at(key, Instant::now());
    }

    fn failed_at(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED && !failures.contains_key(key) {
            failures.retain(|_, entry| now.duration_since(entry.last) < FORGET_AFTER);
            if failures.len() >= MAX_TRACKED {
                // Full of recent failures: the permits still bound what they cost.
                return;
            }
        }
        let entry = failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            blocked_until: None,
            last: now,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        entry.blocked_until = backoff(entry.count).map(|wait| now + wait);
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn back_off_starts_after_the_free_failures_doubles_and_is_capped() {
        assert_eq!(backoff(FREE_FAILURES - 1), None);
        assert_eq!(backoff(FREE_FAILURES), Some(Duration::from_secs(1)));
        assert_eq!(backoff(FREE_FAILURES + 1), Some(Duration::from_secs(2)));
        assert_eq!(backoff(FREE_FAILURES + 3), Some(Duration::from_secs(8)));
        assert_eq!(backoff(FREE_FAILURES + 40), Some(BACKOFF_MAX));
    }

    #[test]
    fn a_client_id_backs_off_after_failures_until_the_wait_passed_or_it_succeeds() {
        let guard = LoginGuard::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            guard.failed_at("a", start);
        }
        assert!(guard.admit_at("a", start).is_ok());
        guard.failed_at("a", start);
        let refused = guard.admit_at("a", start).unwrap_err();
        assert!(matches!(
            refused,
            ApiError::RetryLater {
                retry_after_seconds: 1,
                ..
            }
        ));
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        // Others are not affected; the wait passes; a success forgets the failures.
        assert!(guard.admit_at("b", start).is_ok());
        assert!(guard.admit_at("a", start + Duration::from_secs(1)).is_ok());
        guard.succeeded("a");
        guard.failed_at("a", start);
        assert!(guard.admit_at("a", start).is_ok());
    }

    #[tokio::test]
    async fn permits_are_bounded_and_a_bounded_wait_gives_up_with_503() {
        let held: Vec<_> = {
            let mut held = Vec::new();
            while let Ok(permit) = ARGON2.try_acquire() {
                held.push(permit);
            }
            held
        };
        assert!((2..=4).contains(&held.len()), "{} permits", held.len());
        let refused = argon2_permit_within(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        drop(held);
        assert!(
            argon2_permit_within(Duration::from_millis(20))
                .await
                .is_ok()
        );
    }
}
