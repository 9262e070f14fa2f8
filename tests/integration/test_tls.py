"""TLS (issue 18): HTTPS on a second listener next to plain HTTP, with
certificates the test makes with the openssl CLI.

- curl --cacert over TLS 1.3 and 1.2: the answer, X-Forwarded-Proto https
  (http on the plain listener), the access log's tls/sni/alpn fields;
- openssl s_client: TLS 1.1 and 1.0 refused, SNI picks the certificate
  (exact name, wildcard), an unknown name gets the default one, a
  renegotiation attempt (R) is refused, ALPN http/1.1;
- bad input: plain HTTP to the TLS port gets nginx's 400 and a close;
  garbage bytes and a stalled handshake (closed after timeouts.tls_handshake)
  are closed and counted in weir_tls_handshakes_total{listener,result};
- certificates without a restart: a new pair swapped in on disk is picked up
  (new connections see it) while a kept-alive connection from before still
  works; a bad new pair (key does not match) keeps the old one, and a reload
  with it is refused with the reason;
- weir -t: mismatched key, expired certificate, missing file;
- upstream TLS: weir in front of a second weir whose listener speaks TLS,
  verified against the test's CA with an SNI name; a wrong CA fails;
- large bodies both ways through TLS.
meson runs this file on both I/O paths (io_uring and WEIR_IO_URING=0)."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"


def sh(argv, inp=None, timeout=20):
    r = subprocess.run(argv, input=inp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


class Pki:
    """A CA and leaf certificates signed by it (EC P-256), in a directory."""

    def __init__(self, d):
        self.d = d
        self.ca_key = os.path.join(d, "ca.key")
        self.ca = os.path.join(d, "ca.crt")
        sh([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=weir test CA"])

    def leaf(self, name, sans, days="2"):
        key = os.path.join(self.d, name + ".key")
        csr = os.path.join(self.d, name + ".csr")
        crt = os.path.join(self.d, name + ".crt")
        ext = os.path.join(self.d, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(s if s.startswith("IP:") else "DNS:" + s
                                                 for s in sans) + "\n")
        sh([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + sans[0]])
        rc, out = sh([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-days", days, "-out", crt, "-extfile", ext])
        if rc != 0:
            raise RuntimeError("openssl x509: " + out)
        return crt, key


def subject_cn(port, servername=None, extra=()):
    argv = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port] + list(extra)
    if servername:
        argv += ["-servername", servername]
    rc, out = sh(argv, inp=b"", timeout=15)
    for line in out.splitlines():
        if line.startswith("subject="):
            return line.split("CN", 1)[1].strip(" =")
    return None


def curl(url, *args):
    rc, out = sh([CURL, "-sS", "--max-time", "10"] + list(args) + [url])
    return rc, out


d = tmpdir()
pki = Pki(d)
main_crt, main_key = pki.leaf("main", ["localhost", "weir.test", "IP:127.0.0.1"])
api_crt, api_key = pki.leaf("api", ["api.example.com"])
wild_crt, wild_key = pki.leaf("wild", ["*.apps.example.com"])
# The served pair lives behind a symlink, as in a Kubernetes Secret mount.
live = os.path.join(d, "live")
os.mkdir(live)


def install(crt, key):
    """Swap the live pair atomically (a new directory, then a symlink swap)."""
    gen = os.path.join(live, "..data-%f" % time.time())
    os.mkdir(gen)
    shutil.copy(crt, os.path.join(gen, "tls.crt"))
    shutil.copy(key, os.path.join(gen, "tls.key"))
    tmp = os.path.join(live, "..data.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.basename(gen), tmp)
    os.rename(tmp, os.path.join(live, "..data"))
    for n in ("tls.crt", "tls.key"):
        p = os.path.join(live, n)
        if not os.path.lexists(p):
            os.symlink(os.path.join("..data", n), p)


install(main_crt, main_key)
v1 = Pod("v1-a", "v1")

CONFIG = """
listen:
  - {listen}
  - address: 127.0.0.1:%(tls_port)d
    tls:
      cert: %(live)s/tls.crt
      key: %(live)s/tls.key
      sni:
        - {{names: [api.example.com], cert: %(api_crt)s, key: %(api_key)s}}
        - {{names: ["*.apps.example.com"], cert: %(wild_crt)s, key: %(wild_key)s}}
