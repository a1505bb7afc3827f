//! S3 fidelity (issue 10): behaviours where AWS answers one way, each tested twice by
//! `both_modes!`: against a local-only Lifeboat, and against Lifeboat in gateway mode in front
//! of a real upstream (SeaweedFS; skipped with a message when it is not installed, unless
//! `LIFEBOAT_REQUIRE_UPSTREAM` is set). The gateway answer is what the client sees, whatever
//! the upstream said.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::harness::{Lifeboat, code, data, header_of, raw};
use crate::upstream::{UpstreamServer, available};

/// A Lifeboat to test against, and what it needs kept alive.
pub struct Server {
    pub lb: Lifeboat,
    _up: Option<(UpstreamServer, tempfile::TempDir)>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn local(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let lb = crate::harness::lifeboat(dir.path(), extra);
        Self {
            lb,
            _up: None,
            _dir: dir,
        }
    }

    /// In gateway mode in front of SeaweedFS; `None` when it is not installed.
    pub fn gateway(extra: &str) -> Option<Self> {
        if !available() {
            return None;
        }
        let up_dir = tempfile::tempdir().expect("tempdir");
        let up = UpstreamServer::start(up_dir.path());
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "{extra}\n[upstream]\nendpoint = \"{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
            up.endpoint(),
            up.access_key,
            up.secret_key
        );
        let lb = crate::harness::lifeboat(dir.path(), &config);
        Some(Self {
            lb,
            _up: Some((up, up_dir)),
            _dir: dir,
        })
    }
}

/// Runs `$check(&Server)` once local-only and once in gateway mode, as two tests in a module
/// named after the behaviour; `$extra` is config text for both.
macro_rules! both_modes {
    ($name:ident, $extra:expr, $check:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$check(&super::Server::local($extra)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gateway_seaweedfs() {
                match super::Server::gateway($extra) {
                    Some(s) => super::$check(&s).await,
                    None => eprintln!("skipped: SeaweedFS is not installed"),
                }
            }
        }
    };
}

/// CreateMultipartUpload; the upload id.
async fn start_upload(s3: &Client, bucket: &str, key: &str) -> String {
    s3.create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .map(str::to_owned)
        .expect("id")
}

/// PUTs each key with `body`.
async fn put_keys(s3: &Client, bucket: &str, keys: &[&str], body: &[u8]) {
    for key in keys {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put");
    }
}

async fn bucket(s: &Server, name: &str) -> Client {
    let s3 = s.lb.client();
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("CreateBucket");
    s3
}

// ---- 1. CreateBucket on a bucket the caller owns: 200 in us-east-1, 409 elsewhere.

async fn create_owned_bucket_in_us_east_1(s: &Server) {
    let s3 = bucket(s, "owned").await;
    let again = s3.create_bucket().bucket("owned").send().await;
    assert!(again.is_ok(), "{again:?}");
}
both_modes!(
    create_bucket_again_in_us_east_1_is_200,
    "",
    create_owned_bucket_in_us_east_1
);

async fn create_owned_bucket_elsewhere(s: &Server) {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    // server.region is set, so the client must sign for it.
    let s3 = crate::harness::client_in_region(
        &s.lb.endpoint,
        crate::harness::AK,
        crate::harness::SK,
        true,
        "eu-west-1",
    );
    let config = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::EuWest1)
        .build();
    let create = || {
        s3.create_bucket()
            .bucket("owned")
            .create_bucket_configuration(config.clone())
            .send()
    };
    create().await.expect("first CreateBucket");
    let e = create().await.expect_err("second CreateBucket");
    assert_eq!(code(&e), "BucketAlreadyOwnedByYou");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(409));
}
both_modes!(
    create_bucket_again_elsewhere_is_409,
    "[server]\nregion = \"eu-west-1\"\n",
    create_owned_bucket_elsewhere
);

// ---- 7. Part order is by part number, never by upload time.

