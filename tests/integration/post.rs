//! Browser POST uploads with a signed policy, as a web page's form sends them.

use std::time::{Duration, SystemTime};

use lifeboat::auth::sigv4;

use crate::harness::{AK, Lifeboat, SK, raw};

pub fn policy(expiration: &str, conditions: &str) -> String {
    let doc = format!(r#"{{"expiration": "{expiration}", "conditions": {conditions}}}"#);
    lifeboat::checksum::base64(doc.as_bytes())
}

/// A multipart/form-data POST of `fields` then a file part.
pub fn form_post(
    port: u16,
    bucket: &str,
    fields: &[(&str, String)],
    filename: &str,
    file: &[u8],
) -> Vec<u8> {
    let boundary = "----WebKitFormBoundaryLifeboat7MA4YWxk";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

pub fn signed_fields(policy_b64: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let now = SystemTime::now();
    let amz_date = lifeboat::time::format_amz_date(now);
    let credential = format!("{AK}/{}/us-east-1/s3/aws4_request", &amz_date[..8]);
    let sig = sigv4::SigningKey::derive(SK, now, "us-east-1", "s3").sign(policy_b64);
    let mut f: Vec<(&'static str, String)> = Vec::new();
    for (k, v) in extra {
        f.push((Box::leak(k.to_string().into_boxed_str()), v.to_string()));
    }
    f.push(("x-amz-algorithm", "AWS4-HMAC-SHA256".into()));
    f.push(("x-amz-credential", credential));
    f.push(("x-amz-date", amz_date));
    f.push(("policy", policy_b64.to_owned()));
    f.push(("x-amz-signature", sig));
    f
}

fn conditions(amz_date_prefix: &str) -> String {
    format!(
        r#"[{{"bucket": "uploads"}}, ["starts-with", "$key", "user/"], ["content-length-range", 1, 1000],
            ["eq", "$Content-Type", "image/png"], {{"success_action_status": "201"}},
            ["starts-with", "$x-amz-meta-note", ""],
            {{"x-amz-algorithm": "AWS4-HMAC-SHA256"}}, ["starts-with", "$x-amz-credential", "{AK}/"],
            ["starts-with", "$x-amz-date", "{amz_date_prefix}"]]"#
    )
}

#[tokio::test]
async fn browser_form_upload_with_policy() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    let today = &lifeboat::time::format_amz_date(SystemTime::now())[..8];
    let p = policy("2099-01-01T00:00:00.000Z", &conditions(today));
    let fields = signed_fields(
        &p,
        &[
            ("key", "user/${filename}"),
            ("Content-Type", "image/png"),
            ("success_action_status", "201"),
            ("x-amz-meta-note", "hi"),
        ],
    );
    let (status, _, body) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &fields, "cat.png", b"PNGDATA"),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("<Key>user/cat.png</Key>"), "{body}");
    let got = s3
        .get_object()
        .bucket("uploads")
        .key("user/cat.png")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("note"))
            .map(String::as_str),
        Some("hi")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"PNGDATA"
    );

    // Too large for content-length-range.
    let (status, _, body) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &fields, "big.png", &[0u8; 2000]),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("EntityTooLarge"));

    // A key outside the starts-with condition.
    let bad = signed_fields(
        &p,
        &[
            ("key", "admin/${filename}"),
            ("Content-Type", "image/png"),
            ("success_action_status", "201"),
            ("x-amz-meta-note", "hi"),
        ],
    );
    let (status, _, body) = raw(lb.port, &form_post(lb.port, "uploads", &bad, "x.png", b"x"));
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403);
    assert!(
        body.contains("AccessDenied") && body.contains("Policy Condition failed"),
        "{body}"
    );

    // A field the policy does not mention.
    let extra = signed_fields(
        &p,
        &[
            ("key", "user/${filename}"),
            ("Content-Type", "image/png"),
            ("success_action_status", "201"),
            ("x-amz-meta-note", "hi"),
            ("acl", "public-read"),
        ],
    );
    let (status, _, body) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &extra, "x.png", b"x"),
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("Extra input fields"));

    // A tampered policy.
    let mut tampered = fields.clone();
    for f in &mut tampered {
        if f.0 == "policy" {
            f.1 = policy("2099-01-01T00:00:00.000Z", "[]");
        }
    }
    let (status, _, body) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &tampered, "x.png", b"x"),
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn expired_policy_and_redirects() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    let past = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() - Duration::from_secs(60))
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let p = policy(
        &past,
        r#"[{"bucket": "uploads"}, ["starts-with", "$key", ""]]"#,
    );
    let fields = signed_fields(&p, &[("key", "k")]);
    let (status, _, body) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &fields, "x.png", b"x"),
    );
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("Policy expired"));

    let p = policy(
        "2099-01-01T00:00:00Z",
        r#"[{"bucket": "uploads"}, ["starts-with", "$key", ""], ["starts-with", "$success_action_redirect", "https://app.example/"],
            ["starts-with", "$x-amz-algorithm", ""], ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]"#,
    );
    let fields = signed_fields(
        &p,
        &[
            ("key", "r"),
            ("success_action_redirect", "https://app.example/done"),
        ],
    );
    let (status, head, _) = raw(
        lb.port,
        &form_post(lb.port, "uploads", &fields, "x.png", b"x"),
    );
    assert_eq!(status, 303);
    assert!(
        head.contains("location: https://app.example/done?bucket=uploads&key=r&etag="),
        "{head}"
    );

    // Default success status is 204.
    let p = policy(
        "2099-01-01T00:00:00Z",
        r#"[{"bucket": "uploads"}, ["starts-with", "$key", ""], ["starts-with", "$x-amz-algorithm", ""],
            ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]"#,
    );
    let (status, _, _) = raw(
        lb.port,
        &form_post(
            lb.port,
            "uploads",
            &signed_fields(&p, &[("key", "d")]),
            "x.png",
            b"x",
        ),
    );
    assert_eq!(status, 204);
    s3.head_object()
        .bucket("uploads")
        .key("d")
        .send()
        .await
        .unwrap();
}
