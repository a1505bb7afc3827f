//! ListObjectsV2 from the index at a million keys: one page of 1000 through `Store::list`, as
//! the handler calls it (a blocking-pool hop, one redb read transaction, every returned row's
//! metadata decoded). Four pages:
//!
//! - `from_start`: the first 1000 keys;
//! - `start_after_middle`: 1000 keys after the middle key (a continuation token's page);
//! - `prefix_delimiter_folders`: `prefix=2026/&delimiter=/`, 1000 common prefixes, each one
//!   a seek past its folder's keys;
//! - `prefix_delimiter_files`: `prefix=2026/0500/&delimiter=/`, one folder's 1000 keys;
//!
//! and `decode_1000_rows`, the decoding of a page's 1000 metadata rows alone (`store::decode`),
//! to show how much of a page that is.
//!
//! The keys are `2026/FFFF/IMG_NNNNNN.jpg`, 1000 to a folder. `LIFEBOAT_BENCH_KEYS` sets how
//! many (default 1,000,000). They are written once per run into a temp dir, straight into the
//! catalog's tables in transactions of 100,000 rows (one `Store::commit_object` per key is one
//! commit, with its fsyncs, each: the setup prints that rate too); `Store::open` then runs as at
//! any start; its time is printed, with the one-time usage count and without.
//!
//! `cargo bench --bench list [-- --quick]`

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use lifeboat::checksum::{Checksum, ChecksumAlgorithm};
use lifeboat::store::{
    BUCKETS, BucketMeta, ContentHeaders, ListPage, ListQuery, OBJECTS, ObjectMeta, Precondition,
    Segment, Store, SyncState, decode, encode, object_key,
};
use redb::Database;
use tokio::runtime::Runtime;

const BUCKET: &str = "photos";
const PER_FOLDER: usize = 1000;
const PAGE: usize = 1000;
const BATCH: usize = 100_000;

fn key_count() -> usize {
    match std::env::var("LIFEBOAT_BENCH_KEYS") {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|e| panic!("LIFEBOAT_BENCH_KEYS={v}: {e}")),
        Err(_) => 1_000_000,
    }
}

fn key(i: usize) -> String {
    format!("2026/{:04}/IMG_{:06}.jpg", i / PER_FOLDER, i)
}

/// What a 200 KiB JPEG PutObject from an SDK records.
fn meta(i: usize) -> ObjectMeta {
    let etag = format!(
        "{:032x}",
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
    );
    ObjectMeta {
        segments: vec![Segment {
            blob: format!("{:032x}", (i as u128).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            size: 204_800,
            etag: etag.clone(),
            checksum: Some("hAx8Hk0cFZI=".to_owned()),
            sha256: None,
            part_number: 0,
            sealed: false,
        }],
        size: 204_800,
        etag,
        last_modified_ms: 1_796_212_800_000 + i as i64,
        content: ContentHeaders {
            content_type: Some("image/jpeg".to_owned()),
            ..ContentHeaders::default()
        },
        user_metadata: Vec::new(),
        checksum: Some(Checksum {
            algorithm: ChecksumAlgorithm::Crc64Nvme,
            value: "hAx8Hk0cFZI=".to_owned(),
            composite: false,
        }),
        multipart: false,
        tags: Vec::new(),
        acl: None,
        sync: SyncState::LocalOnly,
        validated_ms: 1_796_212_800_000 + i as i64,
        sse: None,
    }
}

/// `unwrap_or_else(fail("…"))`: the bench cannot go on without it.
fn fail<E: std::fmt::Display, T>(what: &str) -> impl FnOnce(E) -> T + '_ {
    move |e| panic!("{what}: {e}")
}

