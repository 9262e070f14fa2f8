#!/usr/bin/env bash
# Install what building and testing weir needs on a fresh Debian 12 (as root).
# Idempotent: skips apt when everything is already there.
set -euo pipefail
# --build-only: just what building and running weir needs (the demo).
pkgs=(meson ninja-build pkg-config gcc libc6-dev libevent-dev libyaml-dev
      libjemalloc-dev libssl-dev node-llhttp libnghttp2-dev python3 curl procps)
if [ "${1:-}" != "--build-only" ]; then
    pkgs+=(openssl  # test_tls and bench/tls_peer.py make their certificates with it
           iproute2 dnsmasq-base prometheus python3-prometheus-client chromium fonts-liberation nginx-light haproxy wrk
           clang-14 libclang-rt-14-dev  # clang + libFuzzer: tests/fuzz/run.sh
           clang-format-14              # tests/check-format.sh
           nghttp2-client python3-h2    # test_h2, bench/h2_peer.sh: h2load, raw HTTP/2 frames
           systemd man-db groff-base zsh)  # test_install: systemd-analyze, man -l, completion
    # Node.js: keep one that is already there (it may come with its own npm).
    command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The k8s manifest validator's pinned npm packages (lockfile in tests/k8s).
if [ "${1:-}" != "--build-only" ] && [ -f "$(dirname "$0")/k8s/package-lock.json" ] && [ ! -d "$(dirname "$0")/k8s/node_modules" ]; then
    npm ci --silent --no-audit --no-fund --prefix "$(dirname "$0")/k8s" >/dev/null
fi
