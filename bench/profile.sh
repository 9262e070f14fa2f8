#!/usr/bin/env bash
# profile.sh — deterministic cost of one proxied request: weir `workers: 1`
# in front of the neutral upstream of peer.sh (one nginx, 1 worker, four
# listeners, `return 200` with a 100-byte body), under
#   callgrind   user-space instructions per request (valgrind; counts are
#               exact and do not depend on the machine's load), and
#   strace -c   syscalls per request (each one costs ~1 µs on a PTI VM),
# on both I/O paths (io_uring batches, and WEIR_IO_URING=0).
#
#   bench/profile.sh                    # both tools, both paths, log off and on
#   TOOLS=callgrind PATHS=uring bench/profile.sh
#   SECS=10 CONNS=256 bench/profile.sh
#   MIRRORS="off on" LOGS=off bench/profile.sh   # the cost of a mirror (below)
#
# Settings: WEIR_ENV (extra NAME=VALUE words for weir's environment), TOOLS ("callgrind strace"), PATHS ("uring plain"), LOGS ("off on"),
# MIRRORS (unset: the 90/10 split, no mirror; else a list of "off"/"on": the
# split is v1 100 % and "on" mirrors 100 % of GET to v2, the neutral upstream
# on both sides, so on - off is what a healthy shadow costs per request),
# CONNS (64), SECS (5: seconds of wrk per measurement), BUILD (build-bench),
# OUT (a directory for callgrind.out.* files; default: a temporary one,
# printed and kept). Each measurement warms weir up with 2 s of load first
# (pools filled, allocator caches hot), then counts only the measured
# window: instructions (or syscalls) in it / requests wrk completed in it. Stops only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS=${TOOLS:-"callgrind strace"}
PATHS=${PATHS:-"uring plain"}
LOGS=${LOGS:-"off on"}
CONNS=${CONNS:-64}
SECS=${SECS:-5}
BUILD=${BUILD:-build-bench}
PATH=$PATH:/usr/sbin:/sbin
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
B=$ROOT/$BUILD/src/bin
[ -x "$B/weir" ] || { meson setup "$BUILD" --buildtype=release -Db_ndebug=false >/dev/null; }
meson compile -C "$BUILD" >/dev/null
OUT=${OUT:-$(mktemp -d /tmp/weir-profile.XXXXXX)}
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/weir-prof-run.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
read -r U1 U2 U3 U4 PW <<<"$("$PY" "$ROOT/bench/peer_tool.py" ports 5)"

BODY100=$(printf 'weir-peer-benchmark-neutral-upstream-%063d' 0)
{
    echo "worker_processes 1; daemon off; pid $DIR/nginx.pid; error_log $DIR/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_timeout 60s; keepalive_requests 1000000; default_type text/plain;"
    echo "  client_body_temp_path $DIR/b; proxy_temp_path $DIR/p; fastcgi_temp_path $DIR/f;"
    echo "  uwsgi_temp_path $DIR/u; scgi_temp_path $DIR/s;"
    for t in "$U1 v1" "$U2 v1" "$U3 v2" "$U4 v2"; do
        set -- $t
        echo "  server { listen 127.0.0.1:$1; location / { add_header X-Version $2; return 200 \"$BODY100\"; } }"
    done
    echo "}"
} >"$DIR/nginx.conf"
nginx -e "$DIR/error.log" -p "$DIR" -c "$DIR/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!)
for p in $U1 $U2 $U3 $U4; do "$PY" "$ROOT/bench/peer_tool.py" wait "$p" 10; done

wrk_n() { # seconds -> requests done (wrk's count)
    wrk -t1 -c"$CONNS" -d"$1"s --timeout 30s "http://127.0.0.1:$PW/" | awk '/requests in/ {print $1}'
}

measure() { # tool path log [mirror]
    local tool=$1 path=$2 log=$3 mir=${4:-} envs=(${WEIR_ENV:-}) al=false wpid
    local split="{v1: 90, v2: 10}" mblock=""
    if [ -n "$mir" ]; then
        split="{v1: 100}"
        [ "$mir" = on ] && mblock="mirror: {version: v2, percent: 100}"
    fi
    [ "$path" = plain ] && envs+=(WEIR_IO_URING=0)
    [ "$log" = on ] && al="{enabled: true, format: json, path: $DIR/access.log}"
    cat >"$DIR/weir.yaml" <<YAML
listen: 127.0.0.1:$PW
control: $DIR/weir.sock
watch: false
workers: 1
access_log: $al
limits: {upstream_idle_per_endpoint: 256}
versions:
  v1: {endpoints: [127.0.0.1:$U1, 127.0.0.1:$U2]}
  v2: {endpoints: [127.0.0.1:$U3, 127.0.0.1:$U4]}
split: $split
$mblock
YAML
    local tag="$path-log$log${mir:+-mirror$mir}"
    case $tool in
        callgrind)
            env "${envs[@]}" valgrind --tool=callgrind --instr-atstart=no \
                --callgrind-out-file="$OUT/callgrind.out.$tag" "$B/weir" -c "$DIR/weir.yaml" \
                >"$DIR/weir.out" 2>"$DIR/weir.err" &
            wpid=$!; PIDS+=($wpid)
            "$PY" "$ROOT/bench/peer_tool.py" wait "$PW" 60
            wrk_n 2 >/dev/null
            callgrind_control -i on "$wpid" >/dev/null
            n=$(wrk_n "$SECS")
            callgrind_control -i off "$wpid" >/dev/null
            kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
            ir=$(callgrind_annotate "$OUT/callgrind.out.$tag" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' || true)
            printf '%-10s %-6s log %-3s%s  %8d requests  %8.0f instructions/request  (%s)\n' \
                callgrind "$path" "$log" "${mir:+ mirror $mir}" "$n" "$(awk -v a="$ir" -v b="$n" 'BEGIN {print a / b}')" "$OUT/callgrind.out.$tag"
            ;;
        strace)
            env "${envs[@]}" "$B/weir" -c "$DIR/weir.yaml" >"$DIR/weir.out" 2>"$DIR/weir.err" &
            wpid=$!; PIDS+=($wpid)
            "$PY" "$ROOT/bench/peer_tool.py" wait "$PW" 10
            wrk_n 2 >/dev/null
            strace -c -f -qq -o "$DIR/strace.$tag" -p "$wpid" &
            local spid=$!
            sleep 1
            n=$(wrk_n "$SECS")
            kill -INT "$spid"; wait "$spid" 2>/dev/null || true
            kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
            cp "$DIR/strace.$tag" "$OUT/strace.$tag"
            "$PY" - "$DIR/strace.$tag" "$n" "$path" "$log${mir:+ mirror $mir}" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        rows.append((int(f[3]), f[-1]))
n = int(sys.argv[2])
tot = sum(c for c, _ in rows)
top = ", ".join(f"{name} {c / n:.2f}" for c, name in sorted(rows, reverse=True)[:6])
print(f"strace     {sys.argv[3]:<6} log {sys.argv[4]:<3}  {n:8d} requests  {tot / n:8.2f} syscalls/request  ({top})")
PY
            ;;
    esac
    sleep 0.3
}

echo "weir $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet -- src 2>/dev/null || echo '+local'), c=$CONNS, $SECS s per measurement; callgrind files in $OUT"
for tool in $TOOLS; do
    for path in $PATHS; do
        for log in $LOGS; do
            for mir in ${MIRRORS:-split}; do
                [ "$mir" = split ] && mir=""
                measure "$tool" "$path" "$log" "$mir"
            done
        done
    done
done
