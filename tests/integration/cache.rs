//! The cache budget and pinning (issue 12, items 1 and 2) in gateway mode in front of
//! SeaweedFS, through the fault proxy (skipped like `gateway.rs` when it is not installed):
//! with a 1 MiB budget and a 50% low-water mark, synced copies are evicted and fetched again on
//! read (MISS, then HIT, the same bytes) and still listed; pinned and pending objects survive;
//! when pending data alone fills the budget, writes (PUT, POST forms, copies) get 507 and reads
//! go on, and the status document and the metrics say so. Every wait is a bounded poll.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde_json::{Value, json};

use crate::harness::{AdminAuth, Lifeboat, data, get, lifeboat, put, raw, signed_request};
use crate::upstream::{Fault, FaultProxy, UpstreamServer, available};

const KIB: usize = 1024;
/// Five of these fit in the 1 MiB budget, six do not.
const OBJECT: usize = 200 * KIB;

/// Polls `f` every 100 ms until it is true; fails after `limit` with `what`.
async fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metrics(lb: &Lifeboat) -> String {
    let (status, _, body) = lb.admin_call("GET", "/metrics", AdminAuth::None, b"");
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of an unlabelled metric line `name value`.
fn metric(text: &str, name: &str) -> f64 {
    crate::harness::metric_sample(text, name)
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
}

/// A write refused for the budget, as the SDK reports it: the status, the code, and whether
/// the message says why (objects not on the upstream yet).
fn refused<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: &SdkError<E, HttpResponse>,
) -> (u16, String, bool) {
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let meta = e.as_service_error().map(ProvideErrorMetadata::meta);
    (
        status,
        meta.and_then(|m| m.code()).unwrap_or_default().to_owned(),
        meta.and_then(|m| m.message())
            .is_some_and(|m| m.contains("not on the upstream yet")),
    )
}

