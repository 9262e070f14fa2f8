"""Issue 4: retry limits and non-idempotent safety.

Scripted upstreams make the failure shapes: "reset_head" resets after the
request head, "reset_body" after reading the whole body, "ok" answers.
- A GET that every endpoint resets is tried 1 + `retries` times, then 502.
- With `retries: 0` it is tried once.
- A POST (and a PUT) whose body reached an endpoint that then reset is never
  sent again: 502, and no other endpoint sees it.
- A GET reset by one endpoint is retried on another: 200.
- A POST whose connect was refused (no byte sent) is retried: 200, and the
  good endpoint sees it exactly once."""
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

resetters = rb = good = good3 = dead = None  # the current case's upstreams

CONFIG = """
listen: {listen}
control: {control}
workers: 1
retries: %d
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s, %s]
  v3:
    endpoints: [127.0.0.1:%d, %s]
rules:
  - {{header: X-V, value: "2", version: v2}}
  - {{header: X-V, value: "3", version: v3}}
split: {{v1: 100}}
"""


def config(retries):
    return CONFIG % (retries, ", ".join(u.addr for u in resetters), rb.addr, good.addr,
                     dead, good3.addr)


def weir_and_upstreams(retries):
    """Fresh scripted upstreams for one case, and a weir with `retries` over them."""
    global resetters, rb, good, good3, dead
    resetters = [Upstream("r%d" % n, "reset_head") for n in range(4)]
    rb = Upstream("rb", "reset_body")
    good = Upstream("good", "ok")
    good3 = Upstream("good3", "ok")
    dead = free_port()
    return Weir(config(retries))


def seen_total():
    return sum(len(u.seen) for u in resetters)


def access_lines(w):
    out = []
    for ln in w.stdout().splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            pass
    return out


@case
def retry_limit():
    # --- the limit
    w = weir_and_upstreams(2)
    r = get(w.port, "/limit")
    check(r.status == 502, "GET reset by every endpoint: 502 (got %d)" % r.status)
    check(seen_total() == 3, "tried 1 + retries(2) = 3 times (%d)" % seen_total())
    check(len({u.name for u in resetters if u.seen}) == 3, "on three different endpoints")
    check(wait_for(lambda: any(e.get("status") == 502 and e.get("retries") == 2
                               for e in access_lines(w))),
          "the access log records retries: 2")


@case
def streamed_body_never_sent_twice():
    # --- non-idempotent safety: a streamed body is never sent twice
    w = weir_and_upstreams(2)
    outcomes = []
    for method in ["POST"] * 6 + ["PUT"] * 4:
        xid = uuid.uuid4().hex
        r = get(w.port, "/submit", method=method, body="x" * 1000,
                headers={"X-V": "2", "X-Id": xid})
        outcomes.append((method, xid, r.status))
    hit_rb = [(m, x, s) for (m, x, s) in outcomes if x in rb.ids()]
    check({m for m, _, _ in hit_rb} == {"POST", "PUT"},
          "POSTs and PUTs reached the resetting endpoint (%d of %d)" % (len(hit_rb), len(outcomes)))
    check(all(s == 502 for _, _, s in hit_rb), "each of them answered 502: %s" % hit_rb)
    check(not any(x in good.ids() for _, x, _ in hit_rb),
          "none of them was sent again to the good endpoint")
    check(all(s == 200 for m, x, s in outcomes if x not in rb.ids()),
          "the others were answered by the good endpoint")
    check(all(b == b"x" * 1000 for (_, _, _, b) in rb.seen), "the resetter had read whole bodies")


@case
def get_retried_after_reset():
    # --- an idempotent GET without a body is retried after a reset
    w = weir_and_upstreams(2)
    gets = []
    for _ in range(6):
        xid = uuid.uuid4().hex
        r = get(w.port, "/read", headers={"X-V": "2", "X-Id": xid})
        gets.append((xid, r.status))
    check(all(s == 200 for _, s in gets), "GETs through a resetting endpoint: all 200: %s" % gets)
    retried = [x for x, _ in gets if x in rb.ids()]
    check(retried and all(good.ids().count(x) == 1 for x in retried),
          "the %d reset GETs were answered by the good endpoint, once each" % len(retried))


@case
def post_retried_after_refused_connect():
    # --- a POST whose connect failed reached nobody: retried
    w = weir_and_upstreams(2)
    posts = []
    for _ in range(6):
        xid = uuid.uuid4().hex
        r = get(w.port, "/submit", method="POST", body="y" * 100,
                headers={"X-V": "3", "X-Id": xid})
        posts.append((xid, r.status))
    check(all(s == 200 for _, s in posts), "POSTs with a refused endpoint in v3: all 200: %s" % posts)
    check(all(good3.ids().count(x) == 1 for x, _ in posts),
          "each reached the good endpoint exactly once")


@case
def retries_zero():
    # --- retries: 0
    w0 = weir_and_upstreams(0)
    before = seen_total()
    r = get(w0.port, "/limit0")
    check(r.status == 502, "retries 0: GET reset: 502 (got %d)" % r.status)
    check(seen_total() - before == 1, "retries 0: tried once (%d)" % (seen_total() - before))


run()
