//! Authentication: wrong secrets, presigned URLs, aws-chunked signatures, 100-continue, errors.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use lifeboat::auth::sigv4;

use crate::harness::{AK, Lifeboat, SK, client_in_region, code, raw, setup_with_bucket};

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match_and_stores_nothing() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    let bad = lb.client_with(AK, "not-the-secret");
    let e = bad
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SignatureDoesNotMatch");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert!(
        s3.head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .is_err()
    );

    let unknown = lb.client_with("nobody", SK);
    let e = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidAccessKeyId");
}

/// As MinIO: with `server.region` unset any credential region is accepted (clients set to
/// `auto` or to the app's own AWS region work); once it is set, another region gets AWS's
/// `AuthorizationHeaderMalformed` naming the right one.
#[tokio::test]
async fn the_credential_region_is_checked_only_when_server_region_is_set() {
    let (lb, _s3) = setup_with_bucket("bkt").await;
    for region in ["auto", "eu-central-1"] {
        let other = client_in_region(&lb.endpoint, AK, SK, true, region);
        let key = format!("from-{region}");
        other
            .put_object()
            .bucket("bkt")
            .key(&key)
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{region}: {e:?}"));
    }

    let strict = Lifeboat::start_with_config("[server]\nregion = \"eu-west-1\"\n");
    let here = client_in_region(&strict.endpoint, AK, SK, true, "eu-west-1");
    here.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");
    let elsewhere = client_in_region(&strict.endpoint, AK, SK, true, "us-east-1");
    let e = elsewhere
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AuthorizationHeaderMalformed");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    let body = e
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    assert!(body.contains("<Region>eu-west-1</Region>"), "{body}");
    let message = e.as_service_error().and_then(|s| s.message());
    assert_eq!(
        message,
        Some(
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
        )
    );
}

#[tokio::test]
async fn presigned_get_and_put() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("pre signed.txt")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let (status, _, body) = lb.send("PUT", &lb.path_of(put.uri()), &[], b"hello world");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let get = s3
        .get_object()
        .bucket("bkt")
        .key("pre signed.txt")
        .presigned(cfg)
        .await
        .unwrap();
    let (status, _, body) = lb.send("GET", &lb.path_of(get.uri()), &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, b"hello world");

    // A tampered presigned URL.
    let tampered = lb
        .path_of(get.uri())
        .replace("pre%20signed", "pre%20signex");
    let (status, _, body) = lb.send("GET", &tampered, &[], b"");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn expired_presigned_url_is_access_denied() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let cfg = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(3600))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let get = s3
        .get_object()
        .bucket("bkt")
        .key("k")
        .presigned(cfg)
        .await
        .unwrap();
    let (status, _, body) = lb.send("GET", &lb.path_of(get.uri()), &[], b"");
    assert_eq!(status, 403);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("Request has expired"),
        "{body}"
    );
}

/// Signs a STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT of `chunks` and returns the raw request.
fn signed_chunked_put(port: u16, key: &str, chunks: &[&[u8]], tamper: bool) -> Vec<u8> {
    let now = SystemTime::now();
    let amz_date = lifeboat::time::format_amz_date(now);
    let date = &amz_date[..8];
    let scope = sigv4::scope(date, "us-east-1", "s3");
    let signing = sigv4::SigningKey::derive(SK, now, "us-east-1", "s3");
    let decoded: usize = chunks.iter().map(|c| c.len()).sum();
    // Body layout: each chunk, then the final zero chunk.
    let sig_len = 64;
    let mut content_length = 0;
    for c in chunks.iter().chain(std::iter::once(&&b""[..])) {
        content_length +=
            format!("{:x}", c.len()).len() + ";chunk-signature=".len() + sig_len + 2 + c.len() + 2;
    }
    let host = format!("127.0.0.1:{port}");
    let headers = vec![
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        ("content-length".to_string(), content_length.to_string()),
        ("host".to_string(), host.clone()),
        (
            "x-amz-content-sha256".to_string(),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string(),
        ),
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "x-amz-decoded-content-length".to_string(),
            decoded.to_string(),
        ),
    ];
    let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length";
    let path = format!("/bkt/{key}");
    let creq = sigv4::canonical_request(
        "PUT",
        &sigv4::canonical_uri(&path),
        "",
        &headers,
        signed,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    );
    let seed = signing.sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Encoding: aws-chunked\r\nContent-Length: {content_length}\r\n\
         x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\nx-amz-date: {amz_date}\r\n\
         x-amz-decoded-content-length: {decoded}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={seed}\r\n\r\n"
    )
    .into_bytes();
    let mut prev = seed;
    for (i, c) in chunks.iter().chain(std::iter::once(&&b""[..])).enumerate() {
        let mut sig = signing.sign(&sigv4::chunk_string_to_sign(
            &amz_date,
            &scope,
            &prev,
            &sigv4::sha256_hex(c),
        ));
        prev = sig.clone();
        if tamper && i == 1 {
            sig = sig.replace(&sig[..1], if sig.starts_with('0') { "1" } else { "0" });
        }
        req.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req
}