async fn part_one_resent_last(s: &Server) {
    let s3 = bucket(s, "parts").await;
    let id = start_upload(&s3, "parts", "k").await;
    let upload = |n: i32, body: Vec<u8>| {
        s3.upload_part()
            .bucket("parts")
            .key("k")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
    };
    let first = data(5 << 20, 1);
    let second = data(1000, 2);
    let resent = data(5 << 20, 3);
    upload(1, first).await.expect("part 1");
    let two = upload(2, second.clone()).await.expect("part 2");
    let one = upload(1, resent.clone()).await.expect("part 1 again");
    let part = |n, etag: Option<&str>| {
        CompletedPart::builder()
            .part_number(n)
            .set_e_tag(etag.map(str::to_owned))
            .build()
    };
    s3.complete_multipart_upload()
        .bucket("parts")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, one.e_tag()))
                .parts(part(2, two.e_tag()))
                .build(),
        )
        .send()
        .await
        .expect("Complete in part-number order");
    let got = crate::harness::object_bytes(&s3, "parts", "k").await;
    let mut want = resent;
    want.extend_from_slice(&second);
    assert!(got == want, "the resent part 1, then part 2");
}
both_modes!(
    part_one_resent_after_part_two_completes,
    "",
    part_one_resent_last
);

// ---- 17, 18. CORS: a preflight without Origin is 400; rules are stored and answered.

async fn cors_in_both_modes(s: &Server) {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let s3 = bucket(s, "web").await;
    let port = s.lb.port;
    let options = |extra: &str| {
        let req = format!(
            "OPTIONS /web/a.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
        );
        raw(port, req.as_bytes())
    };
    let (status, _, body) = options("Access-Control-Request-Method: GET\r\n");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let rule = CorsRule::builder()
        .allowed_origins("https://app.example.test")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("*")
        .build()
        .expect("rule");
    s3.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("PutBucketCors");
    let got = s3
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("GetBucketCors");
    assert_eq!(got.cors_rules().len(), 1);
    let (status, head, _) = options(
        "Origin: https://app.example.test\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type\r\n",
    );
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example.test")
    );
    s3.delete_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("DeleteBucketCors");
    let e = s3.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchCORSConfiguration");
}
both_modes!(cors_rules_and_preflights, "", cors_in_both_modes);

/// A raw request with every header signed (`extra` included); returns (status, the error code
/// in the body, if any).
fn request(
    s: &Server,
    method: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, String) {
    use lifeboat::auth::sigv4;
    let port = s.lb.port;
    let time = std::time::SystemTime::now();
    let amz_date = lifeboat::time::format_amz_date(time);
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let hash = sigv4::sha256_hex(body);
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".into(), hash.clone()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())),
    );
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let creq = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(p),
        &sigv4::canonical_query(&sigv4::parse_query(q)),
        &headers,
        &signed,
        &hash,
    );
    let sig = sigv4::SigningKey::derive(crate::harness::SK, time, "us-east-1", "s3")
        .sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        crate::harness::AK,
        body.len()
    ));
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    let (status, _, body) = raw(port, &req);
    (status, crate::harness::code_of(&body))
}

// ---- 8. partNumber beyond the object's parts: AWS answers 416 InvalidPartNumber (its error
// table, "The requested partnumber is not satisfiable"); the issue's 400 InvalidPart is what
// ceph s3-tests expect, not what AWS sends.

async fn part_number_beyond_the_parts(s: &Server) {
    let s3 = bucket(s, "pnum").await;
    s3.put_object()
        .bucket("pnum")
        .key("single")
        .body(ByteStream::from(b"one part".to_vec()))
        .send()
        .await
        .expect("put");
    crate::harness::multipart_upload(
        &s3,
        "pnum",
        "multi",
        vec![data(5 << 20, 1), data(10, 2)],
        None,
    )
    .await;
    for (path, what) in [
        ("/pnum/single?partNumber=2", "single-part"),
        ("/pnum/multi?partNumber=3", "two parts"),
    ] {
        for method in ["GET", "HEAD"] {
            let (status, code) = request(s, method, path, b"", &[]);
            assert_eq!(status, 416, "{method} {what}");
            if method == "GET" {
                assert_eq!(code, "InvalidPartNumber", "{what}");
            }
        }
    }
    let one = s3
        .get_object()
        .bucket("pnum")
        .key("single")
        .part_number(1)
        .send()
        .await;
    assert!(
        one.is_ok(),
        "partNumber=1 of a single-part object is the object: {one:?}"
    );
}
both_modes!(
    part_number_beyond_the_parts_is_416,
    "",
    part_number_beyond_the_parts
);

// ---- 9. UploadPartCopy with a range beyond the source: AWS answers 400 InvalidArgument,
// "Range specified is not valid for source object of size: N" (versitygw#610, sent to AWS).

