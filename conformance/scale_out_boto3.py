#!/usr/bin/env python3
"""scale_out_boto3.py — boto3 workflows through the load balancer of docs/scale-out.md.

Started by conformance/scale_out.sh, with nginx (docs/nginx-scale-out.conf) in front of two
Lifeboat nodes. Every S3 request goes to LIFEBOAT_ENDPOINT, the load balancer:
  * uploads refused before their body is read (an unknown access key, 8 MiB): 403 through nginx
    too (the node reads and drops the rest of the body before closing); nothing is stored;
  * put/get/head/delete of keys that need escaping in the signed path (space, "+", "~", "(",
    "!", "'", "*", non-ASCII, "//", which a proxy that normalises paths would merge);
  * signed user metadata whose name has "_", and 150 metadata headers, whose 4.5 KiB response
    head must pass (read with curl: Python's http.client refuses more than 100 header lines);
  * an empty PUT sent with Expect: 100-continue, followed by more PUTs on the same connections;
  * an HTML object asked for with Accept-Encoding: gzip comes back as stored;
  * a listing from whichever node the bucket hashes to shows objects written through both nodes;
  * DeleteObjects (routed by bucket, not by key): afterwards every key reads 404;
  * a 100 MiB multipart upload (create, 13 x upload_part of 8 MiB, list_parts, complete), its
    ETag "-13", read back with the same sha256;
  * generate_presigned_url for get_object and put_object, used with urllib;
  * Lifeboat's POST /storage/presigned-upload, asked of node a's admin listener
    (LIFEBOAT_ADMIN_ENDPOINT, which a load balancer does not front): the URL points at the load
    balancer (server.public_url), and the PUT goes through it;
  * virtual-hosted style (http://vhost-bucket.s3.localhost:PORT), where nginx takes the bucket
    from the Host for the hash, and the same object read path-style (skipped when the name does
    not resolve, unless CI=true).

Environment: LIFEBOAT_ENDPOINT, LIFEBOAT_ADMIN_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, BIG_FILE (a 100 MiB file); optional LIFEBOAT_VHOST_BUCKET.
Prints one "PASS: ...", "FAIL: ..." or "SKIP: ..." line per check, and "INFO: affinity /BUCKET/KEY
(WHY)" for each object whose requests must all have reached one node, which scale_out.sh then
checks in nginx's log; exits 1 if any check failed.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ENDPOINT = os.environ["LIFEBOAT_ENDPOINT"].rstrip("/")
ADMIN = os.environ["LIFEBOAT_ADMIN_ENDPOINT"].rstrip("/")
PORT = urllib.parse.urlsplit(ENDPOINT).port
ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
BIG_FILE = os.environ["BIG_FILE"]
REGION = "us-east-1"
VHOST_DOMAIN = "s3.localhost"
VHOST_BUCKET = os.environ.get("LIFEBOAT_VHOST_BUCKET", "vhost-bucket")
PART = 8 * 1024 * 1024

BUCKET = f"lb-boto3-{uuid.uuid4().hex[:12]}"

# No retries: a request that fails through the proxy fails its check instead of being retried
# away. A short read timeout turns a stalled connection into a failure rather than a hang.
CONFIG = Config(signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5, read_timeout=30)


def client(endpoint=ENDPOINT, addressing="path"):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=CONFIG.merge(Config(s3={"addressing_style": addressing})))


s3 = client()

CHECKS = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def eq(actual, expected, what=""):
    assert actual == expected, f"{what + ': ' if what else ''}expected {expected!r}, got {actual!r}"


def status_of(call, **kwargs):
    try:
        call(**kwargs)
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------- checks


@check("create_bucket")
def _():
    s3.create_bucket(Bucket=BUCKET)
    eq(status_of(s3.head_bucket, Bucket=BUCKET), 200, "head_bucket")


@check("uploads refused before their body is read (unknown access key, 8 MiB): 403 through nginx")
def _():
    stranger = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id="AKIDNOTAUSER",
                            aws_secret_access_key="not-a-secret", config=CONFIG)
    body = os.urandom(8 * 1024 * 1024)
    answers = []
    for i in range(6):
        try:
            stranger.put_object(Bucket=BUCKET, Key=f"refused/{i}", Body=body)
            answers.append("200")
        except ClientError as e:
            answers.append(f'{e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}')
    # Lifeboat answers 403 InvalidAccessKeyId without reading the body, then reads and drops
    # what nginx still sends before it closes (a lingering close), so nginx finishes sending
    # and relays the 403, never a 502 from a broken pipe.
    assert all(a == "403 InvalidAccessKeyId" for a in answers), answers
    for i in range(6):
        eq(status_of(s3.head_object, Bucket=BUCKET, Key=f"refused/{i}"), 404, "a refused upload stored nothing")
    print(f"INFO: refused uploads answered {', '.join(answers)}", flush=True)


KEYS = ["plain.txt", "dir/a b+c~(1)!'*.txt", "ünï/çödé ß.txt", "double//slash.txt"]


@check("put/get/head of keys that need escaping (the signed path reaches the node unchanged)")
def _():
    for key in KEYS:
        body = f"body of {key}".encode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        eq(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), body, f"get {key!r}")
        eq(s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"], len(body), f"head {key!r}")


@check("signed x-amz-meta-* headers: a name with an underscore, and 2 KiB of them in the answer")
def _():
    meta = {"under_score": "kept", "plain": "v"}
    s3.put_object(Bucket=BUCKET, Key="meta.txt", Body=b"m", Metadata=meta)
    eq(s3.head_object(Bucket=BUCKET, Key="meta.txt")["Metadata"], meta, "metadata")
    # Close to the 2 KiB limit, in many short headers, so the answer's head outgrows 4 KiB
    # (nginx's default proxy_buffer_size). Read with curl: Python's http.client, under boto3,
    # refuses an answer of more than 100 header lines.
    many = {f"m{i:03}": "v" * 9 for i in range(150)}
    assert sum(len(k) + len(v) for k, v in many.items()) <= 2048
    s3.put_object(Bucket=BUCKET, Key="meta-many.txt", Body=b"m", Metadata=many)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "meta-many.txt"}, ExpiresIn=300)
    head = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", url], check=True, capture_output=True).stdout
    lines = head.decode().splitlines()
    eq(lines[0].split()[1], "200", "status")
    eq(len([l for l in lines if l.lower().startswith("x-amz-meta-m")]), 150, "metadata headers in the answer")
    assert len(head) > 4096, f"the answer's head is only {len(head)} bytes"


@check("an empty PUT with Expect: 100-continue, then more PUTs on the same connections")
def _():
    for i in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"empty-{i}", Body=b"")
        s3.put_object(Bucket=BUCKET, Key=f"after-empty-{i}", Body=b"x" * 1000)
    eq(s3.head_object(Bucket=BUCKET, Key="empty-2")["ContentLength"], 0, "empty object")


@check("an HTML object asked for with Accept-Encoding: gzip comes back byte for byte (no gzip)")
def _():
    page = b"<!doctype html><title>t</title>" + b"<p>hello</p>" * 400
    s3.put_object(Bucket=BUCKET, Key="page.html", Body=page, ContentType="text/html")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "page.html"}, ExpiresIn=300)
    status, got = http("GET", url, headers={"Accept-Encoding": "gzip"})
    eq(status, 200, "status")
    eq(got == page, True, "body identical")
    s3.delete_object(Bucket=BUCKET, Key="page.html")


SPREAD = [f"spread/k{i:02}" for i in range(24)]


@check("a listing (one node) shows objects written through both nodes")
def _():
    for key in SPREAD:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="spread/"):
        listed += [o["Key"] for o in page.get("Contents", [])]
    eq(sorted(listed), SPREAD, "list_objects_v2")


@check("delete_objects (routed by bucket): every key then reads 404 through the load balancer")
def _():
    resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in SPREAD], "Quiet": True})
    eq(resp.get("Errors", []), [], "DeleteObjects errors")
    # The keys' own nodes may hold cached copies: the deleting node tells its peers
    # ([cluster] peers), asynchronously, so allow the notice a moment.
    deadline = time.monotonic() + 5
    left = list(SPREAD)
    while left and time.monotonic() < deadline:
        left = [k for k in left if status_of(s3.head_object, Bucket=BUCKET, Key=k) != 404]
        if left:
            time.sleep(0.1)
    eq(left, [], "keys still readable 5 s after DeleteObjects")


@check("delete_object, then head_object is 404")
def _():
    for key in KEYS + ["meta.txt", "meta-many.txt"] + [f"empty-{i}" for i in range(3)] + [f"after-empty-{i}" for i in range(3)]:
        s3.delete_object(Bucket=BUCKET, Key=key)
        eq(status_of(s3.head_object, Bucket=BUCKET, Key=key), 404, f"head {key!r} after delete")


BIG_KEY = "big/100MiB-multipart.bin"


@check("a 100 MiB multipart upload (create, 13 parts of 8 MiB, complete), read back with the same sha256")
def _():
    print(f"INFO: affinity /{BUCKET}/{BIG_KEY} (the multipart upload)", flush=True)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=BIG_KEY)["UploadId"]
    parts = []
    with open(BIG_FILE, "rb") as f:
        number = 1
        while chunk := f.read(PART):
            etag = s3.upload_part(Bucket=BUCKET, Key=BIG_KEY, UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            number += 1
    eq(len(parts), 13, "parts")
    eq([p["PartNumber"] for p in s3.list_parts(Bucket=BUCKET, Key=BIG_KEY, UploadId=upload)["Parts"]],
       list(range(1, 14)), "list_parts")
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=BIG_KEY, UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"].endswith('-13"'), f"ETag {done['ETag']}"
    eq(s3.head_object(Bucket=BUCKET, Key=BIG_KEY)["ContentLength"], os.path.getsize(BIG_FILE), "size")
    h = hashlib.sha256()
    body = s3.get_object(Bucket=BUCKET, Key=BIG_KEY)["Body"]
    for block in iter(lambda: body.read(1 << 20), b""):
        h.update(block)
    eq(h.hexdigest(), sha256_file(BIG_FILE), "sha256 of the object read back")
    s3.delete_object(Bucket=BUCKET, Key=BIG_KEY)


@check("generate_presigned_url: get_object and put_object through urllib")
def _():
    body = os.urandom(3000)
    s3.put_object(Bucket=BUCKET, Key="presigned/get.bin", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presigned/get.bin"},
                                    ExpiresIn=300)
    assert url.startswith(f"{ENDPOINT}/{BUCKET}/") and "X-Amz-Signature=" in url, url
    status, got = http("GET", url)
    eq(status, 200, "presigned GET status")
    eq(got == body, True, "presigned GET body")

    put_body = os.urandom(5000)
    url = s3.generate_presigned_url("put_object", ExpiresIn=300, Params={
        "Bucket": BUCKET, "Key": "presigned/put with space.bin", "ContentType": "application/octet-stream"})
    status, _ = http("PUT", url, data=put_body, headers={"Content-Type": "application/octet-stream"})
    eq(status, 200, "presigned PUT status")
    eq(s3.get_object(Bucket=BUCKET, Key="presigned/put with space.bin")["Body"].read() == put_body, True,
       "presigned PUT stored the body")
    for key in ("presigned/get.bin", "presigned/put with space.bin"):
        s3.delete_object(Bucket=BUCKET, Key=key)


@check("POST /storage/presigned-upload (node a's admin API): the URL is the load balancer's, the PUT goes through it")
def _():
    # The admin API is on each node's admin listener, which a load balancer does not front: a
    # backend asks any node. The URL it gets starts with server.public_url, the load balancer.
    body = json.dumps({"filename": "Holiday Photo.png", "content_type": "image/png", "size": 2048,
                       "bucket": BUCKET}).encode()
    req = AWSRequest(method="POST", url=f"{ADMIN}/storage/presigned-upload", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(req)
    status, answer = http("POST", req.url, data=body, headers=dict(req.headers))
    eq(status, 200, f"presigned-upload status ({answer[:200]!r})")
    grant = json.loads(answer)
    assert grant["url"].startswith(f"{ENDPOINT}/{BUCKET}/uploads/"), grant["url"]
    photo = os.urandom(2048)
    status, _ = http(grant["method"], grant["url"], data=photo, headers=grant["headers"])
    eq(status, 200, "PUT with the presigned-upload URL")
    eq(s3.get_object(Bucket=BUCKET, Key=grant["key"])["Body"].read() == photo, True, "uploaded body")
    s3.delete_object(Bucket=BUCKET, Key=grant["key"])


@check(f"virtual-hosted style ({VHOST_BUCKET}.{VHOST_DOMAIN}): create/put/get/list/delete")
def _():
    host = f"{VHOST_BUCKET}.{VHOST_DOMAIN}"
    for name in (VHOST_DOMAIN, host):
        try:
            socket.getaddrinfo(name, PORT)
        except socket.gaierror:
            if os.environ.get("CI") == "true":
                raise AssertionError(f"{name} does not resolve; add '127.0.0.1 {VHOST_DOMAIN} {host}' to /etc/hosts")
            return f"{name} does not resolve"
    print(f"INFO: affinity /{VHOST_BUCKET}/dir/v.bin (virtual-hosted and path-style)", flush=True)
    vs3 = client(endpoint=f"http://{VHOST_DOMAIN}:{PORT}", addressing="virtual")
    urls = []
    vs3.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    vs3.create_bucket(Bucket=VHOST_BUCKET)
    try:
        body = os.urandom(4096)
        vs3.put_object(Bucket=VHOST_BUCKET, Key="dir/v.bin", Body=body)
        eq(urls[-1], f"http://{host}:{PORT}/dir/v.bin", "PutObject URL")
        eq(vs3.get_object(Bucket=VHOST_BUCKET, Key="dir/v.bin")["Body"].read() == body, True, "body")
        eq([o["Key"] for o in vs3.list_objects_v2(Bucket=VHOST_BUCKET).get("Contents", [])], ["dir/v.bin"],
           "list_objects_v2")
        # Path-style, the same object: the same hash key, so the same node's cached copy.
        eq(s3.get_object(Bucket=VHOST_BUCKET, Key="dir/v.bin")["Body"].read() == body, True,
           "the same object path-style")
        vs3.delete_object(Bucket=VHOST_BUCKET, Key="dir/v.bin")
    finally:
        vs3.delete_bucket(Bucket=VHOST_BUCKET)


@check("delete_bucket")
def _():
    s3.delete_bucket(Bucket=BUCKET)
    eq(status_of(s3.head_bucket, Bucket=BUCKET), 404, "head_bucket after delete")


def main():
    failed = 0
    for name, fn in CHECKS:
        try:
            skipped = fn()
            print(f"SKIP: {name} ({skipped})" if skipped else f"PASS: {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print(f"FAIL: {name}: {e}", flush=True)
            traceback.print_exc(limit=3, file=sys.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
