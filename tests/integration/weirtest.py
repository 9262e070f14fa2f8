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
    def __init__(self, argv, stdout=subprocess.PIPE, stderr=None, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
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
        super().__init__(argv, stdout=subprocess.PIPE)
        self.addr = None
        self.probe = None
        end = time.time() + 10
        while time.time() < end and (self.addr is None or (probe and self.probe is None)):
            line = self.p.stdout.readline().decode().strip()
            if not line:
                if self.p.poll() is not None:
                    raise RuntimeError("weir-pod exited")
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