async fn copy_range_beyond_the_source(s: &Server) {
    let s3 = bucket(s, "crange").await;
    s3.put_object()
        .bucket("crange")
        .key("src")
        .body(ByteStream::from(data(100, 1)))
        .send()
        .await
        .expect("put");
    let id = start_upload(&s3, "crange", "dst").await;
    let e = s3
        .upload_part_copy()
        .bucket("crange")
        .key("dst")
        .upload_id(&id)
        .part_number(1)
        .copy_source("crange/src")
        .copy_source_range("bytes=50-199")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgument");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
}
both_modes!(
    upload_part_copy_range_beyond_the_source_is_400,
    "",
    copy_range_beyond_the_source
);

// ---- 11. A well-formed checksum that does not match is 400 BadDigest; a malformed one and two
// algorithms at once are 400 InvalidRequest.

async fn wrong_checksums(s: &Server) {
    bucket(s, "cksum").await;
    // Well formed (the right length) but of other bytes.
    let crc64 = "AAAAAAAAAAA=";
    let sha256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    for (name, value) in [
        ("x-amz-checksum-crc64nvme", crc64),
        ("x-amz-checksum-sha256", sha256),
    ] {
        let (status, code) = request(s, "PUT", "/cksum/k", b"hello", &[(name, value)]);
        assert_eq!((status, code.as_str()), (400, "BadDigest"), "{name}");
        let (status, code) = request(s, "PUT", "/cksum/k", b"hello", &[(name, "not-base64!")]);
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidRequest"),
            "malformed {name}"
        );
    }
    let (status, code) = request(
        s,
        "PUT",
        "/cksum/k",
        b"hello",
        &[
            ("x-amz-checksum-crc64nvme", crc64),
            ("x-amz-checksum-sha256", sha256),
        ],
    );
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidRequest"),
        "two algorithms"
    );
}
both_modes!(a_wrong_checksum_is_bad_digest, "", wrong_checksums);

// ---- 5. DeleteObjects takes x-amz-bypass-governance-retention and VersionId null, and echoes
// the VersionId in <Deleted> (AWS-style captures; Ceph RGW does the same).

