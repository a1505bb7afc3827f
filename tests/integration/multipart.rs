//! Multipart uploads: the whole API, its error codes, checksums, partNumber reads, crashes.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};

use crate::harness::{Lifeboat, code, data, setup_with_bucket};

const MIB: usize = 1 << 20;

async fn create(s3: &aws_sdk_s3::Client, key: &str, alg: Option<ChecksumAlgorithm>) -> String {
    s3.create_multipart_upload()
        .bucket("bkt")
        .key(key)
        .set_checksum_algorithm(alg)
        .content_type("video/mp4")
        .metadata("origin", "test")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned()
}

async fn part(
    s3: &aws_sdk_s3::Client,
    key: &str,
    id: &str,
    n: i32,
    body: Vec<u8>,
) -> CompletedPart {
    let out = s3
        .upload_part()
        .bucket("bkt")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    CompletedPart::builder()
        .part_number(n)
        .e_tag(out.e_tag().unwrap())
        .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
        .build()
}

fn md5(b: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(b).into()
}

#[tokio::test]
async fn upload_complete_and_read_back_by_part() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let bodies = [data(5 * MIB, 1), data(5 * MIB, 2), data(1234, 3)];
    let id = create(&s3, "video.mp4", Some(ChecksumAlgorithm::Crc32)).await;
    let mut parts = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        parts.push(part(&s3, "video.mp4", &id, i as i32 + 1, b.clone()).await);
    }
    // Re-uploading a part: the last upload wins.
    parts[2] = part(&s3, "video.mp4", &id, 3, bodies[2].clone()).await;

    let listed = s3
        .list_parts()
        .bucket("bkt")
        .key("video.mp4")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 3);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("bkt")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);

    let done = s3
        .complete_multipart_upload()
        .bucket("bkt")
        .key("video.mp4")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut concat = Vec::new();
    for b in &bodies {
        concat.extend_from_slice(&md5(b));
    }
    let want = format!("\"{}-3\"", hex::encode(md5(&concat)));
    assert_eq!(done.e_tag(), Some(want.as_str()));
    assert!(done.checksum_crc32().is_some_and(|c| c.ends_with("-3")));

    let got = s3
        .get_object()
        .bucket("bkt")
        .key("video.mp4")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("video/mp4"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("test")
    );
    assert_eq!(got.e_tag(), Some(want.as_str()));
    let all = got.body.collect().await.unwrap().into_bytes();
    assert!(all.as_ref() == bodies.concat().as_slice());

    let p2 = s3
        .get_object()
        .bucket("bkt")
        .key("video.mp4")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(p2.parts_count(), Some(3));
    assert_eq!(p2.content_length(), Some(5 * MIB as i64));
    assert!(p2.body.collect().await.unwrap().into_bytes().as_ref() == bodies[1].as_slice());
    let h = s3
        .head_object()
        .bucket("bkt")
        .key("video.mp4")
        .part_number(3)
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(1234));
    assert_eq!(h.parts_count(), Some(3));
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("video.mp4")
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidPartNumber");

    // A range across the part boundary.
    let r = s3
        .get_object()
        .bucket("bkt")
        .key("video.mp4")
        .range(format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 9))
        .send()
        .await
        .unwrap();
    let got = r.body.collect().await.unwrap().into_bytes();
    assert!(got.as_ref() == &bodies.concat()[5 * MIB - 10..5 * MIB + 10]);
    assert!(
        s3.list_multipart_uploads()
            .bucket("bkt")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    );
}

#[tokio::test]
async fn default_upload_gets_a_full_object_crc64nvme() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let bodies = [data(5 * MIB, 4), data(100, 5)];
    let id = create(&s3, "k", None).await;
    let mut parts = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let out = s3
            .upload_part()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(b.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The whole body's CRC64NVME, as a single PUT of the same bytes would report.
    s3.put_object()
        .bucket("bkt")
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .body(ByteStream::from(bodies.concat()))
        .send()
        .await
        .unwrap();
    let a = s3
        .head_object()
        .bucket("bkt")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let b = s3
        .head_object()
        .bucket("bkt")
        .key("single")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(a.checksum_crc64_nvme().is_some());
    assert_eq!(a.checksum_crc64_nvme(), b.checksum_crc64_nvme());
}

