//! Dates and times, in the forms S3 uses: milliseconds since the epoch inside the store, the
//! HTTP date of `Last-Modified` and the conditional headers (RFC 7231), the ISO 8601 form of XML
//! bodies, and the compact `x-amz-date` form of SigV4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `Wed, 12 Oct 2009 17:50:00 GMT`, as Last-Modified carries it.
pub fn http_date(ms: i64) -> String {
    datetime(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `2009-10-12T17:50:30.000Z`, as XML bodies carry it.
pub fn iso_date(ms: i64) -> String {
    datetime(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an ISO 8601 / RFC 3339 time (`LastModified` in a listing) to milliseconds.
pub fn parse_iso_date_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Parses `20130524T000000Z`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    let secs = u64::try_from(t.and_utc().timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

pub fn format_amz_date(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Parses an HTTP date (`Fri, 24 May 2013 00:00:00 GMT`).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let t = DateTime::parse_from_rfc2822(s.trim()).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// An HTTP date in milliseconds since the epoch.
pub fn parse_http_date_ms(s: &str) -> Option<i64> {
    parse_http_date(s)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_forms_of_the_aws_documentation() {
        let ms = 1_369_353_600_000; // Fri, 24 May 2013 00:00:00 GMT
        assert_eq!(http_date(ms), "Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(iso_date(ms), "2013-05-24T00:00:00.000Z");
        assert_eq!(
            parse_http_date_ms("Fri, 24 May 2013 00:00:00 GMT"),
            Some(ms)
        );
        assert_eq!(parse_iso_date_ms("2013-05-24T00:00:00.000Z"), Some(ms));
        let t = parse_amz_date("20130524T000000Z");
        assert_eq!(t.map(format_amz_date).as_deref(), Some("20130524T000000Z"));
    }
}