fn pin(lb: &Lifeboat, method: &str, bucket: &str, prefix: &str) -> Value {
    let body = json!({"bucket": bucket, "prefix": prefix});
    let (status, doc) = lb.admin_json(method, "/storage/pin", AdminAuth::SigV4, &body);
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_pending_and_pinned_objects_and_refuses_writes_when_they_fill_the_budget() {
    if !available() {
        eprintln!("skipped: SeaweedFS is not installed");
        return;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let lb_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start(up_dir.path());
    let proxy = FaultProxy::start(up.port).await;
    let config = format!(
        "[storage]\nmax_bytes = \"1MiB\"\nevict_to = \"50%\"\n\
         [upstream]\nendpoint = \"http://127.0.0.1:{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
        proxy.port, up.access_key, up.secret_key
    );
    let mut lb = lifeboat(lb_dir.path(), &config);
    let s3 = lb.client();
    s3.create_bucket().bucket("cache").send().await.unwrap();
    let cache = lb.status()["cache"].clone();
    assert_eq!(cache["evicts"], true, "{cache}");
    assert_eq!(cache["max_bytes"], 1 << 20);
    assert_eq!(cache["evict_to"], 1 << 19);

    // A pin made before its objects exist covers them (a prefix, not a flag per object).
    let doc = pin(&lb, "POST", "cache", "pinned/");
    assert_eq!(doc["added"], true, "{doc}");
    let (_, listed) = lb.admin_json("GET", "/storage/pin", AdminAuth::SigV4, &Value::Null);
    assert_eq!(listed["pins"][0]["prefix"], "pinned/", "{listed}");

    // The pinned object is the oldest, so least-recently-used order would take it first.
    let pinned = data(OBJECT, 1);
    assert_eq!(put(&lb, "/cache/pinned/a", &pinned, &[]).0, 200);
    let synced: Vec<Vec<u8>> = (0..6).map(|i| data(OBJECT, 10 + i)).collect();
    for (i, body) in synced.iter().enumerate() {
        let (status, sync) = put(&lb, &format!("/cache/s{i}"), body, &[]);
        assert_eq!((status, sync.as_deref()), (200, Some("synced")));
    }
    // 1.4 MiB written: the eviction task brings the total back under the budget.
    until(Duration::from_secs(30), "eviction under the budget", || {
        let c = lb.status()["cache"].clone();
        c["bytes_used"].as_u64().unwrap() <= 1 << 20 && c["evicted_objects"].as_u64().unwrap() > 0
    })
    .await;
    let (status, cache_hdr, _, body) = get(&lb, "/cache/pinned/a");
    assert_eq!((status, cache_hdr.as_deref()), (200, Some("HIT")), "pinned");
    assert_eq!(body, pinned);
    // The oldest synced copy went first; its next read is a miss with the right bytes, the
    // one after a hit.
    let (status, cache_hdr, _, body) = get(&lb, "/cache/s0");
    assert_eq!(
        (status, cache_hdr.as_deref()),
        (200, Some("MISS")),
        "evicted"
    );
    assert_eq!(body, synced[0]);
    until(Duration::from_secs(10), "s0 cached again", || {
        get(&lb, "/cache/s0").1.as_deref() == Some("HIT")
    })
    .await;
    // Evicted copies are still listed: the listing is the upstream's.
    let listed = s3.list_objects_v2().bucket("cache").send().await.unwrap();
    let mut keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["pinned/a", "s0", "s1", "s2", "s3", "s4", "s5"]);
    let m = metrics(&lb);
    let evicted = metric(&m, "lifeboat_evicted_objects_total");
    assert!(evicted >= 1.0, "{m}");
    assert!(metric(&m, "lifeboat_evicted_bytes_total") >= (OBJECT as f64) * evicted);
    assert_eq!(metric(&m, "lifeboat_cache_full"), 0.0);

    // The upstream refuses connections: writes are acknowledged as pending and cannot be
    // evicted. Five fit; the sixth would overfill the budget and is refused.
    proxy.set(Fault::Reset);
    let pending: Vec<Vec<u8>> = (0..6).map(|i| data(OBJECT, 100 + i)).collect();
    for (i, body) in pending.iter().take(5).enumerate() {
        let (status, sync) = put(&lb, &format!("/cache/p{i}"), body, &[]);
        assert_eq!((status, sync.as_deref()), (200, Some("pending")), "p{i}");
    }
    let req = signed_request(lb.port, "PUT", "/cache/p5", &pending[5], SystemTime::now());
    let (status, _, body) = raw(lb.port, &req);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("<Code>InsufficientStorage</Code>"), "{body}");
    assert!(body.contains("not on the upstream yet"), "{body}");
    // Every write path is refused the same way, before it writes anything: a POST form upload
    // (by its declared length), a CopyObject and an UploadPartCopy of a pending object (by the
    // source's size). None stores anything: the counts below stay at five pending.
    let policy = crate::post::policy(
        "2099-01-01T00:00:00Z",
        r#"[{"bucket": "cache"}, ["starts-with", "$key", ""], ["starts-with", "$x-amz-algorithm", ""],
            ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]"#,
    );
    let fields = crate::post::signed_fields(&policy, &[("key", "form/p5")]);
    let form = crate::post::form_post(lb.port, "cache", &fields, "p5.bin", &pending[5]);
    let (status, _, body) = raw(lb.port, &form);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 507, "POST form: {body}");
    assert!(body.contains("<Code>InsufficientStorage</Code>"), "{body}");
    assert!(body.contains("not on the upstream yet"), "{body}");
    let e = s3
        .copy_object()
        .bucket("cache")
        .key("copy-of-p0")
        .copy_source("cache/p0")
        .send()
        .await
        .expect_err("CopyObject admitted");
    assert_eq!(
        refused(&e),
        (507, "InsufficientStorage".into(), true),
        "{e:?}"
    );
    let upload = s3
        .create_multipart_upload()
        .bucket("cache")
        .key("parts")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let e = s3
        .upload_part_copy()
        .bucket("cache")
        .key("parts")
        .upload_id(id)
        .part_number(1)
        .copy_source("cache/p0")
        .send()
        .await
        .expect_err("UploadPartCopy admitted");
    assert_eq!(
        refused(&e),
        (507, "InsufficientStorage".into(), true),
        "{e:?}"
    );
    s3.abort_multipart_upload()
        .bucket("cache")
        .key("parts")
        .upload_id(id)
        .send()
        .await
        .unwrap();

    // Reads go on, from local disk: the pending objects and the pinned one.
    for (i, b) in pending.iter().take(5).enumerate() {
        let (status, cache_hdr, sync, got) = get(&lb, &format!("/cache/p{i}"));
        assert_eq!(status, 200);
        assert_eq!(
            (cache_hdr.as_deref(), sync.as_deref()),
            (Some("HIT"), Some("pending"))
        );
        assert_eq!(&got, b);
    }
    // Eviction took every synced copy it could, and nothing else.
    until(
        Duration::from_secs(30),
        "every unpinned synced copy evicted",
        || {
            let s = lb.status();
            s["local"]["objects"]["synced"] == 1 && s["local"]["objects"]["pending"] == 5
        },
    )
    .await;
    let (status, cache_hdr, _, body) = get(&lb, "/cache/pinned/a");
    assert_eq!(
        (status, cache_hdr.as_deref()),
        (200, Some("HIT")),
        "still pinned"
    );
    assert_eq!(body, pinned);
    let cache = lb.status()["cache"].clone();
    assert_eq!(cache["full"], true, "{cache}");
    let reason = cache["full_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not on the upstream yet"), "{cache}");
    let m = metrics(&lb);
    assert_eq!(metric(&m, "lifeboat_cache_full"), 1.0, "{m}");
    assert!(metric(&m, "lifeboat_insufficient_storage_total") >= 1.0);

    // The upstream is back: the pending objects replicate, become evictable, and writes fit
    // again.
    proxy.set(Fault::Pass);
    until(Duration::from_secs(60), "writes admitted again", || {
        put(&lb, "/cache/p5", &pending[5], &[]).0 == 200
    })
    .await;
    let (status, _, _, body) = get(&lb, "/cache/p0");
    assert_eq!((status, body == pending[0]), (200, true));
    until(Duration::from_secs(30), "the cache no longer full", || {
        lb.status()["cache"]["full"] == false
    })
    .await;

    // Turned local-only again with USE_S3_STORAGE=false (the same config file, [upstream] and
    // all): what is on local disk is served, and the status document says which evicted
    // objects only the upstream has (they are 404 now).
    let count = |s: &Value| -> u64 {
        ["local_only", "pending", "synced", "failed"]
            .iter()
            .map(|k| s["local"]["objects"][*k].as_u64().unwrap_or(0))
            .sum()
    };
    let on_disk = count(&lb.status());
    lb.kill9();
    let config_file = lb_dir.path().join("lifeboat.toml");
    let lb = Lifeboat::start_in(
        lb_dir.path(),
        &[
            ("LIFEBOAT_TEST_CONFIG", &config_file.to_string_lossy()),
            ("USE_S3_STORAGE", "false"),
        ],
    );
    let s = lb.status();
    assert_eq!(s["mode"], "local-only");
    assert_eq!(count(&s), on_disk, "{s}");
    let unreachable = &s["unreachable"];
    let gone = unreachable["objects"].as_u64().unwrap();
    assert!(gone >= 1, "{s}");
    assert_eq!(
        gone + on_disk,
        13,
        "every object is either on disk or named: {s}"
    );
    for key in unreachable["sample"].as_array().unwrap() {
        let (status, _, _, _) = get(&lb, &format!("/{}", key.as_str().unwrap()));
        assert_eq!(status, 404, "{key}");
    }
    let (status, _, _, body) = get(&lb, "/cache/pinned/a");
    assert_eq!((status, body == pinned), (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_are_stored_durably_and_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut lb = lifeboat(dir.path(), "");
    // Local-only: nothing to warm from or sync to, and nothing evicted is unreachable.
    for path in ["/storage/warm", "/storage/sync"] {
        let (status, doc) =
            lb.admin_json("POST", path, AdminAuth::SigV4, &json!({"bucket": "photos"}));
        assert_eq!(
            (status, doc["error"]["code"].clone()),
            (409, json!("NoUpstream")),
            "{path}"
        );
    }
    assert_eq!(lb.status()["unreachable"]["objects"], 0);
    let doc = pin(&lb, "POST", "photos", "2024/");
    assert_eq!(
        (doc["pinned"].clone(), doc["added"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        pin(&lb, "POST", "photos", "2024/")["added"],
        false,
        "idempotent"
    );
    pin(&lb, "POST", "videos", "");
    lb.kill9();
    let lb = lifeboat(dir.path(), "");
    let (status, doc) = lb.admin_json("GET", "/storage/pin", AdminAuth::SigV4, &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(
        doc["evicts"], false,
        "local-only mode: nothing is evictable"
    );
    let pins: Vec<(String, String)> = doc["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["bucket"].as_str().unwrap().to_owned(),
                p["prefix"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pins,
        [
            ("photos".into(), "2024/".into()),
            ("videos".into(), String::new())
        ]
    );
    assert_eq!(lb.status()["cache"]["pins"], 2);
    assert_eq!(pin(&lb, "DELETE", "photos", "2024/")["removed"], true);
    assert_eq!(pin(&lb, "DELETE", "photos", "2024/")["removed"], false);
    // Refusals: a body that is not a pin, another method, no credentials.
    let (status, doc) = lb.admin_json("POST", "/storage/pin", AdminAuth::SigV4, &json!({"x": 1}));
    assert_eq!(
        (status, doc["error"]["code"].as_str()),
        (400, Some("InvalidRequest"))
    );
    let (status, _, _) = lb.admin_call("PUT", "/storage/pin", AdminAuth::SigV4, b"{}");
    assert_eq!(status, 405);
    let (status, _, _) = lb.admin_call("GET", "/storage/pin", AdminAuth::None, b"");
    assert_eq!(status, 401);
}