#[tokio::test]
async fn signed_chunked_upload_verifies_every_chunk() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    let a = vec![b'a'; 65536];
    let b = vec![b'b'; 1000];
    let (status, _, body) = raw(
        lb.port,
        &signed_chunked_put(lb.port, "chunked", &[&a, &b], false),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("chunked")
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len(), 66536);
    assert!(bytes[..65536].iter().all(|x| *x == b'a') && bytes[65536..].iter().all(|x| *x == b'b'));

    // A tampered second-chunk signature: 403, and nothing stored.
    let (status, _, body) = raw(
        lb.port,
        &signed_chunked_put(lb.port, "tampered", &[&a, &b], true),
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    assert!(
        s3.head_object()
            .bucket("bkt")
            .key("tampered")
            .send()
            .await
            .is_err()
    );
    let tmp = std::fs::read_dir(lb.data_dir.join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "no temp file may be left behind");
}

#[tokio::test]
async fn expect_100_continue_is_refused_before_the_body() {
    let (lb, _s3) = setup_with_bucket("bkt").await;
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", lb.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Anonymous and large: the answer must come without the body ever being sent.
    s.write_all(
        format!(
            "PUT /bkt/big HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n",
            lb.port
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}

#[tokio::test]
async fn errors_are_s3_xml_with_matching_request_id() {
    let (lb, _s3) = setup_with_bucket("bkt").await;
    let (status, head, body) = lb.send("GET", "/bkt/k", &[], b"");
    assert_eq!(status, 403);
    let body = String::from_utf8_lossy(&body);
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{body}"
    );
    assert!(body.contains("<Code>AccessDenied</Code>"));
    assert!(body.contains("<Resource>/bkt/k</Resource>"));

    // HEAD errors have no body.
    let (status, _, body) = lb.send("HEAD", "/bkt/k", &[], b"");
    assert_eq!(status, 403);
    assert!(body.is_empty());

    // SigV2 is checked (fidelity.rs): without a Date it is refused as AWS does.
    let (status, _, body) = lb.send(
        "GET",
        "/bkt/k",
        &[("Authorization", &format!("AWS {AK}:abc="))],
        b"",
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("valid Date or x-amz-date"));
}

#[tokio::test]
async fn unknown_operations_are_501_and_wrong_methods_405() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    let e = s3
        .get_bucket_policy()
        .bucket("bkt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NotImplemented");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(501));
    for (method, path) in [("PATCH", "/bkt/k"), ("PUT", "/")] {
        let req = crate::harness::signed_request(lb.port, method, path, b"", SystemTime::now());
        let (status, _, body) = raw(lb.port, &req);
        assert_eq!(status, 405, "{method} {path}");
        assert!(String::from_utf8_lossy(&body).contains("<Code>MethodNotAllowed</Code>"));
    }
}

#[tokio::test]
async fn date_header_is_accepted_without_x_amz_date() {
    let (lb, _s3) = setup_with_bucket("bkt").await;
    let now = SystemTime::now();
    let amz_date = lifeboat::time::format_amz_date(now);
    let http_date = chrono::DateTime::<chrono::Utc>::from(now)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let host = format!("127.0.0.1:{}", lb.port);
    let headers = vec![
        ("date".to_string(), http_date.clone()),
        ("host".to_string(), host.clone()),
        (
            "x-amz-content-sha256".to_string(),
            sigv4::EMPTY_SHA256.to_string(),
        ),
    ];
    let signed = "date;host;x-amz-content-sha256";
    let creq = sigv4::canonical_request("GET", "/", "", &headers, signed, sigv4::EMPTY_SHA256);
    let sig = sigv4::SigningKey::derive(SK, now, "us-east-1", "s3")
        .sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nDate: {http_date}\r\nx-amz-content-sha256: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={sig}\r\n\
         Connection: close\r\n\r\n",
        sigv4::EMPTY_SHA256
    );
    let (status, _, body) = raw(lb.port, req.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn skewed_clock_is_request_time_too_skewed() {
    let (lb, _s3) = setup_with_bucket("bkt").await;
    let old = SystemTime::now() - Duration::from_secs(3600);
    let req = crate::harness::signed_request(lb.port, "GET", "/", b"", old);
    let (status, _, body) = raw(lb.port, &req);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("RequestTimeTooSkewed"));
}

/// A presigned PUT must not turn into a CopyObject (or gain metadata) through headers the
/// signer never saw: S3 refuses x-amz-* headers outside SignedHeaders.
#[tokio::test]
async fn unsigned_amz_headers_are_refused() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("secret")
        .body(ByteStream::from(b"payroll".to_vec()))
        .send()
        .await
        .unwrap();
    let p = s3
        .put_object()
        .bucket("bkt")
        .key("uploads/x")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let (status, _, body) = lb.send(
        "PUT",
        &lb.path_of(p.uri()),
        &[("x-amz-copy-source", "/bkt/secret")],
        b"",
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("HeadersNotSigned") && body.contains("x-amz-copy-source"),
        "{body}"
    );
    assert!(
        s3.head_object()
            .bucket("bkt")
            .key("uploads/x")
            .send()
            .await
            .is_err()
    );

    // Header auth: an unsigned metadata header is refused too.
    let req = crate::harness::signed_request_with(
        lb.port,
        "PUT",
        "/bkt/k",
        b"x",
        SystemTime::now(),
        &[("x-amz-meta-evil", "1")],
    );
    let (status, _, _) = raw(lb.port, &req);
    assert_eq!(status, 403);
}
