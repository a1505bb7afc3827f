//! Gateway mode against a real upstream (SeaweedFS, or the JuiceFS gateway with
//! `LIFEBOAT_TEST_UPSTREAM=juicefs`): every write and read policy, and the fault tests of the
//! gateway issue — (a) upstream stopped then restarted, (b) a fault-injecting proxy, (c) kill -9
//! of Lifeboat with a non-empty outbox, (d) upstream-first reads of a change made upstream.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Lifeboat, data, get, lifeboat, md5_hex, put, until_upstream};
use crate::upstream::{Fault, FaultProxy, UpstreamServer, available};

fn toml(endpoint: &str, up: &UpstreamServer, extra: &str) -> String {
    format!(
        "[upstream]\nendpoint = \"{endpoint}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\
         connect_timeout_ms = 500\nfirst_byte_timeout_ms = 1500\nidle_timeout_ms = 2000\nretries = 1\n\
         breaker_threshold = 2\nbreaker_cooldown_ms = 300\n{extra}",
        up.access_key, up.secret_key
    )
}

struct Setup {
    up: UpstreamServer,
    lb: Lifeboat,
    lb_dir: tempfile::TempDir,
    _up_dir: tempfile::TempDir,
}

fn setup(extra: &str) -> Option<Setup> {
    if !available() {
        return None;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let lb_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start(up_dir.path());
    let lb = lifeboat(lb_dir.path(), &toml(&up.endpoint(), &up, extra));
    Some(Setup {
        up,
        lb,
        lb_dir,
        _up_dir: up_dir,
    })
}

#[tokio::test]
async fn write_through_back_and_strict() {
    let Some(s) = setup("") else { return };
    let (lb, direct) = (&s.lb, s.up.client());
    lb.client()
        .create_bucket()
        .bucket("media")
        .send()
        .await
        .unwrap();
    direct.head_bucket().bucket("media").send().await.unwrap();

    let body = data(200_000, 1);
    assert_eq!(
        put(lb, "/media/through", &body, &[]),
        (200, Some("synced".into()))
    );
    until_upstream(&direct, "media", "through", Some(&md5_hex(&body))).await;

    let (status, sync) = put(lb, "/media/back", &body, &[("x-lifeboat-write", "back")]);
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    until_upstream(&direct, "media", "back", Some(&md5_hex(&body))).await;
    // The worker records the replay just after the upstream has the object.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(lb, "/media/back").2.as_deref() != Some("synced") {
        assert!(
            Instant::now() < deadline,
            "back write never reported synced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(
        put(
            lb,
            "/media/strict",
            &body,
            &[("x-lifeboat-write", "strict")]
        ),
        (200, Some("synced".into()))
    );
    s.up.stop();
    let (status, _) = put(
        lb,
        "/media/strict-down",
        &body,
        &[("x-lifeboat-write", "strict")],
    );
    assert_eq!(status, 503, "a strict write fails when the upstream does");
    let (status, sync) = put(lb, "/media/through-down", &body, &[]);
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    s.up.resume();
    until_upstream(&direct, "media", "through-down", Some(&md5_hex(&body))).await;
    // The timed-out strict write may have reached the upstream anyway: it is reconciled away.
    until_upstream(&direct, "media", "strict-down", None).await;
    let listed = lb
        .client()
        .list_objects_v2()
        .bucket("media")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.contains(&"strict-down"), "nothing diverges: {keys:?}");

    // Multipart goes up with the same part boundaries: both sides report the same ETag.
    let s3 = lb.client();
    let id = s3
        .create_multipart_upload()
        .bucket("media")
        .key("mp")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let mut parts = Vec::new();
    for (n, b) in [(1, data(5 << 20, 2)), (2, data(1000, 3))] {
        let out = s3
            .upload_part()
            .bucket("media")
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(b))
            .send()
            .await
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let done = s3
        .complete_multipart_upload()
        .bucket("media")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let etag = done.e_tag().unwrap().trim_matches('"').to_owned();
    assert!(etag.ends_with("-2"));
    until_upstream(&direct, "media", "mp", Some(&etag)).await;

    // A current SDK's DeleteObjects (CRC32, no Content-MD5) works through Lifeboat even where
    // the upstream itself would refuse it: deletes go upstream one by one.
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let objects =
        ["through", "back", "mp"].map(|k| ObjectIdentifier::builder().key(k).build().unwrap());
    let out = s3
        .delete_objects()
        .bucket("media")
        .delete(
            Delete::builder()
                .set_objects(Some(objects.to_vec()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 3);
    for k in ["through", "back", "mp"] {
        until_upstream(&direct, "media", k, None).await;
    }
}

#[tokio::test]
async fn local_first_misses_fill_the_cache() {
    let Some(s) = setup("") else { return };
    let (lb, direct) = (&s.lb, s.up.client());
    direct.create_bucket().bucket("pics").send().await.unwrap();
    let body = data(1 << 20, 4);
    for k in ["a.jpg", "b.jpg", "c.jpg"] {
        direct
            .put_object()
            .bucket("pics")
            .key(k)
            .content_type("image/jpeg")
            .metadata("who", "up")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    // The bucket exists only upstream: the gateway adopts it.
    let (status, cache, _, got) = get(lb, "/pics/a.jpg");
    assert_eq!((status, cache.as_deref()), (200, Some("MISS")));
    assert!(got == body);
    let (_, cache, sync, got) = get(lb, "/pics/a.jpg");
    assert_eq!(
        (cache.as_deref(), sync.as_deref()),
        (Some("HIT"), Some("synced"))
    );
    assert!(got == body);
    let h = lb
        .client()
        .head_object()
        .bucket("pics")
        .key("a.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("image/jpeg"));
    assert_eq!(
        h.metadata().and_then(|m| m.get("who")).map(String::as_str),
        Some("up")
    );

    // A Range miss is served from the upstream's range; the whole object follows.
    let r = lb
        .client()
        .get_object()
        .bucket("pics")
        .key("b.jpg")
        .range("bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[100..200]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, cache, _, _) = get(lb, "/pics/b.jpg");
        if cache.as_deref() == Some("HIT") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "range miss never cached the object"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Concurrent misses on one key all get the right bytes.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let s3 = lb.client();
        tasks.spawn(async move {
            let g = s3
                .get_object()
                .bucket("pics")
                .key("c.jpg")
                .send()
                .await
                .unwrap();
            g.body.collect().await.unwrap().into_bytes()
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.unwrap().as_ref() == body.as_slice());
    }
    let e = lb
        .client()
        .get_object()
        .bucket("pics")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "NoSuchKey");

    // With the upstream gone, cached copies are still served.
    s.up.stop();
    let (status, cache, _, got) = get(lb, "/pics/a.jpg");
    assert_eq!((status, cache.as_deref()), (200, Some("HIT")));
    assert!(got == body);
    s.up.resume();
}

/// (a) The upstream stopped (SIGSTOP, then kill) and restarted.
#[tokio::test]
async fn upstream_stopped_then_restarted() {
    let Some(mut s) = setup("") else { return };
    let direct = s.up.client();
    let s3 = s.lb.client();
    s3.create_bucket().bucket("app").send().await.unwrap();
    for k in ["keep", "gone"] {
        assert_eq!(
            put(&s.lb, &format!("/app/{k}"), k.as_bytes(), &[])
                .1
                .as_deref(),
            Some("synced")
        );
    }
    s.up.stop();
    let new_body = data(300_000, 5);
    let (status, sync) = put(&s.lb, "/app/new", &new_body, &[]);
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    let (status, _, _, got) = get(&s.lb, "/app/keep");
    assert_eq!((status, got.as_slice()), (200, &b"keep"[..]));
    let listed = s3.list_objects_v2().bucket("app").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["gone", "keep", "new"]);
    s3.delete_object()
        .bucket("app")
        .key("gone")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket("app")
        .key("gone")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "NoSuchKey");
    let listed = s3.list_objects_v2().bucket("app").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["keep", "new"]);

    s.up.restart();
    until_upstream(&direct, "app", "new", Some(&md5_hex(&new_body))).await;
    until_upstream(&direct, "app", "gone", None).await;
    until_upstream(&direct, "app", "keep", Some(&md5_hex(b"keep"))).await;
    // Once recovered, listing is the upstream's again, and agrees.
    let listed = s3.list_objects_v2().bucket("app").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["keep", "new"]);
}

