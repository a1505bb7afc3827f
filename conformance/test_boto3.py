#!/usr/bin/env python3
"""test_boto3.py — boto3 conformance checks against a running Lifeboat.

Covers, with a default-config boto3 client (which sends x-amz-checksum-crc32 on every PUT and
Expect: 100-continue for file-like bodies):
  * bucket basics: create, list_buckets, head_bucket, get_bucket_location
  * put/get/head/delete; ChecksumCRC32 (and SHA256) returned by get_object(ChecksumMode='ENABLED')
    equals what was sent; a wrong x-amz-checksum-crc32 is refused with BadDigest
  * range gets (first bytes, suffix, open-ended, unsatisfiable → InvalidRange)
  * conditional gets (If-None-Match → 304, If-Match mismatch → 412, If-Modified-Since,
    If-Unmodified-Since)
  * list_objects_v2 pagination with MaxKeys=2 and Delimiter='/', StartAfter;
    list_objects (v1) Marker / NextMarker; EncodingType='url' with spaces, '+', '&' and non-ASCII
  * user metadata, Content-Type / Cache-Control / Content-Disposition round trip, response-*
    overrides
  * presigned PUT (with a signed Content-Type) and GET used through urllib; a tampered URL → 403
  * browser POST form uploads: a policy from generate_presigned_post (SigV4) sent as the
    multipart/form-data body a <form enctype="multipart/form-data"> sends (http.client, so
    redirects are seen): success_action_status 201 (PostResponse XML, Location an absolute URL),
    the default 204, success_action_redirect (303), ${filename} in the key, Content-MD5
    (BadDigest); content-length-range → EntityTooLarge; a failed starts-with, an uncovered
    field or an expired policy → 403 AccessDenied; a bad signature → SignatureDoesNotMatch
  * multipart: upload_file / download_file of 20 MiB (TransferConfig defaults: 8 MiB parts,
    composite CRC32), the ETag md5-of-md5s-N, get/head_object(PartNumber=N) (PartsCount only
    then); a low-level upload with no checksum algorithm (full-object CRC64NVME) and its
    UploadPartCopy twin; list_parts paging / list_multipart_uploads; EntityTooSmall,
    InvalidPart, InvalidPartOrder, NoSuchUpload
  * conditional writes: put_object / complete_multipart_upload with IfNoneMatch='*' and IfMatch
  * delete_objects (boto3 sends x-amz-checksum-crc32, no Content-MD5) quiet and verbose, and
    more than 1000 keys → MalformedXML
  * copy_object: COPY and REPLACE metadata directives, CopySourceIfMatch / IfNoneMatch, self-copy
    rules, a source key with a space and '+'
  * object tagging (x-amz-tagging on PUT, TagCount, put/get/delete_object_tagging, InvalidTag),
    object and bucket ACLs (canned ACLs), get_bucket_versioning
  * virtual-hosted style (addressing_style='virtual', endpoint http://s3.localhost:PORT),
    including a POST form to http://BUCKET.s3.localhost:PORT/
  * errors: NoSuchKey, NoSuchBucket, BucketNotEmpty, InvalidBucketName,
    SignatureDoesNotMatch (nothing stored), InvalidAccessKeyId

Environment (set by conformance/run.sh): LIFEBOAT_ENDPOINT (http://127.0.0.1:PORT),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; optional LIFEBOAT_VHOST_BUCKET (default "vhost-bucket"),
which must resolve to 127.0.0.1 as "<bucket>.s3.localhost" (an /etc/hosts line), as must
"s3.localhost".

Prints one "PASS: ..." or "FAIL: ..." line per check; exits 1 if any check failed.
"""

import base64
import datetime
import hashlib
import http.client
import io
import os
import socket
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["LIFEBOAT_ENDPOINT"].rstrip("/")
PORT = urllib.parse.urlsplit(ENDPOINT).port
ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
REGION = "us-east-1"
VHOST_DOMAIN = "s3.localhost"
VHOST_BUCKET = os.environ.get("LIFEBOAT_VHOST_BUCKET", "vhost-bucket")

BUCKET = f"boto3-{uuid.uuid4().hex[:12]}"


def make_client(endpoint=ENDPOINT, access_key=ACCESS_KEY, secret_key=SECRET_KEY, config=None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


s3 = make_client()  # default config: path-style for a custom endpoint, CRC32 on PUT

# Every request the default client sends, as (method, url, headers).
SENT = []


def _record(request, **_):
    SENT.append((request.method, request.url, dict(request.headers)))


s3.meta.events.register("before-send.s3", _record)

# boto3's default presigner still produces legacy SigV2 URLs (AWSAccessKeyId/Signature/Expires),
# which Lifeboat (like S3 for buckets created since 2020) refuses, so presign with SigV4.
presigner = make_client(config=Config(signature_version="s3v4"))

# ---------------------------------------------------------------- helpers

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def expect_error(code, status, call, *args, **kwargs):
    """Call an S3 operation that must fail with the given error code and HTTP status."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        got_code = e.response.get("Error", {}).get("Code")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert (got_code, got_status) == (code, status), (
            f"expected {code}/{status}, got {got_code}/{got_status}: "
            f"{e.response.get('Error', {}).get('Message')!r}"
        )
        return e
    raise AssertionError(f"expected {code}/{status}, but the call succeeded")


def eq(actual, expected, what=""):
    assert actual == expected, f"{what + ': ' if what else ''}expected {expected!r}, got {actual!r}"


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def md5_etag(data):
    return f'"{hashlib.md5(data).hexdigest()}"'


def put(key, body, **kwargs):
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body, **kwargs)


def get_bytes(key, **kwargs):
    return get_bytes_from(BUCKET, key, **kwargs)


def get_bytes_from(bucket, key, **kwargs):
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def status_of(response):
    return response["ResponseMetadata"]["HTTPStatusCode"]


def all_keys(client, bucket):
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def empty_and_delete_bucket(client, bucket):
    """Aborts the bucket's open multipart uploads, deletes its keys (delete_objects, 1000 at a
    time) and then the bucket."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    keys = all_keys(client, bucket)
    for i in range(0, len(keys), 1000):
        resp = client.delete_objects(Bucket=bucket, Delete={
            "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        assert not resp.get("Errors"), f"delete_objects errors: {resp['Errors']}"
    client.delete_bucket(Bucket=bucket)


def md5_of_parts_etag(parts):
    """The ETag of a multipart object made of these part bodies: md5(md5(p1)..md5(pN))-N."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def composite_crc32_b64(parts):
    """A COMPOSITE CRC32: the CRC32 of the parts' big-endian CRC32s, then -N."""
    joined = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return f"{crc32_b64(joined)}-{len(parts)}"


_CRC64NVME_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x9A6C9329AC4BC9B5 if _c & 1 else _c >> 1
    _CRC64NVME_TABLE.append(_c)


def crc64nvme_b64(data):
    """CRC-64/NVME (reflected, init and xorout all ones); pure Python, ~0.1 s per MiB."""
    crc, table = 0xFFFFFFFFFFFFFFFF, _CRC64NVME_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")).decode()


assert crc64nvme_b64(b"123456789") == base64.b64encode(bytes.fromhex("ae8b14860a799888")).decode()


def sent_headers(method, url_suffix):
    """Headers of the last request the default client sent with this method and URL ending."""
    matches = [h for (m, u, h) in SENT if m == method and u.endswith(url_suffix)]
    assert matches, f"no {method} ...{url_suffix} was sent"
    return {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in matches[-1].items()}


def post_form(url, fields, filename, content, file_type="text/plain"):
    """POSTs what a browser's <form method="post" enctype="multipart/form-data"> sends: every
    field in order, then the `file` part with its filename and Content-Type. No redirect is
    followed. Returns (status, headers, body)."""
    boundary = "----LifeboatFormBoundary" + uuid.uuid4().hex[:16]
    body = bytearray()
    for name, value in fields.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
             f"Content-Type: {file_type}\r\n\r\n").encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path or "/", body=bytes(body), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Origin": f"{parts.scheme}://{parts.netloc}",
        })
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def xml_fields(body):
    """The child elements of an XML document's root as {tag: text}, namespaces dropped."""
    root = ET.fromstring(body)
    return {child.tag.split("}")[-1]: child.text for child in root}


