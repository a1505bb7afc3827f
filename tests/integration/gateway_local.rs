//! Gateway mode with no external binary: the upstream (B) is a second Lifeboat, local-only, and
//! the gateway under test (A) reaches it through the fault proxy of `upstream.rs`. These run
//! wherever `cargo test` does; `gateway.rs` covers real upstreams (SeaweedFS, JuiceFS).
//!
//! The proxy runs on the test's runtime while the test blocks on raw requests, hence the
//! multi-threaded runtimes.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{
    AK, Lifeboat, SK, data, delete, get, lifeboat, md5_hex, put, until_upstream_within,
};
use crate::upstream::{Fault, FaultProxy};

const BUCKET: &str = "gwb";

/// The longest any poll here waits.
const WAIT: Duration = Duration::from_secs(30);

/// A's configuration: B's credentials and the short timeouts of `gateway.rs`.
fn gateway_config(endpoint: &str) -> String {
    format!(
        "[upstream]\nendpoint = \"{endpoint}\"\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n\
         connect_timeout_ms = 500\nfirst_byte_timeout_ms = 1500\nidle_timeout_ms = 2000\nretries = 1\n\
         breaker_threshold = 2\nbreaker_cooldown_ms = 300\n"
    )
}

/// A (gateway mode) in front of B (local-only), through a fault proxy.
struct Pair {
    /// The gateway under test; `upstream_down` restarts it.
    a: Lifeboat,
    /// The upstream: a local-only Lifeboat with the same credentials.
    b: Lifeboat,
    proxy: FaultProxy,
    config: String,
    /// A's data, kept across its restarts; dropped after A.
    a_dir: tempfile::TempDir,
}

impl Pair {
    /// Starts B, the proxy (passing traffic) and A, and creates `BUCKET` through A, which
    /// mirrors it to B.
    async fn start() -> Self {
        let b = Lifeboat::start();
        let proxy = FaultProxy::start(b.port).await;
        let config = gateway_config(&format!("http://127.0.0.1:{}", proxy.port));
        let a_dir = tempfile::tempdir().unwrap();
        let a = lifeboat(a_dir.path(), &config);
        a.client()
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        b.client()
            .head_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("CreateBucket through A is mirrored to B");
        Self {
            a,
            b,
            proxy,
            config,
            a_dir,
        }
    }

    /// Takes the upstream down: the proxy resets every new connection. The proxy picks a
    /// connection's fault when it accepts it, so A is restarted on its data: no keep-alive
    /// connection it opened while the proxy passed traffic survives to reach B.
    fn upstream_down(&mut self) {
        self.proxy.set(Fault::Reset);
        self.a.kill9();
        self.a = lifeboat(self.a_dir.path(), &self.config);
    }

    fn upstream_up(&self) {
        self.proxy.set(Fault::Pass);
    }
}

/// The unquoted ETag `client` reports for `key` in `BUCKET`, or `None` when it has no such
/// object.
async fn etag_on(client: &aws_sdk_s3::Client, key: &str) -> Option<String> {
    let head = client.head_object().bucket(BUCKET).key(key).send().await;
    head.ok()?.e_tag().map(|e| e.trim_matches('"').to_owned())
}

/// The bytes `client` serves for `key` in `BUCKET`.
async fn bytes_on(client: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    crate::harness::object_bytes(client, BUCKET, key).await
}

/// Waits until B holds `key` with `etag` (or, with `None`, does not hold it).
async fn until_b(b: &aws_sdk_s3::Client, key: &str, etag: Option<&str>) {
    until_upstream_within(b, BUCKET, key, etag, WAIT).await;
}