/// (b) A fault-injecting proxy between Lifeboat and the upstream. The proxy runs on this test's
/// runtime while the test blocks on raw requests, hence the extra worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_corrupt_or_lose_acknowledged_writes() {
    if !available() {
        return;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let lb_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start(up_dir.path());
    let proxy = FaultProxy::start(up.port).await;
    let lb = lifeboat(
        lb_dir.path(),
        &toml(&format!("http://127.0.0.1:{}", proxy.port), &up, ""),
    );
    let direct = up.client();
    let s3 = lb.client();
    s3.create_bucket().bucket("faults").send().await.unwrap();
    let remote = data(400_000, 6);
    direct
        .put_object()
        .bucket("faults")
        .key("remote")
        .body(ByteStream::from(remote.clone()))
        .send()
        .await
        .unwrap();

    let mut written = Vec::new();
    for (i, fault) in [
        Fault::Reset,
        Fault::Error503,
        Fault::Stall,
        Fault::CutBody,
        Fault::Pass,
    ]
    .into_iter()
    .enumerate()
    {
        proxy.set(fault);
        // Let the breaker's cooldown pass, so this fault meets a real request.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let body = data(300_000 + i, 10 + i as u64);
        let key = format!("k{i}");
        let (status, _) = put(&lb, &format!("/faults/{key}"), &body, &[]);
        assert_eq!(status, 200, "{fault:?}: the write is acknowledged");
        written.push((key, body));
        // An uncached read under the fault: an error is fine, wrong bytes never.
        let (status, _, _, got) = get(&lb, "/faults/remote");
        if status == 200 && fault != Fault::CutBody {
            assert!(got == remote, "{fault:?}: corrupted read");
        }
        if fault == Fault::CutBody {
            assert!(
                got.len() < remote.len() || got == remote,
                "a cut body is never passed off as whole"
            );
        }
    }
    proxy.set(Fault::Pass);
    for (key, body) in &written {
        until_upstream(&direct, "faults", key, Some(&md5_hex(body))).await;
        let (status, _, _, got) = get(&lb, &format!("/faults/{key}"));
        assert_eq!(status, 200);
        assert!(got == *body, "{key}: corrupted");
    }
    // Connections opened during a fault may still be pooled; each failure retires one. Like a
    // client would, retry a 503 a few times.
    let mut attempts = 0;
    loop {
        let (status, _, _, got) = get(&lb, "/faults/remote");
        if status == 200 {
            assert!(got == remote);
            break;
        }
        attempts += 1;
        if !(status == 503 && attempts < 10) {
            let log =
                std::fs::read_to_string(lb_dir.path().join("lifeboat.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "status {status}; log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// (c) kill -9 of Lifeboat with a non-empty outbox, then a restart: the outbox drains.
#[tokio::test]
async fn outbox_survives_kill_9() {
    let Some(mut s) = setup("write = \"back\"\n") else {
        return;
    };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("queue")
        .send()
        .await
        .unwrap();
    direct.head_bucket().bucket("queue").send().await.unwrap();
    s.up.stop();
    let mut bodies = Vec::new();
    for i in 0..20 {
        let body = data(10_000 + i, i as u64);
        let (status, sync) = put(&s.lb, &format!("/queue/o{i}"), &body, &[]);
        assert_eq!((status, sync.as_deref()), (200, Some("pending")));
        bodies.push(body);
    }
    s.lb.kill9();
    s.up.resume();
    let config = std::fs::read_to_string(s.lb_dir.path().join("lifeboat.toml")).unwrap();
    s.lb = lifeboat(s.lb_dir.path(), &config);
    for (i, body) in bodies.iter().enumerate() {
        until_upstream(&direct, "queue", &format!("o{i}"), Some(&md5_hex(body))).await;
    }
}

/// (d) Upstream-first reads see a change made directly on the upstream.
#[tokio::test]
async fn upstream_first_sees_direct_changes() {
    let Some(s) = setup("read = \"upstream-first\"\n") else {
        return;
    };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("upfirst")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&s.lb, "/upfirst/k", b"version one", &[]).1.as_deref(),
        Some("synced")
    );
    let (_, cache, _, got) = get(&s.lb, "/upfirst/k");
    assert_eq!(
        (cache.as_deref(), got.as_slice()),
        (Some("HIT"), &b"version one"[..])
    );
    direct
        .put_object()
        .bucket("upfirst")
        .key("k")
        .body(ByteStream::from(b"version two".to_vec()))
        .send()
        .await
        .unwrap();
    let (status, cache, _, got) = get(&s.lb, "/upfirst/k");
    assert_eq!(
        (status, cache.as_deref(), got.as_slice()),
        (200, Some("MISS"), &b"version two"[..])
    );
    let (_, cache, _, got) = get(&s.lb, "/upfirst/k");
    assert_eq!(
        (cache.as_deref(), got.as_slice()),
        (Some("HIT"), &b"version two"[..])
    );
    s.up.stop();
    let (status, cache, _, got) = get(&s.lb, "/upfirst/k");
    assert_eq!(
        (status, cache.as_deref(), got.as_slice()),
        (200, Some("STALE"), &b"version two"[..])
    );
    s.up.resume();
}

#[tokio::test]
async fn bucket_map_puts_gateway_buckets_under_one_upstream_bucket() {
    let Some(s) = setup("bucket = \"shared\"\nauto_create_buckets = true\n") else {
        return;
    };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("videos")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&s.lb, "/videos/clip.mp4", b"frames", &[]),
        (200, Some("synced".into()))
    );
    until_upstream(
        &direct,
        "shared",
        "videos/clip.mp4",
        Some(&md5_hex(b"frames")),
    )
    .await;
    let listed =
        s.lb.client()
            .list_objects_v2()
            .bucket("videos")
            .send()
            .await
            .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["clip.mp4"]);
}

