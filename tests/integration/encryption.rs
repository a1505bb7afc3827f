//! Encryption at rest (issue 11, item 7): `storage.encryption_key_file` seals every new blob.
//! Checked from outside the process: the bytes on disk, the log, `/metrics`
//! (`lifeboat_sealed_frames_read_total`) and what the server refuses at start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{
    AK, AdminAuth, Lifeboat, SK, data, lifeboat, md5_hex, multipart_upload, object_bytes,
    until_upstream_within,
};

const BUCKET: &str = "sealed";
/// Plaintext per frame and the bytes around it (store/sealed/: `FRAME`, `TAG`, `HEADER`).
const FRAME: usize = 64 * 1024;
const TAG: usize = 16;
const HEADER: usize = 24;

/// A key file with these bytes and mode, in `dir`.
fn key_file(dir: &Path, bytes: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("encryption-key");
    std::fs::write(&path, bytes).expect("write the key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn sealed_config(key: &Path) -> String {
    format!(
        "[storage]\nencryption_key_file = {:?}\n",
        key.display().to_string()
    )
}

/// A fresh directory and Lifeboat with a fresh key; (server, directory).
fn start_sealed() -> (Lifeboat, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path(), &test_key(), 0o600);
    (lifeboat(dir.path(), &sealed_config(&key)), dir)
}

/// A key: 32 pseudo-random bytes.
fn test_key() -> Vec<u8> {
    data(32, 0x5eed_0f1e_b0a7)
}

/// `data(len, seed)` with `marker` written at each of `at`.
fn marked(len: usize, seed: u64, marker: &[u8], at: &[usize]) -> Vec<u8> {
    let mut body = data(len, seed);
    for &i in at {
        body[i..i + marker.len()].copy_from_slice(marker);
    }
    body
}

/// Every file under `dir` whose bytes contain `needle`, and how many bytes were read in all.
fn files_containing(dir: &Path, needle: &[u8]) -> (Vec<PathBuf>, u64) {
    let (mut found, mut read) = (Vec::new(), 0u64);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            read += bytes.len() as u64;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    (found, read)
}

/// The blob files under the data directory.
fn blob_files(lb: &Lifeboat) -> Vec<PathBuf> {
    let mut blobs = Vec::new();
    for fan in std::fs::read_dir(lb.data_dir.join("blobs"))
        .expect("blobs")
        .flatten()
    {
        for b in std::fs::read_dir(fan.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            blobs.push(b.path());
        }
    }
    blobs
}

/// A counter's value on `/metrics`.
fn metric(lb: &Lifeboat, name: &str) -> u64 {
    let (status, _, body) = lb.admin_call("GET", "/metrics", AdminAuth::None, b"");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    crate::harness::metric_sample(&text, name)
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

async fn put_object(s3: &Client, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("put");
}

/// GET with an optional Range; `Err` when the request or the body failed.
async fn try_get(s3: &Client, key: &str, range: Option<&str>) -> Result<Vec<u8>, String> {
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .set_range(range.map(str::to_owned))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let body = out.body.collect().await.map_err(|e| format!("{e:?}"))?;
    Ok(body.into_bytes().to_vec())
}

/// Runs `lifeboat ARGS CONFIG` and expects it to exit with an error within 30 s; its stderr.
fn refused(args: &[&str], config: &Path, data_dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .arg(config)
        .env_clear()
        .env("LIFEBOAT_ADDRESS", "127.0.0.1:0")
        .env("LIFEBOAT_ADMIN_ADDRESS", "127.0.0.1:0")
        .env("LIFEBOAT_DATA_DIR", data_dir)
        .env("LIFEBOAT_ACCESS_KEY", AK)
        .env("LIFEBOAT_SECRET_KEY", SK)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} started and kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(!status.success(), "{args:?} succeeded: {err}");
    err
}

