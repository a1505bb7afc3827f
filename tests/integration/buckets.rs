//! Bucket operations and their AWS error codes.

use crate::harness::{AK, Lifeboat, SK, code};

#[tokio::test]
async fn bucket_lifecycle_and_errors() {
    let lb = Lifeboat::start();
    let s3 = lb.client();
    s3.create_bucket().bucket("photos").send().await.unwrap();
    // us-east-1 (the default region): AWS's legacy rule answers 200 again; see fidelity.rs for
    // another region's 409.
    s3.create_bucket().bucket("photos").send().await.unwrap();
    let bad = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidBucketName");

    let list = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = list.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["photos"]);
    assert!(list.owner().and_then(|o| o.id()).is_some());

    s3.head_bucket().bucket("photos").send().await.unwrap();
    let missing = s3.head_bucket().bucket("nope").send().await.unwrap_err();
    assert_eq!(
        missing.raw_response().map(|r| r.status().as_u16()),
        Some(404)
    );

    let loc = s3
        .get_bucket_location()
        .bucket("photos")
        .send()
        .await
        .unwrap();
    assert!(
        loc.location_constraint()
            .is_none_or(|c| c.as_str().is_empty())
    );

    s3.put_object()
        .bucket("photos")
        .key("a")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let not_empty = s3
        .delete_bucket()
        .bucket("photos")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&not_empty), "BucketNotEmpty");
    s3.delete_object()
        .bucket("photos")
        .key("a")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("photos").send().await.unwrap();
    let gone = s3
        .delete_bucket()
        .bucket("photos")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "NoSuchBucket");
}

/// With `server.region` unset an SDK set to another region (which sends it as the constraint)
/// creates its bucket there, as MinIO allows; once it is set, another constraint is refused.
#[tokio::test]
async fn create_bucket_with_location_constraint() {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let eu = || {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::EuWest1)
            .build()
    };
    let lb = Lifeboat::start();
    let s3 = crate::harness::client_in_region(&lb.endpoint, AK, SK, true, "eu-west-1");
    s3.create_bucket()
        .bucket("eu-bucket")
        .create_bucket_configuration(eu())
        .send()
        .await
        .expect("any constraint while server.region is unset");
    let loc = s3
        .get_bucket_location()
        .bucket("eu-bucket")
        .send()
        .await
        .expect("location");
    assert_eq!(
        loc.location_constraint(),
        Some(&BucketLocationConstraint::EuWest1)
    );

    let strict = Lifeboat::start_with_config("[server]\nregion = \"us-east-1\"\n");
    let wrong = strict
        .client()
        .create_bucket()
        .bucket("eu-bucket")
        .create_bucket_configuration(eu())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong), "InvalidArgument");
}

#[tokio::test]
async fn virtual_hosted_style_with_dotted_bucket() {
    let lb = Lifeboat::start();
    let s3 = lb.virtual_hosted_client();
    // Dotted names cannot be virtual-hosted by the SDK over TLS, but plain HTTP is fine.
    for bucket in ["vhost", "my.dotted.bucket"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        s3.put_object()
            .bucket(bucket)
            .key("dir/k.txt")
            .body(b"hello".to_vec().into())
            .send()
            .await
            .unwrap();
        let got = s3
            .get_object()
            .bucket(bucket)
            .key("dir/k.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.body.collect().await.unwrap().into_bytes().as_ref(),
            b"hello"
        );
        let list = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
        assert_eq!(list.key_count(), Some(1));
    }
    // The same objects are visible path-style.
    let path = lb.client();
    path.head_object()
        .bucket("my.dotted.bucket")
        .key("dir/k.txt")
        .send()
        .await
        .unwrap();
}
