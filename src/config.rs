//! Configuration: a TOML file read raw, environment variables applied on top, then validated into
//! resolved types that the rest of the server uses.
//!
//! The key names and environment variables are the contract in DESIGN.md ("Configuration"); every
//! setting is documented in `config/lifeboat.example.toml`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::policy::{Action, Grant, User};

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

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// A secret string: never printed, compared in constant time by its users, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

/// A byte size written either as a number or as a string such as `"5GiB"` or `"16 KiB"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(SizeText),
}

#[derive(Debug, Clone, Copy)]
struct SizeText(u64);

impl<'de> Deserialize<'de> for SizeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_size(&s)
            .map(SizeText)
            .map_err(serde::de::Error::custom)
    }
}

impl RawSize {
    fn bytes(self) -> u64 {
        match self {
            RawSize::Bytes(b) => b,
            RawSize::Text(SizeText(b)) => b,
        }
    }
}

/// Parses sizes such as `1024`, `64KiB`, `5 GiB`, `100MB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    users: Vec<RawUser>,
    upstream: Option<RawUpstream>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    address: Option<String>,
    admin_address: Option<String>,
    region: Option<String>,
    domains: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: Option<PathBuf>,
    max_bytes: Option<RawSize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    access_key: String,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    #[serde(default)]
    admin: bool,
    grants: Option<Vec<RawGrant>>,
}

impl fmt::Debug for RawUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawUser")
            .field("access_key", &self.access_key)
            .field("secret_key", &"REDACTED")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    bucket: String,
    #[serde(default)]
    prefix: String,
    actions: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    endpoint: Option<String>,
    region: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    path_style: Option<bool>,
    bucket: Option<String>,
    write: Option<String>,
    read: Option<String>,
    auto_create_buckets: Option<bool>,
    sse: Option<String>,
    revalidate_after: Option<u64>,
    ca_file: Option<PathBuf>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    retries: Option<u32>,
    breaker_threshold: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    allow_write_override: Option<bool>,
}

impl fmt::Debug for RawUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawUpstream")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_object_size: Option<RawSize>,
    max_key_length: Option<usize>,
    max_header_bytes: Option<RawSize>,
    max_xml_body: Option<RawSize>,
    max_metadata_bytes: Option<RawSize>,
    clock_skew_seconds: Option<u64>,
    min_part_size: Option<RawSize>,
    max_parts: Option<usize>,
    max_delete_keys: Option<usize>,
    abandoned_upload_seconds: Option<u64>,
    body_idle_seconds: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub users: Vec<User>,
    pub upstream: Option<UpstreamConfig>,
    pub limits: LimitsConfig,
    /// True when the well-known development credentials are in use.
    pub dev_credentials: bool,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub address: String,
    pub admin_address: String,
    pub region: String,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    Through,
    Back,
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPolicy {
    LocalFirst,
    UpstreamFirst,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub path_style: bool,
    pub bucket: Option<String>,
    pub write: WritePolicy,
    pub read: ReadPolicy,
    pub auto_create_buckets: bool,
    pub sse: Option<String>,
    pub revalidate_after: Option<u64>,
    /// Extra CA certificates (PEM) trusted for an https upstream, beside the system's.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: std::time::Duration,
    pub first_byte_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    /// Extra attempts for idempotent requests.
    pub retries: u32,
    /// Consecutive failures that open the circuit, and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: std::time::Duration,
    /// Whether a request may pick its write policy with `x-lifeboat-write`.
    pub allow_write_override: bool,
}

