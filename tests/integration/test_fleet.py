"""The fleet (issue 15, INTERFACE.md "Fleet"): three weir processes on
127.0.0.1 with a peers list (and three behind one dnsmasq name) act as one.
A rollout started, paused, resumed or aborted on any replica is in force on
all of them; a v2 that fails trips the guard and every replica rolls back;
the guard judges the fleet's merged counts, each replica's once; a replica
killed and restarted mid-rollout takes up the fleet's step, and one that
was down during an abort comes back aborted. Forged, wrong-key, replayed,
stale, malformed and oversized messages (sent here with urllib, signed with
Python's hmac) are refused, counted and change nothing. Polls with
deadlines; no timing assertion."""
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

KEY = b"0123456789abcdef0123456789abcdef-fleet-test-key"


def key_file(d, key=KEY, mode=0o600):
    path = os.path.join(d, "fleet.key")
    with open(path, "wb") as f:
        f.write(key + b"\n")
    os.chmod(path, mode)
    return path


CONFIG = """
listen: {listen}
control: {control}
admin: %(admin)s
watch: false
version_header: X-Weir-Version
%(guard)s
versions:
  v1:
    endpoints: [%(v1)s]
  v2:
    endpoints: [%(v2)s]
split: {{v1: 100, v2: 0}}
fleet:
  peers: %(peers)s
  key_file: %(key)s
  interval: 200ms
"""

GUARD = """guard:
  window: 10s
  min_requests: %d
  errors: {{max_increase: 2%%}}
  latency: {{quantile: p90, max_ratio: 5, floor: 200ms}}
"""


class Fleet:
    """n weirs on 127.0.0.1, each listing the others' admin listeners."""

    def __init__(self, n=3, v2_extra=(), guard=None, admin_hosts=None, admin_port=None,
                 peers=None, resolvers=None, extra="", start=None):
        self.v1 = Pod("v1-a", "v1", extra=["--quiet"])
        self.v2 = Pod("v2-a", "v2", extra=["--quiet"] + list(v2_extra))
        self.key = key_file(tmpdir())
        if admin_hosts:
            port = admin_port or free_port_on(admin_hosts)
            self.admins = ["%s:%d" % (h, port) for h in admin_hosts]
        else:
            self.admins = ["127.0.0.1:%d" % free_port() for _ in range(n)]
        self.weirs = []
        for i, a in enumerate(self.admins):
            p = peers or "[%s]" % ", ".join(x for j, x in enumerate(self.admins) if j != i)
            text = CONFIG % {"admin": a, "guard": guard or "", "v1": self.v1.addr,
                             "v2": self.v2.addr, "peers": p, "key": self.key}
            if resolvers:
                text += "resolvers: [%s]\n" % resolvers
            self.weirs.append(Weir(text + extra, start=start is None or i in start))

    def admin_port(self, i):
        return int(self.admins[i].rsplit(":", 1)[1])

    def admin_host(self, i):
        return self.admins[i].rsplit(":", 1)[0]


def ask(w, line):
    return json.loads(w.command(line))


def rollout(w):
    return ask(w, "rollout")["rollout"]


def split(w):
    return ask(w, "status")["split"]


def all_state(fl, state, step=None):
    def pred():
        for w in fl.weirs:
            r = rollout(w)
            if r["state"] != state or (step is not None and r["step"] != step):
                return False
        return True
    return wait_for(pred, timeout=15)


def states(fl):
    return [(rollout(w)["state"], rollout(w)["step"]) for w in fl.weirs]


def fleet_view(w):
    return ask(w, "fleet")["fleet"]


