"""The admin listener's limits (issue 13): at most 64 connections, a new
one at the limit closes the one waiting longest for a request (so a scraper
always gets through), a request head must be complete within 10 s of the
accept (a slowloris that sends a byte every half second, which an idle
timeout never catches, is cut), heads over 16 KiB are refused; every close
is counted in weir_admin_connections_closed_total{reason} and the open
ones in weir_admin_connections. Each case runs its own weir
(`python3 tests/integration/test_admin_limits.py --list`)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

LIMIT = 64


def weir_with_admin():
    pod = Pod("v1-a", "v1")
    admin = free_port()
    w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
workers: 1
watch: false
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % (admin, pod.addr))
    check(wait_port(admin), "admin listener is up")
    return w, admin


def is_closed(s):
    """True when the peer closed (or reset) s; never blocks."""
    try:
        s.setblocking(False)
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def admin_metric(admin, name, **labels):
    samples, _, _ = scrape(admin)
    return prom_value(samples, name, **labels)


@case
def idle_flood():
    w, admin = weir_with_admin()
    idle = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", admin), timeout=10)
        on_case_end(s.close)
        idle.append(s)
    # Every one of them was accepted (the last one's eviction, if any, is
    # counted) before this scraper's connection, which comes after them.
    r = admin_get(admin, "/metrics")
    check(r.status == 200 and b"weir_admin_connections " in r.body,
          "/metrics answers a new client after 100 idle connections (got %d)" % r.status)
    samples, types = parse_prom(r.body.decode())
    open_now = prom_value(samples, "weir_admin_connections")
    by_limit = prom_value(samples, "weir_admin_connections_closed_total", reason="limit")
    check(types.get("weir_admin_connections") == "gauge" and
          types.get("weir_admin_connections_closed_total") == "counter",
          "weir_admin_connections is a gauge, ..._closed_total a counter")
    check(open_now is not None and open_now <= LIMIT,
          "at most %d admin connections are open: %s" % (LIMIT, open_now))
    check(by_limit is not None and by_limit >= 101 - LIMIT,
          "the limit closed at least %d connections: %s" % (101 - LIMIT, by_limit))
    wait_for(lambda: len([s for s in idle if is_closed(s)]) >= 100 - LIMIT + 1, timeout=10)
    closed = [s for s in idle if is_closed(s)]
    check(len(closed) >= 100 - LIMIT + 1,
          "the idle connections made room: %d of 100 closed by weir" % len(closed))
    check(admin_get(admin, "/healthz").status == 200, "/healthz answers too")
    # Released slots are reused: once the clients close theirs, only the
    # scraper's own connection is left open.
    for s in idle:
        s.close()
    check(wait_for(lambda: admin_metric(admin, "weir_admin_connections") == 1, timeout=10),
          "closed connections free their slots: weir_admin_connections back to 1")
    # A fresh flood still leaves room for one more scraper (slots do not leak).
    again = [socket.create_connection(("127.0.0.1", admin), timeout=10) for _ in range(LIMIT)]
    for s in again:
        on_case_end(s.close)
    check(admin_get(admin, "/metrics").status == 200, "a second flood of %d: /metrics still answers" % LIMIT)
    check(w.p.poll() is None, "weir is still running")


@case
def slowloris():
    w, admin = weir_with_admin()
    s = socket.create_connection(("127.0.0.1", admin), timeout=10)
    on_case_end(s.close)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ")
    # One byte every half second: never idle for evhttp's 10 s timeout, and
    # the 16 KiB head limit would take over two hours. The head is never
    # completed; weir must cut it (the deadline here is generous).
    sent, cut, scraped = 0, False, False
    deadline = time.monotonic() + 60
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if s.recv(4096) == b"":
                cut = True
                break
        except socket.timeout:
            pass
        except OSError:
            cut = True
            break
        try:
            s.sendall(b"a")
            sent += 1
        except OSError:
            cut = True
            break
        if sent == 4:
            scraped = admin_get(admin, "/metrics").status == 200
    check(scraped, "other clients are answered while the slowloris trickles")
    check(cut, "weir cut a head trickled a byte every 0.5 s (after %d bytes)" % sent)
    n = admin_metric(admin, "weir_admin_connections_closed_total", reason="head_timeout")
    check(n is not None and n >= 1, "counted as reason=\"head_timeout\": %s" % n)
    # A keep-alive client that asks in time is answered again and again.
    c = Conn(admin)
    on_case_end(c.close)
    ok = True
    for _ in range(3):
        c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = ok and c.read_response().status == 200
    check(ok, "a keep-alive client is answered three times on one connection")


@case
def big_head():
    w, admin = weir_with_admin()
    s = socket.create_connection(("127.0.0.1", admin), timeout=10)
    on_case_end(s.close)
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n"
    answer = b""
    try:
        s.sendall(head)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.") else b"(closed)"
    check(not answer.startswith(b"HTTP/1.1 200"),
          "a head over 16 KiB is not served: %s" % status.decode(errors="replace"))
    check(admin_get(admin, "/metrics").status == 200, "/metrics answers after it")


run()
