//! `lifeboat bench`: an S3 load generator. It signs its own requests (SigV4 with the crate's own
//! signing functions, as the upstream client does), or sends them by presigned URL or plain,
//! from `--concurrency` workers over one keep-alive pool (the hyper client of upstream/), and
//! reports ops/s, MiB/s, latency percentiles and failures by kind, as text or one JSON object.
//! It speaks plain S3, so the same tool measures an upstream (or nginx serving files) directly;
//! `bench/compare` drives it (README, "Benchmarks").
//!
//! - `target`: the endpoint, credentials and keys, and each operation as an HTTP request;
//! - `body`: PUT bodies, one buffer generated once and shared;
//! - `load`: the workers, and what each answer counts as;
//! - `report`: the summary (percentiles, errors by kind), as text or JSON.

mod body;
mod load;
mod report;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use body::Payload;
use load::{Plan, Stop};
pub use report::{Latency, Summary, human_size};
use target::{Auth, Credentials, Kind, Target, TargetSpec};

/// A run's length when neither `--duration` nor `--requests` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// How long presigned URLs of a run of `--requests` (whose length is unknown) stay valid.
const PRESIGN_FOR_REQUESTS: Duration = Duration::from_secs(86_400);

/// What the benchmark does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Put,
    Get,
    Head,
    /// ListObjectsV2 pages under the prefix.
    List,
    /// Of every 20 requests: 14 GETs, 4 PUTs, a HEAD and a LIST.
    Mixed,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Head => "head",
            Op::List => "list",
            Op::Mixed => "mixed",
        }
    }

    /// Whether the objects must exist before the run.
    fn reads(self) -> bool {
        self != Op::Put
    }
}

/// `lifeboat bench`'s flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The S3 endpoint, e.g. http://127.0.0.1:9000 (path-style addressing).
    #[arg(long)]
    pub endpoint: String,
    /// Access key (default: AWS_ACCESS_KEY_ID).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (default: AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// The region requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(long)]
    pub bucket: String,
    /// Keys are PREFIX followed by an 8-digit index.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    #[arg(long, value_enum, default_value = "get")]
    pub op: Op,
    /// Object size: 4KiB, 1MiB, 64MiB, 5GiB, 1000…
    #[arg(long, default_value = "4KiB", value_parser = crate::config::parse_size)]
    pub size: u64,
    /// How many distinct keys: request N uses key N % objects.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub objects: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How long to run: 10s, 500ms, 2m (default 10s).
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Send this many requests, then stop.
    #[arg(long)]
    pub requests: Option<u64>,
    /// GET and HEAD by presigned URL (made before the run) instead of a signed header.
    #[arg(long)]
    pub presigned: bool,
    /// No authentication at all (a public bucket, or files served by nginx).
    #[arg(long, conflicts_with = "presigned")]
    pub unsigned: bool,
    /// Sign PUT bodies as UNSIGNED-PAYLOAD instead of by their SHA-256.
    #[arg(long)]
    pub unsigned_payload: bool,
    /// An extra header for every request, signed, e.g. "x-lifeboat-write: back" (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Do not upload the objects before a get, head, list or mixed run (they exist already).
    #[arg(long)]
    pub no_prepare: bool,
    /// Create the bucket first (one that exists already is fine).
    #[arg(long)]
    pub create_bucket: bool,
    /// A request that takes longer counts as an error (`timeout`).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// PEM certificates to trust for an https endpoint, besides the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad --endpoint {0}")]
    Endpoint(String),
    #[error(
        "no credentials: give --access-key and --secret-key, set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or send --unsigned requests"
    )]
    NoCredentials,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot create the bucket: {0}")]
    CreateBucket(String),
    #[error("cannot upload the objects first: {0}")]
    Prepare(String),
    #[error("{0}")]
    Internal(String),
}

