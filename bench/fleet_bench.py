#!/usr/bin/env python3
"""fleet_bench.py — the fleet's targets (issue 15) on three local replicas.

Three weir processes on 127.0.0.1, each listing the others' admin listeners
(fleet.interval 250 ms, the default), weir-pod upstreams, one weir-bench per
replica for load. Every time is from weir's own event stream (the "time" of
each replica's rollout/guard event, one wall clock: one host), so the
numbers are the replicas' reaction, not this script's polling.

  start     `rollout start` on one replica -> "running" on all three
  abort     `rollout abort` on one -> "aborted" on all three
  fault     a v2 failing 30 % under load on all three -> every replica's
            split back to the baseline, from the first guard trip; failed
            user requests counted by weir-bench
  restart   a replica killed (SIGKILL) mid-rollout and started again -> it
            has the fleet's step (from its start to its answer)
  partition a replica stopped (SIGSTOP) while the others abort, then
            continued -> aborted, and never seen running again
  forged    a forged and a replayed message -> refused, counted, no change

  nice -n 5 python3 bench/fleet_bench.py [--trials 5] [--json FILE]

Environment: WEIR_BUILD (default ./build). Stdlib only.
"""
import argparse
import calendar
import hashlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from weirtest import (BUILD, CtlConn, Pod, Weir, free_port, scrape, prom_value,  # noqa: E402
                      tmpdir, wait_for)
from weirtest import cleanup  # noqa: E402

KEY = b"bench-key-0123456789abcdef0123456789"
WEIR_BENCH = os.path.join(BUILD, "bench", "weir-bench")

CONFIG = """
listen: {listen}
control: {control}
admin: %(admin)s
watch: false
version_header: X-Weir-Version
access_log: false
%(guard)s
versions:
  v1:
    endpoints: [%(v1)s]
  v2:
    endpoints: [%(v2)s]
split: {{v1: 100, v2: 0}}
%(fleet)s
"""

FLEET = """fleet:
  peers: [%s]
  key_file: %s"""


def ts(text):
    d = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(d.timetuple()) + d.microsecond / 1e6


class Stream(threading.Thread):
    """A replica's event stream, recorded as (weir's time, event)."""

    def __init__(self, w):
        super().__init__(daemon=True)
        self.c = CtlConn(w.control, timeout=3600)
        self.c.send("events\n")
        self.c.read_line()
        self.events = []
        self.lock = threading.Lock()
        self.start()

    def run(self):
        try:
            while True:
                e = json.loads(self.c.read_line())
                with self.lock:
                    self.events.append((ts(e["time"]), e))
        except (OSError, EOFError, ValueError):
            pass

    def first(self, pred, after=0.0):
        with self.lock:
            for t, e in self.events:
                if t >= after and pred(e):
                    return t
        return None

    def close(self):
        self.c.close()


GUARD = """guard:
  window: 10s
  min_requests: 100
  errors: {{max_increase: 2%}}
  latency: {{quantile: p99, max_ratio: 5, floor: 200ms}}"""


class Fleet:
    def __init__(self, v2_extra=(), guard=True, fleet=True):
        self.v1 = Pod("v1-a", "v1", extra=["--quiet"])
        self.v2 = Pod("v2-a", "v2", extra=["--quiet"] + list(v2_extra))
        d = tmpdir()
        self.key = os.path.join(d, "fleet.key")
        with open(self.key, "wb") as f:
            f.write(KEY)
        os.chmod(self.key, 0o600)
        self.admins = ["127.0.0.1:%d" % free_port() for _ in range(3)]
        self.weirs = []
        for i, a in enumerate(self.admins):
            peers = ", ".join(x for j, x in enumerate(self.admins) if j != i)
            self.weirs.append(Weir(CONFIG % {"admin": a, "v1": self.v1.addr, "v2": self.v2.addr,
                                             "fleet": FLEET % (peers, self.key) if fleet else "",
                                             "guard": GUARD if guard else ""}))
        wait_for(lambda: not fleet or all(len([p for p in self.ask(w, "fleet")["fleet"]["peers"]
                                               if p["replica"]]) == 2 for w in self.weirs),
                 timeout=20)
        self.streams = [Stream(w) for w in self.weirs]

    @staticmethod
    def ask(w, line):
        return json.loads(w.command(line))

    def rollout(self, i):
        return self.ask(self.weirs[i], "rollout")["rollout"]

    def all_state(self, state, timeout=20):
        return wait_for(lambda: all(self.rollout(i)["state"] == state for i in range(3)),
                        timeout=timeout)

    def stop(self):
        for s in self.streams:
            s.close()
        cleanup.run_all()


def rollout_event(state):
    return lambda e: e.get("event") == "rollout" and e.get("state") == state


