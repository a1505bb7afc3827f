//! The load itself: `concurrency` workers over one keep-alive pool, each taking the next
//! request number until the run's end (a count of requests, or a deadline), and what every
//! answer counts as: its latency and bytes when it succeeded, else an error of one kind (the
//! HTTP status with the S3 code of its body, a timeout, or an I/O failure). Response bodies
//! are read to their end and dropped, counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::body::BenchBody;
use super::target::{Kind, Target};
use super::{BenchError, Op};

pub(super) type HttpClient = Client<HttpsConnector<HttpConnector>, BenchBody>;

/// Latencies are recorded in microseconds, from 1 µs to an hour, to 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// How often the progress line is redrawn.
const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stop {
    After(u64),
    At(Duration),
}

/// One run: which requests, how many at once, until when.
pub(super) struct Plan {
    pub(super) op: Op,
    pub(super) objects: u64,
    pub(super) concurrency: usize,
    pub(super) stop: Stop,
    pub(super) timeout: Duration,
}

/// The kind of request number `n` (the key is `n % objects`): `mixed` is, of every 20
/// requests, 14 GETs, 4 PUTs, a HEAD and a LIST.
pub(super) fn kind_of(op: Op, n: u64) -> Kind {
    match op {
        Op::Put => Kind::Put,
        Op::Get => Kind::Get,
        Op::Head => Kind::Head,
        Op::List => Kind::List,
        Op::Mixed => match n % 20 {
            0..=13 => Kind::Get,
            14..=17 => Kind::Put,
            18 => Kind::Head,
            _ => Kind::List,
        },
    }
}

/// What a run measured.
pub(super) struct Tally {
    /// Latencies of the requests that succeeded, in µs.
    pub(super) latency: Histogram<u64>,
    pub(super) ok: u64,
    /// Body bytes sent (PUT) and received (GET, LIST) by the requests that succeeded.
    pub(super) bytes: u64,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) elapsed: Duration,
}

impl Tally {
    pub(super) fn new() -> Result<Self, BenchError> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .map_err(|e| BenchError::Internal(e.to_string()))?,
            ok: 0,
            bytes: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        })
    }

    fn merge(&mut self, other: Tally) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.bytes += other.bytes;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    pub(super) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Counters the progress line reads while the workers run.
#[derive(Default)]
struct Live {
    next: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

/// Runs `plan` against `target`; `label` names it on the progress line (on a terminal only).
pub(super) async fn run(
    client: &HttpClient,
    target: &Arc<Target>,
    plan: &Plan,
    label: &str,
) -> Result<Tally, BenchError> {
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let bar = progress_bar(plan.stop);
    let ticker = bar.clone().map(|bar| {
        let live = Arc::clone(&live);
        let label = label.to_owned();
        let stop = plan.stop;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_TICK).await;
                draw(&bar, &live, &label, stop, started.elapsed());
            }
        })
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let worker = Worker {
            client: client.clone(),
            target: Arc::clone(target),
            live: Arc::clone(&live),
            op: plan.op,
            objects: plan.objects.max(1),
            stop: plan.stop,
            timeout: plan.timeout,
            started,
        };
        workers.spawn(worker.run(Tally::new()?));
    }
    let mut total = Tally::new()?;
    while let Some(done) = workers.join_next().await {
        total.merge(done.map_err(|e| BenchError::Internal(e.to_string()))?);
    }
    total.elapsed = started.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(total)
}

struct Worker {
    client: HttpClient,
    target: Arc<Target>,
    live: Arc<Live>,
    op: Op,
    objects: u64,
    stop: Stop,
    timeout: Duration,
    started: Instant,
}

