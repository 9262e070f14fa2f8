"""weirtest.control — weir's control socket: the `status` answer, weirctl
runs, a persistent connection for several commands.
"""
import json
import os
import socket
import subprocess

from .procs import WEIRCTL


def status(w):
    """The control socket's `status` answer as a dict."""
    return json.loads(w.command("status"))


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
        return json.loads(self.ask_raw(line))

    def close(self):
        self.s.close()