def spread(f, starter_t, pred):
    """Seconds from starter_t to the last replica's first event matching pred."""
    # The streams are read by threads: wait until each has the event.
    wait_for(lambda: all(s.first(pred, after=starter_t - 0.001) for s in f.streams), timeout=5)
    ts_ = [s.first(pred, after=starter_t - 0.001) for s in f.streams]
    if any(t is None for t in ts_):
        return None
    return max(ts_) - starter_t


def bench_start_abort(trials):
    f = Fleet()
    start, abort = [], []
    for k in range(trials):
        i = k % 3
        t0 = time.time()
        r = f.ask(f.weirs[i], "rollout start v2 steps=10,50,100 hold=1h")
        assert r["ok"], r
        f.all_state("running")
        wait_for(lambda: f.streams[i].first(rollout_event("running"), after=t0 - 0.001),
                 timeout=5)
        t_start = f.streams[i].first(rollout_event("running"), after=t0 - 0.001)
        start.append(spread(f, t_start, rollout_event("running")))
        j = (k + 1) % 3
        t1 = time.time()
        assert f.ask(f.weirs[j], "rollout abort")["ok"]
        f.all_state("aborted")
        wait_for(lambda: f.streams[j].first(rollout_event("aborted"), after=t1 - 0.001),
                 timeout=5)
        t_abort = f.streams[j].first(rollout_event("aborted"), after=t1 - 0.001)
        abort.append(spread(f, t_abort, rollout_event("aborted")))
        time.sleep(0.3)
    f.stop()
    return {"start_s": start, "abort_s": abort}


def bench_fault(duration_s, rate, fleet=True):
    """fleet=False: the same three replicas without `fleet:`, the rollout
    started on each by hand, each guard judging its own third."""
    f = Fleet(v2_extra=["--error-rate", "0.3"], fleet=fleet)
    benches = [subprocess.Popen([WEIR_BENCH, "-q", "--json", "-c", "4", "-R", str(rate), "-d",
                                 "%ds" % duration_s, "http://127.0.0.1:%d/" % w.port],
                                stdout=subprocess.PIPE) for w in f.weirs]
    time.sleep(1.0)
    t0 = time.time()
    for w in (f.weirs if not fleet else f.weirs[:1]):
        assert f.ask(w, "rollout start v2 steps=20,100 hold=1h")["ok"]
    ok = f.all_state("aborted", timeout=duration_s)
    wait_for(lambda: all(s.first(rollout_event("aborted"), after=t0) for s in f.streams),
             timeout=5)
    outs = [json.loads(b.communicate(timeout=duration_s + 30)[0]) for b in benches]
    trips = [s.first(lambda e: e.get("event") == "guard" and e.get("verdict") == "fail",
                     after=t0) for s in f.streams]
    first_trip = min(t for t in trips if t is not None) if any(trips) else None
    aborted = [s.first(rollout_event("aborted"), after=t0) for s in f.streams]
    res = {
        "aborted_everywhere": ok,
        "tripped_on": sum(t is not None for t in trips),
        "trip_to_all_aborted_s": (max(aborted) - first_trip) if ok and first_trip else None,
        "start_to_first_trip_s": (first_trip - t0) if first_trip else None,
        "requests": sum(o["requests"] for o in outs),
        "failed_requests": sum(o["errors"] for o in outs),
        "v2_requests": sum(o["versions"].get("v2", {}).get("requests", 0) for o in outs),
        "rate_per_replica": rate,
    }
    f.stop()
    return res


def bench_restart(trials):
    f = Fleet(guard=False)  # steps advance on their hold alone
    steps = ",".join(str(x) for x in range(4, 101, 4))
    assert f.ask(f.weirs[0], "rollout start v2 steps=%s hold=1s" % steps)["ok"]
    c = f.weirs[2]
    took, behind = [], []
    for _ in range(trials):
        time.sleep(1.5)
        c.signal(signal.SIGKILL)
        c.wait()
        f.streams[2].close()
        time.sleep(2.5)  # the fleet moves on meanwhile (a step a second)
        t0 = time.time()
        c.start()
        fleet_step = f.rollout(0)["step"]
        behind.append(fleet_step - f.rollout(2)["step"])
        wait_for(lambda: f.rollout(2)["step"] >= fleet_step, timeout=20, interval=0.01)
        took.append(time.time() - t0)
        f.streams[2] = Stream(c)
    f.stop()
    return {"restart_to_fleet_step_s": took, "restart_steps_behind": behind}


