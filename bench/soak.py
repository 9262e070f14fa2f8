#!/usr/bin/python3
"""soak.py — faults and load over time: does weir stay correct, flat and
leak-free while production's mess happens all at once?

    bench/soak.py                      # 5 minutes at 1,000 req/s (bench/README.md)
    bench/soak.py --duration 30 --rate 300 --splits 100   # the short run CI does

Runs against a built tree (WEIR_BUILD, default build/; WEIR_SRC the source
tree) with weir-pod upstreams on 127.0.0.x and dnsmasq (Debian's
dnsmasq-base) for discovery. During one open-loop weir-bench run (-R RATE):
  - SPLITS split changes spread over the run (90/10 <-> 50/50, weirctl),
  - a config reload every 10 s (weirctl reload),
  - one v1 pod killed (SIGKILL) at 1/3 of the run and restarted at 1/2,
  - discovery changes: one of v2's two pods leaves DNS at 40 %, returns at 70 %,
  - clients that abandon requests (send a request to /sleep/200, close at once),
  - slow readers (GET /bytes/262144 read 4 KiB every 50 ms),
  - once a second: weir's RSS and open file descriptors.
Then it reports failed requests (weir-bench's errors: the target is 0 that
weir caused; a killed pod's in-flight requests are retried by weir, so they
should not show), RSS over time (first/last minute, max), fds at the start
and the end, and the accounting check: access-log lines and
weir_requests_total both equal the requests all clients sent, and the
aborted counter equals the 499 lines (an abandoned request the upstream
answered before the client left is a plain 200), and the descriptors return
to where they started once pooled connections have idled out. Exit 1 when a check fails.
Stops only the processes it started. No timing assertions: the numbers are
reported; the checks are counts.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(HERE)
os.environ.setdefault("WEIR_SRC", SRC)
os.environ.setdefault("WEIR_BUILD", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from weirtest import (PodAt, Weir, Dnsmasq, free_port_on, scrape, prom_sum,  # noqa: E402
                      prom_value, wait_for, tmpdir, stop_all, WEIRCTL)

BENCH = os.path.join(os.environ["WEIR_BUILD"], "bench", "weir-bench")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def add(self, k=1):
        with self.lock:
            self.n += k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=300)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--splits", type=int, default=1000)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    dur = args.duration
    d = tmpdir()

    dns = Dnsmasq(d, domain="soak.test")
    v1_port = free_port_on(["127.0.0.1"])
    v1a = PodAt("v1-a", "v1", "127.0.0.1:0", extra=["--quiet", "--latency-jitter", "2ms"])
    v1b_addr = "127.0.0.1:%d" % v1_port
    v1b = PodAt("v1-b", "v1", v1b_addr, extra=["--quiet", "--latency-jitter", "2ms"])
    v2_port = free_port_on(["127.0.0.2", "127.0.0.3"])
    v2a = PodAt("v2-a", "v2", "127.0.0.2:%d" % v2_port, extra=["--quiet"])
    v2b = PodAt("v2-b", "v2", "127.0.0.3:%d" % v2_port, extra=["--quiet"])
    dns.set("v2.soak.test", ["127.0.0.2", "127.0.0.3"])
    admin = free_port_on(["127.0.0.1"])
    log_path = os.path.join(d, "access.log")
    w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
version_header: X-Weir-Version
watch: false
resolvers: [127.0.0.1:%d]
access_log: {{path: %s}}
timeouts: {{upstream_idle: 2s}}
versions:
  v1:
    endpoints: [%s, %s]
    health: {{path: /ready, interval: 1s, timeout: 500ms, rise: 1, fall: 1}}
  v2:
    discover: v2.soak.test:%d
    discover_interval: 1s
split: {{v1: 90, v2: 10}}
""" % (admin, dns.port, log_path, v1a.addr, v1b_addr, v2_port))
    wait_for(lambda: len(json.loads(w.command("status"))["versions"]["v2"]["endpoints"]) == 2,
             timeout=15)
    pid = w.pid
    samples = []
    stop = threading.Event()
    sent_extra = Counter()     # requests our own threads sent (complete heads)
    abandoned = Counter()
    slow_done = Counter()
    events = []
    t0 = time.time()

    def note(what):
        events.append((round(time.time() - t0, 1), what))

    def sampler():
        while not stop.is_set():
            try:
                samples.append((time.time() - t0, rss_kib(pid), fds(pid)))
            except OSError:
                pass
            stop.wait(1.0)

    def splitter():
        # Absolute times, ending before the load does: command latency
        # must not push the last changes past the end of the run.
        gap = dur * 0.95 / max(1, args.splits)
        for i in range(args.splits):
            if stop.wait(max(0.0, t0 + (i + 1) * gap - time.time())):
                return
            s = "split v1=90 v2=10" if i % 2 else "split v1=50 v2=50"
            try:
                a = json.loads(w.command(s))
                if not a.get("ok"):
                    note("split refused: %s" % a)
            except (OSError, ValueError) as e:
                note("split failed: %s" % e)

    def reloader():
        while not stop.wait(10.0):
            r = subprocess.run([WEIRCTL, "-s", w.control, "reload"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                note("reload failed")

    def faults():
        nonlocal v1b
        plan = [(dur / 3, "kill"), (dur * 0.4, "dns-"), (dur / 2, "restart"), (dur * 0.7, "dns+")]
        for at, what in plan:
            if stop.wait(max(0.0, at - (time.time() - t0))):
                return
            if what == "kill":
                v1b.p.send_signal(signal.SIGKILL)
                v1b.p.wait(5)
            elif what == "restart":
                v1b = PodAt("v1-b", "v1", v1b_addr, extra=["--quiet", "--latency-jitter", "2ms"])
            elif what == "dns-":
                dns.set("v2.soak.test", ["127.0.0.2"])
            elif what == "dns+":
                dns.set("v2.soak.test", ["127.0.0.2", "127.0.0.3"])
            note(what)

    def abandoner():
        while not stop.wait(0.1):
            try:
                s = socket.create_connection(("127.0.0.1", w.port), timeout=2)
                s.sendall(b"GET /sleep/200 HTTP/1.1\r\nHost: soak\r\n\r\n")
                sent_extra.add()
                abandoned.add()
                time.sleep(0.02)
                s.close()
            except OSError:
                pass

    def slow_reader():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
                s.sendall(b"GET /bytes/262144 HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                sent_extra.add()
                got = 0
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    got += len(b)
                    if stop.wait(0.05):
                        break
                s.close()
                if got > 262144:
                    slow_done.add()
                elif not stop.is_set():
                    note("slow reader got %d bytes" % got)
            except OSError as e:
                note("slow reader: %s" % e)

    threads = [threading.Thread(target=f, daemon=True)
               for f in (sampler, splitter, reloader, faults, abandoner, slow_reader, slow_reader)]
    for t in threads:
        t.start()
    bench = subprocess.run([BENCH, "-R", str(args.rate), "-c", "64", "-d", "%gs" % dur, "--json",
                            "-q", "http://127.0.0.1:%d/" % w.port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=dur + 120)
    # Abandoned requests (abandoner) and the slow readers' in-flight ones
    # would end as 499 when the threads stop mid-request: they count too.
    stop.set()
    for t in threads:
        t.join(15)
    try:
        result = json.loads(bench.stdout.decode())
    except ValueError:
        print("weir-bench failed:", bench.stderr.decode()[-2000:])
        return 1

    sent = result["requests"] + sent_extra.n

    def lines():
        with open(log_path, errors="replace") as f:
            return [ln for ln in f if ln.startswith("{")]
    wait_for(lambda: len(lines()) >= sent, timeout=20)
    time.sleep(1.0)
    all_lines = lines()
    n_lines = len(all_lines)
    n499 = sum(1 for ln in all_lines if '"status":499' in ln)
    prom, _, _ = scrape(admin)
    counted = prom_sum(prom, "weir_requests_total")
    aborted = prom_sum(prom, "weir_requests_aborted_total")
    gen = json.loads(w.command("status"))["generation"]
    alive = w.p.poll() is None

    mins = [s for s in samples if s[0] <= 60]
    lasts = [s for s in samples if s[0] >= samples[-1][0] - 60] if samples else []
    rss_first = max(s[1] for s in mins) if mins else 0
    rss_last = max(s[1] for s in lasts) if lasts else 0
    rss_max = max(s[1] for s in samples) if samples else 0
    fd_first = samples[0][2] if samples else 0
    fd_last = samples[-1][2] if samples else 0
    # Idle again: pooled upstream conns close after upstream_idle (2 s).
    time.sleep(5.0)
    idle_fd = fds(pid) if alive else -1

    out = {
        "duration_s": dur, "rate": args.rate, "split_changes": args.splits,
        "generation": gen, "bench_requests": result["requests"], "bench_errors": result["errors"],
        "bench_error_kinds": result.get("error_kinds") or result.get("kinds"),
        "extra_requests": sent_extra.n, "abandoned": abandoned.n, "slow_reads_done": slow_done.n,
        "sent": sent, "log_lines": n_lines, "counted": counted, "aborted_counted": aborted,
        "rss_kib_first_min": rss_first, "rss_kib_last_min": rss_last, "rss_kib_max": rss_max,
        "fds_start": fd_first, "fds_end_of_load": fd_last, "fds_idle_after": idle_fd,
        "log_499": n499,
        "weir_alive": alive, "events": events,
        "versions": {k: {"requests": v["requests"], "errors": v["errors"], "p99_ms": v["p99_ms"]}
                     for k, v in result.get("versions", {}).items()},
    }
    checks = [
        ("weir stayed up", alive),
        ("no failed request (weir-bench errors)", result["errors"] == 0),
        ("one access-log line per request sent (%d lines, %d sent)" % (n_lines, sent), n_lines == sent),
        ("weir_requests_total = requests sent (%d vs %d)" % (counted, sent), counted == sent),
        ("client aborts: weir_requests_aborted_total = 499 lines (%d vs %d; %d abandoned)"
         % (aborted, n499, abandoned.n), aborted == n499 and n499 > 0),
        ("no descriptor leak: %d open when idle again, %d at the start" % (idle_fd, fd_first),
         0 <= idle_fd <= fd_first + 4),
        ("the split changed %d times (generation %d)" % (args.splits, gen), gen >= args.splits),
    ]
    out["checks"] = [{"check": c, "ok": bool(v)} for c, v in checks]
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print("soak: %gs at %d req/s, %d split changes, reloads every 10 s, pod kill/restart, "
              "DNS changes, abandoning clients, slow readers" % (dur, args.rate, args.splits))
        print("  requests: weir-bench %d (errors %d), own clients %d (abandoned %d)"
              % (result["requests"], result["errors"], sent_extra.n, abandoned.n))
        print("  accounting: sent %d, access-log lines %d, weir_requests_total %d, aborted %d"
              % (sent, n_lines, counted, aborted))
        print("  RSS: first minute max %d KiB, last minute max %d KiB, overall max %d KiB"
              % (rss_first, rss_last, rss_max))
        print("  fds: start %d, end of load %d, idle again %d" % (fd_first, fd_last, idle_fd))
        for k, v in out["versions"].items():
            print("  %s: %d requests, %d errors, p99 %.2f ms" % (k, v["requests"], v["errors"], v["p99_ms"]))
        print("  events: %s" % ", ".join("%s@%ss" % (e[1], e[0]) for e in events))
        for c, v in checks:
            print("  %s %s" % ("ok  " if v else "FAIL", c))
    stop_all()
    return 0 if all(v for _, v in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
