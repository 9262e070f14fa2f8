"""weirtest — helpers for weir's integration tests (python3 stdlib only).

Starts real `weir` and `weir-pod` processes on 127.0.0.1 with free ports,
talks raw HTTP/1.1 over sockets, and stops only the processes it started
(by PID). Every wait is bounded in time.

Environment: WEIR_BUILD (meson build dir), WEIR_SRC (source dir).
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("WEIR_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SRC = os.environ.get("WEIR_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
WEIR = os.path.join(BUILD, "src", "bin", "weir")
WEIRCTL = os.path.join(BUILD, "src", "bin", "weirctl")
WEIR_POD = os.path.join(BUILD, "src", "bin", "weir-pod")

_procs = []
_failures = 0
_count = 0


def check(cond, what):
    """Record one assertion, TAP-style; the test exits 1 at the end if any failed."""
    global _failures, _count
    _count += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (_count, what), flush=True)
    if not cond:
        _failures += 1
    return cond


def done():
    print("1..%d" % _count)
    stop_all()
    sys.exit(1 if _failures else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tmpdir():
    d = tempfile.mkdtemp(prefix="weirtest-")
    return d


class Proc:
    def __init__(self, argv, stdout=subprocess.PIPE, stderr=None, env=None, cwd=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
        _procs.append(self)

    @property
    def pid(self):
        return self.p.pid

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def wait(self, timeout=15):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        return self.p.returncode


def stop_all():
    for pr in list(_procs):
        try:
            pr.stop(5)
        except Exception:
            pass
    _procs.clear()


atexit.register(stop_all)


def wait_port(port, host="127.0.0.1", timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            s = socket.create_connection((host, port), timeout=0.5)
            s.close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Pod(Proc):
    """A weir-pod upstream on a free port (it prints `listening ADDR`)."""

    def __init__(self, name, version, probe=False, extra=(), host="127.0.0.1"):
        argv = [WEIR_POD, "--name", name, "--version", version, "--listen", host + ":0"]
        if probe:
            argv += ["--probe", host + ":0"]
        argv += list(extra)
        self._launch(argv, probe)

    def _launch(self, argv, want_probe):
        """Start weir-pod and read back the addresses it prints."""
        Proc.__init__(self, argv, stdout=subprocess.PIPE)
        self.addr = None
        self.probe = None
        end = time.time() + 10
        while time.time() < end and (self.addr is None or (want_probe and self.probe is None)):
            line = self.p.stdout.readline().decode().strip()
            if not line:
                if self.p.poll() is not None:
                    raise RuntimeError("weir-pod exited: %s" % " ".join(argv))
                continue
            if line.startswith("listening "):
                self.addr = line.split()[1]
            elif line.startswith("probe "):
                self.probe = line.split()[1]
        if self.addr is None:
            raise RuntimeError("weir-pod did not report its address")
        self.port = int(self.addr.rsplit(":", 1)[1])


class Weir(Proc):
    """A weir process with a config written from YAML text.

    `yaml` may contain {listen}, {control} and {dir} placeholders."""

    def __init__(self, yaml_text, extra_env=None, start=True, port=None, dirpath=None):
        self.dir = dirpath or tmpdir()
        self.port = port or free_port()
        self.control = os.path.join(self.dir, "weir.sock")
        self.config = os.path.join(self.dir, "weir.yaml")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        text = yaml_text.format(listen="127.0.0.1:%d" % self.port, control=self.control, dir=self.dir)
        with open(self.config, "w") as f:
            f.write(text)
        self.started = False
        if start:
            self.start(extra_env)

    def start(self, extra_env=None):
        env = dict(os.environ)
        if extra_env:
            env.update(extra_env)
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        super().__init__([WEIR, "-c", self.config], stdout=self._out, stderr=self._err, env=env)
        self.started = wait_port(self.port)
        if not self.started:
            raise RuntimeError("weir did not start: " + self.stderr())

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def ctl(self, *args, json_out=True):
        """Run weirctl; returns (exit code, stdout)."""
        argv = [WEIRCTL, "-s", self.control] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return r.returncode, r.stdout.decode()

    def command(self, line, timeout=5.0):
        """One raw control-socket command; returns the answer line."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.control)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return buf.decode()


def endpoints_yaml(pods):
    return "[" + ", ".join(p.addr for p in pods) + "]"


