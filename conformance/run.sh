#!/usr/bin/env bash
# run.sh BINARY — run the client conformance suites against a throwaway Lifeboat.
#
# Starts BINARY (`serve`) on 127.0.0.1:0 with a fresh data dir and generated keys, waits for its
# "lifeboat listening on http://127.0.0.1:PORT" line, writes a temporary AWS config file
# (SigV4 presigning; aws-cli's default 8 MiB multipart threshold and part size), then runs:
#   conformance/awscli.sh        the aws-cli (v1) workflow
#   conformance/test_boto3.py    boto3 checks (path-style and virtual-hosted-style)
# and finally checks the server is still alive. The server and temp dir are removed on exit.
#
# Requirements: aws-cli v1, boto3 (python3), curl (conformance/requirements.txt). The
# virtual-hosted checks need
#   127.0.0.1 s3.localhost vhost-bucket.s3.localhost vhost-cli.s3.localhost
# in /etc/hosts (.ci/run adds them; the bucket names can be changed with LIFEBOAT_VHOST_BUCKET
# for boto3 and LIFEBOAT_VHOST_CLI_BUCKET for aws-cli).
#
# Output: each suite's PASS/FAIL lines, then one closing line "N passed, N failed".
# Exit status: 0 when every check passed, 1 otherwise (2 on bad usage / server start failure).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
BINARY=$(realpath "$1")
if [ ! -x "$BINARY" ]; then
    echo "run.sh: $1 is not an executable file" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-conformance.XXXXXX")
SERVER_PID=""
STARTED_AT=$SECONDS

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "${UPSTREAM_PID:-}" ] && kill -0 "$UPSTREAM_PID" 2>/dev/null; then
        kill "$UPSTREAM_PID" 2>/dev/null || true
        wait "$UPSTREAM_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- start Lifeboat

ACCESS_KEY="conformance$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRET_KEY="$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"

# With CONFORMANCE_UPSTREAM=seaweedfs the same suites run against Lifeboat in gateway mode, in
# front of a real SeaweedFS (tests/upstream/seaweedfs.sh): clients must notice nothing.
UPSTREAM_PID=""
GATEWAY_ENV=()
if [ "${CONFORMANCE_UPSTREAM:-}" = "seaweedfs" ]; then
    UP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    UP_BASE=$(( 20000 + RANDOM % 20000 ))
    bash "$HERE/../tests/upstream/seaweedfs.sh" "$WORK/upstream" "$UP_PORT" "$UP_BASE" >"$WORK/upstream.log" 2>&1 &
    UPSTREAM_PID=$!
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$UP_PORT") 2>/dev/null; then break; fi
        sleep 0.1
    done
    sleep 1
    GATEWAY_ENV=(USE_S3_STORAGE=true "S3_ENDPOINT_URL=http://127.0.0.1:$UP_PORT" AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK)
    echo "== upstream: SeaweedFS on 127.0.0.1:$UP_PORT (gateway mode)"
fi

env NO_COLOR=1 LIFEBOAT_ADDRESS=127.0.0.1:0 LIFEBOAT_ADMIN_ADDRESS=127.0.0.1:0 \
    LIFEBOAT_DATA_DIR="$WORK/data" \
    LIFEBOAT_ACCESS_KEY="$ACCESS_KEY" \
    LIFEBOAT_SECRET_KEY="$SECRET_KEY" \
    "${GATEWAY_ENV[@]}" \
    "$BINARY" serve >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!

ENDPOINT=""
for _ in $(seq 1 200); do # up to ~20 s
    # The admin listener's line comes first, then the S3 listener's; only complete
    # (newline-terminated) lines count.
    if [ "$(wc -l <"$WORK/server.out")" -ge 2 ]; then
        line=$(sed -n 2p "$WORK/server.out")
        if [[ $line =~ ^lifeboat\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
            ENDPOINT=${BASH_REMATCH[1]}
            break
        fi
        echo "run.sh: unexpected second stdout line from lifeboat: $line" >&2
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ENDPOINT" ]; then
    echo "run.sh: lifeboat did not report its listening address; server log:" >&2
    sed 's/^/    | /' "$WORK/server.log" >&2
    exit 2
fi
PORT=${ENDPOINT##*:}
echo "== lifeboat $BINARY listening on $ENDPOINT (pid $SERVER_PID)"

# ---------------------------------------------------------------- client environment

# Keep the clients hermetic: no profile, session token, endpoint override or user config.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
    AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_CA_BUNDLE AWS_REGION AWS_USE_DUALSTACK_ENDPOINT \
    AWS_USE_FIPS_ENDPOINT AWS_S3_US_EAST_1_REGIONAL_ENDPOINT
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_CONFIG_FILE="$WORK/aws-config"
: >"$AWS_SHARED_CREDENTIALS_FILE"
# signature_version = s3v4: `aws s3 presign` would otherwise produce legacy SigV2 URLs.
# Everything else is aws-cli's default: multipart_threshold and multipart_chunksize 8 MiB,
# max_concurrent_requests 10 (awscli.sh relies on the 8 MiB part size for the expected ETags).
cat >"$AWS_CONFIG_FILE" <<'EOF'
[default]
region = us-east-1
s3 =
    signature_version = s3v4
EOF
# botocore bug (boto/botocore#3755): after a zero-length PUT sent with "Expect: 100-continue"
# gets its final response without a 100, the pooled connection keeps a stale status line and the
# next PUT on it stalls. Lifeboat answers such requests with "Connection: close", so the clients
# run here with their defaults (an empty file in the sync tree exercises it).
export LIFEBOAT_ENDPOINT="$ENDPOINT"
export LIFEBOAT_PORT="$PORT"
export PYTHONUNBUFFERED=1

# ---------------------------------------------------------------- run the suites

PASSED=0
FAILED=0

# run_suite NAME CMD... — runs a suite, echoing its output, and adds up its PASS/FAIL lines.
# A suite that exits non-zero without printing any FAIL line (it crashed) counts as one failure.
run_suite() {
    local name=$1 status log="$WORK/$1.log" p f
    shift
    echo
    echo "== $name"
    set +e
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    p=$(grep -c '^PASS: ' "$log" || true)
    f=$(grep -c '^FAIL: ' "$log" || true)
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL: $name exited with status $status without reporting a failed check"
        f=1
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
}

run_suite awscli.sh bash "$HERE/awscli.sh"
run_suite test_boto3.py python3 "$HERE/test_boto3.py"

echo
if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "PASS: lifeboat is still running after all suites"
    PASSED=$((PASSED + 1))
else
    echo "FAIL: lifeboat exited during the run"
    FAILED=$((FAILED + 1))
fi

if [ "$FAILED" -ne 0 ]; then
    echo
    echo "== last lines of the lifeboat log ($WORK/server.log):"
    tail -n 40 "$WORK/server.log" | sed 's/^/    | /'
fi

echo "== finished in $((SECONDS - STARTED_AT)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