/// Polls `check` every 100 ms until it holds; fails after `WAIT`, saying `what`.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_to_a_healthy_upstream_is_synced_with_the_same_etag() {
    let pair = Pair::start().await;
    let (a, direct) = (&pair.a, pair.b.client());
    let body = data(200_000, 1);
    let path = format!("/{BUCKET}/through");
    assert_eq!(put(a, &path, &body, &[]), (200, Some("synced".into())));
    // `synced` is answered once B has taken it: no waiting.
    let etag = md5_hex(&body);
    assert_eq!(etag_on(&direct, "through").await, Some(etag.clone()));
    assert_eq!(etag_on(&a.client(), "through").await, Some(etag));
    assert!(bytes_on(&direct, "through").await == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_while_the_upstream_is_down_is_served_locally_then_replayed() {
    let mut pair = Pair::start().await;
    pair.upstream_down();
    let (a, direct) = (&pair.a, pair.b.client());
    let s3 = a.client();
    let body = data(300_000, 2);
    let path = format!("/{BUCKET}/queued");
    assert_eq!(put(a, &path, &body, &[]), (200, Some("pending".into())));
    assert_eq!(etag_on(&direct, "queued").await, None, "B has nothing yet");

    let (status, cache, sync, got) = get(a, &path);
    assert_eq!(
        (status, cache.as_deref(), sync.as_deref()),
        (200, Some("HIT"), Some("pending"))
    );
    assert!(got == body, "the local bytes");
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["queued"], "the local listing shows it");

    pair.upstream_up();
    until_b(&direct, "queued", Some(&md5_hex(&body))).await;
    assert!(bytes_on(&direct, "queued").await == body);
    eventually("A reports the replayed write as synced", || {
        get(a, &path).2.as_deref() == Some("synced")
    })
    .await;
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["queued"], "the upstream's listing agrees");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_while_the_upstream_is_down_is_a_404_and_reaches_it_on_recovery() {
    let mut pair = Pair::start().await;
    let direct = pair.b.client();
    let body = data(100_000, 3);
    let path = format!("/{BUCKET}/doomed");
    let (status, sync) = put(&pair.a, &path, &body, &[]);
    assert_eq!((status, sync.as_deref()), (200, Some("synced")));

    pair.upstream_down();
    let a = &pair.a;
    assert_eq!(delete(a, &path), 204);
    // With the upstream down a fetch would be a 503: the 404 comes from the tombstone.
    assert_eq!(get(a, &path).0, 404, "a deleted key is never fetched");
    let s3 = a.client();
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert!(listed.contents().is_empty(), "the local listing hides it");
    assert_eq!(
        etag_on(&direct, "doomed").await,
        Some(md5_hex(&body)),
        "B keeps it until the tombstone is replayed"
    );

    pair.upstream_up();
    until_b(&direct, "doomed", None).await;
    assert_eq!(get(a, &path).0, 404, "the object never comes back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_only_on_the_upstream_is_a_miss_then_a_hit() {
    let pair = Pair::start().await;
    let (a, direct) = (&pair.a, pair.b.client());
    let body = data(300_000, 4);
    direct
        .put_object()
        .bucket(BUCKET)
        .key("remote")
        .content_type("text/csv")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let path = format!("/{BUCKET}/remote");
    let (status, cache, _, got) = get(a, &path);
    assert_eq!((status, cache.as_deref()), (200, Some("MISS")));
    assert!(got == body, "the upstream's bytes");

    let (status, cache, sync, got) = get(a, &path);
    assert_eq!(
        (status, cache.as_deref(), sync.as_deref()),
        (200, Some("HIT"), Some("synced"))
    );
    assert!(got == body, "the cached bytes");
    let head = a
        .client()
        .head_object()
        .bucket(BUCKET)
        .key("remote")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/csv"));
    assert_eq!(etag_on(&a.client(), "remote").await, Some(md5_hex(&body)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_reaches_the_upstream_with_the_same_etag() {
    let pair = Pair::start().await;
    let (s3, direct) = (pair.a.client(), pair.b.client());
    let done = crate::harness::multipart_upload(
        &s3,
        BUCKET,
        "mp",
        vec![data(5 << 20, 5), data(1000, 6)],
        None,
    )
    .await;
    let etag = done.e_tag().unwrap().trim_matches('"').to_owned();
    assert!(etag.ends_with("-2"), "a two-part ETag: {etag}");
    until_b(&direct, "mp", Some(&etag)).await;
    assert_eq!(etag_on(&s3, "mp").await, Some(etag));
    let on_b = direct
        .head_object()
        .bucket(BUCKET)
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(on_b.content_length(), Some((5 << 20) + 1000));
}

/// A 304 carries the same validators and `x-cache` whichever path answers it: a miss (the
/// object only upstream) and a hit (cached) alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_carries_etag_last_modified_and_x_cache_on_a_miss_and_a_hit() {
    let pair = Pair::start().await;
    let body = data(10_000, 7);
    pair.b
        .client()
        .put_object()
        .bucket(BUCKET)
        .key("cond")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let etag = format!("\"{}\"", md5_hex(&body));
    let conditional = |lb: &Lifeboat| {
        let (status, head, _) = crate::harness::raw(
            lb.port,
            &crate::harness::signed_request_with(
                lb.port,
                "GET",
                &format!("/{BUCKET}/cond"),
                b"",
                std::time::SystemTime::now(),
                &[("If-None-Match", etag.as_str())],
            ),
        );
        let h = |n: &str| crate::harness::header_of(&head, n);
        (status, h("etag"), h("last-modified"), h("x-cache"))
    };
    let (status, e, lm, cache) = conditional(&pair.a);
    assert_eq!(status, 304, "a miss that matches");
    assert_eq!(e.as_deref(), Some(etag.as_str()));
    assert!(lm.is_some(), "the miss's 304 carries Last-Modified");
    assert_eq!(cache.as_deref(), Some("MISS"));
    // Cache it, then the same request is a hit.
    let (status, cache, _, got) = get(&pair.a, &format!("/{BUCKET}/cond"));
    assert_eq!((status, got), (200, body));
    assert_eq!(cache.as_deref(), Some("MISS"));
    eventually("the object is cached", || {
        get(&pair.a, &format!("/{BUCKET}/cond")).1.as_deref() == Some("HIT")
    })
    .await;
    let (status, e, lm_hit, cache) = conditional(&pair.a);
    assert_eq!(status, 304, "a hit that matches");
    assert_eq!(e.as_deref(), Some(etag.as_str()));
    assert_eq!(lm_hit, lm, "both paths report the upstream's Last-Modified");
    assert_eq!(cache.as_deref(), Some("HIT"));
}

/// `If-Match: *` behaves in gateway mode as in local-only mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_star_in_gateway_mode() {
    let pair = Pair::start().await;
    let s3 = pair.a.client();
    let put = |body: &'static [u8], star: bool| {
        let mut r = s3
            .put_object()
            .bucket(BUCKET)
            .key("star")
            .body(ByteStream::from_static(body));
        if star {
            r = r.if_match("*");
        }
        r.send()
    };
    let missing = put(b"one", true).await.unwrap_err();
    assert_eq!(crate::harness::code(&missing), "PreconditionFailed");
    put(b"one", false).await.unwrap();
    put(b"two", true).await.unwrap();
    assert_eq!(bytes_on(&s3, "star").await, b"two");
    until_b(&pair.b.client(), "star", Some(&md5_hex(b"two"))).await;
}

/// The value of an unlabelled or labelled sample in a metrics text, if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    crate::harness::metric_sample(text, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_document_shows_the_outbox_rising_then_draining() {
    let mut pair = Pair::start().await;
    let path = format!("/{BUCKET}/before");
    assert_eq!(put(&pair.a, &path, b"before the outage", &[]).0, 200);
    assert_eq!(get(&pair.a, &path).1.as_deref(), Some("HIT"));
    let doc = pair.a.status();
    assert_eq!(doc["mode"], "gateway");
    assert_eq!(doc["write"], "through");
    assert_eq!(doc["read"], "local-first");
    assert_eq!(doc["upstream"]["circuit"], "closed", "{doc}");
    assert_eq!(doc["upstream"]["reachable"], true, "{doc}");
    assert!(doc["upstream"]["latency_ms"].is_u64(), "{doc}");
    assert_eq!(doc["outbox"]["depth"], 0);
    assert_eq!(doc["local"]["objects"]["synced"], 1, "{doc}");

    pair.upstream_down();
    let a = &pair.a;
    for i in 0..3 {
        let (status, sync) = put(a, &format!("/{BUCKET}/during-{i}"), &data(10_000, i), &[]);
        assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    }
    let doc = a.status();
    assert_eq!(doc["outbox"]["depth"], 3, "{doc}");
    assert_eq!(doc["local"]["objects"]["pending"], 3, "{doc}");
    assert_eq!(doc["local"]["objects"]["synced"], 1, "{doc}");
    assert_eq!(doc["upstream"]["reachable"], false, "{doc}");
    assert!(doc["upstream"]["last_error"].is_string(), "{doc}");
    let (status, ready) = a.admin_json(
        "GET",
        "/health/ready",
        crate::harness::AdminAuth::None,
        &serde_json::Value::Null,
    );
    assert_eq!(status, 200, "ready through an outage: {ready}");
    assert_eq!(ready["upstream"]["reachable"], false);
    let (_, _, metrics) = a.admin_call("GET", "/metrics", crate::harness::AdminAuth::None, b"");
    let metrics = crate::harness::without_node_labels(&String::from_utf8_lossy(&metrics));
    assert_eq!(
        sample(&metrics, "lifeboat_outbox_depth"),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "lifeboat_objects{state=\"pending\"}"),
        Some(3.0)
    );
    assert!(
        metrics.contains(
            "lifeboat_upstream_requests_total{operation=\"PutObject\",outcome=\"connect_error\"}"
        ) || metrics.contains("outcome=\"error\""),
        "{metrics}"
    );

    pair.upstream_up();
    let a = &pair.a;
    let deadline = Instant::now() + WAIT;
    loop {
        let doc = a.status();
        if doc["outbox"]["depth"] == 0 && doc["local"]["objects"]["synced"] == 4 {
            assert_eq!(doc["local"]["objects"]["pending"], 0);
            assert_eq!(doc["upstream"]["reachable"], true, "{doc}");
            break;
        }
        assert!(Instant::now() < deadline, "the outbox did not drain: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gateway's own families, after reads and replays.
    assert_eq!(
        get(a, &format!("/{BUCKET}/during-0")).1.as_deref(),
        Some("HIT")
    );
    let (_, _, metrics) = a.admin_call("GET", "/metrics", crate::harness::AdminAuth::None, b"");
    let metrics = crate::harness::without_node_labels(&String::from_utf8_lossy(&metrics));
    for family in [
        "lifeboat_cache_results_total{result=\"hit\"}",
        "lifeboat_outbox_replays_total{result=\"done\"}",
        "lifeboat_upstream_request_duration_seconds_bucket",
        "lifeboat_upstream_circuit_state",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    assert!(
        sample(&metrics, "lifeboat_outbox_replays_total{result=\"done\"}")
            .is_some_and(|n| n >= 3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_upload_can_point_straight_at_the_upstream() {
    use crate::harness::{AdminAuth, raw, token_file};
    let b = Lifeboat::start();
    let dir = tempfile::tempdir().unwrap();
    let token = "an-admin-token-for-the-upstream-test";
    let file = token_file(dir.path(), token);
    let config = format!(
        "{}[server]\nadmin_token_file = \"{}\"\n[presign]\ntarget = \"upstream\"\n",
        gateway_config(&b.endpoint),
        file.display()
    );
    let a = lifeboat(dir.path(), &config);
    a.client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let ask = |body: serde_json::Value| {
        a.admin_json(
            "POST",
            "/storage/presigned-upload",
            AdminAuth::Bearer(token),
            &body,
        )
    };
    let (status, doc) = ask(serde_json::json!({
        "filename": "direct.txt", "content_type": "text/plain", "bucket": BUCKET,
    }));
    assert_eq!(status, 400, "a size is required: {doc}");
    let body = b"straight to the upstream";
    let (status, doc) = ask(serde_json::json!({
        "filename": "direct.txt", "content_type": "text/plain", "bucket": BUCKET, "size": body.len(),
    }));
    assert_eq!(status, 200, "{doc}");
    let url = doc["url"].as_str().unwrap();
    let path = url
        .strip_prefix(&b.endpoint)
        .unwrap_or_else(|| panic!("{url} is not B's"));
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        b.port,
        body.len()
    );
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    let (status, head, resp) = raw(b.port, &req);
    assert_eq!(status, 200, "{head}{}", String::from_utf8_lossy(&resp));
    let key = doc["key"].as_str().unwrap();
    assert_eq!(etag_on(&b.client(), key).await, Some(md5_hex(body)));
    // A lists it, from the upstream, and serves it (a miss, then cached).
    let listed = a
        .client()
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(listed.contents().iter().any(|o| o.key() == Some(key)));
    assert!(bytes_on(&a.client(), key).await == body);
}
