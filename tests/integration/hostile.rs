//! Hostile input (issue 11, "found when tried with hostile input"): each case is sent as an
//! attacker or a careless client would, over raw TCP, and must get AWS's answer in S3 XML.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use crate::harness::{Lifeboat, code_of, raw, setup_with_bucket, signed_request};

#[tokio::test]
async fn invalid_percent_encoding_and_utf8_in_the_path_are_invalid_uri() {
    let (lb, s3) = setup_with_bucket("bkt").await;
    for path in ["/bkt/bad%FF%FEkey", "/bkt/pct%zzkey", "/bkt/end%4"] {
        let req = signed_request(lb.port, "PUT", path, b"x", SystemTime::now());
        let (status, _, body) = raw(lb.port, &req);
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "InvalidURI"),
            "{path}"
        );
    }
    let listed = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(0), "nothing stored under an alias");
}

#[tokio::test]
async fn connections_that_never_send_a_byte_are_closed() {
    // The first-byte deadline closes the idle connections; the (longer) header deadline the
    // head that never ends.
    let header_timeout = Duration::from_secs(2);
    let lb = Lifeboat::start_with_config(&format!(
        "[limits]\nfirst_byte_timeout_seconds = 1\nheader_timeout_seconds = {}\n",
        header_timeout.as_secs()
    ));
    let started = Instant::now();
    let mut idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", lb.port)).expect("connect"))
        .collect();
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            other => panic!("the server must close an idle connection, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed after the first-byte deadline"
    );
    // A connection that does speak is served as before.
    let req = signed_request(lb.port, "GET", "/", b"", SystemTime::now());
    assert_eq!(raw(lb.port, &req).0, 200);
    // A head that starts and never ends is closed by the header deadline (not the first-byte
    // one: its first byte came): the read must end in EOF (or a reset), well before the
    // client's own read timeout would end it.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    s.set_read_timeout(Some(header_timeout * 5)).ok();
    s.write_all(b"GET /health HTTP/1.1\r\n").expect("partial");
    let sent = Instant::now();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server must close a head that never ends, got {e:?}"),
    }
    let waited = sent.elapsed();
    assert!(
        waited >= header_timeout * 3 / 4 && waited < header_timeout * 2,
        "closed by the {header_timeout:?} header deadline, after {waited:?}"
    );
}

#[tokio::test]
async fn an_encoded_leading_slash_in_the_copy_source_is_decoded_first() {
    let (_lb, s3) = setup_with_bucket("bkt").await;
    s3.put_object()
        .bucket("bkt")
        .key("src")
        .body(aws_sdk_s3::primitives::ByteStream::from(b"copied".to_vec()))
        .send()
        .await
        .expect("put");
    // aws-sdk-s3 sends the header as given.
    s3.copy_object()
        .bucket("bkt")
        .key("dst")
        .copy_source("%2Fbkt%2Fsrc")
        .send()
        .await
        .expect("a copy with an encoded leading slash");
    let got = crate::harness::object_bytes(&s3, "bkt", "dst").await;
    assert_eq!(got, b"copied");
}

#[tokio::test]
async fn an_authorization_header_with_only_the_algorithm_is_malformed() {
    let lb = Lifeboat::start();
    for value in ["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 "] {
        let req = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {value}\r\nx-amz-date: 20261201T000000Z\r\nConnection: close\r\n\r\n",
            lb.port
        );
        let (status, _, body) = raw(lb.port, req.as_bytes());
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "AuthorizationHeaderMalformed"),
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn heads_past_the_http_layers_limits_get_s3_xml_not_a_bare_431() {
    let lb = Lifeboat::start();
    let many: String = (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect();
    let long_line = format!("GET /bkt/{} HTTP/1.1\r\n\r\n", "k".repeat(100_000));
    let cases = [
        format!("GET /bkt/key HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
        long_line,
        format!(
            "GET /bkt/key HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
            "v".repeat(20_000)
        ),
        // Past hyper's header count but within the byte limit.
        format!(
            "GET /bkt/key HTTP/1.1\r\nHost: x\r\n{}\r\n",
            (0..1200).map(|i| format!("h{i}:\r\n")).collect::<String>()
        ),
    ];
    for (i, req) in cases.iter().enumerate() {
        let (status, head, body) = raw(lb.port, req.as_bytes());
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "RequestHeaderSectionTooLarge"),
            "case {i}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/xml")
        );
    }
    // On a keep-alive connection, after a request that was fine.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", lb.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let ok = String::from_utf8(signed_request(lb.port, "GET", "/", b"", SystemTime::now()))
        .expect("text")
        .replace("Connection: close\r\n", "");
    s.write_all(ok.as_bytes()).expect("first");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    let body_len = loop {
        s.read_exact(&mut byte).expect("first answer");
        first.push(byte[0]);
        if first.ends_with(b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&first).to_ascii_lowercase();
            break head
                .split_once("content-length:")
                .and_then(|(_, r)| r.split_once("\r\n"))
                .and_then(|(v, _)| v.trim().parse::<usize>().ok())
                .expect("content-length");
        }
    };
    let mut body = vec![0u8; body_len];
    s.read_exact(&mut body).expect("first body");
    assert!(first.starts_with(b"HTTP/1.1 200"));
    s.write_all(cases[0].as_bytes()).expect("second");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("<Code>RequestHeaderSectionTooLarge</Code>"),
        "{text}"
    );
    // The server is fine afterwards.
    let req = signed_request(lb.port, "GET", "/", b"", SystemTime::now());
    assert_eq!(raw(lb.port, &req).0, 200);
}

/// An upload refused before its body is read (here a bad signature) is answered, and what the
/// client still sends is read and dropped until it is done: a sender that writes the whole 8 MiB
/// body before reading (as a proxy like nginx does) finishes writing and reads the 403, instead
/// of a reset that a proxy would turn into a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_read_to_its_end_so_the_sender_gets_the_answer() {
    let (lb, _s3) = setup_with_bucket("early").await;
    let port = lb.port;
    let body = vec![b'x'; 8 << 20];
    let outcomes: Vec<(bool, u16)> = std::thread::scope(|s| {
        (0..6)
            .map(|_| {
                let body = &body;
                s.spawn(move || {
                    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let head = format!(
                        "PUT /early/k HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
                         x-amz-date: 20261202T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=nobody/20261202/us-east-1/s3/aws4_request, \
                         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}\r\nContent-Length: {}\r\n\r\n",
                        "0".repeat(64),
                        body.len()
                    );
                    let wrote = c.write_all(head.as_bytes()).is_ok() && c.write_all(body).is_ok();
                    let mut resp = Vec::new();
                    let _ = c.read_to_end(&mut resp);
                    let status = String::from_utf8_lossy(&resp)
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    (wrote, status)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .collect()
    });
    for (wrote, status) in outcomes {
        assert!(wrote, "the body could not be sent to its end: {status}");
        assert_eq!(status, 403);
    }
}
