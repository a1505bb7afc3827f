//! Configuration: a TOML file read raw (`raw`), environment variables applied on top, then
//! validated into the resolved, typed settings below (`resolve`) that the rest of the server
//! uses. `lifeboat config check` prints these settings serialized back to TOML under the keys
//! of the file, secrets redacted, so the printout cannot drift from the settings.
//!
//! The key names and environment variables are a contract with deployments (README,
//! "Configuration"; docs/ARCHITECTURE.md, "Adding a config setting"); every setting is
//! documented in `config/lifeboat.example.toml`.

mod network;
mod raw;
mod resolve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::auth::policy::User;
use crate::error::{S3Error, S3ErrorCode, S3Result};
pub use crate::secret::{EncryptionKey, Secret};
pub use network::{AccessLogFormat, BucketRule, Cidr, ClusterConfig};
pub use raw::{parse_evict_to, parse_size};

/// The well-known development credentials used when nothing else is configured.
pub const DEV_ACCESS_KEY: &str = "lifeboat";
pub const DEV_SECRET_KEY: &str = "lifeboat-dev-secret";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: String, reason: String },
}

pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The resolved configuration. Serialized (for `config check`) under the keys of the file.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub users: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
    pub presign: PresignConfig,
    /// `[[buckets]]`: anonymous access per bucket.
    pub buckets: Vec<BucketRule>,
    pub cluster: ClusterConfig,
    /// True when the well-known development credentials are in use.
    #[serde(skip)]
    pub dev_credentials: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    pub address: SocketAddr,
    pub admin_address: SocketAddr,
    /// `server.region` as the file sets it (no environment variable sets it: `S3_REGION` is
    /// the upstream's); `region()` is the one in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub domains: Vec<String>,
    /// The S3 endpoint as clients reach it (behind a proxy); presigned URLs use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// A file holding the admin API's bearer token (mode 0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// The token read from `admin_token_file`.
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    /// Whether `/metrics` needs admin credentials too.
    pub metrics_auth: bool,
    /// Origins allowed by CORS on buckets without CORS rules of their own.
    pub cors_origins: Vec<String>,
    /// Whether AWS Signature Version 2 is accepted (headers, presigned URLs, POST policies).
    pub sigv2: bool,
    /// PEM certificate chain and private key: both listeners speak TLS (reloaded on SIGHUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// How long requests in flight get to finish after SIGTERM or ctrl-c.
    #[serde(rename = "shutdown_grace_seconds", serialize_with = "secs")]
    pub shutdown_grace: Duration,
    /// Peers whose `X-Forwarded-For`/`Forwarded` name the client (the access log's client IP).
    pub trusted_proxies: Vec<Cidr>,
    /// The access log's format (target `lifeboat::access`, on stderr).
    pub access_log: AccessLogFormat,
    /// This node's name (default: the hostname): the `x-lifeboat-node` response header, the
    /// status document, the metrics' `node` label and the access log's `node` field.
    pub node_name: String,
}

/// The region answered and signed with when `server.region` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

impl ServerConfig {
    /// The region this server answers for (GetBucketLocation, presigned URLs).
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// The region a client's credential must be scoped to: only one `server.region` sets, as
    /// MinIO does; left unset, any region is accepted.
    pub fn enforced_region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

/// Where presigned URLs from the admin API point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresignTarget {
    Lifeboat,
    Upstream,
}

/// `[presign]`: the rules of `POST /storage/presigned-upload` and `presigned-download`.
#[derive(Debug, Clone, Serialize)]
pub struct PresignConfig {
    /// Content types an upload may declare; `type/*` patterns allowed.
    pub allowed_content_types: Vec<String>,
    /// Largest upload a URL allows.
    pub max_size: u64,
    #[serde(rename = "default_expires", serialize_with = "secs")]
    pub default_expires: Duration,
    #[serde(rename = "max_expires", serialize_with = "secs")]
    pub max_expires: Duration,
    /// The bucket used when a request names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key prefix of uploads: `<prefix>/YYYY/MM/<random>-<name>`.
    pub prefix: String,
    pub target: PresignTarget,
    /// Create a missing bucket instead of refusing the request.
    pub create_bucket: bool,
}

