//! `lifeboat warm s3://bucket/prefix`: starts a cache warm-up on the running server (or joins
//! the one running for the same prefix) and follows it to the end: a progress bar on a
//! terminal (`indicatif`), a log line every few seconds otherwise, and a summary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cli::{CliError, call_json};
use crate::config::Config;

/// How often the warm-up's status is read, and how often a line is logged without a terminal.
const POLL: Duration = Duration::from_millis(250);
const LOG_EVERY: Duration = Duration::from_secs(5);

/// `s3://bucket/prefix` (or `bucket/prefix`) as (bucket, prefix).
pub fn parse_target(target: &str) -> Option<(String, String)> {
    let rest = target.strip_prefix("s3://").unwrap_or(target);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), prefix.to_owned()))
}

fn n(doc: &Value, field: &str) -> u64 {
    doc[field].as_u64().unwrap_or(0)
}

/// Runs the warm-up to its end; the summary line, and whether every object is cached.
pub async fn run(
    config: &Config,
    base: &str,
    bucket: &str,
    prefix: &str,
    pin: bool,
    ca_file: Option<&std::path::Path>,
) -> Result<(String, bool), CliError> {
    let body = json!({ "bucket": bucket, "prefix": prefix, "pin": pin });
    match call_json(
        config,
        base,
        http::Method::POST,
        "/storage/warm",
        Some(body.to_string().into_bytes()),
        ca_file,
    )
    .await
    {
        Ok(_) => {}
        // One is running already: follow it if it is this prefix.
        Err(CliError::Refused { status: 409, body }) => {
            let running: Value = serde_json::from_str(&body).unwrap_or_default();
            let w = &running["warm"];
            if w["bucket"] != bucket || w["prefix"] != prefix {
                return Err(CliError::Refused { status: 409, body });
            }
        }
        Err(e) => return Err(e),
    }
    let started = Instant::now();
    let bar = super::cli::progress_bar();
    let mut last_line = Instant::now();
    let doc = loop {
        let status = call_json(
            config,
            base,
            http::Method::GET,
            "/storage/warm",
            None,
            ca_file,
        )
        .await?;
        let w = status["warm"].clone();
        let done = n(&w, "fetched") + n(&w, "skipped") + n(&w, "failed");
        match &bar {
            Some(b) => {
                b.set_length(n(&w, "found"));
                b.set_position(done);
                b.set_message(format!("{} MiB fetched", n(&w, "fetched_bytes") >> 20));
            }
            None if last_line.elapsed() >= LOG_EVERY => {
                eprintln!(
                    "warm-up of s3://{bucket}/{prefix}: {done} of {} objects done",
                    n(&w, "found")
                );
                last_line = Instant::now();
            }
            None => {}
        }
        if w["running"] == false {
            break w;
        }
        tokio::time::sleep(POLL).await;
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let failed = n(&doc, "failed");
    let mut summary = format!(
        "warm-up of s3://{bucket}/{prefix}: {} fetched ({} bytes), {} already cached, {failed} failed, in {:.1} s",
        n(&doc, "fetched"),
        n(&doc, "fetched_bytes"),
        n(&doc, "skipped"),
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = doc["error"].as_str() {
        summary.push_str(&format!("; stopped early: {e}"));
    }
    Ok((summary, failed == 0 && doc["error"].is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_bucket_and_a_prefix() {
        assert_eq!(
            parse_target("s3://media/videos/2026"),
            Some(("media".into(), "videos/2026".into()))
        );
        assert_eq!(
            parse_target("s3://media"),
            Some(("media".into(), String::new()))
        );
        assert_eq!(parse_target("media/x"), Some(("media".into(), "x".into())));
        assert_eq!(parse_target("s3://"), None);
    }
}
