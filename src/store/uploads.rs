//! Multipart uploads in the store: the upload records and their parts, each part a durable blob of
//! its own. Completing an upload turns the parts into the object's segments in one transaction,
//! so no data is copied and a crash leaves either the upload or the object.

use redb::{ReadableTable, TableDefinition};

use super::index::{BUCKETS, Index, decode, encode, put_in};
use super::{BlobWriter, ObjectMeta, PartMeta, Precondition, Store, StoreError, UploadMeta};

pub(super) const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
pub(super) const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");

fn part_key(upload: &str, part: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(upload.len() + 3);
    k.extend_from_slice(upload.as_bytes());
    k.push(0);
    k.extend_from_slice(&part.to_be_bytes());
    k
}

fn parts_range(upload: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = upload.as_bytes().to_vec();
    start.push(0);
    let mut end = upload.as_bytes().to_vec();
    end.push(1);
    (start, end)
}

/// What completing an upload replaced and left over: blobs to remove after the commit.
pub struct Completed {
    pub replaced: Option<ObjectMeta>,
    pub unused_parts: Vec<PartMeta>,
    pub seq: Option<u64>,
}

impl Index {
    fn create_upload(&self, id: &str, meta: &UploadMeta) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            if txn
                .open_table(BUCKETS)?
                .get(meta.bucket.as_str())?
                .is_none()
            {
                return Err(StoreError::NoSuchBucket);
            }
            txn.open_table(UPLOADS)?
                .insert(id, encode(meta)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(UPLOADS)?;
        let v = table.get(id)?.ok_or(StoreError::NoSuchUpload)?;
        decode(v.value())
    }

    fn put_part(&self, id: &str, n: u16, part: &PartMeta) -> Result<Option<PartMeta>, StoreError> {
        let txn = self.db.begin_write()?;
        let old = {
            if txn.open_table(UPLOADS)?.get(id)?.is_none() {
                return Err(StoreError::NoSuchUpload);
            }
            let mut parts = txn.open_table(PARTS)?;
            let k = part_key(id, n);
            // The binding ends the guard's borrow of `parts` before the block does.
            #[allow(clippy::let_and_return)]
            let old = parts
                .insert(k.as_slice(), encode(part)?.as_slice())?
                .map(|v| decode::<PartMeta>(v.value()))
                .transpose()?;
            old
        };
        txn.commit()?;
        Ok(old)
    }

    fn parts(&self, id: &str) -> Result<Vec<(u16, PartMeta)>, StoreError> {
        let txn = self.db.begin_read()?;
        if txn.open_table(UPLOADS)?.get(id)?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let table = txn.open_table(PARTS)?;
        let (start, end) = parts_range(id);
        let mut out = Vec::new();
        for entry in table.range::<&[u8]>(start.as_slice()..end.as_slice())? {
            let (k, v) = entry?;
            let k = k.value();
            let n = u16::from_be_bytes([k[k.len() - 2], k[k.len() - 1]]);
            out.push((n, decode(v.value())?));
        }
        Ok(out)
    }

    /// Removes the upload and all its parts; returns the parts.
    fn remove_upload(txn: &redb::WriteTransaction, id: &str) -> Result<Vec<PartMeta>, StoreError> {
        if txn.open_table(UPLOADS)?.remove(id)?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let mut table = txn.open_table(PARTS)?;
        let (start, end) = parts_range(id);
        let mut removed = Vec::new();
        let keys: Vec<Vec<u8>> = table
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
            .map(|e| e.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()?;
        for k in keys {
            if let Some(v) = table.remove(k.as_slice())? {
                removed.push(decode(v.value())?);
            }
        }
        Ok(removed)
    }

    fn complete_upload(
        &self,
        id: &str,
        meta: &ObjectMeta,
        precondition: &Precondition,
        replicate: bool,
    ) -> Result<Completed, StoreError> {
        let txn = self.db.begin_write()?;
        let upload: UploadMeta = {
            let table = txn.open_table(UPLOADS)?;
            let v = table.get(id)?.ok_or(StoreError::NoSuchUpload)?;
            decode(v.value())?
        };
        // A part re-uploaded since Complete read the parts replaced (and removed) the blob
        // chosen: the object would point at nothing. Check inside the commit.
        {
            let parts = txn.open_table(PARTS)?;
            let (start, end) = parts_range(id);
            let mut current = std::collections::HashSet::new();
            for entry in parts.range::<&[u8]>(start.as_slice()..end.as_slice())? {
                let (_, v) = entry?;
                current.insert(decode::<PartMeta>(v.value())?.blob);
            }
            if meta.blobs().any(|b| !current.contains(b)) {
                return Err(StoreError::PartChanged);
            }
        }
        let replaced = put_in(&txn, &upload.bucket, &upload.key, meta, precondition)?;
        if !replicate {
            super::outbox::clear_key_in(&txn, &upload.bucket, &upload.key)?;
        }
        let seq = replicate
            .then(|| {
                super::outbox::enqueue_in(
                    &txn,
                    super::outbox::OutboxOp::Put {
                        bucket: upload.bucket.clone(),
                        key: upload.key.clone(),
                        etag: meta.etag.clone(),
                    },
                    meta.last_modified_ms,
                )
            })
            .transpose()?;
        let parts = Self::remove_upload(&txn, id)?;
        txn.commit()?;
        let unused_parts = parts
            .into_iter()
            .filter(|p| !meta.blobs().any(|b| b == p.blob))
            .collect();
        Ok(Completed {
            replaced,
            unused_parts,
            seq,
        })
    }

    fn abort_upload(&self, id: &str) -> Result<Vec<PartMeta>, StoreError> {
        let txn = self.db.begin_write()?;
        let parts = Self::remove_upload(&txn, id)?;
        txn.commit()?;
        Ok(parts)
    }

    fn uploads(&self) -> Result<Vec<(String, UploadMeta)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(UPLOADS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), decode(v.value())?));
        }
        Ok(out)
    }
}

