#!/usr/bin/env bash
# Make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, trust auth, database `test`) are running,
# as the test suite and the distributed setup (docs/distributed.md) need them.
# Idempotent and fast when both already answer; on a bare Debian/Ubuntu machine it installs them with apt-get
# (needs root) and starts them. Used by `make test` / .ci/run.
set -euo pipefail

log() { echo "ensure-services: $*" >&2; }

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null
  fi
}

postgres_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

APT_UPDATED=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install $*: no apt-get here. Install and start Redis and PostgreSQL yourself."
    exit 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for NAME CHECK
  for _ in $(seq 1 100); do
    if "$2"; then return 0; fi
    sleep 0.1
  done
  log "$1 did not come up"
  return 1
}

# -- Redis ----------------------------------------------------------------------------------------
if redis_up; then
  log "redis: running"
else
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis redis_up
  log "redis: started"
fi

# -- PostgreSQL -----------------------------------------------------------------------------------
if ! postgres_up; then
  fresh=""
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    fresh=1
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ -n "$fresh" ]; then
    # a throwaway CI/dev server: trust local TCP connections (like the machine this project is developed on)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for postgresql postgres_up
  log "postgresql: started"
else
  log "postgresql: running"
fi

# the database the tests use (trust auth: user postgres); create it once
if command -v psql >/dev/null 2>&1; then
  if ! psql -h 127.0.0.1 -U postgres -d test -Atqc "select 1" >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" >/dev/null
    log "postgresql: database test created"
  fi
  if ! psql -h 127.0.0.1 -U postgres -d test -Atqc "select 1 from pg_roles where rolname = 'root'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d test -qc "CREATE ROLE root SUPERUSER LOGIN" >/dev/null 2>&1 || true
  fi
fi
