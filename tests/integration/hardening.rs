//! Hardening (issue 11): graceful shutdown, the access log, connection and rate limits, and
//! public buckets, each against the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{
    AK, Lifeboat, SK, code_of, header_of, lifeboat, object_bytes, raw, signed_request,
    signed_request_with,
};

/// Reads one HTTP/1.1 response with a Content-Length body from a keep-alive connection.
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!("connection ended inside a response head: {other:?}"),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// A signed request that keeps its connection open.
fn keep_alive(req: Vec<u8>) -> Vec<u8> {
    String::from_utf8(req)
        .expect("text request")
        .replace("Connection: close\r\n", "")
        .into_bytes()
}

fn tmp_files(lb: &Lifeboat) -> usize {
    std::fs::read_dir(lb.data_dir.join("tmp")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lb = lifeboat(dir.path(), "[server]\nshutdown_grace_seconds = 10\n");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("bucket");
    // A PUT whose body is half sent when the signal arrives.
    let body = vec![b'x'; 64 * 1024];
    let req = signed_request(lb.port, "PUT", "/bkt/in-flight", &body, SystemTime::now());
    let split = req.len() - body.len() / 2;
    let mut conn = TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    conn.write_all(&req[..split]).expect("first half");
    std::thread::sleep(Duration::from_millis(200));
    lb.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused once the listener is closed.
    let refused = (0..50).any(|_| {
        let gone = TcpStream::connect(("127.0.0.1", lb.port)).is_err();
        if !gone {
            std::thread::sleep(Duration::from_millis(20));
        }
        gone
    });
    assert!(refused, "the listener closes on SIGTERM");
    conn.write_all(&req[split..]).expect("second half");
    let (status, _) = read_response(&mut conn);
    assert_eq!(status, 200, "the request in flight finishes");
    let exit = lb.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(exit.success(), "exit status {exit:?}");
    let log = lb.log();
    assert!(
        log.contains("replay worker") || log.contains("stopped"),
        "{log}"
    );
    // After the restart the object is there, and nothing was left behind.
    let lb = lifeboat(dir.path(), "");
    assert_eq!(tmp_files(&lb), 0);
    assert_eq!(object_bytes(&lb.client(), "bkt", "in-flight").await, body);
}

#[tokio::test]
async fn an_upload_cut_by_the_grace_period_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lb = lifeboat(dir.path(), "[server]\nshutdown_grace_seconds = 1\n");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("bkt")
        .key("kept")
        .body(ByteStream::from_static(b"acknowledged"))
        .send()
        .await
        .expect("put");
    let body = vec![b'y'; 1 << 20];
    let req = signed_request(lb.port, "PUT", "/bkt/cut", &body, SystemTime::now());
    let mut conn = TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    conn.write_all(&req[..req.len() - body.len() / 2])
        .expect("half");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmp_files(&lb) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tmp_files(&lb), 1, "the upload is being written");
    let started = Instant::now();
    lb.signal("TERM");
    let exit = lb.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the grace period bounds the wait"
    );
    assert_eq!(tmp_files(&lb), 0, "the cut upload's temp file is gone");
    drop(conn);
    let lb = lifeboat(dir.path(), "");
    let s3 = lb.client();
    assert_eq!(object_bytes(&s3, "bkt", "kept").await, b"acknowledged");
    let cut = s3.head_object().bucket("bkt").key("cut").send().await;
    assert!(cut.is_err(), "the cut upload was never acknowledged");
}