def sign(body, key=KEY):
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def post(fl, i, body, mac=None, headers=None):
    """POST body to replica i's /fleet; returns (status, text)."""
    h = {"Content-Type": "application/json"}
    if mac is not None:
        h["X-Weir-Fleet-Mac"] = mac
    h.update(headers or {})
    req = urllib.request.Request("http://%s/fleet" % fl.admins[i], data=body, headers=h,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def rejected(fl, i, reason):
    samples, _, _ = scrape(fl.admin_port(i))
    return prom_value(samples, "weir_fleet_rejected_total", reason=reason) or 0


NONE_ROLLOUT = ("state=none;version=;step=0;steps=;hold=0;started=0;step_started=0;"
                "pause_seq=0;versions=;reason=")


def message(replica="intruder:1", boot="00000000deadbeef", seq=1, time_ms=None,
            rollout_line=NONE_ROLLOUT, counts=None):
    return json.dumps({"fleet": 1, "replica": replica, "boot": boot, "seq": seq,
                       "time_ms": int(time.time() * 1000) if time_ms is None else time_ms,
                       "generation": 1, "rollout": rollout_line,
                       "counts": counts or {}}).encode()


@case
def rollout_everywhere():
    fl = Fleet()
    a, b, c = fl.weirs
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=15),
          "every replica hears both others: %s" % [len(fleet_view(w)["peers"]) for w in fl.weirs])
    gens = [ask(w, "status")["generation"] for w in fl.weirs]
    stream = CtlConn(b.control)
    stream.send("events\n")
    check(json.loads(stream.read_line()).get("ok") is True, "an event stream on replica 1 opens")
    r = ask(a, "rollout start v2 steps=10,50,100 hold=1h")
    check(r["ok"] and r["rollout"]["state"] == "running", "rollout start on one replica: %s" % r)
    check(all_state(fl, "running", 1), "running at step 1 on all three: %s" % states(fl))
    check(wait_for(lambda: all(split(w).get("v2") == 10 for w in fl.weirs), timeout=10),
          "every replica's split gives v2 its 10 %%: %s" % [split(w) for w in fl.weirs])
    check(all(ask(w, "status")["generation"] > g for w, g in zip(fl.weirs, gens)),
          "the split came through the snapshot path on every replica (a new generation)")
    fleet_events = []
    while not fleet_events:
        e = json.loads(stream.read_line())  # the socket's timeout bounds the wait
        if e.get("event") == "fleet" and e.get("what") == "adopted":
            fleet_events.append(e)
    stream.close()
    e = fleet_events[0]
    check(e.get("replica", "").endswith(fl.admins[0].rsplit(":", 1)[1]) and
          "running" in e.get("detail", "") and e.get("generation", 0) > gens[1],
          "replica 1 announces a fleet event: the rollout adopted from replica 0: %s" % e)
    ids = set(rollout(w)["step_started"] for w in fl.weirs)
    check(len(ids) == 1, "one rollout, the same on all (step_started %s)" % ids)
    hist = ask(b, "history")["history"]
    check(any(h["what"].startswith("fleet: rollout v2 running") for h in hist),
          "the other replicas' change is the fleet's, in their history: %s"
          % [h["what"][:50] for h in hist[:3]])
    view = fleet_view(b)
    peer = [p for p in view["peers"] if p["address"] == fl.admins[0]]
    check(peer and peer[0]["replica"] and peer[0]["rollout"]["state"] == "running"
          and peer[0]["last_heard"] and peer[0]["generation"] >= 1,
          "fleet lists a peer's address, replica, last heard, rollout and generation: %s"
          % (peer[0] if peer else view))
    samples, _, _ = scrape(fl.admin_port(1))
    check(prom_value(samples, "weir_fleet_peers") == 2, "weir_fleet_peers is 2")
    check((prom_value(samples, "weir_fleet_messages_received_total") or 0) > 0 and
          (prom_value(samples, "weir_fleet_messages_sent_total") or 0) > 0,
          "message counters move")
    check(prom_value(samples, "weir_fleet_rejected_total", reason="bad_mac") == 0,
          "nothing is refused among honest replicas")

    r = ask(c, "rollout pause")
    check(r["ok"] and all_state(fl, "paused"), "pause on a third replica pauses all: %s" % states(fl))
    r = ask(b, "rollout resume")
    check(r["ok"] and all_state(fl, "running"), "resume on another resumes all: %s" % states(fl))
    r = ask(b, "rollout abort")
    check(r["ok"] and all_state(fl, "aborted"), "abort on one aborts all: %s" % states(fl))
    check(wait_for(lambda: all(split(w) == {"v1": 100, "v2": 0} for w in fl.weirs), timeout=10),
          "every replica is back to the split before the start: %s" % [split(w) for w in fl.weirs])
    # A new rollout after the abort is a new id: it runs everywhere.
    r = ask(c, "rollout start v2 steps=20,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1) and
          wait_for(lambda: all(split(w).get("v2") == 20 for w in fl.weirs), timeout=10),
          "a new rollout started elsewhere replaces the aborted one on all: %s" % states(fl))
    r = ask(a, "rollout promote")
    check(r["ok"] and all_state(fl, "promoted") and
          wait_for(lambda: all(split(w).get("v2") == 100 for w in fl.weirs), timeout=10),
          "promote on one promotes all: %s" % states(fl))

    rc, out = a.ctl("fleet", json_out=False)
    check(rc == 0 and fl.admins[1] in out and fl.admins[2] in out and "promoted" in out,
          "weirctl fleet prints a table of the peers: %s" % out.strip().replace("\n", " | "))


