#!/usr/bin/python3
"""docs_current — docs/ names what the code has (TAP).

    docs_current.py SRC_DIR WEIRCTL WEIR

Every control command (weirctl's own table, `weirctl --json help`) is in
docs/control.md, every metric family a running weir exports (its /metrics,
with a guard and a rollout configured so their families show) is in
docs/observability.md, every access-log JSON field (src/access_format.c)
is in docs/observability.md, and the README points at docs/, not at files
outside the repository. A new command, metric or field without its line in
docs/ fails here."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

src, weirctl, weir = sys.argv[1], sys.argv[2], sys.argv[3]
n = fails = 0


def check(cond, what):
    global n, fails
    n += 1
    fails += not cond
    print("%sok %d - %s" % ("" if cond else "not ", n, what))


def read(path):
    with open(os.path.join(src, path), encoding="utf-8") as f:
        return f.read()


control = read("docs/control.md")
obs = read("docs/observability.md")

helped = json.loads(subprocess.run([weirctl, "--json", "help"], stdout=subprocess.PIPE,
                                   check=True).stdout)
for c in helped["commands"]:
    check(re.search(r"`%s[ `]" % re.escape(c["name"]), control) is not None,
          "docs/control.md documents the command %s" % c["name"])

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


d = tempfile.mkdtemp(prefix="weir-docs-")
admin = free_port()
with open(os.path.join(d, "weir.yaml"), "w") as f:
    f.write("""listen: 127.0.0.1:%d
control: %s/weir.sock
admin: 127.0.0.1:%d
access_log: {enabled: false}
guard: {baseline: v1}
rollout: {version: v2, steps: [10, 100], hold: 1h}
versions:
  v1: {endpoints: [127.0.0.1:1], fallback: v2}
  v2: {endpoints: [127.0.0.1:2]}
split: {v1: 100}
""" % (free_port(), d, admin))
p = subprocess.Popen([weir, "-c", os.path.join(d, "weir.yaml")], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
metrics = ""
try:
    end = time.time() + 20
    while time.time() < end and "weir_rollout_state" not in metrics:
        try:
            metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin,
                                             timeout=5).read().decode()
        except OSError:
            time.sleep(0.1)
finally:
    p.terminate()
    p.wait(10)
families = sorted(set(re.findall(r"^# HELP (\S+)", metrics, re.M)))
check(len(families) > 20, "a running weir's /metrics has its families (%d)" % len(families))
for f in families:
    check("`%s" % f in obs, "docs/observability.md documents the metric %s" % f)

fields = set(re.findall(r'X\([A-Z_0-9]+, "([a-z_]+)"\)', read("src/access_field.h"))) - {"name"}
check(len(fields) > 10, "found the access-log fields in src/access_field.h (%d)" % len(fields))
for f in sorted(fields):
    check("| `%s` |" % f in obs, "docs/observability.md documents the access-log field %s" % f)

readme = read("README.md")
check("../shared" not in readme, "README.md links nothing outside the repository (../shared)")
check("docs/" in readme, "README.md points at docs/")
for page in ("weir.8.md", "weirctl.1.md", "weir-bench.1.md", "weir.yaml.5.md"):
    check(os.path.isfile(os.path.join(src, "docs", page)), "docs/%s exists" % page)

print("1..%d" % n)
sys.exit(1 if fails else 0)
