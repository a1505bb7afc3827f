//! Disk space: the free-space check made before a body is accepted (`storage.min_free_bytes`),
//! and a small reserve file that a delete releases when the disk is full, so that the commit
//! that frees space can always finish. A leaf of the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::limits::DISK_RESERVE;

fn reserve_path(data_dir: &Path) -> PathBuf {
    data_dir.join("reserve")
}

/// Bytes available to Lifeboat on the filesystem of `dir`.
pub fn available(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Creates the reserve file if it is missing (best effort: on a full disk it is left out and
/// tried again after the next delete).
pub fn create_reserve(data_dir: &Path) {
    let path = reserve_path(data_dir);
    if path.exists() {
        return;
    }
    let tmp = data_dir.join("reserve.tmp");
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = DISK_RESERVE;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Frees the reserve; true when there was one to free.
pub fn release_reserve(data_dir: &Path) -> bool {
    std::fs::remove_file(reserve_path(data_dir)).is_ok()
}
