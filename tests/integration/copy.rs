//! CopyObject, DeleteObjects, conditional writes, ACLs, tagging, versioning.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Delete, MetadataDirective, ObjectCannedAcl, ObjectIdentifier, Tag, Tagging,
};

use crate::harness::{code, data, setup_with_buckets};

#[tokio::test]
async fn copy_object_with_directives_and_conditions() {
    let (_lb, s3) = setup_with_buckets(&["bkt", "other"]).await;
    let body = data(3 << 20, 1);
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("dir/src file+1.bin")
        .content_type("application/x-test")
        .metadata("a", "1")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    // URL-encoded source with versionId=null, metadata copied.
    let out = s3
        .copy_object()
        .bucket("other")
        .key("copy")
        .copy_source("bkt/dir/src%20file%2B1.bin?versionId=null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(etag.as_str())
    );
    let h = s3
        .head_object()
        .bucket("other")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/x-test"));
    assert_eq!(
        h.metadata().and_then(|m| m.get("a")).map(String::as_str),
        Some("1")
    );
    let got = s3
        .get_object()
        .bucket("other")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());

    // REPLACE takes the request's metadata.
    s3.copy_object()
        .bucket("other")
        .key("replaced")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("b", "2")
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket("other")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    let m = h.metadata().unwrap();
    assert!(m.get("a").is_none() && m.get("b").map(String::as_str) == Some("2"));

    // Copy conditions.
    let e = s3
        .copy_object()
        .bucket("other")
        .key("c")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .copy_source_if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let e = s3
        .copy_object()
        .bucket("other")
        .key("c")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .copy_source_if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    let e = s3
        .copy_object()
        .bucket("other")
        .key("c")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .copy_source_if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let past = aws_sdk_s3::primitives::DateTime::from_secs(0);
    let e = s3
        .copy_object()
        .bucket("other")
        .key("c")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .copy_source_if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    s3.copy_object()
        .bucket("other")
        .key("c")
        .copy_source("bkt/dir/src%20file%2B1.bin")
        .copy_source_if_match(&etag)
        .copy_source_if_modified_since(past)
        .send()
        .await
        .unwrap();

    // Onto itself without REPLACE: InvalidRequest; with REPLACE: fine.
    let e = s3
        .copy_object()
        .bucket("other")
        .key("c")
        .copy_source("other/c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequest");
    s3.copy_object()
        .bucket("other")
        .key("c")
        .copy_source("other/c")
        .metadata_directive(MetadataDirective::Replace)
        .send()
        .await
        .unwrap();
    let e = s3
        .copy_object()
        .bucket("other")
        .key("x")
        .copy_source("bkt/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
}

