"""weirtest.procs — the processes a test starts: weir, weir-pod, any command.

Every process is started on 127.0.0.1 with a free port, remembered, and
stopped by its PID (never by name) when its case ends or the script exits.
Every wait is bounded in time.

Environment: WEIR_BUILD (meson build dir), WEIR_SRC (source dir).
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

from . import cleanup
from .http import get


BUILD = os.environ.get("WEIR_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "..", "build"))
SRC = os.environ.get("WEIR_SRC", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WEIR = os.path.join(BUILD, "src", "bin", "weir")
WEIRCTL = os.path.join(BUILD, "src", "bin", "weirctl")
WEIR_POD = os.path.join(BUILD, "src", "bin", "weir-pod")


def free_port():
    """A TCP port nothing listens on at this moment (bound to 0, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


def dead_address():
    """127.0.0.1:PORT where nothing listens (connects are refused)."""
    return "127.0.0.1:%d" % free_port()


def tmpdir():
    """A fresh directory for one fixture's files (config, logs, sockets)."""
    return tempfile.mkdtemp(prefix="weirtest-")


class Proc:
    """A child process, stopped (SIGTERM, then SIGKILL) when its case ends."""

    def __init__(self, argv, stdout=subprocess.PIPE, stderr=None, env=None, cwd=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
        cleanup.add(lambda: self.stop(5))

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
    """Stop every process (and other fixture) the script started."""
    cleanup.run_all()


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


def holds_for(pred, seconds, interval=0.05):
    """Poll pred() for `seconds`: True when it held at every poll, False as
    soon as it does not (for "nothing happens" checks, which no event can
    confirm; a slow machine can only make them pass late, never fail)."""
    end = time.time() + seconds
    while True:
        try:
            if not pred():
                return False
        except Exception:
            return False
        if time.time() >= end:
            return True
        time.sleep(interval)


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
        cleanup.add(self._out.close)
        cleanup.add(self._err.close)
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