@case
def guard_rolls_back_all():
    fl = Fleet(v2_extra=["--error-rate", "0.3"], guard=GUARD % 40)
    check(wait_for(lambda: all(fleet_view(w)["peers"] and
                               all(p["replica"] for p in fleet_view(w)["peers"])
                               for w in fl.weirs), timeout=15), "the fleet formed")
    r = ask(fl.weirs[1], "rollout start v2 steps=30,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1), "a rollout runs on all: %s" % states(fl))
    loads = [Load(w.port, threads=2) for w in fl.weirs]
    aborted = all_state(fl, "aborted")
    for ld in loads:
        ld.stop()
    check(aborted, "a v2 failing 30 %% of its requests is aborted on every replica: %s" % states(fl))
    reasons = [rollout(w)["reason"] or "" for w in fl.weirs]
    check(all(x.startswith("guard:") for x in reasons), "the reason is the guard's everywhere: %s"
          % reasons)
    check(wait_for(lambda: all(split(w) == {"v1": 100, "v2": 0} for w in fl.weirs), timeout=10),
          "every replica sends v2 nothing: %s" % [split(w) for w in fl.weirs])
    trips = 0
    for i in range(3):
        samples, _, _ = scrape(fl.admin_port(i))
        trips += prom_value(samples, "weir_guard_trips_total", version="v2") or 0
    check(trips >= 1, "the guard tripped (on %d replica%s), and the others followed"
          % (trips, "" if trips == 1 else "s"))
    r = get(fl.weirs[2].port, "/")
    check(r.status == 200 and r.header("X-Weir-Version") == "v1", "traffic goes to v1")


@case
def merged_counts():
    """The guard of a replica that takes no traffic judges the others': each
    replica's counts once (a report replaces the previous one)."""
    fl = Fleet(guard=GUARD % 100000)
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=15), "the fleet formed")
    r = ask(fl.weirs[0], "rollout start v2 steps=50,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1) and
          wait_for(lambda: all(split(w).get("v2") == 50 for w in fl.weirs), timeout=10),
          "v2 at 50 % on all")
    check(wait_for(lambda: all("v2" in ask(w, "guard")["guard"]["versions"] for w in fl.weirs),
                   timeout=10), "v2 is judged on every replica")
    served = {"v1": 0, "v2": 0}
    for _ in range(120):
        resp = get(fl.weirs[0].port, "/")
        served[resp.header("X-Weir-Version")] = served.get(resp.header("X-Weir-Version"), 0) + 1

    def seen(i):
        g = ask(fl.weirs[i], "guard")["guard"]["versions"].get("v2") or {}
        return g.get("requests"), g.get("baseline_requests")

    want = (served["v2"], served["v1"])
    check(wait_for(lambda: all(seen(i) == want for i in range(3)), timeout=15),
          "every replica's guard counts the requests served by replica 0 exactly once: "
          "served %s, judged %s" % (want, [seen(i) for i in range(3)]))
    before = fleet_view(fl.weirs[2])["received"]
    wait_for(lambda: fleet_view(fl.weirs[2])["received"] >= before + 10, timeout=15)
    check(fleet_view(fl.weirs[2])["received"] >= before + 10 and seen(2) == want,
          "repeated reports do not add up again: %s after %d more messages"
          % (seen(2), fleet_view(fl.weirs[2])["received"] - before))


