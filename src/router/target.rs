//! Host and path to bucket and key, before the operation is known: path-style
//! (`/bucket/key`) and virtual-hosted-style (`bucket.<domain>/key`) addressing as described in
//! "Virtual hosting of buckets" (`VirtualHosting.html`), and AWS's bucket naming rules.

use crate::auth::sigv4::{decode_path, uri_decode};

/// The router's decoding of a path part: the strict one (a path that fails it never gets here).
fn decode(part: &str) -> String {
    decode_path(part).unwrap_or_else(|_| uri_decode(part))
}

/// Bucket and key addressed by a request, before the operation is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The bucket came from the Host (virtual-hosted style), not from the path.
    pub virtual_host: bool,
}

impl Target {
    /// The `<Resource>` of an error response.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".to_owned(),
        }
    }
}

/// Splits host and path into bucket and key. `host` may carry a port; `domains` are the configured
/// base domains for virtual-hosted-style requests.
pub fn target(host: Option<&str>, raw_path: &str, domains: &[String]) -> Target {
    let host = host.map(strip_port).map(|h| h.to_ascii_lowercase());
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(host) = host {
        for d in domains {
            if let Some(bucket) = host
                .strip_suffix(d.as_str())
                .and_then(|b| b.strip_suffix('.'))
                && !bucket.is_empty()
            {
                let key = decode(path);
                return Target {
                    bucket: Some(bucket.to_owned()),
                    key: (!key.is_empty()).then_some(key),
                    virtual_host: true,
                };
            }
        }
    }
    match path.split_once('/') {
        None if path.is_empty() => Target {
            bucket: None,
            key: None,
            virtual_host: false,
        },
        None => Target {
            bucket: Some(decode(path)),
            key: None,
            virtual_host: false,
        },
        Some((b, k)) => {
            let key = decode(k);
            Target {
                bucket: Some(decode(b)),
                key: (!key.is_empty()).then_some(key),
                virtual_host: false,
            }
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: [::1]:9000
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// AWS's naming rules for general purpose buckets (`bucketnamingrules.html`): 3 to 63
/// characters of `a-z 0-9 . -`, a letter or digit at each end, no `..`, not an IPv4 address, and
/// none of the reserved prefixes and suffixes.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    if !b.iter().all(|&c| allowed(c)) {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    const BAD_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const BAD_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    !BAD_PREFIXES.iter().any(|p| name.starts_with(p))
        && !BAD_SUFFIXES.iter().any(|s| name.ends_with(s))
}
