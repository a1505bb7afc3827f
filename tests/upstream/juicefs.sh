#!/usr/bin/env bash
# juicefs.sh DIR S3_PORT — run the JuiceFS S3 gateway (MinIO's 2021 S3 server code) in the
# foreground as a second real upstream. Credentials: jfsadmin / jfssecret123 (MinIO wants at
# least 3 and 8 characters). Formats DIR on first use.
set -euo pipefail
dir=$1 s3=$2
mkdir -p "$dir"
if [ ! -f "$dir/meta.db" ]; then
  juicefs format --storage file --bucket "$dir/blobs/" "sqlite3://$dir/meta.db" jfs >"$dir/format.log" 2>&1
fi
export MINIO_ROOT_USER=jfsadmin MINIO_ROOT_PASSWORD=jfssecret123
exec juicefs gateway "sqlite3://$dir/meta.db" "127.0.0.1:$s3" --multi-buckets --keep-etag \
  --object-tag --object-meta --no-usage-report --cache-dir "$dir/cache"
