#!/usr/bin/env bash
# SeaweedFS's S3 gateway on loopback, to run ferry's storage tests and an
# end-to-end subset against an S3 service other than MinIO
# (make test-s3-seaweed). weed is built from source once, pinned, into
# .ferry/weed (about 10 minutes on 2 cores); `weed server` then runs a
# master, a volume server, a filer and the S3 gateway in one process, its
# data under .ferry/seaweed.
#
#   scripts/seaweed.sh up      build weed if needed, start it (idempotent)
#   scripts/seaweed.sh env     print the FERRY_TEST_S3_* variables for it
#   scripts/seaweed.sh down    stop the weed this script started
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FERRY_STATE_DIR:-$ROOT/.ferry}
WEED=$STATE/weed
DATA=$STATE/seaweed
SEAWEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# Ports clear of ferry (8080), MinIO (9000) and weed's defaults; each port
# p also takes p+10000 for gRPC.
S3_PORT=${FERRY_SEAWEED_S3_PORT:-18333}
MASTER_PORT=19333
VOLUME_PORT=18081
FILER_PORT=18888
ACCESS_KEY=minioadmin
SECRET_KEY=minioadmin

log() { printf 'seaweed: %s\n' "$*" >&2; }

build() {
  if [ -x "$WEED" ] && [ "$(cat "$WEED.version" 2>/dev/null)" = "$SEAWEED_VERSION" ]; then
    return
  fi
  log "building weed $SEAWEED_VERSION from source (about 10 minutes on 2 cores, once)"
  local dir
  dir=$(cd "$ROOT" && go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "go mod download found no module directory"; exit 1; }
  mkdir -p "$STATE"
  # The module cache is read-only: build from it, output here.
  (cd "$dir" && GOFLAGS="-modcacherw -buildvcs=false" go build -o "$WEED.tmp" ./weed)
  mv "$WEED.tmp" "$WEED"
  echo "$SEAWEED_VERSION" >"$WEED.version"
}

s3_up() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" 2>/dev/null; }

start() {
  if [ -f "$DATA/weed.pid" ] && kill -0 "$(cat "$DATA/weed.pid")" 2>/dev/null; then
    return
  fi
  mkdir -p "$DATA/data"
  cat >"$DATA/s3.json" <<JSON
{"identities": [{"name": "ferry",
  "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
  log "starting weed server, S3 on 127.0.0.1:$S3_PORT (log: $DATA/weed.log)"
  "$WEED" server -dir="$DATA/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$MASTER_PORT -master.volumeSizeLimitMB=256 \
    -volume.port=$VOLUME_PORT -volume.max=32 \
    -filer -filer.port=$FILER_PORT \
    -s3 -s3.port=$S3_PORT -s3.config="$DATA/s3.json" \
    >"$DATA/weed.log" 2>&1 &
  echo $! >"$DATA/weed.pid"
  for _ in $(seq 1 240); do
    if s3_up && "$WEED" shell -master=127.0.0.1:$MASTER_PORT <<<"cluster.check" >/dev/null 2>&1; then
      log "up"
      return
    fi
    sleep 0.5
  done
  log "weed did not come up within 2 minutes; see $DATA/weed.log"
  exit 1
}

case "${1:-}" in
  up) build; start ;;
  env)
    echo "export FERRY_TEST_S3_ENDPOINT=127.0.0.1:$S3_PORT"
    echo "export FERRY_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
    echo "export FERRY_TEST_S3_SECRET_KEY=$SECRET_KEY"
    ;;
  down)
    if [ -f "$DATA/weed.pid" ]; then kill "$(cat "$DATA/weed.pid")" 2>/dev/null || true; rm -f "$DATA/weed.pid"; fi
    ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
