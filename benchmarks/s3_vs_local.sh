#!/usr/bin/env bash
# `palisade bench data` over the same photo shards from local files and from a local
# S3-compatible server (moto on 127.0.0.1), read-ahead off and on. docs/PERFORMANCE.md.
#   benchmarks/s3_vs_local.sh [ROWS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${PALISADE_HOME:-$HOME/.cache/palisade}/env.sh"
PALISADE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/palisade"
ROWS="${1:-1000}"
DIR="$(mktemp -d)"
trap 'kill "$MOTO" 2>/dev/null || true; rm -rf "$DIR"' EXIT
python "$ROOT/benchmarks/make_photo_shards.py" "$DIR/photos" --rows "$ROWS" --rows-per-shard 500 >/dev/null
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python -m moto.server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
python "$ROOT/tests/oracles/s3_upload.py" "$AWS_ENDPOINT_URL" bench photos "$DIR"/photos/*.parquet >/dev/null
# Alternating, twice each: local, then S3 at read-ahead 0, 2 and 4 row groups.
for round in 1 2; do
  echo "round $round, local files: $("$PALISADE" bench data "$DIR/photos/*.parquet" --threads 2 2>/dev/null | head -1)"
  for ahead in 0 2 4; do
    out=$(PALISADE_READAHEAD=$ahead "$PALISADE" bench data "s3://bench/photos/*.parquet" --threads 2 2>/dev/null | head -1)
    echo "round $round, s3 (moto), read-ahead $ahead: $out"
  done
done
