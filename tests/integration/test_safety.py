"""Issue 20: a change made by hand that gives a share to a version with no
available endpoint is refused, naming the version and why, unless it says
force=1 (so is a header rule onto such a version); dry-run=1 shows what a change would do and changes nothing; the
config file (reload) is applied as written, with a warning; weirctl's
usage errors exit 2.

Driven the way an operator meets it: weirctl, the status answer, and
requests through weir (python's http.client, not weir's own tools)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403
import http.client as httpclient  # noqa: E402  (after weirtest, whose http module shadows it)

HEALTH = "health: {{path: /ready, interval: 100ms, timeout: 500ms, rise: 1, fall: 1}}"


def ctl(w, *args):
    """weirctl against w: (exit code, stdout, stderr)."""
    return weirctl(*args, socket_path=w.control)


def ctl_json(w, *args):
    rc, out, err = ctl(w, "--json", *args)
    return rc, json.loads(out) if out.strip() else None


def split_gen(w):
    st = status(w)
    return st["split"], st["generation"]


def served_by(w):
    """The version that served one GET / (python http.client), or the status."""
    c = httpclient.HTTPConnection("127.0.0.1", w.port, timeout=10)
    c.request("GET", "/")
    r = c.getresponse()
    r.read()
    c.close()
    return r.getheader("X-Weir-Version") if r.status == 200 else r.status


def ep_healthy(w, version, address):
    return (endpoint_status(w, version, address) or {}).get("healthy")


def two_versions(v2_endpoints, v2_extra=""):
    v1 = Pod("a", "v1")
    return v1, Weir("""
listen: {listen}
control: {control}
workers: 2
version_header: X-Weir-Version
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
%s
split: {{v1: 100}}
""" % (v1.addr, v2_endpoints, v2_extra))


@case
def flip_to_dead_version():
    dead = dead_address()
    _, w = two_versions(dead, "    " + HEALTH)
    check(wait_for(lambda: ep_healthy(w, "v2", dead) is False, timeout=15),
          "status shows v2's endpoint %s unhealthy (nothing listens there)" % dead)
    before, gen = split_gen(w)

    rc, out, err = ctl(w, "flip", "v2")
    check(rc == 1, "weirctl flip v2 exits 1 (refused): rc=%d" % rc)
    check("v2" in err and "unhealthy" in err and "503" in err,
          "the refusal names v2, why (unhealthy) and what it would cost: %s" % err.strip())
    check("force=1" in err, "the refusal says how to apply it anyway")
    check(split_gen(w) == (before, gen), "split and generation unchanged: %s" % (split_gen(w),))
    check(served_by(w) == "v1", "requests are still served by v1")

    rc, out, err = ctl(w, "split", "v1=50", "v2=50")
    check(rc == 1 and "v2 would get 50 %" in err, "split v1=50 v2=50 refused: %s" % err.strip())
    rc, out, err = ctl(w, "split", "v1=99.99", "v2=0.01")
    check(rc == 1 and "v2" in err, "even 0.01 %% for v2 is refused: %s" % err.strip())
    check(split_gen(w) == (before, gen), "still unchanged after the refused splits")

    # dry-run of the refused change: shows the split it would make and the refusal.
    rc, a = ctl_json(w, "flip", "v2", "dry-run=1")
    check(rc == 1 and a["ok"] is False and a.get("dry_run") is True,
          "flip v2 dry-run=1: refused, as a dry run: %s" % a)
    check(a.get("split") == {"v1": 0, "v2": 100} and "v2" in a.get("error", ""),
          "the dry run shows the split it would make and why it is refused")
    check(split_gen(w) == (before, gen), "the dry run changed nothing")

    # dry-run of an accepted change: what would change; generation stays.
    rc, a = ctl_json(w, "flip", "v2", "dry-run=1", "force=1")
    check(rc == 0 and a["dry_run"] is True and a["generation"] == gen and
          a["split"] == {"v1": 0, "v2": 100} and "v2" in a.get("warning", ""),
          "flip v2 dry-run=1 force=1: would apply, with the warning: %s" % a)
    rc, out, err = ctl(w, "flip", "v2", "dry-run=1", "force=1")
    check(rc == 0 and "dry run" in out and "nothing changed" in out,
          "weirctl says it was a dry run: %s" % out.strip())
    check(split_gen(w) == (before, gen), "the forced dry run changed nothing either")

    # force=1 applies it, with a warning; requests then get 503.
    rc, out, err = ctl(w, "flip", "v2", "force=1")
    check(rc == 0, "flip v2 force=1 applies: rc=%d %s" % (rc, err.strip()))
    check("warning" in err and "v2" in err and "503" in err,
          "...with a warning naming v2: %s" % err.strip())
    split, gen2 = split_gen(w)
    check(split == {"v1": 0, "v2": 100} and gen2 == gen + 1,
          "split v2=100, generation %d -> %d" % (gen, gen2))
    check(served_by(w) == 503, "and, as forced, requests get 503")

    # Shrinking the broken version's share is always allowed.
    rc, out, err = ctl(w, "split", "v1=75", "v2=25")
    check(rc == 0, "split v1=75 v2=25 (v2 shrinks) is not refused: %s" % err.strip())
    rc, out, err = ctl(w, "rollback")
    check(rc == 1 and "cannot roll back" in err and "v2" in err,
          "rollback to v2=100 is refused as well: %s" % err.strip())
    rc, out, err = ctl(w, "flip", "v1")
    check(rc == 0 and split_gen(w)[0] == {"v1": 100, "v2": 0}, "flip v1 (healthy) applies")

    # A header rule onto the dead version is a change like a share for it.
    _, gen = split_gen(w)
    rc, out, err = ctl(w, "add-rule", "header=X-Canary", "value=1", "version=v2")
    check(rc == 1 and "X-Canary" in err and "v2" in err and "unhealthy" in err,
          "add-rule header=X-Canary value=1 version=v2 is refused: %s" % err.strip())
    check(status(w).get("rules") in (None, []) and split_gen(w)[1] == gen,
          "no rule was added, generation unchanged")
    rc, out, err = ctl(w, "add-rule", "header=X-Canary", "value=1", "version=v1")
    check(rc == 0, "a rule onto the healthy v1 applies: %s" % err.strip())
    rc, out, err = ctl(w, "add-rule", "header=X-Canary", "value=1", "version=v2", "force=1")
    check(rc == 0 and "warning" in err, "add-rule ... force=1 applies, with a warning: %s"
          % err.strip())


@case
def draining_and_no_endpoint():
    v2 = Pod("b", "v2")
    _, w = two_versions(v2.addr)
    rc, out, err = ctl(w, "drain", "v2", v2.addr)
    check(rc == 0, "drain v2's only endpoint (v2 has no share): %s" % err.strip())
    before, gen = split_gen(w)
    rc, out, err = ctl(w, "flip", "v2")
    check(rc == 1 and "v2" in err and "draining" in err,
          "flip v2 with its only endpoint draining is refused: %s" % err.strip())
    rc, out, err = ctl(w, "rollout", "start", "v2", "steps=10,100", "hold=1m")
    check(rc == 1 and "v2" in err and "draining" in err,
          "rollout start v2 is refused too: %s" % err.strip())
    rc, a = ctl_json(w, "rollout")
    check(a["rollout"]["state"] == "none", "no rollout was started")
    check(split_gen(w) == (before, gen), "split and generation unchanged")

    rc, out, err = ctl(w, "undrain", "v2", v2.addr)
    check(rc == 0, "undrain it")
    rc, out, err = ctl(w, "flip", "v2")
    check(rc == 0 and served_by(w) == "v2", "flip v2 with a live endpoint applies, v2 serves")


@case
def discovery_found_nothing():
    v2 = Pod("b", "v2")
    d = tmpdir()
    dns = Dnsmasq(d)
    v1 = Pod("a", "v1")
    w = Weir("""
