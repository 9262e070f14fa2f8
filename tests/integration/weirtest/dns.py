"""weirtest.dns — an unprivileged dnsmasq on 127.0.0.1 serving test names
from a hosts file the test rewrites (for `discovery:` and its re-resolution).
"""
import os
import signal
import socket
import struct

from .procs import Proc, wait_for


class Dnsmasq(Proc):
    """dnsmasq (Debian dnsmasq-base) serving `domain` from a hosts file on
    127.0.0.1:PORT, unprivileged. Names under `domain` that the file lacks
    are NXDOMAIN (--local); set() rewrites the file and sends SIGHUP."""

    BIN = "/usr/sbin/dnsmasq"

    def __init__(self, dirpath, domain="weir.test", port=None):
        self.domain = domain
        self.hosts = os.path.join(dirpath, "dns.hosts")
        self.log_path = os.path.join(dirpath, "dnsmasq.log")
        self.records = {}
        self._write()
        self._log = open(self.log_path, "ab")
        # dnsmasq binds UDP and TCP on its port; a port free for UDP may be
        # taken for TCP by another process, so try a few when none is given.
        for attempt in range(5):
            self.port = port or self._free_udp_port()
            super().__init__([self.BIN, "--no-daemon", "--port=%d" % self.port,
                              "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                              "--no-hosts", "--addn-hosts=" + self.hosts, "--local=/%s/" % domain,
                              "--pid-file=", "--log-facility=-", "--cache-size=0"],
                             stdout=self._log, stderr=self._log)
            if wait_for(lambda: self.query_ok() or self.p.poll() is not None, timeout=10) \
                    and self.p.poll() is None:
                return
            self.stop(2)
            if port:
                break
        raise RuntimeError("dnsmasq did not start")

    @staticmethod
    def _free_udp_port():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def _write(self):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            for name, ips in sorted(self.records.items()):
                for ip in ips:
                    f.write("%s %s\n" % (ip, name))
        os.rename(tmp, self.hosts)

    def set(self, name, ips):
        """Make `name` resolve to exactly `ips` (IPv4 and/or IPv6)."""
        self.records[name] = list(ips)
        if not ips:
            del self.records[name]
        self._write()
        self.signal(signal.SIGHUP)

    def query_ok(self):
        """True when the server answers a query (any rcode)."""
        pkt = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
        for part in ("probe." + self.domain).split("."):
            pkt += bytes([len(part)]) + part.encode()
        pkt += b"\0" + struct.pack(">HH", 1, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(pkt, ("127.0.0.1", self.port))
            d, _ = s.recvfrom(4096)
            return d[:2] == pkt[:2]
        except OSError:
            return False
        finally:
            s.close()
