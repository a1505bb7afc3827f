//! Starts the real `lifeboat` binary on a random port with a fresh data directory, and builds
//! aws-sdk-s3 clients pointed at it.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};

pub const AK: &str = "test-access-key";
pub const SK: &str = "test-secret-key-that-is-long-enough";

pub struct Lifeboat {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    /// The admin API's base URL (`http://127.0.0.1:PORT`).
    pub admin: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Lifeboat {
    /// Starts Lifeboat with a fresh temporary data directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut lb = Self::start_in(tmp.path(), &[]);
        lb._tmp = Some(tmp);
        lb
    }

    /// Starts Lifeboat with a fresh data directory and this configuration file.
    pub fn start_with_config(toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lifeboat.toml");
        std::fs::write(&path, toml).expect("write config");
        let path = path.to_string_lossy().into_owned();
        let mut lb = Self::start_in(tmp.path(), &[("LIFEBOAT_TEST_CONFIG", &path)]);
        lb._tmp = Some(tmp);
        lb
    }

    /// Starts Lifeboat on `dir` (which may hold data from an earlier run) with extra env vars;
    /// `LIFEBOAT_TEST_CONFIG` names a config file to pass with `--config`.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Self {
        let data_dir = dir.join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("lifeboat.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.arg("serve")
            .env_clear()
            .env("LIFEBOAT_ADDRESS", "127.0.0.1:0")
            .env("LIFEBOAT_ADMIN_ADDRESS", "127.0.0.1:0")
            .env("LIFEBOAT_DATA_DIR", &data_dir)
            .env("LIFEBOAT_ACCESS_KEY", AK)
            .env("LIFEBOAT_SECRET_KEY", SK)
            .env("LIFEBOAT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            if *k == "LIFEBOAT_TEST_CONFIG" {
                cmd.arg("--config").arg(v);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("spawn lifeboat");
        let stdout = child.stdout.take().expect("stdout");
        // The admin listener is bound first (it answers health checks during recovery), then
        // the S3 listener; each prints its address.
        let mut stdout = BufReader::new(stdout);
        let mut admin = String::new();
        let addr = loop {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read stdout");
            if let Some(a) = line.trim().strip_prefix("lifeboat admin listening on ") {
                admin = a.to_owned();
                continue;
            }
            let line = line.trim();
            let listening = line
                .strip_prefix("lifeboat listening on http://")
                .map(|a| ("http", a))
                .or_else(|| {
                    line.strip_prefix("lifeboat listening on https://")
                        .map(|a| ("https", a))
                });
            match listening {
                Some((scheme, a)) => break (scheme, a.to_owned()),
                None => {
                    let log = std::fs::read_to_string(dir.join("lifeboat.log")).unwrap_or_default();
                    panic!("lifeboat did not start: {line:?}\n{log}");
                }
            }
        };
        let (scheme, addr) = addr;
        let port: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        Self {
            child: Some(child),
            port,
            // A TLS test's certificate names localhost (the harness's clients resolve every
            // name to loopback).
            endpoint: match scheme {
                "https" => format!("https://localhost:{port}"),
                _ => format!("http://127.0.0.1:{port}"),
            },
            admin,
            data_dir,
            _tmp: None,
        }
    }

    pub fn client(&self) -> Client {
        self.client_with(AK, SK)
    }

    pub fn client_with(&self, ak: &str, sk: &str) -> Client {
        client(&self.endpoint, ak, sk, true)
    }

    /// A virtual-hosted-style client: `http://<bucket>.s3.localhost:<port>`, resolved to loopback.
    pub fn virtual_hosted_client(&self) -> Client {
        client(&format!("http://s3.localhost:{}", self.port), AK, SK, false)
    }

    /// The path and query of a presigned URL for this server.
    pub fn path_of(&self, uri: &str) -> String {
        uri.strip_prefix(&self.endpoint)
            .expect("a URL of this server")
            .to_owned()
    }

    /// A raw HTTP/1.1 request (`Connection: close`, Content-Length from `body` unless the method
    /// has none): returns (status, head, body).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("Connection: close\r\n\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        raw(self.port, &bytes)
    }

    /// The server's diagnostics and access log (its stderr).
    pub fn log(&self) -> String {
        let dir = self.data_dir.parent().expect("data dir has a parent");
        std::fs::read_to_string(dir.join("lifeboat.log")).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `HUP`) to the server process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} {pid}");
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lifeboat {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Resolves every name to 127.0.0.1, so `bucket.s3.localhost` works without /etc/hosts.
#[derive(Debug, Clone)]
struct Loopback;

impl ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::from([127, 0, 0, 1])]))
    }
}

pub fn client(endpoint: &str, ak: &str, sk: &str, path_style: bool) -> Client {
    client_in_region(endpoint, ak, sk, path_style, "us-east-1")
}