listen: {listen}
control: {control}
version_header: X-Weir-Version
access_log: {{enabled: false}}
resolvers: [127.0.0.1:%d]
versions:
  v1:
    endpoints: [%s]
  v2:
    discover: app.weir.test:%d
    discover_interval: 100ms
split: {{v1: 100}}
""" % (dns.port, v1.addr, v2.port), dirpath=d)
    check(wait_for(lambda: "app.weir.test has no A or AAAA records" in w.stderr(), timeout=15),
          "v2's DNS name does not resolve yet")
    _, gen = split_gen(w)
    rc, out, err = ctl(w, "flip", "v2")
    check(rc == 1 and "v2" in err and "has no endpoint" in err and "app.weir.test" in err,
          "flip v2 with nothing discovered is refused: %s" % err.strip())
    check(split_gen(w) == ({"v1": 100, "v2": 0}, gen), "split and generation unchanged")
    dns.set("app.weir.test", ["127.0.0.1"])
    check(wait_for(lambda: endpoint_addresses(w, "v2") == [v2.addr], timeout=15),
          "the name now resolves: v2 has %s" % v2.addr)
    rc, out, err = ctl(w, "flip", "v2")
    check(rc == 0 and served_by(w) == "v2", "flip v2 applies, v2 serves: %s" % err.strip())


@case
def rollout_promote_refused():
    v2 = Pod("b", "v2")
    _, w = two_versions(v2.addr)
    rc, a = ctl_json(w, "rollout", "start", "v2", "steps=10,50,100", "hold=10m", "dry-run=1")
    check(rc == 0 and a["dry_run"] is True and a["rollout"]["state"] == "running" and
          a["split"] == {"v1": 90, "v2": 10},
          "rollout start dry-run=1 shows the rollout and split it would make: %s" % a)
    rc, a = ctl_json(w, "rollout")
    check(a["rollout"]["state"] == "none" and split_gen(w)[0] == {"v1": 100, "v2": 0},
          "...and starts nothing")
    rc, out, err = ctl(w, "rollout", "start", "v2", "steps=10,50,100", "hold=10m")
    check(rc == 0 and split_gen(w)[0] == {"v1": 90, "v2": 10}, "rollout start v2: v2 at 10 %")
    ctl(w, "drain", "v2", v2.addr)
    _, gen = split_gen(w)
    rc, out, err = ctl(w, "rollout", "promote")
    check(rc == 1 and "v2" in err and "draining" in err,
          "rollout promote with v2 draining is refused: %s" % err.strip())
    rc, a = ctl_json(w, "rollout")
    check(a["rollout"]["state"] == "running" and split_gen(w) == ({"v1": 90, "v2": 10}, gen),
          "the rollout still runs at 10 %, generation unchanged")
    rc, a = ctl_json(w, "rollout", "pause", "dry-run=1")
    check(rc == 0 and a["rollout"]["state"] == "paused", "rollout pause dry-run=1 shows paused")
    rc, a = ctl_json(w, "rollout")
    check(a["rollout"]["state"] == "running", "...and the rollout keeps running")
    rc, out, err = ctl(w, "rollout", "promote", "force=1")
    check(rc == 0 and split_gen(w)[0] == {"v1": 0, "v2": 100},
          "rollout promote force=1 applies: %s" % err.strip())


@case
def dry_run_changes_nothing():
    v2 = Pod("b", "v2")
    _, w = two_versions(v2.addr)
    before, gen = split_gen(w)
    for args in (["split", "v1=50", "v2=50"], ["flip", "v2"], ["drain", "v2", v2.addr],
                 ["add-endpoint", "v1", dead_address()], ["add-rule", "header=X-T", "version=v2"],
                 ["rollback"], ["reload"]):
        rc, a = ctl_json(w, *(args + ["dry-run=1"]))
        ok_or_refused = (rc == 0 and a["ok"]) or (rc == 1 and args == ["rollback"])
        check(ok_or_refused and a.get("dry_run") is True and a.get("generation") == gen,
              "%s dry-run=1 answers as a dry run at generation %d: %s" % (" ".join(args), gen, a))
    st = status(w)
    check((st["split"], st["generation"]) == (before, gen) and not st.get("rules") and
          len(st["versions"]["v1"]["endpoints"]) == 1 and
          st["versions"]["v2"]["endpoints"][0]["draining"] is False,
          "after all the dry runs: split, generation, rules and endpoints as before")
    rc, a = ctl_json(w, "history")
    check(a["history"] == [], "and the rollback history is empty")
    rc, a = ctl_json(w, "split", "v1=50", "v2=50", "dry-run=1")
    check(a["change"].startswith("split") and "v2=50" in a["change"],
          "the dry run says what would change: %s" % a["change"])


@case
def reload_applies_the_file():
    dead = dead_address()
    v1, w = two_versions(dead, "    " + HEALTH)
    check(wait_for(lambda: ep_healthy(w, "v2", dead) is False, timeout=15),
          "v2's endpoint is unhealthy")
    with open(w.config) as f:
        text = f.read()
    with open(w.config, "w") as f:
        f.write(text.replace("split: {v1: 100}", "split: {v2: 100}").replace(
            "access_log", "watch: false\naccess_log"))
    _, gen = split_gen(w)
    rc, a = ctl_json(w, "reload", "dry-run=1")
    check(rc == 0 and a["dry_run"] and a["split"]["v2"] == 100 and "v2" in a.get("warning", ""),
          "reload dry-run=1 shows the file's split and warns about v2: %s" % a)
    check(split_gen(w) == ({"v1": 100, "v2": 0}, gen), "the dry run changed nothing")
    rc, out, err = ctl(w, "reload")
    check(rc == 0 and "warning" in err and "v2" in err,
          "reload applies the file's split onto the unavailable v2, with a warning: %s"
          % err.strip())
    check(split_gen(w) == ({"v1": 0, "v2": 100}, gen + 1), "the file's split is in force")


@case
def usage_errors_exit_2():
    _, w = two_versions(dead_address())
    for args, what in ((["no-such-command"], "an unknown command"),
                       (["flip"], "flip without a version"),
                       (["split"], "split without arguments"),
                       (["drain", "v1"], "drain without an address"),
                       (["status", "dry-run=1"], "dry-run on a command that changes nothing"),
                       (["flip", "v1", "force=maybe"], "a bad force= value")):
        rc, out, err = ctl(w, *args)
        check(rc == 2 and err.strip(), "%s exits 2 (usage): %s" % (what, err.strip()))
    rc, out, err = ctl(w, "split", "v1=abc")
    check(rc == 1, "a value weir refuses (bad percent) exits 1: %s" % err.strip())
    rc, out, err = ctl(w, "flip", "v3")
    check(rc == 1 and "unknown version" in err, "an unknown version exits 1: %s" % err.strip())
    rc, a = ctl_json(w, "flip")
    check(rc == 2 and a["ok"] is False and a.get("usage") is True,
          "--json: the answer says usage:true: %s" % a)


run()
