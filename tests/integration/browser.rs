//! A real browser on another origin uploads through a presigned URL, as a web app does: headless
//! Chromium loads a page from a small test backend, the backend asks Lifeboat's admin API for
//! presigned URLs, and the page PUTs and GETs the object across origins, so the CORS preflight,
//! `Access-Control-Allow-Origin` and `Access-Control-Expose-Headers` (ETag) are what Chromium
//! actually enforces, not what a test client happens to check.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat::auth::sigv4;
use tokio::sync::mpsc;

use crate::harness::{Lifeboat, get, header_of, md5_hex, raw};

const CHROMIUM: &str = "/usr/bin/chromium";
const BUCKET: &str = "photos";
const TOKEN: &str = "browser-test-admin-token";
/// The page uploads this many bytes of `(i * 7 + (i >> 8)) % 251`, then `TEXT` as UTF-8.
const PATTERN_LEN: usize = 100 * 1024;
const TEXT: &str = "\nnaïve café — 日本語 ✓ 🚀\n";

/// The page: builds the body, asks the backend for presigned URLs, uploads, downloads, compares,
/// and posts what happened to `/result`. `__NAME__` placeholders are filled in by `page()`.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Lifeboat presigned upload</title></head>
<body>
<script>
"use strict";
const BUCKET = __BUCKET__;
const PATTERN_LEN = __PATTERN_LEN__;
const TEXT = __TEXT__;

// The backend on this page's origin holds the admin token; the page never sees it.
async function backend(path, request) {
  const headers = {"Content-Type": "application/json"};
  const response = await fetch(path, {method: "POST", headers, body: JSON.stringify(request)});
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function run() {
  const pattern = new Uint8Array(PATTERN_LEN);
  for (let i = 0; i < PATTERN_LEN; i++) pattern[i] = (i * 7 + (i >> 8)) % 251;
  const blob = new Blob([pattern, TEXT]);
  const sent = new Uint8Array(await blob.arrayBuffer());

  const upload = await backend("/upload-url", {
    filename: "../My Photo.png", content_type: "image/png", size: blob.size, bucket: BUCKET,
  });
  // upload.headers holds Content-Length too: fetch drops it silently and sets it from the body.
  const put = await fetch(upload.url, {method: upload.method, headers: upload.headers, body: blob});
  if (put.status !== 200) throw new Error(`PUT answered ${put.status}: ${await put.text()}`);
  const etag = put.headers.get("ETag");
  if (!etag) throw new Error("the PUT answer's ETag is not exposed to the page");

  const download = await backend("/download-url", {
    bucket: upload.bucket, key: upload.key, filename: "My Photo.png",
  });
  const got = await fetch(download.url);
  if (got.status !== 200) throw new Error(`GET answered ${got.status}: ${await got.text()}`);
  const back = new Uint8Array(await got.arrayBuffer());
  const at = back.findIndex((b, i) => b !== sent[i]);
  if (back.length !== sent.length || at !== -1) {
    throw new Error(`GET gave ${back.length} bytes, differing at ${at}; sent ${sent.length}`);
  }
  return {ok: true, detail: "the bytes came back unchanged", key: upload.key, etag};
}

run()
  .catch((e) => ({ok: false, detail: String((e && e.stack) || e)}))
  .then((result) => backend("/result", result));
</script>
</body></html>
"#;

/// What the page reports to `/result`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageResult {
    ok: bool,
    detail: String,
    key: String,
    etag: String,
}

#[tokio::test]
async fn a_browser_on_another_origin_uploads_through_a_presigned_url() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing, and CI must run the browser test"
        );
        eprintln!("skipped: {CHROMIUM} is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the page's server");
    let origin = format!("http://{}", listener.local_addr().expect("local address"));

    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).expect("write the token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
        .expect("make the token file 0600");
    let token_file = token_file.to_str().expect("a UTF-8 temp path");
    let lb = Lifeboat::start_with_config(&format!(
        "[server]\nadmin_token_file = {token_file:?}\ncors_origins = [{origin:?}]\n"
    ));
    let s3 = lb.client();
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("create the bucket");

    let admin: http::Uri = lb.admin.parse().expect("the admin URL");
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let backend = Arc::new(Backend {
        admin_port: admin.port_u16().expect("the admin URL's port"),
        page: page(),
        results: results_tx,
    });
    let server = tokio::spawn(serve(listener, backend));
    let mut browser = Browser::launch(&format!("{origin}/"), dir.path());
    let result = browser
        .wait_for(&mut results, Duration::from_secs(60))
        .await;
    assert!(
        result.ok,
        "the page failed: {}\nchromium's stderr:\n{}",
        result.detail,
        browser.log()
    );
    drop(browser);
    server.abort();

    let key = result.key;
    assert!(key.starts_with("uploads/"), "{key:?} is not under uploads/");
    assert!(!key.contains(".."), "{key:?} keeps the filename's `..`");
    let sent = upload_bytes();
    let path = format!("/{BUCKET}/{}", sigv4::uri_encode(&key, false));
    let (status, _, _, body) = get(&lb, &path);
    assert_eq!(status, 200, "signed GET of {key:?}");
    assert!(
        body == sent,
        "{key:?} holds {} bytes, not the {} the page sent",
        body.len(),
        sent.len()
    );
    assert_eq!(
        result.etag.trim_matches('"'),
        md5_hex(&sent),
        "the ETag the page read"
    );
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("HEAD the upload");
    assert_eq!(head.content_type(), Some("image/png"));
}

