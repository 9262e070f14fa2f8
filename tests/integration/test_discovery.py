"""Issue 4: DNS discovery against a real DNS server (dnsmasq), under load.

Pods listen on 127.0.0.2:P, 127.0.0.3:P, 127.0.0.4:P and [::1]:P; dnsmasq
serves app.weir.test from a hosts file that the test rewrites (SIGHUP).
v1 is `discover: app.weir.test:P` re-resolved every 100ms through
`resolvers`; v0 is its fallback. Through every step the client load sees
zero failures:
- records added: new pods get traffic (A and AAAA);
- a record removed: the pod gets no new requests and weir's idle
  connections to it close;
- the DNS server down: the last known set stays (logged once), and it is
  logged when names resolve again;
- the name gone (NXDOMAIN): logged, v1 has no endpoint, the fallback
  version takes its traffic (status says so); records back: v1 serves;
- a reload to another name with `health:`: the old name's endpoints leave,
  the new name's are checked first and only the ready pod serves."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
P = free_port_on(HOSTS + ["::1"])
pods = {h: PodAt("pod-" + h.rsplit(".", 1)[1], "v1", "%s:%d" % (h, P)) for h in HOSTS}
pod6 = PodAt("pod-v6", "v1", "[::1]:%d" % P)
fb = Pod("pod-fallback", "v0")
d = tmpdir()
ADMIN = free_port()
dns = Dnsmasq(d)
dns.set("app.weir.test", ["127.0.0.2"])
w = Weir("""
listen: {listen}
control: {control}
workers: 2
access_log: {{enabled: false}}
admin: 127.0.0.1:%d
resolvers: [127.0.0.1:%d]
versions:
  v1:
    discover: app.weir.test:%d
    discover_interval: 100ms
    fallback: v0
  v0:
    endpoints: [%s]
