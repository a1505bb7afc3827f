//! Presigned URLs (SigV4 query authentication, `sigv4-query-string-auth.html`), built with the
//! same canonicalisation functions that verify them, so a URL Lifeboat hands out is one its own
//! check accepts. Used by the admin API (`/storage/presigned-upload`, `presigned-download`),
//! for the S3 listener or the upstream, and by `lifeboat status` to call the admin API.

use std::time::{Duration, SystemTime};

use super::sigv4::{self, SigningKey};
use crate::secret::Secret;

/// Who signs, and for which region.
pub struct Signer<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a Secret,
    pub region: &'a str,
}

/// One URL to presign.
pub struct Presign<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The authority the client will send as Host (`host[:port]`).
    pub host: &'a str,
    /// The decoded path (`/bucket/key`); it is encoded here.
    pub path: &'a str,
    /// Query parameters besides the X-Amz-* ones (signed too).
    pub query: Vec<(String, String)>,
    /// Headers the client must send exactly as given (lower-case names), signed beside `host`.
    pub headers: Vec<(String, String)>,
    pub expires: Duration,
    pub now: SystemTime,
}

/// The presigned URL.
pub fn presign_url(signer: &Signer<'_>, p: Presign<'_>) -> String {
    let amz_date = crate::time::format_amz_date(p.now);
    let scope = sigv4::scope(&amz_date[..8], signer.region, "s3");
    let mut headers: Vec<(String, String)> = p
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    headers.push(("host".into(), p.host.to_owned()));
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let mut query = p.query;
    query.extend([
        ("X-Amz-Algorithm".to_owned(), sigv4::ALGORITHM.to_owned()),
        (
            "X-Amz-Credential".to_owned(),
            format!("{}/{scope}", signer.access_key),
        ),
        ("X-Amz-Date".to_owned(), amz_date.clone()),
        ("X-Amz-Expires".to_owned(), p.expires.as_secs().to_string()),
        ("X-Amz-SignedHeaders".to_owned(), signed.clone()),
    ]);
    let canonical_query = sigv4::canonical_query(&query);
    let uri = sigv4::uri_encode(p.path, false);
    let creq = sigv4::canonical_request(
        p.method,
        &uri,
        &canonical_query,
        &headers,
        &signed,
        "UNSIGNED-PAYLOAD",
    );
    let key = SigningKey::derive(signer.secret_key.expose(), p.now, signer.region, "s3");
    let signature = key.sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    format!(
        "{}://{}{uri}?{canonical_query}&X-Amz-Signature={signature}",
        p.scheme, p.host
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::{Grant, User};
    use crate::auth::{Users, accepted_key};

    #[test]
    fn a_presigned_url_passes_the_servers_own_check() {
        let secret = Secret::new("s3cr3t");
        let user = User {
            access_key: "AK".into(),
            secret_key: secret.clone(),
            admin: false,
            grants: vec![Grant::all()],
            own_buckets: false,
        };
        let users = Users::new(&[user]);
        let now = SystemTime::now();
        let url = presign_url(
            &Signer {
                access_key: "AK",
                secret_key: &secret,
                region: "us-east-1",
            },
            Presign {
                method: "PUT",
                scheme: "http",
                host: "127.0.0.1:9000",
                path: "/b/uploads/2026/12/x-a b+c.png",
                query: Vec::new(),
                headers: vec![
                    ("Content-Type".into(), "image/png".into()),
                    ("content-length".into(), "5".into()),
                ],
                expires: Duration::from_secs(60),
                now,
            },
        );
        let uri: http::Uri = url.parse().expect("a valid URI");
        let query = crate::auth::sigv4::parse_query(uri.query().unwrap_or(""));
        let mut headers = http::HeaderMap::new();
        headers.insert("host", http::HeaderValue::from_static("127.0.0.1:9000"));
        headers.insert("content-type", http::HeaderValue::from_static("image/png"));
        headers.insert("content-length", http::HeaderValue::from_static("5"));
        let req = |headers: &http::HeaderMap| {
            accepted_key("PUT", uri.path(), &query, headers, &users, now)
        };
        assert_eq!(req(&headers).as_deref(), Some("AK"));
        // A body of another length changes a signed header.
        headers.insert("content-length", http::HeaderValue::from_static("6"));
        assert!(req(&headers).is_none());
    }
}
