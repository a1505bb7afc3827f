//! TLS on both listeners (issue 11, item 6): a CA and a leaf made here (webpki refuses a
//! self-signed leaf), aws-sdk-s3 and aws-cli over https, HTTP/2 by ALPN, TLS 1.2 accepted,
//! SIGHUP reloading the certificate without dropping a connection, presigned URLs in https,
//! and real requests over h2 through TLS (curl's own SigV4, on both listeners).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{AK, Lifeboat, SK, lifeboat, token_file};

/// A CA, and leaves it signs, written as PEM files in a directory.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Lifeboat test CA");
        let key = KeyPair::generate().expect("ca key");
        let ca = params.self_signed(&key).expect("ca");
        let ca_pem = ca.pem();
        std::fs::write(dir.join("ca.pem"), &ca_pem).expect("write ca");
        Self {
            dir: dir.to_owned(),
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes `<name>.pem` (leaf then CA: a chain) and `<name>.key`; returns the leaf's DER.
    fn leaf(&self, name: &str) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let chain = format!("{}{}", cert.pem(), self.ca_pem);
        std::fs::write(self.dir.join(format!("{name}.pem")), chain).expect("write chain");
        std::fs::write(self.dir.join(format!("{name}.key")), key.serialize_pem())
            .expect("write key");
        cert.der().clone()
    }

    fn config(&self, name: &str) -> String {
        format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key"))
        )
    }
}

fn sdk_client(lb: &Lifeboat, ca_pem: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(
                    TrustStore::empty()
                        .with_native_roots(false)
                        .with_pem_certificate(ca_pem.as_bytes()),
                )
                .build()
                .expect("tls context"),
        )
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&lb.endpoint)
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .force_path_style(true)
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// A TLS connection to `port` trusting the test CA, offering `alpn`, limited to `versions`.
async fn connect(
    port: u16,
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("ca pem"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake")
}

/// One HTTP/1.1 request over a TLS stream that stays open; the status.
async fn health_over(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> u16 {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_sdk_works_over_tls_with_h2_by_alpn_and_tls12_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.leaf("server");
    let lb = lifeboat(dir.path(), &pki.config("server"));
    assert!(lb.endpoint.starts_with("https://"), "{}", lb.endpoint);
    assert!(lb.admin.starts_with("https://"), "{}", lb.admin);
    let s3 = sdk_client(&lb, &pki.ca_pem);
    s3.create_bucket()
        .bucket("tls")
        .send()
        .await
        .expect("bucket");
    let body = crate::harness::data(3 << 20, 7);
    s3.put_object()
        .bucket("tls")
        .key("big")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put over https");
    let got = s3
        .get_object()
        .bucket("tls")
        .key("big")
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert!(got == body, "same bytes over https");
    let all = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let h2 = connect(lb.port, &pki.ca_pem, &[b"h2", b"http/1.1"], all).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut h1 = connect(
        lb.port,
        &pki.ca_pem,
        &[b"http/1.1"],
        &[&rustls::version::TLS12],
    )
    .await;
    assert_eq!(
        h1.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_ne!(health_over(&mut h1).await, 0, "TLS 1.2 is served");
    // Plain HTTP on the TLS port is not served.
    let (status, _, _) = crate::harness::raw(lb.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 0);
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let first = pki.leaf("server");
    let lb = lifeboat(dir.path(), &pki.config("server"));
    let all = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let mut open = connect(lb.port, &pki.ca_pem, &[b"http/1.1"], all).await;
    assert_eq!(
        open.get_ref().1.peer_certificates().map(|c| c[0].clone()),
        Some(first.clone())
    );
    assert_ne!(health_over(&mut open).await, 0);
    // New files in place, then SIGHUP.
    let second = pki.leaf("server");
    assert_ne!(first, second);
    lb.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = connect(lb.port, &pki.ca_pem, &[b"http/1.1"], all).await;
        if fresh.get_ref().1.peer_certificates().map(|c| c[0].clone()) == Some(second.clone()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection made before the reload still works.
    assert_ne!(health_over(&mut open).await, 0);
    // A broken file leaves the served certificate alone.
    std::fs::write(dir.path().join("server.pem"), "not a certificate").expect("break");
    lb.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lb.log().contains("TLS reload failed") {
        assert!(Instant::now() < deadline, "no reload error logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = connect(lb.port, &pki.ca_pem, &[b"http/1.1"], all).await;
    assert_eq!(
        after.get_ref().1.peer_certificates().map(|c| c[0].clone()),
        Some(second)
    );
}

#[tokio::test]
async fn aws_cli_and_presigned_urls_use_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.leaf("server");
    let token = "a-long-admin-token-for-the-tls-test";
    let tf = token_file(dir.path(), token);
    let config = format!(
        "{}admin_token_file = {:?}\n[presign]\ncreate_bucket = true\n",
        pki.config("server"),
        tf
    );
    let lb = lifeboat(dir.path(), &config);
    let ca = dir.path().join("ca.pem");
    let admin_port = lb.admin_port();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"bucket":"uploads","filename":"a.txt","content_type":"text/plain"}"#,
            &format!("https://localhost:{admin_port}/storage/presigned-upload"),
        ])
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "curl: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
            let url = doc["url"].as_str().expect("url");
            assert!(url.starts_with("https://"), "{url}");
        }
        Err(_) if std::env::var_os("CI").is_none() => eprintln!("curl missing: skipped"),
        Err(e) => panic!("curl is needed in CI: {e}"),
    }
    let file = dir.path().join("upload.txt");
    std::fs::write(&file, b"through aws-cli over https").expect("file");
    let aws = |args: &[&str]| {
        std::process::Command::new("aws")
            .args(["--endpoint-url", &lb.endpoint, "--ca-bundle"])
            .arg(&ca)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
    };
    match aws(&["s3", "mb", "s3://cli-tls"]) {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let f = file.to_string_lossy().into_owned();
            let out = aws(&["s3", "cp", &f, "s3://cli-tls/upload.txt"]).expect("aws");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = aws(&["s3", "cp", "s3://cli-tls/upload.txt", "-"]).expect("aws");
            assert_eq!(out.stdout, b"through aws-cli over https");
        }
        Err(_) if std::env::var_os("CI").is_none() => eprintln!("aws-cli missing: skipped"),
        Err(e) => panic!("aws-cli is needed in CI: {e}"),
    }
}