control: {control}
admin: 127.0.0.1:%(admin)d
workers: 2
timeouts:
  tls_handshake: 1s
access_log: {{path: {dir}/access.log}}
versions:
  v1:
    endpoints: [%(v1)s]
split: {{v1: 100}}
"""

tls_port = free_port()
admin = free_port()
w = Weir(CONFIG % {"tls_port": tls_port, "live": live, "api_crt": api_crt, "api_key": api_key,
                   "wild_crt": wild_crt, "wild_key": wild_key, "admin": admin, "v1": v1.addr})
check(wait_port(tls_port), "the TLS listener is up next to the plain one")
URL = "https://localhost:%d" % tls_port


def access_lines():
    try:
        with open(os.path.join(w.dir, "access.log")) as f:
            return [json.loads(x) for x in f if x.strip()]
    except FileNotFoundError:
        return []


def handshakes(result):
    samples = scrape(admin)[0]
    return prom_value(samples, "weir_tls_handshakes_total", listener="127.0.0.1:%d" % tls_port,
                      result=result) or 0


@case
def https_basic():
    for ver in ("--tlsv1.3", "--tlsv1.2"):
        rc, out = curl(URL + "/echo", "--http1.1", "--cacert", pki.ca, ver, "--tls-max", ver[5:].replace("v", ""))
        check(rc == 0 and out.startswith("GET /echo HTTP/1.1"), "curl %s over HTTPS gets the answer (%s)" % (ver, out[:80]))
        check("x-forwarded-proto: https" in out.lower(), "X-Forwarded-Proto: https on the TLS listener")
    rc, out = curl("http://127.0.0.1:%d/echo" % w.port)
    check(rc == 0 and "x-forwarded-proto: http\n" in out.lower().replace("\r", ""),
          "X-Forwarded-Proto: http on the plain listener")
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 3 else None)(access_lines())) or access_lines()
    tls_lines = [x for x in lines if x.get("tls")]
    check(len(tls_lines) >= 2 and tls_lines[0]["tls"] == "TLSv1.3" and tls_lines[1]["tls"] == "TLSv1.2",
          "access log: tls is the protocol version (%s)" % [x.get("tls") for x in lines])
    check(all(x["sni"] == "localhost" and x["alpn"] == "http/1.1" for x in tls_lines),
          "access log: sni and alpn of the TLS requests")
    plain = [x for x in lines if not x.get("tls")]
    check(plain and plain[-1]["tls"] is None and plain[-1]["sni"] is None and plain[-1]["alpn"] is None,
          "access log: tls, sni, alpn are null on the plain listener")
    # keep-alive: several requests on one TLS connection
    rc, out = curl(URL + "/", "--http1.1", "--cacert", pki.ca, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                   "-w", "%{num_connects} ", URL + "/", URL + "/")
    check(rc == 0 and out.split() == ["1", "0", "0"], "three requests on one kept-alive TLS connection (%s)" % out)
    check(handshakes("ok") >= 3, "handshakes counted as ok")


@case
def http2_over_tls():
    """ALPN h2: HTTP/2 streams over TLS are routed, logged with the
    connection's TLS fields, and forwarded with X-Forwarded-Proto: https."""
    before = len(access_lines())
    rc, out = curl(URL + "/echo", "--http2", "--cacert", pki.ca, "-w", "\n%{http_version}")
    check(rc == 0 and out.rstrip().endswith("\n2"), "curl --http2 over HTTPS speaks HTTP/2 (%s)" % out[-40:])
    check("x-forwarded-proto: https" in out.lower(), "X-Forwarded-Proto: https on an HTTP/2 stream over TLS")
    check(out.startswith("GET /echo HTTP/1.1"), "the stream reaches the HTTP/1.1 upstream translated")
    rc, out = sh([H2LOAD, "-n", "200", "-c", "2", "-m", "10", URL + "/"], timeout=30)
    check(rc == 0 and "200 succeeded" in out and "Application protocol: h2" in out,
          "h2load: 200 streams over 2 TLS connections all succeed (%s)" % out[-200:])
    # Count HTTP/2.0 lines, not all lines: the earlier case's last lines may
    # still be on their way to the file (before is then too small).
    def h2_lines():
        return [x for x in access_lines()[before:] if x.get("protocol") == "HTTP/2.0"]
    new = wait_for(lambda: (lambda ls: ls if len(ls) >= 201 else None)(h2_lines())) or h2_lines()
    check(len(new) == 201, "every stream logged once as HTTP/2.0 (%d of 201)" % len(new))
    check(all(x["tls"] == "TLSv1.3" and x["alpn"] == "h2" and x["sni"] == "localhost" for x in new),
          "the streams' lines carry the connection's tls, sni and alpn")


