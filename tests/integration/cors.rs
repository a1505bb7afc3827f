//! Bucket CORS: PutBucketCors / GetBucketCors / DeleteBucketCors through the SDK, preflight
//! `OPTIONS` answered from the bucket's rules (or `server.cors_origins`) without credentials,
//! and the `Access-Control-*` headers on real answers. The browser itself is `browser.rs`.

use std::time::SystemTime;

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use crate::harness::{Lifeboat, code, header_of, raw, setup_with_bucket, signed_request_with};

fn preflight(lb: &Lifeboat, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{extra}Connection: close\r\n\r\n",
        lb.port
    );
    let (status, head, body) = raw(lb.port, req.as_bytes());
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn rule(origin: &str, methods: &[&str]) -> CorsRule {
    let mut r = CorsRule::builder()
        .allowed_origins(origin)
        .allowed_headers("content-type")
        .allowed_headers("x-amz-*")
        .expose_headers("ETag")
        .max_age_seconds(600);
    for m in methods {
        r = r.allowed_methods(*m);
    }
    r.build().expect("rule")
}

async fn put_rules(s3: &aws_sdk_s3::Client, rules: Vec<CorsRule>) {
    let config = CorsConfiguration::builder()
        .set_cors_rules(Some(rules))
        .build()
        .expect("config");
    s3.put_bucket_cors()
        .bucket("web")
        .cors_configuration(config)
        .send()
        .await
        .expect("PutBucketCors");
}

#[tokio::test]
async fn bucket_cors_rules_are_stored_returned_and_deleted() {
    let (_lb, s3) = setup_with_bucket("web").await;
    let e = s3.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchCORSConfiguration");
    put_rules(
        &s3,
        vec![
            rule("https://app.example.test", &["GET", "PUT"]),
            rule("https://*.example.test", &["GET"]),
        ],
    )
    .await;
    let got = s3
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("GetBucketCors");
    let rules = got.cors_rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].allowed_origins(), ["https://app.example.test"]);
    assert_eq!(rules[0].allowed_methods(), ["GET", "PUT"]);
    assert_eq!(rules[0].expose_headers(), ["ETag"]);
    assert_eq!(rules[0].max_age_seconds(), Some(600));
    s3.delete_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("DeleteBucketCors");
    let e = s3.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchCORSConfiguration");
    let bad = CorsConfiguration::builder()
        .cors_rules(rule("*", &["PATCH"]))
        .build()
        .expect("config");
    let e = s3
        .put_bucket_cors()
        .bucket("web")
        .cors_configuration(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequest");
}

#[tokio::test]
async fn a_preflight_is_answered_from_the_buckets_rules_without_credentials() {
    let (lb, s3) = setup_with_bucket("web").await;
    let origin = ("Origin", "https://app.example.test");
    let put = [origin, ("Access-Control-Request-Method", "PUT")];
    let (status, _, body) = preflight(
        &lb,
        "/web/a.png",
        &[("Access-Control-Request-Method", "PUT")],
    );
    assert_eq!(status, 400, "no Origin");
    assert!(body.contains("<Code>BadRequest</Code>"), "{body}");
    let (status, _, body) = preflight(&lb, "/web/a.png", &put);
    assert_eq!(status, 403, "no rules yet");
    assert!(
        body.contains("CORS is not enabled for this bucket"),
        "{body}"
    );

    put_rules(&s3, vec![rule("https://app.example.test", &["GET", "PUT"])]).await;
    let with_headers = [
        origin,
        ("Access-Control-Request-Method", "PUT"),
        (
            "Access-Control-Request-Headers",
            "Content-Type,x-amz-meta-a",
        ),
    ];
    let (status, head, _) = preflight(&lb, "/web/a.png", &with_headers);
    assert_eq!(status, 200, "{head}");
    let h = |name| header_of(&head, name);
    assert_eq!(
        h("access-control-allow-origin").as_deref(),
        Some("https://app.example.test")
    );
    assert_eq!(
        h("access-control-allow-methods").as_deref(),
        Some("GET, PUT")
    );
    assert_eq!(
        h("access-control-allow-headers").as_deref(),
        Some("content-type, x-amz-meta-a")
    );
    assert_eq!(h("access-control-max-age").as_deref(), Some("600"));
    assert!(h("vary").is_some_and(|v| v.contains("Origin")));
    for refused in [
        vec![
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        vec![origin, ("Access-Control-Request-Method", "DELETE")],
        vec![
            origin,
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    ] {
        let (status, _, body) = preflight(&lb, "/web/a.png", &refused);
        assert_eq!(status, 403, "{refused:?}");
        assert!(body.contains("<Code>AccessForbidden</Code>"), "{body}");
    }
    let (status, _, body) = preflight(
        &lb,
        "/web/a.png",
        &[origin, ("Access-Control-Request-Method", "FETCH")],
    );
    assert_eq!(status, 400, "{body}");

    // The real answer carries the rule's headers for an allowed origin, none for another.
    assert_eq!(crate::harness::put(&lb, "/web/a.png", b"png", &[]).0, 200);
    let get = |origin: &str| {
        let req = signed_request_with(
            lb.port,
            "GET",
            "/web/a.png",
            b"",
            SystemTime::now(),
            &[("Origin", origin)],
        );
        raw(lb.port, &req).1
    };
    let head = get("https://app.example.test");
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example.test")
    );
    assert_eq!(
        header_of(&head, "access-control-expose-headers").as_deref(),
        Some("ETag")
    );
    let head = get("https://evil.example");
    assert!(
        header_of(&head, "access-control-allow-origin").is_none(),
        "{head}"
    );
}

#[tokio::test]
async fn server_cors_origins_cover_buckets_without_rules() {
    let lb = Lifeboat::start_with_config("[server]\ncors_origins = [\"http://localhost:3000\"]\n");
    lb.client()
        .create_bucket()
        .bucket("files")
        .send()
        .await
        .expect("bucket");
    let ask = |origin| {
        preflight(
            &lb,
            "/files/x",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
        )
    };
    let (status, head, _) = ask("http://localhost:3000");
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert!(header_of(&head, "access-control-expose-headers").is_some_and(|v| v.contains("ETag")));
    let (status, _, _) = ask("http://localhost:4000");
    assert_eq!(status, 403);
}
