#!/usr/bin/env bash
# awscli.sh — aws-cli (v1) conformance workflow against a running Lifeboat.
#
# Covers:
#   aws s3:    mb; cp up and back down of a 1 KiB file and a 100 MiB one (multipart both ways:
#              13 UploadParts of 8 MiB, ranged GETs; cmp byte-identical, ETag md5-of-md5s-13);
#              ls (bucket list, keys, --recursive); presign (SigV4 and SigV2) + curl (body matches; an expired
#              presign gives 403); sync of a nested folder up, an idempotent re-sync, sync back
#              down + diff -r; cp s3:// → s3:// between buckets (CopyObject for 1 KiB,
#              UploadPartCopy for 20 MiB); sync of 1,500 tiny files and rm --recursive of them;
#              rm --recursive of every key; rb; rb --force.
#   aws s3api: head-object (length, ETag); get-object --range bytes=0-9; put-object --content-md5
#              (good → stored, bad → BadDigest and nothing stored); a wrong secret key →
#              SignatureDoesNotMatch and nothing stored; an unknown access key → InvalidAccessKeyId;
#              put-object --if-none-match '*' / --if-match (PreconditionFailed); delete-objects;
#              create-multipart-upload, upload-part, list-parts, list-multipart-uploads,
#              abort-multipart-upload (then NoSuchUpload).
#   virtual-hosted style (bucket vhost-cli, endpoint http://s3.localhost:PORT): mb, cp up and
#              down, ls, presign + curl, rb --force.
#
# aws-cli v1 `s3 rm --recursive` and `s3 rb --force` send one DeleteObject per key (s3transfer's
# delete), never DeleteObjects; the batch call is covered by `s3api delete-objects` here and by
# test_boto3.py.
#
# Normally started by conformance/run.sh, which provides the environment:
#   LIFEBOAT_ENDPOINT (e.g. http://127.0.0.1:9000), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#   AWS_DEFAULT_REGION, and AWS_CONFIG_FILE with `s3 = signature_version = s3v4` and aws-cli's
#   default multipart settings (8 MiB threshold and part size; the expected ETags rely on it).
# Prints one "PASS: ..." or "FAIL: ..." line per check; exits 1 if any check failed.
set -euo pipefail

: "${LIFEBOAT_ENDPOINT:?LIFEBOAT_ENDPOINT must be set (see conformance/run.sh)}"

T=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-awscli.XXXXXX")
BUCKET="cli-$(date +%s)-$$-${RANDOM}"
BUCKET2="$BUCKET-copy"
PASSED=0
FAILED=0

