#!/usr/bin/python3
"""guard_bench.py — how fast does the release guard catch a bad canary, and
what does it cost? (issue 14, bench/README.md "Release guard")

    bench/guard_bench.py                   # every scenario, 3 repeats
    bench/guard_bench.py --repeats 5 --only errors,latency

Set up with weir-pod (v1 and v2 pods; v2 started with --faults-off so its
fault begins at a known instant: POST /faults/on on its probe listener) and
weir-bench in open loop (-R) through weir. Scenarios:
  errors    1,000 req/s, a rollout at its 5 % step (steps=5,100), v2 starts
            answering 5 % 500s 10 s into the run: time from the fault to the
            guard's rollback (the "guard" event on the event stream) and the
            canary requests that failed (weir-bench's v2 errors); once with
            max_increase 0.2 % and once with the default 1 %.
  latency   the same, v2 gets +50 ms on every request (--latency 50ms).
  low       5 req/s, a rollout 1,5,25,50,100 with hold 10s: after 30 s it is
            still on step 1 and `weirctl guard` says why.
  aa        A/A: v1 and v2 identical weir-pods (--latency-jitter 2ms), the
            guard's defaults, --aa-rollouts (20) rollouts 1,5,25,50,100 with
            hold 10s end to end at --aa-rate req/s (weir-bench open loop):
            per rollout promoted or not, the time on each step, the total,
            any guard trip (a false alarm), the verdict's reason on leaving
            each step. Not run by default (~25 min): --only aa.
  cost      two weirs side by side in the same run, one with a guard and a
            judged 5 % canary, one without: CPU time (utime+stime from
            /proc) per request at 1,000 req/s each.
The A/A false-trip rate over many more judgements is the simulation through the real guard code in
tests/unit/test_guard.c (unit_guard): it prints its numbers as TAP comments.

Numbers are printed as a table and, with --json, one JSON document. No
assertion is made: this is a benchmark. Stops only what it started.
"""
import argparse
import json
import os
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
from weirtest import Pod, Weir, get, wait_for, stop_all  # noqa: E402

BENCH = os.path.join(os.environ["WEIR_BUILD"], "bench", "weir-bench")


def config(v1, v2, guard, split="v1: 100, v2: 0"):
    return """
listen: {listen}
control: {control}
workers: 2
watch: false
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{%s}}
%s
""" % (v1.addr, v2.addr, split, guard.replace("{", "{{").replace("}", "}}"))


class Events(threading.Thread):
    """Follows weir's event stream; keeps (monotonic time, event dict)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.s.sendall(b"events\n")
        self.seen = []
        self.start()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    self.seen.append((time.monotonic(), ev))
        except OSError:
            return

    def first(self, pred):
        for t, ev in self.seen:
            if pred(ev):
                return t, ev
        return None, None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def faults(pod, on):
    host, port = pod.probe.rsplit(":", 1)
    r = get(int(port), "/faults/" + ("on" if on else "off"), method="POST", body="")
    return r.status == 200


def bench(port, rate, seconds, connections=16):
    return subprocess.Popen(
        ["nice", "-n", "5", BENCH, "-R", str(rate), "-d", "%gs" % seconds, "-c", str(connections),
         "--json", "-q", "http://127.0.0.1:%d/" % port],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def detection(fault, margin, fault_at=10.0, run_s=25.0):
    """One run: seconds from the fault to the guard's trip, failed v2
    requests, the trip's reason."""
    jitter = ["--latency-jitter", "2ms"]
    v1 = Pod("gb-v1", "v1", probe=True, extra=jitter)
    v2 = Pod("gb-v2", "v2", probe=True, extra=jitter + ["--faults-off"] + fault)
    w = Weir(config(v1, v2, "guard: {errors: {max_increase: %s}}" % margin))
    ans = json.loads(w.command("rollout start v2 steps=5,100 hold=10m"))
    assert ans.get("ok"), ans
    ev = Events(w.control)
    b = bench(w.port, 1000, run_s)
    time.sleep(fault_at)
    t_fault = time.monotonic()
    faults(v2, True)
    out, err = b.communicate(timeout=run_s + 30)
    t_trip, trip = ev.first(lambda e: e.get("event") == "guard")
    ev.close()
    try:
        res = json.loads(out.decode())
    except ValueError:
        sys.stderr.write("weir-bench: %s\n" % err.decode()[-500:])
        res = {}
    v2_errors = res.get("errors")  # v1 never fails: every failed request is the canary's
    for p in (w, v1, v2):
        p.stop()
    return {"after_s": None if t_trip is None else round(t_trip - t_fault, 2),
            "failed_v2": v2_errors, "reason": trip.get("reason") if trip else None,
            "total": res.get("requests"), "errors": res.get("errors")}


