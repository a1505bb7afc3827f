//! ListObjects v1 and v2: paging, delimiters, url encoding, markers, argument errors.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;

use std::time::SystemTime;

use crate::harness::{Lifeboat, raw, setup_with_bucket, signed_request};

/// A fresh server with bucket "bkt" holding `keys` (each with the body "x").
async fn setup(keys: &[&str]) -> (Lifeboat, aws_sdk_s3::Client) {
    let (lb, s3) = setup_with_bucket("bkt").await;
    for k in keys {
        s3.put_object()
            .bucket("bkt")
            .key(*k)
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await
            .unwrap();
    }
    (lb, s3)
}

const KEYS: &[&str] = &[
    "a.txt",
    "photos/2025/1.jpg",
    "photos/2026/2.jpg",
    "photos/top.jpg",
    "videos/v.mp4",
    "z.txt",
];

#[tokio::test]
async fn v2_pages_through_keys_and_common_prefixes() {
    let (_lb, s3) = setup(KEYS).await;
    let mut token = None;
    let mut keys = Vec::new();
    let mut prefixes = Vec::new();
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .delimiter("/")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.key_count().unwrap() <= 2);
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        prefixes.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(keys, ["a.txt", "z.txt"]);
    assert_eq!(prefixes, ["photos/", "videos/"]);
    assert_eq!(pages, 2);

    let nested = s3
        .list_objects_v2()
        .bucket("bkt")
        .prefix("photos/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let k: Vec<_> = nested.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(k, ["photos/top.jpg"]);
    let p: Vec<_> = nested
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(p, ["photos/2025/", "photos/2026/"]);

    let after = s3
        .list_objects_v2()
        .bucket("bkt")
        .start_after("photos/top.jpg")
        .send()
        .await
        .unwrap();
    let k: Vec<_> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(k, ["videos/v.mp4", "z.txt"]);

    let owners = s3
        .list_objects_v2()
        .bucket("bkt")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    assert!(owners.contents().iter().all(|o| o.owner().is_some()));
    let no_owner = s3.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert!(no_owner.contents().iter().all(|o| o.owner().is_none()));
}

#[tokio::test]
async fn v1_marker_and_next_marker() {
    let (_lb, s3) = setup(KEYS).await;
    let page = s3
        .list_objects()
        .bucket("bkt")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.marker(), Some(""));
    assert_eq!(page.is_truncated(), Some(true));
    let last = page
        .contents()
        .last()
        .and_then(|o| o.key())
        .unwrap()
        .to_owned();
    let next = s3
        .list_objects()
        .bucket("bkt")
        .marker(&last)
        .send()
        .await
        .unwrap();
    assert_eq!(next.marker(), Some(last.as_str()));
    assert_eq!(next.contents().len(), KEYS.len() - 2);

    let d = s3
        .list_objects()
        .bucket("bkt")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(d.next_marker(), Some("photos/"));
    let d2 = s3
        .list_objects()
        .bucket("bkt")
        .delimiter("/")
        .marker("photos/")
        .send()
        .await
        .unwrap();
    let p: Vec<_> = d2
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(p, ["videos/"]);
}

#[tokio::test]
async fn url_encoding_type_encodes_keys() {
    let (_lb, s3) = setup(&["a b+c.txt", "dir/ü.txt"]).await;
    // The SDK decodes url-encoded keys itself, so the keys come back as stored.
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let k: Vec<_> = page.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        k.contains(&"a b+c.txt") || k.contains(&"a%20b%2Bc.txt"),
        "{k:?}"
    );
}

#[tokio::test]
async fn url_encoding_on_the_wire() {
    let (lb, _s3) = setup(&["a b+c.txt", "dir/x y/1"]).await;
    let req = signed_request(
        lb.port,
        "GET",
        "/bkt?list-type=2&encoding-type=url&delimiter=%2F",
        b"",
        SystemTime::now(),
    );
    let (status, _, body) = raw(lb.port, &req);
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("<Key>a%20b%2Bc.txt</Key>"), "{body}");
    assert!(body.contains("<Prefix>dir/</Prefix>"), "{body}");
    assert!(body.contains("<EncodingType>url</EncodingType>"));
}

#[tokio::test]
async fn bad_max_keys_is_invalid_argument_and_large_is_capped() {
    let (lb, s3) = setup(&["k"]).await;
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .max_keys(5000)
        .send()
        .await
        .unwrap();
    assert_eq!(page.max_keys(), Some(1000));
    for bad in ["-1", "abc"] {
        let req = signed_request(
            lb.port,
            "GET",
            &format!("/bkt?list-type=2&max-keys={bad}"),
            b"",
            SystemTime::now(),
        );
        let (status, _, body) = raw(lb.port, &req);
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("<Code>InvalidArgument</Code>"));
    }
}

#[tokio::test]
async fn paging_through_many_keys_is_complete_and_ordered() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let mut want: Vec<String> = (0..2500)
        .map(|i| format!("logs/{:05}", (i * 7919) % 2500))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in want.chunks(250) {
        let s3 = s3.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for k in chunk {
                s3.put_object()
                    .bucket("bkt")
                    .key(k)
                    .body(ByteStream::from(Vec::new()))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    want.sort();
    let mut got = Vec::new();
    let mut pages = s3.list_objects_v2().bucket("bkt").into_paginator().send();
    while let Some(page) = pages.next().await {
        got.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn max_keys_zero_is_an_empty_complete_page() {
    let (_lb, s3) = setup(&["a", "b"]).await;
    let page = s3
        .list_objects_v2()
        .bucket("bkt")
        .max_keys(0)
        .send()
        .await
        .unwrap();
    assert_eq!(page.key_count(), Some(0));
    assert_eq!(page.is_truncated(), Some(false));
}