/// The bytes the page uploads, built the same way as in its script.
fn upload_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..PATTERN_LEN)
        .map(|i| ((i * 7 + (i >> 8)) % 251) as u8)
        .collect();
    bytes.extend_from_slice(TEXT.as_bytes());
    bytes
}

fn page() -> String {
    let text = serde_json::to_string(TEXT).expect("a JSON string");
    let bucket = serde_json::to_string(BUCKET).expect("a JSON string");
    PAGE.replace("__BUCKET__", &bucket)
        .replace("__PATTERN_LEN__", &PATTERN_LEN.to_string())
        .replace("__TEXT__", &text)
}

/// The page's origin: serves the page and the small backend it talks to.
struct Backend {
    admin_port: u16,
    page: String,
    results: mpsc::UnboundedSender<PageResult>,
}

/// Accepts until aborted; each connection is one request, answered on a blocking thread.
async fn serve(listener: tokio::net::TcpListener, backend: Arc<Backend>) {
    while let Ok((stream, _)) = listener.accept().await {
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let backend = Arc::clone(&backend);
        tokio::task::spawn_blocking(move || backend.handle(stream));
    }
}

impl Backend {
    fn handle(&self, mut stream: TcpStream) {
        // A preconnected socket that never sends a request must not hold a thread for long.
        if stream.set_nonblocking(false).is_err()
            || stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .is_err()
        {
            return;
        }
        let Some((method, path, body)) = read_request(&mut stream) else {
            return;
        };
        let html = "text/html; charset=utf-8";
        match (method.as_str(), path.as_str()) {
            ("GET", "/") => respond(&mut stream, 200, html, self.page.as_bytes()),
            ("POST", "/upload-url") => self.forward(&mut stream, "presigned-upload", &body),
            ("POST", "/download-url") => self.forward(&mut stream, "presigned-download", &body),
            ("POST", "/result") => {
                let result = serde_json::from_slice(&body).unwrap_or_else(|e| PageResult {
                    detail: format!("the page posted a result that is not JSON: {e}"),
                    ..PageResult::default()
                });
                // The test may have stopped waiting; then nobody needs the result.
                let _ = self.results.send(result);
                respond(&mut stream, 200, "application/json", b"{}");
            }
            _ => respond(&mut stream, 404, "text/plain", b"not found"),
        }
    }

    /// Passes the page's JSON to the admin API's `/storage/{action}` with the bearer token, and
    /// its answer back.
    fn forward(&self, stream: &mut TcpStream, action: &str, body: &[u8]) {
        // HTTP/1.0, so the answer is never chunked: `raw` takes the body as all bytes up to close.
        let mut request = format!(
            "POST /storage/{action} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.admin_port,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (status, _, answer) = raw(self.admin_port, &request);
        match status {
            0 => respond(stream, 502, "text/plain", b"no answer from the admin API"),
            _ => respond(stream, status, "application/json", &answer),
        }
    }
}

/// One request: (method, path, body), the body framed by Content-Length (fetch sends no chunks).
fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let len: usize = header_of(&head, "content-length").map_or(Some(0), |v| v.parse().ok())?;
    // The page only ever posts small JSON.
    if len > 1 << 20 {
        return None;
    }
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, buf[head_end..head_end + len].to_vec()))
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    // The reason phrase may be empty (RFC 9112, section 4).
    let mut answer = format!(
        "HTTP/1.1 {status} \r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    // The browser may have gone; there is no one left to tell.
    let _ = stream.write_all(&answer);
}

/// Headless Chromium on one URL, killed when dropped.
struct Browser {
    child: Child,
    log: PathBuf,
}

impl Browser {
    fn launch(url: &str, dir: &Path) -> Self {
        let log = dir.join("chromium.log");
        let stderr = std::fs::File::create(&log).expect("chromium's log file");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ])
            .arg("--no-first-run")
            // Console messages (a CORS refusal says why only there) go to stderr too.
            .args(["--enable-logging=stderr", "--log-level=0"])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn chromium");
        Self { child, log }
    }

    /// The page's result, failing (with chromium's stderr) if chromium exits or `limit` passes.
    async fn wait_for(
        &mut self,
        results: &mut mpsc::UnboundedReceiver<PageResult>,
        limit: Duration,
    ) -> PageResult {
        let deadline = Instant::now() + limit;
        loop {
            // Short waits on the channel, so a browser that dies is noticed at once.
            let poll = Duration::from_millis(250);
            if let Ok(result) = tokio::time::timeout(poll, results.recv()).await {
                return result.expect("the page's server holds the sender");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before the page reported:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the page reported nothing within {limit:?}; chromium's stderr:\n{}",
                self.log()
            );
        }
    }

    /// The end of chromium's stderr.
    fn log(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let tail = &bytes[bytes.len().saturating_sub(16 * 1024)..];
        String::from_utf8_lossy(tail).into_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