async fn delete_objects_with_null_versions(s: &Server) {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s3 = bucket(s, "delv").await;
    put_keys(&s3, "delv", &["a", "b"], b"x").await;
    let id = |key: &str, version: Option<&str>| {
        ObjectIdentifier::builder()
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .build()
            .expect("id")
    };
    let out = s3
        .delete_objects()
        .bucket("delv")
        .bypass_governance_retention(true)
        .delete(
            Delete::builder()
                .objects(id("a", Some("null")))
                .objects(id("b", None))
                .objects(id("c", Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")))
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("DeleteObjects");
    let deleted: Vec<(Option<&str>, Option<&str>)> = out
        .deleted()
        .iter()
        .map(|d| (d.key(), d.version_id()))
        .collect();
    assert_eq!(deleted, [(Some("a"), Some("null")), (Some("b"), None)]);
    let errors: Vec<_> = out.errors().iter().map(|e| (e.key(), e.code())).collect();
    assert_eq!(errors, [(Some("c"), Some("InvalidArgument"))]);
    let left = s3
        .list_objects_v2()
        .bucket("delv")
        .send()
        .await
        .expect("list");
    assert_eq!(left.key_count(), Some(0));
}
both_modes!(
    delete_objects_takes_null_versions_and_bypass,
    "",
    delete_objects_with_null_versions
);

// ---- 3. ListBuckets pagination: max-buckets, continuation-token, prefix, bucket-region.

async fn list_buckets_in_pages(s: &Server) {
    let s3 = s.lb.client();
    for name in ["logs-a", "logs-b", "logs-c", "media"] {
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create");
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_buckets()
            .max_buckets(2)
            .prefix("logs-")
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("ListBuckets");
        pages += 1;
        assert_eq!(page.prefix(), Some("logs-"));
        names.extend(
            page.buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_owned)),
        );
        token = page.continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["logs-a", "logs-b", "logs-c"]);
    assert_eq!(pages, 2);
    let all = s3.list_buckets().send().await.expect("ListBuckets");
    assert_eq!(all.buckets().len(), 4);
    assert!(all.continuation_token().is_none());
    let here = s3
        .list_buckets()
        .bucket_region("us-east-1")
        .send()
        .await
        .expect("region");
    assert_eq!(here.buckets().len(), 4);
    let elsewhere = s3
        .list_buckets()
        .bucket_region("eu-west-1")
        .send()
        .await
        .expect("region");
    assert!(elsewhere.buckets().is_empty());
    let (status, code) = request(s, "GET", "/?max-buckets=0", b"", &[]);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"));
}
both_modes!(
    list_buckets_pages_with_a_continuation_token,
    "",
    list_buckets_in_pages
);

// ---- 4. ListObjectVersions on a bucket that never had versioning: each object is one `null`
// version, latest; `versionId=null` is accepted on GET, HEAD and DELETE.

async fn list_versions_of_an_unversioned_bucket(s: &Server) {
    let s3 = bucket(s, "vers").await;
    put_keys(&s3, "vers", &["a/1", "a/2", "b", "c d+e"], b"v").await;
    let all = s3
        .list_object_versions()
        .bucket("vers")
        .send()
        .await
        .expect("versions");
    let keys: Vec<_> = all.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(keys, ["a/1", "a/2", "b", "c d+e"]);
    assert!(
        all.versions()
            .iter()
            .all(|v| v.version_id() == Some("null") && v.is_latest() == Some(true))
    );
    assert!(all.delete_markers().is_empty());
    let page = s3
        .list_object_versions()
        .bucket("vers")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .expect("page");
    let prefixes: Vec<_> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a/"]);
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_version_id_marker(), Some("null"));
    let rest = s3
        .list_object_versions()
        .bucket("vers")
        .delimiter("/")
        .key_marker(page.next_key_marker().unwrap_or(""))
        .version_id_marker("null")
        .send()
        .await
        .expect("rest");
    let keys: Vec<_> = rest.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(keys, ["c d+e"]);
    let encoded = s3
        .list_object_versions()
        .bucket("vers")
        .prefix("c")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("encoded");
    assert_eq!(
        encoded.versions().first().and_then(|v| v.key()),
        Some("c%20d%2Be"),
        "encoded as sent: aws-sdk-s3 does not decode (boto3 does)"
    );
    let (status, code) = request(s, "GET", "/vers?versions&version-id-marker=null", b"", &[]);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"));
    let got = s3
        .get_object()
        .bucket("vers")
        .key("b")
        .version_id("null")
        .send()
        .await;
    assert!(got.is_ok(), "{got:?}");
    s3.delete_object()
        .bucket("vers")
        .key("b")
        .version_id("null")
        .send()
        .await
        .expect("delete null");
}
both_modes!(
    list_object_versions_of_an_unversioned_bucket,
    "",
    list_versions_of_an_unversioned_bucket
);

// ---- 14, 15. Listings: byte order whatever the upstream's, `encoding-type=url` on every
// field AWS encodes (control characters included), and `max-keys=0`.

async fn listings_in_byte_order(s: &Server) {
    use aws_sdk_s3::types::EncodingType;
    let s3 = bucket(s, "order").await;
    put_keys(
        &s3,
        "order",
        &["foo+1/bar", "foo/bar/baz", "quux ab/thud", "asdf+b"],
        b"x",
    )
    .await;
    let page = s3
        .list_objects_v2()
        .bucket("order")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .expect("list");
    let prefixes: Vec<_> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(
        prefixes,
        ["foo%2B1/", "foo/", "quux%20ab/"],
        "byte order of the keys (foo+1/ < foo/), encoded as sent"
    );
    let keys: Vec<_> = page.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["asdf%2Bb"]);
    // What the SDK decoded was encoded on the wire.
    let (status, body) = {
        let req = crate::harness::signed_request(
            s.lb.port,
            "GET",
            "/order?list-type=2&delimiter=%2F&encoding-type=url",
            b"",
            std::time::SystemTime::now(),
        );
        let (status, _, body) = raw(s.lb.port, &req);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(status, 200);
    let foo_plus = body
        .find("<Prefix>foo%2B1/</Prefix>")
        .expect("foo+1/ encoded");
    let foo_slash = body.find("<Prefix>foo/</Prefix>").expect("foo/");
    assert!(foo_plus < foo_slash, "{body}");
    assert!(body.contains("<Prefix>quux%20ab/</Prefix>"), "{body}");
    // A prefix with a control character comes back encoded, and decodes to itself.
    let nl =
        s.lb.client()
            .list_objects()
            .bucket("order")
            .prefix("line\nbreak")
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .expect("list v1");
    assert_eq!(nl.prefix(), Some("line%0Abreak"));
    let zero = s3
        .list_objects_v2()
        .bucket("order")
        .max_keys(0)
        .send()
        .await
        .expect("max-keys=0");
    assert_eq!(zero.is_truncated(), Some(false));
    assert_eq!(zero.key_count(), Some(0));
}
both_modes!(
    listings_are_in_byte_order_and_encoded,
    "",
    listings_in_byte_order
);

