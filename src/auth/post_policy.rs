//! The signed policy of a browser form upload (`sigv4-HTTPPOSTConstructPolicy.html`,
//! `sigv4-authentication-HTTPPOST.html`): the policy document's SigV4 signature, by the user in
//! `x-amz-credential`, then its expiration and every condition against the form: exact match,
//! `eq`, `starts-with`, `content-length-range`. Every form field must be covered by a
//! condition (except `x-ignore-*`). The form itself is read by `handlers::post`.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::Users;
use super::policy::User;
use super::sigv4::{self, SigningKey};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::time::parse_amz_date;

fn denied(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, msg)
}

fn bad_form(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg)
}

/// The form fields, names lower-cased (S3 matches them case-insensitively).
pub struct Form {
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A checked policy: what it allows the file's length to be.
pub struct Policy {
    pub length_range: Option<(u64, u64)>,
}

fn condition_text(c: &Value) -> String {
    c.to_string()
}

/// Checks the policy's expiration and every condition against the form (and `bucket`).
pub fn check_policy(doc: &Value, form: &Form, bucket: &str, now: SystemTime) -> S3Result<Policy> {
    let invalid = || denied("Invalid Policy: Invalid JSON.");
    let expiration = doc
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| denied("Invalid Policy: Policy missing expiration."))?;
    let expires = chrono::DateTime::parse_from_rfc3339(expiration)
        .map_err(|_| denied("Invalid Policy: Invalid 'expiration' value."))?;
    if chrono::DateTime::<chrono::Utc>::from(now) > expires {
        return Err(denied("Invalid according to Policy: Policy expired."));
    }
    let conditions = doc
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| denied("Invalid Policy: Policy missing conditions."))?;
    let value_of = |field: &str| -> Option<String> {
        let f = field.trim_start_matches('$').to_ascii_lowercase();
        if f == "bucket" {
            Some(bucket.to_owned())
        } else {
            form.get(&f).map(str::to_owned)
        }
    };
    let failed = |c: &Value| {
        denied(format!(
            "Invalid according to Policy: Policy Condition failed: {}",
            condition_text(c)
        ))
    };
    let mut covered: Vec<String> = Vec::new();
    let mut length_range = None;
    for c in conditions {
        match c {
            Value::Object(map) => {
                for (k, v) in map {
                    let want = v.as_str().ok_or_else(invalid)?;
                    covered.push(k.to_ascii_lowercase());
                    if value_of(k).as_deref() != Some(want) {
                        return Err(failed(c));
                    }
                }
            }
            Value::Array(items) => {
                let op = items.first().and_then(Value::as_str).ok_or_else(invalid)?;
                match op.to_ascii_lowercase().as_str() {
                    "content-length-range" => {
                        let n = |i: usize| items.get(i).and_then(Value::as_u64).ok_or_else(invalid);
                        length_range = Some((n(1)?, n(2)?));
                    }
                    "eq" | "starts-with" => {
                        let field = items.get(1).and_then(Value::as_str).ok_or_else(invalid)?;
                        let want = items.get(2).and_then(Value::as_str).ok_or_else(invalid)?;
                        let name = field.trim_start_matches('$').to_ascii_lowercase();
                        covered.push(name.clone());
                        let have = value_of(field).unwrap_or_default();
                        let ok = if op.eq_ignore_ascii_case("eq") {
                            have == want
                        } else if name == "content-type" {
                            // A comma-separated Content-Type must match per value.
                            have.split(',').all(|v| v.trim().starts_with(want))
                        } else {
                            have.starts_with(want)
                        };
                        if !ok {
                            return Err(failed(c));
                        }
                    }
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(invalid()),
        }
    }
    const EXEMPT: [&str; 5] = [
        "x-amz-signature",
        "file",
        "policy",
        "awsaccesskeyid",
        "signature",
    ];
    for (name, _) in &form.fields {
        if !EXEMPT.contains(&name.as_str())
            && !name.starts_with("x-ignore-")
            && !covered.contains(name)
        {
            return Err(denied(format!(
                "Invalid according to Policy: Extra input fields: {name}"
            )));
        }
    }
    Ok(Policy { length_range })
}

/// Authenticates the form: the policy's SigV4 signature, by the user in `x-amz-credential`,
/// or (when `sigv2`) its Signature Version 2 signature, by the user in `AWSAccessKeyId`.
/// A SigV4 credential must be scoped to `server_region` when it is given.
pub fn authenticate(
    form: &Form,
    users: &Users,
    sigv2: bool,
    server_region: Option<&str>,
) -> S3Result<(Arc<User>, Value)> {
    let field = |n: &str| {
        form.get(n)
            .ok_or_else(|| bad_form(format!("Bucket POST must contain a field named '{n}'.")))
    };
    let policy_b64 = field("policy")?;
    if sigv2
        && form.get("x-amz-algorithm").is_none()
        && let (Some(access_key), Some(signature)) =
            (form.get("awsaccesskeyid"), form.get("signature"))
    {
        let user = users
            .get(access_key)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
        let expected = super::sigv2::sign_policy(user.secret_key.expose(), policy_b64);
        if !super::sigv2::signatures_equal(&expected, signature) {
            return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
        }
        return Ok((Arc::clone(user), decode_policy(policy_b64)?));
    }
    if field("x-amz-algorithm")? != sigv4::ALGORITHM {
        return Err(bad_form(
            "Only AWS4-HMAC-SHA256 is supported for POST uploads.",
        ));
    }
    let credential = field("x-amz-credential")?;
    let amz_date = field("x-amz-date")?;
    let signature = field("x-amz-signature")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(bad_form("The x-amz-credential field is malformed."));
    };
    if *service != "s3" {
        return Err(bad_form(
            "The x-amz-credential field names another service than s3.",
        ));
    }
    if let Some(server_region) = server_region
        && *region != server_region
    {
        return Err(bad_form(format!(
            "The x-amz-credential field is scoped to region '{region}'; expecting '{server_region}'."
        ))
        .extra("Region", server_region));
    }
    let user = users
        .get(access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
    let time = parse_amz_date(amz_date)
        .filter(|_| amz_date.starts_with(date))
        .ok_or_else(|| bad_form("The x-amz-date field is malformed."))?;
    let key = SigningKey::derive(user.secret_key.expose(), time, region, service);
    if !sigv4::signatures_equal(&key.sign(policy_b64), signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    Ok((Arc::clone(user), decode_policy(policy_b64)?))
}

fn decode_policy(policy_b64: &str) -> S3Result<Value> {
    let raw = crate::checksum::decode_base64(policy_b64)
        .ok_or_else(|| denied("Invalid Policy: Invalid Simple-Policy."))?;
    serde_json::from_slice(&raw).map_err(|_| denied("Invalid Policy: Invalid JSON."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn policy(conditions: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"expiration": "2099-01-01T00:00:00.000Z", "conditions": {conditions}}}"#
        ))
        .unwrap()
    }

    /// The conditions of the AWS documentation's POST policy example.
    #[test]
    fn aws_doc_example_policy_conditions() {
        let doc = policy(
            r#"[{"bucket": "sigv4examplebucket"}, ["starts-with", "$key", "user/user1/"],
                {"acl": "public-read"}, {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
                ["starts-with", "$Content-Type", "image/"], {"x-amz-meta-uuid": "14365123651274"},
                {"x-amz-server-side-encryption": "AES256"}, ["starts-with", "$x-amz-meta-tag", ""],
                {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
                {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-date": "20151229T000000Z" },
                ["content-length-range", 0, 1048576]]"#,
        );
        let mut f = form(&[
            ("key", "user/user1/photo.jpg"),
            ("acl", "public-read"),
            (
                "success_action_redirect",
                "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
            ),
            ("content-type", "image/jpeg"),
            ("x-amz-meta-uuid", "14365123651274"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-meta-tag", ""),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
            ),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-date", "20151229T000000Z"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
        ]);
        let now = SystemTime::now();
        let p = check_policy(&doc, &f, "sigv4examplebucket", now).unwrap();
        assert_eq!(p.length_range, Some((0, 1_048_576)));
        assert!(check_policy(&doc, &f, "otherbucket", now).is_err());
        f.fields[0].1 = "user/user2/photo.jpg".into();
        let e = check_policy(&doc, &f, "sigv4examplebucket", now)
            .err()
            .unwrap();
        assert!(
            e.message.contains("Policy Condition failed"),
            "{}",
            e.message
        );
        f.fields[0].1 = "user/user1/photo.jpg".into();
        f.fields.push(("x-amz-meta-extra".into(), "x".into()));
        let e = check_policy(&doc, &f, "sigv4examplebucket", now)
            .err()
            .unwrap();
        assert!(e.message.contains("Extra input fields"), "{}", e.message);
    }

    #[test]
    fn expired_policy_is_refused() {
        let doc: Value =
            serde_json::from_str(r#"{"expiration": "2001-01-01T00:00:00Z", "conditions": []}"#)
                .unwrap();
        let e = check_policy(&doc, &form(&[]), "b", SystemTime::now())
            .err()
            .unwrap();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert!(e.message.contains("Policy expired"));
    }
}