def low_traffic(run_s=30.0):
    v1 = Pod("gl-v1", "v1")
    v2 = Pod("gl-v2", "v2")
    w = Weir(config(v1, v2, "guard: {}"))
    ans = json.loads(w.command("rollout start v2 steps=1,5,25,50,100 hold=10s"))
    assert ans.get("ok"), ans
    b = bench(w.port, 5, run_s, connections=2)
    b.communicate(timeout=run_s + 30)
    ro = json.loads(w.command("rollout"))["rollout"]
    rc, text = w.ctl("guard", json_out=False)
    for p in (w, v1, v2):
        p.stop()
    return {"state": ro["state"], "step": ro["step"], "percent": ro["percent"],
            "weirctl_guard": text.strip()}


def aa_rollout(w, rate, timeout_s, steps="1,5,25,50,100", hold="10s"):
    """One A/A rollout on a running weir: back to v1 100, start, follow the
    event stream until promoted or aborted (or timeout_s: aborted by us).
    weir-bench runs for the rollout only."""
    ans = json.loads(w.command("split v1=100 v2=0"))
    assert ans.get("ok"), ans
    ev = Events(w.control)
    b = bench(w.port, rate, timeout_s + 5, connections=32)
    time.sleep(1.0)  # the load is on before the first step
    t0 = time.monotonic()
    ans = json.loads(w.command("rollout start v2 steps=%s hold=%s" % (steps, hold)))
    assert ans.get("ok"), ans
    reasons = {}  # step -> the guard's reason last seen on it
    state, step = "running", 1
    while time.monotonic() - t0 < timeout_s:
        time.sleep(0.5)
        try:
            g = json.loads(w.command("guard"))["guard"]["versions"].get("v2")
            ro = json.loads(w.command("rollout"))["rollout"]
        except (OSError, ValueError, KeyError):
            continue
        if ro["state"] == "running" and ro["step"] == step and g:
            reasons[step] = g.get("reason")
        state, step = ro["state"], ro["step"]
        if state in ("promoted", "aborted"):
            break
    if state not in ("promoted", "aborted"):
        w.command("rollout abort")
        state = "timed out (aborted by the bench)"
    t_end = time.monotonic()
    b.send_signal(2)  # SIGINT: weir-bench prints its report and exits 130
    out, err = b.communicate(timeout=30)
    time.sleep(0.3)
    ev.close()
    try:
        res = json.loads(out.decode())
    except ValueError:
        res = {}
    # Step times from the rollout events: step k began at its event.
    marks = [(t, e) for t, e in ev.seen if e.get("event") == "rollout"]
    trips = [e.get("reason") for t, e in ev.seen if e.get("event") == "guard"]
    began = {}
    for t, e in marks:
        try:
            k = int(e.get("step"))
        except (TypeError, ValueError):
            continue
        began.setdefault(k, t)
    step_s = {}
    ks = sorted(began)
    for i, k in enumerate(ks):
        if e_state(marks, k) in ("promoted",):
            continue
        nxt = began[ks[i + 1]] if i + 1 < len(ks) else t_end
        step_s[k] = round(nxt - began[k], 1)
    return {"state": state, "total_s": round(t_end - t0, 1), "step_s": step_s,
            "trips": trips, "reasons": reasons, "requests": res.get("requests"),
            "errors": res.get("errors"), "rate": res.get("rate")}


def e_state(marks, k):
    for t, e in marks:
        if str(e.get("step")) == str(k):
            return e.get("state")
    return None


class Both:
    """Two pods as one version's endpoint list."""

    def __init__(self, a, b):
        self.addr = "%s, %s" % (a.addr, b.addr)


def aa(n, rate, timeout_s, shared=False):
    """n A/A rollouts. shared=False: v1 and v2 are a weir-pod each (the
    canary's pod then gets 1 % of the requests the baseline's gets, and on a
    busy machine a pod that sleeps between requests answers its p99 slower:
    each request pays a wake-up). shared=True: both versions list both pods
    (each pod serves v1's and v2's requests alike), so only weir's
    per-version paths differ."""
    jitter = ["--latency-jitter", "2ms", "--threads", "2"]
    v1 = Pod("ga-v1", "v1", extra=jitter)
    v2 = Pod("ga-v2", "v2", extra=jitter)
    if shared:
        w = Weir(config(Both(v1, v2), Both(v1, v2), "guard: {}"))
    else:
        w = Weir(config(v1, v2, "guard: {}"))
    runs = []
    for i in range(n):
        la = os.getloadavg()[0]
        r = aa_rollout(w, rate, timeout_s)
        r["loadavg"] = la
        runs.append(r)
        sys.stderr.write("aa %d/%d: %s in %.1f s, steps %s, trips %d, load %.1f, "
                         "%s requests\n" % (i + 1, n, r["state"], r["total_s"], r["step_s"],
                                            len(r["trips"]), la, r["requests"]))
        sys.stderr.write("aa-json %s\n" % json.dumps(r))
    for p in (w, v1, v2):
        p.stop()
    return runs


