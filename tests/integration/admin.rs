//! The admin API (`server.admin_address`): authentication and its refusals, `/storage/status`,
//! presigned uploads and downloads with their refusals (used with plain curl), `/metrics`,
//! health, and the `lifeboat status` command. The status document across an outage is in
//! `gateway_local.rs`.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{AK, AdminAuth, Lifeboat, SK, data, md5_hex, put, token_file};

const TOKEN: &str = "a-long-random-admin-token-for-tests";

/// Lifeboat with a bearer token, a non-admin user `app` and an admin user `ops` limited to
/// bucket `ops-*`, plus the harness's admin user; `extra` is appended to the config.
fn start(extra: &str) -> (Lifeboat, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), TOKEN);
    let config = format!(
        "[server]\nadmin_token_file = \"{}\"\n{extra}\n\
         [[users]]\naccess_key = \"app\"\nsecret_key = \"app-secret-app-secret\"\n\n\
         [[users]]\naccess_key = \"ops\"\nsecret_key = \"ops-secret-ops-secret\"\nadmin = true\n\
         grants = [{{ bucket = \"ops-*\", prefix = \"\", actions = [\"read\", \"write\", \"list\"] }}]\n",
        token.display()
    );
    let lb = crate::harness::lifeboat(dir.path(), &config);
    (lb, dir)
}

fn error_code(doc: &Value) -> &str {
    doc["error"]["code"].as_str().unwrap_or("")
}

fn presign(lb: &Lifeboat, what: &str, body: Value) -> (u16, Value) {
    lb.admin_json(
        "POST",
        &format!("/storage/presigned-{what}"),
        AdminAuth::Bearer(TOKEN),
        &body,
    )
}

/// Runs curl; returns (HTTP status, body).
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = out.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&text[split + 1..])
        .parse()
        .unwrap_or(0);
    (status, text[..split].to_vec())
}

/// PUTs a file through a presigned URL with curl, as a user would.
fn curl_put(content_type: &str, file: &std::path::Path, url: &str) -> (u16, Vec<u8>) {
    let data = format!("@{}", file.display());
    let header = format!("Content-Type: {content_type}");
    curl(&["-X", "PUT", "-H", &header, "--data-binary", &data, url])
}

