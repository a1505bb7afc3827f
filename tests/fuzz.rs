//! Fuzz targets (issue 11, item 13) for the parsers that read what a client sends before it is
//! authenticated: the aws-chunked decoder, the XML bodies, the Authorization header and the
//! presigned queries (SigV4 and SigV2), the URI decoder and the router.
//!
//! The engine is proptest, already a dev-dependency, on the stable toolchain: `cargo fuzz`
//! needs nightly, and proptest's generators let each target mix arbitrary bytes with inputs
//! shaped like the real thing (a chunked body, an XML tree, a signed URL), which reach the deep
//! states that random bytes almost never do. Each target must never panic, must answer every
//! case within `SLOW`, and must keep its invariant.
//!
//! `LIFEBOAT_FUZZ_CASES` sets the cases per round (256 by default, so `cargo test` stays fast);
//! `LIFEBOAT_FUZZ_SECONDS` repeats rounds, each with a fresh seed, until that many seconds have
//! passed. `fuzz/run` runs every target that way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use lifeboat::auth::chunked::{ChunkDecoder, ChunkError, ChunkSigner};
use lifeboat::auth::policy::{Grant, User};
use lifeboat::auth::{self, AuthSettings, RequestParts, Users, sigv2, sigv4};
use lifeboat::secret::Secret;
use lifeboat::{router, xml};

/// One case taking longer than this counts as a hang.
const SLOW: Duration = Duration::from_secs(2);

/// Runs `check` on values of `strategy`: one round of `LIFEBOAT_FUZZ_CASES` cases, or rounds
/// until `LIFEBOAT_FUZZ_SECONDS` have passed.
fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = env("LIFEBOAT_FUZZ_CASES").unwrap_or(256) as u32;
    let deadline = env("LIFEBOAT_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |value| {
            let t = Instant::now();
            check(value)?;
            prop_assert!(t.elapsed() < SLOW, "one case took {:?}", t.elapsed());
            Ok(())
        });
        if let Err(e) = result {
            panic!("fuzz target {name} failed (in the round after {total} cases): {e}");
        }
        total += u64::from(cases);
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {total} cases in {:.1}s, no failure",
        started.elapsed().as_secs_f64()
    );
}

// ---- aws-chunked ----------------------------------------------------------------------------

/// Feeds `body` in frames of the given sizes (cycled), then ends it.
fn decode(mut d: ChunkDecoder, body: &[u8], frames: &[usize]) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let n = frames
            .get(i % frames.len().max(1))
            .copied()
            .unwrap_or(body.len())
            .max(1);
        let end = (at + n).min(body.len());
        d.push(Bytes::copy_from_slice(&body[at..end]), &mut out)?;
        at = end;
        i += 1;
    }
    d.finish()?;
    let data = out.concat();
    assert_eq!(
        data.len() as u64,
        d.decoded_len(),
        "decoded_len counts what was handed out"
    );
    Ok(data)
}

fn signer() -> ChunkSigner {
    let time = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    ChunkSigner {
        key: sigv4::SigningKey::derive("fuzz-secret", time, "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        previous: "0".repeat(64),
    }
}

/// A well-formed body of `chunks`, signed with `signer()` when `signed`, and where its final
/// zero-size chunk starts.
fn chunked_body(chunks: &[Vec<u8>], signed: bool, trailer: Option<&str>) -> (Vec<u8>, usize) {
    let s = signer();
    let mut prev = s.previous.clone();
    let mut body = Vec::new();
    let empty = Vec::new();
    let mut last = 0;
    for c in chunks
        .iter()
        .filter(|c| !c.is_empty())
        .chain(std::iter::once(&empty))
    {
        last = body.len();
        body.extend_from_slice(format!("{:x}", c.len()).as_bytes());
        if signed {
            let sig = s.key.sign(&sigv4::chunk_string_to_sign(
                &s.amz_date,
                &s.scope,
                &prev,
                &sigv4::sha256_hex(c),
            ));
            body.extend_from_slice(format!(";chunk-signature={sig}").as_bytes());
            prev = sig;
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(c);
        if !c.is_empty() {
            body.extend_from_slice(b"\r\n");
        }
    }
    if let Some(t) = trailer {
        body.extend_from_slice(t.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"\r\n");
    (body, last)
}

fn frames() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..6)
}

fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..5)
}

