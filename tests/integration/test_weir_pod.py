"""weir-pod on its own: the test upstream must itself be correct HTTP/1.1
(pipelining, HEAD/204/304 framing, chunked in and out, 100-continue, 431/414,
backpressure, lingering close, /ws tunnel, probes, --error-rate pattern,
--latency, clean exit on SIGTERM/SIGINT). python3 stdlib only."""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import WEIR_POD, Proc, check as _check, done  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else WEIR_POD


def start(*args):
    p = Proc([BIN, "--name", "pa", "--version", "v9", "--listen", "127.0.0.1:0", "--quiet", *args],
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ports = {}
    for _ in range(2 if "--probe" in args else 1):
        kind, addr = p.p.stdout.readline().decode().split()
        ports[kind] = int(addr.rsplit(":", 1)[1])
    return p, ports


def conn(port):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(5); return s

def read_response(f, head=False):
    """Parse one response from a buffered socket file. Returns (status, headers, body)."""
    line = f.readline()
    if not line: return None
    status = int(line.split()[1])
    hdrs = {}
    while True:
        l = f.readline()
        if l in (b"\r\n", b""): break
        k, v = l.decode().split(":", 1); hdrs[k.strip().lower()] = v.strip()
    body = b""
    if head or status in (204, 304) or 100 <= status < 200:
        return status, hdrs, body
    if hdrs.get("transfer-encoding") == "chunked":
        while True:
            n = int(f.readline().strip(), 16)
            if n == 0:
                f.readline(); break
            body += f.read(n); f.readline()
    elif "content-length" in hdrs:
        body = f.read(int(hdrs["content-length"]))
    else:
        body = f.read()
    return status, hdrs, body

def check(name, cond, extra=""):
    return _check(cond, name + ("" if cond else "  " + repr(extra)[:300]))


p, ports = start("--probe", "127.0.0.1:0", "--idle-timeout", "300ms")
P, Q = ports["listening"], ports["probe"]

# pipelining, fed one byte at a time
reqs = b"".join([b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"HEAD /bytes/7 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"POST /echo/x?q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
                 b"GET /sleep/30 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /bytes/100000 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /chunked/70000 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n12345",
                 b"GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /status/418 HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /bytes/abc HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /live HTTP/1.1\r\nHost: a\r\n\r\n",
                ])
for mode in ("bytewise", "whole"):
    s = conn(P)
    if mode == "bytewise":
        for i in range(len(reqs)):
            s.send(reqs[i:i+1])
    else:
        s.sendall(reqs)
    f = s.makefile("rb")
    r = [read_response(f, head=(i == 1)) for i in range(11)]
    check(mode + " demo", r[0][0] == 200 and r[0][2] == b"Host: pa, Version: v9\n" and r[0][1]["x-pod"] == "pa" and r[0][1]["x-version"] == "v9", r[0])
    check(mode + " head", r[1][0] == 200 and r[1][1]["content-length"] == "7", r[1])
    check(mode + " echo chunked", r[2][2] == b"POST /echo/x?q HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\nabcde", r[2])
    check(mode + " sleep", r[3][2] == b"slept 30 ms\n", r[3])
    check(mode + " bytes", r[4][2] == b"x" * 100000, len(r[4][2]))
    check(mode + " chunked", r[5][2] == b"x" * 70000 and r[5][1]["transfer-encoding"] == "chunked", len(r[5][2]))
    check(mode + " upload", r[6][2] == b"received 5 bytes\n", r[6])
    check(mode + " 304", r[7][0] == 304 and "content-length" not in r[7][1], r[7])
    check(mode + " 418", r[8][0] == 418, r[8])
    check(mode + " bad arg", r[9][0] == 400, r[9])
    check(mode + " live on main is demo (probe listener given)", r[10][2].startswith(b"Host:"), r[10])
    s.close()

# probe listener
def simple(port, req):
    s = conn(port); s.sendall(req); f = s.makefile("rb"); r = read_response(f); s.close(); return r
check("probe live", simple(Q, b"GET /live HTTP/1.1\r\nHost: a\r\n\r\n")[2] == b"ok\n")
check("probe ready", simple(Q, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200)
check("probe off", simple(Q, b"POST /ready/off HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")[0] == 200)
check("probe not ready", simple(Q, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[:3:2] == (503, b"not ready\n"))
check("probe GET off = 405", simple(Q, b"GET /ready/off HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 405)
check("probe on", simple(Q, b"POST /ready/on HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200)
check("probe ready again", simple(Q, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200)
check("probe other = 404", simple(Q, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 404)

# 431, 414
r = simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Big: " + b"y" * 70000 + b"\r\n\r\n")
check("431", r and r[0] == 431 and r[1].get("connection") == "close", r)
r = simple(P, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
check("414", r and r[0] == 414, r)
r = simple(P, b"GARBAGE\r\n\r\n")
check("400 garbage", r and r[0] == 400, r)

# client that pipelines a lot without reading (backpressure), then reads all
s = conn(P)
N = 20000
blob = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * N
def sender():
    s.sendall(blob)
t = threading.Thread(target=sender); t.start()
time.sleep(0.5)  # the state under test: the pod's output backs up while nobody reads
f = s.makefile("rb")
got = 0
for i in range(N):
    r = read_response(f)
    if not r or r[0] != 200: break
    got += 1
t.join()
check("20000 pipelined", got == N, got)
s.close()

# idle timeout closes
s = conn(P); s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"); f = s.makefile("rb"); read_response(f)
t0 = time.time(); eof = f.read(1); dt = time.time() - t0
check("idle timeout closes (300 ms, swept periodically: not at once)", eof == b"" and dt > 0.1, dt)
s.close()

# abrupt closes mid-stream and mid-request
for i in range(20):
    s = conn(P); s.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: a\r\n\r\n"); s.recv(1000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"); s.close()
    s = conn(P); s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"); s.close()
    s = conn(P); s.sendall(b"GET /sleep/50 HTTP/1.1\r\nHost: a\r\n\r\n"); s.close()
r = simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
check("alive after aborts", r and r[0] == 200)

# websocket tunnel, data in the same packet as the head + lots of data
s = conn(P)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\nhello")
f = s.makefile("rb")
r = read_response(f)
check("ws 101", r[0] == 101 and r[1]["upgrade"] == "websocket", r)
check("ws early bytes", f.read(5) == b"hello")
payload = os.urandom(3_000_000)
t = threading.Thread(target=lambda: s.sendall(payload)); t.start()
back = f.read(len(payload)); t.join()
check("ws 3MB echo", back == payload, len(back))
s.shutdown(socket.SHUT_WR)
check("ws eof", f.read() == b"")
s.close()

# ws with latency is tested in the second instance below; HTTP/1.0
s = conn(P); s.sendall(b"GET /chunked/5 HTTP/1.0\r\n\r\n"); f = s.makefile("rb"); r = read_response(f)
check("1.0 chunked → length", r[1].get("content-length") == "5" and r[1].get("connection") == "close" and f.read() == b"", r)
s.close()

# Expect: 100-continue
s = conn(P); s.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
f = s.makefile("rb"); r = read_response(f)
check("100 continue", r[0] == 100, r)
s.sendall(b"abc"); r = read_response(f)
check("after 100", r[2] == b"received 3 bytes\n", r)
s.close()

# /close with pipelined garbage after it: answer arrives intact (lingering close)
s = conn(P); s.sendall(b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 1000)
f = s.makefile("rb"); r = read_response(f)
check("close", r[2] == b"closing\n" and r[1]["connection"] == "close" and f.read() == b"", r)
s.close()

p.signal(15); rc = p.wait(5); err = p.p.stderr.read().decode()
check("sigterm rc 0 clean stderr", rc == 0 and err == "", (rc, err))

# second instance: latency + error rate, probes on main
p, ports = start("--latency", "400ms", "--error-rate", "0.5", "--threads", "2")
P = ports["listening"]
codes = []
for i in range(4):
    t0 = time.time(); r = simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"); codes.append(r[0])
    check("latency %d" % i, time.time() - t0 >= 0.4)
check("error pattern", codes == [200, 500] * 2, codes)
r = simple(P, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")
check("probe on main", r[0] == 200 and r[2] == b"ready\n", r)
s = conn(P)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nabc")
f = s.makefile("rb"); r = read_response(f)
if r[0] == 500:
    s.close(); s = conn(P)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nabc")
    f = s.makefile("rb"); r = read_response(f)
check("ws after latency", r[0] == 101 and f.read(3) == b"abc", r)
s.close()
p.signal(2); rc = p.wait(5); err = p.p.stderr.read().decode()
check("sigint rc 0 clean stderr", rc == 0 and err == "", (rc, err))

# the probe is not delayed by --latency: with 10 s of latency, an answer
# inside the 5 s socket timeout can only be an undelayed one
p, ports = start("--latency", "10s")
try:
    r = simple(ports["listening"], b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")
except socket.timeout:
    r = None
check("probe on main answered without the 10 s latency", r and r[0] == 200 and r[2] == b"ready\n", r)
p.stop()

# --faults-off: no injected error until POST /faults/on, all after it (a
# benchmark starts a fault at a known instant), none after /faults/off
p, ports = start("--error-rate", "1", "--faults-off")
P = ports["listening"]
before = [simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] for _ in range(3)]
check("faults off: no injected error", before == [200] * 3, before)
r = simple(P, b"POST /faults/on HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
check("POST /faults/on", r[0] == 200 and r[2] == b"faults on\n", r)
after = [simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] for _ in range(3)]
check("faults on: every request fails (--error-rate 1)", after == [500] * 3, after)
check("GET /faults/on = 405",
      simple(P, b"GET /faults/on HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 405)
simple(P, b"POST /faults/off HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
off = [simple(P, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] for _ in range(2)]
check("faults off again", off == [200] * 2, off)
p.stop()
done()
