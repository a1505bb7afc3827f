//! Configured limits answer with the AWS error for each, before the body is read where possible.

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Lifeboat, code};

const SMALL_LIMITS: &str = r#"
[limits]
max_object_size = "1KiB"
max_key_length = 64
max_header_bytes = "4KiB"
max_xml_body = "2KiB"
max_metadata_bytes = 100
"#;

#[tokio::test]
async fn each_limit_answers_with_its_aws_error() {
    let lb = Lifeboat::start_with_config(SMALL_LIMITS);
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();

    let e = s3
        .put_object()
        .bucket("bkt")
        .key("big")
        .body(ByteStream::from(vec![0u8; 2048]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "EntityTooLarge");

    let e = s3
        .put_object()
        .bucket("bkt")
        .key("k".repeat(65))
        .body(ByteStream::from(vec![1u8]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "KeyTooLongError");

    let e = s3
        .put_object()
        .bucket("bkt")
        .key("meta")
        .metadata("m", "v".repeat(200))
        .body(ByteStream::from(vec![1u8]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "MetadataTooLarge");

    let e = s3
        .put_object()
        .bucket("bkt")
        .key("headers")
        .metadata("a", "v".repeat(50))
        .cache_control("x".repeat(5000))
        .body(ByteStream::from(vec![1u8]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RequestHeaderSectionTooLarge");

    // Exactly at the object limit is fine.
    s3.put_object()
        .bucket("bkt")
        .key("fits")
        .body(ByteStream::from(vec![0u8; 1024]))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn oversized_xml_body_is_max_message_length_exceeded() {
    let lb = Lifeboat::start_with_config(SMALL_LIMITS);
    let body = format!(
        "<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>{}</CreateBucketConfiguration>",
        " ".repeat(3000)
    );
    let req = crate::harness::signed_request(
        lb.port,
        "PUT",
        "/big-xml",
        body.as_bytes(),
        std::time::SystemTime::now(),
    );
    let (status, _, resp) = crate::harness::raw(lb.port, &req);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("MaxMessageLengthExceeded"));
}

#[tokio::test]
async fn a_stalled_upload_is_a_request_timeout() {
    let lb = Lifeboat::start_with_config("[limits]\nbody_idle_seconds = 1\n");
    lb.client()
        .create_bucket()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    let p = lb
        .client()
        .put_object()
        .bucket("bkt")
        .key("slow")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                60,
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let path = p.uri().strip_prefix(&lb.endpoint).unwrap().to_owned();
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", lb.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 100\r\n\r\nab",
        lb.port
    )
    .unwrap();
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert!(
        resp.starts_with("HTTP/1.1 400") && resp.contains("RequestTimeout"),
        "{resp}"
    );
    assert_eq!(
        std::fs::read_dir(lb.data_dir.join("tmp")).unwrap().count(),
        0
    );
}
