//! Signature Version 4 as small pure functions: canonical request, string to sign, signature.
//!
//! Implements "Signature Calculations for the Authorization Header" and "Authenticating Requests:
//! Using Query Parameters" of the S3 API reference (`sig-v4-header-based-auth.html`,
//! `sigv4-query-string-auth.html`). aws-sigv4 derives the signing key and computes the HMAC; its
//! canonical-request builder is private, so the canonical request is built here.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// AWS's UriEncode: every byte except the unreserved set `A-Za-z0-9-._~` is `%XX` (upper-case hex);
/// `/` is kept when `encode_slash` is false (object key paths).
pub fn uri_encode(input: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

/// Percent-decodes a URI component. `+` is left alone: S3 paths and SigV4 queries use `%20`.
pub fn uri_decode(input: &str) -> String {
    percent_encoding::percent_decode_str(input)
        .decode_utf8_lossy()
        .into_owned()
}

/// A request path that does not decode (`InvalidURI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the URI does not decode: a bad %-escape or invalid UTF-8")]
pub struct InvalidUri;

/// The one strict decoding of a request path, used by the router (bucket and key) and by SigV4
/// canonicalisation alike: every `%` must start two hex digits and the result must be UTF-8,
/// so no two different URIs name the same key.
pub fn decode_path(raw: &str) -> Result<String, InvalidUri> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.is_some_and(u8::is_ascii_hexdigit);
            if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                return Err(InvalidUri);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| InvalidUri)
}

/// The canonical URI of an S3 request: the decoded path, encoded once, `/` kept. The server
/// refuses a path that does not decode before it gets here (`InvalidURI`).
pub fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    uri_encode(
        &decode_path(path).unwrap_or_else(|_| uri_decode(path)),
        false,
    )
}

/// Splits a raw query into decoded `(name, value)` pairs, in order.
pub fn parse_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (uri_decode(k), uri_decode(v)),
            None => (uri_decode(pair), String::new()),
        })
        .collect()
}

/// The canonical query string: each name and value encoded, sorted by name then value.
/// `X-Amz-Signature` is left out (presigned requests sign everything but it).
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims a header value and collapses runs of spaces, as canonical headers require.
pub fn canonical_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_space = false;
    for c in value.trim().chars() {
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// Builds the canonical request. `headers` are the signed headers' `(lower-case name, value)` in
/// the order of `signed_headers`; several values of one header are already joined with `,`.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(canonical_uri);
    out.push('\n');
    out.push_str(canonical_query);
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(value));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(payload_hash);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `AWS4-HMAC-SHA256\n<amz-date>\n<scope>\n<hex sha256 of canonical request>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The credential scope `<yyyymmdd>/<region>/<service>/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// A derived signing key for one date, region and service.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(REDACTED)")
    }
}

impl SigningKey {
    pub fn derive(secret: &str, date: SystemTime, region: &str, service: &str) -> Self {
        let key = aws_sigv4::sign::v4::generate_signing_key(secret, date, region, service);
        Self(key.as_ref().to_vec())
    }

    /// Hex HMAC-SHA256 of `string_to_sign`.
    pub fn sign(&self, string_to_sign: &str) -> String {
        aws_sigv4::sign::v4::calculate_signature(&self.0, string_to_sign.as_bytes())
    }
}

/// String to sign of one aws-chunked chunk (`sigv4-streaming.html`).
pub fn chunk_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    chunk_sha256_hex: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )
}

/// String to sign of the trailing headers (`sigv4-streaming-trailers.html`).
pub fn trailer_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    trailer_sha256_hex: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{trailer_sha256_hex}"
    )
}

