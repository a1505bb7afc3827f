#!/usr/bin/env bash
# awscli.sh — aws-cli (v1) conformance workflow against a running Lifeboat.
#
# Covers:
#   aws s3:    mb; cp up and back down of a 1 KiB and a 30 MiB file (cmp byte-identical);
#              ls (bucket list, keys, --recursive); presign + curl (body matches; an expired
#              presign gives 403); sync of a nested folder up, an idempotent re-sync, sync back
#              down + diff -r; rm of every key; rb.
#   aws s3api: head-object (length, ETag); get-object --range bytes=0-9; put-object --content-md5
#              (good → stored, bad → BadDigest and nothing stored); a wrong secret key →
#              SignatureDoesNotMatch and nothing stored; an unknown access key → InvalidAccessKeyId.
#   virtual-hosted style (bucket vhost-cli, endpoint http://s3.localhost:PORT): mb, cp up and
#              down, ls, presign + curl, rm, rb.
#
# Normally started by conformance/run.sh, which provides the environment:
#   LIFEBOAT_ENDPOINT (e.g. http://127.0.0.1:9000), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#   AWS_DEFAULT_REGION, and AWS_CONFIG_FILE with `s3 = signature_version = s3v4` and a
#   multipart_threshold above 30 MiB (Lifeboat has no multipart upload yet).
# Prints one "PASS: ..." or "FAIL: ..." line per check; exits 1 if any check failed.
set -euo pipefail

: "${LIFEBOAT_ENDPOINT:?LIFEBOAT_ENDPOINT must be set (see conformance/run.sh)}"

T=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-awscli.XXXXXX")
BUCKET="cli-$(date +%s)-$$-${RANDOM}"
PASSED=0
FAILED=0

cleanup() {
    # Best effort: remove anything a failed run left behind, one key at a time.
    # TODO(DeleteObjects): use `aws s3 rb --force` / `aws s3 rm --recursive` once Lifeboat
    # implements DeleteObjects (batch delete); today both answer 501 NotImplemented.
    local bucket key
    for bucket in "$BUCKET" "${VBUCKET:-}"; do
        [ -n "$bucket" ] && awsx s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || continue
        list_keys "$bucket" 2>/dev/null | while IFS= read -r key; do
            awsx s3api delete-object --bucket "$bucket" --key "$key" >/dev/null 2>&1 || true
        done || true
        awsx s3api delete-bucket --bucket "$bucket" >/dev/null 2>&1 || true
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

# ---------------------------------------------------------------- fixtures

head -c 1024 /dev/urandom >"$T/small.bin"
head -c $((30 * 1024 * 1024)) /dev/urandom >"$T/big.bin"

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
check "s3 cp uploads the 30 MiB file (single PutObject)" awsx s3 cp "$T/big.bin" "s3://$BUCKET/big.bin"
check "s3 cp downloads the 1 KiB file" awsx s3 cp "s3://$BUCKET/small.bin" "$T/small.down"
check "1 KiB download is byte-identical" cmp "$T/small.bin" "$T/small.down"
check "s3 cp downloads the 30 MiB file" awsx s3 cp "s3://$BUCKET/big.bin" "$T/big.down"
check "30 MiB download is byte-identical" cmp "$T/big.bin" "$T/big.down"

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

# ---------------------------------------------------------------- rm / rb

# TODO(DeleteObjects): replace this per-key loop with `aws s3 rm --recursive s3://$BUCKET/`
# once Lifeboat implements DeleteObjects (batch delete); today it answers 501 NotImplemented.
rm_each_key() {
    local key n=0
    list_keys >"$T/keys.txt" || return 1
    while IFS= read -r key; do
        awsx s3 rm "s3://$BUCKET/$key" || return 1
        n=$((n + 1))
    done <"$T/keys.txt"
    echo "removed $n keys"
    [ "$n" -eq 8 ]
}
check "s3 rm removes each key (one request per key)" rm_each_key

bucket_empty() { local keys; keys=$(list_keys) && [ -z "$keys" ]; }
check "bucket is empty after rm" bucket_empty

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
    multipart_threshold = 64MB
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
    # TODO(DeleteObjects): `aws s3 rb --force` once Lifeboat implements DeleteObjects.
    check "virtual-hosted: s3 rm removes the key" vawsx s3 rm "s3://$VBUCKET/dir/small.bin"
    check "virtual-hosted: s3 rb removes the bucket" vawsx s3 rb "s3://$VBUCKET"
    check_error "virtual-hosted bucket is gone (path-style head-bucket → 404)" 404 \
        awsx s3api head-bucket --bucket "$VBUCKET"
fi

echo "== awscli.sh done: pass=$PASSED fail=$FAILED"
[ "$FAILED" -eq 0 ]