/// The content types presigned uploads accept by default.
pub const DEFAULT_UPLOAD_TYPES: &[&str] = &[
    "image/*",
    "video/*",
    "audio/*",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/pdf",
    "application/json",
    "application/zip",
    "application/x-zip-compressed",
    "application/gzip",
];

#[derive(Debug, Clone, Serialize)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// The cache budget: in gateway mode, synced objects are evicted (least recently used
    /// first) when the local total is over it.
    pub max_bytes: u64,
    /// The low-water mark eviction goes down to (`storage.evict_to`, in bytes once resolved;
    /// the file may say `"90%"`).
    pub evict_to: u64,
    /// A body that would leave less free space on the data disk is refused up front
    /// (`507 InsufficientStorage`).
    pub min_free_bytes: u64,
    /// A file holding the 32-byte key that blobs are sealed with (AES-256-GCM; mode 0600).
    /// Unset: new blobs are written in the clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
    /// The key read from `encryption_key_file`.
    #[serde(skip)]
    pub encryption_key: Option<EncryptionKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WritePolicy {
    Through,
    Back,
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicy {
    LocalFirst,
    UpstreamFirst,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpstreamConfig {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub path_style: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub write: WritePolicy,
    pub read: ReadPolicy,
    pub auto_create_buckets: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    /// Cached copies older than this are checked with a conditional request (local-first);
    /// `None` is never (`"never"` in the file), zero every read.
    #[serde(serialize_with = "secs_or_never")]
    pub revalidate_after: Option<Duration>,
    /// Extra CA certificates (PEM) trusted for an https upstream, beside the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(rename = "connect_timeout_ms", serialize_with = "millis")]
    pub connect_timeout: Duration,
    #[serde(rename = "first_byte_timeout_ms", serialize_with = "millis")]
    pub first_byte_timeout: Duration,
    #[serde(rename = "idle_timeout_ms", serialize_with = "millis")]
    pub idle_timeout: Duration,
    /// Extra attempts for idempotent requests.
    pub retries: u32,
    /// Consecutive failures that open the circuit, and how long it stays open.
    pub breaker_threshold: u32,
    #[serde(rename = "breaker_cooldown_ms", serialize_with = "millis")]
    pub breaker_cooldown: Duration,
    /// Whether a request may pick its write policy with `x-lifeboat-write`.
    pub allow_write_override: bool,
    /// Bytes per second the replay worker (and so `lifeboat sync`) uploads at most; 0: no
    /// limit.
    pub replication_rate: u64,
    /// Outbox entries (distinct keys) the replay worker uploads at once.
    pub replication_concurrency: usize,
    /// What a conditional write (`If-None-Match: *`, `If-Match`) gets while the upstream,
    /// which arbitrates it across nodes, cannot be reached.
    pub offline_conditional_writes: OfflineConditionalWrites,
}

/// `upstream.offline_conditional_writes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfflineConditionalWrites {
    /// `503 ServiceUnavailable` with `Retry-After` (the default): no node can be sure.
    Refuse,
    /// This node's own check decides, and the write is queued like any other.
    Local,
}

/// Request limits; each answers with the AWS error named beside it.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsConfig {
    /// `EntityTooLarge`.
    pub max_object_size: u64,
    /// `KeyTooLongError`.
    pub max_key_length: usize,
    /// `RequestHeaderSectionTooLarge`.
    pub max_header_bytes: usize,
    /// `MaxMessageLengthExceeded`.
    pub max_xml_body: usize,
    /// `MetadataTooLarge`.
    pub max_metadata_bytes: usize,
    /// `RequestTimeTooSkewed`.
    #[serde(rename = "clock_skew_seconds", serialize_with = "secs")]
    pub clock_skew: Duration,
    /// Every part of a multipart upload but the last (`EntityTooSmall`).
    pub min_part_size: u64,
    /// Parts in one CompleteMultipartUpload.
    pub max_parts: usize,
    /// Keys in one DeleteObjects (`MalformedXML` beyond it).
    pub max_delete_keys: usize,
    /// Multipart uploads idle longer than this are aborted.
    #[serde(rename = "abandoned_upload_seconds", serialize_with = "secs")]
    pub abandoned_upload: Duration,
    /// How long a completed upload's answer is kept for a retried Complete.
    #[serde(rename = "completed_upload_seconds", serialize_with = "secs")]
    pub completed_upload: Duration,
    /// How long a new connection may take to send its first byte.
    #[serde(rename = "first_byte_timeout_seconds", serialize_with = "secs")]
    pub first_byte_timeout: Duration,
    /// How long a connection may take for its TLS handshake, and then each header block.
    #[serde(rename = "header_timeout_seconds", serialize_with = "secs")]
    pub header_timeout: Duration,
    /// Longest pause inside a request body (`RequestTimeout`).
    #[serde(rename = "body_idle_seconds", serialize_with = "secs")]
    pub body_idle: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive,
    /// HTTP/2).
    #[serde(rename = "idle_timeout_seconds", serialize_with = "secs")]
    pub idle_timeout: Duration,
    /// Open connections per listener; beyond it, new ones wait in the accept backlog.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Requests per second per access key (`503 SlowDown` beyond it); 0: no limit.
    pub requests_per_second: u32,
    /// Requests an access key may send at once before the rate applies.
    pub request_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_object_size: 5 << 30,
            max_key_length: 1024,
            max_header_bytes: 16 << 10,
            max_xml_body: 1 << 20,
            max_metadata_bytes: 2 << 10,
            clock_skew: Duration::from_secs(900),
            min_part_size: 5 << 20,
            max_parts: 10_000,
            max_delete_keys: 1000,
            abandoned_upload: Duration::from_secs(7 * 24 * 3600),
            completed_upload: Duration::from_secs(24 * 3600),
            first_byte_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            body_idle: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_concurrent_streams: 100,
            requests_per_second: 0,
            request_burst: 0,
        }
    }
}

