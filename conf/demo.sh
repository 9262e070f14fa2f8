#!/usr/bin/env bash
# The demo: build weir, start three weir-pod upstreams (v1: two pods, v2: one
# pod), run weir with a 90/10 split in front of them, send 1000 requests and
# show where they landed. Everything runs on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh --build-only
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
B=build/src/bin
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

$B/weir-pod --name my-app-v1-a --version v1.0.0 --listen 127.0.0.1:9001 --quiet >/dev/null & pids+=($!)
$B/weir-pod --name my-app-v1-b --version v1.0.0 --listen 127.0.0.1:9002 --quiet >/dev/null & pids+=($!)
$B/weir-pod --name my-app-v2-a --version v2.0.0 --listen 127.0.0.1:9003 --quiet >/dev/null & pids+=($!)
cat >"$dir/weir.yaml" <<YAML
listen: 127.0.0.1:8080
control: $dir/weir.sock
version_header: X-Weir-Version
access_log: {enabled: false}
versions:
  v1:
    endpoints: [127.0.0.1:9001, 127.0.0.1:9002]
  v2:
    endpoints: [127.0.0.1:9003]
split: {v1: 90, v2: 10}
YAML
$B/weir -c "$dir/weir.yaml" 2>"$dir/weir.log" & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done

echo "weir is splitting 90/10 between v1 (2 pods) and v2 (1 pod). 1000 requests:"
urls=$(printf 'http://127.0.0.1:8080/ %.0s' $(seq 1000))
# shellcheck disable=SC2086
curl -s $urls | sort | uniq -c
echo
echo "weirctl status:"
$B/weirctl -s "$dir/weir.sock" status || true
echo
echo "Flip everything to v2 (blue/green), then roll back:"
$B/weirctl -s "$dir/weir.sock" flip v2 && curl -s $(printf 'http://127.0.0.1:8080/ %.0s' $(seq 10)) | sort | uniq -c
$B/weirctl -s "$dir/weir.sock" rollback && curl -s $(printf 'http://127.0.0.1:8080/ %.0s' $(seq 10)) | sort | uniq -c
