use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Epoch milliseconds as RFC 3339 in UTC (`2026-05-01T12:34:56.789Z`), as Airbyte's
/// `OffsetDateTime.toString()` prints region, data plane and job times.
pub fn rfc3339(epoch_millis: i64) -> String {
    let nanos = i128::from(epoch_millis) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| epoch_millis.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_777_638_896_789), "2026-05-01T12:34:56.789Z");
    }
}
