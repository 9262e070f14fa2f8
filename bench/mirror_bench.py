#!/usr/bin/python3
"""mirror_bench.py — does mirroring cost the client anything?

    bench/mirror_bench.py                    # 3 rounds x 5 phases x 5 s at 1,000 req/s
    bench/mirror_bench.py --rate 2000 --seconds 8 --rounds 3

One weir (2 workers) in front of weir-pods on 127.0.0.1: v1 takes 100 % of
the split; the shadows are v2 (a healthy pod), slow (a pod with
--latency 200ms), stalled (--latency 2s) and dead (an address nothing
listens on). Each round runs
the same open-loop weir-bench load (-R RATE, latency from the intended send
time) through four phases, switched with `weirctl mirror`:
  off      no mirroring
  healthy  mirror 100 % of GET to v2
  slow     mirror 100 % of GET to slow (+200 ms; mirror.timeout 1s)
  stalled  mirror 100 % of GET to stalled (--latency 2s: past the timeout and
           max_inflight 256 per worker, so mirrors are dropped)
  dead     mirror 100 % of GET to dead
and reports per phase the client's rps, p50 and p99 (median over rounds)
and their ratio to `off` in the same run, weir's CPU time per client
request (user + system, from /proc: less sensitive than latency to a busy
machine), the mirror counts the phase produced, and weir's RSS after it. Phases alternate within a round, so
drift on a shared machine hits all of them alike. Exit 1 only when a
request failed: the numbers are reported, not asserted (they are timings).
Stops only the processes it started.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(HERE)
os.environ.setdefault("WEIR_SRC", SRC)
os.environ.setdefault("WEIR_BUILD", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from weirtest import PodAt, Proc, Weir, dead_address, free_port, stop_all, tmpdir, wait_port  # noqa: E402

BENCH = os.path.join(os.environ["WEIR_BUILD"], "bench", "weir-bench")

CONFIG = """
listen: {listen}
control: {control}
workers: 2
access_log: false
version_header: X-Weir-Version
versions:
  v1:
    endpoints: [%(v1)s]
  v2:
    endpoints: [%(v2)s]
  slow:
    endpoints: [%(slow)s]
  stalled:
    endpoints: [%(stalled)s]
  dead:
    endpoints: [%(dead)s]
split:
  v1: 100
mirror:
  version: v2
  percent: 100
  timeout: 1s
"""

# nginx's `mirror` directive, one server per phase (same pods, same 1 s
# timeouts for the mirror subrequest), for --nginx.
NGINX = """
worker_processes 2;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_requests 1000000;
    upstream v1 { server %(v1)s; keepalive 64; }
%(servers)s
}
"""
NGINX_SERVER = """
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            %(mirror)s
            proxy_pass http://v1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /mirror {
            internal;
            proxy_pass http://%(shadow)s$request_uri;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            proxy_send_timeout 1s;
        }
    }
"""

PHASES = [("off", None), ("healthy", "v2"), ("slow", "slow"), ("stalled", "stalled"),
          ("dead", "dead")]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """weir's user + system CPU time so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def counts(w):
    m = json.loads(w.command("mirror"))["mirror"]["counts"]
    return {v: dict(c) for v, c in m.items()}


