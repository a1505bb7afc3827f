//! Crash safety: kill -9 in the middle of an upload leaves no visible object and no temp file
//! after a restart; acknowledged objects survive.

use std::io::Write;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Lifeboat, data};

#[tokio::test]
async fn kill_9_during_upload_leaves_no_object_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Lifeboat::start_in(dir.path(), &[]);
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let kept = data(100_000, 9);
    s3.put_object()
        .bucket("bkt")
        .key("kept")
        .body(ByteStream::from(kept.clone()))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("bkt")
        .key("big")
        .body(ByteStream::from(b"old".to_vec()))
        .send()
        .await
        .unwrap();

    // A presigned PUT of 1 GiB, of which only 64 MiB is ever sent.
    use aws_sdk_s3::presigning::PresigningConfig;
    let p = s3
        .put_object()
        .bucket("bkt")
        .key("big")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let path = p.uri().strip_prefix(&lb.endpoint).unwrap().to_owned();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", lb.port)).unwrap();
    write!(
        sock,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
        lb.port,
        1u64 << 30
    )
    .unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..64 {
        sock.write_all(&chunk).unwrap();
    }
    // Wait until the temp file holds data, then crash.
    let tmp = lb.data_dir.join("tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&tmp).unwrap().count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "the upload should be in flight"
    );
    lb.kill9();
    drop(sock);

    let lb = Lifeboat::start_in(dir.path(), &[]);
    let s3 = lb.client();
    assert_eq!(
        std::fs::read_dir(lb.data_dir.join("tmp")).unwrap().count(),
        0
    );
    // The old object is intact; the torn upload never became visible.
    let old = s3
        .get_object()
        .bucket("bkt")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"old"
    );
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("kept")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == kept.as_slice());
    // Exactly the two committed blobs remain on disk.
    let blobs: usize = std::fs::read_dir(lb.data_dir.join("blobs"))
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(blobs, 2);
}

#[tokio::test]
async fn orphan_blobs_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut lb = Lifeboat::start_in(dir.path(), &[]);
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    s3.put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from(b"v".to_vec()))
        .send()
        .await
        .unwrap();
    lb.kill9();
    // A blob renamed into place whose metadata never committed (crash between the two steps).
    let orphan = lb.data_dir.join("blobs").join("ff");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("ff00000000000000000000000000000f"), b"orphan").unwrap();
    let lb = Lifeboat::start_in(dir.path(), &[]);
    assert!(!orphan.join("ff00000000000000000000000000000f").exists());
    let s3 = lb.client();
    s3.head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
}