def expect_post_error(status, code, message_part, resp):
    got_status, _, body = resp
    text = body.decode(errors="replace")
    eq(got_status, status, f"status (body {text!r})")
    fields = xml_fields(body)
    eq(fields.get("Code"), code, f"error Code (body {text!r})")
    assert message_part in (fields.get("Message") or ""), f"Message lacks {message_part!r}: {text!r}"


DATA = os.urandom(1024)
BIG = os.urandom(2 * 1024 * 1024 + 17)
MIB = 1024 * 1024

# ---------------------------------------------------------------- buckets


@check("create_bucket, then list_buckets / head_bucket / get_bucket_location see it")
def _():
    eq(status_of(s3.create_bucket(Bucket=BUCKET)), 200, "create_bucket status")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET in names, f"{BUCKET} missing from list_buckets: {names}"
    eq(status_of(s3.head_bucket(Bucket=BUCKET)), 200, "head_bucket status")
    # us-east-1 is reported as an empty LocationConstraint (None in boto3).
    eq(s3.get_bucket_location(Bucket=BUCKET).get("LocationConstraint"), None, "LocationConstraint")


# ---------------------------------------------------------------- put / get / head / checksums


@check("put_object (bytes) + get_object(ChecksumMode=ENABLED): body, ETag and ChecksumCRC32 round trip")
def _():
    resp = put("basic.bin", DATA)
    eq(resp["ETag"], md5_etag(DATA), "PutObject ETag")
    sent = [h for (m, u, h) in SENT if m == "PUT" and u.endswith("/basic.bin")][-1]
    eq(sent.get("x-amz-checksum-crc32", b"").decode() or None, crc32_b64(DATA), "CRC32 boto3 sent")
    eq(resp.get("ChecksumCRC32"), crc32_b64(DATA), "PutObject ChecksumCRC32")
    got = s3.get_object(Bucket=BUCKET, Key="basic.bin", ChecksumMode="ENABLED")
    eq(got["Body"].read(), DATA, "body")
    eq(got["ETag"], md5_etag(DATA), "GetObject ETag")
    eq(got["ContentLength"], len(DATA), "ContentLength")
    eq(got.get("ChecksumCRC32"), crc32_b64(DATA), "GetObject ChecksumCRC32")


@check("put_object with a file-like 2 MiB body (Expect: 100-continue) round trips with its CRC32")
def _():
    resp = put("big.bin", io.BytesIO(BIG))
    sent = [h for (m, u, h) in SENT if m == "PUT" and u.endswith("/big.bin")][-1]
    assert sent.get("Expect") == b"100-continue", (
        f"boto3 did not send Expect: 100-continue (headers {sorted(sent)}); this check no longer exercises it"
    )
    eq(resp["ETag"], md5_etag(BIG), "PutObject ETag")
    got = s3.get_object(Bucket=BUCKET, Key="big.bin", ChecksumMode="ENABLED")
    eq(got["Body"].read() == BIG, True, "body identical")
    eq(got.get("ChecksumCRC32"), crc32_b64(BIG), "GetObject ChecksumCRC32")


@check("put_object(ChecksumAlgorithm=SHA256): ChecksumSHA256 returned by get_object")
def _():
    resp = put("sha.bin", DATA, ChecksumAlgorithm="SHA256")
    eq(resp.get("ChecksumSHA256"), sha256_b64(DATA), "PutObject ChecksumSHA256")
    got = s3.get_object(Bucket=BUCKET, Key="sha.bin", ChecksumMode="ENABLED")
    eq(got["Body"].read(), DATA, "body")
    eq(got.get("ChecksumSHA256"), sha256_b64(DATA), "GetObject ChecksumSHA256")


