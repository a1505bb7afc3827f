//! SigV4 verification as the server runs it on every request (`auth::authenticate`): a
//! header-signed GetObject and PutObject, shaped as the SDKs send them, and a presigned
//! GetObject from `auth::presign::presign_url`. Each is signed once with a known secret and
//! verified every iteration.
//!
//! `authenticate` derives the signing key per request (four HMAC-SHA256s over the secret,
//! date, region and service), so that cost is inside each figure; `signing_key_derive` is it
//! alone, to show how much a key cached per day and region would save.
//!
//! `cargo bench --bench sigv4 [-- --quick]`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue};
use lifeboat::auth::policy::{Grant, User};
use lifeboat::auth::presign::{Presign, Signer, presign_url};
use lifeboat::auth::sigv4::{self, SigningKey};
use lifeboat::auth::{AuthSettings, Authenticated, RequestParts, Users, authenticate};
use lifeboat::secret::Secret;
use lifeboat::time::format_amz_date;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const HOST: &str = "127.0.0.1:9000";
const KEY_PATH: &str = "/photos/2026/12/02/IMG_0042.jpg";

/// 2026-12-02T12:00:00Z: when every request is signed and verified.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_212_800)
}

fn users() -> Users {
    Users::new(&[User {
        access_key: ACCESS_KEY.into(),
        secret_key: Secret::new(SECRET),
        admin: false,
        grants: vec![Grant::all()],
        own_buckets: false,
    }])
}

fn settings() -> AuthSettings {
    AuthSettings {
        clock_skew: Duration::from_secs(900),
        region: None,
        sigv2: false,
    }
}

fn header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{name}: {e}"));
    headers.insert(HeaderName::from_static(name), value);
}

/// Signs `headers` (every one but `user-agent`, as the SDKs do) with the crate's own SigV4
/// functions, and adds the Authorization header.
fn sign_headers(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &mut HeaderMap,
    payload_hash: &str,
) {
    let amz_date = format_amz_date(now());
    header(headers, "host", HOST);
    header(headers, "x-amz-date", &amz_date);
    header(headers, "x-amz-content-sha256", payload_hash);
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != "user-agent")
        .map(|(k, v)| {
            let v = v.to_str().unwrap_or_else(|e| panic!("{k}: {e}"));
            (k.as_str().to_owned(), v.to_owned())
        })
        .collect();
    signed.sort();
    let names: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
    let names = names.join(";");
    let creq = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(path),
        &sigv4::canonical_query(query),
        &signed,
        &names,
        payload_hash,
    );
    let scope = sigv4::scope(&amz_date[..8], REGION, "s3");
    let key = SigningKey::derive(SECRET, now(), REGION, "s3");
    let signature = key.sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    header(
        headers,
        "authorization",
        &format!(
            "{} Credential={ACCESS_KEY}/{scope}, SignedHeaders={names}, Signature={signature}",
            sigv4::ALGORITHM
        ),
    );
}

/// A GetObject as aws-sdk-s3 sends it over plain HTTP.
fn get_object_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    header(
        &mut h,
        "user-agent",
        "aws-sdk-rust/1.157.0 os/linux lang/rust/1.95.0",
    );
    header(
        &mut h,
        "x-amz-user-agent",
        "aws-sdk-rust/1.157.0 api/s3/1.157.0",
    );
    header(
        &mut h,
        "amz-sdk-invocation-id",
        "5f2b6e0c-8a41-4c8e-9d7b-1f3a2c4e6b80",
    );
    header(&mut h, "amz-sdk-request", "attempt=1; max=3");
    sign_headers("GET", KEY_PATH, &[], &mut h, sigv4::EMPTY_SHA256);
    h
}

/// A 4 KiB PutObject as boto3 sends it: a signed payload hash, Content-MD5 and a CRC32.
fn put_object_headers() -> HeaderMap {
    let body = vec![b'x'; 4096];
    let mut h = HeaderMap::new();
    header(
        &mut h,
        "user-agent",
        "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux",
    );
    header(&mut h, "content-type", "image/jpeg");
    header(&mut h, "content-length", "4096");
    header(&mut h, "content-md5", "1UE0wCdYHqbAQlSrV3RjdA==");
    header(&mut h, "x-amz-checksum-crc32", "bMxqVw==");
    header(&mut h, "x-amz-sdk-checksum-algorithm", "CRC32");
    header(&mut h, "x-amz-meta-camera", "pixel-9");
    header(
        &mut h,
        "amz-sdk-invocation-id",
        "0d7c1d7e-3c55-4bb9-a0f2-2b8f5e1c9a11",
    );
    header(&mut h, "amz-sdk-request", "attempt=1");
    sign_headers("PUT", KEY_PATH, &[], &mut h, &sigv4::sha256_hex(&body));
    h
}

fn parts<'a>(
    method: &'a str,
    raw_path: &'a str,
    query: &'a [(String, String)],
    headers: &'a HeaderMap,
) -> RequestParts<'a> {
    RequestParts {
        method,
        raw_path,
        query,
        headers,
        authority: None,
        body_sha256: None,
        virtual_bucket: None,
    }
}

fn verify(req: &RequestParts<'_>, users: &Users, settings: &AuthSettings) -> Authenticated {
    authenticate(req, users, settings, now() + Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the fixture must verify: {e:?}"))
}

fn bench_sigv4(c: &mut Criterion) {
    let (users, settings) = (users(), settings());
    let mut group = c.benchmark_group("sigv4");

    let get = get_object_headers();
    let req = parts("GET", KEY_PATH, &[], &get);
    verify(&req, &users, &settings);
    group.bench_function("header_get_object", |b| {
        b.iter(|| verify(black_box(&req), &users, &settings));
    });

    let put = put_object_headers();
    let req = parts("PUT", KEY_PATH, &[], &put);
    verify(&req, &users, &settings);
    group.bench_function("header_put_object", |b| {
        b.iter(|| verify(black_box(&req), &users, &settings));
    });

    let secret = Secret::new(SECRET);
    let url = presign_url(
        &Signer {
            access_key: ACCESS_KEY,
            secret_key: &secret,
            region: REGION,
        },
        Presign {
            method: "GET",
            scheme: "http",
            host: HOST,
            path: KEY_PATH,
            query: Vec::new(),
            headers: Vec::new(),
            expires: Duration::from_secs(3600),
            now: now(),
        },
    );
    let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    // The server parses the query once per request, before routing; that is in the router
    // bench, not here.
    let query = sigv4::parse_query(uri.query().unwrap_or(""));
    let mut presigned = HeaderMap::new();
    header(&mut presigned, "host", HOST);
    header(&mut presigned, "user-agent", "curl/8.14.1");
    let req = parts("GET", uri.path(), &query, &presigned);
    verify(&req, &users, &settings);
    group.bench_function("presigned_get_object", |b| {
        b.iter(|| verify(black_box(&req), &users, &settings));
    });

    group.bench_function("signing_key_derive", |b| {
        b.iter(|| SigningKey::derive(black_box(SECRET), now(), REGION, "s3"));
    });
    group.finish();
}

criterion_group!(benches, bench_sigv4);
criterion_main!(benches);