cleanup() {
    # Best effort: remove anything a failed run left behind (abort open multipart uploads, then
    # rb --force, which deletes every key first).
    local bucket key upload
    for bucket in "$BUCKET" "$BUCKET2" "${VBUCKET:-}"; do
        [ -n "$bucket" ] && awsx s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || continue
        awsx s3api list-multipart-uploads --bucket "$bucket" --output text \
            --query 'Uploads[].[Key, UploadId]' 2>/dev/null | while IFS=$'\t' read -r key upload; do
            [ -n "$upload" ] && [ "$key" != None ] || continue
            awsx s3api abort-multipart-upload --bucket "$bucket" --key "$key" \
                --upload-id "$upload" >/dev/null 2>&1 || true
        done || true
        awsx s3 rb --force "s3://$bucket" >/dev/null 2>&1 || true
    done
    rm -rf "$T"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers

awsx() { aws --endpoint-url "$LIFEBOAT_ENDPOINT" "$@"; }

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
show() { sed -e 's/^/    | /' "$@" | head -n 12 || true; }

# check NAME CMD... — passes when CMD exits 0; its output is kept in $T/out and $T/err.
check() {
    local name=$1
    shift
    if "$@" >"$T/out" 2>"$T/err"; then
        pass "$name"
    else
        fail "$name"
        show "$T/out" "$T/err"
    fi
    return 0
}

# check_error NAME CODE CMD... — passes when CMD fails and its stderr mentions CODE
# (aws-cli prints "An error occurred (CODE) when calling the ... operation").
check_error() {
    local name=$1 code=$2
    shift 2
    if "$@" >"$T/out" 2>"$T/err"; then
        fail "$name (expected $code, but the command succeeded)"
    elif grep -qF "($code)" "$T/err"; then
        pass "$name"
    else
        fail "$name (expected $code)"
        show "$T/err"
    fi
    return 0
}

# Every key in a bucket (default: $BUCKET), one per line; keys with spaces are fine.
list_keys() {
    awsx s3api list-objects-v2 --bucket "${1:-$BUCKET}" --output json |
        python3 -c 'import json, sys
text = sys.stdin.read().strip()
for obj in (json.loads(text).get("Contents") or []) if text else []:
    print(obj["Key"])'
}

md5_b64() { python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.md5(open(sys.argv[1], "rb").read()).digest()).decode())' "$1"; }
md5_hex() { md5sum "$1" | cut -d' ' -f1; }
# multipart_etag FILE PART_MIB — the ETag S3 gives FILE uploaded in PART_MIB MiB parts:
# "md5(md5(part1)..md5(partN))-N".
multipart_etag() {
    python3 -c 'import hashlib, sys
size = int(sys.argv[2]) * 1024 * 1024
digests = []
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(size):
        digests.append(hashlib.md5(chunk).digest())
print("\"%s-%d\"" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests)))' "$1" "$2"
}
# Counts the botocore operations in an `aws --debug` log: "N OperationName" lines.
operations() { grep -o 'OperationModel(name=[A-Za-z]*)' "$1" | sed 's/.*name=\(.*\))/\1/' | sort | uniq -c; }

# ---------------------------------------------------------------- fixtures

head -c 1024 /dev/urandom >"$T/small.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$T/big.bin"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$T/mid.bin"

mkdir -p "$T/tree/sub/deeper" "$T/tree/with space" "$T/down"
echo "top level" >"$T/tree/top.txt"
: >"$T/tree/empty.txt"
head -c 5000 /dev/urandom >"$T/tree/sub/data.bin"
echo "deep leaf" >"$T/tree/sub/deeper/leaf.txt"
echo "spaced out" >"$T/tree/with space/file +plus.txt"

echo "== awscli.sh: bucket $BUCKET at $LIFEBOAT_ENDPOINT ($(aws --version 2>&1))"

# ---------------------------------------------------------------- s3 mb / cp / ls

check "s3 mb creates the bucket" awsx s3 mb "s3://$BUCKET"

buckets_listed() { awsx s3 ls | awk '{ print $3 }'; }
ls_has_bucket() { local names; names=$(buckets_listed) && grep -qxF "$BUCKET" <<<"$names"; }
check "s3 ls lists the new bucket" ls_has_bucket

check "s3 cp uploads the 1 KiB file" awsx s3 cp "$T/small.bin" "s3://$BUCKET/small.bin"
big_upload_ok() {
    awsx --debug s3 cp --no-progress "$T/big.bin" "s3://$BUCKET/big.bin" 2>"$T/big-debug" &&
        operations "$T/big-debug" >"$T/big-ops" && cat "$T/big-ops" &&
        grep -qE '^ +1 CreateMultipartUpload$' "$T/big-ops" &&
        grep -qE '^ +13 UploadPart$' "$T/big-ops" &&
        grep -qE '^ +1 CompleteMultipartUpload$' "$T/big-ops"
}
check "s3 cp uploads the 100 MiB file (multipart: 13 UploadParts + Complete)" big_upload_ok
check "s3 cp downloads the 1 KiB file" awsx s3 cp "s3://$BUCKET/small.bin" "$T/small.down"
check "1 KiB download is byte-identical" cmp "$T/small.bin" "$T/small.down"
big_download_ok() {
    awsx --debug s3 cp --no-progress "s3://$BUCKET/big.bin" "$T/big.down" 2>"$T/big-debug" &&
        operations "$T/big-debug" >"$T/big-ops" && cat "$T/big-ops" &&
        grep -qE '^ +13 GetObject$' "$T/big-ops"
}
check "s3 cp downloads the 100 MiB file (13 ranged GetObjects)" big_download_ok
check "100 MiB download is byte-identical" cmp "$T/big.bin" "$T/big.down"
rm -f "$T/big.down" "$T/big-debug"