// ---- 6. A retried CompleteMultipartUpload (its answer was lost) answers 200 with the same
// ETag; another part list is NoSuchUpload.

async fn complete_twice(s: &Server) {
    let s3 = bucket(s, "twice").await;
    let id = start_upload(&s3, "twice", "k").await;
    let mut parts = Vec::new();
    for (n, body) in [(1, data(5 << 20, 1)), (2, data(100, 2))] {
        let out = s3
            .upload_part()
            .bucket("twice")
            .key("k")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let complete = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket("twice")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
    };
    let first = complete(parts.clone()).await.expect("Complete");
    let again = complete(parts.clone()).await.expect("Complete again");
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.key(), Some("k"));
    let e = complete(parts[..1].to_vec()).await.unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
}
both_modes!(a_repeated_complete_answers_the_same, "", complete_twice);

// ---- 10. GetObjectAttributes: ETag (unquoted), Checksum with its type, ObjectParts paged,
// StorageClass, ObjectSize.

async fn object_attributes(s: &Server) {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectAttributes};
    let s3 = bucket(s, "attrs").await;
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];
    s3.put_object()
        .bucket("attrs")
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(b"hello".to_vec()))
        .send()
        .await
        .expect("put");
    let a = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("single")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await
        .expect("attributes");
    assert_eq!(a.e_tag(), Some(crate::harness::md5_hex(b"hello").as_str()));
    assert_eq!(a.object_size(), Some(5));
    assert_eq!(a.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    let c = a.checksum().expect("checksum");
    assert_eq!(c.checksum_crc32(), Some("NhCmhg=="));
    assert_eq!(c.checksum_type().map(|t| t.as_str()), Some("FULL_OBJECT"));
    assert!(a.object_parts().is_none(), "single-part: no ObjectParts");

    crate::harness::multipart_upload(
        &s3,
        "attrs",
        "multi",
        vec![data(5 << 20, 1), data(5 << 20, 2), data(10, 3)],
        Some(ChecksumAlgorithm::Crc32),
    )
    .await;
    let page = |marker: Option<&str>| {
        s3.get_object_attributes()
            .bucket("attrs")
            .key("multi")
            .object_attributes(ObjectAttributes::ObjectParts)
            .object_attributes(ObjectAttributes::Checksum)
            .max_parts(2)
            .set_part_number_marker(marker.map(str::to_owned))
            .send()
    };
    let first = page(None).await.expect("page 1");
    let parts = first.object_parts().expect("parts");
    assert_eq!(parts.total_parts_count(), Some(3));
    assert_eq!(parts.is_truncated(), Some(true));
    let sizes: Vec<_> = parts.parts().iter().filter_map(|p| p.size()).collect();
    assert_eq!(sizes, [5 << 20, 5 << 20]);
    assert!(parts.parts().iter().all(|p| p.checksum_crc32().is_some()));
    assert_eq!(
        first
            .checksum()
            .and_then(|c| c.checksum_type())
            .map(|t| t.as_str()),
        Some("COMPOSITE")
    );
    let second = page(parts.next_part_number_marker()).await.expect("page 2");
    let rest = second.object_parts().expect("parts");
    assert_eq!(
        rest.parts()
            .iter()
            .filter_map(|p| p.part_number())
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(rest.is_truncated(), Some(false));
    let (status, code) = request(s, "GET", "/attrs/single?attributes", b"", &[]);
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidRequest"),
        "no attribute named"
    );
    let e = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("missing")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert!(e.raw_response().is_some_and(|r| r.status().as_u16() == 404));
}
both_modes!(get_object_attributes, "", object_attributes);

// ---- 19. Signature Version 2: Authorization headers, presigned URLs and POST policies;
// `[server] sigv2 = false` refuses them.

