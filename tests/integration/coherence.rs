//! Coherence with writers that bypass a node (issue 12, item 5): an S3 event notification in
//! MinIO's webhook format, and a peer Lifeboat's notice, each make the next read of a changed
//! object a miss that returns the new version. Against a real SeaweedFS.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{AdminAuth, Lifeboat, lifeboat, md5_hex, token_file};
use crate::upstream::UpstreamServer;

const TOKEN: &str = "coherence-test-admin-token-0123456789";

fn gateway(dir: &std::path::Path, up: &UpstreamServer, extra: &str) -> Lifeboat {
    let token = token_file(dir, TOKEN);
    let config = up.gateway_config(&format!("admin_token_file = {token:?}\n{extra}"), "");
    lifeboat(dir, &config)
}

/// The object's bytes through `s3`, or `None` when it cannot be read.
async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(out.body.collect().await.ok()?.into_bytes().to_vec())
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .expect("put");
}

/// Polls GETs through `s3` until the object reads `want` (the cache filled or dropped).
async fn until_reads(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, want: Option<&[u8]>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = get(s3, bucket, key).await;
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never read {want:?}, last {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until a GET through `lb` is a cache hit: the copy a miss fetched is committed (it is
/// committed just after its last byte reaches the client).
async fn until_hit(lb: &Lifeboat, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, cache, _, _) = crate::harness::get(lb, path);
        if status == 200 && cache.as_deref() == Some("HIT") {
            return;
        }
        assert!(Instant::now() < deadline, "never a hit: {status} {cache:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event in the shape MinIO's webhook target posts (from MinIO's documentation of bucket
/// notifications: the top-level EventName and Key, then AWS's Records[]).
fn minio_event(name: &str, bucket: &str, key: &str, etag: &str) -> String {
    let encoded = key.replace(' ', "+");
    format!(
        r#"{{"EventName":"{name}","Key":"{bucket}/{key}","Records":[{{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-12-02T01:00:00.000Z","eventName":"{name}","userIdentity":{{"principalId":"minioadmin"}},"requestParameters":{{"principalId":"minioadmin","region":"","sourceIPAddress":"127.0.0.1"}},"responseElements":{{"content-length":"0","x-amz-request-id":"1876E2F4A7C3B9D1","x-minio-deployment-id":"7c3a7d5e-0000-4000-8000-000000000000","x-minio-origin-endpoint":"http://127.0.0.1:9000"}},"s3":{{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{{"name":"{bucket}","ownerIdentity":{{"principalId":"minioadmin"}},"arn":"arn:aws:s3:::{bucket}"}},"object":{{"key":"{encoded}","size":2,"eTag":"{etag}","contentType":"application/octet-stream","userMetadata":{{"content-type":"application/octet-stream"}},"sequencer":"1876E2F4A7D1C2B3"}}}},"source":{{"host":"127.0.0.1","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.0.70"}}}}]}}"#
    )
}

#[tokio::test]
async fn a_minio_event_notification_makes_the_next_read_a_miss() {
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let lb = gateway(dir.path(), &up, "");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("evb")
        .send()
        .await
        .expect("bucket");
    put(&s3, "evb", "photo 1.jpg", b"v1").await;
    until_reads(&s3, "evb", "photo 1.jpg", Some(b"v1")).await;
    // Another writer changes it upstream: the cache still serves v1.
    let direct = up.client();
    put(&direct, "evb", "photo 1.jpg", b"v2").await;
    assert_eq!(get(&s3, "evb", "photo 1.jpg").await, Some(b"v1".to_vec()));
    let event = minio_event(
        "s3:ObjectCreated:Put",
        "evb",
        "photo 1.jpg",
        &md5_hex(b"v2"),
    );
    let (status, _, body) = lb.admin_call(
        "POST",
        "/storage/events",
        AdminAuth::Bearer(TOKEN),
        event.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["dropped"], 1, "{doc}");
    assert_eq!(get(&s3, "evb", "photo 1.jpg").await, Some(b"v2".to_vec()));
    // The same event again, once that version is cached, drops nothing.
    until_reads(&s3, "evb", "photo 1.jpg", Some(b"v2")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, body) = lb.admin_call(
            "POST",
            "/storage/events",
            AdminAuth::Bearer(TOKEN),
            event.as_bytes(),
        );
        let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
        if doc["dropped"] == 0 {
            break;
        }
        // The background fill had not finished: read again so it does.
        assert!(
            Instant::now() < deadline,
            "the same version is dropped again and again"
        );
        until_reads(&s3, "evb", "photo 1.jpg", Some(b"v2")).await;
    }
    // A removal upstream.
    direct
        .delete_object()
        .bucket("evb")
        .key("photo 1.jpg")
        .send()
        .await
        .expect("delete upstream");
    let removed = minio_event("s3:ObjectRemoved:Delete", "evb", "photo 1.jpg", "");
    let (status, _, _) = lb.admin_call(
        "POST",
        "/storage/events",
        AdminAuth::Bearer(TOKEN),
        removed.as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(
        get(&s3, "evb", "photo 1.jpg").await.is_none(),
        "gone after the removal event"
    );
    // Without the token, nothing is accepted.
    let (status, _, _) =
        lb.admin_call("POST", "/storage/events", AdminAuth::None, event.as_bytes());
    assert_eq!(status, 401);
    let (status, _, _) = lb.admin_call("POST", "/storage/events", AdminAuth::Bearer(TOKEN), b"{}");
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_write_through_node_a_is_read_new_through_node_b_by_a_peer_notice() {
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let dir_b = tempfile::tempdir().expect("tempdir");
    let b = gateway(dir_b.path(), &up, "");
    let dir_a = tempfile::tempdir().expect("tempdir");
    let a = gateway(
        dir_a.path(),
        &up,
        &format!("[cluster]\npeers = [\"{}\"]\n", b.admin),
    );
    let (sa, sb) = (a.client(), b.client());
    sa.create_bucket()
        .bucket("peer")
        .send()
        .await
        .expect("bucket");
    put(&sa, "peer", "doc", b"first").await;
    until_reads(&sb, "peer", "doc", Some(b"first")).await;
    until_hit(&b, "/peer/doc").await;
    put(&sa, "peer", "doc", b"second").await;
    until_reads(&sb, "peer", "doc", Some(b"second")).await;
    sa.delete_object()
        .bucket("peer")
        .key("doc")
        .send()
        .await
        .expect("delete");
    until_reads(&sb, "peer", "doc", None).await;
    assert!(b.log().contains("cached copy dropped"), "{}", b.log());
}
