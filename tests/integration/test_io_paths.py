"""The data path's socket I/O, on both of its paths: batched per loop turn
through io_uring (the default where the kernel allows it) and one syscall
per read/write (WEIR_IO_URING=0, as in a container whose seccomp profile
blocks io_uring). meson runs this file once each way.

- weir says which path it took (a log line when io_uring is unavailable);
- 40 keep-alive clients x 25 requests at once, each answer the right one;
- 12 pipelined requests in one write: 12 answers, in order;
- a 6 MB response and a 3 MB request body pass whole;
- a client that reads slowly gets every byte of a 16 MB response
  (backpressure both ways, nothing lost);
- a 101 tunnel echoes bytes both ways;
- a client that goes away mid-response does not disturb the others;
- a pooled upstream conn reused late in its idle timeout gets a whole
  response timeout."""
import ctypes
import errno
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403



def kernel_allows_io_uring():
    """A bare io_uring_setup(): False when the kernel refuses io_uring as
    such (ENOSYS, EPERM from seccomp or the sysctl), as weir then must."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, 4, params)  # __NR_io_uring_setup on x86-64 and arm64
    if fd >= 0:
        os.close(fd)
        return True
    return ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM, errno.EACCES)


plain = os.environ.get("WEIR_IO_URING") == "0" or not kernel_allows_io_uring()
pods = [Pod("a", "v1"), Pod("b", "v1")]
weir = Weir("""
listen: {listen}
control: {control}
workers: 2
versions:
  v1:
    endpoints: [%s, %s]
split: {{v1: 100}}
""" % (pods[0].addr, pods[1].addr))

# Which path: the fallback is logged by each worker as it starts (poll for
# it); the batched path logs no warning (give it the same half second).
unavailable = bool(wait_for(lambda: "io_uring unavailable" in weir.stderr(),
                            timeout=5 if plain else 0.5))
check(unavailable == plain,
      "I/O path as asked (WEIR_IO_URING=%s, kernel allows io_uring: %s): io_uring %s" %
      (os.environ.get("WEIR_IO_URING", "unset"), kernel_allows_io_uring(),
       "off" if unavailable else "on"))

# Many keep-alive clients at once: every answer is the one asked for.
errors = []


def client(n):
    try:
        c = Conn(weir.port)
        for i in range(25):
            c.send("GET /echo/%d/%d HTTP/1.1\r\nHost: t\r\n\r\n" % (n, i))
            r = c.read_response()
            first = r.body.split(b"\n", 1)[0]
            if r.status != 200 or first != b"GET /echo/%d/%d HTTP/1.1" % (n, i):
                errors.append((n, i, r.status, first))
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append((n, repr(e)))


threads = [threading.Thread(target=client, args=(n,)) for n in range(40)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
check(not errors, "40 clients x 25 keep-alive requests answered right (%s)" % errors[:3])

# Pipelining: all heads in one write.
c = Conn(weir.port)
c.send("".join("GET /echo/p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(12)))
got = [c.read_response().body.split(b"\n", 1)[0] for i in range(12)]
check(got == [b"GET /echo/p%d HTTP/1.1" % i for i in range(12)],
      "12 pipelined requests answered in order")
c.close()

# Big response, big request body.
r = get(weir.port, "/bytes/6000000")
check(r.status == 200 and len(r.body) == 6000000 and r.body.count(b"x") == 6000000,
      "6 MB response whole (%d bytes)" % len(r.body))
r = get(weir.port, "/upload", method="POST", body=b"y" * 3000000)
check(r.status == 200 and r.body == b"received 3000000 bytes\n",
      "3 MB request body whole: %r" % r.body[:40])

# A slow reader: weir must pause the upstream, not drop or lose bytes.
s = socket.create_connection(("127.0.0.1", weir.port), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.sendall(b"GET /bytes/16000000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
buf = bytearray()
deadline = time.time() + 60
slept = 0
while time.time() < deadline:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    if slept < 40 and len(buf) > slept * 200000:
        time.sleep(0.02)  # stall now and then while weir has more to send
        slept += 1
s.close()
head, _, body = bytes(buf).partition(b"\r\n\r\n")
check(head.startswith(b"HTTP/1.1 200") and len(body) == 16000000,
      "slow reader got all of a 16 MB response (%d bytes)" % len(body))

# A tunnel (101): raw bytes both ways.
c = Conn(weir.port)
c.send("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
r = c.read_response()
echoed = b""
if r.status == 101:
    c.send(b"ping-1;ping-2;" * 1000)
    while len(c.buf) < 14000:
        c._fill()
    echoed = c.buf
check(r.status == 101 and echoed == b"ping-1;ping-2;" * 1000,
      "101 tunnel echoes 14 kB (%d)" % len(echoed))
c.close()

# A client leaves mid-response; the next requests are fine.
s = socket.create_connection(("127.0.0.1", weir.port), timeout=10)
s.sendall(b"GET /bytes/50000000 HTTP/1.1\r\nHost: t\r\n\r\n")
n = 0
while n < 300000:
    n += len(s.recv(65536))
s.close()
ok = all(get(weir.port, "/echo/after").status == 200 for _ in range(20))
check(ok and weir.p.poll() is None, "after a client left mid-response, 20 requests answered")

weir.stop()

# A pooled upstream conn reused late in its idle timeout gets a whole
# response timeout (the clock restarts when it is lent; with the default
# 30 s for both, a conn pooled 29 s must not time out 1 s into a request).
one = Weir("""
listen: {listen}
control: {control}
workers: 1
timeouts: {{upstream_idle: 3s, upstream_response: 3s}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % pods[0].addr)
c = Conn(one.port)
c.send("GET /echo/warm HTTP/1.1\r\nHost: t\r\n\r\n")
first = c.read_response().status
time.sleep(2.2)  # the state under test: the upstream conn idles in the pool, 0.8 s of 3 s left
# POST: not retried, so a timeout would show as 504 instead of a retry.
c.send("POST /sleep/1500 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
r = c.read_response()
check(first == 200 and r.status == 200,
      "pooled conn reused after 2.2 s of a 3 s idle timeout: a 1.5 s answer to "
      "a POST is not cut by the 3 s response timeout (%d, %d)" % (first, r.status))
c.close()
one.stop()
for p in pods:
    p.stop()
done()
