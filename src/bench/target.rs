//! Where the benchmark sends its requests and how each is authenticated: the endpoint
//! (path-style addressing under its base path), the keys (`<prefix><index>`), and every
//! operation as an HTTP request, signed in the Authorization header with the crate's own SigV4
//! functions (auth/sign.rs, as the upstream client signs), sent by a presigned URL
//! (auth/presign.rs) or plain (a public bucket, nginx serving files).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http::{Method, Request, Uri};

use super::BenchError;
use super::body::{BenchBody, Payload};
use crate::auth::presign::{Presign, Signer, presign_url};
use crate::auth::sign::{HeaderRequest, authorization};
use crate::auth::sigv4::{self, SigningKey};
use crate::secret::Secret;

/// How long a presigned URL is valid beyond the run's own length.
const PRESIGN_MARGIN: Duration = Duration::from_secs(3600);

/// One request of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Put,
    Get,
    Head,
    /// One ListObjectsV2 page (1000 keys at most) under the prefix.
    List,
    CreateBucket,
}

/// The signer's credentials, and its signing key, derived once per day.
pub(super) struct Credentials {
    pub(super) access_key: String,
    pub(super) secret: Secret,
    pub(super) region: String,
    key: Mutex<Option<(String, SigningKey)>>,
}

impl Credentials {
    pub(super) fn new(access_key: String, secret: Secret, region: String) -> Self {
        Self {
            access_key,
            secret,
            region,
            key: Mutex::new(None),
        }
    }

    /// The signing key of `date` (`YYYYMMDD`), derived when the date changes.
    fn key(&self, date: &str, now: SystemTime) -> SigningKey {
        let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((d, k)) if d == date => k.clone(),
            _ => {
                let k = SigningKey::derive(self.secret.expose(), now, &self.region, "s3");
                *cached = Some((date.to_owned(), k.clone()));
                k
            }
        }
    }
}

/// How requests are authenticated.
pub(super) enum Auth {
    /// No Authorization at all.
    Unsigned,
    /// SigV4 in the Authorization header; GET and HEAD by presigned URL when `presigned`.
    Signed {
        credentials: Credentials,
        presigned: bool,
    },
}

pub(super) struct Target {
    scheme: String,
    /// `host[:port]`, sent as Host and signed.
    authority: String,
    /// The endpoint's own path, without its trailing `/` (usually empty).
    base_path: String,
    bucket: String,
    prefix: String,
    auth: Auth,
    /// Extra headers for every request (lower-case names), signed with the rest.
    headers: Vec<(String, String)>,
    payload: Payload,
    /// What `x-amz-content-sha256` says of a PUT body: its SHA-256, or `UNSIGNED-PAYLOAD`.
    payload_hash: String,
    /// Presigned GET and HEAD URLs, one per key, made before the run.
    presigned_get: Vec<Uri>,
    presigned_head: Vec<Uri>,
}

/// The target's fixed settings.
pub(super) struct TargetSpec {
    pub(super) endpoint: String,
    pub(super) bucket: String,
    pub(super) prefix: String,
    pub(super) auth: Auth,
    pub(super) headers: Vec<(String, String)>,
    pub(super) payload: Payload,
    pub(super) payload_hash: String,
    /// Keys to presign GET and HEAD URLs for (with `Auth::Signed { presigned: true }`).
    pub(super) objects: u64,
    /// How long the run may last, for the presigned URLs' expiry.
    pub(super) lasts: Duration,
}

