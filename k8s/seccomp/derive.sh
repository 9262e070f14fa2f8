#!/usr/bin/env bash
# derive.sh — the syscalls weir and weirctl make, from strace over the
# integration tests, on both I/O paths: the list k8s/seccomp/weir.json
# allows. Re-run it when weir starts using something new, and compare:
#
#   k8s/seccomp/derive.sh [TEST...]     # default: the tests listed below
#   k8s/seccomp/derive.sh --check       # exit 1 if a traced syscall is not in weir.json
#
# How: a build directory of wrappers (WEIR_BUILD for the tests) whose weir
# attaches `strace -f` to itself and then execs the real binary (so the
# tests' signals reach weir, not strace), and whose weirctl runs under
# strace. Only what follows the real binary's execve counts (not the
# wrapper's shell). Needs strace and a built weir (BUILD, default build).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-$ROOT/build}
CHECK=0
[ "${1:-}" = --check ] && { CHECK=1; shift; }
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(proxy io_paths access_log control admin metrics limits retries
    health_active health_kill health_passive watch_settle watch_replicas events discovery
    guard rollout sticky accounting conformance smuggling flip_load)
command -v strace >/dev/null || { echo "derive.sh: needs strace" >&2; exit 2; }
W=$(mktemp -d /tmp/weir-seccomp.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/build/src/bin" "$W/trace"
ln -s "$BUILD/src/bin/weir-pod" "$W/build/src/bin/weir-pod"
ln -s "$BUILD/bench" "$W/build/bench"
cat >"$W/build/src/bin/weir" <<SH
#!/bin/bash
strace -f -qq -o $W/trace/weir.\$\$ -p \$\$ 2>/dev/null &
sleep 0.4
exec $BUILD/src/bin/weir "\$@"
SH
cat >"$W/build/src/bin/weirctl" <<SH
#!/bin/bash
exec strace -f -qq -o $W/trace/weirctl.\$\$ $BUILD/src/bin/weirctl "\$@"
SH
chmod +x "$W/build/src/bin/weir" "$W/build/src/bin/weirctl"
for t in "${TESTS[@]}"; do
    for path in 1 0; do
        WEIR_IO_URING=$path WEIR_BUILD=$W/build WEIR_SRC=$ROOT timeout 300 \
            /usr/bin/python3 "tests/integration/test_$t.py" >"$W/$t.$path.log" 2>&1 ||
            echo "derive.sh: test_$t (WEIR_IO_URING=$path) failed under strace; its syscalls still count" >&2
    done
done
/usr/bin/python3 - "$W/trace" "$ROOT/k8s/seccomp/weir.json" "$CHECK" <<'PY'
import json, os, re, sys
tdir, profile, check = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
line_re = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
seen = set()
for f in os.listdir(tdir):
    started = f.startswith("weirctl.")  # weirctl runs under strace from its exec
    for line in open(os.path.join(tdir, f), errors="replace"):
        m = line_re.match(line)
        if not m:
            continue
        name = m.group(2) or m.group(3)
        if not started:
            if name == "execve" and re.search(r'execve\("[^"]*/src/bin/weir"', line):
                started = True
            else:
                continue
        seen.add(name)
names = sorted(seen)
if check:
    allowed = set()
    for rule in json.load(open(profile))["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW":
            allowed.update(rule["names"])
    missing = [n for n in names if n not in allowed]
    print(f"{len(names)} syscalls traced; not in {os.path.basename(profile)}: {' '.join(missing) or 'none'}")
    sys.exit(1 if missing else 0)
print(" ".join(names))
PY
