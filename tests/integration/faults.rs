//! The fault matrix of the gateway: Lifeboat in front of SeaweedFS (or the JuiceFS gateway)
//! through the fault proxy, with the shipped defaults unless a test says otherwise. Each test
//! keeps a ledger of every write Lifeboat acknowledged and checks at the end, with the faults
//! cleared, that each is readable through Lifeboat and on the upstream with the same bytes
//! and ETag. Every wait is bounded. Also the full-disk test (local-only, on a small tmpfs when
//! run as root).

use std::time::{Duration, Instant};

use crate::harness::{Lifeboat, data, get, header_of, lifeboat, md5_hex, put, raw, signed_request};
use crate::upstream::{Fault, FaultProxy, UpstreamServer, available};

/// The writes a test saw acknowledged: key and body.
#[derive(Default)]
struct Ledger(Vec<(String, Vec<u8>)>);

impl Ledger {
    /// PUTs through Lifeboat; records the write when it was acknowledged. Returns (status,
    /// x-lifeboat-sync, elapsed).
    fn put(
        &mut self,
        lb: &Lifeboat,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> (u16, Option<String>, Duration) {
        let started = Instant::now();
        let (status, sync) = put(lb, &format!("/{bucket}/{key}"), body, &[]);
        if status == 200 {
            self.0.retain(|(k, _)| k != key);
            self.0.push((key.to_owned(), body.to_vec()));
        }
        (status, sync, started.elapsed())
    }

    /// Every acknowledged write is readable through Lifeboat and on the upstream, same bytes
    /// and ETag, within `within`.
    async fn check(
        &self,
        lb: &Lifeboat,
        upstream: &aws_sdk_s3::Client,
        bucket: &str,
        within: Duration,
    ) {
        let deadline = Instant::now() + within;
        for (key, body) in &self.0 {
            let (status, _, _, got) = get(lb, &format!("/{bucket}/{key}"));
            assert_eq!(
                (status, got.len()),
                (200, body.len()),
                "{key} through Lifeboat"
            );
            assert!(got == *body, "{key}: wrong bytes through Lifeboat");
            loop {
                let head = upstream.head_object().bucket(bucket).key(key).send().await;
                let etag = head
                    .ok()
                    .and_then(|h| h.e_tag().map(|e| e.trim_matches('"').to_owned()));
                if etag.as_deref() == Some(md5_hex(body).as_str()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{key} never reached the upstream: {etag:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let on_up = upstream
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = on_up.body.collect().await.unwrap().into_bytes();
            assert!(
                bytes.as_ref() == body.as_slice(),
                "{key}: wrong bytes upstream"
            );
        }
    }
}

struct Rig {
    up: UpstreamServer,
    proxy: FaultProxy,
    lb: Lifeboat,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Lifeboat with the default timeouts and breaker (only `extra` added), through the proxy.
async fn rig(extra: &str) -> Option<Rig> {
    if !available() {
        return None;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let lb_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start(up_dir.path());
    let proxy = FaultProxy::start(up.port).await;
    let config = format!(
        "[upstream]\nendpoint = \"http://127.0.0.1:{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{extra}",
        proxy.port, up.access_key, up.secret_key
    );
    let lb = lifeboat(lb_dir.path(), &config);
    lb.client()
        .create_bucket()
        .bucket("faults")
        .send()
        .await
        .unwrap();
    Some(Rig {
        up,
        proxy,
        lb,
        _dirs: (up_dir, lb_dir),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A partition (connections accepted, never answered, old and new alike): with the default
/// config a write is acknowledged `pending` within 5 s, and once the circuit is open in about
/// the time of a local write; everything drains once the upstream is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_upstream_acknowledges_writes_within_seconds_and_drains() {
    let Some(r) = rig("").await else { return };
    let mut ledger = Ledger::default();
    let body = data(50_000, 1);
    assert_eq!(
        ledger.put(&r.lb, "faults", "before", &body).1.as_deref(),
        Some("synced")
    );
    r.proxy.set(Fault::Blackhole);
    let (status, sync, first) = ledger.put(&r.lb, "faults", "first", &body);
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    assert!(
        first < Duration::from_secs(5),
        "first write during the outage took {first:?}"
    );
    // Until the circuit opens, each write waits one first-byte timeout.
    let mut opened = None;
    for i in 0..5 {
        let (status, _, t) = ledger.put(&r.lb, "faults", &format!("until-open-{i}"), &body);
        assert_eq!(status, 200);
        assert!(t < Duration::from_secs(5), "{t:?}");
        if t < Duration::from_millis(500) {
            opened = Some(i);
            break;
        }
    }
    assert!(opened.is_some(), "the circuit never opened");
    let mut open_times = Vec::new();
    for i in 0..20 {
        let (status, sync, t) = ledger.put(&r.lb, "faults", &format!("open-{i}"), &body);
        assert_eq!((status, sync.as_deref()), (200, Some("pending")));
        open_times.push(t);
    }
    let p50 = median(open_times);
    println!(
        "blackhole, default config: first write {first:?}, p50 once the circuit is open {p50:?}"
    );
    assert!(
        p50 < Duration::from_millis(500),
        "p50 with the circuit open: {p50:?}"
    );
    // Reads of cached objects go on.
    assert_eq!(get(&r.lb, "/faults/before").0, 200);
    r.proxy.set(Fault::Pass);
    let back = Instant::now();
    ledger
        .check(&r.lb, &r.up.client(), "faults", Duration::from_secs(60))
        .await;
    println!(
        "blackhole: {} writes on the upstream {:?} after it came back",
        ledger.0.len(),
        back.elapsed()
    );
}

/// A byte flipped on its way from the upstream is never delivered as a complete object: the
/// transfer breaks, nothing is cached, and the next read (the fault gone) is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_upstream_body_is_a_broken_transfer_never_a_clean_200() {
    let Some(r) = rig("").await else { return };
    let body = data(300_000, 2);
    r.up.client()
        .put_object()
        .bucket("faults")
        .key("flipped")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    r.proxy.set(Fault::FlipByte);
    let (status, head, got) = raw(
        r.lb.port,
        &signed_request(
            r.lb.port,
            "GET",
            "/faults/flipped",
            b"",
            std::time::SystemTime::now(),
        ),
    );
    let declared: usize = header_of(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        status != 200 || got.len() < declared,
        "a corrupted body arrived whole: status {status}, {} of {declared} bytes",
        got.len()
    );
    assert!(got != body, "the wrong bytes were delivered as the object");
    r.proxy.set(Fault::Pass);
    let (status, cache, _, got) = get(&r.lb, "/faults/flipped");
    assert_eq!(
        (status, cache.as_deref()),
        (200, Some("MISS")),
        "nothing was cached"
    );
    assert!(got == body);
}

/// 500 and 503 storms, resets in the middle of a request body: writes are acknowledged and
/// none is lost or corrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_and_resets_mid_request_lose_nothing() {
    let Some(r) = rig("first_byte_timeout_ms = 1000\nbreaker_cooldown_ms = 300\n").await else {
        return;
    };
    let mut ledger = Ledger::default();
    for (i, fault) in [
        Fault::Error500,
        Fault::Error503,
        Fault::ResetMidRequest,
        Fault::Pass,
    ]
    .into_iter()
    .enumerate()
    {
        r.proxy.set(fault);
        for j in 0..3 {
            let body = data(100_000 + j * 1000, (i * 10 + j) as u64);
            let (status, _, t) = ledger.put(&r.lb, "faults", &format!("{fault:?}-{j}"), &body);
            assert_eq!(status, 200, "{fault:?}");
            assert!(t < Duration::from_secs(10), "{fault:?}: {t:?}");
        }
    }
    r.proxy.set(Fault::Pass);
    ledger
        .check(&r.lb, &r.up.client(), "faults", Duration::from_secs(60))
        .await;
}

/// Refused credentials (403 for everything): writes stay queued (never dead-lettered),
/// CreateBucket is not answered 200, a listing says it is local; once the upstream takes the
/// credentials again every write drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_keep_writes_queued_until_accepted() {
    let Some(r) = rig("breaker_cooldown_ms = 300\n").await else {
        return;
    };
    let mut ledger = Ledger::default();
    r.proxy.set(Fault::Deny403);
    for i in 0..3 {
        let (status, sync, _) = ledger.put(
            &r.lb,
            "faults",
            &format!("denied-{i}"),
            b"queued while refused",
        );
        assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    }
    let created =
        r.lb.client()
            .create_bucket()
            .bucket("never-made")
            .send()
            .await;
    assert!(
        created.is_err(),
        "CreateBucket answered 200 while the upstream refuses us"
    );
    assert!(
        r.lb.client()
            .head_bucket()
            .bucket("never-made")
            .send()
            .await
            .is_err()
    );
    let (status, head, _) = raw(
        r.lb.port,
        &signed_request(
            r.lb.port,
            "GET",
            "/faults?list-type=2",
            b"",
            std::time::SystemTime::now(),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(
        header_of(&head, "x-lifeboat-list").as_deref(),
        Some("local")
    );
    // Still pending (not failed) after several replay attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&r.lb, "/faults/denied-0").2.as_deref(), Some("pending"));
    r.proxy.set(Fault::Pass);
    ledger
        .check(&r.lb, &r.up.client(), "faults", Duration::from_secs(60))
        .await;
}

/// Unmounts a test filesystem when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a 64 MiB tmpfs on `at`; `None` (with a message) when this is not possible here.
fn small_disk(at: &std::path::Path) -> Option<Mounted> {
    std::fs::create_dir_all(at).ok()?;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping the full-disk test: cannot mount a tmpfs here (needs root)");
        return None;
    }
    Some(Mounted(at.to_owned()))
}

/// A full disk: writes answer `507 InsufficientStorage` in S3 XML, earlier objects stay
/// intact, deletes work (they free space), and writes work again once space is freed, with no
/// restart. With `storage.min_free_bytes`, a body that cannot fit is refused before it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_recovers_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let Some(_mounted) = small_disk(&disk) else {
        return;
    };
    let config = |min_free: &str| {
        let path = tmp.path().join(format!("lifeboat-{min_free}.toml"));
        std::fs::write(
            &path,
            format!("[storage]\nmin_free_bytes = \"{min_free}\"\n"),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let cfg = config("0");
    let mut lb = Lifeboat::start_in(&disk, &[("LIFEBOAT_TEST_CONFIG", &cfg)]);
    lb.client()
        .create_bucket()
        .bucket("full")
        .send()
        .await
        .unwrap();
    let body = data(1 << 20, 3);
    let mut stored = Vec::new();
    let mut refused = None;
    for i in 0..100 {
        let (status, head, xml) = raw(
            lb.port,
            &crate::harness::signed_request(
                lb.port,
                "PUT",
                &format!("/full/o{i}"),
                &body,
                std::time::SystemTime::now(),
            ),
        );
        match status {
            200 => stored.push(i),
            507 => {
                refused = Some((head, String::from_utf8_lossy(&xml).into_owned()));
                break;
            }
            other => panic!("object {i}: {other} {}", String::from_utf8_lossy(&xml)),
        }
    }
    let (_, xml) = refused.expect("the disk never filled");
    assert!(xml.contains("<Code>InsufficientStorage</Code>"), "{xml}");
    assert!(stored.len() > 10, "only {} objects fit", stored.len());
    let (status, _, _, got) = get(&lb, "/full/o0");
    assert!(
        status == 200 && got == body,
        "an earlier object was damaged"
    );
    // Deletes work on the full disk, and free the space for new writes.
    for i in &stored[..5] {
        let status = crate::harness::delete(&lb, &format!("/full/o{i}"));
        assert_eq!(status, 204, "delete on a full disk");
    }
    let (status, _) = put(&lb, "/full/after", &body, &[]);
    assert_eq!(status, 200, "writes work again without a restart");
    assert_eq!(get(&lb, "/full/after").3, body);
    // With a free-space margin, a body that cannot fit is refused before it is read.
    lb.kill9();
    let cfg = config("32MiB");
    let lb = Lifeboat::start_in(&disk, &[("LIFEBOAT_TEST_CONFIG", &cfg)]);
    let (status, _) = put(&lb, "/full/margin", &body, &[]);
    assert_eq!(status, 507, "storage.min_free_bytes");
    assert_eq!(
        get(&lb, &format!("/full/o{}", stored[5])).3,
        body,
        "data intact after restart"
    );
}

/// `lifeboat dead-letters` on the stopped server's store: the command-line twin of the admin
/// API's dead-letter tools.
fn dead_letters(data_dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("dead-letters")
        .args(args)
        .env_clear()
        .env("LIFEBOAT_DATA_DIR", data_dir)
        .output()
        .expect("run lifeboat dead-letters");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A write the upstream refuses for good reports `failed`, is listed as a dead letter with the
/// upstream's reason, can be dropped, and is never silently lost: until dropped it is queued
/// again on every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_a_visible_dead_letter_until_dropped() {
    let Some(mut r) = rig("write = \"back\"\n").await else {
        return;
    };
    assert_eq!(
        put(&r.lb, "/faults/dot/./seg", b"refused upstream", &[]).0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&r.lb, "/faults/dot/./seg").2.as_deref() != Some("failed") {
        assert!(Instant::now() < deadline, "never reported failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The upstream answers the listing; the failed object is still listed (it is only here).
    let listed =
        r.lb.client()
            .list_objects_v2()
            .bucket("faults")
            .send()
            .await
            .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"dot/./seg"), "{keys:?}");
    r.lb.kill9();
    let data_dir = r.lb.data_dir.clone();
    let listed = dead_letters(&data_dir, &["list"]);
    assert!(listed.contains("put faults/dot/./seg"), "{listed}");
    assert!(dead_letters(&data_dir, &["retry"]).contains("queued 1"));
    assert!(dead_letters(&data_dir, &["list"]).contains("no dead letters"));
    assert!(dead_letters(&data_dir, &["drop", "--all"]).contains("dropped 0"));
    let _ = &mut r;
}

/// Measures, with the default config, how long 500 writes queued during a blackhole take to
/// reach the upstream once it is back (`cargo test --release --test integration
/// measure_blackhole -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_blackhole_drain_of_500_writes() {
    let Some(r) = rig("").await else { return };
    r.proxy.set(Fault::Blackhole);
    let mut times = Vec::new();
    for i in 0..500 {
        let started = Instant::now();
        let (status, _) = put(&r.lb, &format!("/faults/q{i:03}"), &data(4096, i), &[]);
        assert_eq!(status, 200);
        times.push(started.elapsed());
    }
    let first = times[0];
    let p50 = median(times[10..].to_vec());
    r.proxy.set(Fault::Pass);
    let back = Instant::now();
    let direct = r.up.client();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut n = 0;
        let mut token = None;
        loop {
            let page = direct
                .list_objects_v2()
                .bucket("faults")
                .prefix("q")
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
            n += page.contents().len();
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if n == 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of 500 reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "blackhole, default config: first write {first:?}, p50 with the circuit open {p50:?}; \
         500 queued writes on the upstream {:?} after it came back",
        back.elapsed()
    );
}