# ---- raw HTTP client ---------------------------------------------------

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


# ---- helpers for endpoint health, retries and discovery (issue 4) --------

import json as _json
import threading as _threading


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it returns a true value (returned) or timeout (None)."""
    end = time.time() + timeout
    while True:
        try:
            v = pred()
        except Exception:
            v = None
        if v:
            return v
        if time.time() >= end:
            return None
        time.sleep(interval)


def status(w):
    """The control socket's `status` answer as a dict."""
    return _json.loads(w.command("status"))


def endpoint_status(w, version, address):
    """One endpoint's entry in `status`, or None when the version lacks it."""
    st = status(w)
    for ep in st["versions"].get(version, {}).get("endpoints", []):
        if ep["address"] == address:
            return ep
    return None


def endpoint_addresses(w, version):
    st = status(w)
    return sorted(ep["address"] for ep in st["versions"].get(version, {}).get("endpoints", []))


class PodAt(Pod):
    """A weir-pod on an exact listen address (host:port, port may be 0) and an
    optional probe address, e.g. several pods on 127.0.0.2:P, 127.0.0.3:P
    sharing one port the way pods behind a DNS name do."""

    def __init__(self, name, version, listen, probe=None, extra=()):
        argv = [WEIR_POD, "--name", name, "--version", version, "--listen", listen]
        if probe:
            argv += ["--probe", probe]
        argv += list(extra)
        self._launch(argv, probe)

    def set_ready(self, ready):
        """POST /ready/on|off on the probe listener (or the main one)."""
        addr = self.probe or self.addr
        host, port = addr.rsplit(":", 1)
        r = get(int(port), "/ready/" + ("on" if ready else "off"), method="POST", body="",
                host=host.strip("[]"))
        return r.status == 200


def free_port_on(hosts):
    """A TCP port free on every one of the given loopback addresses."""
    for _ in range(50):
        port = free_port()
        ok = True
        for h in hosts:
            s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET)
            try:
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


class Load:
    """Steady closed-loop GET load: `threads` keep-alive connections, each
    one request at a time, until stop(). Every answer other than 200, and
    every connection weir closes or breaks, is a failure. Records which pod
    (X-Pod) answered, with the time."""

    def __init__(self, port, threads=4, path="/", headers=None, pause=0.0):
        self.port = port
        self.path = path
        self.headers = headers or {}
        self.pause = pause
        self.ok = 0
        self.failures = []        # (time, description)
        self.served = []          # (time, pod)
        self._lock = _threading.Lock()
        self._stop = _threading.Event()
        self._threads = [_threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        req = "GET %s HTTP/1.1\r\nHost: load\r\n" % self.path
        for k, v in self.headers.items():
            req += "%s: %s\r\n" % (k, v)
        req = (req + "\r\n").encode()
        c = None
        while not self._stop.is_set():
            try:
                if c is None:
                    c = Conn(self.port, timeout=10.0)
                c.send(req)
                r = c.read_response()
                now = time.time()
                with self._lock:
                    if r.status == 200:
                        self.ok += 1
                        self.served.append((now, r.header("X-Pod")))
                    else:
                        self.failures.append((now, "status %d: %r" % (r.status, r.body[:80])))
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:  # a broken or closed client connection
                with self._lock:
                    self.failures.append((time.time(), "%s: %s" % (type(e).__name__, e)))
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.01)
            if self.pause:
                time.sleep(self.pause)
        if c is not None:
            c.close()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)
        return self

    def pods_since(self, t0):
        with self._lock:
            return [p for (t, p) in self.served if t >= t0]

    def count(self):
        with self._lock:
            return self.ok + len(self.failures)


