"""k8s/seccomp/weir.json, the Localhost seccomp profile of the
seccomp-io-uring overlay, as a node would apply it (loaded with libseccomp
before exec, like runc; tests/integration/seccomp_exec.py):

- the profile refuses what it does not list (a probe gets EPERM), and a
  profile without the io_uring calls refuses io_uring_setup, as
  RuntimeDefault does;
- weir under the profile runs its io_uring path (no fallback line),
  proxies, writes its access log, answers weirctl (also under the
  profile), reloads on SIGHUP and stops cleanly on SIGTERM (exit 0): no
  syscall it needs is missing;
- weir under the profile minus io_uring falls back to one syscall per
  read/write, says so once per worker, and proxies the same."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403
from weirtest import procs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCH = os.path.join(HERE, "seccomp_exec.py")
PROFILE = os.path.join(procs.SRC, "k8s", "seccomp", "weir.json")
URING = "io_uring_setup,io_uring_enter,io_uring_register"
# A sanitizer build's LeakSanitizer stops the process with ptrace at exit,
# which the profile (rightly) refuses: leaks are checked by the other tests.
SAN_ENV = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")}

PROBE = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 4, params)
uring = "ok" if fd >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
r = libc.syscall(165, b"none", b"/tmp", b"tmpfs", 0, None)  # mount(2): never listed
print(uring, errno.errorcode.get(ctypes.get_errno(), "?") if r < 0 else "mounted")
"""


def under(deny, argv):
    return ["/usr/bin/python3", LAUNCH, PROFILE] + \
        (["--deny", deny] if deny else []) + ["--"] + argv


def probe(deny):
    r = subprocess.run(under(deny, ["/usr/bin/python3", "-c", PROBE]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout.decode().split(), r.stderr.decode()[-300:]


rc, out, err = probe(None)
check(rc == 0 and len(out) == 2 and out[1] == "EPERM",
      "the profile refuses an unlisted syscall (mount) with EPERM: %r %s" % (out, err))
io_uring_ok = rc == 0 and out and out[0] == "ok"
rc, out, err = probe(URING)
check(rc == 0 and out and out[0] == "EPERM",
      "without the io_uring calls, io_uring_setup gets EPERM (as under RuntimeDefault): %r %s" % (out, err))

pods = [Pod("a", "v1"), Pod("b", "v2")]
CONF = """
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
workers: 2
access_log: {{enabled: true, format: json, path: {dir}/access.log}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: %d, v2: %d}}
"""


def run(deny, label):
    admin = free_port()
    # Weir's files and helpers, started through the launcher (which execs
    # weir: the pid, the signals and the exit code are weir's own).
    w = Weir(CONF % (admin, pods[0].addr, pods[1].addr, 100, 0), start=False)
    env = dict(os.environ, **SAN_ENV)
    env.pop("WEIR_IO_URING", None)
    w._out = open(w.stdout_path, "ab")
    w._err = open(w.stderr_path, "ab")
    Proc.__init__(w, under(deny, [procs.WEIR, "-c", w.config]), stdout=w._out, stderr=w._err, env=env)
    w.started = wait_port(w.port)
    check(w.started, "%s: weir starts under the profile%s" %
          (label, "" if w.started else " (%s)" % w.stderr()[-300:]))
    if not w.started:
        return
    fell_back = bool(wait_for(lambda: w.stderr().count("io_uring unavailable") >= 2,
                              timeout=5 if deny else 0.5))
    if deny:
        check(fell_back, "%s: each worker says io_uring is unavailable and falls back" % label)
    elif io_uring_ok:
        check(not fell_back, "%s: io_uring path on (no fallback line)" % label)
    bad = []
    for i in range(30):
        r = get(w.port, "/echo/%d" % i)
        if r.status != 200 or not r.body.startswith(b"GET /echo/%d " % i):
            bad.append((i, r.status))
    check(not bad, "%s: 30 requests proxied (%s)" % (label, bad[:3]))
    check(wait_for(lambda: os.path.exists(os.path.join(w.dir, "access.log")) and
                   open(os.path.join(w.dir, "access.log")).read().count("\n") >= 30, timeout=5),
          "%s: the access log file has a line per request" % label)
    r = subprocess.run(under(None, [procs.WEIRCTL, "-s", w.control, "--json", "status"]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                       env=dict(os.environ, **SAN_ENV))
    answered = r.returncode == 0 and b'"ok"' in r.stdout
    check(answered, "%s: weirctl under the profile gets an answer%s" %
          (label, "" if answered else " (%s)" % (r.stdout + r.stderr)[-200:]))
    with open(w.config, "w") as f:
        f.write((CONF % (admin, pods[0].addr, pods[1].addr, 0, 100)).format(
            listen="127.0.0.1:%d" % w.port, control=w.control, dir=w.dir))
    w.signal(signal.SIGHUP)
    check(wait_for(lambda: get(w.port, "/").header("X-Pod") == "b", timeout=10),
          "%s: SIGHUP reloads the config (now v2 answers)" % label)
    w.signal(signal.SIGTERM)
    code = w.wait(20)
    check(code == 0, "%s: SIGTERM stops weir with exit 0%s" %
          (label, "" if code == 0 else " (got %r; %s)" % (code, w.stderr()[-300:])))


run(None, "profile")
run(URING, "profile without io_uring")
done()
