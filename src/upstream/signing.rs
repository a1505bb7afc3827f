//! Turning an `UpstreamRequest` into a signed HTTP request: path-style or virtual-hosted
//! addressing under the endpoint's base path, the canonical request and SigV4 signature of
//! `sig-v4-header-based-auth.html` (the same functions that verify clients), and the body,
//! opened from its blob file.

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, Request};

use super::client::{Progress, Tracked};
use super::{BodySource, Upstream, UpstreamError, UpstreamRequest};
use crate::auth::sigv4::{self, SigningKey};
use crate::body::ResponseBody;

impl Upstream {
    /// The Host and path of a bucket and key (already mapped) on the upstream, path-style or
    /// virtual-hosted under the endpoint's base path; the path URI-encoded when `encoded`.
    fn address(&self, bucket: Option<&str>, key: Option<&str>, encoded: bool) -> (String, String) {
        let enc = |s: &str, slash| {
            if encoded {
                sigv4::uri_encode(s, slash)
            } else {
                s.to_owned()
            }
        };
        let (host, mut path) = match (bucket, self.config.path_style) {
            (Some(b), false) => (format!("{b}.{}", self.authority), String::new()),
            (Some(b), true) => (self.authority.clone(), format!("/{}", enc(b, true))),
            (None, _) => (self.authority.clone(), String::new()),
        };
        path = format!("{}{path}", self.base_path);
        match key {
            Some(k) => {
                path.push('/');
                path.push_str(&enc(k, false));
            }
            None => path.push('/'),
        }
        (host, path)
    }

    /// A presigned URL for a gateway bucket and key, straight to the upstream, signed with the
    /// upstream's credentials (the admin API's `[presign] target = "upstream"`).
    pub fn presign(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        expires: std::time::Duration,
    ) -> String {
        let (bucket, key) = self.map(bucket, key);
        let (host, path) = self.address(Some(&bucket), Some(&key), false);
        crate::auth::presign::presign_url(
            &crate::auth::presign::Signer {
                access_key: &self.config.access_key,
                secret_key: &self.config.secret_key,
                region: &self.config.region,
            },
            crate::auth::presign::Presign {
                method,
                scheme: &self.scheme,
                host: &host,
                path: &path,
                query,
                headers,
                expires,
                now: SystemTime::now(),
            },
        )
    }

    pub(super) fn build(
        &self,
        r: &UpstreamRequest,
    ) -> Result<(Request<Tracked>, Arc<Progress>), UpstreamError> {
        let local = |e: &dyn std::fmt::Display| UpstreamError::Local(e.to_string());
        let (host, path) = self.address(r.bucket.as_deref(), r.key.as_deref(), true);
        let canonical_query = sigv4::canonical_query(&r.query);
        let uri = if canonical_query.is_empty() {
            format!("{}://{host}{path}", self.scheme)
        } else {
            format!("{}://{host}{path}?{canonical_query}", self.scheme)
        };
        let now = SystemTime::now();
        let amz_date = crate::time::format_amz_date(now);
        let payload_hash = r
            .sha256
            .clone()
            .unwrap_or_else(|| sigv4::EMPTY_SHA256.to_owned());
        let len = match &r.body {
            BodySource::Empty => 0,
            BodySource::Bytes(b) => b.len() as u64,
            BodySource::Reader { len, .. } => *len,
        };
        let mut headers: Vec<(String, String)> = r.headers.clone();
        headers.push(("host".into(), host.clone()));
        headers.push(("x-amz-date".into(), amz_date.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        if len > 0 || r.method == Method::PUT || r.method == Method::POST {
            headers.push(("content-length".into(), len.to_string()));
        }
        headers.sort();
        let key = SigningKey::derive(
            self.config.secret_key.expose(),
            now,
            &self.config.region,
            "s3",
        );
        let authorization = crate::auth::sign::authorization(
            &self.config.access_key,
            &key,
            &self.config.region,
            &crate::auth::sign::HeaderRequest {
                method: r.method.as_str(),
                path: &path,
                canonical_query: &canonical_query,
                headers: &headers,
                payload_hash: &payload_hash,
                amz_date: &amz_date,
            },
        );
        let mut b = Request::builder().method(r.method.clone()).uri(uri);
        for (k, v) in &headers {
            if k != "host" {
                b = b.header(k.as_str(), v.as_str());
            }
        }
        b = b.header("authorization", authorization);
        // Bodies held in memory are tiny and count as sent at once.
        let (body, in_memory) = match &r.body {
            BodySource::Empty => (ResponseBody::Empty, true),
            BodySource::Bytes(b) => (ResponseBody::full(b.clone()), true),
            BodySource::Reader { open, len } => {
                let reader = (open.0)().map_err(|e| local(&e))?;
                (crate::body::stream_reader(reader, *len), false)
            }
        };
        let progress = Progress::new(in_memory);
        let req = b
            .body(Tracked {
                inner: body,
                progress: Arc::clone(&progress),
            })
            .map_err(|e| local(&e))?;
        Ok((req, progress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(endpoint: &str, path_style: bool) -> Upstream {
        let toml = format!(
            "[upstream]\nendpoint = \"{endpoint}\"\naccess_key = \"a\"\nsecret_key = \"s\"\npath_style = {path_style}\n"
        );
        let config = crate::config::Config::from_toml(&toml, &|_| None)
            .ok()
            .and_then(|c| c.upstream)
            .expect("upstream config");
        Upstream::new(config).expect("upstream")
    }

    #[test]
    fn path_style_and_virtual_hosted_urls() {
        let r = UpstreamRequest::new(Method::GET, "my-bucket", Some("dir/a b+c~é"))
            .query("partNumber", "2");
        let (req, _) = upstream("http://127.0.0.1:8333", true)
            .build(&r)
            .expect("build");
        assert_eq!(
            req.uri().to_string(),
            "http://127.0.0.1:8333/my-bucket/dir/a%20b%2Bc~%C3%A9?partNumber=2"
        );
        let (req, _) = upstream("http://127.0.0.1:8333", false)
            .build(&r)
            .expect("build");
        assert_eq!(
            req.uri().to_string(),
            "http://my-bucket.127.0.0.1:8333/dir/a%20b%2Bc~%C3%A9?partNumber=2"
        );
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=a/")
                && auth.contains("SignedHeaders=host;")
        );
    }

    #[test]
    fn a_default_port_is_left_out_of_the_signed_host() {
        let r = UpstreamRequest::new(Method::HEAD, "b", None);
        let (req, _) = upstream("https://s3.example.com:443", true)
            .build(&r)
            .expect("build");
        assert_eq!(req.uri().to_string(), "https://s3.example.com/b/");
        let (req, _) = upstream("http://minio.local:9000/", true)
            .build(&r)
            .expect("build");
        assert_eq!(req.uri().to_string(), "http://minio.local:9000/b/");
    }
}