/// A client whose credentials are scoped to `region`.
pub fn client_in_region(
    endpoint: &str,
    ak: &str,
    sk: &str,
    path_style: bool,
    region: &str,
) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_with_resolver(Loopback);
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(path_style)
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The S3 error code of an SDK error.
pub fn code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Raw HTTP/1.1 request to the server, for what SDKs will not send. Returns (status, headers, body).
pub fn raw(port: u16, request: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok();
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body_start = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |p| p + 4);
    (status, head.to_owned(), buf[body_start..].to_vec())
}

/// A header-signed (SigV4) raw HTTP/1.1 request with a fixed body, signed at `time`.
pub fn signed_request(
    port: u16,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    time: std::time::SystemTime,
) -> Vec<u8> {
    signed_request_with(port, method, path_and_query, body, time, &[])
}

/// As `signed_request`, with extra (unsigned) headers.
pub fn signed_request_with(
    port: u16,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    time: std::time::SystemTime,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    use lifeboat::auth::sigv4;
    let amz_date = lifeboat::time::format_amz_date(time);
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let host = format!("127.0.0.1:{port}");
    let hash = sigv4::sha256_hex(body);
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let headers = vec![
        ("host".to_string(), host.clone()),
        ("x-amz-content-sha256".to_string(), hash.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let creq = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(path),
        &sigv4::canonical_query(&sigv4::parse_query(query)),
        &headers,
        signed,
        &hash,
    );
    let sig = sigv4::SigningKey::derive(SK, time, "us-east-1", "s3")
        .sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    let mut req = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {host}\r\nx-amz-content-sha256: {hash}\r\nx-amz-date: {amz_date}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={sig}\r\n\
         Content-Length: {}\r\n{}Connection: close\r\n\r\n",
        body.len(),
        extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect::<String>()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A response header's value from a raw response head.
pub fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Starts Lifeboat with a fresh data directory and creates these buckets, in this order.
pub async fn setup_with_buckets(buckets: &[&str]) -> (Lifeboat, Client) {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    for bucket in buckets {
        s3.create_bucket().bucket(*bucket).send().await.unwrap();
    }
    (lb, s3)
}

/// Starts Lifeboat with a fresh data directory and creates one bucket.
pub async fn setup_with_bucket(bucket: &str) -> (Lifeboat, Client) {
    setup_with_buckets(&[bucket]).await
}

/// Lifeboat in `dir` with this config (reusing the data of an earlier run in `dir`).
pub fn lifeboat(dir: &Path, config: &str) -> Lifeboat {
    let path = dir.join("lifeboat.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.to_string_lossy().into_owned();
    Lifeboat::start_in(dir, &[("LIFEBOAT_TEST_CONFIG", &path)])
}

/// A raw signed PUT through Lifeboat; returns (status, x-lifeboat-sync).
pub fn put(
    lb: &Lifeboat,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Option<String>) {
    let (status, head, _) = raw(
        lb.port,
        &signed_request_with(lb.port, "PUT", path, body, SystemTime::now(), extra),
    );
    (status, header_of(&head, "x-lifeboat-sync"))
}

/// A raw signed GET through Lifeboat; returns (status, x-cache, x-lifeboat-sync, body).
pub fn get(lb: &Lifeboat, path: &str) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let (status, head, body) = raw(
        lb.port,
        &signed_request(lb.port, "GET", path, b"", SystemTime::now()),
    );
    (
        status,
        header_of(&head, "x-cache"),
        header_of(&head, "x-lifeboat-sync"),
        body,
    )
}

/// A raw signed DELETE through Lifeboat; returns the status.
pub fn delete(lb: &Lifeboat, path: &str) -> u16 {
    let (status, _, _) = raw(
        lb.port,
        &signed_request(lb.port, "DELETE", path, b"", SystemTime::now()),
    );
    status
}

/// The hex MD5 of `b` (a single-part object's ETag).
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// Waits until the upstream holds `key` with `etag` (or, with `None`, does not hold it).
pub async fn until_upstream(client: &Client, bucket: &str, key: &str, etag: Option<&str>) {
    until_upstream_within(client, bucket, key, etag, Duration::from_secs(60)).await;
}

/// As `until_upstream`, failing after `limit`.
pub async fn until_upstream_within(
    client: &Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        let head = client.head_object().bucket(bucket).key(key).send().await;
        let now = head
            .ok()
            .and_then(|h| h.e_tag().map(|e| e.trim_matches('"').to_owned()));
        if now.as_deref() == etag {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{bucket}/{key}: upstream has {now:?}, want {etag:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A whole multipart upload through `client`: Create, one UploadPart per body (with `checksum`
/// on Create and on each part when given), Complete. Returns Complete's answer.
pub async fn multipart_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    bodies: Vec<Vec<u8>>,
    checksum: Option<aws_sdk_s3::types::ChecksumAlgorithm>,
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let id = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_checksum_algorithm(checksum.clone())
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let mut parts = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .set_checksum_algorithm(checksum.clone())
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap()
}

/// How a test calls the admin API.
pub enum AdminAuth<'a> {
    None,
    Bearer(&'a str),
    /// SigV4 with the harness's admin user (`AK`/`SK`).
    SigV4,
}

impl Lifeboat {
    /// The admin listener's port.
    pub fn admin_port(&self) -> u16 {
        self.admin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("admin port")
    }

    /// A raw admin API request; returns (status, head, body).
    pub fn admin_call(
        &self,
        method: &str,
        path: &str,
        auth: AdminAuth<'_>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let port = self.admin_port();
        let req = match auth {
            AdminAuth::SigV4 => signed_request(port, method, path, body, SystemTime::now()),
            AdminAuth::None | AdminAuth::Bearer(_) => {
                let bearer = match auth {
                    AdminAuth::Bearer(t) => format!("Authorization: Bearer {t}\r\n"),
                    _ => String::new(),
                };
                let mut r = format!(
                    "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{bearer}\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(body);
                r
            }
        };
        raw(port, &req)
    }

    /// An admin API call answered with JSON: (status, document).
    pub fn admin_json(
        &self,
        method: &str,
        path: &str,
        auth: AdminAuth<'_>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("json")
        };
        let (status, head, resp) = self.admin_call(method, path, auth, &body);
        let doc = serde_json::from_slice(&resp).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {head}\n{}", String::from_utf8_lossy(&resp))
        });
        (status, doc)
    }

    /// `GET /storage/status` with the admin user's signature.
    pub fn status(&self) -> serde_json::Value {
        let (status, doc) = self.admin_json(
            "GET",
            "/storage/status",
            AdminAuth::SigV4,
            &serde_json::Value::Null,
        );
        assert_eq!(status, 200, "{doc}");
        doc
    }
}

/// Writes a bearer token file readable by its owner only.
pub fn token_file(dir: &Path, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("admin-token");
    std::fs::write(&path, token).expect("write token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// The bytes `client` serves for `key` in `bucket`.
pub async fn object_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    got.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// A SigV4 header-signed request head, and what signed it: the chunk and trailer signatures of
/// an aws-chunked body chain on from `seed` with `key`.
pub struct SignedHead {
    pub head: Vec<u8>,
    pub key: lifeboat::auth::sigv4::SigningKey,
    pub amz_date: String,
    pub scope: String,
    pub seed: String,
}

/// Signs the head of a request whose body the caller writes: `host`, `x-amz-date`,
/// `x-amz-content-sha256` (`payload_hash`) and every header in `headers` (lower-case names) are
/// signed and sent, then `Connection: close`.
pub fn signed_head(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> SignedHead {
    use lifeboat::auth::sigv4;
    let now = SystemTime::now();
    let amz_date = lifeboat::time::format_amz_date(now);
    let scope = sigv4::scope(&amz_date[..8], "us-east-1", "s3");
    let key = sigv4::SigningKey::derive(SK, now, "us-east-1", "s3");
    let host = format!("127.0.0.1:{port}");
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    signed.push(("host".into(), host));
    signed.push(("x-amz-content-sha256".into(), payload_hash.to_owned()));
    signed.push(("x-amz-date".into(), amz_date.clone()));
    signed.sort();
    let names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let creq = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(path),
        &sigv4::canonical_query(&sigv4::parse_query(query)),
        &signed,
        &names,
        payload_hash,
    );
    let seed = key.sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
    let mut head = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in &signed {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={names}, Signature={seed}\r\n\
         Connection: close\r\n\r\n"
    ));
    SignedHead {
        head: head.into_bytes(),
        key,
        amz_date,
        scope,
        seed,
    }
}

/// The `<Code>` of an S3 XML error body ("" when there is none).
pub fn code_of(body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    body.split_once("<Code>")
        .and_then(|(_, r)| r.split_once("</Code>"))
        .map(|(c, _)| c.to_owned())
        .unwrap_or_default()
}

/// Runs a `lifeboat` command (`warm`, `sync`, …) against a running server's admin API, with
/// the bearer token of `admin_token_file` in `dir` (see `token_file`); asserts that it succeeds
/// and returns its stdout.
pub fn run_admin_command(lb: &Lifeboat, dir: &Path, args: &[&str]) -> String {
    let config = dir.join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nadmin_token_file = {:?}\n",
            dir.join("admin-token")
        ),
    )
    .expect("cli config");
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .args(["--admin", &lb.admin, "--config"])
        .arg(&config)
        .output()
        .expect("run lifeboat");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lifeboat {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A sample's value in a metrics text: `name` is the metric with its labels as the test names
/// them (`lifeboat_outbox_depth`, `lifeboat_objects{state="pending"}`), without the `node`
/// label every series carries.
pub fn metric_sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let line = without_node_label(line);
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A metrics text without the `node` label, as tests name the series.
pub fn without_node_labels(text: &str) -> String {
    text.lines()
        .map(without_node_label)
        .collect::<Vec<_>>()
        .join("\n")
}

fn without_node_label(line: &str) -> String {
    let Some(start) = line.find("node=\"") else {
        return line.to_owned();
    };
    let Some(len) = line[start + 6..].find('"') else {
        return line.to_owned();
    };
    let mut end = start + 6 + len + 1;
    if line[end..].starts_with(',') {
        end += 1;
    }
    let out = format!("{}{}", &line[..start], &line[end..]);
    out.replace("{}", "").replace(",}", "}")
}