/// Request limits; each answers with the AWS error named beside it.
#[derive(Debug, Clone)]
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
    pub clock_skew_seconds: u64,
    /// Every part of a multipart upload but the last (`EntityTooSmall`).
    pub min_part_size: u64,
    /// Parts in one CompleteMultipartUpload.
    pub max_parts: usize,
    /// Keys in one DeleteObjects (`MalformedXML` beyond it).
    pub max_delete_keys: usize,
    /// Multipart uploads idle longer than this are aborted.
    pub abandoned_upload_seconds: u64,
    /// Longest pause inside a request body (`RequestTimeout`).
    pub body_idle_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_object_size: 5 << 30,
            max_key_length: 1024,
            max_header_bytes: 16 << 10,
            max_xml_body: 1 << 20,
            max_metadata_bytes: 2 << 10,
            clock_skew_seconds: 900,
            min_part_size: 5 << 20,
            max_parts: 10_000,
            max_delete_keys: 1000,
            abandoned_upload_seconds: 7 * 24 * 3600,
            body_idle_seconds: 60,
        }
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        resolve(raw, env)
    }

    /// The settings as `config check` prints them, secrets redacted.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let s = &self.server;
        out.push_str(&format!(
            "[server]\naddress = {:?}\nadmin_address = {:?}\nregion = {:?}\ndomains = {:?}\n\n",
            s.address, s.admin_address, s.region, s.domains
        ));
        out.push_str(&format!(
            "[storage]\ndata_dir = {:?}\nmax_bytes = {}\n\n",
            self.storage.data_dir.display().to_string(),
            self.storage.max_bytes
        ));
        for u in &self.users {
            out.push_str(&format!(
                "[[users]]\naccess_key = {:?}\nsecret_key = \"REDACTED\"\nadmin = {}\n",
                u.access_key, u.admin
            ));
            for g in &u.grants {
                let actions: Vec<&str> = g.actions.iter().map(|a| a.as_str()).collect();
                out.push_str(&format!(
                    "grants += {{ bucket = {:?}, prefix = {:?}, actions = {:?} }}\n",
                    g.bucket, g.prefix, actions
                ));
            }
            out.push('\n');
        }
        match &self.upstream {
            None => out.push_str("# [upstream] not configured: local-only mode\n\n"),
            Some(u) => out.push_str(&format!(
                "[upstream]\nendpoint = {:?}\nregion = {:?}\naccess_key = {:?}\nsecret_key = \"REDACTED\"\n\
                 path_style = {}\nbucket = {:?}\nwrite = {:?}\nread = {:?}\nauto_create_buckets = {}\nsse = {:?}\n\n",
                u.endpoint,
                u.region,
                u.access_key,
                u.path_style,
                u.bucket.clone().unwrap_or_default(),
                u.write,
                u.read,
                u.auto_create_buckets,
                u.sse.clone().unwrap_or_default()
            )),
        }
        let l = &self.limits;
        out.push_str(&format!(
            "[limits]\nmax_object_size = {}\nmax_key_length = {}\nmax_header_bytes = {}\nmax_xml_body = {}\n\
             max_metadata_bytes = {}\nclock_skew_seconds = {}\nmin_part_size = {}\nmax_parts = {}\n\
             max_delete_keys = {}\nabandoned_upload_seconds = {}\n",
            l.max_object_size,
            l.max_key_length,
            l.max_header_bytes,
            l.max_xml_body,
            l.max_metadata_bytes,
            l.clock_skew_seconds,
            l.min_part_size,
            l.max_parts,
            l.max_delete_keys,
            l.abandoned_upload_seconds
        ));
        if self.dev_credentials {
            out.push_str(
                "\n# WARNING: no users configured; the development credentials are in use\n",
            );
        }
        out
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(invalid(
            key,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

fn read_secret(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, "set secret_key or secret_key_file, not both")),
        (Some(s), None) => Ok(Some(Secret::new(s))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
        }
        (None, None) => Ok(None),
    }
}

fn check_address(key: &str, addr: &str) -> Result<(), ConfigError> {
    addr.parse::<SocketAddr>()
        .map(|_| ())
        .map_err(|_| invalid(key, format!("{addr:?} is not an IP:port address")))
}

