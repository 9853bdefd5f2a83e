#!/usr/bin/env bash
# Makes sure what `make test` needs is there: PostgreSQL and Redis on loopback (started if installed but
# down, installed from Debian's packages if missing), Debian's chromium for the browser tests and wrk.
set -euo pipefail

PGHOST=127.0.0.1 PGPORT=5432 REDIS_PORT=6379

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root to run: $*" >&2; return 1; fi; }

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  for version in $(ls /etc/postgresql); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
fi
pg_isready -h "$PGHOST" -p "$PGPORT"
psql -h "$PGHOST" -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 ||
  createdb -h "$PGHOST" -U postgres test

# Redis
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
echo "redis: $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)"

# Chromium for the Playwright tests (`playwright install` cannot download here; Debian's build is used).
[ -x /usr/bin/chromium ] || apt_install chromium
/usr/bin/chromium --version

# wrk, the load generator of bench/storefront_load.py (its smoke test runs in `make test`).
command -v wrk >/dev/null || apt_install wrk
echo "wrk: $(command -v wrk)"

# nginx, run by tests/test_compose_proxy.py with the compose stack's own docker/nginx.conf (not as a service).
if [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx-light || apt_install nginx
  # Debian starts the packaged service on port 80; the tests start their own.
  as_root service nginx stop >/dev/null 2>&1 || true
fi
echo "nginx: $(/usr/sbin/nginx -v 2>&1)"
