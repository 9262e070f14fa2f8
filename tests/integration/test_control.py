"""The control socket and weirctl end to end (issue 3): every command and
its refusals, the traffic effect of each change, rollback through history,
if-generation, drain with in-flight requests, endpoint add/remove, explain,
reload (command, SIGHUP, file watch, broken file, restart-only settings),
persistence across reload and restart with the newer-wins merge, socket
permissions, the audit log, and protocol abuse (long lines, garbage,
half-written commands) that must never hurt the proxy."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import *  # noqa: E402,F401,F403

v1a = Pod("v1-a", "v1")
v1b = Pod("v1-b", "v1")
v2a = Pod("v2-a", "v2")
v2b = Pod("v2-b", "v2")
v3a = Pod("v3-a", "v3")

CONFIG = """
listen: {listen}
control: {dir}/run/sub/weir.sock
version_header: X-Weir-Version
workers: 2
access_log: false
versions:
  v1:
    endpoints: [%s, %s]
  v2:
    endpoints: [%s]
  v3:
    endpoints: [%s]
split: {{v1: %s, v2: %s}}
rules:
  - header: X-Go-V3
    version: v3
sticky:
  header: X-User-Id
"""


def config_text(w_dir, port, v1="90", v2="10", extra=""):
    return (CONFIG % (v1a.addr, v1b.addr, v2a.addr, v3a.addr, v1, v2)).format(
        listen="127.0.0.1:%d" % port, dir=w_dir) + extra


w = None
SOCK = None


def start_weir(v1="90", v2="10"):
    """A fresh weir for one case (control socket in a created subdirectory)."""
    global w, SOCK
    w = Weir(CONFIG % (v1a.addr, v1b.addr, v2a.addr, v3a.addr, v1, v2))
    SOCK = os.path.join(w.dir, "run", "sub", "weir.sock")
    w.control = SOCK
    return w


def wait_socket():
    """weir opens its listeners before the control socket: wait for both."""
    return wait_for(lambda: os.path.exists(SOCK) and jctl("status")[0] == 0, 10)


def restart():
    w.start()
    wait_socket()


def ctl(*args):
    return weirctl(*args, socket_path=SOCK)


def jctl(*args):
    rc, out, err = weirctl("--json", *args, socket_path=SOCK)
    try:
        return rc, json.loads(out)
    except ValueError:
        return rc, {"raw": out, "stderr": err}


def reloads():
    """How many reloads weir logged as done (by any trigger)."""
    return w.stderr().count("reloaded %s (generation" % w.config)


def gen():
    return jctl("status")[1]["generation"]


def versions_of(n, headers=None):
    """Versions serving n requests sent one after another on one connection."""
    c = Conn(w.port)
    out = []
    req = "GET / HTTP/1.1\r\nHost: t\r\n"
    for k, v in (headers or {}).items():
        req += "%s: %s\r\n" % (k, v)
    req += "\r\n"
    for _ in range(n):
        c.send(req)
        r = c.read_response()
        out.append((r.status, r.header("X-Weir-Version"), r.header("X-Pod")))
    c.close()
    return out


def use_good_file():
    """Replace the config by the 35/65 file the reload case ends with, reload
    it, and return its text."""
    good = config_text(w.dir, w.port, "35", "65")
    write_atomic(w.config, good)
    rc, a = jctl("reload")
    if rc != 0 or a["split"]["v1"] != 35:
        raise RuntimeError("could not load the 35/65 config: %s" % a)
    return good


@case
def control_socket():
    start_weir()
    # ---- the socket itself ---------------------------------------------------
    check(wait_socket(), "control socket answers")
    st = os.stat(SOCK)
    check(stat.S_ISSOCK(st.st_mode), "control socket created (parent directories made)")
    check(stat.S_IMODE(st.st_mode) == 0o600, "socket mode 0600 by default (%o)" % stat.S_IMODE(st.st_mode))
    check(stat.S_IMODE(os.stat(os.path.dirname(SOCK)).st_mode) == 0o755, "created parent directory is 0755")

    if os.geteuid() == 0:
        # Another user must not get in: connect as nobody in a child process.
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                "try:\n s.connect(sys.argv[1]); print('connected')\n"
                "except PermissionError: print('denied')\n")
        r = subprocess.run(["/usr/bin/python3", "-c", code, SOCK], stdout=subprocess.PIPE,
                           preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=10)
        check(r.stdout.decode().strip() == "denied", "another user cannot connect to a 0600 socket")


@case
def status_help_exit_codes():
    start_weir()
    wait_socket()
    # ---- status ----------------------------------------------------------------
    rc, out, err = ctl("status")
    check(rc == 0, "weirctl status exits 0")
    check("VERSION" in out and v1a.addr in out and "DRAINING" in out, "human status is a table:\n" + out)
    rc, st = jctl("status")
    check(rc == 0 and st["ok"] is True, "status --json ok")
    check(st["split"] == {"v1": 90, "v2": 10, "v3": 0}, "split as numbers, versions left out are 0: %s" % st["split"])
    check(isinstance(st["generation"], int) and st["generation"] >= 1, "generation is a number")
    eps = st["versions"]["v1"]["endpoints"]
    check([e["address"] for e in eps] == [v1a.addr, v1b.addr] and
          all(e["healthy"] is True and e["draining"] is False and e["inflight"] == 0 for e in eps),
          "v1 endpoints listed with healthy/draining/inflight")
    raw = w.command("status")
    check(raw.endswith("\n") and raw.count("\n") == 1, "answer is exactly one line")

    # ---- help -------------------------------------------------------------------
    rc, out, err = weirctl("help", socket_path="/nonexistent/weir.sock")
    check(rc == 0 and "split VERSION=PERCENT" in out and "drain VERSION ADDRESS" in out,
          "weirctl help works without a server, from the command table")
    rc, hj = jctl("help")
    names_server = [c["name"] for c in json.loads(w.command("help"))["commands"]]
    check([c["name"] for c in hj["commands"]] == names_server, "weirctl help and the server's help list the same commands")
    for name in ("status", "split", "flip", "rollback", "reload", "help", "drain", "undrain",
                 "add-endpoint", "remove-endpoint", "explain"):
        check(name in names_server, "help lists %s" % name)

    # ---- weirctl exit codes ---------------------------------------------------
    check(weirctl(socket_path=SOCK)[0] == 2, "weirctl without a command exits 2")
    check(weirctl("--bogus", "status", socket_path=SOCK)[0] == 2, "unknown option exits 2")
    rc, out, err = weirctl("status", socket_path=os.path.join(w.dir, "nope.sock"))
    check(rc == 2 and "cannot connect" in err, "connection error exits 2: %s" % err.strip())
    rc, out, err = weirctl("status", env={"WEIR_SOCKET": SOCK})
    check(rc == 0 and "VERSION" in out, "WEIR_SOCKET names the socket")
    rc, out, err = ctl("split", "v1=5")
    check(rc == 1 and "sums to 5" in err, "refused command exits 1 with the reason: %s" % err.strip())


@case
def split_flip_refusals_rollback():
    start_weir()
    wait_socket()
    # ---- split / flip and their effect on traffic ----------------------------
    g = gen()
    rc, a = jctl("split", "v1=0", "v2=100")
    check(rc == 0 and a["ok"] and a["generation"] == g + 1, "split applied, generation + 1")
    vs = versions_of(20)
    check(all(s == 200 and v == "v2" for s, v, p in vs), "every request after the answer goes to v2")
    rc, a = jctl("flip", "v1")
    check(rc == 0 and a["split"] == {"v1": 100, "v2": 0, "v3": 0}, "flip v1: v1 100, others 0")
    vs = versions_of(20)
    check(all(v == "v1" for s, v, p in vs), "after flip v1 every request goes to v1")
    check({p for s, v, p in vs} == {"v1-a", "v1-b"}, "both v1 endpoints serve")
    rc, a = jctl("split", "v1=50", "v2=50")
    vs = versions_of(100)
    n2 = sum(1 for s, v, p in vs if v == "v2")
    check(30 <= n2 <= 70, "50/50 split serves both versions (%d of 100 on v2)" % n2)
    rc, a = jctl("split", "v1=87.5", "v2=12.5")
    check(rc == 0 and a["split"]["v1"] == 87.5, "decimal split accepted, answered as a number")

    # ---- refusals change nothing ----------------------------------------------
    g = gen()
    refusals = [
        (("split", "v1=50"), "sums to 50"),
        (("split", "v1=50", "v9=50"), "unknown version"),
        (("split", "v1=abc", "v2=100"), "bad percent"),
        (("split", "v1=33.333", "v2=66.667"), "two decimals"),
        (("split", "v1=50", "v1=50"), "twice"),
        (("split",), "usage"),
        (("flip", "v9"), "unknown version"),
        (("flip",), "usage"),
        (("drain", "v1", "127.0.0.1:1"), "no endpoint"),
        (("drain", "v1", "garbage"), "bad endpoint address"),
        (("undrain", "v9", v1a.addr), "unknown version"),
        (("add-endpoint", "v1", v1a.addr), "already has"),
        (("remove-endpoint", "v3", v3a.addr), "no endpoints"),
        (("remove-endpoint", "v2", "127.0.0.1:1"), "no endpoint"),
        (("remove-rule", "5"), "no rule"),
        (("add-rule", "version=v9", "header=X"), "unknown version"),
        (("explain", "garbage"), "expected a header"),
        (("frobnicate",), "unknown command"),
        (("status", "if-generation=1"), "only to commands that change"),
    ]
    for args, needle in refusals:
        rc, a = jctl(*args)
        # Usage errors (missing arguments, unknown command) exit 2, as --help says.
        want = 2 if needle in ("usage", "unknown command") else 1
        check(rc == want and a.get("ok") is False and needle in a.get("error", ""),
              "refused (exit %d): %s -> %s" % (want, " ".join(args), a.get("error")))
    check(gen() == g, "refusals leave the generation unchanged")
    check(jctl("status")[1]["split"]["v1"] == 87.5, "refusals leave the split unchanged")

    # ---- if-generation --------------------------------------------------------
    g = gen()
    rc, a = jctl("split", "v1=60", "v2=40", "if-generation=%d" % (g - 1))
    check(rc == 1 and "generation is %d" % g in a["error"], "stale if-generation refused: %s" % a.get("error"))
    rc, a = jctl("split", "v1=60", "v2=40", "if-generation=%d" % g)
    check(rc == 0 and a["generation"] == g + 1, "current if-generation accepted")
    rc, a = jctl("flip", "v2", "if-generation=%d" % g)
    check(rc == 1, "the same if-generation again is refused (compare-and-set)")

    # ---- rollback walks back --------------------------------------------------
    expect = [{"v1": 87.5, "v2": 12.5, "v3": 0}, {"v1": 50, "v2": 50, "v3": 0},
              {"v1": 100, "v2": 0, "v3": 0}, {"v1": 0, "v2": 100, "v3": 0}]
    for i, sp in enumerate(expect):
        rc, a = jctl("rollback")
        check(rc == 0 and a["split"] == sp, "rollback %d restores %s (got %s)" % (i + 1, sp, a.get("split")))
    vs = versions_of(10)
    check(all(v == "v2" for s, v, p in vs), "rolled-back split routes traffic (all v2)")
    rc, a = jctl("history")
    check(rc == 0 and len(a["history"]) == 1, "one change left in the history")
    rc, a = jctl("rollback")
    check(rc == 0 and a["split"] == {"v1": 90, "v2": 10, "v3": 0}, "rollback to the config file's split")
    rc, a = jctl("rollback")
    check(rc == 1 and "nothing to roll back" in a["error"], "rollback with an empty history refused: %s" % a.get("error"))


@case
def drain():
    start_weir()
    wait_socket()
    # ---- drain: no new requests, in-flight ones finish, status counts them -----
    jctl("flip", "v1")
    rc, a = jctl("drain", "v1", v1a.addr)
    check(rc == 0, "drain v1 " + v1a.addr)
    vs = versions_of(20)
    check(all(p == "v1-b" and s == 200 for s, v, p in vs), "a drained endpoint gets no new requests")
    ep = endpoint_status(w, "v1", v1a.addr)
    check(ep and ep["draining"] is True, "status shows draining true")
    rc, out, err = ctl("status")
    cols = out.split(v1a.addr)[1].split("\n")[0].split()
    check(cols[:2] == ["yes", "yes"], "human status shows healthy and draining: %s" % cols)
    rc, a = jctl("undrain", "v1", v1a.addr)
    vs = versions_of(20)
    check({p for s, v, p in vs} == {"v1-a", "v1-b"}, "undrained endpoint serves again")

    # in-flight requests on a drained endpoint: three slow requests to v3
    results = []


    def slow():
        try:
            r = get(w.port, "/sleep/2500", headers={"X-Go-V3": "1"})
            results.append(r.status)
        except Exception as e:  # noqa: BLE001
            results.append(str(e))


    threads = [threading.Thread(target=slow) for _ in range(3)]
    for t in threads:
        t.start()
    check(wait_for(lambda: endpoint_status(w, "v3", v3a.addr)["inflight"] == 3, 5),
          "three requests in flight on v3")
    rc, a = jctl("drain", "v3", v3a.addr)
    check(rc == 0 and "no endpoint taking new requests" in a.get("warning", ""),
          "draining a version's only endpoint warns: %s" % a.get("warning"))
    ep = endpoint_status(w, "v3", v3a.addr)
    check(ep["draining"] is True and ep["inflight"] == 3, "status: draining with 3 in flight (%s)" % ep)
    r = get(w.port, "/", headers={"X-Go-V3": "1"})
    check(r.status == 503, "new request to the drained-only version gets 503")
    for t in threads:
        t.join(10)
    check(results == [200, 200, 200], "in-flight requests finished where they were: %s" % results)
    check(wait_for(lambda: endpoint_status(w, "v3", v3a.addr)["inflight"] == 0, 5), "inflight back to 0")
    jctl("undrain", "v3", v3a.addr)


@case
def add_remove_endpoints():
    start_weir()
    wait_socket()
    # ---- add / remove endpoints -----------------------------------------------
    jctl("flip", "v2")
    rc, a = jctl("add-endpoint", "v2", v2b.addr, "weight=2")
    check(rc == 0, "add-endpoint v2 " + v2b.addr)
    vs = versions_of(30)
    pods = [p for s, v, p in vs]
    check(pods.count("v2-b") == 20 and pods.count("v2-a") == 10, "added endpoint takes its weighted share: %s" %
          {p: pods.count(p) for p in set(pods)})
    rc, a = jctl("remove-endpoint", "v2", v2b.addr)
    check(rc == 0 and endpoint_status(w, "v2", v2b.addr) is None, "remove-endpoint")
    vs = versions_of(10)
    check(all(p == "v2-a" for s, v, p in vs), "removed endpoint gets no requests")


@case
def explain_and_rules():
    start_weir()
    wait_socket()
    jctl("flip", "v2")
    # ---- explain ---------------------------------------------------------------
    rc, a = jctl("explain", "GET", "/", "X-Go-V3: yes")
    check(rc == 0 and a["version"] == "v3" and a["reason"] == "rule" and a["rule"] == 0,
          "explain: rule index 0 -> v3")
    rc, a = jctl("explain", "X-User-Id:", "42")
    check(rc == 0 and a["reason"] == "sticky" and isinstance(a["bucket"], int), "explain: sticky bucket %s" % a.get("bucket"))
    rc, a = jctl("explain", "GET", "/x")
    check(rc == 0 and a["reason"] == "split" and a["version"] == "v2", "explain: split")
    rc, out, err = ctl("explain", "GET", "/", "X-Go-V3: yes")
    check(rc == 0 and "v3" in out and "rule 0" in out, "human explain: " + out.strip())
    rc, a = jctl("add-rule", "header=X-Beta", "value=on", "version=v1", "at=0")
    check(rc == 0 and versions_of(3, {"X-Beta": "on"})[0][1] == "v1", "add-rule routes matching requests")
    rc, a = jctl("remove-rule", "0")
    check(rc == 0 and versions_of(3, {"X-Beta": "on"})[0][1] == "v2", "remove-rule")


@case
def protocol_abuse():
    start_weir()
    wait_socket()
    # ---- protocol abuse --------------------------------------------------------
    c = CtlConn(SOCK)
    c.send(b"status\nsplit v1=10 v2=90\r\n\n  \nbogus\n")
    answers = [json.loads(c.read_line()) for _ in range(3)]
    check(answers[0]["ok"] and answers[1]["ok"] and not answers[2]["ok"],
          "several commands on one connection, CRLF accepted, blank lines ignored")
    c.send(b"x" * 5000 + b"\nstatus\n")
    a1, a2 = json.loads(c.read_line()), json.loads(c.read_line())
    check(not a1["ok"] and "too long" in a1["error"] and a2["ok"], "over-long line refused, connection still usable")
    c.send(b"y" * 3000)
    time.sleep(0.1)  # let weir read the first piece on its own
    c.send(b"y" * 3000 + b"\nstatus\n")
    a1, a2 = json.loads(c.read_line()), json.loads(c.read_line())
    check(not a1["ok"] and a2["ok"], "over-long line in pieces discarded up to its newline")
    c.send(b"explain X-A: " + b"a" * (4096 - 13) + b"\n")
    check(json.loads(c.read_line())["ok"], "a 4096-byte line is accepted")
    c.send(b"status \xff\xfe\x00\x01\n")
    a = json.loads(c.read_line())
    check(not a["ok"], "binary garbage refused with valid JSON")
    c.send(bytes(b for b in range(256) if b != 10) * 4 + b"\n")
    check(json.loads(c.read_line())["ok"] is False, "every byte value: one JSON error line")
    c.close()
    g = gen()
    c = CtlConn(SOCK)
    c.send(b"flip v1\nsplit v1=5")
    c.s.shutdown(socket.SHUT_WR)
    a1 = json.loads(c.read_line())
    a2 = json.loads(c.read_line())
    check(a1["ok"] and not a2["ok"] and "incomplete" in a2["error"], "half-written command at EOF is not executed")
    check(gen() == g + 1, "only the complete command applied")
    c.close()
    for _ in range(20):  # connect and vanish, mid-command
        s = socket.socket(socket.AF_UNIX)
        s.connect(SOCK)
        s.send(b"split v1=")
        s.close()
    c = CtlConn(SOCK)
    c.send(b"status\n" * 3000)  # answers pile up unread, then are read
    n = 0
    for _ in range(3000):
        if json.loads(c.read_line())["ok"]:
            n += 1
    check(n == 3000, "3000 pipelined commands, 3000 answers")
    c.close()
    check(w.p.poll() is None and get(w.port).status == 200, "weir still serves after the abuse")


@case
def audit_log():
    start_weir()
    wait_socket()
    ctl("split", "v1=5")
    jctl("flip", "v1")
    # ---- audit log ---------------------------------------------------------------
    jctl("split", "v1=70", "v2=30")
    log = w.stderr()
    check("uid=%d pid=" % os.getuid() in log and "\"split v1=70 v2=30\" applied" in log and
          "split v1=100 -> v1=70,v2=30" in log,
          "mutating commands logged with uid, pid and the change")
    check("refused: split sums to 5" in log, "refused mutating commands logged too")


@case
def reload_and_watch():
    start_weir()
    wait_socket()
    jctl("split", "v1=70", "v2=30")
    # ---- reload: command, SIGHUP, watch, broken file, restart-only settings ----
    # runtime split v1=70 v2=30 stands; the file changes the split (newer): file wins
    write_atomic(w.config, config_text(w.dir, w.port, "20", "80", "watch: false\n"))
    rc, a = jctl("reload")
    check(rc == 0 and a["split"] == {"v1": 20, "v2": 80, "v3": 0}, "reload: the newer file split wins (%s)" % a.get("split"))
    check("config file wins for split" in w.stderr(), "the log says the file won")
    write_atomic(w.config, config_text(w.dir, w.port, "30", "70", "watch: false\n"))
    check(holds_for(lambda: jctl("status")[1]["split"]["v1"] == 20, 1.0),
          "watch: false: a changed file is not reloaded by itself")
    w.signal(signal.SIGHUP)
    check(wait_for(lambda: jctl("status")[1]["split"]["v1"] == 30, 5), "SIGHUP reloads")
    # the watch (turned back on by the file itself, then a plain atomic rename)
    write_atomic(w.config, config_text(w.dir, w.port, "30", "70", "watch: true\n"))
    n = reloads()
    w.signal(signal.SIGHUP)
    check(wait_for(lambda: reloads() > n, 5), "SIGHUP reload turns the watch on")
    write_atomic(w.config, config_text(w.dir, w.port, "35", "65"))
    check(wait_for(lambda: jctl("status")[1]["split"]["v1"] == 35, 5), "file watch reloads an atomically replaced file")
    g = gen()
    with open(w.config, "a") as f:  # in-place append
        f.write("# comment\n")
    check(wait_for(lambda: gen() == g + 1, 5) and holds_for(lambda: gen() == g + 1, 0.8),
          "in-place write reloaded once (generation %d -> %d)" % (g, gen()))
    os.utime(w.config)
    check(holds_for(lambda: gen() == g + 1, 0.6), "touch without a change does not reload")

    g = gen()
    with open(w.config) as f:
        good = f.read()
    bad = good.replace("split: {v1: 35, v2: 65}", "split: {v1: 35, v2: 6x5}")
    with open(w.config + ".bad", "w") as f:
        f.write(bad)
    os.rename(w.config + ".bad", w.config)
    check(wait_for(lambda: "%s changed but has errors" % w.config in w.stderr(), 5),
          "the watch refuses the broken file and logs it")
    rc, a = jctl("reload")
    check(rc == 1 and ("%s:" % w.config) in a["error"] and "6x5" in a["error"],
          "broken file refused with FILE:LINE:COL: %s" % a.get("error"))
    check(gen() == g and jctl("status")[1]["split"]["v1"] == 35, "broken file: running config kept (watch too)")
    check("reload refused" in w.stderr(), "the refusal is logged as such")
    new_port = free_port()
    n = reloads()
    write_atomic(w.config, good.replace("127.0.0.1:%d" % w.port, "127.0.0.1:%d" % new_port)
                 .replace("workers: 2", "workers: 3"))
    check(wait_for(lambda: reloads() > n, 5), "the watch reloads the file with restart-only changes")
    rc, a = jctl("reload")
    check(rc == 0 and a.get("restart_required") == ["listen", "workers"],
          "listen/workers changes reported as needing a restart: %s" % a.get("restart_required"))
    check(get(w.port).status == 200, "still listening on the old port")


@case
def persistence_across_restart():
    start_weir()
    wait_socket()
    good = use_good_file()
    # ---- persistence across restart -----------------------------------------
    jctl("split", "v1=15", "v2=85")
    jctl("drain", "v1", v1b.addr)
    jctl("add-endpoint", "v2", v2b.addr)
    hist = len(jctl("history")[1]["history"])
    state_file = SOCK + ".state"
    check(os.path.exists(state_file) and stat.S_IMODE(os.stat(state_file).st_mode) == 0o600,
          "state file next to the socket, mode 0600")
    rc = w.stop()
    check(rc == 0, "weir stops cleanly (exit %s)" % rc)
    check(not os.path.exists(SOCK), "socket removed at stop")
    restart()
    st = jctl("status")[1]
    check(st["split"] == {"v1": 15, "v2": 85, "v3": 0}, "split survives a restart: %s" % st["split"])
    check(endpoint_status(w, "v1", v1b.addr)["draining"] is True, "drain survives a restart")
    check(endpoint_status(w, "v2", v2b.addr) is not None, "added endpoint survives a restart")
    check(len(jctl("history")[1]["history"]) == hist, "history survives a restart")
    check("restoring runtime state" in w.stderr(), "the log says the state was restored")
    rc, out, err = ctl("status")
    check("runtime changes" in out and "split" in out, "human status lists the runtime changes")
    vs = versions_of(20)
    check(all(p != "v1-b" for s, v, p in vs) and any(p == "v2-b" for s, v, p in vs),
          "restored drain and endpoint apply to traffic")
    jctl("rollback")
    check(endpoint_status(w, "v2", v2b.addr) is None, "rollback after restart walks the saved history")

    # a file edit older than the runtime change loses; the log says so
    old = time.time() - 3600
    n = reloads()
    write_atomic(w.config, good.replace("split: {v1: 35, v2: 65}", "split: {v1: 45, v2: 55}"), mtime=old)
    check(wait_for(lambda: reloads() > n, 5), "the watch reloads the older file edit")
    jctl("reload")
    check(jctl("status")[1]["split"]["v1"] == 15, "the newer runtime split wins over an older file edit")
    check("runtime change wins for split" in w.stderr(), "the log says the runtime change won")


@case
def control_mode():
    start_weir()
    wait_socket()
    good = use_good_file()
    # ---- control_mode -----------------------------------------------------------
    w.stop()
    write_atomic(w.config, good.replace("access_log: false", "access_log: false\ncontrol_mode: \"0660\""))
    restart()
    check(stat.S_IMODE(os.stat(SOCK).st_mode) == 0o660, "control_mode 0660 applied")
    # a second weir with the same control path refuses to take the socket over
    cfg2 = os.path.join(w.dir, "second.yaml")
    with open(cfg2, "w") as f:
        f.write(open(w.config).read().replace("127.0.0.1:%d" % w.port, "127.0.0.1:%d" % free_port()))
    p2 = subprocess.run([WEIR, "-c", cfg2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                        env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    check(p2.returncode != 0 and b"in use by another" in p2.stderr, "a second weir does not steal a live socket")
    check(get(w.port).status == 200 and jctl("status")[0] == 0, "the first weir is unaffected")


run()