@check("put_object with a wrong x-amz-checksum-crc32 → BadDigest, nothing stored")
def _():
    wrong = base64.b64encode(((zlib.crc32(DATA) + 1) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    # botocore retries BadDigest (4 retries with backoff); one attempt is enough here.
    once = make_client(config=Config(retries={"total_max_attempts": 1}))
    expect_error("BadDigest", 400, once.put_object, Bucket=BUCKET, Key="bad-crc.bin", Body=DATA,
                 ChecksumCRC32=wrong)
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="bad-crc.bin")


@check("head_object: ContentLength, ETag, LastModified, default Content-Type")
def _():
    head = s3.head_object(Bucket=BUCKET, Key="basic.bin")
    eq(head["ContentLength"], len(DATA), "ContentLength")
    eq(head["ETag"], md5_etag(DATA), "ETag")
    age = datetime.datetime.now(datetime.timezone.utc) - head["LastModified"]
    assert abs(age.total_seconds()) < 300, f"LastModified {head['LastModified']} is not recent"
    eq(head["ContentType"], "binary/octet-stream", "default ContentType")


# ---------------------------------------------------------------- ranges


@check("get_object Range: bytes=0-9, suffix bytes=-5, open-ended bytes=1000-")
def _():
    r = s3.get_object(Bucket=BUCKET, Key="basic.bin", Range="bytes=0-9")
    eq(status_of(r), 206, "status")
    eq(r["ContentRange"], f"bytes 0-9/{len(DATA)}", "ContentRange")
    eq(r["ContentLength"], 10, "ContentLength")
    eq(r["Body"].read(), DATA[:10], "body 0-9")
    r = s3.get_object(Bucket=BUCKET, Key="basic.bin", Range="bytes=-5")
    eq(r["ContentRange"], f"bytes {len(DATA) - 5}-{len(DATA) - 1}/{len(DATA)}", "suffix ContentRange")
    eq(r["Body"].read(), DATA[-5:], "suffix body")
    r = s3.get_object(Bucket=BUCKET, Key="basic.bin", Range="bytes=1000-")
    eq(r["ContentRange"], f"bytes 1000-{len(DATA) - 1}/{len(DATA)}", "open-ended ContentRange")
    eq(r["Body"].read(), DATA[1000:], "open-ended body")


@check("get_object Range beyond the end → InvalidRange (416)")
def _():
    expect_error("InvalidRange", 416, s3.get_object, Bucket=BUCKET, Key="basic.bin",
                 Range=f"bytes={len(DATA)}-")


# ---------------------------------------------------------------- conditionals


@check("conditional get_object: If-None-Match → 304, If-Match mismatch → 412, matches → 200")
def _():
    etag = s3.head_object(Bucket=BUCKET, Key="basic.bin")["ETag"]
    expect_error("304", 304, s3.get_object, Bucket=BUCKET, Key="basic.bin", IfNoneMatch=etag)
    expect_error("PreconditionFailed", 412, s3.get_object, Bucket=BUCKET, Key="basic.bin",
                 IfMatch='"0123456789abcdef0123456789abcdef"')
    eq(get_bytes("basic.bin", IfMatch=etag), DATA, "If-Match (matching) body")
    eq(get_bytes("basic.bin", IfNoneMatch='"0123456789abcdef0123456789abcdef"'), DATA,
       "If-None-Match (other) body")


@check("conditional get_object: If-Modified-Since / If-Unmodified-Since")
def _():
    last_modified = s3.head_object(Bucket=BUCKET, Key="basic.bin")["LastModified"]
    # Dates compare at the one-second granularity of the Last-Modified header.
    expect_error("304", 304, s3.get_object, Bucket=BUCKET, Key="basic.bin",
                 IfModifiedSince=last_modified)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    eq(get_bytes("basic.bin", IfModifiedSince=past), DATA, "If-Modified-Since (past) body")
    expect_error("PreconditionFailed", 412, s3.get_object, Bucket=BUCKET, Key="basic.bin",
                 IfUnmodifiedSince=past)


# ---------------------------------------------------------------- listing

PAGED_KEYS = ["pg/a1", "pg/a2", "pg/a3", "pg/dir/x", "pg/dir/y", "pg/sub/z", "pg/zz"]
# With Prefix="pg/" and Delimiter="/": four keys and two common prefixes, in this order.
PAGED_ENTRIES = ["pg/a1", "pg/a2", "pg/a3", "pg/dir/", "pg/sub/", "pg/zz"]


@check("list_objects_v2 MaxKeys=2 Delimiter='/': 3 pages, keys and CommonPrefixes in order")
def _():
    for key in PAGED_KEYS:
        put(key, b"x")
    pages, token = [], None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=BUCKET, Prefix="pg/", Delimiter="/", MaxKeys=2, **kwargs)
        pages.append(page)
        entries = [o["Key"] for o in page.get("Contents", [])] + [
            p["Prefix"] for p in page.get("CommonPrefixes", [])]
        eq(page["KeyCount"], len(entries), f"KeyCount of page {len(pages)}")
        eq(page["MaxKeys"], 2, "MaxKeys")
        eq(page["Delimiter"], "/", "Delimiter")
        if token:
            eq(page.get("ContinuationToken"), token, "ContinuationToken echoed")
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page, "NextContinuationToken on the last page"
            break
        token = page.get("NextContinuationToken")
        assert token, f"page {len(pages)} is truncated but has no NextContinuationToken"
        assert len(pages) < 10, "pagination does not terminate"
    seen = [sorted([o["Key"] for o in p.get("Contents", [])] + [c["Prefix"] for c in p.get("CommonPrefixes", [])])
            for p in pages]
    eq(seen, [PAGED_ENTRIES[0:2], PAGED_ENTRIES[2:4], PAGED_ENTRIES[4:6]], "entries per page")


@check("list_objects_v2 paginator (MaxKeys=2) and StartAfter")
def _():
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="pg/",
                                                              PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    eq(keys, PAGED_KEYS, "paginated keys")
    page = s3.list_objects_v2(Bucket=BUCKET, Prefix="pg/", StartAfter="pg/a3")
    eq([o["Key"] for o in page.get("Contents", [])], PAGED_KEYS[3:], "keys after StartAfter")
    eq(page.get("StartAfter"), "pg/a3", "StartAfter echoed")


@check("list_objects (v1): Marker echoed and honoured, NextMarker with Delimiter")
def _():
    page = s3.list_objects(Bucket=BUCKET, Prefix="pg/", Marker="pg/a3")
    eq(page.get("Marker"), "pg/a3", "Marker echoed")
    eq([o["Key"] for o in page.get("Contents", [])], PAGED_KEYS[3:], "keys after Marker")
    entries, marker, rounds = [], "", 0
    while True:
        page = s3.list_objects(Bucket=BUCKET, Prefix="pg/", Delimiter="/", MaxKeys=2, Marker=marker)
        eq(page.get("Marker", ""), marker, "Marker echoed")
        got = sorted([o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])])
        entries += got
        rounds += 1
        assert rounds < 10, "pagination does not terminate"
        if not page["IsTruncated"]:
            break
        eq(page.get("NextMarker"), got[-1], "NextMarker is the last key or prefix returned")
        marker = page["NextMarker"]
    eq(entries, PAGED_ENTRIES, "all entries across v1 pages")


ODD_KEYS = ["enc/a b+c.txt", "enc/x&y=z.txt", "enc/caf\u00e9 \u00fc.txt"]


@check("EncodingType='url': keys with spaces, '+', '&', non-ASCII are URL-encoded and decode back")
def _():
    for key in ODD_KEYS:
        put(key, key.encode())
    # Explicit EncodingType: boto3 leaves the keys as the server sent them.
    page = s3.list_objects_v2(Bucket=BUCKET, Prefix="enc/", EncodingType="url")
    eq(page.get("EncodingType"), "url", "EncodingType echoed")
    raw = [o["Key"] for o in page.get("Contents", [])]
    for key in raw:
        assert " " not in key and "&" not in key and key.isascii(), f"key not URL-encoded: {key!r}"
    eq(sorted(urllib.parse.unquote_plus(k) for k in raw), sorted(ODD_KEYS), "decoded keys")
    raw_v1 = [o["Key"] for o in s3.list_objects(Bucket=BUCKET, Prefix="enc/", EncodingType="url").get("Contents", [])]
    eq(sorted(urllib.parse.unquote_plus(k) for k in raw_v1), sorted(ODD_KEYS), "v1 decoded keys")
    # Default (boto3 asks for url encoding itself and decodes): keys, and a Prefix with a space.
    page = s3.list_objects_v2(Bucket=BUCKET, Prefix="enc/a b")
    eq([o["Key"] for o in page.get("Contents", [])], ["enc/a b+c.txt"], "keys under a spaced prefix")
    eq(page.get("Prefix"), "enc/a b", "Prefix echoed")
    for key in ODD_KEYS:
        eq(get_bytes(key), key.encode(), f"get_object {key!r}")


# ---------------------------------------------------------------- metadata and headers


