//! What one replication does upstream: an object uploaded from its local blobs (a multipart
//! object with the same part boundaries, so both sides report the same ETag), a server-side
//! copy of a source the upstream already holds, a delete, or undoing a strict write whose
//! outcome was unknown. Every body is re-opened from its blob file on a retry, never replayed
//! from memory.

use http::Method;

use super::Gateway;
use super::conditional::{lost_precondition, precondition_header};
use crate::checksum::{self, ChecksumAlgorithm};
use crate::limits::{HASH_BUFFER, UPSTREAM_SMALL_BODY};
use crate::store::{ObjectMeta, Precondition, Segment};
use crate::upstream::{BodySource, OpenBody, UpstreamError, UpstreamRequest, header};
use crate::xml::Element;

/// Where a write's bytes can come from upstream.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Uploaded from the local blobs.
    Local,
    /// A copy of an object the upstream already holds (synced): a server-side upstream copy.
    CopyOf {
        bucket: &'a str,
        key: &'a str,
        /// The source version copied locally; the upstream copy is conditional on it.
        etag: &'a str,
    },
}

/// CompleteMultipartUpload and CopyObject can answer 200 with an `<Error>` in the body.
fn error_in_body(x: &Element) -> Option<UpstreamError> {
    (x.name == "Error").then(|| UpstreamError::Status {
        status: 200,
        code: x.child_text("Code").unwrap_or("").to_owned(),
        message: x.child_text("Message").unwrap_or("").to_owned(),
    })
}

/// `Content-MD5` from a hex MD5 ETag (none for a multipart `…-N` ETag).
fn with_md5(r: UpstreamRequest, etag: &str) -> UpstreamRequest {
    match hex::decode(etag) {
        Ok(raw) => r.header("content-md5", checksum::base64(&raw)),
        Err(_) => r,
    }
}

