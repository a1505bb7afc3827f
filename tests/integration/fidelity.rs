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
    let s3 = s.lb.client();
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
    let id = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("k")
        .send()
        .await
        .expect("create")
        .upload_id()
        .map(str::to_owned)
        .expect("id");
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
    let got = s3
        .get_object()
        .bucket("parts")
        .key("k")
        .send()
        .await
        .expect("get");
    let got = got.body.collect().await.expect("body").into_bytes();
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
    let body = String::from_utf8_lossy(&body).into_owned();
    let code = body
        .split_once("<Code>")
        .and_then(|(_, r)| r.split_once("</Code>"))
        .map(|(c, _)| c.to_owned())
        .unwrap_or_default();
    (status, code)
}

// ---- 8. partNumber beyond the object's parts: AWS answers 416 InvalidPartNumber (its error
// table, "The requested partnumber is not satisfiable"); the 400 InvalidPart is what
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
    let id = s3
        .create_multipart_upload()
        .bucket("crange")
        .key("dst")
        .send()
        .await
        .expect("create")
        .upload_id()
        .map(str::to_owned)
        .expect("id");
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
