#!/usr/bin/env bash
# peer.sh — the peer benchmark: weir against nginx and HAProxy (and the
# direct path to one upstream) on this machine, in one run.
#
#   bench/peer.sh                        # 3 rounds × 10 s: ~7 minutes with the build
#   ROUNDS=5 DURATION=10 bench/peer.sh   # the method of the targets (~10-11 min)
#
# What it does (everything on 127.0.0.1, ports below 32768 picked free):
#  1. installs what is missing from Debian (build deps, nginx-light, haproxy,
#     wrk, python3; apt-get update first) and builds weir in release mode
#     (BUILD dir, default build-bench; -Db_ndebug=false, jemalloc linked);
#  2. starts four weir-pod upstreams, v1a v1b (version v1) and v2a v2b (v2),
#     one thread each, and the contenders, all configured for the same 90/10
#     split with keep-alive to the upstreams:
#       weir-w1 / weir-w2    weir, `workers: 1` / `workers: 2`, no access log,
#                            upstream_idle_per_endpoint: POOL
#       nginx                nginx, 1 worker, upstream weights 9:9:1:1,
#                            keepalive POOL, keepalive_requests 1000000
#       haproxy-t1 / -t2     HAProxy, nbthread 1 / 2, roundrobin 9:9:1:1,
#                            http-reuse always (its idle pool is unbounded)
#       direct               wrk straight at v1a (the physical limit)
#     The peers also add X-Forwarded-For and X-Forwarded-Proto, as weir does.
#     POOL (default 256) sizes the idle upstream pools so that no proxy
#     closes and reopens upstream connections at 256 clients (with 64, weir
#     reconnects for about a fifth of the requests, nginx too: POOL=64).
#  3. idle client connections, while the proxies are fresh: opens 1,000 then
#     10,000 connections to each proxy that send nothing (IDLE_MODES="fresh
#     keepalive" adds a pass where each first completes one request; allocator
#     caches make that one noisy) and reports the RSS increase per connection;
#  4. ROUNDS rounds; in each, for 64 and 256 connections, every contender in a
#     rotating order gets `wrk -t1 -cN -dDURATION --latency`; the CPU time
#     (utime+stime from /proc/PID/stat) of the proxy's processes before and
#     after gives CPU per request. 64 connections: nginx, haproxy-t1; 256:
#     nginx, haproxy-t2 (FULL=1: both HAProxy variants and nginx with 2
#     workers at both). One extra run of weir with its access log on (JSON
#     lines to stdout, sent to /dev/null) is reported as a note;
#  5. the split changes 20 times (90/10 <-> 50/50) during a 64-connection wrk
#     run: weir through `weirctl split`, nginx by rewriting the weights and
#     `nginx -s reload`, HAProxy with `set weight` on its runtime API; counts
#     non-2xx answers and socket errors;
#  6. prints the table (medians over the rounds, ratios against the better
#     peer, targets met or missed, the machine and its load average) and
#     writes it into bench/README.md between the peer-results markers
#     (README=0: stdout only).
#
# Settings (environment): ROUNDS (3), DURATION (10, seconds per run),
# CONNS ("64 256"), FULL (0), IDLE (1), IDLE_MODES (fresh), POOL (256),
# SPLIT (1), ACCESS_LOG_NOTE (1), SPLIT_DURATION (10), BUILD (build-bench),
# README (1), KEEP (0: keep the work directory with configs and logs).
# Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"64 256"}
FULL=${FULL:-0}
IDLE=${IDLE:-1}
SPLIT=${SPLIT:-1}
ACCESS_LOG_NOTE=${ACCESS_LOG_NOTE:-1}
SPLIT_DURATION=${SPLIT_DURATION:-10}
IDLE_MODES=${IDLE_MODES:-fresh}
POOL=${POOL:-256}
BUILD=${BUILD:-build-bench}
README=${README:-1}
KEEP=${KEEP:-0}
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1 /proc/loadavg)

