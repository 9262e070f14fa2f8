#!/usr/bin/python3
"""tls_peer.py — HTTPS termination, weir against nginx and HAProxy, in one run.

    /usr/bin/python3 bench/tls_peer.py [--build BUILD] [--rounds N] [--duration S]

Everything on 127.0.0.1. One upstream: nginx, 1 worker, `return 200` with a
100-byte body (the neutral upstream of bench/peer.sh). In front of it, each
with the same EC P-256 certificate (made here with the openssl CLI), TLS
1.2+1.3, keep-alive to the upstream, access log off:
  weir      workers: 1 (io_uring where the kernel allows it), and
  weir-plain the same with WEIR_IO_URING=0;
  nginx     1 worker, ssl_session_tickets on, keepalive 1024 upstream;
  haproxy   nbthread 1, http-reuse always.
Measured, per contender, each in turn (rounds rotate the order; medians):
  new       new TLS 1.3 handshakes (X25519 + ECDSA P-256, no resumption):
            two `openssl s_time -new` clients for DURATION s, each opening a
            connection, one GET, closing; connections per second, and the
            proxy's CPU (utime+stime of its processes) per handshake;
  ka64/256  keep-alive HTTPS requests/s, `wrk -t1 -cN` over TLS 1.3, and
            CPU per request;
  idle      memory per idle TLS connection: 1000 connections that finished
            a handshake and one request, then idle; RSS increase / 1000,
            measured first, on fresh processes.
The client tools share the 2 cores with the proxy: absolute numbers are this
machine's; the ratios are the point.
"""
import argparse
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--duration", type=int, default=5)
ap.add_argument("--idle", type=int, default=1000)
args = ap.parse_args()
WEIR = os.path.join(args.build, "src", "bin", "weir")
d = tempfile.mkdtemp(prefix="weir-tlsbench-")
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start(argv, env=None):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "err.log"), "ab"),
                         env=env)
    procs.append(p)
    return p


def children(pid):
    out = [pid]
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                for c in f.read().split():
                    out += children(int(c))
    except OSError:
        pass
    return out


def cpu_s(pids):
    tot = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tot += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return tot / os.sysconf("SC_CLK_TCK")


def rss_kib(pids):
    tot = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        tot += int(line.split()[1])
        except OSError:
            pass
    return tot


crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)

up_port = free_port()
with open(os.path.join(d, "up.conf"), "w") as f:
    f.write("""worker_processes 1; daemon off; pid %s/up.pid; error_log %s/up.err;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:%d; location / { return 200 "%s"; } } }
""" % (d, d, up_port, "x" * 99 + "\n"))
start(["nginx", "-c", os.path.join(d, "up.conf"), "-p", d])
assert wait_port(up_port)


def weir(name, env_extra):
    port, plain = free_port(), free_port()
    cfg = os.path.join(d, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("""listen:
  - 127.0.0.1:%d
  - address: 127.0.0.1:%d
    tls: {cert: %s, key: %s}
control: %s/%s.sock
workers: 1
watch: false
access_log: false
limits: {max_connections: 100000, upstream_idle_per_endpoint: 1024}
versions:
  v1:
    endpoints: [127.0.0.1:%d]
split: {v1: 100}
""" % (plain, port, crt, key, d, name, up_port))
    env = dict(os.environ)
    env.update(env_extra)
    p = start([WEIR, "-c", cfg], env=env)
    assert wait_port(port), name
    return p, port


def nginx():
    port = free_port()
    conf = os.path.join(d, "front.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/front.pid; error_log %s/front.err;
worker_rlimit_nofile 100000;
events { worker_connections 60000; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
  upstream up { server 127.0.0.1:%d; keepalive 1024; }
  server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on; ssl_session_cache off;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Proto https; } } }
""" % (d, d, up_port, port, crt, key))
    p = start(["nginx", "-c", conf, "-p", d])
    assert wait_port(port)
    return p, port


def haproxy():
    port = free_port()
    pem = os.path.join(d, "both.pem")
    with open(pem, "w") as f:
        f.write(open(crt).read() + open(key).read())
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""global
  nbthread 1
  maxconn 9000
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 30s
  timeout http-keep-alive 120s
  http-reuse always
frontend f
  bind 127.0.0.1:%d ssl crt %s
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend b
backend b
  server s1 127.0.0.1:%d
""" % (port, pem, up_port))
    p = start(["haproxy", "-f", conf, "-db"])
    assert wait_port(port)
    return p, port


