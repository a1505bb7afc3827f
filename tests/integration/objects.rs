//! Object reads and writes: checksums, metadata, ranges, conditionals, overrides.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;

use crate::harness::{code, data, setup_with_bucket};

#[tokio::test]
async fn put_get_round_trip_with_default_sdk_checksums() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let body = data(3 * 1024 * 1024 + 17, 1);
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let expected_etag = format!("\"{:x}\"", md5_of(&body));
    assert_eq!(put.e_tag(), Some(expected_etag.as_str()));
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.e_tag(), Some(expected_etag.as_str()));
    // The SDK sends CRC32 by default; it comes back with checksum mode on.
    assert_eq!(got.checksum_crc32(), put.checksum_crc32());
    assert!(got.checksum_crc32().is_some());
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert!(bytes.as_ref() == body.as_slice());
}

fn md5_of(b: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(b).into())
}

#[tokio::test]
async fn every_checksum_algorithm_is_checked_stored_and_returned() {
    use aws_sdk_s3::types::ChecksumAlgorithm as A;
    let (_lb, s3) = setup_with_bucket("bkt").await;
    for alg in [A::Crc32, A::Crc32C, A::Crc64Nvme, A::Sha1, A::Sha256] {
        let key = format!("k-{}", alg.as_str());
        s3.put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(data(1000, 2)))
            .send()
            .await
            .unwrap();
        let head = s3
            .head_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let value = match alg {
            A::Crc32 => head.checksum_crc32(),
            A::Crc32C => head.checksum_crc32_c(),
            A::Crc64Nvme => head.checksum_crc64_nvme(),
            A::Sha1 => head.checksum_sha1(),
            _ => head.checksum_sha256(),
        };
        assert!(value.is_some(), "{alg:?}");
    }
    // A checksum that does not match the body is refused and nothing is stored.
    let bad = s3
        .put_object()
        .bucket("bkt")
        .key("bad")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(b"hello".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "BadDigest");
    assert!(
        s3.head_object()
            .bucket("bkt")
            .key("bad")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn content_md5_good_bad_and_invalid() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("md5")
        .content_md5("XUFAKrxLKna5cZ2REBfFkg==") // md5("hello")
        .body(ByteStream::from(b"hello".to_vec()))
        .send()
        .await
        .unwrap();
    let bad = s3
        .put_object()
        .bucket("bkt")
        .key("md5-bad")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(ByteStream::from(b"hello".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "BadDigest");
    // An MD5 that is not 16 bytes of base64: InvalidDigest, via a presigned PUT so the SDK
    // cannot second-guess it.
    use aws_sdk_s3::presigning::PresigningConfig;
    let p = s3
        .put_object()
        .bucket("bkt")
        .key("md5-invalid")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let (status, _, body) = lb.send(
        "PUT",
        &lb.path_of(p.uri()),
        &[("Content-MD5", "abc")],
        b"hello",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("<Code>InvalidDigest</Code>"));
}

#[tokio::test]
async fn metadata_and_content_headers_round_trip() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("page.html")
        .content_type("text/html; charset=utf-8")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"p.html\"")
        .content_encoding("identity")
        .content_language("en")
        .metadata("owner", "ana")
        .metadata("purpose", "test")
        .body(ByteStream::from(b"<p>hi</p>".to_vec()))
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket("bkt")
        .key("page.html")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(h.cache_control(), Some("max-age=60"));
    assert_eq!(
        h.content_disposition(),
        Some("attachment; filename=\"p.html\"")
    );
    assert_eq!(h.content_encoding(), Some("identity"));
    assert_eq!(h.content_language(), Some("en"));
    let m = h.metadata().unwrap();
    assert_eq!(m.get("owner").map(String::as_str), Some("ana"));
    assert_eq!(m.get("purpose").map(String::as_str), Some("test"));

    // response-* overrides.
    let g = s3
        .get_object()
        .bucket("bkt")
        .key("page.html")
        .response_content_type("text/plain")
        .response_cache_control("no-store")
        .send()
        .await
        .unwrap();
    assert_eq!(g.content_type(), Some("text/plain"));
    assert_eq!(g.cache_control(), Some("no-store"));
}

#[tokio::test]
async fn ranges_open_suffix_and_unsatisfiable() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let body = data(1000, 3);
    s3.put_object()
        .bucket("bkt")
        .key("r")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    for (range, want, content_range) in [
        ("bytes=0-9", &body[0..10], "bytes 0-9/1000"),
        ("bytes=990-", &body[990..], "bytes 990-999/1000"),
        ("bytes=-5", &body[995..], "bytes 995-999/1000"),
        ("bytes=500-5000", &body[500..], "bytes 500-999/1000"),
    ] {
        let g = s3
            .get_object()
            .bucket("bkt")
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap();
        assert_eq!(g.content_range(), Some(content_range), "{range}");
        let got = g.body.collect().await.unwrap().into_bytes();
        assert_eq!(got.as_ref(), want, "{range}");
    }
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("r")
        .range("bytes=1000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRange");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(416));
}

#[tokio::test]
async fn conditional_get_precedence_and_304_carries_etag() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("c")
        .body(ByteStream::from(b"v1".to_vec()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();

    let e = s3
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 304);
    assert_eq!(raw.headers().get("etag"), Some(etag.as_str()));

    let e = s3
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");

    let long_ago = aws_sdk_s3::primitives::DateTime::from_secs(0);
    // If-Match true overrides If-Unmodified-Since false.
    s3.get_object()
        .bucket("bkt")
        .key("c")
        .if_match(&etag)
        .if_unmodified_since(long_ago)
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("c")
        .if_unmodified_since(long_ago)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    s3.get_object()
        .bucket("bkt")
        .key("c")
        .if_modified_since(long_ago)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_is_204_even_for_absent_keys_and_missing_keys_are_404() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    s3.delete_object()
        .bucket("bkt")
        .key("never-existed")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("never-existed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
    let e = s3
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchBucket");
}

#[tokio::test]
async fn keys_with_reserved_characters() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    for key in ["a b+c~(1)!'*", "ünï/cødé.txt", "x//y", "q?x=1&y#z", "%41"] {
        s3.put_object()
            .bucket("bkt")
            .key(key)
            .body(ByteStream::from(key.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        let g = s3.get_object().bucket("bkt").key(key).send().await.unwrap();
        assert_eq!(
            g.body.collect().await.unwrap().into_bytes().as_ref(),
            key.as_bytes(),
            "{key}"
        );
    }
    let list = s3.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(list.key_count(), Some(5));
}

#[tokio::test]
async fn empty_object() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("empty")
        .body(ByteStream::from(Vec::new()))
        .send()
        .await
        .unwrap();
    let g = s3
        .get_object()
        .bucket("bkt")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(g.content_length(), Some(0));
    assert_eq!(g.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
}

/// An unversioned object's only version is `null`: `versionId=null` on GET, HEAD and DELETE
/// addresses it (as AWS answers for a bucket that never had versioning); any other id is
/// `400 InvalidArgument`.
#[tokio::test]
async fn version_id_null_addresses_the_only_version() {
    let (_lb, s3) = crate::harness::setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("v")
        .body(ByteStream::from_static(b"only"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"only"
    );
    s3.head_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("v")
        .version_id("abc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "InvalidArgument");
    s3.delete_object()
        .bucket("bkt")
        .key("v")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert!(
        s3.head_object()
            .bucket("bkt")
            .key("v")
            .send()
            .await
            .is_err()
    );
}