split: {{v1: 100}}
""" % (ADMIN, dns.port, P, fb.addr), dirpath=d)


def metric(line_start):
    body = get(ADMIN, "/metrics").body.decode()
    for ln in body.splitlines():
        if ln.startswith(line_start + " "):
            return ln.split()[-1]
    return None



def eps():
    return endpoint_addresses(w, "v1")


def a(h):
    return "%s:%d" % (h, P)


def established_to(host, port):
    """TCP connections in state ESTABLISHED whose local end is host:port
    (the pod's side of weir's upstream connections), from /proc/net/tcp."""
    want = "%s:%04X" % ("".join("%02X" % int(x) for x in reversed(host.split("."))), port)
    n = 0
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if parts[1] == want and parts[3] == "01":
                n += 1
    return n


check(wait_for(lambda: eps() == [a("127.0.0.2")], timeout=10),
      "the discovered endpoint is in v1: %s" % eps())
load = Load(w.port, threads=4, pause=0.002)
check(wait_for(lambda: "pod-2" in load.pods_since(0)), "pod-2 serves")

# --- added (A)
dns.set("app.weir.test", ["127.0.0.2", "127.0.0.3"])
check(wait_for(lambda: eps() == [a("127.0.0.2"), a("127.0.0.3")], timeout=10),
      "a record added: v1 has two endpoints: %s" % eps())
t = time.time()
check(wait_for(lambda: "pod-3" in load.pods_since(t), timeout=10), "the new pod gets traffic")
check("discovery: v1 +1 -0" in w.stderr(), "the change is logged (discovery: v1 +1 -0)")

# --- added (A and AAAA)
dns.set("app.weir.test", ["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"])
want = sorted([a("127.0.0.2"), a("127.0.0.3"), a("127.0.0.4"), "[::1]:%d" % P])
check(wait_for(lambda: eps() == want, timeout=10), "A and AAAA records: four endpoints: %s" % eps())
t = time.time()
check(wait_for(lambda: {"pod-4", "pod-v6"} <= set(load.pods_since(t)), timeout=10),
      "the IPv4 and IPv6 pods get traffic")

# --- removed
check(established_to("127.0.0.2", P) > 0, "weir holds connections to pod-2")
dns.set("app.weir.test", ["127.0.0.3", "127.0.0.4", "::1"])
check(wait_for(lambda: a("127.0.0.2") not in eps(), timeout=10), "a record removed: pod-2 left v1")
t_rm = time.time()
after = load.wait_since(t_rm + 0.2, 50)  # answers 0.2 s after the removal, at least 50
check(after and "pod-2" not in after, "the removed pod gets no new request (%d requests)" % len(after))
check(wait_for(lambda: established_to("127.0.0.2", P) == 0, timeout=10),
      "weir's idle connections to the removed pod are closed")
check(pods["127.0.0.2"].p.poll() is None, "(the removed pod itself is still running)")

# --- DNS server down: keep the last known set
port = dns.port
dns.stop()
check(wait_for(lambda: "discovery v1: lookup of app.weir.test failed" in w.stderr(), timeout=20),
      "a failing lookup is logged")
check(holds_for(lambda: eps() == sorted([a("127.0.0.3"), a("127.0.0.4"), "[::1]:%d" % P]), 1.0),
      "the last known endpoints stay: %s" % eps())
check(w.stderr().count("discovery v1: lookup of app.weir.test failed") == 1,
      "the failure is logged once, not per lookup")
t = time.time()
check(wait_for(lambda: {"pod-3", "pod-4"} <= set(load.pods_since(t)), timeout=5),
      "and keep serving")
dns = Dnsmasq(d, port=port)
dns.set("app.weir.test", ["127.0.0.3", "127.0.0.4", "::1"])
check(wait_for(lambda: "discovery v1: app.weir.test resolves again" in w.stderr(), timeout=20),
      "recovery of the lookups is logged")

# --- the name disappears: v1 empty, the fallback takes over
dns.set("app.weir.test", [])
check(wait_for(lambda: eps() == [], timeout=10), "NXDOMAIN: v1 has no endpoints")
check("discovery v1: app.weir.test has no A or AAAA records" in w.stderr(),
      "the empty answer is logged")
t = time.time()
# Counted by completion: skip what was in flight when v1 emptied.
after = set(load.wait_since(t + 0.2, 50))
check(after == {"pod-fallback"}, "the fallback version serves v1's traffic: %s" % sorted(after))
st = status(w)
check(st["versions"]["v1"].get("fallback") == "v0" and st["versions"]["v1"].get("fallback_active")
      is True and st["versions"]["v1"].get("available_endpoints") == 0,
      "status says v1's fallback v0 is taking its traffic: %s" % st["versions"]["v1"])
check(metric('weir_version_fallback_active{version="v1",fallback="v0"}') == "1"
      and metric('weir_version_available_endpoints{version="v1"}') == "0",
      "and so do the metrics")
dns.set("app.weir.test", ["127.0.0.3"])
check(wait_for(lambda: eps() == [a("127.0.0.3")], timeout=10), "a record is back")
t = time.time()
check(set(load.wait_since(t + 0.2, 50)) == {"pod-3"}, "v1 serves again, not the fallback")
check(status(w)["versions"]["v1"].get("fallback_active") is False
      and metric('weir_version_fallback_active{version="v1",fallback="v0"}') == "0",
      "status and metrics: fallback no longer active")

# --- reload to another name, now with health checks: the old name's
# endpoints leave, the new name's are resolved and checked before they serve
dns.set("other.weir.test", ["127.0.0.2", "127.0.0.4"])
pods["127.0.0.4"].set_ready(False)
with open(w.config) as f:
    text = f.read()
with open(w.config, "w") as f:
    f.write(text.replace("    discover: app.weir.test:%d\n" % P,
                         "    discover: other.weir.test:%d\n"
                         "    health: {interval: 100ms, timeout: 500ms}\n" % P))
rc, out = w.ctl("reload")
check(rc == 0, "reload to discover other.weir.test is accepted: %s" % out)
check(wait_for(lambda: eps() == [a("127.0.0.2"), a("127.0.0.4")], timeout=10),
      "v1 has the new name's endpoints only: %s" % eps())
check("discovery v1: stopped resolving app.weir.test:%d" % P in w.stderr(),
      "the old name is no longer resolved")
check(wait_for(lambda: (endpoint_status(w, "v1", a("127.0.0.2")) or {}).get("healthy") is True,
               timeout=10),
      "the ready pod behind the new name passes its check")
t = time.time()
after = set(load.wait_since(t + 0.2, 50))
check(after == {"pod-2"}, "only the checked, ready pod serves v1 (not the unready pod-4, "
      "not the old name's pod-3): %s" % sorted(after))
check((endpoint_status(w, "v1", a("127.0.0.4")) or {}).get("healthy") is False,
      "the unready pod behind the new name is unhealthy")

load.stop()
check(load.ok > 1000, "%d requests answered" % load.ok)
check(not load.failures, "zero failed client requests through discovery changes (%s)"
      % load.failures[:3])
w.stop()
done()
