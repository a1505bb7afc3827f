//! `lifeboat status`: the status document for a person (a short table, the outbox and the
//! circuit first) or raw (`--json`). It calls the admin API with the bearer token when one is
//! configured, else with a presigned (SigV4) URL of the first admin user in the config.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::auth::presign::{Presign, Signer, presign_url};
use crate::config::Config;

/// How long the CLI waits for the admin API.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("bad admin URL {0:?}: expected http://host:port")]
    BadUrl(String),
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the admin API answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the admin API answered something that is not JSON: {0}")]
    NotJson(String),
}

/// The admin API's base URL: `--admin`, else `server.admin_address`.
pub fn base_url(config: &Config, flag: Option<&str>) -> String {
    if let Some(u) = flag {
        return u.trim_end_matches('/').to_owned();
    }
    let mut a = config.server.admin_address;
    if a.ip().is_unspecified() {
        a.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    let scheme = match config.server.tls_cert {
        Some(_) => "https",
        None => "http",
    };
    format!("{scheme}://{a}")
}

/// The progress bar of a long admin job followed from the command line (`lifeboat warm`,
/// `lifeboat sync`): on a terminal only; `None` when stderr is piped (the job logs lines).
pub fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} objects {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

/// GETs `path` from the admin API and parses the JSON answer.
/// `ca_file` adds trusted certificates for an https admin URL (the system roots are trusted).
pub async fn get_json(
    config: &Config,
    base: &str,
    path: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Value, CliError> {
    call_json(config, base, http::Method::GET, path, None, ca_file).await
}

/// Sends `method` to `path` of the admin API, with a JSON `body` if any, and parses the JSON
/// answer. Authenticated with the bearer token when one is configured, else with a presigned
/// URL of the first admin user (the body is not signed: `UNSIGNED-PAYLOAD`).
pub async fn call_json(
    config: &Config,
    base: &str,
    method: http::Method,
    path: &str,
    body: Option<Vec<u8>>,
    ca_file: Option<&std::path::Path>,
) -> Result<Value, CliError> {
    let (scheme, authority) = base
        .split_once("://")
        .ok_or_else(|| CliError::BadUrl(base.to_owned()))?;
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let mut req = http::Request::builder().method(method.clone());
    let url = match (
        &config.server.admin_token,
        config.users.iter().find(|u| u.admin),
    ) {
        (Some(token), _) => {
            req = req.header("authorization", format!("Bearer {}", token.expose()));
            format!("{base}{path}")
        }
        (None, Some(user)) => presign_url(
            &Signer {
                access_key: &user.access_key,
                secret_key: &user.secret_key,
                region: config.server.region(),
            },
            Presign {
                method: method.as_str(),
                scheme,
                host: authority,
                path: path_only,
                query: crate::auth::sigv4::parse_query(query),
                headers: Vec::new(),
                expires: Duration::from_secs(60),
                now: SystemTime::now(),
            },
        ),
        (None, None) => format!("{base}{path}"),
    };
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .uri(&url)
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| CliError::BadUrl(base.to_owned()))?;
    let unreachable = |reason: String| CliError::Unreachable {
        url: base.to_owned(),
        reason,
    };
    let client = crate::upstream::https_client(ca_file, "--ca-file").map_err(unreachable)?;
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| unreachable("no answer in 10 s".into()))?
        .map_err(|e| unreachable(format!("{e:?}")))?;
    let status = resp.status();
    let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
        .await
        .map_err(|_| unreachable("the answer stalled".into()))?
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(CliError::Refused {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    serde_json::from_slice(&body).map_err(|e| CliError::NotJson(e.to_string()))
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// The status document as a short table for a terminal.
pub fn table(doc: &Value) -> String {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    let mode = s(&doc["mode"]);
    let policies = if mode == "gateway" {
        format!(" (write {}, read {})", s(&doc["write"]), s(&doc["read"]))
    } else {
        String::new()
    };
    row(
        "lifeboat",
        format!(
            "{} · {mode}{policies} · up {}",
            s(&doc["version"]),
            duration(n(&doc["uptime_seconds"]))
        ),
    );
    let depth = n(&doc["outbox"]["depth"]);
    row(
        "outbox",
        if depth == 0 {
            "empty".to_owned()
        } else {
            format!(
                "{depth} queued, oldest {}",
                duration(n(&doc["outbox"]["oldest_age_seconds"]))
            )
        },
    );
    let up = &doc["upstream"];
    if up.is_null() {
        row("upstream", "none (local-only)".to_owned());
    } else {
        let reach = match up["reachable"].as_bool() {
            Some(true) => "reachable",
            Some(false) => "UNREACHABLE",
            None => "not contacted yet",
        };
        let latency = up["latency_ms"]
            .as_u64()
            .map(|l| format!(" · {l} ms"))
            .unwrap_or_default();
        row(
            "upstream",
            format!(
                "{} · circuit {} · {reach}{latency}",
                s(&up["endpoint"]),
                s(&up["circuit"])
            ),
        );
        if let Some(e) = up["last_error"].as_str() {
            row("", format!("last error: {e}"));
        }
    }
    let dead = n(&doc["dead_letters"]["count"]);
    row(
        "dead letters",
        match doc["dead_letters"]["oldest"].as_str() {
            Some(t) if dead > 0 => {
                format!("{dead} (oldest {t}) — see `lifeboat dead-letters list`")
            }
            _ => dead.to_string(),
        },
    );
    let local = &doc["local"];
    let free = local["free_bytes"]
        .as_u64()
        .map(|f| format!(" · {} free on disk", bytes(f)))
        .unwrap_or_default();
    row(
        "local",
        format!(
            "{} · {} used of {} budget{free}",
            s(&local["data_dir"]),
            bytes(n(&local["bytes_used"])),
            bytes(n(&local["max_bytes"]))
        ),
    );
    let o = &local["objects"];
    row(
        "objects",
        format!(
            "local-only {} · pending {} · synced {} · failed {}",
            n(&o["local_only"]),
            n(&o["pending"]),
            n(&o["synced"]),
            n(&o["failed"])
        ),
    );
    if let Some(list) = doc["buckets"].as_array() {
        for b in list {
            let o = &b["objects"];
            let total: u64 = ["local_only", "pending", "synced", "failed"]
                .iter()
                .map(|k| n(&o[*k]))
                .sum();
            row(
                "",
                format!(
                    "{}: {total} objects (pending {}, failed {})",
                    s(&b["name"]),
                    n(&o["pending"]),
                    n(&o["failed"])
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_puts_the_outbox_and_circuit_first() {
        let doc = serde_json::json!({
            "version": "0.1.0", "uptime_seconds": 3725, "mode": "gateway",
            "write": "through", "read": "local-first",
            "outbox": {"depth": 3, "oldest_age_seconds": 75},
            "upstream": {"endpoint": "http://up", "circuit": "open", "reachable": false,
                         "latency_ms": null, "last_error": "connect refused"},
            "dead_letters": {"count": 0, "oldest": null},
            "local": {"data_dir": "/d", "bytes_used": 2048, "max_bytes": 1073741824,
                      "free_bytes": 10, "objects": {"local_only": 0, "pending": 3, "synced": 1, "failed": 0}},
        });
        let t = table(&doc);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("gateway (write through, read local-first) · up 1h02m"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("outbox") && lines[1].contains("3 queued, oldest 1m15s"),
            "{t}"
        );
        assert!(lines[2].contains("circuit open · UNREACHABLE"), "{t}");
        assert!(t.contains("2.0 KiB used of 1.0 GiB budget"), "{t}");
    }
}
