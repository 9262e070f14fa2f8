#!/usr/bin/python3
"""mirror_bench.py — does mirroring cost the client anything?

    bench/mirror_bench.py                    # 3 rounds x 5 phases x 5 s at 1,000 req/s
    bench/mirror_bench.py --rate 2000 --seconds 8 --rounds 3
    bench/mirror_bench.py --peers [--before OTHER_BUILD_DIR]   # see below

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

--peers: what a healthy shadow costs the client, weir against nginx's
`mirror` directive in the same run. Two kinds of upstream in turn (--kinds):
`nginx` (the neutral upstream of peer.sh: one nginx, 1 worker, `return 200`
with a 100-byte body on a v1 and a v2 listener) and `pod` (two weir-pods,
one thread each). Contenders, all with 2 workers, v1 taking every request,
keep-alive to both versions: weir on io_uring, weir with WEIR_IO_URING=0
(one syscall per read/write), with --before DIR the same two of another
build (DIR/src/bin/weir: the same run measures a change), and nginx 1.22
with `mirror /mirror;` to an `upstream v2 {keepalive 64;}` (its best
case). Phases off and healthy (100 % of GET mirrored to v2), alternating
order from round to round, contenders shuffled; per contender the medians
over rounds of rps, p50 and p99, healthy / off, and CPU time per request
(user + system of the process, for nginx of its workers).
"""
import random
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


PEER_WEIR = """
listen: {listen}
control: {control}
workers: 2
access_log: false
version_header: X-Weir-Version
limits: {{upstream_idle_per_endpoint: 256}}
versions:
  v1:
    endpoints: [%(v1)s]
  v2:
    endpoints: [%(v2)s]
split:
  v1: 100
mirror:
  version: v2
  percent: 100
  timeout: 1s
"""

# The neutral upstream (bench/peer.sh's): a fixed 100-byte body.
NEUTRAL = """
worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    default_type text/plain;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server { listen 127.0.0.1:%(p1)d; location / { return 200 "%(body)s"; } }
    server { listen 127.0.0.1:%(p2)d; location / { return 200 "%(body)s"; } }
}
"""

PEER_NGINX = """
worker_processes 2;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream v1 { server %(v1)s; keepalive 64; }
    upstream v2 { server %(v2)s; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server { listen 127.0.0.1:%(off)d; location / { proxy_pass http://v1; } }
    server {
        listen 127.0.0.1:%(on)d;
        location / { mirror /mirror; proxy_pass http://v1; }
        location = /mirror {
            internal;
            proxy_pass http://v2$request_uri;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            proxy_send_timeout 1s;
        }
    }
}
"""


