//! `lifeboat bench` against a real Lifeboat: short runs of each operation, read back from the
//! one JSON object it prints. No timing is asserted: only that requests succeeded, that the
//! bytes add up, and that failures are counted by kind.

use std::process::{Command, Output};

use serde_json::Value;

use super::harness::{AK, Lifeboat, SK};

const BUCKET: &str = "bench-it";

fn bench(lb: &Lifeboat, secret: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "bench",
            "--endpoint",
            &lb.endpoint,
            "--bucket",
            BUCKET,
            "--json",
        ])
        .args(["--access-key", AK, "--secret-key", secret])
        .args(args)
        .env_clear()
        .output()
        .expect("run lifeboat bench")
}

/// A run that must succeed: its JSON summary.
fn ok_run(lb: &Lifeboat, args: &[&str]) -> Value {
    let out = bench(lb, SK, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lifeboat bench {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(doc["errors"], 0, "{doc}");
    assert!(doc["ok"].as_u64().unwrap_or(0) > 0, "{doc}");
    assert!(doc["latency_ms"]["p50"].as_f64().is_some(), "{doc}");
    doc
}

#[test]
fn bench_drives_lifeboat_and_reports_one_json_object() {
    let lb = Lifeboat::start();
    let small = ["--size", "4KiB", "--objects", "8", "--concurrency", "4"];
    let put = ok_run(
        &lb,
        &[
            &small[..],
            &["--create-bucket", "--op", "put", "--duration", "1s"],
        ]
        .concat(),
    );
    assert_eq!(put["op"], "put");
    assert_eq!(put["bytes"].as_u64(), put["ok"].as_u64().map(|n| n * 4096));

    // A GET run uploads its objects first, then reads them whole.
    let get = ok_run(
        &lb,
        &[&small[..], &["--op", "get", "--duration", "1s"]].concat(),
    );
    assert_eq!(get["bytes"].as_u64(), get["ok"].as_u64().map(|n| n * 4096));

    let presigned = ok_run(
        &lb,
        &[
            &small[..],
            &[
                "--op",
                "get",
                "--presigned",
                "--no-prepare",
                "--requests",
                "40",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        (presigned["ok"].as_u64(), presigned["auth"].as_str()),
        (Some(40), Some("presigned"))
    );

    for op in ["head", "list", "mixed"] {
        let doc = ok_run(
            &lb,
            &[
                &small[..],
                &["--op", op, "--no-prepare", "--requests", "40"],
            ]
            .concat(),
        );
        assert_eq!(doc["ok"], 40, "{op}: {doc}");
    }

    // A wrong secret: the summary still comes, with the failures by kind, and exit status 1.
    let out = bench(
        &lb,
        "not-the-secret",
        &[
            "--op",
            "get",
            "--no-prepare",
            "--requests",
            "3",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        doc["errors_by_kind"]["HTTP 403 SignatureDoesNotMatch"], 3,
        "{doc}"
    );
}