/// The access lines of a server's log, parsed.
fn access_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The access line of the answer whose head is `head` (by its `x-amz-request-id`), polled
/// for: a line is written when its body is done.
fn access_line_of(lb: &Lifeboat, head: &str) -> serde_json::Value {
    let id = header_of(head, "x-amz-request-id").expect("a request id");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(l) = access_lines(&lb.log())
            .into_iter()
            .find(|l| l["request_id"] == id.as_str())
        {
            return l;
        }
        assert!(Instant::now() < deadline, "no access line for {id}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_and_no_secrets() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("bkt")
        .key("logged/key.txt")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .expect("put");
    let presigned = s3
        .get_object()
        .bucket("bkt")
        .key("logged/key.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
        .await
        .expect("presign");
    let uri = presigned.uri().to_owned();
    let (status, _, body) = lb.send("GET", &lb.path_of(&uri), &[], b"");
    assert_eq!((status, body.as_slice()), (200, &b"0123456789"[..]));
    let missing = s3.get_object().bucket("bkt").key("nope").send().await;
    assert!(missing.is_err());
    // Lines are written when the body is done: poll for the last one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines = access_lines(&lb.log());
        if lines.len() >= 4 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 4, "one line per request: {lines:#?}");
    let put = &lines[1];
    assert_eq!(put["operation"], "PutObject");
    assert_eq!(put["bucket"], "bkt");
    assert_eq!(put["key"], "logged/key.txt");
    assert_eq!(put["status"], 200);
    assert_eq!(put["bytes_in"], 10);
    assert_eq!(put["user"], AK);
    assert_eq!(put["client_ip"], "127.0.0.1");
    for field in ["time", "request_id", "duration_ms", "bytes_out"] {
        assert!(!put[field].is_null(), "{field} in {put}");
    }
    let get = &lines[2];
    assert_eq!(get["operation"], "GetObject");
    assert_eq!(get["bytes_out"], 10);
    assert_eq!(lines[3]["status"], 404);
    assert_eq!(lines[3]["error"], "NoSuchKey");
    let log = lb.log();
    let signature = uri
        .split("X-Amz-Signature=")
        .nth(1)
        .expect("a signature")
        .split('&')
        .next()
        .expect("value");
    for secret in [
        signature,
        SK,
        "X-Amz-Signature",
        "X-Amz-Credential",
        "Signature=",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // (headers, the client address the line names when the peer is a trusted proxy)
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("X-Forwarded-For", "203.0.113.7")], "203.0.113.7"),
        // RFC 7239: a quoted IPv6 node with a port, then a trusted hop, which is skipped.
        (
            &[(
                "Forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=127.0.0.9",
            )],
            "2001:db8::7",
        ),
        // Forwarded is preferred to X-Forwarded-For when both are sent.
        (
            &[
                ("Forwarded", "for=198.51.100.9"),
                ("X-Forwarded-For", "203.0.113.7"),
            ],
            "198.51.100.9",
        ),
    ];
    for (config, trusted) in [
        ("", false),
        ("[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n", true),
    ] {
        let lb = Lifeboat::start_with_config(config);
        for (headers, forwarded_client) in cases {
            let req = signed_request_with(lb.port, "GET", "/", b"", SystemTime::now(), headers);
            let (status, head, _) = raw(lb.port, &req);
            assert_eq!(status, 200);
            let line = access_line_of(&lb, &head);
            let expected = if trusted {
                forwarded_client
            } else {
                "127.0.0.1"
            };
            assert_eq!(line["client_ip"], expected, "{config:?} {headers:?}");
        }
    }
}