def bench_partition():
    f = Fleet()
    assert f.ask(f.weirs[0], "rollout start v2 steps=10,50,100 hold=1h")["ok"]
    f.all_state("running")
    c = f.weirs[2]
    c.signal(signal.SIGSTOP)
    assert f.ask(f.weirs[1], "rollout abort")["ok"]
    wait_for(lambda: f.rollout(0)["state"] == "aborted", timeout=10)
    time.sleep(2.0)
    t0 = time.time()
    c.signal(signal.SIGCONT)
    wait_for(lambda: f.rollout(2)["state"] == "aborted", timeout=20, interval=0.01)
    took = time.time() - t0
    time.sleep(2.0)
    resumed = f.streams[2].first(rollout_event("running"), after=t0)
    res = {"cont_to_aborted_s": took, "ever_running_again": resumed is not None,
           "state_after": f.rollout(2)["state"]}
    f.stop()
    return res


def bench_forged():
    f = Fleet()
    assert f.ask(f.weirs[0], "rollout start v2 steps=10,100 hold=1h")["ok"]
    f.all_state("running")
    gen = f.ask(f.weirs[0], "status")["generation"]
    now = int(time.time() * 1000)
    line = ("state=aborted;version=v2;step=1;steps=1000,10000;hold=1000;started=%d;"
            "step_started=%d;pause_seq=0;versions=v1:10000,v2:0;starter=x:1;reason=forged"
            % (now + 9000, now))
    body = json.dumps({"fleet": 1, "replica": "x:1", "boot": "00000000000000aa", "seq": 1,
                       "time_ms": now, "generation": 1, "rollout": line, "counts": {}}).encode()

    def post(mac):
        req = urllib.request.Request("http://%s/fleet" % f.admins[0], data=body, method="POST",
                                     headers={"X-Weir-Fleet-Mac": mac})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    forged = post(hmac.new(b"not the key, but long enough", body, hashlib.sha256).hexdigest())
    # A replay needs a message once accepted: sign it right, send it twice
    # (this one would abort: it is the key holder's own, a real peer).
    good = hmac.new(KEY, body, hashlib.sha256).hexdigest()
    first = post(good)
    again = post(good)
    samples, _, _ = scrape(int(f.admins[0].rsplit(":", 1)[1]))
    res = {"forged_status": forged, "replayed_status": again, "accepted_first": first,
           "rejected_bad_mac": prom_value(samples, "weir_fleet_rejected_total", reason="bad_mac"),
           "rejected_replayed": prom_value(samples, "weir_fleet_rejected_total",
                                           reason="replayed"),
           "generation_unchanged_by_forgery": gen}
    f.stop()
    return res


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    return "median %.3f s, max %.3f s (n=%d)" % (statistics.median(xs), max(xs), len(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--fault-seconds", type=int, default=20)
    ap.add_argument("--rate", type=int, default=300, help="requests/s per replica")
    ap.add_argument("--json")
    a = ap.parse_args()
    out = {}
    out.update(bench_start_abort(a.trials))
    out["fault"] = bench_fault(a.fault_seconds, a.rate)
    out["fault_alone"] = bench_fault(a.fault_seconds, a.rate, fleet=False)
    out.update(bench_restart(a.trials))
    out["partition"] = bench_partition()
    out["forged"] = bench_forged()
    print("rollout start -> running on all 3:  %s" % summary(out["start_s"]))
    print("rollout abort -> aborted on all 3:  %s" % summary(out["abort_s"]))
    fa = out["fault"]
    print("fault: first trip -> all aborted:    %s (tripped on %d of 3; %s after the start)"
          % ("%.3f s" % fa["trip_to_all_aborted_s"] if fa["trip_to_all_aborted_s"] is not None
             else "n/a", fa["tripped_on"],
             "%.1f s" % fa["start_to_first_trip_s"] if fa["start_to_first_trip_s"] else "n/a"))
    print("fault: failed user requests:         %d of %d (%d sent to v2)"
          % (fa["failed_requests"], fa["requests"], fa["v2_requests"]))
    fa = out["fault_alone"]
    print("same fault, no fleet (each judges its third): first trip %s after the start, "
          "last replica aborted %s after it (tripped on %d of 3); failed %d of %d (%d to v2)"
          % ("%.1f s" % fa["start_to_first_trip_s"] if fa["start_to_first_trip_s"] else "n/a",
             "%.3f s" % fa["trip_to_all_aborted_s"] if fa["trip_to_all_aborted_s"] is not None
             else "n/a", fa["tripped_on"], fa["failed_requests"], fa["requests"],
             fa["v2_requests"]))
    print("restart -> the fleet's step:         %s; it came back %s step(s) behind"
          % (summary(out["restart_to_fleet_step_s"]), out["restart_steps_behind"]))
    p = out["partition"]
    print("SIGSTOP during abort, SIGCONT -> aborted: %.3f s; running again: %s"
          % (p["cont_to_aborted_s"], p["ever_running_again"]))
    fo = out["forged"]
    print("forged -> %d, replayed -> %d; weir_fleet_rejected_total bad_mac=%s replayed=%s"
          % (fo["forged_status"], fo["replayed_status"], fo["rejected_bad_mac"],
             fo["rejected_replayed"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