/// curl, or `None` when it is not installed (a failure under `CI`, which installs it).
fn curl(args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("curl").args(args).output() {
        Ok(out) => Some(out),
        Err(_) if std::env::var_os("CI").is_none() => None,
        Err(e) => panic!("curl is needed in CI: {e}"),
    }
}

/// What `curl -w '%{http_code} %{http_version}' -o <body>` printed, and the body it saved:
/// (status, HTTP version, body).
fn answer_of(out: &std::process::Output, body: &Path) -> (String, String, Vec<u8>) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut words = text.split_whitespace();
    let code = words.next().unwrap_or_default().to_owned();
    let version = words.next().unwrap_or_default().to_owned();
    (code, version, std::fs::read(body).unwrap_or_default())
}

#[tokio::test]
async fn curl_puts_and_gets_an_object_over_http2_and_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.leaf("server");
    let lb = lifeboat(dir.path(), &pki.config("server"));
    let ca = dir.path().join("ca.pem").to_string_lossy().into_owned();
    let user = format!("{AK}:{SK}");
    // Several DATA frames each way, past HTTP/2's initial 64 KiB flow-control window.
    let body = crate::harness::data(3 << 20, 11);
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, &body).expect("upload file");
    let upload = upload.to_string_lossy().into_owned();
    let answer = dir.path().join("answer.bin");
    let answer_arg = answer.to_string_lossy().into_owned();
    // Every request over TLS with h2 negotiated by ALPN (`--http2`), signed by curl's own
    // SigV4 (`--aws-sigv4`). curl 7.88 does not send x-amz-content-sha256, which S3
    // requires; it signs the x-amz-* headers it is given.
    let call = |url: &str, extra: &[&str]| {
        let mut args = vec![
            "-sS",
            "--http2",
            "--cacert",
            &ca,
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &user,
            "-o",
            &answer_arg,
            "-w",
            "%{http_code} %{http_version}",
        ];
        args.extend_from_slice(extra);
        args.push(url);
        curl(&args).map(|out| answer_of(&out, &answer))
    };
    let s3 = |method: &str, path: &str, extra: &[&str]| {
        let url = format!("{}{path}", lb.endpoint);
        let mut args = vec!["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", method];
        args.extend_from_slice(extra);
        call(&url, &args)
    };
    let Some((code, version, text)) = s3("PUT", "/over-h2", &[]) else {
        eprintln!("curl missing: skipped");
        return;
    };
    let text = String::from_utf8_lossy(&text);
    assert_eq!(
        (code.as_str(), version.as_str()),
        ("200", "2"),
        "CreateBucket: {text}"
    );
    let (code, version, text) = s3("PUT", "/over-h2/a/key", &["-T", &upload]).expect("curl");
    let text = String::from_utf8_lossy(&text);
    assert_eq!(
        (code.as_str(), version.as_str()),
        ("200", "2"),
        "PutObject: {text}"
    );
    let (code, version, got) = s3("GET", "/over-h2/a/key", &[]).expect("curl");
    assert_eq!((code.as_str(), version.as_str()), ("200", "2"), "GetObject");
    assert!(
        got == body,
        "the same {} bytes back over h2, not {}",
        body.len(),
        got.len()
    );
    assert_eq!(
        crate::harness::object_bytes(&sdk_client(&lb, &pki.ca_pem), "over-h2", "a/key").await,
        body,
        "the same bytes through the SDK"
    );
    // The admin listener negotiates h2 over TLS too, and a SigV4 signature made over h2
    // (the host from :authority) checks out there as well.
    let status = format!("https://localhost:{}/storage/status", lb.admin_port());
    let (code, version, doc) = call(&status, &[]).expect("curl");
    let doc: serde_json::Value = serde_json::from_slice(&doc).expect("status JSON");
    assert_eq!(
        (code.as_str(), version.as_str()),
        ("200", "2"),
        "admin: {doc}"
    );
    assert_eq!(doc["local"]["objects"]["local_only"], 1, "{doc}");
}