#[tokio::test]
async fn sse_and_server_side_copies() {
    // MinIO's 2021 code wants a KMS for SSE; SeaweedFS takes AES256 as is.
    let sse = crate::upstream::kind() == crate::upstream::Kind::SeaweedFs;
    let Some(s) = setup(if sse { "sse = \"AES256\"\n" } else { "" }) else {
        return;
    };
    let direct = s.up.client();
    let s3 = s.lb.client();
    s3.create_bucket().bucket("docs").send().await.unwrap();
    let body = data(70_000, 20);
    let put = s3
        .put_object()
        .bucket("docs")
        .key("a.pdf")
        .content_type("application/pdf")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
    until_upstream(&direct, "docs", "a.pdf", Some(&etag)).await;
    if sse {
        let h = direct
            .head_object()
            .bucket("docs")
            .key("a.pdf")
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.server_side_encryption().map(|e| e.as_str()),
            Some("AES256")
        );
    }
    // The source is synced: the copy is made on the upstream, and both sides agree.
    let out = s3
        .copy_object()
        .bucket("docs")
        .key("b.pdf")
        .copy_source("docs/a.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.copy_object_result()
            .and_then(|r| r.e_tag())
            .map(|e| e.trim_matches('"')),
        Some(etag.as_str())
    );
    until_upstream(&direct, "docs", "b.pdf", Some(&etag)).await;
    let h = direct
        .head_object()
        .bucket("docs")
        .key("b.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/pdf"));
    let got = s3
        .get_object()
        .bucket("docs")
        .key("b.pdf")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());

    // A source that exists only upstream is fetched into the cache first.
    direct
        .put_object()
        .bucket("docs")
        .key("remote.pdf")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("docs")
        .key("c.pdf")
        .copy_source("docs/remote.pdf")
        .send()
        .await
        .unwrap();
    until_upstream(&direct, "docs", "c.pdf", Some(&etag)).await;
}

