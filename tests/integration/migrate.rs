//! Migration to S3 (issue 12, item 3), against SeaweedFS through the fault proxy: 1,000
//! objects written local-only, 50 of them also put straight on SeaweedFS with the same bytes,
//! the upstream turned on (they stay served and listed), a paced sync cut by `kill -9` half
//! way, then resumed with `lifeboat sync`. Every object ends up upstream with its ETag (a HEAD
//! on SeaweedFS itself), the 50 are reported skipped and never PUT, and no key is PUT twice:
//! the upstream's PUTs are counted on the wire by the proxy (request_log.rs).

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{AdminAuth, Lifeboat, lifeboat, md5_hex, run_admin_command, token_file};
use crate::upstream::FaultProxy;

const TOKEN: &str = "migration-test-admin-token-0123456789";
const OBJECTS: usize = 1000;
/// The first keys are already upstream before the sync: the outbox is in key order, so the
/// first run reaches all of them before it is cut.
const ALREADY_UPSTREAM: usize = 50;

fn key_of(i: usize) -> String {
    format!("docs/{i:04}")
}

fn body_of(i: usize) -> Vec<u8> {
    format!("migrated object {i:04} ").repeat(40).into_bytes()
}

fn sync_status(lb: &Lifeboat) -> serde_json::Value {
    let (status, _, body) = lb.admin_call("GET", "/storage/sync", AdminAuth::Bearer(TOKEN), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

/// The 2xx PUTs of each object key the proxy forwarded.
fn puts_ok(proxy: &FaultProxy) -> usize {
    (0..OBJECTS)
        .map(|i| proxy.requests("PUT", &format!("/mig/{}", key_of(i))).ok)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_killed_half_way_resumes_and_uploads_nothing_twice() {
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let proxy = FaultProxy::start(up.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Local-only first.
    let mut lb = lifeboat(dir.path(), "");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("mig")
        .send()
        .await
        .expect("bucket");
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..OBJECTS {
        let s3 = s3.clone();
        puts.spawn(async move {
            s3.put_object()
                .bucket("mig")
                .key(key_of(i))
                .body(ByteStream::from(body_of(i)))
                .send()
                .await
                .expect("put");
        });
        while puts.len() >= 16 {
            puts.join_next().await;
        }
    }
    while puts.join_next().await.is_some() {}
    lb.kill9();
    // Some are upstream already, with the same bytes (another copy job got there first).
    let direct = up.client();
    direct
        .create_bucket()
        .bucket("mig")
        .send()
        .await
        .expect("upstream bucket");
    for i in 0..ALREADY_UPSTREAM {
        direct
            .put_object()
            .bucket("mig")
            .key(key_of(i))
            .body(ByteStream::from(body_of(i)))
            .send()
            .await
            .expect("put upstream");
    }
    // The upstream turned on: the objects stay local-only, served and listed.
    let server = format!("admin_token_file = {:?}", token_file(dir.path(), TOKEN));
    let config = up.gateway_config_via(proxy.port, &server, "");
    let mut lb = lifeboat(dir.path(), &config);
    let s3 = lb.client();
    let listed = s3
        .list_objects_v2()
        .bucket("mig")
        .prefix("docs/")
        .max_keys(1000)
        .send()
        .await
        .expect("list");
    assert_eq!(
        listed.key_count(),
        Some(OBJECTS as i32),
        "local-only objects are listed beside the upstream's"
    );
    let head = s3
        .head_object()
        .bucket("mig")
        .key(key_of(77))
        .send()
        .await
        .expect("served");
    assert_eq!(head.content_length(), Some(body_of(77).len() as i64));
    let status = lb.status();
    assert_eq!(
        status["local"]["objects"]["local_only"], OBJECTS as u64,
        "{status}"
    );
    // A dry run changes nothing.
    let (code, _, body) = lb.admin_call(
        "POST",
        "/storage/sync",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "mig", "dry_run": true}"#,
    );
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sync_status(&lb)["sync"]["queueing"] == true {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sync_status(&lb)["sync"]["queued"], OBJECTS as u64);
    assert_eq!(
        lb.status()["local"]["objects"]["local_only"],
        OBJECTS as u64
    );
    assert_eq!(puts_ok(&proxy), 0, "a dry run uploads nothing");
    // A paced sync (950 objects of 840 bytes at 200 KB/s: four seconds), cut half way.
    let (code, _, body) = lb.admin_call(
        "POST",
        "/storage/sync",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "mig", "rate": 200000}"#,
    );
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(60);
    let doc = loop {
        let doc = sync_status(&lb);
        if doc["sync"]["uploaded"].as_u64().unwrap_or(0) >= 300 {
            break doc;
        }
        assert!(Instant::now() < deadline, "no progress: {doc}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The ones already upstream came first, and were found there.
    assert_eq!(doc["sync"]["skipped"], ALREADY_UPSTREAM as u64, "{doc}");
    lb.kill9();
    let before = puts_ok(&proxy);
    assert!(
        (300..OBJECTS - ALREADY_UPSTREAM).contains(&before),
        "cut half way: {before} uploaded"
    );
    // Resumed from the command line.
    let lb = lifeboat(dir.path(), &config);
    let summary = run_admin_command(&lb, dir.path(), &["sync", "--bucket", "mig"]);
    assert!(summary.contains("0 failed"), "{summary}");
    let status = lb.status();
    assert_eq!(
        status["local"]["objects"]["synced"], OBJECTS as u64,
        "{status}"
    );
    // Every object is on SeaweedFS itself, with its ETag.
    let mut heads = tokio::task::JoinSet::new();
    for i in 0..OBJECTS {
        let direct = direct.clone();
        heads.spawn(async move {
            let head = direct
                .head_object()
                .bucket("mig")
                .key(key_of(i))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{} not upstream: {e:?}", key_of(i)));
            let etag = head.e_tag().unwrap_or("").trim_matches('"').to_owned();
            assert_eq!(etag, md5_hex(&body_of(i)), "{}", key_of(i));
        });
        while heads.len() >= 16 {
            heads.join_next().await.expect("a task").expect("HEAD");
        }
    }
    while let Some(done) = heads.join_next().await {
        done.expect("HEAD");
    }
    // On the wire: the objects already upstream were asked about and never sent; every other
    // one was sent, and taken at most once, even the one the kill cut off after the upstream
    // stored it (the resumed sync finds it by its ETag instead of uploading it again).
    for i in 0..OBJECTS {
        let path = format!("/mig/{}", key_of(i));
        let put = proxy.requests("PUT", &path);
        if i < ALREADY_UPSTREAM {
            assert_eq!(put.sent, 0, "{path} was already upstream: {put:?}");
            assert!(proxy.requests("HEAD", &path).ok >= 1, "{path} not asked");
        } else {
            assert!(put.sent >= 1, "{path} never sent");
            assert!(put.ok <= 1, "{path} uploaded twice: {put:?}");
        }
    }
}