/// Writes the bucket and `n` objects into a new catalog at `dir/index.redb`.
fn load(dir: &Path, n: usize) {
    let db = Database::create(dir.join("index.redb")).unwrap_or_else(fail("create the index"));
    let txn = db.begin_write().unwrap_or_else(fail("begin"));
    {
        let bucket = encode(&BucketMeta::new("bench", "us-east-1")).unwrap_or_else(fail("encode"));
        let mut buckets = txn.open_table(BUCKETS).unwrap_or_else(fail("buckets"));
        buckets
            .insert(BUCKET, bucket.as_slice())
            .unwrap_or_else(fail("insert bucket"));
    }
    txn.commit().unwrap_or_else(fail("commit"));
    for start in (0..n).step_by(BATCH) {
        let txn = db.begin_write().unwrap_or_else(fail("begin"));
        {
            let mut objects = txn.open_table(OBJECTS).unwrap_or_else(fail("objects"));
            for i in start..(start + BATCH).min(n) {
                let value = encode(&meta(i)).unwrap_or_else(fail("encode"));
                objects
                    .insert(object_key(BUCKET, &key(i)).as_slice(), value.as_slice())
                    .unwrap_or_else(fail("insert object"));
            }
        }
        txn.commit().unwrap_or_else(fail("commit"));
    }
}

/// The public API's rate, for comparison: `commits` objects through `Store::commit_object`.
fn commit_rate(rt: &Runtime, commits: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap_or_else(fail("temp dir"));
    let store = Store::open(dir.path(), None).unwrap_or_else(fail("open"));
    rt.block_on(async {
        store
            .create_bucket(BUCKET, BucketMeta::new("bench", "us-east-1"))
            .await
            .unwrap_or_else(fail("create bucket"));
        let started = Instant::now();
        for i in 0..commits {
            store
                .commit_object(BUCKET, &key(i), meta(i), Precondition::None, false)
                .await
                .unwrap_or_else(fail("commit"));
        }
        commits as f64 / started.elapsed().as_secs_f64()
    })
}

fn list(rt: &Runtime, store: &Store, query: &ListQuery) -> ListPage {
    rt.block_on(store.list(BUCKET, query.clone()))
        .unwrap_or_else(fail("list"))
}

fn bench_list(c: &mut Criterion) {
    let n = key_count();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(fail("runtime"));

    let rate = commit_rate(&rt, 200);
    eprintln!(
        "list: Store::commit_object: {rate:.0} objects/s ({:.0} s for {n} keys)",
        n as f64 / rate
    );
    let dir = tempfile::tempdir().unwrap_or_else(fail("temp dir"));
    let started = Instant::now();
    load(dir.path(), n);
    eprintln!(
        "list: wrote {n} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for what in ["recovery and the one-time usage count", "recovery only"] {
        let started = Instant::now();
        drop(Store::open(dir.path(), None).unwrap_or_else(fail("open")));
        eprintln!(
            "list: Store::open ({what}) took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let store = Store::open(dir.path(), None).unwrap_or_else(fail("open"));
    let usage = rt.block_on(store.usage()).unwrap_or_else(fail("usage"));
    assert_eq!(usage.objects.total(), n as u64, "every key is counted");

    let page = |prefix: &str, delimiter: Option<&str>, start_after: Option<String>| ListQuery {
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        start_after,
        max_keys: PAGE,
    };
    let middle_folder = format!("2026/{:04}/", (n / 2) / PER_FOLDER);
    let cases = [
        ("from_start", page("", None, None), PAGE.min(n)),
        (
            "start_after_middle",
            page("", None, Some(key(n / 2))),
            PAGE.min(n - n / 2 - 1),
        ),
        (
            "prefix_delimiter_folders",
            page("2026/", Some("/"), None),
            PAGE.min(n.div_ceil(PER_FOLDER)),
        ),
        (
            "prefix_delimiter_files",
            page(&middle_folder, Some("/"), None),
            PER_FOLDER.min(n - (n / 2) / PER_FOLDER * PER_FOLDER),
        ),
    ];
    let mut group = c.benchmark_group(format!("list_{n}_keys"));
    // Pages of a few milliseconds: 50 samples fit criterion's default 5 s.
    group.sample_size(50);
    for (name, query, expected) in cases {
        let got = list(&rt, &store, &query);
        assert_eq!(
            got.objects.len() + got.common_prefixes.len(),
            expected,
            "{name}"
        );
        group.bench_function(name, |b| b.iter(|| list(&rt, &store, black_box(&query))));
    }
    let rows: Vec<Vec<u8>> = (0..PAGE)
        .map(|i| encode(&meta(i)).unwrap_or_else(fail("encode")))
        .collect();
    group.bench_function("decode_1000_rows", |b| {
        b.iter(|| {
            for row in black_box(&rows) {
                let meta: ObjectMeta = decode(row).unwrap_or_else(fail("decode"));
                black_box(meta);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_list);
criterion_main!(benches);