@check("user metadata round trip (head_object and get_object)")
def _():
    meta = {"color": "blue", "multi-word": "two words, one value", "empty-ish": "-"}
    put("meta.txt", b"meta", Metadata=meta)
    eq(s3.head_object(Bucket=BUCKET, Key="meta.txt")["Metadata"], meta, "head_object Metadata")
    eq(s3.get_object(Bucket=BUCKET, Key="meta.txt")["Metadata"], meta, "get_object Metadata")


@check("Content-Type / Cache-Control / Content-Disposition round trip")
def _():
    headers = {
        "ContentType": "text/plain; charset=utf-8",
        "CacheControl": "max-age=3600, public",
        "ContentDisposition": 'attachment; filename="report.txt"',
    }
    put("headers.txt", b"hello", **headers)
    for op in (s3.head_object, s3.get_object):
        resp = op(Bucket=BUCKET, Key="headers.txt")
        for name, value in headers.items():
            eq(resp.get(name), value, f"{op.__name__} {name}")


@check("get_object response-* overrides (ResponseContentType, ResponseCacheControl, ...)")
def _():
    resp = s3.get_object(Bucket=BUCKET, Key="headers.txt", ResponseContentType="application/json",
                         ResponseCacheControl="no-store",
                         ResponseContentDisposition="inline")
    eq(resp.get("ContentType"), "application/json", "ContentType")
    eq(resp.get("CacheControl"), "no-store", "CacheControl")
    eq(resp.get("ContentDisposition"), "inline", "ContentDisposition")
    eq(resp["Body"].read(), b"hello", "body")


# ---------------------------------------------------------------- presigned URLs


@check("presigned PUT (SigV4, signed Content-Type) uploaded with urllib")
def _():
    body = os.urandom(3000)
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "presigned-put.bin", "ContentType": "text/plain"},
        ExpiresIn=300)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, url
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        eq(resp.status, 200, "presigned PUT status")
        eq(resp.headers.get("ETag"), md5_etag(body), "presigned PUT ETag")
    got = s3.get_object(Bucket=BUCKET, Key="presigned-put.bin")
    eq(got["Body"].read() == body, True, "stored body identical")
    eq(got["ContentType"], "text/plain", "ContentType")


@check("presigned GET (SigV4) fetched with urllib")
def _():
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "basic.bin"},
                                           ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=30) as resp:
        eq(resp.status, 200, "status")
        eq(resp.read(), DATA, "body")


@check("tampered presigned URL (other key) → 403 SignatureDoesNotMatch")
def _():
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "basic.bin"},
                                           ExpiresIn=300)
    tampered = url.replace("/basic.bin?", "/sha.bin?", 1)
    assert tampered != url
    try:
        urllib.request.urlopen(tampered, timeout=30)
    except urllib.error.HTTPError as e:
        eq(e.code, 403, "status")
        body = e.read().decode(errors="replace")
        assert "<Code>SignatureDoesNotMatch</Code>" in body, body
    else:
        raise AssertionError("tampered URL was accepted")


# ---------------------------------------------------------------- delete


@check("delete_object → 204, then NoSuchKey; deleting a missing key is also 204")
def _():
    put("doomed.txt", b"bye")
    eq(status_of(s3.delete_object(Bucket=BUCKET, Key="doomed.txt")), 204, "delete status")
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="doomed.txt")
    eq(status_of(s3.delete_object(Bucket=BUCKET, Key="doomed.txt")), 204, "second delete status")
    assert "doomed.txt" not in all_keys(s3, BUCKET), "deleted key still listed"


# ---------------------------------------------------------------- browser POST form uploads


def presigned_post(key="uploads/${filename}", fields=None, conditions=None, expires_in=300):
    """A SigV4 POST policy, as a web application hands it to a browser form."""
    post = presigner.generate_presigned_post(BUCKET, key, Fields=dict(fields or {}),
                                             Conditions=list(conditions or []), ExpiresIn=expires_in)
    eq(post["fields"].get("x-amz-algorithm"), "AWS4-HMAC-SHA256", "policy signature algorithm")
    return post


FORM_FIELDS = {"success_action_status": "201", "Content-Type": "text/plain", "x-amz-meta-uploader": "conformance"}
FORM_CONDITIONS = [
    {"success_action_status": "201"},
    ["starts-with", "$Content-Type", "text/"],
    ["eq", "$x-amz-meta-uploader", "conformance"],
    ["content-length-range", 1, 1024],
]


@check("POST form (eq, starts-with, content-length-range; key uploads/${filename}) → 201 PostResponse, object readable")
def _():
    post = presigned_post(fields=FORM_FIELDS, conditions=FORM_CONDITIONS)
    body = b"hello from a browser form\n"
    status, _, resp = post_form(post["url"], post["fields"], "hello.txt", body)
    eq(status, 201, f"status (body {resp!r})")
    fields = xml_fields(resp)
    eq(fields.get("Bucket"), BUCKET, "PostResponse Bucket")
    eq(fields.get("Key"), "uploads/hello.txt", "PostResponse Key (${filename} replaced)")
    eq(fields.get("ETag"), md5_etag(body), "PostResponse ETag")
    assert fields.get("Location"), f"PostResponse has no Location: {resp!r}"
    got = s3.get_object(Bucket=BUCKET, Key="uploads/hello.txt")
    eq(got["Body"].read(), body, "stored body")
    eq(got["ContentType"], "text/plain", "ContentType (from the Content-Type form field)")
    eq(got["Metadata"], {"uploader": "conformance"}, "Metadata (from x-amz-meta-* form fields)")


@check("POST form 201: PostResponse Location is the object's absolute URL (as S3's http(s)://host/...key)")
def _():
    post = presigned_post(fields=FORM_FIELDS, conditions=FORM_CONDITIONS)
    status, _, resp = post_form(post["url"], post["fields"], "located.txt", b"where am I")
    eq(status, 201, f"status (body {resp!r})")
    location = xml_fields(resp).get("Location") or ""
    parts = urllib.parse.urlsplit(location)
    assert parts.scheme in ("http", "https") and parts.netloc, (
        f"PostResponse Location {location!r} is not an absolute URL; S3 answers e.g. "
        f"<Location>https://{BUCKET}.s3.amazonaws.com/uploads%2Flocated.txt</Location>")
    assert urllib.parse.unquote(parts.path).endswith("uploads/located.txt"), f"Location {location!r}"


@check("POST form: file larger than content-length-range → 400 EntityTooLarge, nothing stored")
def _():
    post = presigned_post(fields=FORM_FIELDS, conditions=FORM_CONDITIONS)
    resp = post_form(post["url"], post["fields"], "too-big.txt", os.urandom(2048))
    expect_post_error(400, "EntityTooLarge", "", resp)
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="uploads/too-big.txt")


@check("POST form: Content-Type failing starts-with → 403 AccessDenied 'Policy Condition failed'")
def _():
    post = presigned_post(fields=FORM_FIELDS, conditions=FORM_CONDITIONS)
    fields = dict(post["fields"], **{"Content-Type": "image/png"})
    resp = post_form(post["url"], fields, "wrong-type.txt", b"not an image")
    expect_post_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed", resp)
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="uploads/wrong-type.txt")


