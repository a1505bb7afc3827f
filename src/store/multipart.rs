//! The store's multipart side: uploads, durable parts, completing an upload into an object
//! without copying data, and the record a retried Complete is answered from.

use super::{
    BlobWriter, CompletedUpload, DurableBlob, ObjectMeta, PartMeta, Precondition, Store,
    StoreError, UploadMeta, blob,
};

impl Store {
    pub async fn create_upload(&self, meta: UploadMeta) -> Result<String, StoreError> {
        let id = blob::new_id();
        let id2 = id.clone();
        self.blocking(move |c| c.create_upload(&id2, &meta)).await?;
        Ok(id)
    }

    pub async fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| c.upload(&id)).await
    }

    /// Makes the part durable and records it; a re-uploaded part replaces the earlier one.
    pub async fn put_part(
        &self,
        id: &str,
        n: u16,
        writer: BlobWriter,
        part_for: impl FnOnce(&DurableBlob) -> PartMeta,
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
        match self.blocking(move |c| c.put_part(&id2, n, &p)).await {
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
        self.blocking(move |c| c.parts(&id)).await
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
            .blocking(move |c| c.complete_upload(&id2, &m, &precondition, replicate))
            .await?;
        for p in &done.unused_parts {
            self.remove_blob(&p.blob).await;
        }
        if let Some(old) = done.replaced {
            self.remove_replaced(&old, &meta).await;
        }
        Ok((meta, done.seq))
    }

    pub async fn abort_upload(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        let parts = self.blocking(move |c| c.abort_upload(&id)).await?;
        for p in parts {
            self.remove_blob(&p.blob).await;
        }
        Ok(())
    }

    /// Every upload in progress, with its id.
    pub async fn uploads(&self) -> Result<Vec<(String, UploadMeta)>, StoreError> {
        self.blocking(|c| c.uploads()).await
    }

    /// Keeps a completed upload's answer (for a retried Complete).
    pub async fn record_completed(
        &self,
        id: &str,
        done: CompletedUpload,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| c.record_completed(&id, &done)).await
    }

    pub async fn completed_upload(&self, id: &str) -> Result<Option<CompletedUpload>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| c.completed_upload(&id)).await
    }

    pub async fn forget_completed_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.blocking(move |c| c.forget_completed_before(cutoff_ms))
            .await
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
