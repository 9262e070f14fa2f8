#!/usr/bin/env python3
"""peer_tool.py — the measuring half of bench/peer.sh (stdlib only).

peer.sh starts and stops the processes; this file measures and reports:

  ports N                      N free TCP ports on 127.0.0.1 below 32768
  wait PORT [SECONDS]          until something accepts on 127.0.0.1:PORT
  load ...                     one wrk run, with the CPU time of the proxy's
                               process tree before/after; appends a JSON line
  parse-wrk FILE               wrk --latency output -> JSON
  idle ...                     RSS of the proxy's process tree with 1k and 10k
                               idle client connections; appends a JSON line
  haproxy SOCKET COMMAND       one command over HAProxy's runtime API
  report ...                   medians, ratios, targets -> stdout and README

Every number is from the kernel (/proc) or wrk; nothing is estimated.
"""
import argparse
import errno
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- processes --------------------------------------------------------

def children_of(pid):
    """Direct and indirect children of pid (by parent pid, from /proc)."""
    parents = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def tree(pids):
    allp = []
    for p in pids:
        allp.append(p)
        allp.extend(children_of(p))
    return sorted(set(allp))


def cpu_ticks(pids):
    """utime + stime (clock ticks) summed over pids (all threads of each)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (14, 15)
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def parse_pids(s):
    return [int(x) for x in s.split(",") if x]


# ---- ports --------------------------------------------------------------

def cmd_ports(a):
    got = []
    tried = set()
    rnd = random.Random(os.getpid() ^ int(time.time()))
    while len(got) < a.n:
        p = rnd.randrange(20000, 32000)
        if p in tried:
            continue
        tried.add(p)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            got.append(p)
        except OSError:
            pass
        finally:
            s.close()
    print(" ".join(map(str, got)))


def cmd_wait(a):
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", a.port), timeout=0.5).close()
            return 0
        except OSError:
            time.sleep(0.05)
    print(f"nothing listens on 127.0.0.1:{a.port}", file=sys.stderr)
    return 1


# ---- wrk ------------------------------------------------------------------

UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", v)
    return float(m.group(1)) * UNIT_S[m.group(2)] * 1000.0 if m else None


def parse_wrk(text):
    r = {"requests": 0, "duration_s": 0.0, "non2xx": 0, "sock_errors": 0,
         "p50_ms": None, "p99_ms": None}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        r["requests"] = int(m.group(1))
        r["duration_s"] = float(m.group(2)) * UNIT_S[m.group(3)]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["sock_errors"] = sum(int(x) for x in m.groups())
        r["sock_detail"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, m.groups())))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    r["failed"] = r["non2xx"] + r["sock_errors"]
    return r


def cmd_parse_wrk(a):
    with open(a.file) as f:
        r = parse_wrk(f.read())
    for kv in a.set or []:
        k, _, v = kv.partition("=")
        try:
            r[k] = int(v)
        except ValueError:
            r[k] = v
    line = json.dumps(r)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    print(line)


def cmd_load(a):
    pids = tree(parse_pids(a.pids))
    upids = parse_pids(a.upstream_pids) if a.upstream_pids else []
    la0 = loadavg()
    t0 = cpu_ticks(pids)
    u0 = cpu_ticks(upids)
    w0 = time.monotonic()
    p = subprocess.run(["wrk", "-t1", f"-c{a.conns}", f"-d{a.duration}s", "--latency",
                        "--timeout", "5s", a.url], capture_output=True, text=True)
    wall = time.monotonic() - w0
    pids_after = tree(parse_pids(a.pids))
    t1 = cpu_ticks(pids_after)
    u1 = cpu_ticks(upids)
    r = parse_wrk(p.stdout)
    r.update({"kind": "load", "contender": a.name, "conns": a.conns, "upstream": a.upstream,
              "round": a.round, "cpu_s": (t1 - t0) / CLK_TCK,
              "upstream_cpu_s": (u1 - u0) / CLK_TCK, "wall_s": wall,
              "loadavg": la0, "pids": pids})
    if r["requests"]:
        r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"]
        r["upstream_cpu_us_per_req"] = r["upstream_cpu_s"] * 1e6 / r["requests"]
    if a.note:
        r["note"] = a.note
    if p.returncode != 0 or not r["requests"]:
        r["wrk_error"] = (p.stderr or p.stdout)[-500:]
    with open(a.out, "a") as f:
        f.write(json.dumps(r) + "\n")
    cpu = f"{r.get('cpu_us_per_req', 0):6.1f} us/req" if a.cpu else ""
    print(f"  {a.upstream:<5} round {a.round} {a.name:<18} c={a.conns:<4} {r['rps']:9.0f} req/s  "
          f"p50 {r['p50_ms'] or 0:6.2f} ms  p99 {r['p99_ms'] or 0:6.2f} ms  {cpu}  "
          f"failed {r['failed']}  (load {la0:.1f})", flush=True)
    return 0


# ---- idle connections ---------------------------------------------------

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def open_conns(port, n, kept_alive, conns):
    """Open n connections; with kept_alive, each completes one request first."""
    new = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        new.append(s)
    if kept_alive:
        # 64 at a time (like the load runs: no burst of upstream connections),
        # each answer read whole (Content-Length).
        for i in range(0, len(new), 64):
            batch = new[i:i + 64]
            for s in batch:
                s.sendall(REQ)
            read_answers(batch)
    conns.extend(new)


def read_answers(batch):
    for s in batch:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed before answering")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        want = int(m.group(1)) if m else 0
        while len(body) < want:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed mid-answer")
            body += chunk


def cmd_idle(a):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(a.steps) + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    roots = parse_pids(a.pids)
    res = {"kind": "idle", "contender": a.name, "mode": a.mode, "upstream": a.upstream,
           "loadavg": loadavg()}
    conns = []
    try:
        time.sleep(0.3)
        base = rss_kib(tree(roots))
        res["base_kib"] = base
        for n in sorted(a.steps):
            open_conns(a.port, n - len(conns), a.mode == "served", conns)
            time.sleep(a.settle)
            # Every connection must still be open (a proxy at its limit
            # would close them, which would flatter its memory).
            alive = 0
            for s in conns:
                try:
                    s.setblocking(False)
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        continue
                    alive += 1
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            rss = rss_kib(tree(roots))
            res[f"rss_{n}_kib"] = rss
            res[f"alive_{n}"] = alive
            res[f"per_conn_{n}_b"] = (rss - base) * 1024.0 / n
    except OSError as e:
        res["error"] = f"{type(e).__name__}: {e} after {len(conns)} connections"
    finally:
        for s in conns:
            s.close()
    with open(a.out, "a") as f:
        f.write(json.dumps(res) + "\n")
    parts = [f"{n // 1000}k: {res.get(f'per_conn_{n}_b', float('nan')):7.0f} B/conn "
             f"({res.get(f'alive_{n}', 0)} open)" for n in sorted(a.steps)]
    print(f"  idle {a.mode:<9} {a.name:<14} " + "  ".join(parts) +
          (f"  ERROR {res['error']}" if "error" in res else ""), flush=True)
    return 0


# ---- HAProxy runtime API ----------------------------------------------

def cmd_haproxy(a):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(a.socket)
    s.sendall(a.command.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    text = out.decode(errors="replace").strip()
    if text:
        print(text)
    # set weight answers nothing on success
    return 1 if re.search(r"(?i)(no such|unknown|error|denied|invalid)", text) else 0


# ---- machine ----------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return ""


def deb_version(*pkgs):
    for p in pkgs:
        v = sh(f"dpkg-query -W -f='${{Version}}' {p} 2>/dev/null")
        if v:
            return f"{v} ({p})"
    return "?"


def cmd_machine(a):
    model = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = ""
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1048576:.1f} GiB RAM"
    hyp = sh("systemd-detect-virt 2>/dev/null") or ("VM" if "hypervisor" in open("/proc/cpuinfo").read() else "")
    m = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{model} ({hyp or 'bare metal'}, {mem})",
        "cores": os.cpu_count(),
        "kernel": sh("uname -r"),
        "debian": sh("cat /etc/debian_version"),
        "nginx": deb_version("nginx-light", "nginx-core", "nginx"),
        "haproxy": deb_version("haproxy"),
        "wrk": deb_version("wrk"),
        "jemalloc": deb_version("libjemalloc2").split(" ")[0],
        "libevent": deb_version("libevent-2.1-7").split(" ")[0],
        "weir": a.weir,
        "load_start": a.load_start,
        "load_end": open("/proc/loadavg").read().split()[0],
        "rounds": a.rounds,
        "duration": a.duration,
    }
    with open(a.out, "w") as f:
        json.dump(m, f)
    return 0


def haproxy_send(sock_path, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(command.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode(errors="replace").strip()


def cmd_haproxy_changes(a):
    """The split test's 20 weight changes, on a fixed schedule: change i at
    start + delay + i * interval; odd i -> 50/50 (1:1:1:1), even -> 90/10."""
    t0 = time.monotonic() + a.delay
    applied = 0
    for i in range(1, a.count + 1):
        d = t0 + i * a.interval - time.monotonic()
        if d > 0:
            time.sleep(d)
        w = 1 if i % 2 else 9
        cmd = "; ".join(f"set weight be/{srv} {w if srv.startswith('v1') else 1}"
                        for srv in ("v1a", "v1b", "v2a", "v2b"))
        try:
            text = haproxy_send(a.socket, cmd)
            if not text:
                applied += 1
            else:
                print(text, file=sys.stderr)
        except OSError as e:
            print(f"haproxy runtime API: {e}", file=sys.stderr)
    print(applied)
    return 0


# ---- report -------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=1, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) >= 1000 and nd <= 1:
        return f"{v:,.0f}{unit}"
    return f"{v:.{nd}f}{unit}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=1, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) >= 1000 and nd <= 1:
        return f"{v:,.0f}{unit}"
    return f"{v:.{nd}f}{unit}"


def is_peer(c):
    return c.startswith(("nginx", "haproxy"))


KIND_LABEL = {"pod": "weir-pod upstreams (4 × weir-pod, 1 thread each)",
              "nginx": "neutral upstream (nginx 1 worker, 4 listeners, `return 200`, 100-byte body)"}
# (metric key, label, higher is better, digits)
METRICS = (("rps", "req/s", True, 0), ("p99", "p99 ms", False, 2), ("cpu", "proxy CPU µs/req", False, 1))


def cmd_report(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    machine = json.load(open(a.machine))
    load = [r for r in rows if r["kind"] == "load"]
    idle = [r for r in rows if r["kind"] == "idle"]
    split = [r for r in rows if r["kind"] == "split"]
    kinds = []
    for r in load + idle:
        k = r.get("upstream", "pod")
        if k not in kinds:
            kinds.append(k)

    agg = {}
    for r in load:
        agg.setdefault((r.get("upstream", "pod"), r["contender"], r["conns"]), []).append(r)
    for key, rs in list(agg.items()):
        agg[key] = {
            "runs": len(rs),
            "rps": med([r["rps"] for r in rs]),
            "rps_min": min(r["rps"] for r in rs),
            "rps_max": max(r["rps"] for r in rs),
            "p50": med([r["p50_ms"] for r in rs]),
            "p99": med([r["p99_ms"] for r in rs]),
            "cpu": med([r.get("cpu_us_per_req") for r in rs]) if key[1] != "direct" else None,
            "ucpu": med([r.get("upstream_cpu_us_per_req") for r in rs]),
            "failed": sum(r["failed"] for r in rs),
        }
    idle_by = {(r["contender"], r["mode"]): r for r in idle}

    def best(kind, n, metric, higher, logging):
        cands = [(g[metric], c) for (k, c, m), g in agg.items()
                 if k == kind and m == n and is_peer(c) and c.endswith("-log") == logging
                 and g[metric] is not None]
        if not cands:
            return None, None
        return (max if higher else min)(cands)

    L = []
    L.append(f"Run of {machine['date']} ({machine['rounds']} rounds × {machine['duration']} s "
             f"per contender, connection count and upstream kind, contenders alternated in a "
             f"rotating order; wrk -t1 --latency; medians over the rounds).")
    L.append("")
    L.append("Machine: " + machine["cpu"] + f", {machine['cores']} cores, "
             f"kernel {machine['kernel']}, Debian {machine['debian']}; "
             f"nginx {machine['nginx']}, HAProxy {machine['haproxy']}, wrk {machine['wrk']}; "
             f"weir {machine['weir']} (release, jemalloc {machine['jemalloc']}, "
             f"libevent {machine['libevent']}). "
             f"Load average: {machine['load_start']} at the start, {machine['load_end']} at the end "
             f"(median per run: {fmt(med([r['loadavg'] for r in load]), 1)}). "
             f"**Measured with the machine shared** (other engineers' builds and tests ran on "
             f"the same 2 cores): compare the same-run ratios, not the absolute numbers.")
    L.append("")

    T = []          # targets
    verdict = {}

    def check(kind, w, ok, text, label):
        verdict.setdefault((kind, w), []).append(ok)
        return ("✅ " if ok else "❌ ") + text

    for kind in kinds:
        conns = sorted({n for (k, c, n) in agg if k == kind})
        contenders = []
        for r in load:
            if r.get("upstream", "pod") == kind and r["contender"] not in contenders:
                contenders.append(r["contender"])
        off = [c for c in contenders if not c.endswith("-log")]
        on = [c for c in contenders if c.endswith("-log")]
        weirs_off = [c for c in off if c.startswith("weir")]
        L.append(f"#### {KIND_LABEL.get(kind, kind)}")
        L.append("")
        # summary in the shape: metric rows, contender columns
        for group, title in ((off, "access log off"), (on, "access log on (to a file)")):
            if not group:
                continue
            logging = group is on
            L.append(f"*{title}* — weir's ratio to the best peer in brackets")
            L.append("")
            L.append("| | " + " | ".join(group) + " |")
            L.append("|---|" + "---:|" * len(group))
            for n in conns:
                if not any((kind, c, n) in agg for c in group):
                    continue
                for key, label, higher, nd in METRICS:
                    bv, bp = best(kind, n, key, higher, logging)
                    cells = []
                    for c in group:
                        g = agg.get((kind, c, n))
                        v = g[key] if g else None
                        t = fmt(v, nd) if nd else (f"{v / 1000:.1f}k" if v else "—")
                        if v is not None and c.startswith("weir") and bv:
                            t += f" ({v / bv:.2f}×)"
                        if bp == c:
                            t = f"**{t}**"
                        cells.append(t)
                    L.append(f"| {label} c={n} | " + " | ".join(cells) + " |")
            L.append("")
        # details
        L.append("<details><summary>every run's median, min–max, p50, upstream CPU</summary>")
        L.append("")
        L.append("| contender | c | req/s | min–max | p50 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req | failed |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in conns:
            for c in contenders:
                g = agg.get((kind, c, n))
                if g:
                    L.append(f"| {c} | {n} | {fmt(g['rps'], 0)} | {fmt(g['rps_min'], 0)}–{fmt(g['rps_max'], 0)} | "
                             f"{fmt(g['p50'], 2)} | {fmt(g['p99'], 2)} | {fmt(g['cpu'], 1)} | "
                             f"{fmt(g['ucpu'], 1)} | {g['failed']} |")
        L.append("")
        L.append("</details>")
        L.append("")

        # targets for this kind
        for w in weirs_off + [c for c in on if c.startswith("weir")]:
            plain = "plain" in w
            logging = w.endswith("-log")
            for n in conns:
                g = agg.get((kind, w, n))
                if not g:
                    continue
                bv, bp = best(kind, n, "rps", True, logging)
                if bv:
                    need = 1.0 if (plain or logging) else 1.3
                    r_ = g["rps"] / bv
                    peers = "best logging peer" if logging else "best peer"
                    T.append((kind, w, f"req/s ÷ {peers}, c={n} ({bp} {fmt(bv, 0)})",
                              check(kind, w, r_ >= need, f"{r_:.2f}× (≥ {need})", "")))
                if logging:
                    continue
                bv, bp = best(kind, n, "p99", False, False)
                if bv and g["p99"] is not None:
                    r_ = g["p99"] / bv
                    T.append((kind, w, f"p99 ≤ best peer, c={n} ({bp} {fmt(bv, 2)} ms)",
                              check(kind, w, r_ <= 1.0, f"{fmt(g['p99'], 2)} ms = {r_:.2f}×", "")))
                if plain:
                    continue
                bv, bp = best(kind, n, "cpu", False, False)
                if bv and g["cpu"] is not None:
                    r_ = g["cpu"] / bv
                    T.append((kind, w, f"CPU/req ≤ 0.7× best peer, c={n} ({bp} {fmt(bv, 1)} µs)",
                              check(kind, w, r_ <= 0.7, f"{fmt(g['cpu'], 1)} µs = {r_:.2f}×", "")))

    if idle:
        ik = idle[0].get("upstream", "pod")
        L.append(f"**Idle client connections** ({ik} upstream; RSS of the proxy's processes, "
                 "increase over the RSS before the connections were opened, divided by their "
                 "number; *served*: each connection completed one request, then stayed idle)")
        L.append("")
        modes = [m for m in ("fresh", "served") if any(r["mode"] == m for r in idle)]
        head = {"fresh": "never sent: 1k | 10k", "served": "served, then idle: 1k | 10k"}
        L.append("| contender | " + " | ".join(head[m] for m in modes) + " |")
        L.append("|---|" + "---:|---:|" * len(modes))
        seen = []
        for r in idle:
            if r["contender"] not in seen:
                seen.append(r["contender"])
        for c in seen:
            cells = []
            for mode in modes:
                r = idle_by.get((c, mode), {})
                for n in (1000, 10000):
                    v = r.get(f"per_conn_{n}_b")
                    cells.append("—" if v is None else f"{v / 1024:.2f} KiB")
            L.append(f"| {c} | " + " | ".join(cells) + " |")
        L.append("")
        for mode in modes:
            ng = idle_by.get(("nginx", mode))
            if not ng:
                continue
            for n in (1000, 10000):
                nv = ng.get(f"per_conn_{n}_b")
                if nv is None:
                    continue
                for w in seen:
                    if not w.startswith("weir"):
                        continue
                    v = idle_by.get((w, mode), {}).get(f"per_conn_{n}_b")
                    if v is None:
                        continue
                    T.append((ik, w, f"idle memory ≤ nginx's, {n // 1000}k {mode} (nginx {nv / 1024:.2f} KiB)",
                              check(ik, w, v <= max(nv, 0), f"{v / 1024:.2f} KiB", "")))
    if split:
        L.append(f"**Split changed 20 times under load** (wrk -t1 -c64 for "
                 f"{split[0]['duration']} s; the split alternates 90/10 → 50/50 → 90/10 …)")
        L.append("")
        L.append("| contender | how | changes applied | requests | failed (non-2xx + socket errors) | detail |")
        L.append("|---|---|---:|---:|---:|---|")
        for r in split:
            det = ", ".join(f"{k} {v}" for k, v in (r.get("sock_detail") or {}).items() if v)
            if r.get("non2xx"):
                det = (det + ", " if det else "") + f"non-2xx {r['non2xx']}"
            L.append(f"| {r['contender']} | {r['how']} | {r['applied']}/{r['changes']} | "
                     f"{r['requests']} | {r['failed']} | {det or '—'} |")
            if r["contender"].startswith("weir"):
                T.append((kinds[0] if kinds else "pod", r["contender"],
                          "zero failed requests while the split changes 20×",
                          check(kinds[0] if kinds else "pod", r["contender"],
                                r["failed"] == 0 and r["applied"] == r["changes"],
                                f"{r['failed']} failed, {r['applied']}/{r['changes']} applied", "")))
        L.append("")

    # targets: one table per kind, target rows × weir columns
    TT = ["**Targets** (same-run ratios against the best peer; io_uring path: req/s ≥ 1.3×, "
          "CPU ≤ 0.7×, p99 ≤ 1×; `WEIR_IO_URING=0`: req/s ≥ 1.0×, p99 ≤ 1×; access log on: "
          "req/s ≥ 1.0× the best logging peer; ✅ met, ❌ missed)", ""]
    for kind in kinds:
        ws = []
        for (k, w, _, _) in T:
            if k == kind and w not in ws:
                ws.append(w)
        if not ws:
            continue
        labels = []
        for (k, w, lab, _) in T:
            if k == kind and lab not in labels:
                labels.append(lab)
        TT.append(f"*{kind} upstream*")
        TT.append("")
        TT.append("| target | " + " | ".join(ws) + " |")
        TT.append("|---|" + "---|" * len(ws))
        for lab in labels:
            cells = []
            for w in ws:
                hit = [c for (k, ww, l_, c) in T if k == kind and ww == w and l_ == lab]
                cells.append(hit[0] if hit else "—")
            TT.append(f"| {lab} | " + " | ".join(cells) + " |")
        TT.append("")
        TT.append("; ".join(f"{w}: {sum(verdict[(kind, w)])} of {len(verdict[(kind, w)])} met"
                            for w in ws) + ".")
        TT.append("")

    out = "\n".join(L + TT)
    print(out)
    if a.readme:
        begin, end = "<!-- peer-results:begin -->", "<!-- peer-results:end -->"
        text = open(a.readme).read()
        block = f"{begin}\n{out}\n{end}"
        if begin in text and end in text:
            text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        with open(a.readme + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.readme + ".tmp", a.readme)
    return 0

def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports"); p.add_argument("n", type=int); p.set_defaults(fn=cmd_ports)
    p = sub.add_parser("wait"); p.add_argument("port", type=int)
    p.add_argument("seconds", type=float, nargs="?", default=10); p.set_defaults(fn=cmd_wait)
    p = sub.add_parser("parse-wrk"); p.add_argument("file")
    p.add_argument("--set", action="append", help="KEY=VALUE added to the JSON")
    p.add_argument("--out", help="append the JSON line to this file")
    p.set_defaults(fn=cmd_parse_wrk)
    p = sub.add_parser("machine"); p.add_argument("--out", required=True)
    p.add_argument("--weir", required=True); p.add_argument("--load-start", required=True)
    p.add_argument("--rounds", required=True); p.add_argument("--duration", required=True)
    p.set_defaults(fn=cmd_machine)
    p = sub.add_parser("load")
    p.add_argument("--name", required=True); p.add_argument("--url", required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--duration", type=int, required=True)
    p.add_argument("--pids", default=""); p.add_argument("--upstream-pids", default="")
    p.add_argument("--round", type=int, default=0); p.add_argument("--out", required=True)
    p.add_argument("--cpu", action="store_true"); p.add_argument("--note")
    p.add_argument("--upstream", default="pod")
    p.set_defaults(fn=cmd_load)
    p = sub.add_parser("idle")
    p.add_argument("--name", required=True); p.add_argument("--port", type=int, required=True)
    p.add_argument("--pids", required=True)
    p.add_argument("--mode", choices=("fresh", "served"), default="fresh")
    p.add_argument("--upstream", default="pod")
    p.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1000, 10000])
    p.add_argument("--settle", type=float, default=1.5)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_idle)
    p = sub.add_parser("haproxy"); p.add_argument("socket"); p.add_argument("command")
    p.set_defaults(fn=cmd_haproxy)
    p = sub.add_parser("haproxy-changes"); p.add_argument("socket")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--interval", type=float, required=True)
    p.set_defaults(fn=cmd_haproxy_changes)
    p = sub.add_parser("report")
    p.add_argument("--results", required=True); p.add_argument("--machine", required=True)
    p.add_argument("--readme")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    sys.exit(a.fn(a) or 0)


if __name__ == "__main__":
    main()