@case
def protocol_versions_and_sni():
    for old in ("-tls1_1", "-tls1"):
        rc, out = sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, old], inp=b"")
        check("Cipher is (NONE)" in out or "alert protocol version" in out or "no protocols available" in out,
              "%s is refused" % old)
    check(wait_for(lambda: handshakes("failed") >= 2), "counted: failed (TLS 1.0/1.1)")
    check(subject_cn(tls_port, "api.example.com") == "api.example.com", "SNI api.example.com gets its certificate")
    check(subject_cn(tls_port, "x.apps.example.com") == "*.apps.example.com", "a wildcard name matches one label")
    check(subject_cn(tls_port, "a.b.apps.example.com") == "localhost", "a wildcard does not match two labels")
    check(subject_cn(tls_port, "unknown.example.net") == "localhost", "an unknown SNI gets the default certificate")
    check(subject_cn(tls_port, None, ["-noservername"]) == "localhost", "no SNI gets the default certificate")
    rc, out = sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-alpn", "h2,http/1.1"], inp=b"")
    check("ALPN protocol: h2" in out, "ALPN picks h2 when the client offers it first")
    rc, out = sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-alpn", "http/1.1"], inp=b"")
    check("ALPN protocol: http/1.1" in out, "ALPN picks http/1.1 for an HTTP/1.1-only client")


