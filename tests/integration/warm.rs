//! Cache warm-up (issue 12, item 2): 500 objects written straight to SeaweedFS, a warm-up
//! through the admin API cut short by `kill -9`, then resumed with `lifeboat warm`: every
//! object ends up cached (served with the upstream stopped) and none is fetched twice.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{AdminAuth, Lifeboat, lifeboat, run_admin_command, token_file};
use crate::upstream::UpstreamServer;

const TOKEN: &str = "warm-test-admin-token-0123456789abcdef";
const OBJECTS: usize = 500;

fn config(dir: &std::path::Path, up: &UpstreamServer) -> String {
    format!(
        "[server]\nadmin_token_file = {:?}\n[upstream]\nendpoint = \"{}\"\naccess_key = \"{}\"\n\
         secret_key = \"{}\"\n",
        token_file(dir, TOKEN),
        up.endpoint(),
        up.access_key,
        up.secret_key
    )
}

fn warm_status(lb: &Lifeboat) -> serde_json::Value {
    let (status, _, body) = lb.admin_call("GET", "/storage/warm", AdminAuth::Bearer(TOKEN), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<serde_json::Value>(&body).expect("json")["warm"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_up_cut_short_is_resumed_and_every_object_is_then_cached() {
    let Some((mut up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let direct = up.client();
    direct
        .create_bucket()
        .bucket("warm")
        .send()
        .await
        .expect("bucket");
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..OBJECTS {
        let direct = direct.clone();
        puts.spawn(async move {
            direct
                .put_object()
                .bucket("warm")
                .key(format!("media/{i:04}.bin"))
                .body(ByteStream::from(format!("object {i}").into_bytes()))
                .send()
                .await
                .expect("put upstream");
        });
        while puts.len() >= 16 {
            puts.join_next().await;
        }
    }
    while puts.join_next().await.is_some() {}
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lb = lifeboat(dir.path(), &config(dir.path(), &up));
    let (status, _, body) = lb.admin_call(
        "POST",
        "/storage/warm",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "warm", "prefix": "media/"}"#,
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    // A second one while it runs is refused.
    let (status, _, _) = lb.admin_call(
        "POST",
        "/storage/warm",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "warm", "prefix": "other/"}"#,
    );
    assert_eq!(status, 409);
    let deadline = Instant::now() + Duration::from_secs(60);
    let fetched_before = loop {
        let w = warm_status(&lb);
        let fetched = w["fetched"].as_u64().unwrap_or(0);
        if fetched >= 50 {
            break fetched;
        }
        assert!(w["running"] == true, "finished before it could be cut: {w}");
        assert!(Instant::now() < deadline, "no progress: {w}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    lb.kill9();
    let lb = lifeboat(dir.path(), &config(dir.path(), &up));
    let summary = run_admin_command(&lb, dir.path(), &["warm", "s3://warm/media/", "--pin"]);
    let w = warm_status(&lb);
    let (fetched, skipped) = (
        w["fetched"].as_u64().unwrap_or(0),
        w["skipped"].as_u64().unwrap_or(0),
    );
    assert_eq!(w["found"], OBJECTS as u64, "{w}");
    assert_eq!(w["failed"], 0, "{w}");
    assert_eq!(fetched + skipped, OBJECTS as u64, "{w}");
    assert!(
        skipped >= fetched_before.saturating_sub(2),
        "what the first run cached is not fetched again: {w}"
    );
    assert!(summary.contains("already cached"), "{summary}");
    // --pin pinned the prefix.
    let (_, _, pins) = lb.admin_call("GET", "/storage/pin", AdminAuth::Bearer(TOKEN), b"");
    let pins: serde_json::Value = serde_json::from_slice(&pins).expect("json");
    assert_eq!(pins["pins"][0]["prefix"], "media/", "{pins}");
    // Everything is served from the cache with the upstream gone.
    up.kill();
    let s3 = lb.client();
    for i in (0..OBJECTS).step_by(37) {
        let body = s3
            .get_object()
            .bucket("warm")
            .key(format!("media/{i:04}.bin"))
            .send()
            .await
            .expect("served from the cache")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(body.as_ref(), format!("object {i}").as_bytes());
    }
}

#[tokio::test]
async fn a_head_with_x_lifeboat_cache_warm_fetches_the_object_in_the_background() {
    let Some((mut up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let direct = up.client();
    direct
        .create_bucket()
        .bucket("hwarm")
        .send()
        .await
        .expect("bucket");
    direct
        .put_object()
        .bucket("hwarm")
        .key("one")
        .body(ByteStream::from_static(b"warmed by a HEAD"))
        .send()
        .await
        .expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let lb = lifeboat(dir.path(), &config(dir.path(), &up));
    let s3 = lb.client();
    s3.head_object()
        .bucket("hwarm")
        .key("one")
        .customize()
        .mutate_request(|r| {
            r.headers_mut().insert("x-lifeboat-cache", "warm");
        })
        .send()
        .await
        .expect("head");
    // Once the status counts it as cached, the upstream can go.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = lb.status();
        if doc["local"]["objects"]["synced"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never cached: {doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    up.kill();
    let body = s3
        .get_object()
        .bucket("hwarm")
        .key("one")
        .send()
        .await
        .expect("from the cache")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(body.as_ref(), b"warmed by a HEAD");
    // With the upstream gone, a warm-up cannot list it: it stops with an error, not a success
    // made of the local index.
    let (status, _, _) = lb.admin_call(
        "POST",
        "/storage/warm",
        AdminAuth::Bearer(TOKEN),
        br#"{"bucket": "hwarm"}"#,
    );
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let w = loop {
        let w = warm_status(&lb);
        if w["running"] == false {
            break w;
        }
        assert!(Instant::now() < deadline, "{w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(w["error"].is_string(), "{w}");
    assert_eq!(w["skipped"], 0, "{w}");
}