#[tokio::test]
async fn revalidate_after_picks_up_upstream_changes() {
    let Some(s) = setup("revalidate_after = 1\n") else {
        return;
    };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("cfg")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&s.lb, "/cfg/app.json", b"{\"v\":1}", &[]).1.as_deref(),
        Some("synced")
    );
    direct
        .put_object()
        .bucket("cfg")
        .key("app.json")
        .body(ByteStream::from(b"{\"v\":2}".to_vec()))
        .send()
        .await
        .unwrap();
    let (_, cache, _, got) = get(&s.lb, "/cfg/app.json");
    assert_eq!(
        (cache.as_deref(), got.as_slice()),
        (Some("HIT"), &b"{\"v\":1}"[..]),
        "fresh copies are not checked"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, cache, _, got) = get(&s.lb, "/cfg/app.json");
    assert_eq!(
        (cache.as_deref(), got.as_slice()),
        (Some("MISS"), &b"{\"v\":2}"[..])
    );
}

/// An object changed directly on the upstream (another writer) after Lifeboat cached it:
/// `revalidate_after = 0` checks every read with a conditional HEAD (unchanged: `HIT`, no body
/// fetched) and serves the new version at once; `"never"` keeps serving the cached copy.
#[tokio::test]
async fn revalidate_after_zero_sees_another_writer_and_never_does_not() {
    for (setting, sees_change) in [("0", true), ("\"never\"", false)] {
        let Some(s) = setup(&format!("revalidate_after = {setting}\n")) else {
            return;
        };
        let direct = s.up.client();
        s.lb.client()
            .create_bucket()
            .bucket("cohere")
            .send()
            .await
            .unwrap();
        assert_eq!(
            put(&s.lb, "/cohere/k", b"v1", &[]).1.as_deref(),
            Some("synced")
        );
        let (_, cache, _, got) = get(&s.lb, "/cohere/k");
        assert_eq!(
            (cache.as_deref(), got.as_slice()),
            (Some("HIT"), &b"v1"[..])
        );
        direct
            .put_object()
            .bucket("cohere")
            .key("k")
            .body(ByteStream::from(b"v2 from another writer".to_vec()))
            .send()
            .await
            .unwrap();
        let (_, cache, _, got) = get(&s.lb, "/cohere/k");
        if sees_change {
            assert_eq!(
                (cache.as_deref(), got.as_slice()),
                (Some("MISS"), &b"v2 from another writer"[..]),
                "revalidate_after = {setting}"
            );
            // Re-cached; the next check is a 304 and a hit.
            let (_, cache, _, got) = get(&s.lb, "/cohere/k");
            assert_eq!(
                (cache.as_deref(), got.as_slice()),
                (Some("HIT"), &b"v2 from another writer"[..])
            );
        } else {
            assert_eq!(
                (cache.as_deref(), got.as_slice()),
                (Some("HIT"), &b"v1"[..]),
                "revalidate_after = {setting}"
            );
        }
    }
}