@check("POST form: expired policy → 403 AccessDenied 'Policy expired'")
def _():
    post = presigned_post(fields=FORM_FIELDS, conditions=FORM_CONDITIONS, expires_in=-60)
    resp = post_form(post["url"], post["fields"], "late.txt", b"too late")
    expect_post_error(403, "AccessDenied", "Policy expired", resp)
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="uploads/late.txt")


@check("POST form with a Content-MD5 field: matching → stored; wrong → 400 BadDigest, nothing stored")
def _():
    body = b"digest me"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    post = presigned_post(key="uploads/md5-good.txt", fields={"Content-MD5": good}, conditions=[{"Content-MD5": good}])
    status, _, resp = post_form(post["url"], post["fields"], "x.txt", body)
    eq(status, 204, f"status with the right Content-MD5 (body {resp!r})")
    eq(get_bytes("uploads/md5-good.txt"), body, "stored body")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    post = presigned_post(key="uploads/md5-bad.txt", fields={"Content-MD5": wrong}, conditions=[{"Content-MD5": wrong}])
    expect_post_error(400, "BadDigest", "", post_form(post["url"], post["fields"], "x.txt", body))
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="uploads/md5-bad.txt")


@check("POST form: success_action_redirect → 303, Location carries bucket, key and etag")
def _():
    target = "https://example.com/uploaded"
    post = presigned_post(key="uploads/redirected.txt", fields={"success_action_redirect": target},
                          conditions=[{"success_action_redirect": target}])
    body = b"redirect me"
    status, headers, resp = post_form(post["url"], post["fields"], "ignored-name.txt", body)
    eq(status, 303, f"status (body {resp!r})")
    location = urllib.parse.urlsplit(headers.get("Location") or "")
    eq(f"{location.scheme}://{location.netloc}{location.path}", target, f"Location {headers.get('Location')!r}")
    query = urllib.parse.parse_qs(location.query)
    eq(query.get("bucket"), [BUCKET], "bucket in Location")
    eq(query.get("key"), ["uploads/redirected.txt"], "key in Location")
    eq(query.get("etag"), [md5_etag(body)], "etag in Location")
    eq(get_bytes("uploads/redirected.txt"), body, "stored body")


@check("POST form: default 204; a field outside the policy, a key failing starts-with → 403; bad signature → 403")
def _():
    post = presigned_post(key="uploads/plain-${filename}")
    status, _, resp = post_form(post["url"], post["fields"], "a.txt", b"plain")
    eq(status, 204, f"status without success_action_status (body {resp!r})")
    eq(get_bytes("uploads/plain-a.txt"), b"plain", "stored body")
    # x-ignore-* fields need no condition.
    status, _, resp = post_form(post["url"], dict(post["fields"], **{"x-ignore-tracking": "1"}), "b.txt", b"b")
    eq(status, 204, f"status with an x-ignore-* field (body {resp!r})")
    extra = dict(post["fields"], **{"x-amz-meta-sneaky": "yes"})
    expect_post_error(403, "AccessDenied", "Invalid according to Policy", post_form(post["url"], extra, "c.txt", b"c"))
    elsewhere = dict(post["fields"], key="elsewhere/${filename}")
    expect_post_error(403, "AccessDenied", "Invalid according to Policy",
                      post_form(post["url"], elsewhere, "d.txt", b"d"))
    forged = dict(post["fields"], **{"x-amz-signature": "0" * 64})
    expect_post_error(403, "SignatureDoesNotMatch", "", post_form(post["url"], forged, "e.txt", b"e"))
    for name in ("uploads/plain-c.txt", "elsewhere/d.txt", "uploads/plain-e.txt"):
        expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key=name)


# ---------------------------------------------------------------- multipart uploads


def lower_headers(headers):
    return {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()}


@check("upload_file 20 MiB (TransferConfig defaults: 3 parts, CRC32) + download_file; ETag, composite CRC32, PartNumber")
def _():
    config = TransferConfig()
    eq((config.multipart_threshold, config.multipart_chunksize), (8 * MIB, 8 * MIB), "TransferConfig defaults")
    data = os.urandom(20 * MIB)
    parts = [data[i:i + 8 * MIB] for i in range(0, len(data), 8 * MIB)]
    key = "mpu/upload-file.bin"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "up.bin"), os.path.join(tmp, "down.bin")
        with open(src, "wb") as f:
            f.write(data)
        first = len(SENT)
        s3.upload_file(src, BUCKET, key)
        sent = [(m, u, lower_headers(h)) for (m, u, h) in SENT[first:]]
        creates = [h for (m, u, h) in sent if m == "POST" and u.endswith("?uploads")]
        eq(len(creates), 1, "CreateMultipartUpload requests")
        eq(creates[0].get("x-amz-checksum-algorithm"), "CRC32", "CreateMultipartUpload checksum algorithm")
        eq(len([u for (m, u, h) in sent if m == "PUT" and "partNumber=" in u]), 3, "UploadPart requests")
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        eq(head["ContentLength"], len(data), "ContentLength")
        eq(head["ETag"], md5_of_parts_etag(parts), "ETag")
        eq(head.get("ChecksumCRC32"), composite_crc32_b64(parts), "ChecksumCRC32 (composite)")
        eq(head.get("ChecksumType"), "COMPOSITE", "ChecksumType")
        got = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        eq(got["Body"].read() == data, True, "get_object(ChecksumMode=ENABLED) body identical")
        s3.download_file(BUCKET, key, dst)
        with open(dst, "rb") as f:
            eq(f.read() == data, True, "download_file body identical")
    part = s3.get_object(Bucket=BUCKET, Key=key, PartNumber=2)
    eq(status_of(part), 206, "PartNumber=2 status")
    eq(part.get("PartsCount"), 3, "PartsCount")
    eq(part["ContentLength"], 8 * MIB, "PartNumber=2 ContentLength")
    eq(part.get("ContentRange"), f"bytes {8 * MIB}-{16 * MIB - 1}/{len(data)}", "PartNumber=2 ContentRange")
    eq(part["Body"].read() == parts[1], True, "PartNumber=2 body is the second part")
    last = s3.head_object(Bucket=BUCKET, Key=key, PartNumber=3)
    eq((last["ContentLength"], last.get("PartsCount")), (4 * MIB, 3), "head_object PartNumber=3")
    expect_error("InvalidPartNumber", 416, s3.get_object, Bucket=BUCKET, Key=key, PartNumber=4)


@check("head_object / get_object without PartNumber: no PartsCount (S3 sends x-amz-mp-parts-count only with partNumber)")
def _():
    key = "mpu/upload-file.bin"  # the 3-part object uploaded above
    eq(s3.head_object(Bucket=BUCKET, Key=key).get("PartsCount"), None, "head_object PartsCount")
    got = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-0")
    got["Body"].read()
    eq(got.get("PartsCount"), None, "get_object PartsCount")