big_etag_ok() {
    local etag expected
    etag=$(awsx s3api head-object --bucket "$BUCKET" --key big.bin --query ETag --output text) &&
        expected=$(multipart_etag "$T/big.bin" 8) &&
        echo "ETag=$etag expected=$expected" &&
        [[ $etag == *-13\" ]] && [ "$etag" = "$expected" ]
}
check "s3api head-object on the 100 MiB object: ETag is md5-of-part-md5s ending in -13" big_etag_ok

# ---------------------------------------------------------------- s3api head-object / range / Content-MD5

head_object_ok() {
    local len etag
    len=$(awsx s3api head-object --bucket "$BUCKET" --key small.bin --query ContentLength --output text) &&
        etag=$(awsx s3api head-object --bucket "$BUCKET" --key small.bin --query ETag --output text) &&
        echo "ContentLength=$len ETag=$etag" &&
        [ "$len" = 1024 ] && [ "$etag" = "\"$(md5_hex "$T/small.bin")\"" ]
}
check "s3api head-object: ContentLength 1024, ETag is the MD5" head_object_ok

range_ok() {
    local content_range
    content_range=$(awsx s3api get-object --bucket "$BUCKET" --key small.bin --range bytes=0-9 \
        "$T/range.out" --query ContentRange --output text) &&
        echo "ContentRange=$content_range size=$(stat -c %s "$T/range.out")" &&
        [ "$content_range" = "bytes 0-9/1024" ] &&
        head -c 10 "$T/small.bin" | cmp - "$T/range.out"
}
check "s3api get-object --range bytes=0-9 returns exactly the first 10 bytes" range_ok

echo "checksummed body" >"$T/md5.txt"
check "s3api put-object with a correct --content-md5 succeeds" \
    awsx s3api put-object --bucket "$BUCKET" --key md5-good.txt --body "$T/md5.txt" --content-md5 "$(md5_b64 "$T/md5.txt")"
check "object stored with --content-md5 reads back identical" \
    sh -c 'aws --endpoint-url "$1" s3 cp "s3://$2/md5-good.txt" - | cmp - "$3"' _ "$LIFEBOAT_ENDPOINT" "$BUCKET" "$T/md5.txt"
# AWS_MAX_ATTEMPTS=1: botocore retries BadDigest 4 times with backoff; one attempt is enough.
check_error "s3api put-object with a wrong --content-md5 fails with BadDigest" BadDigest \
    env AWS_MAX_ATTEMPTS=1 aws --endpoint-url "$LIFEBOAT_ENDPOINT" s3api put-object \
    --bucket "$BUCKET" --key md5-bad.txt --body "$T/md5.txt" --content-md5 "$(md5_b64 "$T/small.bin")"
check_error "object with the bad Content-MD5 was not stored (head-object → 404)" 404 \
    awsx s3api head-object --bucket "$BUCKET" --key md5-bad.txt

# ---------------------------------------------------------------- wrong credentials

check_error "put-object signed with a wrong secret key fails with SignatureDoesNotMatch" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY="wrong-${AWS_SECRET_ACCESS_KEY:-x}" \
    aws --endpoint-url "$LIFEBOAT_ENDPOINT" s3api put-object --bucket "$BUCKET" --key forged.txt --body "$T/md5.txt"
check_error "object sent with the wrong secret was not stored (head-object → 404)" 404 \
    awsx s3api head-object --bucket "$BUCKET" --key forged.txt
check_error "put-object with an unknown access key fails with InvalidAccessKeyId" InvalidAccessKeyId \
    env AWS_ACCESS_KEY_ID="AKIDNOSUCHUSER0000000" \
    aws --endpoint-url "$LIFEBOAT_ENDPOINT" s3api put-object --bucket "$BUCKET" --key forged.txt --body "$T/md5.txt"

# ---------------------------------------------------------------- presign

presign_ok() {
    local url code
    url=$(awsx s3 presign "s3://$BUCKET/small.bin" --expires-in 300) &&
        echo "$url" &&
        case $url in *X-Amz-Algorithm=AWS4-HMAC-SHA256*) ;; *) echo "not a SigV4 presign"; return 1 ;; esac &&
        code=$(curl -sS -o "$T/presigned.out" -w '%{http_code}' "$url") &&
        echo "HTTP $code" &&
        [ "$code" = 200 ] && cmp "$T/small.bin" "$T/presigned.out"
}
check "s3 presign (SigV4) + curl returns the object body" presign_ok