def delta(after, before):
    out = {}
    for v, c in after.items():
        b = before.get(v, {})
        d = {k: c[k] - b.get(k, 0) for k in ("match", "differ", "error", "dropped")}
        if any(d.values()):
            out[v] = d
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--nginx", action="store_true",
                    help="also run each phase through nginx's mirror directive")
    args = ap.parse_args()

    # Every pod answers the same body ("Host: app, Version: v1"), so a
    # healthy shadow's mirrors match and the counts show what was compared.
    v1 = PodAt("app", "v1", "127.0.0.1:0", extra=["--quiet", "--threads", "2"])
    v2 = PodAt("app", "v1", "127.0.0.1:0", extra=["--quiet", "--threads", "2"])
    slow = PodAt("app", "v1", "127.0.0.1:0",
                 extra=["--quiet", "--threads", "2", "--latency", "200ms"])
    stalled = PodAt("app", "v1", "127.0.0.1:0",
                    extra=["--quiet", "--threads", "2", "--latency", "2s"])
    w = Weir(CONFIG % {"v1": v1.addr, "v2": v2.addr, "slow": slow.addr,
                       "stalled": stalled.addr, "dead": dead_address()})
    url = "http://127.0.0.1:%d/" % w.port
    results = {name: [] for name, _ in PHASES}
    ng_results = {name: [] for name, _ in PHASES}
    ng_port = {}
    if args.nginx and shutil.which("nginx"):
        d = tmpdir()
        os.chmod(d, 0o755)
        addr = {"v2": v2.addr, "slow": slow.addr, "stalled": stalled.addr, "dead": dead_address()}
        servers = ""
        for name, shadow in PHASES:
            ng_port[name] = free_port()
            servers += NGINX_SERVER % {"port": ng_port[name], "shadow": addr.get(shadow, v1.addr),
                                       "mirror": "mirror /mirror;" if shadow else ""}
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX % {"dir": d, "v1": v1.addr, "servers": servers})
        Proc(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
              os.path.join(d, "error.log")])
        for port in ng_port.values():
            wait_port(port)
    failed = 0

    def nginx_phase(name):
        r = subprocess.run([BENCH, "-R", str(args.rate), "-c", "64", "-d", "%gs" % args.seconds,
                            "--json", "--version-header", "X-None",
                            "http://127.0.0.1:%d/" % ng_port[name]],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=args.seconds + 60)
        doc = json.loads(r.stdout)
        v = next(iter(doc["versions"].values()), {})
        ng_results[name].append({"rps": doc["rps"], "p50": v.get("p50_ms", 0),
                                 "p99": v.get("p99_ms", 0), "errors": doc["errors"]})

    for rnd in range(args.rounds):
        for name, shadow in PHASES:
            if ng_port:
                nginx_phase(name)
                time.sleep(1.5)  # the stalled phase's subrequests time out
            cmd = "mirror off" if shadow is None else "mirror set version=%s percent=100" % shadow
            a = json.loads(w.command(cmd))
            if not a.get("ok"):
                raise SystemExit("%s: %s" % (cmd, a))
            before = counts(w)
            cpu0 = cpu_s(w.pid)
            r = subprocess.run([BENCH, "-R", str(args.rate), "-c", "64", "-d",
                                "%gs" % args.seconds, "--json", url],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=args.seconds + 60)
            doc = json.loads(r.stdout)
            cpu = cpu_s(w.pid) - cpu0
            failed += doc["errors"]
            v = doc["versions"].get("v1", {})
            results[name].append({"rps": doc["rps"], "p50": v.get("p50_ms", 0),
                                  "p99": v.get("p99_ms", 0), "errors": doc["errors"],
                                  "mirror": delta(counts(w), before),
                                  "cpu_us": 1e6 * cpu / max(doc["requests"], 1),
                                  "rss_kib": rss_kib(w.pid)})
    w.command("mirror off")
    med = {}
    for name, runs in results.items():
        med[name] = {k: statistics.median(r[k] for r in runs)
                     for k in ("rps", "p50", "p99", "cpu_us")}
        med[name]["errors"] = sum(r["errors"] for r in runs)
        med[name]["rss_kib"] = max(r["rss_kib"] for r in runs)
        med[name]["mirror_last_round"] = runs[-1]["mirror"]
    ng_med = {}
    for name, runs in ng_results.items():
        if runs:
            ng_med[name] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
            ng_med[name]["errors"] = sum(r["errors"] for r in runs)
    if args.json:
        print(json.dumps({"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds,
                          "phases": med, "runs": results, "nginx": ng_med}, indent=1))
    else:
        base = med["off"]
        print("rate %d req/s, %g s per phase, %d rounds (median of rounds)"
              % (args.rate, args.seconds, args.rounds))
        print("%-8s %7s %7s %7s %6s %6s %8s %7s  %s" % ("phase", "rps", "p50 ms", "p99 ms",
                                                        "p50 x", "p99 x", "CPU us/r",
                                                        "RSS MiB", "mirrors (last round)"))
        for name, _ in PHASES:
            m = med[name]
            print("%-8s %7.1f %7.3f %7.3f %6.2f %6.2f %8.1f %7.1f  %s"
                  % (name, m["rps"], m["p50"], m["p99"], m["p50"] / base["p50"] if base["p50"] else 0,
                     m["p99"] / base["p99"] if base["p99"] else 0, m["cpu_us"],
                     m["rss_kib"] / 1024.0, json.dumps(m["mirror_last_round"], sort_keys=True)))
        print("failed requests: %d" % failed)
        if ng_med:
            nb = ng_med["off"]
            print("\nnginx %s, mirror directive, same pods and rate" % "(2 workers)")
            print("%-8s %7s %7s %7s %6s %6s %7s" % ("phase", "rps", "p50 ms", "p99 ms", "p50 x",
                                                  "p99 x", "errors"))
            for name, _ in PHASES:
                m = ng_med[name]
                print("%-8s %7.1f %7.3f %7.3f %6.2f %6.2f %7d"
                      % (name, m["rps"], m["p50"], m["p99"],
                         m["p50"] / nb["p50"] if nb["p50"] else 0,
                         m["p99"] / nb["p99"] if nb["p99"] else 0, m["errors"]))
    stop_all()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
