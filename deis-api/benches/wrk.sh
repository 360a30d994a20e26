#!/usr/bin/env bash
# Load test of the controller API on loopback with wrk: requests per second and p99 latency
# of GET /v1/apps/<id>/ and POST /v1/apps/<id>/config/ (a new release per request).
#
# It builds and starts the `bench_server` example (a SQLite store by default, STORE=<url>
# for another; in-memory scheduler and discovery; one seeded user, app and token) on 127.0.0.1, runs wrk for DURATION (default 10s) per endpoint, prints a
# summary and stops the server it started.
#
# Usage: deis-api/benches/wrk.sh            (env: DURATION=10s THREADS=2 CONNECTIONS=32)
#        SERVER=/path/to/bench_server deis-api/benches/wrk.sh   (skip the build and load test
#        that binary, e.g. one built from an older commit for a same-sitting comparison)
# Target (2 cores): at least 15,000 GET/s with p99 under 5 ms.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/deis-rs/target-api}"

command -v wrk >/dev/null || { echo "wrk.sh: wrk is not installed" >&2; exit 1; }

if [[ -z "${SERVER:-}" ]]; then
    (cd "$ROOT" && cargo build --quiet --release -p deis-api --example bench_server)
    SERVER="$CARGO_TARGET_DIR/release/examples/bench_server"
fi

WORK="$(mktemp -d /tmp/deis-api-bench.XXXXXX)"
# The store under test: SQLite in the work directory unless STORE names another URL.
export DEIS_BENCH_STORE="${STORE:-sqlite://$WORK/deis.db}"
"$SERVER" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
cleanup() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
    grep -q '^READY ' "$WORK/server.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.err" >&2; exit 1; }
    sleep 0.1
done
read -r _ ADDRESS TOKEN APP < <(grep '^READY ' "$WORK/server.out")
[[ -n "${APP:-}" ]] || { echo "wrk.sh: the server did not start" >&2; exit 1; }
export DEIS_TOKEN="$TOKEN" DEIS_APP="$APP"

run() { # run <name> <wrk args...>
    local name=$1; shift
    local out="$WORK/wrk.txt"
    timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$out"
    [[ -n "${VERBOSE:-}" ]] && cat "$out"
    local rps p99 errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
    printf '%-32s %12s req/s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p99" "${errors:-0}"
}

echo "deis-api on $ADDRESS (store ${DEIS_BENCH_STORE%%://*}), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run "GET /v1/apps/$APP/" -H "Authorization: token $TOKEN" "http://$ADDRESS/v1/apps/$APP/"
run "POST /v1/apps/$APP/config/" -s "$HERE/config_post.lua" "http://$ADDRESS"