/// With no `revalidate_after` set, a cached copy younger than the 60 s default is served
/// without asking the upstream.
#[tokio::test]
async fn by_default_a_fresh_cached_copy_is_not_revalidated() {
    let Some(s) = setup("") else { return };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("fresh")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&s.lb, "/fresh/k", b"v1", &[]).1.as_deref(),
        Some("synced")
    );
    direct
        .put_object()
        .bucket("fresh")
        .key("k")
        .body(ByteStream::from(b"v2".to_vec()))
        .send()
        .await
        .unwrap();
    let (_, cache, _, got) = get(&s.lb, "/fresh/k");
    assert_eq!(
        (cache.as_deref(), got.as_slice()),
        (Some("HIT"), &b"v1"[..])
    );
}

#[tokio::test]
async fn tls_upstream_checks_certificates() {
    if !available() || crate::upstream::kind() != crate::upstream::Kind::SeaweedFs {
        return;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start_tls(up_dir.path());
    let endpoint = format!("https://127.0.0.1:{}", up.https_port.unwrap());
    let ca = up_dir.path().join("tls/ca.pem");
    let trusted_dir = tempfile::tempdir().unwrap();
    let trusted = lifeboat(
        trusted_dir.path(),
        &toml(&endpoint, &up, &format!("ca_file = \"{}\"\n", ca.display())),
    );
    trusted
        .client()
        .create_bucket()
        .bucket("tls")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&trusted, "/tls/k", b"secret", &[]),
        (200, Some("synced".into()))
    );
    until_upstream(&up.client(), "tls", "k", Some(&md5_hex(b"secret"))).await;
    // Without the CA the certificate does not verify: the write is only queued.
    let untrusted_dir = tempfile::tempdir().unwrap();
    let untrusted = lifeboat(untrusted_dir.path(), &toml(&endpoint, &up, ""));
    untrusted
        .client()
        .create_bucket()
        .bucket("tls2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put(&untrusted, "/tls2/k", b"x", &[]),
        (200, Some("pending".into()))
    );
}