@case
def restart_takes_up():
    fl = Fleet()
    a, b, c = fl.weirs
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=15), "the fleet formed")
    steps = ",".join(str(x) for x in range(5, 101, 5))
    r = ask(a, "rollout start v2 steps=%s hold=2s" % steps)
    check(r["ok"], "a rollout of 20 steps, 2 s each, starts")
    c.stop()
    check(wait_for(lambda: rollout(a)["step"] >= 3, timeout=30),
          "the fleet moves on while one replica is down (step %d)" % rollout(a)["step"])
    c.start()
    at = rollout(a)["step"]
    check(wait_for(lambda: rollout(c)["step"] >= at and rollout(c)["state"] == "running",
                   timeout=15),
          "the restarted replica takes up the fleet's step (%d, the fleet was at %d)"
          % (rollout(c)["step"], at))
    check(wait_for(lambda: split(c).get("v2") == rollout(c)["percent"], timeout=10),
          "... and its split: %s" % split(c))
    c.stop()
    r = ask(b, "rollout abort")
    check(r["ok"] and wait_for(lambda: rollout(a)["state"] == "aborted", timeout=10),
          "aborted while one replica is down")
    c.start()
    check(wait_for(lambda: rollout(c)["state"] == "aborted" and split(c).get("v2") == 0,
                   timeout=15),
          "a replica that was down during the abort comes back aborted, not running: %s %s"
          % (rollout(c)["state"], split(c)))
    check(all_state(fl, "aborted"), "no replica resumed the aborted rollout: %s" % states(fl))