def task_cpu_s(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """(data path: every thread but the main one, main thread) CPU seconds.
    The main thread runs the guard's tick, the control socket, metrics."""
    data = main = 0.0
    for t in os.listdir("/proc/%d/task" % pid):
        c = task_cpu_s(pid, int(t))
        if int(t) == pid:
            main += c
        else:
            data += c
    return data, main


def cost(run_s=20.0, rate=1000):
    """Guard on vs off, side by side in the same run (same load on the
    machine): CPU seconds per million requests of each weir."""
    v1 = Pod("gc-v1", "v1", extra=["--threads", "2"])
    v2 = Pod("gc-v2", "v2", extra=["--threads", "2"])
    on = Weir(config(v1, v2, "guard: {}", "v1: 95, v2: 5"))
    off = Weir(config(v1, v2, "", "v1: 95, v2: 5"))
    c0 = {w: cpu_s(w.p.pid) for w in (on, off)}
    runs = {w: bench(w.port, rate, run_s) for w in (on, off)}
    done = {}
    for w, b in runs.items():
        out, _ = b.communicate(timeout=run_s + 30)
        done[w] = json.loads(out.decode() or "{}").get("requests", 0)
    c1 = {w: cpu_s(w.p.pid) for w in (on, off)}
    per = {w: (c1[w][0] - c0[w][0]) / max(done[w], 1) * 1e6 for w in (on, off)}
    main = {w: (c1[w][1] - c0[w][1]) / run_s * 1000 for w in (on, off)}
    for p in (on, off, v1, v2):
        p.stop()
    return {"on_cpu_s_per_M": round(per[on], 1), "off_cpu_s_per_M": round(per[off], 1),
            "ratio": round(per[on] / per[off], 3) if per[off] else None,
            "main_ms_per_s": [round(main[on], 1), round(main[off], 1)],
            "requests": [done[on], done[off]]}


def summary(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None, None
    return xs[len(xs) // 2], xs[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="errors,latency,low,cost")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--aa-rollouts", type=int, default=20)
    ap.add_argument("--aa-rate", type=int, default=3000)
    ap.add_argument("--aa-shared", action="store_true",
                    help="both versions' endpoints are both pods (see aa())")
    ap.add_argument("--aa-timeout", type=float, default=240.0,
                    help="seconds before an A/A rollout that has not finished is aborted")
    a = ap.parse_args()
    only = set(a.only.split(","))
    out = {"loadavg": os.getloadavg()[0]}
    try:
        if "errors" in only:
            for margin in ("0.2%", "1%"):
                runs = [detection(["--error-rate", "0.05"], margin) for _ in range(a.repeats)]
                out["errors_5pct_margin_" + margin] = runs
        if "latency" in only:
            out["latency_50ms"] = [detection(["--latency", "50ms"], "1%")
                                   for _ in range(a.repeats)]
        if "low" in only:
            out["low_traffic"] = low_traffic()
        if "aa" in only:
            out["aa"] = aa(a.aa_rollouts, a.aa_rate, a.aa_timeout, a.aa_shared)
        if "cost" in only:
            out["cost"] = [cost() for _ in range(a.repeats)]
    finally:
        stop_all()
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print("load average at the start: %.1f (a shared machine)" % out["loadavg"])
    for k, runs in out.items():
        if not k.startswith(("errors", "latency")):
            continue
        m, worst = summary([r["after_s"] for r in runs])
        fm, fw = summary([r["failed_v2"] for r in runs])
        print("%-26s rollback after the fault: median %s s, worst %s s; failed canary "
              "requests: median %s, worst %s; missed %d of %d" %
              (k, m, worst, fm, fw, sum(r["after_s"] is None for r in runs), len(runs)))
        print("    e.g. %s" % runs[0]["reason"])
    if "low_traffic" in out:
        lt = out["low_traffic"]
        print("low traffic (5 req/s, 30 s): rollout %s at step %s (%s %%)" %
              (lt["state"], lt["step"], lt["percent"]))
        print("    " + lt["weirctl_guard"].replace("\n", "\n    "))
    if "aa" in out:
        runs = out["aa"]
        prom = sum(r["state"] == "promoted" for r in runs)
        tot = sorted(r["total_s"] for r in runs)
        print("A/A: %d of %d rollouts promoted, %d guard trips; total time median %s s, "
              "worst %s s" % (prom, len(runs), sum(len(r["trips"]) for r in runs),
                              tot[len(tot) // 2], tot[-1]))
        for k in ("1", "2", "3", "4"):
            xs = [r["step_s"].get(int(k)) for r in runs]
            m, wst = summary(xs)
            print("    step %s: median %s s, worst %s s" % (k, m, wst))
        for r in runs:
            if r["state"] != "promoted":
                print("    not promoted: %s; last reasons %s" % (r["state"], r["reasons"]))
    if "cost" in out:
        r, w = summary([c["ratio"] for c in out["cost"]])
        print("cost: data-path CPU per request guard on / off, same run: median %s, worst %s "
              "(CPU s per million requests: %s); main thread ms/s on, off: %s" %
              (r, w, [(c["on_cpu_s_per_M"], c["off_cpu_s_per_M"]) for c in out["cost"]],
               [c["main_ms_per_s"] for c in out["cost"]]))


if __name__ == "__main__":
    main()