# aws-cli v1's own default presigns with SigV2 (AWSAccessKeyId, Expires, Signature).
presign_v2_ok() {
    local url code
    printf '[default]\nregion = us-east-1\n' >"$T/v2-config"
    url=$(AWS_CONFIG_FILE="$T/v2-config" aws --endpoint-url "$LIFEBOAT_ENDPOINT" s3 presign "s3://$BUCKET/small.bin" --expires-in 300) &&
        echo "$url" &&
        case $url in *AWSAccessKeyId=*Signature=*) ;; *) echo "not a SigV2 presign"; return 1 ;; esac &&
        code=$(curl -sS -o "$T/presigned-v2.out" -w '%{http_code}' "$url") &&
        echo "HTTP $code" &&
        [ "$code" = 200 ] && cmp "$T/small.bin" "$T/presigned-v2.out"
}
check "s3 presign with aws-cli's default (SigV2) + curl returns the object body" presign_v2_ok

# HTTP/2 without TLS (prior knowledge): there is no Host header, the signed host is the
# request's authority.
presign_h2_ok() {
    local url code version
    url=$(awsx s3 presign "s3://$BUCKET/small.bin" --expires-in 300) &&
        read -r code version < <(curl -sS --http2-prior-knowledge -o "$T/presigned.h2" -w '%{http_code} %{http_version}\n' "$url") &&
        [ "$code" = 200 ] && [ "$version" = 2 ] && cmp "$T/small.bin" "$T/presigned.h2"
}
check "the presigned URL over HTTP/2 (h2c) returns the object body" presign_h2_ok

expired_presign_ok() {
    local url code
    url=$(awsx s3 presign "s3://$BUCKET/small.bin" --expires-in 1) &&
        sleep 2 &&
        code=$(curl -sS -o "$T/expired.out" -w '%{http_code}' "$url") &&
        echo "HTTP $code" && cat "$T/expired.out" && echo &&
        [ "$code" = 403 ]
}
check "presigned URL with --expires-in 1, used after 2 s, gives HTTP 403" expired_presign_ok

# ---------------------------------------------------------------- sync

check "s3 sync uploads a nested folder" awsx s3 sync "$T/tree" "s3://$BUCKET/tree"

ls_keys_ok() {
    awsx s3 ls "s3://$BUCKET/" >"$T/ls.txt" && cat "$T/ls.txt" &&
        grep -qE ' small\.bin$' "$T/ls.txt" &&
        grep -qE ' big\.bin$' "$T/ls.txt" &&
        grep -qE 'PRE tree/$' "$T/ls.txt" &&
        ! grep -q 'leaf.txt' "$T/ls.txt"
}
check "s3 ls s3://bucket/ lists top-level keys and the tree/ prefix" ls_keys_ok