/// Compares two signatures in constant time.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_strictly() {
        assert_eq!(decode_path("/b/a%20b%2Bc").as_deref(), Ok("/b/a b+c"));
        assert_eq!(decode_path("/b/caf%C3%A9").as_deref(), Ok("/b/café"));
        assert_eq!(decode_path("/b/bad%FF%FEkey"), Err(InvalidUri));
        assert_eq!(decode_path("/b/pct%zzkey"), Err(InvalidUri));
        assert_eq!(decode_path("/b/end%4"), Err(InvalidUri));
        assert_eq!(decode_path("/b/end%"), Err(InvalidUri));
    }
    use proptest::prelude::*;

    // The example credentials of the AWS documentation's SigV4 examples.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn example_key() -> SigningKey {
        let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600); // 2013-05-24
        SigningKey::derive(SECRET, date, "us-east-1", "s3")
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// "Example: GET Object" of sig-v4-header-based-auth.html.
    #[test]
    fn aws_doc_example_get_object() {
        let creq = canonical_request(
            "GET",
            &canonical_uri("/test.txt"),
            "",
            &headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ]),
            "host;range;x-amz-content-sha256;x-amz-date",
            EMPTY_SHA256,
        );
        assert_eq!(
            creq,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &creq,
        );
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            example_key().sign(&sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// "Example: PUT Object" of sig-v4-header-based-auth.html.
    #[test]
    fn aws_doc_example_put_object() {
        let creq = canonical_request(
            "PUT",
            &canonical_uri("/test$file.text"),
            "",
            &headers(&[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("host", "examplebucket.s3.amazonaws.com"),
                (
                    "x-amz-content-sha256",
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                ),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ]),
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        );
        assert!(creq.starts_with("PUT\n/test%24file.text\n\n"));
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &creq,
        );
        assert!(sts.ends_with("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"));
        assert_eq!(
            example_key().sign(&sts),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    /// "Example: GET Bucket Lifecycle" and "Get Bucket (List Objects)" of the same page.
    #[test]
    fn aws_doc_example_list_objects_query() {
        let q = parse_query("max-keys=2&prefix=J");
        assert_eq!(canonical_query(&q), "max-keys=2&prefix=J");
        let creq = canonical_request(
            "GET",
            "/",
            &canonical_query(&q),
            &headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ]),
            "host;x-amz-content-sha256;x-amz-date",
            EMPTY_SHA256,
        );
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &creq,
        );
        assert_eq!(
            example_key().sign(&sts),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
        let q = parse_query("lifecycle");
        assert_eq!(canonical_query(&q), "lifecycle=");
    }

    /// The presigned URL example of sigv4-query-string-auth.html.
    #[test]
    fn aws_doc_example_presigned_get() {
        let q = parse_query(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        );
        let creq = canonical_request(
            "GET",
            &canonical_uri("/test.txt"),
            &canonical_query(&q),
            &headers(&[("host", "examplebucket.s3.amazonaws.com")]),
            "host",
            "UNSIGNED-PAYLOAD",
        );
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &creq,
        );
        assert!(sts.ends_with("3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"));
        assert_eq!(
            example_key().sign(&sts),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// The streaming example of sigv4-streaming.html: seed signature and the first chunk's.
    #[test]
    fn aws_doc_example_chunked_upload() {
        let creq = canonical_request(
            "PUT",
            "/examplebucket/chunkObject.txt",
            "",
            &headers(&[
                ("content-encoding", "aws-chunked"),
                ("content-length", "66824"),
                ("host", "s3.amazonaws.com"),
                ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-decoded-content-length", "66560"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ]),
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        );
        let scope = "20130524/us-east-1/s3/aws4_request";
        let seed = example_key().sign(&string_to_sign("20130524T000000Z", scope, &creq));
        assert_eq!(
            seed,
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );
        let chunk = vec![b'a'; 65536];
        let first = example_key().sign(&chunk_string_to_sign(
            "20130524T000000Z",
            scope,
            &seed,
            &sha256_hex(&chunk),
        ));
        assert_eq!(
            first,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        let second = example_key().sign(&chunk_string_to_sign(
            "20130524T000000Z",
            scope,
            &first,
            &sha256_hex(&[b'a'; 1024]),
        ));
        assert_eq!(
            second,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        let last = example_key().sign(&chunk_string_to_sign(
            "20130524T000000Z",
            scope,
            &second,
            EMPTY_SHA256,
        ));
        assert_eq!(
            last,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
    }

    #[test]
    fn keys_with_reserved_characters_canonicalise_as_aws_documents() {
        // Some clients send !*'() unescaped; AWS canonicalises them percent-encoded.
        assert_eq!(
            canonical_uri("/b/a%20b+c~(1)!'*"),
            "/b/a%20b%2Bc~%281%29%21%27%2A"
        );
        assert_eq!(canonical_uri("/b/a%20b%2Bc~(1)"), "/b/a%20b%2Bc~%281%29");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn constant_time_compare() {
        assert!(signatures_equal("abc", "abc"));
        assert!(!signatures_equal("abc", "abd"));
        assert!(!signatures_equal("abc", "ab"));
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(s in "\\PC*") {
            prop_assert_eq!(uri_decode(&uri_encode(&s, true)), s.clone());
            prop_assert_eq!(uri_decode(&uri_encode(&s, false)), s);
        }

        #[test]
        fn canonical_uri_is_idempotent_on_encoded_paths(s in "[a-zA-Z0-9/ _.~!*'()+-]{0,40}") {
            let once = canonical_uri(&format!("/{s}"));
            prop_assert_eq!(canonical_uri(&once), once.clone());
        }

        #[test]
        fn query_parsing_never_panics(s in "\\PC*") {
            let _ = canonical_query(&parse_query(&s));
        }
    }
}