#[tokio::test]
async fn health_answers_without_credentials_over_http1_and_http2() {
    let (lb, _dir) = start("");
    let (status, doc) = lb.admin_json("GET", "/health/live", AdminAuth::None, &Value::Null);
    assert_eq!((status, doc["status"].as_str()), (200, Some("live")));
    let (status, doc) = lb.admin_json("GET", "/health/ready", AdminAuth::None, &Value::Null);
    assert_eq!((status, doc["status"].as_str()), (200, Some("ready")));
    assert!(doc["upstream"].is_null(), "{doc}");
    let url = format!("{}/health/live", lb.admin);
    let (status, body) = curl(&["--http2-prior-knowledge", &url]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn the_admin_api_refuses_missing_bad_and_non_admin_credentials() {
    let (lb, _dir) = start("");
    let status_path = "/storage/status";
    let (status, doc) = lb.admin_json("GET", status_path, AdminAuth::None, &Value::Null);
    assert_eq!(
        (status, error_code(&doc)),
        (401, "MissingCredentials"),
        "{doc}"
    );
    assert!(
        doc["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let (status, doc) = lb.admin_json(
        "GET",
        status_path,
        AdminAuth::Bearer("wrong-token-x"),
        &Value::Null,
    );
    assert_eq!((status, error_code(&doc)), (401, "InvalidToken"), "{doc}");
    let (status, _) = lb.admin_json("GET", status_path, AdminAuth::Bearer(TOKEN), &Value::Null);
    assert_eq!(status, 200);
    let (status, _) = lb.admin_json("GET", status_path, AdminAuth::SigV4, &Value::Null);
    assert_eq!(status, 200);
    // curl's own SigV4 signer (service s3), as the README shows it.
    let url = format!("{}{status_path}", lb.admin);
    let (status, body) = curl(&[
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{AK}:{SK}"),
        &url,
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // A valid signature of a user without admin = true.
    let (status, body) = curl(&[
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "app:app-secret-app-secret",
        &url,
    ]);
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((status, error_code(&doc)), (403, "NotAdmin"), "{doc}");
    let (status, body) = curl(&[
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "app:wrong-secret",
        &url,
    ]);
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (status, error_code(&doc)),
        (401, "SignatureDoesNotMatch"),
        "{doc}"
    );
    // SigV2 signs no body hash: the admin API takes SigV4 only.
    let date = format!(
        "Date: {}",
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT")
    );
    let v2 = format!("Authorization: AWS {AK}:AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let (status, body) = curl(&["-H", &date, "-H", &v2, &url]);
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((status, error_code(&doc)), (401, "InvalidRequest"), "{doc}");
    let (status, doc) = lb.admin_json(
        "GET",
        "/storage/nothing",
        AdminAuth::Bearer(TOKEN),
        &Value::Null,
    );
    assert_eq!((status, error_code(&doc)), (404, "NotFound"));
    let (status, doc) = lb.admin_json(
        "GET",
        "/storage/presigned-upload",
        AdminAuth::Bearer(TOKEN),
        &Value::Null,
    );
    assert_eq!((status, error_code(&doc)), (405, "MethodNotAllowed"));
}

#[test]
fn a_token_file_others_can_read_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = dir.path().join("lifeboat.toml");
    std::fs::write(
        &config,
        format!("[server]\nadmin_token_file = \"{}\"\n", token.display()),
    )
    .expect("config");
    for args in [vec!["config", "check"], vec!["serve", "--config"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(&args)
            .arg(&config)
            .env_clear()
            .env("LIFEBOAT_ADDRESS", "127.0.0.1:0")
            .env("LIFEBOAT_ADMIN_ADDRESS", "127.0.0.1:0")
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains("0644") && err.contains("chmod 600"), "{err}");
    }
}

#[tokio::test]
async fn the_status_document_counts_objects_from_the_index() {
    let (lb, _dir) = start("");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("docs")
        .send()
        .await
        .expect("bucket");
    for (i, len) in [100usize, 2000, 30_000].iter().enumerate() {
        assert_eq!(
            put(&lb, &format!("/docs/k{i}"), &data(*len, i as u64), &[]).0,
            200
        );
    }
    let doc = lb.status();
    assert_eq!(doc["mode"], "local-only");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["uptime_seconds"].is_u64());
    assert!(doc["upstream"].is_null());
    assert_eq!(doc["local"]["objects"]["local_only"], 3, "{doc}");
    assert_eq!(doc["local"]["bytes_used"], 32_100);
    assert_eq!(doc["outbox"]["depth"], 0);
    assert_eq!(doc["dead_letters"]["count"], 0);
    assert!(doc["dead_letters"]["oldest"].is_null());
    assert!(doc.get("buckets").is_none());
    // An overwrite replaces, a delete subtracts.
    assert_eq!(put(&lb, "/docs/k0", b"tiny", &[]).0, 200);
    assert_eq!(crate::harness::delete(&lb, "/docs/k1"), 204);
    let (status, doc) = lb.admin_json(
        "GET",
        "/storage/status?detail=buckets",
        AdminAuth::Bearer(TOKEN),
        &Value::Null,
    );
    assert_eq!(status, 200);
    assert_eq!(doc["local"]["objects"]["local_only"], 2, "{doc}");
    assert_eq!(doc["local"]["bytes_used"], 30_004);
    assert_eq!(doc["buckets"][0]["name"], "docs", "{doc}");
    assert_eq!(doc["buckets"][0]["objects"]["local_only"], 2);
    assert_eq!(doc["buckets"][0]["bytes"]["local_only"], 30_004);
    // The same document for a person, and raw.
    let cli = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("status")
            .args(["--admin", &lb.admin])
            .args(extra)
            .env_clear()
            .env("LIFEBOAT_ACCESS_KEY", AK)
            .env("LIFEBOAT_SECRET_KEY", SK)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = cli(&["--buckets"]);
    let first: Vec<&str> = table.lines().take(3).collect();
    assert!(first[0].contains("local-only"), "{table}");
    assert!(
        first[1].starts_with("outbox") && first[1].contains("empty"),
        "{table}"
    );
    assert!(first[2].starts_with("upstream"), "{table}");
    assert!(table.contains("docs: 2 objects"), "{table}");
    let raw: Value = serde_json::from_str(&cli(&["--json"])).expect("json");
    assert_eq!(raw["local"]["objects"]["local_only"], 2);
}

#[tokio::test]
async fn a_presigned_upload_works_with_plain_curl_and_refuses_a_wrong_length() {
    let (lb, dir) = start("");
    lb.client()
        .create_bucket()
        .bucket("media")
        .send()
        .await
        .expect("bucket");
    let body = data(50_000, 7);
    let file = dir.path().join("upload.png");
    std::fs::write(&file, &body).expect("write");
    let (status, doc) = presign(
        &lb,
        "upload",
        json!({"filename": "../../Holiday Photo.png", "content_type": "image/png",
               "size": body.len(), "bucket": "media"}),
    );
    assert_eq!(status, 200, "{doc}");
    let key = doc["key"].as_str().expect("key");
    assert!(
        key.starts_with("uploads/") && key.ends_with("-Holiday-Photo.png"),
        "{key}"
    );
    assert!(!key.contains(".."));
    assert_eq!(doc["method"], "PUT");
    assert_eq!(doc["headers"]["Content-Type"], "image/png");
    assert_eq!(doc["max_size"], body.len());
    assert!(doc["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let url = doc["url"].as_str().expect("url");
    assert!(url.starts_with(&lb.endpoint), "{url}");
    // A body of another length does not match the signed Content-Length.
    let short = dir.path().join("short.png");
    std::fs::write(&short, &body[..1000]).expect("write");
    let (status, resp) = curl_put("image/png", &short, url);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("SignatureDoesNotMatch"));
    // Another content type than the one signed is refused too.
    let (status, _) = curl_put("text/html", &file, url);
    assert_eq!(status, 403);
    let (status, resp) = curl_put("image/png", &file, url);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let got = lb
        .client()
        .get_object()
        .bucket("media")
        .key(key)
        .send()
        .await
        .expect("stored");
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(
        got.e_tag(),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );

    // Without a size, the limit travels in the signed query and Lifeboat enforces it.
    let (status, doc) = presign(
        &lb,
        "upload",
        json!({"filename": "clip.mp4", "content_type": "video/mp4", "bucket": "media", "prefix": "videos/2026"}),
    );
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["max_size"], 100_000_000);
    assert!(
        doc["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("videos/2026/"))
    );
    let url = doc["url"].as_str().expect("url");
    let (status, _) = curl_put("video/mp4", &file, url);
    assert_eq!(status, 200);
    // Tampering with the limit breaks the signature.
    let tampered = url.replace(
        "x-lifeboat-max-size=100000000",
        "x-lifeboat-max-size=999999999999",
    );
    let (status, _) = curl_put("video/mp4", &file, &tampered);
    assert_eq!(status, 403);

    // The download URL serves the bytes under the original name.
    let (status, doc) = presign(
        &lb,
        "download",
        json!({"bucket": "media", "key": key, "filename": "Holiday Photo.png"}),
    );
    assert_eq!(status, 200, "{doc}");
    let url = doc["url"].as_str().expect("url");
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", url])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.contains("200"), "{head}");
    assert!(
        head.contains("attachment; filename=\"Holiday-Photo.png\""),
        "{head}"
    );
    let (status, got) = curl(&[url]);
    assert_eq!(status, 200);
    assert!(got == body);
}

#[tokio::test]
async fn presign_refuses_bad_types_sizes_expiries_and_buckets() {
    let (lb, _dir) = start("[presign]\nmax_size = \"1MiB\"\nmax_expires = 7200\n");
    lb.client()
        .create_bucket()
        .bucket("media")
        .send()
        .await
        .expect("bucket");
    let ask = |body: Value| presign(&lb, "upload", body);
    let (status, doc) = ask(
        json!({"filename": "x.exe", "content_type": "application/x-msdownload", "bucket": "media"}),
    );
    assert_eq!((status, error_code(&doc)), (400, "ContentTypeNotAllowed"));
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("application/x-msdownload"))
    );
    let (status, doc) = ask(
        json!({"filename": "x.png", "content_type": "image/png", "size": 2_000_000, "bucket": "media"}),
    );
    assert_eq!((status, error_code(&doc)), (400, "SizeNotAllowed"), "{doc}");
    for expires in [0, 7201] {
        let (status, doc) = ask(
            json!({"filename": "x.png", "content_type": "image/png", "bucket": "media", "expires_in": expires}),
        );
        assert_eq!(
            (status, error_code(&doc)),
            (400, "ExpiryNotAllowed"),
            "{doc}"
        );
    }
    let (status, doc) =
        ask(json!({"filename": "x.png", "content_type": "image/png", "bucket": "missing"}));
    assert_eq!((status, error_code(&doc)), (404, "NoSuchBucket"), "{doc}");
    let (status, doc) = ask(json!({"filename": "x.png", "content_type": "image/png"}));
    assert_eq!((status, error_code(&doc)), (400, "InvalidRequest"), "{doc}");
    let (status, doc) = ask(
        json!({"filename": "x.png", "content_type": "image/png", "bucket": "media", "prefix": "../etc"}),
    );
    assert_eq!((status, error_code(&doc)), (400, "InvalidRequest"), "{doc}");
    let (status, doc) = ask(
        json!({"filename": "x.png", "content_type": "image/png", "bucket": "media", "colour": "red"}),
    );
    assert_eq!((status, error_code(&doc)), (400, "InvalidRequest"), "{doc}");
    // An admin whose grants do not cover the bucket.
    let body = serde_json::to_vec(
        &json!({"filename": "x.png", "content_type": "image/png", "bucket": "media"}),
    )
    .expect("json");
    let url = format!("{}/storage/presigned-upload", lb.admin);
    let (status, resp) = curl(&[
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "ops:ops-secret-ops-secret",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &String::from_utf8_lossy(&body),
        &url,
    ]);
    let doc: Value = serde_json::from_slice(&resp).expect("json");
    assert_eq!((status, error_code(&doc)), (403, "AccessDenied"), "{doc}");
}

#[tokio::test]
async fn presign_creates_a_missing_bucket_when_configured() {
    let (lb, _dir) =
        start("[presign]\ncreate_bucket = true\nbucket = \"user-files\"\nprefix = \"in\"\n");
    let (status, doc) = presign(
        &lb,
        "upload",
        json!({"filename": "notes.txt", "content_type": "text/plain"}),
    );
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["bucket"], "user-files");
    assert!(doc["key"].as_str().is_some_and(|k| k.starts_with("in/")));
    lb.client()
        .head_bucket()
        .bucket("user-files")
        .send()
        .await
        .expect("created");
}

#[tokio::test]
async fn every_metric_family_appears_after_a_workload() {
    let (lb, _dir) = start("");
    let s3 = lb.client();
    s3.create_bucket()
        .bucket("met")
        .send()
        .await
        .expect("bucket");
    assert_eq!(put(&lb, "/met/a", &data(4096, 1), &[]).0, 200);
    let _ = crate::harness::get(&lb, "/met/a");
    let _ = crate::harness::get(&lb, "/met/missing");
    let (status, head, body) = lb.admin_call("GET", "/metrics", AdminAuth::None, b"");
    assert_eq!(status, 200);
    assert!(head.contains("openmetrics-text"), "{head}");
    let text = crate::harness::without_node_labels(&String::from_utf8_lossy(&body));
    for needle in [
        "lifeboat_build_info{version=\"",
        "lifeboat_requests_total{operation=\"PutObject\",status=\"2xx\"} 1",
        "lifeboat_requests_total{operation=\"GetObject\",status=\"4xx\"} 1",
        "lifeboat_request_duration_seconds_bucket{le=",
        "lifeboat_received_bytes_total",
        "lifeboat_sent_bytes_total",
        "lifeboat_outbox_depth 0",
        "lifeboat_dead_letters 0",
        "lifeboat_objects{state=\"local-only\"} 1",
        "lifeboat_object_bytes{state=\"local-only\"} 4096",
        "lifeboat_local_bytes 4096",
        "lifeboat_local_budget_bytes",
        "lifeboat_insufficient_storage_total",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let sent = text
        .lines()
        .find_map(|l| l.strip_prefix("lifeboat_sent_bytes_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(sent.is_some_and(|n| n >= 4096), "{sent:?}");
}

#[tokio::test]
async fn metrics_can_require_admin_credentials() {
    let (lb, _dir) = start("metrics_auth = true");
    let (status, _, _) = lb.admin_call("GET", "/metrics", AdminAuth::None, b"");
    assert_eq!(status, 401);
    let (status, _, _) = lb.admin_call("GET", "/metrics", AdminAuth::Bearer(TOKEN), b"");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn presigned_urls_name_the_public_url_behind_a_proxy() {
    let (lb, _dir) = start("public_url = \"https://files.example.test\"");
    lb.client()
        .create_bucket()
        .bucket("media")
        .send()
        .await
        .expect("bucket");
    let (status, doc) = presign(
        &lb,
        "upload",
        json!({"filename": "a.png", "content_type": "image/png", "bucket": "media"}),
    );
    assert_eq!(status, 200, "{doc}");
    let url = doc["url"].as_str().unwrap_or("");
    assert!(
        url.starts_with("https://files.example.test/media/uploads/"),
        "{url}"
    );
}
