//! Migration to S3 (issue 12, item 3): 1,000 objects written local-only, the upstream turned on
//! (they stay served and listed), a sync cut by `kill -9` half way, then resumed with
//! `lifeboat sync`: every object ends up upstream with its ETag, and none is uploaded twice
//! (counted in the upstream's own access log: the upstream is a second Lifeboat).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{
    AK, AdminAuth, Lifeboat, SK, lifeboat, md5_hex, run_admin_command, token_file,
};

const TOKEN: &str = "migration-test-admin-token-0123456789";
const OBJECTS: usize = 1000;

fn body_of(i: usize) -> Vec<u8> {
    format!("migrated object {i:04} ").repeat(40).into_bytes()
}

fn gateway_config(dir: &std::path::Path, up: &Lifeboat) -> String {
    format!(
        "[server]\nadmin_token_file = {:?}\n[upstream]\nendpoint = \"{}\"\naccess_key = \"{AK}\"\n\
         secret_key = \"{SK}\"\n",
        token_file(dir, TOKEN),
        up.endpoint
    )
}

fn sync_status(lb: &Lifeboat) -> serde_json::Value {
    let (status, _, body) = lb.admin_call("GET", "/storage/sync", AdminAuth::Bearer(TOKEN), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

/// Successful PutObject answers per key in a server's access log.
fn puts_per_key(log: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["operation"] == "PutObject" && v["status"] == 200 {
            *n.entry(v["key"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_killed_half_way_resumes_and_uploads_nothing_twice() {
    let up = Lifeboat::start();
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
                .key(format!("docs/{i:04}"))
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
    // The upstream turned on: the objects stay local-only, served and listed.
    let mut lb = lifeboat(dir.path(), &gateway_config(dir.path(), &up));
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
        "local-only objects are listed"
    );
    let head = s3
        .head_object()
        .bucket("mig")
        .key("docs/0007")
        .send()
        .await
        .expect("served");
    assert_eq!(head.content_length(), Some(body_of(7).len() as i64));
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
    // A paced sync (about 1,000 objects of 1 KiB at 200 KB/s: five seconds), cut half way.
    let (code, _, body) = lb.admin_call(
        "POST",
        "/storage/sync",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "mig", "rate": 200000}"#,
    );
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = sync_status(&lb);
        if doc["sync"]["uploaded"].as_u64().unwrap_or(0) >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {doc}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lb.kill9();
    let before = puts_per_key(&up.log()).len();
    assert!(before < OBJECTS, "cut before the end: {before}");
    // Resumed from the command line.
    let lb = lifeboat(dir.path(), &gateway_config(dir.path(), &up));
    let summary = run_admin_command(&lb, dir.path(), &["sync", "--bucket", "mig"]);
    assert!(summary.contains("0 failed"), "{summary}");
    let status = lb.status();
    assert_eq!(
        status["local"]["objects"]["synced"], OBJECTS as u64,
        "{status}"
    );
    // Every object is upstream, with its ETag, uploaded once.
    let direct = up.client();
    let mut etags = HashMap::new();
    let mut token = None;
    loop {
        let page = direct
            .list_objects_v2()
            .bucket("mig")
            .set_continuation_token(token)
            .send()
            .await
            .expect("upstream list");
        for o in page.contents() {
            etags.insert(
                o.key().unwrap_or("").to_owned(),
                o.e_tag().unwrap_or("").trim_matches('"').to_owned(),
            );
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(etags.len(), OBJECTS);
    for i in 0..OBJECTS {
        assert_eq!(etags[&format!("docs/{i:04}")], md5_hex(&body_of(i)), "{i}");
    }
    // A PUT the kill cut off after the upstream stored it is logged there as 499 (its client
    // went away), and the resumed sync finds it upstream by its ETag instead of uploading it.
    let puts = puts_per_key(&up.log());
    assert!(
        puts.len() <= OBJECTS && puts.len() + 8 >= OBJECTS,
        "{}",
        puts.len()
    );
    let twice: Vec<_> = puts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "uploaded twice: {twice:?}");
}
