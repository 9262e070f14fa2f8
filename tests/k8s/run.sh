#!/usr/bin/env bash
# tests/k8s/run.sh — offline checks of k8s/: it renders, it is strictly valid
# Kubernetes, it fits weir's config, planted mistakes are caught, and the
# ConfigMap's weir.yaml passes `weir -t`.
#
# Needs node (>= 20) and `npm ci --prefix tests/k8s` done beforehand; installs
# nothing. Uses, when set:
#   WEIR_BUILD  meson build directory: runs $WEIR_BUILD/src/bin/weir -t
#   WEIR_BIN    the weir binary itself (overrides WEIR_BUILD)
#   KUBECTL     kubectl to cross-check render.mjs against (default: kubectl
#               on PATH, used when its kustomize is v4 or newer)
# Exits 0 when every check passes, 1 otherwise.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
k8s=$root/k8s
overlays=(canary-10:v1=90,v2=10 blue-green-v2:v1=0,v2=100)
other_overlays=(seccomp-io-uring)   # not a split change: checked by seccomp.mjs
# Overlays that add objects (not a split): rendered, validated, checked.
extras=(monitoring)

passed=0 failed=0 skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weir-k8s.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# check NAME CMD...: run CMD, print ok/FAIL and, on failure, its output.
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        printf 'ok   %s%s\n' "$name" "${out:+: ${out##*$'\n'}}"
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n' "$name"
        printf '%s\n' "$out" | sed 's/^/       /'
    fi
}
skip() {
    skipped=$((skipped + 1))
    printf 'SKIP %s\n' "$*"
}
finish() {
    echo "k8s: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}

# ---- prerequisites -------------------------------------------------------------
if ! command -v node >/dev/null; then
    echo "FAIL node is not installed (apt-get install nodejs npm)"; failed=1; finish
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "FAIL node $(node --version) is too old: tests/k8s needs node >= 20"; failed=1; finish
fi
for m in yaml kubernetes-models @kubernetes/client-node; do
    if [ ! -f "$here/node_modules/$m/package.json" ]; then
        echo "FAIL tests/k8s/node_modules/$m is missing: run 'npm ci --prefix tests/k8s' first"; failed=1; finish
    fi
done

# ---- 1. render ---------------------------------------------------------------------
# name -> kustomization dir; k8s/ itself is what `kubectl apply -k k8s/` applies.
declare -A dirs=([base]=$k8s)
for o in "${overlays[@]}"; do dirs[${o%%:*}]=$k8s/overlays/${o%%:*}; done
for o in "${other_overlays[@]}" "${extras[@]}"; do dirs[$o]=$k8s/overlays/$o; done
names=(base "${overlays[@]%%:*}" "${other_overlays[@]}" "${extras[@]}")

for n in "${names[@]}"; do
    check "render ${dirs[$n]#$root/} (render.mjs)" \
        bash -c 'node "$1/render.mjs" "$2" >"$3"' _ "$here" "${dirs[$n]}" "$tmp/$n.yaml"
done
for f in "$here"/render-fixtures/*/; do
    f=${f%/}
    check "render.mjs matches kustomize on fixture ${f##*/}" \
        bash -c 'node "$1/render.mjs" "$2" >"$3" && node "$1/bundle.mjs" same "$2/expected.yaml" "$3"' \
        _ "$here" "$f" "$tmp/fixture-${f##*/}.yaml"
done

# Cross-check with a real kustomize where one is installed (kubectl >= 1.21
# embeds kustomize v4+; Debian 12's kubernetes-client 1.20 has v2.0.3, which
# predates the labels: field).
kubectl=${KUBECTL:-$(command -v kubectl || true)}
kver=
if [ -n "$kubectl" ]; then
    kver=$("$kubectl" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}//p')
fi
if [ -z "$kver" ]; then
    skip "kubectl kustomize cross-check: no kubectl with kustomize here (render.mjs alone, checked against its fixtures)"
elif [ "${kver%%.*}" -lt 4 ] 2>/dev/null; then
    skip "kubectl kustomize cross-check: $kubectl has kustomize $kver, older than v4"
else
    for n in "${names[@]}"; do
        check "kubectl kustomize ${dirs[$n]#$root/} (kustomize $kver) = render.mjs" \
            bash -c '"$1" kustomize "$2" >"$3" && node "$4/bundle.mjs" same "$3" "$5"' \
            _ "$kubectl" "${dirs[$n]}" "$tmp/$n.kubectl.yaml" "$here" "$tmp/$n.yaml"
    done
    for f in "$here"/render-fixtures/*/; do
        f=${f%/}
        check "kubectl kustomize fixture ${f##*/} = expected.yaml" \
            bash -c '"$1" kustomize "$2" >"$3" && node "$4/bundle.mjs" same "$3" "$2/expected.yaml"' \
            _ "$kubectl" "$f" "$tmp/fixture-${f##*/}.kubectl.yaml" "$here"
    done
fi

# ---- 2. strict validation and weir consistency of what renders ----------------
for n in "${names[@]}"; do
    [ -s "$tmp/$n.yaml" ] || continue
    check "k8s-validate $n" node "$here/k8s-validate.mjs" "$tmp/$n.yaml"
    check "weir-consistency $n" node "$here/weir-consistency.mjs" "$tmp/$n.yaml"
done
for o in "${overlays[@]}"; do
    n=${o%%:*}
    [ -s "$tmp/$n.yaml" ] && [ -s "$tmp/base.yaml" ] || continue
    check "overlay $n changes only the split (${o#*:})" node "$here/bundle.mjs" overlay "$tmp/base.yaml" "$tmp/$n.yaml" "${o#*:}"
done

if [ -s "$tmp/seccomp-io-uring.yaml" ] && [ -s "$tmp/base.yaml" ]; then
    check "overlay seccomp-io-uring changes only weir's seccompProfile (Localhost k8s/seccomp/weir.json)" \
        node "$here/seccomp.mjs" "$tmp/base.yaml" "$tmp/seccomp-io-uring.yaml" "$k8s/seccomp/weir.json"
fi

# ---- 3. planted mistakes -----------------------------------------------------------
weir=${WEIR_BIN:-}
if [ -z "$weir" ] && [ -n "${WEIR_BUILD:-}" ]; then weir=$WEIR_BUILD/src/bin/weir; fi
if [ -n "$weir" ] && [ ! -x "$weir" ]; then
    failed=$((failed + 1))
    echo "FAIL weir binary $weir does not exist (build weir first)"
    weir=
fi
echo "---- planted mistakes (tests/k8s/bad/) ----"
WEIR_BIN=$weir node "$here/cases.mjs" "$k8s" "$here"/bad/*.yaml | tee "$tmp/cases.out"
cases_rc=${PIPESTATUS[0]}
if read -r p f s < <(sed -n 's/^planted mistakes: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$tmp/cases.out"); then
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
fi
if [ "$cases_rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    failed=$((failed + 1))
    echo "FAIL cases.mjs exited $cases_rc"
fi

# ---- 4. weir -t on the ConfigMap's weir.yaml ----------------------------------------
if [ -z "$weir" ]; then
    skip "weir -t on the ConfigMap: no weir binary (set WEIR_BUILD or WEIR_BIN)"
else
    for n in "${names[@]}"; do
        [ -s "$tmp/$n.yaml" ] || continue
        mkdir -p "$tmp/cfg-$n"
        # The fleet key is the Secret weir-fleet, mounted at /etc/weir-fleet
        # (mode 0440) in the pod, not a file here: weir -t reads a stand-in
        # made the same way (openssl rand -hex 32), mode 0440. The HTTPS pair
        # (Secret weir-tls at /etc/weir-tls) likewise: a self-signed stand-in.
        check "weir -t on $n's weir-config weir.yaml" \
            bash -c 'node "$1/bundle.mjs" config "$2" "$3" &&
                     head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >"$5/key" &&
                     chmod 0440 "$5/key" &&
                     sed -i "s#key_file: /etc/weir-fleet/key#key_file: $5/key#" "$3" &&
                     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                         -keyout "$5/tls.key" -out "$5/tls.crt" -days 1 -subj /CN=my-app \
                         >/dev/null 2>&1 &&
                     sed -i "s#/etc/weir-tls/#$5/#" "$3" &&
                     "$4" -t -c "$3"' \
            _ "$here" "$tmp/$n.yaml" "$tmp/cfg-$n/weir.yaml" "$weir" "$tmp/cfg-$n"
    done
fi
finish
