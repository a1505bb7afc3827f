//! `lifeboat sync [--bucket B] [--prefix P] [--rate 20MiB/s] [--dry-run]`: queues the running
//! server's local-only objects for the upstream (`POST /storage/sync`) and follows the
//! replication to the end (`GET /storage/sync`): a progress bar on a terminal, a line every
//! few seconds otherwise, and a summary (objects, bytes, skipped, failed, time). Run again
//! after a crash or a stop, it picks up where the outbox left off.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use super::cli::{CliError, call_json};
use crate::config::Config;

const POLL: Duration = Duration::from_millis(250);
const LOG_EVERY: Duration = Duration::from_secs(5);

/// What to sync.
pub struct SyncArgs<'a> {
    pub bucket: Option<&'a str>,
    pub prefix: Option<&'a str>,
    /// Bytes per second; `None` keeps `upstream.replication_rate`.
    pub rate: Option<u64>,
    pub dry_run: bool,
}

/// `20MiB/s`, `20MiB`, `1000000` as bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    crate::config::parse_size(s.trim().trim_end_matches("/s"))
}

fn n(doc: &Value, pointer: &str) -> u64 {
    doc.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// Runs the sync to its end: the summary, and whether nothing failed.
pub async fn run(
    config: &Config,
    base: &str,
    args: &SyncArgs<'_>,
    ca_file: Option<&std::path::Path>,
) -> Result<(String, bool), CliError> {
    let mut body = json!({ "dry_run": args.dry_run });
    if let Some(b) = args.bucket {
        body["bucket"] = json!(b);
    }
    if let Some(p) = args.prefix {
        body["prefix"] = json!(p);
    }
    if let Some(r) = args.rate {
        body["rate"] = json!(r);
    }
    let started = Instant::now();
    call_json(
        config,
        base,
        Method::POST,
        "/storage/sync",
        Some(body.to_string().into_bytes()),
        ca_file,
    )
    .await?;
    let bar = super::cli::progress_bar();
    let mut last_line = Instant::now();
    let doc = loop {
        let doc = call_json(config, base, Method::GET, "/storage/sync", None, ca_file).await?;
        let done = n(&doc, "/sync/uploaded") + n(&doc, "/sync/skipped");
        let pending = n(&doc, "/remaining/pending");
        match &bar {
            Some(b) => {
                b.set_length(done + pending);
                b.set_position(done);
                b.set_message(format!(
                    "{} MiB uploaded",
                    n(&doc, "/sync/uploaded_bytes") >> 20
                ));
            }
            None if last_line.elapsed() >= LOG_EVERY => {
                eprintln!("sync: {done} done, {pending} to go");
                last_line = Instant::now();
            }
            None => {}
        }
        let queueing = doc.pointer("/sync/queueing") == Some(&Value::Bool(true));
        if !queueing && (args.dry_run || pending == 0) {
            break doc;
        }
        tokio::time::sleep(POLL).await;
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let failed = n(&doc, "/remaining/failed");
    let summary = if args.dry_run {
        format!(
            "dry run: {} local-only objects ({} bytes) would be pushed upstream",
            n(&doc, "/sync/queued"),
            n(&doc, "/sync/queued_bytes")
        )
    } else {
        format!(
            "sync: {} objects queued ({} bytes); {} uploaded ({} bytes), {} skipped (already upstream), {failed} failed, in {:.1} s",
            n(&doc, "/sync/queued"),
            n(&doc, "/sync/queued_bytes"),
            n(&doc, "/sync/uploaded"),
            n(&doc, "/sync/uploaded_bytes"),
            n(&doc, "/sync/skipped"),
            started.elapsed().as_secs_f64()
        )
    };
    let error = doc.pointer("/sync/error").and_then(Value::as_str);
    let summary = match error {
        Some(e) => format!("{summary}; stopped: {e}"),
        None => summary,
    };
    Ok((summary, failed == 0 && error.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_sizes_per_second() {
        assert_eq!(parse_rate("20MiB/s"), Ok(20 << 20));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_rate("fast").is_err());
    }
}
