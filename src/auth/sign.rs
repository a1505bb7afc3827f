//! Signing an outgoing request in its Authorization header (SigV4,
//! `sig-v4-header-based-auth.html`), with the same canonicalisation functions that verify
//! clients. The upstream client (upstream/signing.rs) and `lifeboat bench` both sign with it, so
//! what Lifeboat sends is what its own check accepts (the test below proves it).

use super::sigv4::{self, SigningKey};

/// One request to sign.
pub struct HeaderRequest<'a> {
    pub method: &'a str,
    /// The path as sent (URI-encoded).
    pub path: &'a str,
    /// The canonical query string (`sigv4::canonical_query`), as sent.
    pub canonical_query: &'a str,
    /// Every signed header as `(lower-case name, value)`, sorted by name: `host`, `x-amz-date`
    /// and `x-amz-content-sha256` among them.
    pub headers: &'a [(String, String)],
    /// The body's hex SHA-256, or `UNSIGNED-PAYLOAD` (what `x-amz-content-sha256` says).
    pub payload_hash: &'a str,
    /// The value of `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: &'a str,
}

/// The `Authorization` header's value for `r`, signed with `key` (derived for the date of
/// `amz_date`, `region` and `s3`).
pub fn authorization(
    access_key: &str,
    key: &SigningKey,
    region: &str,
    r: &HeaderRequest<'_>,
) -> String {
    let signed: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let date = r.amz_date.get(..8).unwrap_or(r.amz_date);
    let scope = sigv4::scope(date, region, "s3");
    let creq = sigv4::canonical_request(
        r.method,
        &sigv4::canonical_uri(r.path),
        r.canonical_query,
        r.headers,
        &signed,
        r.payload_hash,
    );
    let signature = key.sign(&sigv4::string_to_sign(r.amz_date, &scope, &creq));
    format!(
        "{} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}",
        sigv4::ALGORITHM
    )
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::auth::policy::{Grant, User};
    use crate::auth::{Users, accepted_key};
    use crate::secret::Secret;

    #[test]
    fn a_signed_request_passes_the_servers_own_check() {
        let user = User {
            access_key: "AK".into(),
            secret_key: Secret::new("s3cr3t"),
            admin: false,
            grants: vec![Grant::all()],
            own_buckets: false,
        };
        let users = Users::new(&[user]);
        let now = SystemTime::now();
        let amz_date = crate::time::format_amz_date(now);
        let query = vec![("list-type".to_owned(), "2".to_owned())];
        let canonical_query = sigv4::canonical_query(&query);
        let path = format!("/b/{}", sigv4::uri_encode("dir/a b+c~(1)!'*", false));
        let headers = vec![
            ("host".to_owned(), "127.0.0.1:9000".to_owned()),
            (
                "x-amz-content-sha256".to_owned(),
                sigv4::EMPTY_SHA256.to_owned(),
            ),
            ("x-amz-date".to_owned(), amz_date.clone()),
            ("x-lifeboat-write".to_owned(), "back".to_owned()),
        ];
        let key = SigningKey::derive("s3cr3t", now, "us-east-1", "s3");
        let auth = authorization(
            "AK",
            &key,
            "us-east-1",
            &HeaderRequest {
                method: "GET",
                path: &path,
                canonical_query: &canonical_query,
                headers: &headers,
                payload_hash: sigv4::EMPTY_SHA256,
                amz_date: &amz_date,
            },
        );
        let mut map = http::HeaderMap::new();
        for (k, v) in &headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        map.insert(
            "authorization",
            http::HeaderValue::from_str(&auth).expect("value"),
        );
        let check =
            |headers: &http::HeaderMap| accepted_key("GET", &path, &query, headers, &users, now);
        assert_eq!(check(&map).as_deref(), Some("AK"));
        // A signed header changed on the way is refused.
        map.insert(
            "x-lifeboat-write",
            http::HeaderValue::from_static("through"),
        );
        assert!(check(&map).is_none());
    }
}