impl Store {
    pub async fn create_upload(&self, meta: UploadMeta) -> Result<String, StoreError> {
        let id = super::blob::new_id();
        let id2 = id.clone();
        self.blocking(move |ix| ix.create_upload(&id2, &meta))
            .await?;
        Ok(id)
    }

    pub async fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        let id = id.to_owned();
        self.blocking(move |ix| ix.upload(&id)).await
    }

    /// Makes the part durable and records it; a re-uploaded part replaces the earlier one.
    pub async fn put_part(
        &self,
        id: &str,
        n: u16,
        writer: BlobWriter,
        part_for: impl FnOnce(&super::DurableBlob) -> PartMeta,
    ) -> Result<PartMeta, StoreError> {
        let blob = self.finish_blob(writer).await?;
        self.record_part(id, n, part_for(&blob)).await
    }

    /// Records a part whose blob is already durable.
    pub async fn record_part(
        &self,
        id: &str,
        n: u16,
        part: PartMeta,
    ) -> Result<PartMeta, StoreError> {
        let (id2, p) = (id.to_owned(), part.clone());
        match self.blocking(move |ix| ix.put_part(&id2, n, &p)).await {
            Ok(old) => {
                if let Some(old) = old {
                    self.remove_blob(&old.blob).await;
                }
                Ok(part)
            }
            Err(e) => {
                self.remove_blob(&part.blob).await;
                Err(e)
            }
        }
    }

    pub async fn parts(&self, id: &str) -> Result<Vec<(u16, PartMeta)>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |ix| ix.parts(&id)).await
    }

    /// Commits the object made of the upload's parts and forgets the upload.
    pub async fn complete_upload(
        &self,
        id: &str,
        meta: ObjectMeta,
        precondition: Precondition,
        replicate: bool,
    ) -> Result<(ObjectMeta, Option<u64>), StoreError> {
        let (id2, m) = (id.to_owned(), meta.clone());
        let done = self
            .blocking(move |ix| ix.complete_upload(&id2, &m, &precondition, replicate))
            .await?;
        for p in &done.unused_parts {
            self.remove_blob(&p.blob).await;
        }
        if let Some(old) = done.replaced {
            for blob in old.blobs() {
                if !meta.blobs().any(|b| b == blob) {
                    self.remove_blob(blob).await;
                }
            }
        }
        Ok((meta, done.seq))
    }

    pub async fn abort_upload(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        let parts = self.blocking(move |ix| ix.abort_upload(&id)).await?;
        for p in parts {
            self.remove_blob(&p.blob).await;
        }
        Ok(())
    }

    /// Every upload in progress, with its id.
    pub async fn uploads(&self) -> Result<Vec<(String, UploadMeta)>, StoreError> {
        self.blocking(|ix| ix.uploads()).await
    }

    /// Aborts uploads initiated before `cutoff_ms`; returns how many.
    pub async fn abort_uploads_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for (id, meta) in self.uploads().await? {
            if meta.initiated_ms < cutoff_ms {
                match self.abort_upload(&id).await {
                    Ok(()) | Err(StoreError::NoSuchUpload) => n += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }
}