impl Worker {
    async fn run(self, mut tally: Tally) -> Tally {
        loop {
            let n = self.live.next.fetch_add(1, Ordering::Relaxed);
            let more = match self.stop {
                Stop::After(count) => n < count,
                Stop::At(at) => self.started.elapsed() < at,
            };
            if !more {
                return tally;
            }
            let kind = kind_of(self.op, n);
            let began = Instant::now();
            let outcome =
                match tokio::time::timeout(self.timeout, self.one(kind, n % self.objects)).await {
                    Ok(r) => r,
                    Err(_) => Err("timeout".to_owned()),
                };
            match outcome {
                Ok(bytes) => {
                    tally
                        .latency
                        .saturating_record(began.elapsed().as_micros() as u64);
                    tally.ok += 1;
                    tally.bytes += bytes;
                    self.live.ok.fetch_add(1, Ordering::Relaxed);
                    self.live.bytes.fetch_add(bytes, Ordering::Relaxed);
                }
                Err(kind) => {
                    *tally.errors.entry(kind).or_default() += 1;
                    self.live.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// One request: the body bytes it moved, or the kind of its failure.
    async fn one(&self, kind: Kind, index: u64) -> Result<u64, String> {
        let req = self
            .target
            .request(kind, index)
            .map_err(|e| format!("local: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| client_error(&e))?;
        if !resp.status().is_success() {
            return Err(http_error(resp).await);
        }
        let mut body = resp.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| io_error("body", &e))?;
            if let Some(d) = frame.data_ref() {
                received += d.len() as u64;
            }
        }
        Ok(match kind {
            Kind::Put => self.target.payload().len(),
            _ => received,
        })
    }
}

/// An error answer as `HTTP <status> <S3 code>` (the code from its XML body, when it has one).
pub(super) async fn http_error(resp: http::Response<hyper::body::Incoming>) -> String {
    let status = resp.status().as_u16();
    match crate::upstream::error_from(resp).await.code() {
        Some(code) if !code.starts_with("HTTP") => format!("HTTP {status} {code}"),
        _ => format!("HTTP {status}"),
    }
}

/// A failure to get an answer: `connect`, or the I/O error kind beneath it.
fn client_error(e: &hyper_util::client::legacy::Error) -> String {
    if e.is_connect() {
        return "io: connect".to_owned();
    }
    io_error("request", e)
}

/// `io: <kind>` of the first I/O error in `e`'s chain, else `io: <what>`.
fn io_error(what: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return format!("io: {what}: {:?}", io.kind());
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return format!("io: {what}: connection closed early");
        }
        source = err.source();
    }
    format!("io: {what}")
}

/// A progress bar when stdout is a terminal, drawn on stderr (which indicatif leaves alone
/// when it is not a terminal either).
fn progress_bar(stop: Stop) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal().then(|| {
        let len = match stop {
            Stop::After(n) => n,
            Stop::At(d) => d.as_millis() as u64,
        };
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

fn draw(bar: &indicatif::ProgressBar, live: &Live, label: &str, stop: Stop, elapsed: Duration) {
    let ok = live.ok.load(Ordering::Relaxed);
    let failed = live.failed.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mib = live.bytes.load(Ordering::Relaxed) as f64 / secs / f64::from(1 << 20);
    bar.set_position(match stop {
        Stop::After(_) => ok + failed,
        Stop::At(_) => elapsed.as_millis() as u64,
    });
    bar.set_message(format!(
        "{label}: {ok} ok, {:.0}/s, {mib:.1} MiB/s, {failed} errors",
        ok as f64 / secs
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_is_mostly_gets() {
        let kinds: Vec<Kind> = (0..20).map(|n| kind_of(Op::Mixed, n)).collect();
        let count = |k| kinds.iter().filter(|&&x| x == k).count();
        assert_eq!(
            (
                count(Kind::Get),
                count(Kind::Put),
                count(Kind::Head),
                count(Kind::List)
            ),
            (14, 4, 1, 1)
        );
        assert_eq!(kind_of(Op::Put, 19), Kind::Put);
    }

    #[test]
    fn tallies_add_up() {
        let mut a = Tally::new().expect("tally");
        a.ok = 2;
        a.bytes = 10;
        a.latency.saturating_record(100);
        a.errors.insert("HTTP 503 SlowDown".into(), 1);
        let mut b = Tally::new().expect("tally");
        b.ok = 1;
        b.latency.saturating_record(300);
        b.errors.insert("HTTP 503 SlowDown".into(), 2);
        b.errors.insert("io: connect".into(), 1);
        a.merge(b);
        assert_eq!((a.ok, a.bytes, a.failed()), (3, 10, 4));
        assert_eq!(a.errors["HTTP 503 SlowDown"], 3);
        assert_eq!(a.latency.len(), 2);
    }

    #[test]
    fn io_errors_are_named_by_kind() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(io_error("body", &e), "io: body: ConnectionReset");
    }
}
