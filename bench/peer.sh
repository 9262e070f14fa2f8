#!/usr/bin/env bash
# peer.sh — the peer benchmark: weir against nginx and HAProxy (and the
# direct path to one upstream) on this machine, in one run, on two kinds of
# upstream and on both of weir's I/O paths.
#
#   bench/peer.sh                  # 3 rounds × 5 s, both upstream kinds: ~13 minutes
#   QUICK=1 bench/peer.sh          # 1 round × 3 s, 1k idle only: ~4 minutes
#   PHASES=idle KINDS=nginx bench/peer.sh   # only the idle-memory measurement
#
# Upstream kinds (KINDS, default "pod nginx"), each four endpoints, v1a v1b
# (version v1) and v2a v2b (v2):
#   pod    four weir-pod processes, one thread each (weir's own test server)
#   nginx  one nginx, 1 worker, four listeners (two per version), each
#          `return 200` with a fixed 100-byte text body and an X-Version
#          header; keep-alive, access log off (the neutral upstream)
# For each kind the contenders are started fresh, all configured for the
# same 90/10 split with keep-alive to the upstreams:
#   weir-w1 / weir-w2        weir, `workers: 1` / `2`, io_uring batches,
#                            no access log, upstream_idle_per_endpoint: POOL
#   weir-w1-plain            weir, `workers: 1`, WEIR_IO_URING=0 (one syscall
#                            per op: the path under Docker's and containerd's
#                            RuntimeDefault seccomp profile)
#   nginx                    nginx, 1 worker, weights 9:9:1:1, keepalive
#                            NGINX_POOL (1024), keepalive_requests 1000000
#   haproxy-t1 / -t2         HAProxy, nbthread 1 / 2, roundrobin 9:9:1:1,
#                            http-reuse always (its idle pool is unbounded)
#   direct                   wrk straight at v1a (the physical limit)
#   …-log                    weir-w1, weir-w1-plain, nginx and haproxy-t1
#                            with their access log on, to a file in the work
#                            directory: weir JSON lines; nginx a JSON
#                            log_format (escape=json, buffer=64k flush=1s);
#                            HAProxy a JSON log-format on stdout redirected
#                            to a file (it cannot open a file itself)
# The peers also add X-Forwarded-For and X-Forwarded-Proto, as weir does.
#
# Phases (PHASES, default "idle load split"; everything on 127.0.0.1, ports
# below 32768 picked free):
#  idle   (first kind only) idle client connections: 1,000 then 10,000
#         connections to each proxy that send nothing ("fresh"), and again
#         each after one request completed on it ("served": then idle,
#         measured after the proxy's own idle handling settled); RSS
#         increase of the proxy's processes per connection;
#  load   ROUNDS rounds; in each, for every connection count in CONNS and
#         every contender in a rotating order, `wrk -t1 -cN -dDURATION
#         --latency`; CPU time (utime+stime from /proc/PID/stat) of the
#         proxy's processes before and after gives CPU per request. The
#         -log contenders run at LOG_CONNS (64). FULL=1: both HAProxy
#         variants and nginx with 2 workers at every count, and
#         weir-w2-plain;
#  split  (first kind only) the split changes 20 times (90/10 <-> 50/50)
#         during a 64-connection wrk run: weir through `weirctl split`,
#         nginx by rewriting the weights and `nginx -s reload`, HAProxy with
#         `set weight` on its runtime API; counts non-2xx and socket errors.
# Then it prints the tables (medians over the rounds, same-run ratios
# against the best peer, targets met or missed, the machine and its load
# average) and writes them into bench/README.md between the peer-results
# markers (README=0: stdout only; QUICK=1 implies README=0).
#
# Settings (environment): KINDS ("pod nginx"), PHASES ("idle load split"),
# ROUNDS (3), DURATION (5, seconds per run), CONNS ("64 256"),
# LOG_CONNS ("64"), FULL (0), QUICK (0), IDLE_MODES ("fresh served"),
# POOL (256, weir per endpoint), NGINX_POOL (1024), SPLIT_DURATION (10),
# BUILD (build-bench), README (1), KEEP (0: keep the work directory).
# Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-3}; README=${README:-0}
    IDLE_MAX=${IDLE_MAX:-1000}; SPLIT_DURATION=${SPLIT_DURATION:-5}