/// Arbitrary bytes: never more out than in, and the same answer however the body is framed.
#[test]
fn fuzz_chunked_decoder_arbitrary_bytes() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        // Bytes drawn from the decoder's own alphabet reach its states far more often.
        prop::collection::vec(
            prop::sample::select(b"0123456789abcdefABCDEF;=\r\n:x-chunksignature".to_vec()),
            0..600
        ),
    ];
    fuzz(
        "chunked_decoder_arbitrary_bytes",
        (bytes, frames(), any::<bool>()),
        |(body, frames, signed)| {
            let make = || ChunkDecoder::new(signed.then(signer), signed);
            let whole = decode(make(), &body, &[body.len().max(1)]);
            let split = decode(make(), &body, &frames);
            if let Ok(d) = &whole {
                prop_assert!(d.len() <= body.len());
            }
            prop_assert_eq!(whole, split, "framing changed the answer");
            Ok(())
        },
    );
}

/// Well-formed bodies decode to their data; with one byte changed, a signed body either fails
/// or still decodes to exactly the signed data.
#[test]
fn fuzz_chunked_decoder_well_formed_and_mutated() {
    fuzz(
        "chunked_decoder_well_formed_and_mutated",
        (
            chunks(),
            any::<bool>(),
            frames(),
            any::<prop::sample::Index>(),
            1u8..=255,
        ),
        |(chunks, signed, frames, at, flip)| {
            let data: Vec<u8> = chunks.concat();
            let trailer = (!signed).then_some("x-amz-checksum-crc32:AAAAAA==");
            let (body, last) = chunked_body(&chunks, signed, trailer);
            let make = || ChunkDecoder::new(signed.then(signer), false);
            prop_assert_eq!(decode(make(), &body, &frames), Ok(data.clone()));
            let mut bad = body.clone();
            let i = at.index(bad.len());
            bad[i] ^= flip;
            let got = decode(make(), &bad, &frames);
            if let Ok(d) = &got {
                prop_assert!(d.len() <= bad.len());
                if signed {
                    prop_assert_eq!(d, &data, "a signed body decoded to other data");
                }
            }
            // Cut short anywhere before its final chunk, a body is never complete. (Cut after
            // it, the data is whole; a declared trailer that is missing is the handler's to
            // refuse.)
            let cut = at.index(last + 1);
            let short = decode(make(), &body[..cut], &frames);
            prop_assert!(
                short.is_err(),
                "a body cut at {} of {} decoded",
                cut,
                body.len()
            );
            Ok(())
        },
    );
}

// ---- XML ------------------------------------------------------------------------------------

fn depth(e: &xml::Element) -> usize {
    1 + e.children.iter().map(depth).max().unwrap_or(0)
}

fn check_xml(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(root) = xml::parse(body) {
        prop_assert!(depth(&root) <= lifeboat::limits::MAX_XML_DEPTH + 1);
    }
    let _ = xml::parse_location_constraint(body);
    let _ = lifeboat::cors::CorsConfig::parse_xml(body);
    let _ = lifeboat::handlers::headers::parse_tag_set(body);
    Ok(())
}