class Dnsmasq(Proc):
    """dnsmasq (Debian dnsmasq-base) serving `domain` from a hosts file on
    127.0.0.1:PORT, unprivileged. Names under `domain` that the file lacks
    are NXDOMAIN (--local); set() rewrites the file and sends SIGHUP."""

    BIN = "/usr/sbin/dnsmasq"

    def __init__(self, dirpath, domain="weir.test", port=None):
        self.domain = domain
        self.hosts = os.path.join(dirpath, "dns.hosts")
        self.log_path = os.path.join(dirpath, "dnsmasq.log")
        self.records = {}
        self._write()
        self._log = open(self.log_path, "ab")
        # dnsmasq binds UDP and TCP on its port; a port free for UDP may be
        # taken for TCP by another process, so try a few when none is given.
        for attempt in range(5):
            self.port = port or self._free_udp_port()
            super().__init__([self.BIN, "--no-daemon", "--port=%d" % self.port,
                              "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                              "--no-hosts", "--addn-hosts=" + self.hosts, "--local=/%s/" % domain,
                              "--pid-file=", "--log-facility=-", "--cache-size=0"],
                             stdout=self._log, stderr=self._log)
            if wait_for(lambda: self.query_ok() or self.p.poll() is not None, timeout=10) \
                    and self.p.poll() is None:
                return
            self.stop(2)
            if port:
                break
        raise RuntimeError("dnsmasq did not start")

    @staticmethod
    def _free_udp_port():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def _write(self):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            for name, ips in sorted(self.records.items()):
                for ip in ips:
                    f.write("%s %s\n" % (ip, name))
        os.rename(tmp, self.hosts)

    def set(self, name, ips):
        """Make `name` resolve to exactly `ips` (IPv4 and/or IPv6)."""
        self.records[name] = list(ips)
        if not ips:
            del self.records[name]
        self._write()
        self.signal(signal.SIGHUP)

    def query_ok(self):
        """True when the server answers a query (any rcode)."""
        import struct
        pkt = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
        for part in ("probe." + self.domain).split("."):
            pkt += bytes([len(part)]) + part.encode()
        pkt += b"\0" + struct.pack(">HH", 1, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(pkt, ("127.0.0.1", self.port))
            d, _ = s.recvfrom(4096)
            return d[:2] == pkt[:2]
        except OSError:
            return False
        finally:
            s.close()


class Upstream:
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
        self._lock = _threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self._closed = False
        _threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            _threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        import struct
        buf = b""
        c.settimeout(10)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                hdrs = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                if self.mode != "reset_head":
                    while len(buf) < n:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                body, buf = buf[:n], buf[n:]
                with self._lock:
                    self.seen.append((method, path, hdrs.get("x-id"), body))
                if self.mode in ("reset_head", "reset_body"):
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                out = self.name.encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pod: %s\r\n\r\n%s"
                          % (len(out), out, out))
        except OSError:
            return
        finally:
            c.close()

    def ids(self):
        with self._lock:
            return [s[2] for s in self.seen]

    def close(self):
        self._closed = True
        self.sock.close()


# ---- control socket helpers (issue 3: control.c, weirctl, watch) ---------

def weirctl(*args, socket_path=None, env=None, timeout=15):
    """Run weirctl with these arguments (add "-s", path yourself or pass
    socket_path). Returns (exit code, stdout, stderr) as text."""
    argv = [WEIRCTL] + (["-s", socket_path] if socket_path else []) + list(args)
    full_env = dict(os.environ)
    full_env.pop("WEIR_SOCKET", None)
    if env:
        full_env.update(env)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=full_env)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class CtlConn:
    """A persistent control-socket connection: several commands, one answer
    line each (parsed as JSON by ask(), raw by ask_raw())."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("control connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def ask_raw(self, line):
        self.send(line + "\n")
        return self.read_line()

    def ask(self, line):
        return _json.loads(self.ask_raw(line))

    def close(self):
        self.s.close()


def write_atomic(path, text, mtime=None):
    """Replace a file by rename (as editors and config management do);
    mtime (seconds since the epoch) sets its modification time."""
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.rename(tmp, path)


class ConfigMapDir:
    """A directory laid out like a Kubernetes ConfigMap volume: FILE is a
    symlink to ..data/FILE, ..data a symlink to a timestamped directory.
    update() writes a new timestamped directory and swaps ..data atomically
    (rename of a temporary symlink), then deletes the old one — exactly the
    kubelet's AtomicWriter sequence."""

    def __init__(self, dirpath, filename, text):
        self.dir = dirpath
        self.filename = filename
        self.path = os.path.join(dirpath, filename)
        self.n = 0
        self.current = None
        os.makedirs(dirpath, exist_ok=True)
        self.update(text)
        os.symlink(os.path.join("..data", filename), self.path)

    def update(self, text):
        self.n += 1
        ts = "..%s_%06d" % (time.strftime("%Y_%m_%d_%H_%M_%S"), self.n)
        os.mkdir(os.path.join(self.dir, ts))
        with open(os.path.join(self.dir, ts, self.filename), "w") as f:
            f.write(text)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        if self.current:
            old = os.path.join(self.dir, self.current)
            os.remove(os.path.join(old, self.filename))
            os.rmdir(old)
        self.current = ts


