//! The bad-input suite (issue 11, item 12): one table of requests an attacker or a careless
//! client sends, over raw TCP, each with the status and S3 error `<Code>` AWS documents for it
//! (`ErrorResponses.html` and each operation's page). After the table the store must hold
//! exactly what the test put there, and the server must still serve a normal PUT and GET.
//!
//! Heads past hyper's own limits and ambiguous framing (Content-Length with
//! Transfer-Encoding, two different Content-Lengths) are refused below hyper
//! (`server/head_guard.rs`), so they are in the table too.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use lifeboat::auth::sigv4;

use crate::harness::{
    AK, Lifeboat, SK, code_of, header_of, md5_hex, object_bytes, signed_head, signed_request_with,
};

/// The objects the test puts before the table; nothing in the table may change them.
const KEPT: [(&str, &[u8]); 2] = [
    ("keep/one", b"0123456789"),
    ("keep/two", b"the second object"),
];

/// One bad request and AWS's answer to it. `code` is empty for a success (a Range that is
/// ignored); then `body`, when set, is the whole answer body.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    code: &'static str,
    body: Option<&'static [u8]>,
}

fn case(name: &'static str, request: Vec<u8>, status: u16, code: &'static str) -> Case {
    Case {
        name,
        request,
        status,
        code,
        body: None,
    }
}

/// Sends `request` and reads the answer. Unlike `harness::raw` a failed write is not fatal:
/// the server may answer and close before it has read all of an oversized body.
fn exchange(port: u16, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, buf[split..].to_vec())
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// A signed request with a fixed body (its SHA-256 signed) and extra headers, signed too.
fn signed(port: u16, method: &str, path: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let len = body.len().to_string();
    let names: Vec<String> = extra.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    let mut headers: Vec<(&str, &str)> = vec![("content-length", &len)];
    headers.extend(names.iter().zip(extra).map(|(k, (_, v))| (k.as_str(), *v)));
    let mut req = signed_head(port, method, path, &headers, &sigv4::sha256_hex(body)).head;
    req.extend_from_slice(body);
    req
}

/// A request with this Authorization header and a current x-amz-date.
fn with_auth(port: u16, method: &str, path: &str, auth: &str) -> Vec<u8> {
    let date = lifeboat::time::format_amz_date(now());
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-amz-date: {date}\r\n\
         x-amz-content-sha256: {}\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
        sigv4::EMPTY_SHA256
    )
    .into_bytes()
}

/// A header-signed GET whose Credential is `credential` (the signature is computed with the
/// real key and scope, so only the credential is wrong).
fn with_credential(port: u16, credential: &str) -> Vec<u8> {
    let sig = "0".repeat(64);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"
    );
    with_auth(port, "GET", "/bkt", &auth)
}

/// A presigned GET of `keep/one`, with `edit` applied to its query parameters.
fn presigned(port: u16, edit: impl Fn(&mut Vec<(String, String)>)) -> Vec<u8> {
    let secret = lifeboat::secret::Secret::new(SK);
    let url = lifeboat::auth::presign::presign_url(
        &lifeboat::auth::presign::Signer {
            access_key: AK,
            secret_key: &secret,
            region: "us-east-1",
        },
        lifeboat::auth::presign::Presign {
            method: "GET",
            scheme: "http",
            host: &format!("127.0.0.1:{port}"),
            path: "/bkt/keep/one",
            query: Vec::new(),
            headers: Vec::new(),
            expires: Duration::from_secs(300),
            now: now(),
        },
    );
    let (path, query) = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('/'))
        .map(|(_, r)| r.split_once('?').unwrap_or((r, "")))
        .expect("a URL with a path");
    let mut pairs = sigv4::parse_query(query);
    edit(&mut pairs);
    let query = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sigv4::uri_encode(k, true),
                sigv4::uri_encode(v, true)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("GET /{path}?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn set(pairs: &mut [(String, String)], name: &str, value: &str) {
    for (k, v) in pairs.iter_mut() {
        if k == name {
            *v = value.to_owned();
        }
    }
}

