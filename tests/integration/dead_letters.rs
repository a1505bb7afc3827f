//! Dead letters on the admin API (issue 12, item 4), in gateway mode in front of SeaweedFS (or
//! the JuiceFS gateway): one is produced by a cause that can be fixed (the upstream bucket is
//! gone and `auto_create_buckets` is off), listed with every field, retried once the bucket is
//! back and seen reaching the upstream; another, which the upstream refuses whatever is done
//! (the key `dot/./seg`), is dropped, and its local object is still served. Also the command
//! line going through the admin API while the server holds the store, and local-only mode.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{AK, AdminAuth, Lifeboat, SK, get, lifeboat, md5_hex, put, until_upstream};
use crate::upstream::{UpstreamServer, available};

/// Polls until the object reports `state` in `x-lifeboat-sync`.
async fn until_sync(lb: &Lifeboat, path: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = get(lb, path).2;
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} is {now:?}, never {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn list(lb: &Lifeboat, query: &str) -> Value {
    let (status, doc) = lb.admin_json(
        "GET",
        &format!("/storage/dead-letters{query}"),
        AdminAuth::SigV4,
        &Value::Null,
    );
    assert_eq!(status, 200, "{doc}");
    assert_eq!(
        doc["count"],
        doc["dead_letters"].as_array().map_or(0, Vec::len)
    );
    doc
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn parse_time(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_millis()
}

/// `lifeboat dead-letters ARGS` while the server runs: the store is locked, so it goes
/// through the admin API (the address and the admin user from the environment).
fn cli(lb: &Lifeboat, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("dead-letters")
        .args(args)
        .env_clear()
        .env("LIFEBOAT_DATA_DIR", &lb.data_dir)
        .env(
            "LIFEBOAT_ADMIN_ADDRESS",
            lb.admin.trim_start_matches("http://"),
        )
        .env("LIFEBOAT_ACCESS_KEY", AK)
        .env("LIFEBOAT_SECRET_KEY", SK)
        .output()
        .expect("run lifeboat dead-letters");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_retried_and_dropped_through_the_admin_api() {
    if !available() {
        eprintln!("skipped: no upstream binary");
        return;
    }
    let up_dir = tempfile::tempdir().unwrap();
    let lb_dir = tempfile::tempdir().unwrap();
    let up = UpstreamServer::start(up_dir.path());
    let config = format!(
        "[upstream]\nendpoint = \"{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\
         write = \"back\"\nauto_create_buckets = false\n",
        up.endpoint(),
        up.access_key,
        up.secret_key
    );
    let lb = lifeboat(lb_dir.path(), &config);
    let direct = up.client();
    lb.client()
        .create_bucket()
        .bucket("dlq")
        .send()
        .await
        .unwrap();
    // The cause: the bucket goes away upstream behind Lifeboat's back, and Lifeboat may not
    // create it (a NoSuchBucket is then a refusal for good).
    direct.delete_bucket().bucket("dlq").send().await.unwrap();
    let before = now_ms();
    let body = b"a report that must reach the upstream".to_vec();
    assert_eq!(put(&lb, "/dlq/docs/a.txt", &body, &[]).0, 200);
    until_sync(&lb, "/dlq/docs/a.txt", "failed").await;

    let doc = list(&lb, "");
    assert_eq!(doc["count"], 1, "{doc}");
    let letter = &doc["dead_letters"][0];
    assert!(letter["id"].as_u64().is_some(), "{letter}");
    assert_eq!(letter["bucket"], "dlq");
    assert_eq!(letter["key"], "docs/a.txt");
    assert_eq!(letter["operation"], "put");
    assert_eq!(letter["etag"], md5_hex(&body));
    let error = letter["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("NoSuchBucket"),
        "the upstream's error: {error}"
    );
    assert_eq!(letter["attempts"], 1, "refused at the first try: {letter}");
    let (queued, first, last) = (
        parse_time(&letter["queued"]),
        parse_time(&letter["first_attempt"]),
        parse_time(&letter["last_attempt"]),
    );
    assert!(
        before <= queued && queued <= first && first <= last,
        "{letter}"
    );
    assert!(last <= now_ms(), "{letter}");
    // The filter narrows the list; the command line shows the same through the admin API.
    assert_eq!(list(&lb, "?bucket=other")["count"], 0);
    assert_eq!(list(&lb, "?bucket=dlq&prefix=docs%2F")["count"], 1);
    assert_eq!(list(&lb, "?bucket=dlq&prefix=else")["count"], 0);
    let text = cli(&lb, &["list"]);
    assert!(text.contains("put dlq/docs/a.txt"), "{text}");
    assert!(text.contains("NoSuchBucket"), "{text}");

    // Fix the cause, retry by bucket and prefix: the worker is woken and the object lands.
    direct.create_bucket().bucket("dlq").send().await.unwrap();
    let (status, r) = lb.admin_json(
        "POST",
        "/storage/dead-letters/retry",
        AdminAuth::SigV4,
        &json!({"bucket": "dlq", "prefix": "docs/"}),
    );
    assert_eq!(
        (status, &r["queued"], &r["moot"]),
        (200, &json!(1), &json!(0)),
        "{r}"
    );
    until_upstream(&direct, "dlq", "docs/a.txt", Some(&md5_hex(&body))).await;
    until_sync(&lb, "/dlq/docs/a.txt", "synced").await;
    assert_eq!(list(&lb, "")["count"], 0);

    // Another, refused whatever is done: dropped, the local object still served.
    let kept = b"kept locally".to_vec();
    assert_eq!(put(&lb, "/dlq/dot/./seg", &kept, &[]).0, 200);
    until_sync(&lb, "/dlq/dot/./seg", "failed").await;
    let doc = list(&lb, "");
    assert_eq!(doc["count"], 1, "{doc}");
    let id = doc["dead_letters"][0]["id"].clone();
    assert_eq!(doc["dead_letters"][0]["key"], "dot/./seg");
    // A drop must say what it drops; a bad selection is a JSON 400.
    for bad in [
        json!({}),
        json!({"prefix": "dot/"}),
        json!({"all": true, "ids": [1]}),
    ] {
        let (status, e) = lb.admin_json("DELETE", "/storage/dead-letters", AdminAuth::SigV4, &bad);
        assert_eq!(
            (status, &e["error"]["code"]),
            (400, &json!("InvalidRequest")),
            "{bad}: {e}"
        );
    }
    let (status, e) = lb.admin_json(
        "DELETE",
        "/storage/dead-letters",
        AdminAuth::SigV4,
        &json!({"pefix": "x"}),
    );
    assert_eq!(status, 400, "unknown fields are refused: {e}");
    let (status, r) = lb.admin_json(
        "DELETE",
        "/storage/dead-letters",
        AdminAuth::SigV4,
        &json!({"ids": [id]}),
    );
    assert_eq!((status, &r["dropped"]), (200, &json!(1)), "{r}");
    assert_eq!(list(&lb, "")["count"], 0);
    let (status, _, sync, got) = get(&lb, "/dlq/dot/./seg");
    assert_eq!(
        (status, got),
        (200, kept),
        "the local object is still served"
    );
    assert_eq!(
        sync.as_deref(),
        Some("failed"),
        "a drop leaves the sync state"
    );
    let doc = lb.status();
    assert_eq!(doc["dead_letters"]["count"], 0, "{doc}");
    assert_eq!(doc["outbox"]["depth"], 0, "no longer queued: {doc}");
    // Nothing left to retry; the command line says so through the admin API too.
    assert!(cli(&lb, &["retry"]).contains("queued 0"));
    assert!(cli(&lb, &["list"]).contains("no dead letters"));
    // Admin only, and the route takes only its methods.
    let (status, _, _) = lb.admin_call("GET", "/storage/dead-letters", AdminAuth::None, b"");
    assert_eq!(status, 401);
    let (status, _, _) = lb.admin_call("PUT", "/storage/dead-letters", AdminAuth::SigV4, b"");
    assert_eq!(status, 405);
}

#[tokio::test]
async fn local_only_lists_no_dead_letters_and_refuses_a_retry() {
    let lb = Lifeboat::start();
    assert_eq!(list(&lb, "")["count"], 0);
    let (status, e) = lb.admin_json(
        "POST",
        "/storage/dead-letters/retry",
        AdminAuth::SigV4,
        &Value::Null,
    );
    assert_eq!(
        (status, &e["error"]["code"]),
        (409, &json!("NoUpstream")),
        "{e}"
    );
    let (status, r) = lb.admin_json(
        "DELETE",
        "/storage/dead-letters",
        AdminAuth::SigV4,
        &json!({"all": true}),
    );
    assert_eq!((status, &r["dropped"]), (200, &json!(0)), "{r}");
}