#[tokio::test]
async fn complete_checks_order_etags_and_sizes() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let id = create(&s3, "k", None).await;
    let p1 = part(&s3, "k", &id, 1, data(1000, 1)).await;
    let p2 = part(&s3, "k", &id, 2, data(1000, 2)).await;
    let complete = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
    };
    let e = complete(vec![p2.clone(), p1.clone()]).await.unwrap_err();
    assert_eq!(code(&e), "InvalidPartOrder");
    let wrong = CompletedPart::builder()
        .part_number(2)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let e = complete(vec![p1.clone(), wrong]).await.unwrap_err();
    assert_eq!(code(&e), "InvalidPart");
    let missing = CompletedPart::builder()
        .part_number(7)
        .e_tag(p1.e_tag().unwrap())
        .build();
    let e = complete(vec![p1.clone(), missing]).await.unwrap_err();
    assert_eq!(code(&e), "InvalidPart");
    // Part 1 is under 5 MiB and not the last.
    let e = complete(vec![p1.clone(), p2.clone()]).await.unwrap_err();
    assert_eq!(code(&e), "EntityTooSmall");
    // A single small part is fine: it is the last.
    complete(vec![p1.clone()]).await.unwrap();
    // A retried Complete with the same list is answered again (fidelity.rs); another list
    // finds no upload.
    complete(vec![p1.clone()]).await.unwrap();
    let e = complete(vec![p1, p2]).await.unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
}

#[tokio::test]
async fn unknown_upload_abort_and_malformed_body() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    let e = s3
        .upload_part()
        .bucket("bkt")
        .key("k")
        .upload_id("nope")
        .part_number(1)
        .body(ByteStream::from(vec![1u8]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    let e = s3
        .list_parts()
        .bucket("bkt")
        .key("k")
        .upload_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");

    let id = create(&s3, "k", None).await;
    part(&s3, "k", &id, 1, data(10, 1)).await;
    let req = crate::harness::signed_request(
        lb.port,
        "POST",
        &format!("/bkt/k?uploadId={id}"),
        b"<CompleteMultipartUpload><Part><PartNumber>1</Part>",
        std::time::SystemTime::now(),
    );
    let (status, _, body) = crate::harness::raw(lb.port, &req);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("MalformedXML"));

    s3.abort_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let e = s3
        .abort_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    let blobs: usize = std::fs::read_dir(lb.data_dir.join("blobs"))
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(blobs, 0, "aborting removes the parts' blobs");
}

#[tokio::test]
async fn upload_part_copy_with_ranges() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    let src = data(6 * MIB + 500, 9);
    s3.put_object()
        .bucket("bkt")
        .key("src")
        .body(ByteStream::from(src.clone()))
        .send()
        .await
        .unwrap();
    let id = create(&s3, "dst", None).await;
    let mut parts = Vec::new();
    for (n, range) in [(1, (0, 5 * MIB - 1)), (2, (5 * MIB, src.len() - 1))] {
        let out = s3
            .upload_part_copy()
            .bucket("bkt")
            .key("dst")
            .upload_id(&id)
            .part_number(n)
            .copy_source("bkt/src")
            .copy_source_range(format!("bytes={}-{}", range.0, range.1))
            .send()
            .await
            .unwrap();
        let etag = out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .unwrap()
            .to_owned();
        parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let e = s3
        .upload_part_copy()
        .bucket("bkt")
        .key("dst")
        .upload_id(&id)
        .part_number(3)
        .copy_source("bkt/src")
        .copy_source_range(format!("bytes=0-{}", src.len()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidArgument");
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("dst")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == src.as_slice());
}

#[tokio::test]
async fn conditional_complete() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("exists")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let id = create(&s3, "exists", None).await;
    let p = part(&s3, "exists", &id, 1, data(10, 1)).await;
    let e = s3
        .complete_multipart_upload()
        .bucket("bkt")
        .key("exists")
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(CompletedMultipartUpload::builder().parts(p.clone()).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");
    // The upload survives a failed condition.
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("exists")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(p).build())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn crash_mid_upload_keeps_completed_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Lifeboat::start_in(dir.path(), &[]);
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let id = create(&s3, "k", None).await;
    let p1 = part(&s3, "k", &id, 1, data(5 * MIB, 1)).await;
    lb.kill9();
    let lb = Lifeboat::start_in(dir.path(), &[]);
    let s3 = lb.client();
    let listed = s3
        .list_parts()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 1);
    let p2 = part(&s3, "k", &id, 2, data(10, 2)).await;
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(p1)
                .parts(p2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(5 * MIB as i64 + 10));
}

#[tokio::test]
async fn abandoned_uploads_are_cleaned_up() {
    let lb = Lifeboat::start_with_config("[limits]\nabandoned_upload_seconds = 1\n");
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let id = create(&s3, "k", None).await;
    part(&s3, "k", &id, 1, data(10, 1)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let e = s3
            .list_parts()
            .bucket("bkt")
            .key("k")
            .upload_id(&id)
            .send()
            .await;
        if let Err(e) = e {
            assert_eq!(code(&e), "NoSuchUpload");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "upload was not cleaned up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
