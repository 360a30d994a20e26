#!/usr/bin/env bash
# Compares the built-in router with nginx and HAProxy on loopback, side by side in one run
# (method: shared/docs/benchmarking-notes.md §6).
#
# - backend: nginx, 1 worker, `return 200 "ok\n"` on two ports, pinned to core 0;
# - proxies, each pinned to core 1 with one worker/thread: nginx (worker_processes 1,
#   upstream keepalive), HAProxy (nbthread 1, http-reuse always) and the built-in router
#   (the bench_router example: a current-thread Tokio runtime), all routing the Host
#   app1.example.test to the backend and answering 404 for other hosts;
# - load: wrk -t1 -cC -dD --latency on core 0, targets alternated for R rounds;
# - churn: nginx reloaded (SIGHUP, config alternating between the two backend ports) ten
#   times a second during a wrk run; HAProxy's server address switched between the two ports
#   through its runtime API ten times a second; the built-in router applying a new table ten
#   times a second (bench_router --churn).
#
# Usage: deis-router/benches/compare.sh   (env: DURATION=5s CONNECTIONS=50 ROUNDS=3 NICE=-10)
# Needs: nginx, haproxy, wrk, taskset, python3, cargo. Every process it starts is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
# Every process of the benchmark (backend, proxies, wrk) runs at this nice level, the same for
# all, so that unrelated work on a shared machine steals less of the pinned cores.
NICE=${NICE:--10}
HOST=app1.example.test
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/deis-rs/target-router}"

WORK="$(mktemp -d /tmp/deis-router-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

echo "==> building bench_router (release)"
(cd "$ROOT" && cargo build --release -q -p deis-router --example bench_router)
BENCH_ROUTER="$CARGO_TARGET_DIR/release/examples/bench_router"

BACKEND1=$(free_port); BACKEND2=$(free_port)
NGINX=$(free_port); HAPROXY=$(free_port); OURS=$(free_port); OURS_CHURN=$(free_port); NGINX_CHURN=$(free_port)

# --- backend -----------------------------------------------------------------------------
mkdir -p "$WORK/backend/logs"
cat >"$WORK/backend/nginx.conf" <<CONF
user root;
worker_processes 1;
pid backend.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$BACKEND1; listen 127.0.0.1:$BACKEND2; location / { return 200 "ok\n"; } }
}
CONF
nice -n "$NICE" taskset -c 0 nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" -e logs/error.log -g 'daemon off;' &
PIDS+=($!)

