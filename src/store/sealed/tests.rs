//! The sealed format's properties: round trips at the frame edges, ranges, and every way a
//! blob can be changed on disk failing.

use super::*;
use std::io::Cursor;

fn key(b: u8) -> EncryptionKey {
    EncryptionKey::from_bytes(&[b; 32]).unwrap()
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Seals `data` written in pieces of `piece` bytes.
fn seal(k: &EncryptionKey, blob: &str, data: &[u8], piece: usize) -> Vec<u8> {
    let mut w = SealedWriter::new(Vec::new(), Sealer::new(k, blob).unwrap());
    for c in data.chunks(piece.max(1)) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(k: &EncryptionKey, blob: &str, file: &[u8], size: u64, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    SealedReader::open(Cursor::new(file), k, blob, size, offset)
        .and_then(|mut r| r.read_to_end(&mut out))
        .unwrap();
    out
}

fn fails(k: &EncryptionKey, blob: &str, file: &[u8], size: u64) -> bool {
    let mut out = Vec::new();
    SealedReader::open(Cursor::new(file), k, blob, size, 0)
        .and_then(|mut r| r.read_to_end(&mut out))
        .is_err()
}

#[test]
fn round_trips_at_the_frame_edges() {
    let k = key(1);
    for n in [
        0,
        1,
        FRAME - 1,
        FRAME,
        FRAME + 1,
        2 * FRAME,
        3 * 1024 * 1024 + 17,
    ] {
        let data = body(n);
        for piece in [1000, FRAME, 1 << 20] {
            let file = seal(&k, "b1", &data, piece);
            assert_eq!(file.len() as u64, Layout::new(n as u64).sealed_len(), "{n}");
            assert_eq!(
                read_all(&k, "b1", &file, n as u64, 0),
                data,
                "{n} by {piece}"
            );
        }
    }
}

#[test]
fn the_plaintext_does_not_appear_in_the_file() {
    let data = b"MARKER-MARKER-MARKER".repeat(5000);
    let file = seal(&key(1), "b1", &data, 4096);
    assert!(!file.windows(13).any(|w| w == b"MARKER-MARKER"));
}

#[test]
fn range_reads_start_in_the_right_frame() {
    let k = key(2);
    let n = 5 * FRAME + 123;
    let data = body(n);
    let file = seal(&k, "b2", &data, 7777);
    for offset in [
        0,
        1,
        FRAME - 1,
        FRAME,
        FRAME + 1,
        3 * FRAME,
        5 * FRAME,
        n - 1,
        n,
    ] {
        let got = read_all(&k, "b2", &file, n as u64, offset as u64);
        assert_eq!(got, data[offset..], "offset {offset}");
    }
}

#[tokio::test]
async fn the_async_stream_reads_only_the_frames_of_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(3);
    let n = 4 * FRAME + 10;
    let data = body(n);
    let path = dir.path().join("blob");
    std::fs::write(&path, seal(&k, "b3", &data, FRAME)).unwrap();
    for (offset, len, frames) in [
        (FRAME - 1, 2, 2),
        (FRAME, FRAME, 1),
        (2 * FRAME + 5, 1, 1),
        (0, n, 5),
        (4 * FRAME, 10, 1),
    ] {
        let file = tokio::fs::File::open(&path).await.unwrap();
        let mut s = SealedStream::open(file, &k, "b3", n as u64, offset as u64, len as u64)
            .await
            .unwrap();
        let (mut got, mut chunks) = (Vec::new(), 0);
        while let Some(c) = s.next_chunk().await.unwrap() {
            got.extend_from_slice(&c);
            chunks += 1;
        }
        assert_eq!(got, data[offset..offset + len], "{offset}+{len}");
        assert_eq!(chunks, frames, "{offset}+{len}");
    }
}

#[test]
fn a_changed_byte_fails_in_any_frame_and_in_the_header() {
    let k = key(4);
    let n = 3 * FRAME;
    let file = seal(&k, "b4", &body(n), FRAME);
    let layout = Layout::new(n as u64);
    for at in [
        3,
        HEADER + 2,
        HEADER + 10,
        layout.offset(1) as usize + 100,
        layout.offset(2) as usize + FRAME + 3, // a tag
        file.len() - 1,
    ] {
        let mut bad = file.clone();
        bad[at] ^= 0x40;
        assert!(fails(&k, "b4", &bad, n as u64), "byte {at} changed");
    }
}

#[test]
fn swapped_frames_fail() {
    let k = key(5);
    let n = 3 * FRAME;
    let file = seal(&k, "b5", &body(n), FRAME);
    let l = Layout::new(n as u64);
    let (a, b) = (l.offset(0) as usize, l.offset(1) as usize);
    let step = FRAME + TAG;
    let mut bad = file.clone();
    bad[a..a + step].copy_from_slice(&file[b..b + step]);
    bad[b..b + step].copy_from_slice(&file[a..a + step]);
    assert!(fails(&k, "b5", &bad, n as u64));
}

#[test]
fn a_blob_moved_to_another_id_fails() {
    let k = key(6);
    let n = 2 * FRAME;
    let two = seal(&k, "two", &body(n), FRAME);
    // Header and frames whole: only the blob id in the associated data tells them apart.
    assert!(fails(&k, "one", &two, n as u64));
    assert!(!fails(&k, "two", &two, n as u64));
}

#[test]
fn a_truncated_blob_fails_even_when_the_size_says_so() {
    let k = key(7);
    let n = 3 * FRAME;
    let file = seal(&k, "b7", &body(n), FRAME);
    // Cut inside the last frame: the length no longer fits the size.
    assert!(fails(&k, "b7", &file[..file.len() - 1], n as u64));
    // Cut after a whole frame, with a size that agrees: the new last frame was not final.
    let cut = Layout::new(2 * FRAME as u64).sealed_len() as usize;
    assert!(fails(&k, "b7", &file[..cut], 2 * FRAME as u64));
}

#[test]
fn another_key_fails() {
    let file = seal(&key(8), "b8", b"hello", 5);
    assert!(fails(&key(9), "b8", &file, 5));
    assert!(!fails(&key(8), "b8", &file, 5));
    assert_ne!(fingerprint(&key(8)), fingerprint(&key(9)));
    assert_eq!(fingerprint(&key(8)), fingerprint(&key(8)));
}

#[test]
fn nonces_never_repeat_across_blobs() {
    // The same plaintext under the same blob id and master key: each blob's salt (and so
    // its key) is new, so no two sealed files share a header or a frame.
    let k = key(10);
    let data = body(FRAME + 1);
    let mut headers = std::collections::HashSet::new();
    let mut frames = std::collections::HashSet::new();
    for _ in 0..64 {
        let file = seal(&k, "same", &data, FRAME);
        assert!(headers.insert(file[..HEADER].to_vec()));
        assert!(frames.insert(file[HEADER..HEADER + 64].to_vec()));
    }
}

#[test]
fn a_plain_file_is_not_taken_for_a_sealed_one() {
    let data = body(100);
    assert!(fails(&key(1), "p", &data, 100));
}