#[tokio::test]
async fn a_marker_in_object_bodies_never_reaches_the_data_dir() {
    const MARKER: &[u8] = b"LIFEBOAT-SEALED-MARKER-4c1d";
    let (lb, _dir) = start_sealed();
    let s3 = lb.client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    // PutObject, with the marker across a frame boundary too.
    let single = marked(300_000, 1, MARKER, &[0, FRAME - 10, 200_000]);
    put_object(&s3, "single", single.clone()).await;
    // A multipart object (two parts), then a copy of each object, and an UploadPartCopy.
    let parts = vec![
        marked(5 << 20, 2, MARKER, &[17, 3 << 20]),
        marked(1000, 3, MARKER, &[500]),
    ];
    let whole: Vec<u8> = parts.concat();
    multipart_upload(&s3, BUCKET, "multi", parts, None).await;
    for (src, dst) in [("single", "single-copy"), ("multi", "multi-copy")] {
        s3.copy_object()
            .bucket(BUCKET)
            .key(dst)
            .copy_source(format!("{BUCKET}/{src}"))
            .send()
            .await
            .expect("copy");
    }
    let id = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("part-copy")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    s3.upload_part_copy()
        .bucket(BUCKET)
        .key("part-copy")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{BUCKET}/single"))
        .copy_source_range("bytes=65000-210000")
        .send()
        .await
        .expect("upload part copy");
    // Everything reads back as written.
    for (key, want) in [
        ("single", &single),
        ("single-copy", &single),
        ("multi", &whole),
        ("multi-copy", &whole),
    ] {
        assert!(object_bytes(&s3, BUCKET, key).await == *want, "{key}");
    }
    let (found, read) = files_containing(&lb.data_dir, MARKER);
    assert!(found.is_empty(), "the marker is on disk in {found:?}");
    // The walk did read the bodies (sealed): at least their plaintext size.
    assert!(
        read > 2 * (single.len() + whole.len()) as u64,
        "read {read}"
    );
    // Keys are not encrypted (README, "Encryption at rest"): the index names them.
    let (found, _) = files_containing(&lb.data_dir, b"single-copy");
    assert!(!found.is_empty(), "the walk never saw the index");
}

#[tokio::test]
async fn a_range_in_the_middle_of_100_mib_opens_only_its_frames() {
    let (lb, _dir) = start_sealed();
    let s3 = lb.client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let body = data(100 << 20, 7);
    put_object(&s3, "big", body.clone()).await;
    let before = metric(&lb, "lifeboat_sealed_frames_read_total");
    // 1000 bytes from 50 MiB - 300: across one frame boundary, so two frames.
    let first = (50 << 20) - 300;
    let got = try_get(&s3, "big", Some(&format!("bytes={first}-{}", first + 999)))
        .await
        .expect("range");
    assert!(got == body[first..first + 1000]);
    let opened = metric(&lb, "lifeboat_sealed_frames_read_total") - before;
    assert_eq!(opened, 2, "frames opened for a 1000-byte range");
    // The file is the plaintext plus a header and a tag per frame, not a byte more.
    let blobs = blob_files(&lb);
    assert_eq!(blobs.len(), 1);
    let frames = (100 << 20) / FRAME;
    assert_eq!(
        std::fs::metadata(&blobs[0]).unwrap().len(),
        (HEADER + (100 << 20) + frames * TAG) as u64
    );
}

