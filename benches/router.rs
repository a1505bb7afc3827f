//! The router as the server runs it per request, before authentication: host and path to
//! bucket and key (`router::target`), the raw query parsed (`sigv4::parse_query`), then the
//! method, target and query to one `Operation` (`router::route`). Requests are path-style, with
//! the default `server.domains`, as aws-cli and boto3 send them to `--endpoint-url`.
//!
//! `cargo bench --bench router [-- --quick]`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use lifeboat::auth::sigv4::parse_query;
use lifeboat::router::{Operation, route, target};

const HOST: &str = "127.0.0.1:9000";

/// One request: what the router reads of it.
struct Request {
    name: &'static str,
    /// The operation it must route to.
    op: &'static str,
    method: Method,
    path: &'static str,
    query: &'static str,
}

fn requests() -> [Request; 5] {
    [
        Request {
            name: "get_object",
            op: "GetObject",
            method: Method::GET,
            path: "/photos/2026/12/02/IMG_0042.jpg",
            query: "",
        },
        Request {
            name: "put_object",
            op: "PutObject",
            method: Method::PUT,
            path: "/photos/2026/12/02/IMG%200043%20%281%29.jpg",
            query: "",
        },
        Request {
            name: "list_objects_v2",
            op: "ListObjectsV2",
            method: Method::GET,
            path: "/photos",
            query: "list-type=2&prefix=2026%2F12%2F&delimiter=%2F&max-keys=1000\
                    &continuation-token=MjAyNi8xMi8wMS9JTUdfOTk5OS5qcGc&encoding-type=url",
        },
        Request {
            name: "upload_part",
            op: "UploadPart",
            method: Method::PUT,
            path: "/backups/db/2026-12-02.tar.zst",
            query: "partNumber=17&uploadId=2f9a8c1e6b7d4e03a5c1f0b9d8e7a6c5",
        },
        Request {
            name: "get_object_presigned",
            op: "GetObject",
            method: Method::GET,
            path: "/photos/2026/12/02/IMG_0042.jpg",
            query: "X-Amz-Algorithm=AWS4-HMAC-SHA256\
                    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261202%2Fus-east-1%2Fs3%2Faws4_request\
                    &X-Amz-Date=20261202T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
                    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        },
    ]
}

fn route_one(req: &Request, domains: &[String]) -> Operation {
    let target = target(Some(HOST), req.path, domains);
    let query = parse_query(req.query);
    route(&req.method, &target, &query, None, false)
        .unwrap_or_else(|e| panic!("{} must route: {e:?}", req.name))
}

fn bench_router(c: &mut Criterion) {
    let domains = vec!["s3.localhost".to_owned()];
    let mut group = c.benchmark_group("router");
    for req in requests() {
        let op = route_one(&req, &domains);
        assert_eq!(op.name(), req.op, "{}", req.name);
        group.bench_function(req.name, |b| {
            b.iter(|| route_one(black_box(&req), &domains));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_router);
criterion_main!(benches);
