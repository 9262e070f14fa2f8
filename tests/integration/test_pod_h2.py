"""weir-pod over h2c (prior knowledge, on the same listener as HTTP/1.1) and
its gRPC echo (/weir.Echo/Unary, /weir.Echo/Stream over the gRPC wire
format), driven by curl --http2-prior-knowledge, h2load and a python3-h2
client: the same answers and headers as HTTP/1.1, --error-rate and
--latency on h2 and gRPC (UNAVAILABLE), trailers, streaming echo with
backpressure, and weir-bench --h2 counting per version against pods
directly. Every process is ours and stopped by PID."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import BUILD, Pod, case, check, holds_for, run  # noqa: E402
from weirtest.h2 import H2Client, grpc_frame, grpc_headers, grpc_messages  # noqa: E402

CURL = shutil.which("curl")
H2LOAD = shutil.which("h2load")
BENCH = os.path.join(BUILD, "bench", "weir-bench")


def curl(*args):
    r = subprocess.run([CURL, "-sS", "--max-time", "10", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return r.returncode, r.stdout, r.stderr.decode()


def head_and_body(out):
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, body


@case
def h2c_curl_same_answers():
    pod = Pod("pa", "v9", extra=["--quiet"])
    url = "http://127.0.0.1:%d" % pod.port
    rc, out, err = curl("-i", "--http2-prior-knowledge", url + "/")
    line, hdrs, body = head_and_body(out)
    check(rc == 0 and line.startswith("HTTP/2 200"), "h2c GET / answers 200 over HTTP/2: %r %s" % (line, err))
    check(hdrs.get("x-version") == "v9" and hdrs.get("x-pod") == "pa",
          "h2 answer carries X-Pod and X-Version: %r" % hdrs)
    check(body == b"Host: pa, Version: v9\n", "h2 demo body as HTTP/1.1: %r" % body)
    rc, out, _ = curl("-i", url + "/")
    line, hdrs, body = head_and_body(out)
    check(line.startswith("HTTP/1.1 200") and body == b"Host: pa, Version: v9\n",
          "HTTP/1.1 still works on the same listener: %r" % line)
    rc, out, _ = curl("--http2-prior-knowledge", "-H", "X-A: b", "--data-binary", "hello",
                      url + "/echo/x?q=1")
    check(out.startswith(b"POST /echo/x?q=1 HTTP/2.0\n") and b"\nx-a: b\n" in out and
          out.endswith(b"\n\nhello"), "h2 /echo: request line, headers, body: %r" % out[:300])
    rc, out, _ = curl("--http2-prior-knowledge", url + "/bytes/300000")
    check(out == b"x" * 300000, "h2 /bytes/300000 streams 300000 bytes: %d" % len(out))
    rc, out, _ = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
                      url + "/status/204")
    check(out == b"204", "h2 /status/204: %r" % out)
    rc, out, _ = curl("--http2-prior-knowledge", "-I", url + "/bytes/7")
    line, hdrs, body = head_and_body(out)
    check(hdrs.get("content-length") == "7" and body == b"", "h2 HEAD: length, no body: %r" % out)
    rc, out, _ = curl("--http2-prior-knowledge", "--data-binary", "@-", url + "/upload")
    check(out == b"received 0 bytes\n", "h2 /upload: %r" % out)
    rc, out, _ = curl("--http2-prior-knowledge", "-i", url + "/live")
    check(b"ok\n" in out, "h2 probe /live on the main listener: %r" % out)
    rc, out, _ = curl("--http2-prior-knowledge", "-i", url + "/weir.Echo/Unary")
    line, _, _ = head_and_body(out)
    check(line.startswith("HTTP/2 415"), "gRPC path without application/grpc: 415: %r" % line)
    rc, out, _ = curl("-i", url + "/weir.Echo/Unary")
    check(out.startswith(b"HTTP/1.1 505"), "gRPC path over HTTP/1.1: 505: %r" % out[:40])


@case
def h2load_error_rate_exact():
    pod = Pod("pa", "v1", extra=["--quiet", "--error-rate", "0.1", "--threads", "2"])
    r = subprocess.run([H2LOAD, "-n", "2000", "-c", "4", "-m", "10",
                        "http://127.0.0.1:%d/" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    codes = tuple(int(x) for x in m.groups()) if m else None
    check(codes == (1800, 0, 0, 200), "h2load 2000 streams at --error-rate 0.1: 1800 2xx, 200 5xx: %r" % (codes,))
    check("2000 done" in out and "0 errored" in out, "h2load: every stream done, none errored: %s" % out[-400:])


@case
def h2_faults_apply():
    pod = Pod("pa", "v1", extra=["--quiet", "--latency", "1m"])
    c = H2Client(pod.port)
    slow = c.request("GET", "/")
    probe = c.request("GET", "/live")
    r = c.wait(probe, timeout=5)
    check(r.status == 200 and r.data == b"ok\n", "h2 probe is not delayed: %r" % r.headers)
    check(holds_for(lambda: (c.pump(0.05), not c.streams[slow].ended)[1], 0.5),
          "h2 request waits --latency (not answered at once)")
    c.close()
    pod2 = Pod("pb", "v1", extra=["--quiet", "--latency", "1m", "--faults-off"])
    c = H2Client(pod2.port)
    r = c.wait(c.request("GET", "/"), timeout=5)
    check(r.status == 200, "with --faults-off the same h2 request answers at once: %r" % r.headers)
    r = c.wait(c.request("POST", "/faults/on"), timeout=5)
    check(r.status == 200 and r.data == b"faults on\n", "POST /faults/on over h2: %r" % r.data)
    c.close()


@case
def grpc_unary():
    pod = Pod("pa", "v3", extra=["--quiet"])
    c = H2Client(pod.port)
    for msg in (b"hello", b"", os.urandom(200000)):
        sid = c.request("POST", "/weir.Echo/Unary", grpc_headers(), grpc_frame(msg))
        r = c.wait(sid)
        check(r.status == 200 and r.headers.get("content-type") == "application/grpc" and
              r.headers.get("x-version") == "v3",
              "unary %d bytes: 200 application/grpc with X-Version: %r" % (len(msg), r.headers))
        check(grpc_messages(r.data) == [msg], "unary %d bytes: the same message back" % len(msg))
        check(r.trailers.get("grpc-status") == "0" and "grpc-status" not in r.headers,
              "unary: grpc-status 0 in the trailers: %r" % r.trailers)
    sid = c.request("POST", "/weir.Echo/Unary", grpc_headers(), grpc_frame(b"a") + grpc_frame(b"b"))
    r = c.wait(sid)
    check(r.headers.get("grpc-status") == "13" and r.headers.get("grpc-message"),
          "unary with two messages: INTERNAL with a grpc-message: %r" % r.headers)
    sid = c.request("POST", "/weir.Echo/Unary", grpc_headers(), grpc_frame(b"z", compressed=True))
    r = c.wait(sid)
    check(r.headers.get("grpc-status") == "12", "compressed message: UNIMPLEMENTED: %r" % r.headers)
    sid = c.request("POST", "/weir.Echo/Nope", grpc_headers(), grpc_frame(b"z"))
    r = c.wait(sid)
    check(r.headers.get("grpc-status") == "12", "unknown method: UNIMPLEMENTED: %r" % r.headers)
    sid = c.request("POST", "/weir.Echo/Unary", grpc_headers(), b"\x00\x00\x00")
    r = c.wait(sid)
    check(r.headers.get("grpc-status") == "13", "cut prefix: INTERNAL: %r" % r.headers)
    c.close()


@case
def grpc_stream_echo():
    pod = Pod("pa", "v1", extra=["--quiet"])
    c = H2Client(pod.port)
    sid = c.request("POST", "/weir.Echo/Stream", grpc_headers(), end=False)
    r = c.streams[sid]
    check(c.wait_for(lambda: r.headers), "stream: the answer's head comes before any message")
    want = b""
    for i, msg in enumerate([b"one", b"two" * 1000, b"", b"four"]):
        f = grpc_frame(msg)
        if i == 1:  # one message in two DATA frames
            c.send(sid, f[:7])
            check(holds_for(lambda: (c.pump(0.05) or True) and r.data == want, 0.2),
                  "stream: half a message is not echoed")
            c.send(sid, f[7:])
        else:
            c.send(sid, f)
        want += f
        check(c.wait_for(lambda: r.data == want), "stream: message %d echoed before the next is sent" % i)
    check(not r.ended and not r.trailers, "stream: still open before the client ends")
    c.end(sid)
    c.wait(sid)
    check(r.ended and r.trailers.get("grpc-status") == "0", "stream: grpc-status 0 after END_STREAM: %r" % r.trailers)
    sid = c.request("POST", "/weir.Echo/Stream", grpc_headers(), grpc_frame(b"ab")[:4], end=True)
    r = c.wait(sid)
    check(r.trailers.get("grpc-status") == "13", "stream cut mid-message: INTERNAL: %r %r" % (r.headers, r.trailers))
    c.close()


@case
def grpc_client_and_server_streaming():
    pod = Pod("pa", "v1", extra=["--quiet"])
    c = H2Client(pod.port)
    sid = c.request("POST", "/weir.Echo/ClientStream", grpc_headers(), end=False)
    for m in (b"ab", b"", b"cde"):
        c.send(sid, grpc_frame(m))
    c.end(sid)
    r = c.wait(sid)
    check(grpc_messages(r.data) == [b"abcde"] and r.trailers.get("grpc-status") == "0",
          "ClientStream: three messages in, one with all the payloads back: %r %r" % (r.data[:40], r.trailers))
    msg = b"s" * 100
    sid = c.request("POST", "/weir.Echo/ServerStream", grpc_headers([("x-repeat", "1000")]),
                    grpc_frame(msg))
    r = c.wait(sid)
    got = grpc_messages(r.data)
    check(len(got) == 1000 and set(got) == {msg} and r.trailers.get("grpc-status") == "0",
          "ServerStream x-repeat 1000: 1000 copies then grpc-status 0: %d %r" % (len(got), r.trailers))
    r = c.wait(c.request("POST", "/weir.Echo/ServerStream", grpc_headers([("x-repeat", "0")]),
                         grpc_frame(msg)))
    check(r.headers.get("grpc-status") == "3", "x-repeat 0: INVALID_ARGUMENT: %r" % r.headers)
    c.close()
    # A client that does not read gets only its window's worth.
    c = H2Client(pod.port, auto_ack=False)
    sid = c.request("POST", "/weir.Echo/ServerStream", grpc_headers([("x-repeat", "2000")]),
                    grpc_frame(b"q" * 995))
    r = c.streams[sid]
    c.wait_for(lambda: len(r.data) >= 65535, 5)
    check(holds_for(lambda: (c.pump(0.05), not r.ended and len(r.data) <= 65535)[1], 0.5),
          "ServerStream to a client that does not read: held at its window (%d bytes)" % len(r.data))
    c.auto_ack = True
    c.ack(sid)
    c.wait(sid, timeout=30)
    check(r.ended and len(r.data) == 2000 * 1000 and r.trailers.get("grpc-status") == "0",
          "once it reads, all 2000 copies arrive: %d bytes %r" % (len(r.data), r.trailers))
    c.close()


@case
def grpc_stream_backpressure():
    pod = Pod("pa", "v1", extra=["--quiet"])
    c = H2Client(pod.port, auto_ack=False)
    sid = c.request("POST", "/weir.Echo/Stream", grpc_headers(), end=False)
    r = c.streams[sid]
    msg = grpc_frame(b"m" * 16379)  # 16 KiB on the wire
    sent = 0
    stalled_since = None
    deadline = time.time() + 20
    while time.time() < deadline and sent < 8 * 1024 * 1024:
        room = c.conn.local_flow_control_window(sid)
        if room >= len(msg):
            c.conn.send_data(sid, msg)
            c.flush()
            sent += len(msg)
            stalled_since = None
            continue
        stalled_since = stalled_since or time.time()
        if time.time() - stalled_since > 1.0:
            break
        c.pump(0.1)
    check(stalled_since is not None and sent < 2 * 1024 * 1024,
          "a client that does not read is held by flow control: %d bytes sent" % sent)
    check(sent >= 256 * 1024, "the pod buffered some echo before holding: %d" % sent)
    c.auto_ack = True
    c.ack(sid)
    c.send(sid, msg, end=True)
    sent += len(msg)
    c.wait(sid, timeout=20)
    check(len(r.data) == sent and r.trailers.get("grpc-status") == "0",
          "once the client reads, every byte is echoed and the stream ends OK: %d of %d, %r" % (len(r.data), sent, r.trailers))
    c.close()


@case
def grpc_faults():
    pod = Pod("pa", "v1", extra=["--quiet", "--error-rate", "0.5"])
    c = H2Client(pod.port)
    codes = []
    for i in range(10):
        r = c.wait(c.request("POST", "/weir.Echo/Unary", grpc_headers(), grpc_frame(b"x%d" % i)))
        codes.append(r.headers.get("grpc-status") or r.trailers.get("grpc-status"))
        if codes[-1] == "14":
            check(r.status == 200 and r.headers.get("grpc-message") == "error injected" and r.data == b"",
                  "injected error: Trailers-Only UNAVAILABLE, grpc-message: %r" % r.headers)
    check(codes.count("14") == 5 and codes.count("0") == 5,
          "--error-rate 0.5 over 10 unary calls: 5 UNAVAILABLE, 5 OK: %r" % codes)
    sid = c.request("POST", "/weir.Echo/Stream", grpc_headers(), end=False)
    sid2 = c.request("POST", "/weir.Echo/Stream", grpc_headers(), end=False)
    r, r2 = c.streams[sid], c.streams[sid2]
    c.wait_for(lambda: r.headers and r2.headers)
    st = sorted([r.headers.get("grpc-status", "open"), r2.headers.get("grpc-status", "open")])
    check(st == ["14", "open"], "--error-rate applies to streams too: %r" % st)
    c.close()
    pod = Pod("pb", "v1", extra=["--quiet", "--error-rate", "1"])
    c = H2Client(pod.port)
    r = c.wait(c.request("GET", "/"))
    check(r.status == 500 and r.data == b"error injected\n", "h2 HTTP request at --error-rate 1: 500: %r" % r.status)
    c.close()


@case
def h2_probe_listener_and_close():
    pod = Pod("pa", "v1", probe=True, extra=["--quiet"])
    q = int(pod.probe.rsplit(":", 1)[1])
    c = H2Client(q)
    r = c.wait(c.request("POST", "/ready/off"))
    check(r.status == 200 and r.data == b"not ready\n", "POST /ready/off over h2 on the probe listener")
    r = c.wait(c.request("GET", "/ready"))
    check(r.status == 503, "GET /ready over h2 then answers 503: %r" % r.status)
    r = c.wait(c.request("GET", "/"))
    check(r.status == 404, "the probe listener has no app paths over h2 either: %r" % r.status)
    c.close()
    c = H2Client(pod.port)
    r = c.wait(c.request("GET", "/close"))
    check(r.status == 200 and r.data == b"closing\n", "h2 /close answers")
    check(c.wait_for(lambda: c.goaway is not None or c.closed, 5), "then the pod sends GOAWAY and closes")
    c.close()


@case
def bench_h2_counts():
    if not os.path.exists(BENCH):
        check(False, "weir-bench not built")
        return
    pod = Pod("pa", "v7", extra=["--quiet", "--error-rate", "0.1"])
    r = subprocess.run([BENCH, "-q", "--json", "--h2", "--streams", "8", "-c", "2", "-d", "2",
                        "--version-header", "X-Version", "http://127.0.0.1:%d/" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = {}
    v = doc.get("versions", {}).get("v7", {})
    check(b"Sanitizer" not in r.stderr, "no sanitizer report from weir-bench --h2: %r" % r.stderr[-300:])
    check(r.returncode == 0 and doc.get("requests", 0) > 100,
          "weir-bench --h2 runs and answers: rc=%s %s" % (r.returncode, r.stderr.decode()[-300:]))
    n = v.get("requests", 0)
    check(n == doc.get("requests") and abs(v.get("errors", 0) - n // 10) <= 16,
          "every answer counted under v7 (X-Version), 10%% errors: %r" % v)
    check(v.get("p50_ms", 0) > 0 and v.get("p99_ms", 0) >= v.get("p50_ms", 0), "latency percentiles reported: %r" % v)
    check(doc.get("protocol") == "h2c" and doc.get("streams") == 8,
          "the report names the protocol and the streams: %r" % {k: doc.get(k) for k in ("protocol", "streams")})



@case
def bench_h2_open_loop_and_grpc():
    pod = Pod("pa", "v7", extra=["--quiet", "--error-rate", "0.1"])
    r = subprocess.run([BENCH, "-q", "--json", "--h2", "--streams", "4", "-c", "2", "-d", "2",
                        "-R", "500", "--version-header", "X-Version",
                        "http://127.0.0.1:%d/" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    doc = json.loads(r.stdout or b"{}")
    check(doc.get("requests") == 1000 and doc.get("versions", {}).get("v7", {}).get("requests") == 1000,
          "--h2 -R 500 -d 2: exactly 1000 requests, all v7: %r" % {k: doc.get(k) for k in ("requests", "errors")})
    check(doc.get("errors") == 100, "--h2 open loop: exactly 10%% errors (the pod's pattern): %r" % doc.get("errors"))
    r = subprocess.run([BENCH, "-q", "--json", "--grpc", "--streams", "4", "-c", "2", "-d", "1",
                        "--version-header", "X-Version",
                        "http://127.0.0.1:%d/weir.Echo/Unary" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    doc = json.loads(r.stdout or b"{}")
    kinds = doc.get("errors_by_kind", {})
    n = doc.get("requests", 0)
    check(n > 100 and doc.get("status", {}).get("2xx") == n,
          "--grpc: unary calls answered 200: %r" % doc.get("status"))
    check(kinds.get("grpc") == doc.get("errors") and abs(doc.get("errors", 0) - n // 10) <= 8,
          "--grpc: UNAVAILABLE answers count as grpc errors, 10%%: %r of %d" % (kinds, n))
    r = subprocess.run([BENCH, "--streams", "4", "http://127.0.0.1:%d/" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(r.returncode == 2 and b"--streams needs --h2" in r.stderr,
          "--streams without --h2 is a usage error: %r" % r.stderr[-200:])



@case
def h2_bad_input_and_shared_counter():
    pod = Pod("pa", "v1", extra=["--quiet", "--error-rate", "0.5"])
    # The k-th request of the process fails, whatever its protocol.
    rc, out, _ = curl("-i", "http://127.0.0.1:%d/" % pod.port)
    check(out.startswith(b"HTTP/1.1 200"), "request 1 (HTTP/1.1) passes: %r" % out[:20])
    c = H2Client(pod.port)
    r = c.wait(c.request("GET", "/"))
    check(r.status == 500, "request 2 (h2) is the injected one: --error-rate counts both protocols: %r" % r.status)
    c.close()
    # A preface followed by garbage: the pod closes that connection only.
    s = socket.create_connection(("127.0.0.1", pod.port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
    ended = False
    try:
        while s.recv(65536):
            pass
        ended = True
    except ConnectionResetError:
        ended = True
    except OSError:
        pass
    s.close()
    check(ended, "garbage after the preface: the pod ends that connection")
    # The preface in pieces: still recognised as h2.
    c = H2Client(pod.port, trickle=True)
    r = c.wait(c.request("GET", "/live"))
    check(r.status == 200 and r.data == b"ok\n", "a preface that arrives in 5-byte pieces is h2: %r" % r.status)
    c.close()
    r = subprocess.run([CURL, "-sS", "--http2-prior-knowledge", "http://127.0.0.1:%d/live" % pod.port],
                       stdout=subprocess.PIPE, timeout=10)
    check(r.stdout == b"ok\n", "the pod still serves h2 afterwards: %r" % r.stdout)


@case
def bench_h2_against_http1_and_timeouts():
    import socket as so
    import threading
    srv = so.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = []

    def serve():
        srv.settimeout(0.2)
        while not stop:
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                c.recv(4096)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = subprocess.run([BENCH, "-q", "--json", "--h2", "--streams", "2", "-c", "2", "-d", "1",
                        "http://127.0.0.1:%d/" % srv.getsockname()[1]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    stop.append(1)
    t.join(2)
    srv.close()
    doc = json.loads(r.stdout or b"{}")
    check(r.returncode == 1 and doc.get("errors", 0) > 0 and
          doc.get("errors_by_kind", {}).get("parse", 0) > 0,
          "--h2 against an HTTP/1.1-only server: parse errors, exit 1: rc=%s %r" % (r.returncode, doc.get("errors_by_kind")))
    pod = Pod("pa", "v1", extra=["--quiet", "--latency", "1m"])
    t0 = time.time()
    r = subprocess.run([BENCH, "-q", "--json", "--h2", "--streams", "3", "-c", "1", "-d", "1",
                        "--timeout", "300ms", "http://127.0.0.1:%d/" % pod.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    doc = json.loads(r.stdout or b"{}")
    kinds = doc.get("errors_by_kind", {})
    check(doc.get("requests", 0) >= 3 and kinds.get("timeout") == doc.get("requests"),
          "--h2 streams past --timeout count as timeouts: %r" % kinds)
    check(time.time() - t0 < 20, "and the run stays bounded")


run()
