"""HTTP/1.1 conformance shapes outside test suites found (issue 13: Host
validation, chunk sizes with leading zeros, raw octets in the target; issue
21 item 7: 204 without Content-Length, TRACE refused, an absolute-form
target's authority wins over Host). Exact bytes in and out, checked at a
scripted upstream that records every request head it receives verbatim."""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


class RawUpstream(ScriptedServer):
    """Records each request (head bytes, decoded body) and answers by path:
    /204 a 204 with Content-Length: 0, /zeros a chunked body whose size has
    33 leading zeros, anything else 200 "ok"."""

    def __init__(self):
        self.heads = []
        self.bodies = []
        self.lock = threading.Lock()
        super().__init__()

    def serve(self, c):
        buf = b""
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            lower = head.lower()
            body = b""
            if b"\r\ntransfer-encoding: chunked" in lower:
                while b"\r\n0\r\n\r\n" not in buf and not buf.startswith(b"0\r\n\r\n"):
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                end = buf.index(b"0\r\n\r\n") + 5
                body, buf = buf[:end], buf[end:]
            elif b"\r\ncontent-length: " in lower:
                n = int(lower.split(b"\r\ncontent-length: ")[1].split(b"\r\n")[0])
                body, buf = read_exact(c, buf, n)
                if body is None:
                    return
            with self.lock:
                self.heads.append(head + b"\r\n\r\n")
                self.bodies.append(body)
            path = head.split(b" ")[1]
            if path == b"/204":
                c.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n")
            elif path == b"/zeros":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          b"0" * 33 + b"4e\r\n" + b"z" * 0x4e + b"\r\n" +
                          b"0" * 33 + b"0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def count(self):
        with self.lock:
            return len(self.heads)

    def last(self):
        with self.lock:
            return self.heads[-1], self.bodies[-1]


up = RawUpstream()
w = Weir("""
listen: {listen}
control: {control}
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % up.addr)


def exchange(raw, head_request=False):
    """Send raw bytes on a fresh connection; (response or None, conn)."""
    c = Conn(w.port)
    c.send(raw)
    try:
        return c.read_response(head_request), c
    except (EOFError, ConnectionResetError):
        return None, c


def refused(name, raw, want=400):
    before = up.count()
    r, c = exchange(raw)
    check(r is not None and r.status == want,
          "%s: answered %d (got %s)" % (name, want, r and r.status))
    check(c.is_closed(3), "%s: connection closed" % name)
    check(up.count() == before, "%s: nothing reached the upstream" % name)
    c.close()


# --- issue 13 (1): Host must be uri-host [":" port] (RFC 9112 §3.2)
refused("Host with a space and a slash", b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n")
refused("Host with a tab", b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n")
refused("absolute-form, Host with a space", b"GET http://a/ HTTP/1.1\r\nHost: a b\r\n\r\n")
refused("absolute-form, Host with a tab", b"GET http://a/ HTTP/1.1\r\nHost: a\tb\r\n\r\n")
refused("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n")
refused("Host with a bad port", b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n")
refused("absolute-form with userinfo", b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n")
refused("missing Host on 1.1", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n")
refused("two Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")
r, c = exchange(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
check(r is not None and r.status == 200, "IPv6 literal Host with a port is served")
c.close()

# --- issue 13 (2): chunk sizes with leading zeros, both directions
r, c = exchange(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                b"0" * 33 + b"4e\r\n" + b"y" * 0x4e + b"\r\n0\r\n\r\n")
check(r is not None and r.status == 200, "request chunk size with 33 leading zeros: 200 (got %s)"
      % (r and r.status))
head, body = up.last()
check(head.startswith(b"POST /up ") and body == b"4e\r\n" + b"y" * 0x4e + b"\r\n0\r\n\r\n",
      "upstream got the 0x4e bytes, re-framed (%r)" % body[:20])
c.close()
r, c = exchange(b"GET /zeros HTTP/1.1\r\nHost: a\r\n\r\n")
check(r is not None and r.status == 200 and r.body == b"z" * 0x4e,
      "response chunk size with 33 leading zeros reaches the client whole")
c.close()
refused("chunk size value over 2^60",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
        b"0" * 40 + b"1000000000000000\r\nx\r\n0\r\n\r\n")

# --- issue 13 (3): raw octets >= 0x80 in the target are forwarded unchanged
target = "/странные-символы?q=ü".encode()
r, c = exchange(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
check(r is not None and r.status == 200, "raw UTF-8 target served (got %s)" % (r and r.status))
head, _ = up.last()
check(head.startswith(b"GET " + target + b" HTTP/1.1\r\n"), "upstream got the exact octets: %r"
      % head[:60])
c.close()
r, c = exchange(b"GET /\xff\x80 HTTP/1.1\r\nHost: a\r\n\r\n")
check(r is not None and r.status == 200 and up.last()[0].startswith(b"GET /\xff\x80 HTTP/1.1"),
      "non-UTF-8 high octets forwarded unchanged too")
c.close()
refused("DEL in the target", b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n")
refused("control character in the target", b"GET /\xd1\x01 HTTP/1.1\r\nHost: a\r\n\r\n")
refused("space in the target", b"GET /\xd1\x81 x HTTP/1.1\r\nHost: a\r\n\r\n")
refused("high octet in the method", b"G\xd1T / HTTP/1.1\r\nHost: a\r\n\r\n")

# --- issue 21 (7): 204 carries no Content-Length toward the client
c = Conn(w.port)
c.send(b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n")
r = c.read_response()
check(r.status == 204 and r.header("Content-Length") is None and r.header("X-A") == "1",
      "204 forwarded without Content-Length (%r)" % r.raw_head)
c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
r = c.read_response()
check(r.status == 200 and r.body == b"ok", "the connection carries on after the 204")
c.close()

# --- issue 21 (7): TRACE is refused, like nginx
refused("TRACE", b"TRACE / HTTP/1.1\r\nHost: a\r\nCookie: secret=1\r\n\r\n", 405)

# --- issue 21 (7): an absolute-form target's authority wins over Host
r, c = exchange(b"GET http://target.example:8443/p?q HTTP/1.1\r\nHost: client.example\r\n\r\n")
check(r is not None and r.status == 200, "absolute-form request served")
head, _ = up.last()
check(head.startswith(b"GET /p?q HTTP/1.1\r\nHost: target.example:8443\r\n")
      and b"client.example" not in head, "upstream Host is the target's authority: %r" % head[:70])
c.close()

done()
