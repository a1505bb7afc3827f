//! Parallel replay and the replication pace (issue 12, item 6): queued writes of distinct keys
//! replay side by side and a key's own writes still land in order; `replication_rate` holds.
//! The measurements (ignored) give the drain rate at concurrency 1 and 4 and the pace's
//! accuracy: `cargo test --release --test integration measure_replay -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Lifeboat, lifeboat, md5_hex};
use crate::upstream::{Fault, FaultProxy, UpstreamServer, available};

fn config(proxy: &FaultProxy, up: &UpstreamServer, extra: &str) -> String {
    format!(
        "[upstream]\nendpoint = \"http://127.0.0.1:{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\
         write = \"back\"\n{extra}",
        proxy.port, up.access_key, up.secret_key
    )
}

/// Queues `n` objects of `size` bytes (plus what `more` writes) while the upstream refuses
/// connections, then restarts Lifeboat with the upstream reachable (the worker starts with no
/// backoff); returns the restarted server and when it was started.
async fn queue_then_restart(
    dir: &std::path::Path,
    up: &UpstreamServer,
    proxy: &FaultProxy,
    extra: &str,
    n: usize,
    size: usize,
) -> (Lifeboat, Instant) {
    let mut lb = lifeboat(dir, &config(proxy, up, extra));
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("rep")
        .send()
        .await
        .expect("bucket");
    // The bucket exists upstream before the outage.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up
        .client()
        .head_bucket()
        .bucket("rep")
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "bucket never mirrored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.set(Fault::Reset);
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..n {
        let s3 = s3.clone();
        puts.spawn(async move {
            s3.put_object()
                .bucket("rep")
                .key(format!("q/{i:05}"))
                .body(ByteStream::from(vec![(i % 251) as u8; size]))
                .send()
                .await
                .expect("queued put");
        });
        while puts.len() >= 16 {
            puts.join_next().await;
        }
    }
    while puts.join_next().await.is_some() {}
    // One key written four times and deleted once on the way: only the last version counts.
    for (i, body) in [&b"v1"[..], b"v2", b"v3"].iter().enumerate() {
        s3.put_object()
            .bucket("rep")
            .key("same")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put");
        if i == 1 {
            s3.delete_object()
                .bucket("rep")
                .key("same")
                .send()
                .await
                .expect("delete");
        }
    }
    lb.kill9();
    proxy.set(Fault::Pass);
    let started = Instant::now();
    (lifeboat(dir, &config(proxy, up, extra)), started)
}

/// Polls until the outbox is empty; the time it took from `since`.
async fn drained(lb: &Lifeboat, since: Instant, within: Duration) -> Duration {
    loop {
        let doc = lb.status();
        if doc["outbox"]["depth"] == 0 {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "the outbox does not drain: {doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_writes_replay_side_by_side_and_each_key_lands_in_order() {
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let proxy = FaultProxy::start(up.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (lb, started) = queue_then_restart(
        dir.path(),
        &up,
        &proxy,
        "replication_concurrency = 4\n",
        200,
        1024,
    )
    .await;
    drained(&lb, started, Duration::from_secs(60)).await;
    let direct = up.client();
    let listed = direct
        .list_objects_v2()
        .bucket("rep")
        .prefix("q/")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(200));
    for o in listed.contents() {
        let i: usize = o.key().unwrap_or("")[2..].parse().expect("index");
        assert_eq!(
            o.e_tag().unwrap_or("").trim_matches('"'),
            md5_hex(&vec![(i % 251) as u8; 1024])
        );
    }
    let same = direct
        .get_object()
        .bucket("rep")
        .key("same")
        .send()
        .await
        .expect("the last version is upstream")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(same.as_ref(), b"v3");
}

/// Not a test: the drain of 1,000 queued 64 KiB objects at concurrency 1 and 4, and how close
/// `replication_rate` holds to its setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn measure_replay_concurrency_and_pace() {
    if !available() {
        return;
    }
    for concurrency in [1, 4] {
        let up_dir = tempfile::tempdir().expect("tempdir");
        let up = UpstreamServer::start(up_dir.path());
        let proxy = FaultProxy::start(up.port).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (lb, started) = queue_then_restart(
            dir.path(),
            &up,
            &proxy,
            &format!("replication_concurrency = {concurrency}\n"),
            1000,
            64 << 10,
        )
        .await;
        let took = drained(&lb, started, Duration::from_secs(600)).await;
        println!(
            "replay of 1000 x 64 KiB at concurrency {concurrency}: {:.2} s, {:.0} objects/s",
            took.as_secs_f64(),
            1000.0 / took.as_secs_f64()
        );
    }
    let rate: u64 = 4 << 20;
    let up_dir = tempfile::tempdir().expect("tempdir");
    let up = UpstreamServer::start(up_dir.path());
    let proxy = FaultProxy::start(up.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (lb, started) = queue_then_restart(
        dir.path(),
        &up,
        &proxy,
        &format!("replication_rate = {rate}\n"),
        400,
        64 << 10,
    )
    .await;
    let took = drained(&lb, started, Duration::from_secs(600)).await;
    let bytes = 400u64 * (64 << 10);
    println!(
        "pace: set {} B/s, measured {:.0} B/s over {:.2} s ({:.1}% of the setting)",
        rate,
        bytes as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        100.0 * bytes as f64 / took.as_secs_f64() / rate as f64
    );
}