/// Arbitrary bytes and XML-shaped text (tags, entities, CDATA, DOCTYPEs, declarations).
#[test]
fn fuzz_xml_bodies() {
    let shaped = "(<[A-Za-z]{1,4}>|</[A-Za-z]{1,4}>|<[A-Za-z]{1,3}/>|&[a-z#x0-9]{0,7};|<!\\[CDATA\\[[^\\]]{0,5}\\]\\]>|<!DOCTYPE[^>]{0,30}>|<!ENTITY [a-z]{1,3} \"[^\"]{0,9}\">|<\\?xml[^>]{0,12}\\?>|<!--[^-]{0,6}-->|[^<&]{0,8}){0,40}";
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        shaped.prop_map(String::into_bytes),
        // S3's own shapes, with the tags in any order.
        "(<Delete>|<Object>|<Key>|</Key>|</Object>|</Delete>|<Tagging>|<TagSet>|<Tag>|<Value>|</Value>|</Tag>|</TagSet>|</Tagging>|<CORSConfiguration>|<CORSRule>|<AllowedOrigin>|</AllowedOrigin>|<AllowedMethod>|</AllowedMethod>|</CORSRule>|</CORSConfiguration>|[a-zA-Z0-9 *]{0,5}){0,40}"
            .prop_map(String::into_bytes),
    ];
    fuzz("xml_bodies", bytes, |body| check_xml(&body));
}

fn tree() -> impl Strategy<Value = xml::Element> {
    let name = "[A-Za-z][A-Za-z0-9]{0,7}";
    let leaf = (name, "\\PC{0,20}").prop_map(|(name, text)| xml::Element {
        name,
        text,
        children: Vec::new(),
    });
    leaf.prop_recursive(6, 40, 5, move |inner| {
        (name, prop::collection::vec(inner, 1..5)).prop_map(|(name, children)| xml::Element {
            name,
            text: String::new(),
            children,
        })
    })
}

fn write(w: &mut xml::XmlWriter, e: &xml::Element) {
    if e.children.is_empty() {
        w.element(&e.name, &e.text);
    } else {
        w.open(&e.name);
        for c in &e.children {
            write(w, c);
        }
        w.close(&e.name);
    }
}

/// What Lifeboat writes, it reads back the same (names, text with every escape, nesting).
#[test]
fn fuzz_xml_round_trip() {
    fuzz("xml_round_trip", tree(), |root| {
        let mut w = xml::XmlWriter::new();
        w.root(&root.name);
        if root.children.is_empty() {
            w.text(&root.text);
        }
        for c in &root.children {
            write(&mut w, c);
        }
        w.close(&root.name);
        let text = w.finish();
        prop_assert_eq!(xml::parse(text.as_bytes()), Ok(root), "{}", text);
        Ok(())
    });
}

// ---- Authorization and presigned queries ------------------------------------------------------

const AK: &str = "fuzz-access-key";
const SK: &str = "fuzz-secret-key";

fn users() -> Users {
    Users::new(&[User {
        access_key: AK.into(),
        secret_key: Secret::new(SK),
        admin: false,
        grants: vec![Grant::all()],
        own_buckets: false,
    }])
}

fn settings() -> AuthSettings {
    AuthSettings {
        clock_skew: Duration::from_secs(900),
        region: Some("us-east-1".into()),
        sigv2: true,
    }
}

fn headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    h
}

fn authenticate(
    method: &str,
    path: &str,
    query: &[(String, String)],
    h: &HeaderMap,
    now: SystemTime,
) -> Result<auth::Authenticated, lifeboat::error::S3Error> {
    auth::authenticate(
        &RequestParts {
            method,
            raw_path: path,
            query,
            headers: h,
            authority: Some("127.0.0.1:9000"),
            body_sha256: None,
            virtual_bucket: None,
        },
        &users(),
        &settings(),
        now,
    )
}

fn auth_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,120}",
        "AWS4-HMAC-SHA256( |,)((Credential|SignedHeaders|Signature|X)=[a-zA-Z0-9/;_=-]{0,40}(,| |, )?){0,5}",
        "AWS (fuzz-access-key|[a-z]{0,8}):[A-Za-z0-9+/=]{0,30}",
        "AWS4-HMAC-SHA256 Credential=fuzz-access-key/2013052[0-9]/(us-east-1|eu-west-1)/(s3|ec2)/aws4_request, SignedHeaders=(host|host;x-amz-date|x-amz-date|HOST|), Signature=[0-9a-f]{64}",
    ]
}

