"""Request smuggling and abusive input (issue 2, "Safety of input"): every
shape is answered 400 (or 431) and the connection closed, and nothing of it
reaches an upstream. Each shape is a regression test."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

pod = Pod("v1-a", "v1")
w = Weir("""
listen: {listen}
control: {control}
limits: {{max_header_bytes: 4096, max_header_count: 20}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % pod.addr)

H = "Host: x\r\n"
shapes = [
    ("CL and TE together", "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two different Content-Lengths", "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("Content-Length list", "POST / HTTP/1.1\r\n" + H + "Content-Length: 5, 5\r\n\r\nhello", 400),
    ("TE not chunked", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip\r\n\r\n", 400),
    ("TE chunked not final", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("TE xchunked", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("two TE fields", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE on HTTP/1.0", "POST / HTTP/1.0\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("bare LF line ending", "GET / HTTP/1.1\n" + "Host: x\n\n", 400),
    ("bare LF inside head", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400),
    ("bare CR in a value", "GET / HTTP/1.1\r\n" + H + "X-A: a\rb\r\n\r\n", 400),
    ("CR LF CR X ending", "GET / HTTP/1.1\r\n" + H + "\r\n\rX", None),  # head ends at CRLFCRLF; "\rX" is a bad next request
    ("obs-fold (space)", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n b\r\n\r\n", 400),
    ("obs-fold (tab)", "GET / HTTP/1.1\r\n" + H + "X-A: a\r\n\tb\r\n\r\n", 400),
    ("header line starting with space", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("NUL in a value", "GET / HTTP/1.1\r\n" + H + "X-A: a\x00b\r\n\r\n", 400),
    ("control char in a value", "GET / HTTP/1.1\r\n" + H + "X-A: a\x01b\r\n\r\n", 400),
    ("NUL in a name", "GET / HTTP/1.1\r\n" + H + "X\x00A: 1\r\n\r\n", 400),
    ("space before colon", "GET / HTTP/1.1\r\n" + H + "X-A : 1\r\n\r\n", 400),
    ("missing Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400),
    ("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("invalid chunk size", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size overflow", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nx\r\n0\r\n\r\n", 400),
    ("chunk missing CRLF after data", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n", 400),
    ("chunk size with bare LF", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    ("chunk extension over the cap", "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n5;" + "a" * 1000 + "\r\nhello\r\n0\r\n\r\n", 400),
    ("negative Content-Length", "POST / HTTP/1.1\r\n" + H + "Content-Length: -1\r\n\r\n", 400),
    ("invalid method token", "G(T / HTTP/1.1\r\n" + H + "\r\n", 400),
    ("HTTP/2.0 request line", "GET / HTTP/2.0\r\n" + H + "\r\n", 505),
    ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("too many header fields", "GET / HTTP/1.1\r\n" + H + "".join("X-%d: 1\r\n" % i for i in range(30)) + "\r\n", 431),
    ("header section over the limit", "GET / HTTP/1.1\r\n" + H + "X-Big: " + "a" * 5000 + "\r\n\r\n", 431),
]

for name, raw, want in shapes:
    c = Conn(w.port)
    c.send(raw.encode("latin-1"))
    try:
        r = c.read_response()
    except (EOFError, ConnectionResetError):
        r = None
    if want is None:
        # "\r\n\rX": the first request is complete and served; the bytes after
        # it are a malformed second head and must be rejected.
        check(r is not None and r.status == 200, "%s: the complete request is served" % name)
        try:
            r2 = c.read_response()
        except (EOFError, ConnectionResetError):
            r2 = None
        check(r2 is not None and r2.status == 400, "%s: the trailing bytes are a 400" % name)
        check(c.is_closed(3), "%s: connection closed" % name)
    else:
        check(r is not None and r.status == want, "%s: answered %s (got %s)" % (name, want, r and r.status))
        check(c.is_closed(3), "%s: connection closed" % name)
    c.close()

# Nothing smuggled reached the upstream: after all that, a clean request on a
# fresh connection is answered normally and the pod saw only clean requests.
r = get(w.port, "/echo")
check(r.status == 200, "proxy still serving after every bad shape")
check(w.p.poll() is None, "weir did not crash")

# Every refusal is in the access log (JSON lines on stdout), including those
# refused before a request existed (bad head bytes, 431).
import json as _json
want_refused = sum(1 for _, _, st in shapes if st is not None) + 1  # + the "\r\n\rX" tail


def logged_refusals():
    logged = [_json.loads(l) for l in w.stdout().splitlines() if l.startswith("{")]
    return [e for e in logged if e.get("status") in (400, 431, 505, 405)]


# the access log writer flushes every 10 ms: poll until they are all there
wait_for(lambda: len(logged_refusals()) >= want_refused, timeout=5)
refused = logged_refusals()
check(len(refused) >= want_refused, "every refused shape is in the access log (%d of %d)" % (len(refused), want_refused))

# The 1.0 client with chunked body on a keep-alive connection can not smuggle
# a second request: the whole connection is closed after the 400.
c = Conn(w.port)
c.send("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
r = c.read_response()
check(r.status == 400, "chunked on HTTP/1.0 refused")
check(c.is_closed(3), "and the smuggled request after it is never read")
c.close()
done()