/// Not a test: measures the outbox drain of 1,000 queued objects and a cache-hit GET against a
/// local-only GET. Run with `cargo test --release --test integration measure -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_outbox_drain_and_hit_overhead() {
    let Some(s) = setup("write = \"back\"\n") else {
        return;
    };
    let direct = s.up.client();
    s.lb.client()
        .create_bucket()
        .bucket("measure")
        .send()
        .await
        .unwrap();
    direct.head_bucket().bucket("measure").send().await.unwrap();
    s.up.stop();
    let s3 = s.lb.client();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..10 {
        let s3 = s3.clone();
        tasks.spawn(async move {
            for i in 0..100 {
                s3.put_object()
                    .bucket("measure")
                    .key(format!("o{t}-{i}"))
                    .body(ByteStream::from(vec![7u8; 4096]))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let started = Instant::now();
    s.up.resume();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = direct
            .list_objects_v2()
            .bucket("measure")
            .max_keys(1000)
            .send()
            .await
            .map(|l| l.key_count().unwrap_or(0))
            .unwrap_or(0);
        if n >= 1000 {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "outbox drain of 1000 x 4 KiB objects: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let local = Lifeboat::start();
    local
        .client()
        .create_bucket()
        .bucket("measure")
        .send()
        .await
        .unwrap();
    local
        .client()
        .put_object()
        .bucket("measure")
        .key("hot")
        .body(ByteStream::from(vec![1u8; 65536]))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("measure")
        .key("hot")
        .body(ByteStream::from(vec![1u8; 65536]))
        .send()
        .await
        .unwrap();
    let time = |lb: &Lifeboat| {
        let started = Instant::now();
        for _ in 0..500 {
            let (status, _, _, _) = get(lb, "/measure/hot");
            assert_eq!(status, 200);
        }
        started.elapsed().as_secs_f64() / 500.0 * 1e6
    };
    let (g1, l1) = (time(&s.lb), time(&local));
    let (g2, l2) = (time(&s.lb), time(&local));
    println!(
        "64 KiB GET: gateway cache hit {:.0} us, local-only {:.0} us (ratio {:.2})",
        (g1 + g2) / 2.0,
        (l1 + l2) / 2.0,
        (g1 + g2) / (l1 + l2)
    );
}

/// A key only Lifeboat accepts: a `.` path segment, which SeaweedFS refuses (`InvalidRequest`)
/// and so does MinIO's code in the JuiceFS gateway (`XMinioInvalidObjectName`).
fn refused_key() -> String {
    "dot/./seg".to_owned()
}

/// An entry the upstream refuses for good goes to the dead letters instead of blocking every
/// write queued behind it, and the object then reports `x-lifeboat-sync: failed`.
#[tokio::test]
async fn a_permanent_refusal_does_not_block_the_outbox() {
    let Some(s) = setup("write = \"back\"\n") else {
        return;
    };
    let direct = s.up.client();
    let s3 = s.lb.client();
    s3.create_bucket().bucket("refusals").send().await.unwrap();
    s3.create_bucket().bucket("fine").send().await.unwrap();
    let refused = format!("/refusals/{}", refused_key());
    assert_eq!(put(&s.lb, &refused, b"kept locally", &[]).0, 200);
    assert_eq!(put(&s.lb, "/fine/after", b"behind it", &[]).0, 200);
    until_upstream(&direct, "fine", "after", Some(&md5_hex(b"behind it"))).await;
    // The refused object is still served locally, and says it will not reach the upstream.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, sync, got) = get(&s.lb, &refused);
        assert_eq!((status, got.as_slice()), (200, &b"kept locally"[..]));
        if sync.as_deref() == Some("failed") {
            break;
        }
        assert!(Instant::now() < deadline, "never reported failed: {sync:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// In `through` mode the upstream's definitive refusal is the client's answer, and nothing is
/// stored: the write does not linger locally as `pending` forever.
#[tokio::test]
async fn a_through_write_the_upstream_refuses_is_refused() {
    let Some(s) = setup("") else {
        return;
    };
    s.lb.client()
        .create_bucket()
        .bucket("refusals")
        .send()
        .await
        .unwrap();
    let refused = format!("/refusals/{}", refused_key());
    let (status, _) = put(&s.lb, &refused, b"refused upstream", &[]);
    assert!(
        (400..500).contains(&status),
        "the upstream's 4xx, got {status}"
    );
    // Nothing stored locally: the read goes to the upstream, which refuses that key too.
    let (status, cache, ..) = get(&s.lb, &refused);
    assert!(status >= 400 && cache.is_none(), "{status} {cache:?}");
    // A later write of an acceptable key is unaffected.
    assert_eq!(
        put(&s.lb, "/refusals/ok", b"fine", &[]),
        (200, Some("synced".into()))
    );
}