#[tokio::test]
async fn logfmt_access_lines_are_key_value_pairs() {
    let lb = Lifeboat::start_with_config("[server]\naccess_log = \"logfmt\"\n");
    let req = signed_request(lb.port, "GET", "/", b"", SystemTime::now());
    assert_eq!(raw(lb.port, &req).0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = lb.log();
        if let Some(line) = log.lines().find(|l| l.starts_with("time=")) {
            assert!(line.contains("operation=ListBuckets"), "{line}");
            assert!(line.contains("status=200"), "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "no logfmt line:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let lb = Lifeboat::start_with_config("[limits]\nidle_timeout_seconds = 1\n");
    let mut conn = TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = keep_alive(signed_request(lb.port, "GET", "/", b"", SystemTime::now()));
    conn.write_all(&req).expect("request");
    assert_eq!(read_response(&mut conn).0, 200);
    let started = Instant::now();
    let mut rest = Vec::new();
    let n = conn.read_to_end(&mut rest).expect("closed, not timed out");
    assert_eq!(n, 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "closed after the idle timeout: {waited:?}"
    );
}

#[tokio::test]
async fn beyond_max_connections_new_ones_wait_and_open_ones_keep_working() {
    let lb = Lifeboat::start_with_config("[limits]\nmax_connections = 2\n");
    let open: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
            c.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let req = keep_alive(signed_request(lb.port, "GET", "/", b"", SystemTime::now()));
            c.write_all(&req).expect("request");
            assert_eq!(read_response(&mut c).0, 200);
            c
        })
        .collect();
    // A third connection is not served while two are open...
    let mut third = TcpStream::connect(("127.0.0.1", lb.port)).expect("backlog");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .ok();
    let req = signed_request(lb.port, "GET", "/", b"", SystemTime::now());
    third.write_all(&req).expect("queued request");
    let mut byte = [0u8; 1];
    assert!(third.read(&mut byte).is_err(), "waits at the limit");
    // ...the open ones keep working...
    let mut first = open.into_iter();
    let mut a = first.next().expect("first");
    a.write_all(&keep_alive(signed_request(
        lb.port,
        "GET",
        "/",
        b"",
        SystemTime::now(),
    )))
    .expect("again");
    assert_eq!(read_response(&mut a).0, 200);
    // ...and once one closes, the third is served.
    drop(a);
    third.set_read_timeout(Some(Duration::from_secs(10))).ok();
    assert_eq!(read_response(&mut third).0, 200);
}

#[tokio::test]
async fn over_the_request_rate_an_access_key_gets_slow_down() {
    let lb = Lifeboat::start_with_config("[limits]\nrequests_per_second = 1\nrequest_burst = 3\n");
    let list = || {
        let req = signed_request(lb.port, "GET", "/", b"", SystemTime::now());
        let (status, _, body) = raw(lb.port, &req);
        (status, code_of(&body))
    };
    let started = Instant::now();
    let statuses: Vec<(u16, String)> = (0..5).map(|_| list()).collect();
    let elapsed = started.elapsed();
    // The burst of three is admitted; a token comes back once a second, so requests four and
    // five, sent within that second, are both refused.
    assert!(
        elapsed < Duration::from_secs(1),
        "five requests took {elapsed:?}: too slow to test a rate of one a second"
    );
    let slow_down = (503, "SlowDown".to_owned());
    assert_eq!(
        statuses,
        [
            vec![(200, String::new()); 3],
            vec![slow_down.clone(), slow_down]
        ]
        .concat()
    );
    // A refused request takes no token: the next is admitted about a second after the burst
    // began, not before.
    let deadline = started + Duration::from_secs(5);
    loop {
        let (status, code) = list();
        if status == 200 {
            break;
        }
        assert_eq!((status, code.as_str()), (503, "SlowDown"));
        assert!(Instant::now() < deadline, "no token came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let admitted = started.elapsed();
    assert!(
        admitted >= Duration::from_millis(950),
        "admitted again after {admitted:?}"
    );
}

#[tokio::test]
async fn a_public_read_bucket_serves_anonymous_get_and_head_and_nothing_else() {
    let lb = Lifeboat::start_with_config(
        "[[buckets]]\nname = \"pub\"\npublic_read = true\n\
         [[buckets]]\nname = \"listed\"\npublic_read = true\npublic_list = true\n",
    );
    let s3 = lb.client();
    for b in ["pub", "listed", "private"] {
        s3.create_bucket().bucket(b).send().await.expect("bucket");
        s3.put_object()
            .bucket(b)
            .key("doc.txt")
            .body(ByteStream::from_static(b"public bytes"))
            .send()
            .await
            .expect("put");
    }
    let (status, _, body) = lb.send("GET", "/pub/doc.txt", &[], b"");
    assert_eq!((status, body.as_slice()), (200, &b"public bytes"[..]));
    assert_eq!(lb.send("HEAD", "/pub/doc.txt", &[], b"").0, 200);
    let (status, _, body) = lb.send("GET", "/pub/missing", &[], b"");
    assert_eq!((status, code_of(&body).as_str()), (404, "NoSuchKey"));
    for (method, path) in [
        ("GET", "/pub"),
        ("GET", "/pub?list-type=2"),
        ("PUT", "/pub/new.txt"),
        ("DELETE", "/pub/doc.txt"),
        ("GET", "/pub/doc.txt?tagging"),
        ("GET", "/private/doc.txt"),
        ("GET", "/"),
    ] {
        let (status, _, body) = lb.send(method, path, &[], b"");
        assert_eq!(
            (status, code_of(&body).as_str()),
            (403, "AccessDenied"),
            "{method} {path}"
        );
    }
    let (status, _, body) = lb.send("GET", "/listed?list-type=2", &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Key>doc.txt</Key>"));
    assert_eq!(object_bytes(&s3, "pub", "doc.txt").await, b"public bytes");
}

#[tokio::test]
async fn in_gateway_mode_sigterm_stops_the_replay_worker_and_exits_zero() {
    let Some(mut server) = crate::fidelity::Server::gateway("").or_else(|| {
        eprintln!("skipped: SeaweedFS is not installed");
        None
    }) else {
        return;
    };
    let s3 = server.lb.client();
    s3.create_bucket()
        .bucket("gwb")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("gwb")
        .key("replicated")
        .body(ByteStream::from_static(b"replicated"))
        .send()
        .await
        .expect("put");
    server.lb.signal("TERM");
    let exit = server.lb.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(exit.success(), "exit status {exit:?}");
    let log = server.lb.log();
    assert!(log.contains("replay worker stopped"), "{log}");
}

/// Whether something holds the lock of `bucket/key` in a gateway (here: the replay worker,
/// mid-entry): a notice for the key (`POST /storage/events`) waits up to `NOTICE_LOCK_WAIT`
/// for the lock and is answered at once when it is free. The object is pending, so the notice
/// drops nothing.
fn key_lock_held(lb: &Lifeboat, bucket: &str, key: &str) -> bool {
    let event = serde_json::json!({"Records": [{
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }]});
    let started = Instant::now();
    let (status, doc) = lb.admin_json(
        "POST",
        "/storage/events",
        crate::harness::AdminAuth::SigV4,
        &event,
    );
    assert_eq!(
        (status, &doc["dropped"]),
        (200, &serde_json::json!(0)),
        "{doc}"
    );
    started.elapsed() >= lifeboat::limits::NOTICE_LOCK_WAIT * 9 / 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_gateway_mode_sigterm_mid_replay_keeps_the_entry_queued_for_the_restart() {
    use crate::upstream::{Fault, FaultProxy};
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let proxy = FaultProxy::start(up.port).await;
    let grace = Duration::from_secs(2);
    let server = format!("shutdown_grace_seconds = {}", grace.as_secs());
    // The replay must outlast the shutdown: the upstream's answer is awaited far longer than
    // the worker is given to finish its entry (`WORKER_STOP_WAIT`).
    let patient = up.gateway_config_via(
        proxy.port,
        &server,
        "write = \"back\"\nfirst_byte_timeout_ms = 120000\nidle_timeout_ms = 120000",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lb = lifeboat(dir.path(), &patient);
    lb.client()
        .create_bucket()
        .bucket("drain")
        .send()
        .await
        .expect("bucket");
    // The upstream goes silent: connections are taken, the upload read, nothing answered.
    proxy.set(Fault::Blackhole);
    let body = crate::harness::data(8 << 20, 5);
    let etag = crate::harness::md5_hex(&body);
    let (status, sync) = crate::harness::put(&lb, "/drain/big", &body, &[]);
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    // Polled until the replay worker is uploading the entry (it holds the key's lock).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !key_lock_held(&lb, "drain", "big") {
        assert!(Instant::now() < deadline, "the replay never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopping = Instant::now();
    lb.signal("TERM");
    // The grace for requests (none in flight), the worker's wait for its entry, and the
    // runtime's wait for blocking work (main.rs: RUNTIME_STOP_WAIT, 5 s).
    let bound = grace + lifeboat::limits::WORKER_STOP_WAIT + Duration::from_secs(5);
    let exit = lb.wait_exit(bound + Duration::from_secs(5)).expect("exits");
    let took = stopping.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < bound, "stopped after {took:?}, beyond {bound:?}");
    let log = lb.log();
    assert!(
        log.contains("the replay worker did not stop in time; its entry stays queued"),
        "{log}"
    );
    let upstream = up.client();
    let head = upstream
        .head_object()
        .bucket("drain")
        .key("big")
        .send()
        .await;
    assert!(head.is_err(), "nothing reached the upstream");
    // Restarted with the upstream still silent: the entry is queued, the object pending and
    // served from the local copy.
    let quick = up.gateway_config_via(
        proxy.port,
        "",
        "first_byte_timeout_ms = 1000\nidle_timeout_ms = 1000",
    );
    let lb = lifeboat(dir.path(), &quick);
    let doc = lb.status();
    assert_eq!(doc["outbox"]["depth"], 1, "{doc}");
    assert_eq!(doc["local"]["objects"]["pending"], 1, "{doc}");
    let (status, _, sync, got) = crate::harness::get(&lb, "/drain/big");
    assert_eq!((status, sync.as_deref()), (200, Some("pending")));
    assert!(got == body, "the local copy is whole");
    // With the upstream back, the entry drains: the upstream has the object, byte for byte.
    proxy.set(Fault::Pass);
    crate::harness::until_upstream(&upstream, "drain", "big", Some(&etag)).await;
    assert!(
        object_bytes(&upstream, "drain", "big").await == body,
        "the upstream's copy is the object"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lb.status()["outbox"]["depth"] != 0 {
        assert!(Instant::now() < deadline, "the outbox never emptied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, _, sync, _) = crate::harness::get(&lb, "/drain/big");
    assert_eq!(sync.as_deref(), Some("synced"));
}

/// The server's HTTP/2 SETTINGS, read over a raw h2c connection (prior knowledge).
fn h2_settings(port: u16) -> Vec<(u16, u32)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .expect("preface and empty SETTINGS");
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("frame head");
    assert_eq!(head[3], 0x4, "the server's first frame is SETTINGS");
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("settings");
    payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect()
}

#[tokio::test]
async fn http2_connections_are_held_to_max_concurrent_streams() {
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    let lb = Lifeboat::start_with_config("[limits]\nmax_concurrent_streams = 7\n");
    let settings = h2_settings(lb.port);
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "{settings:?}"
    );
    let lb = Lifeboat::start();
    assert!(h2_settings(lb.port).contains(&(MAX_CONCURRENT_STREAMS, 100)));
}

#[tokio::test]
async fn a_request_whose_client_goes_away_unanswered_is_logged_as_499() {
    use crate::upstream::{Fault, FaultProxy};
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let proxy = FaultProxy::start(up.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lb = lifeboat(
        dir.path(),
        &format!(
            "[upstream]\nendpoint = \"http://127.0.0.1:{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
            proxy.port, up.access_key, up.secret_key
        ),
    );
    lb.client()
        .create_bucket()
        .bucket("gone")
        .send()
        .await
        .expect("bucket");
    // An uncached read waits on an upstream that answers nothing; the client gives up first.
    proxy.set(Fault::Stall);
    let req = signed_request(lb.port, "GET", "/gone/slow", b"", SystemTime::now());
    let mut conn = TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    conn.write_all(&req).expect("request");
    std::thread::sleep(Duration::from_millis(300));
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = access_lines(&lb.log());
        if let Some(l) = lines.iter().find(|l| l["key"] == "slow") {
            assert_eq!(l["status"], 499, "{l}");
            assert_eq!(l["error"], "ClientClosed", "{l}");
            assert_eq!(l["operation"], "GetObject", "{l}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no line for the abandoned request"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn in_gateway_mode_access_lines_carry_the_cache_result_and_the_sync_state() {
    let Some((up, _up_dir)) = crate::upstream::started() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let lb = lifeboat(dir.path(), &up.gateway_config("", ""));
    lb.client()
        .create_bucket()
        .bucket("logged")
        .send()
        .await
        .expect("bucket");
    // Written straight to the upstream: Lifeboat's first read of it is a miss.
    up.client()
        .put_object()
        .bucket("logged")
        .key("upstream-only")
        .body(ByteStream::from_static(b"from the upstream"))
        .send()
        .await
        .expect("upstream put");
    let get = || {
        let req = signed_request(
            lb.port,
            "GET",
            "/logged/upstream-only",
            b"",
            SystemTime::now(),
        );
        let (status, head, body) = raw(lb.port, &req);
        assert_eq!((status, body.as_slice()), (200, &b"from the upstream"[..]));
        let line = access_line_of(&lb, &head);
        let cache = header_of(&head, "x-cache").expect("x-cache");
        assert_eq!(line["operation"], "GetObject", "{line}");
        assert_eq!(
            line["cache"],
            cache.as_str(),
            "the line says what the answer did"
        );
        assert_eq!(line["sync"], "synced", "{line}");
        cache
    };
    assert_eq!(get(), "MISS");
    // The fill is committed as the miss's body ends; a later read is a hit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get() != "HIT" {
        assert!(Instant::now() < deadline, "never a HIT after the fill");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A PUT's line has the sync state its answer reported, and no cache result.
    for (write, sync) in [("through", "synced"), ("back", "pending")] {
        let path = format!("/logged/put-{write}");
        let req = signed_request_with(
            lb.port,
            "PUT",
            &path,
            b"written",
            SystemTime::now(),
            &[("x-lifeboat-write", write)],
        );
        let (status, head, _) = raw(lb.port, &req);
        assert_eq!(status, 200, "{head}");
        assert_eq!(header_of(&head, "x-lifeboat-sync").as_deref(), Some(sync));
        let line = access_line_of(&lb, &head);
        assert_eq!(line["operation"], "PutObject", "{line}");
        assert_eq!(line["sync"], sync, "{write}: {line}");
        assert!(line["cache"].is_null(), "{line}");
    }
}