@case
def renegotiation_refused():
    before = handshakes("ok")
    p = subprocess.Popen([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-tls1_2",
                          "-servername", "localhost"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    time.sleep(0.5)
    try:
        p.stdin.write(b"R\n")
        p.stdin.flush()
        time.sleep(0.5)
        p.stdin.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass  # s_client saw the close and ended
    try:
        out = p.communicate(timeout=10)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode(errors="replace")
    check("RENEGOTIATING" in out, "s_client tried to renegotiate")
    check("HTTP/1.1 200" not in out, "no answer after the renegotiation attempt: the connection is refused")
    check(handshakes("ok") == before + 1, "the first handshake was counted")
    check(wait_for(lambda: handshakes("renegotiation") >= 1), "the attempt is counted as renegotiation")


@case
def bad_input():
    c = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        try:
            chunk = c.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    c.close()
    check(data.startswith(b"HTTP/1.1 400 ") and b"The plain HTTP request was sent to HTTPS port" in data,
          "plain HTTP to the TLS port: 400 in plain text, then close (%r)" % data[:60])
    c = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    c.sendall(b"\x00\x01garbage\xff" * 10)
    c.settimeout(5)
    try:
        got = c.recv(100)
    except OSError:
        got = b""
    check(got == b"", "garbage instead of a ClientHello: closed")
    c.close()
    # a stalled handshake: half a ClientHello, then nothing
    c = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    t0 = time.time()
    c.settimeout(8)
    try:
        got = c.recv(100)
    except OSError:
        got = None
    check(got == b"", "a stalled handshake is closed (after %.1fs, timeout 1s)" % (time.time() - t0))
    c.close()
    c = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    c.settimeout(8)
    try:
        got = c.recv(100)
    except OSError:
        got = None
    check(got == b"", "a client that never sends a byte is closed by the handshake timeout too")
    c.close()
    check(wait_for(lambda: handshakes("plain_http") >= 1), "counted: plain_http")
    check(wait_for(lambda: handshakes("not_tls") >= 1), "counted: not_tls")
    check(wait_for(lambda: handshakes("timeout") >= 2), "counted: timeout")
    rc, out = curl(URL + "/", "--cacert", pki.ca)
    check(rc == 0, "weir still serves HTTPS after all that")


@case
def big_bodies():
    big = os.path.join(d, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024))
    rc, out = sh([CURL, "-sS", "--max-time", "30", "--cacert", pki.ca, "-o", "/dev/null", "-w", "%{size_download}",
                  URL + "/bytes/6000000"])
    check(rc == 0 and out.strip() == "6000000", "a 6 MB response passes whole over TLS (%s)" % out)
    rc, out = sh([CURL, "-sS", "--max-time", "30", "--cacert", pki.ca, "--data-binary", "@" + big,
                  "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", URL + "/upload"])
    check(rc == 0 and out.strip() == "200 %d" % (3 * 1024 * 1024), "a 3 MB request body passes over TLS (%s)" % out)


def served_cn():
    return subject_cn(tls_port, "localhost")


@case
def cert_reload():
    ctx = ssl.create_default_context(cafile=pki.ca)
    old = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=5), server_hostname="localhost")
    old.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    check(b"200" in old.recv(65536)[:20], "a kept-alive connection before the change")
    new_crt, new_key = pki.leaf("new", ["localhost", "renewed.test"])
    install(new_crt, new_key)
    got = wait_for(lambda: served_cn() == "localhost" and "renewed.test" in sh(
        [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-servername", "localhost",
         "-showcerts"], inp=b"")[1] or None, timeout=10)
    rc, pem = sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-servername", "localhost"], inp=b"")
    rc2, fp_new = sh([OPENSSL, "x509", "-in", new_crt, "-noout", "-fingerprint"])
    p = subprocess.run([OPENSSL, "x509", "-noout", "-fingerprint"], input=pem.encode(), stdout=subprocess.PIPE)
    check(p.stdout.decode().strip() == fp_new.strip(), "new connections get the certificate swapped in on disk")
    old.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    check(b"200" in old.recv(65536)[:20], "the connection from before still works")
    old.close()
    del got
    # a bad pair (key of another certificate): the new one stays
    install(new_crt, api_key)
    time.sleep(2.5)
    rc, pem = sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-servername", "localhost"], inp=b"")
    p = subprocess.run([OPENSSL, "x509", "-noout", "-fingerprint"], input=pem.encode(), stdout=subprocess.PIPE)
    check(p.stdout.decode().strip() == fp_new.strip(), "a bad new pair keeps the previous certificate")
    check("does not match" in w.stderr(), "the log says why")
    rc, out = w.ctl("status")
    st = json.loads(out) if rc == 0 else {}
    check("does not match" in (st.get("tls", {}).get("error") or ""), "status says why (tls.error)")
    check(any(c["name"] == "api.example.com" and c["not_after"] for c in st.get("tls", {}).get("certificates", [])),
          "status lists the certificates with their expiry")
    rc, out = w.ctl("reload")
    check(rc != 0 and "does not match" in out, "a reload with the bad pair is refused with the reason (%s)" % out.strip()[:200])
    rc, out = curl(URL + "/", "--cacert", pki.ca)
    check(rc == 0, "HTTPS still works with the kept certificate")
    install(main_crt, main_key)
    check(wait_for(lambda: "weir.test" in sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port,
                                                "-servername", "localhost"], inp=b"")[1] or
                   subprocess.run([OPENSSL, "x509", "-noout", "-ext", "subjectAltName"],
                                  input=sh([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port],
                                           inp=b"")[1].encode(), stdout=subprocess.PIPE).stdout.decode().find("weir.test") >= 0,
                   timeout=10), "a good pair after the bad one is picked up")
    samples = scrape(admin)[0]
    check((prom_value(samples, "weir_tls_certificate_errors_total") or 0) >= 1, "refused sets are counted")
    check((prom_value(samples, "weir_tls_certificate_reloads_total") or 0) >= 2, "loaded sets are counted")