def children_cpu_s(pid):
    """CPU time of pid's child processes (nginx's workers), in seconds."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def start_weir_binary(binary, yaml_text, env=None):
    """A Weir whose executable is `binary` (weirtest starts WEIR_BUILD's)."""
    from weirtest import procs
    w = Weir(yaml_text, start=False)
    saved = procs.WEIR
    procs.WEIR = binary
    try:
        w.start(env)
    finally:
        procs.WEIR = saved
    return w


def load(args, port, version_header="X-Weir-Version"):
    r = subprocess.run([BENCH, "-R", str(args.rate), "-c", "64", "-d", "%gs" % args.seconds,
                        "--json", "--version-header", version_header,
                        "http://127.0.0.1:%d/" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=args.seconds + 60)
    doc = json.loads(r.stdout)
    v = next(iter(doc["versions"].values()), {})
    return doc, v


def peers_kind(args, kind):
    """One kind of upstream: start it and the contenders, run the rounds."""
    if kind == "nginx":
        d = tmpdir()
        os.chmod(d, 0o755)
        p1, p2 = free_port(), free_port()
        body = "weir-peer-benchmark-neutral-upstream-" + "0" * 63
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NEUTRAL % {"dir": d, "p1": p1, "p2": p2, "body": body})
        Proc(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
              os.path.join(d, "error.log")])
        wait_port(p1)
        wait_port(p2)
        v1, v2 = "127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2
    else:
        # both pods answer "Host: app, Version: v1": the mirrors match
        v1 = PodAt("app", "v1", "127.0.0.1:0", extra=["--quiet", "--threads", "1"]).addr
        v2 = PodAt("app", "v1", "127.0.0.1:0", extra=["--quiet", "--threads", "1"]).addr
    builds = [("weir", os.path.join(os.environ["WEIR_BUILD"], "src", "bin", "weir"))]
    if args.before:
        builds.append(("before", os.path.join(args.before, "src", "bin", "weir")))
    contenders = []  # (label, switch(phase) -> port, cpu() -> seconds)
    for label, binary in builds:
        for io, env in (("uring", None), ("plain", {"WEIR_IO_URING": "0"})):
            w = start_weir_binary(binary, PEER_WEIR % {"v1": v1, "v2": v2}, env)

            def switch(phase, w=w):
                cmd = "mirror off" if phase == "off" else "mirror set version=v2 percent=100"
                a = json.loads(w.command(cmd))
                if not a.get("ok"):
                    raise SystemExit("%s: %s" % (cmd, a))
                return w.port

            contenders.append(("%s %s" % (label, io), switch, lambda w=w: cpu_s(w.pid), w))
    if shutil.which("nginx"):
        d = tmpdir()
        os.chmod(d, 0o755)
        ports = {"off": free_port(), "healthy": free_port()}
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(PEER_NGINX % {"dir": d, "v1": v1, "v2": v2, "off": ports["off"],
                                  "on": ports["healthy"]})
        ng = Proc(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                   os.path.join(d, "error.log")])
        for port in ports.values():
            wait_port(port)
        contenders.append(("nginx mirror", lambda phase: ports[phase],
                           lambda: children_cpu_s(ng.pid), None))
    res = {(c[0], ph): [] for c in contenders for ph in ("off", "healthy")}
    failed = 0
    rng = random.Random(16)
    for rnd in range(args.rounds):
        phases = ("off", "healthy") if rnd % 2 == 0 else ("healthy", "off")
        for phase in phases:
            order = list(contenders)
            rng.shuffle(order)
            for label, switch, cpu, w in order:
                port = switch(phase)
                before = counts(w) if w else None
                c0 = cpu()
                doc, v = load(args, port, "X-Weir-Version" if w else "X-None")
                used = cpu() - c0
                failed += doc["errors"]
                res[(label, phase)].append({
                    "rps": doc["rps"], "p50": v.get("p50_ms", 0), "p99": v.get("p99_ms", 0),
                    "errors": doc["errors"], "cpu_us": 1e6 * used / max(doc["requests"], 1),
                    "mirror": delta(counts(w), before) if w else {}})
    for label, switch, cpu, w in contenders:
        if w:
            switch("off")
    return [c[0] for c in contenders], res, failed


def peers(args):
    out = {}
    failed = 0
    for kind in args.kinds.split(","):
        labels, res, f = peers_kind(args, kind)
        failed += f
        stop_all()
        med = {}
        for (label, phase), runs in res.items():
            med.setdefault(label, {})[phase] = dict(
                {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "cpu_us")},
                errors=sum(r["errors"] for r in runs), mirror_last_round=runs[-1]["mirror"])
        out[kind] = {"order": labels, "medians": med,
                     "runs": {"%s/%s" % k: v for k, v in res.items()}}
        if args.json:
            continue
        print("upstream %s: rate %d req/s, 64 connections, %g s per phase, %d rounds "
              "(medians), load average %s" % (kind, args.rate, args.seconds, args.rounds,
                                              " ".join("%.1f" % x for x in os.getloadavg())))
        print("%-14s %9s %9s %9s %9s %9s %7s %7s %7s  %s" % (
            "contender", "off p50", "on p50", "off p99", "on p99", "on rps", "p50 x", "p99 x",
            "CPU x", "mirrors (last round)"))
        for label in labels:
            a, b = med[label]["off"], med[label]["healthy"]
            print("%-14s %9.3f %9.3f %9.3f %9.3f %9.1f %7.2f %7.2f %7.2f  %s errors %d" % (
                label, a["p50"], b["p50"], a["p99"], b["p99"], b["rps"],
                b["p50"] / a["p50"] if a["p50"] else 0, b["p99"] / a["p99"] if a["p99"] else 0,
                b["cpu_us"] / a["cpu_us"] if a["cpu_us"] else 0,
                json.dumps(b["mirror_last_round"], sort_keys=True), a["errors"] + b["errors"]))
        print("CPU us per request (off -> on): " + ", ".join(
            "%s %.0f -> %.0f" % (label, med[label]["off"]["cpu_us"], med[label]["healthy"]["cpu_us"])
            for label in labels))
        print()
    if args.json:
        print(json.dumps({"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds,
                          "kinds": out}, indent=1))
    print("failed requests: %d" % failed, file=sys.stderr if args.json else sys.stdout)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--nginx", action="store_true",
                    help="also run each phase through nginx's mirror directive")
    ap.add_argument("--peers", action="store_true",
                    help="weir (both I/O paths) and nginx mirror, off vs healthy (see above)")
    ap.add_argument("--kinds", default="nginx,pod", help="--peers: upstream kinds")
    ap.add_argument("--before", help="--peers: another build directory's weir, run alongside")
    args = ap.parse_args()
    if args.peers:
        return peers(args)

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
