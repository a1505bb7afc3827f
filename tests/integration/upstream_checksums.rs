//! Checksums survive the upstream: a client's CRC32 (composite for multipart) goes upstream
//! with the object, so another node (or this one after losing its copy) refills it with the
//! client's checksum rather than one of its own. Needs an upstream that keeps checksums:
//! SeaweedFS does; the JuiceFS gateway's 2021 MinIO code predates them, so it is skipped there.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};

use crate::harness::{data, lifeboat};
use crate::upstream::{Kind, UpstreamServer, available, kind};

fn config(up: &UpstreamServer) -> String {
    format!(
        "[upstream]\nendpoint = \"{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
        up.endpoint(),
        up.access_key,
        up.secret_key
    )
}

#[tokio::test]
async fn a_second_node_refills_an_object_with_the_clients_checksum() {
    if !available() {
        return;
    }
    if kind() == Kind::JuiceFs {
        eprintln!("skipping: the JuiceFS gateway's MinIO code keeps no checksums");
        return;
    }
    let dirs = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let up = UpstreamServer::start(dirs.0.path());
    let a = lifeboat(dirs.1.path(), &config(&up));
    let b = lifeboat(dirs.2.path(), &config(&up));
    let (sa, sb) = (a.client(), b.client());
    sa.create_bucket().bucket("sums").send().await.unwrap();

    let put = sa
        .put_object()
        .bucket("sums")
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(data(100_000, 1)))
        .send()
        .await
        .unwrap();
    let crc32 = put.checksum_crc32().unwrap().to_owned();

    let done = crate::harness::multipart_upload(
        &sa,
        "sums",
        "multi",
        vec![data(5 << 20, 2), data(1000, 3)],
        Some(ChecksumAlgorithm::Crc32),
    )
    .await;
    let composite = done.checksum_crc32().unwrap().to_owned();
    assert!(composite.ends_with("-2"), "{composite}");

    for (key, want) in [("single", crc32), ("multi", composite)] {
        // B has never seen the object: the first read fills its cache from the upstream.
        let first = sb
            .get_object()
            .bucket("sums")
            .key(key)
            .send()
            .await
            .unwrap();
        first.body.collect().await.unwrap();
        let head = sb
            .head_object()
            .bucket("sums")
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.checksum_crc32(),
            Some(want.as_str()),
            "{key} through B"
        );
    }
}