fn resolve(raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let address = env("LIFEBOAT_ADDRESS")
        .or(raw.server.address)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    check_address("server.address", &address)?;
    let admin_address = env("LIFEBOAT_ADMIN_ADDRESS")
        .or(raw.server.admin_address)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    check_address("server.admin_address", &admin_address)?;
    let region = raw.server.region.unwrap_or_else(|| "us-east-1".to_owned());
    if region.is_empty() {
        return Err(invalid("server.region", "must not be empty"));
    }
    let domains = raw
        .server
        .domains
        .unwrap_or_else(|| vec!["s3.localhost".to_owned()])
        .into_iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();

    let storage = StorageConfig {
        data_dir: env("LIFEBOAT_DATA_DIR")
            .map(PathBuf::from)
            .or(raw.storage.data_dir)
            .unwrap_or_else(|| PathBuf::from("./lifeboat-data")),
        max_bytes: raw.storage.max_bytes.map_or(50 << 30, RawSize::bytes),
    };

    let mut users = Vec::new();
    for (i, u) in raw.users.into_iter().enumerate() {
        let key = format!("users[{i}]");
        if u.access_key.is_empty() {
            return Err(invalid(&format!("{key}.access_key"), "must not be empty"));
        }
        let secret = read_secret(
            &format!("{key}.secret_key"),
            u.secret_key,
            u.secret_key_file,
        )?
        .ok_or_else(|| invalid(&format!("{key}.secret_key"), "missing"))?;
        let grants = match u.grants {
            None => vec![Grant::all()],
            Some(gs) => gs
                .into_iter()
                .map(|g| {
                    let actions = g
                        .actions
                        .iter()
                        .map(|a| {
                            Action::parse(a).ok_or_else(|| {
                                invalid(&format!("{key}.grants"), format!("unknown action {a:?}"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Grant {
                        bucket: g.bucket,
                        prefix: g.prefix,
                        actions,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
        };
        if users.iter().any(|x: &User| x.access_key == u.access_key) {
            return Err(invalid(
                &format!("{key}.access_key"),
                "duplicate access key",
            ));
        }
        users.push(User {
            access_key: u.access_key,
            secret_key: secret,
            admin: u.admin,
            grants,
        });
    }
    match (env("LIFEBOAT_ACCESS_KEY"), env("LIFEBOAT_SECRET_KEY")) {
        (Some(ak), Some(sk)) => {
            users.retain(|u| u.access_key != ak);
            users.push(User {
                access_key: ak,
                secret_key: Secret::new(sk),
                admin: true,
                grants: vec![Grant::all()],
            });
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                "LIFEBOAT_ACCESS_KEY",
                "set both LIFEBOAT_ACCESS_KEY and LIFEBOAT_SECRET_KEY, or neither",
            ));
        }
    }
    let dev_credentials = users.is_empty();
    if dev_credentials {
        users.push(User {
            access_key: DEV_ACCESS_KEY.to_owned(),
            secret_key: Secret::new(DEV_SECRET_KEY),
            admin: true,
            grants: vec![Grant::all()],
        });
    }

    let upstream = resolve_upstream(raw.upstream, env)?;

    let l = raw.limits;
    let d = LimitsConfig::default();
    let limits = LimitsConfig {
        max_object_size: l.max_object_size.map_or(d.max_object_size, RawSize::bytes),
        max_key_length: l.max_key_length.unwrap_or(d.max_key_length),
        max_header_bytes: l
            .max_header_bytes
            .map_or(d.max_header_bytes, |s| s.bytes() as usize),
        max_xml_body: l
            .max_xml_body
            .map_or(d.max_xml_body, |s| s.bytes() as usize),
        max_metadata_bytes: l
            .max_metadata_bytes
            .map_or(d.max_metadata_bytes, |s| s.bytes() as usize),
        clock_skew_seconds: l.clock_skew_seconds.unwrap_or(d.clock_skew_seconds),
        min_part_size: l.min_part_size.map_or(d.min_part_size, RawSize::bytes),
        max_parts: l.max_parts.unwrap_or(d.max_parts).clamp(1, 10_000),
        max_delete_keys: l.max_delete_keys.unwrap_or(d.max_delete_keys).max(1),
        abandoned_upload_seconds: l
            .abandoned_upload_seconds
            .unwrap_or(d.abandoned_upload_seconds),
        body_idle_seconds: l.body_idle_seconds.unwrap_or(d.body_idle_seconds).max(1),
    };
    if limits.max_header_bytes < 1024 {
        return Err(invalid("limits.max_header_bytes", "must be at least 1KiB"));
    }
    if limits.abandoned_upload_seconds == 0 {
        return Err(invalid(
            "limits.abandoned_upload_seconds",
            "must be at least 1",
        ));
    }
    if limits.clock_skew_seconds > 7 * 24 * 3600 {
        return Err(invalid(
            "limits.clock_skew_seconds",
            "must be at most a week (604800)",
        ));
    }

    Ok(Config {
        server: ServerConfig {
            address,
            admin_address,
            region,
            domains,
        },
        storage,
        users,
        upstream,
        limits,
        dev_credentials,
    })
}

fn resolve_upstream(
    raw: Option<RawUpstream>,
    env: EnvLookup<'_>,
) -> Result<Option<UpstreamConfig>, ConfigError> {
    let enabled = match env("USE_S3_STORAGE") {
        Some(v) => parse_bool("USE_S3_STORAGE", &v)?,
        None => raw.is_some(),
    };
    if !enabled {
        return Ok(None);
    }
    let raw = raw.unwrap_or_default();
    let endpoint = env("S3_ENDPOINT_URL")
        .or(raw.endpoint)
        .ok_or_else(|| invalid("upstream.endpoint", "missing (or set S3_ENDPOINT_URL)"))?;
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(invalid(
            "upstream.endpoint",
            "must start with http:// or https://",
        ));
    }
    let access_key = env("AWS_ACCESS_KEY_ID")
        .or(raw.access_key)
        .ok_or_else(|| invalid("upstream.access_key", "missing (or set AWS_ACCESS_KEY_ID)"))?;
    let secret_key = match env("AWS_SECRET_ACCESS_KEY") {
        Some(s) => Secret::new(s),
        None => read_secret("upstream.secret_key", raw.secret_key, raw.secret_key_file)?
            .ok_or_else(|| {
                invalid(
                    "upstream.secret_key",
                    "missing (or set AWS_SECRET_ACCESS_KEY)",
                )
            })?,
    };
    let write = match raw.write.as_deref().unwrap_or("through") {
        "through" => WritePolicy::Through,
        "back" => WritePolicy::Back,
        "strict" => WritePolicy::Strict,
        other => {
            return Err(invalid(
                "upstream.write",
                format!("{other:?}: expected through, back or strict"),
            ));
        }
    };
    let read = match raw.read.as_deref().unwrap_or("local-first") {
        "local-first" => ReadPolicy::LocalFirst,
        "upstream-first" => ReadPolicy::UpstreamFirst,
        other => {
            return Err(invalid(
                "upstream.read",
                format!("{other:?}: expected local-first or upstream-first"),
            ));
        }
    };
    let sse = raw.sse.filter(|s| !s.is_empty());
    if let Some(s) = &sse
        && s != "AES256"
    {
        return Err(invalid(
            "upstream.sse",
            format!("{s:?}: only \"AES256\" is supported"),
        ));
    }
    Ok(Some(UpstreamConfig {
        endpoint,
        region: env("S3_REGION")
            .or(raw.region)
            .unwrap_or_else(|| "us-east-1".to_owned()),
        access_key,
        secret_key,
        path_style: raw.path_style.unwrap_or(true),
        bucket: env("S3_BUCKET_NAME")
            .or(raw.bucket)
            .filter(|b| !b.is_empty()),
        write,
        read,
        auto_create_buckets: raw.auto_create_buckets.unwrap_or(true),
        sse,
        revalidate_after: raw.revalidate_after,
        ca_file: raw.ca_file,
        connect_timeout: ms(raw.connect_timeout_ms, 2_000),
        first_byte_timeout: ms(raw.first_byte_timeout_ms, 15_000),
        idle_timeout: ms(raw.idle_timeout_ms, 30_000),
        retries: raw.retries.unwrap_or(2),
        breaker_threshold: raw.breaker_threshold.unwrap_or(5),
        breaker_cooldown: ms(raw.breaker_cooldown_ms, 5_000),
        allow_write_override: raw.allow_write_override.unwrap_or(true),
    }))
}

fn ms(v: Option<u64>, default: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v.unwrap_or(default))
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
        assert_eq!(c.server.address, "127.0.0.1:9000");
        assert_eq!(c.storage.data_dir, PathBuf::from("./lifeboat-data"));
        assert!(c.dev_credentials);
        assert!(c.upstream.is_none());
        assert_eq!(c.limits.max_object_size, 5 << 30);
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
    fn unknown_keys_are_an_error() {
        assert!(Config::from_toml("[server]\nadress = \"x\"\n", &no_env).is_err());
        assert!(Config::from_toml("[nonsense]\n", &no_env).is_err());
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
        assert_eq!(c.server.address, "127.0.0.1:9100");
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