#[tokio::test]
async fn delete_objects_quiet_and_errors() {
    let (lb, s3) = setup_with_buckets(&["bkt", "other"]).await;
    for i in 0..5 {
        s3.put_object()
            .bucket("bkt")
            .key(format!("k{i}"))
            .body(ByteStream::from(vec![1u8]))
            .send()
            .await
            .unwrap();
    }
    let ids = |keys: &[&str]| {
        Delete::builder().set_objects(Some(
            keys.iter()
                .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                .collect(),
        ))
    };
    // Current SDKs send a CRC32 of the body and no Content-MD5.
    let out = s3
        .delete_objects()
        .bucket("bkt")
        .delete(ids(&["k0", "k1", "absent"]).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 3);
    let out = s3
        .delete_objects()
        .bucket("bkt")
        .delete(ids(&["k2", "k3"]).quiet(true).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(out.deleted().is_empty() && out.errors().is_empty());
    let left = s3.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(left.key_count(), Some(1));

    // Over 1000 keys is MalformedXML.
    let many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = s3
        .delete_objects()
        .bucket("bkt")
        .delete(ids(&refs).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "MalformedXML");

    // Content-MD5 (as older SDKs send it) is checked.
    let body = b"<Delete><Object><Key>k4</Key></Object></Delete>";
    let md5 = {
        use md5::Digest;
        lifeboat::checksum::base64(&md5::Md5::digest(body))
    };
    let req = crate::harness::signed_request(
        lb.port,
        "POST",
        "/bkt?delete",
        body,
        std::time::SystemTime::now(),
    );
    let req = String::from_utf8(req).unwrap().replacen(
        "Connection: close",
        &format!("Content-MD5: {md5}\r\nConnection: close"),
        1,
    );
    let (status, _, resp) = crate::harness::raw(lb.port, req.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("<Deleted><Key>k4</Key></Deleted>"));
    let bad = String::from_utf8(crate::harness::signed_request(
        lb.port,
        "POST",
        "/bkt?delete",
        body,
        std::time::SystemTime::now(),
    ))
    .unwrap()
    .replacen(
        "Connection: close",
        "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\nConnection: close",
        1,
    );
    let (status, _, _) = crate::harness::raw(lb.port, bad.as_bytes());
    assert_eq!(status, 400);
}

#[tokio::test]
async fn conditional_puts() {
    let (_lb, s3) = setup_with_buckets(&["bkt", "other"]).await;
    let first = s3
        .put_object()
        .bucket("bkt")
        .key("c")
        .if_none_match("*")
        .body(ByteStream::from(b"1".to_vec()))
        .send()
        .await
        .unwrap();
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("c")
        .if_none_match("*")
        .body(ByteStream::from(b"2".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("c")
        .if_match("\"nope\"")
        .body(ByteStream::from(b"2".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("absent")
        .if_match("\"nope\"")
        .body(ByteStream::from(b"2".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
    s3.put_object()
        .bucket("bkt")
        .key("c")
        .if_match(first.e_tag().unwrap())
        .body(ByteStream::from(b"3".to_vec()))
        .send()
        .await
        .unwrap();
    let got = s3.get_object().bucket("bkt").key("c").send().await.unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"3"
    );
}

#[tokio::test]
async fn concurrent_if_none_match_writers_exactly_one_wins() {
    let (_lb, s3) = setup_with_buckets(&["bkt", "other"]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16u8 {
        let s3 = s3.clone();
        tasks.spawn(async move {
            s3.put_object()
                .bucket("bkt")
                .key("race")
                .if_none_match("*")
                .body(ByteStream::from(vec![i; 1000]))
                .send()
                .await
                .is_ok()
        });
    }
    let mut wins = 0;
    while let Some(r) = tasks.join_next().await {
        wins += usize::from(r.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn acls_tagging_and_versioning() {
    let (_lb, s3) = setup_with_buckets(&["bkt", "other"]).await;
    s3.create_bucket()
        .bucket("pub")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("bkt")
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .tagging("team=media&stage=raw")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let acl = s3
        .get_object_acl()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(acl.owner().is_some());
    assert_eq!(acl.grants().len(), 2);
    s3.put_object_acl()
        .bucket("bkt")
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(
        s3.get_object_acl()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .unwrap()
            .grants()
            .len(),
        1
    );
    assert_eq!(
        s3.get_bucket_acl()
            .bucket("bkt")
            .send()
            .await
            .unwrap()
            .grants()
            .len(),
        1
    );

    let tags = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let mut pairs: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("stage".to_owned(), "raw".to_owned()),
            ("team".to_owned(), "media".to_owned())
        ]
    );
    let h = s3.get_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(h.tag_count(), Some(2));
    s3.put_object_tagging()
        .bucket("bkt")
        .key("k")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("only").value("one").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        s3.get_object_tagging()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .unwrap()
            .tag_set()
            .len(),
        1
    );
    s3.delete_object_tagging()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(
        s3.get_object_tagging()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .unwrap()
            .tag_set()
            .is_empty()
    );
    // Form encoding in x-amz-tagging: `+` is a space, `%2B` a plus.
    s3.put_object()
        .bucket("bkt")
        .key("plus")
        .tagging("k=a%2Bb+c")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let t = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("plus")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().first().map(|t| t.value()), Some("a+b c"));
    let too_many: String = (0..11).map(|i| format!("k{i}=v&")).collect();
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("t")
        .tagging(too_many.trim_end_matches('&'))
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidTag");

    let v = s3
        .get_bucket_versioning()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert!(v.status().is_none());
    let e = s3.get_bucket_cors().bucket("bkt").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchCORSConfiguration");
}

/// `If-Match: *` (RFC 7232): true when the key exists, so it overwrites an existing object and
/// is 412 on a missing key.
#[tokio::test]
async fn if_match_star_overwrites_an_existing_key_and_refuses_a_missing_one() {
    let (_lb, s3) = crate::harness::setup_with_bucket("bkt").await;
    let missing = s3
        .put_object()
        .bucket("bkt")
        .key("star")
        .if_match("*")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&missing), "PreconditionFailed");
    s3.put_object()
        .bucket("bkt")
        .key("star")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("bkt")
        .key("star")
        .if_match("*")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("star")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"two"
    );
}