#[tokio::test]
async fn a_changed_byte_in_a_sealed_blob_is_never_served() {
    let (lb, dir) = start_sealed();
    let s3 = lb.client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let body = data(4 * FRAME, 9);
    put_object(&s3, "victim", body.clone()).await;
    let blobs = blob_files(&lb);
    assert_eq!(blobs.len(), 1);
    let blob_id = blobs[0].file_name().unwrap().to_string_lossy().into_owned();
    // Flip one bit inside frame 2's ciphertext.
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    bytes[HEADER + 2 * (FRAME + TAG) + 100] ^= 0x01;
    std::fs::write(&blobs[0], &bytes).unwrap();
    let rejected = metric(&lb, "lifeboat_sealed_frames_rejected_total");

    let whole = try_get(&s3, "victim", None).await;
    assert!(whole.is_err(), "a tampered object was served whole");
    let inside = try_get(
        &s3,
        "victim",
        Some(&format!("bytes={}-{}", 2 * FRAME + 50, 2 * FRAME + 150)),
    )
    .await;
    assert!(inside.is_err(), "the tampered frame was served");
    // Frames that were not touched still open: only what is authentic is served.
    let before = try_get(&s3, "victim", Some("bytes=0-999"))
        .await
        .expect("frame 0");
    assert!(before == body[..1000]);
    assert!(metric(&lb, "lifeboat_sealed_frames_rejected_total") >= rejected + 2);

    let log = std::fs::read_to_string(dir.path().join("lifeboat.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("failed authentication") && l.contains(&blob_id))
        .unwrap_or_else(|| panic!("no error line names blob {blob_id}:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("victim") && line.contains(BUCKET),
        "no bucket/key: {line}"
    );
}

#[tokio::test]
async fn turning_encryption_on_keeps_old_objects_readable_and_seals_new_ones() {
    const OLD: &[u8] = b"WRITTEN-IN-THE-CLEAR-9e2a";
    const NEW: &[u8] = b"WRITTEN-SEALED-0b7f";
    let dir = tempfile::tempdir().unwrap();
    let old = marked(200_000, 11, OLD, &[1000]);
    {
        let lb = lifeboat(dir.path(), "");
        let s3 = lb.client();
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        put_object(&s3, "old", old.clone()).await;
        multipart_upload(&s3, BUCKET, "old-multi", vec![old.clone()], None).await;
    }
    let key = key_file(dir.path(), &test_key(), 0o600);
    let config = sealed_config(&key);
    let new = marked(200_000, 12, NEW, &[FRAME]);
    {
        let lb = lifeboat(dir.path(), &config);
        let s3 = lb.client();
        assert!(object_bytes(&s3, BUCKET, "old").await == old);
        assert!(object_bytes(&s3, BUCKET, "old-multi").await == old);
        let range = try_get(&s3, "old", Some("bytes=1000-1024")).await.unwrap();
        assert_eq!(range, OLD);
        put_object(&s3, "new", new.clone()).await;
        // A copy of a plain object is sealed like any new blob.
        s3.copy_object()
            .bucket(BUCKET)
            .key("old-copy")
            .copy_source(format!("{BUCKET}/old"))
            .send()
            .await
            .unwrap();
        assert!(object_bytes(&s3, BUCKET, "new").await == new);
        assert!(object_bytes(&s3, BUCKET, "old-copy").await == old);
        let (found, _) = files_containing(&lb.data_dir, NEW);
        assert!(found.is_empty(), "{found:?}");
        // The old blobs are untouched (still in the clear), the copy is not among them.
        let (found, _) = files_containing(&lb.data_dir, OLD);
        assert_eq!(found.len(), 2, "{found:?}");
    }
    // Sealed blobs without the key, or with another: the server does not start.
    let data_dir = dir.path().join("data");
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "").unwrap();
    let err = refused(&["serve", "--config"], &plain, &data_dir);
    assert!(
        err.contains("sealed") && err.contains("storage.encryption_key_file"),
        "{err}"
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = key_file(other_dir.path(), &data(32, 99), 0o600);
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(&wrong, sealed_config(&other)).unwrap();
    let err = refused(&["serve", "--config"], &wrong, &data_dir);
    assert!(err.contains("not the key"), "{err}");
    // With its key it starts again and serves both kinds.
    let lb = lifeboat(dir.path(), &config);
    let s3 = lb.client();
    assert!(object_bytes(&s3, BUCKET, "old").await == old);
    assert!(object_bytes(&s3, BUCKET, "new").await == new);
}

#[test]
fn a_key_file_others_can_read_or_of_the_wrong_length_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("lifeboat.toml");
    for (bytes, mode, says) in [
        (test_key(), 0o644, vec!["0644", "chmod 600"]),
        (test_key(), 0o640, vec!["0640", "chmod 600"]),
        (data(31, 1), 0o600, vec!["holds 31 bytes", "exactly 32"]),
        (vec![b'a'; 65], 0o600, vec!["holds 65 bytes", "exactly 32"]),
    ] {
        let key = key_file(dir.path(), &bytes, mode);
        std::fs::write(&config, sealed_config(&key)).unwrap();
        for args in [&["config", "check"][..], &["serve", "--config"][..]] {
            let err = refused(args, &config, &data_dir);
            assert!(
                err.contains("storage.encryption_key_file"),
                "{args:?}: {err}"
            );
            for s in &says {
                assert!(err.contains(s), "{args:?}: {s:?} not in {err}");
            }
        }
    }
}

/// Gateway mode: A (sealed) in front of B (a local-only Lifeboat without a key, so what B
/// stores is exactly what A sent): the upstream receives the plaintext, with the same ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_gateway_sends_the_upstream_plaintext() {
    const MARKER: &[u8] = b"PLAINTEXT-FOR-THE-UPSTREAM-77";
    let b = Lifeboat::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), &test_key(), 0o600);
    let config = format!(
        "{}[upstream]\nendpoint = \"http://127.0.0.1:{}\"\naccess_key = \"{AK}\"\n\
         secret_key = \"{SK}\"\n",
        sealed_config(&key),
        b.port
    );
    let a = lifeboat(dir.path(), &config);
    let (sa, sb) = (a.client(), b.client());
    sa.create_bucket().bucket(BUCKET).send().await.unwrap();
    let single = marked(3 * FRAME + 5, 21, MARKER, &[FRAME - 3]);
    put_object(&sa, "single", single.clone()).await;
    let parts = vec![
        marked(5 << 20, 22, MARKER, &[10]),
        marked(777, 23, MARKER, &[0]),
    ];
    let whole = parts.concat();
    let etag = multipart_upload(&sa, BUCKET, "multi", parts, None)
        .await
        .e_tag()
        .map(|e| e.trim_matches('"').to_owned());
    let wait = Duration::from_secs(60);
    until_upstream_within(&sb, BUCKET, "single", Some(&md5_hex(&single)), wait).await;
    until_upstream_within(&sb, BUCKET, "multi", etag.as_deref(), wait).await;
    assert!(object_bytes(&sb, BUCKET, "single").await == single);
    assert!(object_bytes(&sb, BUCKET, "multi").await == whole);
    // Sealed on A, in the clear on B (which has no key).
    let (found, _) = files_containing(&a.data_dir, MARKER);
    assert!(found.is_empty(), "{found:?}");
    let (found, _) = files_containing(&b.data_dir, MARKER);
    assert!(!found.is_empty(), "B should hold the plaintext");
}