@case
def partition_heals():
    """A replica that hears nothing (stopped with SIGSTOP) while the others
    abort converges when it comes back, and never resumes the rollout; the
    others see it lost, then back."""
    fl = Fleet()
    a, b, c = fl.weirs
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=15), "the fleet formed")
    r = ask(a, "rollout start v2 steps=10,50,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1), "a rollout runs on all")
    c.signal(signal.SIGSTOP)
    on_case_end(lambda: c.signal(signal.SIGCONT))
    r = ask(b, "rollout abort")
    check(r["ok"] and wait_for(lambda: rollout(a)["state"] == "aborted", timeout=10),
          "the reachable replicas abort")

    def c_lost():
        peer = [p for p in fleet_view(a)["peers"] if p["address"] == fl.admins[2]]
        return peer and peer[0]["lost"]
    check(wait_for(c_lost, timeout=15), "the stopped replica is reported lost")
    samples, _, _ = scrape(fl.admin_port(0))
    check(prom_value(samples, "weir_fleet_peers") == 1, "weir_fleet_peers drops to 1")
    c.signal(signal.SIGCONT)
    check(wait_for(lambda: rollout(c)["state"] == "aborted" and split(c).get("v2") == 0,
                   timeout=15),
          "the replica that was cut off comes back aborted: %s %s" % (rollout(c)["state"], split(c)))
    check(wait_for(lambda: not c_lost(), timeout=15), "and is heard again")
    check(all_state(fl, "aborted"), "nobody resumed the aborted rollout: %s" % states(fl))


@case
def wrong_key_replica():
    """A replica with another key is not part of the fleet: what it says is
    refused (bad_mac) and its rollout goes nowhere; it hears nothing either."""
    fl = Fleet()
    a, b, c = fl.weirs
    other = key_file(tmpdir(), key=b"another fleet's key, also long enough")
    with open(c.config) as f:
        text = f.read().replace(fl.key, other)
    c.stop()
    with open(c.config, "w") as f:
        f.write(text)
    c.start()
    check(wait_for(lambda: rejected(fl, 0, "bad_mac") > 0 and rejected(fl, 2, "bad_mac") > 0,
                   timeout=15),
          "both sides refuse the other's messages as bad_mac (%s, %s)"
          % (rejected(fl, 0, "bad_mac"), rejected(fl, 2, "bad_mac")))
    r = ask(c, "rollout start v2 steps=10,100 hold=1h")
    check(r["ok"], "the odd replica starts a rollout of its own")
    sent = fleet_view(c)["sent"]
    wait_for(lambda: fleet_view(c)["sent"] >= sent + 6, timeout=15)
    check(rollout(a)["state"] == "none" and rollout(b)["state"] == "none" and
          split(a) == {"v1": 100, "v2": 0},
          "the fleet did not take it: %s %s" % (rollout(a)["state"], rollout(b)["state"]))
    check(all(p["replica"] is None for p in fleet_view(c)["peers"]),
          "the odd replica heard no one: %s" % [p["replica"] for p in fleet_view(c)["peers"]])


@case
def reload_peers():
    """A reload with another peers list is followed (the key and interval
    need a restart)."""
    fl = Fleet()
    a, b, c = fl.weirs
    check(wait_for(lambda: len([p for p in fleet_view(a)["peers"] if p["replica"]]) == 2,
                   timeout=15), "replica 0 hears two peers")
    with open(a.config) as f:
        text = f.read()
    with open(a.config, "w") as f:
        f.write(text.replace(", " + fl.admins[2], ""))
    r = ask(a, "reload")
    check(r["ok"], "the reload with one peer fewer is taken: %s" % r)
    check(wait_for(lambda: [p["address"] for p in fleet_view(a)["peers"]
                            if p["last_error"] != "not in this replica's peers"] == [fl.admins[1]],
                   timeout=10),
          "replica 0 now tells only replica 1: %s" % [p["address"] for p in fleet_view(a)["peers"]])
    r = ask(a, "rollout start v2 steps=10,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1),
          "the fleet still converges (replica 2 hears it through replica 1): %s" % states(fl))


@case
def bad_messages():
    fl = Fleet()
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=15), "the fleet formed")
    r = ask(fl.weirs[0], "rollout start v2 steps=10,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1), "a rollout runs on all")
    gen = ask(fl.weirs[0], "status")["generation"]
    newer_abort = ("state=aborted;version=v2;step=1;steps=1000,10000;hold=1000;started=%d;"
                   "step_started=%d;pause_seq=0;versions=v1:10000,v2:0;starter=evil:1;"
                   "reason=forged" % (int(time.time() * 1000) + 5000, int(time.time() * 1000)))
    body = message(rollout_line=newer_abort)

    code, text = post(fl, 0, body, mac=sign(body, b"another key, sixteen bytes or more"))
    check(code == 403 and "bad_mac" in text, "a message signed with another key is refused: %d %s"
          % (code, text.strip()))
    code, text = post(fl, 0, body)
    check(code == 403 and "bad_mac" in text, "a message without a MAC is refused: %d" % code)
    tampered = body.replace(b"forged", b"forgeD")
    code, _ = post(fl, 0, tampered, mac=sign(body))
    check(code == 403, "a message changed after signing is refused: %d" % code)
    code, text = post(fl, 0, b"{not json", mac=sign(b"{not json"))
    check(code == 400 and "malformed" in text, "a malformed message (signed) is refused: %d %s"
          % (code, text.strip()))
    old = message(time_ms=int(time.time() * 1000) - 60000)
    code, text = post(fl, 0, old, mac=sign(old))
    check(code == 403 and "stale" in text, "a message a minute old is refused as stale: %d %s"
          % (code, text.strip()))
    big = message(replica="x" * 10) + b" " * (600 * 1024)
    code, text = post(fl, 0, big, mac=sign(big))
    check(code == 413, "an oversized message is refused: %d" % code)

    check(rollout(fl.weirs[0])["state"] == "running" and
          ask(fl.weirs[0], "status")["generation"] == gen,
          "nothing changed: still running, same generation")
    samples, _, _ = scrape(fl.admin_port(0))
    got = {r: prom_value(samples, "weir_fleet_rejected_total", reason=r)
           for r in ("bad_mac", "malformed", "stale", "too_large", "replayed")}
    check(got == {"bad_mac": 3, "malformed": 1, "stale": 1, "too_large": 1, "replayed": 0},
          "each refusal is counted by reason: %s" % got)
    check("refused (bad_mac)" in fl.weirs[0].stderr(), "refusals are logged")

    # A replay: a message taken once (it carries no rollout, so it changes
    # nothing), then the same bytes again.
    ok_msg = message(replica="honest:1", boot="00000000cafef00d", seq=7)
    code, _ = post(fl, 0, ok_msg, mac=sign(ok_msg))
    check(code == 204, "a well-signed message is taken: %d" % code)
    code, text = post(fl, 0, ok_msg, mac=sign(ok_msg))
    check(code == 403 and "replayed" in text, "the same message again is a replay: %d %s"
          % (code, text.strip()))
    older = message(replica="honest:1", boot="00000000cafef00d", seq=6)
    code, text = post(fl, 0, older, mac=sign(older))
    check(code == 403 and "replayed" in text, "an older sequence number is a replay: %d" % code)
    samples, _, _ = scrape(fl.admin_port(0))
    check(prom_value(samples, "weir_fleet_rejected_total", reason="replayed") == 2,
          "replays are counted")
    v = fleet_view(fl.weirs[0])
    check(v["rejected"]["bad_mac"] == 3 and v["rejected"]["replayed"] == 2,
          "the fleet command shows the refusals: %s" % v["rejected"])
    check(all(rollout(w)["state"] == "running" for w in fl.weirs),
          "no replica took the forged abort: %s" % states(fl))

    # Only rollout state and counts: a peer's message with the key and a
    # newer, valid rollout of a version this replica does not have is
    # refused by the snapshot path, and nothing else is touched.
    other = ("state=running;version=v9;step=1;steps=1000,10000;hold=1000;started=%d;"
             "step_started=%d;pause_seq=0;versions=v1:10000,v9:0;starter=peer:1;reason="
             % (int(time.time() * 1000) + 1000, int(time.time() * 1000)))
    m = message(replica="peer:1", boot="000000000000beef", seq=1, rollout_line=other)
    code, _ = post(fl, 0, m, mac=sign(m))
    check(code == 204 and ask(fl.weirs[0], "status")["split"] == {"v1": 90, "v2": 10},
          "a rollout of a version this replica lacks is not applied: split %s"
          % ask(fl.weirs[0], "status")["split"])
    check("cannot be applied" in fl.weirs[0].stderr(), "... and the log says why")


@case
def dns_name():
    """Three replicas find each other by one DNS name (dnsmasq), as pods do
    behind a headless Service; each one skips its own address."""
    d = tmpdir()
    dns = Dnsmasq(d)
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    port = free_port_on(hosts)
    dns.set("weir-peers.weir.test", hosts)
    fl = Fleet(admin_hosts=hosts, admin_port=port, peers="weir-peers.weir.test:%d" % port,
               resolvers="127.0.0.1:%d" % dns.port)
    check(wait_for(lambda: all(len([p for p in fleet_view(w)["peers"] if p["replica"]]) == 2
                               for w in fl.weirs), timeout=20),
          "each replica hears the two others through the name: %s"
          % [[p["address"] for p in fleet_view(w)["peers"]] for w in fl.weirs])
    check(all(fl.admins[i] not in [p["address"] for p in fleet_view(w)["peers"]]
              for i, w in enumerate(fl.weirs)),
          "a replica does not list itself")
    r = ask(fl.weirs[2], "rollout start v2 steps=10,100 hold=1h")
    check(r["ok"] and all_state(fl, "running", 1), "a rollout started on one runs on all: %s"
          % states(fl))


@case
def config_rollout_joins():
    """A replica whose config has `rollout:` and that joins a fleet already
    running that plan takes up the fleet's rollout instead of starting its
    own (which, being newer, would restart it at step 1 everywhere)."""
    fl = Fleet(extra="rollout: {{version: v2, steps: [10, 50, 100], hold: 1h}}\n",
               start=(0, 1))
    a, b, c = fl.weirs
    check(wait_for(lambda: rollout(a)["state"] == "running" and
                   rollout(b)["step_started"] == rollout(a)["step_started"], timeout=15),
          "two replicas with the config's rollout run one rollout: %s %s"
          % (rollout(a)["step_started"], rollout(b)["step_started"]))
    started = rollout(a)["step_started"]
    c.start()
    check(wait_for(lambda: rollout(c)["state"] == "running", timeout=15) and
          rollout(c)["step_started"] == started,
          "the joining replica takes up the fleet's rollout (started %s, its own %s)"
          % (started, rollout(c)["step_started"]))
    check(holds_for(lambda: rollout(a)["step_started"] == started, 1.0),
          "the fleet's rollout was not restarted by the joining replica")


@case
def key_file_checks():
    v1 = Pod("v1-a", "v1", extra=["--quiet"])
    d = tmpdir()

    def try_key(mode, key, test_only=False):
        path = key_file(d, key=key, mode=mode)
        if key == b"":
            with open(path, "wb"):
                pass
        cfg = os.path.join(d, "weir.yaml")
        port = free_port()
        with open(cfg, "w") as f:
            f.write("listen: 127.0.0.1:%d\ncontrol: %s/weir.sock\nadmin: 127.0.0.1:%d\n"
                    "versions: {v1: {endpoints: [%s]}}\nsplit: {v1: 100}\n"
                    "fleet: {peers: [127.0.0.1:1], key_file: %s}\n"
                    % (port, d, free_port(), v1.addr, path))
        if test_only:
            r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=30)
            return r.returncode, r.stderr.decode()
        p = subprocess.Popen([WEIR, "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        up = wait_for(lambda: p.poll() is not None or wait_port(port, timeout=0.2), timeout=20)
        running = p.poll() is None
        if running:
            p.terminate()
        err = p.communicate(timeout=20)[1].decode()
        return up and running, err

    for mode, key, why in ((0o666, KEY, "is writable by group or others"),
                           (0o620, KEY, "is writable by group or others"),
                           (0o600, b"", "is empty")):
        running, err = try_key(mode, key)
        check(not running and why in err,
              "weir refuses to start with a key file that %s: %s" % (why, err.strip().splitlines()[-1:]))
        rc, err = try_key(mode, key, test_only=True)
        check(rc == 1 and why in err,
              "weir -t says no to a key file that %s too: %s" % (why, err.strip().splitlines()[-1:]))
    rc, err = try_key(0o600, KEY, test_only=True)
    check(rc == 0, "weir -t passes a good key file (%s)" % err.strip()[-200:])
    running, err = try_key(0o644, KEY)
    check(running and "readable by others" in err,
          "a key others can read starts, with a warning: %s" % [l for l in err.splitlines()
                                                               if "key_file" in l][:1])
    running, err = try_key(0o600, b"short")
    check(running and "only 5 bytes" in err, "a short key starts, with a warning")


run()