/// Arbitrary Authorization headers and dates: never a panic, never accepted (nothing here
/// carries a valid signature), and every parsed part is a piece of the header.
#[test]
fn fuzz_authorization_header() {
    let date = prop_oneof!["\\PC{0,20}", "2013052[0-9]T[0-9]{6}Z"];
    let sha = prop_oneof![
        Just(sigv4::EMPTY_SHA256.to_owned()),
        Just("UNSIGNED-PAYLOAD".to_owned()),
        Just("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned()),
        "\\PC{0,70}",
    ];
    fuzz(
        "authorization_header",
        (auth_value(), date, sha),
        |(value, date, sha)| {
            if let Ok(a) = auth::parse_authorization(&value) {
                for part in [a.credential, a.signed_headers, a.signature] {
                    prop_assert!(value.contains(part) && !part.contains(','));
                }
            }
            let _ = sigv2::parse_authorization(&value);
            let h = headers(&[
                ("authorization".into(), value),
                ("x-amz-date".into(), date),
                ("x-amz-content-sha256".into(), sha),
                ("host".into(), "127.0.0.1:9000".into()),
            ]);
            let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
            prop_assert!(authenticate("GET", "/bkt/key", &[], &h, now).is_err());
            Ok(())
        },
    );
}

fn query_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("X-Amz-Algorithm".to_owned()),
        Just("X-Amz-Credential".to_owned()),
        Just("X-Amz-Date".to_owned()),
        Just("X-Amz-Expires".to_owned()),
        Just("X-Amz-SignedHeaders".to_owned()),
        Just("X-Amz-Signature".to_owned()),
        Just("AWSAccessKeyId".to_owned()),
        Just("Signature".to_owned()),
        Just("Expires".to_owned()),
        "\\PC{0,10}",
    ];
    let value = prop_oneof![
        "\\PC{0,40}",
        "-?[0-9]{0,12}",
        Just("AWS4-HMAC-SHA256".to_owned()),
        "fuzz-access-key/2013052[0-9]/us-east-1/s3/aws4_request",
        "2013052[0-9]T[0-9]{6}Z",
    ];
    prop::collection::vec((name, value), 0..8)
}

/// Arbitrary presigned queries (SigV4 and SigV2): refused without a panic. A URL Lifeboat
/// signs is accepted; with one parameter's value changed, it is refused.
#[test]
fn fuzz_presigned_query() {
    let valid = (
        "/[a-z]{3,8}/\\PC{1,30}",
        1u64..=604_800,
        any::<prop::sample::Index>(),
        "\\PC{1,12}",
    );
    fuzz(
        "presigned_query",
        (query_pairs(), valid),
        |(query, (path, expires, which, replacement))| {
            let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
            let h = headers(&[("host".into(), "127.0.0.1:9000".into())]);
            prop_assert!(authenticate("GET", "/bkt/key", &query, &h, now).is_err());

            let secret = Secret::new(SK);
            let url = auth::presign::presign_url(
                &auth::presign::Signer {
                    access_key: AK,
                    secret_key: &secret,
                    region: "us-east-1",
                },
                auth::presign::Presign {
                    method: "GET",
                    scheme: "http",
                    host: "127.0.0.1:9000",
                    path: &path,
                    query: Vec::new(),
                    headers: Vec::new(),
                    expires: Duration::from_secs(expires),
                    now,
                },
            );
            let rest = url.strip_prefix("http://127.0.0.1:9000").expect("our host");
            let (raw_path, raw_query) = rest.split_once('?').expect("a query");
            let mut q = sigv4::parse_query(raw_query);
            let ok = authenticate("GET", raw_path, &q, &h, now);
            prop_assert!(ok.is_ok(), "{url}: {:?}", ok.err());
            let i = which.index(q.len());
            if q[i].1 != replacement {
                q[i].1 = replacement;
                prop_assert!(authenticate("GET", raw_path, &q, &h, now).is_err());
            }
            Ok(())
        },
    );
}