ls_recursive_ok() {
    awsx s3 ls --recursive "s3://$BUCKET/" >"$T/lsr.txt" && cat "$T/lsr.txt" &&
        grep -qE ' small\.bin$' "$T/lsr.txt" &&
        grep -qE ' tree/empty\.txt$' "$T/lsr.txt" &&
        grep -qE ' tree/sub/deeper/leaf\.txt$' "$T/lsr.txt" &&
        grep -qF ' tree/with space/file +plus.txt' "$T/lsr.txt" &&
        [ "$(wc -l <"$T/lsr.txt")" -eq 8 ] # small, big, md5-good + 5 tree files
}
check "s3 ls --recursive lists every key, including nested ones" ls_recursive_ok

resync_is_noop() {
    local out
    out=$(awsx s3 sync "$T/tree" "s3://$BUCKET/tree") && echo "$out" && [ -z "$out" ]
}
check "re-running s3 sync uploads nothing (sizes and LastModified match)" resync_is_noop

check "s3 sync downloads the tree into another folder" awsx s3 sync "s3://$BUCKET/tree" "$T/down"
check "downloaded tree is identical (diff -r)" diff -r "$T/tree" "$T/down"

# ---------------------------------------------------------------- conditional writes

echo "first version" >"$T/cond1.txt"
echo "second version" >"$T/cond2.txt"
check "s3api put-object --if-none-match '*' on a new key succeeds" \
    awsx s3api put-object --bucket "$BUCKET" --key cond.txt --body "$T/cond1.txt" --if-none-match '*'
check_error "s3api put-object --if-none-match '*' on an existing key fails with PreconditionFailed" \
    PreconditionFailed \
    awsx s3api put-object --bucket "$BUCKET" --key cond.txt --body "$T/cond2.txt" --if-none-match '*'
check_error "s3api put-object --if-match with a wrong ETag fails with PreconditionFailed" PreconditionFailed \
    awsx s3api put-object --bucket "$BUCKET" --key cond.txt --body "$T/cond2.txt" \
    --if-match '"0123456789abcdef0123456789abcdef"'
cond_unchanged() {
    awsx s3 cp "s3://$BUCKET/cond.txt" "$T/cond.down" && cmp "$T/cond1.txt" "$T/cond.down"
}
check "object refused by both preconditions still holds the first version" cond_unchanged
check_error "s3api put-object --if-match on a missing key fails with NoSuchKey" NoSuchKey \
    awsx s3api put-object --bucket "$BUCKET" --key cond-missing.txt --body "$T/cond2.txt" \
    --if-match '"0123456789abcdef0123456789abcdef"'
cond_if_match_ok() {
    local etag
    etag=$(awsx s3api head-object --bucket "$BUCKET" --key cond.txt --query ETag --output text) &&
        echo "ETag=$etag" &&
        awsx s3api put-object --bucket "$BUCKET" --key cond.txt --body "$T/cond2.txt" --if-match "$etag" &&
        awsx s3 cp "s3://$BUCKET/cond.txt" "$T/cond.down" && cmp "$T/cond2.txt" "$T/cond.down"
}
check "s3api put-object --if-match with the current ETag replaces the object" cond_if_match_ok

# ---------------------------------------------------------------- s3api multipart: list / abort

