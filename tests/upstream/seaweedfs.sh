#!/usr/bin/env bash
# seaweedfs.sh DIR S3_PORT BASE_PORT — run SeaweedFS (`weed mini`) in the foreground as a real
# S3 upstream for the gateway tests. DIR holds its data and ids.json; BASE_PORT..BASE_PORT+7 are
# the master, volume, filer and admin ports and their gRPC twins, so runs can sit side by side.
# Credentials: AK / SK (SigV4 is enforced once an identity exists).
set -euo pipefail
dir=$1 s3=$2 base=$3
mkdir -p "$dir/data"
cat >"$dir/ids.json" <<'JSON'
{"identities":[{"name":"admin","credentials":[{"accessKey":"AK","secretKey":"SK"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
# With WEED_HTTPS_PORT set, S3 is also served over TLS with $dir/tls/leaf.{pem,key}.
tls=()
if [ -n "${WEED_HTTPS_PORT:-}" ]; then
  tls=(-s3.cert.file="$dir/tls/leaf.pem" -s3.key.file="$dir/tls/leaf.key" -s3.port.https="$WEED_HTTPS_PORT")
fi
exec weed mini "${tls[@]}" -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$s3" \
  -s3.config="$dir/ids.json" -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.autoCreateBucket=false -s3.allowDeleteBucketNotEmpty=false -volume.max=3000 \
  -master.volumeSizeLimitMB=64 \
  -master.port=$((base)) -master.port.grpc=$((base + 1)) \
  -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) \
  -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) \
  -admin.port=$((base + 6)) -admin.port.grpc=$((base + 7))
