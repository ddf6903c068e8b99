#!/usr/bin/env bash
# CI for examples-tokio: starts a throw-away PostgreSQL on a free local port, runs every test
# (SQLite, PostgreSQL and its restart mid-run, the Kafka mock cluster), then the demo on SQLite,
# on PostgreSQL and on the in-process Kafka mock cluster, and checks their reports.
# Runs as root on a fresh Debian 12 machine (PostgreSQL runs as a non-root user), or as a
# normal user who has the PostgreSQL server binaries. Call it from the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${APT_UPDATED:-}" ]; then run apt-get update -qq; APT_UPDATED=1; fi
    run apt-get install -y -qq "$@"
}
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

step "build tools for librdkafka (built from source by rdkafka-sys)"
missing=()
for tool in cc c++ make perl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]}"
    apt_install build-essential perl
else
    echo "cc, c++, make, perl: present"
fi

step "PostgreSQL server binaries"
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    apt_install postgresql
fi
PGBIN="$(pg_bin)"
echo "using $PGBIN"

# PostgreSQL refuses to run as root: as root, run it as a dedicated system user.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    id -u pgtest >/dev/null 2>&1 || run useradd --system --no-create-home --shell /usr/sbin/nologin pgtest
    as_pg=(runuser -u pgtest --)
fi

step "throw-away PostgreSQL cluster"
PGDATA="$(mktemp -d /tmp/pgtest.XXXXXX)"
[ ${#as_pg[@]} -eq 0 ] || chown pgtest "$PGDATA"
PORT=""
for p in $(seq 54320 54420); do
    # A port nobody answers on is free.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "no free port in 54320-54420" >&2; exit 1; }

cleanup() {
    local rc=$?
    if [ -f "$PGDATA/postmaster.pid" ]; then
        "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$PGDATA"
    exit "$rc"
}
trap cleanup EXIT

run "${as_pg[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --no-sync -E UTF8 --no-instructions
run "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=off" start
run "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres enrich_test
export PG_TEST_URL="postgres://postgres@127.0.0.1:$PORT/enrich_test"
echo "PG_TEST_URL=$PG_TEST_URL"
# For the test that restarts the server mid-run (pg_ctl restart keeps the options it started with).
export PG_RESTART_CMD="${as_pg[*]:+${as_pg[*]} }$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w -m fast restart"
echo "PG_RESTART_CMD=$PG_RESTART_CMD"

step "tests: SQLite, PostgreSQL, Kafka mock cluster (scale-out, faults, metrics), flags, signals, overlap, shutdown"
run cargo test -p examples-tokio -- --include-ignored

step "demo (SQLite, prefetch on and off), checking its report"
out="$(mktemp)"
run cargo run -q -p examples-tokio --bin enrich -- --quiet --messages 5000 | tee "$out"
grep -Eq '^prefetch +on +off$' "$out" || { echo "demo: no on/off report" >&2; exit 1; }
grep -Eq '^items +5000 +5000$' "$out" || { echo "demo: not every item processed" >&2; exit 1; }

step "demo against PostgreSQL"
run cargo run -q -p examples-tokio --bin enrich -- --quiet --messages 2000 --prefetch on \
    --database-url "$PG_TEST_URL" | tee "$out"
grep -Eq '^items +2000$' "$out" || { echo "demo on PostgreSQL: not every item processed" >&2; exit 1; }

step "demo on the in-process Kafka mock cluster (3 instances in one group)"
run cargo run -q -p examples-tokio --bin enrich -- --quiet --brokers mock --messages 3000 --prefetch on \
    | tee "$out"
grep -Eq '^items +3000$' "$out" || { echo "mock demo: not every item processed" >&2; exit 1; }
grep -Eq 'produced 3000, committed 3000, written 3000, duplicates 0$' "$out" \
    || { echo "mock demo: counts do not match" >&2; exit 1; }
rm -f "$out"

step "ci-tokio: all passed"
