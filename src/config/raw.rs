//! The configuration as read: TOML into `Raw*` structs (every field optional, unknown keys an
//! error), and the size syntax (`"5GiB"`, `"16 KiB"`, `1024`). `resolve` turns these into the
//! typed settings of `config`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A byte size written either as a number or as a string such as `"5GiB"` or `"16 KiB"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSize {
    Bytes(u64),
    Text(SizeText),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SizeText(u64);

impl<'de> Deserialize<'de> for SizeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_size(&s)
            .map(SizeText)
            .map_err(serde::de::Error::custom)
    }
}

impl RawSize {
    pub(super) fn bytes(self) -> u64 {
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

/// `upstream.revalidate_after`: seconds, or the string `"never"`. Read by hand rather than as
/// an untagged enum, so that a wrong value is named in the error ("data did not match any
/// variant" says nothing).
#[derive(Debug, Clone, Copy)]
pub(super) enum RawRevalidate {
    Seconds(u64),
    Never,
}

impl<'de> Deserialize<'de> for RawRevalidate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawRevalidate;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of seconds (0: every read) or \"never\"")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawRevalidate::Seconds(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(RawRevalidate::Seconds)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "never" => Ok(RawRevalidate::Never),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl RawRevalidate {
    /// `None` for never.
    pub(super) fn after(self) -> Option<std::time::Duration> {
        match self {
            RawRevalidate::Seconds(s) => Some(std::time::Duration::from_secs(s)),
            RawRevalidate::Never => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) users: Vec<RawUser>,
    pub(super) upstream: Option<RawUpstream>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) presign: RawPresign,
    #[serde(default)]
    pub(super) buckets: Vec<RawBucket>,
    #[serde(default)]
    pub(super) cluster: RawCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) peers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBucket {
    pub(super) name: String,
    pub(super) public_read: Option<bool>,
    pub(super) public_list: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPresign {
    pub(super) allowed_content_types: Option<Vec<String>>,
    pub(super) max_size: Option<RawSize>,
    pub(super) default_expires: Option<u64>,
    pub(super) max_expires: Option<u64>,
    pub(super) bucket: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) target: Option<String>,
    pub(super) create_bucket: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) address: Option<String>,
    pub(super) admin_address: Option<String>,
    pub(super) region: Option<String>,
    pub(super) domains: Option<Vec<String>>,
    pub(super) public_url: Option<String>,
    pub(super) admin_token_file: Option<PathBuf>,
    pub(super) metrics_auth: Option<bool>,
    pub(super) cors_origins: Option<Vec<String>>,
    pub(super) sigv2: Option<bool>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) shutdown_grace_seconds: Option<u64>,
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) access_log: Option<String>,
    pub(super) node_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) max_bytes: Option<RawSize>,
    pub(super) evict_to: Option<RawEvictTo>,
    pub(super) min_free_bytes: Option<RawSize>,
    pub(super) encryption_key_file: Option<PathBuf>,
}

/// `storage.evict_to`: a size (`"45GiB"`, `1024`) or a share of `max_bytes` (`"90%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawEvictTo {
    Bytes(u64),
    Text(String),
}

impl RawEvictTo {
    /// The low-water mark in bytes, for a budget of `max_bytes`.
    pub(super) fn bytes(&self, max_bytes: u64) -> Result<u64, String> {
        match self {
            RawEvictTo::Bytes(b) => Ok(*b),
            RawEvictTo::Text(t) => parse_evict_to(t, max_bytes),
        }
    }
}

/// Parses `storage.evict_to`: a percentage of `max_bytes` (`"90%"`, `"87.5 %"`, from 0 to
/// 100) or a size as `parse_size` reads it.
pub fn parse_evict_to(s: &str, max_bytes: u64) -> Result<u64, String> {
    let s = s.trim();
    let Some(pct) = s.strip_suffix('%') else {
        return parse_size(s);
    };
    let pct: f64 = pct
        .trim()
        .parse()
        .map_err(|_| format!("not a percentage: {s:?}"))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("a percentage from 0% to 100%, not {s:?}"));
    }
    // Exact for whole percentages of any budget (no float rounding on the bytes).
    if pct.fract() == 0.0 {
        let whole = u128::from(max_bytes) * (pct as u128) / 100;
        return Ok(u64::try_from(whole).unwrap_or(max_bytes));
    }
    Ok(((max_bytes as f64) * pct / 100.0).floor() as u64)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) access_key: String,
    pub(super) secret_key: Option<String>,
    pub(super) secret_key_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) admin: bool,
    pub(super) grants: Option<Vec<RawGrant>>,
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
pub(super) struct RawGrant {
    pub(super) bucket: String,
    #[serde(default)]
    pub(super) prefix: String,
    pub(super) actions: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) endpoint: Option<String>,
    pub(super) region: Option<String>,
    pub(super) access_key: Option<String>,
    pub(super) secret_key: Option<String>,
    pub(super) secret_key_file: Option<PathBuf>,
    pub(super) path_style: Option<bool>,
    pub(super) bucket: Option<String>,
    pub(super) write: Option<String>,
    pub(super) read: Option<String>,
    pub(super) auto_create_buckets: Option<bool>,
    pub(super) sse: Option<String>,
    pub(super) revalidate_after: Option<RawRevalidate>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) connect_timeout_ms: Option<u64>,
    pub(super) first_byte_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) retries: Option<u32>,
    pub(super) breaker_threshold: Option<u32>,
    pub(super) breaker_cooldown_ms: Option<u64>,
    pub(super) allow_write_override: Option<bool>,
    pub(super) replication_rate: Option<RawSize>,
    pub(super) replication_concurrency: Option<usize>,
    pub(super) offline_conditional_writes: Option<String>,
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
pub(super) struct RawLimits {
    pub(super) max_object_size: Option<RawSize>,
    pub(super) max_key_length: Option<usize>,
    pub(super) max_header_bytes: Option<RawSize>,
    pub(super) max_xml_body: Option<RawSize>,
    pub(super) max_metadata_bytes: Option<RawSize>,
    pub(super) clock_skew_seconds: Option<u64>,
    pub(super) min_part_size: Option<RawSize>,
    pub(super) max_parts: Option<usize>,
    pub(super) max_delete_keys: Option<usize>,
    pub(super) abandoned_upload_seconds: Option<u64>,
    pub(super) completed_upload_seconds: Option<u64>,
    pub(super) first_byte_timeout_seconds: Option<u64>,
    pub(super) header_timeout_seconds: Option<u64>,
    pub(super) body_idle_seconds: Option<u64>,
    pub(super) idle_timeout_seconds: Option<u64>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_concurrent_streams: Option<u32>,
    pub(super) requests_per_second: Option<u32>,
    pub(super) request_burst: Option<u32>,
}
