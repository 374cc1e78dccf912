#!/usr/bin/env bash
# Brings up, on this machine and on loopback only, what ferry stands on:
# PostgreSQL and MinIO, installing them when missing (and chromium, for the
# dashboard's browser test). NATS needs nothing:
# `ferry serve` and the tests embed a NATS server (nats-server/v2) unless
# FERRY_NATS_URL points at one.
#
#   scripts/stack.sh up      start what is not running (idempotent)
#   scripts/stack.sh env     print the FERRY_* variables for this stack
#   scripts/stack.sh down    stop the MinIO this script started
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FERRY_STATE_DIR:-$ROOT/.ferry}
PGPORT=${FERRY_PG_PORT:-5432}
MINIO_ADDR=${FERRY_MINIO_ADDR:-127.0.0.1:9000}
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_USER=minioadmin
MINIO_PASSWORD=minioadmin
DB_URL="postgres://postgres:postgres@127.0.0.1:$PGPORT/ferry?sslmode=disable"

log() { printf 'stack: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  if [ ! -f "$STATE/.apt-updated" ]; then
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    mkdir -p "$STATE" && touch "$STATE/.apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >&2
}

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_up; then
    :
  else
    if ! command -v pg_ctlcluster >/dev/null; then
      log "installing PostgreSQL (Debian package)"
      apt_install postgresql postgresql-client
    fi
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -z "$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v && $2=="main"')" ]; then
      as_root pg_createcluster "$ver" main >&2
    fi
    log "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    pg_up || { log "PostgreSQL did not come up on 127.0.0.1:$PGPORT"; exit 1; }
  fi
  # A fresh Debian cluster asks for a password over TCP: give the postgres
  # role the one ferry's default URL carries (harmless under trust auth).
  if ! psql "postgres://postgres:postgres@127.0.0.1:$PGPORT/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -p $PGPORT -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2
  fi
  # The suite runs several ferry processes at once (the cluster proof, the
  # benchmark's scaling scenario), each with a pool of up to 20
  # connections, beside parallel tests: Debian's default of 100 is too few.
  local maxconn
  maxconn=$(psql "postgres://postgres:postgres@127.0.0.1:$PGPORT/postgres" -Atqc 'show max_connections')
  if [ "$maxconn" -lt 300 ] && command -v pg_ctlcluster >/dev/null; then
    log "raising PostgreSQL max_connections from $maxconn to 300 (restart)"
    psql "postgres://postgres:postgres@127.0.0.1:$PGPORT/postgres" -qc 'ALTER SYSTEM SET max_connections = 300' >&2
    local v
    v=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main restart >&2
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    pg_up || { log "PostgreSQL did not come back on 127.0.0.1:$PGPORT"; exit 1; }
  fi
  if [ "$(psql "postgres://postgres:postgres@127.0.0.1:$PGPORT/postgres" -Atqc "select 1 from pg_database where datname='ferry'")" != 1 ]; then
    log "creating database ferry"
    psql "postgres://postgres:postgres@127.0.0.1:$PGPORT/postgres" -qc 'CREATE DATABASE ferry' >&2
  fi
}

minio_bin() {
  if command -v minio >/dev/null; then command -v minio; return; fi
  local gobin
  gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
  if [ ! -x "$gobin/minio" ]; then
    log "installing the MinIO server with go install (a few minutes, once)"
    (cd /tmp && go install "github.com/minio/minio@$MINIO_VERSION") >&2
  fi
  echo "$gobin/minio"
}

minio_up() { curl -fsS -o /dev/null "http://$MINIO_ADDR/minio/health/live" 2>/dev/null; }

ensure_minio() {
  minio_up && return
  command -v curl >/dev/null || apt_install curl
  local bin
  bin=$(minio_bin)
  mkdir -p "$STATE/minio"
  log "starting MinIO on $MINIO_ADDR (data in $STATE/minio)"
  MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off \
    nohup "$bin" server --quiet --address "$MINIO_ADDR" "$STATE/minio" >"$STATE/minio.log" 2>&1 &
  echo $! >"$STATE/minio.pid"
  for _ in $(seq 1 120); do minio_up && return; sleep 0.5; done
  log "MinIO did not come up; see $STATE/minio.log"; exit 1
}

# The dashboard's browser test (e2e/browser_test.go) drives Debian's
# headless chromium.
ensure_chromium() {
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null && return
  log "installing chromium (Debian package), for the dashboard's browser test"
  apt_install chromium
}

print_env() {
  cat <<ENV
export FERRY_DATABASE_URL='$DB_URL'
export FERRY_S3_ENDPOINT='$MINIO_ADDR'
export FERRY_S3_ACCESS_KEY='$MINIO_USER'
export FERRY_S3_SECRET_KEY='$MINIO_PASSWORD'
ENV
}

case "${1:-up}" in
  up)
    mkdir -p "$STATE"
    command -v go >/dev/null || { log "Go is required (https://go.dev/dl)"; exit 1; }
    command -v psql >/dev/null || apt_install postgresql-client
    ensure_postgres
    ensure_minio
    ensure_chromium
    log "PostgreSQL on 127.0.0.1:$PGPORT, MinIO on $MINIO_ADDR: up"
    ;;
  env) print_env ;;
  down)
    if [ -f "$STATE/minio.pid" ]; then kill "$(cat "$STATE/minio.pid")" 2>/dev/null || true; rm -f "$STATE/minio.pid"; fi
    ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