head -c $((5 * 1024 * 1024)) /dev/urandom >"$T/part1.bin"
UPLOAD_ID=""
mpu_create() {
    UPLOAD_ID=$(awsx s3api create-multipart-upload --bucket "$BUCKET" --key "mpu/aborted.bin" \
        --query UploadId --output text) && echo "UploadId=$UPLOAD_ID" &&
        [ -n "$UPLOAD_ID" ] && [ "$UPLOAD_ID" != None ]
}
check "s3api create-multipart-upload returns an UploadId" mpu_create
mpu_upload_part() {
    local etag
    etag=$(awsx s3api upload-part --bucket "$BUCKET" --key "mpu/aborted.bin" --upload-id "$UPLOAD_ID" \
        --part-number 1 --body "$T/part1.bin" --query ETag --output text) &&
        echo "ETag=$etag" && [ "$etag" = "\"$(md5_hex "$T/part1.bin")\"" ]
}
check "s3api upload-part (5 MiB) returns the part's MD5 as ETag" mpu_upload_part
mpu_list_parts() {
    awsx s3api list-parts --bucket "$BUCKET" --key "mpu/aborted.bin" --upload-id "$UPLOAD_ID" \
        --output text --query 'Parts[].[PartNumber, Size, ETag]' >"$T/parts.txt" && cat "$T/parts.txt" &&
        [ "$(cat "$T/parts.txt")" = "$(printf '1\t%s\t"%s"' $((5 * 1024 * 1024)) "$(md5_hex "$T/part1.bin")")" ]
}
check "s3api list-parts shows part 1 with its size and ETag" mpu_list_parts
mpu_listed() {
    awsx s3api list-multipart-uploads --bucket "$BUCKET" --output text \
        --query 'Uploads[].[Key, UploadId]' >"$T/uploads.txt" && cat "$T/uploads.txt" &&
        [ "$(cat "$T/uploads.txt")" = "$(printf 'mpu/aborted.bin\t%s' "$UPLOAD_ID")" ]
}
check "s3api list-multipart-uploads lists the upload (key and UploadId)" mpu_listed
check "s3api abort-multipart-upload succeeds" \
    awsx s3api abort-multipart-upload --bucket "$BUCKET" --key "mpu/aborted.bin" --upload-id "$UPLOAD_ID"
check_error "s3api list-parts on the aborted upload fails with NoSuchUpload" NoSuchUpload \
    awsx s3api list-parts --bucket "$BUCKET" --key "mpu/aborted.bin" --upload-id "$UPLOAD_ID"
mpu_gone() {
    local uploads
    uploads=$(awsx s3api list-multipart-uploads --bucket "$BUCKET" --output text \
        --query 'Uploads[].UploadId') && echo "uploads: $uploads" &&
        { [ -z "$uploads" ] || [ "$uploads" = None ]; }
}
check "s3api list-multipart-uploads no longer lists it" mpu_gone
check_error "aborted upload left no object (head-object → 404)" 404 \
    awsx s3api head-object --bucket "$BUCKET" --key "mpu/aborted.bin"

# ---------------------------------------------------------------- copy between buckets

check "s3 mb creates a second bucket for copies" awsx s3 mb "s3://$BUCKET2"
copy_small_ok() {
    awsx --debug s3 cp "s3://$BUCKET/small.bin" "s3://$BUCKET2/copied/small.bin" 2>"$T/copy-debug" &&
        operations "$T/copy-debug" >"$T/copy-ops" && cat "$T/copy-ops" &&
        grep -qE '^ +1 CopyObject$' "$T/copy-ops"
}
check "s3 cp s3:// → s3:// of the 1 KiB object (CopyObject)" copy_small_ok
copy_small_identical() {
    awsx s3 cp "s3://$BUCKET2/copied/small.bin" "$T/copied-small.down" && cmp "$T/small.bin" "$T/copied-small.down"
}
check "copied 1 KiB object is byte-identical" copy_small_identical
check "s3 cp uploads the 20 MiB file" awsx s3 cp --no-progress "$T/mid.bin" "s3://$BUCKET/mid.bin"
copy_mid_ok() {
    awsx --debug s3 cp --no-progress "s3://$BUCKET/mid.bin" "s3://$BUCKET2/copied/mid.bin" 2>"$T/copy-debug" &&
        operations "$T/copy-debug" >"$T/copy-ops" && cat "$T/copy-ops" &&
        grep -qE '^ +1 CreateMultipartUpload$' "$T/copy-ops" &&
        grep -qE '^ +3 UploadPartCopy$' "$T/copy-ops" &&
        grep -qE '^ +1 CompleteMultipartUpload$' "$T/copy-ops"
}
check "s3 cp s3:// → s3:// of the 20 MiB object (3 UploadPartCopy + Complete)" copy_mid_ok
copy_mid_identical() {
    local etag expected
    awsx s3 cp --no-progress "s3://$BUCKET2/copied/mid.bin" "$T/copied-mid.down" &&
        cmp "$T/mid.bin" "$T/copied-mid.down" &&
        etag=$(awsx s3api head-object --bucket "$BUCKET2" --key copied/mid.bin --query ETag --output text) &&
        expected=$(multipart_etag "$T/mid.bin" 8) && echo "ETag=$etag expected=$expected" &&
        [ "$etag" = "$expected" ]
}
check "copied 20 MiB object is byte-identical, ETag md5-of-part-md5s-3" copy_mid_identical
rm -f "$T/copied-mid.down"
check "s3 rb --force removes the copy bucket and its keys" awsx s3 rb --force "s3://$BUCKET2"
check_error "head-bucket on the force-removed bucket gives 404" 404 awsx s3api head-bucket --bucket "$BUCKET2"