@case
def check_config():
    def t(crt, key, want):
        cfg = os.path.join(d, "t.yaml")
        with open(cfg, "w") as f:
            f.write("listen:\n  - address: 127.0.0.1:8443\n    tls: {cert: %s, key: %s}\n"
                    "control: %s/t.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:9]\nsplit: {v1: 100}\n"
                    % (crt, key, d))
        rc, out = sh([WEIR, "-t", "-c", cfg])
        check(rc != 0 and want in out and "t.yaml:3:" in out, "weir -t: %s (%s)" % (want, out.strip()))
    t(main_crt, api_key, "does not match")
    rc, out = sh([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", os.path.join(d, "old.key"), "-out", os.path.join(d, "old.csr"), "-subj", "/CN=old"])
    sh([OPENSSL, "x509", "-req", "-in", os.path.join(d, "old.csr"), "-signkey", os.path.join(d, "old.key"),
        "-days", "-1", "-out", os.path.join(d, "old.crt")])
    t(os.path.join(d, "old.crt"), os.path.join(d, "old.key"), "has expired")
    t(os.path.join(d, "missing.crt"), main_key, "cannot be read")
    cfg = os.path.join(d, "ok.yaml")
    with open(cfg, "w") as f:
        f.write("listen:\n  - address: 127.0.0.1:8443\n    tls: {cert: %s, key: %s}\n"
                "control: %s/t.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:9]\nsplit: {v1: 100}\n"
                % (main_crt, main_key, d))
    rc, out = sh([WEIR, "-t", "-c", cfg])
    check(rc == 0, "weir -t accepts a good pair (%s)" % out.strip())


@case
def listen_change_needs_restart():
    with open(w.config) as f:
        orig = f.read()
    extra = free_port()
    changed = orig.replace("listen:\n", "listen:\n  - 127.0.0.1:%d\n" % extra, 1)
    with open(w.config, "w") as f:
        f.write(changed)
    rc, out = w.ctl("reload")
    check(rc == 0 and "listen" in out and "restart" in out, "a changed listen list needs a restart (%s)" % out.strip()[:160])
    rc, out = curl(URL + "/", "--cacert", pki.ca)
    check(rc == 0, "the TLS listener still speaks TLS after that reload")
    rc, out = curl("http://127.0.0.1:%d/" % w.port)
    check(rc == 0, "the plain listener still speaks HTTP")
    with open(w.config, "w") as f:
        f.write(orig)
    rc, out = w.ctl("reload")
    check(rc == 0, "back to the original file")


@case
def upstream_tls():
    # weir (front, plain) → weir (back, TLS listener) → pod
    back_tls = free_port()
    back = Weir(CONFIG.replace("admin: 127.0.0.1:%(admin)d\n", "")
                % {"tls_port": back_tls, "live": live, "api_crt": api_crt, "api_key": api_key,
                   "wild_crt": wild_crt, "wild_key": wild_key, "v1": v1.addr})
    check(wait_port(back_tls), "a TLS upstream (weir itself)")
    # back2 presents a certificate without the address 127.0.0.1 in it
    live2 = os.path.join(d, "live2")
    os.makedirs(live2, exist_ok=True)
    shutil.copy(api_crt, os.path.join(live2, "tls.crt"))
    shutil.copy(api_key, os.path.join(live2, "tls.key"))
    back2_tls = free_port()
    back2 = Weir(CONFIG.replace("admin: 127.0.0.1:%(admin)d\n", "")
                 % {"tls_port": back2_tls, "live": live2, "api_crt": api_crt, "api_key": api_key,
                    "wild_crt": wild_crt, "wild_key": wild_key, "v1": v1.addr})
    check(wait_port(back2_tls), "a second TLS upstream")
    front_cfg = """
listen: {listen}
control: {control}
workers: 1
versions:
  v1:
    endpoints: [127.0.0.1:%d]
    tls: {{ca: %s, sni: weir.test}}
  v2:
    endpoints: [127.0.0.1:%d]
    tls: {{ca: %s, sni: weir.test}}
  by-ip:
    endpoints: [127.0.0.1:%d]
    tls: {{ca: %s}}
  wrong-ip:
    endpoints: [127.0.0.1:%d]
    tls: {{ca: %s}}
split: {{v1: 100}}
rules:
  - {{header: X-Bad-CA, value: "1", version: v2}}
  - {{header: X-By-IP, value: "1", version: by-ip}}
  - {{header: X-Wrong-IP, value: "1", version: wrong-ip}}
""" % (back_tls, pki.ca, back_tls, wild_crt, back_tls, pki.ca, back2_tls, pki.ca)
    front = Weir(front_cfg)
    for i in range(3):
        rc, out = curl("http://127.0.0.1:%d/echo" % front.port)
        check(rc == 0 and "x-forwarded-proto: https" in out.lower(),
              "request %d through upstream TLS arrives (the back saw TLS)" % i)
    rc, out = curl("http://127.0.0.1:%d/" % front.port, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Bad-CA: 1")
    check(out.strip() == "502", "an upstream whose certificate does not verify: 502 (%s)" % out)
    rc, out = curl("http://127.0.0.1:%d/" % front.port, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-By-IP: 1")
    check(out.strip() == "200", "without sni the certificate is checked for the endpoint's IP: "
          "it has 127.0.0.1, 200 (%s)" % out)
    rc, out = curl("http://127.0.0.1:%d/" % front.port, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Wrong-IP: 1")
    check(out.strip() == "502", "a chain that verifies but names neither sni nor the IP: 502 (%s)" % out)
    lines = []
    try:
        with open(os.path.join(back.dir, "access.log")) as f:
            lines = [json.loads(x) for x in f if x.strip()]
    except FileNotFoundError:
        pass
    check(sum(1 for x in lines if x.get("tls") and x.get("sni") == "weir.test") >= 3,
          "the upstream logged the TLS requests with SNI weir.test")
    ports = set(x["client_port"] for x in lines if x.get("sni") == "weir.test")
    check(len(ports) == 1, "upstream TLS connections are pooled and reused (%d connections)" % len(ports))
    front.stop()
    back.stop()
    back2.stop()


def tls_upstream_server(clean):
    """A one-shot TLS upstream answering with a body read until close; it
    ends the connection with close_notify (clean) or drops TCP (not)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(main_crt, main_key)

    def serve():
        try:
            raw, _ = ls.accept()
            raw.settimeout(10)
            s = ctx.wrap_socket(raw, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 1000)
            if clean:
                s.unwrap()  # close_notify
            raw.close()  # SSLSocket.close would not send one either
        except (OSError, ssl.SSLError):
            pass
        finally:
            ls.close()
    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


@case
def close_notify():
    # weir ends a TLS connection it closes with close_notify: Python's ssl
    # raises SSLEOFError on a bare TCP EOF.
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Debian's Python sets it
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data, err = b"", None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as e:
        err = e
    s.close()
    check(data.startswith(b"HTTP/1.1 200") and err is None,
          "Connection: close over TLS ends with close_notify (%r)" % err)
    # an upstream's body read until close: whole only if it ends with close_notify
    for clean in (True, False):
        port = tls_upstream_server(clean)
        front = Weir("""
listen: {listen}
control: {control}
workers: 1
versions:
  v1:
    endpoints: [127.0.0.1:%d]
    tls: {{ca: %s}}
split: {{v1: 100}}
""" % (port, pki.ca))
        rc, out = curl("http://127.0.0.1:%d/" % front.port, "-o", "/dev/null", "-w", "%{size_download}")
        if clean:
            check(rc == 0 and out.strip() == "1000", "a close-delimited TLS body with close_notify "
                  "arrives whole (curl rc %d, %s bytes)" % (rc, out))
        else:
            check(rc != 0, "one cut by a TCP EOF without close_notify is not passed off as whole "
                  "(curl rc %d, %s bytes)" % (rc, out))
        front.stop()


run()
