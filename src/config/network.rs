//! The network-facing parts of `[server]` and `[limits]`, and `[[buckets]]`: TLS files,
//! trusted proxies, the access log, shutdown, connection and rate limits, public buckets.
//! Resolved here from the raw file, as the rest of `config` is in `resolve`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::raw::{RawBucket, RawCluster, RawLimits, RawServer};
use super::{ConfigError, invalid};

/// How the access log (tracing target `lifeboat::access`) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs, for people.
    Logfmt,
    Off,
}

/// A network (`10.0.0.0/8`, `::1/128`) whose `X-Forwarded-For`/`Forwarded` headers are
/// believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        let mask = match bits {
            0 => 0,
            b => u128::MAX << (128 - u32::from(b)),
        };
        net & mask == ip & mask
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[[buckets]]`: what anonymous clients may do in a bucket.
#[derive(Debug, Clone, Serialize)]
pub struct BucketRule {
    pub name: String,
    /// Anonymous GET and HEAD of its objects.
    pub public_read: bool,
    /// Anonymous ListObjects and ListObjectsV2.
    pub public_list: bool,
}

/// `[cluster]`: the other nodes in front of the same upstream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterConfig {
    /// Their admin API base URLs; each is told (`POST /storage/events`) of the changes this
    /// node makes upstream.
    pub peers: Vec<String>,
}

pub(super) fn resolve_cluster(
    raw: RawCluster,
    admin_token: bool,
) -> Result<ClusterConfig, ConfigError> {
    let peers: Vec<String> = raw
        .peers
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.trim_end_matches('/').to_owned())
        .collect();
    if let Some(p) = peers
        .iter()
        .find(|p| !(p.starts_with("http://") || p.starts_with("https://")))
    {
        return Err(invalid(
            "cluster.peers",
            format!("{p:?}: expected an admin API URL, http://host:port"),
        ));
    }
    if !peers.is_empty() && !admin_token {
        return Err(invalid(
            "cluster.peers",
            "peers authenticate with the admin bearer token: set server.admin_token_file (the \
             same token on every node)",
        ));
    }
    Ok(ClusterConfig { peers })
}

/// The network parts of `[server]`.
pub(super) struct NetworkSettings {
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) shutdown_grace: Duration,
    pub(super) trusted_proxies: Vec<Cidr>,
    pub(super) access_log: AccessLogFormat,
    pub(super) node_name: String,
}

/// The machine's hostname, the default node name ("lifeboat" when it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| valid_node_name(h))
        .unwrap_or_else(|| "lifeboat".to_owned())
}

/// A node name goes into a response header and a metrics label: 1 to 64 of
/// `A-Z a-z 0-9 . _ -`.
fn valid_node_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) fn resolve_network(raw: &mut RawServer) -> Result<NetworkSettings, ConfigError> {
    let tls_cert = raw.tls_cert.take();
    let tls_key = raw.tls_key.take();
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(invalid(
            "server.tls_cert",
            "tls_cert and tls_key go together: set both (PEM files) or neither",
        ));
    }
    let trusted_proxies = raw
        .trusted_proxies
        .take()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            Cidr::parse(c).ok_or_else(|| {
                invalid(
                    "server.trusted_proxies",
                    format!("{c:?} is not an IP address or CIDR (10.0.0.0/8, ::1/128)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let node_name = match raw.node_name.take() {
        None => hostname(),
        Some(n) if valid_node_name(&n) => n,
        Some(n) => {
            return Err(invalid(
                "server.node_name",
                format!("{n:?}: use 1 to 64 letters, digits, '.', '_' or '-'"),
            ));
        }
    };
    let access_log = match raw.access_log.take().as_deref() {
        None | Some("json") => AccessLogFormat::Json,
        Some("logfmt") => AccessLogFormat::Logfmt,
        Some("off") => AccessLogFormat::Off,
        Some(other) => {
            return Err(invalid(
                "server.access_log",
                format!("{other:?}: expected \"json\", \"logfmt\" or \"off\""),
            ));
        }
    };
    Ok(NetworkSettings {
        tls_cert,
        tls_key,
        shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds.unwrap_or(30)),
        trusted_proxies,
        access_log,
        node_name,
    })
}

/// The connection and rate limits of `[limits]`.
pub(super) struct ConnectionLimits {
    pub(super) idle_timeout: Duration,
    pub(super) max_connections: usize,
    pub(super) max_concurrent_streams: u32,
    pub(super) requests_per_second: u32,
    pub(super) request_burst: u32,
}

pub(super) fn resolve_connection_limits(l: &RawLimits) -> Result<ConnectionLimits, ConfigError> {
    let max_connections = l.max_connections.unwrap_or(4096);
    if max_connections == 0 {
        return Err(invalid("limits.max_connections", "must be at least 1"));
    }
    let max_concurrent_streams = l.max_concurrent_streams.unwrap_or(100);
    if max_concurrent_streams == 0 {
        return Err(invalid(
            "limits.max_concurrent_streams",
            "must be at least 1",
        ));
    }
    let requests_per_second = l.requests_per_second.unwrap_or(0);
    Ok(ConnectionLimits {
        idle_timeout: Duration::from_secs(l.idle_timeout_seconds.unwrap_or(60).max(1)),
        max_connections,
        max_concurrent_streams,
        requests_per_second,
        request_burst: l.request_burst.unwrap_or(requests_per_second),
    })
}

pub(super) fn resolve_buckets(raw: Vec<RawBucket>) -> Result<Vec<BucketRule>, ConfigError> {
    let mut rules: Vec<BucketRule> = Vec::new();
    for (i, b) in raw.into_iter().enumerate() {
        if b.name.is_empty() {
            return Err(invalid(&format!("buckets[{i}].name"), "must not be empty"));
        }
        if rules.iter().any(|r| r.name == b.name) {
            return Err(invalid(
                &format!("buckets[{i}].name"),
                format!("{:?} is listed twice", b.name),
            ));
        }
        rules.push(BucketRule {
            name: b.name,
            public_read: b.public_read.unwrap_or(false),
            public_list: b.public_list.unwrap_or(false),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_their_networks() {
        let c = |s| Cidr::parse(s).unwrap_or_else(|| panic!("{s}"));
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(c("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!c("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.1.1.1")));
        assert!(c("fd00::/8").contains(ip("fd12::1")));
        assert!(!c("fd00::/8").contains(ip("10.1.1.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
        assert_eq!(c("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }
}