impl Target {
    pub(super) fn new(spec: TargetSpec) -> Result<Self, BenchError> {
        let bad = |why: &str| BenchError::Endpoint(format!("{}: {why}", spec.endpoint));
        let uri: Uri = spec.endpoint.parse().map_err(|_| bad("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(bad("expected http:// or https://")),
        };
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| bad("no host"))?;
        let mut target = Self {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            bucket: spec.bucket,
            prefix: spec.prefix,
            auth: spec.auth,
            headers: spec
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            payload: spec.payload,
            payload_hash: spec.payload_hash,
            presigned_get: Vec::new(),
            presigned_head: Vec::new(),
        };
        if let Auth::Signed {
            credentials,
            presigned: true,
        } = &target.auth
        {
            let expires = spec.lasts + PRESIGN_MARGIN;
            let mut get = Vec::new();
            let mut head = Vec::new();
            for i in 0..spec.objects {
                get.push(target.presign(credentials, "GET", i, expires)?);
                head.push(target.presign(credentials, "HEAD", i, expires)?);
            }
            target.presigned_get = get;
            target.presigned_head = head;
        }
        Ok(target)
    }

    pub(super) fn key(&self, index: u64) -> String {
        format!("{}{index:08}", self.prefix)
    }

    pub(super) fn payload(&self) -> &Payload {
        &self.payload
    }

    fn presign(
        &self,
        credentials: &Credentials,
        method: &str,
        index: u64,
        expires: Duration,
    ) -> Result<Uri, BenchError> {
        let path = format!(
            "{}/{}/{}",
            sigv4::uri_decode(&self.base_path),
            self.bucket,
            self.key(index)
        );
        let url = presign_url(
            &Signer {
                access_key: &credentials.access_key,
                secret_key: &credentials.secret,
                region: &credentials.region,
            },
            Presign {
                method,
                scheme: &self.scheme,
                host: &self.authority,
                path: &path,
                query: Vec::new(),
                headers: self.headers.clone(),
                expires: expires.min(Duration::from_secs(crate::auth::MAX_PRESIGNED_EXPIRES)),
                now: SystemTime::now(),
            },
        );
        url.parse()
            .map_err(|e| BenchError::Endpoint(format!("presigned URL {url}: {e}")))
    }

