"""weirtest.load — steady closed-loop request load against weir, recording
which pod answered each request and every failure, with the time.
"""
import threading
import time

from .http import Conn


class Load:
    """Steady closed-loop GET load: `threads` keep-alive connections, each
    one request at a time, until stop(). Every answer other than 200, and
    every connection weir closes or breaks, is a failure. Records which pod
    (X-Pod) answered, with the time."""

    def __init__(self, port, threads=4, path="/", headers=None, pause=0.0):
        self.port = port
        self.path = path
        self.headers = headers or {}
        self.pause = pause
        self.ok = 0
        self.failures = []        # (time, description)
        self.served = []          # (time, pod)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        req = "GET %s HTTP/1.1\r\nHost: load\r\n" % self.path
        for k, v in self.headers.items():
            req += "%s: %s\r\n" % (k, v)
        req = (req + "\r\n").encode()
        c = None
        while not self._stop.is_set():
            try:
                if c is None:
                    c = Conn(self.port, timeout=10.0)
                c.send(req)
                r = c.read_response()
                now = time.time()
                with self._lock:
                    if r.status == 200:
                        self.ok += 1
                        self.served.append((now, r.header("X-Pod")))
                    else:
                        self.failures.append((now, "status %d: %r" % (r.status, r.body[:80])))
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:  # a broken or closed client connection
                with self._lock:
                    self.failures.append((time.time(), "%s: %s" % (type(e).__name__, e)))
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.01)
            if self.pause:
                time.sleep(self.pause)
        if c is not None:
            c.close()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)
        return self

    def pods_since(self, t0):
        with self._lock:
            return [p for (t, p) in self.served if t >= t0]

    def wait_since(self, t0, n, timeout=15.0):
        """Wait (bounded) until at least n answers came at or after t0, then
        return the pods that gave them (all answers since t0)."""
        end = time.time() + timeout
        while len(self.pods_since(t0)) < n and time.time() < end:
            time.sleep(0.02)
        return self.pods_since(t0)

    def count(self):
        with self._lock:
            return self.ok + len(self.failures)
