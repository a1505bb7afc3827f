//! The access log: one line per S3 request on the tracing target `lifeboat::access`, written by
//! its own layer (`AccessLayer`) as JSON or logfmt on stderr, apart from the diagnostics (which
//! never see the target). The line is written when the response body is done, so it has the
//! bytes sent and the whole duration.
//!
//! What a line holds is fixed here: never a header value, a query string or a signature; the
//! key is the decoded object key. The client IP is the peer's, or, from a peer in
//! `server.trusted_proxies`, the nearest untrusted address in `Forwarded` or
//! `X-Forwarded-For`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http::HeaderMap;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};

use crate::config::{AccessLogFormat, Cidr};

/// The tracing target of access lines.
pub const TARGET: &str = "lifeboat::access";

/// What is known of a request when its answer starts; `finish` writes the line.
pub struct AccessRecord {
    pub time: String,
    pub started: Instant,
    pub request_id: String,
    pub client: IpAddr,
    pub user: String,
    pub operation: &'static str,
    pub method: String,
    pub bucket: String,
    pub key: String,
    pub status: u16,
    pub bytes_in: u64,
    pub error: &'static str,
    pub cache: String,
    pub sync: String,
    /// `server.node_name`: which node answered.
    pub node: std::sync::Arc<str>,
}

impl AccessRecord {
    pub fn finish(self, bytes_out: u64) {
        tracing::info!(
            target: TARGET,
            time = %self.time,
            request_id = %self.request_id,
            node = %self.node,
            client_ip = %self.client,
            user = %self.user,
            operation = self.operation,
            method = %self.method,
            bucket = %self.bucket,
            key = %self.key,
            status = self.status,
            bytes_in = self.bytes_in,
            bytes_out,
            duration_ms = self.started.elapsed().as_millis() as u64,
            cache = %self.cache,
            sync = %self.sync,
            error = self.error,
        );
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
/// address in the forwarding chain that is not a trusted proxy (the leftmost when all are).
pub fn client_ip(remote: SocketAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = remote.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut client = peer;
    for ip in chain.iter().rev() {
        client = *ip;
        if !is_trusted(*ip) {
            break;
        }
    }
    client
}

/// The addresses of `Forwarded` (`for=`), or else of `X-Forwarded-For`, in order (client
/// first). An entry that is not an address (`unknown`, an obfuscated name) ends the chain
/// there: nothing to its left can be believed.
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded = values("forwarded");
    let entries: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .map(|e| {
                e.split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim().trim_matches('"')))
            })
            .collect()
    } else {
        values("x-forwarded-for")
            .iter()
            .map(|e| parse_node(e))
            .collect()
    };
    let mut chain = Vec::new();
    for e in entries.into_iter().rev() {
        match e {
            Some(ip) => chain.push(ip),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    s.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

/// Writes the events of `TARGET` as one line each.
pub struct AccessLayer {
    format: AccessLogFormat,
}

impl AccessLayer {
    pub fn new(format: AccessLogFormat) -> Self {
        Self { format }
    }
}

enum Value {
    Text(String),
    Number(u64),
}

#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), Value::Text(value.to_owned())));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), Value::Number(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), Value::Text(value.to_string())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() != "message" {
            self.0
                .push((field.name(), Value::Text(format!("{value:?}"))));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for AccessLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET || self.format == AccessLogFormat::Off {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = match self.format {
            AccessLogFormat::Json => json_line(&fields.0),
            _ => logfmt_line(&fields.0),
        };
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn json_line(fields: &[(&'static str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":");
        match value {
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Text(t) if t.is_empty() => out.push_str("null"),
            Value::Text(t) => out.push_str(&serde_json::Value::from(t.as_str()).to_string()),
        }
    }
    out.push('}');
    out
}

fn logfmt_line(fields: &[(&'static str, Value)]) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::Text(t) if t.is_empty() => continue,
            Value::Text(t) => t.clone(),
        };
        if !out.is_empty() {
            out.push(' ');
        }
        let plain = text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '=' | '\\'));
        if plain {
            let _ = write!(out, "{name}={text}");
        } else {
            let _ = write!(out, "{name}=\"");
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{{{:x}}}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = vec![Cidr::parse("10.0.0.0/8").expect("cidr")];
        let proxy: SocketAddr = "10.0.0.5:4000".parse().expect("addr");
        let stranger: SocketAddr = "203.0.113.9:4000".parse().expect("addr");
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 10.0.0.7")]);
        assert_eq!(client_ip(proxy, &xff, &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(stranger, &xff, &trusted), ip("203.0.113.9"));
        // A client that forges a header in front of the chain is not believed past the
        // first untrusted hop.
        let forged = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.1")]);
        assert_eq!(client_ip(proxy, &forged, &trusted), ip("198.51.100.1"));
        let fwd = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:80\";proto=https, for=10.0.0.8",
        )]);
        assert_eq!(client_ip(proxy, &fwd, &trusted), ip("2001:db8::1"));
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.8")]);
        assert_eq!(client_ip(proxy, &unknown, &trusted), ip("10.0.0.8"));
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn lines_escape_what_they_hold() {
        let fields = vec![
            ("key", Value::Text("a \"b\"\n=c".to_owned())),
            ("status", Value::Number(200)),
            ("error", Value::Text(String::new())),
        ];
        assert_eq!(
            json_line(&fields),
            r#"{"key":"a \"b\"\n=c","status":200,"error":null}"#
        );
        assert_eq!(logfmt_line(&fields), r#"key="a \"b\"\u{a}=c" status=200"#);
    }
}