fi
KINDS=${KINDS:-"pod nginx"}
PHASES=${PHASES:-"idle load split"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-"64 256"}
LOG_CONNS=${LOG_CONNS:-"64"}
FULL=${FULL:-0}
IDLE_MODES=${IDLE_MODES:-"fresh served"}
IDLE_MAX=${IDLE_MAX:-10000}
POOL=${POOL:-256}
NGINX_POOL=${NGINX_POOL:-1024}
SPLIT_DURATION=${SPLIT_DURATION:-10}
BUILD=${BUILD:-build-bench}
README=${README:-1}
KEEP=${KEEP:-0}
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

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
IDLE_STEPS="1000"
[ "$IDLE_MAX" -ge 10000 ] && IDLE_STEPS="1000,10000"
if [ "$NOFILE" -lt 10500 ] && [ "$IDLE_STEPS" != 1000 ]; then
    IDLE_STEPS="1000"
    say "warning: open-file limit $NOFILE: idle test with 1k connections only"
fi

DIR=$(mktemp -d /tmp/weir-peer.XXXXXX)
chmod 755 "$DIR"   # nginx workers (nobody) write their temp dirs and logs here
RES=$DIR/results.jsonl
: >"$RES"
PIDS=()          # every process started, for the final cleanup
KIND_PIDS=()     # the contenders of the current upstream kind
stop_pids() { # pids...: TERM, wait up to 3 s, KILL
    local p alive
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() {
    [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then say "work directory kept: $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_V1A P_V1B P_V2A P_V2B P_N1A P_N1B P_N2A P_N2B \
    P_W1 P_W2 P_W1P P_W2P P_W1L P_W1PL P_NG P_NG2 P_NGL P_H1 P_H2 P_H1L \
    <<<"$("${TOOL[@]}" ports 20)"

start() { # name, command...: start in the background, remember the PID
    local name=$1; shift
    "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}

# -- the upstreams of both kinds (idle ones cost no CPU) --
start pod_v1a "$B/weir-pod" --name v1a --version v1 --listen 127.0.0.1:$P_V1A --threads 1 --quiet
start pod_v1b "$B/weir-pod" --name v1b --version v1 --listen 127.0.0.1:$P_V1B --threads 1 --quiet
start pod_v2a "$B/weir-pod" --name v2a --version v2 --listen 127.0.0.1:$P_V2A --threads 1 --quiet
start pod_v2b "$B/weir-pod" --name v2b --version v2 --listen 127.0.0.1:$P_V2B --threads 1 --quiet
PODS="$PID_pod_v1a,$PID_pod_v1b,$PID_pod_v2a,$PID_pod_v2b"

# The neutral upstream: nginx, 1 worker, a fixed 100-byte body.
BODY100=$(printf 'weir-peer-benchmark-neutral-upstream-%063d' 0)
[ ${#BODY100} = 100 ] || die "body is ${#BODY100} bytes"
mkdir -p "$DIR/upstream"
{
    echo "worker_processes 1; worker_rlimit_nofile $NOFILE; daemon off;"
    echo "pid $DIR/upstream/nginx.pid; error_log $DIR/upstream/error.log warn;"
    echo "events { worker_connections 20000; }"
    echo "http { access_log off; keepalive_timeout 60s; keepalive_requests 1000000;"
    echo "  default_type text/plain;"
    for t in "$P_N1A v1" "$P_N1B v1" "$P_N2A v2" "$P_N2B v2"; do
        set -- $t
        echo "  server { listen 127.0.0.1:$1 backlog=4096; location / {"
        echo "    add_header X-Version $2; return 200 \"$BODY100\"; } }"
    done
    for d in body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $DIR/upstream/$d;" | sed 's/^  body_/  client_body_/'; done
    echo "}"
} >"$DIR/upstream/nginx.conf"
nginx -t -q -e "$DIR/upstream/error.log" -p "$DIR/upstream" -c "$DIR/upstream/nginx.conf" ||
    die "upstream nginx config invalid"
start up_nginx nginx -e "$DIR/upstream/error.log" -p "$DIR/upstream" -c "$DIR/upstream/nginx.conf"
for p in $P_V1A $P_V1B $P_V2A $P_V2B $P_N1A $P_N1B $P_N2A $P_N2B; do
    "${TOOL[@]}" wait "$p" 15 || die "no upstream on $p (see $DIR/*.err; KEEP=1 keeps it)"
done

# -- contenders: configs for one kind (U1A U1B U2A U2B = its endpoints) --
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
    endpoints: [127.0.0.1:$U1A, 127.0.0.1:$U1B]
  v2:
    endpoints: [127.0.0.1:$U2A, 127.0.0.1:$U2B]
split: {v1: 90, v2: 10}
YAML
    "$B/weir" -t -c "$DIR/$1.yaml" >/dev/null || die "weir config $1 invalid"
}

nginx_conf() { # name port workers w_v1a w_v1b w_v2a w_v2b [log]
    local d=$DIR/$1 log="access_log off;"
    mkdir -p "$d"
    if [ "${8:-}" = log ]; then
        log="log_format json escape=json '{\"time\":\"\$time_iso8601\",\"client\":\"\$remote_addr\",\"method\":\"\$request_method\",\"path\":\"\$request_uri\",\"status\":\$status,\"bytes\":\$body_bytes_sent,\"duration_ms\":\$request_time,\"upstream\":\"\$upstream_addr\",\"upstream_ms\":\"\$upstream_response_time\"}';
    access_log $DIR/$1.access.log json buffer=64k flush=1s;"
    fi
    cat >"$d/nginx.conf.new" <<NGINX
worker_processes $3;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $(( NOFILE - 500 < 30000 ? NOFILE - 500 : 30000 )); }
http {
    $log
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    upstream app {
        server 127.0.0.1:$U1A weight=$4;
        server 127.0.0.1:$U1B weight=$5;
        server 127.0.0.1:$U2A weight=$6;
        server 127.0.0.1:$U2B weight=$7;
        keepalive $NGINX_POOL;
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

haproxy_conf() { # name port threads [log]
    local logcfg="" logglob="log stderr format raw local0 err"
    if [ "${4:-}" = log ]; then
        logglob="log stdout format raw local0 info"
        logcfg="    log global
    option httplog
    log-format '{\"time\":\"%tr\",\"client\":\"%ci\",\"method\":\"%HM\",\"path\":\"%HU\",\"status\":%ST,\"bytes\":%B,\"duration_ms\":%Ta,\"upstream\":\"%si:%sp\",\"upstream_ms\":%Tr}'"
    fi
    cat >"$DIR/$1.cfg" <<HAPROXY
global
    nbthread $3
    # 10k idle clients need maxconn > 10000; HAProxy reserves two fds per
    # connection, more than a 20000 fd limit allows: not fatal for idle ones.
    maxconn $(( (NOFILE - 500) / 2 > 12000 ? ((NOFILE - 500) / 2 < 30000 ? (NOFILE - 500) / 2 : 30000) : 12000 ))
    no strict-limits
    stats socket $DIR/$1.sock mode 600 level admin
    $logglob
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
$logcfg
frontend fe
    bind 127.0.0.1:$2
    http-request set-header X-Forwarded-Proto http
    default_backend be
backend be
    balance roundrobin
    server v1a 127.0.0.1:$U1A weight 9
    server v1b 127.0.0.1:$U1B weight 9
    server v2a 127.0.0.1:$U2A weight 1
    server v2b 127.0.0.1:$U2B weight 1
HAPROXY
    haproxy -c -q -f "$DIR/$1.cfg" || die "haproxy config $1 invalid"
}

declare -A PORT=([weir-w1]=$P_W1 [weir-w2]=$P_W2 [weir-w1-plain]=$P_W1P [weir-w2-plain]=$P_W2P
                 [weir-w1-log]=$P_W1L [weir-w1-plain-log]=$P_W1PL [nginx]=$P_NG
                 [nginx-w2]=$P_NG2 [nginx-log]=$P_NGL [haproxy-t1]=$P_H1 [haproxy-t2]=$P_H2
                 [haproxy-t1-log]=$P_H1L)
declare -A PROC=()
WEIR_LOG="{enabled: true, format: json, path: $DIR/weir-log.access.log}"
WEIR_PLOG="{enabled: true, format: json, path: $DIR/weir-plain-log.access.log}"

start_kind() { # kind: start every contender on that kind's upstreams
    local kind=$1 name
    if [ "$kind" = pod ]; then
        U1A=$P_V1A U1B=$P_V1B U2A=$P_V2A U2B=$P_V2B; UPIDS=$PODS
    else
        U1A=$P_N1A U1B=$P_N1B U2A=$P_N2A U2B=$P_N2B
        UPIDS=$(cat "$DIR/upstream/nginx.pid" 2>/dev/null || echo "$PID_up_nginx")
        UPIDS="$UPIDS,$(pgrep -d, -P "$UPIDS" || true)"
    fi
    PORT[direct]=$U1A; PROC[direct]=""
    weir_conf weir-w1 "$P_W1" 1 false
    weir_conf weir-w2 "$P_W2" 2 false
    weir_conf weir-w1-plain "$P_W1P" 1 false
    weir_conf weir-w2-plain "$P_W2P" 2 false
    weir_conf weir-w1-log "$P_W1L" 1 "$WEIR_LOG"
    weir_conf weir-w1-plain-log "$P_W1PL" 1 "$WEIR_PLOG"
    nginx_conf nginx "$P_NG" 1 9 9 1 1
    nginx_conf nginx-w2 "$P_NG2" 2 9 9 1 1
    nginx_conf nginx-log "$P_NGL" 1 9 9 1 1 log
    haproxy_conf haproxy-t1 "$P_H1" 1
    haproxy_conf haproxy-t2 "$P_H2" 2
    haproxy_conf haproxy-t1-log "$P_H1L" 1 log
    KIND_PIDS=()
    CONTENDERS="weir-w1 weir-w2 weir-w1-plain nginx haproxy-t1 haproxy-t2"
    [ "$FULL" = 1 ] && CONTENDERS="$CONTENDERS weir-w2-plain nginx-w2"
    has_phase load && CONTENDERS="$CONTENDERS weir-w1-log weir-w1-plain-log nginx-log haproxy-t1-log"
    for name in $CONTENDERS; do
        case $name in
            *-plain*) start "${name}_$kind" env WEIR_IO_URING=0 "$B/weir" -c "$DIR/$name.yaml" ;;
            weir*) start "${name}_$kind" "$B/weir" -c "$DIR/$name.yaml" ;;
            nginx*) nginx -t -q -e "$DIR/$name/error.log" -p "$DIR/$name" -c "$DIR/$name/nginx.conf" ||
                        die "nginx config $name invalid"
                    start "${name}_$kind" nginx -e "$DIR/$name/error.log" -p "$DIR/$name" \
                        -c "$DIR/$name/nginx.conf" ;;
            haproxy-t1-log)
                # its log lines are its stdout: to a file
                haproxy -db -f "$DIR/$name.cfg" >"$DIR/haproxy-log.access.log" 2>"$DIR/$name.err" &
                PIDS+=($!); eval "PID_${name//-/_}_$kind=$!" ;;
            haproxy*) start "${name}_$kind" haproxy -db -f "$DIR/$name.cfg" ;;
        esac
        local v="PID_${name//-/_}_$kind"
        PROC[$name]=${!v}
        KIND_PIDS+=(${!v})
    done
    for name in $CONTENDERS; do
        "${TOOL[@]}" wait "${PORT[$name]}" 15 ||
            die "$name does not listen (see $DIR/*.err; KEEP=1 keeps it)"
    done
    # Every contender answers and splits about 90/10 (the X-Version header).
    for name in $CONTENDERS; do
        "$ROOT/$BUILD/bench/weir-bench" -q -c 8 -d 1 --json --version-header X-Version \
            "http://127.0.0.1:${PORT[$name]}/" >"$DIR/check-$kind-$name.json" ||
            die "$name does not answer (see $DIR)"
        "$PY" - "$kind" "$name" "$DIR/check-$kind-$name.json" >&2 <<'PY'
import json, sys
d = json.load(open(sys.argv[3]))
v = d["versions"]
share = {k: round(x["share"] * 100, 1) for k, x in v.items()}
print(f"  {sys.argv[1]:<5} {sys.argv[2]:<18} {d['requests']} requests, share {share}, errors {d['errors']}")
if d["errors"] or abs(v.get("v2", {}).get("share", 0) - 0.10) > 0.03:
    sys.exit("  split is not 90/10")
PY
    done
}

stop_kind() {
    [ ${#KIND_PIDS[@]} -gt 0 ] && stop_pids "${KIND_PIDS[@]}"
    KIND_PIDS=()
    sleep 0.5
}

# ---- 3. idle client connections (first: the proxies are fresh, so the RSS
# increase is what the connections cost, not allocator caches of the load) ----
run_idle() { # kind
    say "idle connections ($1 upstream): $IDLE_STEPS per proxy, modes: $IDLE_MODES"
    local mode c idle_list="weir-w1 weir-w2 nginx haproxy-t1"
    for mode in $IDLE_MODES; do
        for c in $idle_list; do
            # weir parks a kept-alive connection after 1 s idle and gives the
            # memory back at the next tick without reads (1 s ticks)
            "${TOOL[@]}" idle --name "$c" --upstream "$1" --port "${PORT[$c]}" --pids "${PROC[$c]}" \
                --mode "$mode" --steps "$IDLE_STEPS" --settle 3.5 --out "$RES"
            sleep 1
        done
    done
}

# ---- 4. throughput, latency, CPU per request ------------------------------------
list_for() { # conns -> contenders
    local l="direct weir-w1 weir-w2 weir-w1-plain nginx"
    [ "$FULL" = 1 ] && { echo "$l weir-w2-plain nginx-w2 haproxy-t1 haproxy-t2"; return; }
    if [ "$1" -le 64 ]; then echo "$l haproxy-t1"; else echo "$l haproxy-t2"; fi
}
run_load() { # kind
    local kind=$1 r n k i c list
    say "load ($kind upstream): $ROUNDS rounds × $DURATION s, connections: $CONNS, logging: $LOG_CONNS"
    for r in $(seq 1 "$ROUNDS"); do
        for n in $CONNS; do
            read -r -a list <<<"$(list_for "$n")"
            if [[ " $LOG_CONNS " == *" $n "* ]]; then
                list+=(weir-w1-log weir-w1-plain-log nginx-log haproxy-t1-log)
            fi
            k=${#list[@]}
            for i in $(seq 0 $(( k - 1 ))); do
                c=${list[$(( (i + r - 1) % k ))]}
                "${TOOL[@]}" load --name "$c" --upstream "$kind" --url "http://127.0.0.1:${PORT[$c]}/" \
                    --conns "$n" --duration "$DURATION" --pids "${PROC[$c]}" --upstream-pids "$UPIDS" \
                    --round "$r" --out "$RES" $([ "$c" != direct ] && echo --cpu)
            done
        done
    done
}

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
run_split() {
    say "the split changes 20 times under load (64 connections, $SPLIT_DURATION s each)"
    split_test weir-w1 "weirctl split" change_weir "$DIR/weir-w1.sock"
    split_test weir-w2 "weirctl split" change_weir "$DIR/weir-w2.sock"
    split_test nginx "rewrite weights + nginx -s reload" change_nginx nginx
    split_test haproxy-t1 "set weight (runtime API)" haproxy "$DIR/haproxy-t1.sock"
}

# ---- the run: every upstream kind in turn -----------------------------------------
first=1
for kind in $KINDS; do
    say "upstream kind: $kind"
    start_kind "$kind"
    [ $first = 1 ] && has_phase idle && run_idle "$kind"
    has_phase load && run_load "$kind"
    [ $first = 1 ] && has_phase split && run_split
    stop_kind
    first=0
done

# ---- 6. report -----------------------------------------------------------------------
"${TOOL[@]}" machine --out "$DIR/machine.json" --weir "$("$B/weir" --version | cut -d' ' -f2) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src 2>/dev/null || echo '+local changes'))" \
    --load-start "$LOAD0" --rounds "$ROUNDS" --duration "$DURATION"
say "done; report:"
echo
"${TOOL[@]}" report --results "$RES" --machine "$DIR/machine.json" \
    $([ "$README" = 1 ] && echo --readme "$ROOT/bench/README.md")
say "total time $(( $(date +%s) - T0 )) s"