impl LimitsConfig {
    /// The one key-length check every keyed write passes through (PutObject, CopyObject's
    /// destination, CreateMultipartUpload, POST Object): `KeyTooLongError` past
    /// `max_key_length`.
    pub fn check_key(&self, key: &str) -> S3Result<()> {
        if key.len() > self.max_key_length {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError)
                .extra("Size", key.len().to_string())
                .extra("MaxSizeAllowed", self.max_key_length.to_string()));
        }
        Ok(())
    }

    /// Checks an object size against `max_object_size` (`EntityTooLarge`).
    pub fn check_object_size(&self, size: u64) -> S3Result<()> {
        if size > self.max_object_size {
            return Err(S3Error::entity_too_large(self.max_object_size));
        }
        Ok(())
    }
}

/// Where environment variables come from; a closure so tests can pass their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Reads `path` (if any), applies the environment, and validates.
    pub fn load(path: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_toml(&text, env)
    }

    pub fn from_toml(text: &str, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        resolve::resolve(raw, env)
    }

    /// The settings as `config check` prints them: the resolved config as TOML, under the
    /// keys of the file, secrets redacted.
    pub fn describe(&self) -> String {
        let mut out = match toml::to_string(self) {
            Ok(t) => t,
            Err(e) => format!("# cannot print the settings: {e}\n"),
        };
        if self.upstream.is_none() {
            out.push_str("\n# [upstream] not configured: local-only mode\n");
        }
        if self.dev_credentials {
            out.push_str(
                "\n# WARNING: no users configured; the development credentials are in use\n",
            );
        }
        out
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn secs_or_never<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_secs()),
        None => s.serialize_str("never"),
    }
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_serve_loopback_with_dev_credentials() {
        let c = Config::from_toml("", &no_env).map_err(|e| e.to_string());
        let c = c.as_ref().map_err(Clone::clone);
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.server.address.to_string(), "127.0.0.1:9000");
        assert_eq!(c.storage.data_dir, PathBuf::from("./lifeboat-data"));
        assert!(c.dev_credentials);
        assert!(c.upstream.is_none());
        assert_eq!(c.limits.max_object_size, 5 << 30);
    }

    #[test]
    fn key_length_limit_is_inclusive() {
        let limits = LimitsConfig::default();
        assert!(limits.check_key(&"k".repeat(1024)).is_ok());
        let e = limits.check_key(&"k".repeat(1025)).err();
        assert_eq!(e.map(|e| e.code), Some(S3ErrorCode::KeyTooLongError));
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("16 KiB"), Ok(16 << 10));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("12"), Ok(12));
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn evict_to_is_a_share_of_the_budget_or_a_size() {
        assert_eq!(parse_evict_to("90%", 1000), Ok(900));
        assert_eq!(parse_evict_to(" 50 % ", 1 << 20), Ok(1 << 19));
        assert_eq!(parse_evict_to("0%", 1000), Ok(0));
        assert_eq!(parse_evict_to("100%", u64::MAX), Ok(u64::MAX));
        assert_eq!(parse_evict_to("87.5%", 1000), Ok(875));
        assert_eq!(parse_evict_to("45GiB", 50 << 30), Ok(45 << 30));
        assert_eq!(parse_evict_to("512", 1000), Ok(512));
        for bad in ["101%", "-1%", "%", "ninety%", "5XB"] {
            assert!(parse_evict_to(bad, 1000).is_err(), "{bad}");
        }
        let c = |t: &str| Config::from_toml(t, &no_env);
        let Ok(d) = c("[storage]\nmax_bytes = \"1000\"\n") else {
            panic!("resolves")
        };
        assert_eq!(d.storage.evict_to, 900, "the default is 90% of max_bytes");
        let Ok(d) = c("[storage]\nmax_bytes = \"1MiB\"\nevict_to = \"50%\"\n") else {
            panic!("resolves")
        };
        assert_eq!(d.storage.evict_to, 512 << 10);
        let Ok(d) = c("[storage]\nmax_bytes = 1000\nevict_to = 700\n") else {
            panic!("resolves")
        };
        assert_eq!(d.storage.evict_to, 700);
        let e = c("[storage]\nmax_bytes = \"1KiB\"\nevict_to = \"2KiB\"\n").err();
        assert!(e.is_some_and(|e| e.to_string().contains("storage.evict_to")));
        assert!(c("[storage]\nevict_to = \"120%\"\n").is_err());
    }

    #[test]
    fn unknown_keys_are_an_error() {
        assert!(Config::from_toml("[server]\nadress = \"x\"\n", &no_env).is_err());
        assert!(Config::from_toml("[nonsense]\n", &no_env).is_err());
    }

    #[test]
    fn use_s3_storage_false_turns_a_configured_upstream_off() {
        let env = |k: &str| (k == "USE_S3_STORAGE").then(|| "false".to_owned());
        let toml = "[upstream]\nendpoint = \"http://127.0.0.1:8333\"\n\
                    access_key = \"a\"\nsecret_key = \"b\"\n";
        let Ok(c) = Config::from_toml(toml, &env) else {
            panic!("config should resolve")
        };
        assert!(c.upstream.is_none());
        assert!(Config::from_toml(toml, &no_env).is_ok_and(|c| c.upstream.is_some()));
    }

    #[test]
    fn env_overrides_and_legacy_upstream_names() {
        let env = |k: &str| -> Option<String> {
            match k {
                "LIFEBOAT_ADDRESS" => Some("127.0.0.1:9100".into()),
                "LIFEBOAT_ACCESS_KEY" => Some("AK".into()),
                "LIFEBOAT_SECRET_KEY" => Some("SK".into()),
                "USE_S3_STORAGE" => Some("true".into()),
                "S3_ENDPOINT_URL" => Some("http://127.0.0.1:8333".into()),
                "S3_BUCKET_NAME" => Some("ai-agent-storage".into()),
                "AWS_ACCESS_KEY_ID" => Some("UAK".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("USK".into()),
                _ => None,
            }
        };
        let Ok(c) = Config::from_toml("", &env) else {
            panic!("config should resolve")
        };
        assert_eq!(c.server.address.to_string(), "127.0.0.1:9100");
        assert!(!c.dev_credentials);
        assert_eq!(c.users[0].access_key, "AK");
        let Some(u) = c.upstream else {
            panic!("upstream on")
        };
        assert_eq!(u.bucket.as_deref(), Some("ai-agent-storage"));
        assert_eq!(u.secret_key.expose(), "USK");
    }

    #[test]
    fn secrets_never_print() {
        let env = |k: &str| -> Option<String> {
            match k {
                "LIFEBOAT_ACCESS_KEY" => Some("AK".into()),
                "LIFEBOAT_SECRET_KEY" => Some("very-secret-value".into()),
                _ => None,
            }
        };
        let Ok(c) = Config::from_toml(
            "[upstream]\nendpoint=\"http://x:1\"\naccess_key=\"a\"\nsecret_key=\"upstream-secret-value\"\n",
            &env,
        ) else {
            panic!("config should resolve")
        };
        let debug = format!("{c:?}");
        let described = c.describe();
        for text in [debug, described] {
            assert!(!text.contains("very-secret-value"));
            assert!(!text.contains("upstream-secret-value"));
            assert!(text.contains("REDACTED"));
        }
    }

    /// `config check` prints the resolved settings; parsed back, the printout gives the same
    /// settings. With every setting away from its default, a setting missing from the printout
    /// (or printed under another key) would come back as its default and fail this.
    #[test]
    fn the_printout_holds_every_setting() {
        let toml = r#"
            [server]
            address = "127.0.0.2:9100"
            admin_address = "127.0.0.2:9101"
            region = "eu-west-1"
            domains = ["s3.example.test", "other.test"]
            public_url = "https://files.example.test"
            metrics_auth = true
            sigv2 = false
            cors_origins = ["https://app.example.test", "https://*.example.test"]
            admin_token_file = "TOKEN_FILE"
            tls_cert = "/etc/lifeboat/cert.pem"
            tls_key = "/etc/lifeboat/key.pem"
            shutdown_grace_seconds = 5
            trusted_proxies = ["10.0.0.0/8", "::1/128"]
            access_log = "logfmt"
            [cluster]
            peers = ["http://node-b.example.test:9001"]
            [[buckets]]
            name = "public-assets"
            public_read = true
            public_list = true
            [presign]
            allowed_content_types = ["image/*", "application/pdf"]
            max_size = "10MiB"
            default_expires = 600
            max_expires = 86400
            bucket = "user-uploads"
            prefix = "incoming"
            target = "upstream"
            create_bucket = true
            [storage]
            data_dir = "/var/lib/lifeboat-test"
            max_bytes = "7GiB"
            evict_to = "75%"
            min_free_bytes = "3MiB"
            [limits]
            max_object_size = "1GiB"
            max_key_length = 512
            max_header_bytes = "8KiB"
            max_xml_body = "512KiB"
            max_metadata_bytes = "1KiB"
            clock_skew_seconds = 300
            min_part_size = "6MiB"
            max_parts = 500
            max_delete_keys = 50
            abandoned_upload_seconds = 3600
            completed_upload_seconds = 600
            first_byte_timeout_seconds = 5
            header_timeout_seconds = 12
            body_idle_seconds = 7
            idle_timeout_seconds = 9
            max_connections = 77
            max_concurrent_streams = 12
            requests_per_second = 50
            request_burst = 80
            [[users]]
            access_key = "app"
            secret_key = "app-secret-value"
            admin = true
            grants = [{ bucket = "logs-*", prefix = "app/", actions = ["write", "list"] }]
            [upstream]
            endpoint = "https://minio.example.test:9000"
            region = "eu-west-2"
            access_key = "up"
            secret_key = "upstream-secret-value"
            path_style = false
            bucket = "ai-agent-storage"
            write = "back"
            read = "upstream-first"
            auto_create_buckets = false
            sse = "AES256"
            revalidate_after = 45
            ca_file = "/etc/ssl/test-ca.pem"
            connect_timeout_ms = 111
            first_byte_timeout_ms = 222
            idle_timeout_ms = 333
            retries = 4
            breaker_threshold = 9
            breaker_cooldown_ms = 444
            allow_write_override = false
            replication_rate = "20MiB"
            replication_concurrency = 6
        "#;
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "a-long-enough-admin-token").expect("token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let toml = toml.replace("TOKEN_FILE", &token.to_string_lossy());
        let c = Config::from_toml(&toml, &no_env).expect("resolves");
        let printed = c.describe();
        assert!(!printed.contains("app-secret-value") && !printed.contains("upstream-secret"));
        let back = Config::from_toml(&printed, &no_env)
            .unwrap_or_else(|e| panic!("the printout does not parse: {e}\n{printed}"));
        assert_eq!(format!("{back:?}"), format!("{c:?}"), "{printed}");
        for key in [
            "body_idle_seconds",
            "first_byte_timeout_ms",
            "breaker_cooldown_ms",
            "max_expires",
            "cors_origins",
            "trusted_proxies",
            "public_list",
            "request_burst",
            "peers",
            "admin_token_file",
            "replication_rate",
            "replication_concurrency",
            "revalidate_after = 45",
            "evict_to",
        ] {
            assert!(printed.contains(key), "{key} missing:\n{printed}");
        }
        // "never" is not the default, so it must print, as the word, and parse back.
        let never = toml.replace("revalidate_after = 45", "revalidate_after = \"never\"");
        let c = Config::from_toml(&never, &no_env).expect("resolves");
        let printed = c.describe();
        assert!(
            printed.contains("revalidate_after = \"never\""),
            "{printed}"
        );
        let back = Config::from_toml(&printed, &no_env)
            .unwrap_or_else(|e| panic!("the printout does not parse: {e}\n{printed}"));
        assert_eq!(format!("{back:?}"), format!("{c:?}"), "{printed}");
    }

    #[test]
    fn revalidate_after_is_a_minute_unless_set_to_seconds_or_never() {
        let upstream = |extra: &str| {
            let toml = format!(
                "[upstream]\nendpoint = \"http://127.0.0.1:1\"\naccess_key = \"a\"\nsecret_key = \"s\"\n{extra}"
            );
            Config::from_toml(&toml, &no_env).map(|c| c.upstream.map(|u| u.revalidate_after))
        };
        let after = |extra: &str| upstream(extra).ok().flatten();
        assert_eq!(after(""), Some(Some(Duration::from_secs(60))));
        assert_eq!(after("revalidate_after = 0"), Some(Some(Duration::ZERO)));
        assert_eq!(
            after("revalidate_after = 300"),
            Some(Some(Duration::from_secs(300)))
        );
        assert_eq!(after("revalidate_after = \"never\""), Some(None));
        for bad in ["\"sometimes\"", "\"60\"", "-1", "1.5"] {
            assert!(
                upstream(&format!("revalidate_after = {bad}")).is_err(),
                "{bad} accepted"
            );
        }
    }

    /// Issue 12, item 6: replay uses four parallel uploads unless told otherwise, and no rate
    /// limit.
    #[test]
    fn replication_concurrency_defaults_to_four_and_the_rate_to_unlimited() {
        let upstream = |extra: &str| {
            let toml = format!(
                "[upstream]\nendpoint = \"http://127.0.0.1:1\"\naccess_key = \"a\"\nsecret_key = \"s\"\n{extra}"
            );
            Config::from_toml(&toml, &no_env)
                .ok()
                .and_then(|c| c.upstream)
                .map(|u| (u.replication_concurrency, u.replication_rate))
        };
        assert_eq!(upstream(""), Some((4, 0)));
        assert_eq!(upstream("replication_concurrency = 1"), Some((1, 0)));
        assert_eq!(
            upstream("replication_rate = \"20MiB\""),
            Some((4, 20 << 20))
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_encryption_key_file_is_32_bytes_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let toml = format!(
            "[storage]\nencryption_key_file = {:?}\n",
            path.display().to_string()
        );
        let write = |bytes: &[u8], mode: u32| {
            std::fs::write(&path, bytes).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let refusal = |toml: &str| match Config::from_toml(toml, &no_env) {
            Err(ConfigError::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("not refused: {other:?}"),
        };
        write(&[5; 32], 0o644);
        let r = refusal(&toml);
        assert!(
            r.starts_with("storage.encryption_key_file:") && r.contains("0644"),
            "{r}"
        );
        write(&[5; 31], 0o600);
        let r = refusal(&toml);
        assert!(
            r.contains("holds 31 bytes") && r.contains("exactly 32"),
            "{r}"
        );
        write(format!("{}\n", "ab".repeat(32)).as_bytes(), 0o600);
        assert!(refusal(&toml).contains("holds 65 bytes"));
        write(&[5; 32], 0o600);
        let c = Config::from_toml(&toml, &no_env).expect("resolves");
        assert_eq!(
            c.storage.encryption_key.as_ref().map(|k| *k.expose()),
            Some([5; 32])
        );
        // The printout names the file, never the key, and parses back to the same settings.
        let printed = c.describe();
        assert!(printed.contains("encryption_key_file"), "{printed}");
        let back = Config::from_toml(&printed, &no_env).expect("the printout parses");
        assert_eq!(format!("{:?}", back.storage), format!("{:?}", c.storage));
        assert!(format!("{c:?}").contains("encryption_key: Some(REDACTED)"));
    }

    #[test]
    fn config_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                n += 1;
                if let Err(e) = Config::load(Some(&path), &no_env) {
                    panic!("{}: {e}", path.display());
                }
            }
        }
        assert!(n > 0, "no examples in config/");
    }
}