def stop_all():
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


import atexit  # noqa: E402

atexit.register(stop_all)
contenders = {}
contenders["weir"] = weir("weir", {})
contenders["weir-plain"] = weir("weir-plain", {"WEIR_IO_URING": "0"})
contenders["nginx"] = nginx()
contenders["haproxy"] = haproxy()
# every contender answers over TLS before measuring
for name, (p, port) in contenders.items():
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:%d/" % port],
                       capture_output=True)
    assert r.stdout == b"200", (name, r.stdout)


def new_handshakes(port, pids):
    c0, t0 = cpu_s(pids), time.time()
    cl = [subprocess.Popen(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new", "-tls1_3",
                            "-www", "/", "-time", str(args.duration)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(2)]
    n = 0
    for c in cl:
        out = c.communicate()[0].decode()
        m = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        if m:
            n += int(m.group(1))
    el, cpu = time.time() - t0, cpu_s(pids) - c0
    return n / el, (cpu / n * 1e6) if n else None


def keepalive(port, pids, conns):
    c0 = cpu_s(pids)
    r = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % args.duration, "https://127.0.0.1:%d/" % port],
                       capture_output=True, text=True)
    cpu = cpu_s(pids) - c0
    m = re.search(r"^\s*(\d+) requests in", r.stdout, re.M)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    n = int(m.group(1)) if m else 0
    return float(rps.group(1)) if rps else 0.0, (cpu / n * 1e6) if n else None


def idle(port, pids, n):
    ctx = ssl.create_default_context(cafile=crt)
    time.sleep(1.5)
    base = rss_kib(pids)
    socks = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        socks.append(s)
    for s in socks:
        buf = b""
        while b"\r\n\r\n" not in buf or not buf.endswith(b"\n"):
            buf += s.recv(4096)
    time.sleep(3)  # let the proxy's idle handling settle (weir parks after 1 s)
    per = (rss_kib(pids) - base) / n
    for s in socks:
        s.close()
    return per


res = {name: {"new": [], "new_cpu": [], "ka64": [], "ka64_cpu": [], "ka256": [], "ka256_cpu": [], "idle": []}
       for name in contenders}
names = list(contenders)
# idle first, on fresh processes (after a load phase every proxy reuses
# memory it already holds, and the increase says nothing)
for name in names:
    p, port = contenders[name]
    res[name]["idle"].append(idle(port, children(p.pid), args.idle))
for r in range(args.rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        p, port = contenders[name]
        pids = children(p.pid)
        v, c = new_handshakes(port, pids)
        res[name]["new"].append(v)
        res[name]["new_cpu"].append(c)
        for conns in (64, 256):
            v, c = keepalive(port, pids, conns)
            res[name]["ka%d" % conns].append(v)
            res[name]["ka%d_cpu" % conns].append(c)


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


rows = [("new TLS 1.3 handshakes/s", "new", 0), ("  proxy CPU µs per handshake", "new_cpu", 0),
        ("keep-alive HTTPS req/s, c=64", "ka64", 0), ("  proxy CPU µs per request", "ka64_cpu", 1),
        ("keep-alive HTTPS req/s, c=256", "ka256", 0), ("  proxy CPU µs per request", "ka256_cpu", 1),
        ("RSS KiB per idle TLS connection", "idle", 2)]
print("| | " + " | ".join(names) + " | weir / best peer |")
print("|---|" + "---|" * (len(names) + 1))
for label, k, nd in rows:
    vals = {n: med(res[n][k]) for n in names}
    peers = [vals[n] for n in ("nginx", "haproxy") if vals[n] is not None]
    lower_better = k.endswith("cpu") or k == "idle"
    best = (min(peers) if lower_better else max(peers)) if peers else None
    ratio = "%.2f×" % (vals["weir"] / best) if best and vals["weir"] is not None else "-"
    print("| %s | %s | %s |" % (label, " | ".join("-" if vals[n] is None else "%.*f" % (nd, vals[n]) for n in names),
                                ratio))
with open("/proc/loadavg") as f:
    print("\nload average at the end: " + " ".join(f.read().split()[:3]))
