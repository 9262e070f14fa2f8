"""The data path end to end (issue 2): keep-alive, pipelining, framing,
header rewriting, upgrade tunnel, 100-continue, errors, streaming."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1a = Pod("v1-a", "v1")
v1b = Pod("v1-b", "v1")
v2 = Pod("v2-a", "v2")


def proxy():
    """weir in front of v1 (two pods) and v2 at 90/10."""
    return Weir("""
listen: {listen}
control: {control}
version_header: X-Weir-Version
workers: 2
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s, %s]
  v2:
    endpoints: [%s]
split: {{v1: 90, v2: 10}}
""" % (v1a.addr, v1b.addr, v2.addr))


def one_version_weir(timeouts):
    """weir with v1 = the first v1 pod only, and the given timeouts."""
    return Weir("""
listen: {listen}
control: {control}
access_log: {{enabled: false}}
timeouts: {{%s}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % (timeouts, v1a.addr))


@case
def plain_request():
    w = proxy()
    # --- a plain request, and the demo body
    r = get(w.port)
    check(r.status == 200, "GET / answers 200")
    check(r.body.decode().startswith("Host: v1-") or r.body.decode().startswith("Host: v2-"),
          "body comes from a pod: %r" % r.body[:40])
    check(r.header("X-Weir-Version") in ("v1", "v2"), "version header names the version")


@case
def keep_alive():
    w = proxy()
    # --- keep-alive: many requests on one connection, alternating endpoints in v1
    c = Conn(w.port)
    pods = []
    for i in range(20):
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        pods.append(r.header("X-Pod"))
    check(all(p for p in pods), "20 keep-alive requests on one connection all answered")
    check("v1-a" in pods and "v1-b" in pods, "both v1 endpoints take turns: %s" % sorted(set(pods)))
    c.close()


@case
def parked_connections():
    w = proxy()
    # --- a keep-alive connection idle past the park delay (1 s) still works
    c = Conn(w.port)
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.read_response().status == 200, "first request before idling")
    time.sleep(1.5)  # idle past the park delay: the state under test, not a wait for weir
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.read_response().status == 200, "same connection serves again after being parked")
    c.close()
    # a connection that never sends is parked from the start and still served
    c = Conn(w.port)
    time.sleep(1.2)  # silent past the park delay
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.read_response().status == 200, "a connection silent since accept is served when it speaks")
    c.close()


