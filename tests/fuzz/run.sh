#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [NAME...] — build the libFuzzer harnesses
# (build-fuzz: CC=clang-14, -Dfuzz=true, ASan+UBSan) and run each one, one
# after the other, for SECONDS (default 30) of -max_total_time, starting
# from its committed corpus (tests/fuzz/corpus/NAME, read only) plus what
# earlier runs found (build-fuzz/fuzz/corpus/NAME). Prints TAP, one line per
# harness with its executions and coverage; exits non-zero when a harness
# crashed, leaked, timed out or broke an invariant. Crash inputs are kept in
# build-fuzz/fuzz/artifacts/NAME/, full logs in build-fuzz/fuzz/logs/.
# FUZZ_BUILD overrides the build directory, FUZZ_ARGS adds libFuzzer flags.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
[ $# -gt 0 ] && shift
all=(http1_request http1_response http1_chunked config control state json fleet_msg h2_frames tls_hello)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${all[@]}")
build=${FUZZ_BUILD:-build-fuzz}

# Longest input per harness: a request/response head (max_header_bytes
# default 16 KiB), a body, a config; a control line is at most 4 KiB.
max_len() {
    case "$1" in
        control|state|json) echo 8192 ;;
        fleet_msg) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

if [ ! -f "$build/build.ninja" ]; then
    if ! CC=clang-14 meson setup "$build" -Dfuzz=true -Djemalloc=disabled \
            -Dbuildtype=debugoptimized -Db_lundef=false >"$build.setup.log" 2>&1; then
        tail -20 "$build.setup.log"
        echo "Bail out! meson setup $build failed (clang-14 and libclang-rt-14-dev installed?)"
        exit 1
    fi
fi
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
if ! meson compile -C "$build" "${targets[@]}" >"$build.compile.log" 2>&1; then
    tail -40 "$build.compile.log"
    echo "Bail out! building the fuzz harnesses failed"
    exit 1
fi

echo "1..${#names[@]}"
failed=0
i=0
for n in "${names[@]}"; do
    i=$((i + 1))
    work="$build/fuzz/corpus/$n"
    art="$build/fuzz/artifacts/$n"
    log="$build/fuzz/logs/$n.log"
    mkdir -p "$work" "$art" "$(dirname "$log")"
    dict=()
    [ -f "tests/fuzz/$n.dict" ] && dict=(-dict="tests/fuzz/$n.dict")
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$build/tests/fuzz/fuzz_$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$n")" -artifact_prefix="$art/" -print_final_stats=1 \
        "${dict[@]}" ${FUZZ_ARGS:-} "$work" "tests/fuzz/corpus/$n" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "ok $i - fuzz_$n: ${execs:-?} execs in ${took}s, ${cov:-no coverage line}"
    else
        failed=$((failed + 1))
        echo "not ok $i - fuzz_$n: exit $rc after ${took}s; log $log, inputs in $art/"
        grep -E 'ERROR: |invariant failed|SUMMARY: |Test unit written' "$log" | head -5 | sed 's/^/#   /'
    fi
done
echo "# fuzz: $((${#names[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
