//! Listing multipart uploads and their parts: ListParts (`API_ListParts.html`, `max-parts`,
//! `part-number-marker`) and ListMultipartUploads (`API_ListMultipartUploads.html`: prefix,
//! delimiter, key and upload-id markers, `encoding-type=url`). The upload lifecycle itself is
//! `multipart.rs`.

use super::multipart::upload_for;
use super::{S3Response, checksum_element, xml_response};
use crate::context::Context;
use crate::error::S3Result;
use crate::router::UploadListParams;
use crate::store::{PartMeta, UploadMeta};
use crate::time::iso_date;
use crate::xml::XmlWriter;

fn owner(w: &mut XmlWriter, tag: &str, id: &str) {
    w.open(tag);
    w.element("ID", id);
    w.element("DisplayName", id);
    w.close(tag);
}

pub async fn list_parts(
    ctx: &Context,
    bucket: &str,
    key: &str,
    id: &str,
    max_parts: usize,
    marker: u16,
) -> S3Result<S3Response> {
    let upload = upload_for(ctx, id, bucket, key).await?;
    let parts: Vec<(u16, PartMeta)> = ctx
        .store
        .parts(id)
        .await?
        .into_iter()
        .filter(|(n, _)| *n > marker)
        .collect();
    let truncated = parts.len() > max_parts;
    let page = &parts[..parts.len().min(max_parts)];
    let mut w = XmlWriter::new();
    w.root("ListPartsResult");
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("UploadId", id);
    owner(&mut w, "Initiator", &upload.owner);
    owner(&mut w, "Owner", &upload.owner);
    w.element("StorageClass", "STANDARD");
    w.element("PartNumberMarker", &marker.to_string());
    if let Some((n, _)) = page.last() {
        w.element("NextPartNumberMarker", &n.to_string());
    }
    w.element("MaxParts", &max_parts.to_string());
    w.element("IsTruncated", if truncated { "true" } else { "false" });
    w.element("ChecksumAlgorithm", upload.checksum.name());
    w.element(
        "ChecksumType",
        if upload.composite {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        },
    );
    for (n, p) in page {
        w.open("Part");
        w.element("PartNumber", &n.to_string());
        w.element("LastModified", &iso_date(p.last_modified_ms));
        w.element("ETag", &format!("\"{}\"", p.etag));
        w.element("Size", &p.size.to_string());
        w.element(&checksum_element(upload.checksum), &p.checksum);
        w.close("Part");
    }
    w.close("ListPartsResult");
    xml_response(w.finish())
}

pub async fn list_uploads(
    ctx: &Context,
    bucket: &str,
    p: &UploadListParams,
) -> S3Result<S3Response> {
    ctx.store.bucket(bucket).await?;
    // Ordered by (key, upload id), so that the markers name a position exactly.
    let mut uploads: Vec<(String, UploadMeta)> = ctx
        .store
        .uploads()
        .await?
        .into_iter()
        .filter(|(_, u)| u.bucket == bucket && u.key.starts_with(&p.prefix))
        .filter(|(id, u)| match (&p.key_marker, &p.upload_id_marker) {
            (None, _) => true,
            (Some(km), None) => u.key.as_str() > km.as_str(),
            (Some(km), Some(im)) => {
                u.key.as_str() > km.as_str() || (u.key == *km && id.as_str() > im.as_str())
            }
        })
        .collect();
    uploads.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
    let enc = |s: &str| {
        if p.encoding_url {
            crate::auth::sigv4::uri_encode(s, false)
        } else {
            s.to_owned()
        }
    };
    let mut listed: Vec<&(String, UploadMeta)> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    // The last key or common prefix returned, and the upload id when it was an upload.
    let mut last: Option<(String, Option<String>)> = None;
    let mut truncated = false;
    if p.max_uploads > 0 {
        for entry in &uploads {
            let cp = p.delimiter.as_deref().and_then(|d| {
                entry.1.key[p.prefix.len()..]
                    .find(d)
                    .map(|i| entry.1.key[..p.prefix.len() + i + d.len()].to_owned())
            });
            if let Some(cp) = &cp
                && (prefixes.last() == Some(cp) || p.key_marker.as_deref() == Some(cp.as_str()))
            {
                continue; // rolled up already, or the previous page ended on it
            }
            if listed.len() + prefixes.len() == p.max_uploads {
                truncated = true;
                break;
            }
            match cp {
                Some(cp) => {
                    last = Some((cp.clone(), None));
                    prefixes.push(cp);
                }
                None => {
                    last = Some((entry.1.key.clone(), Some(entry.0.clone())));
                    listed.push(entry);
                }
            }
        }
    }
    let mut w = XmlWriter::new();
    w.root("ListMultipartUploadsResult");
    w.element("Bucket", bucket);
    w.element("KeyMarker", &enc(p.key_marker.as_deref().unwrap_or("")));
    w.element(
        "UploadIdMarker",
        p.upload_id_marker.as_deref().unwrap_or(""),
    );
    if truncated && let Some((key, id)) = &last {
        w.element("NextKeyMarker", &enc(key));
        w.element("NextUploadIdMarker", id.as_deref().unwrap_or(""));
    }
    w.element("Prefix", &enc(&p.prefix));
    if let Some(d) = &p.delimiter {
        w.element("Delimiter", &enc(d));
    }
    w.element("MaxUploads", &p.max_uploads.to_string());
    if p.encoding_url {
        w.element("EncodingType", "url");
    }
    w.element("IsTruncated", if truncated { "true" } else { "false" });
    for (id, u) in listed {
        w.open("Upload");
        w.element("Key", &enc(&u.key));
        w.element("UploadId", id);
        owner(&mut w, "Initiator", &u.owner);
        owner(&mut w, "Owner", &u.owner);
        w.element("StorageClass", "STANDARD");
        w.element("Initiated", &iso_date(u.initiated_ms));
        w.element("ChecksumAlgorithm", u.checksum.name());
        w.close("Upload");
    }
    for cp in prefixes {
        w.open("CommonPrefixes");
        w.element("Prefix", &enc(&cp));
        w.close("CommonPrefixes");
    }
    w.close("ListMultipartUploadsResult");
    xml_response(w.finish())
}