/// A SigV2 header-signed raw request (path-style); returns (status, body).
fn v2_request(
    s: &Server,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> (u16, Vec<u8>) {
    use lifeboat::auth::sigv2;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert("date", date.parse().expect("date"));
    headers.insert("content-type", content_type.parse().expect("type"));
    headers.insert("x-amz-meta-colour", "blue".parse().expect("meta"));
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let query = lifeboat::auth::sigv4::parse_query(q);
    let resource = sigv2::canonical_resource(None, p, &query);
    let sts = sigv2::request_string_to_sign(method, &headers, None, &resource);
    let sig = sigv2::sign(crate::harness::SK, &sts);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nDate: {date}\r\nContent-Type: {content_type}\r\n\
         x-amz-meta-colour: blue\r\nAuthorization: AWS {}:{sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.lb.port,
        crate::harness::AK,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let (status, _, body) = raw(s.lb.port, &req);
    (status, body)
}

async fn sigv2_everywhere(s: &Server) {
    use lifeboat::auth::sigv2;
    let s3 = bucket(s, "legacy").await;
    let (status, body) = v2_request(
        s,
        "PUT",
        "/legacy/old%20client.txt",
        b"signed the old way",
        "text/plain",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = v2_request(s, "GET", "/legacy/old%20client.txt", b"", "");
    assert_eq!((status, body.as_slice()), (200, &b"signed the old way"[..]));
    let (status, _) = v2_request(s, "GET", "/legacy?acl", b"", "");
    assert_eq!(status, 200, "a signed sub-resource");
    let got = s3
        .head_object()
        .bucket("legacy")
        .key("old client.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("colour"))
            .map(String::as_str),
        Some("blue")
    );
    // A presigned GET, as aws-cli v1's `s3 presign` makes it.
    let expires = (chrono::Utc::now().timestamp() + 300).to_string();
    let sts = format!("GET\n\n\n{expires}\n/legacy/old%20client.txt");
    let sig = sigv2::sign(crate::harness::SK, &sts);
    let sig = lifeboat::auth::sigv4::uri_encode(&sig, true);
    let path = format!(
        "/legacy/old%20client.txt?AWSAccessKeyId={}&Expires={expires}&Signature={sig}",
        crate::harness::AK
    );
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        s.lb.port
    );
    let (status, _, body) = raw(s.lb.port, req.as_bytes());
    assert_eq!((status, body.as_slice()), (200, &b"signed the old way"[..]));
    let tampered = path.replace("old%20client", "other");
    let req = format!(
        "GET {tampered} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        s.lb.port
    );
    let (status, _, body) = raw(s.lb.port, req.as_bytes());
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // A wrong signature.
    let bad = format!(
        "GET /legacy/old%20client.txt HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nDate: {}\r\nAuthorization: AWS {}:AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nConnection: close\r\n\r\n",
        s.lb.port,
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
        crate::harness::AK
    );
    let (status, _, body) = raw(s.lb.port, bad.as_bytes());
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    // A browser form signed with SigV2.
    let doc = r#"{"expiration": "2099-01-01T00:00:00.000Z", "conditions": [{"bucket": "legacy"}, ["starts-with", "$key", "forms/"]]}"#;
    let policy = lifeboat::checksum::base64(doc.as_bytes());
    let signature = sigv2::sign_policy(crate::harness::SK, &policy);
    let boundary = "----LifeboatSigV2Form";
    let mut body = Vec::new();
    for (k, v) in [
        ("key", "forms/${filename}"),
        ("AWSAccessKeyId", crate::harness::AK),
        ("policy", policy.as_str()),
        ("signature", signature.as_str()),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nform body\r\n--{boundary}--\r\n").as_bytes(),
    );
    let mut req = format!(
        "POST /legacy HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.lb.port,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let (status, head, resp) = raw(s.lb.port, &req);
    assert_eq!(status, 204, "{head}{}", String::from_utf8_lossy(&resp));
    let got = crate::harness::object_bytes(&s3, "legacy", "forms/f.txt").await;
    assert_eq!(got, b"form body");
}
both_modes!(sigv2_headers_presigned_urls_and_forms, "", sigv2_everywhere);

async fn sigv2_refused(s: &Server) {
    bucket(s, "legacy").await;
    let (status, body) = v2_request(s, "GET", "/legacy/x", b"", "");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("<Code>InvalidRequest</Code>"));
}
both_modes!(
    sigv2_can_be_turned_off,
    "[server]\nsigv2 = false\n",
    sigv2_refused
);

// ---- 2. Bucket names follow AWS's rules exactly: 3 to 63 characters.

async fn bucket_name_lengths(s: &Server) {
    let s3 = s.lb.client();
    for bad in ["x", "ab", &"a".repeat(64), "a..b", "xn--abc", "sthree-abc"] {
        let e = s3.create_bucket().bucket(bad).send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidBucketName", "{bad}");
    }
    for good in ["abc", &"a".repeat(63), "my.bucket-1"] {
        s3.create_bucket()
            .bucket(good)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
}
both_modes!(bucket_names_are_3_to_63_characters, "", bucket_name_lengths);

// ---- 16. Bucket ownership: with several users, one without grants uses the buckets it
// created and no others; another user's bucket needs an explicit grant.

const USERS: &str = "[[users]]\naccess_key = \"alice\"\nsecret_key = \"alice-secret-alice-secret\"\n\
[[users]]\naccess_key = \"bob\"\nsecret_key = \"bob-secret-bob-secret-bob\"\n\
[[users]]\naccess_key = \"carol\"\nsecret_key = \"carol-secret-carol-secret\"\n\
grants = [{ bucket = \"alice-*\", prefix = \"\", actions = [\"read\", \"list\"] }]\n";

async fn ownership(s: &Server) {
    let alice = s.lb.client_with("alice", "alice-secret-alice-secret");
    let bob = s.lb.client_with("bob", "bob-secret-bob-secret-bob");
    let carol = s.lb.client_with("carol", "carol-secret-carol-secret");
    alice
        .create_bucket()
        .bucket("alice-files")
        .send()
        .await
        .expect("alice creates");
    alice
        .put_object()
        .bucket("alice-files")
        .key("k")
        .body(ByteStream::from(b"alice's".to_vec()))
        .send()
        .await
        .expect("alice writes");
    bob.create_bucket()
        .bucket("bob-files")
        .send()
        .await
        .expect("bob creates");
    let taken = bob
        .create_bucket()
        .bucket("alice-files")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&taken),
        "BucketAlreadyExists",
        "another owner's name, as AWS"
    );
    let denied = |e: String| assert_eq!(e, "AccessDenied");
    denied(code(
        &bob.get_object()
            .bucket("alice-files")
            .key("k")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code(
        &bob.list_objects_v2()
            .bucket("alice-files")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code(
        &bob.put_object()
            .bucket("alice-files")
            .key("x")
            .body(ByteStream::from(b"no".to_vec()))
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code(
        &bob.delete_object()
            .bucket("alice-files")
            .key("k")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code(
        &bob.copy_object()
            .bucket("bob-files")
            .key("stolen")
            .copy_source("alice-files/k")
            .send()
            .await
            .unwrap_err(),
    ));
    let names = |out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(bob.list_buckets().send().await.expect("list")),
        ["bob-files"]
    );
    assert_eq!(
        names(alice.list_buckets().send().await.expect("list")),
        ["alice-files"]
    );
    // An explicit grant opens another user's bucket, for what it names.
    let got = crate::harness::object_bytes(&carol, "alice-files", "k").await;
    assert_eq!(got, b"alice's");
    denied(code(
        &carol
            .delete_object()
            .bucket("alice-files")
            .key("k")
            .send()
            .await
            .unwrap_err(),
    ));
    assert_eq!(
        names(carol.list_buckets().send().await.expect("list")),
        ["alice-files"]
    );
}
both_modes!(a_users_buckets_are_its_own, super::USERS, ownership);

// ---- 12, 13. Content-Encoding kept as sent once aws-chunked is removed; If-Match: * means
// "only if the key exists" (RFC 7232).

async fn encodings_and_if_match_star(s: &Server) {
    let s3 = bucket(s, "conds").await;
    let (status, _) = request(
        s,
        "PUT",
        "/conds/enc",
        b"zz",
        &[("content-encoding", "aws-chunked, deflate, gzip")],
    );
    assert_eq!(status, 200);
    let head = s3
        .head_object()
        .bucket("conds")
        .key("enc")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_encoding(), Some("deflate, gzip"));
    let star = |key: &'static str| {
        s3.put_object()
            .bucket("conds")
            .key(key)
            .if_match("*")
            .body(ByteStream::from(b"new".to_vec()))
            .send()
    };
    let e = star("missing").await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    star("enc")
        .await
        .expect("If-Match: * overwrites an existing key");
}
both_modes!(
    content_encoding_and_if_match_star,
    "",
    encodings_and_if_match_star
);