/// Runs the benchmark: the bucket (`--create-bucket`), the objects (unless `--no-prepare`),
/// then the timed run, summarised.
pub async fn run(args: &BenchArgs) -> Result<Summary, BenchError> {
    let stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::After(n),
        (None, d) => Stop::At(d.unwrap_or(DEFAULT_DURATION)),
    };
    let auth = match args.unsigned {
        true => Auth::Unsigned,
        false => Auth::Signed {
            credentials: credentials(args)?,
            presigned: args.presigned,
        },
    };
    let prepare = args.op.reads() && !args.no_prepare;
    let payload = Payload::new(args.size);
    let puts = prepare || matches!(args.op, Op::Put | Op::Mixed);
    let payload_hash = if args.unsigned || args.unsigned_payload || !puts {
        "UNSIGNED-PAYLOAD".to_owned()
    } else {
        let p = payload.clone();
        tokio::task::spawn_blocking(move || p.sha256_hex())
            .await
            .map_err(|e| BenchError::Internal(e.to_string()))?
    };
    let target = Arc::new(Target::new(TargetSpec {
        endpoint: args.endpoint.clone(),
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        auth,
        headers: args.headers.clone(),
        payload,
        payload_hash,
        objects: args.objects,
        lasts: match stop {
            Stop::At(d) => d,
            Stop::After(_) => PRESIGN_FOR_REQUESTS,
        },
    })?);
    let client: load::HttpClient =
        crate::upstream::https_client(args.ca_file.as_deref(), "--ca-file")
            .map_err(BenchError::Client)?;
    if args.create_bucket {
        create_bucket(&client, &target).await?;
    }
    let plan = |op, stop| Plan {
        op,
        objects: args.objects,
        concurrency: usize::from(args.concurrency),
        stop,
        timeout: args.timeout,
    };
    if prepare {
        let t = load::run(
            &client,
            &target,
            &plan(Op::Put, Stop::After(args.objects)),
            "prepare",
        )
        .await?;
        if let Some((kind, n)) = t.errors.iter().next() {
            return Err(BenchError::Prepare(format!(
                "{} of {} PUTs failed ({n} x {kind})",
                t.failed(),
                args.objects
            )));
        }
    }
    let tally = load::run(&client, &target, &plan(args.op, stop), args.op.name()).await?;
    Ok(Summary::new(
        &report::Setting {
            op: args.op,
            endpoint: &args.endpoint,
            bucket: &args.bucket,
            size: args.size,
            objects: args.objects,
            concurrency: usize::from(args.concurrency),
            auth: match (args.unsigned, args.presigned) {
                (true, _) => "unsigned",
                (false, true) => "presigned",
                (false, false) => "sigv4",
            },
        },
        &tally,
    ))
}

fn credentials(args: &BenchArgs) -> Result<Credentials, BenchError> {
    let from = |flag: &Option<String>, var: &str| {
        flag.clone()
            .or_else(|| std::env::var(var).ok())
            .filter(|s| !s.is_empty())
    };
    match (
        from(&args.access_key, "AWS_ACCESS_KEY_ID"),
        from(&args.secret_key, "AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(ak), Some(sk)) => Ok(Credentials::new(
            ak,
            crate::secret::Secret::new(sk),
            args.region.clone(),
        )),
        _ => Err(BenchError::NoCredentials),
    }
}

/// CreateBucket; a bucket that exists already is fine.
async fn create_bucket(client: &load::HttpClient, target: &Target) -> Result<(), BenchError> {
    let req = target
        .request(Kind::CreateBucket, 0)
        .map_err(BenchError::CreateBucket)?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| BenchError::CreateBucket(e.to_string()))?;
    if resp.status().is_success() {
        return Ok(());
    }
    let error = load::http_error(resp).await;
    match error.as_str() {
        "HTTP 409 BucketAlreadyOwnedByYou" | "HTTP 409 BucketAlreadyExists" => Ok(()),
        _ => Err(BenchError::CreateBucket(error)),
    }
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5s`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("not a duration: {s:?}"))
}

/// `name: value` as a lower-case name and the trimmed value.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected \"name: value\", got {s:?}"))?;
    let name = name.trim().to_ascii_lowercase();
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("not a header name: {name:?}"))?;
    Ok((name, value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes_take_units() {
        use crate::config::parse_size;
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4 lots").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Lifeboat-Write: back"),
            Ok(("x-lifeboat-write".to_owned(), "back".to_owned()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn flags_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = Cli::try_parse_from([
            "bench",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--bucket",
            "b",
            "--op",
            "put",
            "--size",
            "1MiB",
            "--duration",
            "2s",
            "--header",
            "x-lifeboat-write: back",
        ])
        .expect("flags");
        assert_eq!(cli.bench.op, Op::Put);
        assert_eq!(cli.bench.size, 1 << 20);
        assert_eq!(cli.bench.duration, Some(Duration::from_secs(2)));
        assert_eq!(cli.bench.concurrency, 16);
        let both = Cli::try_parse_from([
            "bench",
            "--endpoint",
            "e",
            "--bucket",
            "b",
            "--duration",
            "1s",
            "--requests",
            "5",
        ]);
        assert!(both.is_err());
    }
}