@check("multipart with no checksum algorithm: list_multipart_uploads, list_parts paging, full-object CRC64NVME")
def _():
    # No checksum headers at all (boto3's default would add CRC32 to every UploadPart).
    plain = make_client(config=Config(request_checksum_calculation="when_required"))
    key = "mpu/low-level.bin"
    p1, p2 = os.urandom(5 * MIB), os.urandom(100 * 1024)
    upload_id = plain.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="application/x-test")["UploadId"]
    listed = plain.list_multipart_uploads(Bucket=BUCKET, Prefix="mpu/")
    eq([(u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])], [(key, upload_id)], "listed uploads")
    e1 = plain.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=p1)["ETag"]
    e2 = plain.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=2, Body=p2)["ETag"]
    eq((e1, e2), (md5_etag(p1), md5_etag(p2)), "part ETags")
    parts = plain.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    eq([(p["PartNumber"], p["Size"], p["ETag"]) for p in parts["Parts"]], [(1, len(p1), e1), (2, len(p2), e2)],
       "list_parts")
    page = plain.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, MaxParts=1)
    eq(([p["PartNumber"] for p in page["Parts"]], page["IsTruncated"], page.get("NextPartNumberMarker")),
       ([1], True, 1), "list_parts MaxParts=1")
    page = plain.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumberMarker=1)
    eq(([p["PartNumber"] for p in page["Parts"]], page["IsTruncated"]), ([2], False), "list_parts after marker 1")
    done = plain.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    eq(done["ETag"], md5_of_parts_etag([p1, p2]), "CompleteMultipartUpload ETag")
    head = plain.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    eq(head.get("ChecksumType"), "FULL_OBJECT", "ChecksumType")
    eq(head.get("ChecksumCRC64NVME"), crc64nvme_b64(p1 + p2), "ChecksumCRC64NVME of the whole object")
    eq(head["ContentType"], "application/x-test", "ContentType from CreateMultipartUpload")
    eq(get_bytes(key) == p1 + p2, True, "body identical")
    eq(plain.list_multipart_uploads(Bucket=BUCKET, Prefix="mpu/").get("Uploads", []), [], "uploads after completion")
    # UploadPartCopy of the same two ranges: same bytes, so the same ETag and CRC64NVME.
    copy_key = "mpu/part-copy.bin"
    upload_id = plain.create_multipart_upload(Bucket=BUCKET, Key=copy_key)["UploadId"]
    copied = []
    for number, byte_range in ((1, f"bytes=0-{len(p1) - 1}"), (2, f"bytes={len(p1)}-{len(p1) + len(p2) - 1}")):
        result = plain.upload_part_copy(Bucket=BUCKET, Key=copy_key, UploadId=upload_id, PartNumber=number,
                                        CopySource={"Bucket": BUCKET, "Key": key}, CopySourceRange=byte_range)
        copied.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
    eq([c["ETag"] for c in copied], [e1, e2], "UploadPartCopy ETags")
    done = plain.complete_multipart_upload(Bucket=BUCKET, Key=copy_key, UploadId=upload_id,
                                           MultipartUpload={"Parts": copied})
    eq(done["ETag"], md5_of_parts_etag([p1, p2]), "ETag of the part-copied object")
    copy_head = plain.head_object(Bucket=BUCKET, Key=copy_key, ChecksumMode="ENABLED")
    eq(copy_head.get("ChecksumCRC64NVME"), head.get("ChecksumCRC64NVME"), "ChecksumCRC64NVME of the part-copied object")
    eq(get_bytes(copy_key) == p1 + p2, True, "part-copied body identical")


@check("complete_multipart_upload errors: EntityTooSmall, InvalidPart, InvalidPartOrder; abort → NoSuchUpload")
def _():
    key = "mpu/errors.bin"
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    a, b = b"a" * 1024, b"b" * 1024
    e1 = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=a)["ETag"]
    e2 = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=2, Body=b)["ETag"]
    p1 = {"PartNumber": 1, "ETag": e1, "ChecksumCRC32": crc32_b64(a)}
    p2 = {"PartNumber": 2, "ETag": e2, "ChecksumCRC32": crc32_b64(b)}

    def complete(*parts):
        return s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": list(parts)})

    expect_error("EntityTooSmall", 400, complete, p1, p2)
    expect_error("InvalidPart", 400, complete, dict(p1, ETag=md5_etag(b"something else")))
    expect_error("InvalidPart", 400, complete, dict(p1, PartNumber=3))
    expect_error("InvalidPartOrder", 400, complete, p2, p1)
    eq(len(s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)["Parts"]), 2, "parts after failed completes")
    eq(status_of(s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)), 204, "abort status")
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=BUCKET, Key=key, UploadId=upload_id)
    expect_error("NoSuchUpload", 404, s3.upload_part, Bucket=BUCKET, Key=key, UploadId=upload_id,
                 PartNumber=3, Body=b"late")
    expect_error("NoSuchUpload", 404, complete, p1)
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key=key)


# ---------------------------------------------------------------- conditional writes


@check("conditional writes: put_object IfNoneMatch='*' / IfMatch; complete_multipart_upload IfNoneMatch / IfMatch")
def _():
    key = "cond/put.txt"
    first = put(key, b"one", IfNoneMatch="*")
    expect_error("PreconditionFailed", 412, put, key, b"two", IfNoneMatch="*")
    expect_error("PreconditionFailed", 412, put, key, b"two", IfMatch=md5_etag(b"other"))
    expect_error("NoSuchKey", 404, put, "cond/missing.txt", b"two", IfMatch=md5_etag(b"one"))
    eq(get_bytes(key), b"one", "body after refused writes")
    put(key, b"two", IfMatch=first["ETag"])
    eq(get_bytes(key), b"two", "body after IfMatch with the current ETag")
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=b"three")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag, "ChecksumCRC32": crc32_b64(b"three")}]}
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                 UploadId=upload_id, MultipartUpload=parts, IfNoneMatch="*")
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                 UploadId=upload_id, MultipartUpload=parts, IfMatch=md5_etag(b"one"))
    eq(get_bytes(key), b"two", "body after refused completes")
    # A 412 leaves the upload in place (only a 409 conflict ends it), so it can be completed.
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload=parts,
                                 IfMatch=md5_etag(b"two"))
    eq(get_bytes(key), b"three", "body after a completed conditional multipart upload")


# ---------------------------------------------------------------- DeleteObjects