// ---- The URI decoder ------------------------------------------------------------------------

/// Paths made of %-escapes (good, bad, truncated) and ordinary characters.
fn raw_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "(%[0-9A-Fa-f]{2}|%[0-9A-Za-z]{0,2}|/|[a-z.~_-]|\\PC){0,30}",
        // Valid UTF-8 sequences and broken ones, escaped.
        "(%[C-Fc-f][0-9A-F]|%[89AB][0-9A-F]|%F0%9F%98%80|%E2%82%AC|[a-z]|/){0,20}",
    ]
}

/// decode_path: what it accepts re-encodes to an equivalent path (the same key), what it
/// refuses carries a `%`, and any string survives encode then decode.
#[test]
fn fuzz_uri_decoder() {
    fuzz("uri_decoder", (raw_path(), "\\PC{0,40}"), |(raw, s)| {
        match sigv4::decode_path(&raw) {
            Ok(d) => {
                let encoded = sigv4::uri_encode(&d, false);
                prop_assert_eq!(sigv4::decode_path(&encoded), Ok(d.clone()));
                prop_assert_eq!(sigv4::canonical_uri(&raw), sigv4::canonical_uri(&encoded));
            }
            Err(_) => {
                prop_assert!(raw.contains('%'));
                let _ = sigv4::canonical_uri(&raw);
            }
        }
        for slash in [false, true] {
            prop_assert_eq!(
                sigv4::decode_path(&sigv4::uri_encode(&s, slash)),
                Ok(s.clone())
            );
        }
        let _ = sigv4::parse_query(&raw);
        Ok(())
    });
}

// ---- The router -----------------------------------------------------------------------------

/// Any method, host, path, query and copy source: the router answers an operation or an S3
/// error, and an operation names the bucket the request addressed.
#[test]
fn fuzz_router() {
    let method = prop::sample::select(vec![
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
    ]);
    let host = prop_oneof![
        "\\PC{0,30}",
        "([a-z0-9.-]{0,12}\\.)?s3\\.localhost(:[0-9]{1,5})?",
        "\\[[0-9a-f:]{0,10}\\](:[0-9]{0,5})?",
    ];
    let key = prop_oneof![
        Just("uploads".to_owned()),
        Just("uploadId".to_owned()),
        Just("partNumber".to_owned()),
        Just("delete".to_owned()),
        Just("tagging".to_owned()),
        Just("list-type".to_owned()),
        Just("max-keys".to_owned()),
        Just("versionId".to_owned()),
        Just("versions".to_owned()),
        Just("acl".to_owned()),
        Just("cors".to_owned()),
        Just("location".to_owned()),
        Just("attributes".to_owned()),
        Just("max-uploads".to_owned()),
        Just("part-number-marker".to_owned()),
        Just("continuation-token".to_owned()),
        "\\PC{0,8}",
    ];
    let value = prop_oneof!["-?[0-9]{0,12}", "\\PC{0,12}"];
    let query = prop::collection::vec((key, value), 0..5);
    let copy = proptest::option::of(prop_oneof![
        "/?[a-z]{0,5}/\\PC{0,10}(\\?versionId=\\PC{0,5})?",
        "\\PC{0,20}"
    ]);
    fuzz(
        "router",
        (
            method,
            proptest::option::of(host),
            raw_path(),
            query,
            copy,
            any::<bool>(),
        ),
        |(method, host, path, query, copy, form)| {
            let domains = vec!["s3.localhost".to_owned()];
            let target = router::target(host.as_deref(), &path, &domains);
            match router::route(&method, &target, &query, copy.as_deref(), form) {
                Ok(op) => {
                    prop_assert!(!op.name().is_empty());
                    let _ = (op.action(), op.resource());
                    if let Some(b) = op.bucket() {
                        prop_assert_eq!(Some(b), target.bucket.as_deref());
                    }
                }
                Err(e) => {
                    let _ = e.to_xml(&target.resource(), "fuzz");
                }
            }
            Ok(())
        },
    );
}
