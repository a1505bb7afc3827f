//! The conditional request headers (RFC 7232 as S3 applies them, `API_GetObject.html`): the
//! one evaluator that GetObject and HeadObject (local or from the upstream) and CopyObject's
//! `x-amz-copy-source-if-*` all use. A leaf module: it depends on nothing but the header map.

use http::HeaderMap;

use crate::time::parse_http_date;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == etag
    })
}

/// The outcome of the conditional headers.
#[derive(Debug, PartialEq, Eq)]
pub enum Condition {
    Proceed,
    NotModified,
    PreconditionFailed,
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in RFC 7232
/// order: If-Match overrides If-Unmodified-Since; If-None-Match overrides If-Modified-Since.
pub fn evaluate_conditions(headers: &HeaderMap, etag: &str, last_modified_ms: i64) -> Condition {
    evaluate_prefixed(headers, "", etag, last_modified_ms)
}

/// As `evaluate_conditions`, for headers named `<prefix>if-match` and so on (CopyObject's
/// `x-amz-copy-source-if-*` follow the same rules).
pub fn evaluate_prefixed(
    headers: &HeaderMap,
    prefix: &str,
    etag: &str,
    last_modified_ms: i64,
) -> Condition {
    let lm_secs = last_modified_ms.div_euclid(1000);
    let get = |name: &str| header(headers, &format!("{prefix}{name}"));
    let since = |name: &str| {
        get(name)
            .and_then(parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    };
    match get("if-match") {
        Some(v) => {
            if !etag_matches(v, etag) {
                return Condition::PreconditionFailed;
            }
        }
        None => {
            if let Some(t) = since("if-unmodified-since")
                && lm_secs > t
            {
                return Condition::PreconditionFailed;
            }
        }
    }
    match get("if-none-match") {
        Some(v) => {
            if etag_matches(v, etag) {
                return Condition::NotModified;
            }
        }
        None => {
            if let Some(t) = since("if-modified-since")
                && lm_secs <= t
            {
                return Condition::NotModified;
            }
        }
    }
    Condition::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn conditional_precedence_as_aws_documents() {
        let lm = 1_369_353_600_000; // Fri, 24 May 2013 00:00:00 GMT
        let before = "Thu, 23 May 2013 00:00:00 GMT";
        let after = "Sat, 25 May 2013 00:00:00 GMT";
        let ev = |p: &[(&'static str, &str)]| evaluate_conditions(&h(p), "abc", lm);
        assert_eq!(ev(&[]), Condition::Proceed);
        assert_eq!(ev(&[("if-match", "\"abc\"")]), Condition::Proceed);
        assert_eq!(ev(&[("if-match", "\"x\"")]), Condition::PreconditionFailed);
        // If-Match true and If-Unmodified-Since false: 200.
        assert_eq!(
            ev(&[("if-match", "\"abc\""), ("if-unmodified-since", before)]),
            Condition::Proceed
        );
        assert_eq!(
            ev(&[("if-unmodified-since", before)]),
            Condition::PreconditionFailed
        );
        // If-None-Match false and If-Modified-Since true: 304.
        assert_eq!(
            ev(&[("if-none-match", "\"abc\""), ("if-modified-since", before)]),
            Condition::NotModified
        );
        assert_eq!(
            ev(&[("if-none-match", "\"x\""), ("if-modified-since", after)]),
            Condition::Proceed
        );
        assert_eq!(ev(&[("if-modified-since", after)]), Condition::NotModified);
        assert_eq!(ev(&[("if-modified-since", before)]), Condition::Proceed);
        assert_eq!(ev(&[("if-none-match", "*")]), Condition::NotModified);
    }
}
