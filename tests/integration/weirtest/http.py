"""weirtest.http — raw HTTP/1.1 over sockets, both ends.

Conn/get are a client that sends exact bytes and reads responses with every
framing (Content-Length, chunked with trailers, close-delimited, bodiless);
Upstream is a scripted server for failure shapes weir-pod does not make;
ScriptedServer, read_head, read_exact and parse_head are what scripted
upstreams of single tests build on.
"""
import socket
import struct
import threading

from . import cleanup


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Conn:
    """A raw client connection that can send bytes and read responses."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        r = Response(status, reason, headers, b"", head)
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if head_request or status in (204, 304) or 100 <= status < 200:
            return r
        if te and te.lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while b"\r\n" not in self.buf:
                        self._fill()
                    # trailers end with an empty line
                    while not self.buf.startswith(b"\r\n"):
                        while b"\r\n" not in self.buf:
                            self._fill()
                        _, self.buf = self.buf.split(b"\r\n", 1)
                        while len(self.buf) < 2:
                            self._fill()
                    self.buf = self.buf[2:]
                    break
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
            r.body = body
        elif cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                self._fill()
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def is_closed(self, timeout=2.0):
        """True when the peer closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def get(port, path="/", headers=None, method="GET", body=None, host="127.0.0.1"):
    """One request on a fresh connection; returns a Response."""
    c = Conn(port, host)
    h = {"Host": "test"}
    if headers:
        h.update(headers)
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    if body is not None:
        h["Content-Length"] = str(len(body))
    h["Connection"] = "close"
    for k, v in h.items():
        req += "%s: %s\r\n" % (k, v)
    req += "\r\n"
    data = req.encode() + (body if isinstance(body, bytes) else (body or "").encode())
    c.send(data)
    r = c.read_response(head_request=(method == "HEAD"))
    c.close()
    return r


def admin_get(port, path, method="GET", headers=None):
    """One request to the admin listener; returns a Response."""
    return get(port, path, method=method, headers=headers)


class ScriptedServer:
    """A TCP server on HOST:0 that runs self.serve(conn) in a thread per
    connection: the base of the scripted upstreams. serve() may raise
    OSError; the connection is closed when it returns. Subclasses set their
    own state before calling __init__ (the server starts accepting in it)."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self._closed = False
        cleanup.add(self.close)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        c.settimeout(10)
        try:
            self.serve(c)
        except OSError:
            pass
        finally:
            c.close()

    def serve(self, c):
        raise NotImplementedError

    def close(self):
        self._closed = True
        self.sock.close()


def read_head(c, buf):
    """Read from socket c until buf holds a whole request head. Returns
    (head without its blank line, the bytes after it), or (None, buf) at EOF."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def read_exact(c, buf, n):
    """Read from socket c until buf holds n bytes. Returns (those n bytes,
    the rest), or (None, buf) at EOF."""
    while len(buf) < n:
        d = c.recv(65536)
        if not d:
            return None, buf
        buf += d
    return buf[:n], buf[n:]


def parse_head(head):
    """(method, path, {lower-case name: value}) of a request head."""
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return method, path, hdrs


class Upstream(ScriptedServer):
    """A scripted HTTP/1.1 upstream on 127.0.0.1 (thread per connection) for
    failure shapes weir-pod does not make. mode:
      "ok"          answer 200 with body NAME (keep-alive)
      "reset_head"  read the request head, then reset the connection
      "reset_body"  read the head and the whole Content-Length body, then reset
    Every request seen is recorded as (method, path, X-Id header, body)."""

    def __init__(self, name, mode="ok", host="127.0.0.1"):
        self.name = name
        self.mode = mode
        self.seen = []
        self._lock = threading.Lock()
        super().__init__(host)

    def serve(self, c):
        buf = b""
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            method, path, hdrs = parse_head(head)
            n = int(hdrs.get("content-length", "0"))
            body = b""
            if self.mode != "reset_head":
                body, buf = read_exact(c, buf, n)
                if body is None:
                    return
            with self._lock:
                self.seen.append((method, path, hdrs.get("x-id"), body))
            if self.mode in ("reset_head", "reset_body"):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            out = self.name.encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pod: %s\r\n\r\n%s"
                      % (len(out), out, out))

    def ids(self):
        with self._lock:
            return [s[2] for s in self.seen]