/// What goes wrong in an aws-chunked upload.
#[derive(Clone, Copy)]
enum ChunkFault {
    /// The first chunk's size is not hex.
    BadSize,
    /// The body ends after the data chunks, without the zero-size chunk.
    NoFinalChunk,
    /// The second chunk's signature is off by one digit.
    WrongSignature,
    /// A chunk carries more data than its size says.
    DataBeyondSize,
}

/// A STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT of two chunks to `/bkt/{key}`, with `fault`.
fn chunked_put(port: u16, key: &str, fault: ChunkFault) -> Vec<u8> {
    let chunks: [&[u8]; 3] = [&[b'a'; 8192], b"tail", b""];
    let mut body = Vec::new();
    let mut prev = String::new();
    let decoded: usize = chunks.iter().map(|c| c.len()).sum();
    let decoded = decoded.to_string();
    // The head is signed first; its signature seeds the chunk chain. The body is built with a
    // placeholder chain, then the head again with the real Content-Length.
    let build = |content_length: &str, body: &mut Vec<u8>, prev: &mut String| {
        let head = signed_head(
            port,
            "PUT",
            &format!("/bkt/{key}"),
            &[
                ("content-encoding", "aws-chunked"),
                ("content-length", content_length),
                ("x-amz-decoded-content-length", &decoded),
            ],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        );
        body.clear();
        *prev = head.seed.clone();
        for (i, c) in chunks.iter().enumerate() {
            if i == 2 && matches!(fault, ChunkFault::NoFinalChunk) {
                break;
            }
            let mut sig = head.key.sign(&sigv4::chunk_string_to_sign(
                &head.amz_date,
                &head.scope,
                prev,
                &sigv4::sha256_hex(c),
            ));
            prev.clone_from(&sig);
            if i == 1 && matches!(fault, ChunkFault::WrongSignature) {
                let last = if sig.ends_with('0') { "1" } else { "0" };
                sig.replace_range(63.., last);
            }
            let size = if i == 0 && matches!(fault, ChunkFault::BadSize) {
                "zz".to_owned()
            } else {
                format!("{:x}", c.len())
            };
            body.extend_from_slice(format!("{size};chunk-signature={sig}\r\n").as_bytes());
            body.extend_from_slice(c);
            if i == 0 && matches!(fault, ChunkFault::DataBeyondSize) {
                body.extend_from_slice(b"extra");
            }
            body.extend_from_slice(b"\r\n");
        }
        head.head
    };
    build("0", &mut body, &mut prev);
    let len = body.len().to_string();
    let mut req = build(&len, &mut body, &mut prev);
    req.extend_from_slice(&body);
    req
}