@case
def pipelining():
    w = proxy()
    # --- pipelining: answered in order
    c = Conn(w.port)
    c.send("".join("GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
    order = []
    for i in range(5):
        r = c.read_response()
        order.append(r.body.decode().split("\n", 1)[0])
    check(order == ["GET /echo?n=%d HTTP/1.1" % i for i in range(5)], "pipelined requests answered in order")
    c.close()


@case
def header_rewriting():
    w = proxy()
    # --- header rewriting
    c = Conn(w.port)
    c.send("GET /echo HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 10.9.9.9\r\n"
           "Connection: keep-alive, X-Secret\r\nX-Secret: drop-me\r\nKeep-Alive: timeout=5\r\n"
           "Proxy-Connection: keep-alive\r\nTE: trailers\r\nX-Forwarded-Proto: https\r\n\r\n")
    r = c.read_response()
    echo = r.body.decode()
    lines = echo.split("\n")
    hdrs = {}
    for ln in lines[1:]:
        if not ln:
            break
        k, _, v = ln.partition(": ")
        hdrs.setdefault(k.lower(), []).append(v)
    check(lines[0] == "GET /echo HTTP/1.1", "request line forwarded as sent")
    check(hdrs.get("host") == ["example.test"], "Host kept as sent")
    check(hdrs.get("x-forwarded-for") == ["10.9.9.9, 127.0.0.1"], "X-Forwarded-For appended: %s" % hdrs.get("x-forwarded-for"))
    check(hdrs.get("x-forwarded-proto") == ["http"], "X-Forwarded-Proto set to http")
    check(hdrs.get("via") == ["1.1 weir"], "Via set")
    for h in ("x-secret", "keep-alive", "proxy-connection", "te"):
        check(h not in hdrs, "%s removed (hop-by-hop / named in Connection)" % h)
    c.close()


@case
def absolute_form_and_connect():
    w = proxy()
    # --- absolute-form target becomes origin-form; weir does not go elsewhere
    r = get(w.port, "http://evil.example:9999/echo?x=1", headers={"Host": "evil.example:9999"})
    check(r.status == 200 and r.body.decode().startswith("GET /echo?x=1 HTTP/1.1"),
          "absolute-form turned into origin-form and served by a configured endpoint")

    # --- CONNECT refused: never an open proxy
    r = get(w.port, "evil.example:443", method="CONNECT")
    check(r.status == 405, "CONNECT refused with 405 (got %d)" % r.status)


@case
def head_204_304():
    w = proxy()
    # --- HEAD, 204, 304
    c = Conn(w.port)
    c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(head_request=True)
    check(r.status == 200 and r.header("Content-Length") is not None, "HEAD answered with Content-Length and no body")
    c.send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(r.status == 204, "204 passed through")
    c.send("GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(r.status == 304, "304 passed through")
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(r.status == 200 and r.body.startswith(b"Host: "), "connection still in sync after HEAD/204/304")
    c.close()


@case
def request_bodies():
    w = proxy()
    # --- request bodies: Content-Length and chunked (re-framed)
    body = b"x" * 100000
    r = get(w.port, "/echo", method="POST", body=body)
    check(r.status == 200 and r.body.endswith(body), "100 kB Content-Length body forwarded intact")
    c = Conn(w.port)
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    r = c.read_response()
    text = r.body.decode()
    check(r.status == 200 and text.endswith("hello world"), "chunked body de-chunked and re-framed: %r" % text[-20:])
    check("ext=1" not in text, "chunk extensions not forwarded")
    c.close()


@case
def response_streaming():
    w = proxy()
    # --- responses: chunked and large downloads stream
    c = Conn(w.port)
    c.send("GET /chunked/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(r.status == 200 and len(r.body) == 100000, "chunked response re-framed to the client (%d bytes)" % len(r.body))
    c.send("GET /bytes/5000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(len(r.body) == 5000000, "5 MB response streamed")
    c.close()


@case
def http10_client():
    w = proxy()
    # --- HTTP/1.0 client: close-delimited when the upstream chunks
    c = Conn(w.port)
    c.send("GET /chunked/1000 HTTP/1.0\r\n\r\n")
    r = c.read_response()
    check(r.status == 200 and len(r.body) == 1000 and r.header("Transfer-Encoding") is None,
          "HTTP/1.0 client gets an un-chunked body")
    c.close()


@case
def expect_continue():
    w = proxy()
    # --- Expect: 100-continue
    c = Conn(w.port)
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    c.s.settimeout(5)
    first = c.read_response()
    if first.status == 100:
        c.send("hello")
        final = c.read_response()
    else:
        final = first
    check(first.status == 100, "100 Continue relayed to the client before the body")
    check(final.status == 200 and final.body.endswith(b"hello"), "body sent after 100 Continue arrives")
    c.close()


@case
def upgrade_tunnel():
    w = proxy()
    # --- Upgrade: a byte tunnel after 101
    c = Conn(w.port)
    c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    r = c.read_response(head_request=True)
    check(r.status == 101 and (r.header("Upgrade") or "").lower() == "websocket", "101 Switching Protocols relayed")
    c.send(b"ping-1")
    got = c.buf
    end = time.time() + 5
    while len(got) < 6 and time.time() < end:
        got += c.s.recv(100)
    check(got == b"ping-1", "tunnel echoes bytes both ways: %r" % got)
    c.close()


@case
def upstream_errors():
    # --- upstream errors: 502 (refused), 503 (no endpoint), 504 (timeout)
    dead = free_port()
    w2 = Weir("""
    listen: {listen}
    control: {control}
    access_log: {{enabled: false}}
    retries: 0
    timeouts: {{upstream_response: 300ms}}
    versions:
      v1:
        endpoints: [127.0.0.1:%d]
      slow:
        endpoints: [%s]
    split: {{v1: 100}}
    rules:
      - {{header: X-Slow, version: slow}}
    """ % (dead, v1a.addr))
    r = get(w2.port)
    check(r.status == 502 and r.body.strip() == b"502 Bad Gateway", "refused endpoint → 502 with a short body")
    r = get(w2.port, "/sleep/2000", headers={"X-Slow": "1"})
    check(r.status == 504, "upstream slower than upstream_response → 504 (got %d)" % r.status)
    for i in range(4):
        get(w2.port)  # passive ejection after repeated connect failures
    r = get(w2.port)
    check(r.status == 503, "ejected endpoint, no available one in the version → 503 (got %d)" % r.status)
    w2.stop()


@case
def slow_header():
    # --- slow header: cut at client_header, others still served
    w3 = one_version_weir("client_header: 500ms")
    slow = Conn(w3.port)
    slow.send("GET / HTTP/1.1\r\nHost: x\r\n")
    r = get(w3.port)
    check(r.status == 200, "another client is served while one sends its head slowly")
    check(slow.is_closed(timeout=5), "slow header cut at the header timeout")
    check(b"408" in slow.buf, "answered 408 before closing")
    slow.close()


@case
def idle_timeout():
    # --- keep-alive idle timeout closes idle (parked) connections
    w4 = one_version_weir("client_idle: 1500ms")
    c = Conn(w4.port)
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.read_response().status == 200, "request before the idle timeout")
    check(not c.is_closed(timeout=1.0), "still open 1 s into the 1.5 s client_idle timeout")
    check(c.is_closed(timeout=6), "idle keep-alive connection closed by the client_idle timeout")
    c.close()
    w4.stop()


@case
def slow_answer_outlives_client_timers():
    # --- a request answered after the client's idle and header timeouts
    # would have run out: those clocks do not run while a txn is on (the
    # connection is neither idle nor reading a head); it stays usable
    w5 = one_version_weir("client_idle: 400ms, client_header: 300ms, upstream_response: 5s")
    c = Conn(w5.port)
    def answer(target):
        try:
            c.send("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
            return c.read_response().status
        except (EOFError, OSError) as e:
            return repr(e)
    st = answer("/sleep/1300")
    check(st == 200, "answer after 1.3 s with client_idle 400ms, client_header 300ms: 200 (got %s)" % st)
    st = answer("/")
    check(st == 200, "the same connection serves the next request (got %s)" % st)
    c.send("GET / HTTP/1.1\r\nHost: x\r\n")
    check(c.is_closed(timeout=5) and b"408" in c.buf,
          "a head started after that is still cut at client_header (408)")
    c.close()
    w5.stop()


@case
def graceful_stop():
    w3 = one_version_weir("upstream_response: 10s")
    # --- graceful stop: in-flight request finishes, exit 0
    c = Conn(w3.port)
    c.send("GET /sleep/700 HTTP/1.1\r\nHost: x\r\n\r\n")
    check(wait_for(lambda: endpoint_status(w3, "v1", v1a.addr)["inflight"] == 1, 5),
          "the request is in flight on the upstream")
    w3.signal(15)
    r = c.read_response()
    check(r.status == 200, "in-flight request finishes during SIGTERM drain")
    check(w3.wait(10) == 0, "weir exits 0 after SIGTERM")


run()
