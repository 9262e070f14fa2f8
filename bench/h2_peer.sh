#!/usr/bin/env bash
# h2_peer.sh — HTTP/2 clients through weir, nginx and HAProxy: h2c with
# prior knowledge to the proxy, HTTP/1.1 keep-alive to the upstreams (one
# nginx, 1 worker, two listeners v1/v2, `return 200` with a 100-byte body),
# 90/10 split, `h2load -c CONNS -m STREAMS -D DURATION` (64 × 10, 5 s), in
# ROUNDS rounds (3) with a rotating order. p50/p99 come from h2load's
# --log-file (per-request durations); req/s from its summary.
#
#   bench/h2_peer.sh                 # BUILD=build (a release build)
#   ROUNDS=1 DURATION=3 bench/h2_peer.sh
#
# Contenders: weir-w1 / weir-w2 (workers 1 / 2, no access log), nginx
# (1 worker, `listen ... http2`, upstream keepalive 1024), haproxy
# (nbthread 1, `bind ... proto h2`, http-reuse always). Prints one line per
# run and the medians. Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-10}
DIR=$(mktemp -d /tmp/weir-h2bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT


free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 100); do
        (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 did not open" >&2
    return 1
}

U1=$(free_port); U2=$(free_port)
mkdir -p "$DIR/up/logs"
cat >"$DIR/up/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $DIR/up/nginx.pid; error_log $DIR/up/error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$U1 reuseport; location / { add_header X-Version v1; return 200 "$(printf 'x%.0s' $(seq 99))\n"; } }
  server { listen 127.0.0.1:$U2 reuseport; location / { add_header X-Version v2; return 200 "$(printf 'y%.0s' $(seq 99))\n"; } }
}
EOF
nginx -p "$DIR/up" -c "$DIR/up/nginx.conf" & PIDS+=($!)
wait_port "$U1"

declare -A PORT
start_weir() { # name workers
    local p; p=$(free_port); PORT[$1]=$p
    mkdir -p "$DIR/$1"
    cat >"$DIR/$1/weir.yaml" <<EOF
listen: 127.0.0.1:$p
control: $DIR/$1/weir.sock
workers: $2
access_log: {enabled: false}
versions:
  v1: {endpoints: [127.0.0.1:$U1]}
  v2: {endpoints: [127.0.0.1:$U2]}
split: {v1: 90, v2: 10}
EOF
    "$BUILD/src/bin/weir" -c "$DIR/$1/weir.yaml" 2>"$DIR/$1/stderr" & PIDS+=($!)
    wait_port "$p"
}
start_weir weir-w1 1
start_weir weir-w2 2

P=$(free_port); PORT[nginx]=$P
mkdir -p "$DIR/nginx/logs"
cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $DIR/nginx/nginx.pid; error_log $DIR/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  http2_max_concurrent_streams 128;
  upstream b { server 127.0.0.1:$U1 weight=9; server 127.0.0.1:$U2 weight=1; keepalive 1024; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$P http2;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto http; } }
}
EOF
nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" & PIDS+=($!)
wait_port "$P"

P=$(free_port); PORT[haproxy]=$P
mkdir -p "$DIR/haproxy"
cat >"$DIR/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option forwardfor
frontend f
  bind 127.0.0.1:$P proto h2
  http-request set-header X-Forwarded-Proto http
  default_backend b
backend b
  balance roundrobin
  http-reuse always
  server v1 127.0.0.1:$U1 weight 9
  server v2 127.0.0.1:$U2 weight 1
EOF
haproxy -f "$DIR/haproxy/haproxy.cfg" -db >"$DIR/haproxy/out" 2>&1 & PIDS+=($!)
wait_port "$P"

NAMES=(weir-w1 weir-w2 nginx haproxy)
echo "# h2load -c $CONNS -m $STREAMS -D $DURATION, h2c to the proxy, HTTP/1.1 upstream; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RES
for r in $(seq "$ROUNDS"); do
    n=${#NAMES[@]}
    for i in $(seq 0 $((n - 1))); do
        name=${NAMES[$(( (i + r) % n ))]}
        log="$DIR/$name.r$r.log"
        out=$(h2load -c "$CONNS" -m "$STREAMS" -D "$DURATION" -t 1 --log-file="$log" \
            "http://127.0.0.1:${PORT[$name]}/" 2>&1)
        rps=$(echo "$out" | sed -n 's/.* \([0-9.]*\) req\/s.*/\1/p' | head -1)
        fails=$(echo "$out" | sed -n 's/.* \([0-9]*\) failed.*/\1/p' | head -1)
        read -r p50 p99 < <(/usr/bin/python3 - "$log" <<'PY'
import sys
d = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
print("%.2f %.2f" % (d[len(d) // 2] / 1000, d[int(len(d) * 0.99)] / 1000) if d else "0 0")
PY
)
        echo "round $r  $name  ${rps} req/s  p50 ${p50} ms  p99 ${p99} ms  failed ${fails}"
        RES[$name]+="$rps:$p99 "
    done
done
echo "# medians"
for name in "${NAMES[@]}"; do
    /usr/bin/python3 - "$name" ${RES[$name]} <<'PY'
import statistics, sys
name, runs = sys.argv[1], [x.split(":") for x in sys.argv[2:]]
print("%-8s %10.0f req/s  p99 %.2f ms" % (name, statistics.median(float(a) for a, _ in runs),
                                          statistics.median(float(b) for _, b in runs)))
PY
done
