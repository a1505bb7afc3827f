//! The catalog's multipart side: uploads and their parts, completing an upload into an object
//! in one transaction, and the record a retried Complete is answered from.

use super::{Catalog, put_and_queue};
use crate::store::error::StoreError;
use crate::store::meta::{CompletedUpload, ObjectMeta, PartMeta, Precondition, UploadMeta};
use crate::store::{objects, uploads};

/// What completing an upload replaced and left over: blobs to remove after the commit.
pub struct Completed {
    pub replaced: Option<ObjectMeta>,
    pub unused_parts: Vec<PartMeta>,
    pub seq: Option<u64>,
}

impl Catalog {
    pub fn record_completed(&self, id: &str, done: &CompletedUpload) -> Result<(), StoreError> {
        self.write(|txn| uploads::record_completed(txn, id, done))
    }

    pub fn completed_upload(&self, id: &str) -> Result<Option<CompletedUpload>, StoreError> {
        self.read(|txn| uploads::completed(txn, id))
    }

    pub fn forget_completed_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.write(|txn| uploads::forget_completed_before(txn, cutoff_ms))
    }

    pub fn create_upload(&self, id: &str, meta: &UploadMeta) -> Result<(), StoreError> {
        self.write(|txn| {
            objects::require_bucket(txn, &meta.bucket)?;
            uploads::create(txn, id, meta)
        })
    }

    pub fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        self.read(|txn| uploads::get(txn, id))
    }

    pub fn put_part(
        &self,
        id: &str,
        n: u16,
        part: &PartMeta,
    ) -> Result<Option<PartMeta>, StoreError> {
        self.write(|txn| uploads::put_part(txn, id, n, part))
    }

    pub fn parts(&self, id: &str) -> Result<Vec<(u16, PartMeta)>, StoreError> {
        self.read(|txn| uploads::parts(txn, id))
    }

    pub fn uploads(&self) -> Result<Vec<(String, UploadMeta)>, StoreError> {
        self.read(uploads::list)
    }

    pub fn abort_upload(&self, id: &str) -> Result<Vec<PartMeta>, StoreError> {
        self.write(|txn| uploads::remove(txn, id))
    }

    /// Makes the upload's parts the object's segments and forgets the upload, in one
    /// transaction, with the same precondition and outbox rules as `put_object`.
    pub fn complete_upload(
        &self,
        id: &str,
        meta: &ObjectMeta,
        precondition: &Precondition,
        replicate: bool,
    ) -> Result<Completed, StoreError> {
        self.write(|txn| {
            let upload = uploads::get_for_update(txn, id)?;
            // A part re-uploaded since Complete read the parts replaced (and removed) the blob
            // chosen: the object would point at nothing. Checked inside the commit.
            let current = uploads::part_blobs(txn, id)?;
            if meta.blobs().any(|b| !current.contains(b)) {
                return Err(StoreError::PartChanged);
            }
            let (replaced, seq) = put_and_queue(
                txn,
                &upload.bucket,
                &upload.key,
                meta,
                precondition,
                replicate,
            )?;
            let unused_parts = uploads::remove(txn, id)?
                .into_iter()
                .filter(|p| !meta.blobs().any(|b| b == p.blob))
                .collect();
            Ok(Completed {
                replaced,
                unused_parts,
                seq,
            })
        })
    }
}