# ---------------------------------------------------------------- s3api delete-objects

delete_objects_ok() {
    local deleted
    echo a >"$T/a.txt" &&
        awsx s3api put-object --bucket "$BUCKET" --key batch/a.txt --body "$T/a.txt" >/dev/null &&
        awsx s3api put-object --bucket "$BUCKET" --key batch/b.txt --body "$T/a.txt" >/dev/null &&
        deleted=$(awsx s3api delete-objects --bucket "$BUCKET" --output text --query 'Deleted[].Key' \
            --delete '{"Objects": [{"Key": "batch/a.txt"}, {"Key": "batch/b.txt"}, {"Key": "batch/never.txt"}]}') &&
        echo "Deleted: $deleted" &&
        [ "$(tr '\t' '\n' <<<"$deleted" | sort | tr '\n' ' ')" = "batch/a.txt batch/b.txt batch/never.txt " ] &&
        [ -z "$(list_keys | grep '^batch/')" ]
}
check "s3api delete-objects removes two keys and reports all three (incl. a missing one) as Deleted" \
    delete_objects_ok

# ---------------------------------------------------------------- 1,500 keys: sync up, rm --recursive

mkdir -p "$T/many"
for i in $(seq -w 1 1500); do printf '%s\n' "$i" >"$T/many/f$i.txt"; done
check "s3 sync uploads 1,500 tiny files" awsx s3 sync --only-show-errors "$T/many" "s3://$BUCKET/many"
many_listed() {
    local n
    n=$(awsx s3 ls --recursive "s3://$BUCKET/many/" | wc -l) && echo "$n keys" && [ "$n" -eq 1500 ]
}
check "s3 ls --recursive lists all 1,500 keys (two ListObjectsV2 pages)" many_listed
many_rm() {
    awsx s3 rm --recursive "s3://$BUCKET/many/" >"$T/many-rm.txt" &&
        echo "$(grep -c '^delete: ' "$T/many-rm.txt") delete lines" &&
        [ "$(grep -c '^delete: ' "$T/many-rm.txt")" -eq 1500 ]
}
check "s3 rm --recursive removes the 1,500 keys" many_rm
many_gone() {
    # aws s3 ls exits 1 when it lists nothing; only the output counts here.
    local out
    out=$(awsx s3 ls --recursive "s3://$BUCKET/many/" 2>"$T/many-ls.err") || true
    cat "$T/many-ls.err"
    echo "$out" && [ -z "$out" ] && [ ! -s "$T/many-ls.err" ]
}
check "s3 ls shows nothing under many/ afterwards" many_gone

# ---------------------------------------------------------------- rm / rb

rm_recursive_all() {
    local expected
    expected=$(list_keys | wc -l) || return 1
    awsx s3 rm --recursive "s3://$BUCKET/" >"$T/rm.txt" || return 1
    cat "$T/rm.txt"
    echo "expected $expected deletes"
    [ "$expected" -eq 10 ] && # small, big, md5-good, 5 tree files, cond.txt, mid.bin
        [ "$(grep -c '^delete: ' "$T/rm.txt")" -eq "$expected" ]
}
check "s3 rm --recursive removes every remaining key" rm_recursive_all

