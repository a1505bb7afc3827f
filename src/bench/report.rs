//! The summary of a run: ops/s, MiB/s, latency percentiles of the requests that succeeded, and
//! the failures counted by kind; as a few lines of text, or as one JSON object (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Op;
use super::load::Tally;

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From a histogram of microseconds; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// What `lifeboat bench` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub op: Op,
    pub endpoint: String,
    pub bucket: String,
    /// Object size in bytes.
    pub size: u64,
    pub objects: u64,
    pub concurrency: usize,
    /// `sigv4`, `presigned` or `unsigned`.
    pub auth: &'static str,
    pub elapsed_s: f64,
    /// Requests that got an answer or failed (`ok + errors`).
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Body bytes moved by the requests that succeeded.
    pub bytes: u64,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub latency_ms: Latency,
}

/// The run's settings a summary repeats.
pub(super) struct Setting<'a> {
    pub(super) op: Op,
    pub(super) endpoint: &'a str,
    pub(super) bucket: &'a str,
    pub(super) size: u64,
    pub(super) objects: u64,
    pub(super) concurrency: usize,
    pub(super) auth: &'static str,
}

impl Summary {
    pub(super) fn new(s: &Setting<'_>, t: &Tally) -> Self {
        let secs = t.elapsed.as_secs_f64();
        let per_s = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let errors = t.failed();
        Self {
            op: s.op,
            endpoint: s.endpoint.to_owned(),
            bucket: s.bucket.to_owned(),
            size: s.size,
            objects: s.objects,
            concurrency: s.concurrency,
            auth: s.auth,
            elapsed_s: secs,
            requests: t.ok + errors,
            ok: t.ok,
            errors,
            errors_by_kind: t.errors.clone(),
            bytes: t.bytes,
            ops_per_s: per_s(t.ok as f64),
            mib_per_s: per_s(t.bytes as f64 / f64::from(1 << 20)),
            latency_ms: Latency::of(&t.latency),
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "{} {} x {} objects, concurrency {}, {} ({}), {:.1} s\n",
            self.op.name(),
            human_size(self.size),
            self.objects,
            self.concurrency,
            self.endpoint,
            self.auth,
            self.elapsed_s
        );
        let _ = writeln!(
            out,
            "  ops/s    {}  ({} ok, {} errors)",
            rate(self.ops_per_s),
            self.ok,
            self.errors
        );
        let _ = writeln!(out, "  MiB/s    {:.1}", self.mib_per_s);
        let _ = writeln!(
            out,
            "  latency  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        );
        for (kind, n) in &self.errors_by_kind {
            let _ = writeln!(out, "  error    {n} x {kind}");
        }
        out
    }
}

/// A rate to three significant figures at least: `4276`, `871.4`, `21.35`, `0.014`.
fn rate(x: f64) -> String {
    match x {
        x if x >= 1000.0 => format!("{x:.0}"),
        x if x >= 100.0 => format!("{x:.1}"),
        x if x >= 1.0 => format!("{x:.2}"),
        x => format!("{x:.3}"),
    }
}

/// `4 KiB`, `1 MiB`, `1.5 GiB`, `100 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        for ms in 1..=100u64 {
            h.record(ms * 1000).expect("record");
        }
        let l = Latency::of(&h);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.01;
        assert!(near(l.p50, 50.0), "{l:?}");
        assert!(near(l.p90, 90.0), "{l:?}");
        assert!(near(l.p99, 99.0), "{l:?}");
        assert!(near(l.max, 100.0), "{l:?}");
        assert!(near(l.mean, 50.5), "{l:?}");
        let empty = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        assert_eq!(Latency::of(&empty).max, 0.0);
    }

    #[test]
    fn a_summary_counts_rates_and_errors() {
        let mut t = Tally::new().expect("tally");
        t.ok = 200;
        t.bytes = 400 << 20;
        t.elapsed = Duration::from_secs(2);
        t.errors.insert("HTTP 503 SlowDown".into(), 3);
        t.latency.saturating_record(2000);
        let s = Summary::new(
            &Setting {
                op: Op::Get,
                endpoint: "http://127.0.0.1:9000",
                bucket: "b",
                size: 2 << 20,
                objects: 10,
                concurrency: 8,
                auth: "sigv4",
            },
            &t,
        );
        assert_eq!((s.requests, s.errors), (203, 3));
        assert_eq!((s.ops_per_s, s.mib_per_s), (100.0, 200.0));
        let json: serde_json::Value = serde_json::from_str(&s.json()).expect("json");
        assert_eq!(json["op"], "get");
        assert_eq!(json["errors_by_kind"]["HTTP 503 SlowDown"], 3);
        assert_eq!(json["latency_ms"]["p50"], 2.0);
        let text = s.text();
        assert!(text.starts_with("get 2 MiB x 10 objects"), "{text}");
        assert!(text.contains("3 x HTTP 503 SlowDown"), "{text}");
        assert!(
            text.contains("ops/s    100.0  (200 ok, 3 errors)"),
            "{text}"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(5 << 30), "5 GiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(100), "100 B");
        assert_eq!(
            (rate(4276.4), rate(21.349), rate(0.0144)),
            ("4276".into(), "21.35".into(), "0.014".into())
        );
    }
}