# ---- admin listener, metrics and access log helpers (issue 6) -----------

def admin_get(port, path, method="GET", headers=None):
    """One request to the admin listener; returns a Response."""
    return get(port, path, method=method, headers=headers)


def parse_prom(text):
    """Parse Prometheus text exposition (0.0.4). Returns (samples, types):
    samples maps (name, frozenset of (label, value)) to a float; types maps a
    family name to its TYPE. Raises ValueError on a line it cannot read or a
    duplicate series."""
    samples = {}
    types = {}

    def unescape(v):
        out, i = [], 0
        while i < len(v):
            if v[i] == "\\" and i + 1 < len(v):
                out.append({"n": "\n", "\\": "\\", '"': '"'}.get(v[i + 1], "\\" + v[i + 1]))
                i += 2
            else:
                out.append(v[i])
                i += 1
        return "".join(out)

    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        labels = []
        if "{" in line:
            name, rest = line.split("{", 1)
            i = 0
            while rest[i] != "}":
                eq = rest.index("=", i)
                lname = rest[i:eq]
                if rest[eq + 1] != '"':
                    raise ValueError("bad label in %r" % line)
                j = eq + 2
                val = []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        val.append(rest[j:j + 2])
                        j += 2
                    else:
                        val.append(rest[j])
                        j += 1
                labels.append((lname, unescape("".join(val))))
                i = j + 1
                if rest[i] == ",":
                    i += 1
            value = rest[i + 1:].strip().split(" ")[0]
        else:
            name, value = line.split(" ")[:2]
        key = (name, frozenset(labels))
        if key in samples:
            raise ValueError("duplicate series %r" % line)
        samples[key] = float(value)
    return samples, types


def prom_select(samples, name, **labels):
    """{frozenset(labels): value} of the series of `name` whose labels
    include the given ones."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def prom_value(samples, name, **labels):
    """The value of the one series with exactly these labels, or None."""
    return samples.get((name, frozenset(labels.items())))


def prom_sum(samples, name, **labels):
    return sum(prom_select(samples, name, **labels).values())


def scrape(admin_port):
    """GET /metrics and parse it: (samples, types, raw text)."""
    r = admin_get(admin_port, "/metrics")
    if r.status != 200:
        raise RuntimeError("/metrics answered %d" % r.status)
    text = r.body.decode()
    samples, types = parse_prom(text)
    return samples, types, text


def png_pixels(path):
    """Decode a non-interlaced 8-bit RGB/RGBA PNG (what Chromium writes) with
    zlib. Returns (width, height, rows), each row a list of (r, g, b)."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif typ == b"IDAT":
            idat += chunk
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d colour type %d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        ftype = raw[i]
        cur = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                cur[x] = (cur[x] + a) & 255
            elif ftype == 2:
                cur[x] = (cur[x] + b) & 255
            elif ftype == 3:
                cur[x] = (cur[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (cur[x] + pr) & 255
        rows.append([tuple(cur[k:k + 3]) for k in range(0, stride, bpp)])
        prev = cur
    return w, h, rows


CHROMIUM = "/usr/bin/chromium"


def chromium(url, screenshot=None, dump_dom=False, size=(1200, 900), timeout=90, budget_ms=None):
    """Run headless Chromium on url: take a screenshot to the given path, or
    return the DOM after load (dump_dom). Returns (exit code, stdout text)."""
    import shutil
    profile = tempfile.mkdtemp(prefix="weirtest-chromium-")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile,
            "--window-size=%d,%d" % size]
    if budget_ms:
        argv.append("--virtual-time-budget=%d" % budget_ms)
    if screenshot:
        argv.append("--screenshot=" + screenshot)
    if dump_dom:
        argv.append("--dump-dom")
    argv.append(url)
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=timeout, cwd=profile)
        return r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def fnv1a_bucket(key):
    """The sticky bucket of a key, as weir computes it (FNV-1a 64 % 10000)."""
    h = 14695981039346656037
    for b in key.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % 10000


def dead_address():
    """127.0.0.1:PORT where nothing listens (connects are refused)."""
    return "127.0.0.1:%d" % free_port()