@check("delete_objects (CRC32, no Content-MD5): verbose lists Deleted, Quiet=True lists none; 1001 keys → MalformedXML")
def _():
    keys = [f"batch/{i:02d}.txt" for i in range(12)]
    for key in keys:
        put(key, key.encode())
    resp = s3.delete_objects(Bucket=BUCKET, Delete={
        "Objects": [{"Key": k} for k in keys[:6]] + [{"Key": "batch/never-existed"}]})
    sent = sent_headers("POST", "?delete")
    assert "x-amz-checksum-crc32" in sent and "content-md5" not in sent, f"boto3 sent {sorted(sent)}"
    eq(status_of(resp), 200, "status")
    eq(sorted(d["Key"] for d in resp.get("Deleted", [])), keys[:6] + ["batch/never-existed"], "Deleted")
    eq(resp.get("Errors", []), [], "Errors")
    resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[6:]], "Quiet": True})
    eq((resp.get("Deleted", []), resp.get("Errors", [])), ([], []), "quiet mode Deleted / Errors")
    eq([k for k in all_keys(s3, BUCKET) if k.startswith("batch/")], [], "batch/ keys left")
    expect_error("MalformedXML", 400, s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": f"batch/{i}"} for i in range(1001)], "Quiet": True})


# ---------------------------------------------------------------- CopyObject


@check("copy_object: COPY keeps metadata, REPLACE replaces it; CopySourceIf* → 412; self-copy needs REPLACE")
def _():
    src, body = "copy/src with space+plus.txt", b"copy me"
    put(src, body, Metadata={"origin": "source"}, ContentType="text/plain")
    source = {"Bucket": BUCKET, "Key": src}
    resp = s3.copy_object(Bucket=BUCKET, Key="copy/kept.txt", CopySource=source)
    eq(resp["CopyObjectResult"]["ETag"], md5_etag(body), "CopyObjectResult ETag")
    head = s3.head_object(Bucket=BUCKET, Key="copy/kept.txt")
    eq((head["Metadata"], head["ContentType"]), ({"origin": "source"}, "text/plain"), "COPY metadata")
    s3.copy_object(Bucket=BUCKET, Key="copy/replaced.txt", CopySource=source, MetadataDirective="REPLACE",
                   Metadata={"origin": "replaced"}, ContentType="application/json")
    head = s3.head_object(Bucket=BUCKET, Key="copy/replaced.txt")
    eq((head["Metadata"], head["ContentType"]), ({"origin": "replaced"}, "application/json"), "REPLACE metadata")
    eq(get_bytes("copy/replaced.txt"), body, "copied body")
    expect_error("PreconditionFailed", 412, s3.copy_object, Bucket=BUCKET, Key="copy/cond.txt", CopySource=source,
                 CopySourceIfMatch=md5_etag(b"other"))
    expect_error("PreconditionFailed", 412, s3.copy_object, Bucket=BUCKET, Key="copy/cond.txt", CopySource=source,
                 CopySourceIfNoneMatch=md5_etag(body))
    s3.copy_object(Bucket=BUCKET, Key="copy/cond.txt", CopySource=source, CopySourceIfMatch=md5_etag(body))
    eq(get_bytes("copy/cond.txt"), body, "copy with a matching CopySourceIfMatch")
    expect_error("InvalidRequest", 400, s3.copy_object, Bucket=BUCKET, Key=src, CopySource=source)
    s3.copy_object(Bucket=BUCKET, Key=src, CopySource=source, MetadataDirective="REPLACE", Metadata={"origin": "self"})
    eq(s3.head_object(Bucket=BUCKET, Key=src)["Metadata"], {"origin": "self"}, "self-copy with REPLACE")
    expect_error("NoSuchKey", 404, s3.copy_object, Bucket=BUCKET, Key="copy/x.txt",
                 CopySource={"Bucket": BUCKET, "Key": "copy/missing.txt"})


# ---------------------------------------------------------------- tagging, ACLs, versioning


def tags_of(key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}


@check("object tagging: Tagging on put_object (TagCount), put/get/delete_object_tagging, InvalidTag")
def _():
    key = "tags/obj.txt"
    put(key, b"tagged", Tagging="team=storage&stage=test run")
    eq(tags_of(key), {"team": "storage", "stage": "test run"}, "tags from x-amz-tagging")
    eq(s3.get_object(Bucket=BUCKET, Key=key).get("TagCount"), 2, "TagCount")
    s3.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    eq(tags_of(key), {"only": "one"}, "tags after put_object_tagging")
    eq(status_of(s3.delete_object_tagging(Bucket=BUCKET, Key=key)), 204, "delete_object_tagging status")
    eq(tags_of(key), {}, "tags after delete_object_tagging")
    eq(s3.get_object(Bucket=BUCKET, Key=key).get("TagCount"), None, "TagCount without tags")
    expect_error("InvalidTag", 400, s3.put_object_tagging, Bucket=BUCKET, Key=key,
                 Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    expect_error("NoSuchKey", 404, s3.get_object_tagging, Bucket=BUCKET, Key="tags/missing.txt")


def grants_of(acl):
    return sorted((g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
                  for g in acl["Grants"])


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@check("ACLs: owner FULL_CONTROL; canned public-read (put_object, put_object_acl) adds AllUsers READ; bucket ACL")
def _():
    put("acl/private.txt", b"acl")
    acl = s3.get_object_acl(Bucket=BUCKET, Key="acl/private.txt")
    owner = acl["Owner"]["ID"]
    assert owner, f"no Owner ID: {acl['Owner']}"
    eq(grants_of(acl), [("CanonicalUser", owner, "FULL_CONTROL")], "private object grants")
    put("acl/public.txt", b"acl", ACL="public-read")
    eq(grants_of(s3.get_object_acl(Bucket=BUCKET, Key="acl/public.txt")),
       [("CanonicalUser", owner, "FULL_CONTROL"), ("Group", ALL_USERS, "READ")], "public-read object grants")
    s3.put_object_acl(Bucket=BUCKET, Key="acl/private.txt", ACL="public-read")
    eq(grants_of(s3.get_object_acl(Bucket=BUCKET, Key="acl/private.txt")),
       [("CanonicalUser", owner, "FULL_CONTROL"), ("Group", ALL_USERS, "READ")], "grants after put_object_acl")
    s3.put_object_acl(Bucket=BUCKET, Key="acl/private.txt", ACL="private")
    eq(grants_of(s3.get_object_acl(Bucket=BUCKET, Key="acl/private.txt")),
       [("CanonicalUser", owner, "FULL_CONTROL")], "grants after put_object_acl private")
    bucket_acl = s3.get_bucket_acl(Bucket=BUCKET)
    eq(bucket_acl["Owner"]["ID"], owner, "bucket owner")
    eq(grants_of(bucket_acl), [("CanonicalUser", owner, "FULL_CONTROL")], "bucket grants")
    other = f"{BUCKET}-acl"
    s3.create_bucket(Bucket=other, ACL="private")
    try:
        eq(grants_of(s3.get_bucket_acl(Bucket=other)), [("CanonicalUser", owner, "FULL_CONTROL")],
           "grants of a bucket created with ACL=private")
    finally:
        s3.delete_bucket(Bucket=other)


@check("get_bucket_versioning of a never-versioned bucket: no Status, no MFADelete")
def _():
    resp = s3.get_bucket_versioning(Bucket=BUCKET)
    eq(status_of(resp), 200, "status")
    eq({k: v for k, v in resp.items() if k != "ResponseMetadata"}, {}, "versioning configuration")


# ---------------------------------------------------------------- errors


@check("NoSuchKey on get_object, 404 on head_object of a missing key")
def _():
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="no/such/key")
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="no/such/key")


@check("NoSuchBucket on get_object / put_object / list_objects_v2 / delete_bucket; head_bucket 404")
def _():
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    expect_error("NoSuchBucket", 404, s3.get_object, Bucket=missing, Key="k")
    expect_error("NoSuchBucket", 404, s3.put_object, Bucket=missing, Key="k", Body=b"x")
    expect_error("NoSuchBucket", 404, s3.list_objects_v2, Bucket=missing)
    expect_error("NoSuchBucket", 404, s3.delete_bucket, Bucket=missing)
    expect_error("404", 404, s3.head_bucket, Bucket=missing)


@check("delete_bucket on a non-empty bucket → BucketNotEmpty (409)")
def _():
    expect_error("BucketNotEmpty", 409, s3.delete_bucket, Bucket=BUCKET)
    eq(status_of(s3.head_bucket(Bucket=BUCKET)), 200, "bucket still there")


@check("second create_bucket of an owned bucket in us-east-1 → 200 (AWS's legacy rule)")
def _():
    eq(status_of(s3.create_bucket(Bucket=BUCKET)), 200, "CreateBucket again")


@check("create_bucket('Bad_Name') → InvalidBucketName (400)")
def _():
    expect_error("InvalidBucketName", 400, s3.create_bucket, Bucket="Bad_Name")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "Bad_Name" not in names, names


@check("wrong secret key → SignatureDoesNotMatch (403) and nothing stored")
def _():
    forger = make_client(secret_key="not-" + SECRET_KEY)
    expect_error("SignatureDoesNotMatch", 403, forger.put_object, Bucket=BUCKET, Key="forged.txt", Body=b"evil")
    expect_error("404", 404, s3.head_object, Bucket=BUCKET, Key="forged.txt")
    expect_error("SignatureDoesNotMatch", 403, forger.get_object, Bucket=BUCKET, Key="basic.bin")


@check("unknown access key → InvalidAccessKeyId (403)")
def _():
    stranger = make_client(access_key="AKIDNOSUCHUSER0000000")
    expect_error("InvalidAccessKeyId", 403, stranger.list_buckets)


# ---------------------------------------------------------------- virtual-hosted style


@check(f"virtual-hosted style ({VHOST_BUCKET}.{VHOST_DOMAIN}): create/put/get/head/list/POST form/delete")
def _():
    host = f"{VHOST_BUCKET}.{VHOST_DOMAIN}"
    for name in (VHOST_DOMAIN, host):
        try:
            socket.getaddrinfo(name, PORT)
        except socket.gaierror as e:
            raise AssertionError(
                f"{name} does not resolve ({e}); add '127.0.0.1 {VHOST_DOMAIN} {host}' to /etc/hosts")
    vs3 = make_client(endpoint=f"http://{VHOST_DOMAIN}:{PORT}",
                      config=Config(s3={"addressing_style": "virtual"}))
    urls = []
    vs3.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    vs3.create_bucket(Bucket=VHOST_BUCKET)
    try:
        eq(urls[-1].split("?")[0], f"http://{host}:{PORT}/", "CreateBucket URL")
        body = os.urandom(4096)
        resp = vs3.put_object(Bucket=VHOST_BUCKET, Key="dir/hello.bin", Body=body)
        eq(urls[-1], f"http://{host}:{PORT}/dir/hello.bin", "PutObject URL")
        eq(resp.get("ChecksumCRC32"), crc32_b64(body), "PutObject ChecksumCRC32")
        got = vs3.get_object(Bucket=VHOST_BUCKET, Key="dir/hello.bin", ChecksumMode="ENABLED")
        eq(got["Body"].read() == body, True, "body identical")
        eq(got.get("ChecksumCRC32"), crc32_b64(body), "GetObject ChecksumCRC32")
        eq(vs3.head_object(Bucket=VHOST_BUCKET, Key="dir/hello.bin")["ContentLength"], len(body), "head")
        eq([o["Key"] for o in vs3.list_objects_v2(Bucket=VHOST_BUCKET).get("Contents", [])],
           ["dir/hello.bin"], "list_objects_v2")
        eq([o["Key"] for o in vs3.list_objects(Bucket=VHOST_BUCKET).get("Contents", [])],
           ["dir/hello.bin"], "list_objects")
        # The same bucket and object are visible path-style.
        eq(get_bytes_from(VHOST_BUCKET, "dir/hello.bin") == body, True, "path-style read of vhost object")
        # ListBuckets on the bare base domain.
        names = [b["Name"] for b in vs3.list_buckets()["Buckets"]]
        assert VHOST_BUCKET in names and BUCKET in names, names
        expect_error("NoSuchKey", 404, vs3.get_object, Bucket=VHOST_BUCKET, Key="nope")
        # A browser form posting to the virtual-hosted bucket URL.
        vpresigner = make_client(endpoint=f"http://{VHOST_DOMAIN}:{PORT}",
                                 config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
        post = vpresigner.generate_presigned_post(VHOST_BUCKET, "form/${filename}", ExpiresIn=300)
        eq(post["url"], f"http://{host}:{PORT}/", "POST form URL")
        status, _, resp = post_form(post["url"], post["fields"], "v.txt", b"virtual form")
        eq(status, 204, f"POST form status (body {resp!r})")
        eq(get_bytes_from(VHOST_BUCKET, "form/v.txt"), b"virtual form", "POST form object")
        eq(status_of(vs3.delete_object(Bucket=VHOST_BUCKET, Key="form/v.txt")), 204, "delete status")
        eq(status_of(vs3.delete_object(Bucket=VHOST_BUCKET, Key="dir/hello.bin")), 204, "delete status")
    finally:
        empty_and_delete_bucket(vs3, VHOST_BUCKET)
    expect_error("404", 404, s3.head_bucket, Bucket=VHOST_BUCKET)


# ---------------------------------------------------------------- teardown


@check("teardown: delete every object (delete_objects), delete the bucket, head_bucket → 404")
def _():
    empty_and_delete_bucket(s3, BUCKET)
    expect_error("404", 404, s3.head_bucket, Bucket=BUCKET)
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]], "bucket still listed"


def main():
    print(f"== test_boto3.py: bucket {BUCKET} at {ENDPOINT} (boto3 {boto3.__version__})")
    passed = failed = 0
    for name, fn in CHECKS:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 — report every failure and keep going
            failed += 1
            print(f"FAIL: {name}")
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc().rstrip()
            for line in detail.splitlines():
                print(f"    | {line}")
        else:
            passed += 1
            print(f"PASS: {name}")
    # Leave nothing behind if the teardown check failed half-way.
    for bucket in (BUCKET, VHOST_BUCKET):
        try:
            empty_and_delete_bucket(s3, bucket)
        except Exception:  # noqa: BLE001
            pass
    print(f"== test_boto3.py done: pass={passed} fail={failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