impl Gateway {
    async fn sha256_of(&self, seg: &Segment) -> Result<String, UpstreamError> {
        if let Some(h) = &seg.sha256 {
            return Ok(h.clone());
        }
        // Written before gateway mode was on: hash the blob (its plaintext) once now.
        let dirs = self.store.dirs().clone();
        let seg = seg.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            use std::io::Read;
            let mut f = dirs.read_sync(&seg, 0)?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; HASH_BUFFER];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(|e| UpstreamError::Local(e.to_string()))?
        .map_err(|e| UpstreamError::Local(e.to_string()))
    }

    fn with_object_headers(&self, mut r: UpstreamRequest, meta: &ObjectMeta) -> UpstreamRequest {
        let c = &meta.content;
        for (name, value) in [
            ("content-type", &c.content_type),
            ("cache-control", &c.cache_control),
            ("content-disposition", &c.content_disposition),
            ("content-encoding", &c.content_encoding),
            ("content-language", &c.content_language),
            ("expires", &c.expires),
        ] {
            if let Some(v) = value {
                r = r.header(name, v.clone());
            }
        }
        for (k, v) in &meta.user_metadata {
            r = r.header(&format!("x-amz-meta-{k}"), v.clone());
        }
        // The gateway's own setting wins; else the client's own SSE header is forwarded.
        if let Some(sse) = self.upstream.config.sse.as_ref().or(meta.sse.as_ref()) {
            r = r.header("x-amz-server-side-encryption", sse.clone());
        }
        r
    }

    /// A request whose body is one segment's blob, with its SHA-256.
    async fn with_segment(
        &self,
        mut r: UpstreamRequest,
        seg: &Segment,
    ) -> Result<UpstreamRequest, UpstreamError> {
        r.sha256 = Some(self.sha256_of(seg).await?);
        let (dirs, segment) = (self.store.dirs().clone(), seg.clone());
        r.body = BodySource::Reader {
            open: OpenBody(std::sync::Arc::new(move || {
                let reader: Box<dyn std::io::Read + Send> = Box::new(dirs.read_sync(&segment, 0)?);
                Ok(reader)
            })),
            len: seg.size,
        };
        Ok(r)
    }

    /// Pushes one version of an object upstream from its local blobs. With `once`, every
    /// request is tried once (the caller queues the write when it fails).
    pub async fn push_object(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        once: bool,
    ) -> Result<(), UpstreamError> {
        self.push_object_if(bucket, key, meta, once, None).await
    }

    /// `push_object`, with a client's precondition for the upstream to enforce (on the PUT,
    /// or on CompleteMultipartUpload).
    pub async fn push_object_if(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        once: bool,
        cond: Option<&Precondition>,
    ) -> Result<(), UpstreamError> {
        let cond = cond.and_then(precondition_header);
        let cond = cond.as_ref();
        let checksum = self.checksum_to_send(meta);
        let result = match self
            .push_once(bucket, key, meta, once, checksum, cond)
            .await
        {
            Err(e)
                if e.code() == Some("NoSuchBucket") && self.upstream.config.auto_create_buckets =>
            {
                self.create_upstream_bucket(bucket).await?;
                self.push_once(bucket, key, meta, once, checksum, cond)
                    .await
            }
            other => other,
        };
        let support = if meta.multipart {
            &self.checksums_multipart
        } else {
            &self.checksums
        };
        match result {
            Ok(()) => {
                if checksum.is_some() {
                    support.note(true);
                }
                self.changed_upstream(bucket, key, Some(&meta.etag));
                Ok(())
            }
            // Found out per upstream (single-part and multipart apart): a refusal of a write
            // that carried checksums is tried once without them; if that succeeds, the
            // upstream gets today's plain dialect for that shape from then on.
            Err(e) if checksum.is_some() && e.is_permanent() && !lost_precondition(&e) => {
                let plain = self.push_once(bucket, key, meta, once, None, cond).await;
                if plain.is_ok() {
                    tracing::info!(multipart = meta.multipart, error = %e, "the upstream refuses x-amz-checksum-* headers: not sending them");
                    support.note(false);
                    self.changed_upstream(bucket, key, Some(&meta.etag));
                }
                plain
            }
            Err(e) => Err(e),
        }
    }

    /// The client's checksum to send along, when the upstream may take it: CRC32, CRC32C,
    /// SHA-1 and SHA-256 (CRC64NVME is what a fill computes anyway, and not every upstream
    /// that takes the others knows it).
    fn checksum_to_send(&self, meta: &ObjectMeta) -> Option<ChecksumAlgorithm> {
        let c = meta.checksum.as_ref()?;
        let shape_ok = if meta.multipart {
            self.checksums_multipart.allowed() && meta.segments.iter().all(|s| s.checksum.is_some())
        } else {
            // A cached copy of an upstream multipart object has only its composite value.
            self.checksums.allowed() && !c.composite
        };
        (shape_ok && c.algorithm != ChecksumAlgorithm::Crc64Nvme).then_some(c.algorithm)
    }

    async fn push_once(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        once: bool,
        checksum: Option<ChecksumAlgorithm>,
        cond: Option<&(&'static str, String)>,
    ) -> Result<(), UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        if !meta.multipart {
            let mut r = self.with_object_headers(
                UpstreamRequest::new(Method::PUT, &ub, Some(&uk)).once(once),
                meta,
            );
            if let Some(seg) = meta.segments.first() {
                r = self.with_segment(r, seg).await?;
            }
            r = with_md5(r, &meta.etag);
            if let Some((name, value)) = cond {
                r = r.header(name, value.clone());
            }
            if let (Some(alg), Some(c)) = (checksum, &meta.checksum)
                && !c.composite
            {
                r = r.header(alg.header(), c.value.clone());
            }
            self.upstream.send(&r).await?;
            return Ok(());
        }
        // Same part boundaries upstream, so the upstream's ETag equals ours.
        let mut create = self.with_object_headers(
            UpstreamRequest::new(Method::POST, &ub, Some(&uk))
                .query("uploads", "")
                .once(once),
            meta,
        );
        if let (Some(alg), Some(c)) = (checksum, &meta.checksum) {
            create = create
                .header("x-amz-checksum-algorithm", alg.name())
                .header("x-amz-checksum-type", c.type_name());
        }
        let resp = self.upstream.send(&create).await?;
        let body = self.upstream.read_body(resp, UPSTREAM_SMALL_BODY).await?;
        let upload_id = crate::xml::parse(&body)
            .ok()
            .and_then(|x| x.child_text("UploadId").map(str::to_owned))
            .ok_or_else(|| UpstreamError::BadAnswer("no UploadId".into()))?;
        let result = self
            .push_parts(&ub, &uk, &upload_id, meta, (once, checksum), cond)
            .await;
        if result.is_err() {
            let abort = UpstreamRequest::new(Method::DELETE, &ub, Some(&uk))
                .query("uploadId", upload_id.clone())
                .once(once);
            let _ = self.upstream.send(&abort).await;
        }
        result
    }

    async fn push_parts(
        &self,
        ub: &str,
        uk: &str,
        upload_id: &str,
        meta: &ObjectMeta,
        (once, checksum): (bool, Option<ChecksumAlgorithm>),
        cond: Option<&(&'static str, String)>,
    ) -> Result<(), UpstreamError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, seg) in meta.segments.iter().enumerate() {
            let n = (i + 1).to_string();
            let r = UpstreamRequest::new(Method::PUT, ub, Some(uk))
                .query("partNumber", n.clone())
                .query("uploadId", upload_id)
                .once(once);
            let mut r = with_md5(self.with_segment(r, seg).await?, &seg.etag);
            // Each part's checksum, in the upload's algorithm, travels with it and in Complete.
            let part_checksum = checksum.zip(seg.checksum.as_deref());
            if let Some((alg, v)) = part_checksum {
                r = r.header(alg.header(), v);
            }
            let resp = self.upstream.send(&r).await?;
            let etag = header(resp.headers(), "etag").unwrap_or("").to_owned();
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag>"
            ));
            if let Some((alg, v)) = part_checksum {
                let element = format!("Checksum{}", alg.name());
                xml.push_str(&format!("<{element}>{v}</{element}>"));
            }
            xml.push_str("</Part>");
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut r = UpstreamRequest::new(Method::POST, ub, Some(uk)).query("uploadId", upload_id);
        if let Some((name, value)) = cond {
            r = r.header(name, value.clone());
        }
        r.sha256 = Some(crate::auth::sigv4::sha256_hex(xml.as_bytes()));
        r.body = BodySource::Bytes(xml.into());
        let resp = self.upstream.send(&r).await?;
        let body = self.upstream.read_body(resp, UPSTREAM_SMALL_BODY).await?;
        if let Ok(x) = crate::xml::parse(&body)
            && let Some(e) = error_in_body(&x)
        {
            return Err(e);
        }
        Ok(())
    }

    pub async fn delete_upstream(&self, bucket: &str, key: &str) -> Result<(), UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        match self
            .upstream
            .send(&UpstreamRequest::new(Method::DELETE, &ub, Some(&uk)))
            .await
        {
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        self.changed_upstream(bucket, key, None);
        Ok(())
    }

    /// Whether the upstream holds this version of the object already (same ETag).
    pub(super) async fn upstream_has(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<bool, UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        match self
            .upstream
            .send(&UpstreamRequest::new(Method::HEAD, &ub, Some(&uk)))
            .await
        {
            Ok(resp) => {
                Ok(header(resp.headers(), "etag").is_some_and(|e| e.trim_matches('"') == etag))
            }
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the upstream object only if it carries `etag` (the write being undone).
    pub async fn revert_upstream(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<(), UpstreamError> {
        if self.upstream_has(bucket, key, etag).await? {
            tracing::info!(
                bucket,
                key,
                "undoing a strict write that reached the upstream after it failed"
            );
            self.delete_upstream(bucket, key).await?;
        }
        Ok(())
    }

    /// Replicates a new write: a server-side copy when the upstream already has the source,
    /// else an upload from the local blobs. Must be called under the key's lock.
    pub async fn replicate_new(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        origin: Origin<'_>,
        once: bool,
    ) -> Result<(), UpstreamError> {
        if let Origin::CopyOf {
            bucket: sb,
            key: sk,
            etag,
        } = origin
        {
            match self
                .copy_upstream((sb, sk, etag), bucket, key, meta, once)
                .await
            {
                Ok(()) => {
                    self.changed_upstream(bucket, key, Some(&meta.etag));
                    return Ok(());
                }
                // Down: the upload would fail too. Anything else (a refusal, or an answer
                // Lifeboat cannot use): upload the bytes instead.
                Err(e) if e.is_outage() && !matches!(e, UpstreamError::BadAnswer(_)) => {
                    return Err(e);
                }
                Err(e) => tracing::info!(error = %e, "server-side copy refused: uploading instead"),
            }
        }
        self.push_object(bucket, key, meta, once).await
    }

    /// CopyObject on the upstream, carrying the local object's headers; accepted only when the
    /// upstream's resulting ETag equals the local one (so both sides agree).
    /// `source` is the source's bucket, key and the ETag of the version copied locally.
    async fn copy_upstream(
        &self,
        (src_bucket, src_key, src_etag): (&str, &str, &str),
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        once: bool,
    ) -> Result<(), UpstreamError> {
        let (sb, sk) = self.upstream.map(src_bucket, src_key);
        let (ub, uk) = self.upstream.map(bucket, key);
        let r = self
            .with_object_headers(
                UpstreamRequest::new(Method::PUT, &ub, Some(&uk)).once(once),
                meta,
            )
            .header(
                "x-amz-copy-source",
                format!(
                    "/{}/{}",
                    crate::auth::sigv4::uri_encode(&sb, true),
                    crate::auth::sigv4::uri_encode(&sk, false)
                ),
            )
            .header("x-amz-metadata-directive", "REPLACE")
            .header("x-amz-copy-source-if-match", format!("\"{src_etag}\""));
        let resp = self.upstream.send(&r).await?;
        let body = self.upstream.read_body(resp, UPSTREAM_SMALL_BODY).await?;
        let x = crate::xml::parse(&body)
            .map_err(|_| UpstreamError::BadAnswer("unreadable copy result".into()))?;
        if let Some(e) = error_in_body(&x) {
            return Err(e);
        }
        let etag = x
            .child_text("ETag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        if etag != meta.etag {
            return Err(UpstreamError::BadAnswer(format!(
                "copy ETag {etag} differs from {}",
                meta.etag
            )));
        }
        Ok(())
    }
}