# --- nginx proxy ---------------------------------------------------------------------------
nginx_proxy_conf() { # nginx_proxy_conf <listen port> <backend port>
    cat <<CONF
user root;
worker_processes 1;
pid proxy-$1.pid;
error_log logs/error-$1.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream app1 { server 127.0.0.1:$2; keepalive 64; }
    server { listen 127.0.0.1:$1 default_server; location / { return 404; } }
    server {
        listen 127.0.0.1:$1;
        server_name $HOST;
        location / {
            proxy_pass http://app1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
}
mkdir -p "$WORK/nginx/logs"
nginx_proxy_conf "$NGINX" "$BACKEND1" >"$WORK/nginx/nginx.conf"
nice -n "$NICE" taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e logs/error.log -g 'daemon off;' &
PIDS+=($!)
nginx_proxy_conf "$NGINX_CHURN" "$BACKEND1" >"$WORK/nginx/churn-a.conf"
nginx_proxy_conf "$NGINX_CHURN" "$BACKEND2" >"$WORK/nginx/churn-b.conf"
cp "$WORK/nginx/churn-a.conf" "$WORK/nginx/churn.conf"
nice -n "$NICE" taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/churn.conf" -e logs/error.log -g 'daemon off;' &
NGINX_CHURN_PID=$!
PIDS+=($NGINX_CHURN_PID)

# --- HAProxy ---------------------------------------------------------------------------------
haproxy_conf() { # haproxy_conf <listen port> [global line]
    cat <<CONF
global
    nbthread 1
    maxconn 4096
    ${2:-}
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
frontend web
    bind 127.0.0.1:$1
    acl app1 hdr(host) -i $HOST
    http-request deny deny_status 404 unless app1
    use_backend app1 if app1
backend app1
    option forwardfor
    server b1 127.0.0.1:$BACKEND1
CONF
}
HAPROXY_CHURN=$(free_port)
haproxy_conf "$HAPROXY" >"$WORK/haproxy.cfg"
haproxy_conf "$HAPROXY_CHURN" "stats socket $WORK/haproxy.sock mode 600 level admin" >"$WORK/haproxy-churn.cfg"
nice -n "$NICE" taskset -c 1 haproxy -f "$WORK/haproxy.cfg" -db &
PIDS+=($!)
nice -n "$NICE" taskset -c 1 haproxy -f "$WORK/haproxy-churn.cfg" -db &
PIDS+=($!)

# --- the built-in router -------------------------------------------------------------------
nice -n "$NICE" taskset -c 1 "$BENCH_ROUTER" --listen "127.0.0.1:$OURS" --host "$HOST" --backend "127.0.0.1:$BACKEND1" 2>/dev/null &
PIDS+=($!)
OURS_ADMIN=$(free_port)
nice -n "$NICE" taskset -c 1 "$BENCH_ROUTER" --listen "127.0.0.1:$OURS_CHURN" --admin "127.0.0.1:$OURS_ADMIN" --host "$HOST" \
    --backend "127.0.0.1:$BACKEND1" --backend "127.0.0.1:$BACKEND2" --churn 2>/dev/null &
PIDS+=($!)

for port in "$BACKEND1" "$BACKEND2" "$NGINX" "$NGINX_CHURN" "$HAPROXY" "$HAPROXY_CHURN" "$OURS" "$OURS_CHURN"; do wait_port "$port"; done
for port in "$NGINX" "$HAPROXY" "$OURS"; do
    test "$(curl -s -H "Host: $HOST" "http://127.0.0.1:$port/")" = "ok" || { echo "port $port does not proxy" >&2; exit 1; }
    test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.test' "http://127.0.0.1:$port/")" = "404" \
        || { echo "port $port does not answer 404 for other hosts" >&2; exit 1; }
done

WRK=(nice -n "$NICE" taskset -c 0 wrk -t1 "-c$CONNECTIONS" "-d$DURATION" --latency -H "Host: $HOST")
echo "==> load: ${WRK[*]} http://127.0.0.1:PORT/"

# cpu_ticks <pid>...: user + system CPU ticks (1/100 s) used so far by the processes.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# run <name> <port> [pid...]: one wrk run; appends "name rps p99_ms errors non2xx requests
# cpu_s" to the results, where cpu_s is the CPU time the given proxy processes used during
# the run (or -1 when no pid is given). Requests per CPU-second is the figure that a busy,
# shared machine disturbs least.
run() {
    local name=$1 port=$2; shift 2
    local out="$WORK/wrk-$name-$RANDOM.txt" before=0 after=0 cpu=-1
    (($#)) && before=$(cpu_ticks "$@")
    "${WRK[@]}" "http://127.0.0.1:$port/" >"$out"
    (($#)) && after=$(cpu_ticks "$@") && cpu=$(python3 -c "print(($after - $before) / 100)")
    python3 - "$name" "$out" "$cpu" >>"$WORK/results" <<'PY'
import re, sys
name, path, cpu = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
requests = int(re.search(r"(\d+) requests in", text).group(1))
print(name, rps, p99, errors, non2xx, requests, cpu)
PY
    tail -1 "$WORK/results"
}

NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx/proxy-$NGINX.pid")")
HAPROXY_PID=$(pgrep -f "haproxy -f $WORK/haproxy.cfg" | head -1)
OURS_PID=$(pgrep -f -- "--listen 127.0.0.1:$OURS " | head -1)

echo "==> throughput and latency ($ROUNDS alternating rounds)"
run direct "$BACKEND1"
for round in $(seq 1 "$ROUNDS"); do
    run nginx "$NGINX" $NGINX_WORKER
    run haproxy "$HAPROXY" "$HAPROXY_PID"
    run builtin "$OURS" "$OURS_PID"
done

echo "==> route churn: 10 changes per second during one run each"
(
    end=$((SECONDS + ${DURATION%s} + 1)); flip=0
    while ((SECONDS < end)); do
        if ((flip)); then src=churn-a.conf; else src=churn-b.conf; fi
        cp "$WORK/nginx/$src" "$WORK/nginx/churn.conf.new" && mv "$WORK/nginx/churn.conf.new" "$WORK/nginx/churn.conf"
        kill -HUP "$NGINX_CHURN_PID"
        flip=$((1 - flip))
        sleep 0.1
    done
) &
RELOADER=$!
run nginx-churn "$NGINX_CHURN"
wait "$RELOADER" || true
# HAProxy changes the server address through its runtime API (no reload), ten times a second.
python3 - "$WORK/haproxy.sock" "$BACKEND1" "$BACKEND2" "${DURATION%s}" <<'PY' &
import socket, sys, time
path, ports, seconds = sys.argv[1], sys.argv[2:4], float(sys.argv[4]) + 1
end, flip, changed = time.time() + seconds, 0, 0
while time.time() < end:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(f"set server app1/b1 addr 127.0.0.1 port {ports[flip]}\n".encode())
    changed += b"changed" in s.recv(4096)
    s.close()
    flip = 1 - flip
    time.sleep(0.1)
print(f"    (haproxy runtime API: {changed} address changes applied)", file=sys.stderr)
PY
CHANGER=$!
run haproxy-churn "$HAPROXY_CHURN"
wait "$CHANGER" || true
applies_before=$(curl -s "http://127.0.0.1:$OURS_ADMIN/metrics" | awk '/^deis_router_route_table_applies_total/ {print $2}')
run builtin-churn "$OURS_CHURN"
applies_after=$(curl -s "http://127.0.0.1:$OURS_ADMIN/metrics" | awk '/^deis_router_route_table_applies_total/ {print $2}')
echo "    (built-in router: $((applies_after - applies_before)) tables applied during the run)" >&2

echo "==> summary"
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
by = {}
for name, rps, p99, errors, non2xx, requests, cpu in rows:
    by.setdefault(name, []).append(
        (float(rps), float(p99), int(errors), int(non2xx), int(requests), float(cpu)))
print(f"{'target':15} {'runs':>4} {'median rps':>11} {'median p99 ms':>14} {'errors':>7} "
      f"{'non-2xx':>8} {'requests':>10} {'req/CPU-s':>10}")
for name, runs in by.items():
    cpu = [r[4] / r[5] for r in runs if r[5] > 0]
    per_cpu = f"{statistics.median(cpu):10.0f}" if cpu else f"{'-':>10}"
    print(f"{name:15} {len(runs):4} {statistics.median(r[0] for r in runs):11.0f} "
          f"{statistics.median(r[1] for r in runs):14.2f} {sum(r[2] for r in runs):7} "
          f"{sum(r[3] for r in runs):8} {sum(r[4] for r in runs):10} {per_cpu}")
def ratio(a, b, key):
    return statistics.median(key(x) / key(y) for x, y in zip(by[a], by[b]))
for other in ("nginx", "haproxy"):
    rps = ratio("builtin", other, lambda r: r[0])
    p99 = ratio("builtin", other, lambda r: r[1])
    eff = ratio("builtin", other, lambda r: r[4] / r[5])
    print(f"builtin / {other}: throughput x{rps:.2f}, p99 x{p99:.2f}, requests per CPU-second "
          f"x{eff:.2f} (medians of per-round ratios)")
PY