/// A STREAMING-UNSIGNED-PAYLOAD-TRAILER PUT of `hello` whose trailer claims `crc32`.
fn trailer_put(port: u16, key: &str, crc32: &str) -> Vec<u8> {
    let body = format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{crc32}\r\n\r\n");
    let len = body.len().to_string();
    let head = signed_head(
        port,
        "PUT",
        &format!("/bkt/{key}"),
        &[
            ("content-encoding", "aws-chunked"),
            ("content-length", &len),
            ("x-amz-decoded-content-length", "5"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    );
    let mut req = head.head;
    req.extend_from_slice(body.as_bytes());
    req
}

/// A STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER PUT of `hello` whose trailer signature is wrong.
fn signed_trailer_put(port: u16, key: &str) -> Vec<u8> {
    let crc = "NhCmhg=="; // CRC32 of "hello"
    let mut body = Vec::new();
    let build = |content_length: &str, body: &mut Vec<u8>| {
        let head = signed_head(
            port,
            "PUT",
            &format!("/bkt/{key}"),
            &[
                ("content-encoding", "aws-chunked"),
                ("content-length", content_length),
                ("x-amz-decoded-content-length", "5"),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        );
        body.clear();
        let mut prev = head.seed.clone();
        for c in [&b"hello"[..], b""] {
            let sig = head.key.sign(&sigv4::chunk_string_to_sign(
                &head.amz_date,
                &head.scope,
                &prev,
                &sigv4::sha256_hex(c),
            ));
            prev.clone_from(&sig);
            body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            if !c.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        let wrong = "f".repeat(64);
        body.extend_from_slice(
            format!("x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{wrong}\r\n\r\n")
                .as_bytes(),
        );
        head.head
    };
    build("0", &mut body);
    let len = body.len().to_string();
    let mut req = build(&len, &mut body);
    req.extend_from_slice(&body);
    req
}

/// A signed request whose Content-Length is `declared` while `body` is sent whole.
fn declared_length(port: u16, path: &str, body: &[u8], declared: usize, hash: &str) -> Vec<u8> {
    let len = declared.to_string();
    let mut req = signed_head(port, "PUT", path, &[("content-length", &len)], hash).head;
    req.extend_from_slice(body);
    req
}

/// A signed POST `?delete` with this body (its SHA-256 signed).
fn delete_objects(port: u16, body: &[u8]) -> Vec<u8> {
    signed(port, "POST", "/bkt?delete", body, &[])
}

fn delete_body(keys: usize) -> Vec<u8> {
    let mut xml = String::from("<Delete>");
    for i in 0..keys {
        xml.push_str(&format!("<Object><Key>keep/k{i}</Key></Object>"));
    }
    xml.push_str("</Delete>");
    xml.into_bytes()
}

/// "Billion laughs": nested entities that would expand to gigabytes.
const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"#;

fn laughs(root: &str, inner: &str) -> Vec<u8> {
    format!(
        "{LAUGHS}<{root}>{}</{root}>",
        inner.replace("VALUE", "&lol9;")
    )
    .into_bytes()
}

/// An external entity that would read a file of the server's.
fn external_entity(root: &str, inner: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE x [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n<{root}>{}</{root}>",
        inner.replace("VALUE", "&xxe;")
    )
    .into_bytes()
}

fn cases(port: u16, upload_id: &str) -> Vec<Case> {
    let p = port;
    let long_key = format!("/bkt/{}", "k".repeat(1025));
    // 513 two-byte characters: 513 characters, 1026 bytes (the limit counts bytes).
    let long_utf8_key = format!("/bkt/{}", "%C3%A9".repeat(513));
    let complete = format!("/bkt/keep/mp?uploadId={upload_id}");
    let range = |r: &str| signed(p, "GET", "/bkt/keep/one", b"", &[("Range", r)]);
    let whole = |name, request| Case {
        name,
        request,
        status: 200,
        code: "",
        body: Some(KEPT[0].1),
    };
    let tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>VALUE</Value></Tag></TagSet></Tagging>";
    let delete = "<Object><Key>VALUE</Key></Object>";
    let parts = "<Part><PartNumber>1</PartNumber><ETag>VALUE</ETag></Part>";
    vec![
        // ---- The path: strict %-decoding, UTF-8 (InvalidURI: "Couldn't parse the specified URI.")
        case("invalid UTF-8 %FF%FE", signed(p, "PUT", "/bkt/bad%FF%FEkey", b"x", &[]), 400, "InvalidURI"),
        case("non-hex escape %zz", signed(p, "PUT", "/bkt/pct%zzkey", b"x", &[]), 400, "InvalidURI"),
        case("truncated escape %4", signed(p, "GET", "/bkt/end%4", b"", &[]), 400, "InvalidURI"),
        case("overlong UTF-8 slash %C0%AF", signed(p, "PUT", "/bkt/a%C0%AFb", b"x", &[]), 400, "InvalidURI"),
        case("UTF-16 surrogate %ED%A0%80", signed(p, "PUT", "/bkt/s%ED%A0%80", b"x", &[]), 400, "InvalidURI"),
        case("bad escape in the bucket", signed(p, "GET", "/b%ZZkt/keep/one", b"", &[]), 400, "InvalidURI"),
        // ---- x-amz-copy-source
        case(
            "encoded leading slash, missing source",
            signed(p, "PUT", "/bkt/copied", b"", &[("x-amz-copy-source", "%2Fbkt%2Fmissing")]),
            404,
            "NoSuchKey",
        ),
        case(
            "copy source without a key",
            signed(p, "PUT", "/bkt/copied", b"", &[("x-amz-copy-source", "bkt")]),
            400,
            "InvalidArgument",
        ),
        case(
            "copy source with a bad escape",
            signed(p, "PUT", "/bkt/copied", b"", &[("x-amz-copy-source", "bkt/%ZZ")]),
            400,
            "InvalidArgument",
        ),
        // ---- The Authorization header
        case("bare AWS4-HMAC-SHA256", with_auth(p, "GET", "/bkt", "AWS4-HMAC-SHA256"), 400, "AuthorizationHeaderMalformed"),
        case(
            "no Credential",
            with_auth(p, "GET", "/bkt", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "a part without '='",
            with_auth(p, "GET", "/bkt", "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00"),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "Credential of three parts",
            with_credential(p, &format!("{AK}/us-east-1/aws4_request")),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "Credential date not the x-amz-date",
            with_credential(p, &format!("{AK}/20000101/us-east-1/s3/aws4_request")),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "Credential date not a date",
            with_credential(p, &format!("{AK}/2000-1-1/us-east-1/s3/aws4_request")),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "wrong service",
            with_credential(
                p,
                &format!("{AK}/{}/us-east-1/ec2/aws4_request", &lifeboat::time::format_amz_date(now())[..8]),
            ),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "wrong region",
            with_credential(
                p,
                &format!("{AK}/{}/eu-west-1/s3/aws4_request", &lifeboat::time::format_amz_date(now())[..8]),
            ),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "wrong terminator",
            with_credential(
                p,
                &format!("{AK}/{}/us-east-1/s3/aws5_request", &lifeboat::time::format_amz_date(now())[..8]),
            ),
            400,
            "AuthorizationHeaderMalformed",
        ),
        case(
            "unknown access key",
            with_credential(
                p,
                &format!("NOSUCHKEY/{}/us-east-1/s3/aws4_request", &lifeboat::time::format_amz_date(now())[..8]),
            ),
            403,
            "InvalidAccessKeyId",
        ),
        case(
            "wrong signature",
            with_credential(
                p,
                &format!("{AK}/{}/us-east-1/s3/aws4_request", &lifeboat::time::format_amz_date(now())[..8]),
            ),
            403,
            "SignatureDoesNotMatch",
        ),
        case(
            "x-amz-date not a date",
            format!(
                "GET /bkt HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nx-amz-date: yesterday\r\nx-amz-content-sha256: {}\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential={AK}/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=00\r\nConnection: close\r\n\r\n",
                sigv4::EMPTY_SHA256
            )
            .into_bytes(),
            403,
            "AccessDenied",
        ),
        case(
            "signed an hour ago",
            signed_request_with(p, "GET", "/bkt", b"", now() - Duration::from_secs(3600), &[]),
            403,
            "RequestTimeTooSkewed",
        ),
        case("no credentials at all", format!("PUT /bkt/anon HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx").into_bytes(), 403, "AccessDenied"),
        case(
            "x-amz-content-sha256 not a hash",
            {
                let mut r = signed_head(p, "PUT", "/bkt/hash", &[("content-length", "1")], "not-a-hash").head;
                r.push(b'x');
                r
            },
            400,
            "InvalidArgument",
        ),
        // ---- Presigned URLs (AuthorizationQueryParametersError)
        case("X-Amz-Expires over seven days", presigned(p, |q| set(q, "X-Amz-Expires", "604801")), 400, "AuthorizationQueryParametersError"),
        case("X-Amz-Expires negative", presigned(p, |q| set(q, "X-Amz-Expires", "-1")), 400, "AuthorizationQueryParametersError"),
        case("X-Amz-Expires not a number", presigned(p, |q| set(q, "X-Amz-Expires", "soon")), 400, "AuthorizationQueryParametersError"),
        case("X-Amz-Algorithm not SigV4", presigned(p, |q| set(q, "X-Amz-Algorithm", "AWS4-HMAC-SHA1")), 400, "AuthorizationQueryParametersError"),
        case("X-Amz-Credential missing", presigned(p, |q| q.retain(|(k, _)| k != "X-Amz-Credential")), 400, "AuthorizationQueryParametersError"),
        case(
            "presigned for another region",
            presigned(p, |q| {
                let credential = q.iter().find(|(k, _)| k == "X-Amz-Credential").map(|(_, v)| v.replace("/us-east-1/", "/eu-west-1/"));
                set(q, "X-Amz-Credential", &credential.unwrap_or_default())
            }),
            400,
            "AuthorizationQueryParametersError",
        ),
        case("X-Amz-Date not a date", presigned(p, |q| set(q, "X-Amz-Date", "20260101")), 400, "AuthorizationQueryParametersError"),
        case("presigned signature wrong", presigned(p, |q| set(q, "X-Amz-Signature", &"0".repeat(64))), 403, "SignatureDoesNotMatch"),
        // ---- Keys (KeyTooLongError past 1024 bytes)
        case("key of 1025 bytes", signed(p, "PUT", &long_key, b"x", &[]), 400, "KeyTooLongError"),
        case("key of 513 two-byte characters", signed(p, "PUT", &long_utf8_key, b"x", &[]), 400, "KeyTooLongError"),
        case("multipart upload of a long key", signed(p, "POST", &format!("{long_key}?uploads"), b"", &[]), 400, "KeyTooLongError"),
        case(
            "copy onto a long key",
            signed(p, "PUT", &long_key, b"", &[("x-amz-copy-source", "/bkt/keep/one")]),
            400,
            "KeyTooLongError",
        ),
        // ---- Headers over limits.max_header_bytes (16 KiB), within hyper's own limits
        case(
            "one 20 KiB header",
            signed(p, "GET", "/bkt/keep/one", b"", &[("x-pad", &"a".repeat(20 << 10))]),
            400,
            "RequestHeaderSectionTooLarge",
        ),
        case(
            "60 headers of 400 bytes",
            {
                let pad = "b".repeat(400);
                let names: Vec<String> = (0..60).map(|i| format!("x-pad-{i}")).collect();
                let extra: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), pad.as_str())).collect();
                signed(p, "GET", "/bkt/keep/one", b"", &extra)
            },
            400,
            "RequestHeaderSectionTooLarge",
        ),
        // ---- Past hyper's own limits (answered below hyper, see server/head_guard.rs)
        case(
            "10,000 request headers",
            format!(
                "GET /bkt/keep/one HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n{}Connection: close\r\n\r\n",
                (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            400,
            "RequestHeaderSectionTooLarge",
        ),
        case(
            "a 100 KB request line",
            format!("GET /bkt/{} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n", "k".repeat(100_000)).into_bytes(),
            400,
            "RequestHeaderSectionTooLarge",
        ),
        case(
            "Content-Length with Transfer-Encoding",
            signed(p, "PUT", "/bkt/smuggled", b"", &[("Transfer-Encoding", "chunked")]),
            400,
            "InvalidRequest",
        ),
        case(
            "two different Content-Lengths",
            signed(p, "PUT", "/bkt/smuggled", b"", &[("Content-Length", "5")]),
            400,
            "InvalidRequest",
        ),
        // ---- aws-chunked bodies
        case("chunk size not hex", chunked_put(p, "chunked", ChunkFault::BadSize), 400, "InvalidRequest"),
        case("no final chunk", chunked_put(p, "chunked", ChunkFault::NoFinalChunk), 400, "IncompleteBody"),
        case("wrong chunk signature", chunked_put(p, "chunked", ChunkFault::WrongSignature), 403, "SignatureDoesNotMatch"),
        case("chunk data beyond its size", chunked_put(p, "chunked", ChunkFault::DataBeyondSize), 400, "InvalidRequest"),
        case("trailer checksum wrong", trailer_put(p, "trailer", "AAAAAA=="), 400, "BadDigest"),
        case("trailer checksum not base64", trailer_put(p, "trailer", "!!"), 400, "InvalidRequest"),
        case("trailer signature wrong", signed_trailer_put(p, "trailer"), 403, "SignatureDoesNotMatch"),
        // ---- Content-Length against the body
        case(
            "Content-Length shorter, SHA-256 of the whole body",
            declared_length(p, "/bkt/short", b"0123456789", 4, &sigv4::sha256_hex(b"0123456789")),
            400,
            "XAmzContentSHA256Mismatch",
        ),
        case(
            "Content-Length shorter, Content-MD5 of the whole body",
            {
                use base64::Engine;
                let md5 = base64::engine::general_purpose::STANDARD
                    .encode(hex::decode(md5_hex(b"0123456789")).expect("hex"));
                let mut r = signed_head(
                    p,
                    "PUT",
                    "/bkt/short",
                    &[("content-length", "4"), ("content-md5", &md5)],
                    "UNSIGNED-PAYLOAD",
                )
                .head;
                r.extend_from_slice(b"0123456789");
                r
            },
            400,
            "BadDigest",
        ),
        case(
            "Content-Length longer: the body stalls",
            declared_length(p, "/bkt/long", b"0123", 10, "UNSIGNED-PAYLOAD"),
            400,
            "RequestTimeout",
        ),
        case(
            "no Content-Length",
            signed_head(p, "PUT", "/bkt/nolen", &[], "UNSIGNED-PAYLOAD").head,
            411,
            "MissingContentLength",
        ),
        case(
            "Content-MD5 not base64",
            signed(p, "PUT", "/bkt/md5", b"x", &[("Content-MD5", "not base64!")]),
            400,
            "InvalidDigest",
        ),
        case(
            "Content-MD5 of other bytes",
            signed(p, "PUT", "/bkt/md5", b"x", &[("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")]),
            400,
            "BadDigest",
        ),
        // ---- XML bodies
        case("DeleteObjects, unclosed XML", delete_objects(p, b"<Delete><Object><Key>keep/one</Key>"), 400, "MalformedXML"),
        case("DeleteObjects, wrong root", delete_objects(p, b"<Remove><Object><Key>keep/one</Key></Object></Remove>"), 400, "MalformedXML"),
        case("DeleteObjects, not UTF-8", delete_objects(p, b"<Delete><Object><Key>\xff\xfe</Key></Object></Delete>"), 400, "MalformedXML"),
        case("DeleteObjects, billion laughs", delete_objects(p, &laughs("Delete", delete)), 400, "MalformedXML"),
        case("DeleteObjects, external entity", delete_objects(p, &external_entity("Delete", delete)), 400, "MalformedXML"),
        case("DeleteObjects, 1001 keys", delete_objects(p, &delete_body(1001)), 400, "MalformedXML"),
        case("DeleteObjects, no keys", delete_objects(p, b"<Delete></Delete>"), 400, "MalformedXML"),
        case(
            "DeleteObjects, nested 100 deep",
            delete_objects(p, format!("<Delete>{}{}</Delete>", "<a>".repeat(100), "</a>".repeat(100)).as_bytes()),
            400,
            "MalformedXML",
        ),
        case(
            "DeleteObjects, over limits.max_xml_body",
            delete_objects(p, &delete_body(1000).into_iter().chain(std::iter::repeat_n(b' ', 1 << 20)).collect::<Vec<_>>()),
            400,
            "MaxMessageLengthExceeded",
        ),
        case("CompleteMultipartUpload, malformed", signed(p, "POST", &complete, b"<CompleteMultipartUpload><Part>", &[]), 400, "MalformedXML"),
        case(
            "CompleteMultipartUpload, billion laughs",
            signed(p, "POST", &complete, &laughs("CompleteMultipartUpload", parts), &[]),
            400,
            "MalformedXML",
        ),
        case(
            "CompleteMultipartUpload, external entity",
            signed(p, "POST", &complete, &external_entity("CompleteMultipartUpload", parts), &[]),
            400,
            "MalformedXML",
        ),
        case("PutObjectTagging, malformed", signed(p, "PUT", "/bkt/keep/one?tagging", b"<Tagging><TagSet>", &[]), 400, "MalformedXML"),
        case(
            "PutObjectTagging, billion laughs",
            signed(p, "PUT", "/bkt/keep/one?tagging", &laughs("Tagging", tagging), &[]),
            400,
            "MalformedXML",
        ),
        case(
            "PutObjectTagging, external entity",
            signed(p, "PUT", "/bkt/keep/one?tagging", &external_entity("Tagging", tagging), &[]),
            400,
            "MalformedXML",
        ),
        case(
            "CreateBucket, malformed configuration",
            signed(p, "PUT", "/newbucket", b"<CreateBucketConfiguration><LocationConstraint>", &[]),
            400,
            "MalformedXML",
        ),
        // ---- Bucket names (bucketnamingrules.html)
        case("bucket name of two characters", signed(p, "PUT", "/ab", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name of 64 characters", signed(p, "PUT", &format!("/{}", "b".repeat(64)), b"", &[]), 400, "InvalidBucketName"),
        case("bucket name with upper case", signed(p, "PUT", "/Bad_Bucket", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name with two dots", signed(p, "PUT", "/a..b", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name starting with '-'", signed(p, "PUT", "/-bucket", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name an IPv4 address", signed(p, "PUT", "/192.168.5.4", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name with the xn-- prefix", signed(p, "PUT", "/xn--bucket", b"", &[]), 400, "InvalidBucketName"),
        case("bucket name with the -s3alias suffix", signed(p, "PUT", "/bucket-s3alias", b"", &[]), 400, "InvalidBucketName"),
        // ---- Range (RFC 9110 §14.2: an unparseable Range is ignored; AWS answers 200)
        whole("Range of another unit", range("items=0-1")),
        whole("Range not numbers", range("bytes=abc")),
        whole("Range backwards", range("bytes=5-2")),
        whole("Range without '='", range("bytes 0-1")),
        case("Range beyond the object", range("bytes=1000-2000"), 416, "InvalidRange"),
        case("Range suffix of zero bytes", range("bytes=-0"), 416, "InvalidRange"),
        // ---- Methods
        case("PATCH of an object", signed(p, "PATCH", "/bkt/keep/one", b"x", &[]), 405, "MethodNotAllowed"),
    ]
}

/// Every key in `bkt` with its bytes, through a signed ListObjectsV2 and GETs.
async fn contents(s3: &aws_sdk_s3::Client) -> Vec<(String, Vec<u8>)> {
    let listed = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().expect("key").to_owned();
        let bytes = object_bytes(s3, "bkt", &key).await;
        out.push((key, bytes));
    }
    out
}

#[tokio::test]
async fn every_bad_request_gets_the_aws_status_and_code_and_changes_nothing() {
    // server.region set, so credentials for another region are refused as AWS refuses them.
    let lb = Lifeboat::start_with_config(
        "[server]\nregion = \"us-east-1\"\n[limits]\nbody_idle_seconds = 1\n",
    );
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("bucket");
    for (key, bytes) in KEPT {
        s3.put_object()
            .bucket("bkt")
            .key(key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let upload_id = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("keep/mp")
        .send()
        .await
        .expect("create upload")
        .upload_id()
        .expect("upload id")
        .to_owned();

    let table = cases(lb.port, &upload_id);
    assert!(table.len() >= 40, "{} cases", table.len());
    let mut wrong = Vec::new();
    for c in &table {
        let (status, head, body) = exchange(lb.port, &c.request);
        let code = code_of(&body);
        let body_ok = c.body.is_none_or(|want| body == want);
        if (status, code.as_str()) != (c.status, c.code) || !body_ok {
            wrong.push(format!(
                "{}: want {} {:?}, got {status} {code:?}\n{head}{}",
                c.name,
                c.status,
                c.code,
                String::from_utf8_lossy(&body[..body.len().min(400)])
            ));
        }
        if c.status >= 400 {
            assert_eq!(
                header_of(&head, "content-type").as_deref(),
                Some("application/xml"),
                "{}: an S3 error is XML",
                c.name
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        table.len(),
        wrong.join("\n")
    );

    // The store holds what it held before, byte for byte, and no bucket was created.
    let want: Vec<(String, Vec<u8>)> = KEPT
        .iter()
        .map(|(k, b)| ((*k).to_owned(), b.to_vec()))
        .collect();
    assert_eq!(contents(&s3).await, want);
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["bkt"]);
    let tags = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("keep/one")
        .send()
        .await
        .expect("tags");
    assert!(tags.tag_set().is_empty(), "no tag was set");
    let tmp = std::fs::read_dir(lb.data_dir.join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp, 0, "no temp file left behind");

    // And the server is healthy: a normal signed PUT and GET on a fresh connection each.
    let (status, _, _) = exchange(
        lb.port,
        &signed(lb.port, "PUT", "/bkt/after", b"still here", &[]),
    );
    assert_eq!(status, 200);
    let (status, _, body) = exchange(lb.port, &signed(lb.port, "GET", "/bkt/after", b"", &[]));
    assert_eq!((status, body.as_slice()), (200, &b"still here"[..]));
}

/// Every regular file and directory under `dir`.
fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let kind = entry.file_type().expect("file type");
        assert!(
            !kind.is_symlink(),
            "no symlink in the data dir: {}",
            path.display()
        );
        if kind.is_dir() {
            walk(&path, out);
        }
        out.push(path);
    }
}

/// `a/../b` and friends are ordinary S3 keys: AWS stores them as written (the key is a string,
/// not a path), and so does Lifeboat, which names blobs by id, never by key. Each is stored,
/// listed and read back under its own name, and nothing appears outside the data directory.
#[tokio::test]
async fn traversal_keys_are_plain_keys_and_nothing_escapes_the_data_dir() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("bucket");
    let parent = lb.data_dir.parent().expect("parent").to_owned();
    let before: Vec<_> = std::fs::read_dir(&parent)
        .expect("parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // (path as sent, key as stored)
    let keys = [
        ("/bkt/a/../b", "a/../b"),
        ("/bkt/../../../escaped", "../../../escaped"),
        ("/bkt/%2E%2E/%2E%2E/dots", "../../dots"),
        ("/bkt/..%2F..%2Fslash", "../../slash"),
        ("/bkt/./here", "./here"),
        ("/bkt/nul%00byte", "nul\u{0}byte"),
    ];
    for (i, (path, key)) in keys.iter().enumerate() {
        let body = format!("object {i}");
        let (status, _, resp) =
            exchange(lb.port, &signed(lb.port, "PUT", path, body.as_bytes(), &[]));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&resp));
        let got = object_bytes(&s3, "bkt", key).await;
        assert_eq!(got, body.as_bytes(), "{key:?}");
    }
    let listed = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    let mut stored: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    stored.sort_unstable();
    let mut want: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
    want.sort_unstable();
    assert_eq!(stored, want);

    let after: Vec<_> = std::fs::read_dir(&parent)
        .expect("parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(after, before, "nothing new beside the data dir");
    let data = lb.data_dir.canonicalize().expect("data dir");
    let mut files = Vec::new();
    walk(&data, &mut files);
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            !["b", "escaped", "dots", "slash", "here"].contains(&name) && !name.contains("byte"),
            "a file named after a key: {}",
            f.display()
        );
        assert!(f.canonicalize().expect("canonical").starts_with(&data));
    }
}