    /// The request of `kind` for the key of `index`.
    pub(super) fn request(&self, kind: Kind, index: u64) -> Result<Request<BenchBody>, String> {
        let presigned = match (&self.auth, kind) {
            (
                Auth::Signed {
                    presigned: true, ..
                },
                Kind::Get,
            ) => self.presigned_get.get(index as usize),
            (
                Auth::Signed {
                    presigned: true, ..
                },
                Kind::Head,
            ) => self.presigned_head.get(index as usize),
            _ => None,
        };
        if let Some(uri) = presigned {
            let method = if kind == Kind::Get {
                Method::GET
            } else {
                Method::HEAD
            };
            let mut b = Request::builder().method(method).uri(uri.clone());
            b = b.header("host", self.authority.as_str());
            for (k, v) in &self.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            return b.body(BenchBody::Empty).map_err(|e| e.to_string());
        }
        let bucket = format!(
            "{}/{}",
            self.base_path,
            sigv4::uri_encode(&self.bucket, true)
        );
        let object = || format!("{bucket}/{}", sigv4::uri_encode(&self.key(index), false));
        let (method, path, query, body) = match kind {
            Kind::Put => (Method::PUT, object(), Vec::new(), self.payload.body()),
            Kind::Get => (Method::GET, object(), Vec::new(), BenchBody::Empty),
            Kind::Head => (Method::HEAD, object(), Vec::new(), BenchBody::Empty),
            Kind::List => (
                Method::GET,
                bucket,
                vec![
                    ("list-type".to_owned(), "2".to_owned()),
                    ("max-keys".to_owned(), "1000".to_owned()),
                    ("prefix".to_owned(), self.prefix.clone()),
                ],
                BenchBody::Empty,
            ),
            Kind::CreateBucket => (Method::PUT, bucket, Vec::new(), BenchBody::Empty),
        };
        let canonical_query = sigv4::canonical_query(&query);
        let uri = match canonical_query.is_empty() {
            true => format!("{}://{}{path}", self.scheme, self.authority),
            false => format!(
                "{}://{}{path}?{canonical_query}",
                self.scheme, self.authority
            ),
        };
        let mut headers = self.headers.clone();
        headers.push(("host".to_owned(), self.authority.clone()));
        let mut b = Request::builder().method(method.clone()).uri(uri);
        if let Auth::Signed { credentials, .. } = &self.auth {
            let now = SystemTime::now();
            let amz_date = crate::time::format_amz_date(now);
            let payload_hash = match kind {
                Kind::Put => self.payload_hash.as_str(),
                _ => sigv4::EMPTY_SHA256,
            };
            headers.push(("x-amz-content-sha256".to_owned(), payload_hash.to_owned()));
            headers.push(("x-amz-date".to_owned(), amz_date.clone()));
            headers.sort();
            let key = credentials.key(amz_date.get(..8).unwrap_or(&amz_date), now);
            let auth = authorization(
                &credentials.access_key,
                &key,
                &credentials.region,
                &HeaderRequest {
                    method: method.as_str(),
                    path: &path,
                    canonical_query: &canonical_query,
                    headers: &headers,
                    payload_hash,
                    amz_date: &amz_date,
                },
            );
            b = b.header("authorization", auth);
        }
        for (k, v) in &headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if kind == Kind::Put {
            b = b.header("content-length", self.payload.len());
        }
        b.body(body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(endpoint: &str, presigned: bool) -> Target {
        Target::new(TargetSpec {
            endpoint: endpoint.to_owned(),
            bucket: "b".to_owned(),
            prefix: "p/".to_owned(),
            auth: Auth::Signed {
                credentials: Credentials::new("AK".into(), Secret::new("SK"), "us-east-1".into()),
                presigned,
            },
            headers: vec![("X-Lifeboat-Write".to_owned(), "back".to_owned())],
            payload: Payload::new(3),
            payload_hash: "UNSIGNED-PAYLOAD".to_owned(),
            objects: 2,
            lasts: Duration::from_secs(1),
        })
        .expect("target")
    }

    fn header<'a>(r: &'a Request<BenchBody>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn requests_are_path_style_and_signed() {
        let t = target("http://127.0.0.1:9000/", false);
        let r = t.request(Kind::Put, 7).expect("request");
        assert_eq!(r.uri().to_string(), "http://127.0.0.1:9000/b/p/00000007");
        assert_eq!(header(&r, "content-length"), "3");
        assert_eq!(header(&r, "host"), "127.0.0.1:9000");
        assert_eq!(header(&r, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        assert!(
            header(&r, "authorization")
                .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-lifeboat-write,")
        );
        let r = t.request(Kind::List, 0).expect("request");
        assert_eq!(
            r.uri().to_string(),
            "http://127.0.0.1:9000/b?list-type=2&max-keys=1000&prefix=p%2F"
        );
        assert_eq!(header(&r, "x-amz-content-sha256"), sigv4::EMPTY_SHA256);
    }

    #[test]
    fn presigned_gets_carry_their_signature_in_the_url() {
        let t = target("http://127.0.0.1:9000", true);
        let r = t.request(Kind::Get, 1).expect("request");
        let url = r.uri().to_string();
        assert!(url.starts_with("http://127.0.0.1:9000/b/p/00000001?X-Amz-Algorithm="));
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-lifeboat-write"));
        assert_eq!(header(&r, "authorization"), "");
        // A PUT is still signed in its header.
        let r = t.request(Kind::Put, 1).expect("request");
        assert!(header(&r, "authorization").starts_with("AWS4-HMAC-SHA256 Credential=AK/"));
    }

    #[test]
    fn an_endpoint_must_be_an_http_url() {
        for bad in ["127.0.0.1:9000", "ftp://host", "not a url"] {
            let spec = TargetSpec {
                endpoint: bad.to_owned(),
                bucket: "b".to_owned(),
                prefix: String::new(),
                auth: Auth::Unsigned,
                headers: Vec::new(),
                payload: Payload::new(0),
                payload_hash: String::new(),
                objects: 0,
                lasts: Duration::ZERO,
            };
            assert!(Target::new(spec).is_err(), "{bad}");
        }
    }
}