bucket_empty() { local keys; keys=$(list_keys) && [ -z "$keys" ]; }
check "bucket is empty after rm --recursive" bucket_empty

check "s3 rb removes the empty bucket" awsx s3 rb "s3://$BUCKET"
bucket_gone() { local names; names=$(buckets_listed) && ! grep -qxF "$BUCKET" <<<"$names"; }
check "s3 ls no longer lists the bucket" bucket_gone
check_error "head-bucket on the removed bucket gives 404" 404 awsx s3api head-bucket --bucket "$BUCKET"

# ---------------------------------------------------------------- virtual-hosted style

# Same client with addressing_style = virtual and endpoint http://s3.localhost:PORT, so requests
# go to http://BUCKET.s3.localhost:PORT/KEY. Needs "127.0.0.1 s3.localhost BUCKET.s3.localhost"
# in /etc/hosts (CI adds it for vhost-cli).
VBUCKET=${LIFEBOAT_VHOST_CLI_BUCKET:-vhost-cli}
PORT=${LIFEBOAT_ENDPOINT##*:}
VHOST="$VBUCKET.s3.localhost:$PORT"
cat >"$T/vhost-config" <<'CONFIG'
[default]
region = us-east-1
s3 =
    signature_version = s3v4
    addressing_style = virtual
CONFIG
vawsx() { AWS_CONFIG_FILE="$T/vhost-config" aws --endpoint-url "http://s3.localhost:$PORT" "$@"; }

if ! getent hosts s3.localhost >/dev/null || ! getent hosts "$VBUCKET.s3.localhost" >/dev/null; then
    fail "virtual-hosted style: s3.localhost / $VBUCKET.s3.localhost do not resolve;" \
        "add '127.0.0.1 s3.localhost $VBUCKET.s3.localhost' to /etc/hosts"
else
    vhost_mb() {
        vawsx --debug s3 mb "s3://$VBUCKET" 2>"$T/vhost-debug" &&
            grep -qF "url=http://$VHOST/," "$T/vhost-debug"
    }
    check "virtual-hosted: s3 mb sends CreateBucket to http://$VHOST/" vhost_mb
    check "virtual-hosted: s3 cp uploads the 1 KiB file" vawsx s3 cp "$T/small.bin" "s3://$VBUCKET/dir/small.bin"
    vhost_roundtrip() {
        vawsx s3 cp "s3://$VBUCKET/dir/small.bin" "$T/vhost.down" && cmp "$T/small.bin" "$T/vhost.down"
    }
    check "virtual-hosted: s3 cp download is byte-identical" vhost_roundtrip
    vhost_ls() { vawsx s3 ls --recursive "s3://$VBUCKET/" | grep -qE ' dir/small\.bin$'; }
    check "virtual-hosted: s3 ls --recursive lists the key" vhost_ls
    vhost_presign() {
        local url code
        url=$(vawsx s3 presign "s3://$VBUCKET/dir/small.bin" --expires-in 300) && echo "$url" &&
            case $url in "http://$VHOST/dir/small.bin?"*) ;; *) echo "unexpected URL"; return 1 ;; esac &&
            code=$(curl -sS -o "$T/vhost-presigned.out" -w '%{http_code}' "$url") && echo "HTTP $code" &&
            [ "$code" = 200 ] && cmp "$T/small.bin" "$T/vhost-presigned.out"
    }
    check "virtual-hosted: s3 presign URL on $VHOST + curl returns the body" vhost_presign
    check "virtual-hosted: s3 rb --force removes the key and the bucket" vawsx s3 rb --force "s3://$VBUCKET"
    check_error "virtual-hosted bucket is gone (path-style head-bucket → 404)" 404 \
        awsx s3api head-bucket --bucket "$VBUCKET"
fi

echo "== awscli.sh done: pass=$PASSED fail=$FAILED"
[ "$FAILED" -eq 0 ]