say() { printf '%s [%4ds] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- 1. install and build ---------------------------------------------------
install_missing() {
    local pkgs=(meson ninja-build pkg-config gcc libc6-dev libevent-dev libyaml-dev
                libjemalloc-dev node-llhttp python3 procps nginx-light haproxy wrk)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    # nginx-light may be a transitional name; any nginx binary will do.
    if [ ${#missing[@]} -gt 0 ] && command -v nginx >/dev/null 2>&1; then
        missing=("${missing[@]/nginx-light}")
    fi
    missing=($(printf '%s\n' "${missing[@]}" | grep . || true))
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root to install them"
        say "installing from Debian: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
install_missing
PATH=$PATH:/usr/sbin:/sbin
command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v wrk >/dev/null ||
    die "nginx, haproxy and wrk are needed"

say "building weir (release) in $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release -Db_ndebug=false >/dev/null
fi
meson compile -C "$BUILD" >/dev/null
B=$ROOT/$BUILD/src/bin
ldd "$B/weir" | grep jemalloc >/dev/null || say "warning: weir is not linked against jemalloc"
# Debian's python3 (a pyenv shim in PATH costs a second per call).
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
TOOL=("$PY" "$ROOT/bench/peer_tool.py")

# ---- 2. environment, ports, processes ----------------------------------------
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
NOFILE=$(( hard < 65536 ? hard : 65536 ))
ulimit -n "$NOFILE" || true
NOFILE=$(ulimit -n)
IDLE_STEPS="1000,10000"
if [ "$NOFILE" -lt 10500 ]; then
    IDLE_STEPS="1000"
    say "warning: open-file limit $NOFILE: idle test with 1k connections only"
fi

DIR=$(mktemp -d /tmp/weir-peer.XXXXXX)
chmod 755 "$DIR"   # nginx workers (nobody) write their temp dirs here
RES=$DIR/results.jsonl
: >"$RES"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then say "work directory kept: $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_V1A P_V1B P_V2A P_V2B P_W1 P_W2 P_WLOG P_NG P_NG2 P_H1 P_H2 <<<"$("${TOOL[@]}" ports 11)"

start() { # name, command...: start in the background, remember the PID
    local name=$1; shift
    "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}

start pod_v1a "$B/weir-pod" --name v1a --version v1 --listen 127.0.0.1:$P_V1A --threads 1 --quiet
start pod_v1b "$B/weir-pod" --name v1b --version v1 --listen 127.0.0.1:$P_V1B --threads 1 --quiet
start pod_v2a "$B/weir-pod" --name v2a --version v2 --listen 127.0.0.1:$P_V2A --threads 1 --quiet
start pod_v2b "$B/weir-pod" --name v2b --version v2 --listen 127.0.0.1:$P_V2B --threads 1 --quiet
PODS="$PID_pod_v1a,$PID_pod_v1b,$PID_pod_v2a,$PID_pod_v2b"

weir_conf() { # name port workers access_log
    cat >"$DIR/$1.yaml" <<YAML
listen: 127.0.0.1:$2
control: $DIR/$1.sock
watch: false
workers: $3
access_log: $4
limits: {max_connections: 30000, upstream_idle_per_endpoint: $POOL}
timeouts: {drain: 1s}
versions:
  v1:
    endpoints: [127.0.0.1:$P_V1A, 127.0.0.1:$P_V1B]
  v2:
    endpoints: [127.0.0.1:$P_V2A, 127.0.0.1:$P_V2B]
split: {v1: 90, v2: 10}
YAML
    "$B/weir" -t -c "$DIR/$1.yaml" || die "weir config $1 invalid"
}
weir_conf weir-w1 "$P_W1" 1 false
weir_conf weir-w2 "$P_W2" 2 false
weir_conf weir-log "$P_WLOG" 1 "{enabled: true, format: json}"
start weir_w1 "$B/weir" -c "$DIR/weir-w1.yaml"
start weir_w2 "$B/weir" -c "$DIR/weir-w2.yaml"
if [ "$ACCESS_LOG_NOTE" = 1 ]; then
    "$B/weir" -c "$DIR/weir-log.yaml" >/dev/null 2>"$DIR/weir-log.err" &
    PIDS+=($!); PID_weir_log=$!
fi

nginx_conf() { # name port workers w_v1a w_v1b w_v2a w_v2b
    local d=$DIR/$1
    mkdir -p "$d"
    cat >"$d/nginx.conf.new" <<NGINX
worker_processes $3;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $(( NOFILE - 500 < 30000 ? NOFILE - 500 : 30000 )); }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    upstream app {
        server 127.0.0.1:$P_V1A weight=$4;
        server 127.0.0.1:$P_V1B weight=$5;
        server 127.0.0.1:$P_V2A weight=$6;
        server 127.0.0.1:$P_V2B weight=$7;
        keepalive $POOL;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto http;
        }
    }
}
NGINX
    mv "$d/nginx.conf.new" "$d/nginx.conf"
}
nginx_conf nginx "$P_NG" 1 9 9 1 1
nginx -t -q -e "$DIR/nginx/error.log" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" ||
    die "nginx config invalid"
start nginx nginx -e "$DIR/nginx/error.log" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf"
if [ "$FULL" = 1 ]; then
    nginx_conf nginx-w2 "$P_NG2" 2 9 9 1 1
    start nginx_w2 nginx -e "$DIR/nginx-w2/error.log" -p "$DIR/nginx-w2" -c "$DIR/nginx-w2/nginx.conf"
fi

haproxy_conf() { # name port threads
    cat >"$DIR/$1.cfg" <<HAPROXY
global
    nbthread $3
    # 10k idle clients need maxconn > 10000; HAProxy reserves two fds per
    # connection, more than a 20000 fd limit allows: not fatal for idle ones.
    maxconn $(( (NOFILE - 500) / 2 > 12000 ? ((NOFILE - 500) / 2 < 30000 ? (NOFILE - 500) / 2 : 30000) : 12000 ))
    no strict-limits
    stats socket $DIR/$1.sock mode 600 level admin
    log stderr format raw local0 err
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s
    timeout http-request 60s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:$2
    http-request set-header X-Forwarded-Proto http
    default_backend be
backend be
    balance roundrobin
    server v1a 127.0.0.1:$P_V1A weight 9
    server v1b 127.0.0.1:$P_V1B weight 9
    server v2a 127.0.0.1:$P_V2A weight 1
    server v2b 127.0.0.1:$P_V2B weight 1
HAPROXY
    haproxy -c -q -f "$DIR/$1.cfg" || die "haproxy config $1 invalid"
}
haproxy_conf haproxy-t1 "$P_H1" 1
haproxy_conf haproxy-t2 "$P_H2" 2
start haproxy_t1 haproxy -db -f "$DIR/haproxy-t1.cfg"
start haproxy_t2 haproxy -db -f "$DIR/haproxy-t2.cfg"

for p in $P_V1A $P_V1B $P_V2A $P_V2B $P_W1 $P_W2 $P_NG $P_H1 $P_H2; do
    "${TOOL[@]}" wait "$p" 15 || die "nothing listens on $p (see $DIR/*.err; KEEP=1 keeps it)"
done
[ "$ACCESS_LOG_NOTE" = 1 ] && "${TOOL[@]}" wait "$P_WLOG" 15
[ "$FULL" = 1 ] && "${TOOL[@]}" wait "$P_NG2" 15

# name -> port, process to measure
declare -A PORT=([direct]=$P_V1A [weir-w1]=$P_W1 [weir-w2]=$P_W2 [nginx]=$P_NG
                 [nginx-w2]=$P_NG2 [haproxy-t1]=$P_H1 [haproxy-t2]=$P_H2 [weir-log]=$P_WLOG)
declare -A PROC=([direct]="" [weir-w1]=$PID_weir_w1 [weir-w2]=$PID_weir_w2
                 [nginx]=$PID_nginx [nginx-w2]=${PID_nginx_w2:-} [haproxy-t1]=$PID_haproxy_t1
                 [haproxy-t2]=$PID_haproxy_t2 [weir-log]=${PID_weir_log:-})

# Every contender answers, and splits about 90/10 (weir-pod's X-Version).
say "checking that every contender answers and splits ~90/10"
for c in weir-w1 weir-w2 nginx haproxy-t1 haproxy-t2; do
    "$ROOT/$BUILD/bench/weir-bench" -q -c 8 -d 1 --json --version-header X-Version \
        "http://127.0.0.1:${PORT[$c]}/" >"$DIR/check-$c.json" ||
        die "$c does not answer (see $DIR)"
    "$PY" - "$c" "$DIR/check-$c.json" >&2 <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
v = d["versions"]
share = {k: round(x["share"] * 100, 1) for k, x in v.items()}
print(f"  {sys.argv[1]:<12} {d['requests']} requests, share {share}, errors {d['errors']}")
if d["errors"] or abs(v.get("v2", {}).get("share", 0) - 0.10) > 0.03:
    sys.exit("  split is not 90/10")
PY
done

# ---- 3. idle client connections (first: the proxies are fresh, so the RSS
# increase is what the connections cost, not allocator caches of the load) ----
if [ "$IDLE" = 1 ]; then
    say "idle connections: $IDLE_STEPS per proxy"
    idle_list="weir-w1 weir-w2 nginx haproxy-t1"
    [ "$FULL" = 1 ] && idle_list="$idle_list haproxy-t2"
    for mode in $IDLE_MODES; do
        for c in $idle_list; do
            # weir parks a kept-alive connection after 1 s idle
            "${TOOL[@]}" idle --name "$c" --port "${PORT[$c]}" --pids "${PROC[$c]}" \
                --mode "$mode" --steps "$IDLE_STEPS" --settle 2.5 --out "$RES"
            sleep 1
        done
    done
fi

# ---- 4. throughput, latency, CPU per request ------------------------------------
list_for() { # conns -> contenders
    if [ "$FULL" = 1 ]; then
        echo "direct weir-w1 weir-w2 nginx nginx-w2 haproxy-t1 haproxy-t2"
    elif [ "$1" -le 64 ]; then
        echo "direct weir-w1 weir-w2 nginx haproxy-t1"
    else
        echo "direct weir-w1 weir-w2 nginx haproxy-t2"
    fi
}
say "load: $ROUNDS rounds × $DURATION s, connections: $CONNS (results in $RES)"
for r in $(seq 1 "$ROUNDS"); do
    for n in $CONNS; do
        read -r -a list <<<"$(list_for "$n")"
        k=${#list[@]}
        for i in $(seq 0 $(( k - 1 ))); do
            c=${list[$(( (i + r - 1) % k ))]}
            "${TOOL[@]}" load --name "$c" --url "http://127.0.0.1:${PORT[$c]}/" --conns "$n" \
                --duration "$DURATION" --pids "${PROC[$c]}" --upstream-pids "$PODS" \
                --round "$r" --out "$RES" $([ "$c" != direct ] && echo --cpu)
        done
    done
done
if [ "$ACCESS_LOG_NOTE" = 1 ]; then
    "${TOOL[@]}" load --name weir-log --url "http://127.0.0.1:$P_WLOG/" --conns 64 \
        --duration "$DURATION" --pids "$PID_weir_log" --upstream-pids "$PODS" --out "$RES" --cpu \
        --note "weir workers: 1 with the access log on (JSON lines to stdout, redirected to /dev/null)"
fi

# ---- 5. the split changes 20 times under load ---------------------------------------
change_weir() { # sock i
    if [ $(( $2 % 2 )) = 1 ]; then "$B/weirctl" -s "$1" split v1=50 v2=50 >/dev/null
    else "$B/weirctl" -s "$1" split v1=90 v2=10 >/dev/null; fi
}
change_nginx() { # name i
    if [ $(( $2 % 2 )) = 1 ]; then nginx_conf "$1" "$P_NG" 1 1 1 1 1
    else nginx_conf "$1" "$P_NG" 1 9 9 1 1; fi
    nginx -q -e "$DIR/$1/error.log" -p "$DIR/$1" -c "$DIR/$1/nginx.conf" -s reload
}
split_test() { # contender how change-function arg
    local c=$1 how=$2 fn=$3 arg=$4 applied=0 i
    local step_ms=$(( (SPLIT_DURATION * 1000 - 1500) / 20 ))
    wrk -t1 -c64 -d"${SPLIT_DURATION}s" --latency --timeout 5s \
        "http://127.0.0.1:${PORT[$c]}/" >"$DIR/split-$c.wrk" 2>&1 &
    local wpid=$!
    if [ "$fn" = haproxy ]; then
        # one process does all 20 (a Python start per change is too slow)
        applied=$("${TOOL[@]}" haproxy-changes "$arg" \
            --interval "$(printf '%d.%03d' $(( step_ms / 1000 )) $(( step_ms % 1000 )))" \
            2>>"$DIR/split-$c.err")
    else
        # change i at 0.5 s + i × step (absolute, so slow changes do not drift)
        local start_ms=$(( $(date +%s%N) / 1000000 )) due now d
        for i in $(seq 1 20); do
            due=$(( start_ms + 500 + i * step_ms ))
            now=$(( $(date +%s%N) / 1000000 ))
            d=$(( due - now ))
            [ "$d" -gt 0 ] && sleep "$(printf '%d.%03d' $(( d / 1000 )) $(( d % 1000 )))"
            if "$fn" "$arg" "$i" 2>>"$DIR/split-$c.err"; then applied=$(( applied + 1 )); fi
        done
    fi
    wait "$wpid" || true
    "${TOOL[@]}" parse-wrk "$DIR/split-$c.wrk" --out "$RES" --set kind=split \
        --set "contender=$c" --set "how=$how" --set changes=20 --set "applied=$applied" \
        --set "duration=$SPLIT_DURATION" | "$PY" -c "
import json,sys; r=json.load(sys.stdin)
print(f\"  split x20  {r['contender']:<12} {r['requests']} requests, failed {r['failed']} {r.get('sock_detail','')}, applied {r['applied']}/20\")" >&2
}
if [ "$SPLIT" = 1 ]; then
    say "the split changes 20 times under load (64 connections, $SPLIT_DURATION s each)"
    split_test weir-w1 "weirctl split" change_weir "$DIR/weir-w1.sock"
    split_test weir-w2 "weirctl split" change_weir "$DIR/weir-w2.sock"
    split_test nginx "rewrite weights + nginx -s reload" change_nginx nginx
    split_test haproxy-t1 "set weight (runtime API)" haproxy "$DIR/haproxy-t1.sock"
fi

# ---- 6. report -----------------------------------------------------------------------
"${TOOL[@]}" machine --out "$DIR/machine.json" --weir "$("$B/weir" --version | cut -d' ' -f2) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src 2>/dev/null || echo '+local changes'))" \
    --load-start "$LOAD0" --rounds "$ROUNDS" --duration "$DURATION"
say "done; report:"
echo
"${TOOL[@]}" report --results "$RES" --machine "$DIR/machine.json" \
    $([ "$README" = 1 ] && echo --readme "$ROOT/bench/README.md")
say "total time $(( $(date +%s) - T0 )) s"
